/**
 * A declarative GATT database and the server that serves it on any number of links.
 *
 * `new GattDatabase(services)` lays out services, includes, characteristics and descriptors as ATT
 * attributes (Core Vol 3, Part G, 3), computes the Database Hash (7.3), and `db.attach(channel)`
 * serves it on one link through an AttBearer: every client request is answered by the flat ATT
 * server (src/att/server.ts), and per-link state lives in the returned GattServerLink: CCCD values,
 * Client Supported Features, the robust-caching change-aware state (2.5.2.1), and notify / indicate.
 *
 * Used as: our own small GAP/GATT database (local-db.ts), the fake peripheral of the unit tests,
 * and the simulator's virtual peripherals. Handlers are synchronous; throw AttServerError(code) to
 * refuse an access with an ATT error.
 *
 * Layout: each service takes the next free handle (or `handle`), then per characteristic its
 * declaration, its value, then its descriptors in the order given; a CCCD is added first when the
 * characteristic notifies or indicates and none is listed, and an Extended Properties descriptor
 * when reliableWrite / writableAuxiliaries are set and none is listed. `endHandle` reserves handles.
 * A characteristic or descriptor with its own `handle` starts there (a gap before it stays unused);
 * one that would go back over an earlier attribute is an ArgumentError.
 */
import { AttBearer, type AttServerContext, type AttServerRole } from '../att/bearer.js';
import { AttErrorCode } from '../att/constants.js';
import type { AttPdu } from '../att/pdus.js';
import { AttServer, AttServerError, type AttAccess, type AttAttribute } from '../att/server.js';
import { concat } from '../bytes/hex.js';
import type { Clock } from '../clock.js';
import { uuid as toUuid, uuidToBytes, type Uuid } from '../codec/uuid.js';
import type { L2capChannel } from '../l2cap/channel.js';
import { CCCD, CHARACTERISTIC_PROPERTIES, CLIENT_FEATURES, CharacteristicProperty, ExtendedProperty, GattType, type CharacteristicPropertyName } from './constants.js';
import { aesCmac } from './crypto.js';
import { cccdValue, decodeGattValue, encodeGattValue } from './values.js';
import { ArgumentError, InvalidStateError } from '../errors.js';

export type UuidLike = number | string;
export type ValueLike = Uint8Array | string;

/** What a handler knows about an access. */
export interface GattAccess {
  readonly link: GattServerLink | undefined;
  /** The attribute accessed. */
  readonly handle?: number;
  readonly mtu: number;
  readonly op: AttAccess['op'];
}

export interface DescriptorDef {
  uuid: UuidLike;
  /** Its handle (default: the next free one); a device twin's captured handle. */
  handle?: number;
  value?: ValueLike;
  readable?: boolean;
  writable?: boolean;
  onRead?(access: GattAccess): Uint8Array;
  onWrite?(value: Uint8Array, access: GattAccess): void;
}

export interface CharacteristicDef {
  uuid: UuidLike;
  /**
   * Handle of its declaration (default: the next free one); the value is the next handle (Vol 3, Part
   * G, 3.3: the value declaration follows the characteristic declaration). A device twin's captured handle.
   */
  handle?: number;
  properties: CharacteristicPropertyName[];
  /** Initial stored value (strings are UTF-8). */
  value?: ValueLike;
  onRead?(access: GattAccess): Uint8Array;
  /** Called for every accepted write; the stored value is updated first unless `onWrite` throws. */
  onWrite?(value: Uint8Array, access: GattAccess): void;
  /** Longest value accepted (Invalid Attribute Value Length beyond it), default 512. */
  maxLength?: number;
  descriptors?: DescriptorDef[];
  /**
   * Default true: a notifying or indicating characteristic gets a CCCD when none is listed, as the
   * spec requires (Vol 3, Part G, 3.3.3.3). `false` reproduces a peer that has none (a device twin
   * whose capture shows no room for one); such a characteristic can then never notify.
   */
  cccd?: boolean;
}

