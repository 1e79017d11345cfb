/**
 * Device twins: a real peripheral, as one capture shows it, turned into something blewire's own client
 * can be run against. `extractTwin()` reads a capture of a central talking to the device and keeps
 * what the central learnt: the device's advertising data (reports from its address), its GATT
 * database (from the central's discovery responses: services with their ranges, characteristics with
 * properties and handles, descriptors), the values it read, what it wrote, and the notification /
 * indication stream with relative times. `twinToSimPeripheral()` turns that into the simulator's
 * declarative peripheral (src/sim/types.ts), with the same handles wherever the database leaves no
 * gaps inside a service, so the simulator serves "that device".
 *
 * The capture is decoded through the same pipeline as `blewire decode` (src/inspect/decode.ts): L2CAP is
 * reassembled per handle without needing connection events, so ACL-only logs (the lumentree capture)
 * work too. With HCI events present, a connection is the span from its (Enhanced) Connection Complete
 * to its Disconnection Complete, so a handle reused for another peer later is not mixed in.
 * Only the central's requests (tx) and the peer's responses (rx) build the database: on links where
 * the peer also acts as a GATT client (Android serves its own database), its requests are ignored.
 */
import { ArgumentError } from '../errors.js';
import { toHex } from '../bytes/hex.js';
import { EXT_ADV_EVENT_TYPE, legacyAdvEventBits } from '../hci/bit-fields.js';
import type { CaptureRecord } from '../capture/types.js';
import { uuidFromBytes, type Uuid } from '../codec/uuid.js';
import { decodeRecords, type DecodedL2cap } from '../inspect/decode.js';
import { CHARACTERISTIC_PROPERTIES, GattType, propertyNames } from '../gatt/constants.js';
import type { SimCharacteristic, SimPeripheral, SimService } from '../sim/types.js';

export interface TwinDescriptor { uuid: Uuid; handle: number }
export interface TwinCharacteristic {
  uuid: Uuid;
  declHandle: number;
  valueHandle: number;
  /** The declaration's property byte (Vol 3, Part G, 3.3.1.1). */
  properties: number;
  descriptors: TwinDescriptor[];
}
export interface TwinService {
  uuid: Uuid;
  primary: boolean;
  start: number;
  end: number;
  characteristics: TwinCharacteristic[];
}

export interface DeviceTwin {
  name: string;
  /** Where it came from: the capture file and the frames of the connection used. */
  source: { capture: string; firstFrame: number; lastFrame: number };
  peer: { address?: string; addressType?: 'public' | 'random'; name?: string };
  connectionHandle: number;
  advertising?: { data?: string; scanResponse?: string; extended: boolean };
  mtu?: { client?: number; server?: number };
  services: TwinService[];
  /** Values the central read, in order (long reads joined). */
  reads: Array<{ handle: number; value: string; atMs: number }>;
  /** What the central wrote, in order. */
  writes: Array<{ handle: number; value: string; atMs: number; withResponse: boolean }>;
  /** Notifications and indications from the device, in order, ms since the connection started. */
  notifications: Array<{ handle: number; value: string; atMs: number; indication?: true }>;
}

export interface ExtractTwinOptions {
  /** Name of the twin (default: the advertised name, else the address or the handle). */
  name?: string;
  /** Pick the connection to this peer (the first one, or the `occurrence`-th, 1-based). */
  address?: string;
  occurrence?: number;
  /** Or pick by connection handle (the only way in ACL-only captures). Default: the handle with the most ATT traffic. */
  handle?: number;
  /** For `source.capture`. */
  captureName?: string;
}

interface Conn { handle: number; address?: string; addressType?: 'public' | 'random'; startUs?: number; startFrame?: number; endFrame?: number }

const CONNECTION_COMPLETE = new Set(['leConnectionComplete', 'leEnhancedConnectionComplete', 'leEnhancedConnectionCompleteV2']);
const ADV_REPORTS = new Set(['leAdvertisingReport', 'leExtendedAdvertisingReport']);

