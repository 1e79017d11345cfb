/**
 * `blewire scan [--passive] [--duration S] [--service UUID] [--name-prefix P] [--json] [--transport T]`:
 * a live table of advertisers when stdout is a terminal, JSON Lines (one advertisement per line)
 * otherwise or with --json. Ends after --duration seconds or on Ctrl-C.
 */
import { parseArgs } from 'node:util';
import '../transports.js'; // --transport sim / replay:file
import { Adapter } from '../api/adapter.js';
import type { Advertisement, ScanOptions } from '../gap/scanner.js';
import { describeUuid } from '../codec/uuid.js';
import { TimeoutError } from '../errors.js';

const HELP = `usage: blewire scan [options]

  --passive           do not send scan requests (no scan responses)
  --duration S        stop after S seconds (default: until Ctrl-C)
  --service UUID      only devices advertising this service (repeatable; name or UUID)
  --name-prefix P     only devices whose name starts with P
  --duplicates        report every advertisement, not only new or changed ones
  --json              JSON Lines even on a terminal
  --transport T       hci0 | unix:/path | tcp:host:port | serial:… (default BLEWIRE_TRANSPORT)
  --capture FILE      record the session (btsnoop / pcap / pcapng by extension)`;

interface Row {
  address: string;
  type: string;
  name: string;
  rssi: number;
  services: string;
  manufacturer: string;
  lastSeen: number;
  count: number;
}

function summarise(ad: Advertisement): Pick<Row, 'name' | 'services' | 'manufacturer'> {
  const services = [...ad.serviceUuids, ...ad.serviceData.keys()].map(u => describeUuid(u).replace(/ \(.*\)$/, ''));
  const manufacturer = [...ad.manufacturerData.keys()].map(k => '0x' + k.toString(16).padStart(4, '0')).join(',');
  return { name: ad.name ?? '', services: [...new Set(services)].join(','), manufacturer };
}

/** Devices the live table remembers (least recently seen are forgotten first). */
const MAX_ROWS = 4096;

function table(rows: Row[], now: number): string {
  const head = ['ADDRESS', 'TYPE', 'NAME', 'RSSI', 'SERVICES', 'MANUFACTURER', 'SEEN'];
  const lines = rows.map(r => [r.address, r.type, r.name.slice(0, 24), String(r.rssi), r.services.slice(0, 36), r.manufacturer,
    `${((now - r.lastSeen) / 1000).toFixed(1)}s ago`]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map(l => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [fmt(head), ...lines.map(fmt)].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        passive: { type: 'boolean' }, duration: { type: 'string' }, service: { type: 'string', multiple: true },
        'name-prefix': { type: 'string' }, json: { type: 'boolean' }, transport: { type: 'string' },
        capture: { type: 'string' }, duplicates: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
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
  const json = args.json || !process.stdout.isTTY;
  const adapter = await Adapter.open({ transport: args.transport, capture: args.capture });
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  // `blewire scan --json | head`: the reader went away, so stop scanning instead of dying on EPIPE.
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') ac.abort();
  };
  process.stdout.on('error', onStdoutError);
  const opts: ScanOptions = { active: !args.passive, duplicates: args.duplicates ?? false, signal: ac.signal };
  if (args.service?.length) opts.services = args.service;
  if (args['name-prefix'] !== undefined) opts.namePrefix = args['name-prefix'];
  if (duration !== undefined) opts.duration = duration * 1000;

  const rows = new Map<string, Row>();
  let redraw: NodeJS.Timeout | undefined;
  const draw = () => {
    const sorted = [...rows.values()].sort((a, b) => b.rssi - a.rssi);
    // Fit the terminal like top: the strongest devices that fit, and how many more there are.
    const fit = Math.max(1, (process.stdout.rows || 40) - 4);
    const shown = sorted.slice(0, fit);
    const more = sorted.length > fit ? ` (${sorted.length - fit} more not shown)` : '';
    process.stdout.write('\x1b[H\x1b[2J' + table(shown, Date.now()) + `\n\n${rows.size} device(s)${more}; Ctrl-C to stop\n`);
  };
  if (!json) redraw = setInterval(draw, 500);
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
      rows.set(key, { address: ad.address, type: ad.addressType, rssi: ad.rssi, lastSeen: Date.now(), count: (prev?.count ?? 0) + 1,
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
    if (redraw) {
      clearInterval(redraw);
      draw();
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
