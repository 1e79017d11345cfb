/**
 * `blewire notify <address> <uuid> [--count N] [--indicate] [--json] [--service UUID]`: subscribe and
 * print each value (JSON Lines with --json) until N values arrived, Ctrl-C, or the link drops.
 */
import {
  characteristicCommandArgs, checkCharacteristicTarget, findCharacteristic, jsonValue, parseArgs, presentationOf, showValue, USAGE_COMMON,
  withSession,
} from './explore.js';
import { checkInteger } from './args.js';
import { stdoutSignal } from './stdout.js';

/** Local wall-clock time of arrival, to the millisecond: `14:03:07.412`. */
const clock = (d: Date): string =>
  `${[d.getHours(), d.getMinutes(), d.getSeconds()].map(x => String(x).padStart(2, '0')).join(':')}.${String(d.getMilliseconds()).padStart(3, '0')}`;

const USAGE = `usage: blewire notify <address> <characteristic-uuid> [--count N] [--indicate] [--json] [--service UUID] ${USAGE_COMMON}`;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['count']);
  const positional = characteristicCommandArgs(args, USAGE);
  if (typeof positional === 'number') return positional;
  const [address, charUuid] = positional as [string, string];
  const countFlag = args.flags.get('count');
  const count = countFlag === undefined ? Infinity : checkInteger(countFlag === true ? '' : countFlag, '--count', 0, 1);
  const service = checkCharacteristicTarget(address, charUuid, args);
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once('SIGINT', onSigint);
  // `blewire notify … | head -3`: the reader went away, so unsubscribe and disconnect, quietly.
  const piped = stdoutSignal();
  const onPipeClosed = (): void => stop.abort();
  piped.addEventListener('abort', onPipeClosed, { once: true });
  try {
    return await withSession(address, args.open, async ({ gatt }) => {
      const c = await findCharacteristic(gatt, charUuid, service);
      const format = await presentationOf(c);
      let n = 0;
      const it = c.notifications({ indicate: args.flags.has('indicate') })[Symbol.asyncIterator]();
      const stopped = new Promise<IteratorResult<Uint8Array>>(resolve => {
        if (stop.signal.aborted) resolve({ value: undefined, done: true });
        stop.signal.addEventListener('abort', () => resolve({ value: undefined, done: true }), { once: true });
      });
      try {
        while (n < count) {
          const r = await Promise.race([it.next(), stopped]);
          if (r.done) break;
          n++;
          const v = r.value;
          const now = new Date();
          console.log(args.json ? JSON.stringify({ t: now.toISOString(), handle: c.handle, ...jsonValue(c.uuid, v, format) })
            : `${clock(now)}  ${showValue(c.uuid, v, format)}`);
        }
      } finally {
        await it.return?.();
      }
      return 0;
    });
  } finally {
    process.off('SIGINT', onSigint);
    piped.removeEventListener('abort', onPipeClosed);
  }
}
