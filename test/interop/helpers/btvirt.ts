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
