// Each decoder against its published specification's own examples (numbers copied from the specs).
import { describe, expect, test } from 'vitest';
import { fromShort } from '../../../src/codec/uuid.js';
import { decodeAll } from '../../../src/apps/gateway/decoders/index.js';
import { bthome, decodeBthomeObjects, bthomeNonce, macBytes } from '../../../src/apps/gateway/decoders/bthome.js';
import { ccmEncrypt } from '../../../src/apps/gateway/decoders/ccm.js';
import { eddystone } from '../../../src/apps/gateway/decoders/eddystone.js';
import { ibeacon } from '../../../src/apps/gateway/decoders/ibeacon.js';
import { ruuvi } from '../../../src/apps/gateway/decoders/ruuvi.js';
import type { Decoded } from '../../../src/apps/gateway/decoders/types.js';

const h = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const objects = (hex: string): Decoded => {
  const out: Decoded = { format: 'bthome', values: {}, units: {} };
  decodeBthomeObjects(h(hex), out);
  return out;
};

describe('BTHome v2 (bthome.io/format)', () => {
  // Every "Example → Result" pair of the spec's tables (Sensor data, Binary sensor data, Events, Device, Misc).
  const SENSOR: Array<[string, string, number | string | boolean, string?]> = [
    ['518756', 'acceleration', 22.151, 'm/s²'],
    ['630057D0FF', 'acceleration', -3.123456, 'm/s²'],
    ['0161', 'battery', 97, '%'],
    ['6001', 'channel', 1],
    ['12E204', 'co2', 1250, 'ppm'],
    ['56E803', 'conductivity', 1000, 'µS/cm'],
    ['0960', 'count', 96],
    ['3D0960', 'count', 24585],
    ['3E2A2C0960', 'count', 1611213866],
    ['59EA', 'count', -22],
    ['5AEAEA', 'count', -5398],
    ['5BEA0234EA', 'count', -365690134],
    ['434E34', 'current', 13.39, 'A'],
    ['5D02EA', 'current', -5.63, 'A'],
    ['08CA06', 'dewpoint', 17.38, '°C'],
    ['5E9F8C', 'direction', 359.99, '°'],
    ['400C00', 'distance', 12, 'mm'],
    ['414E00', 'distance', 7.8, 'm'],
    ['424E3400', 'duration', 13.39, 's'],
    ['4d12138a14', 'energy', 344593.17, 'kWh'],
    ['0A138A14', 'energy', 1346.067, 'kWh'],
    ['4B138A14', 'gas', 1346.067, 'm³'],
    ['4C41018A01', 'gas', 25821.505, 'm³'],
    ['528756', 'gyroscope', 22.151, '°/s'],
    ['03BF13', 'humidity', 50.55, '%'],
    ['2E23', 'humidity', 35, '%'],
    ['05138A14', 'illuminance', 13460.67, 'lx'],
    ['6402', 'light_level', 2],
    ['065E1F', 'mass', 80.3, 'kg'],
    ['073E1D', 'mass', 74.86, 'lb'],
    ['14020C', 'moisture', 30.74, '%'],
    ['2F23', 'moisture', 35, '%'],
    ['0D120C', 'pm2_5', 3090],
    ['0E021C', 'pm10', 7170],
    ['0B021B00', 'power', 69.14, 'W'],
    ['5C02FBFFFF', 'power', -12.78, 'W'],
    ['5FA00F', 'precipitation', 400, 'mm'],
    ['04138A01', 'pressure', 1008.83, 'hPa'],
    ['540C48656C6C6F20576F726C6421', 'raw', '48656c6c6f20576f726c6421'],
    ['3F020C', 'rotation', 307.4, '°'],
    ['61AC0D', 'rotational_speed', 3500, 'rpm'],
    ['6503', 'settings_revision', 3],
    ['444E34', 'speed', 133.9, 'm/s'],
    ['624099DFFF', 'speed', -2.123456, 'm/s'],
    ['57EA', 'temperature', -22, '°C'],
    ['58EA', 'temperature', -7.7, '°C'],
    ['451101', 'temperature', 27.3, '°C'],
    ['02CA09', 'temperature', 25.06, '°C'],
    ['530C48656C6C6F20576F726C6421', 'text', 'Hello World!'],
    ['505d396164', 'timestamp', '2023-05-14T19:41:17.000Z'],
    ['133301', 'tvoc', 307],
    ['0C020C', 'voltage', 3.074, 'V'],
    ['4A020C', 'voltage', 307.4, 'V'],
    ['4E87562A01', 'volume', 19551.879, 'L'],
    ['478756', 'volume', 2215.1, 'L'],
    ['48DC87', 'volume', 34780, 'mL'],
    ['5587562A01', 'volume_storage', 19551.879, 'L'],
    ['49DC87', 'volume_flow_rate', 34.78, 'm³/h'],
    ['4632', 'uv_index', 5],
    ['4F87562A01', 'water', 19551.879, 'L'],
    // Binary sensor data
    ['1501', 'battery_low', true], ['1601', 'battery_charging', true], ['1700', 'carbon_monoxide', false],
    ['1801', 'cold', true], ['1900', 'connectivity', false], ['1A00', 'door', false], ['1B01', 'garage_door', true],
    ['1C01', 'gas_detected', true], ['0F01', 'generic_boolean', true], ['1D00', 'heat', false], ['1E01', 'light', true],
    ['1F01', 'lock', true], ['2001', 'moisture_detected', true], ['2100', 'motion', false], ['2201', 'moving', true],
    ['2301', 'occupancy', true], ['1100', 'opening', false], ['2400', 'plug', false], ['1001', 'power_on', true],
    ['2500', 'presence', false], ['2601', 'problem', true], ['2701', 'running', true], ['2800', 'safety', false],
    ['2901', 'smoke', true], ['2A00', 'sound', false], ['2B00', 'tamper', false], ['2C01', 'vibration', true], ['2D01', 'window', true],
    // Events
    ['3A00', 'button', 'none'], ['3A01', 'button', 'press'], ['3A02', 'button', 'double_press'], ['3A03', 'button', 'triple_press'],
    ['3A04', 'button', 'long_press'], ['3A05', 'button', 'long_double_press'], ['3A06', 'button', 'long_triple_press'],
    ['3A80', 'button', 'hold_press'], ['3C0103', 'dimmer', 'rotate_left'], ['3C020A', 'dimmer', 'rotate_right'],
    // Device, Misc
    ['F00100', 'device_type_id', 1], ['F100010204', 'firmware_version', '4.2.1.0'], ['F2000106', 'firmware_version', '6.1.0'],
    ['0009', 'packet_id', 9],
  ];
  test.each(SENSOR)('object %s → %s = %s', (hex, name, value, unit) => {
    const r = objects(hex);
    expect(r.error).toBeUndefined();
    expect(r.values[name]).toBe(value);
    if (unit) expect(r.units[name]).toBe(unit);
  });

  test('dimmer steps from the Events table: 3C0103 → rotate left 3 steps, 3C020A → rotate right 10 steps', () => {
    expect(objects('3C0103').values['dimmer_steps']).toBe(3);
    expect(objects('3C020A').values['dimmer_steps']).toBe(10);
  });

  test('the format page example: service data D2FC 40 02C409 03BF13 → 25.00 °C, 50.55 %', () => {
    const r = bthome.decode(h('4002C40903BF13'), { address: '00:00:00:00:00:00' })!;
    expect(r).toMatchObject({ format: 'bthome', values: { temperature: 25, humidity: 50.55 } });
    expect(r.encrypted).toBeUndefined();
  });

  test('repeated measurements get a postfix; parsing stops at an unknown id; truncation is reported', () => {
    expect(objects('02CA0902C409').values).toEqual({ temperature: 25.06, temperature_2: 25 });
    const stop = objects('02CA09FE0102C409');
    expect(stop.values).toEqual({ temperature: 25.06 });
    expect(stop.error).toMatch(/unknown object id 0xfe/);
    expect(objects('02CA').error).toMatch(/truncated/);
    expect(objects('530C4865').error).toMatch(/truncated/);
  });

  test('version other than 2 and an empty payload are errors, not exceptions', () => {
    expect(bthome.decode(h('2002C409'), { address: 'x' })!.error).toMatch(/version 1/);
    expect(bthome.decode(new Uint8Array(0), { address: 'x' })!.error).toBeDefined();
  });
});

