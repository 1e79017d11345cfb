/**
 * Bonds: the keys a pairing with bonding leaves behind (Core Vol 3, Part H, 2.4, 3.6), kept per peer
 * identity address so a reconnect re-encrypts without pairing and a rotating RPA still finds them.
 *
 * `BondStore` is the interface; `MemoryBondStore` keeps bonds for the process, `FileBondStore` keeps
 * one JSON file per identity address under a private directory (default `$XDG_STATE_HOME/blewire/bonds`,
 * else `~/.local/state/blewire/bonds`), written atomically with mode 0600 in a 0700 directory through
 * src/platform/files.ts. File names are built from the parsed address only (`public-AABBCCDDEEFF.json`),
 * so nothing a peer sends can name a path outside the folder. A file that is unreadable, too large,
 * not JSON or not a valid bond is reported (the `onError` callback and the `blewire:smp` log) and
 * ignored: it never throws out of `load` or `list`.
 *
 * Octet strings are stored as hex in HCI order (least significant octet first), the order LE Enable
 * Encryption and LTK Request Reply take them.
 */
import { ArgumentError, FileError } from '../errors.js';
import { log } from '../log.js';
import { fromHex, toHex } from '../bytes/hex.js';
import { envVar } from '../platform/env.js';
import { listFiles, pathIn, readFileCapped, removeFile, writeFileAtomic } from '../platform/files.js';
import type { PairingResult, SmpAddress, SmpLtk } from './session.js';

export interface Bond {
  /** The peer's identity address (its distributed identity, else the address it paired from). */
  readonly identity: SmpAddress;
  readonly secureConnections: boolean;
  readonly authenticated: boolean;
  readonly keySize: number;
  /**
   * The key that encrypts a link with us as central: the SC LTK, or in legacy pairing the LTK/EDIV/Rand
   * the peer distributed (whichever role we paired in; absent when the peer distributed none).
   */
  readonly ltk?: SmpLtk;
  /** Legacy pairing: the LTK we distributed (used when the peer is the central). */
  readonly localLtk?: SmpLtk;
  readonly peerIrk?: Uint8Array;
  readonly peerCsrk?: Uint8Array;
  readonly localCsrk?: Uint8Array;
  /**
   * The SignCounter of our next signed write with localCsrk (Vol 3, Part H, 2.4.5): 0 to 2^32 - 1, moved
   * on before each signed write (a peer refuses a counter it has seen, Vol 3, Part C, 10.4.2).
   */
  readonly localSignCounter?: number;
  /**
   * The lowest SignCounter we accept next in a signed write from the peer with peerCsrk (one more than
   * the last accepted; Vol 3, Part C, 10.4.2: a counter seen before is a replay): 0 to 2^32, where 2^32
   * means the counter is used up. Saved BEFORE the signed write is applied.
   */
  readonly peerSignCounter?: number;
  readonly linkKey?: Uint8Array;
  /**
   * What this client subscribed to on our GATT server (its CCCD values, Vol 3, Part G, 3.3.3.3: kept
   * across connections for a bonded client), by "serviceUuid/characteristicUuid"; at most
   * MAX_BOND_CCCDS entries, values 1..3 (notification, indication).
   */
  readonly cccds?: Readonly<Record<string, number>>;
}

/** CCCD values kept in one bond (a bond file is capped at MAX_BOND_FILE_BYTES; this keeps it well below). */
export const MAX_BOND_CCCDS = 64;
const CCCD_KEY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Checks a CCCD record (from a bond file or the GATT server): an object of at most MAX_BOND_CCCDS
 * "service/characteristic" UUID keys with values 1..3. Throws Error naming what is wrong.
 */
export function checkCccds(v: unknown): Record<string, number> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('cccds is not an object');
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_BOND_CCCDS) throw new Error(`cccds has ${entries.length} entries, more than ${MAX_BOND_CCCDS}`);
  const out: Record<string, number> = {};
  for (const [k, n] of entries) {
    if (!CCCD_KEY.test(k)) throw new Error(`cccds key ${JSON.stringify(k.slice(0, 80))} is not "serviceUuid/characteristicUuid"`);
    if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 3) throw new Error(`cccds value of ${k} is not 1..3`);
    out[k] = n as number;
  }
  return out;
}

export interface BondStore {
  load(identity: SmpAddress): Promise<Bond | undefined>;
  save(bond: Bond): Promise<void>;
  remove(identity: SmpAddress): Promise<void>;
  list(): Promise<Bond[]>;
  /**
   * Our own privacy keys (see LocalIdentityKeys), undefined until saved. A store without these two
   * methods keeps none: an adapter with privacy on it makes a new IRK each time it opens.
   */
  loadLocalIdentity?(): Promise<LocalIdentityKeys | undefined>;
  saveLocalIdentity?(keys: LocalIdentityKeys): Promise<void>;
}

