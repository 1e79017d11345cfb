/**
 * The BlueZ guest for interop tests: BlueZ's own bluetoothd, GATT server and advertisement in a qemu guest
 * with a real Linux kernel, reached from the host as a bridged H4 stream on a unix socket
 * (tools/interop/guest/README.md; ../shared/peers/PEERS.md section 3).
 *
 * Design overview
 * - tools/interop/guest/boot.sh does the work (build-if-needed, qemu launch, READY wait, stop by PID); this
 *   module wraps it for vitest so there is one implementation of the qemu command line.
 * - Ownership: whoever calls startBlueZGuest() owns the qemu process and must call stop(). A process 'exit'
 *   hook kills every guest this process started (by its PID, read from the run directory), so a crashed or
 *   interrupted test run does not leave qemu behind.
 * - One boot for the whole suite: use this file as a vitest globalSetup (its default export boots the guest
 *   once in the main process and provide()s its description as 'bluezGuest'); tests call
 *   useBlueZGuest(), which returns the provided guest, or boots a private one (stopped by the returned
 *   release()) when the suite runs without the globalSetup.
 * - Time-outs: the boot has its own READY time-out (console log in the error); runInGuest has an overall one.
 * - The H4 stream outlives host connections: the guest's btvirt controller persists across host
 *   reconnects, and bytes the guest sends while no host is connected are dropped by qemu, possibly
 *   mid-packet. syncH4() resynchronises: it sends HCI Reset and discards everything before Reset's Command
 *   Complete.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
export const GUEST_TOOLS = path.join(REPO, 'tools', 'interop', 'guest');
const BOOT_SH = path.join(GUEST_TOOLS, 'boot.sh');

/** What a booted guest looks like; plain data so a globalSetup can provide() it to test files. */
export interface BlueZGuestInfo {
  /** Host unix socket carrying H4 packets to/from a btvirt controller in the guest. */
  h4Socket: string;
  /** Host unix socket of the control line (guest-ctl.py on ttyS3): run programs in the guest (GuestControl). */
  ctlSocket: string;
  /** The guest console (ttyS0), for diagnostics. */
  consoleLog: string;
  /** BD_ADDR of BlueZ's own adapter (the advertiser / GATT server), e.g. "00:AA:01:00:00:00". */
  peripheral: string;
  /** BlueZ's GAP Device Name, e.g. "BlueZ 5.66". */
  peripheralName: string;
  qemuPid: number;
  /** Seconds from qemu launch to the guest's READY marker. */
  readySeconds: number;
  /** Directory holding the socket, console log and PID file. */
  runDir: string;
}

export interface BlueZGuest extends BlueZGuestInfo {
  /** Kills qemu by PID and removes the socket and run directory. Idempotent. */
  stop(): Promise<void>;
}

export interface StartBlueZGuestOptions {
  /** READY time-out in ms (default 180 000: a cold build plus a boot on a loaded 2-core machine). */
  timeoutMs?: number;
  /** Extra kernel command line, e.g. "blewire.debug=1". */
  append?: string;
  /**
   * The guest image's Debian release (tools/interop/guest/build.sh BLEWIRE_GUEST_SUITE): default bookworm
   * (BlueZ 5.66, the shared guest); 'trixie' is the second image, BlueZ >= 5.73 (signed writes). Same
   * kernel, init and bridge; cached apart in .cache/guest-trixie.
   */
  suite?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    bluezGuest: BlueZGuestInfo;
  }
}

const started = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dir of started) killFromPidFile(dir);
  });
}

function killFromPidFile(dir: string): void {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'qemu.pid'), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // no PID file or no such process: nothing to kill
  }
  fs.rmSync(path.join(dir, 'h4.sock'), { force: true });
  fs.rmSync(path.join(dir, 'ctl.sock'), { force: true });
}

function runScript(args: string[], timeoutMs: number, suite?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const env = suite === undefined ? process.env : { ...process.env, BLEWIRE_GUEST_SUITE: suite };
  return new Promise((resolve, reject) => {
    execFile(BOOT_SH, args, { timeout: timeoutMs, killSignal: 'SIGTERM', maxBuffer: 64 << 20, env }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${BOOT_SH} ${args.join(' ')}: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ stdout, stderr, code: err ? (err.code as number) : 0 });
    });
  });
}

function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** How long a guest may take to report READY (boot, btvirt, bluetoothd, the example apps). */
const GUEST_READY_TIMEOUT_MS = 360_000;

