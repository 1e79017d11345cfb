/**
 * A GATT database from a JSON file, for `blewire serve` (src/cli/serve.ts). The file is one of:
 * - a virtual peripheral of the simulator (src/sim/types.ts SimPeripheral: `{ "gatt": [...] }`);
 * - a simulator world (Scenario: `{ "peripherals": [...] }`), one peripheral picked by `device`
 *   (its name, address or 1-based position) when several have a database;
 * - a device twin (src/tooling/twin.ts DeviceTwin, what `blewire twin` writes): its database, each
 *   characteristic with the first value the capture shows read, and its notification stream;
 * - a bare database: `[service, …]` or `{ "name", "appearance", "advertising", "services": [...] }`
 *   with services in the simulator's shape.
 *
 * The file is hostile input like any capture: it is read up to MAX_DATABASE_FILE_BYTES (a FIFO or
 * /dev/zero ends there too), parsed, and every field the server uses is checked before anything is
 * opened; anything wrong is a DatabaseFileError naming the JSON path. Bounds: MAX_ATTRIBUTES
 * characteristics and descriptors, values of at most 512 octets (Core Vol 3, Part F, 3.2.9),
 * MAX_STREAM_VALUES values per notification stream.
 *
 * The file's GAP service (0x1800) gives the served Device Name and Appearance; blewire serves its own
 * GAP and GATT services (Vol 3, Part C, 12 and Part G, 7), so the file's other GAP / GATT
 * characteristics are not served and `notes` says so. The file's handles are kept where it gives them
 * (a device twin's captured layout: services, characteristic declarations, descriptors, gaps included),
 * so a client that remembers handles finds them where the real device had them; blewire's GAP and
 * GATT services then go at the file's own GAP / GATT handles when they fit there, else in the first
 * free room (GattServer's ownServices). A CCCD listed in the file becomes the server's own per-link
 * CCCD, at the file's handle. A characteristic or descriptor may say what its accesses need with
 * `"security": "encrypted" | "authenticated" | "none"` or `{ "read": …, "write": … }` (Vol 3, Part C,
 * 10.3.1): the server answers Insufficient Encryption / Authentication until the link has it.
 */
import { open } from 'node:fs/promises';
import { fromHex } from '../bytes/hex.js';
import { uuid as toUuid, describeUuid, type Uuid } from '../codec/uuid.js';
import { DatabaseFileError } from '../errors.js';
import { CharacteristicProperty, ExtendedProperty, GattType, type CharacteristicPropertyName } from '../gatt/constants.js';
import { GattDatabase, type ServiceDef } from '../gatt/server-db.js';
import type { AdvertisingContent } from '../gap/advertiser.js';
import type { AccessSecurity } from '../gatt/server/server.js';
import type { SimGenerator } from '../sim/types.js';
import { twinToSimPeripheral, type DeviceTwin } from './twin.js';

/** Largest database file read (a device twin of a long capture is a few hundred kB). */
export const MAX_DATABASE_FILE_BYTES = 8 * 1024 * 1024;
/** Characteristics plus descriptors of one database (each takes 1-3 of the 65 535 handles). */
export const MAX_ATTRIBUTES = 8192;
/** Longest attribute value (Core Vol 3, Part F, 3.2.9). */
export const MAX_ATTRIBUTE_VALUE = 512;
/** Values of one notification stream (a cycle generator; a twin's captured stream). */
export const MAX_STREAM_VALUES = 100_000;

/**
 * What an access needs (Vol 3, Part C, 10.3.1): the file's `"security": "encrypted"` (or
 * "authenticated", "none"), or `{ "read": …, "write": … }` for each access on its own.
 */
export type FileSecurity = AccessSecurity | { read?: AccessSecurity; write?: AccessSecurity };
export interface FileDescriptor { uuid: Uuid; value: Uint8Array; writable: boolean; security?: FileSecurity; handle?: number }
export interface FileCharacteristic {
  uuid: Uuid;
  properties: CharacteristicPropertyName[];
  value: Uint8Array;
  maxLength?: number;
  security?: FileSecurity;
  /** The file's handle of its declaration (kept when served). */
  handle?: number;
  /** Where the file puts its CCCD, or false: the file's layout has none. */
  cccdHandle?: number | false;
  descriptors: FileDescriptor[];
}
export interface FileService { uuid: Uuid; primary: boolean; handle?: number; endHandle?: number; characteristics: FileCharacteristic[] }

/*
 * What adapter.serve() takes of a file's service, characteristic and descriptor as the file has it,
 * the file's own handles kept where it gives them (a twin's captured layout): `blewire serve` and a
 * session's serve step add their handlers to these.
 */
