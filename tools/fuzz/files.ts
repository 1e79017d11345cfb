/**
 * The `files` layer of the stream fuzzer (issue 15, "the disk is hostile too"): every file blewire
 * reads back — a bond (FileBondStore), a GATT cache entry (FileGattCache), our privacy keys
 * (local-identity.json), the Web Bluetooth permissions file (GrantFile), the gateway's config file
 * (readConfigFile + resolveConfig) — planted in a private temporary directory in a hostile form and
 * read through the public reader. One input is one file's content:
 *
 *   [kind] [how] [content…]
 *
 * kind: 0 bond, 1 GATT cache, 2 local identity, 3 permissions, 4 gateway config. how: 0 a regular file
 * with the content; 1 a symlink to such a file elsewhere; 2 a dangling symlink; 3 a sparse file one
 * octet over the reader's cap; 4 a directory; 5 a symlink to /dev/zero (endless, not a regular file);
 * 6 a symlink to itself (a loop). The content is a valid file of that kind mutated: a JSON value
 * somewhere replaced by a hostile one (wrong types, edge numbers, `__proto__`, objects whose
 * toString is not a function, deep nesting, long lists and strings), bytes mutated, truncated.
 *
 * The check for each read: it ends with a value or a typed miss — `undefined` / `[]` / the reader's
 * BlewireError (FileError, GatewayError) — never another exception; a value it returns holds its
 * invariants (handles in range and nested for the cache, key sizes for a bond). And at a checkpoint:
 * nothing left in the temp directory but the planted file (no temp files), bounded heap.
 *
 * Where the cost goes: a planted regular file is the same handful of system calls whatever it holds
 * (write it; open, fstat, read, read, close it), and that, not the parsing, was most of the layer's
 * cost (≈ 0.9-1.5 k inputs per CPU-second on a disk, ≈ 2 k on tmpfs). What varies is the content, so
 * a regular-file input goes through the file system one time in DISK_EVERY and otherwise straight to
 * the reader's decoder — the function the reader itself calls on the octets it read (decodeBondFile,
 * decodeCacheFile, decodeLocalIdentity, decodeGrantsFile, parseConfigFile + resolveConfig), with the
 * reader's own handling of its failures. Every other `how` (symlinks, loops, /dev/zero, directories,
 * files over the cap) always goes through the file system. The directory is on tmpfs (/dev/shm) when
 * the machine has one (BLEWIRE_FUZZ_DIR overrides): the same system calls and checks, no disk writes.
 */
import { existsSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlewireError, FileError } from '../../src/errors.js';
import {
  decodeBondFile, decodeLocalIdentity, FileBondStore, LOCAL_IDENTITY_FILE, MAX_BOND_FILE_BYTES, type Bond,
} from '../../src/smp/bonds.js';
import { decodeCacheFile, FileGattCache, MAX_CACHE_FILE_BYTES, serializeCache, type CachedDatabase } from '../../src/gatt/cache.js';
import { decodeGrantsFile, formatGrants, GrantFile, MAX_GRANTS_FILE_BYTES } from '../../src/web-bluetooth/grants.js';
import { MAX_CONFIG_FILE_BYTES, parseConfigFile, readConfigFile, resolveConfig } from '../../src/apps/gateway/config.js';
import { mutate, type Rng } from './mutate.js';

export const FILE_KINDS = ['bond', 'gatt cache', 'local identity', 'permissions', 'gateway config'] as const;
const HOWS = 7;
/** Each reader's cap: the sparse file is one octet over it. */
const CAPS = [MAX_BOND_FILE_BYTES, MAX_CACHE_FILE_BYTES, MAX_BOND_FILE_BYTES, MAX_GRANTS_FILE_BYTES, MAX_CONFIG_FILE_BYTES];
/** A regular-file input goes through the file system once in this many; the others to the decoder. */
export const DISK_EVERY = 8;
/** Where the temporary directory goes: tmpfs when there is one. */
function fuzzDirBase(): string {
  const chosen = process.env['BLEWIRE_FUZZ_DIR'];
  if (chosen) return chosen;
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}
/** Largest content the generator plants (a hostile list of 70 000 entries fits). */
const MAX_CONTENT = 512 * 1024;

const PEER = { type: 1 as const, address: 'C0:11:22:33:44:55' };
const PEER_ID = 'c0:11:22:33:44:55';
/** The bond file's name without `.json` (the bond's identity must match it). */
const BOND_KEY = 'random-C01122334455';
const U = (n: number): string => `0000${n.toString(16).padStart(4, '0')}-0000-1000-8000-00805f9b34fb`;
const enc = new TextEncoder();

