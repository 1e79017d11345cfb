/**
 * Loads @stoprocent/noble's HCI layer (installed in tools/bench by `npm run bench`, not a blewire dependency) with a fake
 * HCI socket in place of @stoprocent/bluetooth-hci-socket, so identical packets can be fed to noble
 * and to blewire. Returns noble's `require` for its other modules (gap.js, gatt.js, acl-stream.js, …).
 */
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';

export class FakeHciSocket extends EventEmitter {
  write(): void {}
  setFilter(): void {}
  bindRaw(): void {}
  bindUser(): void {}
  start(): void {}
  stop(): void {}
  isDevUp(): boolean { return true; }
}

export function loadNobleWithFakeSocket(): { require: NodeRequire; Hci: new (opts: object) => any } {
  const require = createRequire(import.meta.url);
  const nobleHci = require.resolve('@stoprocent/noble/lib/hci-socket/hci.js');
  const socketPath = createRequire(nobleHci).resolve('@stoprocent/bluetooth-hci-socket');
  require.cache[socketPath] = { id: socketPath, filename: socketPath, loaded: true, exports: { loadDriver: () => FakeHciSocket } } as never;
  return { require, Hci: require(nobleHci) };
}
