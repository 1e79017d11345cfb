// The one deadline / abort kit (src/operation.ts), which both the link procedures and GATT use: the
// rules that were different in the two kits it replaces are pinned here.
import { expect, test } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { AbortError, TimeoutError } from '../../src/errors.js';
import { deadline, guarded, runOp, within } from '../../src/operation.js';

const never = <T>(): Promise<T> => new Promise<T>(() => {});

test('an operation with no timeout, no signal and no within() arms no timer and never aborts', async () => {
  const clock = new FakeClock();
  const d = deadline(clock, undefined, { layer: 'gap', operation: 'x' });
  expect(clock.pendingTimers).toBe(0);
  expect(d.signal.aborted).toBe(false);
  d.done();
  await expect(runOp(clock, undefined, 'read', async () => 7)).resolves.toBe(7);
  expect(clock.pendingTimers).toBe(0);
});

test('a link procedure inside within() is bounded by it (one scope for GATT and link procedures)', async () => {
  const clock = new FakeClock();
  const p = within(clock, 1_000, () => guarded(clock, undefined, { layer: 'gap', operation: 'connection update', defaultMs: 40_000 }, never));
  const inner = expect(p).rejects.toMatchObject({ code: 'ETIMEDOUT', layer: 'gatt', operation: 'within(1000)' });
  clock.advance(1_000);
  await inner;
  expect(clock.pendingTimers).toBe(0);
});

test('the deadline names the layer and the operation; done() clears the timer', async () => {
  const clock = new FakeClock();
  const p = guarded(clock, { timeout: 50 }, { layer: 'gap', operation: 'set phy', hint: 'check the PHY' }, never);
  const check = expect(p).rejects.toSatisfy(e => e instanceof TimeoutError && e.layer === 'gap' && e.message.includes('check the PHY'));
  clock.advance(50);
  await check;
  expect(clock.pendingTimers).toBe(0);
});

test('a caller signal rejects with AbortError carrying its reason; a BlewireError reason is passed on as is', async () => {
  const clock = new FakeClock();
  const ctl = new AbortController();
  const p = runOp(clock, { signal: ctl.signal }, 'write', never);
  ctl.abort('user gave up');
  await expect(p).rejects.toSatisfy(e => e instanceof AbortError && e.reason === 'user gave up');
  const timeout = new TimeoutError('gatt', 'within(5)', 5);
  const p2 = guarded(clock, { signal: AbortSignal.abort(timeout) }, { layer: 'gap', operation: 'disconnect' }, never);
  await expect(p2).rejects.toBe(timeout);
  // Already aborted: fn never runs, so nothing is sent.
  let ran = false;
  await expect(guarded(clock, { signal: AbortSignal.abort() }, { layer: 'hci', operation: 'reset' }, async () => { ran = true; })).rejects.toBeInstanceOf(AbortError);
  expect(ran).toBe(false);
});
