// Adapter.close() with more links than Node's default listener limit (10): one close deadline serves
// every link's disconnect, and no MaxListenersExceededWarning (or any other process warning) is
// printed. Twelve virtual peripherals on the simulator, all connected, then closed.
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator, HEART_RATE_SENSOR, type SimPeripheral } from '../../src/sim/index.js';

const warnings: Error[] = [];
const onWarning = (w: Error): void => { warnings.push(w); };
beforeEach(() => { warnings.length = 0; process.on('warning', onWarning); });
afterEach(() => { process.off('warning', onWarning); });

test('Adapter.close() with 12 links disconnects every one and prints no MaxListenersExceededWarning', async () => {
  const peripherals: SimPeripheral[] = Array.from({ length: 12 }, (_, i) => ({
    ...HEART_RATE_SENSOR, name: `hr-${i}`, address: `C0:00:00:00:01:${(0x10 + i).toString(16).toUpperCase()}`,
  }));
  const sim = createSimulator({ name: 'twelve links', peripherals });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
  const conns = [];
  for (const p of peripherals) conns.push(await adapter.connect({ address: p.address, addressType: 'random' } as never, { timeout: 5000 }));
  expect(adapter.connections.length).toBe(12);
  const reasons = conns.map(c => c.closed);
  await adapter.close();
  // Every link went down by our disconnect: the controller reports Connection Terminated By Local Host (0x16).
  expect((await Promise.all(reasons)).map(r => r.code)).toEqual(Array(12).fill(0x16));
  // Warnings are emitted on the next tick.
  await new Promise(r => setImmediate(r));
  expect(warnings.map(w => `${w.name}: ${w.message}`)).toEqual([]);
  expect(sim.clock.pendingTimers).toBe(0);
});
