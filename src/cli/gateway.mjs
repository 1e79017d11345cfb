#!/usr/bin/env -S node --max-semi-space-size=1 --single-threaded-gc
// `blewire-gateway …` is `blewire gateway …` with V8 sized for a daemon that runs for months rather
// than for throughput: young-generation semi-spaces of at most 1 MB and garbage collection on the main
// thread. With Node's defaults the young generation grows to 16 MB semi-spaces during a burst of reports
// and the parallel collector keeps per-thread pages, which together are about 40 MB of the RSS of a
// gateway tracking 10 000 devices (npm run bench -- gateway measures both). --single-threaded-gc is
// not allowed in NODE_OPTIONS, hence a command of its own whose first line passes the flags (`env -S`,
// coreutils 8.30 and later); the systemd unit runs this one. The flags are logged at start (execArgv).
process.argv.splice(2, 0, 'gateway');
await import('./bin.mjs');