export interface ServiceDef {
  uuid: UuidLike;
  /** Default true; a secondary service is only reachable through includes (Vol 3, Part G, 2.6). */
  primary?: boolean;
  /** Handle of the service declaration; default: the next free handle. */
  handle?: number;
  /** Reserve handles up to here (the group end); default: the service's last attribute. */
  endHandle?: number;
  /** Name this service so others can include it. */
  id?: string;
  includes?: string[];
  characteristics?: CharacteristicDef[];
}

/** The laid-out handles, for tests and for the owner of the database. */
export interface ServiceLayout {
  uuid: Uuid;
  primary: boolean;
  start: number;
  end: number;
  includes: number[];
  characteristics: CharacteristicLayout[];
}
export interface CharacteristicLayout {
  uuid: Uuid;
  declHandle: number;
  valueHandle: number;
  properties: number;
  cccdHandle?: number;
  descriptors: Array<{ uuid: Uuid; handle: number }>;
}

const enc = new TextEncoder();
const bytesOf = (v: ValueLike | undefined): Uint8Array => (v === undefined ? new Uint8Array(0) : typeof v === 'string' ? enc.encode(v) : v);
const u16le = (n: number): Uint8Array => Uint8Array.of(n & 0xff, n >> 8);

/** A characteristic value read or written (GattDatabase's `observe` option): the value as answered or stored. */
export interface ValueAccess {
  readonly handle: number;
  readonly uuid: Uuid;
  readonly op: 'read' | 'write';
  readonly value: Uint8Array;
  readonly access: GattAccess;
}

export class GattDatabase {
  readonly layout: ServiceLayout[] = [];
  readonly server: AttServer;
  private readonly values = new Map<number, Uint8Array>();
  private readonly attrs: AttAttribute[] = [];
  private hashValue: Uint8Array | undefined;

  /**
   * `observe`: told of every characteristic value read (Read, Read Blob, Read By Type, Read Multiple)
   * and every accepted write, after the fact; it must not throw (what it throws is ignored).
   */
  constructor(services: ServiceDef[], private readonly options: { observe?: (a: ValueAccess) => void } = {}) {
    this.build(services);
    this.server = new AttServer(this.attrs);
  }

  /** The Database Hash of this database (Vol 3, Part G, 7.3.1). */
  get hash(): Uint8Array {
    return this.hashValue ??= computeDatabaseHash(this.attrs);
  }

  /** The layout of a characteristic by UUID (first match) or value handle. */
  characteristic(key: UuidLike): CharacteristicLayout | undefined {
    for (const s of this.layout) {
      for (const c of s.characteristics) {
        if (typeof key === 'number' ? c.valueHandle === key || c.uuid === safeUuid(key) : c.uuid === safeUuid(key)) return c;
      }
    }
    return undefined;
  }

  /** The stored value of a characteristic or descriptor handle. */
  value(handle: number): Uint8Array | undefined {
    return this.values.get(handle);
  }

  /** Replace a stored value (does not notify; see GattServerLink.notify). */
  setValue(handle: number, value: ValueLike): void {
    this.values.set(handle, bytesOf(value));
  }

  /** Serve this database on one link. The bearer answers every request from the database. */
  attach(channel: L2capChannel, options: { clock: Clock; mtu?: number; transactionTimeoutMs?: number }): GattServerLink {
    const link = this.createLink();
    const bearer = new AttBearer(channel, {
      clock: options.clock,
      ...(options.mtu !== undefined ? { mtu: options.mtu } : {}),
      ...(options.transactionTimeoutMs !== undefined ? { transactionTimeoutMs: options.transactionTimeoutMs } : {}),
      server: link.role,
    });
    link.bind(bearer);
    return link;
  }

  /**
   * A link not yet bound to a bearer: pass `link.role` as the bearer's server role, then
   * `link.bind(bearer)` (how a GATT client hosts our own database on its bearer).
   */
  createLink(): GattServerLink {
    return new GattServerLink(this);
  }

  // ---- layout ---------------------------------------------------------------------------------------

