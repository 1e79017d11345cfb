// Loaded with --import by cli.bench.ts: reports on stderr, at the first line the process writes to stdout,
// the time since the process started and the CPU time it used until then (its own figures: a busy
// machine stretches the wall time but hardly the CPU time).
const write = process.stdout.write.bind(process.stdout);
let done = false;
process.stdout.write = (chunk, ...rest) => {
  if (!done && String(chunk).includes('\n')) {
    done = true;
    const c = process.cpuUsage();
    process.stderr.write(`FIRSTLINE ms=${performance.now().toFixed(1)} cpu=${((c.user + c.system) / 1000).toFixed(1)}\n`);
  }
  return write(chunk, ...rest);
};
