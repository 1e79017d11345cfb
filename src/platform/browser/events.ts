/**
 * EventEmitter for a browser build: the `events` package, Node's EventEmitter API for other runtimes
 * (bundled into the build; nothing to install for the page). Same export as ../events.ts.
 */
export { EventEmitter } from 'events';