/** Boots a guest in bridge mode and resolves once BlueZ is advertising and the H4 bridge is up. */
export async function startBlueZGuest(opts: StartBlueZGuestOptions = {}): Promise<BlueZGuest> {
  // Under TCG on a busy 2-core machine the guest was seen to take 100-175 s to boot: 180 s was too
  // close. The callers' beforeAll hooks allow 600-900 s.
  const timeoutMs = opts.timeoutMs ?? GUEST_READY_TIMEOUT_MS;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blewire-guest.'));
  started.add(dir);
  installExitHook();
  const args = ['start', '--dir', dir, '--timeout', String(Math.ceil(timeoutMs / 1000))];
  if (opts.append) args.push('--append', opts.append);
  // The script's own READY time-out fires first; ours is a backstop (plus the time of a cold build).
  const res = await runScript(args, timeoutMs + 300_000, opts.suite).catch((err: unknown) => {
    killFromPidFile(dir);
    started.delete(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  if (res.code !== 0) {
    killFromPidFile(dir);
    started.delete(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`BlueZ guest did not start (boot.sh exit ${res.code}):\n${res.stderr}`);
  }
  const kv = parseKeyValues(res.stdout);
  const info = infoFrom(kv, dir);
  let stopped = false;
  return {
    ...info,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await runScript(['stop', '--dir', dir], 30_000).catch(() => undefined);
      killFromPidFile(dir); // belt and braces if the script could not run
      fs.rmSync(dir, { recursive: true, force: true });
      started.delete(dir);
    },
  };
}

/**
 * vitest globalSetup entry: boots one guest for the whole interop run and provides it as 'bluezGuest';
 * the returned teardown stops it. Add `globalSetup: ['test/interop/helpers/bluez-guest.ts']` to the
 * interop project to share one boot between all test files.
 */
export default async function setup(project: { provide(key: 'bluezGuest', value: BlueZGuestInfo): void }): Promise<() => Promise<void>> {
  // A guest started by hand (BLEWIRE_GUEST_DIR): share it instead of booting another; its owner stops it.
  const attach = process.env.BLEWIRE_GUEST_DIR;
  if (attach) {
    project.provide('bluezGuest', attachBlueZGuest(attach));
    return async () => undefined;
  }
  const guest = await startBlueZGuest();
  const { stop, ...info } = guest;
  project.provide('bluezGuest', info);
  return stop;
}

/**
 * The guest for a test file: the suite's shared guest if a globalSetup provided one (release() is then a
 * no-op), else a private guest that release() stops. Call from beforeAll, release from afterAll.
 */
export async function useBlueZGuest(opts: StartBlueZGuestOptions = {}): Promise<{ guest: BlueZGuestInfo; release(): Promise<void> }> {
  const attach = process.env.BLEWIRE_GUEST_DIR;
  if (attach) {
    const guest = attachBlueZGuest(attach);
    await reviveShared(guest);
    return { guest, release: async () => undefined };
  }
  const { inject } = await import('vitest');
  let shared: BlueZGuestInfo | undefined;
  try {
    shared = inject('bluezGuest');
  } catch {
    shared = undefined;
  }
  if (shared && fs.existsSync(shared.h4Socket)) {
    await reviveShared(shared);
    return { guest: shared, release: async () => undefined };
  }
  const own = await startBlueZGuest(opts);
  const { stop, ...info } = own;
  return { guest: info, release: stop };
}

/**
 * The end of a guest test file's afterAll: with BLEWIRE_INTEROP_KEEP=DIR its captures are copied there
 * (for a look with `npx blewire decode` or Wireshark), then its temporary directory is removed. Either
 * may be unset when the file's beforeAll failed early.
 */
export function keepCapturesAndClean(tmp: string | undefined, captures: ReadonlyArray<string | undefined>): void {
  const keep = process.env.BLEWIRE_INTEROP_KEEP;
  if (keep) for (const c of captures) if (c && fs.existsSync(c)) fs.copyFileSync(c, path.join(keep, path.basename(c)));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}

/**
 * A guest shared between test files is as the last file left it: if bluetoothd died there (a guest
 * kernel BUG, see GuestControl.reviveBluetoothd), start it again and say so on the console, so that
 * this file meets a BlueZ with its GATT server and advertisement, as a fresh guest has.
 */
async function reviveShared(guest: BlueZGuestInfo): Promise<void> {
  const { GuestControl } = await import('./guest-control.js');
  const ctl = await GuestControl.open(guest.ctlSocket);
  try {
    const account = await ctl.reviveBluetoothd();
    if (account) console.warn(account);
  } finally {
    ctl.close();
  }
}

/**
 * Describes a guest started by hand with `tools/interop/guest/boot.sh start --dir DIR` (its DIR/guest.env),
 * for iterating on tests without a boot per run. The caller does not own it: stop it with `boot.sh stop`.
 */
export function attachBlueZGuest(runDir: string): BlueZGuestInfo {
  const kv = parseKeyValues(fs.readFileSync(path.join(runDir, 'guest.env'), 'utf8'));
  const info = infoFrom(kv, runDir);
  process.kill(info.qemuPid, 0); // throws ESRCH if that qemu is gone
  return info;
}

function infoFrom(kv: Map<string, string>, dir: string): BlueZGuestInfo {
  return {
    h4Socket: kv.get('H4_SOCKET') ?? path.join(dir, 'h4.sock'),
    ctlSocket: kv.get('CTL_SOCKET') ?? path.join(dir, 'ctl.sock'),
    consoleLog: kv.get('CONSOLE_LOG') ?? path.join(dir, 'console.log'),
    peripheral: kv.get('PERIPHERAL') ?? '',
    peripheralName: kv.get('PERIPHERAL_NAME') ?? '',
    qemuPid: Number(kv.get('QEMU_PID')),
    readySeconds: Number(kv.get('READY_SECONDS')),
    runDir: dir,
  };
}

/** HCI Reset and its Command Complete (Core Vol 4, Part E, 7.3.2; 7.7.14), as whole H4 packets. */
const RESET = Uint8Array.of(0x01, 0x03, 0x0c, 0x00);
const RESET_COMPLETE_PREFIX = Uint8Array.of(0x04, 0x0e, 0x04); // then Num_HCI_Command_Packets, 03 0c, status

function findResetComplete(buf: Buffer): number {
  for (let i = 0; i + 7 <= buf.length; i++) {
    if (buf[i] === RESET_COMPLETE_PREFIX[0] && buf[i + 1] === RESET_COMPLETE_PREFIX[1] && buf[i + 2] === RESET_COMPLETE_PREFIX[2] &&
        buf[i + 4] === 0x03 && buf[i + 5] === 0x0c) {
      return i;
    }
  }
  return -1;
}

/**
 * Connects to the bridged H4 socket, sends HCI Reset and discards every byte before Reset's Command Complete
 * (which is consumed too), so the returned socket starts on a packet boundary with a freshly reset
 * controller. Rejects if Reset does not complete with status 0 within timeoutMs.
 */
export function syncH4(socketPath: string, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no Command Complete for HCI Reset on ${socketPath} within ${timeoutMs} ms (got ${buf.toString('hex')})`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const at = findResetComplete(buf);
      if (at < 0) return;
      clearTimeout(timer);
      sock.off('data', onData);
      sock.pause();
      const status = buf[at + 6];
      if (status !== 0) {
        sock.destroy();
        reject(new Error(`HCI Reset failed with status 0x${status.toString(16)}`));
        return;
      }
      const rest = buf.subarray(at + 7);
      if (rest.length > 0) sock.unshift(rest);
      resolve(sock);
    };
    sock.on('data', onData);
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once('connect', () => sock.write(RESET));
  });
}

/** A file to place in the guest: a host path (file or directory, copied recursively) or its content. */
export type GuestFile = string | Uint8Array | { hostPath: string };

export interface RunInGuestOptions {
  /** Overall time-out in ms for build, boot and the command (default 600 000). */
  timeoutMs?: number;
  /** Extra kernel command line, e.g. "blewire.controllers=3". */
  append?: string;
}

export interface RunInGuestResult {
  /** The command's stdout, byte for byte (the guest's ttyS2). */
  stdout: string;
  exitCode: number;
  /** The guest console: init's progress lines and the command's stderr. */
  console: string;
}

/**
 * Boots a guest in run mode with `files` added to its root file system and runs `command` (a /bin/sh
 * command line, run from /blewire-run) once BlueZ is up. The command sees BLEWIRE_PERIPHERAL (BlueZ's
 * address) and BLEWIRE_HCI_INDEX (a powered-off kernel controller, hci1, free for an HCI user channel), and
 * the host's node as `node`. Keys of `files` are absolute guest paths; a string value is a host path.
 */
export async function runInGuest(files: Record<string, GuestFile>, command: string, opts: RunInGuestOptions = {}): Promise<RunInGuestResult> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blewire-guest.'));
  started.add(dir);
  installExitHook();
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'blewire-guest-files.'));
  try {
    for (const [guestPath, file] of Object.entries(files)) {
      if (!guestPath.startsWith('/')) throw new Error(`guest path must be absolute: ${guestPath}`);
      const dest = path.join(stage, guestPath);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      if (file instanceof Uint8Array) fs.writeFileSync(dest, file);
      else fs.cpSync(typeof file === 'string' ? file : file.hostPath, dest, { recursive: true, dereference: true });
    }
    // The READY wait as in startBlueZGuest (360 s): boot.sh's own default, 120 s, was too short for a
    // loaded CI machine (seen: bluetoothd powered at 90 s guest uptime, not READY at 120 s).
    const args = ['run', '--keep', '--dir', dir, '--files', stage, '--timeout', String(Math.ceil(GUEST_READY_TIMEOUT_MS / 1000)),
      '--run-timeout', String(Math.ceil(timeoutMs / 1000))];
    if (opts.append) args.push('--append', opts.append);
    args.push('--', command);
    const res = await new Promise<{ stdout: string; code: number; stderr: string }>((resolve, reject) => {
      const child = spawn(BOOT_SH, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs + 300_000);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? -1 });
      });
    });
    let consoleText = '';
    try {
      consoleText = fs.readFileSync(path.join(dir, 'console.log'), 'utf8');
    } catch {
      consoleText = res.stderr;
    }
    if (!/^BLEWIRE-RUN-EXIT \d+/m.test(consoleText)) {
      throw new Error(`the guest command did not complete (boot.sh exit ${res.code}):\n${res.stderr}\n${consoleText}`);
    }
    return { stdout: res.stdout, exitCode: res.code, console: consoleText };
  } finally {
    killFromPidFile(dir);
    started.delete(dir);
    fs.rmSync(stage, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
