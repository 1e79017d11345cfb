// blewire central <-> blewire peripheral on one simulated air: the peripheral's host advertises with
// the advertising commands, the central's host scans, hears it and connects, both sides get the same
// connection object with their role, GATT flows both ways, and connectable advertising resumes after
// the connection (by policy) and again after the disconnect.
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import type { Connection } from '../../src/api/connection.js';

async function pair(controller: { extended?: boolean } = {}) {
  const air = new SimAir();
  const ps = createSimulator({ name: 'peripheral', peripherals: [], controller }, { air });
  const cs = createSimulator({ name: 'central', peripherals: [], controller }, { air });
  const peripheral = await Adapter.open({ transport: ps.transport });
  const central = await Adapter.open({ transport: cs.transport });
  return { air, ps, cs, peripheral, central };
}

describe.each([['extended', {}], ['legacy', { extended: false }]] as const)('on the air (%s controllers)', (_name, controller) => {
  test('the central finds the advertiser, connects, and both sides see one link with their roles', async () => {
    const { ps, peripheral, central } = await pair(controller);
    const set = await peripheral.advertise({ name: 'blewire-periph', services: [0x180f] });
    const accepted = peripheral.accept();
    const ad = await central.find({ name: 'blewire-periph', timeout: 5000 });
    expect(ad).toBeDefined();
    expect(ad!.address).toBe(ps.controller.address);
    expect(ad!.serviceUuids.map(String)).toContain('0000180f-0000-1000-8000-00805f9b34fb');
    expect(ad!.connectable).toBe(true);
    const conn = await central.connect(ad!);
    expect(conn.role).toBe('central');
    const incoming = (await accepted.next()).value as Connection;
    expect(incoming.role).toBe('peripheral');
    expect(incoming.address).toBe(central.controller.address);
    // GATT both ways: the central reads the peripheral's Device Name, the peripheral reads the central's.
    const c1 = await conn.characteristic(0x1800, 0x2a00);
    expect(new TextDecoder().decode(await c1.read())).toBe('blewire');
    const c2 = await incoming.characteristic(0x1800, 0x2a00);
    expect(new TextDecoder().decode(await c2.read())).toBe('blewire');
    // Connectable advertising ended with the connection and resumed by policy.
    expect(set.connections).toBe(1);
    await new Promise(r => setTimeout(r, 0));
    expect(set.enabled).toBe(true);
    const down = new Promise(r => incoming.once('disconnect', r));
    await conn.disconnect();
    expect(await down).toMatchObject({ code: 0x13 });
    await accepted.return!();
    await central.close();
    await peripheral.close();
  });
});

describe('an air whose last controller left', () => {
  test('runs again for a controller that joins afterwards: its host opens and finds an advertiser', async () => {
    const air = new SimAir();
    const first = await Adapter.open({ transport: createSimulator({ name: 'first', peripherals: [] }, { air }).transport });
    await first.close();
    // Every member gone: the air's clock stopped. Before the fix the next host's Reset never completed.
    expect(air.clock.isStopped).toBe(true);
    const at = air.clock.now();
    const ps = createSimulator({ name: 'peripheral', peripherals: [] }, { air });
    const peripheral = await Adapter.open({ transport: ps.transport });
    const central = await Adapter.open({ transport: createSimulator({ name: 'central', peripherals: [] }, { air }).transport });
    expect(air.clock.isStopped).toBe(false);
    await peripheral.advertise({ name: 'after-the-stop' });
    const ad = await central.find({ name: 'after-the-stop', timeout: 5000 });
    expect(ad?.address).toBe(ps.controller.address);
    expect(air.clock.now()).toBeGreaterThan(at); // time went on from where it stopped
    await central.close();
    await peripheral.close();
    expect(air.clock.isStopped).toBe(true);
  });
});