export function servedServiceFields(s: FileService): { uuid: Uuid; primary: boolean; handle?: number; endHandle?: number } {
  return {
    uuid: s.uuid, primary: s.primary,
    ...(s.handle !== undefined ? { handle: s.handle } : {}),
    ...(s.endHandle !== undefined ? { endHandle: s.endHandle } : {}),
  };
}
export function servedCharacteristicFields(c: FileCharacteristic): Omit<FileCharacteristic, 'descriptors'> {
  return {
    uuid: c.uuid, properties: c.properties, value: c.value,
    ...(c.maxLength !== undefined ? { maxLength: c.maxLength } : {}),
    ...(c.security !== undefined ? { security: c.security } : {}),
    ...(c.handle !== undefined ? { handle: c.handle } : {}),
    ...(c.cccdHandle !== undefined ? { cccdHandle: c.cccdHandle } : {}),
  };
}
export function servedDescriptorFields(d: FileDescriptor): FileDescriptor {
  return {
    uuid: d.uuid, value: d.value, writable: d.writable,
    ...(d.security !== undefined ? { security: d.security } : {}),
    ...(d.handle !== undefined ? { handle: d.handle } : {}),
  };
}

/** A stream of notifications (or indications) the file declares for one served characteristic. */
export interface FileStream {
  /** Position of the characteristic: services[service].characteristics[characteristic]. */
  service: number;
  characteristic: number;
  mode: 'notify' | 'indicate';
  everyMs: number;
  /** Per-value delays (the twin's captured gaps), cycled; empty: everyMs. */
  intervalsMs: number[];
  generator: SimGenerator | undefined;
}

export interface FileAdvertising {
  data?: AdvertisingContent;
  scanResponse?: AdvertisingContent;
  connectable?: boolean;
  intervalMs?: number;
}

export interface DatabaseFile {
  kind: 'peripheral' | 'world' | 'twin' | 'services';
  /** For messages: `NOVA_O38240700268 (device twin)`. */
  label: string;
  /** Device Name and Appearance for blewire's GAP service (from the file's 0x1800, else its name). */
  name?: string;
  appearance?: number;
  /** The services to serve (the file's GAP and GATT services left out). */
  services: FileService[];
  /** Where the file's own GAP and GATT services start, when it gives handles: blewire's own go there if they fit. */
  ownServices?: { gap?: number; gatt?: number };
  advertising?: FileAdvertising;
  streams: FileStream[];
  /** What the file declares that is served differently or not at all. */
  notes: string[];
}

const PROPERTY_NAMES = new Set<string>([
  ...Object.keys(CharacteristicProperty).filter(k => k !== 'extendedProperties'), ...Object.keys(ExtendedProperty),
]);
const GAP = toUuid(0x1800);
const GATT = toUuid(0x1801);
const DEVICE_NAME = toUuid(0x2a00);
const APPEARANCE = toUuid(0x2a01);
const CCCD = GattType.ClientCharacteristicConfiguration;

type Json = Record<string, unknown>;

