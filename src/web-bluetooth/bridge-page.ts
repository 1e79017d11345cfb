/**
 * The page half of the browser bridge (bridge.ts): plain browser JavaScript, injected into every
 * document before the page's own scripts run. It defines `navigator.bluetooth` as a mirror of the
 * facade in Node: every operation is one call over the DevTools binding `__blewire`, answered through
 * `__blewireIn()`; attribute objects are mirrors identified by handle (the same mirror for the same
 * handle, so object identity holds as in a browser); values travel as hex and arrive as DataViews.
 * Events (disconnect, notifications, advertisements, service changes) are pushed the same way and
 * dispatched on the mirror, then on its ancestors (characteristic, service, device, navigator.bluetooth)
 * with `target` kept, as the spec's bubbling does.
 *
 * Kept as a string: it runs in the browser, never in Node, and must not go through the TypeScript
 * build's helpers.
 */
export const BRIDGE_PAGE_SCRIPT = String.raw`(() => {
  'use strict';
  if (window.__blewireIn) return;
  const send = window.__blewire;
  delete window.__blewire;
  const pending = new Map();
  const mirrors = new Map();
  let nextId = 1;
  const hex = bytes => Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
  const unhex = s => { const a = new Uint8Array(s.length / 2); for (let i = 0; i < a.length; i++) a[i] = parseInt(s.substr(i * 2, 2), 16); return a; };
  const view = s => new DataView(unhex(s).buffer);
  const isBytes = v => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
  const bytesOf = v => v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  function encode(v) {
    if (isBytes(v)) return { $bytes: hex(bytesOf(v)) };
    if (Array.isArray(v)) return v.map(encode);
    if (v && typeof v === 'object') {
      if (v.$h) return { $h: v.$h };
      const o = {};
      for (const k of Object.keys(v)) o[k] = encode(v[k]);
      return o;
    }
    return v;
  }
  function decode(v) {
    if (Array.isArray(v)) return v.map(decode);
    if (v && typeof v === 'object') {
      if (typeof v.$bytes === 'string') return view(v.$bytes);
      if (typeof v.$h === 'number') return mirror(v);
      const o = {};
      for (const k of Object.keys(v)) o[k] = decode(v[k]);
      return o;
    }
    return v;
  }
  function call(h, op, args) {
    return new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      send(JSON.stringify({ id, h, op, args: encode(args || []) }));
    });
  }
  function error(e) {
    if (e.name === 'TypeError') return new TypeError(e.message);
    return new DOMException(e.message, e.name);
  }

  const EVENTS = ['advertisementreceived', 'gattserverdisconnected', 'characteristicvaluechanged', 'serviceadded', 'servicechanged', 'serviceremoved', 'availabilitychanged'];
  class Target extends EventTarget {
    constructor() { super(); this._on = {}; }
    _parent() { return null; }
  }
  for (const type of EVENTS) {
    Object.defineProperty(Target.prototype, 'on' + type, {
      configurable: true, enumerable: true,
      get() { return this._on[type] || null; },
      set(fn) {
        if (this._on[type]) this.removeEventListener(type, this._on[type]);
        this._on[type] = typeof fn === 'function' ? fn : null;
        if (this._on[type]) this.addEventListener(type, this._on[type]);
      },
    });
  }
  function fire(target, type, props) {
    for (let t = target; t; t = t._parent()) {
      const ev = new Event(type, { bubbles: true });
      Object.defineProperty(ev, 'target', { value: target });
      for (const k of Object.keys(props || {})) Object.defineProperty(ev, k, { value: props[k], enumerable: true });
      t.dispatchEvent(ev);
    }
  }

  class BluetoothDevice extends Target {
    constructor(d) { super(); this.$h = d.$h; this._update(d); this._gatt = new BluetoothRemoteGATTServer(this); }
    _update(d) { this._id = d.id; this._name = d.name; if (this._gatt) this._gatt._connected = !!d.connected; this._watching = !!d.watching; }
    _parent() { return bluetooth; }
    get id() { return this._id; }
    get name() { return this._name === null ? undefined : this._name; }
    get gatt() { return this._gatt; }
    get watchingAdvertisements() { return !!this._watching; }
    forget() { return call(this.$h, 'forget'); }
    watchAdvertisements(options) {
      const signal = options && options.signal;
      if (signal) signal.addEventListener('abort', () => { call(this.$h, 'unwatchAdvertisements').catch(() => {}); }, { once: true });
      return call(this.$h, 'watchAdvertisements');
    }
  }
  class BluetoothRemoteGATTServer {
    constructor(device) { this._device = device; this._connected = false; }
    get device() { return this._device; }
    get connected() { return this._connected; }
    async connect() { await call(this._device.$h, 'connect'); this._connected = true; return this; }
    disconnect() { this._connected = false; call(this._device.$h, 'disconnect').catch(() => {}); }
    getPrimaryService(s) { return call(this._device.$h, 'getPrimaryService', [s]); }
    getPrimaryServices(s) { return call(this._device.$h, 'getPrimaryServices', s === undefined ? [] : [s]); }
  }
  class BluetoothRemoteGATTService extends Target {
    constructor(d) { super(); this.$h = d.$h; this._d = d; }
    _update(d) { this._d = d; }
    _parent() { return this.device; }
    get uuid() { return this._d.uuid; }
    get isPrimary() { return this._d.isPrimary; }
    get device() { return mirrors.get(this._d.device); }
    getCharacteristic(c) { return call(this.$h, 'getCharacteristic', [c]); }
    getCharacteristics(c) { return call(this.$h, 'getCharacteristics', c === undefined ? [] : [c]); }
    getIncludedService(s) { return call(this.$h, 'getIncludedService', [s]); }
    getIncludedServices(s) { return call(this.$h, 'getIncludedServices', s === undefined ? [] : [s]); }
  }
  class BluetoothCharacteristicProperties {
    constructor(p) { for (const k of Object.keys(p)) Object.defineProperty(this, k, { value: p[k], enumerable: true }); }
  }
  class BluetoothRemoteGATTCharacteristic extends Target {
    constructor(d) { super(); this.$h = d.$h; this._d = d; this._value = null; this._props = new BluetoothCharacteristicProperties(d.properties); }
    _update(d) { this._d = d; }
    _parent() { return this.service; }
    get uuid() { return this._d.uuid; }
    get service() { return mirrors.get(this._d.service); }
    get properties() { return this._props; }
    get value() { return this._value; }
    async readValue() { this._value = await call(this.$h, 'readValue'); return this._value; }
    writeValue(v) { return call(this.$h, 'writeValue', [v]); }
    writeValueWithResponse(v) { return call(this.$h, 'writeValueWithResponse', [v]); }
    writeValueWithoutResponse(v) { return call(this.$h, 'writeValueWithoutResponse', [v]); }
    async startNotifications() { await call(this.$h, 'startNotifications'); return this; }
    async stopNotifications() { await call(this.$h, 'stopNotifications'); return this; }
    getDescriptor(d) { return call(this.$h, 'getDescriptor', [d]); }
    getDescriptors(d) { return call(this.$h, 'getDescriptors', d === undefined ? [] : [d]); }
  }
  class BluetoothRemoteGATTDescriptor {
    constructor(d) { this.$h = d.$h; this._d = d; this._value = null; }
    _update(d) { this._d = d; }
    get uuid() { return this._d.uuid; }
    get characteristic() { return mirrors.get(this._d.characteristic); }
    get value() { return this._value; }
    async readValue() { this._value = await call(this.$h, 'readValue'); return this._value; }
    writeValue(v) { return call(this.$h, 'writeValue', [v]); }
  }
  const KINDS = { device: BluetoothDevice, service: BluetoothRemoteGATTService, characteristic: BluetoothRemoteGATTCharacteristic, descriptor: BluetoothRemoteGATTDescriptor };
  function mirror(d) {
    let m = mirrors.get(d.$h);
    if (m) { if (d.kind) m._update(d); return m; }
    const K = KINDS[d.kind];
    if (!K) throw new TypeError('blewire bridge: unknown object ' + JSON.stringify(d));
    m = new K(d);
    mirrors.set(d.$h, m);
    return m;
  }

  class Bluetooth extends Target {
    getAvailability() { return call(0, 'getAvailability'); }
    getDevices() { return call(0, 'getDevices'); }
    requestDevice(options) { return call(0, 'requestDevice', [options]); }
    get referringDevice() { return null; }
  }
  const bluetooth = new Bluetooth();

  window.__blewireIn = msg => {
    if (msg.reply !== undefined) {
      const p = pending.get(msg.reply);
      if (!p) return;
      pending.delete(msg.reply);
      if (msg.err) p.reject(error(msg.err));
      else p.resolve(decode(msg.ok));
      return;
    }
    const target = msg.h === 0 ? bluetooth : mirror(msg.target);
    const data = decode(msg.data || {});
    if (msg.event === 'gattserverdisconnected') target._gatt._connected = false;
    if (msg.event === 'characteristicvaluechanged') target._value = data.value;
    if (msg.event === 'advertisementreceived') {
      data.device = target;
      data.manufacturerData = new Map(Object.entries(data.manufacturerData || {}).map(([k, v]) => [Number(k), v]));
      data.serviceData = new Map(Object.entries(data.serviceData || {}));
    }
    const props = Object.assign({}, data);
    delete props.value;
    fire(target, msg.event, msg.event === 'availabilitychanged' ? { value: data.value } : props);
  };

  Object.defineProperty(Navigator.prototype, 'bluetooth', { configurable: true, enumerable: true, get() { return bluetooth; } });
  for (const [name, K] of Object.entries({ Bluetooth, BluetoothDevice, BluetoothRemoteGATTServer, BluetoothRemoteGATTService, BluetoothRemoteGATTCharacteristic, BluetoothRemoteGATTDescriptor, BluetoothCharacteristicProperties })) {
    Object.defineProperty(window, name, { configurable: true, writable: true, value: K });
  }
})();`;
