/**
 * The one deadline / abort kit: `{ timeout, signal }` for every awaitable of the stack (adapter open,
 * reset and close, the link procedures, every GATT operation) and `within()` for several operations
 * under one deadline (aioble's `with connection.timeout(ms)`).
 *
 * One operation gets one AbortSignal that fires with
 * - TimeoutError(layer, operation, ms, hint) when its own deadline passes,
 * - the enclosing `within()`'s TimeoutError / AbortError when that scope ends first,
 * - the caller's signal's reason when it is a BlewireError (a within() signal handed on), otherwise
 *   AbortError(operation, reason).
 * Timers run only on the injected clock; `done()` clears the timer and every listener, whatever
 * happened. An operation with no timeout, no caller signal and no enclosing within() allocates
 * nothing (the GATT hot path: a notification-driven write loop).
 *
 * This merges what were two kits (`gap/operation.ts` for adapter and link procedures, `gatt/op.ts`
 * for GATT): both names of the options, `OperationOptions` and `OpOptions`, stay public.
 */
import type { Clock, TimerId } from './clock.js';
import { AbortError, BlewireError, TimeoutError, type Layer } from './errors.js';
import { createAsyncContext } from './platform/async-context.js';

/** Options every awaitable takes (ARCHITECTURE "Public API shape"). */
export interface OperationOptions {
  /** Milliseconds until the operation rejects with TimeoutError (each operation documents its default). */
  timeout?: number;
  /** Rejects the operation with AbortError (the signal's reason as `reason` and `cause`). */
  signal?: AbortSignal;
}

/** The GATT operations' name for the same options (public since the first release). */
export type OpOptions = OperationOptions;

/** What an operation's deadline is: its layer and name (for the error) and the default limit. */
export interface DeadlineSpec {
  layer: Layer;
  operation: string;
  /** Used when the caller gives no `timeout`; undefined: no limit of our own (lower layers' still apply). */
  defaultMs?: number;
  /** What to check or do when it times out (ends the TimeoutError's message). */
  hint?: string;
}

export interface Deadline {
  /** Aborted with the TimeoutError or AbortError the operation should reject with. */
  readonly signal: AbortSignal;
  /** Clear the timer and stop following the caller's signal and the enclosing scope (idempotent). */
  done(): void;
}

/** The deadline of the innermost `within()` around the current async context. */
const scope = createAsyncContext<AbortSignal>();

/** A signal that never fires: the operation has no deadline and no caller signal. */
const NEVER = new AbortController().signal;
const NOTHING = (): void => {};

/**
 * Whether a deadline's signal can fire at all. The one that cannot is shared by every operation with
 * no deadline: listening to it only piles listeners on one signal (MaxListenersExceededWarning).
 */
export function canAbort(signal: AbortSignal): boolean {
  return signal !== NEVER;
}

/** What an operation rejects with when `signal` (a caller's or a scope's) fired. */
function reasonOf(signal: AbortSignal, operation: string): Error {
  const r: unknown = signal.reason;
  return r instanceof BlewireError ? r : new AbortError(operation, r);
}

/** The rejection for a caller's signal that is already aborted (nothing may be sent then). */
export function abortedError(operation: string, signal: AbortSignal | undefined): BlewireError | undefined {
  if (!signal?.aborted) return undefined;
  const r: unknown = signal.reason;
  return r instanceof BlewireError ? r : new AbortError(operation, r);
}

/**
 * One signal for one operation: the caller's signal, the operation's deadline (`timeout`, else the
 * spec's default) and the enclosing within() scope, whichever fires first.
 */
