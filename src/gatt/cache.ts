/**
 * GATT caching (Core Vol 3, Part G, 2.5.2): the discovered database of a peer, stored with the
 * Database Hash it was discovered under (or none: see `CacheRule` in client.ts for when a tree
 * without a hash may be stored and trusted).
 *
 * The disk is hostile (issue 15): whatever a stored file says is validated in full before any of
 * it is used, and anything that fails is a miss with the reason in the debug log (`blewire:gatt`),
 * never an error and never a partly trusted tree. What is checked (`parseCache`):
 * - the file's size, before reading it (MAX_CACHE_FILE_BYTES), and that it is a regular file;
 * - the schema: every field present with its type, no other value kinds, at most 0xFFFF entries;
 * - UUIDs in the one canonical 128-bit spelling (so `__proto__` and friends cannot appear), the
 *   hash 16 octets;
 * - handles 0x0001..0xFFFF, start <= end, services in ascending order without overlap, includes,
 *   characteristics and descriptors nested inside their parent and ascending: a characteristic's
 *   value follows its declaration, its descriptors (the CCCD among them) lie after its value and
 *   within its end, so a tampered file cannot redirect a CCCD write to another handle.
 * The tree handed out is built from fresh objects, never the parsed JSON itself.
 *
 * FileGattCache keeps one file per peer in a private directory (0700, files 0600) and replaces it
 * atomically with the helpers of platform/files.ts (exclusive temp file, fsync, rename).
 */
import { fromHex, toHex } from '../bytes/hex.js';
import { FileError } from '../errors.js';
import { log } from '../log.js';
import { listFiles, pathIn as join, readFileCapped, removeFile, writeFileAtomic } from '../platform/files.js';
import type { CharacteristicData, DescriptorData, IncludeData, ServiceData } from './procedures.js';

export interface CachedDatabase {
  /** The Database Hash the tree was discovered under; undefined for a peer without one (bonded, with Service Changed). */
  hash: Uint8Array | undefined;
  services: ServiceData[];
}

export interface GattCache {
  load(peerId: string): Promise<CachedDatabase | undefined>;
  save(peerId: string, db: CachedDatabase): Promise<void>;
  /** Forget one peer, or every peer when peerId is omitted. */
  clear(peerId?: string): Promise<void>;
}

/**
 * The largest cache file read (octets). A full 0xFFFF-handle database serialises to well under
 * this (about 100 octets per attribute); anything larger is not ours and is not read.
 */
export const MAX_CACHE_FILE_BYTES = 8 * 1024 * 1024;

/** In-memory cache (tests, short-lived processes). Entries go through the same validation as files. */
export class MemoryGattCache implements GattCache {
  private readonly map = new Map<string, string>();
  async load(peerId: string): Promise<CachedDatabase | undefined> {
    const s = this.map.get(peerId);
    return s === undefined ? undefined : loadChecked(peerId, s);
  }
  async save(peerId: string, db: CachedDatabase): Promise<void> {
    this.map.set(peerId, serializeCache(db));
  }
  async clear(peerId?: string): Promise<void> {
    if (peerId === undefined) this.map.clear(); else this.map.delete(peerId);
  }
}

/** One file per peer under `dir` (created 0700 on first save). */
export class FileGattCache implements GattCache {
  constructor(readonly dir: string) {}

  private file(peerId: string): string {
    return join(this.dir, peerId.toLowerCase().replace(/[^0-9a-z_-]/g, '_') + '.json');
  }

  async load(peerId: string): Promise<CachedDatabase | undefined> {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await readFileCapped(this.file(peerId), MAX_CACHE_FILE_BYTES);
    } catch (e) {
      log.gatt('cache for %s ignored (miss): %s', peerId, e instanceof Error ? e.message : String(e));
      return undefined;
    }
    if (bytes === undefined) return undefined;
    return decodeCacheFile(peerId, bytes);
  }

  async save(peerId: string, db: CachedDatabase): Promise<void> {
    await writeFileAtomic(this.file(peerId), serializeCache(db));
  }

  async clear(peerId?: string): Promise<void> {
    if (peerId !== undefined) {
      await removeFile(this.file(peerId)).catch((e: unknown) => { if (!(e instanceof FileError)) throw e; });
      return;
    }
    const names = await listFiles(this.dir).catch(() => [] as string[]);
    await Promise.all(names.filter(n => n.endsWith('.json')).map(n => removeFile(join(this.dir, n)).catch(() => {})));
  }
}

const FORMAT = 1;

export function serializeCache(db: CachedDatabase): string {
  return JSON.stringify({ format: FORMAT, hash: db.hash ? toHex(db.hash) : null, services: db.services });
}

/**
 * A cache file's content as FileGattCache.load reads it: the validated database, or undefined (a
 * miss, with the reason in the debug log). Never throws. Also the seam the files fuzz layer feeds.
 */
export function decodeCacheFile(peerId: string, bytes: Uint8Array): CachedDatabase | undefined {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    log.gatt('cache for %s ignored (miss): not UTF-8', peerId);
    return undefined;
  }
  return loadChecked(peerId, text);
}

function loadChecked(peerId: string, text: string): CachedDatabase | undefined {
  const r = checkCache(text);
  if (typeof r === 'string') {
    log.gatt('cache for %s ignored (miss): %s', peerId, r);
    return undefined;
  }
  return r;
}