/**
 * Our own keys for privacy (Core Vol 3, Part C, 10.7 / 10.8): the IRK our resolvable private
 * addresses are made from and that we distribute when bonding (Identity Information, Vol 3, Part H,
 * 3.6.4), and a static random address, our identity address when the controller has no public one
 * (Identity Address Information, 3.6.5). Kept next to the bonds because they belong together: every
 * peer's bond with us holds this IRK, so a new one would make us a stranger to all of them.
 */
export interface LocalIdentityKeys {
  /** Our IRK, least significant octet first (the order Identity Information carries it). */
  readonly irk: Uint8Array;
  /** "C0:…" most significant octet first; the two top bits 1 (Vol 6, Part B, 1.3.2.1). */
  readonly staticAddress: string;
}

const ADDRESS = /^[0-9A-F]{2}(:[0-9A-F]{2}){5}$/;

/** The canonical key of an identity: "public-AABBCCDDEEFF" / "random-…". Throws ArgumentError otherwise. */
export function bondKey(id: SmpAddress): string {
  const a = typeof id?.address === 'string' ? id.address.toUpperCase() : '';
  if (!ADDRESS.test(a) || (id.type !== 0 && id.type !== 1)) {
    throw new ArgumentError(`not an identity address: ${JSON.stringify(id)} (want { type: 0 | 1, address: "AA:BB:CC:DD:EE:FF" })`);
  }
  return `${id.type === 0 ? 'public' : 'random'}-${a.replace(/:/g, '')}`;
}

/** The bond a pairing leaves, or undefined when the pairing was not bonding. */
export function bondFromPairing(result: PairingResult, peerAddress: SmpAddress): Bond | undefined {
  if (!result.bonded) return undefined;
  return {
    identity: result.peer.identity ?? { type: peerAddress.type, address: peerAddress.address.toUpperCase() },
    secureConnections: result.secureConnections, authenticated: result.authenticated, keySize: result.keySize,
    // SC: the one LTK both sides derived. Legacy (2.4.2.1, 3.6.2/3.6.3): each side distributes its own
    // LTK with EDIV and Rand, and a key is used by the side that did NOT make it when it is the central.
    // So ltk is always the peer's (in either role: as a responder we keep the central's, for a later
    // link where we are the central), localLtk ours (answers the LTK Request when the peer is central).
    ...(result.secureConnections ? (result.ltk ? { ltk: result.ltk } : {}) : result.peer.ltk ? { ltk: result.peer.ltk } : {}),
    ...(!result.secureConnections && result.local.ltk ? { localLtk: result.local.ltk } : {}),
    ...(result.peer.irk ? { peerIrk: result.peer.irk } : {}),
    ...(result.peer.csrk ? { peerCsrk: result.peer.csrk } : {}),
    ...(result.local.csrk ? { localCsrk: result.local.csrk } : {}),
    ...(result.linkKey ? { linkKey: result.linkKey } : {}),
  };
}

export class MemoryBondStore implements BondStore {
  private readonly bonds = new Map<string, Bond>();
  private local: LocalIdentityKeys | undefined;
  async loadLocalIdentity(): Promise<LocalIdentityKeys | undefined> {
    return this.local;
  }
  async saveLocalIdentity(keys: LocalIdentityKeys): Promise<void> {
    this.local = checkLocalIdentity({ irk: Uint8Array.from(keys.irk), staticAddress: keys.staticAddress.toUpperCase() });
  }
  async load(identity: SmpAddress): Promise<Bond | undefined> {
    return this.bonds.get(bondKey(identity));
  }
  async save(bond: Bond): Promise<void> {
    this.bonds.set(bondKey(bond.identity), bond);
  }
  async remove(identity: SmpAddress): Promise<void> {
    this.bonds.delete(bondKey(identity));
  }
  async list(): Promise<Bond[]> {
    return [...this.bonds.values()];
  }
}

/** A bond file is a few hundred octets; anything beyond this is not ours. */
export const MAX_BOND_FILE_BYTES = 16 * 1024;
const FORMAT = 'blewire-bond/1';
const LOCAL_FORMAT = 'blewire-local-identity/1';
/** The file of our own keys in the bond directory (list() reads bond files only, so never this one). */
export const LOCAL_IDENTITY_FILE = 'local-identity.json';

/** `$XDG_STATE_HOME/blewire/bonds`, else `$HOME/.local/state/blewire/bonds`. */
export function defaultBondDir(): string {
  const state = envVar('XDG_STATE_HOME') || `${envVar('HOME') ?? '.'}/.local/state`;
  return `${state}/blewire/bonds`;
}

export interface FileBondStoreOptions {
  /** Called for every bond file that cannot be used (it is then ignored). */
  readonly onError?: (path: string, error: Error) => void;
}

