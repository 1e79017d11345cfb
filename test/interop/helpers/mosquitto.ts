/**
 * Debian's Mosquitto broker and its command-line clients as independent peers for the gateway's
 * interop tests (PEERS.md §4). `startMosquitto()` writes a two-line config (listener on 127.0.0.1 and
 * a free port, anonymous access; plus persistence when asked) into a private directory and starts the
 * broker; `stop()` stops it by PID (SIGTERM: mosquitto saves its persistence file on the way out) and
 * `restart()` starts it again on the same port. `mosquittoSub()` spawns `mosquitto_sub` asynchronously
 * and collects its `topic payload` lines. Everything started here is killed by PID on process exit.
 * A missing mosquitto is a failure (tools/interop/setup.sh installs it), never a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<ChildProcess>();
let hooked = false;
function track(p: ChildProcess): void {
  live.add(p);
  p.once('exit', () => live.delete(p));
  if (hooked) return;
  hooked = true;
  process.on('exit', () => { for (const c of live) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGKILL'); });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, proc: ChildProcess, log: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`mosquitto exited with ${proc.exitCode}: ${readFileSync(log, 'utf8')}`);
    const ok = await new Promise<boolean>(resolve => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms: ${readFileSync(log, 'utf8')}`);
    await new Promise(r => setTimeout(r, 50));
  }
}

export interface Mosquitto {
  port: number;
  url: string;
  dir: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Broker log so far. */
  log(): string;
}

/**
 * `tls`: the listener speaks TLS only (mqtts://) with this broker certificate and key; `ca` is the CA
 * the broker trusts for client certificates, and `requireCertificate` makes it refuse clients without
 * one signed by that CA (mosquitto.conf `require_certificate`).
 */
export interface MosquittoTls { ca: string; cert: string; key: string; requireCertificate?: boolean }

export async function startMosquitto(opts: { persistence?: boolean; config?: string[]; port?: number; tls?: MosquittoTls } = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'blewire-mosquitto-'));
  const port = opts.port ?? await freePort();
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', ...(opts.config ?? [])];
  if (opts.tls) {
    lines.push(`cafile ${opts.tls.ca}`, `certfile ${opts.tls.cert}`, `keyfile ${opts.tls.key}`,
      `require_certificate ${opts.tls.requireCertificate ? 'true' : 'false'}`);
  }
  if (opts.persistence) {
    // Started as root, mosquitto drops to its own user: give it a directory it can write its database to
    // (without this the save on exit fails, "Permission denied", and sessions silently do not survive).
    chmodSync(dir, 0o711); // mkdtemp makes it 0700: let the broker's user through to db/
    const db = join(dir, 'db');
    mkdirSync(db, { mode: 0o777 });
    chmodSync(db, 0o777);
    lines.push('persistence true', `persistence_location ${db}/`, 'autosave_interval 0');
  }
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, lines.join('\n') + '\n');
  const logFile = join(dir, 'mosquitto.log');
  let proc: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const fd = openSync(logFile, 'a');
    const p = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    track(p);
    // Listen before any await: 'spawn' comes on the next tick, and a listener added after an await
    // (a dynamic import() here once) could miss it and leave this promise pending for ever.
    await new Promise<void>((resolve, reject) => {
      p.once('spawn', () => resolve());
      p.once('error', e => reject(new Error(`cannot start mosquitto (run tools/interop/setup.sh): ${e.message}`)));
    });
    proc = p;
    await waitForPort(port, 10_000, p, logFile);
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>(resolve => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  await launch();
  return {
    port, url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`, dir,
    get pid() { return proc?.pid; },
    stop,
    restart: async () => { await stop(); await launch(); },
    log: () => readFileSync(logFile, 'utf8'),
  };
}

export interface Subscriber {
  /** Every `topic payload` line received so far. */
  readonly lines: Array<{ topic: string; payload: string }>;
  /** Resolves with the first line (already received or future) matching `pred`. */
  waitFor(pred: (l: { topic: string; payload: string }) => boolean, timeoutMs?: number, what?: string): Promise<{ topic: string; payload: string }>;
  stop(): Promise<void>;
}

let probes = 0;

/**
 * `mosquitto_sub -v` on the given topic filters, spawned asynchronously (never blocking the test).
 * Resolves once the subscription is in place at the broker: the subscriber also listens on a probe
 * topic of its own, and mosquitto_pub (same connection options) publishes there until the subscriber
 * hears it. (A fixed 300 ms settle was used before: on a busy machine mosquitto_sub may not have
 * subscribed by then, and a message published once, not retained, was lost to it.)
 */
export async function mosquittoSub(port: number, topics: string[], extra: string[] = [], readyMs = 30_000): Promise<Subscriber> {
  const probe = `blewire-probe/${process.pid}/${probes++}`;
  const args = ['-h', '127.0.0.1', '-p', String(port), '-v', '-q', '1', ...[...topics, probe].flatMap(t => ['-t', t]), ...extra];
  const p = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(p);
  const lines: Array<{ topic: string; payload: string }> = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let err = '';
  let heard = false;
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const sp = line.indexOf(' ');
      const topic = sp < 0 ? line : line.slice(0, sp);
      if (topic === probe) { heard = true; continue; }
      lines.push({ topic, payload: sp < 0 ? '' : line.slice(sp + 1) });
    }
    for (const w of waiters) w();
  });
  p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  await new Promise<void>((resolve, reject) => {
    p.once('spawn', () => resolve());
    p.once('error', e => reject(new Error(`cannot start mosquitto_sub (run tools/interop/setup.sh): ${e.message}`)));
  });
  // The subscription is in place once a message published after it reaches us (QoS 1, not retained).
  const until = Date.now() + readyMs;
  while (!heard) {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`mosquitto_sub exited (${p.exitCode ?? p.signalCode}) before subscribing: ${err}`);
    if (Date.now() > until) {
      p.kill('SIGKILL');
      throw new Error(`mosquitto_sub did not hear its probe on ${probe} within ${readyMs} ms: ${err}`);
    }
    await publishProbe(port, probe, extra);
    for (let i = 0; i < 10 && !heard; i++) await new Promise(r => setTimeout(r, 50));
  }
  return {
    lines,
    waitFor(pred, timeoutMs = 20_000, what = 'a message') {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const hit = lines.find(pred);
          if (hit) { waiters.delete(check as () => void); clearTimeout(t); resolve(hit); return true; }
          return false;
        };
        const t = setTimeout(() => { waiters.delete(check as () => void); reject(new Error(`mosquitto_sub: no ${what} within ${timeoutMs} ms (${lines.length} lines; stderr: ${err})`)); }, timeoutMs);
        if (!check()) waiters.add(check as () => void);
      });
    },
    async stop() {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>(resolve => p.once('exit', () => resolve()));
      p.kill('SIGTERM');
      // Bounded: a client stuck in a connect or TLS handshake may not act on SIGTERM at once.
      const t = setTimeout(() => p.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** One `mosquitto_pub` of the probe topic (its exit status does not matter: the subscriber hearing it does). */
function publishProbe(port: number, topic: string, extra: string[]): Promise<void> {
  return new Promise(resolve => {
    const q = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', 'ready', ...extra], { stdio: 'ignore' });
    track(q);
    const t = setTimeout(() => q.kill('SIGKILL'), 5000);
    q.once('error', () => { clearTimeout(t); resolve(); });
    q.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
