// Messages that say what happened (issue 15): a GATT operation pending when the transport ends is
// told the transport was lost (not "Connection Terminated By Local Host"); one pending when the
// controller reports a Hardware Error names its code; Adapter.open on a silent controller gives the
// hint the README promises. On the simulator, on virtual time.
import { expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { DisconnectedError, TimeoutError } from '../../src/errors.js';
import { createSimulator, HEART_RATE_SENSOR } from '../../src/sim/index.js';

async function pendingRead() {
  // The peer never answers a Read of 0x0003, so the read is pending when the fault strikes.
  const sim = createSimulator({ name: 'messages', peripherals: [{ ...HEART_RATE_SENSOR, behaviour: { ignore: [{ opcode: 0x0a, handle: 0x0003 }] } }] });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
  const conn = await adapter.connect({ address: HEART_RATE_SENSOR.address, addressType: 'random' } as never, { timeout: 5000 });
  const read: Promise<Error> = conn.gatt.readValue(0x0003).then(() => new Error("the read succeeded"), (e: Error) => e);
  await sim.clock.delay(100);
  return { sim, adapter, conn, read };
}

test('a transport EOF during a GATT read: the read and the link say the transport was lost', async () => {
  const { sim, adapter, conn, read } = await pendingRead();
  sim.unplug();
  const err = await read;
  expect(err).toBeInstanceOf(DisconnectedError);
  expect(err.message).toMatch(/the transport to the controller was lost: sim: the controller went away/);
  expect(err.message).not.toMatch(/Terminated By Local Host/);
  expect((await conn.closed).name).toBe('the transport to the controller was lost: sim: the controller went away');
  await adapter.close();
});

test('a Hardware Error during a GATT read: the read names the controller code', async () => {
  const { sim, adapter, conn, read } = await pendingRead();
  sim.hardwareError(0x42);
  const err = await read;
  expect(err).toBeInstanceOf(DisconnectedError);
  expect(err.message).toMatch(/Hardware Error 0x42/);
  expect(await conn.closed).toEqual({ code: 0x03, name: 'Hardware Failure: the controller reported Hardware Error 0x42 (Vol 4, Part E, 7.7.16) and lost its links' });
  await adapter.close();
});

test('Adapter.open on a controller that never answers times out with the README hint', async () => {
  const sim = createSimulator({ name: 'silent', peripherals: [] });
  sim.failCommand('reset', 'silent');
  const err = await Adapter.open({ transport: sim.transport, clock: sim.clock, timeout: 3000 }).catch(e => e);
  expect(err).toBeInstanceOf(TimeoutError);
  expect(err.message).toMatch(/^hci: open timed out after 3000 ms: is the controller powered and answering HCI commands\?/);
  expect(sim.clock.pendingTimers).toBe(0);
});
