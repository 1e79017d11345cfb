/**
 * Built-in scenarios, by name (`sim:<name>`): plain data like any scenario file.
 *   demo     a heart-rate sensor, a thermometer (Health Thermometer with indications), and a noisy
 *            crowd of advertisers (beacons, phones, tags) with varied AD, manufacturer data and RSSI drift
 *   empty    a controller and nobody around
 *   large    one peripheral with 30 services / 200 characteristics (the discovery benchmark)
 */
import type { Scenario, SimPeripheral, SimService } from './types.js';
import { Rng } from './util.js';

const hex = (s: string) => ({ hex: s });

/** GAP (Device Name, Appearance) + GATT (Service Changed) + the given services. */
function withGapGatt(name: string, appearance: number, services: SimService[]): SimService[] {
  return [
    { uuid: 0x1800, characteristics: [
      { uuid: 0x2a00, properties: ['read'], value: name },
      { uuid: 0x2a01, properties: ['read'], value: hex(appearance.toString(16).padStart(4, '0').replace(/(..)(..)/, '$2$1')) },
    ] },
    { uuid: 0x1801, characteristics: [{ uuid: 0x2a05, properties: ['indicate'] }] },
    ...services,
  ];
}

const deviceInfo = (maker: string, model: string): SimService => ({
  uuid: 0x180a, characteristics: [
    { uuid: 0x2a29, properties: ['read'], value: maker },
    { uuid: 0x2a24, properties: ['read'], value: model },
    { uuid: 0x2a26, properties: ['read'], value: '1.4.2' },
  ],
});

export const HEART_RATE_SENSOR: SimPeripheral = {
  name: 'Pulse HR', address: 'D4:1E:35:7A:00:01', addressType: 'random',
  advertising: {
    data: { flags: 0x06, serviceUuids: [0x180d, 0x180f], name: 'Pulse HR' },
    scanResponse: { txPower: 4, appearance: 0x0341 },
    intervalMs: 50, rssi: -48, rssiDrift: 1.5,
  },
  gatt: withGapGatt('Pulse HR', 0x0341, [
    { uuid: 0x180d, characteristics: [
      { uuid: 0x2a37, properties: ['notify'] },
      { uuid: 0x2a38, properties: ['read'], value: hex('01') }, // Body Sensor Location: chest
      { uuid: 0x2a39, properties: ['write'] },                  // Heart Rate Control Point
    ] },
    { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read', 'notify'], value: hex('57') }] }, // 87 %
    deviceInfo('Acme Sports', 'HR-7'),
  ]),
  notifications: [{ characteristic: 0x2a37, everyMs: 1000, generator: { kind: 'heartRate', bpm: 72, spread: 6 } }],
};

export const THERMOMETER: SimPeripheral = {
  name: 'Therm-1', address: 'D4:1E:35:7A:00:02', addressType: 'random',
  advertising: {
    data: { flags: 0x06, serviceUuids: [0x1809], name: 'Therm-1' },
    intervalMs: 200, rssi: -67, rssiDrift: 2,
  },
  gatt: withGapGatt('Therm-1', 0x0300, [
    { uuid: 0x1809, characteristics: [
      { uuid: 0x2a1c, properties: ['indicate'] },                // Temperature Measurement
      { uuid: 0x2a1d, properties: ['read'], value: hex('02') },  // Temperature Type: body
      { uuid: 0x2a21, properties: ['read', 'write'], value: hex('0100') }, // Measurement Interval: 1 s
    ] },
    { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: hex('3c') }] },
  ]),
  notifications: [{ characteristic: 0x2a1c, everyMs: 1000, mode: 'indicate', generator: { kind: 'temperature', celsius: 36.8, spread: 0.3 } }],
};