  private build(services: ServiceDef[]): void {
    let next = 1;
    const byId = new Map<string, ServiceLayout>();
    const pendingIncludes: Array<{ handle: number; ids: string[]; svc: ServiceLayout }> = [];
    for (const def of services) {
      const start = def.handle ?? next;
      if (start < next) throw new ArgumentError(`service ${String(def.uuid)} at 0x${start.toString(16)} overlaps the previous one`);
      const svcUuid = toUuid(def.uuid);
      const primary = def.primary ?? true;
      const svc: ServiceLayout = { uuid: svcUuid, primary, start, end: start, includes: [], characteristics: [] };
      let h = start;
      const declIndex = this.attrs.length;
      this.attrs.push(placeholder());
      h++;
      for (const id of def.includes ?? []) {
        svc.includes.push(h);
        pendingIncludes.push({ handle: h, ids: [id], svc });
        this.attrs.push(placeholder(h));
        h++;
      }
      for (const c of def.characteristics ?? []) h = this.addCharacteristic(svc, c, h);
      const end = def.endHandle ?? h - 1;
      if (end < h - 1) throw new ArgumentError(`service ${svcUuid}: endHandle 0x${end.toString(16)} is before its last attribute`);
      if (end > 0xffff) throw new ArgumentError(`service ${svcUuid} does not fit below 0xFFFF`);
      svc.end = end;
      const decl = encodeGattValue({ kind: primary ? 'primaryServiceDeclaration' : 'secondaryServiceDeclaration', uuid: svcUuid });
      this.attrs[declIndex] = this.constAttr(start, primary ? GattType.PrimaryService : GattType.SecondaryService, decl, { groupEnd: end });
      this.layout.push(svc);
      if (def.id) byId.set(def.id, svc);
      next = end + 1;
    }
    // Include declarations: included service handle, end group handle, UUID if 16-bit (Vol 3, Part G, 3.2).
    for (const inc of pendingIncludes) {
      const target = byId.get(inc.ids[0]!);
      if (!target) throw new ArgumentError(`include of unknown service id '${inc.ids[0]}'`);
      const u = uuidToBytes(target.uuid);
      const value = encodeGattValue({
        kind: 'includeDeclaration', includedHandle: target.start, endGroupHandle: target.end, uuid16: u.length === 2 ? u : new Uint8Array(0),
      });
      const i = this.attrs.findIndex(a => a.handle === inc.handle);
      this.attrs[i] = this.constAttr(inc.handle, GattType.Include, value);
    }
  }

  private addCharacteristic(svc: ServiceLayout, c: CharacteristicDef, h: number): number {
    const cu = toUuid(c.uuid);
    let props = 0;
    let ext = 0;
    for (const p of c.properties) {
      if (p in CharacteristicProperty) props |= CharacteristicProperty[p as keyof typeof CharacteristicProperty];
      else ext |= ExtendedProperty[p as keyof typeof ExtendedProperty];
    }
    // The Extended Properties bit says the 0x2900 descriptor exists (Vol 3, Part G, 3.3.1.1).
    if (ext || (c.descriptors ?? []).some(d => safeUuid(d.uuid) === GattType.ExtendedProperties)) {
      props |= CharacteristicProperty.extendedProperties;
    }
    if (c.handle !== undefined) {
      if (!Number.isInteger(c.handle) || c.handle < h || c.handle >= 0xffff) {
        throw new ArgumentError(`characteristic ${cu} at 0x${Number(c.handle).toString(16)}: ${c.handle < h ? `before the next free handle 0x${h.toString(16)}` : 'not a handle below 0xFFFF'}`);
      }
      h = c.handle;
    }
    const declHandle = h++;
    const valueHandle = h++;
    const decl = encodeGattValue({ kind: 'characteristicDeclaration', properties: props, valueHandle, uuid: cu });
    this.attrs.push(this.constAttr(declHandle, GattType.Characteristic, decl));
    this.values.set(valueHandle, bytesOf(c.value));
    this.attrs.push(this.valueAttr(valueHandle, cu, c, props));
    const layout: CharacteristicLayout = { uuid: cu, declHandle, valueHandle, properties: props, descriptors: [] };
    const descs = [...(c.descriptors ?? [])];
    const has = (t: Uuid): boolean => descs.some(d => safeUuid(d.uuid) === t);
    if ((CHARACTERISTIC_PROPERTIES.has(props, 'notify') || CHARACTERISTIC_PROPERTIES.has(props, 'indicate')) && c.cccd !== false
      && !has(GattType.ClientCharacteristicConfiguration)) {
      descs.unshift({ uuid: 0x2902 });
    }
    if (ext && !has(GattType.ExtendedProperties)) descs.unshift({ uuid: 0x2900 });
    for (const d of descs) {
      const du = toUuid(d.uuid);
      if (d.handle !== undefined) {
        if (!Number.isInteger(d.handle) || d.handle < h || d.handle > 0xffff) {
          throw new ArgumentError(`descriptor ${du} of ${cu} at 0x${Number(d.handle).toString(16)}: ${d.handle < h ? `before the next free handle 0x${h.toString(16)}` : 'not a handle'}`);
        }
        h = d.handle;
      }
      const handle = h++;
      layout.descriptors.push({ uuid: du, handle });
      if (du === GattType.ClientCharacteristicConfiguration) {
        layout.cccdHandle = handle;
        this.attrs.push(this.cccdAttr(handle, props));
      } else if (du === GattType.ExtendedProperties && d.value === undefined && !d.onRead) {
        this.attrs.push(this.constAttr(handle, du, encodeGattValue({ kind: 'extendedProperties', bits: ext })));
      } else {
        this.values.set(handle, bytesOf(d.value));
        this.attrs.push(this.descriptorAttr(handle, du, d));
      }
    }
    svc.characteristics.push(layout);
    return h;
  }