export class FileBondStore implements BondStore {
  constructor(readonly dir: string = defaultBondDir(), private readonly options: FileBondStoreOptions = {}) {}

  private path(identity: SmpAddress): string {
    return pathIn(this.dir, `${bondKey(identity)}.json`);
  }

  async load(identity: SmpAddress): Promise<Bond | undefined> {
    return this.read(this.path(identity), bondKey(identity));
  }

  async save(bond: Bond): Promise<void> {
    await writeFileAtomic(this.path(bond.identity), JSON.stringify(toJson(bond), null, 2) + '\n');
  }

  async remove(identity: SmpAddress): Promise<void> {
    await removeFile(this.path(identity));
  }

  async list(): Promise<Bond[]> {
    const out: Bond[] = [];
    for (const name of await listFiles(this.dir)) {
      const m = /^((?:public|random)-[0-9A-F]{12})\.json$/.exec(name);
      if (!m) continue;
      const b = await this.read(pathIn(this.dir, name), m[1]!);
      if (b) out.push(b);
    }
    return out;
  }

  /**
   * Our own keys from `local-identity.json`, undefined when there is none yet. Unlike a bond file, a
   * damaged one is not ignored (a new IRK would silently end every bond's privacy): FileError, saying
   * what is wrong and what to do.
   */
  async loadLocalIdentity(): Promise<LocalIdentityKeys | undefined> {
    const path = pathIn(this.dir, LOCAL_IDENTITY_FILE);
    const bytes = await readFileCapped(path, MAX_BOND_FILE_BYTES);
    if (!bytes) return undefined;
    try {
      return decodeLocalIdentity(bytes);
    } catch (e) {
      throw new FileError('read', path, `is not our privacy keys (${(e as Error).message}); restore it, or remove it to make ` +
        'new ones (bonded peers will then not recognise this host until they pair again)', { cause: e });
    }
  }

  async saveLocalIdentity(keys: LocalIdentityKeys): Promise<void> {
    const k = checkLocalIdentity(keys);
    await writeFileAtomic(pathIn(this.dir, LOCAL_IDENTITY_FILE),
      JSON.stringify({ format: LOCAL_FORMAT, irk: toHex(k.irk), staticAddress: k.staticAddress.toUpperCase() }, null, 2) + '\n');
  }

  private async read(path: string, key: string): Promise<Bond | undefined> {
    try {
      const bytes = await readFileCapped(path, MAX_BOND_FILE_BYTES);
      if (!bytes) return undefined;
      return decodeBondFile(bytes, key);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      log.smp('bond file %s ignored: %s', path, err.message);
      this.options.onError?.(path, err as Error | FileError);
      return undefined;
    }
  }
}

/**
 * A bond file's content as FileBondStore reads it (UTF-8 JSON of FORMAT, every field checked): the
 * Bond, or an Error saying why the file cannot be used (the store then ignores it). `key` is the
 * file's name without `.json`: the bond inside must be that identity's. Also the seam the files fuzz
 * layer feeds in memory.
 */
export function decodeBondFile(bytes: Uint8Array, key: string): Bond {
  const bond = fromJson(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)));
  if (bondKey(bond.identity) !== key) throw new Error(`it holds the bond of ${bond.identity.address}, not of its file name`);
  return bond;
}

/**
 * `local-identity.json`'s content: our keys, or an Error saying what is wrong with it
 * (loadLocalIdentity turns that into FileError with what to do).
 */
export function decodeLocalIdentity(bytes: Uint8Array): LocalIdentityKeys {
  const v: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
  const o = v as Json;
  if (o['format'] !== LOCAL_FORMAT) throw new Error(`unknown format ${JSON.stringify(o['format'])}`);
  const staticAddress = o['staticAddress'];
  if (typeof staticAddress !== 'string') throw new Error('staticAddress is not a string');
  return checkLocalIdentity({ irk: hexField(o, 'irk', 16), staticAddress: staticAddress.toUpperCase() });
}

/** The keys as they are, or ArgumentError: a 16-octet IRK and a static random address. */
function checkLocalIdentity(k: LocalIdentityKeys): LocalIdentityKeys {
  if (!(k.irk instanceof Uint8Array) || k.irk.length !== 16) throw new ArgumentError('an IRK is 16 octets');
  const a = typeof k.staticAddress === 'string' ? k.staticAddress.toUpperCase() : '';
  if (!ADDRESS.test(a) || (parseInt(a.slice(0, 2), 16) >> 6) !== 0b11) {
    throw new ArgumentError(`staticAddress ${JSON.stringify(k.staticAddress)} is not a static random address (top two bits 1, Vol 6, Part B, 1.3.2.1)`);
  }
  return k;
}

// ------------------------------------------------------------------------------------------------
// JSON form, checked field by field on the way in.

type Json = Record<string, unknown>;

