/**
 * Permissions kept across processes: what a browser keeps per origin so that getDevices() returns the
 * devices a page was granted yesterday, with the same `id` (Web Bluetooth 3.1, "Permission API
 * integration": the BluetoothPermissionStorage's allowedDevices, each with its deviceId, the
 * allowedServices and mayUseGATT).
 *
 * One JSON file, written atomically and private (0600, its directory 0700) by the platform's file
 * helpers. The file is hostile input like any other: its size is capped before it is read, every
 * entry is validated (opaque id, address, address type, name, canonical service UUIDs, counts), and a
 * file that fails any check counts as no grants at all (the next grant replaces it).
 */
import { envVar } from '../platform/env.js';
import { ensurePrivateDir, readFileCapped, writeFileAtomic } from '../platform/files.js';

/** Devices remembered; granting one more forgets the one granted longest ago. */
export const MAX_GRANTS = 256;
/** Services remembered per device (a page names at most a few dozen). */
export const MAX_GRANTED_SERVICES = 256;
/** The file is refused unread beyond this size (256 grants of 256 services fit well below it). */
export const MAX_GRANTS_FILE_BYTES = 4 * 1024 * 1024;
const FORMAT = 'blewire-web-bluetooth-permissions';
const VERSION = 1;

export interface StoredGrant {
  /** The opaque id the page saw (22-24 base64 characters for 16 random octets). */
  id: string;
  address: string;
  addressType: 'public' | 'random';
  name?: string;
  /** Canonical 128-bit UUIDs, lower case. */
  services: string[];
}

const ID = /^[A-Za-z0-9+/]{22}(==)?$/;
const ADDRESS = /^[0-9A-F]{2}(:[0-9A-F]{2}){5}$/;
const UUID128 = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A device name is at most 248 octets (Core Vol 4, Part E, 6.23); UTF-16 length bounds it loosely. */
const MAX_NAME = 248;

/** The grants in `text`, or why the file is not one (then nothing of it is used). */
/** The permissions file's content as GrantFile.load reads it: the grants, or why they were rejected. */
export function decodeGrantsFile(bytes: Uint8Array): StoredGrant[] | string {
  return parseGrants(new TextDecoder('utf-8', { fatal: false }).decode(bytes));
}

export function parseGrants(text: string): StoredGrant[] | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!isRecord(doc) || doc['format'] !== FORMAT || doc['version'] !== VERSION) return `not a ${FORMAT} file of version ${VERSION}`;
  const list = doc['devices'];
  if (!Array.isArray(list)) return 'devices is not a list';
  if (list.length > MAX_GRANTS) return `${list.length} devices, more than ${MAX_GRANTS}`;
  const out: StoredGrant[] = [];
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const [i, e] of list.entries()) {
    if (!isRecord(e)) return `devices[${i}] is not an object`;
    const { id, address, addressType, name, services } = e;
    if (typeof id !== 'string' || !ID.test(id)) return `devices[${i}].id is not an opaque id`;
    if (typeof address !== 'string' || !ADDRESS.test(address)) return `devices[${i}].address is not an address`;
    if (addressType !== 'public' && addressType !== 'random') return `devices[${i}].addressType is neither public nor random`;
    if (name !== undefined && (typeof name !== 'string' || name.length > MAX_NAME)) return `devices[${i}].name is not a device name`;
    if (!Array.isArray(services) || services.length > MAX_GRANTED_SERVICES) return `devices[${i}].services is not a list of at most ${MAX_GRANTED_SERVICES}`;
    // Only a string is shown: String() of a hostile value throws (an object whose toString is not a
    // function) or overflows the stack (a deeply nested list).
    for (const s of services) if (typeof s !== 'string' || !UUID128.test(s)) return `devices[${i}].services holds ${typeof s === 'string' ? JSON.stringify(s.slice(0, 60)) : `a ${Array.isArray(s) ? 'list' : typeof s}`}, not a canonical UUID`;
    const key = `${address}/${addressType}`;
    if (ids.has(id) || keys.has(key)) return `devices[${i}] repeats an id or an address`;
    ids.add(id);
    keys.add(key);
    out.push({ id, address, addressType, ...(name !== undefined ? { name } : {}), services: [...new Set(services as string[])] });
  }
  return out;
}

export function formatGrants(grants: readonly StoredGrant[]): string {
  return `${JSON.stringify({ format: FORMAT, version: VERSION, devices: grants }, null, 1)}\n`;
}

/** The permission file at `path`: load once, save after every change (one write at a time). */
export class GrantFile {
  #writing: Promise<void> = Promise.resolve();
  /** Why the last load used nothing of the file (undefined when it was fine or absent). */
  rejected: string | undefined;

  /** `createDir`: make the file's directory (0700) when missing; a directory the user named is theirs and left as it is. */
  constructor(readonly path: string, private readonly createDir = false) {}

  async load(): Promise<StoredGrant[]> {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await readFileCapped(this.path, MAX_GRANTS_FILE_BYTES);
    } catch (e) {
      this.rejected = (e as Error).message;
      return [];
    }
    if (!bytes) return [];
    const r = decodeGrantsFile(bytes);
    if (typeof r === 'string') {
      this.rejected = r;
      return [];
    }
    this.rejected = undefined;
    return r;
  }

  /** Write `grants` (after any write still under way); rejects with the file error. */
  save(grants: readonly StoredGrant[]): Promise<void> {
    const text = formatGrants(grants);
    const run = this.#writing.catch(() => undefined).then(async () => {
      if (this.createDir) await ensurePrivateDir(dirOf(this.path));
      await writeFileAtomic(this.path, text, { ensureDir: false });
    });
    this.#writing = run;
    return run;
  }
}

/** `$XDG_STATE_HOME/blewire/web-bluetooth/permissions.json`, else under `$HOME/.local/state`. */
export function defaultGrantsPath(): string {
  const state = envVar('XDG_STATE_HOME') || `${envVar('HOME') ?? '.'}/.local/state`;
  return `${state}/blewire/web-bluetooth/permissions.json`;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? (i === 0 ? '/' : '.') : path.slice(0, i);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
