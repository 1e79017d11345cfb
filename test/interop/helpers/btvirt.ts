/**
 * BlueZ's controller emulator `btvirt -s` as an independent peer for interop tests.
 *
 * `startBtvirt()` runs tools/interop/btvirt.sh (the same script a developer runs by hand): a fresh
 * btvirt with the user-space AF_ALG shim, in a private mount namespace whose /tmp is a directory of its
 * own, so each call gets its own socket pair and parallel runs never collide. It resolves once both
 * sockets answer HCI Reset. Every client connection to a socket is a fresh emulated controller; all
 * controllers of one instance hear each other (PEERS.md §2).
 *
 * Clean-up is by PID only: `stop()` (idempotent) asks the script to stop the recorded PID; if the test
 * process exits without calling it, an exit hook sends SIGTERM to that PID after checking that it is
 * still btvirt. If btvirt or the shim is missing, this rejects (a missing tool fails the tier, never
 * skips it); run tools/interop/setup.sh.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const SCRIPT = join(REPO, 'tools', 'interop', 'btvirt.sh');
// sun_path holds 108 bytes; "/tmp/bt-server-bredrle" adds 22 to the state directory.
const MAX_SOCKET_PATH = 100;

export interface Btvirt {
  /** Unix socket of the LE-only controllers (Core 4.x command set). */
  leSocket: string;
  /** Unix socket of the BR/EDR + LE controllers (5.x commands, extended advertising). */
  bredrleSocket: string;
  pid: number;
  /** btvirt's stdout/stderr, line-buffered. */
  logFile: string;
  /** Stops btvirt by its PID and removes its state directory; safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartBtvirtOptions {
  /** Extra btvirt arguments, e.g. ['-L'] (only -l/-L/-B style controller options make sense with -s). */
  extraArgs?: string[];
  /** Keep the state directory (log) after stop, for debugging. */
  keepDir?: boolean;
}

const live = new Set<number>();
let exitHookInstalled = false;

/** True while `pid` is a live (not zombie) btvirt: a reused PID is never ours to signal. */
function isBtvirt(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "<pid> (<comm>) <state> ...": comm is in parentheses, the state letter follows.
    const close = stat.lastIndexOf(')');
    return stat.slice(stat.indexOf('(') + 1, close) === 'btvirt' && stat[close + 2] !== 'Z';
  } catch {
    return false;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test run dies before stop(): only synchronous work is possible in 'exit'.
  process.on('exit', () => {
    for (const pid of live) if (isBtvirt(pid)) process.kill(pid, 'SIGTERM');
  });
}

function stateDir(): string {
  const base = join(REPO, '.cache', 'interop', 'runs');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, 'btvirt-'));
  if (join(dir, 'tmp', 'bt-server-bredrle').length <= MAX_SOCKET_PATH) return dir;
  rmSync(dir, { recursive: true, force: true });
  return mkdtempSync(join(tmpdir(), 'blewire-btvirt-'));
}

function parseInfo(stdout: string): Map<string, string> {
  const info = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) info.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return info;
}

export async function startBtvirt(options: StartBtvirtOptions = {}): Promise<Btvirt> {
  const dir = stateDir();
  const args = [SCRIPT, 'start', '--dir', dir];
  if (options.extraArgs?.length) args.push('--', ...options.extraArgs);
  let stdout: string;
  try {
    ({ stdout } = await run('bash', args, { timeout: 60_000 }));
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`btvirt did not start (run tools/interop/setup.sh): ${stderr.trim() || String(err)}`, { cause: err });
  }
  const info = parseInfo(stdout);
  const pid = Number(info.get('pid'));
  const leSocket = info.get('le_socket');
  const bredrleSocket = info.get('bredrle_socket');
  const logFile = info.get('log');
  if (!Number.isInteger(pid) || pid <= 0 || !leSocket || !bredrleSocket || !logFile) {
    throw new Error(`btvirt.sh start printed no pid/sockets:\n${stdout}`);
  }
  installExitHook();
  live.add(pid);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        await run('bash', [SCRIPT, 'stop', '--dir', dir], { timeout: 30_000 });
      } finally {
        // The script killed by PID; if it could not run at all, do it here, still by PID.
        if (isBtvirt(pid)) process.kill(pid, 'SIGKILL');
        live.delete(pid);
        if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
      }
    })();
    return stopping;
  };
  return { leSocket, bredrleSocket, pid, logFile, stop };
}

// ---------------------------------------------------------------------------------------------------
// RawHciPeer: hand-built HCI over one btvirt socket, independent of blewire's own codecs, for smoke
// tests and for scripting the far side of a link (the peer blewire talks to).

export const EVENT_TIMEOUT_MS = 5_000;

// H4 packet indicators (Vol 4, Part A, 2).
export const H4_COMMAND = 0x01;
export const H4_ACL = 0x02;
export const H4_EVENT = 0x04;
// Event codes (Vol 4, Part E, 7.7).
export const EVT_COMMAND_COMPLETE = 0x0e;
export const EVT_COMMAND_STATUS = 0x0f;
export const EVT_LE_META = 0x3e;

export type H4Packet =
  | { type: 'event'; code: number; params: Buffer; atMs: number }
  | { type: 'acl'; handle: number; pb: number; data: Buffer; atMs: number };

interface Waiter {
  match: (p: H4Packet) => boolean;
  resolve: (p: H4Packet) => void;
  reject: (err: Error) => void;
}

export type CommandResult =
  | { kind: 'complete'; status: number; ret: Buffer; credits: number; ms: number }
  | { kind: 'status'; status: number; credits: number; ms: number };

