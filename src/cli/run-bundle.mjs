// Runs the bundled CLI (dist/cli/blewire.cjs, tools/package/bundle-cli.mjs) with a V8 code cache, so
// that a start-up does not parse and compile the same 1.3 MB of JavaScript again. Node 20 has no
// module.enableCompileCache() (Node 22.1+), so this is the vm.Script route: the bundle is compiled as
// one script with the cached data of an earlier run, and the data is written back when a run had none.
//
// The cache is an optimisation and nothing else: any doubt is a miss, and a miss only costs the
// compilation. Never a crash, never a message, whatever the cache folder holds.
// - Where: $XDG_CACHE_HOME/blewire (if absolute), else ~/.cache/blewire; BLEWIRE_CODE_CACHE=0 turns it off.
// - The folder is used only if it is a real directory (not a symbolic link), owned by this user and
//   closed to others (mode 0700; it is created so). A file is used only if it is a regular file, not a
//   link, owned by this user, mode 0600 and at most MAX_FILE bytes. Only this user can have written it.
// - One file per command (`scan`, `help`, …: each run compiles different functions), named by the
//   command and a key of (blewire version, Node version, architecture, SHA-256 of the bundle). Its header
//   repeats the bundle's hash and holds the payload's hash, both checked before V8 sees a byte: V8 itself
//   checks only the source length and its own version, so a damaged or stale payload must never reach it.
// - Written atomically (a 0600 temporary file opened with O_EXCL in the same folder, then renamed),
//   after a successful run (exit code 0) or, for a command that runs on (scan, notify), a second in;
//   writing replaces the command's file of an older key, so the folder holds at most one per command.
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, constants as fsc, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync,
  renameSync, unlinkSync, writeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import vm from 'node:vm';

const MAGIC = Buffer.from('BLWV8CC1', 'latin1'); // 8 bytes: format of this file
const HEADER = MAGIC.length + 32 + 32 + 4; // magic, SHA-256 of the bundle, SHA-256 of the payload, payload length
/** Bound on a cache file read into memory (the bundle's cache is about 1-3 MB). */
export const MAX_FILE = 64 << 20;
const WRITE_AFTER_MS = 1000;

const sha256 = (b) => createHash('sha256').update(b).digest();

/** The cache folder to use, or undefined (turned off, or no home). Nothing is created here. */
export function codeCacheDir(env = process.env) {
  if (env.BLEWIRE_CODE_CACHE === '0') return undefined;
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) return join(env.XDG_CACHE_HOME, 'blewire');
  let home;
  try {
    home = homedir();
  } catch {
    return undefined;
  }
  return home && isAbsolute(home) ? join(home, '.cache', 'blewire') : undefined;
}

/** The cache's name for a command line: its command word when it looks like one, else `other`. */
export function commandKey(argv) {
  const w = argv[0];
  if (w === undefined || w === '--help' || w === '-h' || w === 'help') return 'help';
  return /^[a-z][a-z-]{0,23}$/.test(w) ? w : 'other';
}

const uid = () => (typeof process.getuid === 'function' ? process.getuid() : undefined);

/** True when `dir` is ours alone: a directory, not a link, our uid, no access for group or others. */
function privateDir(dir) {
  const st = lstatSync(dir);
  return st.isDirectory() && !st.isSymbolicLink() && (uid() === undefined || st.uid === uid()) && (st.mode & 0o077) === 0;
}

