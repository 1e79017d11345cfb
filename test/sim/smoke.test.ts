// The simulator brings a whole session up on virtual time: init, scan, connect, GATT discovery, disconnect.
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator } from '../../src/sim/index.js';

describe('sim smoke', () => {
  test('init, scan, connect, discover, disconnect', async () => {
    const sim = createSimulator('demo');
    const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
    expect(adapter.controller.address).toBe('C0:FF:EE:00:00:01');
    const ad = await adapter.find({ name: 'Pulse HR', timeout: 5000 } as never);
    expect(ad?.address).toBe('D4:1E:35:7A:00:01');
    const conn = await adapter.connect(ad!, { timeout: 5000 });
    const services = await conn.services();
    expect(services.length).toBeGreaterThan(3);
    await conn.disconnect();
    await adapter.close();
    expect(sim.clock.pendingTimers).toBe(0);
  });
});

describe('sim transport registration', () => {
  test("openTransport('sim:demo') opens a simulator whose transport carries its virtual clock", async () => {
    const { openTransport } = await import('../../src/transport/open.js');
    let sim: import('../../src/sim/index.js').Simulator | undefined;
    const t = await openTransport('sim:demo', { onSimulator: (s: never) => { sim = s; } });
    expect(t.description).toBe('sim:demo (simulated controller)');
    expect(t.clock).toBe(sim!.clock);
    const adapter = await Adapter.open({ transport: t, clock: t.clock! });
    expect(adapter.controller.version?.coreVersion).toBe('5.3');
    await adapter.close();
    await expect(openTransport('sim:nowhere')).rejects.toThrow(/unknown scenario "nowhere"/);
  });
});
