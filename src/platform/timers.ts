/**
 * Scheduling the protocol layers need beyond an injected Clock: a macrotask (run `fn` after pending
 * I/O, before the next timers), which the simulator's virtual-time runner uses between events so it
 * never starves the host's I/O. Node: setImmediate. A port uses its runtime's nearest equivalent
 * (a MessageChannel post, or `setTimeout(fn, 0)`).
 */
export function macrotask(fn: () => void): void {
  setImmediate(fn);
}