/** The folder, created 0700 if missing; undefined when it is not private (then the cache is not used). */
function openDir(dir) {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return privateDir(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** The verified payload of a cache file, or undefined (missing, foreign, damaged, stale). */
export function readCodeCache(file, bundleHash) {
  let fd;
  try {
    fd = openSync(file, fsc.O_RDONLY | (fsc.O_NOFOLLOW ?? 0));
    const st = fstatSync(fd);
    if (!st.isFile() || (uid() !== undefined && st.uid !== uid()) || (st.mode & 0o777) !== 0o600) return undefined;
    if (st.size < HEADER || st.size > MAX_FILE) return undefined;
    const buf = Buffer.allocUnsafe(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) return undefined; // shrank while read
      n += r;
    }
    if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    let o = MAGIC.length;
    if (!buf.subarray(o, o + 32).equals(bundleHash)) return undefined;
    o += 32;
    const payloadHash = buf.subarray(o, o + 32);
    o += 32;
    const length = buf.readUInt32BE(o);
    o += 4;
    if (length !== buf.length - HEADER) return undefined;
    const payload = buf.subarray(HEADER);
    return sha256(payload).equals(payloadHash) ? payload : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) try { closeSync(fd); } catch { /* nothing to do */ }
  }
}

/** Writes a cache file atomically (0600), then removes the command's files of other keys. Never throws. */
export function writeCodeCache(dir, name, command, bundleHash, payload) {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd;
  try {
    const header = Buffer.alloc(HEADER);
    MAGIC.copy(header, 0);
    bundleHash.copy(header, MAGIC.length);
    sha256(payload).copy(header, MAGIC.length + 32);
    header.writeUInt32BE(payload.length, MAGIC.length + 64);
    fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (fsc.O_NOFOLLOW ?? 0), 0o600);
    for (const b of [header, payload]) {
      let n = 0;
      while (n < b.length) n += writeSync(fd, b, n, b.length - n);
    }
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, join(dir, name));
    for (const f of readdirSync(dir)) {
      if (f !== name && f.startsWith(`${command}.`) && f.endsWith('.v8cache')) try { unlinkSync(join(dir, f)); } catch { /* gone */ }
    }
  } catch {
    if (fd !== undefined) try { closeSync(fd); } catch { /* nothing to do */ }
    try { unlinkSync(tmp); } catch { /* never made */ }
  }
}

/**
 * Compiles and runs the CommonJS bundle `file` as this process's program, with the code cache when one
 * is usable. `version` is blewire's version (part of the key). Returns once the bundle's top level ran,
 * with what became of the cache: 'hit', 'miss' (none or unusable: one is written), 'rejected' (V8 did not
 * take it: one is written) or 'off' (no usable folder: nothing is read or written).
 */
export function runBundle(file, version, argv = process.argv.slice(2), env = process.env) {
  const source = readFileSync(file, 'utf8');
  const bundleHash = sha256(source);
  const command = commandKey(argv);
  const key = sha256(`${version}\0${process.version}\0${process.arch}\0`).toString('hex').slice(0, 8) +
    bundleHash.toString('hex').slice(0, 24);
  const name = `${command}.${key}.v8cache`;
  const wanted = codeCacheDir(env);
  const dir = wanted === undefined ? undefined : openDir(wanted);
  const cachedData = dir === undefined ? undefined : readCodeCache(join(dir, name), bundleHash);

  // The wrapper Node puts around a CommonJS file, so the bundle sees require, module, __filename.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
    // The few import() the bundle keeps (optional packages by name) go to Node's own loader.
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (dir !== undefined && (cachedData === undefined || script.cachedDataRejected)) {
    let written = false;
    const save = () => {
      if (written) return;
      written = true;
      let data;
      try {
        data = script.createCachedData();
      } catch {
        return;
      }
      writeCodeCache(dir, name, command, bundleHash, data);
    };
    // Functions compiled by the time of the snapshot are in it: at the end of a successful run, or a
    // second into a long one.
    process.once('exit', code => { if (code === 0) save(); });
    setTimeout(save, WRITE_AFTER_MS).unref();
  }
  const module = { exports: {}, filename: file, id: '.', loaded: false };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  module.loaded = true;
  if (dir === undefined) return 'off';
  return cachedData === undefined ? 'miss' : script.cachedDataRejected ? 'rejected' : 'hit';
}
