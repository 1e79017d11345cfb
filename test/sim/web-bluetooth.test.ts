// The Web Bluetooth facade (src/web-bluetooth/) on the simulator, member by member, written from the
// spec's algorithms (WebBluetoothCG "Web Bluetooth", sections 4-6): requestDevice()'s validation
// and matching, the device chooser, getDevices()/forget(), the GATT server and its services,
// characteristics and descriptors, the blocklist and the optionalServices gate, events with their
// bubbling path, reconnects, and watchAdvertisements(). Every test ends with no timer left.
import { afterEach, describe, expect, test } from 'vitest';
import { runInNewContext } from 'node:vm';
import { PassThrough } from 'node:stream';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator, HEART_RATE_SENSOR, SimAir, type Simulator } from '../../src/sim/index.js';
import type { SimPeripheral } from '../../src/sim/types.js';
import {
  BluetoothUUID, createBluetooth, terminalChooser, type Bluetooth, type BluetoothDevice, type CreateBluetoothOptions,
  type BluetoothRemoteGATTCharacteristic, type BluetoothRemoteGATTService,
} from '../../src/web-bluetooth/index.js';

const CUSTOM = 'b10e0001-5a5a-4000-8000-00000000b1e0';
const SETPOINT = 'b10e0002-5a5a-4000-8000-00000000b1e0';
const COMMAND = 'b10e0003-5a5a-4000-8000-00000000b1e0';

/** A widget with services of every kind the tests need: granted, optional, blocklisted. */
const WIDGET: SimPeripheral = {
  name: 'Lab Widget', address: 'D4:1E:35:7A:00:40', addressType: 'random',
  advertising: {
    data: { flags: 0x06, serviceUuids: [0x180f], manufacturerData: [[0x0059, { hex: '0102a0ff' }]], serviceData: [[0xfeaa, { hex: '10' }]] },
    scanResponse: { name: 'Lab Widget' },
    intervalMs: 40, rssi: -70,
  },
  gatt: [
    { uuid: 0x1800, characteristics: [{ uuid: 0x2a00, properties: ['read'], value: 'Lab Widget' }] },
    { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read', 'notify'], value: { hex: '42' } }] },
    { uuid: 0x180a, characteristics: [
      { uuid: 0x2a29, properties: ['read'], value: 'Acme Labs' },
      { uuid: 0x2a25, properties: ['read'], value: 'SN-0001' }, // Serial Number String: blocklisted
    ] },
    { uuid: CUSTOM, characteristics: [
      { uuid: SETPOINT, properties: ['read', 'write', 'reliableWrite'], value: { hex: '1400' }, descriptors: [{ uuid: 0x2901, value: 'Setpoint' }] },
      { uuid: COMMAND, properties: ['writeWithoutResponse'] },
    ] },
    { uuid: 0x1812, characteristics: [{ uuid: 0x2a4d, properties: ['read'], value: { hex: '00' } }] }, // HID: blocklisted
  ],
};

interface Rig { sim: Simulator; adapter: Adapter; bluetooth: Bluetooth }
let rigs: Rig[] = [];

async function rig(options: Omit<CreateBluetoothOptions, 'adapter'> = {}, peripherals: SimPeripheral[] = [HEART_RATE_SENSOR, WIDGET]): Promise<Rig> {
  const sim = createSimulator({ name: 'web-bluetooth', seed: 3, peripherals });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, bonds: false });
  const bluetooth = createBluetooth({ adapter, scanTime: 1500, ...options });
  const r = { sim, adapter, bluetooth };
  rigs.push(r);
  return r;
}

