/**
 * Private files on a hostile disk: the GATT cache now, the SMP bond store next.
 *
 * The threat model (issue 15): another local user, or a process of ours with a bug, may plant a
 * symlink where we write, leave a half-written temp file behind, or grow a file until loading it
 * exhausts memory. So:
 * - ensurePrivateDir: the directory is created 0700 (and tightened to 0700 if it already exists
 *   with group/other bits); a symlink or a non-directory in its place is refused.
 * - writeFileAtomic: the data goes to a temp file in the same directory, created exclusively
 *   (O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600), so a symlink planted at the temp name is never
 *   followed; the temp file is fsync'ed before it is renamed over the target, and the directory
 *   is fsync'ed after, so a crash leaves the old file or the new one, never half of one. Stale temp
 *   files of the same target (older than STALE_TEMP_MS, or left by a process that no longer runs)
 *   are removed first.
 * - readFileCapped: the size is checked on the open descriptor before anything is read, only
 *   regular files are read, and never more than the cap; a missing file is `undefined`.
 *
 * Errors are FileError (code EFILE) with the path, the operation and the system error as `cause`.
 * Only this module touches node:fs for private files; protocol code receives bytes.
 */
import { constants, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FileError } from '../errors.js';
// randomBytes from the seam's crypto.ts, which loads node:crypto on first use, not at import (issue 14).
import { randomBytes } from './crypto.js';

export { FileError };

/** Mode of a private directory (owner only). */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of a private file (owner read/write). */
export const PRIVATE_FILE_MODE = 0o600;
/** A temp file older than this is a crash's leftover, not a write in progress (ms). */
export const STALE_TEMP_MS = 60_000;

const TEMP_SUFFIX = '.tmp';

/**
 * Create `dir` (and its parents) for the owner only. An existing directory with group or other
 * permission bits is tightened to 0700; a symlink or a non-directory at `dir` is refused.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (e) {
    throw new FileError('create directory', dir, errText(e), { cause: e });
  }
  let st: Stats;
  try {
    st = await lstat(dir);
  } catch (e) {
    throw new FileError('create directory', dir, errText(e), { cause: e });
  }
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new FileError('create directory', dir, 'is not a directory (a symlink or a file is in its place); remove it');
  }
  if ((st.mode & 0o077) !== 0) {
    try {
      await chmod(dir, PRIVATE_DIR_MODE);
    } catch (e) {
      throw new FileError('restrict directory', dir, errText(e), { cause: e });
    }
  }
}

export interface WriteAtomicOptions {
  /** File mode of the new file, default 0600. */
  mode?: number;
  /** Create the directory with ensurePrivateDir first (default true). */
  ensureDir?: boolean;
}

/**
 * Replace `path` with `data` atomically and privately (see the module comment). Resolves when the
 * new content is durable; on any failure the temp file is removed and the old file is untouched.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: WriteAtomicOptions = {}): Promise<void> {
  const dir = dirname(path);
  if (options.ensureDir ?? true) await ensurePrivateDir(dir);
  await removeStaleTempFiles(path);
  const tmp = tempName(path);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fh = await createExclusive(tmp, options.mode ?? PRIVATE_FILE_MODE);
  try {
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw new FileError('write', path, errText(e), { cause: e });
  }
  await syncDir(dir);
}

/**
 * Create a new file for writing, failing if anything (a file, a symlink, dangling or not) is already
 * at `path`: O_CREAT | O_EXCL (and O_NOFOLLOW where the platform has it).
 */
export async function createExclusive(path: string, mode = PRIVATE_FILE_MODE): Promise<FileHandle> {
  try {
    return await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | noFollow(), mode);
  } catch (e) {
    throw new FileError('create', path, errText(e), { cause: e });
  }
}

/**
 * Read a whole file of at most `maxBytes`. Missing file → undefined. A larger file, or one that is
 * not a regular file (a FIFO, a device), is refused with FileError before its content is read.
 */
export async function readFileCapped(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    if (isCode(e, 'ENOENT') || isCode(e, 'ENOTDIR')) return undefined;
    throw new FileError('open', path, errText(e), { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FileError('read', path, 'is not a regular file');
    if (st.size > maxBytes) throw new FileError('read', path, `is ${st.size} octets, more than the ${maxBytes} allowed; delete it`);
    // Read at most maxBytes + 1 whatever the size said (the file may grow while we read). The buffer
    // starts at the size stat gave (+1 to see growth), not at the cap: a 300-octet bond file must not
    // cost an 8 MB allocation per read.
    let buf = new Uint8Array(Math.min(maxBytes, st.size) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        const bigger = new Uint8Array(Math.min(maxBytes + 1, buf.length * 2));
        bigger.set(buf);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw new FileError('read', path, `grew beyond the ${maxBytes} octets allowed while being read`);
    }
    return buf.slice(0, n);
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError('read', path, errText(e), { cause: e });
  } finally {
    await fh.close();
  }
}

/** `name` inside `dir` (the path spelling of this platform). */
export function pathIn(dir: string, name: string): string {
  return join(dir, name);
}

/** Remove a file; a missing one is not an error. */
export async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if (!isCode(e, 'ENOENT')) throw new FileError('remove', path, errText(e), { cause: e });
  }
}

/** The names in `dir` (not recursive); a missing directory has none. */
export async function listFiles(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (isCode(e, 'ENOENT') || isCode(e, 'ENOTDIR')) return [];
    throw new FileError('list', dir, errText(e), { cause: e });
  }
}

/**
 * Remove temp files of `path` (`.<name>.<pid>.<random>.tmp`) left behind by a crash: those whose
 * writer process is gone, and any older than STALE_TEMP_MS. Returns how many were removed.
 */
export async function removeStaleTempFiles(path: string, now = Date.now()): Promise<number> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  let removed = 0;
  for (const name of await listFiles(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith(TEMP_SUFFIX)) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    const full = join(dir, name);
    let st: Stats;
    try {
      st = await lstat(full);
    } catch {
      continue;
    }
    const old = now - st.mtimeMs > STALE_TEMP_MS;
    if (old || !st.isFile() || !processAlive(pid)) {
      await unlink(full).then(() => { removed++; }, () => {});
    }
  }
  return removed;
}

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Buffer.from(randomBytes(6)).toString('hex')}${TEMP_SUFFIX}`);
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isCode(e, 'EPERM'); // alive, someone else's
  }
}

/** O_NOFOLLOW where the platform has it (not on Windows). */
function noFollow(): number {
  return constants.O_NOFOLLOW ?? 0;
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename durable on POSIX; not possible (nor needed) everywhere, so best effort.
  let fh;
  try {
    fh = await open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch {
    // ignore
  } finally {
    await fh?.close().catch(() => {});
  }
}

function isCode(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
