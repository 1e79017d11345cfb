// SimClock stop() / resume() (a shared air's clock stops when its last controller leaves and resumes
// when another joins; the air case is in test/sim/air-peripheral.test.ts). With a finite speed the
// runner waits on a wall-clock timer; stop() cleared that timer but left the runner marked scheduled,
// so after resume() nothing ever ran again. These fail before the change.
import { expect, test } from 'vitest';
import { SimClock } from '../../src/sim/clock.js';

for (const speed of [Infinity, 1000]) {
  test(`SimClock (speed ${speed}): after stop() nothing set before fires, a runner scheduled before it stays idle, resume() runs new entries in order`, async () => {
    const clock = new SimClock({ speed });
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('old'), 5); // its runner (macrotask or wall timer) is pending when the clock stops
    clock.stop();
    clock.setTimeout(() => fired.push('while stopped'), 1);
    clock.resume();
    const t = clock.now();
    await new Promise<void>(resolve => {
      clock.setTimeout(() => fired.push('b'), 2);
      clock.setTimeout(() => fired.push('a'), 1);
      clock.setTimeout(() => { fired.push('c'); resolve(); }, 3);
    });
    expect(fired).toEqual(['a', 'b', 'c']);
    expect(clock.now()).toBe(t + 3);
    expect(clock.pendingTimers).toBe(0);
    clock.stop();
  }, 10_000);
}