afterEach(async () => {
  for (const r of rigs) {
    await r.bluetooth.close();
    await r.adapter.close();
    expect(r.sim.clock.pendingTimers).toBe(0);
  }
  rigs = [];
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

async function domRejection(p: Promise<unknown>, name: string): Promise<DOMException> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(DOMException);
  expect(e.name).toBe(name);
  return e as DOMException;
}

async function connectWidget(r: Rig, optionalServices: Array<string | number> = []): Promise<BluetoothDevice> {
  const device = await r.bluetooth.requestDevice({ filters: [{ name: 'Lab Widget' }], optionalServices: ['battery_service', ...optionalServices] });
  await device.gatt!.connect();
  return device;
}

describe('BluetoothUUID', () => {
  test('canonicalUUID and the three resolvers follow ResolveUUIDName', () => {
    expect(BluetoothUUID.canonicalUUID(0x180d)).toBe('0000180d-0000-1000-8000-00805f9b34fb');
    expect(BluetoothUUID.canonicalUUID(0x12345678)).toBe('12345678-0000-1000-8000-00805f9b34fb');
    expect(BluetoothUUID.canonicalUUID(-1)).toBe('ffffffff-0000-1000-8000-00805f9b34fb'); // unsigned long wraps
    expect(BluetoothUUID.getService('heart_rate')).toBe('0000180d-0000-1000-8000-00805f9b34fb');
    expect(BluetoothUUID.getService(0x180f)).toBe('0000180f-0000-1000-8000-00805f9b34fb');
    expect(BluetoothUUID.getService(CUSTOM)).toBe(CUSTOM);
    expect(BluetoothUUID.getCharacteristic('gap.device_name')).toBe('00002a00-0000-1000-8000-00805f9b34fb');
    expect(BluetoothUUID.getCharacteristic('battery_level')).toBe('00002a19-0000-1000-8000-00805f9b34fb');
    expect(BluetoothUUID.getDescriptor('gatt.client_characteristic_configuration')).toBe('00002902-0000-1000-8000-00805f9b34fb');
  });

  test('anything else is a TypeError: upper-case UUIDs, aliases as strings, names of another table or unprefixed', () => {
    for (const [fn, arg] of [
      [BluetoothUUID.getService, CUSTOM.toUpperCase()], [BluetoothUUID.getService, '0x180d'], [BluetoothUUID.getService, '180d'],
      [BluetoothUUID.getService, 'battery_level'], [BluetoothUUID.getCharacteristic, 'device_name'],
      [BluetoothUUID.getDescriptor, 'heart_rate'], [BluetoothUUID.getService, ''],
    ] as const) {
      expect(() => fn(arg as string), `${fn.name}(${arg})`).toThrow(TypeError);
    }
    expect(() => BluetoothUUID.getService('0x180d')).toThrow(/alias is a number: 0x180d/);
    expect(() => BluetoothUUID.getService(CUSTOM.toUpperCase())).toThrow(/lower case/);
  });
});

describe('requestDevice() validation', () => {
  const invalid: Array<[string, unknown]> = [
    ['no options', undefined],
    ['neither filters nor acceptAllDevices', {}],
    ['filters with acceptAllDevices', { filters: [{ name: 'x' }], acceptAllDevices: true }],
    ['exclusionFilters without filters', { acceptAllDevices: true, exclusionFilters: [{ name: 'x' }] }],
    ['empty filters', { filters: [] }],
    ['an empty filter', { filters: [{}] }],
    ['filters not a sequence', { filters: 5 }],
    ['empty services', { filters: [{ services: [] }] }],
    ['an unknown service name', { filters: [{ services: ['not_a_service'] }] }],
    ['empty namePrefix', { filters: [{ namePrefix: '' }] }],
    ['a name over 248 octets', { filters: [{ name: 'é'.repeat(125) }] }],
    ['empty manufacturerData', { filters: [{ manufacturerData: [] }] }],
    ['a company twice', { filters: [{ manufacturerData: [{ companyIdentifier: 0x59 }, { companyIdentifier: 0x59 }] }] }],
    ['mask and dataPrefix of different sizes', { filters: [{ manufacturerData: [{ companyIdentifier: 0x59, dataPrefix: new Uint8Array([1, 2]), mask: new Uint8Array([1]) }] }] }],
    ['a dataPrefix that is not a BufferSource', { filters: [{ manufacturerData: [{ companyIdentifier: 0x59, dataPrefix: [1, 2] }] }] }],
    ['empty serviceData', { filters: [{ serviceData: [] }] }],
    ['empty exclusionFilters', { filters: [{ name: 'x' }], exclusionFilters: [] }],
    ['a bad optional service', { acceptAllDevices: true, optionalServices: ['nope'] }],
  ];
  test.each(invalid)('%s is a TypeError, before any scan', async (_what, options) => {
    const r = await rig();
    const t0 = r.sim.clock.now();
    const e = await rejection(r.bluetooth.requestDevice(options as never));
    expect(e).toBeInstanceOf(TypeError);
    expect(r.sim.clock.now()).toBe(t0);
  });

  test('a blocklisted service in a filter is a SecurityError; in optionalServices it is dropped', async () => {
    const r = await rig();
    await domRejection(r.bluetooth.requestDevice({ filters: [{ services: ['human_interface_device'] }] }), 'SecurityError');
    await domRejection(r.bluetooth.requestDevice({ filters: [{ serviceData: [{ service: 0x1812 }] }] }), 'SecurityError');
    const device = await r.bluetooth.requestDevice({ filters: [{ name: 'Lab Widget' }], optionalServices: ['human_interface_device', CUSTOM] });
    await device.gatt!.connect();
    await domRejection(device.gatt!.getPrimaryService('human_interface_device'), 'SecurityError');
    expect((await device.gatt!.getPrimaryServices()).map(s => s.uuid)).toEqual([CUSTOM]);
  });
});

describe('requestDevice() matching and the chooser', () => {
  test('filters by services, name, namePrefix, manufacturerData with a mask, serviceData; exclusionFilters', async () => {
    const r = await rig();
    const names = async (options: object) => (await r.bluetooth.requestDevice(options)).name;
    expect(await names({ filters: [{ services: ['heart_rate'] }] })).toBe('Pulse HR');
    expect(await names({ filters: [{ name: 'Lab Widget' }] })).toBe('Lab Widget');
    expect(await names({ filters: [{ namePrefix: 'Pul' }] })).toBe('Pulse HR');
    // 01 02 a0 ff under mask ff 00 f0: 01 ?? a? matches; 01 ?? b? does not.
    expect(await names({ filters: [{ manufacturerData: [{ companyIdentifier: 0x0059, dataPrefix: Uint8Array.of(1, 9, 0xa7), mask: Uint8Array.of(0xff, 0, 0xf0) }] }] })).toBe('Lab Widget');
    await domRejection(r.bluetooth.requestDevice({ filters: [{ manufacturerData: [{ companyIdentifier: 0x0059, dataPrefix: Uint8Array.of(1, 9, 0xb0), mask: Uint8Array.of(0xff, 0, 0xf0) }] }] }), 'NotFoundError');
    expect(await names({ filters: [{ serviceData: [{ service: 0xfeaa, dataPrefix: Uint8Array.of(0x10).buffer }] }] })).toBe('Lab Widget');
    // Both advertise Battery; the Heart Rate sensor is stronger (-48 dBm) unless excluded.
    expect(await names({ filters: [{ services: ['battery_service'] }] })).toBe('Pulse HR');
    expect(await names({ filters: [{ services: ['battery_service'] }], exclusionFilters: [{ namePrefix: 'Pulse' }] })).toBe('Lab Widget');
  });

  test('the chooser sees every match with its advertisement; nothing picked is NotFoundError', async () => {
    const seen: string[][] = [];
    const r = await rig({ deviceChooser: (cands, options) => {
      seen.push(cands.map(c => `${c.name} ${c.address} ${c.connectable} ${c.rssi < 0}`));
      expect(options).toMatchObject({ acceptAllDevices: true });
      return cands.find(c => c.name === 'Lab Widget');
    } });
    const d = await r.bluetooth.requestDevice({ acceptAllDevices: true });
    expect(d.name).toBe('Lab Widget');
    expect(seen[0]!.sort()).toEqual(['Lab Widget D4:1E:35:7A:00:40 true true', 'Pulse HR D4:1E:35:7A:00:01 true true']);
    const cancel = await rig({ deviceChooser: () => null });
    const e = await domRejection(cancel.bluetooth.requestDevice({ acceptAllDevices: true }), 'NotFoundError');
    expect(e.message).toMatch(/User cancelled/);
    const none = await domRejection(r.bluetooth.requestDevice({ filters: [{ name: 'Nobody' }] }), 'NotFoundError');
    expect(none.message).toMatch(/no device matching the filters was heard in 1500 ms/);
  });

  test('the same peer is the same BluetoothDevice with a stable opaque id; getDevices() and forget()', async () => {
    const r = await rig();
    const a = await r.bluetooth.requestDevice({ filters: [{ name: 'Lab Widget' }] });
    const b = await r.bluetooth.requestDevice({ filters: [{ services: [CUSTOM] }, { name: 'Lab Widget' }] });
    expect(b).toBe(a);
    expect(a.id).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    // Opaque: the address shows in no form (a random 22-character id may well contain 'D4' by chance).
    const addr = 'D4:1E:35:7A:00:40';
    const octets = Buffer.from(addr.replace(/:/g, ''), 'hex');
    for (const form of [addr, addr.replace(/:/g, ''), octets.toString('base64').slice(0, 8), Buffer.from(octets).reverse().toString('base64').slice(0, 8)]) {
      expect(a.id.toUpperCase()).not.toContain(form.toUpperCase());
    }
    expect(await r.bluetooth.getDevices()).toEqual([a]);
    // Grants add up: the second request named the custom service.
    await a.gatt!.connect();
    expect((await a.gatt!.getPrimaryServices()).map(s => s.uuid)).toEqual([CUSTOM]);
    const hr = await r.bluetooth.requestDevice({ filters: [{ services: ['heart_rate'] }] });
    expect(await r.bluetooth.getDevices()).toEqual([a, hr]);
    await a.forget();
    expect(a.gatt).toBeNull();
    expect(await r.bluetooth.getDevices()).toEqual([hr]);
    expect(r.adapter.connections).toHaveLength(0);
  });

  test('getAvailability() is true with a controller, false when none opens; requestDevice() is then NotFoundError', async () => {
    const r = await rig();
    expect(await r.bluetooth.getAvailability()).toBe(true);
    const none = createBluetooth({ transport: 'unix:/nonexistent/blewire-webbt.sock', open: { timeout: 2000 } });
    expect(await none.getAvailability()).toBe(false);
    const e = await domRejection(none.requestDevice({ acceptAllDevices: true }), 'NotFoundError');
    expect(e.message).toMatch(/Bluetooth adapter not available/);
    await none.close();
  });
});

describe('BluetoothRemoteGATTServer and services', () => {
  test('connect(), connected, getPrimaryService(s) limited to the granted services', async () => {
    const r = await rig();
    const device = await r.bluetooth.requestDevice({ filters: [{ services: ['heart_rate'] }], optionalServices: ['battery_service'] });
    const server = device.gatt!;
    expect(server.connected).toBe(false);
    await domRejection(server.getPrimaryService('heart_rate'), 'NetworkError');
    expect(await server.connect()).toBe(server);
    expect(server.connected).toBe(true);
    expect(server.device).toBe(device);
    const hr = await server.getPrimaryService('heart_rate');
    expect(hr.uuid).toBe('0000180d-0000-1000-8000-00805f9b34fb');
    expect(hr.isPrimary).toBe(true);
    expect(hr.device).toBe(device);
    expect(await server.getPrimaryService(0x180d)).toBe(hr); // the same object every time
    expect((await server.getPrimaryServices()).map(s => s.uuid.slice(4, 8))).toEqual(['180d', '180f']);
    const e = await domRejection(server.getPrimaryService('device_information'), 'SecurityError');
    expect(e.message).toMatch(/optionalServices/);
    await domRejection(server.getPrimaryService('generic_access'), 'SecurityError');
    await rejection(server.getPrimaryService('nonsense')).then(x => expect(x).toBeInstanceOf(TypeError));
    const granted = await r.bluetooth.requestDevice({ filters: [{ services: ['heart_rate'] }], optionalServices: ['cycling_power'] });
    expect(granted).toBe(device);
    await domRejection(server.getPrimaryService('cycling_power'), 'NotFoundError');
  });

  test('acceptAllDevices grants only optionalServices', async () => {
    const r = await rig({ deviceChooser: c => c.find(x => x.name === 'Pulse HR') });
    const device = await r.bluetooth.requestDevice({ acceptAllDevices: true });
    await device.gatt!.connect();
    const e = await domRejection(device.gatt!.getPrimaryServices(), 'NotFoundError');
    expect(e.message).toMatch(/none were granted/);
  });
});

describe('characteristics and descriptors', () => {
  test('properties are enumerable attributes; readValue() gives a DataView and fires characteristicvaluechanged', async () => {
    const r = await rig();
    const device = await connectWidget(r, [CUSTOM]);
    const battery = await device.gatt!.getPrimaryService('battery_service');
    const level = await battery.getCharacteristic('battery_level');
    const props: string[] = [];
    for (const p in level.properties) if ((level.properties as unknown as Record<string, boolean>)[p]) props.push(p);
    expect(props).toEqual(['read', 'notify']);
    expect(Object.prototype.toString.call(level)).toBe('[object BluetoothRemoteGATTCharacteristic]');
    const keys: string[] = [];
    for (const k in level) keys.push(k);
    expect(keys).toEqual(expect.arrayContaining(['service', 'uuid', 'properties', 'value', 'readValue', 'oncharacteristicvaluechanged']));
    expect(keys.filter(k => k.startsWith('_'))).toEqual([]);
    expect(level.value).toBeNull();
    const events: unknown[] = [];
    level.addEventListener('characteristicvaluechanged', ev => events.push((ev.target as BluetoothRemoteGATTCharacteristic).value?.getUint8(0)));
    const v = await level.readValue();
    expect(v).toBeInstanceOf(DataView);
    expect(v.getUint8(0)).toBe(0x42);
    expect(level.value!.getUint8(0)).toBe(0x42);
    expect(events).toEqual([0x42]);
    expect(level.service).toBe(battery);
  });

  test('writeValue / WithResponse / WithoutResponse, with the checks the spec orders', async () => {
    const r = await rig();
    const device = await connectWidget(r, [CUSTOM]);
    const svc = await device.gatt!.getPrimaryService(CUSTOM);
    const setpoint = await svc.getCharacteristic(SETPOINT);
    const command = await svc.getCharacteristic(COMMAND);
    // reliableWrite comes from the Extended Properties descriptor the declaration's bit 0x80 announces.
    const props = (c: BluetoothRemoteGATTCharacteristic) => Object.entries(Object.getOwnPropertyDescriptors(Object.getPrototypeOf(c.properties)))
      .filter(([k, d]) => d.get && (c.properties as unknown as Record<string, boolean>)[k]).map(([k]) => k);
    expect(props(setpoint)).toEqual(['read', 'write', 'reliableWrite']);
    expect(props(command)).toEqual(['writeWithoutResponse']);
    await setpoint.writeValue(Uint8Array.of(0x19, 0x00));
    expect([...new Uint8Array((await setpoint.readValue()).buffer)]).toEqual([0x19, 0x00]);
    await setpoint.writeValueWithResponse(new DataView(Uint8Array.of(0, 0x1a, 0, 0).buffer, 1, 2));
    expect([...new Uint8Array((await setpoint.readValue()).buffer)]).toEqual([0x1a, 0x00]);
    await command.writeValueWithoutResponse(Uint8Array.of(1).buffer);
    await command.writeValue(Uint8Array.of(2)); // optional: the only procedure it has
    await domRejection(command.writeValueWithResponse(Uint8Array.of(1)), 'NotSupportedError');
    await domRejection(setpoint.writeValueWithoutResponse(Uint8Array.of(1)), 'NotSupportedError');
    await domRejection(command.readValue(), 'NotSupportedError');
    const big = await domRejection(setpoint.writeValue(new Uint8Array(513)), 'InvalidModificationError');
    expect(big.message).toMatch(/512/);
    expect(await rejection(setpoint.writeValue([1, 2] as never))).toBeInstanceOf(TypeError);
    expect(await rejection(setpoint.writeValue(new SharedArrayBuffer(2) as never))).toBeInstanceOf(TypeError);
  });

  test('the blocklist: blocklisted characteristics are SecurityError and left out of lists; the CCCD is read-only', async () => {
    const r = await rig();
    const device = await connectWidget(r, ['device_information', CUSTOM]);
    const info = await device.gatt!.getPrimaryService('device_information');
    await domRejection(info.getCharacteristic('serial_number_string'), 'SecurityError');
    expect((await info.getCharacteristics()).map(c => c.uuid.slice(4, 8))).toEqual(['2a29']);
    const level = await (await device.gatt!.getPrimaryService('battery_service')).getCharacteristic('battery_level');
    const cccd = await level.getDescriptor('gatt.client_characteristic_configuration');
    expect([...new Uint8Array((await cccd.readValue()).buffer)]).toEqual([0, 0]);
    await domRejection(cccd.writeValue(Uint8Array.of(1, 0)), 'SecurityError');
    const setpoint = await (await device.gatt!.getPrimaryService(CUSTOM)).getCharacteristic(SETPOINT);
    const desc = await setpoint.getDescriptor(0x2901);
    expect(desc.characteristic).toBe(setpoint);
    expect(new TextDecoder().decode(await desc.readValue())).toBe('Setpoint');
    expect(desc.value).toBeInstanceOf(DataView);
    expect((await setpoint.getDescriptors()).map(d => d.uuid.slice(4, 8))).toEqual(['2900', '2901']);
    await domRejection(setpoint.getDescriptor('gatt.characteristic_presentation_format'), 'NotFoundError');
    await domRejection(info.getCharacteristic('battery_level'), 'NotFoundError');
  });

  test('notifications: startNotifications() writes the CCCD once, events bubble with the characteristic as target, stop ends them', async () => {
    const r = await rig();
    const device = await r.bluetooth.requestDevice({ filters: [{ services: ['heart_rate'] }] });
    const server = await device.gatt!.connect();
    const svc = await server.getPrimaryService('heart_rate');
    const hrm = await svc.getCharacteristic('heart_rate_measurement');
    const path: string[] = [];
    const bpm: number[] = [];
    hrm.oncharacteristicvaluechanged = (ev: Event) => { bpm.push((ev.target as BluetoothRemoteGATTCharacteristic).value!.getUint8(1)); };
    for (const [name, t] of [['service', svc], ['device', device], ['bluetooth', r.bluetooth]] as const) {
      t.addEventListener('characteristicvaluechanged', ev => {
        path.push(`${name}:${ev.target === hrm}:${ev.eventPhase}:${ev.bubbles}`);
      });
    }
    expect(await hrm.startNotifications()).toBe(hrm);
    await hrm.startNotifications();
    const cccd = await hrm.getDescriptor('gatt.client_characteristic_configuration');
    expect([...new Uint8Array((await cccd.readValue()).buffer)]).toEqual([1, 0]);
    await r.sim.clock.delay(3500);
    expect(bpm.length).toBe(3);
    for (const b of bpm) expect(b).toBeGreaterThan(50);
    expect(path.slice(0, 3)).toEqual(['service:true:3:true', 'device:true:3:true', 'bluetooth:true:3:true']);
    // A listener that stops propagation keeps the event from the ancestors.
    svc.addEventListener('characteristicvaluechanged', ev => ev.stopPropagation());
    path.length = 0;
    await r.sim.clock.delay(1000);
    expect(path).toEqual(['service:true:3:true']);
    await hrm.stopNotifications();
    expect([...new Uint8Array((await cccd.readValue()).buffer)]).toEqual([0, 0]);
    const n = bpm.length;
    await r.sim.clock.delay(3000);
    expect(bpm.length).toBe(n);
    await domRejection((await svc.getCharacteristic('body_sensor_location')).startNotifications(), 'NotSupportedError');
  });
});

describe('disconnects and reconnects', () => {
  test('disconnect() fires gattserverdisconnected (bubbling); operations are then NetworkError; a reconnect revives the same objects', async () => {
    const r = await rig();
    const device = await connectWidget(r);
    const level = await (await device.gatt!.getPrimaryService('battery_service')).getCharacteristic('battery_level');
    const fired: string[] = [];
    device.ongattserverdisconnected = (ev: Event) => fired.push(`device:${ev.target === device}`);
    r.bluetooth.addEventListener('gattserverdisconnected', ev => fired.push(`bluetooth:${ev.target === device}`));
    device.gatt!.disconnect();
    expect(device.gatt!.connected).toBe(false);
    expect(fired).toEqual(['device:true', 'bluetooth:true']);
    device.gatt!.disconnect(); // no second event
    expect(fired).toHaveLength(2);
    const e = await domRejection(level.readValue(), 'NetworkError');
    expect(e.message).toMatch(/gatt\.connect/);
    await r.sim.clock.delay(100);
    expect(r.adapter.connections).toHaveLength(0);
    await device.gatt!.connect();
    expect((await level.readValue()).getUint8(0)).toBe(0x42);
    expect(await device.gatt!.getPrimaryService('battery_service')).toBe(level.service);
  });

  test('the peer ending the link fires gattserverdisconnected; automatic reconnect works', async () => {
    const flaky: SimPeripheral = { ...WIDGET, behaviour: { disconnectAfterMs: 2000, disconnectReason: 0x13 } };
    const r = await rig({}, [flaky]);
    const device = await connectWidget(r);
    let reconnected = 0;
    device.addEventListener('gattserverdisconnected', () => {
      device.gatt!.connect().then(() => { reconnected++; }, () => undefined);
    });
    await r.sim.clock.delay(2500);
    expect(reconnected).toBe(1);
    expect(device.gatt!.connected).toBe(true);
    device.gatt!.disconnect();
  });

  test('disconnect() during connect() makes connect() reject with AbortError', async () => {
    const r = await rig();
    const device = await r.bluetooth.requestDevice({ filters: [{ name: 'Lab Widget' }] });
    const p = device.gatt!.connect();
    device.gatt!.disconnect();
    await domRejection(p, 'AbortError');
    expect(device.gatt!.connected).toBe(false);
    await r.sim.clock.delay(100);
    expect(r.adapter.connections).toHaveLength(0);
  });

  test('a peer that is gone: connect() is NetworkError after connectTimeout', async () => {
    const gone: SimPeripheral = { ...WIDGET, behaviour: { failToEstablish: true } };
    const r = await rig({ connectTimeout: 3000 }, [gone]);
    const device = await r.bluetooth.requestDevice({ filters: [{ name: 'Lab Widget' }] });
    await domRejection(device.gatt!.connect(), 'NetworkError');
  });
});

describe('watchAdvertisements()', () => {
  test('advertisementreceived with rssi, name and data as Maps of DataView, until the signal aborts', async () => {
    const r = await rig();
    const device = await r.bluetooth.requestDevice({ filters: [{ name: 'Lab Widget' }] });
    const got: Array<{ rssi: number; company: number | undefined; service: number | undefined; uuids: string[] }> = [];
    device.addEventListener('advertisementreceived', (ev: Event) => {
      const e = ev as Event & { rssi: number; manufacturerData: Map<number, DataView>; serviceData: Map<string, DataView>; uuids: string[]; device: unknown };
      expect(e.device).toBe(device);
      got.push({ rssi: e.rssi, company: e.manufacturerData.get(0x0059)?.getUint8(2), service: e.serviceData.get(BluetoothUUID.getService(0xfeaa))?.getUint8(0), uuids: e.uuids });
    });
    const ac = new AbortController();
    await device.watchAdvertisements({ signal: ac.signal });
    expect(device.watchingAdvertisements).toBe(true);
    await r.sim.clock.delay(1000);
    expect(got.length).toBeGreaterThan(5);
    expect(got[0]).toMatchObject({ company: 0xa0, service: 0x10 });
    expect(got[0]!.uuids).toContain(BluetoothUUID.getService('battery_service'));
    ac.abort();
    expect(device.watchingAdvertisements).toBe(false);
    const n = got.length;
    await r.sim.clock.delay(1000);
    expect(got.length).toBe(n);
    await domRejection(device.watchAdvertisements({ signal: ac.signal }), 'AbortError');
  });
});

describe('the terminal chooser', () => {
  /** A person at a terminal: answers each prompt with the next line; the screen is kept. */
  function person(answers: string[]): { streams: { input: PassThrough; output: PassThrough }; screen: () => string } {
    const input = new PassThrough();
    const output = new PassThrough();
    let screen = '';
    output.on('data', (d: Buffer) => {
      screen += d.toString();
      if (/\]: $/.test(screen)) {
        const a = answers.shift();
        if (a === undefined) input.end();
        else setImmediate(() => input.write(`${a}\n`));
      }
    });
    return { streams: { input, output }, screen: () => screen };
  }

  test('lists the devices heard, strongest first, and connects to the one typed; a wrong answer is asked again', async () => {
    const p = person(['7', 'x', '2']);
    const r = await rig({ deviceChooser: terminalChooser(p.streams) });
    const device = await r.bluetooth.requestDevice({ acceptAllDevices: true });
    const lines = p.screen().split('\n').filter(l => /^\s+\d\) /.test(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^ {3}1\) Pulse HR\s+D4:1E:35:7A:00:01\s+-4\d dBm$/);
    expect(lines[1]).toMatch(/^ {3}2\) Lab Widget\s+D4:1E:35:7A:00:40\s+-7\d dBm$/);
    expect(p.screen()).toContain('"7" is not one of 1-2.');
    expect(p.screen()).toContain('"x" is not one of 1-2.');
    expect(device.name).toBe('Lab Widget');
  });

  test('Enter takes the first; q, or the end of the input, cancels with NotFoundError as closing a browser chooser does', async () => {
    const r = await rig({ deviceChooser: terminalChooser(person(['']).streams) });
    expect((await r.bluetooth.requestDevice({ acceptAllDevices: true })).name).toBe('Pulse HR');
    const q = await rig({ deviceChooser: terminalChooser(person(['q']).streams) });
    const e = await domRejection(q.bluetooth.requestDevice({ acceptAllDevices: true }), 'NotFoundError');
    expect(e.message).toContain('User cancelled');
    const gone = await rig({ deviceChooser: terminalChooser(person([]).streams) });
    await domRejection(gone.bluetooth.requestDevice({ acceptAllDevices: true }), 'NotFoundError');
  });

  test('names from the air cannot drive the terminal: control characters are escaped', async () => {
    const evil: SimPeripheral = { ...WIDGET, name: 'x\u001b[2Jy', advertising: { ...WIDGET.advertising!, scanResponse: { name: 'x\u001b[2Jy' } } };
    const p = person(['']);
    const r = await rig({ deviceChooser: terminalChooser(p.streams) }, [evil]);
    await r.bluetooth.requestDevice({ acceptAllDevices: true });
    expect(p.screen()).not.toContain('\u001b');
    expect(p.screen()).toContain('x\\u001b[2Jy');
  });
});

