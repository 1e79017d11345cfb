/**
 * The Bluetooth interface (navigator.bluetooth; Web Bluetooth 4): requestDevice(), getDevices(),
 * getAvailability() and the `availabilitychanged` event, over one blewire Adapter.
 *
 * There is no browser chooser: requestDevice() scans for `scanTime` ms, collects the devices whose
 * latest advertisement matches the request (at most MAX_CANDIDATES of them; memory stays bounded on a
 * crowded air), and hands them to the `deviceChooser`. The default chooser picks what a person would:
 * the connectable device with the strongest signal (any device when none is connectable). A chooser
 * that returns nothing is the user cancelling: NotFoundError, as in Chrome.
 *
 * The adapter is opened on first use (transport from the options, else BLEWIRE_TRANSPORT) and closed
 * by close(); one given in the options stays the caller's.
 */
import { Adapter, type AdapterOpenOptions, type AddressType, type Advertisement } from '../api/surface.js';
import { randomBytes } from '../platform/crypto.js';
import { Blocklist, GATT_BLOCKLIST, type BlocklistToken } from './blocklist.js';
import { BluetoothDevice, type DeviceHost } from './device.js';
import { domError } from './errors.js';
import { BluetoothEventTarget, type Handler, CHARACTERISTIC_EVENTS, DEVICE_EVENTS, SERVICE_EVENTS, webidlInterface } from './events.js';
import { canonicalizeRequest, canonicalizeScanRequest, matchesFilter, matchesRequest, type CanonicalFilter } from './filters.js';
import { interactiveTerminal } from '../platform/terminal.js';
import { terminalChooser } from './chooser.js';
import { defaultGrantsPath, GrantFile, MAX_GRANTS, type StoredGrant } from './grants.js';

/**
 * BluetoothDevice objects kept for advertisers a requestLEScan() heard (granted devices are always
 * kept): beyond this, an advertiser never seen before gets a fresh object per event, so a crowded air or
 * rotating private addresses cannot grow memory without bound.
 */
export const MAX_SCANNED_DEVICES = 4096;
/** Devices one requestDevice() keeps as candidates (the rest of a crowded air is not held in memory). */
export const MAX_CANDIDATES = 256;
export const DEFAULT_SCAN_TIME_MS = 3000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** One device the chooser may pick: what its latest advertisement says. */
export interface DeviceCandidate {
  readonly name: string | undefined;
  readonly address: string;
  readonly addressType: AddressType;
  readonly rssi: number;
  readonly connectable: boolean;
  readonly advertisement: Advertisement;
}

/** Picks a device among the candidates (in the order they were first heard); nothing = the user cancelled. */
export type DeviceChooser = (candidates: readonly DeviceCandidate[], options: RequestDeviceOptions) =>
  DeviceCandidate | null | undefined | Promise<DeviceCandidate | null | undefined>;

/** The default chooser: the connectable device with the strongest signal, else the strongest. */
export const strongestSignal: DeviceChooser = candidates => {
  const pool = candidates.some(c => c.connectable) ? candidates.filter(c => c.connectable) : candidates;
  let best: DeviceCandidate | undefined;
  for (const c of pool) if (!best || c.rssi > best.rssi) best = c;
  return best;
};

/** RequestDeviceOptions of the spec (members are converted and validated as WebIDL does). */
export interface RequestDeviceOptions {
  filters?: unknown[];
  exclusionFilters?: unknown[];
  optionalServices?: Array<string | number>;
  optionalManufacturerData?: number[];
  acceptAllDevices?: boolean;
}

export interface CreateBluetoothOptions {
  /** An open adapter to use (stays yours: close() does not close it). */
  adapter?: Adapter;
  /** Otherwise a transport spec or object for Adapter.open (default: BLEWIRE_TRANSPORT), with more open options. */
  transport?: AdapterOpenOptions['transport'];
  open?: Omit<AdapterOpenOptions, 'transport'>;
  /**
   * Picks the device (a browser's chooser dialog). Default: on a terminal (stdin and stdout both TTYs)
   * a numbered list to answer (terminalChooser); otherwise the connectable device with the strongest signal.
   */
  deviceChooser?: DeviceChooser;
  /** How long requestDevice() scans before the chooser picks (ms, default 3000). */
  scanTime?: number;
  /** How long gatt.connect() tries (ms, default 10 000). */
  connectTimeout?: number;
  /** Replace the GATT blocklist (UUID → exclude / exclude-reads / exclude-writes). */
  blocklist?: ReadonlyMap<string, BlocklistToken>;
  /**
   * Keep the page's permissions across processes, as a browser keeps them per origin: getDevices()
   * then returns the devices granted earlier, with the same ids and services. `true` uses
   * `$XDG_STATE_HOME/blewire/web-bluetooth/permissions.json` (else under ~/.local/state); a string is the
   * file to use (its directory must exist). Default: this process only, like a private window.
   */
  permissions?: boolean | string;
}

