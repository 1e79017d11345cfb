/**
 * `{ timeout, signal }` for the adapter's and the links' own operations (open, reset, close,
 * disconnect, connection update, data length, PHY), as GATT has OpOptions: one AbortSignal per
 * operation that fires with TimeoutError(layer, operation, ms, hint) when its deadline passes or with
 * AbortError(operation, reason) when the caller's signal does. Timers only on the injected clock;
 * `done()` clears the timer and the listener on the caller's signal whatever happened.
 */
import type { Clock } from '../clock.js';
import { AbortError, TimeoutError, type Layer } from '../errors.js';

/** Options every adapter and link operation takes (ARCHITECTURE "Public API shape"). */
export interface OperationOptions {
  /** Milliseconds until the operation rejects with TimeoutError (each operation documents its default). */
  timeout?: number;
  /** Rejects the operation with AbortError (the signal's reason as `reason` and `cause`). */
  signal?: AbortSignal;
}

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
  /** Clear the timer and stop following the caller's signal (idempotent). */
  done(): void;
}

/** The rejection for a caller's signal that is already aborted (nothing may be sent then). */
export function abortedError(operation: string, signal: AbortSignal | undefined): AbortError | undefined {
  return signal?.aborted ? new AbortError(operation, signal.reason) : undefined;
}

/** One signal for one operation: the caller's signal and the operation's deadline. */
export function deadline(clock: Clock, options: OperationOptions | undefined, spec: DeadlineSpec): Deadline {
  const ctl = new AbortController();
  const mine = options?.signal;
  const ms = options?.timeout ?? spec.defaultMs;
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  const onAbort = (): void => ctl.abort(new AbortError(spec.operation, mine!.reason));
  const done = (): void => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    mine?.removeEventListener('abort', onAbort);
  };
  if (mine?.aborted) {
    ctl.abort(new AbortError(spec.operation, mine.reason));
    return { signal: ctl.signal, done };
  }
  mine?.addEventListener('abort', onAbort, { once: true });
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
  const early = abortedError(spec.operation, options?.signal);
  if (early) throw early;
  const d = deadline(clock, options, spec);
  try {
    const work = fn(d.signal);
    return await new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        work.catch(() => undefined);
        reject(d.signal.reason as Error);
      };
      if (d.signal.aborted) return onAbort();
      d.signal.addEventListener('abort', onAbort, { once: true });
      work.then(
        v => { d.signal.removeEventListener('abort', onAbort); resolve(v); },
        e => { d.signal.removeEventListener('abort', onAbort); reject(e as Error); },
      );
    });
  } finally {
    d.done();
  }
}