/** Parse a stored cache; anything malformed is undefined (treated as a miss). */
export function parseCache(text: string): CachedDatabase | undefined {
  const r = checkCache(text);
  return typeof r === 'string' ? undefined : r;
}

/** The validated database, or why the text is not one (for the debug log). */
export function checkCache(text: string): CachedDatabase | string {
  if (text.length > MAX_CACHE_FILE_BYTES) return `${text.length} characters, more than ${MAX_CACHE_FILE_BYTES}`;
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    return `not JSON (${e instanceof Error ? e.message : String(e)})`;
  }
  try {
    return validate(o);
  } catch (e) {
    if (e instanceof Invalid) return e.message;
    // Anything else is a gap in the checks above, not a reason to fail every connect: still a miss.
    return `unreadable (${e instanceof Error ? e.name : typeof e})`;
  }
}

class Invalid extends Error {}

function fail(what: string): never {
  throw new Invalid(what);
}

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX_HASH = /^[0-9a-f]{32}$/;

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${where} is not an object`);
  return v as Record<string, unknown>;
}

function list(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) fail(`${where} is not a list`);
  if (v.length > 0xffff) fail(`${where} has ${v.length} entries, more than a database has handles`);
  return v;
}

function handle(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0x0001 || v > 0xffff) fail(`${where} is not a handle 0x0001..0xFFFF`);
  return v;
}

function uuidField(v: unknown, where: string): string {
  if (typeof v !== 'string' || !CANONICAL_UUID.test(v)) fail(`${where} is not a canonical UUID`);
  return v;
}

function validate(raw: unknown): CachedDatabase {
  const o = obj(raw, 'the file');
  // Never String() a value of the file: an object whose toString is not a function makes it throw a
  // TypeError (found by `npm run fuzz -- --layer files`; services() threw on every connect).
  if (o.format !== FORMAT) fail(`format ${typeof o.format === 'number' ? o.format : `of type ${o.format === null ? 'null' : typeof o.format}`}, expected ${FORMAT}`);
  let hash: Uint8Array | undefined;
  if (o.hash !== null) {
    if (typeof o.hash !== 'string' || !HEX_HASH.test(o.hash)) fail('hash is not 16 octets of hex');
    hash = fromHex(o.hash);
  }
  const services: ServiceData[] = [];
  let prevEnd = 0;
  for (const [i, sv] of list(o.services, 'services').entries()) {
    const w = `service ${i}`;
    const s = obj(sv, w);
    if (typeof s.primary !== 'boolean') fail(`${w}: primary is not a boolean`);
    const start = handle(s.start, `${w} start`);
    const end = handle(s.end, `${w} end`);
    if (end < start) fail(`${w}: end ${end} before start ${start}`);
    if (start <= prevEnd) fail(`${w}: starts at ${start}, inside or before the previous service (ends ${prevEnd})`);
    prevEnd = end;
    const includes: IncludeData[] = [];
    let prevInc = start;
    for (const [k, iv] of list(s.includes, `${w} includes`).entries()) {
      const x = obj(iv, `${w} include ${k}`);
      const h = handle(x.handle, `${w} include ${k} handle`);
      if (h <= prevInc || h > end) fail(`${w} include ${k}: handle ${h} not inside the service after the previous one`);
      prevInc = h;
      const is = handle(x.start, `${w} include ${k} start`);
      const ie = handle(x.end, `${w} include ${k} end`);
      if (ie < is) fail(`${w} include ${k}: end before start`);
      includes.push({ handle: h, start: is, end: ie, uuid: uuidField(x.uuid, `${w} include ${k} uuid`) });
    }
    const characteristics: CharacteristicData[] = [];
    let prevCharEnd = start;
    for (const [k, cv] of list(s.characteristics, `${w} characteristics`).entries()) {
      const cw = `${w} characteristic ${k}`;
      const c = obj(cv, cw);
      const decl = handle(c.declHandle, `${cw} declHandle`);
      const value = handle(c.valueHandle, `${cw} valueHandle`);
      const cend = handle(c.end, `${cw} end`);
      if (decl <= prevCharEnd) fail(`${cw}: declaration ${decl} not after the previous characteristic or the service start`);
      if (value <= decl || cend < value || cend > end) fail(`${cw}: handles ${decl}/${value}/${cend} do not nest inside ${start}–${end}`);
      prevCharEnd = cend;
      if (typeof c.properties !== 'number' || !Number.isInteger(c.properties) || c.properties < 0 || c.properties > 0xff) fail(`${cw}: properties not an octet`);
      const descriptors: DescriptorData[] = [];
      let prevD = value;
      for (const [m, dv] of list(c.descriptors, `${cw} descriptors`).entries()) {
        const d = obj(dv, `${cw} descriptor ${m}`);
        const dh = handle(d.handle, `${cw} descriptor ${m} handle`);
        if (dh <= prevD || dh > cend) fail(`${cw} descriptor ${m}: handle ${dh} outside ${value + 1}–${cend} or out of order`);
        prevD = dh;
        descriptors.push({ handle: dh, uuid: uuidField(d.uuid, `${cw} descriptor ${m} uuid`) });
      }
      characteristics.push({
        uuid: uuidField(c.uuid, `${cw} uuid`), declHandle: decl, valueHandle: value, properties: c.properties, end: cend, descriptors,
      });
    }
    services.push({ uuid: uuidField(s.uuid, `${w} uuid`), primary: s.primary, start, end, includes, characteristics });
  }
  return { hash, services };
}
