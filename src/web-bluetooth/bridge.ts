/**
 * Real pages in a real browser with blewire as their radio: openBrowserPage() starts Debian's
 * Chromium (headless by default) over the DevTools pipe, injects the page half (bridge-page.ts) into
 * every document, and answers its calls with this process's Web Bluetooth facade. The page's own
 * `navigator.bluetooth` code runs unchanged in Chromium's engine; requestDevice() and every GATT
 * operation happen here, over the adapter (simulator, HCI user channel, serial).
 *
 * The page is untrusted input: every call names an operation from a fixed table and a handle this
 * bridge gave out (anything else answers TypeError), arguments go through the facade's own WebIDL-style
 * validation, and the handle table is bounded (MAX_BRIDGE_HANDLES). Console output kept for the
 * caller is bounded too (MAX_CONSOLE_LINES, oldest dropped).
 */
import { BrowserError } from '../errors.js';
import { Chromium, type CdpEvent, type ChromiumOptions } from '../platform/chromium.js';
import type { Bluetooth } from './bluetooth.js';
import { BRIDGE_PAGE_SCRIPT } from './bridge-page.js';
import { BluetoothDevice, BluetoothRemoteGATTServer } from './device.js';
import { BluetoothRemoteGATTCharacteristic, BluetoothRemoteGATTDescriptor, BluetoothRemoteGATTService } from './gatt.js';

export const MAX_BRIDGE_HANDLES = 65_536;
export const MAX_CONSOLE_LINES = 10_000;
/** A call from the page larger than this is refused unread (a write carries at most 512 octets). */
const MAX_CALL_CHARS = 64 * 1024;

type Facade = Bluetooth | BluetoothDevice | BluetoothRemoteGATTService | BluetoothRemoteGATTCharacteristic | BluetoothRemoteGATTDescriptor;
type Op = (target: never, args: unknown[]) => unknown;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const hex = (b: Uint8Array): string => { let s = ''; for (const x of b) s += HEX[x]; return s; };
const unhex = (s: string): Uint8Array => { const a = new Uint8Array(s.length / 2); for (let i = 0; i < a.length; i++) a[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16); return a; };
const bytesOfView = (v: DataView): string => hex(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));

/** The page's watchAdvertisements() signals, held here (an AbortSignal cannot cross the pipe). */
const watches = new WeakMap<BluetoothDevice, AbortController>();

/** The operations a page may call, by the kind of object it names. */
const OPS: Record<string, Record<string, Op>> = {
  bluetooth: {
    getAvailability: (b: Bluetooth) => b.getAvailability(),
    getDevices: (b: Bluetooth) => b.getDevices(),
    requestDevice: (b: Bluetooth, [o]) => b.requestDevice(o as Parameters<Bluetooth['requestDevice']>[0]),
  },
  device: {
    forget: (d: BluetoothDevice) => d.forget(),
    watchAdvertisements: async (d: BluetoothDevice) => {
      watches.get(d)?.abort();
      const ac = new AbortController();
      watches.set(d, ac);
      await d.watchAdvertisements({ signal: ac.signal });
    },
    unwatchAdvertisements: (d: BluetoothDevice) => { watches.get(d)?.abort(); watches.delete(d); },
    connect: async (d: BluetoothDevice) => { await gattOf(d).connect(); },
    disconnect: (d: BluetoothDevice) => { gattOf(d).disconnect(); },
    getPrimaryService: (d: BluetoothDevice, [s]) => gattOf(d).getPrimaryService(s as string),
    getPrimaryServices: (d: BluetoothDevice, a) => gattOf(d).getPrimaryServices(...(a as [string])),
  },
  service: {
    getCharacteristic: (s: BluetoothRemoteGATTService, [c]) => s.getCharacteristic(c as string),
    getCharacteristics: (s: BluetoothRemoteGATTService, a) => s.getCharacteristics(...(a as [string])),
    getIncludedService: (s: BluetoothRemoteGATTService, [i]) => s.getIncludedService(i as string),
    getIncludedServices: (s: BluetoothRemoteGATTService, a) => s.getIncludedServices(...(a as [string])),
  },
  characteristic: {
    readValue: (c: BluetoothRemoteGATTCharacteristic) => c.readValue(),
    writeValue: (c: BluetoothRemoteGATTCharacteristic, [v]) => c.writeValue(v as Uint8Array),
    writeValueWithResponse: (c: BluetoothRemoteGATTCharacteristic, [v]) => c.writeValueWithResponse(v as Uint8Array),
    writeValueWithoutResponse: (c: BluetoothRemoteGATTCharacteristic, [v]) => c.writeValueWithoutResponse(v as Uint8Array),
    startNotifications: async (c: BluetoothRemoteGATTCharacteristic) => { await c.startNotifications(); },
    stopNotifications: async (c: BluetoothRemoteGATTCharacteristic) => { await c.stopNotifications(); },
    getDescriptor: (c: BluetoothRemoteGATTCharacteristic, [d]) => c.getDescriptor(d as string),
    getDescriptors: (c: BluetoothRemoteGATTCharacteristic, a) => c.getDescriptors(...(a as [string])),
  },
  descriptor: {
    readValue: (d: BluetoothRemoteGATTDescriptor) => d.readValue(),
    writeValue: (d: BluetoothRemoteGATTDescriptor, [v]) => d.writeValue(v as Uint8Array),
  },
};

