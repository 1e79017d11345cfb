// Pins the private-file helpers the GATT cache and the bond store share (issue 15, "The disk is
// hostile too"): modes 0700/0600, a temp file that never follows a planted symlink, fsync of the
// temp file before the rename and of the directory after, the old file intact after a failed write,
// stale temp files removed, and a size cap checked before reading.
import { readFileSync, readdirSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { FileError } from '../../../src/errors.js';
import {
  createExclusive, ensurePrivateDir, readFileCapped, removeStaleTempFiles, writeFileAtomic, STALE_TEMP_MS,
} from '../../../src/platform/files.js';

let root: string;
beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'blewire-files-')); });
afterEach(async () => { await rm(root, { recursive: true, force: true }); });

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

test('writeFileAtomic creates the directory 0700 and the file 0600, and replaces content whole', async () => {
  const dir = join(root, 'a', 'b');
  const file = join(dir, 'peer.json');
  await writeFileAtomic(file, 'one');
  expect(await mode(dir)).toBe(0o700);
  expect(await mode(file)).toBe(0o600);
  await writeFileAtomic(file, Uint8Array.of(0x74, 0x77, 0x6f));
  expect(await readFile(file, 'utf8')).toBe('two');
  expect(await readdir(dir)).toEqual(['peer.json']); // no temp file left
});

test('an existing directory open to others is tightened to 0700; a symlink in its place is refused', async () => {
  const dir = join(root, 'open');
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  await ensurePrivateDir(dir);
  expect(await mode(dir)).toBe(0o700);
  const target = join(root, 'elsewhere');
  await mkdir(target);
  await symlink(target, join(root, 'link'));
  await expect(ensurePrivateDir(join(root, 'link'))).rejects.toBeInstanceOf(FileError);
});

test('a symlink planted at any temp name is never followed: the temp file is created exclusively', async () => {
  const dir = join(root, 'cache');
  await ensurePrivateDir(dir);
  const victim = join(root, 'victim');
  await writeFile(victim, 'precious');
  // Plant symlinks at every name this process could pick is impossible (random part), so plant one
  // at each name an attacker can see: the previous temp names. The write must still not touch victim.
  const file = join(dir, 'peer.json');
  for (let i = 0; i < 20; i++) await writeFileAtomic(file, `v${i}`);
  await symlink(victim, join(dir, `.peer.json.${process.pid}.000000000000.tmp`));
  await writeFileAtomic(file, 'new');
  expect(await readFile(victim, 'utf8')).toBe('precious');
  expect(await readFile(file, 'utf8')).toBe('new');
  // The planted link itself is a stale temp entry (not a regular file) and was removed.
  expect((await readdir(dir)).sort()).toEqual(['peer.json']);
});

test('the exclusive create never opens what is already at the name: a symlink, dangling or not, or a file', async () => {
  const victim = join(root, 'victim');
  await writeFile(victim, 'precious');
  await symlink(victim, join(root, 'live-link'));
  await symlink(join(root, 'not-yet'), join(root, 'dangling-link'));
  await writeFile(join(root, 'plain'), 'x');
  for (const name of ['live-link', 'dangling-link', 'plain']) {
    const err = await createExclusive(join(root, name)).catch(e => e);
    expect(err).toBeInstanceOf(FileError);
    expect((err as FileError).cause).toMatchObject({ code: 'EEXIST' });
  }
  expect(await readFile(victim, 'utf8')).toBe('precious');
  await expect(lstat(join(root, 'not-yet'))).rejects.toMatchObject({ code: 'ENOENT' }); // not created through the link
});

test('writeFileAtomic fsyncs the complete temp file before the rename, and the directory after it', async () => {
  const dir = join(root, 'durable');
  const target = join(dir, 'peer.json');
  await writeFileAtomic(target, 'old');
  // What the disk holds at each fsync (FileHandle.sync, the only sync the module uses): the target's
  // content and the other names in the directory.
  const probe = await open(target, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const original = proto.sync;
  const seen: Array<{ target: string; temps: string[] }> = [];
  proto.sync = function (this: unknown) {
    seen.push({
      target: readFileSync(target, 'utf8'),
      temps: readdirSync(dir).filter(n => n !== 'peer.json').map(n => readFileSync(join(dir, n), 'utf8')),
    });
    return original.call(this);
  };
  try {
    await writeFileAtomic(target, 'new');
  } finally {
    proto.sync = original;
  }
  expect(seen).toEqual([
    { target: 'old', temps: ['new'] }, // the temp file, whole, before it replaces the target
    { target: 'new', temps: [] },      // the directory, after the rename
  ]);
});

test('a write that fails at the rename leaves the old state and no temp file', async () => {
  const dir = join(root, 'c');
  const target = join(dir, 'peer.json');
  await mkdir(join(target, 'occupied'), { recursive: true }); // a non-empty directory cannot be renamed over
  const err = await writeFileAtomic(target, 'new').catch(e => e);
  expect(err).toBeInstanceOf(FileError);
  expect((err as FileError).code).toBe('EFILE');
  expect((await readdir(dir)).sort()).toEqual(['peer.json']);
  expect((await stat(target)).isDirectory()).toBe(true);
});

test('stale temp files are removed: a dead writer\'s at once, a live one\'s only when old', async () => {
  const dir = join(root, 'c');
  await ensurePrivateDir(dir);
  const file = join(dir, 'peer.json');
  // A pid that cannot run: beyond pid_max on Linux.
  const dead = join(dir, '.peer.json.99999999.abcdef.tmp');
  const live = join(dir, `.peer.json.${process.pid}.abcdef.tmp`);
  const other = join(dir, '.other.json.99999999.abcdef.tmp');
  for (const p of [dead, live, other]) await writeFile(p, 'x');
  expect(await removeStaleTempFiles(file)).toBe(1);
  expect((await readdir(dir)).sort()).toEqual(['.other.json.99999999.abcdef.tmp', `.peer.json.${process.pid}.abcdef.tmp`]);
  const old = new Date(Date.now() - STALE_TEMP_MS - 5000);
  await utimes(live, old, old);
  expect(await removeStaleTempFiles(file)).toBe(1);
  expect(await readdir(dir)).toEqual(['.other.json.99999999.abcdef.tmp']);
});

test('readFileCapped: missing is undefined, the cap is checked before reading, only regular files', async () => {
  expect(await readFileCapped(join(root, 'none'), 10)).toBeUndefined();
  const f = join(root, 'f');
  await writeFile(f, 'abcdef');
  expect(new TextDecoder().decode(await readFileCapped(f, 6))).toBe('abcdef');
  const big = await readFileCapped(f, 5).catch(e => e);
  expect(big).toBeInstanceOf(FileError);
  expect((big as Error).message).toMatch(/6 octets, more than the 5 allowed/);
  // A FIFO would block a plain read forever; it is refused without reading.
  const fifo = join(root, 'fifo');
  execFileSync('mkfifo', [fifo]);
  expect((await lstat(fifo)).isFIFO()).toBe(true);
  await expect(readFileCapped(fifo, 100)).rejects.toThrow(/not a regular file/);
  // A device that reports size 0 but never ends is refused the same way.
  await expect(readFileCapped('/dev/zero', 100)).rejects.toThrow(/not a regular file/);
});