/**
 * A scriptable raw-HCI peer on one emulated controller: a unix-socket H4 client that writes whole
 * packets and keeps at most one command outstanding, never more than Num_HCI_Command_Packets allows
 * (btvirt mis-frames a 4096-byte read that splits an H4 header, PEERS.md §2; whole packets and credits
 * keep us clear of it). ACL credits are the caller's job: btvirt's LE buffer is 192 octets x 1 packet,
 * so wait for Number Of Completed Packets before the next writeAcl().
 */
export class RawHciPeer {
  private rx: Buffer = Buffer.alloc(0);
  /** Packets received and not yet taken by next(), oldest first. */
  private readonly pending: H4Packet[] = [];
  private waiters: Waiter[] = [];
  private credits = 1; // Vol 4, Part E, 4.4: one command may be sent before the first event
  private chain: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket, readonly name: string) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new Error(`${name}: btvirt closed the connection`)));
    socket.on('error', (err) => this.fail(err));
  }

  static connect(path: string, name: string): Promise<RawHciPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      socket.once('connect', () => resolve(new RawHciPeer(socket, name)));
      socket.once('error', reject);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  /** Sends one command once a credit is available; resolves with its Command Complete or Command Status. */
  command(opcode: number, params: ArrayLike<number> = []): Promise<CommandResult> {
    const run = async (): Promise<CommandResult> => {
      if (this.credits < 1) await this.next((p) => p.type === 'event' && creditsOf(p) !== undefined && creditsOf(p)! > 0);
      this.credits = 0;
      const t0 = performance.now();
      this.write([H4_COMMAND, opcode & 0xff, opcode >> 8, params.length, ...Array.from(params)]);
      const evt = await this.next((p) => p.type === 'event' && commandOpcodeOf(p) === opcode);
      if (evt.type !== 'event') throw new Error('unreachable');
      const ms = performance.now() - t0;
      if (evt.code === EVT_COMMAND_COMPLETE) {
        return { kind: 'complete', status: evt.params[3]!, ret: evt.params.subarray(3), credits: evt.params[0]!, ms };
      }
      return { kind: 'status', status: evt.params[0]!, credits: evt.params[1]!, ms };
    };
    const result = this.chain.then(run, run);
    this.chain = result.catch(() => undefined);
    return result;
  }

  /** A command that must complete with status 0x00; returns its return parameters after the status. */
  async ok(opcode: number, params: ArrayLike<number> = []): Promise<Buffer> {
    const r = await this.command(opcode, params);
    if (r.kind !== 'complete' || r.status !== 0) {
      throw new Error(`${this.name}: opcode 0x${opcode.toString(16)} gave ${r.kind} status 0x${r.status.toString(16)}`);
    }
    return r.ret.subarray(1);
  }

  /** Writes one whole ACL packet; `pb` is the Packet_Boundary_Flag (0b00 first, 0b01 continuation). */
  writeAcl(handle: number, pb: number, data: ArrayLike<number>): void {
    // Vol 4, Part E, 5.4.2: handle in 12 bits, PB flag in bits 12-13, BC flag (0) in bits 14-15.
    this.write([H4_ACL, handle & 0xff, (handle >> 8) | (pb << 4), data.length & 0xff, data.length >> 8, ...Array.from(data)]);
  }

  /** The first received packet, not yet taken, that matches; waits for it if none has come yet. */
  next(match: (p: H4Packet) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<H4Packet> {
    const i = this.pending.findIndex(match);
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name}: no matching packet within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (p: H4Packet) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject,
      };
      this.waiters.push(waiter);
    });
  }

  nextLeMeta(subevent: number): Promise<H4Packet & { type: 'event' }> {
    return this.next((p) => p.type === 'event' && p.code === EVT_LE_META && p.params[0] === subevent) as Promise<
      H4Packet & { type: 'event' }
    >;
  }

  private write(bytes: number[]): void {
    this.socket.write(Buffer.from(bytes)); // one write per whole packet
  }

  private onData(chunk: Buffer): void {
    this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
    for (;;) {
      const t = this.rx[0];
      let size: number;
      if (t === H4_EVENT && this.rx.length >= 3) size = 3 + this.rx[2]!;
      else if (t === H4_ACL && this.rx.length >= 5) size = 5 + this.rx.readUInt16LE(3);
      else if (t !== undefined && t !== H4_EVENT && t !== H4_ACL) {
        this.fail(new Error(`${this.name}: unexpected H4 indicator 0x${t.toString(16)}`));
        return;
      } else return;
      if (this.rx.length < size) return;
      const raw = Buffer.from(this.rx.subarray(0, size));
      this.rx = this.rx.subarray(size);
      const atMs = performance.now();
      const packet: H4Packet =
        t === H4_EVENT
          ? { type: 'event', code: raw[1]!, params: raw.subarray(3), atMs }
          : { type: 'acl', handle: raw.readUInt16LE(1) & 0x0fff, pb: (raw[2]! >> 4) & 0x3, data: raw.subarray(5), atMs };
      const credits = creditsOf(packet);
      if (credits !== undefined) this.credits = credits;
      const waiter = this.waiters.find((w) => w.match(packet));
      if (waiter) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.resolve(packet);
      } else {
        this.pending.push(packet);
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }
}

export function creditsOf(p: H4Packet): number | undefined {
  if (p.type !== 'event') return undefined;
  if (p.code === EVT_COMMAND_COMPLETE) return p.params[0];
  if (p.code === EVT_COMMAND_STATUS) return p.params[1];
  return undefined;
}

export function commandOpcodeOf(p: H4Packet): number | undefined {
  if (p.type !== 'event') return undefined;
  if (p.code === EVT_COMMAND_COMPLETE) return p.params.readUInt16LE(1);
  if (p.code === EVT_COMMAND_STATUS) return p.params.readUInt16LE(2);
  return undefined;
}