describe('BTHome v2 encryption (bthome.io/encryption)', () => {
  const key = h('231d39c1d7cc1ab1aee224cd096db932');
  const address = '54:48:E6:8F:80:A5';

  test('the spec example: nonce 5448e68f80a5d2fc4133221100; 02CA09 03BF13 encrypts to e445f3c9962b, MIC 6c7c4519', () => {
    const nonce = bthomeNonce(macBytes(address)!, 0x41, h('33221100'));
    expect(Buffer.from(nonce).toString('hex')).toBe('5448e68f80a5d2fc4133221100');
    const { ciphertext, mic } = ccmEncrypt(key, nonce, h('02CA0903BF13'));
    expect(Buffer.from(ciphertext).toString('hex')).toBe('e445f3c9962b');
    expect(Buffer.from(mic).toString('hex')).toBe('6c7c4519');
  });

  test('the spec example service data d2fc41e445f3c9962b332211006c7c4519 decrypts to 25.06 °C, 50.55 %, counter 1122867', () => {
    const r = bthome.decode(h('41e445f3c9962b332211006c7c4519'), { address, key })!;
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ encrypted: true, counter: 1122867, values: { temperature: 25.06, humidity: 50.55 } });
  });

  test('the earlier edition of the example (counter bytes 00112233): 41a47266c95f730011223378237214', () => {
    const r = bthome.decode(h('41a47266c95f730011223378237214'), { address, key })!;
    expect(r.values).toEqual({ temperature: 25.06, humidity: 50.55 });
  });

  test('no key, wrong key, wrong address, tampered byte, short payload: flagged, no values, no throw', () => {
    const data = h('41e445f3c9962b332211006c7c4519');
    expect(bthome.decode(data, { address })!).toMatchObject({ encrypted: true, values: {}, error: expect.stringMatching(/no key/) });
    const wrong = Uint8Array.from(key); wrong[5] ^= 0x40;
    expect(bthome.decode(data, { address, key: wrong })!.error).toMatch(/MIC/);
    expect(bthome.decode(data, { address: '54:48:E6:8F:80:A6', key })!.error).toMatch(/MIC/);
    const tampered = Uint8Array.from(data); tampered[2] ^= 1;
    expect(bthome.decode(tampered, { address, key })!.error).toMatch(/MIC/);
    expect(bthome.decode(h('41e445'), { address, key })!.error).toMatch(/too short/);
  });
});