function gattOf(d: BluetoothDevice): BluetoothRemoteGATTServer {
  const g = d.gatt;
  if (!g) throw new DOMException('The device was forgotten.', 'InvalidStateError');
  return g;
}

function kindOf(o: unknown): string | undefined {
  if (o instanceof BluetoothDevice) return 'device';
  if (o instanceof BluetoothRemoteGATTService) return 'service';
  if (o instanceof BluetoothRemoteGATTCharacteristic) return 'characteristic';
  if (o instanceof BluetoothRemoteGATTDescriptor) return 'descriptor';
  return undefined;
}

export interface BrowserPageOptions {
  /** The navigator.bluetooth the page gets (its adapter, chooser, permissions). */
  bluetooth: Bluetooth;
  chromium?: ChromiumOptions;
  /** Every console line of the page (besides `console` on the returned page). */
  onConsole?: (line: string) => void;
}

export interface BrowserPage {
  /** The page's console output and uncaught errors, oldest first (at most MAX_CONSOLE_LINES). */
  readonly console: string[];
  /** Evaluate an expression in the page (awaiting a promise), returning its JSON value. */
  evaluate(expression: string): Promise<unknown>;
  /** Close the browser (the Bluetooth object and its adapter stay the caller's). */
  close(): Promise<void>;
}

/** Open `url` in Chromium with blewire's Web Bluetooth as the page's navigator.bluetooth. */
export async function openBrowserPage(url: string, options: BrowserPageOptions): Promise<BrowserPage> {
  const browser = await Chromium.launch(options.chromium);
  try {
    return await attach(browser, url, options);
  } catch (e) {
    await browser.close();
    throw e;
  }
}