function templates(): string[] {
  const bond: Bond = {
    identity: PEER, secureConnections: true, authenticated: true, keySize: 16,
    ltk: { key: new Uint8Array(16).fill(7), ediv: 0, rand: new Uint8Array(8) },
    localLtk: { key: new Uint8Array(16).fill(9), ediv: 0x1234, rand: new Uint8Array(8).fill(3) },
    peerIrk: new Uint8Array(16).fill(1), peerCsrk: new Uint8Array(16).fill(2),
    cccds: { [`${U(0x180d)}/${U(0x2a37)}`]: 1 },
  };
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  const bondJson = JSON.stringify({
    format: 1, identity: { type: 'random', address: PEER.address }, secureConnections: true, authenticated: true, keySize: 16,
    ltk: { key: hex(bond.ltk!.key), ediv: 0, rand: hex(bond.ltk!.rand) },
    localLtk: { key: hex(bond.localLtk!.key), ediv: bond.localLtk!.ediv, rand: hex(bond.localLtk!.rand) },
    peerIrk: hex(bond.peerIrk!), peerCsrk: hex(bond.peerCsrk!), cccds: bond.cccds,
  }, null, 2);
  const db: CachedDatabase = {
    hash: new Uint8Array(16).fill(0xab),
    services: [
      { uuid: U(0x1800), primary: true, start: 1, end: 5, includes: [], characteristics: [
        { uuid: U(0x2a00), declHandle: 2, valueHandle: 3, properties: 0x02, end: 3, descriptors: [] },
        { uuid: U(0x2a01), declHandle: 4, valueHandle: 5, properties: 0x02, end: 5, descriptors: [] },
      ] },
      { uuid: U(0x180d), primary: true, start: 6, end: 0x0f, includes: [{ handle: 7, start: 1, end: 5, uuid: U(0x1800) }], characteristics: [
        { uuid: U(0x2a37), declHandle: 8, valueHandle: 9, properties: 0x10, end: 0x0a, descriptors: [{ handle: 0x0a, uuid: U(0x2902) }] },
      ] },
    ],
  };
  const identity = JSON.stringify({ format: 'blewire-local-identity/1', irk: '00112233445566778899aabbccddeeff', staticAddress: 'C3:11:22:33:44:55' }, null, 2);
  const grants = formatGrants([{ id: 'AAECAwQFBgcICQoLDA0ODw==', address: 'C0:11:22:33:44:55', addressType: 'random', name: 'Sensor',
    services: [U(0x180d), U(0x180f)] }]);
  const gateway = JSON.stringify({ id: 'gw-1', mqtt: { url: 'mqtt://localhost:1883', qos: 1, protocolVersion: 4 },
    publish: { minIntervalMs: 1000, maxIntervalMs: 60000 }, keys: { 'C0:11:22:33:44:55': '00112233445566778899aabbccddeeff' }, bonds: false });
  return [bondJson, serializeCache(db), identity, grants, gateway];
}

/** JSON texts of values a hostile file may hold where the reader expects something else. */
const HOSTILE: readonly string[] = [
  'null', 'true', 'false', '0', '-1', '1.5', '65535', '65536', '-0', '1e308', '9007199254740993', '""', '"__proto__"',
  '"constructor"', '"ffffffffffffffffffffffffffffffff"', '[]', '{}', '[[]]', '{"toString":1}', '{"valueOf":{},"toString":null}',
  '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '"\\u0000"', '"\\ud800"',
];

function hostileValue(rng: Rng): unknown {
  switch (rng.int(8)) {
    case 0: return '"' + 'A'.repeat(1 + rng.int(rng.chance(0.1) ? 100_000 : 300)) + '"';
    case 1: return '[' + '1,'.repeat(rng.chance(0.1) ? 70_000 : rng.int(300)) + '1]';
    case 2: { const d = 1 + rng.int(rng.chance(0.2) ? 20_000 : 50); return '['.repeat(d) + ']'.repeat(d); }
    default: return rng.pick(HOSTILE);
  }
}