describe('iBeacon (Proximity Beacon Specification R1, Table 2-1)', () => {
  test('type 0x02, length 0x15, UUID, major, minor (big-endian), measured power', () => {
    // Company 0x004C is the map key; the data starts at the beacon type.
    const r = ibeacon.decode(h('0215 E2C56DB5DFFB48D2B060D0F5A71096E0 0001 0002 C5'), { address: 'x' })!;
    expect(r).toEqual({ format: 'ibeacon', values: { uuid: 'e2c56db5-dffb-48d2-b060-d0f5a71096e0', major: 1, minor: 2, measured_power: -59 }, units: { measured_power: 'dBm' } });
  });
  test('other Apple data is not an iBeacon; a short iBeacon is an error', () => {
    expect(ibeacon.decode(h('1005031c0d0f'), { address: 'x' })).toBeUndefined();
    expect(ibeacon.decode(h('0215E2C5'), { address: 'x' })!.error).toMatch(/23 expected/);
  });
});

describe('Eddystone (google/eddystone)', () => {
  test('UID with the spec elided-UUID namespace 8b0ca750095477cb3e77, TX power 0xEE = -18 dBm', () => {
    const r = eddystone.decode(h('00EE 8b0ca750095477cb3e77 0102030405060000'), { address: 'x' })!;
    expect(r.values).toEqual({ frame: 'uid', tx_power: -18, namespace: '8b0ca750095477cb3e77', instance: '010203040506' });
    // RFU bytes omitted (service data length 0x15 instead of 0x17) still decodes.
    expect(eddystone.decode(h('0012 8b0ca750095477cb3e77 010203040506'), { address: 'x' })!.values['tx_power']).toBe(18);
  });
  test('URL: the spec example https://goo.gl/Aq18zF and an expansion code', () => {
    const enc = (s: string) => [...new TextEncoder().encode(s)].map(b => b.toString(16).padStart(2, '0')).join('');
    expect(eddystone.decode(h('10EE03' + enc('goo.gl/Aq18zF')), { address: 'x' })!.values).toEqual({ frame: 'url', tx_power: -18, url: 'https://goo.gl/Aq18zF' });
    expect(eddystone.decode(h('101200' + enc('example') + '00' + enc('x')), { address: 'x' })!.values['url']).toBe('http://www.example.com/x');
    expect(eddystone.decode(h('101205'), { address: 'x' })!.error).toMatch(/scheme/);
    expect(eddystone.decode(h('10120300ff'), { address: 'x' })!.error).toMatch(/reserved URL byte/);
  });
  test('TLM: battery mV, 8.8 temperature, counts; 0x8000 = not supported; encrypted TLM flagged', () => {
    const r = eddystone.decode(h('20 00 0BB8 1880 00000064 00000E10'), { address: 'x' })!;
    expect(r.values).toEqual({ frame: 'tlm', battery_voltage: 3000, temperature: 24.5, advertising_count: 100, uptime: 360 });
    expect(eddystone.decode(h('20 00 0000 8000 00000001 00000001'), { address: 'x' })!.values).toMatchObject({ battery_voltage: null, temperature: null });
    expect(eddystone.decode(h('2001' + '00'.repeat(16)), { address: 'x' })!).toMatchObject({ encrypted: true });
    expect(eddystone.decode(h('2000'), { address: 'x' })!.error).toMatch(/too short/);
  });
});

