/**
 * `blewire scan [--passive] [--duration S] [--service UUID] [--name-prefix P] [--json] [--transport T]`:
 * a live table of advertisers when stdout is a terminal (scan-table.ts draws it to the terminal's
 * width), JSON Lines (one advertisement per line) otherwise or with --json. Ends after --duration
 * seconds, on Ctrl-C or on `q`.
 */
import { parseArgs } from 'node:util';
import '../transports.js'; // --transport sim / replay:file
import { Adapter } from '../api/adapter.js';
import type { Advertisement, ScanOptions } from '../gap/scanner.js';
import { describeUuid } from '../codec/uuid.js';
import { TimeoutError } from '../errors.js';
import { TRANSPORT_FORMS } from './help.js';
import { DEFAULT_STALE_MS, renderScanTable, SORT_KEYS, type ScanDevice, type SortKey } from './scan-table.js';

const HELP = `usage: blewire scan [options]

  --passive           do not send scan requests (no scan responses)
  --duration S        stop after S seconds (default: until Ctrl-C or q)
  --service UUID      only devices advertising this service (repeatable; name or UUID)
  --name-prefix P     only devices whose name starts with P
  --duplicates        report every advertisement, not only new or changed ones
  --sort KEY          order of the live table: rssi (default), name or seen (last seen first);
                      keys while it runs: r rssi, n name, s last seen, q quit
  --stale S           mark devices not heard for S seconds (default ${DEFAULT_STALE_MS / 1000})
  --json              JSON Lines even on a terminal
  --transport T       the controller (default BLEWIRE_TRANSPORT); forms below
  --capture FILE      record the session (btsnoop / pcap / pcapng by extension)

${TRANSPORT_FORMS}`;

function summarise(ad: Advertisement): Pick<ScanDevice, 'name' | 'services' | 'manufacturer'> {
  const services = [...ad.serviceUuids, ...ad.serviceData.keys()].map(u => describeUuid(u).replace(/ \(.*\)$/, ''));
  const manufacturer = [...ad.manufacturerData.keys()].map(k => '0x' + k.toString(16).padStart(4, '0')).join(',');
  return { name: ad.name ?? '', services: [...new Set(services)].join(','), manufacturer };
}

/** Devices the live table remembers (least recently seen are forgotten first). */
const MAX_ROWS = 4096;