/** Every (parent, key) of a parsed JSON value, for picking where to plant a hostile value. */
function slots(v: unknown, out: Array<[Record<string, unknown> | unknown[], string | number]> = [], depth = 0): typeof out {
  if (depth > 12 || v === null || typeof v !== 'object') return out;
  if (Array.isArray(v)) v.forEach((x, i) => { out.push([v, i]); slots(x, out, depth + 1); });
  else for (const [k, x] of Object.entries(v)) { out.push([v as Record<string, unknown>, k]); slots(x, out, depth + 1); }
  return out;
}

/** A structurally hostile JSON text from a template: one value replaced, one key removed or added. */
function jsonMutant(rng: Rng, template: string): string {
  const doc = JSON.parse(template) as unknown;
  const all = slots(doc);
  const hostile = hostileValue(rng) as string;
  const PLACEHOLDER = JSON.stringify('\u0001HOSTILE\u0001');
  if (all.length === 0 || rng.chance(0.05)) return hostile;
  const [parent, key] = rng.pick(all);
  const r = rng.int(10);
  if (r < 7) (parent as Record<string, unknown>)[key as string] = '\u0001HOSTILE\u0001';
  else if (r < 9 && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[key as string];
  else if (!Array.isArray(parent)) (parent as Record<string, unknown>)[rng.pick(['__proto__', 'constructor', 'toString', 'x'])] = '\u0001HOSTILE\u0001';
  return JSON.stringify(doc).split(PLACEHOLDER).join(hostile);
}

/** One input of the files layer. */
export function filesGenerator(): (rng: Rng) => Uint8Array {
  const t = templates().map(s => enc.encode(s));
  const texts = templates();
  return rng => {
    const kind = rng.int(FILE_KINDS.length);
    const how = rng.chance(0.8) ? 0 : rng.int(HOWS);
    let content: Uint8Array;
    const r = rng.int(20);
    if (r < 10) content = enc.encode(jsonMutant(rng, texts[kind]!));
    else if (r < 16) content = mutate(rng, t[kind]!, 0, MAX_CONTENT);
    else if (r < 19) content = t[kind]!.subarray(0, rng.int(t[kind]!.length));
    else content = t[kind]!;
    if (content.length > MAX_CONTENT) content = content.subarray(0, MAX_CONTENT);
    const out = new Uint8Array(2 + content.length);
    out[0] = kind;
    out[1] = how;
    out.set(content, 2);
    return out;
  };
}

function fileName(kind: number): string {
  switch (kind) {
    case 0: return `${BOND_KEY}.json`;
    case 1: return `${PEER_ID.replace(/[^0-9a-z_-]/g, '_')}.json`;
    case 2: return LOCAL_IDENTITY_FILE;
    case 3: return 'permissions.json';
    default: return 'gateway.json';
  }
}

/** Invariants of what a reader returned (a value that passed its checks must be usable). */
function checkValue(kind: number, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (kind === 0) {
    const b = v as Bond;
    if (!(b.keySize >= 7 && b.keySize <= 16)) return `bond with keySize ${String(b.keySize)}`;
    if (b.ltk && (b.ltk.key.length !== 16 || b.ltk.rand.length !== 8)) return 'bond LTK of the wrong size';
    if (Object.getPrototypeOf(b) !== Object.prototype) return 'bond with a foreign prototype';
  }
  if (kind === 1) {
    const db = v as CachedDatabase;
    let prev = 0;
    for (const s of db.services) {
      if (!(s.start >= 1 && s.start <= s.end && s.end <= 0xffff && s.start > prev)) return `cache service ${s.start}-${s.end} out of order or range`;
      prev = s.end;
      for (const c of s.characteristics) {
        if (!(c.declHandle > s.start - 1 && c.valueHandle > c.declHandle && c.end >= c.valueHandle && c.end <= s.end)) return 'cache characteristic not nested';
        for (const d of c.descriptors) if (!(d.handle > c.valueHandle && d.handle <= c.end)) return 'cache descriptor outside its characteristic';
      }
    }
  }
  if (kind === 3 && !Array.isArray(v)) return 'grants not a list';
  return undefined;
}

export class FilesTarget {
  readonly layer = 'files' as const;
  private readonly dir: string;
  private readonly store: string;
  private readonly queue: Uint8Array[] = [];
  private readonly problems: string[] = [];
  private regular = 0;
  /** `viaFiles`: inputs read through the file system (the rest went to the decoders in memory). */
  readonly stats = { relinks: 0, opsOk: 0, opsFailed: 0, advertisements: 0, timers: 0, viaFiles: 0 };

  constructor() {
    let base = fuzzDirBase();
    try {
      this.dir = mkdtempSync(join(base, 'blewire-fuzz-files-'));
    } catch {
      base = tmpdir();
      this.dir = mkdtempSync(join(base, 'blewire-fuzz-files-'));
    }
    this.store = join(this.dir, 'store');
    mkdirSync(this.store, { mode: 0o700 });
  }

  feed(input: Uint8Array): number {
    this.queue.push(input);
    return 1;
  }

  async window(): Promise<void> {
    for (const input of this.queue.splice(0)) await this.one(input);
  }

  private plant(kind: number, how: number, content: Uint8Array): string {
    const path = join(this.store, fileName(kind));
    rmSync(path, { recursive: true, force: true });
    const elsewhere = join(this.dir, 'elsewhere.json');
    switch (how) {
      case 1: writeFileSync(elsewhere, content); symlinkSync(elsewhere, path); break;
      case 2: symlinkSync(join(this.dir, 'missing', 'nothing.json'), path); break;
      case 3: writeFileSync(path, ''); truncateSync(path, CAPS[kind]! + 1); break;
      case 4: mkdirSync(path); break;
      case 5: symlinkSync('/dev/zero', path); break;
      case 6: symlinkSync(path, path); break;
      default: writeFileSync(path, content, { mode: 0o600 });
    }
    return path;
  }

  /** The reader's decoder on the octets, as the reader handles its outcome (no file involved). */
  private decode(kind: number, content: Uint8Array): unknown {
    switch (kind) {
      // FileBondStore ignores a file it cannot decode (undefined); loadLocalIdentity wraps any failure
      // in FileError (typed): both catch everything their decoder throws, so the check is the value.
      case 0: try { return decodeBondFile(content, BOND_KEY); } catch { return undefined; }
      case 1: return decodeCacheFile(PEER_ID, content);
      case 2: try { return decodeLocalIdentity(content); } catch { throw new FileError('read', LOCAL_IDENTITY_FILE, 'is not our privacy keys'); }
      case 3: { const r = decodeGrantsFile(content); return typeof r === 'string' ? [] : r; }
      default: return resolveConfig({ file: parseConfigFile(content, 'gateway.json'), env: {}, defaultId: 'gw',
        readText: () => { throw new Error('no files in the fuzzer'); } });
    }
  }

  /** The file planted, then read through the public reader. */
  private async read(kind: number, how: number, content: Uint8Array): Promise<unknown> {
    const path = this.plant(kind, how, content);
    switch (kind) {
      case 0: {
        const store = new FileBondStore(this.store);
        const value = await store.load(PEER);
        const listed = await store.list();
        if (listed.length > 1) this.problems.push('bond list returned more than the one file');
        return value;
      }
      case 1: return new FileGattCache(this.store).load(PEER_ID);
      case 2: return new FileBondStore(this.store).loadLocalIdentity();
      case 3: return new GrantFile(path).load();
      default: return resolveConfig({ file: readConfigFile(path), env: {}, defaultId: 'gw',
        readText: () => { throw new Error('no files in the fuzzer'); } });
    }
  }

  private async one(input: Uint8Array): Promise<void> {
    const kind = (input[0] ?? 0) % FILE_KINDS.length, how = (input[1] ?? 0) % HOWS;
    const viaFiles = how !== 0 || this.regular++ % DISK_EVERY === 0;
    const where = viaFiles ? `how ${how}` : 'decoder';
    let value: unknown;
    try {
      if (viaFiles) this.stats.viaFiles++;
      value = viaFiles ? await this.read(kind, how, input.subarray(2)) : this.decode(kind, input.subarray(2));
      this.stats.opsOk++;
    } catch (e) {
      this.stats.opsFailed++;
      if (!(e instanceof BlewireError)) {
        this.problems.push(`${FILE_KINDS[kind]} (${where}): untyped ${String((e as Error)?.stack ?? e).slice(0, 400)}`);
      }
      return;
    }
    const bad = checkValue(kind, value);
    if (bad) this.problems.push(`${FILE_KINDS[kind]} (${where}): ${bad}`);
    if (({} as Record<string, unknown>)['polluted'] !== undefined) this.problems.push(`${FILE_KINDS[kind]}: Object.prototype polluted`);
  }

  async checkpoint(): Promise<string[]> {
    await this.window();
    return this.problems.splice(0);
  }

  async close(): Promise<string[]> {
    await this.window();
    rmSync(this.dir, { recursive: true, force: true });
    return this.problems.splice(0);
  }
}
