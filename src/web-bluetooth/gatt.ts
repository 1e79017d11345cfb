/**
 * BluetoothRemoteGATTService, BluetoothRemoteGATTCharacteristic, BluetoothCharacteristicProperties
 * and BluetoothRemoteGATTDescriptor (Web Bluetooth 5.x) over the GATT model of a blewire Connection.
 *
 * Each object is the page's view of one attribute, the same object every time the page asks for that
 * attribute (the spec's "Bluetooth cache"), and it outlives a reconnect: an operation after a
 * reconnect finds its attribute again by handle in the new connection's database (cached by the
 * stack) and fails with InvalidStateError when the device no longer has it.
 *
 * Order of checks, as the spec's algorithms have them: argument conversion (TypeError), the GATT
 * blocklist (SecurityError), the server connected (NetworkError), the characteristic's properties
 * (NotSupportedError), then the ATT exchange (its errors mapped in errors.ts).
 */
import type { GattCharacteristic, GattDescriptor, GattService } from '../api/surface.js';
import { copyBufferSource, dataViewOf, type WebBufferSource } from './buffer.js';
import { domError, gattError } from './errors.js';
import { BluetoothEventTarget, type Handler, CHARACTERISTIC_EVENTS, SERVICE_EVENTS, webidlInterface } from './events.js';
import { BluetoothUUID } from './uuid.js';
import type { BluetoothDevice, BluetoothRemoteGATTServer } from './device.js';

const EXTENDED_PROPERTIES = '00002900-0000-1000-8000-00805f9b34fb';

/** Longest attribute value (Core Vol 3, Part F, 3.2.9): writeValue() of more is InvalidModificationError. */
export const MAX_ATTRIBUTE_VALUE = 512;

const PROPERTY_BITS = [
  ['broadcast', 0x01], ['read', 0x02], ['writeWithoutResponse', 0x04], ['write', 0x08], ['notify', 0x10],
  ['indicate', 0x20], ['authenticatedSignedWrites', 0x40],
] as const;

