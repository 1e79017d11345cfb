#!/usr/bin/env -S node --max-semi-space-size=1 --single-threaded --optimize-for-size --incremental-marking-hard-trigger=30
// `blewire-gateway …` is `blewire gateway …` with V8 sized for a daemon that runs for months rather
// than for throughput:
// - --max-semi-space-size=1: young-generation semi-spaces of at most 1 MB (Node's default grows them to
//   16 MB during a burst of reports);
// - --single-threaded: garbage collection and optimizing compilation on the main thread, no helper
//   threads with pages and compiler zones of their own;
// - --optimize-for-size: V8's memory-saving heuristics (smaller heap growth steps, code flushing);
// - --incremental-marking-hard-trigger=30: the next full collection's marking starts once 30 % of the
//   room V8 allowed after the last one is used. V8 sets that room to at least 8 MB (its minimum
//   growing step) above the live heap, and marking finished with the heap near that limit: the peak RSS
//   of a gateway tracking 10 000 devices was that garbage, 8-10 MB over the steady figure, during the
//   burst of first-seen devices. Peak 82.9 -> 76.6 MB; full collections are more frequent: the gateway's
//   CPU per report in the bench's steady phase +15-30 %.
// Together about 40-70 MB less RSS than Node's defaults for a gateway tracking 10 000 devices, at the
// cost of about half of the reports ingested and messages published per CPU-second (npm run bench
// -- gateway measures both; the README has the figures). --single-threaded is not allowed in
// NODE_OPTIONS, hence a command of its own whose first line passes the flags (`env -S`, coreutils 8.30
// and later); npm links it as the package's `blewire-gateway` bin and the systemd unit runs it. The
// flags are logged at start (execArgv). Signals and exit codes are the gateway's own: env execs node,
// so the service manager's SIGTERM reaches this process.
//
// It runs a bundle of its own, dist/cli/gateway.cjs (src/cli/gateway-main.ts: the gateway and what it
// uses, minified; tools/package/bundle-cli.mjs), not the whole CLI's: V8 keeps a script's source and
// the compiled top level of every module in it for as long as the process runs, about 1 MB more heap
// for the CLI's bundle, in a process that runs for months within an 80 MB budget.
import { launch } from './launch.mjs';

await launch('gateway.cjs', 'gateway-main.ts', 'blewire-gateway');
