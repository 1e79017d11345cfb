/**
 * Device twin of a real capture (src/tooling/twin.ts): writes captures/<name>/ with the capture (whole,
 * or cut to the one connection with --trim) and scenario.json (the attribution, which connection the
 * twin is, what the capture shows of the device — its database and the size of its notification
 * stream — and the session the twin test runs against the simulated twin). With --json it also writes
 * twin.json (the extracted device, src/tooling/twin.ts DeviceTwin) and sim.json (a simulator world
 * serving it, for `tools/record.ts --transport sim --world sim.json`); they are derived from the
 * capture, so the fixtures do not carry them.
 *
 *   npx tsx tools/twin.ts <name> --capture FILE [--address ADDR | --handle 0x40] [--trim] [--sim-address ADDR]
 *     --source "owner/repo@commit path" --licence MIT [--steps "…"] [--description "…"] [--json]
 */
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseCapture } from '../src/capture/read.js';
import { createCaptureWriter } from '../src/capture/writer.js';
import { extractTwin, layoutGaps, recordsOfConnection, serializeTwin, twinSummary, twinToSimPeripheral } from '../src/tooling/twin.js';

function usage(msg: string): never {
  console.error(`twin: ${msg}`);
  process.exit(2);
}
const argv = process.argv.slice(2);
const name = argv.shift();
if (!name || !/^[a-z0-9][a-z0-9-]*$/.test(name)) usage('a kebab-case name is needed');
const opts: Record<string, string> = {};
while (argv.length) {
  const k = argv.shift()!;
  if (k === '--trim' || k === '--json') { opts[k.slice(2)] = '1'; continue; }
  const v = argv.shift();
  if (!k.startsWith('--') || v === undefined) usage(`bad argument ${k}`);
  opts[k.slice(2)] = v;
}
const capture = opts['capture'] ?? usage('--capture is needed');
const source = opts['source'] ?? usage('--source "owner/repo@commit path" is needed');
const licence = opts['licence'] ?? usage('--licence is needed');
const [repoAt, path] = source.split(' ');
const [repository, commit] = (repoAt ?? '').split('@');
const select = {
  ...(opts['address'] ? { address: opts['address'] } : {}),
  ...(opts['handle'] ? { handle: Number(opts['handle']) } : {}),
};
const out = join('captures', name);
mkdirSync(out, { recursive: true });
const bytes = readFileSync(capture);
if (opts['trim']) {
  const chunks: Uint8Array[] = [];
  const w = createCaptureWriter(b => chunks.push(Uint8Array.from(b)), { format: 'btsnoop' });
  for (const r of recordsOfConnection(parseCapture(bytes), select)) w.write(r);
  w.close();
  writeFileSync(join(out, 'capture.btsnoop'), Buffer.concat(chunks));
} else {
  copyFileSync(capture, join(out, 'capture.btsnoop'));
}
const twin = extractTwin(parseCapture(readFileSync(join(out, 'capture.btsnoop'))), { ...select, captureName: 'capture.btsnoop' });
if (opts['json']) {
  writeFileSync(join(out, 'twin.json'), serializeTwin(twin));
  // A whole simulator world (Scenario), so `tools/record.ts --transport sim --world sim.json` records against the twin.
  const peripheral = twinToSimPeripheral(twin, opts['sim-address'] ? { address: opts['sim-address'] } : {});
  writeFileSync(join(out, 'sim.json'), `${JSON.stringify({ name, seed: 1, peripherals: [peripheral] }, null, 2)}\n`);
}
const scenario = {
  name,
  ...(opts['description'] ? { description: opts['description'] } : {}),
  capture: 'capture.btsnoop',
  twin: 'twin.json',
  source: { repository, commit, path, licence, original: basename(capture), trimmed: opts['trim'] === '1' },
  select,
  ...(opts['sim-address'] ? { simAddress: opts['sim-address'] } : {}),
  ...(opts['steps'] ? { steps: opts['steps'] } : {}),
  expect: twinSummary(twin),
  command: ['npx tsx tools/twin.ts', ...process.argv.slice(2).map(a => (/^[\w:./@-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`))].join(' '),
};
writeFileSync(join(out, 'scenario.json'), `${JSON.stringify(scenario, null, 2)}\n`);
console.log(`${out}: ${twin.name}, ${twin.services.length} services, ${twin.services.reduce((n, s) => n + s.characteristics.length, 0)} characteristics, ` +
  `${twin.reads.length} reads, ${twin.writes.length} writes, ${twin.notifications.length} notifications; layout gaps: ${layoutGaps(twin).length}`);
