/**
 * Record mode (STYLE c.10 item 6): run a named scripted session against a transport with the recorder
 * on, and write captures/<name>/capture.btsnoop + captures/<name>/scenario.json.
 *
 *   npx tsx tools/record.ts <name> --transport sim:demo \
 *     --steps "scan 1000 → connect D4:1E:35:7A:00:01 random → discover → read 2a38 → disconnect" \
 *     --controller "blewire simulator, scenario demo" --peer "Pulse HR (virtual heart-rate sensor)" \
 *     [--random-address fresh|C1:…] [--description "…"] [--dir captures] [--batch-us N]
 *     [--world captures/<name>/world.json]   (a simulator Scenario as JSON, for `--transport sim`)
 *
 * Transports: anything openTransport accepts (sim[:scenario], unix:/tmp/bt-server-le for btvirt, the
 * BlueZ guest's bridged socket, hci0 on real hardware). The simulator is loaded here so `sim:` works.
 */
import { readFileSync } from 'node:fs';
import '../src/sim/index.js';
import { recordScenario } from '../src/tooling/record.js';
import { parseRecordArgs } from './record-args.js';

function usage(msg?: string): never {
  if (msg) console.error(`record: ${msg}`);
  console.error('usage: tsx tools/record.ts <name> --transport SPEC --steps "…" --controller "…" [--peer "…"] ' +
    '[--random-address fresh|ADDR] [--description "…"] [--hardware "…"] [--dir captures] [--batch-us N] [--world FILE]');
  process.exit(2);
}

const { name, opts } = parseRecordArgs(process.argv.slice(2), usage);
const transport = opts['transport'] ?? usage('--transport is needed');
const steps = opts['steps'] ?? usage('--steps is needed');
const controller = opts['controller'] ?? usage('--controller is needed (what the controller was)');
const batch = opts['batch-us'];

const world = opts['world'];
const scenario = await recordScenario({
  name, dir: opts['dir'] ?? 'captures', transport, steps, controller,
  ...(world ? { transportOptions: { scenario: JSON.parse(readFileSync(world, 'utf8')) as unknown } } : {}),
  ...(opts['peer'] ? { peer: opts['peer'] } : {}),
  ...(opts['hardware'] ? { hardware: opts['hardware'] } : {}),
  ...(opts['description'] ? { description: opts['description'] } : {}),
  ...(opts['random-address'] ? { randomAddress: opts['random-address'] } : {}),
  ...(batch ? { replay: { batchUs: Number(batch) } } : {}),
  command: ['npx tsx tools/record.ts', ...process.argv.slice(2).map(a => (/^[\w:./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`))].join(' '),
});
console.log(`recorded ${opts['dir'] ?? 'captures'}/${name}: ${scenario.steps}`);
console.log(JSON.stringify(scenario.expect, null, 2));
