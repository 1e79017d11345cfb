/**
 * BluetoothDevice and BluetoothRemoteGATTServer (Web Bluetooth 4.x and 5.1).
 *
 * A device is the page's handle on one peer (address and address type): the same object for every
 * requestDevice() / getDevices() that returns that peer, with an opaque random `id` and the services
 * the page was granted (the filters' services plus optionalServices). Its `gatt` server connects
 * through the adapter, and the link's end (ours or the peer's) fires `gattserverdisconnected`
 * (bubbling to navigator.bluetooth). disconnect() during connect() makes connect() reject with
 * AbortError, as the spec's "active algorithms" say.
 */
import type { Adapter, AddressType, Advertisement, Connection, GattService, ScanSession } from '../api/surface.js';
import type { Blocklist } from './blocklist.js';
import { dataViewOf } from './buffer.js';
import { domError, gattError } from './errors.js';
import { BluetoothEventTarget, type Handler, CHARACTERISTIC_EVENTS, DEVICE_EVENTS, SERVICE_EVENTS, webidlInterface } from './events.js';
import { BluetoothRemoteGATTService } from './gatt.js';
import { BluetoothUUID } from './uuid.js';

/** What a device needs from the Bluetooth object that made it. */
export interface DeviceHost {
  readonly target: BluetoothEventTarget;
  readonly blocklist: Blocklist;
  /** ms for LE Create Connection before connect() gives up (NetworkError). */
  readonly connectTimeout: number;
  adapter(what: string): Promise<Adapter>;
  forget(device: BluetoothDevice): Promise<void>;
}

export interface WatchAdvertisementsOptions { signal?: AbortSignal }

export class BluetoothDevice extends BluetoothEventTarget {
  readonly #host: DeviceHost;
  readonly #id: string;
  #name: string | undefined;
  readonly #address: string;
  readonly #addressType: AddressType;
  readonly #allowed = new Set<string>();
  readonly #gatt: BluetoothRemoteGATTServer;
  #forgotten = false;
  #watch: { session: ScanSession; stop: () => void } | undefined;

  /** @internal Use navigator.bluetooth.requestDevice(). */
  constructor(host: DeviceHost, id: string, address: string, addressType: AddressType, name: string | undefined) {
    super();
    this.#host = host;
    this.#id = id;
    this.#address = address;
    this.#addressType = addressType;
    this.#name = name;
    this.#gatt = new BluetoothRemoteGATTServer(this, host);
  }