describe('requestLEScan() (Web Bluetooth Scanning)', () => {
  type AdEvent = Event & { device: BluetoothDevice; rssi: number; name: string | undefined; uuids: string[]; manufacturerData: Map<number, DataView> };

  test('filters, the event on the advertiser\'s device bubbling to navigator.bluetooth, repeated devices only when asked, stop()', async () => {
    const r = await rig();
    const seen: AdEvent[] = [];
    r.bluetooth.addEventListener('advertisementreceived', ev => seen.push(ev as AdEvent));
    const scan = await r.bluetooth.requestLEScan({ filters: [{ services: ['heart_rate'] }] });
    expect(scan.active).toBe(true);
    expect(scan.keepRepeatedDevices).toBe(false);
    expect(scan.acceptAllAdvertisements).toBe(false);
    expect(scan.filters.map(f => f.services)).toEqual([[BluetoothUUID.getService('heart_rate')]]);
    expect(Object.prototype.toString.call(scan)).toBe('[object BluetoothLEScan]');
    await r.sim.clock.delay(2000);
    // Only the heart-rate sensor matches; its data does not change, so it is reported once.
    expect(seen.map(e => e.name)).toEqual(['Pulse HR']);
    expect(seen[0]!.device.name).toBe('Pulse HR');
    expect(seen[0]!.uuids).toContain(BluetoothUUID.getService('heart_rate'));
    scan.stop();
    expect(scan.active).toBe(false);

    // Every advertisement of every device, repeated.
    const all = await r.bluetooth.requestLEScan({ acceptAllAdvertisements: true, keepRepeatedDevices: true });
    const before = seen.length;
    await r.sim.clock.delay(1000);
    const names = seen.slice(before).map(e => e.name);
    expect(names.filter(n => n === 'Pulse HR').length).toBeGreaterThan(5);
    expect(names).toContain('Lab Widget');
    // The same advertiser is the same BluetoothDevice from event to event (and for requestDevice()).
    const widgetEvents = seen.slice(before).filter(e => e.name === 'Lab Widget');
    expect(new Set(widgetEvents.map(e => e.device)).size).toBe(1);
    const chosen = await r.bluetooth.requestDevice({ filters: [{ name: 'Lab Widget' }] });
    expect(chosen).toBe(widgetEvents[0]!.device);
    all.stop();
    const n = seen.length;
    await r.sim.clock.delay(1000);
    expect(seen.length).toBe(n);
  });

  test('a device only heard by a scan is not granted: its services are SecurityError until requestDevice()', async () => {
    const r = await rig();
    let device: BluetoothDevice | undefined;
    r.bluetooth.addEventListener('advertisementreceived', ev => { device ??= (ev as AdEvent).device; });
    const scan = await r.bluetooth.requestLEScan({ filters: [{ name: 'Lab Widget' }] });
    await expect.poll(() => device !== undefined).toBe(true);
    scan.stop();
    expect(await r.bluetooth.getDevices()).toEqual([]);
    await device!.gatt!.connect();
    await domRejection(device!.gatt!.getPrimaryService('battery_service'), 'SecurityError');
    device!.gatt!.disconnect();
  });

  test('options are validated as the spec says, before any scan', async () => {
    const r = await rig();
    for (const bad of [{}, { filters: [] }, { filters: [{ name: 'x' }], acceptAllAdvertisements: true }, { filters: [{}] }, { filters: [{ services: ['nope'] }] }]) {
      expect(await rejection(r.bluetooth.requestLEScan(bad)), JSON.stringify(bad)).toBeInstanceOf(TypeError);
    }
    await domRejection(r.bluetooth.requestLEScan({ filters: [{ services: ['human_interface_device'] }] }), 'SecurityError');
  });

  test('close() stops running scans', async () => {
    const r = await rig();
    const scan = await r.bluetooth.requestLEScan({ acceptAllAdvertisements: true });
    await r.bluetooth.close();
    expect(scan.active).toBe(false);
  });
});