function ltkJson(l: SmpLtk): Json {
  return { key: toHex(l.key), ediv: l.ediv, rand: toHex(l.rand) };
}

function toJson(b: Bond): Json {
  return {
    format: FORMAT,
    identity: { type: b.identity.type === 0 ? 'public' : 'random', address: b.identity.address.toUpperCase() },
    secureConnections: b.secureConnections, authenticated: b.authenticated, keySize: b.keySize,
    ...(b.ltk ? { ltk: ltkJson(b.ltk) } : {}),
    ...(b.localLtk ? { localLtk: ltkJson(b.localLtk) } : {}),
    ...(b.peerIrk ? { peerIrk: toHex(b.peerIrk) } : {}),
    ...(b.peerCsrk ? { peerCsrk: toHex(b.peerCsrk) } : {}),
    ...(b.localCsrk ? { localCsrk: toHex(b.localCsrk) } : {}),
    ...(b.localSignCounter !== undefined ? { localSignCounter: b.localSignCounter } : {}),
    ...(b.peerSignCounter !== undefined ? { peerSignCounter: b.peerSignCounter } : {}),
    ...(b.linkKey ? { linkKey: toHex(b.linkKey) } : {}),
    ...(b.cccds && Object.keys(b.cccds).length > 0 ? { cccds: checkCccds(b.cccds) } : {}),
  };
}

function hexField(o: Json, name: string, n: number, optional: true): Uint8Array | undefined;
function hexField(o: Json, name: string, n: number, optional?: false): Uint8Array;
function hexField(o: Json, name: string, n: number, optional = false): Uint8Array | undefined {
  const v = o[name];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v.length !== 2 * n || !/^[0-9a-fA-F]*$/.test(v)) throw new Error(`${name} is not ${n} octets of hex`);
  return fromHex(v);
}

function ltkField(o: Json, name: string): SmpLtk | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${name} is not an object`);
  const l = v as Json;
  if (!Number.isInteger(l['ediv']) || (l['ediv'] as number) < 0 || (l['ediv'] as number) > 0xffff) throw new Error(`${name}.ediv is not 0..65535`);
  return { key: hexField(l, 'key', 16), ediv: l['ediv'] as number, rand: hexField(l, 'rand', 8) };
}

function fromJson(v: unknown): Bond {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
  const o = v as Json;
  if (o['format'] !== FORMAT) throw new Error(`unknown format ${JSON.stringify(o['format'])}`);
  const id = o['identity'] as Json | undefined;
  if (!id || typeof id !== 'object' || (id['type'] !== 'public' && id['type'] !== 'random') || typeof id['address'] !== 'string') {
    throw new Error('identity is not { type: "public" | "random", address }');
  }
  const identity: SmpAddress = { type: id['type'] === 'public' ? 0 : 1, address: (id['address'] as string).toUpperCase() };
  bondKey(identity);
  for (const f of ['secureConnections', 'authenticated'] as const) if (typeof o[f] !== 'boolean') throw new Error(`${f} is not a boolean`);
  const keySize = o['keySize'];
  if (!Number.isInteger(keySize) || (keySize as number) < 7 || (keySize as number) > 16) throw new Error('keySize is not 7..16');
  const ltk = ltkField(o, 'ltk'), localLtk = ltkField(o, 'localLtk');
  const peerIrk = hexField(o, 'peerIrk', 16, true), peerCsrk = hexField(o, 'peerCsrk', 16, true);
  const localCsrk = hexField(o, 'localCsrk', 16, true), linkKey = hexField(o, 'linkKey', 16, true);
  const cccds = o['cccds'] === undefined ? undefined : checkCccds(o['cccds']);
  const counter = o['localSignCounter'];
  if (counter !== undefined && (!Number.isInteger(counter) || (counter as number) < 0 || (counter as number) > 0xffffffff)) {
    throw new Error('localSignCounter is not 0..4294967295');
  }
  const peerCounter = o['peerSignCounter'];
  if (peerCounter !== undefined && (!Number.isInteger(peerCounter) || (peerCounter as number) < 0 || (peerCounter as number) > 2 ** 32)) {
    throw new Error('peerSignCounter is not 0..4294967296');
  }
  return {
    identity, secureConnections: o['secureConnections'] as boolean, authenticated: o['authenticated'] as boolean,
    keySize: keySize as number,
    ...(ltk ? { ltk } : {}), ...(localLtk ? { localLtk } : {}), ...(peerIrk ? { peerIrk } : {}),
    ...(peerCsrk ? { peerCsrk } : {}), ...(localCsrk ? { localCsrk } : {}), ...(linkKey ? { linkKey } : {}),
    ...(counter !== undefined ? { localSignCounter: counter as number } : {}),
    ...(peerCounter !== undefined ? { peerSignCounter: peerCounter as number } : {}),
    ...(cccds ? { cccds } : {}),
  };
}
