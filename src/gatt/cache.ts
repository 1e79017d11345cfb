/**
 * GATT caching (Core Vol 3, Part G, 2.5.2): the discovered database of a peer, stored with the
 * Database Hash it was discovered under. A cached tree is only used after reading the peer's
 * current hash and finding it equal (one round trip); without a hash a cache is never trusted for
 * an unbonded peer, so nothing is stored then.
 *
 * FileGattCache keeps one JSON file per peer in a directory and replaces it atomically (write a
 * temporary file in the same directory, then rename over the old one), so a crash never leaves a
 * half-written cache behind.
 */
import { mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromHex, toHex } from '../bytes/hex.js';
import type { ServiceData } from './procedures.js';

export interface CachedDatabase {
  hash: Uint8Array;
  services: ServiceData[];
}

export interface GattCache {
  load(peerId: string): Promise<CachedDatabase | undefined>;
  save(peerId: string, db: CachedDatabase): Promise<void>;
  /** Forget one peer, or every peer when peerId is omitted. */
  clear(peerId?: string): Promise<void>;
}

/** In-memory cache (tests, short-lived processes). */
export class MemoryGattCache implements GattCache {
  private readonly map = new Map<string, string>();
  async load(peerId: string): Promise<CachedDatabase | undefined> {
    const s = this.map.get(peerId);
    return s === undefined ? undefined : parseCache(s);
  }
  async save(peerId: string, db: CachedDatabase): Promise<void> {
    this.map.set(peerId, serializeCache(db));
  }
  async clear(peerId?: string): Promise<void> {
    if (peerId === undefined) this.map.clear(); else this.map.delete(peerId);
  }
}

/** One file per peer under `dir` (created on first save). */
export class FileGattCache implements GattCache {
  private seq = 0;
  constructor(readonly dir: string) {}

  private file(peerId: string): string {
    return join(this.dir, peerId.toLowerCase().replace(/[^0-9a-z_-]/g, '_') + '.json');
  }

  async load(peerId: string): Promise<CachedDatabase | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(peerId), 'utf8');
    } catch {
      return undefined;
    }
    return parseCache(text); // a corrupt file is a miss, never an error
  }

  async save(peerId: string, db: CachedDatabase): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const target = this.file(peerId);
    const tmp = `${target}.${process.pid}.${++this.seq}.tmp`;
    await writeFile(tmp, serializeCache(db));
    try {
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  }

  async clear(peerId?: string): Promise<void> {
    if (peerId !== undefined) {
      await unlink(this.file(peerId)).catch(() => {});
      return;
    }
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    await Promise.all(names.filter(n => n.endsWith('.json')).map(n => unlink(join(this.dir, n)).catch(() => {})));
  }
}

const FORMAT = 1;

export function serializeCache(db: CachedDatabase): string {
  return JSON.stringify({ format: FORMAT, hash: toHex(db.hash), services: db.services });
}

/** Parse a stored cache; anything malformed is undefined (treated as a miss). */
export function parseCache(text: string): CachedDatabase | undefined {
  try {
    const o = JSON.parse(text) as { format?: number; hash?: string; services?: ServiceData[] };
    if (o.format !== FORMAT || typeof o.hash !== 'string' || !Array.isArray(o.services)) return undefined;
    const hash = fromHex(o.hash);
    if (hash.length !== 16) return undefined;
    for (const s of o.services) {
      if (typeof s.uuid !== 'string' || !Number.isInteger(s.start) || !Number.isInteger(s.end) || !Array.isArray(s.characteristics)) return undefined;
      for (const c of s.characteristics) {
        if (typeof c.uuid !== 'string' || !Number.isInteger(c.valueHandle) || !Array.isArray(c.descriptors)) return undefined;
      }
    }
    return { hash, services: o.services };
  } catch {
    return undefined;
  }
}