describe('pairing behind the facade', () => {
  // A page never pairs explicitly: an encrypted characteristic answers Insufficient Authentication, the
  // stack pairs (Just Works here) and repeats the read, as Chrome lets the OS do.
  const vault = (pairing: SimPeripheral['pairing']): SimPeripheral => ({
    name: 'Vault', address: 'D4:1E:35:7A:00:50', addressType: 'random',
    advertising: { data: { flags: 0x06, name: 'Vault' }, intervalMs: 40, rssi: -60 },
    gatt: [{ uuid: CUSTOM, handle: 0x20, characteristics: [{ uuid: SETPOINT, properties: ['read'], value: { hex: '2a' } }] }],
    // Service 0x20, characteristic declaration 0x21, value 0x22: reads of 0x22 need encryption.
    pairing: { ...pairing, protect: [{ opcode: 0x0a, handle: 0x22 }] },
  });

  test('readValue() of an encrypted characteristic pairs and returns the value; the link is encrypted', async () => {
    const r = await rig({}, [vault({})]);
    const device = await r.bluetooth.requestDevice({ filters: [{ name: 'Vault' }], optionalServices: [CUSTOM] });
    await device.gatt!.connect();
    const c = await (await device.gatt!.getPrimaryService(CUSTOM)).getCharacteristic(SETPOINT);
    expect((await c.readValue()).getUint8(0)).toBe(0x2a);
    expect(r.adapter.connections[0]!.security).toMatchObject({ encrypted: true });
    device.gatt!.disconnect();
  });

  test('a peer that refuses pairing: SecurityError, with the ATT error and the pairing failure behind it', async () => {
    const r = await rig({}, [vault({ notSupported: true })]);
    const device = await r.bluetooth.requestDevice({ filters: [{ name: 'Vault' }], optionalServices: [CUSTOM] });
    await device.gatt!.connect();
    const c = await (await device.gatt!.getPrimaryService(CUSTOM)).getCharacteristic(SETPOINT);
    const e = await domRejection(c.readValue(), 'SecurityError');
    const cause = (e as DOMException & { cause?: Error & { code?: string; cause?: Error & { code?: string } } }).cause;
    expect(cause?.name).toBe('AttError');
    expect(cause?.cause?.name).toBe('SmpError');
    expect(device.gatt!.connected).toBe(true);
    device.gatt!.disconnect();
  });
});

