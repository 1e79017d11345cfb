/**
 * `npm run bench -- cli`: the CLI as a user meets it, from the installed tarball (npm pack, which
 * builds dist/ through `prepare`, then npm install of the tarball into a fresh temporary project):
 * - start-up: `blewire --help`, and the first line of `blewire scan --transport sim --json`, RUNS new
 *   processes each, run by the installed bin (bin.mjs, which runs dist/cli/blewire.cjs with its V8 code
 *   cache in a temporary XDG_CACHE_HOME): once cold (empty cache) and RUNS times warm (the cache an
 *   earlier run of the same command wrote), beside `node -e 'console.log()'` (Node alone);
 * - decode: `blewire decode` of the largest capture in captures/ (human form and --json, to /dev/null)
 *   against `tshark -r FILE -T fields` on the same file, side by side, wall and CPU (user + system,
 *   /usr/bin/time), RUNS_DECODE runs each.
 * Start-up is given as wall time seen by this process, and the process's own time since it started
 * and CPU time at its first line (first-line.mjs). The machine is shared: the load average is printed
 * before and after, and each figure is the minimum over the runs (the run least disturbed by others)
 * with the median beside it. Targets (issue 13): start-up <= 0.25 s; decode no slower than tshark.
 * Prints figures, never fails on a time.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const RUNS = Number(process.env.BLEWIRE_BENCH_RUNS ?? 10);
const RUNS_DECODE = 5;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const min = (xs: number[]): number => Math.min(...xs);
const s = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;
const load = (): string => loadavg().map(l => l.toFixed(2)).join(' ');

let env: NodeJS.ProcessEnv = process.env;

/** Wall and CPU (user + system) of one run, through /usr/bin/time; output to /dev/null. */
function timeRun(cmd: string, args: string[], cwd: string): { wall: number; cpu: number } {
  const t = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %U %S', cmd, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const wall = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const m = /TIME ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { wall, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN };
}

const HOOK = join(import.meta.dirname, 'first-line.mjs');

interface FirstLine { wall: number; sinceStart: number; cpu: number }

/** Runs `node --import first-line.mjs SCRIPT ARGS` until its first line on stdout, then ends it. */
function timeFirstLine(script: string, args: string[], cwd: string): Promise<FirstLine> {
  return new Promise((done, fail) => {
    const t = performance.now();
    const child = spawn(process.execPath, ['--import', HOOK, script, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
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

    env = { ...process.env, XDG_CACHE_HOME: join(work, 'cache'), BLEWIRE_CODE_CACHE: '' };
    const scanArgs = ['scan', '--transport', 'sim', '--json'];
    const cold = { help: await timeFirstLine(script, ['--help'], app), scan: await timeFirstLine(script, scanArgs, app) };
    // The scan was ended at its first line, before it wrote its cache: one run that ends writes it.
    execFileSync(bin, [...scanArgs, '--duration', '1.5'], { cwd: app, env, stdio: 'ignore' });
    const runs: Record<'node' | 'help' | 'scan', FirstLine[]> = { node: [], help: [], scan: [] };
    const loadBefore = load();
    for (let i = 0; i < RUNS; i++) {
      runs.node.push(await timeFirstLine('-e', ['console.log()'], app));
      runs.help.push(await timeFirstLine(script, ['--help'], app));
      runs.scan.push(await timeFirstLine(script, scanArgs, app));
    }
    const row = (label: string, xs: FirstLine[], target = true): string => {
      const f = (k: keyof FirstLine): string => `${s(min(xs.map(x => x[k])))} (${s(median(xs.map(x => x[k])))})`;
      const own = min(xs.map(x => x.sinceStart));
      return `  ${label.padEnd(46)} wall ${f('wall')}  since start ${f('sinceStart')}  CPU ${f('cpu')}  ` +
        (!target ? '' : own <= 250 ? 'within 0.25 s' : 'OVER 0.25 s');
    };
    console.log(`start-up from the installed tarball: min (median) of ${RUNS} new processes, warm code cache; ` +
      `load average ${loadBefore} before, ${load()} after (2 cores, shared machine):`);
    console.log(row("node -e 'console.log()' (Node alone)", runs.node, false));
    console.log(row('blewire --help', runs.help));
    console.log(row('blewire scan --transport sim --json, 1st line', runs.scan));
    console.log('  cold (empty code cache, one run each):');
    console.log(row('blewire --help', [cold.help]));
    console.log(row('blewire scan --transport sim --json, 1st line', [cold.scan]));

    const capture = largestCapture();
    const size = statSync(capture).size;
    const timeN = (cmd: string, args: string[]): { wall: number[]; cpu: number[] } => {
      const xs = Array.from({ length: RUNS_DECODE }, () => timeRun(cmd, args, app));
      return { wall: xs.map(x => x.wall), cpu: xs.map(x => x.cpu) };
    };
    const fields = ['-e', 'frame.number', '-e', 'frame.time_relative', '-e', 'hci_h4.type', '-e', 'btatt.opcode', '-e', 'btatt.handle', '-e', 'btl2cap.cid'];
    const loadDecode = load();
    timeRun(bin, ['decode', capture], app); // warm the file cache and the code cache of `decode`
    const human = timeN(bin, ['decode', capture]);
    const json = timeN(bin, ['decode', '--json', capture]);
    let tshark: { wall: number[]; cpu: number[] } | undefined;
    try {
      tshark = timeN('tshark', ['-r', capture, '-T', 'fields', ...fields]);
    } catch (e) {
      console.log(`  tshark not available (${(e as Error).message.split('\n')[0]}): install it (tools/interop/setup.sh) to compare`);
    }
    const fmt = (x: { wall: number[]; cpu: number[] }): string =>
      `wall ${s(min(x.wall))} (${s(median(x.wall))})  CPU ${s(min(x.cpu))} (${s(median(x.cpu))})`;
    console.log(`decode ${capture.slice(ROOT.length + 1)} (${(size / 1024).toFixed(0)} KiB), min (median) of ${RUNS_DECODE}, ` +
      `output to /dev/null; load average ${loadDecode} before, ${load()} after:`);
    console.log(`  blewire decode            ${fmt(human)}`);
    console.log(`  blewire decode --json     ${fmt(json)}`);
    if (tshark !== undefined) {
      console.log(`  tshark -T fields          ${fmt(tshark)}   (${fields.filter(f => f !== '-e').join(', ')})`);
      const r = (a: number[], b: number[]): string => (min(a) / min(b)).toFixed(2);
      console.log(`  blewire / tshark, min wall: ${r(human.wall, tshark.wall)} (human), ${r(json.wall, tshark.wall)} (--json); ` +
        `min CPU: ${r(human.cpu, tshark.cpu)} (human), ${r(json.cpu, tshark.cpu)} (--json); ` +
        `${Math.max(min(human.cpu), min(json.cpu)) <= min(tshark.cpu) ? 'no slower than tshark' : 'SLOWER than tshark'} (CPU)`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