export function deadline(clock: Clock, options: OperationOptions | undefined, spec: DeadlineSpec): Deadline {
  const outer = scope.get();
  const mine = options?.signal;
  const ms = options?.timeout ?? spec.defaultMs;
  if (!outer && !mine && ms === undefined) return { signal: NEVER, done: NOTHING };
  const ctl = new AbortController();
  let timer: TimerId | undefined;
  const onMine = (): void => ctl.abort(reasonOf(mine!, spec.operation));
  const onOuter = (): void => ctl.abort(reasonOf(outer!, spec.operation));
  const done = (): void => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    mine?.removeEventListener('abort', onMine);
    outer?.removeEventListener('abort', onOuter);
  };
  if (mine?.aborted) onMine();
  else if (outer?.aborted) onOuter();
  if (ctl.signal.aborted) return { signal: ctl.signal, done };
  mine?.addEventListener('abort', onMine, { once: true });
  outer?.addEventListener('abort', onOuter, { once: true });
  if (ms !== undefined) {
    timer = clock.setTimeout(() => {
      timer = undefined;
      ctl.abort(new TimeoutError(spec.layer, spec.operation, ms, spec.hint));
    }, ms);
  }
  return { signal: ctl.signal, done };
}

/**
 * Run `fn` under a deadline: rejects with the deadline's error as soon as it fires, even if `fn`
 * ignores its signal (the work behind `fn` is left to finish and its outcome is dropped). An
 * already-aborted caller signal rejects before `fn` runs, so nothing is sent.
 */
export async function guarded<T>(clock: Clock, options: OperationOptions | undefined, spec: DeadlineSpec,
  fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const d = deadline(clock, options, spec);
  try {
    if (d.signal.aborted) throw reasonOf(d.signal, spec.operation);
    return await raceAbort(fn(d.signal), d.signal, spec.operation);
  } finally {
    d.done();
  }
}

/** One GATT operation under its combined signal (`guarded` with layer 'gatt' and no default deadline). */
export function runOp<T>(clock: Clock, options: OperationOptions | undefined, what: string,
  fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return guarded(clock, options, { layer: 'gatt', operation: what }, fn);
}

/**
 * One AbortSignal for one GATT operation (caller's signal, timeout, enclosing within()); `done()`
 * must be called when the operation settles.
 */
export function opSignal(clock: Clock, options: OperationOptions | undefined, what: string): Deadline {
  return deadline(clock, options, { layer: 'gatt', operation: what });
}

/**
 * Several operations under one deadline: every operation started inside `fn` (in its async context)
 * is aborted when `ms` pass, and within() rejects with TimeoutError even if `fn` ignores its signal.
 * Nested within()s take the earlier deadline. `options.signal` aborts the whole scope the same way
 * (AbortError); an already-aborted one rejects before `fn` runs.
 */
export async function within<T>(clock: Clock, ms: number, fn: (signal: AbortSignal) => Promise<T>,
  options?: { signal?: AbortSignal }): Promise<T> {
  const what = `within(${ms})`;
  const mine = options?.signal;
  if (mine?.aborted) throw new AbortError(what, mine.reason);
  const ctl = new AbortController();
  const outer = scope.get();
  const onOuter = (): void => ctl.abort(outer!.reason);
  const onMine = (): void => ctl.abort(new AbortError(what, mine!.reason));
  if (outer?.aborted) ctl.abort(outer.reason);
  else outer?.addEventListener('abort', onOuter, { once: true });
  mine?.addEventListener('abort', onMine, { once: true });
  const timer = clock.setTimeout(() => ctl.abort(new TimeoutError('gatt', what, ms)), ms);
  try {
    return await raceAbort(scope.run(ctl.signal, () => fn(ctl.signal)), ctl.signal, 'within');
  } finally {
    clock.clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
    mine?.removeEventListener('abort', onMine);
  }
}

/** Settle with `p`, or reject as soon as `signal` aborts (the work behind `p` is left to finish). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal === NEVER) return p;
  return new Promise<T>((resolve, reject) => {
    const on = (): void => {
      p.catch(NOTHING);
      reject(reasonOf(signal, what));
    };
    if (signal.aborted) return on();
    signal.addEventListener('abort', on, { once: true });
    p.then(
      v => { signal.removeEventListener('abort', on); resolve(v); },
      e => { signal.removeEventListener('abort', on); reject(e as Error); },
    );
  });
}

/**
 * Run `fn` outside any within() scope: for work a link owns (a shared discovery, the MTU exchange)
 * that must not inherit the deadline of whichever caller happened to start it.
 */
export function outsideScope<T>(fn: () => T): T {
  return scope.run(undefined as unknown as AbortSignal, fn);
}
