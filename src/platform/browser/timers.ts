/**
 * macrotask() for a browser build: a MessageChannel post runs after pending I/O and rendering work,
 * like setImmediate, without setTimeout(0)'s 4 ms clamp on nested calls. Same export as ../timers.ts.
 */
/** The browser's MessagePort as used here (setting onmessage also starts the port). */
interface Port { onmessage: (() => void) | null; postMessage(value: unknown): void }

const queue: (() => void)[] = [];
let ports: { port1: Port; port2: Port } | undefined;

export function macrotask(fn: () => void): void {
  if (!ports) {
    ports = new MessageChannel() as unknown as { port1: Port; port2: Port };
    ports.port1.onmessage = () => { queue.shift()?.(); };
  }
  queue.push(fn);
  ports.port2.postMessage(0);
}