const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);

/** Extract the twin of one peripheral from a capture's records. */
export function extractTwin(records: Iterable<CaptureRecord>, options: ExtractTwinOptions = {}): DeviceTwin {
  const lines = [...decodeRecords(records)];
  const want = options.address?.toUpperCase();

  // 1. Find the connection: [first frame, last frame] of one handle's life.
  const conns: Conn[] = [];
  const open = new Map<number, Conn>();
  const attCount = new Map<number, number>();
  for (const l of lines) {
    if (l.line === 'l2cap') {
      if (l.cid === 0x0004) attCount.set(l.handle, (attCount.get(l.handle) ?? 0) + 1);
      continue;
    }
    if (l.type !== 'event') continue;
    const f = l.fields as Record<string, unknown>;
    if (CONNECTION_COMPLETE.has(f['kind'] as string) && f['status'] === 0) {
      const c: Conn = {
        handle: (f['connectionHandle'] as number) & 0x0fff, address: f['peerAddress'] as string,
        addressType: ((f['peerAddressType'] as number) & 1) === 1 ? 'random' : 'public',
        startUs: l.timeUs, startFrame: l.frame,
      };
      conns.push(c);
      open.set(c.handle, c);
    } else if (f['kind'] === 'disconnectionComplete' && f['status'] === 0) {
      const c = open.get((f['connectionHandle'] as number) & 0x0fff);
      if (c) {
        c.endFrame = l.frame;
        open.delete(c.handle);
      }
    }
  }
  let conn: Conn | undefined;
  if (want) {
    const matching = conns.filter(c => c.address === want);
    conn = matching[(options.occurrence ?? 1) - 1];
    if (!conn) throw new ArgumentError(`twin: no connection ${options.occurrence ?? 1} to ${want} in the capture (${matching.length} found)`);
  } else {
    const handle = options.handle ?? [...attCount.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    if (handle === undefined) throw new ArgumentError('twin: the capture has no ATT traffic');
    conn = conns.find(c => c.handle === handle) ?? { handle };
  }
  const inConn = (frame: number): boolean =>
    (conn.startFrame === undefined || frame >= conn.startFrame) && (conn.endFrame === undefined || frame <= conn.endFrame);

  // 2. Advertising data of the peer (reports before the connection), latest of each kind.
  let advertising: DeviceTwin['advertising'];
  let advName: string | undefined;
  if (conn.address) {
    for (const l of lines) {
      if (l.line !== 'record' || l.type !== 'event') continue;
      if (conn.startFrame !== undefined && l.frame > conn.startFrame) break;
      const f = l.fields as Record<string, unknown>;
      if (!ADV_REPORTS.has(f['kind'] as string)) continue;
      const extendedReport = f['kind'] === 'leExtendedAdvertisingReport';
      for (const r of f['reports'] as Array<Record<string, unknown>>) {
        if (r['address'] !== conn.address || !(r['data'] instanceof Uint8Array)) continue;
        // Both report kinds read through the extended Event_Type bits (Vol 4, Part E, 7.7.65.13; a legacy
        // Event_Type, 7.7.65.2, maps to them by Table 7.1): a report of legacy PDUs has `legacy` set.
        const bits = extendedReport ? r['eventType'] as number : legacyAdvEventBits(r['eventType'] as number);
        const extended = !EXT_ADV_EVENT_TYPE.has(bits, 'legacy');
        const isScanRsp = EXT_ADV_EVENT_TYPE.has(bits, 'scanResponse');
        advertising ??= { extended };
        if (isScanRsp) advertising.scanResponse = toHex(r['data']);
        else advertising.data = toHex(r['data']);
        for (const s of (r['ad'] as Array<Record<string, unknown>> | undefined) ?? []) {
          if ((s['kind'] === 'completeLocalName' || s['kind'] === 'shortenedLocalName') && typeof s['name'] === 'string') advName = s['name'];
        }
      }
    }
  }

  // 3. The ATT exchange on that connection.
  const att = lines.filter((l): l is DecodedL2cap => l.line === 'l2cap' && l.cid === 0x0004 && l.handle === conn.handle && inConn(l.frame));
  if (att.length === 0) throw new ArgumentError(`twin: no ATT traffic on handle 0x${conn.handle.toString(16)}`);
  const timeOf = new Map<number, number>();
  for (const l of lines) if (l.line === 'record') timeOf.set(l.frame, l.timeUs);
  const t0 = conn.startUs ?? timeOf.get(att[0]!.frame)!;
  const atMs = (frame: number): number => Math.round(((timeOf.get(frame) ?? t0) - t0) / 10) / 100;

  const services = new Map<number, TwinService>();
  const chars = new Map<number, TwinCharacteristic & { serviceStart?: number }>();
  const descriptors = new Map<number, Uuid>();
  const reads: DeviceTwin['reads'] = [];
  const writes: DeviceTwin['writes'] = [];
  const notifications: DeviceTwin['notifications'] = [];
  const mtu: NonNullable<DeviceTwin['mtu']> = {};
  let pending: { kind: string; pdu: Record<string, unknown>; frame: number } | undefined;
  let longRead: { handle: number; parts: Uint8Array[]; frame: number } | undefined;
  const flushLongRead = (): void => {
    if (!longRead) return;
    const total = longRead.parts.reduce((n, p) => n + p.length, 0);
    const v = new Uint8Array(total);
    let o = 0;
    for (const p of longRead.parts) { v.set(p, o); o += p.length; }
    reads.push({ handle: longRead.handle, value: toHex(v), atMs: atMs(longRead.frame) });
    longRead = undefined;
  };

  for (const l of att) {
    const pdu = l.pdu as Record<string, unknown> & { kind: string };
    if (l.dir === 'tx') {
      // Our side: requests open a transaction; commands are writes; our responses serve the peer.
      switch (pdu.kind) {
        case 'writeCmd':
          writes.push({ handle: pdu['handle'] as number, value: toHex(pdu['value'] as Uint8Array), atMs: atMs(l.frame), withResponse: false });
          break;
        case 'writeReq':
          writes.push({ handle: pdu['handle'] as number, value: toHex(pdu['value'] as Uint8Array), atMs: atMs(l.frame), withResponse: true });
          pending = { kind: pdu.kind, pdu, frame: l.frame };
          break;
        case 'exchangeMtuReq':
          mtu.client = pdu['clientRxMtu'] as number;
          pending = { kind: pdu.kind, pdu, frame: l.frame };
          break;
        default:
          if (pdu.kind.endsWith('Req')) {
            if (pdu.kind !== 'readBlobReq') flushLongRead();
            pending = { kind: pdu.kind, pdu, frame: l.frame };
          }
      }
      continue;
    }
    // The peer's side.
    switch (pdu.kind) {
      case 'handleValueNtf':
      case 'handleValueInd':
        notifications.push({
          handle: pdu['handle'] as number, value: toHex(pdu['value'] as Uint8Array), atMs: atMs(l.frame),
          ...(pdu.kind === 'handleValueInd' ? { indication: true as const } : {}),
        });
        continue;
      case 'exchangeMtuReq':
        mtu.server = pdu['clientRxMtu'] as number;
        continue;
      case 'exchangeMtuRsp':
        mtu.server = pdu['serverRxMtu'] as number;
        break;
      default:
        break;
    }
    if (!pending || !pdu.kind.endsWith('Rsp')) continue;
    const req = pending;
    pending = undefined;
    const rq = req.pdu;
    switch (pdu.kind) {
      case 'readByGroupTypeRsp': {
        const type = rq['attributeGroupType'] as string;
        const primary = type === GattType.PrimaryService;
        if (!primary && type !== GattType.SecondaryService) break;
        for (const e of pdu['attributeDataList'] as Array<{ handle: number; endGroupHandle: number; value: Uint8Array }>) {
          const uuid = uuidFromBytes(e.value);
          if (uuid) services.set(e.handle, { uuid, primary, start: e.handle, end: e.endGroupHandle, characteristics: [] });
        }
        break;
      }
      case 'findByTypeValueRsp': {
        const value = rq['attributeValue'] as Uint8Array;
        const uuid = uuidFromBytes(value);
        const primary = rq['attributeType'] === GattType.PrimaryService;
        if (!uuid) break;
        for (const e of pdu['handlesInformationList'] as Array<{ foundAttributeHandle: number; groupEndHandle: number }>) {
          services.set(e.foundAttributeHandle, { uuid, primary, start: e.foundAttributeHandle, end: e.groupEndHandle, characteristics: [] });
        }
        break;
      }
      case 'readByTypeRsp': {
        const list = pdu['attributeDataList'] as Array<{ handle: number; value: Uint8Array }>;
        if (rq['attributeType'] === GattType.Characteristic) {
          for (const e of list) {
            if (e.value.length !== 5 && e.value.length !== 19) continue;
            const uuid = uuidFromBytes(e.value, 3);
            if (!uuid) continue;
            chars.set(e.handle, { uuid, declHandle: e.handle, valueHandle: u16(e.value, 1), properties: e.value[0]!, descriptors: [] });
          }
        } else if (rq['attributeType'] !== GattType.Include) {
          for (const e of list) reads.push({ handle: e.handle, value: toHex(e.value), atMs: atMs(l.frame) });
        }
        break;
      }
      case 'findInformationRsp':
        for (const e of pdu['informationData'] as Array<{ handle: number; uuid: Uuid }>) descriptors.set(e.handle, e.uuid);
        break;
      case 'readRsp':
        if (req.kind === 'readReq') {
          flushLongRead();
          longRead = { handle: rq['handle'] as number, parts: [pdu['value'] as Uint8Array], frame: l.frame };
        }
        break;
      case 'readBlobRsp':
        if (req.kind === 'readBlobReq' && longRead && longRead.handle === rq['handle']) longRead.parts.push(pdu['value'] as Uint8Array);
        break;
      default:
        break;
    }
  }
  flushLongRead();

  // 4. Assemble the tree: characteristics into services, descriptors into characteristics.
  const tree = [...services.values()].sort((a, b) => a.start - b.start);
  const charList = [...chars.values()].sort((a, b) => a.declHandle - b.declHandle);
  const special = new Set<number>([...tree.map(s => s.start), ...charList.flatMap(c => [c.declHandle, c.valueHandle])]);
  for (const s of tree) {
    const inside = charList.filter(c => c.declHandle > s.start && c.declHandle <= s.end);
    for (let i = 0; i < inside.length; i++) {
      const c = inside[i]!;
      const end = i + 1 < inside.length ? inside[i + 1]!.declHandle - 1 : s.end;
      c.descriptors = [...descriptors.entries()]
        .filter(([h, u]) => h > c.valueHandle && h <= end && !special.has(h) && u !== GattType.Characteristic && u !== GattType.PrimaryService && u !== GattType.SecondaryService && u !== GattType.Include)
        .sort((a, b) => a[0] - b[0])
        .map(([handle, uuid]) => ({ uuid, handle }));
      s.characteristics.push({ uuid: c.uuid, declHandle: c.declHandle, valueHandle: c.valueHandle, properties: c.properties, descriptors: c.descriptors });
    }
  }

  const name = options.name ?? advName ?? conn.address ?? `handle 0x${conn.handle.toString(16).padStart(4, '0')}`;
  return {
    name,
    source: { capture: options.captureName ?? 'capture', firstFrame: att[0]!.frame, lastFrame: att[att.length - 1]!.frame },
    peer: {
      ...(conn.address ? { address: conn.address } : {}),
      ...(conn.addressType ? { addressType: conn.addressType } : {}),
      ...(advName ? { name: advName } : {}),
    },
    connectionHandle: conn.handle,
    ...(advertising ? { advertising } : {}),
    ...(mtu.client !== undefined || mtu.server !== undefined ? { mtu } : {}),
    services: tree,
    reads,
    writes,
    notifications,
  };
}

/** Where the simulator's layout (consecutive handles inside a service) cannot reproduce the twin's. */
export function layoutGaps(twin: DeviceTwin): string[] {
  const gaps: string[] = [];
  for (const s of twin.services) {
    let next = s.start + 1;
    for (const c of s.characteristics) {
      if (c.declHandle !== next) gaps.push(`${s.uuid}: characteristic ${c.uuid} at 0x${c.declHandle.toString(16)}, layout gives 0x${next.toString(16)}`);
      next = c.declHandle + 2;
      if (c.valueHandle !== c.declHandle + 1) gaps.push(`${c.uuid}: value handle 0x${c.valueHandle.toString(16)} is not declaration + 1`);
      for (const d of c.descriptors) {
        if (d.handle !== next) gaps.push(`${c.uuid}: descriptor ${d.uuid} at 0x${d.handle.toString(16)}, layout gives 0x${next.toString(16)}`);
        next = d.handle + 1;
      }
    }
  }
  return gaps;
}

export interface TwinSimOptions {
  /** Address to advertise from when the capture did not show the peer's (ACL-only logs). */
  address?: string;
  /**
   * A fixed interval for the notification stream in the simulator, instead of the captured relative
   * times (default: the captured times; `everyMs` is then the median captured interval).
   */
  notifyEveryMs?: number;
}

/**
 * The simulator's declarative peripheral for a twin: the same services at the same start and end
 * handles, each characteristic with its properties, descriptors (a listed CCCD is the CCCD), the first
 * value read as its value, and one notification source per notified handle replaying the captured
 * values in order (cycled) at their captured relative times: each value after the previous one's
 * captured gap, the first after the captured gap between the CCCD write that enabled it and the first
 * value (the median gap when the capture shows no such write). When the values cycle, the pairing of
 * value and gap repeats with them. The host sees each value at the link's next connection event, as
 * it would on air.
 */
export function twinToSimPeripheral(twin: DeviceTwin, options: TwinSimOptions = {}): SimPeripheral {
  const firstRead = new Map<number, string>();
  for (const r of twin.reads) if (!firstRead.has(r.handle)) firstRead.set(r.handle, r.value);
  const notified = new Set(twin.notifications.map(n => n.handle));
  const services: SimService[] = twin.services.map(s => ({
    uuid: s.uuid,
    primary: s.primary,
    handle: s.start,
    endHandle: s.end,
    characteristics: s.characteristics.map((c, i): SimCharacteristic => {
      const v = firstRead.get(c.valueHandle);
      const descriptors = c.descriptors.map(d => {
        const dv = firstRead.get(d.handle);
        return { uuid: d.uuid as string, handle: d.handle, ...(dv !== undefined ? { value: { hex: dv } } : {}), ...(d.uuid === GattType.ClientCharacteristicConfiguration ? { writable: true } : {}) };
      });
      // A notifying characteristic whose capture shows no CCCD (the next attribute follows its value,
      // or the central never looked): the twin has none, as the capture shows, rather than the one the
      // database would add and that would push every later handle along. Only when notifications
      // were captured on it and a free handle follows its last attribute does the twin place a CCCD
      // there, so the captured stream can be enabled without moving anything.
      const notifies = CHARACTERISTIC_PROPERTIES.has(c.properties, 'notify') || CHARACTERISTIC_PROPERTIES.has(c.properties, 'indicate');
      let cccd: boolean | undefined;
      if (notifies && !c.descriptors.some(d => d.uuid === GattType.ClientCharacteristicConfiguration)) {
        const last = c.descriptors.at(-1)?.handle ?? c.valueHandle;
        const nextTaken = s.characteristics[i + 1]?.declHandle ?? s.end + 1;
        if (notified.has(c.valueHandle) && last + 1 < nextTaken) descriptors.push({ uuid: GattType.ClientCharacteristicConfiguration, handle: last + 1, writable: true });
        else cccd = false;
      }
      return {
        uuid: c.uuid,
        handle: c.declHandle, // the captured layout, gaps included
        properties: propertyNames(c.properties), // propertyNames leaves out the Extended Properties bit
        ...(v !== undefined ? { value: { hex: v } } : {}),
        ...(descriptors.length ? { descriptors } : {}),
        ...(cccd === false ? { cccd } : {}),
      };
    }),
  }));
  const byHandle = new Map<number, DeviceTwin['notifications']>();
  for (const n of twin.notifications) {
    const list = byHandle.get(n.handle) ?? [];
    list.push(n);
    byHandle.set(n.handle, list);
  }
  const notifications = [...byHandle.entries()].map(([handle, list]) => {
    const gaps = list.slice(1).map((n, i) => n.atMs - list[i]!.atMs);
    const sorted = [...gaps].sort((a, b) => a - b);
    const median = Math.max(1, sorted.length ? sorted[Math.floor(sorted.length / 2)]! : 1000);
    const indicate = list.some(n => n.indication);
    const enabled = cccdEnabledAt(twin, handle, indicate, list[0]!.atMs);
    const first = enabled === undefined ? median : list[0]!.atMs - enabled;
    return {
      characteristic: handle,
      everyMs: options.notifyEveryMs ?? median,
      ...(options.notifyEveryMs === undefined ? { intervalsMs: [first, ...gaps] } : {}),
      ...(indicate ? { mode: 'indicate' as const } : {}),
      generator: { kind: 'cycle' as const, values: list.map(n => ({ hex: n.value })) },
    };
  });
  const address = twin.peer.address ?? options.address;
  if (!address) throw new ArgumentError('twin: the capture does not show the peer\'s address; pass options.address');
  return {
    name: twin.name,
    address,
    addressType: twin.peer.addressType ?? 'random',
    advertising: {
      ...(twin.advertising?.extended ? { type: 'extended' as const } : {}),
      data: twin.advertising?.data !== undefined ? { raw: { hex: twin.advertising.data } } : { flags: 0x06, name: twin.name.slice(0, 26) },
      ...(twin.advertising?.scanResponse !== undefined ? { scanResponse: { raw: { hex: twin.advertising.scanResponse } } } : {}),
      connectable: true,
    },
    gatt: services,
    notifications,
    ...(twin.mtu?.server !== undefined ? { mtu: twin.mtu.server } : {}),
  };
}

/**
 * The records of one connection, for a small fixture cut from a long capture: the peer's advertising
 * reports before it, then every command, event and ACL packet of its handle from Connection Complete
 * to Disconnection Complete (events and commands that name the handle; ACL on it). Records keep their
 * times; writers renumber frames.
 */
export function recordsOfConnection(records: Iterable<CaptureRecord>, options: Pick<ExtractTwinOptions, 'address' | 'occurrence' | 'handle'>): CaptureRecord[] {
  const all = [...records];
  const byFrame = new Map(all.map(r => [r.frame, r]));
  const want = options.address?.toUpperCase();
  let occurrence = 0;
  let handle: number | undefined = want ? undefined : options.handle;
  let state: 'before' | 'in' | 'after' = want ? 'before' : 'in';
  const out: CaptureRecord[] = [];
  for (const line of decodeRecords(all)) {
    if (line.line !== 'record' || state === 'after') continue;
    const rec = byFrame.get(line.frame)!;
    const f = line.fields as Record<string, unknown>;
    if (state === 'before') {
      if (line.type === 'event' && ADV_REPORTS.has(f['kind'] as string)) {
        if ((f['reports'] as Array<Record<string, unknown>>).some(r => r['address'] === want)) out.push(rec);
      } else if (line.type === 'event' && CONNECTION_COMPLETE.has(f['kind'] as string) && f['status'] === 0 && f['peerAddress'] === want) {
        if (++occurrence === (options.occurrence ?? 1)) {
          handle = (f['connectionHandle'] as number) & 0x0fff;
          state = 'in';
          out.push(rec);
        }
      }
      continue;
    }
    const h = line.type === 'acl' ? f['handle'] : typeof f['connectionHandle'] === 'number' ? (f['connectionHandle'] as number) & 0x0fff : undefined;
    if (h !== handle) continue;
    out.push(rec);
    if (line.type === 'event' && f['kind'] === 'disconnectionComplete' && f['status'] === 0) state = 'after';
  }
  return out;
}

/**
 * When the central last enabled notifications (or indications) of `valueHandle` in its CCCD before
 * `beforeMs`: the time of that write, or undefined when the capture shows none (the device may notify
 * unasked, or the write was cut off).
 */
function cccdEnabledAt(twin: DeviceTwin, valueHandle: number, indicate: boolean, beforeMs: number): number | undefined {
  let cccd: number | undefined;
  for (const s of twin.services) {
    for (const c of s.characteristics) {
      if (c.valueHandle === valueHandle) cccd = c.descriptors.find(d => d.uuid === GattType.ClientCharacteristicConfiguration)?.handle;
    }
  }
  if (cccd === undefined) return undefined;
  // CCCD value: bit 0 notifications, bit 1 indications, little-endian (Vol 3, Part G, 3.3.3.3).
  const bit = indicate ? 0x02 : 0x01;
  let at: number | undefined;
  for (const w of twin.writes) {
    if (w.handle !== cccd || w.atMs > beforeMs) continue;
    const v = Number.parseInt(w.value.slice(0, 2) || '00', 16);
    at = (v & bit) !== 0 ? (at ?? w.atMs) : undefined; // the write that turned it on, unless turned off again
  }
  return at;
}

/** twin.json text: readable at the top, one line per read, write and notification (long streams stay compact). */
export function serializeTwin(twin: DeviceTwin): string {
  const { reads, writes, notifications, ...head } = twin;
  const body = JSON.stringify(head, null, 2).replace(/\n}$/, '');
  const list = (key: string, items: unknown[]): string =>
    `  "${key}": [${items.length ? `\n${items.map(i => `    ${JSON.stringify(i)}`).join(',\n')}\n  ` : ''}]`;
  return `${body},\n${list('reads', reads)},\n${list('writes', writes)},\n${list('notifications', notifications)}\n}\n`;
}

/** What a twin's scenario file pins: where the device is, its database, and the shape of its traffic. */
export interface TwinSummary {
  peer: DeviceTwin['peer'];
  advertising?: DeviceTwin['advertising'];
  services: TwinService[];
  reads: number;
  writes: number;
  notifications: { count: number; handles: number[]; first: string[]; last: string; spanMs: number };
}

export function twinSummary(twin: DeviceTwin): TwinSummary {
  const n = twin.notifications;
  return {
    peer: twin.peer,
    ...(twin.advertising ? { advertising: twin.advertising } : {}),
    services: twin.services,
    reads: twin.reads.length,
    writes: twin.writes.length,
    notifications: {
      count: n.length,
      handles: [...new Set(n.map(x => x.handle))],
      first: n.slice(0, 5).map(x => x.value),
      last: n[n.length - 1]?.value ?? '',
      spanMs: n.length ? Math.round((n[n.length - 1]!.atMs - n[0]!.atMs) * 100) / 100 : 0,
    },
  };
}