  private constAttr(handle: number, type: Uuid, value: Uint8Array, extra: { groupEnd?: number } = {}): AttAttribute {
    return { handle, type, readable: true, writable: false, ...extra, read: () => value };
  }

  private access(a: AttAccess, handle?: number): GattAccess {
    return { link: linkOf(a.session), mtu: a.mtu, op: a.op, ...(handle !== undefined ? { handle } : {}) };
  }

  private valueAttr(handle: number, type: Uuid, c: CharacteristicDef, props: number): AttAttribute {
    const special = type === GattType.DatabaseHash ? 'hash' : type === GattType.ClientSupportedFeatures ? 'csf' : undefined;
    const P = CHARACTERISTIC_PROPERTIES;
    const writable = P.has(props, 'write') || P.has(props, 'writeWithoutResponse') || P.has(props, 'authenticatedSignedWrites')
      || c.properties.includes('reliableWrite');
    const max = c.maxLength ?? 512;
    return {
      handle, type,
      readable: P.has(props, 'read'),
      writable,
      read: a => {
        const acc = this.access(a, handle);
        let v: Uint8Array;
        if (c.onRead) v = c.onRead(acc);
        else if (special === 'hash' && c.value === undefined) {
          acc.link?.markChangeAware();
          v = this.hash;
        } else if (special === 'csf' && c.value === undefined) v = acc.link?.clientFeatures ?? Uint8Array.of(0);
        else v = this.values.get(handle) ?? new Uint8Array(0);
        this.observed({ handle, uuid: type, op: 'read', value: v, access: acc });
        return v;
      },
      write: (value, a) => {
        if (value.length > max) throw new AttServerError(AttErrorCode.InvalidAttributeValueLength);
        const acc = this.access(a, handle);
        if (special === 'csf' && !c.onWrite) {
          acc.link?.writeClientFeatures(value);
        } else {
          c.onWrite?.(value, acc);
          this.values.set(handle, value);
        }
        this.observed({ handle, uuid: type, op: 'write', value, access: acc });
      },
    };
  }

  private observed(a: ValueAccess): void {
    if (!this.options.observe) return;
    try {
      this.options.observe(a);
    } catch {
      // an observer's failure is not the client's
    }
  }

  private descriptorAttr(handle: number, type: Uuid, d: DescriptorDef): AttAttribute {
    return {
      handle, type,
      readable: d.readable ?? true,
      writable: d.writable ?? false,
      read: a => (d.onRead ? d.onRead(this.access(a, handle)) : this.values.get(handle) ?? new Uint8Array(0)),
      write: (value, a) => {
        d.onWrite?.(value, this.access(a, handle));
        this.values.set(handle, value);
      },
    };
  }