function opaqueId(): string {
  return btoa(String.fromCharCode(...randomBytes(16)));
}

export class Bluetooth extends BluetoothEventTarget {
  readonly #options: CreateBluetoothOptions;
  readonly #blocklist: Blocklist;
  readonly #host: DeviceHost;
  #adapter: Promise<Adapter> | undefined;
  #owned = false;
  readonly #devices = new Map<string, BluetoothDevice>();
  readonly #granted = new Set<BluetoothDevice>();
  readonly #grantFile: GrantFile | undefined;
  readonly #scans = new Set<BluetoothLEScan>();
  #loaded: Promise<void> | undefined;

  /** @internal Use createBluetooth(). */
  constructor(options: CreateBluetoothOptions = {}) {
    super();
    this.#options = { ...options };
    this.#blocklist = new Blocklist(options.blocklist ?? GATT_BLOCKLIST);
    this.#host = {
      target: this,
      blocklist: this.#blocklist,
      connectTimeout: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
      adapter: what => this.#open(what),
      forget: device => this.#forget(device),
    };
    const p = options.permissions;
    if (p !== undefined && p !== false && p !== true && (typeof p !== 'string' || p === '')) {
      throw new TypeError(`createBluetooth(): permissions must be true, false or a file path, not ${JSON.stringify(p)}.`);
    }
    if (p === true) this.#grantFile = new GrantFile(defaultGrantsPath(), true);
    else if (typeof p === 'string') this.#grantFile = new GrantFile(p);
    if (options.adapter) this.#watchAdapter(options.adapter);
  }

  get referringDevice(): BluetoothDevice | null { return null; }

  #watchAdapter(a: Adapter): void {
    a.once('close', () => {
      this.#adapter = undefined;
      this.fire('availabilitychanged', false, { value: false });
    });
  }

  #open(what: string): Promise<Adapter> {
    if (this.#options.adapter) return Promise.resolve(this.#options.adapter);
    if (!this.#adapter) {
      const p = Adapter.open({ ...this.#options.open, ...(this.#options.transport !== undefined ? { transport: this.#options.transport } : {}) });
      this.#adapter = p;
      p.then(a => { this.#owned = true; this.#watchAdapter(a); }, () => { if (this.#adapter === p) this.#adapter = undefined; });
    }
    return this.#adapter.catch(e => { throw domError('NotFoundError', `${what}: Bluetooth adapter not available (${(e as Error).message}).`, e); });
  }

  /** Whether a controller answers (opens the adapter if it is not open yet). */
  async getAvailability(): Promise<boolean> {
    try {
      await this.#open('getAvailability()');
      return true;
    } catch {
      return false;
    }
  }

  /** The devices this Bluetooth object was granted (and not forgotten), earlier processes' too with `permissions`. */
  async getDevices(): Promise<BluetoothDevice[]> {
    await this.#loadGrants();
    return [...this.#granted];
  }

  /** Why the permission file was not used (undefined when it was, or there is none). */
  get permissionsRejected(): string | undefined { return this.#grantFile?.rejected; }

  /** Grants of earlier processes become devices (same id, name and services), once. */
  #loadGrants(): Promise<void> {
    const file = this.#grantFile;
    if (!file) return Promise.resolve();
    this.#loaded ??= file.load().then(list => {
      for (const g of list) {
        const key = `${g.address}/${g.addressType}`;
        if (this.#devices.has(key)) continue;
        const device = new BluetoothDevice(this.#host, g.id, g.address, g.addressType, g.name);
        device._grant(g.services, g.name);
        this.#devices.set(key, device);
        this.#granted.add(device);
      }
    });
    return this.#loaded;
  }

  /** Write the grants (oldest first, at most MAX_GRANTS: the oldest beyond are forgotten). */
  async #saveGrants(what: string): Promise<void> {
    const file = this.#grantFile;
    if (!file) return;
    while (this.#granted.size > MAX_GRANTS) {
      const oldest = this.#granted.values().next().value!;
      this.#granted.delete(oldest);
    }
    const list: StoredGrant[] = [];
    for (const d of this.#granted) {
      const addressType = d._addressType;
      if (addressType === 'anonymous') continue; // nothing to find it by in another process
      list.push({ id: d.id, address: d._address, addressType, ...(d.name !== undefined ? { name: d.name } : {}), services: d._allowedServices() });
    }
    try {
      await file.save(list);
    } catch (e) {
      throw domError('NotAllowedError', `${what}: the permission could not be stored in ${file.path}: ${(e as Error).message}. Fix the file or its directory, or create the Bluetooth object without \`permissions\`.`, e);
    }
  }

  async #forget(device: BluetoothDevice): Promise<void> {
    await this.#loadGrants();
    if (!this.#granted.delete(device)) return;
    await this.#saveGrants('forget()');
  }

  async requestDevice(options?: RequestDeviceOptions): Promise<BluetoothDevice> {
    const request = canonicalizeRequest(options, this.#blocklist);
    await this.#loadGrants();
    const adapter = await this.#open('requestDevice()');
    const scanTime = this.#options.scanTime ?? DEFAULT_SCAN_TIME_MS;
    const seen = new Map<string, Advertisement>();
    try {
      for await (const ad of adapter.scan({ timeout: scanTime, active: true })) {
        const key = `${ad.address}/${ad.addressType}`;
        if ((seen.has(key) || seen.size < MAX_CANDIDATES) && matchesRequest(ad, request)) seen.set(key, ad);
      }
    } catch (e) {
      throw domError('NetworkError', `requestDevice(): scanning failed: ${(e as Error).message}`, e);
    }
    // A peer we are connected to has usually stopped advertising; as in a browser it is still a
    // candidate, judged by the last advertisement heard from it.
    const connected = new Set(adapter.connections.filter(c => c.role === 'central').map(c => `${c.address}/${c.addressType}`));
    if (connected.size > 0) {
      for (const d of adapter.devices()) {
        const key = `${d.address}/${d.addressType}`;
        if (connected.has(key) && !seen.has(key) && d.advertisement && seen.size < MAX_CANDIDATES && matchesRequest(d.advertisement, request)) {
          seen.set(key, d.advertisement);
        }
      }
    }
    const candidates: DeviceCandidate[] = [...seen.values()].map(ad => ({
      name: ad.name, address: ad.address, addressType: ad.addressType, rssi: ad.rssi, connectable: ad.connectable, advertisement: ad,
    }));
    // An empty chooser could only be cancelled: say why instead of asking.
    if (candidates.length === 0) throw domError('NotFoundError', `requestDevice(): no device matching the filters was heard in ${scanTime} ms of scanning.`);
    const terminal = this.#options.deviceChooser ? undefined : interactiveTerminal();
    const chooser = this.#options.deviceChooser ?? (terminal ? terminalChooser(terminal) : strongestSignal);
    const picked = await chooser(candidates, options ?? {});
    if (!picked) throw domError('NotFoundError', 'requestDevice(): User cancelled the requestDevice() chooser.');
    if (!candidates.includes(picked)) throw domError('NotFoundError', 'requestDevice(): the device chooser returned a device that was not among the candidates.');
    const key = `${picked.address}/${picked.addressType}`;
    let device = this.#devices.get(key);
    if (!device) {
      device = new BluetoothDevice(this.#host, opaqueId(), picked.address, picked.addressType, picked.name);
      this.#devices.set(key, device);
    }
    device._grant(request.allowedServices, picked.name);
    this.#granted.delete(device); // the newest grant goes last (the oldest is the first forgotten)
    this.#granted.add(device);
    await this.#saveGrants('requestDevice()');
    return device;
  }

  /**
   * Web Bluetooth Scanning, requestLEScan(): report advertisements as `advertisementreceived` events
   * (on each advertiser's BluetoothDevice, bubbling here) until stop(). There is no prompt to show: the
   * scan starts at once. With `keepRepeatedDevices` false (the default) a device is reported again only
   * when its advertising data changed; `filters` match as requestDevice's do. A device heard this way is
   * not granted anything: its `gatt` needs requestDevice() first (SecurityError for its services).
   */
  async requestLEScan(options?: unknown): Promise<BluetoothLEScan> {
    const request = canonicalizeScanRequest(options ?? {}, this.#blocklist);
    const adapter = await this.#open('requestLEScan()');
    const ac = new AbortController();
    const session = adapter.scan({
      active: true, duplicates: request.keepRepeatedDevices, signal: ac.signal, bufferSize: 1,
      onAdvertisement: ad => {
        if (request.filters && !request.filters.some(f => matchesFilter(ad, f))) return;
        this.#scannedDevice(ad.address, ad.addressType, ad.name)._advertised(ad);
      },
    });
    const scan = new BluetoothLEScan(request.filters, request.keepRepeatedDevices, request.acceptAllAdvertisements, () => {
      this.#scans.delete(scan);
      ac.abort();
    });
    this.#scans.add(scan);
    // The scan ends by itself when the adapter closes.
    void session.done.then(() => undefined, () => undefined).then(() => scan.stop());
    return scan;
  }

  #scannedDevice(address: string, addressType: AddressType, name: string | undefined): BluetoothDevice {
    const key = `${address}/${addressType}`;
    const known = this.#devices.get(key);
    if (known) return known;
    const device = new BluetoothDevice(this.#host, opaqueId(), address, addressType, name);
    if (this.#devices.size < MAX_SCANNED_DEVICES + this.#granted.size) this.#devices.set(key, device);
    return device;
  }

  /** Not in the spec (a page never closes its radio): stop scans, disconnect every device and close an adapter we opened. */
  async close(): Promise<void> {
    for (const scan of [...this.#scans]) scan.stop();
    for (const d of this.#devices.values()) d.gatt?.disconnect();
    const p = this.#adapter;
    this.#adapter = undefined;
    if (p && this.#owned) await (await p.catch(() => undefined))?.close();
  }
}
/** The event handler attributes (defined on the prototype by webidlInterface). */
export interface Bluetooth {
  onavailabilitychanged: Handler;
  onadvertisementreceived: Handler;
  ongattserverdisconnected: Handler;
  oncharacteristicvaluechanged: Handler;
  onserviceadded: Handler;
  onservicechanged: Handler;
  onserviceremoved: Handler;
}
/** A running requestLEScan() (Web Bluetooth Scanning): its options as given, `active` until stop(). */
export class BluetoothLEScan {
  readonly #filters: readonly CanonicalFilter[];
  readonly #keep: boolean;
  readonly #acceptAll: boolean;
  #stop: (() => void) | undefined;

  /** @internal Use navigator.bluetooth.requestLEScan(). */
  constructor(filters: CanonicalFilter[] | undefined, keep: boolean, acceptAll: boolean, stop: () => void) {
    this.#filters = Object.freeze((filters ?? []).map(f => Object.freeze({ ...f })));
    this.#keep = keep;
    this.#acceptAll = acceptAll;
    this.#stop = stop;
  }

  get filters(): readonly CanonicalFilter[] { return this.#filters; }
  get keepRepeatedDevices(): boolean { return this.#keep; }
  get acceptAllAdvertisements(): boolean { return this.#acceptAll; }
  get active(): boolean { return this.#stop !== undefined; }

  stop(): void {
    const s = this.#stop;
    this.#stop = undefined;
    s?.();
  }
}
webidlInterface(BluetoothLEScan, 'BluetoothLEScan', ['filters', 'keepRepeatedDevices', 'acceptAllAdvertisements', 'active', 'stop']);

webidlInterface(Bluetooth, 'Bluetooth', ['referringDevice', 'getAvailability', 'getDevices', 'requestDevice', 'requestLEScan'],
  ['availabilitychanged', ...DEVICE_EVENTS, ...CHARACTERISTIC_EVENTS, ...SERVICE_EVENTS]);

/** A navigator.bluetooth over blewire. */
export function createBluetooth(options: CreateBluetoothOptions = {}): Bluetooth {
  return new Bluetooth(options);
}
