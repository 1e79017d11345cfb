/**
 * createAsyncContext() for a browser build: browsers have no AsyncLocalStorage (the TC39
 * AsyncContext proposal is not shipped), so the value is seen by synchronous code inside `run()` only.
 * Everything keeps working; a `within()` deadline just does not reach operations that start after its
 * first `await` (they keep their own timeouts). Same exports as ../async-context.ts.
 */
import type { AsyncContext } from '../async-context.js';

export type { AsyncContext };

export function createAsyncContext<T>(): AsyncContext<T> {
  let current: T | undefined;
  let depth = 0;
  return {
    run<R>(value: T, fn: () => R): R {
      const saved = current;
      current = value;
      depth++;
      try { return fn(); } finally { current = saved; depth--; }
    },
    get: () => (depth > 0 ? current : undefined),
  };
}