/** Read, parse and check a database file; `device` picks one peripheral of a world. */
export async function loadDatabaseFile(path: string, options: { device?: string } = {}): Promise<DatabaseFile> {
  const text = await readBounded(path);
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    // SyntaxError with the position, or a RangeError for nesting deeper than the parser's stack.
    throw new DatabaseFileError(path, '', `not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parseDatabase(root, { ...options, file: path });
}

/** The file's text: at most MAX_DATABASE_FILE_BYTES octets of UTF-8 (bounded even for a device or a FIFO). */
async function readBounded(path: string): Promise<string> {
  const fh = await open(path, 'r'); // ENOENT / EISDIR / EACCES go to the caller as they are (the CLI words them)
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error(`EISDIR: ${path}`), { code: 'EISDIR', syscall: 'read', path });
    const buf = Buffer.alloc(Math.min(MAX_DATABASE_FILE_BYTES + 1, st.isFile() && st.size > 0 ? st.size + 1 : MAX_DATABASE_FILE_BYTES + 1));
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > MAX_DATABASE_FILE_BYTES) {
      throw new DatabaseFileError(path, '', `larger than ${MAX_DATABASE_FILE_BYTES / (1024 * 1024)} MiB, the most a database file may be`);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, n));
    } catch {
      throw new DatabaseFileError(path, '', 'not UTF-8 text (is it a capture? `blewire twin` turns a capture into a database file)');
    }
  } finally {
    await fh.close();
  }
}

/** Check a parsed database file (see the module comment for the shapes accepted). */
export function parseDatabase(root: unknown, options: { device?: string; file?: string } = {}): DatabaseFile {
  const r = new Reader(options.file ?? 'database');
  if (Array.isArray(root)) return fromPeripheral(r, { gatt: root }, '', 'services', 'services');
  if (!isObject(root)) {
    return r.fail('', 'not a GATT database: expected a virtual peripheral ({ "gatt": [...] }), a simulator world ' +
      '({ "peripherals": [...] }), a device twin (`blewire twin`) or a list of services');
  }
  if ('peripherals' in root) return fromWorld(r, root, options.device);
  if ('gatt' in root) return fromPeripheral(r, root, '', 'peripheral', labelOf(root, 'virtual peripheral'));
  if ('services' in root && ('reads' in root || 'connectionHandle' in root || 'source' in root)) return fromTwin(r, root);
  if ('services' in root) {
    const { services, ...rest } = root;
    return fromPeripheral(r, { ...rest, gatt: services }, '', 'services', labelOf(root, 'database'));
  }
  return r.fail('', 'not a GATT database: an object needs "gatt" (a virtual peripheral), "peripherals" (a simulator world) ' +
    'or "services" (a device twin, or a database)');
}

function labelOf(o: Json, what: string): string {
  return typeof o['name'] === 'string' && o['name'] ? `${o['name']} (${what})` : what;
}

function fromWorld(r: Reader, world: Json, device: string | undefined): DatabaseFile {
  const list = r.array(world['peripherals'], 'peripherals', 10_000);
  const entries = list.map((p, i) => ({ p: r.object(p, `peripherals[${i}]`), i }));
  const described = entries.map(({ p, i }) =>
    `${i + 1}: ${typeof p['name'] === 'string' ? p['name'] : '(no name)'}${typeof p['address'] === 'string' ? ` ${p['address']}` : ''}${'gatt' in p ? '' : ' (no GATT database)'}`);
  let chosen: { p: Json; i: number } | undefined;
  if (device !== undefined) {
    const want = device.trim();
    const n = /^\d+$/.test(want) ? Number(want) : undefined;
    chosen = entries.find(({ p, i }) => (n !== undefined && i + 1 === n) || p['name'] === want ||
      (typeof p['address'] === 'string' && p['address'].toUpperCase() === want.toUpperCase()));
    if (!chosen) r.fail('peripherals', `no peripheral ${JSON.stringify(device)} (by name, address or position): ${described.join('; ') || 'the world has none'}`);
  } else {
    const withDb = entries.filter(({ p }) => 'gatt' in p);
    if (withDb.length === 0) r.fail('peripherals', 'no peripheral of this world has a GATT database ("gatt")');
    if (withDb.length > 1) {
      r.fail('peripherals', `${withDb.length} peripherals have a GATT database; pick one with --device NAME|ADDRESS|N: ${described.join('; ')}`);
    }
    chosen = withDb[0];
  }
  const { p, i } = chosen!;
  if (!('gatt' in p)) r.fail(`peripherals[${i}]`, 'this peripheral has no GATT database ("gatt")');
  return fromPeripheral(r, p, `peripherals[${i}].`, 'world', labelOf(p, `peripheral ${i + 1} of the world`));
}

function fromTwin(r: Reader, t: Json): DatabaseFile {
  // Only the fields the conversion reads, each checked, so twinToSimPeripheral sees well-typed data.
  const services = r.array(t['services'], 'services', MAX_ATTRIBUTES).map((s, i) => {
    const at = `services[${i}]`;
    const o = r.object(s, at);
    return {
      uuid: r.uuidString(o['uuid'], `${at}.uuid`),
      primary: o['primary'] === undefined ? true : r.boolean(o['primary'], `${at}.primary`),
      start: r.handle(o['start'], `${at}.start`),
      end: r.handle(o['end'], `${at}.end`),
      characteristics: r.array(o['characteristics'] ?? [], `${at}.characteristics`, MAX_ATTRIBUTES).map((c, j) => {
        const cat = `${at}.characteristics[${j}]`;
        const co = r.object(c, cat);
        return {
          uuid: r.uuidString(co['uuid'], `${cat}.uuid`),
          declHandle: r.handle(co['declHandle'], `${cat}.declHandle`),
          valueHandle: r.handle(co['valueHandle'], `${cat}.valueHandle`),
          properties: r.integer(co['properties'], `${cat}.properties`, 0, 0xff),
          descriptors: r.array(co['descriptors'] ?? [], `${cat}.descriptors`, MAX_ATTRIBUTES).map((d, k) => {
            const dat = `${cat}.descriptors[${k}]`;
            const dobj = r.object(d, dat);
            return { uuid: r.uuidString(dobj['uuid'], `${dat}.uuid`), handle: r.handle(dobj['handle'], `${dat}.handle`) };
          }),
        };
      }),
    };
  });
  const timed = (key: 'reads' | 'notifications', max: number) => r.array(t[key] ?? [], key, max).map((x, i) => {
    const o = r.object(x, `${key}[${i}]`);
    return {
      handle: r.handle(o['handle'], `${key}[${i}].handle`),
      value: r.hexString(o['value'], `${key}[${i}].value`),
      atMs: r.number(o['atMs'] ?? 0, `${key}[${i}].atMs`),
      ...(o['indication'] === true ? { indication: true as const } : {}),
    };
  });
  const reads = timed('reads', MAX_STREAM_VALUES);
  const notifications = timed('notifications', MAX_STREAM_VALUES);
  const writes = r.array(t['writes'] ?? [], 'writes', MAX_STREAM_VALUES).map((x, i) => {
    const o = r.object(x, `writes[${i}]`);
    return { handle: r.handle(o['handle'], `writes[${i}].handle`), value: r.hexString(o['value'], `writes[${i}].value`),
      atMs: r.number(o['atMs'] ?? 0, `writes[${i}].atMs`), withResponse: o['withResponse'] !== false };
  });
  const name = t['name'] === undefined ? 'device twin' : r.string(t['name'], 'name', 248);
  const peer = t['peer'] === undefined ? {} : r.object(t['peer'], 'peer');
  const adv = t['advertising'] === undefined ? undefined : r.object(t['advertising'], 'advertising');
  const twin: DeviceTwin = {
    name,
    source: { capture: '', firstFrame: 0, lastFrame: 0 },
    peer: typeof peer['name'] === 'string' ? { name: peer['name'] } : {},
    connectionHandle: 0,
    ...(adv ? { advertising: {
      extended: adv['extended'] === true,
      ...(adv['data'] !== undefined ? { data: r.hexString(adv['data'], 'advertising.data') } : {}),
      ...(adv['scanResponse'] !== undefined ? { scanResponse: r.hexString(adv['scanResponse'], 'advertising.scanResponse') } : {}),
    } } : {}),
    services, reads, writes, notifications,
  };
  let peripheral: Json;
  try {
    peripheral = twinToSimPeripheral(twin, { address: '00:00:00:00:00:00' }) as unknown as Json;
  } catch (e) {
    return r.fail('', `this device twin cannot be served: ${e instanceof Error ? e.message : String(e)}`);
  }
  const out = fromPeripheral(r, peripheral, '', 'twin', `${name} (device twin)`);
  if (!out.name && twin.peer.name) out.name = twin.peer.name;
  out.notes.push('values: the first value the capture shows read for each attribute (the rest empty); the captured notification stream replays to a subscriber at its captured intervals');
  return out;
}

function fromPeripheral(r: Reader, p: Json, prefix: string, kind: DatabaseFile['kind'], label: string): DatabaseFile {
  const notes: string[] = [];
  const at = (s: string): string => `${prefix}${s}`;
  const gatt = r.array(p['gatt'], at('gatt'), MAX_ATTRIBUTES);
  let attributes = 0;
  const all = gatt.map((s, i) => {
    const sat = at(`gatt[${i}]`);
    const o = r.object(s, sat);
    const chars = r.array(o['characteristics'] ?? [], `${sat}.characteristics`, MAX_ATTRIBUTES).map((c, j) => {
      const cat = `${sat}.characteristics[${j}]`;
      const co = r.object(c, cat);
      const properties = r.array(co['properties'], `${cat}.properties`, 16).map((x, k) => {
        if (typeof x !== 'string' || !PROPERTY_NAMES.has(x)) r.fail(`${cat}.properties[${k}]`, `${JSON.stringify(x)} is not a property (${[...PROPERTY_NAMES].join(', ')})`);
        return x as CharacteristicPropertyName;
      });
      const maxLength = co['maxLength'] === undefined ? undefined : r.integer(co['maxLength'], `${cat}.maxLength`, 0, MAX_ATTRIBUTE_VALUE);
      const value = co['value'] === undefined ? new Uint8Array(0) : r.bytes(co['value'], `${cat}.value`);
      if (maxLength !== undefined && value.length > maxLength) r.fail(`${cat}.value`, `${value.length} octets, more than its maxLength ${maxLength}`);
      const notifies = properties.includes('notify') || properties.includes('indicate');
      const descriptors: FileDescriptor[] = [];
      const listed: Array<{ uuid: Uuid; handle?: number }> = [];
      let cccdHandle: number | false | undefined;
      r.array(co['descriptors'] ?? [], `${cat}.descriptors`, MAX_ATTRIBUTES).forEach((d, k) => {
        const dat = `${cat}.descriptors[${k}]`;
        const dobj = r.object(d, dat);
        const uuid = r.uuid(dobj['uuid'], `${dat}.uuid`);
        const dv = dobj['value'] === undefined ? new Uint8Array(0) : r.bytes(dobj['value'], `${dat}.value`);
        const writable = dobj['writable'] === undefined ? false : r.boolean(dobj['writable'], `${dat}.writable`);
        const dhandle = dobj['handle'] === undefined ? undefined : r.handle(dobj['handle'], `${dat}.handle`);
        attributes++;
        listed.push({ uuid, ...(dhandle !== undefined ? { handle: dhandle } : {}) });
        // The server keeps one CCCD per link itself (Vol 3, Part G, 3.3.3.3): a listed one stands for it, at its handle.
        if (uuid === CCCD) {
          if (!notifies) notes.push(`${dat}: a CCCD on a characteristic that neither notifies nor indicates is not served`);
          else if (dhandle !== undefined) cccdHandle = dhandle;
          return;
        }
        const dsec = dobj['security'] === undefined ? undefined : r.security(dobj['security'], `${dat}.security`);
        descriptors.push({ uuid, value: dv, writable, ...(dsec !== undefined ? { security: dsec } : {}), ...(dhandle !== undefined ? { handle: dhandle } : {}) });
      });
      const handle = co['handle'] === undefined ? undefined : r.handle(co['handle'], `${cat}.handle`);
      if (co['cccd'] === false && notifies) {
        // With the file's handles kept, its layout has no room for one: served without (it cannot notify).
        if (handle !== undefined) {
          cccdHandle = false;
          notes.push(`${cat}: served without a CCCD, as the file lays it out (it cannot notify or indicate)`);
        } else notes.push(`${cat}: served with a CCCD (the file says it has none)`);
      }
      attributes += 1;
      if (attributes > MAX_ATTRIBUTES) r.fail(cat, `more than ${MAX_ATTRIBUTES} characteristics and descriptors`);
      const security = co['security'] === undefined ? undefined : r.security(co['security'], `${cat}.security`);
      const served: FileCharacteristic = { uuid: r.uuid(co['uuid'], `${cat}.uuid`), properties, value,
        ...(maxLength !== undefined ? { maxLength } : {}), ...(security !== undefined ? { security } : {}),
        ...(handle !== undefined ? { handle } : {}), ...(cccdHandle !== undefined ? { cccdHandle } : {}), descriptors };
      return { served, listed, cccd: co['cccd'] === false ? false : undefined };
    });
    return {
      uuid: r.uuid(o['uuid'], `${sat}.uuid`),
      primary: o['primary'] === undefined ? true : r.boolean(o['primary'], `${sat}.primary`),
      characteristics: chars.map(c => c.served),
      file: chars,
      ...(o['handle'] !== undefined ? { handle: r.handle(o['handle'], `${sat}.handle`) } : {}),
      ...(o['endHandle'] !== undefined ? { endHandle: r.handle(o['endHandle'], `${sat}.endHandle`) } : {}),
      includes: o['includes'] !== undefined,
    };
  });
  // The file's own layout (its fixed handles, if any): checked, and the key for streams that name a value handle.
  let layout: GattDatabase;
  try {
    layout = new GattDatabase(all.map((s): ServiceDef => ({
      uuid: s.uuid, primary: s.primary,
      ...(s.handle !== undefined ? { handle: s.handle } : {}),
      ...(s.endHandle !== undefined ? { endHandle: s.endHandle } : {}),
      // As the file lays them out: its CCCDs where it lists them, none where it says so.
      characteristics: s.file.map(c => ({ uuid: c.served.uuid, properties: c.served.properties,
        ...(c.served.handle !== undefined ? { handle: c.served.handle } : {}),
        descriptors: c.listed, ...(c.cccd === false ? { cccd: false } : {}) })),
    })));
  } catch (e) {
    return r.fail(at('gatt'), `the services do not lay out: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (all.some(s => s.includes)) notes.push('included services are not served (each service is served on its own)');
  const handled = all.some(s => s.handle !== undefined || s.endHandle !== undefined || s.characteristics.some(c => c.handle !== undefined));
  if (handled) notes.push('the file\'s handles are kept; blewire\'s own GAP and GATT services go at the file\'s GAP / GATT handles when they fit there, else in the first free room');

  // GAP / GATT: the Device Name and Appearance go to blewire's own GAP service.
  let name: string | undefined;
  let appearance: number | undefined;
  const services: FileService[] = [];
  const index = new Map<number, [number, number]>(); // position in `all` -> position in `services`
  const ownServices: { gap?: number; gatt?: number } = {};
  all.forEach((s, i) => {
    if (s.uuid === GAP && s.handle !== undefined) ownServices.gap ??= s.handle;
    if (s.uuid === GATT && s.handle !== undefined) ownServices.gatt ??= s.handle;
    if (s.uuid === GAP) {
      for (const c of s.characteristics) {
        if (c.uuid === DEVICE_NAME && c.value.length) name = new TextDecoder().decode(c.value);
        else if (c.uuid === APPEARANCE && c.value.length === 2) appearance = c.value[0]! | (c.value[1]! << 8);
        else if (c.uuid !== DEVICE_NAME && c.uuid !== APPEARANCE) notes.push(`GAP characteristic ${describeUuid(c.uuid)} is not served (blewire serves its own GAP service)`);
      }
      return;
    }
    if (s.uuid === GATT) {
      notes.push('the file\'s GATT service is not served: blewire serves its own (Service Changed, Client Supported Features, Database Hash)');
      return;
    }
    index.set(i, [services.length, 0]);
    services.push({ uuid: s.uuid, primary: s.primary, characteristics: s.characteristics,
      ...(s.handle !== undefined ? { handle: s.handle } : {}), ...(s.endHandle !== undefined ? { endHandle: s.endHandle } : {}) });
  });
  if (name === undefined && typeof p['name'] === 'string' && p['name']) name = p['name'].slice(0, 248);
  if (services.length === 0) notes.push('the file has no services besides GAP and GATT');

  const streams: FileStream[] = [];
  r.array(p['notifications'] ?? [], at('notifications'), 1024).forEach((n, i) => {
    const nat = at(`notifications[${i}]`);
    const o = r.object(n, nat);
    const key = o['characteristic'];
    if (typeof key !== 'number' && typeof key !== 'string') r.fail(`${nat}.characteristic`, 'a characteristic UUID or value handle is needed');
    const found = layout.characteristic(typeof key === 'string' ? r.uuid(key, `${nat}.characteristic`) : key);
    let pos: [number, number] | undefined;
    if (found) {
      layout.layout.forEach((s, si) => s.characteristics.forEach((c, ci) => {
        if (!pos && c.valueHandle === found.valueHandle && index.has(si)) pos = [index.get(si)![0], ci];
      }));
    }
    if (!pos) {
      notes.push(`${nat}: no served characteristic ${typeof key === 'number' ? `0x${key.toString(16)}` : key}; its stream is not served`);
      return;
    }
    const mode = o['mode'] === undefined ? 'notify' : o['mode'] === 'notify' || o['mode'] === 'indicate' ? o['mode'] : r.fail(`${nat}.mode`, 'notify or indicate');
    const everyMs = r.number(o['everyMs'], `${nat}.everyMs`, 1, 86_400_000);
    const intervalsMs = r.array(o['intervalsMs'] ?? [], `${nat}.intervalsMs`, MAX_STREAM_VALUES).map((x, k) => r.number(x, `${nat}.intervalsMs[${k}]`, 0, 86_400_000));
    const generator = o['generator'] === undefined ? undefined : r.generator(o['generator'], `${nat}.generator`);
    const c = services[pos[0]]!.characteristics[pos[1]]!;
    if (!c.properties.includes(mode)) {
      notes.push(`${nat}: ${describeUuid(c.uuid)} does not ${mode}; its stream is not served`);
      return;
    }
    streams.push({ service: pos[0], characteristic: pos[1], mode, everyMs, intervalsMs, generator });
  });
  for (const k of ['behaviour', 'pairing', 'privacy', 'channels', 'ltk'] as const) {
    if (p[k] !== undefined) notes.push(`"${k}" of the peripheral is simulator-only and not served`);
  }
  const advertising = p['advertising'] === undefined ? undefined : advertisingOf(r, p['advertising'], at('advertising'), notes);
  return {
    kind, label, ...(name !== undefined ? { name } : {}), ...(appearance !== undefined ? { appearance } : {}),
    ...(ownServices.gap !== undefined || ownServices.gatt !== undefined ? { ownServices } : {}),
    services, ...(advertising ? { advertising } : {}), streams, notes,
  };
}

function advertisingOf(r: Reader, v: unknown, at: string, notes: string[]): FileAdvertising {
  const o = r.object(v, at);
  const content = (x: unknown, cat: string): AdvertisingContent => {
    const c = r.object(x, cat);
    if ('raw' in c) {
      const raw = r.bytes(c['raw'], `${cat}.raw`, 1650);
      return { raw };
    }
    const out: AdvertisingContent = {};
    if (c['flags'] !== undefined) out.flags = r.integer(c['flags'], `${cat}.flags`, 0, 0xff);
    if (c['name'] !== undefined) out.name = r.string(c['name'], `${cat}.name`, 248);
    if (c['appearance'] !== undefined) out.appearance = r.integer(c['appearance'], `${cat}.appearance`, 0, 0xffff);
    if (c['txPower'] !== undefined) {
      r.integer(c['txPower'], `${cat}.txPower`, -127, 127);
      out.includeTxPower = true;
      notes.push(`${cat}.txPower: the TX power the controller selects is advertised instead of the file's`);
    }
    if (c['serviceUuids'] !== undefined) out.services = r.array(c['serviceUuids'], `${cat}.serviceUuids`, 256).map((u, i) => r.uuid(u, `${cat}.serviceUuids[${i}]`));
    if (c['serviceData'] !== undefined) {
      out.serviceData = r.array(c['serviceData'], `${cat}.serviceData`, 256).map((e, i) => {
        const pair = r.array(e, `${cat}.serviceData[${i}]`, 2);
        return [r.uuid(pair[0], `${cat}.serviceData[${i}][0]`), r.bytes(pair[1], `${cat}.serviceData[${i}][1]`, 1650)] as [string, Uint8Array];
      });
    }
    if (c['manufacturerData'] !== undefined) {
      out.manufacturerData = r.array(c['manufacturerData'], `${cat}.manufacturerData`, 256).map((e, i) => {
        const pair = r.array(e, `${cat}.manufacturerData[${i}]`, 2);
        return [r.integer(pair[0], `${cat}.manufacturerData[${i}][0]`, 0, 0xffff), r.bytes(pair[1], `${cat}.manufacturerData[${i}][1]`, 1650)] as [number, Uint8Array];
      });
    }
    if (c['uri'] !== undefined) notes.push(`${cat}.uri is not advertised`);
    return out;
  };
  return {
    ...(o['data'] !== undefined ? { data: content(o['data'], `${at}.data`) } : {}),
    ...(o['scanResponse'] !== undefined ? { scanResponse: content(o['scanResponse'], `${at}.scanResponse`) } : {}),
    ...(o['connectable'] !== undefined ? { connectable: r.boolean(o['connectable'], `${at}.connectable`) } : {}),
    ...(o['intervalMs'] !== undefined ? { intervalMs: r.number(o['intervalMs'], `${at}.intervalMs`, 20, 10_240) } : {}),
  };
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Typed reads of untrusted JSON; every failure names the path. */
class Reader {
  constructor(readonly file: string) {}

  fail(at: string, reason: string): never {
    throw new DatabaseFileError(this.file, at, reason);
  }

  object(v: unknown, at: string): Json {
    if (!isObject(v)) this.fail(at, `an object is needed, not ${kindOf(v)}`);
    return v;
  }

  array(v: unknown, at: string, max: number): unknown[] {
    if (!Array.isArray(v)) this.fail(at, `a list is needed, not ${kindOf(v)}`);
    if (v.length > max) this.fail(at, `${v.length} entries, more than the ${max} allowed`);
    return v;
  }

  string(v: unknown, at: string, max: number): string {
    if (typeof v !== 'string') this.fail(at, `a string is needed, not ${kindOf(v)}`);
    if (v.length > max) this.fail(at, `a string of ${v.length} characters, more than ${max}`);
    return v;
  }

  boolean(v: unknown, at: string): boolean {
    if (typeof v !== 'boolean') this.fail(at, `true or false is needed, not ${kindOf(v)}`);
    return v;
  }

  number(v: unknown, at: string, min = -Number.MAX_VALUE, max = Number.MAX_VALUE): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(at, `a number from ${min} to ${max} is needed, not ${show(v)}`);
    return v;
  }

  integer(v: unknown, at: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(at, `a whole number from ${min} to ${max} is needed, not ${show(v)}`);
    return v;
  }

  /** An attribute handle, 0x0001-0xFFFF (Vol 3, Part F, 3.2.2). */
  handle(v: unknown, at: string): number {
    return this.integer(v, at, 1, 0xffff);
  }

  /** A 16-bit or 32-bit number, a UUID string or a known name. */
  uuid(v: unknown, at: string): Uuid {
    if (typeof v === 'number' && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) this.fail(at, `${v} is not a 16- or 32-bit UUID`);
    if (typeof v !== 'number' && typeof v !== 'string') this.fail(at, `a UUID is needed, not ${kindOf(v)}`);
    if (typeof v === 'string' && v.length > 64) this.fail(at, 'not a UUID (too long)');
    try {
      return toUuid(v);
    } catch {
      return this.fail(at, `${JSON.stringify(v)} is not a UUID (a 16-bit number, "180d", a 128-bit UUID or a known name such as "battery_level")`);
    }
  }

  /** "none" | "encrypted" | "authenticated", or { "read": …, "write": … } of those. */
  security(v: unknown, at: string): FileSecurity {
    const one = (x: unknown, xat: string): AccessSecurity => {
      if (x !== 'none' && x !== 'encrypted' && x !== 'authenticated') this.fail(xat, `"none", "encrypted" or "authenticated" is needed, not ${show(x)}`);
      return x;
    };
    if (typeof v === 'string') return one(v, at);
    const o = this.object(v, at);
    for (const k of Object.keys(o)) if (k !== 'read' && k !== 'write') this.fail(`${at}.${k}`, 'security names "read" and "write" only');
    return {
      ...(o['read'] !== undefined ? { read: one(o['read'], `${at}.read`) } : {}),
      ...(o['write'] !== undefined ? { write: one(o['write'], `${at}.write`) } : {}),
    };
  }

  uuidString(v: unknown, at: string): string {
    return this.uuid(v, at);
  }

  hexString(v: unknown, at: string): string {
    if (typeof v !== 'string' || v.length > 2 * MAX_DATABASE_FILE_BYTES || !/^([0-9a-fA-F]{2})*$/.test(v)) {
      this.fail(at, `hex octets are needed ("0a1b"), not ${show(v)}`);
    }
    return v;
  }

  /** `{ "hex": "0a0b" }` or a string (UTF-8), at most `max` octets. */
  bytes(v: unknown, at: string, max = MAX_ATTRIBUTE_VALUE): Uint8Array {
    let out: Uint8Array;
    if (typeof v === 'string') out = new TextEncoder().encode(v.length > 4 * max ? v.slice(0, 4 * max + 1) : v);
    else if (isObject(v) && typeof v['hex'] === 'string') {
      const h = v['hex'];
      if (h.length > 4 * max + 64) this.fail(at, `more than ${max} octets`);
      try {
        out = fromHex(h);
      } catch {
        return this.fail(`${at}.hex`, `not hex octets: ${show(h)}`);
      }
    } else return this.fail(at, `bytes are { "hex": "0a0b" } or a string, not ${kindOf(v)}`);
    if (out.length > max) this.fail(at, `${out.length} octets, more than the ${max} an attribute value may have (Core Vol 3, Part F, 3.2.9)`);
    return out;
  }

  generator(v: unknown, at: string): SimGenerator {
    const o = this.object(v, at);
    switch (o['kind']) {
      case 'cycle': {
        const values = this.array(o['values'], `${at}.values`, MAX_STREAM_VALUES).map((x, i) => this.bytes(x, `${at}.values[${i}]`));
        return { kind: 'cycle', values };
      }
      case 'counter': {
        const bytes = o['bytes'] === undefined ? 1 : this.integer(o['bytes'], `${at}.bytes`, 1, 4);
        if (bytes === 3) this.fail(`${at}.bytes`, '1, 2 or 4');
        return { kind: 'counter', bytes: bytes as 1 | 2 | 4 };
      }
      case 'heartRate':
        return { kind: 'heartRate', ...(o['bpm'] !== undefined ? { bpm: this.number(o['bpm'], `${at}.bpm`, 1, 255) } : {}),
          ...(o['spread'] !== undefined ? { spread: this.number(o['spread'], `${at}.spread`, 0, 100) } : {}) };
      case 'temperature':
        return { kind: 'temperature', ...(o['celsius'] !== undefined ? { celsius: this.number(o['celsius'], `${at}.celsius`, -273, 1000) } : {}),
          ...(o['spread'] !== undefined ? { spread: this.number(o['spread'], `${at}.spread`, 0, 100) } : {}) };
      default:
        return this.fail(`${at}.kind`, `a generator is cycle, counter, heartRate or temperature, not ${show(o['kind'])}`);
    }
  }
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `${typeof v} ${show(v)}`;
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
