/**
 * `blewire twin <capture> [--address ADDR [--occurrence N] | --handle 0xHHHH] [--name NAME] [-o twin.json]`:
 * extract a device twin from a capture of a central talking to the device (src/tooling/twin.ts): its
 * advertising, the database the central discovered, the values it read, what it wrote and the
 * notification stream. Printed as JSON, or written atomically (mode 0600) with -o / --output;
 * `blewire serve twin.json` serves it.
 */
import { basename } from 'node:path';
import { readCaptureFile } from '../capture/index.js';
import type { CaptureRecord } from '../capture/types.js';
import { checkAddress, checkInteger, UsageError } from './args.js';
import { parseArgs } from './explore.js';

const USAGE = 'usage: blewire twin <capture> [--address ADDRESS [--occurrence N] | --handle 0xHHHH] [--name NAME] [-o|--output twin.json]';

const HELP = `${USAGE}

Extracts the device twin of one peripheral from a capture (btsnoop, pcap, pcapng) of a central
talking to it: its advertising data and scan response, its GATT database as the central discovered
it, the values the central read, what it wrote, and its notifications with their relative times.
  --address ADDRESS  the connection to this device (with --occurrence N: its N-th connection)
  --handle 0xHHHH    or the connection with this handle (the only choice in ACL-only logs)
                     default: the connection with the most ATT traffic
  --name NAME        the twin's name (default: the advertised name, else the address)
  -o, --output FILE  write the twin there (atomically, mode 0600) instead of printing it
Serve it with \`blewire serve twin.json\`. A capture where the central used a cached database (no
discovery in it) gives a twin without services.`;

/** Records held at most while extracting (a phone log of several hours has a few hundred thousand). */
export const MAX_TWIN_RECORDS = 2_000_000;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv.map(a => (a === '-o' ? '--output' : a)), ['address', 'occurrence', 'handle', 'name', 'output']);
  if (args.flags.has('help')) {
    console.log(HELP);
    return 0;
  }
  const [file, extra] = args.positional;
  if (!file) {
    console.error(USAGE);
    return 2;
  }
  if (extra !== undefined) throw new UsageError(`twin takes one capture, not also ${JSON.stringify(extra)}`);
  const str = (k: string): string | undefined => {
    const v = args.flags.get(k);
    if (v === true) throw new UsageError(`--${k} takes a value`);
    return v;
  };
  const address = str('address');
  const handleText = str('handle');
  if (address !== undefined && handleText !== undefined) throw new UsageError('--address and --handle exclude each other');
  const occurrenceText = str('occurrence');
  if (occurrenceText !== undefined && address === undefined) throw new UsageError('--occurrence goes with --address');
  const handle = handleText === undefined ? undefined
    : checkInteger(/^0x[0-9a-f]+$/i.test(handleText) ? String(parseInt(handleText, 16)) : handleText, '--handle', 0, 0, 0x0eff);
  const name = str('name');
  const output = str('output');
  const { extractTwin, serializeTwin } = await import('../tooling/twin.js');
  const records: CaptureRecord[] = [];
  for await (const r of readCaptureFile(file)) {
    if (records.length >= MAX_TWIN_RECORDS) throw new UsageError(`the capture has more than ${MAX_TWIN_RECORDS} records; cut it first (e.g. to the device's connection)`);
    records.push(r);
  }
  const twin = extractTwin(records, {
    ...(address !== undefined ? { address: checkAddress(address) } : {}),
    ...(occurrenceText !== undefined ? { occurrence: checkInteger(occurrenceText, '--occurrence', 1, 1) } : {}),
    ...(handle !== undefined ? { handle } : {}),
    ...(name !== undefined ? { name } : {}),
    captureName: basename(file),
  });
  const text = serializeTwin(twin);
  const chars = twin.services.reduce((n, s) => n + s.characteristics.length, 0);
  const what = `${twin.name}: ${twin.services.length} service(s), ${chars} characteristic(s), ${twin.reads.length} read(s), ` +
    `${twin.writes.length} write(s), ${twin.notifications.length} notification(s)`;
  if (output !== undefined) {
    const { writeFileAtomic } = await import('../platform/files.js');
    await writeFileAtomic(output, text, { ensureDir: false });
    console.error(`wrote ${output}: ${what}`);
  } else {
    process.stdout.write(text);
    console.error(what);
  }
  if (twin.services.length === 0) console.error('note: the capture shows no discovery of this device (its central may have used a cached database): the twin has no services to serve');
  return 0;
}