/** BluetoothCharacteristicProperties: the declaration's properties (Core Vol 3, Part G, 3.3.1.1). */
export class BluetoothCharacteristicProperties {
  readonly #bits: number;
  readonly #ext: number;
  /** @internal */
  constructor(bits: number, extended: number) { this.#bits = bits; this.#ext = extended; }
  get broadcast(): boolean { return (this.#bits & 0x01) !== 0; }
  get read(): boolean { return (this.#bits & 0x02) !== 0; }
  get writeWithoutResponse(): boolean { return (this.#bits & 0x04) !== 0; }
  get write(): boolean { return (this.#bits & 0x08) !== 0; }
  get notify(): boolean { return (this.#bits & 0x10) !== 0; }
  get indicate(): boolean { return (this.#bits & 0x20) !== 0; }
  get authenticatedSignedWrites(): boolean { return (this.#bits & 0x40) !== 0; }
  /** From the Characteristic Extended Properties descriptor (bits 0 and 1), when the declaration has bit 0x80. */
  get reliableWrite(): boolean { return (this.#ext & 0x0001) !== 0; }
  get writableAuxiliaries(): boolean { return (this.#ext & 0x0002) !== 0; }
}
webidlInterface(BluetoothCharacteristicProperties, 'BluetoothCharacteristicProperties',
  [...PROPERTY_BITS.map(([n]) => n), 'reliableWrite', 'writableAuxiliaries']);

function uuidOrAll<T extends { uuid: string }>(items: readonly T[], uuid: string | undefined): T[] {
  return uuid === undefined ? [...items] : items.filter(i => i.uuid === uuid);
}

export class BluetoothRemoteGATTService extends BluetoothEventTarget {
  readonly #server: BluetoothRemoteGATTServer;
  readonly #uuid: string;
  readonly #primary: boolean;
  readonly #start: number;
  #svc: GattService | undefined;
  #generation: number;
  readonly #chars = new Map<number, BluetoothRemoteGATTCharacteristic>();

  /**
   * @internal A service of the connection's database; or, with `gone`, the stand-in for a removed
   * service the page never held (serviceremoved still names it): every operation on it is InvalidStateError.
   */
  constructor(server: BluetoothRemoteGATTServer, svc: GattService | undefined, gone?: { start: number; uuid: string; primary: boolean }) {
    super();
    const d = svc ?? gone!;
    this.#server = server;
    this.#uuid = d.uuid;
    this.#primary = d.primary;
    this.#start = d.start;
    this.#svc = svc;
    this.#generation = svc ? server._generation : -1;
  }

  protected override bluetoothParent(): BluetoothEventTarget { return this.#server.device; }
  get device(): BluetoothDevice { return this.#server.device; }
  get uuid(): string { return this.#uuid; }
  get isPrimary(): boolean { return this.#primary; }
  /** @internal */ get _server(): BluetoothRemoteGATTServer { return this.#server; }
  /** @internal */ get _start(): number { return this.#start; }

  /** @internal The stack's service in the current connection (found again by handle after a reconnect). */
  async _live(what: string): Promise<GattService> {
    const conn = this.#server._connection(what);
    if (this.#svc && this.#generation === this.#server._generation && !this.#server._removed(this)) return this.#svc;
    if (this.#server._removed(this)) throw domError('InvalidStateError', `${what}: GATT Service no longer exists.`);
    const svc = (await this.#server._services(what, conn)).find(s => s.start === this._start && s.uuid === this.#uuid);
    if (!svc) throw domError('InvalidStateError', `${what}: GATT Service no longer exists.`);
    this.#svc = svc;
    this.#generation = this.#server._generation;
    return svc;
  }

  /**
   * @internal The page's object for a characteristic of this service (one per value handle). A
   * declaration with the Extended Properties bit (0x80) has its Characteristic Extended Properties
   * descriptor read once here (Core Vol 3, Part G, 3.3.3.1), for reliableWrite / writableAuxiliaries.
   */
  async _characteristic(c: GattCharacteristic): Promise<BluetoothRemoteGATTCharacteristic> {
    let w = this.#chars.get(c.handle);
    if (!w || w.uuid !== c.uuid) {
      let extended = 0;
      const ext = (c.propertyBits & 0x80) !== 0 ? c.descriptors.find(d => d.uuid === EXTENDED_PROPERTIES) : undefined;
      if (ext) {
        try {
          const v = await ext.read();
          extended = (v[0] ?? 0) | ((v[1] ?? 0) << 8);
        } catch {
          // A peer that will not say: the properties it could have had stay false.
        }
      }
      w = this.#chars.get(c.handle);
      if (!w || w.uuid !== c.uuid) {
        w = new BluetoothRemoteGATTCharacteristic(this, c, extended);
        this.#chars.set(c.handle, w);
      }
    }
    return w;
  }

  getCharacteristic(characteristic: string | number): Promise<BluetoothRemoteGATTCharacteristic> {
    return this.#getCharacteristics('getCharacteristic', characteristic, true).then(l => l[0]!);
  }

  getCharacteristics(characteristic?: string | number): Promise<BluetoothRemoteGATTCharacteristic[]> {
    return this.#getCharacteristics('getCharacteristics', characteristic, false);
  }

  async #getCharacteristics(op: string, name: string | number | undefined, single: boolean): Promise<BluetoothRemoteGATTCharacteristic[]> {
    const what = `${op}()`;
    const uuid = name === undefined ? undefined : BluetoothUUID.getCharacteristic(name);
    const bl = this.#server._blocklist;
    if (uuid !== undefined && bl.blocked(uuid)) throw domError('SecurityError', `${what}: getCharacteristic(s) called with blocklisted UUID ${uuid}.`);
    const svc = await this._live(what);
    let chars: readonly GattCharacteristic[];
    try {
      chars = await svc.getCharacteristics();
    } catch (e) {
      throw gattError(what, e);
    }
    const found = uuidOrAll(chars, uuid).filter(c => !bl.blocked(c.uuid));
    if (found.length === 0) {
      throw domError('NotFoundError', uuid === undefined
        ? `${what}: No Characteristics found in service ${this.#uuid}.`
        : `${what}: No Characteristics matching UUID ${uuid} found in Service with UUID ${this.#uuid}.`);
    }
    return Promise.all((single ? found.slice(0, 1) : found).map(c => this._characteristic(c)));
  }

  getIncludedService(service: string | number): Promise<BluetoothRemoteGATTService> {
    return this.#getIncluded('getIncludedService', service, true).then(l => l[0]!);
  }

  getIncludedServices(service?: string | number): Promise<BluetoothRemoteGATTService[]> {
    return this.#getIncluded('getIncludedServices', service, false);
  }

  async #getIncluded(op: string, name: string | number | undefined, single: boolean): Promise<BluetoothRemoteGATTService[]> {
    const what = `${op}()`;
    const uuid = name === undefined ? undefined : BluetoothUUID.getService(name);
    const bl = this.#server._blocklist;
    if (uuid !== undefined && bl.blocked(uuid)) throw domError('SecurityError', `${what}: called with blocklisted UUID ${uuid}.`);
    if (uuid !== undefined && !this.#server.device._allows(uuid)) {
      throw domError('SecurityError', `${what}: Origin is not allowed to access the service ${uuid}. Tip: Add the service UUID to 'optionalServices' in requestDevice() options.`);
    }
    const svc = await this._live(what);
    const conn = this.#server._connection(what);
    const all = await this.#server._services(what, conn);
    const included = svc.includeRanges.map(r => all.find(s => s.start === r.start)).filter((s): s is GattService => s !== undefined);
    const found = uuidOrAll(included, uuid).filter(s => !bl.blocked(s.uuid) && this.#server.device._allows(s.uuid));
    if (found.length === 0) throw domError('NotFoundError', `${what}: No included Services${uuid ? ` matching UUID ${uuid}` : ''} found in Service with UUID ${this.#uuid}.`);
    return (single ? found.slice(0, 1) : found).map(s => this.#server._service(s));
  }
}
/** The event handler attributes (defined on the prototype by webidlInterface). */
export interface BluetoothRemoteGATTService {
  oncharacteristicvaluechanged: Handler;
  onserviceadded: Handler;
  onservicechanged: Handler;
  onserviceremoved: Handler;
}
webidlInterface(BluetoothRemoteGATTService, 'BluetoothRemoteGATTService',
  ['device', 'uuid', 'isPrimary', 'getCharacteristic', 'getCharacteristics', 'getIncludedService', 'getIncludedServices'],
  [...CHARACTERISTIC_EVENTS, ...SERVICE_EVENTS]);

export class BluetoothRemoteGATTCharacteristic extends BluetoothEventTarget {
  readonly #service: BluetoothRemoteGATTService;
  readonly #uuid: string;
  readonly #handle: number;
  readonly #properties: BluetoothCharacteristicProperties;
  #char: GattCharacteristic;
  #generation: number;
  #value: DataView | null = null;
  #subscription: { unsubscribe(): Promise<void>; readonly active: boolean } | undefined;
  #subscribing: Promise<void> | undefined;
  readonly #descriptors = new Map<number, BluetoothRemoteGATTDescriptor>();

  /** @internal */
  constructor(service: BluetoothRemoteGATTService, c: GattCharacteristic, extendedProperties: number) {
    super();
    this.#service = service;
    this.#uuid = c.uuid;
    this.#handle = c.handle;
    this.#char = c;
    this.#generation = service._server._generation;
    this.#properties = new BluetoothCharacteristicProperties(c.propertyBits, extendedProperties);
  }

  protected override bluetoothParent(): BluetoothEventTarget { return this.#service; }
  get service(): BluetoothRemoteGATTService { return this.#service; }
  get uuid(): string { return this.#uuid; }
  get properties(): BluetoothCharacteristicProperties { return this.#properties; }
  get value(): DataView | null { return this.#value; }

  /** @internal */
  async _live(what: string): Promise<GattCharacteristic> {
    const server = this.#service._server;
    if (this.#generation === server._generation) {
      server._connection(what);
      return this.#char;
    }
    const svc = await this.#service._live(what);
    let chars: readonly GattCharacteristic[];
    try {
      chars = await svc.getCharacteristics();
    } catch (e) {
      throw gattError(what, e);
    }
    const c = chars.find(x => x.handle === this.#handle && x.uuid === this.#uuid);
    if (!c) throw domError('InvalidStateError', `${what}: GATT Characteristic no longer exists.`);
    this.#char = c;
    this.#generation = server._generation;
    return c;
  }

  /** @internal A value from the device (read, notification or indication): store it, then tell the page. */
  _valueChanged(bytes: Uint8Array): void {
    this.#value = dataViewOf(bytes);
    this.fire('characteristicvaluechanged', true);
  }

  /** @internal The link went down: notifications end with it. */
  _disconnected(): void {
    this.#subscription = undefined;
  }

  getDescriptor(descriptor: string | number): Promise<BluetoothRemoteGATTDescriptor> {
    return this.#getDescriptors('getDescriptor', descriptor, true).then(l => l[0]!);
  }

  getDescriptors(descriptor?: string | number): Promise<BluetoothRemoteGATTDescriptor[]> {
    return this.#getDescriptors('getDescriptors', descriptor, false);
  }

  async #getDescriptors(op: string, name: string | number | undefined, single: boolean): Promise<BluetoothRemoteGATTDescriptor[]> {
    const what = `${op}()`;
    const uuid = name === undefined ? undefined : BluetoothUUID.getDescriptor(name);
    const bl = this.#service._server._blocklist;
    if (uuid !== undefined && bl.blocked(uuid)) throw domError('SecurityError', `${what}: getDescriptor(s) called with blocklisted UUID ${uuid}.`);
    const c = await this._live(what);
    const found = uuidOrAll(c.descriptors, uuid).filter(d => !bl.blocked(d.uuid));
    if (found.length === 0) {
      throw domError('NotFoundError', uuid === undefined
        ? `${what}: No Descriptors found in Characteristic with UUID ${this.#uuid}.`
        : `${what}: No Descriptors matching UUID ${uuid} found in Characteristic with UUID ${this.#uuid}.`);
    }
    return (single ? found.slice(0, 1) : found).map(d => {
      let w = this.#descriptors.get(d.handle);
      if (!w || w.uuid !== d.uuid) {
        w = new BluetoothRemoteGATTDescriptor(this, d);
        this.#descriptors.set(d.handle, w);
      }
      return w;
    });
  }

  async readValue(): Promise<DataView> {
    const what = 'readValue()';
    if (this.#service._server._blocklist.blockedForReads(this.#uuid)) throw domError('SecurityError', `${what}: readValue() called on blocklisted object marked exclude-reads (${this.#uuid}).`);
    const c = await this._live(what);
    if (!this.#properties.read) throw domError('NotSupportedError', `${what}: GATT operation not permitted: characteristic ${this.#uuid} has no 'read' property.`);
    let bytes: Uint8Array;
    try {
      bytes = await c.read();
    } catch (e) {
      throw gattError(what, e);
    }
    this._valueChanged(bytes);
    return this.#value!;
  }

  writeValue(value: WebBufferSource): Promise<void> { return this.#write('writeValue()', value, 'optional'); }
  writeValueWithResponse(value: WebBufferSource): Promise<void> { return this.#write('writeValueWithResponse()', value, 'required'); }
  writeValueWithoutResponse(value: WebBufferSource): Promise<void> { return this.#write('writeValueWithoutResponse()', value, 'never'); }

  async #write(what: string, value: unknown, response: 'required' | 'never' | 'optional'): Promise<void> {
    const bytes = copyBufferSource(value, `Failed to execute '${what.slice(0, -2)}' on 'BluetoothRemoteGATTCharacteristic'`);
    if (this.#service._server._blocklist.blockedForWrites(this.#uuid)) throw domError('SecurityError', `${what}: called on blocklisted object marked exclude-writes (${this.#uuid}).`);
    if (bytes.length > MAX_ATTRIBUTE_VALUE) throw domError('InvalidModificationError', `${what}: Value can't exceed ${MAX_ATTRIBUTE_VALUE} bytes (got ${bytes.length}).`);
    const c = await this._live(what);
    const p = this.#properties;
    const ok = response === 'required' ? p.write : response === 'never' ? p.writeWithoutResponse
      : p.write || p.writeWithoutResponse || p.authenticatedSignedWrites;
    if (!ok) {
      const wants = response === 'required' ? "'write'" : response === 'never' ? "'writeWithoutResponse'" : "'write' or 'writeWithoutResponse'";
      throw domError('NotSupportedError', `${what}: GATT operation not permitted: characteristic ${this.#uuid} has no ${wants} property.`);
    }
    try {
      await c.write(bytes, { withResponse: response === 'required' || (response === 'optional' && p.write) });
    } catch (e) {
      throw gattError(what, e);
    }
    this.#value = dataViewOf(bytes);
  }

  async startNotifications(): Promise<BluetoothRemoteGATTCharacteristic> {
    const what = 'startNotifications()';
    if (this.#service._server._blocklist.blockedForReads(this.#uuid)) throw domError('SecurityError', `${what}: called on blocklisted object marked exclude-reads (${this.#uuid}).`);
    const c = await this._live(what);
    if (!this.#properties.notify && !this.#properties.indicate) {
      throw domError('NotSupportedError', `${what}: GATT operation not permitted: characteristic ${this.#uuid} has neither 'notify' nor 'indicate'.`);
    }
    // An active subscription is live (the stack ends it with the link or when Service Changed covers it).
    if (this.#subscription?.active) return this;
    // Two startNotifications() in a row write the CCCD once.
    this.#subscribing ??= (async () => {
      try {
        this.#subscription = await c.subscribe(v => this._valueChanged(v));
      } catch (e) {
        throw gattError(what, e);
      } finally {
        this.#subscribing = undefined;
      }
    })();
    await this.#subscribing;
    return this;
  }

  async stopNotifications(): Promise<BluetoothRemoteGATTCharacteristic> {
    const what = 'stopNotifications()';
    await this._live(what);
    const sub = this.#subscription;
    this.#subscription = undefined;
    if (sub?.active) {
      try {
        await sub.unsubscribe();
      } catch (e) {
        throw gattError(what, e);
      }
    }
    return this;
  }
}
/** The event handler attributes (defined on the prototype by webidlInterface). */
export interface BluetoothRemoteGATTCharacteristic {
  oncharacteristicvaluechanged: Handler;
}
webidlInterface(BluetoothRemoteGATTCharacteristic, 'BluetoothRemoteGATTCharacteristic',
  ['service', 'uuid', 'properties', 'value', 'getDescriptor', 'getDescriptors', 'readValue', 'writeValue',
    'writeValueWithResponse', 'writeValueWithoutResponse', 'startNotifications', 'stopNotifications'],
  CHARACTERISTIC_EVENTS);

export class BluetoothRemoteGATTDescriptor {
  readonly #characteristic: BluetoothRemoteGATTCharacteristic;
  readonly #uuid: string;
  readonly #handle: number;
  #value: DataView | null = null;

  /** @internal */
  constructor(characteristic: BluetoothRemoteGATTCharacteristic, d: GattDescriptor) {
    this.#characteristic = characteristic;
    this.#uuid = d.uuid;
    this.#handle = d.handle;
  }

  get characteristic(): BluetoothRemoteGATTCharacteristic { return this.#characteristic; }
  get uuid(): string { return this.#uuid; }
  get value(): DataView | null { return this.#value; }

  async #live(what: string): Promise<GattDescriptor> {
    const c = await this.#characteristic._live(what);
    const d = c.descriptors.find(x => x.handle === this.#handle && x.uuid === this.#uuid);
    if (!d) throw domError('InvalidStateError', `${what}: GATT Descriptor no longer exists.`);
    return d;
  }

  async readValue(): Promise<DataView> {
    const what = 'readValue()';
    if (this.#characteristic.service._server._blocklist.blockedForReads(this.#uuid)) throw domError('SecurityError', `${what}: called on blocklisted object marked exclude-reads (${this.#uuid}).`);
    const d = await this.#live(what);
    try {
      this.#value = dataViewOf(await d.read());
    } catch (e) {
      throw gattError(what, e);
    }
    return this.#value;
  }

  async writeValue(value: WebBufferSource): Promise<void> {
    const what = 'writeValue()';
    const bytes = copyBufferSource(value, "Failed to execute 'writeValue' on 'BluetoothRemoteGATTDescriptor'");
    if (this.#characteristic.service._server._blocklist.blockedForWrites(this.#uuid)) throw domError('SecurityError', `${what}: writeValue() called on blocklisted object marked exclude-writes (${this.#uuid}).`);
    if (bytes.length > MAX_ATTRIBUTE_VALUE) throw domError('InvalidModificationError', `${what}: Value can't exceed ${MAX_ATTRIBUTE_VALUE} bytes (got ${bytes.length}).`);
    const d = await this.#live(what);
    try {
      await d.write(bytes);
    } catch (e) {
      throw gattError(what, e);
    }
    this.#value = dataViewOf(bytes);
  }
}
webidlInterface(BluetoothRemoteGATTDescriptor, 'BluetoothRemoteGATTDescriptor', ['characteristic', 'uuid', 'value', 'readValue', 'writeValue']);
