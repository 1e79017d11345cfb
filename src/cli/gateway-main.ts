/**
 * `blewire-gateway` (src/cli/gateway.mjs): `blewire gateway …` as a program of its own, bundled into
 * dist/cli/gateway.cjs with only what the gateway uses (tools/package/bundle-cli.mjs), so that a
 * gateway process does not hold every other command's code. Same options, output and exit codes as
 * `blewire gateway` (src/apps/gateway/cli.ts).
 */
import { report } from './report.js';
import { watchStdout } from './stdout.js';
import '../transports.js'; // --transport sim / replay:file, as for every command
import { runGateway } from '../apps/gateway/cli.js';

watchStdout();
runGateway(process.argv.slice(2)).then(
  code => { process.exitCode = code; },
  err => { process.exitCode = report('gateway', err); },
);