  private cccdAttr(handle: number, props: number): AttAttribute {
    return {
      handle, type: GattType.ClientCharacteristicConfiguration, readable: true, writable: true,
      read: a => cccdValue(linkOf(a.session)?.cccd(handle) ?? 0),
      write: (value, a) => {
        // Vol 3, Part G, 3.3.3.3: two octets; only bits the characteristic supports may be set.
        let v: number;
        try {
          v = decodeGattValue('clientCharacteristicConfiguration', value).bits;
        } catch {
          throw new AttServerError(AttErrorCode.InvalidAttributeValueLength);
        }
        const allowed = CCCD.pack({
          notification: CHARACTERISTIC_PROPERTIES.has(props, 'notify'), indication: CHARACTERISTIC_PROPERTIES.has(props, 'indicate'),
        });
        if (v & ~allowed) throw new AttServerError(AttErrorCode.CccdImproperlyConfigured);
        linkOf(a.session)?.setCccd(handle, v);
      },
    };
  }
}

/**
 * One link served from a GattDatabase: per-link CCCDs, Client Supported Features, change-aware
 * state, and notify / indicate. Dies with the link.
 */
export class GattServerLink {
  private bearerRef: AttBearer | undefined;
  private readonly cccds = new Map<number, number>();
  private readonly cccdListeners = new Set<(handle: number, value: number) => void>();
  private csf = 0;
  private changeAware = true;
  /** Database changes seen by this link (a confirmation of an older Service Changed does not count). */
  private changes = 0;
  private db: GattDatabase;
  /** Requests this link answered (the client's round trips). */
  requests = 0;
  /** Every request PDU kind served, in order. */
  readonly requestLog: string[] = [];

  constructor(db: GattDatabase) {
    this.db = db;
  }

  get bearer(): AttBearer {
    if (!this.bearerRef) throw new InvalidStateError('GattServerLink is not bound to a bearer');
    return this.bearerRef;
  }

  get database(): GattDatabase {
    return this.db;
  }

  bind(bearer: AttBearer): void {
    this.bearerRef = bearer;
  }

  /** The ATT server role answering from this link's database. */
  readonly role: AttServerRole = {
    handle: (pdu, ctx) => this.serve(pdu, ctx),
    closed: () => this.onClosed(),
  };

  /**
   * The server role: every request goes to the current database with this link as the session.
   * Subclasses (the user-facing server of src/gatt/server/) may answer asynchronously.
   */
  serve(pdu: AttPdu, ctx: AttServerContext): AttPdu | undefined | Promise<AttPdu | undefined> {
    const refused = this.robustCachingCheck(pdu);
    if (refused !== false) return refused;
    return this.serveNow(pdu, ctx);
  }

  /** The database's answer, synchronously, with no robust-caching check. */
  protected serveNow(pdu: AttPdu, ctx: AttServerContext): AttPdu | undefined {
    // The link itself is the session key, so attribute handlers find their link (linkOf()).
    const session: object = this;
    if (pdu.kind !== 'writeCmd' && pdu.kind !== 'signedWriteCmd') {
      this.requests++;
      if (this.requestLog.length < REQUEST_LOG_LIMIT) this.requestLog.push(pdu.kind);
    }
    return this.db.server.handle(pdu, { mtu: ctx.mtu, session });
  }

  /**
   * Robust caching (Vol 3, Part G, 2.5.2.1): a change-unaware client's commands are ignored
   * (undefined) and its requests that name an attribute handle or a list of handles get Database
   * Out Of Sync, as does a Read By Type of anything but «Include» / «Characteristic» over less than
   * the whole range. Discovery (Read By Group Type, Find By Type Value, Find Information, Read By
   * Type of declarations or over 0x0001-0xFFFF, which is how the Database Hash is read) is served,
   * so a client can rediscover and read the hash to become change-aware again. `false`: serve it.
   */
  protected robustCachingCheck(pdu: AttPdu): AttPdu | undefined | false {
    if (this.changeAware) return false;
    if (pdu.kind === 'writeCmd' || pdu.kind === 'signedWriteCmd') return undefined;
    if (!refusedWhileChangeUnaware(pdu)) return false;
    // Reading the hash at its handle is also let through: it is how a client becomes change-aware.
    if (pdu.kind === 'readReq' && this.db.characteristic(GattType.DatabaseHash)?.valueHandle === pdu.handle) return false;
    return { kind: 'errorRsp', requestOpcode: opcodeOf(pdu), handle: handleOfReq(pdu), errorCode: AttErrorCode.DatabaseOutOfSync };
  }

