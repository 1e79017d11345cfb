// Under every fault the simulator can inject, the host's promise rejects with the right typed error,
// nothing hangs, no host timer is left behind, and the stack recovers for the next operation.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import {
  AttError, DecodeError, DisconnectedError, HciStatusError, ProtocolError, TimeoutError,
} from '../../src/errors.js';
import type { GattClient } from '../../src/gatt/client.js';
import { createSimulator, HEART_RATE_SENSOR, type Scenario, type Simulator, type SimPeripheral } from '../../src/sim/index.js';

const open: Array<{ adapter?: Adapter; sim: Simulator }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.adapter?.close();
});

function scenario(peer: Partial<SimPeripheral> = {}): Scenario {
  return { name: 'fault', peripherals: [{ ...HEART_RATE_SENSOR, ...peer }] };
}

async function up(s: Scenario = scenario(), opts: { commandTimeout?: number } = {}) {
  const sim = createSimulator(s);
  const entry: { adapter?: Adapter; sim: Simulator } = { sim };
  open.push(entry);
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, ...opts });
  entry.adapter = adapter;
  return { sim, adapter };
}

async function connect(adapter: Adapter, sim: Simulator): Promise<{ conn: Connection; gatt: GattClient }> {
  const conn = await adapter.connect({ address: HEART_RATE_SENSOR.address, addressType: 'random' } as never, { timeout: 5000 });
  const gatt = conn.gatt;
  return { conn, gatt };
}

/** Close and check that the host left no timer behind. */
async function done(adapter: Adapter, sim: Simulator): Promise<void> {
  await adapter.close();
  expect(sim.clock.pendingTimers).toBe(0);
}

describe('controller faults', () => {
  test('a command answered with an error status rejects with HciStatusError naming it; the next attempt works', async () => {
    const { sim, adapter } = await up();
    sim.failCommand('leExtendedCreateConnection', 0x07);
    const err = await connect(adapter, sim).catch(e => e);
    expect(err).toBeInstanceOf(HciStatusError);
    expect((err as HciStatusError).status).toBe(0x07);
    const { conn } = await connect(adapter, sim);
    expect(conn.connected).toBe(true);
    await done(adapter, sim);
  });

  test('a silent controller: the command times out (TimeoutError, layer hci) and Adapter.open rejects', async () => {
    const sim = createSimulator(scenario());
    sim.failCommand('readBdAddr', 'silent');
    const err = await Adapter.open({ transport: sim.transport, clock: sim.clock, commandTimeout: 1000 }).catch(e => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).layer).toBe('hci');
    expect(sim.now()).toBeGreaterThanOrEqual(1000);
    expect(sim.now()).toBeLessThan(1100);
    expect(sim.clock.pendingTimers).toBe(0);
  });

  test('a dropped Command Complete times the command out; a corrupted event is counted and dropped', async () => {
    const { sim, adapter } = await up(scenario(), { commandTimeout: 500 });
    sim.inject({ direction: 'toHost', kind: 'commandComplete', action: 'drop' });
    await expect(adapter.reset()).rejects.toBeInstanceOf(TimeoutError);
    // Corrupt the Parameter_Total_Length of the next event: the host cannot decode it.
    sim.inject({ direction: 'toHost', type: 'event', action: { corrupt: { offset: 2, xor: 0x40 } } });
    await expect(adapter.reset()).rejects.toBeInstanceOf(TimeoutError);
    expect(adapter.host.stats.decodeErrors).toBe(1);
    const info = await adapter.reset();
    expect(info.address).toBe('C0:FF:EE:00:00:01');
    await done(adapter, sim);
  });

  test('Hardware Error: links are reported lost, the adapter re-initialises and works again', async () => {
    const { sim, adapter } = await up();
    const { conn } = await connect(adapter, sim);
    const reset = new Promise(resolve => adapter.once('reset', resolve));
    sim.hardwareError(0x42);
    const reason = await conn.closed;
    expect(reason.code).toBe(0x03);
    await reset;
    const again = await connect(adapter, sim);
    expect(again.conn.connected).toBe(true);
    await done(adapter, sim);
  });
});

