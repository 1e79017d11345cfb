/**
 * The event emitter the public objects extend (Adapter, Connection): Node's EventEmitter. A port to a
 * runtime without `node:events` replaces this file with a class offering the same subset: `on`,
 * `once`, `off` / `removeListener`, `emit`, `listenerCount`, `removeAllListeners` (the `events`
 * package, or a small class over a Map of listener arrays).
 */
export { EventEmitter } from 'node:events';