async function attach(browser: Chromium, url: string, options: BrowserPageOptions): Promise<BrowserPage> {
  const bluetooth = options.bluetooth;
  const targets = (await browser.send('Target.getTargets')).targetInfos as Array<{ targetId: string; type: string }>;
  const page = targets.find(t => t.type === 'page');
  if (!page) throw new BrowserError('chromium has no page to attach to');
  const sessionId = (await browser.send('Target.attachToTarget', { targetId: page.targetId, flatten: true })).sessionId as string;
  const send = (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> => browser.send(method, params, sessionId);

  const lines: string[] = [];
  const log = (line: string): void => {
    if (lines.length >= MAX_CONSOLE_LINES) lines.shift();
    lines.push(line);
    options.onConsole?.(line);
  };
  const handles = new Map<number, Facade>();
  const ids = new Map<Facade, number>();
  let nextHandle = 1;
  let contextId: number | undefined;

  const push = (msg: unknown): void => {
    if (contextId === undefined) return;
    void send('Runtime.evaluate', { expression: `__blewireIn(${JSON.stringify(msg)})`, contextId }).catch(() => undefined);
  };

  const handleOf = (o: Facade): number => {
    let h = ids.get(o);
    if (h !== undefined) return h;
    if (handles.size >= MAX_BRIDGE_HANDLES) throw new DOMException(`the page holds more than ${MAX_BRIDGE_HANDLES} Bluetooth objects`, 'NotSupportedError');
    h = nextHandle++;
    handles.set(h, o);
    ids.set(o, h);
    listen(o);
    return h;
  };

  const describe = (o: Facade): Record<string, unknown> => {
    const $h = handleOf(o);
    if (o instanceof BluetoothDevice) return { $h, kind: 'device', id: o.id, name: o.name ?? null, connected: o.gatt?.connected ?? false, watching: o.watchingAdvertisements };
    if (o instanceof BluetoothRemoteGATTService) return { $h, kind: 'service', uuid: o.uuid, isPrimary: o.isPrimary, device: handleOf(o.device) };
    if (o instanceof BluetoothRemoteGATTCharacteristic) {
      const p = o.properties;
      const properties: Record<string, boolean> = {};
      for (const k of ['broadcast', 'read', 'writeWithoutResponse', 'write', 'notify', 'indicate', 'authenticatedSignedWrites', 'reliableWrite', 'writableAuxiliaries'] as const) properties[k] = p[k];
      return { $h, kind: 'characteristic', uuid: o.uuid, service: handleOf(o.service), properties };
    }
    if (o instanceof BluetoothRemoteGATTDescriptor) return { $h, kind: 'descriptor', uuid: o.uuid, characteristic: handleOf(o.characteristic) };
    return { $h };
  };

  const out = (v: unknown): unknown => {
    if (v instanceof DataView) return { $bytes: bytesOfView(v) };
    if (v instanceof BluetoothRemoteGATTServer) return describe(v.device);
    if (Array.isArray(v)) return v.map(out);
    if (kindOf(v)) return describe(v as Facade);
    return v;
  };

  const inp = (v: unknown, depth = 0): unknown => {
    if (depth > 8) throw new TypeError('arguments nested too deeply');
    if (Array.isArray(v)) return v.map(x => inp(x, depth + 1));
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o['$bytes'] === 'string') {
        const s = o['$bytes'];
        if (!/^(?:[0-9a-f]{2})*$/.test(s)) throw new TypeError('malformed bytes from the page');
        return unhex(s);
      }
      const r: Record<string, unknown> = {};
      for (const k of Object.keys(o)) if (k !== '__proto__') r[k] = inp(o[k], depth + 1);
      return r;
    }
    return v;
  };

  function listen(o: Facade): void {
    if (o instanceof BluetoothDevice) {
      o.addEventListener('gattserverdisconnected', () => push({ event: 'gattserverdisconnected', h: ids.get(o), target: describe(o) }));
      o.addEventListener('advertisementreceived', ev => {
        if (ev.target !== o) return;
        const e = ev as Event & { rssi?: number; txPower?: number; name?: string; appearance?: number; uuids: string[]; manufacturerData: Map<number, DataView>; serviceData: Map<string, DataView> };
        const manufacturerData: Record<string, unknown> = {};
        for (const [k, v] of e.manufacturerData) manufacturerData[String(k)] = { $bytes: bytesOfView(v) };
        const serviceData: Record<string, unknown> = {};
        for (const [k, v] of e.serviceData) serviceData[k] = { $bytes: bytesOfView(v) };
        push({ event: 'advertisementreceived', h: ids.get(o), target: describe(o), data: { rssi: e.rssi, txPower: e.txPower, name: e.name, appearance: e.appearance, uuids: e.uuids, manufacturerData, serviceData } });
      });
      for (const type of ['serviceadded', 'servicechanged', 'serviceremoved']) {
        o.addEventListener(type, ev => {
          const s = ev.target;
          if (s instanceof BluetoothRemoteGATTService) push({ event: type, h: handleOf(s), target: describe(s) });
        });
      }
    } else if (o instanceof BluetoothRemoteGATTCharacteristic) {
      o.addEventListener('characteristicvaluechanged', ev => {
        if (ev.target !== o || !o.value) return;
        push({ event: 'characteristicvaluechanged', h: ids.get(o), target: describe(o), data: { value: { $bytes: bytesOfView(o.value) } } });
      });
    }
  }

  const onCall = async (payload: string, ctx: number): Promise<void> => {
    contextId = ctx;
    let id: unknown;
    try {
      if (payload.length > MAX_CALL_CHARS) throw new TypeError('a call from the page over 64 KiB');
      const msg = JSON.parse(payload) as { id?: unknown; h?: unknown; op?: unknown; args?: unknown };
      id = msg.id;
      if (typeof id !== 'number' || typeof msg.h !== 'number' || typeof msg.op !== 'string' || !Array.isArray(msg.args)) throw new TypeError('a malformed call from the page');
      const target = msg.h === 0 ? bluetooth : handles.get(msg.h);
      const kind = msg.h === 0 ? 'bluetooth' : kindOf(target);
      const op = kind ? OPS[kind]?.[msg.op] : undefined;
      if (!target || !op || !Object.hasOwn(OPS[kind!]!, msg.op)) throw new TypeError(`the page called ${String(msg.op)} on an object the bridge does not know`);
      const result = await op(target as never, inp(msg.args) as unknown[]);
      await send('Runtime.evaluate', { expression: `__blewireIn(${JSON.stringify({ reply: id, ok: out(result) ?? null })})`, contextId: ctx });
    } catch (e) {
      if (typeof id !== 'number') return;
      const err = e instanceof Error || e instanceof DOMException ? { name: e.name, message: e.message } : { name: 'NetworkError', message: String(e) };
      await send('Runtime.evaluate', { expression: `__blewireIn(${JSON.stringify({ reply: id, err })})`, contextId: ctx }).catch(() => undefined);
    }
  };

  let loaded: (() => void) | undefined;
  const off = browser.onEvent((e: CdpEvent) => {
    if (e.sessionId !== sessionId) return;
    const p = e.params;
    if (e.method === 'Runtime.bindingCalled' && p['name'] === '__blewire') {
      void onCall(String(p['payload']), Number(p['executionContextId']));
    } else if (e.method === 'Runtime.consoleAPICalled') {
      const args = (p['args'] as Array<{ value?: unknown; description?: string }> | undefined) ?? [];
      log(args.map(a => (a.value !== undefined ? String(a.value) : a.description ?? '')).join(' '));
    } else if (e.method === 'Runtime.exceptionThrown') {
      const d = p['exceptionDetails'] as { text?: string; exception?: { description?: string } } | undefined;
      log(`Uncaught ${d?.exception?.description ?? d?.text ?? 'exception'}`);
    } else if (e.method === 'Page.loadEventFired') {
      loaded?.();
    }
  });

  await send('Runtime.enable');
  await send('Page.enable');
  await send('Runtime.addBinding', { name: '__blewire' });
  await send('Page.addScriptToEvaluateOnNewDocument', { source: BRIDGE_PAGE_SCRIPT });
  const load = new Promise<void>(resolve => { loaded = resolve; });
  const nav = await send('Page.navigate', { url });
  if (typeof nav['errorText'] === 'string' && nav['errorText']) throw new BrowserError(`chromium could not open ${url}: ${nav['errorText']}`);
  await load;

  return {
    console: lines,
    evaluate: async expression => {
      const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
      const ex = r['exceptionDetails'] as { exception?: { description?: string }; text?: string } | undefined;
      if (ex) throw new BrowserError(`page: ${ex.exception?.description ?? ex.text}`);
      return (r['result'] as { value?: unknown } | undefined)?.value;
    },
    close: async () => {
      off();
      await browser.close();
    },
  };
}