  protected override bluetoothParent(): BluetoothEventTarget { return this.#host.target; }
  get id(): string { return this.#id; }
  get name(): string | undefined { return this.#name; }
  /** null once forgotten (the spec's "representedDevice" is gone then). */
  get gatt(): BluetoothRemoteGATTServer | null { return this.#forgotten ? null : this.#gatt; }
  get watchingAdvertisements(): boolean { return this.#watch !== undefined; }

  /** @internal */ get _address(): string { return this.#address; }
  /** @internal */ get _addressType(): AddressType { return this.#addressType; }
  /** @internal */ get _forgotten(): boolean { return this.#forgotten; }
  /** @internal */ _allows(uuid: string): boolean { return this.#allowed.has(uuid); }
  /** @internal */ _allowedServices(): string[] { return [...this.#allowed]; }
  /** @internal */ _grant(services: Iterable<string>, name: string | undefined): void {
    for (const s of services) this.#allowed.add(s);
    if (name !== undefined) this.#name = name;
    this.#forgotten = false;
  }

  /** Revoke the page's access: disconnect, stop watching, and leave getDevices(). */
  async forget(): Promise<void> {
    await this.#gatt._drop();
    this.#stopWatching();
    this.#allowed.clear();
    this.#forgotten = true;
    await this.#host.forget(this);
  }

  /**
   * Fire `advertisementreceived` for each advertisement of this device until `signal` aborts (or the
   * device is forgotten). Resolves once the scan runs; rejects with AbortError when the signal already
   * fired, InvalidStateError when the device was forgotten.
   */
  async watchAdvertisements(options: WatchAdvertisementsOptions = {}): Promise<void> {
    const signal = options?.signal;
    if (signal?.aborted) throw domError('AbortError', 'watchAdvertisements(): the signal was already aborted.');
    if (this.#forgotten) throw domError('InvalidStateError', 'watchAdvertisements(): the device was forgotten.');
    if (this.#watch) return;
    const adapter = await this.#host.adapter('watchAdvertisements()');
    if (signal?.aborted) throw domError('AbortError', 'watchAdvertisements(): aborted.');
    const ac = new AbortController();
    const session = adapter.scan({
      address: this.#address, duplicates: true, signal: ac.signal, bufferSize: 1,
      onAdvertisement: ad => this._advertised(ad),
    });
    const onAbort = (): void => this.#stopWatching();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#watch = { session, stop: () => { signal?.removeEventListener('abort', onAbort); ac.abort(); } };
    // The scan ends by itself when the adapter closes: watching ends with it.
    void session.done.then(() => undefined, () => undefined).then(() => { if (this.#watch?.session === session) this.#stopWatching(); });
  }

  /** @internal Fire `advertisementreceived` (bubbling to navigator.bluetooth) for one advertisement of this device. */
  _advertised(ad: Advertisement): void {
    const manufacturerData = new Map<number, DataView>();
    for (const [k, v] of ad.manufacturerData) manufacturerData.set(k, dataViewOf(v));
    const serviceData = new Map<string, DataView>();
    for (const [k, v] of ad.serviceData) serviceData.set(k, dataViewOf(v));
    if (ad.name !== undefined) this.#name = ad.name;
    this.fire('advertisementreceived', true, {
      device: this, uuids: [...new Set([...ad.serviceUuids, ...ad.serviceData.keys()])], name: ad.name,
      appearance: ad.appearance, txPower: ad.txPower, rssi: ad.rssi, manufacturerData, serviceData,
    });
  }

  #stopWatching(): void {
    const w = this.#watch;
    this.#watch = undefined;
    w?.stop();
  }
}
/** The event handler attributes (defined on the prototype by webidlInterface). */
export interface BluetoothDevice {
  onadvertisementreceived: Handler;
  ongattserverdisconnected: Handler;
  oncharacteristicvaluechanged: Handler;
  onserviceadded: Handler;
  onservicechanged: Handler;
  onserviceremoved: Handler;
}
webidlInterface(BluetoothDevice, 'BluetoothDevice', ['id', 'name', 'gatt', 'forget', 'watchAdvertisements', 'watchingAdvertisements'],
  [...DEVICE_EVENTS, ...CHARACTERISTIC_EVENTS, ...SERVICE_EVENTS]);

export class BluetoothRemoteGATTServer {
  readonly #device: BluetoothDevice;
  readonly #host: DeviceHost;
  #conn: Connection | undefined;
  #connecting: Promise<BluetoothRemoteGATTServer> | undefined;
  #abort: AbortController | undefined;
  #generation = 0;
  readonly #services = new Map<number, BluetoothRemoteGATTService>();
  /** The database as the page last saw it (undefined until the first discovery of a connection). */
  #known: ServiceShape[] | undefined;

  /** @internal */
  constructor(device: BluetoothDevice, host: DeviceHost) {
    this.#device = device;
    this.#host = host;
  }

  get device(): BluetoothDevice { return this.#device; }
  get connected(): boolean { return this.#conn !== undefined; }

  /** @internal Bumped on every connect: objects from an earlier connection find their attribute again. */
  get _generation(): number { return this.#generation; }
  /** @internal */ get _blocklist(): Blocklist { return this.#host.blocklist; }

  /** @internal The live connection, or NetworkError. */
  _connection(what: string): Connection {
    const c = this.#conn;
    if (!c) throw domError('NetworkError', `${what}: GATT Server is disconnected. Cannot perform GATT operations. (Re)connect first with \`device.gatt.connect\`.`);
    return c;
  }

  /** @internal Every service of the connection's database (discovered once per connection, cached by the stack). */
  async _services(what: string, conn: Connection): Promise<GattService[]> {
    let all: GattService[];
    try {
      all = await conn.services();
    } catch (e) {
      throw gattError(what, e);
    }
    if (this.#conn === conn) this.#known = all.map(shapeOf);
    return all;
  }

  /**
   * Service Changed (Core Vol 3, Part G, 7.1): the stack rediscovered [start, end]. Services of that
   * range the page may see fire serviceremoved (gone, or another service now at that handle),
   * servicechanged (same declaration, different characteristics or descriptors) or serviceadded
   * (new), each bubbling to the device and navigator.bluetooth (Web Bluetooth 6.3, "Responding to
   * Service Changes"). Nothing fires before the page first looked at the database.
   */
  async #onServicesChanged(conn: Connection, start: number, end: number): Promise<void> {
    const before = this.#known;
    if (this.#conn !== conn || !before) return;
    let after: GattService[];
    try {
      after = await conn.services();
    } catch {
      return; // the link went down meanwhile: gattserverdisconnected says so
    }
    if (this.#conn !== conn) return;
    this.#known = after.map(shapeOf);
    const inRange = (s: { start: number; end: number }): boolean => s.end >= start && s.start <= end;
    const visible = (uuid: string): boolean => this.#device._allows(uuid) && !this.#host.blocklist.blocked(uuid);
    const old = new Map(before.filter(inRange).map(s => [s.start, s]));
    const fresh = after.filter(inRange);
    const events: Array<[BluetoothRemoteGATTService, string]> = [];
    for (const [startHandle, s] of old) {
      const now = fresh.find(f => f.start === startHandle && f.uuid === s.uuid);
      if (now) continue;
      const w = this.#services.get(startHandle);
      if (w && w.uuid === s.uuid) this.#services.delete(startHandle);
      if (visible(s.uuid)) events.push([w && w.uuid === s.uuid ? w : new BluetoothRemoteGATTService(this, undefined, s), 'serviceremoved']);
    }
    for (const f of fresh) {
      if (!visible(f.uuid)) continue;
      const was = old.get(f.start);
      if (was && was.uuid === f.uuid) {
        if (was.signature !== shapeOf(f).signature) events.push([this._service(f), 'servicechanged']);
      } else {
        events.push([this._service(f), 'serviceadded']);
      }
    }
    // Objects the page holds find their attribute again in the new tree (or fail with InvalidStateError).
    this.#generation++;
    for (const [target, type] of events) target.fire(type, true);
  }

  /** @internal Whether `w` was removed from the database by a Service Changed. */
  _removed(w: BluetoothRemoteGATTService): boolean { return this.#services.get(w._start) !== w; }

  /** @internal The page's object for a service (one per start handle). */
  _service(s: GattService): BluetoothRemoteGATTService {
    let w = this.#services.get(s.start);
    if (!w || w.uuid !== s.uuid) {
      w = new BluetoothRemoteGATTService(this, s);
      this.#services.set(s.start, w);
    }
    return w;
  }

  connect(): Promise<BluetoothRemoteGATTServer> {
    const what = 'connect()';
    if (this.#device._forgotten) return Promise.reject(domError('NetworkError', `${what}: the device was forgotten; request it again with requestDevice().`));
    if (this.#conn) return Promise.resolve(this);
    if (this.#connecting) return this.#connecting;
    const ac = new AbortController();
    this.#abort = ac;
    const aborted = (): DOMException => domError('AbortError', `${what}: Connection attempt aborted by device.gatt.disconnect().`);
    const p = (async () => {
      const adapter = await this.#host.adapter(what);
      if (ac.signal.aborted) throw aborted();
      let conn: Connection;
      try {
        conn = await adapter.connect({ address: this.#device._address, addressType: this.#device._addressType },
          { timeout: this.#host.connectTimeout, signal: ac.signal });
      } catch (e) {
        if (ac.signal.aborted) throw aborted();
        throw domError('NetworkError', `${what}: Connection failed: ${(e as Error).message}`, e);
      }
      if (ac.signal.aborted || !conn.connected) {
        void conn.disconnect().catch(() => undefined);
        throw ac.signal.aborted ? aborted() : domError('NetworkError', `${what}: the link went down as it came up.`);
      }
      this.#conn = conn;
      this.#known = undefined;
      this.#generation++;
      conn.once('disconnect', () => { if (this.#conn === conn) this.#cleanUp(); });
      conn.gatt.on('servicesChanged', r => { void this.#onServicesChanged(conn, r.start, r.end); });
      return this;
    })();
    this.#connecting = p;
    const clear = (): void => { if (this.#connecting === p) { this.#connecting = undefined; this.#abort = undefined; } };
    p.then(clear, clear);
    return p;
  }

  /** Abort a connect() in progress, drop the link, and fire gattserverdisconnected (when it was connected). */
  disconnect(): void {
    this.#abort?.abort();
    const conn = this.#conn;
    if (!conn) return;
    this.#cleanUp();
    void conn.disconnect().catch(() => undefined);
  }

  /** @internal disconnect(), resolved when the link is down. */
  async _drop(): Promise<void> {
    const conn = this.#conn;
    this.disconnect();
    if (conn?.connected) await conn.closed;
  }

  /** "Clean up the disconnected device": not connected any more, notifications gone, the event fired. */
  #cleanUp(): void {
    this.#conn = undefined;
    this.#device.fire('gattserverdisconnected', true);
  }

  getPrimaryService(service: string | number): Promise<BluetoothRemoteGATTService> {
    return this.#getPrimary('getPrimaryService', service, true).then(l => l[0]!);
  }

  getPrimaryServices(service?: string | number): Promise<BluetoothRemoteGATTService[]> {
    return this.#getPrimary('getPrimaryServices', service, false);
  }

  async #getPrimary(op: string, name: string | number | undefined, single: boolean): Promise<BluetoothRemoteGATTService[]> {
    const what = `${op}()`;
    const uuid = name === undefined ? undefined : BluetoothUUID.getService(name);
    const bl = this.#host.blocklist;
    if (uuid !== undefined && bl.blocked(uuid)) throw domError('SecurityError', `${what}: ${op}() called with a blocklisted UUID (${uuid}).`);
    if (uuid !== undefined && !this.#device._allows(uuid)) {
      throw domError('SecurityError', `${what}: Origin is not allowed to access the service ${uuid}. Tip: Add the service UUID to 'optionalServices' in requestDevice() options.`);
    }
    const conn = this._connection(what);
    const all = await this._services(what, conn);
    const found = all.filter(s => s.primary && (uuid === undefined || s.uuid === uuid) && !bl.blocked(s.uuid) && this.#device._allows(s.uuid));
    if (found.length === 0) {
      throw domError('NotFoundError', uuid === undefined
        ? `${what}: No Services found in device${this.#device._allowedServices().length === 0 ? " (none were granted: name them in 'filters' or 'optionalServices' of requestDevice())" : ''}.`
        : `${what}: No Services matching UUID ${uuid} found in Device.`);
    }
    return (single ? found.slice(0, 1) : found).map(s => this._service(s));
  }
}
/** A service as far as change detection goes: where it is, what it is, and a digest of its contents. */
export interface ServiceShape { start: number; end: number; uuid: string; primary: boolean; signature: string }

function shapeOf(s: GattService): ServiceShape {
  let signature = `${s.end}`;
  try {
    for (const c of s.characteristics) {
      signature += `|${c.handle}:${c.uuid}:${c.propertyBits}`;
      for (const d of c.descriptors) signature += `,${d.handle}:${d.uuid}`;
    }
  } catch {
    signature += '|?'; // characteristics not discovered: nothing to compare
  }
  return { start: s.start, end: s.end, uuid: s.uuid, primary: s.primary, signature };
}

webidlInterface(BluetoothRemoteGATTServer, 'BluetoothRemoteGATTServer', ['device', 'connected', 'connect', 'disconnect', 'getPrimaryService', 'getPrimaryServices']);