describe('link faults', () => {
  test('supervision timeout: pending GATT work rejects with DisconnectedError 0x08, then reconnecting works', async () => {
    const { sim, adapter } = await up();
    const { conn, gatt } = await connect(adapter, sim);
    await gatt.services();
    const t0 = sim.now();
    sim.loseLink('Pulse HR');
    const read = gatt.readValue(0x0003);
    const err = await read.catch(e => e);
    expect(err).toBeInstanceOf(DisconnectedError);
    expect((await conn.closed).code).toBe(0x08);
    // The link dies one supervision timeout (host default 4 s) after the last good event.
    expect(sim.now() - t0).toBeGreaterThan(3900);
    expect(sim.now() - t0).toBeLessThan(4100);
    const again = await connect(adapter, sim);
    expect(new TextDecoder().decode(await again.gatt.readValue(0x0003))).toBe('Pulse HR');
    await done(adapter, sim);
  });

  test('the peer disconnects in the middle of discovery: services() rejects with DisconnectedError 0x13', async () => {
    const { sim, adapter } = await up(scenario({ behaviour: { disconnectOn: [{ opcode: 0x08 /* Read By Type */ }] } }));
    const { conn, gatt } = await connect(adapter, sim);
    const err = await gatt.services().catch(e => e);
    expect(err).toBeInstanceOf(DisconnectedError);
    expect((await conn.closed).code).toBe(0x13);
    await done(adapter, sim);
  });

  test('the peer disconnects after N answers: the (N+1)th request rejects with DisconnectedError', async () => {
    const { sim, adapter } = await up(scenario({ behaviour: { disconnectAfterRequests: 2, disconnectReason: 0x15 } }));
    const { conn, gatt } = await connect(adapter, sim);
    await gatt.readValue(0x0003);
    await gatt.readValue(0x0005);
    await expect(gatt.readValue(0x0003)).rejects.toBeInstanceOf(DisconnectedError);
    expect((await conn.closed).code).toBe(0x15);
    await done(adapter, sim);
  });

  test('a silent peer: the ATT request times out after 30 s (TimeoutError, layer att) and the link is dropped', async () => {
    const { sim, adapter } = await up(scenario({ behaviour: { ignore: [{ opcode: 0x0a, handle: 0x0003 }] } }));
    const { conn, gatt } = await connect(adapter, sim);
    const t0 = sim.now();
    const err = await gatt.readValue(0x0003).catch(e => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).layer).toBe('att');
    expect(sim.now() - t0).toBeGreaterThanOrEqual(30_000);
    expect(sim.now() - t0).toBeLessThan(30_100);
    expect((await conn.closed).code).toBe(0x16);
    await done(adapter, sim);
  });

  test('an ATT error on a chosen handle rejects with AttError carrying the code and handle', async () => {
    const { sim, adapter } = await up(scenario({ behaviour: { errors: [{ handle: 0x0003, error: 0x02 }] } }));
    const { gatt } = await connect(adapter, sim);
    const err = await gatt.readValue(0x0003).catch(e => e);
    expect(err).toBeInstanceOf(AttError);
    expect((err as AttError).errorCode).toBe(0x02);
    expect((err as AttError).handle).toBe(0x0003);
    expect(await gatt.readValue(0x0005)).toEqual(Uint8Array.of(0x41, 0x03));
    await done(adapter, sim);
  });

  test('a response delay costs virtual time, not wall time', async () => {
    const { sim, adapter } = await up(scenario({ behaviour: { delays: [{ opcode: 0x0a, ms: 2000 }] } }));
    const { gatt } = await connect(adapter, sim);
    const t0 = sim.now();
    const wall = performance.now();
    await gatt.readValue(0x0003);
    expect(sim.now() - t0).toBeGreaterThanOrEqual(2000);
    expect(performance.now() - wall).toBeLessThan(1000);
    await done(adapter, sim);
  });

  test('a dropped ATT response: the request times out like a silent peer', async () => {
    const { sim, adapter } = await up();
    const { gatt } = await connect(adapter, sim);
    sim.inject({ direction: 'toHost', attOpcode: 0x0b, action: 'drop' });
    await expect(gatt.readValue(0x0003)).rejects.toBeInstanceOf(TimeoutError);
    await done(adapter, sim);
  });
});

describe('protocol-breaking peers', () => {
  test('a wrong response opcode rejects the request with ProtocolError and frees the bearer', async () => {
    // Read Request answered with a Write Response (0x13).
    const { sim, adapter } = await up(scenario({ behaviour: { raw: [{ opcode: 0x0a, handle: 0x0003, respond: { hex: '13' } }] } }));
    const { gatt } = await connect(adapter, sim);
    await expect(gatt.readValue(0x0003)).rejects.toBeInstanceOf(ProtocolError);
    expect(await gatt.readValue(0x0005)).toEqual(Uint8Array.of(0x41, 0x03));
    await done(adapter, sim);
  });

  test('a hostile service list (element length 7) fails discovery with a typed error, never a crash', async () => {
    const bad = { hex: '1107' + '0100ffff001800' };
    const { sim, adapter } = await up(scenario({ behaviour: { raw: [{ opcode: 0x10, respond: bad }] } }));
    const { gatt } = await connect(adapter, sim);
    const err = await gatt.services().catch(e => e);
    expect(err instanceof ProtocolError || err instanceof DecodeError).toBe(true);
    await done(adapter, sim);
  });

  test('non-increasing handles in Read By Type end discovery with a typed error', async () => {
    // Characteristic declarations at 0x0005 then 0x0002 (going backwards) for the first Read By Type.
    const rsp = { hex: '0907' + '05000206002a00' + '02000203002a00' };
    const { sim, adapter } = await up(scenario({ behaviour: { raw: [{ opcode: 0x08, nth: 1, respond: rsp }] } }));
    const { gatt } = await connect(adapter, sim);
    const err = await gatt.services().catch(e => e);
    expect(err instanceof ProtocolError || err instanceof DecodeError).toBe(true);
    await done(adapter, sim);
  });
});

describe('flow control and timing', () => {
  test('a burst of writes without response never overruns the controller buffers', async () => {
    const { sim, adapter } = await up();
    const { gatt } = await connect(adapter, sim);
    await gatt.exchangeMtu();
    await Promise.all(Array.from({ length: 100 }, (_, i) => gatt.writeValue(0x0011, Uint8Array.of(i), false)));
    expect(sim.stats.aclOverruns).toBe(0);
    expect(sim.stats.commandOverruns).toBe(0);
    await done(adapter, sim);
  });

  test('an ATT round trip costs whole connection events: two per request at the chosen interval', async () => {
    const s = scenario();
    s.controller = { preferredIntervalMs: 7.5 };
    const { sim, adapter } = await up(s);
    const conn = await adapter.connect({ address: HEART_RATE_SENSOR.address, addressType: 'random' } as never,
      { timeout: 5000, intervalMin: 7.5, intervalMax: 50 });
    expect(conn.parameters.interval).toBe(7.5);
    const gatt = conn.gatt;
    await gatt.readValue(0x0003);
    const t0 = sim.now();
    for (let i = 0; i < 10; i++) await gatt.readValue(0x0003);
    // Sent in event N+1 after the previous answer arrived in event N, answered in N+2.
    expect(sim.now() - t0).toBe(10 * 2 * 7.5);
    await done(adapter, sim);
  });
});
