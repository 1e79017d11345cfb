/**
 * The queue behind `adapter.accept()`: incoming connections handed to every open iterator, in
 * order. Bounded: an iterator whose loop body is slow keeps at most ACCEPT_QUEUE_LIMIT connections
 * waiting; older ones beyond it are dropped from its queue (they are live connections all the same,
 * announced by the adapter's 'connection' event, and the application may still use or drop them).
 */
export const ACCEPT_QUEUE_LIMIT = 32;

interface Waiter<T> {
  queue: T[];
  wake: (() => void) | undefined;
  done: boolean;
}

export class IncomingQueue<T> {
  private readonly waiters = new Set<Waiter<T>>();
  private closed = false;
  /** Connections dropped from a full iterator queue. */
  dropped = 0;

  push(item: T): void {
    for (const w of this.waiters) {
      if (w.queue.length >= ACCEPT_QUEUE_LIMIT) {
        w.queue.shift();
        this.dropped++;
      }
      w.queue.push(item);
      w.wake?.();
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters) {
      w.done = true;
      w.wake?.();
    }
  }

  iterate(signal?: AbortSignal): AsyncIterableIterator<T> {
    const w: Waiter<T> = { queue: [], wake: undefined, done: this.closed || signal?.aborted === true };
    const finish = (): void => {
      w.done = true;
      this.waiters.delete(w);
      signal?.removeEventListener('abort', onAbort);
      w.wake?.();
    };
    const onAbort = (): void => finish();
    if (!w.done) {
      this.waiters.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    }
    const it: AsyncIterableIterator<T> = {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          const item = w.queue.shift();
          if (item !== undefined) return { value: item, done: false };
          if (w.done) {
            finish();
            return { value: undefined, done: true };
          }
          await new Promise<void>(resolve => { w.wake = resolve; });
          w.wake = undefined;
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        finish();
        w.queue.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() { return it; },
    };
    return it;
  }
}