describe('page code from another realm', () => {
  test('typed arrays and ArrayBuffers made in a vm context are BufferSources', async () => {
    const r = await rig();
    const device = await connectWidget(r, [CUSTOM]);
    const setpoint = await (await device.gatt!.getPrimaryService(CUSTOM)).getCharacteristic(SETPOINT);
    const foreign = runInNewContext('({ view: Uint8Array.of(0x21, 0), buffer: Uint8Array.of(0x22, 0).buffer, dv: new DataView(new ArrayBuffer(2)) })') as
      { view: Uint8Array; buffer: ArrayBuffer; dv: DataView };
    expect(foreign.view instanceof Uint8Array).toBe(false);
    await setpoint.writeValue(foreign.view);
    expect((await setpoint.readValue()).getUint8(0)).toBe(0x21);
    await setpoint.writeValue(foreign.buffer);
    expect((await setpoint.readValue()).getUint8(0)).toBe(0x22);
    await setpoint.writeValue(foreign.dv);
    expect((await setpoint.readValue()).getUint8(0)).toBe(0);
    const filterFromVm = runInNewContext('({ filters: [{ manufacturerData: [{ companyIdentifier: 0x59, dataPrefix: Uint8Array.of(1, 2) }] }] })');
    expect(await r.bluetooth.requestDevice(filterFromVm)).toBe(device);
  });
});

