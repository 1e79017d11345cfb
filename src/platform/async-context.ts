/**
 * A value that follows the asynchronous call chain (the deadline of an enclosing `within()`): Node's
 * AsyncLocalStorage. A port replaces `createAsyncContext` with its runtime's equivalent (the TC39
 * AsyncContext.Variable, Deno's AsyncLocalStorage); where there is none, a version that only sees
 * synchronous scopes keeps everything working except that a `within()` deadline no longer reaches
 * operations started after its first `await`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface AsyncContext<T> {
  /** Run `fn` with the context set to `value` (for `fn` and everything it starts). */
  run<R>(value: T, fn: () => R): R;
  /** The value of the innermost `run()` around the caller, if any. */
  get(): T | undefined;
}

export function createAsyncContext<T>(): AsyncContext<T> {
  const storage = new AsyncLocalStorage<T>();
  return {
    run: (value, fn) => storage.run(value, fn),
    get: () => storage.getStore(),
  };
}
