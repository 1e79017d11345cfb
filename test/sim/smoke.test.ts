// The simulator brings a whole session up on virtual time: init, scan, connect, GATT discovery, disconnect.
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { GattClient } from '../../src/gatt/client.js';
import { createSimulator } from '../../src/sim/index.js';

describe('sim smoke', () => {
  test('init, scan, connect, discover, disconnect', async () => {
    const sim = createSimulator('demo');
    const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
    expect(adapter.controller.address).toBe('C0:FF:EE:00:00:01');
    const ad = await adapter.find({ name: 'Pulse HR', timeout: 5000 } as never);
    expect(ad?.address).toBe('D4:1E:35:7A:00:01');
    const conn = await adapter.connect(ad!, { timeout: 5000 });
    const gatt = new GattClient(conn.attChannel, { clock: sim.clock });
    const services = await gatt.services();
    expect(services.length).toBeGreaterThan(3);
    await conn.disconnect();
    await adapter.close();
    console.log(sim.now(), sim.stats);
    expect(sim.clock.pendingTimers).toBe(0);
  });
});
