/**
 * `npm run bench -- cli`: the CLI as a user meets it, from the installed tarball (npm pack, which
 * builds dist/ through `prepare`, then npm install of the tarball into a fresh temporary project):
 * - start-up: wall time of `blewire --help`, and to the first line of `blewire scan --transport sim
 *   --json` (median of RUNS runs, each a new process);
 * - decode: `blewire decode` of the largest capture in captures/ (human form and --json, to /dev/null)
 *   against `tshark -r FILE -T fields` on the same file, side by side (median of 3).
 * Start-up is given three ways: wall time seen by this process, and the process's own time since it
 * started and CPU time at its first line (first-line.mjs), because on a loaded machine (the load average
 * is printed) wall time mostly measures the queue for a CPU.
 * Targets (issue 13): start-up <= 0.25 s; decode no slower than tshark. Prints figures, never fails.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const RUNS = 10;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;

function timeRun(cmd: string, args: string[], cwd: string): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const HOOK = join(import.meta.dirname, 'first-line.mjs');

interface FirstLine { wall: number; sinceStart: number; cpu: number }

/** Runs `node --import first-line.mjs SCRIPT ARGS` until its first line on stdout, then ends it. */
function timeFirstLine(script: string, args: string[], cwd: string): Promise<FirstLine> {
  return new Promise((done, fail) => {
    const t = performance.now();
    const child = spawn(process.execPath, ['--import', HOOK, script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let wall: number | undefined;
    const check = (): void => {
      const m = /FIRSTLINE ms=([\d.]+) cpu=([\d.]+)/.exec(err);
      if (wall !== undefined && m) {
        child.kill();
        done({ wall, sinceStart: Number(m[1]), cpu: Number(m[2]) });
      }
    };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (wall === undefined && out.includes('\n')) wall = performance.now() - t;
      check();
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); check(); });
    child.on('exit', code => { if (wall === undefined) fail(new Error(`${script} ${args.join(' ')} exited ${code} before a line: ${err}`)); });
  });
}

/** The largest capture file under captures/. */
function largestCapture(): string {
  let best = { path: '', size: -1 };
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(btsnoop|pcap|pcapng)$/.test(e.name) && statSync(p).size > best.size) best = { path: p, size: statSync(p).size };
    }
  };
  walk(join(ROOT, 'captures'));
  return best.path;
}

export async function bench(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'blewire-bench-cli-'));
  try {
    console.log('packing (npm pack builds dist/) and installing the tarball into a fresh project …');
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { filename: string }[];
    const app = join(work, 'app');
    execFileSync('mkdir', [app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'bench-app', version: '1.0.0', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--omit=optional', join(work, packed[0]!.filename)], { cwd: app, stdio: 'ignore' });
    const bin = join(app, 'node_modules/.bin/blewire');
    const script = join(app, 'node_modules/blewire/src/cli/bin.mjs'); // what the .bin link runs

    const runs: Record<'node' | 'help' | 'scan', FirstLine[]> = { node: [], help: [], scan: [] };
    await timeFirstLine(script, ['--help'], app); // warm the file cache
    for (let i = 0; i < RUNS; i++) {
      runs.node.push(await timeFirstLine('-e', ['console.log()'], app));
      runs.help.push(await timeFirstLine(script, ['--help'], app));
      runs.scan.push(await timeFirstLine(script, ['scan', '--transport', 'sim', '--json'], app));
    }
    const row = (label: string, xs: FirstLine[]): string => {
      const wall = median(xs.map(x => x.wall));
      const own = median(xs.map(x => x.sinceStart));
      return `  ${label.padEnd(44)} wall ${s(wall)}  since start ${s(own)}  CPU ${s(median(xs.map(x => x.cpu)))}  ` +
        (label.startsWith('node') ? '' : own <= 250 ? 'within 0.25 s' : 'OVER 0.25 s');
    };
    console.log(`start-up from the installed tarball, median of ${RUNS} new processes (load average ${loadavg().map(l => l.toFixed(1)).join(' ')}, ${RUNS} runs):`);
    console.log(row("node -e 'console.log()' (Node alone)", runs.node));
    console.log(row('blewire --help', runs.help));
    console.log(row('blewire scan --transport sim --json, 1st line', runs.scan));

    const capture = largestCapture();
    const size = statSync(capture).size;
    const time3 = (cmd: string, args: string[]): number => median([0, 1, 2].map(() => timeRun(cmd, args, app)));
    const human = time3(bin, ['decode', capture]);
    const json = time3(bin, ['decode', '--json', capture]);
    const fields = ['-e', 'frame.number', '-e', 'frame.time_relative', '-e', 'hci_h4.type', '-e', 'btatt.opcode', '-e', 'btatt.handle', '-e', 'btl2cap.cid'];
    let tshark: number | undefined;
    try {
      tshark = time3('tshark', ['-r', capture, '-T', 'fields', ...fields]);
    } catch (e) {
      console.log(`  tshark not available (${(e as Error).message.split('\n')[0]}): install it (tools/interop/setup.sh) to compare`);
    }
    console.log(`decode ${capture.slice(ROOT.length + 1)} (${(size / 1024).toFixed(0)} KiB), median of 3, output to /dev/null:`);
    console.log(`  blewire decode            ${s(human)}`);
    console.log(`  blewire decode --json     ${s(json)}`);
    if (tshark !== undefined) {
      console.log(`  tshark -T fields          ${s(tshark)}   (${fields.filter(f => f !== '-e').join(', ')})`);
      console.log(`  blewire / tshark: ${(human / tshark).toFixed(2)} (human), ${(json / tshark).toFixed(2)} (--json); ` +
        `${Math.max(human, json) <= tshark ? 'no slower than tshark' : 'SLOWER than tshark'}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
