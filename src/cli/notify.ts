/**
 * `blewire notify <address> <uuid> [--count N] [--indicate] [--json] [--service UUID]`: subscribe and
 * print each value (JSON Lines with --json) until N values arrived, Ctrl-C, or the link drops.
 */
import { toHex } from '../bytes/hex.js';
import { findCharacteristic, formatValue, parseArgs, USAGE_COMMON, withSession } from './explore.js';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['count']);
  const [address, charUuid] = args.positional;
  if (!address || !charUuid) {
    console.error(`usage: blewire notify <address> <characteristic-uuid> [--count N] [--indicate] [--json] [--service UUID] ${USAGE_COMMON}`);
    return 2;
  }
  const count = Number(args.flags.get('count') ?? Infinity);
  const service = args.flags.get('service');
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once('SIGINT', onSigint);
  try {
    return await withSession(address, args.open, async ({ gatt }) => {
      const c = await findCharacteristic(gatt, charUuid, typeof service === 'string' ? service : undefined);
      let n = 0;
      const it = c.notifications({ indicate: args.flags.has('indicate') })[Symbol.asyncIterator]();
      const stopped = new Promise<IteratorResult<Uint8Array>>(resolve => stop.signal.addEventListener('abort', () => resolve({ value: undefined, done: true }), { once: true }));
      try {
        while (n < count) {
          const r = await Promise.race([it.next(), stopped]);
          if (r.done) break;
          n++;
          const v = r.value;
          console.log(args.json ? JSON.stringify({ t: new Date().toISOString(), handle: c.handle, value: toHex(v) }) : formatValue(v));
        }
      } finally {
        await it.return?.();
      }
      return 0;
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
}
