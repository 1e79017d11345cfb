import { describe, expect, it } from 'vitest';
import { runGateway } from '../../../src/apps/gateway/cli.js';

// A signal that arrives while the gateway starts (start() awaits the MQTT.js import and the
// broker link) must stop it cleanly. With no SIGTERM listener installed yet, the kernel's default
// action would kill the process without `offline` and without a clean disconnect.
describe('blewire gateway: signals during start-up', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig} while start() is still running stops the gateway, exit code 0, no listener left`, async () => {
      const before = process.listenerCount(sig);
      const run = runGateway(['--mqtt', 'mqtt://127.0.0.1:1', '--transport', 'sim:demo', '--id', 'sig', '--log-level', 'error'], {});
      // runGateway has not yet awaited anything but start(): the handler must already be there.
      expect(process.listenerCount(sig)).toBe(before + 1);
      process.emit(sig, sig);
      await expect(run).resolves.toBe(0);
      expect(process.listenerCount('SIGTERM')).toBe(before);
      expect(process.listenerCount('SIGINT')).toBe(before);
    }, 30_000);
  }
});
