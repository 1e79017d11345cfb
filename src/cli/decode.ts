/**
 * `blewire decode <capture> [--json]`: a capture (btsnoop, pcap, pcapng) decoded like `btmon -r`, or
 * as JSON Lines (format in the README). Streams: a large file is never loaded at once.
 */
import { stat } from 'node:fs/promises';
import { readCaptureFile } from '../capture/index.js';
import { FileError } from '../errors.js';
import { fsReason } from './args.js';
import { stdoutClosed } from './stdout.js';
import { decodeRecordsAsync, toJsonLine, type DecodedLine } from '../inspect/decode.js';
import { basename } from 'node:path';
// --pairing and --chart load their modules when asked (the SMP toolbox and the chart are not needed
// to print a capture).

const HELP = `usage: blewire decode <capture> [--json]
       blewire decode --pairing <capture> [--passkey N] [--json]
       blewire decode --chart out.svg <capture> [--gap MS]

Decodes a btsnoop (H4 or Linux monitor), pcap (LINKTYPE 201/254) or pcapng capture:
HCI commands and events, ACL, reassembled L2CAP with ATT / SMP / signalling, advertising data.
  --json   JSON Lines: one line per record and one per reassembled L2CAP PDU
  --pairing  for every SMP pairing: method, IO capabilities, confirm / DHKey check verdicts, the
             derived keys against the LTK the host gave the controller, the recovered passkey, and
             the weaknesses (with --json: one object per pairing)
  --passkey N  the passkey of a Passkey Entry pairing, if known
  --chart FILE  draw the capture as a message sequence chart (SVG, written atomically, mode 0600):
             host, controller and one peer lane per connection; ATT requests paired with their
             responses and the round trip annotated; silences longer than --gap MS (default 1000)`;

function stamp(us: number, t0: number): string {
  return ((us - t0) / 1e6).toFixed(6).padStart(12);
}

const ARROW = { tx: '<', rx: '>' } as const;
const TYPE_LABEL: Record<string, string> = {
  command: 'HCI Command', event: 'HCI Event', acl: 'ACL Data', sco: 'SCO Data', iso: 'ISO Data',
  unknown: 'H4 unknown', malformed: 'Malformed', monitor: 'Monitor',
};

export function formatHuman(l: DecodedLine, t0: number, timeUs: number): string {
  if (l.line === 'l2cap') {
    const where = `handle 0x${l.handle.toString(16).padStart(4, '0')} cid 0x${l.cid.toString(16).padStart(4, '0')}`;
    return `${' '.repeat(23)}${ARROW[l.dir]}   L2CAP ${where} len ${l.payload.length}: ${l.text}`;
  }
  const idx = l.adapter !== undefined ? ` [hci${l.adapter}]` : '';
  let s = `#${String(l.frame).padEnd(6)} ${stamp(timeUs, t0)}  ${ARROW[l.dir]} ${(TYPE_LABEL[l.type] ?? l.type).padEnd(11)}${idx} ${l.text}`;
  if (l.adText) {
    l.adText.forEach((lines, i) => {
      if (lines.length === 0) return;
      const prefix = l.adText!.length > 1 ? `report ${i + 1}: ` : '';
      for (const a of lines) s += `\n${' '.repeat(27)}${prefix}${a}`;
    });
  }
  return s;
}

