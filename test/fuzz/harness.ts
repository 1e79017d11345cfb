/**
 * Shared machinery of the whole-stack fuzz tests: a tripwire for exceptions that escape to the
 * process, tracking of public promises (each must settle, and reject only with a BlewireError), and
 * a driver that runs virtual time forward until a promise settles — and calls it a hang when no timer
 * is left that could ever settle it.
 */
import { FakeClock } from '../../src/clock.js';
import { BlewireError } from '../../src/errors.js';

/** Let every queued microtask (and the ones they queue) run: one macrotask turn, no wall time. */
export function flush(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}

/**
 * Records 'uncaughtException' / 'unhandledRejection' while armed. One Tripwire serves every case of a
 * property: call `reset()` as each case starts, or one escape fails every later case too (and fast-check
 * then "shrinks" to an innocent input: seed 1749203 reported `[{}, false]`, an all-honest bring-up).
 */
export class Tripwire {
  readonly escaped: unknown[] = [];
  /** Forget what earlier cases let escape. */
  reset(): void {
    this.escaped.length = 0;
  }
  private readonly onError = (e: unknown): void => { this.escaped.push(e); };
  arm(): void {
    process.on('uncaughtException', this.onError);
    process.on('unhandledRejection', this.onError);
  }
  disarm(): void {
    process.off('uncaughtException', this.onError);
    process.off('unhandledRejection', this.onError);
  }
}

export interface Tracked {
  name: string;
  settled: boolean;
  error?: unknown;
}

/** Public promises of one run: each must settle, and reject only with a typed BlewireError. */
export class Tracker {
  readonly ops: Tracked[] = [];
  track<T>(name: string, p: Promise<T>): Promise<T | undefined> {
    const t: Tracked = { name, settled: false };
    this.ops.push(t);
    return p.then(v => { t.settled = true; return v; }, e => { t.settled = true; t.error = e; return undefined; });
  }
  get pending(): string[] {
    return this.ops.filter(o => !o.settled).map(o => o.name);
  }
  /** Rejections that are not BlewireErrors (TypeError, RangeError, …): each one is a bug. */
  get untyped(): string[] {
    return this.ops.filter(o => o.error !== undefined && !(o.error instanceof BlewireError))
      .map(o => `${o.name}: ${String((o.error as Error)?.stack ?? o.error)}`);
  }
}

/**
 * Run virtual time until `done()` is true: flush microtasks, then fire the next due timer. Returns
 * false if nothing is left that could make progress (no timer pending) or `limitMs` of virtual time
 * passed: a hang.
 */
export async function driveUntil(clock: FakeClock, done: () => boolean, limitMs = 600_000): Promise<boolean> {
  const end = clock.now() + limitMs;
  let idle = 0;
  for (;;) {
    await flush();
    if (done()) return true;
    const next = clock.nextDue();
    if (next === undefined || next > end) {
      // Module loading (Adapter.open imports the transport layer) takes a few turns of real I/O.
      if (++idle < 20) continue;
      return false;
    }
    idle = 0;
    clock.fireNext(next);
  }
}

/** Advance virtual time by `ms`, firing timers one at a time with microtasks flushed in between. */
export async function advance(clock: FakeClock, ms: number): Promise<void> {
  const end = clock.now() + ms;
  for (;;) {
    await flush();
    const next = clock.nextDue();
    if (next === undefined || next > end) break;
    clock.fireNext(next);
  }
  clock.moveTo(end);
  await flush();
}

/** Settle `p` by driving virtual time; throws if it hangs. */
export async function drive<T>(clock: FakeClock, p: Promise<T>, what: string, limitMs = 600_000): Promise<T> {
  let settled = false;
  let value: T | undefined;
  let error: unknown;
  let failed = false;
  p.then(v => { settled = true; value = v; }, e => { settled = true; failed = true; error = e; });
  if (!(await driveUntil(clock, () => settled, limitMs))) throw new Error(`${what} never settled (virtual time ${clock.now()} ms)`);
  if (failed) throw error;
  return value as T;
}
