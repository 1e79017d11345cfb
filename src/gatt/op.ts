import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../clock.js';
import { AbortError, BlewireError, TimeoutError } from '../errors.js';

/** Every GATT operation takes these (ARCHITECTURE "Public API shape"). */
export interface OpOptions {
  /** Milliseconds until the operation rejects with TimeoutError (the ATT bearer's own 30 s limit still applies). */
  timeout?: number;
  signal?: AbortSignal;
}

/** The deadline of the innermost `within()` around the current async context. */
const scope = new AsyncLocalStorage<AbortSignal>();

/**
 * One AbortSignal for one operation: the caller's signal, its timeout, and any enclosing within()
 * deadline. `done()` must be called when the operation settles (it clears the timer).
 */
export function opSignal(clock: Clock, options: OpOptions | undefined, what: string): { signal: AbortSignal; done: () => void } {
  const outer = scope.getStore();
  const mine = options?.signal;
  const timeout = options?.timeout;
  if (!outer && timeout === undefined) {
    return { signal: mine ?? NEVER, done: () => {} };
  }
  const ctl = new AbortController();
  const cleanups: Array<() => void> = [];
  const follow = (s: AbortSignal | undefined): void => {
    if (!s) return;
    if (s.aborted) { ctl.abort(s.reason); return; }
    const on = (): void => ctl.abort(s.reason);
    s.addEventListener('abort', on, { once: true });
    cleanups.push(() => s.removeEventListener('abort', on));
  };
  follow(mine);
  follow(outer);
  if (timeout !== undefined && !ctl.signal.aborted) {
    const t = clock.setTimeout(() => ctl.abort(new TimeoutError('gatt', what, timeout)), timeout);
    cleanups.push(() => clock.clearTimeout(t));
  }
  return { signal: ctl.signal, done: () => { for (const c of cleanups.splice(0)) c(); } };
}

/** Run `fn` for one operation under its combined signal. */
export async function runOp<T>(clock: Clock, options: OpOptions | undefined, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const { signal, done } = opSignal(clock, options, what);
  try {
    if (signal.aborted) throw reasonOf(signal, what);
    return await raceAbort(fn(signal), signal, what);
  } finally {
    done();
  }
}

/**
 * Several operations under one deadline (aioble's `with connection.timeout(ms)`): every GATT
 * operation started inside `fn` (in its async context) is aborted when `ms` pass, and within()
 * rejects with TimeoutError even if `fn` ignores its signal. Nested within()s take the earlier
 * deadline. `options.signal` aborts the whole scope the same way (AbortError); an already-aborted
 * one rejects before `fn` runs.
 */
export async function within<T>(clock: Clock, ms: number, fn: (signal: AbortSignal) => Promise<T>,
  options?: { signal?: AbortSignal }): Promise<T> {
  const mine = options?.signal;
  if (mine?.aborted) throw new AbortError(`within(${ms})`, mine.reason);
  const ctl = new AbortController();
  const outer = scope.getStore();
  const onOuter = (): void => ctl.abort(outer!.reason);
  const onMine = (): void => ctl.abort(new AbortError(`within(${ms})`, mine!.reason));
  if (outer?.aborted) ctl.abort(outer.reason);
  else outer?.addEventListener('abort', onOuter, { once: true });
  mine?.addEventListener('abort', onMine, { once: true });
  const timer = clock.setTimeout(() => ctl.abort(new TimeoutError('gatt', `within(${ms})`, ms)), ms);
  try {
    return await raceAbort(scope.run(ctl.signal, () => fn(ctl.signal)), ctl.signal, 'within');
  } finally {
    clock.clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
    mine?.removeEventListener('abort', onMine);
  }
}

const NEVER = new AbortController().signal;

function reasonOf(signal: AbortSignal, what: string): Error {
  const r: unknown = signal.reason;
  return r instanceof BlewireError ? r : new AbortError(what, r);
}

/** Settle with `p`, or reject as soon as `signal` aborts (the work behind `p` is left to finish). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal === NEVER) return p;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      p.catch(() => {});
      reject(reasonOf(signal, what));
      return;
    }
    const on = (): void => {
      p.catch(() => {});
      reject(reasonOf(signal, what));
    };
    signal.addEventListener('abort', on, { once: true });
    p.then(
      v => { signal.removeEventListener('abort', on); resolve(v); },
      e => { signal.removeEventListener('abort', on); reject(e); },
    );
  });
}