describe('Service Changed: serviceadded, servicechanged, serviceremoved', () => {
  // The peer is blewire's own GATT server on the shared simulated air: server.update() sends a real
  // Service Changed indication (Core Vol 3, Part G, 7.1), the central's stack confirms it and
  // rediscovers, and the page sees the difference as events (Web Bluetooth 6.3).
  test('a changed database fires the three events for the granted services, and held objects follow it', async () => {
    const air = new SimAir();
    const ps = createSimulator({ name: 'server', peripherals: [] }, { air });
    const cs = createSimulator({ name: 'page', peripherals: [] }, { air });
    const peripheral = await Adapter.open({ transport: ps.transport, bonds: false });
    const central = await Adapter.open({ transport: cs.transport, bonds: false });
    const bluetooth = createBluetooth({ adapter: central, scanTime: 1500 });
    try {
      const server = await peripheral.serve([
        { uuid: CUSTOM, characteristics: [{ uuid: SETPOINT, properties: ['read', 'write'], value: Uint8Array.of(1) }] },
        { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: Uint8Array.of(0x42) }] },
      ]);
      await peripheral.advertise({ name: 'Morph' });
      const device = await bluetooth.requestDevice({ filters: [{ name: 'Morph' }], optionalServices: ['battery_service', CUSTOM, 'cycling_power'] });
      await device.gatt!.connect();
      const services = await device.gatt!.getPrimaryServices();
      expect(services.map(s => s.uuid.slice(4, 8))).toEqual([CUSTOM.slice(4, 8), '180f']);
      const [custom, battery] = services as [BluetoothRemoteGATTService, BluetoothRemoteGATTService];
      const setpoint = await custom.getCharacteristic(SETPOINT);
      expect((await setpoint.readValue()).getUint8(0)).toBe(1);
      // The stack subscribes to Service Changed behind the first discovery.
      await air.clock.delay(1000);
      const seen: string[] = [];
      for (const type of ['serviceadded', 'servicechanged', 'serviceremoved']) {
        bluetooth.addEventListener(type, ev => seen.push(`${type} ${(ev.target as BluetoothRemoteGATTService).uuid.slice(4, 8)}`));
      }
      // The custom service keeps its start handle and gains a characteristic; Battery's handles now
      // belong to Cycling Power: Battery removed, Cycling Power added, the custom service changed.
      await server.update([
        { uuid: CUSTOM, characteristics: [
          { uuid: SETPOINT, properties: ['read', 'write'], value: Uint8Array.of(2) },
          { uuid: COMMAND, properties: ['writeWithoutResponse'] },
        ] },
        { uuid: 0x1818, characteristics: [{ uuid: 0x2a63, properties: ['notify'] }] },
      ]);
      await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(3);
      expect(seen.sort()).toEqual(['serviceadded 1818', `servicechanged ${CUSTOM.slice(4, 8)}`, 'serviceremoved 180f']);
      await domRejection(battery.getCharacteristic('battery_level'), 'InvalidStateError');
      expect((await custom.getCharacteristics()).map(c => c.uuid)).toEqual([SETPOINT, COMMAND]);
      // A characteristic object the page held before the change reads the new database.
      expect((await setpoint.readValue()).getUint8(0)).toBe(2);
      expect((await device.gatt!.getPrimaryServices()).map(s => s.uuid.slice(4, 8))).toEqual([CUSTOM.slice(4, 8), '1818']);
      // Nothing fires again without a change.
      await air.clock.delay(2000);
      expect(seen).toHaveLength(3);
    } finally {
      await bluetooth.close();
      await central.close();
      await peripheral.close();
    }
  });
});

