// SimClock with a finite speed (virtual ms per wall ms): an entry pushed while the runner sleeps
// until a later one must wake it at its own time (a host command while a far timer is pending).
import { expect, test } from 'vitest';
import { SimClock } from '../../src/sim/clock.js';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator } from '../../src/sim/simulator.js';

test('speed 1: an earlier entry pushed after a far one runs at its own time, not the far one\'s', async () => {
  const clock = new SimClock({ speed: 1 });
  const far = new Promise<number>(resolve => clock.setTimeout(() => resolve(Date.now()), 5000));
  void far;
  const t0 = Date.now();
  const near = await new Promise<number>(resolve => clock.setTimeout(() => resolve(Date.now()), 30));
  expect(near - t0).toBeLessThan(1000);
  expect(clock.now()).toBeGreaterThanOrEqual(30);
  clock.stop();
});

test('speed 1: Adapter.open on the simulator completes in real time', async () => {
  const sim = createSimulator('demo', { speed: 1 });
  const t0 = Date.now();
  const adapter = await Adapter.open({ transport: sim.transport, timeout: 20_000 });
  expect(Date.now() - t0).toBeLessThan(5000);
  await adapter.close();
});