/** A deterministic crowd: iBeacons, Eddystone, phones (Apple / Microsoft / Samsung data), tags, sensors. */
export function crowd(n: number, seed = 7): SimPeripheral[] {
  const rng = new Rng(seed);
  const out: SimPeripheral[] = [];
  // Static random addresses: the two most significant bits set (Vol 6, Part B, 1.3.2.1).
  const addr = (): string => [0xc0 | rng.int(0, 63), ...rng.bytes(5)].map(x => x.toString(16).padStart(2, '0').toUpperCase()).join(':');
  const h = (b: Uint8Array) => [...b].map(x => x.toString(16).padStart(2, '0')).join('');
  for (let i = 0; i < n; i++) {
    const kind = i % 7;
    const rssi = -55 - rng.int(0, 40);
    const intervalMs = [100, 152.5, 211.25, 318.75, 417.5, 546.25, 1022.5][rng.int(0, 6)]!;
    const base = { address: addr(), addressType: 'random' as const };
    switch (kind) {
      case 0: // iBeacon (Apple, company 0x004C): type 0x02, length 0x15, UUID, major, minor, tx power
        out.push({ ...base, name: `iBeacon ${i}`, advertising: { intervalMs, rssi, rssiDrift: 2,
          data: { flags: 0x06, manufacturerData: [[0x004c, hex('0215' + h(rng.bytes(16)) + h(rng.bytes(4)) + 'c5')]] } } });
        break;
      case 1: // Eddystone-URL in service data 0xFEAA
        out.push({ ...base, name: `Eddystone ${i}`, advertising: { intervalMs, rssi, rssiDrift: 1,
          data: { flags: 0x06, serviceUuids: [0xfeaa], serviceData: [[0xfeaa, hex('10eb03' + h(new TextEncoder().encode(`blewire${i}`)) + '07')]] } } });
        break;
      case 2: // a phone: Apple continuity, no name, scannable
        out.push({ ...base, name: `Phone ${i}`, advertising: { intervalMs, rssi, rssiDrift: 3,
          data: { flags: 0x1a, manufacturerData: [[0x004c, hex('1005' + h(rng.bytes(5)))]] }, scanResponse: { raw: hex('') } } });
        break;
      case 3: // Microsoft CDP beacon, non-connectable
        out.push({ ...base, name: `Laptop ${i}`, advertising: { intervalMs, rssi, rssiDrift: 2,
          data: { manufacturerData: [[0x0006, hex('0109' + h(rng.bytes(24)))]] } } });
        break;
      case 4: // a tracker tag with a name in the scan response
        out.push({ ...base, name: `Tag ${i}`, advertising: { intervalMs, rssi, rssiDrift: 2, connectable: false, scannable: true,
          data: { flags: 0x06, serviceUuids: [0xfd44] }, scanResponse: { name: `Tag-${(1000 + i).toString(16)}` } } });
        break;
      case 5: // an environment sensor: service data with a counter, Samsung-like manufacturer data
        out.push({ ...base, name: `Env ${i}`, advertising: { intervalMs, rssi, rssiDrift: 1.5,
          data: { flags: 0x06, name: `Env-${i}`, serviceData: [[0x181a, hex(h(rng.bytes(6)))]], manufacturerData: [[0x0075, hex(h(rng.bytes(4)))]] } } });
        break;
      default: // an extended advertiser with a long payload (fragmented extended reports)
        out.push({ ...base, name: `Ext ${i}`, advertising: { type: 'extended', intervalMs, rssi, rssiDrift: 2, connectable: false,
          data: { flags: 0x06, name: `Long advertiser ${i}`, manufacturerData: [[0xffff, hex(h(rng.bytes(240)))]] } } });
    }
  }
  return out;
}

/** A database of `services` services and `chars` characteristics in total (benchmarks, discovery tests). */
export function largeDatabase(services = 30, chars = 200): SimService[] {
  const out: SimService[] = [];
  for (let s = 0; s < services; s++) {
    const n = Math.floor(chars / services) + (s < chars % services ? 1 : 0);
    out.push({
      uuid: `0000${(0xa000 + s).toString(16)}-1234-5678-9abc-def012345678`,
      characteristics: Array.from({ length: n }, (_, c) => ({
        uuid: c % 3 === 0 ? `0000${(0xb000 + s * 16 + c).toString(16)}-1234-5678-9abc-def012345678` : 0x2a00 + ((s * 7 + c) % 0x60),
        properties: c % 4 === 0 ? ['read', 'notify'] : c % 4 === 1 ? ['read', 'write'] : ['read'],
        value: `s${s}c${c}`,
        ...(c % 5 === 0 ? { descriptors: [{ uuid: 0x2901, value: `Characteristic ${s}.${c}` }] } : {}),
      })),
    });
  }
  return out;
}

export const LARGE_PERIPHERAL: SimPeripheral = {
  name: 'Big DB', address: 'D4:1E:35:7A:00:30', addressType: 'random',
  advertising: { data: { flags: 0x06, name: 'Big DB' }, intervalMs: 20 },
  gatt: largeDatabase(30, 200),
};

export const SCENARIOS: Record<string, () => Scenario> = {
  demo: () => ({ name: 'demo', seed: 1, peripherals: [HEART_RATE_SENSOR, THERMOMETER, ...crowd(54)] }),
  empty: () => ({ name: 'empty', peripherals: [] }),
  large: () => ({ name: 'large', controller: { preferredIntervalMs: 7.5 }, peripherals: [LARGE_PERIPHERAL] }),
};

export function scenarioNamed(name: string): Scenario | undefined {
  return SCENARIOS[name]?.();
}