describe('permissions kept across processes', () => {
  const dirs: string[] = [];
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }); });
  async function tempFile(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'blewire-wb-'));
    dirs.push(d);
    return join(d, 'permissions.json');
  }

  test('a later Bluetooth object gets the same device (id, name, services), connects, and forget() removes it from the file', async () => {
    const file = await tempFile();
    const r = await rig({ permissions: file });
    const first = await connectWidget(r);
    const id = first.id;
    first.gatt!.disconnect();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await readFile(file, 'utf8'));
    expect(doc.devices).toEqual([{ id, address: expect.stringMatching(/^[0-9A-F:]{17}$/), addressType: expect.any(String), name: 'Lab Widget',
      services: [BluetoothUUID.getService('battery_service')] }]);

    // Another "page load": a new navigator.bluetooth reading the same file.
    const again = createBluetooth({ adapter: r.adapter, permissions: file });
    try {
      const [device, ...rest] = await again.getDevices();
      expect(rest).toEqual([]);
      expect(device!.id).toBe(id);
      expect(device!.name).toBe('Lab Widget');
      await device!.gatt!.connect();
      const battery = await device!.gatt!.getPrimaryService('battery_service');
      expect((await (await battery.getCharacteristic('battery_level')).readValue()).byteLength).toBe(1);
      // Only what was granted: the custom service was never named.
      await domRejection(device!.gatt!.getPrimaryService(CUSTOM), 'SecurityError');
      await device!.forget();
      expect(JSON.parse(await readFile(file, 'utf8')).devices).toEqual([]);
    } finally {
      await again.close();
    }
    const third = createBluetooth({ adapter: r.adapter, permissions: file });
    expect(await third.getDevices()).toEqual([]);
    expect(third.permissionsRejected).toBeUndefined();
  });

  test('a hostile permission file is no permission at all, says why, and the next grant replaces it', async () => {
    const good = { format: 'blewire-web-bluetooth-permissions', version: 1 };
    const dev = { id: 'AAAAAAAAAAAAAAAAAAAAAA==', address: 'C0:00:00:00:00:01', addressType: 'random', services: ['0000180f-0000-1000-8000-00805f9b34fb'] };
    const cases: Array<[string, string | Uint8Array]> = [
      ['not JSON', '{"format":'],
      ['another format', JSON.stringify({ ...good, version: 2, devices: [dev] })],
      ['an id that is not opaque', JSON.stringify({ ...good, devices: [{ ...dev, id: '__proto__' }] })],
      ['an address that is not one', JSON.stringify({ ...good, devices: [{ ...dev, address: '../../etc' }] })],
      ['an address type of its own', JSON.stringify({ ...good, devices: [{ ...dev, addressType: 'anonymous' }] })],
      ['a service that is not a canonical UUID', JSON.stringify({ ...good, devices: [{ ...dev, services: ['0000180F-0000-1000-8000-00805F9B34FB'] }] })],
      ['a name longer than a device name', JSON.stringify({ ...good, devices: [{ ...dev, name: 'n'.repeat(249) }] })],
      ['the same device twice', JSON.stringify({ ...good, devices: [dev, { ...dev, id: 'BAAAAAAAAAAAAAAAAAAAAA==' }] })],
      ['more devices than kept', JSON.stringify({ ...good, devices: Array.from({ length: 257 }, () => dev) })],
      ['a file over the size cap', new Uint8Array(4 * 1024 * 1024 + 1).fill(0x20)],
    ];
    for (const [what, content] of cases) {
      const file = await tempFile();
      await writeFile(file, content);
      const b = createBluetooth({ adapter: (await rig()).adapter, permissions: file });
      expect(await b.getDevices(), what).toEqual([]);
      expect(b.permissionsRejected, what).toBeTruthy();
    }
    // The last rig's file is replaced by a valid one on the next grant.
    const file = await tempFile();
    await writeFile(file, 'garbage');
    const r = await rig({ permissions: file });
    await connectWidget(r);
    expect(JSON.parse(await readFile(file, 'utf8')).devices).toHaveLength(1);
  });

  test('a permission that cannot be stored rejects with NotAllowedError naming the file', async () => {
    const file = join(await tempFile(), 'missing-dir', 'permissions.json');
    const r = await rig({ permissions: file });
    const e = await domRejection(r.bluetooth.requestDevice({ filters: [{ name: 'Lab Widget' }] }), 'NotAllowedError');
    expect(e.message).toContain(file);
    expect(() => createBluetooth({ permissions: '' as unknown as string })).toThrow(TypeError);
  });
});