export async function run(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const pi = argv.indexOf('--passkey');
  const passkeyArg = pi >= 0 ? argv[pi + 1] : undefined;
  const ci = argv.indexOf('--chart');
  const gi = argv.indexOf('--gap');
  const valued = new Set([pi, ci, gi].filter(i => i >= 0).map(i => i + 1));
  const files = argv.filter((a, i) => !a.startsWith('--') && !valued.has(i));
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  if (files.length !== 1) {
    console.error(HELP);
    return 2;
  }
  const file = files[0]!;
  const chartFile = ci >= 0 ? argv[ci + 1] : undefined;
  if (ci >= 0 && (!chartFile || chartFile.startsWith('--'))) {
    console.error('blewire decode: --chart takes the SVG file to write, e.g. --chart exchange.svg');
    return 2;
  }
  const gapMs = gi >= 0 ? Number(argv[gi + 1]) : undefined;
  if (gapMs !== undefined && !(gapMs > 0)) {
    console.error('blewire decode: --gap takes a positive number of milliseconds');
    return 2;
  }
  // A missing file, a directory or one we may not read: one line naming it (exit 1), no stack.
  try {
    if ((await stat(file)).isDirectory()) throw new FileError('read capture', file, 'it is a directory, not a capture file');
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError('read capture', file, fsReason(e) ?? (e instanceof Error ? e.message : String(e)), { cause: e });
  }
  if (chartFile !== undefined) {
    const { ChartBuilder, renderChartSvg } = await import('../inspect/chart.js');
    const { writeFileAtomic } = await import('../platform/files.js');
    const builder = new ChartBuilder(gapMs === undefined ? {} : { gapMs });
    for await (const line of decodeRecordsAsync(readCaptureFile(file))) builder.push(line);
    const chart = builder.finish();
    // Written beside nothing else of ours: the user's folder keeps its own permissions (ensureDir off).
    await writeFileAtomic(chartFile, renderChartSvg(chart, { title: basename(file) }), { ensureDir: false });
    let messages = 0;
    let rtts = 0;
    for (const r of chart.rows) if (!('gap' in r)) { messages += r.count; if (r.rttUs !== undefined) rtts++; }
    console.log(`wrote ${chartFile}: ${messages} messages in ${chart.rows.length} rows, ${rtts} round trips, ${chart.lanes.length} lanes` +
      (chart.omitted ? ` (${chart.omitted} messages beyond ${chart.rows.length} rows not drawn)` : ''));
    return 0;
  }
  if (argv.includes('--pairing')) {
    let passkey: number | undefined;
    if (pi >= 0) {
      passkey = Number(passkeyArg);
      if (!passkeyArg || !/^\d{1,6}$/.test(passkeyArg)) {
        console.error('--passkey takes six digits (000000-999999)');
        return 2;
      }
    }
    const { PairingAnalyser, formatPairingReport } = await import('../inspect/pairing.js');
    const analyser = new PairingAnalyser(passkey === undefined ? {} : { passkey });
    for await (const line of decodeRecordsAsync(readCaptureFile(file))) analyser.push(line);
    const reports = analyser.finish();
    if (json) {
      process.stdout.write(reports.map(r => JSON.stringify(r)).join('\n') + (reports.length ? '\n' : ''));
    } else {
      process.stdout.write(reports.length ? reports.map(formatPairingReport).join('\n\n') + '\n' : 'no SMP pairing in this capture\n');
    }
    return 0;
  }
  let buf = '';
  const flush = async (): Promise<void> => {
    if (!buf || stdoutClosed()) return;
    const chunk = buf;
    buf = '';
    if (!process.stdout.write(chunk)) {
      // Drained, or the reader went away (`| head`): either ends the wait.
      await new Promise<void>(r => {
        const done = (): void => { process.stdout.off('drain', done); process.stdout.off('error', done); r(); };
        process.stdout.once('drain', done);
        process.stdout.once('error', done);
      });
    }
  };
  let t0: number | undefined;
  let lastTime = 0;
  try {
    for await (const line of decodeRecordsAsync(readCaptureFile(file))) {
      if (stdoutClosed()) break;
      if (line.line === 'record') {
        t0 ??= line.timeUs;
        lastTime = line.timeUs;
      }
      buf += (json ? JSON.stringify(toJsonLine(line)) : formatHuman(line, t0 ?? 0, lastTime)) + '\n';
      if (buf.length > 1 << 16) await flush();
    }
  } finally {
    // A truncated or corrupt file throws after its good records: print every one of them before the
    // error (README "Captures"), not only the ones a full buffer happened to push out.
    await flush();
  }
  return 0;
}