  /** The client is change-aware (Vol 3, Part G, 2.5.2.1): it knows the current database. */
  get isChangeAware(): boolean {
    return this.changeAware;
  }

  onClosed(): void {
    this.cccds.clear();
  }

  cccd(handle: number): number {
    return this.cccds.get(handle) ?? 0;
  }

  setCccd(handle: number, value: number): void {
    this.cccds.set(handle, value);
    for (const fn of [...this.cccdListeners]) fn(handle, value);
  }

  /** Called on every CCCD write by the client (a virtual peripheral starts or stops its stream here). */
  onCccd(fn: (cccdHandle: number, value: number) => void): () => void {
    this.cccdListeners.add(fn);
    return () => { this.cccdListeners.delete(fn); };
  }

  /** Resolves when the client writes `value` to the CCCD at `cccdHandle` (now, if it already holds it). */
  cccdWritten(cccdHandle: number, value: number): Promise<void> {
    if (this.cccd(cccdHandle) === value) return Promise.resolve();
    return new Promise(resolve => {
      const off = this.onCccd((h, v) => { if (h === cccdHandle && v === value) { off(); resolve(); } });
    });
  }

  get clientFeatures(): Uint8Array {
    return Uint8Array.of(this.csf);
  }

  writeClientFeatures(value: Uint8Array): void {
    if (value.length < 1) throw new AttServerError(AttErrorCode.InvalidAttributeValueLength);
    const v = value[0]!;
    // A client may not clear a feature bit it has set (Vol 3, Part G, 7.2).
    if ((this.csf & ~v) !== 0) throw new AttServerError(AttErrorCode.ValueNotAllowed);
    this.csf = v & CLIENT_FEATURES.known;
  }

  markChangeAware(): void {
    this.changeAware = true;
  }

  /** Is the client subscribed (notify or indicate bit) to this characteristic? */
  subscribed(key: UuidLike): number {
    const c = this.db.characteristic(key);
    return c?.cccdHandle ? this.cccd(c.cccdHandle) : 0;
  }

  /**
   * Send the characteristic's value (or `value`) as a notification if the client enabled
   * notifications; returns whether it was sent (a server only notifies subscribed clients,
   * Vol 3, Part G, 4.10).
   */
  async notify(key: UuidLike, value?: ValueLike): Promise<boolean> {
    const c = this.db.characteristic(key);
    if (!c?.cccdHandle || !CCCD.has(this.cccd(c.cccdHandle), 'notification')) return false;
    const v = value === undefined ? this.db.value(c.valueHandle) ?? new Uint8Array(0) : bytesOf(value);
    await this.bearer.notify(c.valueHandle, v);
    return true;
  }

  /** Indicate and await the confirmation; false when the client has not enabled indications. */
  async indicate(key: UuidLike, value?: ValueLike): Promise<boolean> {
    const c = this.db.characteristic(key);
    if (!c?.cccdHandle || !CCCD.has(this.cccd(c.cccdHandle), 'indication')) return false;
    const v = value === undefined ? this.db.value(c.valueHandle) ?? new Uint8Array(0) : bytesOf(value);
    await this.bearer.indicate(c.valueHandle, v);
    return true;
  }