describe('RuuviTag data format 5 (RAWv2 test vectors)', () => {
  test('valid data 0x0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F', () => {
    expect(ruuvi.decode(h('0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F'), { address: 'x' })!.values).toEqual({
      data_format: 5, temperature: 24.3, humidity: 53.49, pressure: 100044, acceleration_x: 0.004, acceleration_y: -0.004,
      acceleration_z: 1.036, battery_voltage: 2.977, tx_power: 4, movement_counter: 66, measurement_sequence: 205, mac: 'cbb8334c884f',
    });
  });
  test('maximum values 0x057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F', () => {
    expect(ruuvi.decode(h('057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F'), { address: 'x' })!.values).toEqual({
      data_format: 5, temperature: 163.835, humidity: 163.835, pressure: 115534, acceleration_x: 32.767, acceleration_y: 32.767,
      acceleration_z: 32.767, battery_voltage: 3.646, tx_power: 20, movement_counter: 254, measurement_sequence: 65534, mac: 'cbb8334c884f',
    });
  });
  test('minimum values 0x058001000000008001800180010000000000CBB8334C884F', () => {
    expect(ruuvi.decode(h('058001000000008001800180010000000000CBB8334C884F'), { address: 'x' })!.values).toEqual({
      data_format: 5, temperature: -163.835, humidity: 0, pressure: 50000, acceleration_x: -32.767, acceleration_y: -32.767,
      acceleration_z: -32.767, battery_voltage: 1.6, tx_power: -40, movement_counter: 0, measurement_sequence: 0, mac: 'cbb8334c884f',
    });
  });
  test('invalid values 0x058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF: every field not available', () => {
    const v = ruuvi.decode(h('058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF'), { address: 'x' })!.values;
    expect(Object.entries(v).filter(([k]) => k !== 'data_format').every(([, x]) => x === null)).toBe(true);
  });
  test('other formats are not ours; a short format 5 is an error', () => {
    expect(ruuvi.decode(h('03291A1ECE1EFC18F94202CA0B53'), { address: 'x' })).toBeUndefined();
    expect(ruuvi.decode(h('0512FC'), { address: 'x' })!.error).toMatch(/24 bytes/);
  });
});

describe('decodeAll', () => {
  test('picks decoders by service data UUID and company id; never throws on any bytes', () => {
    const ad = {
      address: '54:48:E6:8F:80:A5',
      serviceData: new Map([[fromShort(0xfcd2), h('4002C40903BF13')]]),
      manufacturerData: new Map([[0x0499, h('0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F')]]),
    };
    expect(decodeAll(ad).map(d => d.format)).toEqual(['bthome', 'ruuvi']);
    for (let n = 0; n < 2000; n++) {
      const len = n % 40;
      const bytes = Uint8Array.from({ length: len }, (_, i) => (n * 31 + i * 17) & 0xff);
      const any = { address: ad.address, serviceData: new Map([[fromShort(0xfcd2), bytes], [fromShort(0xfeaa), bytes]]), manufacturerData: new Map([[0x004c, bytes], [0x0499, bytes]]) };
      expect(() => decodeAll(any, () => h('231d39c1d7cc1ab1aee224cd096db932'))).not.toThrow();
    }
  });
});