/** The sort key a key press selects. */
const KEYS: Record<string, SortKey> = { r: 'rssi', n: 'name', s: 'seen' };

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        passive: { type: 'boolean' }, duration: { type: 'string' }, service: { type: 'string', multiple: true },
        'name-prefix': { type: 'string' }, json: { type: 'boolean' }, transport: { type: 'string' },
        capture: { type: 'string' }, duplicates: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        sort: { type: 'string' }, stale: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`blewire scan: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const duration = args.duration === undefined ? undefined : Number(args.duration);
  if (duration !== undefined && !(duration > 0)) {
    console.error('blewire scan: --duration must be a positive number of seconds');
    return 2;
  }
  if (args.sort !== undefined && !SORT_KEYS.includes(args.sort as SortKey)) {
    console.error(`blewire scan: --sort is one of ${SORT_KEYS.join(', ')}, not ${JSON.stringify(args.sort)}`);
    return 2;
  }
  let sort: SortKey = (args.sort as SortKey | undefined) ?? 'rssi';
  const stale = args.stale === undefined ? DEFAULT_STALE_MS / 1000 : Number(args.stale);
  if (!(stale > 0)) {
    console.error('blewire scan: --stale must be a positive number of seconds');
    return 2;
  }
  const json = args.json || !process.stdout.isTTY;
  // "scanning…" at once: before the transport opens and the controller resets, which take a while.
  if (!json) process.stdout.write('\x1b[H\x1b[2J' + renderScanTable([], process.stdout.columns || 80, 0, { sort }).join('\n') + '\n');
  const adapter = await Adapter.open({ transport: args.transport, capture: args.capture });
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  // `blewire scan --json | head`: the reader went away, so stop scanning instead of dying on EPIPE.
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') ac.abort();
  };
  process.stdout.on('error', onStdoutError);
  // The table needs every report (time since the last one, current RSSI), so it always asks for
  // duplicates and keeps one row per device itself; JSON Lines report only new or changed data unless
  // --duplicates.
  const opts: ScanOptions = { active: !args.passive, duplicates: !json || (args.duplicates ?? false), signal: ac.signal };
  if (args.service?.length) opts.services = args.service;
  if (args['name-prefix'] !== undefined) opts.namePrefix = args['name-prefix'];
  if (duration !== undefined) opts.duration = duration * 1000;

  const rows = new Map<string, ScanDevice>();
  let redraw: NodeJS.Timeout | undefined;
  const draw = (live: boolean): void => {
    const lines = renderScanTable([...rows.values()], process.stdout.columns || 80, adapter.clock.now(),
      { height: process.stdout.rows || 24, sort, staleMs: stale * 1000, live });
    // Home, the table with each line cleared to its end, then the rest of the screen cleared: no flicker.
    process.stdout.write((live ? '\x1b[H' : '') + lines.map(l => l + (live ? '\x1b[K' : '')).join('\n') + (live ? '\n\x1b[J' : '\n'));
  };
  // Keys while the table runs (a terminal on stdin only): r / n / s re-sort, q and Ctrl-C stop.
  const stdin = process.stdin;
  const keys = !json && stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  const onKey = (data: Buffer): void => {
    for (const ch of data.toString('utf8')) {
      if (ch === 'q' || ch === '\x03') ac.abort();
      else if (KEYS[ch.toLowerCase()]) { sort = KEYS[ch.toLowerCase()]!; draw(true); }
    }
  };
  if (!json) {
    draw(true);
    redraw = setInterval(() => draw(true), 500);
    if (keys) {
      stdin.setRawMode(true);
      stdin.on('data', onKey);
      stdin.resume();
    }
  }
  try {
    for await (const ad of adapter.scan(opts)) {
      if (ac.signal.aborted) break;
      if (json) {
        process.stdout.write(JSON.stringify(ad.toJSON()) + '\n');
        continue;
      }
      const key = `${ad.addressType}/${ad.address}`;
      const prev = rows.get(key);
      // Bounded like the adapter's registry: a day in a crowded hall must not grow the table forever.
      if (!rows.has(key) && rows.size >= MAX_ROWS) {
        let oldest: string | undefined;
        let at = Infinity;
        for (const [k, r] of rows) if (r.lastSeen < at) { at = r.lastSeen; oldest = k; }
        if (oldest !== undefined) rows.delete(oldest);
      }
      rows.set(key, { address: ad.address, type: ad.addressType, rssi: ad.rssi, lastSeen: ad.timestamp, count: (prev?.count ?? 0) + 1,
        ...summarise(ad) });
    }
    // The scan ended: wait for the controller to confirm it stopped. A controller that fell silent
    // during the scan leaves the stop unanswered (TimeoutError): the scan heard nothing since, and
    // exiting 0 would hide that.
    await adapter.scanner.settle().catch(() => undefined);
  } catch (e) {
    if (!ac.signal.aborted) throw e;
    await adapter.scanner.settle().catch(() => undefined);
  } finally {
    process.off('SIGINT', onSigint);
    process.stdout.off('error', onStdoutError);
    if (keys) {
      stdin.off('data', onKey);
      stdin.setRawMode(false);
      stdin.pause();
    }
    if (redraw) {
      clearInterval(redraw);
      process.stdout.write('\x1b[H\x1b[2J');
      draw(false); // the final table stays on the screen, without the "scanning…" lines
    }
    await adapter.close();
  }
  const last = adapter.scanner.lastError;
  if (last instanceof TimeoutError) {
    console.error(`blewire scan: the controller stopped answering (${last.message}), so devices heard after that are missing; ` +
      'check the controller (blewire doctor) and try again');
    return 1;
  }
  return 0;
}