  /**
   * Switch this link to another database (a firmware update while connected) and indicate Service
   * Changed for [start, end] to a subscribed client (Vol 3, Part G, 7.1). A client that enabled
   * robust caching is change-unaware until it confirms or reads the hash (2.5.2.1).
   */
  async changeDatabase(db: GattDatabase, start = 0x0001, end = 0xffff): Promise<boolean> {
    this.db = db;
    if (CLIENT_FEATURES.has(this.csf, 'robustCaching')) this.changeAware = false;
    const sc = db.characteristic(GattType.ServiceChanged);
    if (!sc?.cccdHandle || !CCCD.has(this.cccd(sc.cccdHandle), 'indication')) return false;
    // Change-aware from the confirmation on, in the same turn: the client may rediscover right behind
    // it, and a request handled before the promise settles must not get Database Out Of Sync.
    const generation = ++this.changes;
    await this.bearer.indicate(sc.valueHandle, encodeGattValue({ kind: 'serviceChanged', start, end }), {
      onConfirm: () => { if (generation === this.changes) this.changeAware = true; },
    });
    return true;
  }
}

/** Links serve with themselves as the ATT session; other servers (a bare AttServer) have none. */
function linkOf(session: object): GattServerLink | undefined {
  return session instanceof GattServerLink ? session : undefined;
}

function placeholder(handle = 0): AttAttribute {
  return { handle, type: GattType.PrimaryService, readable: false, writable: false, read: () => new Uint8Array(0) };
}

function safeUuid(x: UuidLike): Uuid | undefined {
  try {
    return toUuid(x);
  } catch {
    return undefined;
  }
}

const OPCODES: Partial<Record<AttPdu['kind'], number>> = {
  findInformationReq: 0x04, findByTypeValueReq: 0x06, readByTypeReq: 0x08, readReq: 0x0a, readBlobReq: 0x0c,
  readMultipleReq: 0x0e, readByGroupTypeReq: 0x10, writeReq: 0x12, prepareWriteReq: 0x16, executeWriteReq: 0x18,
  readMultipleVariableReq: 0x20,
};
/** Requests kept in a link's requestLog (a diagnostic; a long-lived link must not grow it without end). */
export const REQUEST_LOG_LIMIT = 4096;

/** Read By Type of these over any range is discovery (Vol 3, Part G, 2.5.2.1). */
const DISCOVERY_TYPES: ReadonlySet<Uuid> = new Set([GattType.Include, GattType.Characteristic]);

function refusedWhileChangeUnaware(pdu: AttPdu): boolean {
  switch (pdu.kind) {
    case 'readByGroupTypeReq': case 'findByTypeValueReq': case 'findInformationReq': return false;
    case 'readByTypeReq':
      return !DISCOVERY_TYPES.has(pdu.attributeType) && !(pdu.startingHandle === 0x0001 && pdu.endingHandle === 0xffff);
    default: return true;
  }
}

function opcodeOf(pdu: AttPdu): number {
  return OPCODES[pdu.kind] ?? 0;
}
function handleOfReq(pdu: AttPdu): number {
  const p = pdu as { handle?: number; startingHandle?: number };
  return p.handle ?? p.startingHandle ?? 0;
}

/**
 * The Database Hash (Vol 3, Part G, 7.3.1): AES-CMAC with a zero key over, in handle order, handle
 * ‖ type ‖ value of every service, include and characteristic declaration and Extended Properties
 * descriptor, and handle ‖ type of every User Description, CCCD, SCCD, Presentation Format and
 * Aggregate Format descriptor; all little-endian as on the wire, 16-bit types as 2 octets.
 */
export function computeDatabaseHash(attributes: readonly AttAttribute[]): Uint8Array {
  const withValue = new Set<Uuid>([GattType.PrimaryService, GattType.SecondaryService, GattType.Include,
    GattType.Characteristic, GattType.ExtendedProperties]);
  const typeOnly = new Set<Uuid>([GattType.UserDescription, GattType.ClientCharacteristicConfiguration,
    GattType.ServerCharacteristicConfiguration, GattType.PresentationFormat, GattType.AggregateFormat]);
  const parts: Uint8Array[] = [];
  const access: AttAccess = { mtu: 517, session: {}, op: 'read' };
  for (const a of [...attributes].sort((x, y) => x.handle - y.handle)) {
    if (withValue.has(a.type)) parts.push(u16le(a.handle), uuidToBytes(a.type), a.read(access));
    else if (typeOnly.has(a.type)) parts.push(u16le(a.handle), uuidToBytes(a.type));
  }
  return aesCmac(new Uint8Array(16), concat(parts));
}
