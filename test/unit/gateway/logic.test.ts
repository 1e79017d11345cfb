// The gateway's pure logic: outgoing buffer bounds, per-device rate limits, configuration sources and
// validation, command parsing (hostile input), the merged multi-gateway view, Home Assistant discovery.
import { describe, expect, test, vi } from 'vitest';
import { BoundedQueue } from '../../../src/apps/gateway/buffer.js';
import { parseCommand } from '../../../src/apps/gateway/commands.js';
import { configFromEnv, resolveConfig, topicsOf } from '../../../src/apps/gateway/config.js';
import { GatewayError } from '../../../src/apps/gateway/errors.js';
import { discoveryMessages } from '../../../src/apps/gateway/homeassistant.js';
import { GatewayMerger } from '../../../src/apps/gateway/merge.js';
import { newRateState, RateLimiter } from '../../../src/apps/gateway/rate.js';
import { jsonLogger } from '../../../src/apps/gateway/log.js';
import { connectionError, MAX_INFLIGHT, MqttLink, REFILL_AT, type MqttModule } from '../../../src/apps/gateway/mqtt.js';
import { EventEmitter } from 'node:events';
import { Gateway } from '../../../src/apps/gateway/gateway.js';
import { FakeClock } from '../../../src/clock.js';
import type { Advertisement } from '../../../src/index.js';

const item = (n: number, size = 10) => ({ topic: `t/${n}`, payload: 'x'.repeat(size), qos: 1 as const, retain: false });

describe('BoundedQueue', () => {
  test('refuses bounds below 1 with a typed configuration error (EGW_CONFIG), not a bare RangeError', () => {
    for (const [m, b] of [[0, 10], [10, 0], [Number.NaN, 10]] as const) {
      expect(() => new BoundedQueue(m, b)).toThrow(expect.objectContaining({ code: 'EGW_CONFIG', message: expect.stringMatching(/buffer\.maxMessages/) }));
    }
  });
  test('drops the oldest beyond maxMessages and counts them', () => {
    const q = new BoundedQueue<ReturnType<typeof item>>(3, 1_000_000);
    for (let i = 1; i <= 5; i++) q.push(item(i));
    expect(q.length).toBe(3);
    expect(q.dropped).toBe(2);
    expect([q.shift()!.topic, q.shift()!.topic, q.shift()!.topic]).toEqual(['t/3', 't/4', 't/5']);
    expect(q.shift()).toBeUndefined();
    expect(q.bytes).toBe(0);
  });
  test('drops the oldest beyond maxBytes; an entry larger than the bound is dropped itself', () => {
    const q = new BoundedQueue<ReturnType<typeof item>>(100, 25);
    q.push(item(1)); q.push(item(2)); q.push(item(3));
    expect(q.length).toBe(2);
    expect(q.bytes).toBe(20);
    expect(q.peek()!.topic).toBe('t/2');
    q.push(item(4, 26));
    expect(q.length).toBe(2);
    expect(q.dropped).toBe(2);
  });
  test('a million pushes through a small queue keep memory bounded (compaction)', () => {
    const q = new BoundedQueue<ReturnType<typeof item>>(1000, 1 << 30);
    for (let i = 0; i < 1_000_000; i++) { q.push(item(i, 1)); if (i % 3 === 0) q.shift(); }
    expect(q.length).toBe(999);
    expect(q.peek()!.topic).toBe('t/999001');
    expect((q as unknown as { items: unknown[] }).items.length).toBeLessThan(5000);
  });
});

describe('RateLimiter', () => {
  test('first report publishes; unchanged reports wait for maxInterval; changes wait for minInterval and are held', () => {
    const r = new RateLimiter({ minIntervalMs: 1000, maxIntervalMs: 10_000 });
    const s = newRateState();
    expect(r.offer(s, true, 0)).toBe('publish');
    r.published(s, 0);
    expect(r.offer(s, false, 500)).toBe('skip');
    expect(r.offer(s, true, 600)).toBe('hold');
    expect(r.heldCount).toBe(1);
    expect(r.due(999)).toEqual([]);
    expect(r.due(1000)).toEqual([s]);
    // An unchanged report after the window publishes the held change.
    expect(r.offer(s, false, 1001)).toBe('publish');
    r.published(s, 1001);
    expect(r.heldCount).toBe(0);
    expect(r.offer(s, false, 11_000)).toBe('skip');
    expect(r.offer(s, false, 11_001)).toBe('publish');
  });
  test('forget() removes a held state', () => {
    const r = new RateLimiter({ minIntervalMs: 1000, maxIntervalMs: 10_000 });
    const s = newRateState();
    r.published(s, 0);
    r.offer(s, true, 1);
    r.forget(s);
    expect(r.due(5000)).toEqual([]);
  });
});

describe('configuration', () => {
  test('defaults < file < environment < flags', () => {
    const c = resolveConfig({
      file: { id: 'from-file', mqtt: { url: 'mqtt://file:1883', qos: 0 }, publish: { minIntervalMs: 5 }, keys: { 'aa:bb:cc:dd:ee:ff': '231D39C1D7CC1AB1AEE224CD096DB932' } },
      env: { BLEWIRE_MQTT_URL: 'mqtt://env:1883', BLEWIRE_GATEWAY_ID: 'from-env', BLEWIRE_GATEWAY_ACTIVE: 'true' },
      flags: { id: 'from-flag' },
    });
    expect(c.id).toBe('from-flag');
    expect(c.mqtt.url).toBe('mqtt://env:1883');
    expect(c.mqtt.qos).toBe(0);
    expect(c.mqtt.protocolVersion).toBe(5);
    expect(c.publish).toEqual({ minIntervalMs: 5, maxIntervalMs: 60_000, retain: false });
    expect(c.scan.active).toBe(true);
    expect(c.keys).toEqual({ 'AA:BB:CC:DD:EE:FF': '231d39c1d7cc1ab1aee224cd096db932' });
    expect(c.buffer).toEqual({ maxMessages: 10_000, maxBytes: 16 * 1024 * 1024 });
    expect(topicsOf(c).device('AA:BB:CC:DD:EE:FF')).toBe('blewire/from-flag/devices/AA:BB:CC:DD:EE:FF');
  });
  test('credentials from a file or the environment; TLS files read; no flag needed', () => {
    const files: Record<string, string> = { '/run/secrets/pw': 's3cret\n', '/etc/ca.pem': 'CA', '/etc/c.pem': 'CERT', '/etc/k.pem': 'KEY' };
    const read = (p: string) => { if (!(p in files)) throw new Error('ENOENT'); return files[p]!; };
    const c = resolveConfig({ env: { BLEWIRE_MQTT_URL: 'mqtts://b:8883', BLEWIRE_MQTT_USERNAME: 'gw', BLEWIRE_MQTT_PASSWORD_FILE: '/run/secrets/pw',
      BLEWIRE_MQTT_CA: '/etc/ca.pem', BLEWIRE_MQTT_CERT: '/etc/c.pem', BLEWIRE_MQTT_KEY: '/etc/k.pem' }, readText: read, defaultId: 'host' });
    expect(c.mqtt.username).toBe('gw');
    expect(c.mqtt.password).toBe('s3cret');
    expect(c.tls).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY' });
    expect(resolveConfig({ env: { BLEWIRE_MQTT_URL: 'mqtt://h', BLEWIRE_MQTT_PASSWORD: 'p' }, defaultId: 'h' }).mqtt.password).toBe('p');
    expect(() => resolveConfig({ env: { BLEWIRE_MQTT_URL: 'mqtt://h', BLEWIRE_MQTT_PASSWORD_FILE: '/nope' }, readText: read, defaultId: 'h' })).toThrow(/password file/);
    expect(() => resolveConfig({ env: { BLEWIRE_MQTT_URL: 'mqtts://h', BLEWIRE_MQTT_CERT: '/etc/c.pem' }, readText: read, defaultId: 'h' })).toThrow(/both mqtt.cert and mqtt.key/);
  });
  test('an encrypted client key needs its passphrase (file or environment, never a flag); none or a wrong one is EGW_CONFIG naming the setting, never the passphrase', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const pass = 'correct horse battery';
    const { privateKey: pkcs8 } = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: pass } });
    const { privateKey: sec1 } = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'sec1', format: 'pem', cipher: 'aes-128-cbc', passphrase: pass } });
    const { privateKey: plain } = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    expect(sec1).toMatch(/Proc-Type: 4,ENCRYPTED/);
    for (const key of [pkcs8, sec1]) {
      const files: Record<string, string> = { '/k.pem': key, '/c.pem': 'CERT', '/p': pass + '\n', '/bad': 'nope\n' };
      const cfg = (env: Record<string, string>) => resolveConfig({ env: { BLEWIRE_MQTT_URL: 'mqtts://b:8883', BLEWIRE_MQTT_CERT: '/c.pem', BLEWIRE_MQTT_KEY: '/k.pem', ...env },
        readText: f => { if (!(f in files)) throw new Error('ENOENT'); return files[f]!; } });
      const fromFile = cfg({ BLEWIRE_MQTT_KEY_PASSPHRASE_FILE: '/p' });
      expect(fromFile.tls).toMatchObject({ key, passphrase: pass });
      expect(JSON.stringify(fromFile.mqtt)).not.toContain(pass);
      expect(cfg({ BLEWIRE_MQTT_KEY_PASSPHRASE: pass }).tls.passphrase).toBe(pass);
      expect(JSON.stringify(cfg({ BLEWIRE_MQTT_KEY_PASSPHRASE: pass }).mqtt)).not.toContain(pass);
      const refused = (env: Record<string, string>) => { try { cfg(env); } catch (e) { return e as GatewayError; } throw new Error('accepted'); };
      const none = refused({});
      expect(none.code).toBe('EGW_CONFIG');
      expect(none.message).toMatch(/mqtt\.key file \/k\.pem is encrypted: .*BLEWIRE_MQTT_KEY_PASSPHRASE_FILE/);
      const bad = refused({ BLEWIRE_MQTT_KEY_PASSPHRASE_FILE: '/bad' });
      expect(bad.code).toBe('EGW_CONFIG');
      expect(bad.message).toMatch(/cannot be decrypted with the passphrase from mqtt\.keyPassphraseFile \/bad/);
      expect(bad.message).not.toContain('nope');
      expect(refused({ BLEWIRE_MQTT_KEY_PASSPHRASE: 'wrong' }).message).toMatch(/from BLEWIRE_MQTT_KEY_PASSPHRASE \(/);
      expect(refused({ BLEWIRE_MQTT_KEY_PASSPHRASE_FILE: '/missing' }).message).toMatch(/cannot read the key passphrase file \/missing/);
    }
    // A plain key needs none (a passphrase given anyway is harmless).
    const files: Record<string, string> = { '/k.pem': plain, '/c.pem': 'CERT' };
    expect(resolveConfig({ env: { BLEWIRE_MQTT_URL: 'mqtts://b', BLEWIRE_MQTT_CERT: '/c.pem', BLEWIRE_MQTT_KEY: '/k.pem' }, readText: f => files[f]! }).tls.passphrase).toBeUndefined();
  });

  test('the default id is the host name made topic-safe', () => {
    expect(resolveConfig({ env: { BLEWIRE_MQTT_URL: 'mqtt://h' }, defaultId: 'pi 4/kitchen#1' }).id).toBe('pi-4-kitchen-1');
  });
  test.each([
    [{ file: [] }, /JSON object/],
    [{ env: {} }, /no broker/],
    [{ env: { BLEWIRE_MQTT_URL: 'not a url' } }, /not a URL/],
    [{ env: { BLEWIRE_MQTT_URL: 'http://h' } }, /scheme/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h' }, flags: { id: 'a/b' } }, /one MQTT topic level/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h', BLEWIRE_MQTT_PROTOCOL_VERSION: '3' } }, /protocolVersion/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h', BLEWIRE_GATEWAY_ACTIVE: 'maybe' } }, /boolean/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h', BLEWIRE_GATEWAY_MIN_INTERVAL_MS: 'soon' } }, /not a number/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h' }, file: { maxDevices: 0 } }, /maxDevices/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h' }, file: { buffer: { maxMessages: -1 } } }, /buffer.maxMessages/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h' }, file: { keys: { 'AA:BB': '00' } } }, /device address/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h' }, file: { keys: { 'AA:BB:CC:DD:EE:FF': 'abc' } } }, /32 hex digits/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h' }, file: { logLevel: 'loud' } }, /logLevel/],
    [{ env: { BLEWIRE_MQTT_URL: 'mqtt://h' }, file: { topicPrefix: 'a/+/b' } }, /wildcards/],
  ] as const)('invalid config %# is a typed EGW_CONFIG error', (src, msg) => {
    let err: unknown;
    try { resolveConfig({ defaultId: 'h', ...src } as Parameters<typeof resolveConfig>[0]); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('EGW_CONFIG');
    expect((err as Error).message).toMatch(msg);
  });
  test('configFromEnv reads only BLEWIRE_* names', () => {
    expect(configFromEnv({ HOME: '/root', BLEWIRE_TRANSPORT: 'hci1' }).transport).toBe('hci1');
  });
});

describe('command parsing (hostile input)', () => {
  const code = (text: string): string => {
    try { parseCommand(text); return 'ok'; } catch (e) { return (e as GatewayError).code; }
  };
  test.each([
    ['{', 'EGW_BAD_JSON'], ['', 'EGW_BAD_JSON'], ['\u0000\u0001', 'EGW_BAD_JSON'],
    ['[]', 'EGW_BAD_COMMAND'], ['null', 'EGW_BAD_COMMAND'], ['42', 'EGW_BAD_COMMAND'], ['"read"', 'EGW_BAD_COMMAND'],
    ['{}', 'EGW_BAD_COMMAND'], ['{"op":7}', 'EGW_BAD_COMMAND'], ['{"op":"explode","address":"AA:BB:CC:DD:EE:FF"}', 'EGW_UNKNOWN_OP'],
    ['{"op":"read","address":"nope"}', 'EGW_BAD_COMMAND'], ['{"op":"read","address":["AA"]}', 'EGW_BAD_COMMAND'],
    ['{"op":"read","address":"AA:BB:CC:DD:EE:FF"}', 'EGW_BAD_COMMAND'],
    ['{"op":"read","address":"AA:BB:CC:DD:EE:FF","service":"180f","characteristic":{"x":1}}', 'EGW_BAD_COMMAND'],
    ['{"op":"read","address":"AA:BB:CC:DD:EE:FF","service":"no_such_thing","characteristic":"2a19"}', 'EGW_BAD_COMMAND'],
    ['{"op":"read","address":"AA:BB:CC:DD:EE:FF","service":"180f","characteristic":"2a19","timeout":-1}', 'EGW_BAD_COMMAND'],
    ['{"op":"read","address":"AA:BB:CC:DD:EE:FF","service":"180f","characteristic":"2a19","timeout":"5"}', 'EGW_BAD_COMMAND'],
    ['{"op":"write","address":"AA:BB:CC:DD:EE:FF","service":"180f","characteristic":"2a19","value":"xyz"}', 'EGW_BAD_COMMAND'],
    ['{"op":"write","address":"AA:BB:CC:DD:EE:FF","service":"180f","characteristic":"2a19","value":"0"}', 'EGW_BAD_COMMAND'],
    [`{"op":"write","address":"AA:BB:CC:DD:EE:FF","service":"180f","characteristic":"2a19","value":"${'00'.repeat(513)}"}`, 'EGW_BAD_COMMAND'],
    ['{"op":"write","address":"AA:BB:CC:DD:EE:FF","service":"180f","characteristic":"2a19","value":"01","withResponse":"yes"}', 'EGW_BAD_COMMAND'],
    ['{"op":"connect","address":"AA:BB:CC:DD:EE:FF","addressType":"weird"}', 'EGW_BAD_COMMAND'],
    ['{"op":"connect","address":"AA:BB:CC:DD:EE:FF","responseTopic":"a/#"}', 'EGW_BAD_COMMAND'],
    ['{"op":"connect","address":"AA:BB:CC:DD:EE:FF","id":{"x":1}}', 'EGW_BAD_COMMAND'],
    ['{"op":"connect","address":"aa:bb:cc:dd:ee:ff"}', 'ok'],
    ['{"op":"write","address":"AA:BB:CC:DD:EE:FF","service":"battery_service","characteristic":"battery_level","value":"0102","withResponse":false}', 'ok'],
  ])('%s → %s', (text, expected) => {
    expect(code(text)).toBe(expected);
  });
  test('a valid command is normalised', () => {
    expect(parseCommand('{"op":"write","address":"aa:bb:cc:dd:ee:ff","service":"180f","characteristic":"2a19","value":"0A0b","id":7,"timeout":500}'))
      .toEqual({ op: 'write', address: 'AA:BB:CC:DD:EE:FF', service: '180f', characteristic: '2a19', value: Uint8Array.from([10, 11]), id: 7, timeout: 500 });
  });
});

describe('GatewayMerger (room presence)', () => {
  const doc = (address: string, rssi: number, lastSeen = '2026-01-01T00:00:00.000Z') => JSON.stringify({ address, rssi, lastSeen, name: 'S' });
  const now = Date.parse('2026-01-01T00:00:10.000Z');
  test('nearest is the loudest fresh online gateway', () => {
    const m = new GatewayMerger('blewire', 60_000);
    expect(m.update('blewire/kitchen/devices/AA', doc('AA', -80))).toBe('AA');
    m.update('blewire/office/devices/AA', doc('AA', -45));
    m.update('blewire/hall/devices/AA', doc('AA', -60));
    expect(m.view('AA', now)).toMatchObject({ address: 'AA', name: 'S', nearest: 'office', gateways: { kitchen: { rssi: -80 }, office: { rssi: -45 }, hall: { rssi: -60 } } });
    m.update('blewire/office/status', 'offline');
    expect(m.view('AA', now)!.nearest).toBe('hall');
    m.update('blewire/office/status', 'online');
    expect(m.view('AA', now)!.nearest).toBe('office');
    expect(m.view('AA', now + 120_000)!.nearest).toBeUndefined();
  });
  test('a bonded device is one device under its identity address, whichever RPA each gateway hears', () => {
    const m = new GatewayMerger('blewire', 60_000);
    const ID = 'D4:1E:35:7A:20:01';
    const idDoc = (rpa: string, rssi: number) => JSON.stringify({ address: rpa, identity: { address: ID, addressType: 'random' }, rssi, lastSeen: '2026-01-01T00:00:00.000Z' });
    expect(m.update(`blewire/kitchen/devices/${ID}`, idDoc('4A:11:22:33:44:55', -70))).toBe(ID);
    expect(m.update(`blewire/office/devices/${ID}`, idDoc('5B:66:77:88:99:AA', -40))).toBe(ID);
    expect(m.view(ID, now)).toMatchObject({ address: ID, nearest: 'office', gateways: { kitchen: { rssi: -70 }, office: { rssi: -40 } } });
    expect(m.size).toBe(1);
    // An identity that is not an address is ignored (the address on the air keys it).
    expect(m.update('blewire/x/devices/AA', JSON.stringify({ address: 'AA', identity: { address: 7 }, rssi: -1 }))).toBe('AA');
  });
  test('ignores other topics and garbage; bounded', () => {
    const m = new GatewayMerger('blewire', 60_000, 2);
    expect(m.update('other/x/devices/AA', doc('AA', -1))).toBeUndefined();
    expect(m.update('blewire/x/devices/AA', '{bad')).toBeUndefined();
    expect(m.update('blewire/x/devices/AA', '{"address":1}')).toBeUndefined();
    expect(m.update('blewire/x/devices/AA/180f/2a19', doc('AA', -1))).toBeUndefined();
    m.update('blewire/x/devices/A', doc('A', -1)); m.update('blewire/x/devices/B', doc('B', -1)); m.update('blewire/x/devices/C', doc('C', -1));
    expect(m.size).toBe(2);
    expect(m.view('A')).toBeUndefined();
  });
});

describe('Home Assistant discovery', () => {
  test('one retained config per known sensor value, reading the device document', () => {
    const msgs = discoveryMessages({ discoveryPrefix: 'homeassistant', gateway: 'gw1', statusTopic: 'blewire/gw1/status',
      stateTopic: 'blewire/gw1/devices/54:48:E6:8F:80:A5', address: '54:48:E6:8F:80:A5', name: 'DIY-sensor' },
    { format: 'bthome', values: { temperature: 25.06, humidity: 50.55, door: true, packet_id: 3 }, units: { temperature: '°C', humidity: '%' } });
    expect(msgs.map(m => m.topic)).toEqual([
      'homeassistant/sensor/blewire_gw1_5448e68f80a5_bthome_temperature/config',
      'homeassistant/sensor/blewire_gw1_5448e68f80a5_bthome_humidity/config',
      'homeassistant/binary_sensor/blewire_gw1_5448e68f80a5_bthome_door/config',
    ]);
    const t = JSON.parse(msgs[0]!.payload);
    expect(t).toMatchObject({ device_class: 'temperature', unit_of_measurement: '°C', state_topic: 'blewire/gw1/devices/54:48:E6:8F:80:A5',
      value_template: '{{ value_json.decoded.bthome.temperature }}', availability_topic: 'blewire/gw1/status', unique_id: 'blewire_5448e68f80a5_bthome_temperature' });
    expect(JSON.parse(msgs[2]!.payload)).toMatchObject({ device_class: 'door', payload_on: 'ON' });
  });
});

describe('structured logs', () => {
  test('one JSON object per line, errors as name/code/message, level filter', () => {
    const lines: string[] = [];
    const log = jsonLogger('info', l => lines.push(l), () => 0, { gateway: 'g' });
    log.debug('hidden');
    log.warn('w', { error: new GatewayError('EGW_BUSY', 'busy'), n: 1n });
    expect(lines.map(l => JSON.parse(l))).toEqual([{ time: '1970-01-01T00:00:00.000Z', level: 'warn', msg: 'w', gateway: 'g', error: { name: 'GatewayError', code: 'EGW_BUSY', message: 'busy' }, n: '1' }]);
  });
});

describe('summary figures on an injected clock', () => {
  // The rates are counts over the injected clock's interval, so this holds at any machine load.
  test('reports/s is the reports counted since the last summary over the clock time elapsed; devices and uptime counted', () => {
    const clock = new FakeClock();
    const g = new Gateway(resolveConfig({ env: {}, flags: { id: 'gwS', mqtt: { url: 'mqtt://127.0.0.1:1' }, transport: 'sim', commands: { enabled: false } } }),
      { clock, now: () => Date.UTC(2026, 11, 5), logger: jsonLogger('error', () => undefined) });
    const ad = (i: number, payload: number) => ({
      address: `C4:7C:8D:00:00:0${i}`, addressType: 'public', identity: undefined, data: Uint8Array.of(2, 1, 6, 2, 0xff, payload),
      scanResponse: undefined, rssi: -50, connectable: true, name: undefined, txPower: undefined, serviceUuids: [],
      serviceData: new Map(), manufacturerData: new Map(),
    }) as unknown as Advertisement;
    for (let n = 0; n < 30; n++) g.ingest(ad(n % 3, n));
    clock.advance(2000);
    expect(g.summary()).toMatchObject({ gateway: 'gwS', devices: 3, reports: 30, reportsPerSecond: 15, uptimeS: 2, adapter: 'closed', dropped: 0 });
    expect(g.stats).toMatchObject({ devices: 3, reports: 30 });
    for (let n = 0; n < 8; n++) g.ingest(ad(3 + (n % 4), n));
    clock.advance(2000);
    expect(g.summary()).toMatchObject({ devices: 7, reports: 38, reportsPerSecond: 10, uptimeS: 4 });
  });
});

describe('device records and the rate limits', () => {
  test('a change inside the window is held and the newest report goes out at the tick; an unchanged report keeps nothing', () => {
    const clock = new FakeClock();
    const g = new Gateway(resolveConfig({ env: {}, flags: { id: 'gwR', mqtt: { url: 'mqtt://127.0.0.1:1' }, transport: 'sim', commands: { enabled: false },
      publish: { minIntervalMs: 1000, maxIntervalMs: 60_000 } } }), { clock, now: () => Date.UTC(2026, 11, 5), logger: jsonLogger('error', () => undefined) });
    const out: { topic: string; doc: Record<string, unknown> }[] = [];
    // Only the publication sink is replaced (the broker side has its own tests against mosquitto).
    (g as unknown as { mqtt: unknown }).mqtt = { publish: (topic: string, payload: string) => out.push({ topic, doc: JSON.parse(payload) as Record<string, unknown> }) };
    const ad = (payload: number, rssi: number) => ({
      address: 'C4:7C:8D:00:00:01', addressType: 'public', identity: undefined, data: Uint8Array.of(2, 1, 6, 4, 0xff, 0x34, 0x12, payload),
      scanResponse: undefined, rssi, connectable: true, name: undefined, txPower: undefined, serviceUuids: [],
      serviceData: new Map(), manufacturerData: new Map([[0x1234, Uint8Array.of(payload)]]),
    }) as unknown as Advertisement;
    const tick = () => (g as unknown as { tick(): void }).tick();
    g.ingest(ad(1, -40));
    expect(out.map(o => o.doc['manufacturerData'])).toEqual([{ '0x1234': '01' }]);
    clock.advance(100);
    g.ingest(ad(2, -41)); // changed, inside the window: held
    g.ingest(ad(3, -42)); // changed again: still one held change, now this report
    g.ingest(ad(3, -43)); // same data as the held one: the newest report replaces it
    tick();
    expect(out).toHaveLength(1);
    clock.advance(900);
    tick();
    expect(out).toHaveLength(2);
    expect(out[1]!.doc).toMatchObject({ manufacturerData: { '0x1234': '03' }, rssi: -43, reports: 4 });
    tick();
    expect(out).toHaveLength(2);
    clock.advance(5000);
    g.ingest(ad(3, -44)); // unchanged, before maxInterval: skipped, and the record keeps no report
    tick();
    expect(out).toHaveLength(2);
    expect((g as unknown as { devices: Map<string, { ad?: unknown; pending: boolean }> }).devices.get('C4:7C:8D:00:00:01')).toMatchObject({ ad: undefined, pending: false });
    clock.advance(60_000);
    g.ingest(ad(3, -45)); // unchanged after maxInterval: the heartbeat
    expect(out).toHaveLength(3);
    expect(out[2]!.doc).toMatchObject({ rssi: -45, reports: 6 });
  });
});

describe('device records stay small (memory bound of 10 000 devices)', () => {
  const gw = (registryCapacity?: number) => {
    const clock = new FakeClock();
    const g = new Gateway(resolveConfig({ env: {}, flags: { id: 'gwF', mqtt: { url: 'mqtt://127.0.0.1:1' }, transport: 'sim', commands: { enabled: false },
      ...(registryCapacity !== undefined ? { scan: { registryCapacity } } : {}), publish: { minIntervalMs: 0, maxIntervalMs: 60_000 } } }),
    { clock, now: () => Date.UTC(2026, 11, 6), logger: jsonLogger('error', () => undefined) });
    const out: Record<string, unknown>[] = [];
    (g as unknown as { mqtt: unknown }).mqtt = { publish: (_t: string, payload: string) => out.push(JSON.parse(payload) as Record<string, unknown>) };
    return { g, out, clock };
  };
  const ad = (data: Uint8Array, scanResponse?: Uint8Array) => ({
    address: 'C4:7C:8D:00:00:02', addressType: 'public', identity: undefined, data, scanResponse, rssi: -50, connectable: true,
    name: undefined, txPower: undefined, serviceUuids: [], serviceData: new Map(), manufacturerData: new Map(),
  }) as unknown as Advertisement;

  test('a change of one octet, of the scan response, or of where the octets split between the two is a change; equal octets in another array are not', () => {
    const { g, out, clock } = gw();
    const feed = (data: number[], scan?: number[]) => { clock.advance(10); g.ingest(ad(Uint8Array.from(data), scan && Uint8Array.from(scan))); return out.length; };
    expect(feed([2, 1, 6, 3, 0xff, 0x34, 0x12])).toBe(1);
    expect(feed([2, 1, 6, 3, 0xff, 0x34, 0x12])).toBe(1); // a fresh array with the same octets: unchanged
    expect(feed([2, 1, 6, 3, 0xff, 0x34, 0x13])).toBe(2); // last octet
    expect(feed([3, 1, 6, 3, 0xff, 0x34, 0x13])).toBe(3); // first octet
    expect(feed([3, 1, 6, 3, 0xff, 0x34, 0x13], [])).toBe(3); // an empty scan response is none
    expect(feed([3, 1, 6, 3, 0xff, 0x34, 0x13], [2, 0x0a, 0])).toBe(4); // scan response appears
    expect(feed([3, 1, 6, 3, 0xff, 0x34, 0x13], [2, 0x0a, 4])).toBe(5); // scan response octet
    expect(feed([3, 1, 6, 3, 0xff, 0x34], [0x13, 2, 0x0a, 4])).toBe(6); // same octets, split differently
    // Every single-octet change of a 31-octet payload is seen (the fingerprint is not a sum).
    const base = Array.from({ length: 31 }, (_, i) => i * 7 + 1);
    feed(base);
    let n = out.length;
    for (let i = 0; i < 31; i++) {
      const d = [...base];
      d[i] = d[i]! ^ 0x80;
      expect(feed(d)).toBe(++n);
      expect(feed(base)).toBe(++n);
    }
  });

  test('a record holds numbers and strings only once published: no copy or view of the AD', () => {
    const { g } = gw();
    g.ingest(ad(Uint8Array.of(2, 1, 6, 3, 0xff, 0x34, 0x12)));
    const rec = (g as unknown as { devices: Map<string, Record<string, unknown>> }).devices.get('C4:7C:8D:00:00:02')!;
    for (const [k, v] of Object.entries(rec)) expect(typeof v === 'object' && v !== null ? k : 'ok').toBe('ok');
  });

  test("the adapter's scanner registry is opened with scan.registryCapacity (default 1024), not the Adapter's 4096", async () => {
    const { Adapter } = await import('../../../src/index.js');
    for (const [cap, want] of [[undefined, 1024], [64, 64]] as const) {
      const seen: unknown[] = [];
      const orig = Adapter.open.bind(Adapter);
      const spy = vi.spyOn(Adapter, 'open').mockImplementation(async o => { seen.push(o!.registryCapacity); return orig(o!); });
      try {
        const g = new Gateway(resolveConfig({ env: {}, flags: { id: 'gwG', mqtt: { url: 'mqtt://127.0.0.1:1' }, transport: 'sim', commands: { enabled: false },
          ...(cap !== undefined ? { scan: { registryCapacity: cap } } : {}) } }), { logger: jsonLogger('error', () => undefined) });
        await g.start();
        for (let i = 0; i < 200 && !g.stats.adapterOpen; i++) await new Promise(r => setTimeout(r, 10));
        expect(g.stats.adapterOpen).toBe(true);
        const adapter = (g as unknown as { adapter: { scanner: { registry: { capacity: number } } } }).adapter;
        expect(adapter.scanner.registry.capacity).toBe(want);
        await g.stop();
      } finally {
        spy.mockRestore();
      }
      expect(seen).toEqual([want]);
    }
    expect(() => resolveConfig({ env: {}, flags: { id: 'x', mqtt: { url: 'mqtt://h' }, scan: { registryCapacity: 2.5 } } })).toThrow(/registryCapacity/);
    expect(() => resolveConfig({ env: {}, flags: { id: 'x', mqtt: { url: 'mqtt://h' }, scan: { registryCapacity: 4 } } })).toThrow(/registryCapacity/);
  });
});

describe('connection errors that waiting will not cure (typed, with what to change)', () => {
  const err = (message: string, code: string | number) => Object.assign(new Error(message), { code });
  const url = 'mqtts://gw:s3cret@broker.example:8883';
  test('TLS verification, expiry, host name, handshake alerts and a plain port are EGW_TLS naming the setting; the password never shows', () => {
    const rows: Array<[string | number, RegExp]> = [
      ['SELF_SIGNED_CERT_IN_CHAIN', /not trusted .*mqtt\.ca \(BLEWIRE_MQTT_CA\)/],
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /not trusted .*mqtt\.ca/],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', /not trusted/],
      ['CERT_HAS_EXPIRED', /validity period .*clock/],
      ['ERR_TLS_CERT_ALTNAME_INVALID', /does not name the host .*subjectAltName/],
      ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', /refused the TLS handshake .*mqtt\.cert and mqtt\.key/],
      ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', /refused the TLS handshake/],
      ['ERR_SSL_WRONG_VERSION_NUMBER', /does not speak TLS .*mqtt:\/\//],
    ];
    for (const [code, says] of rows) {
      const e = connectionError(err('x', code), url);
      expect(e, String(code)).toBeInstanceOf(GatewayError);
      expect(e!.code).toBe('EGW_TLS');
      expect(e!.message).toMatch(says);
      expect(e!.message).toContain(String(code));
      expect(e!.message).not.toContain('s3cret');
      expect((e!.cause as Error).message).toBe('x');
    }
  });
  test('a CONNACK refusal is EGW_BROKER_REFUSED (credentials named for 0x86 / 0x87 and 3.1.1 codes 4 / 5); broker loss is not typed here', () => {
    const bad = connectionError(err('Connection refused: Bad User Name or Password', 0x86), url)!;
    expect(bad.code).toBe('EGW_BROKER_REFUSED');
    expect(bad.message).toMatch(/BLEWIRE_MQTT_USERNAME/);
    expect(connectionError(err('Connection refused: Not authorized', 5), url)!.message).toMatch(/password/);
    expect(connectionError(err('Connection refused: Server unavailable', 0x88), url)!.message).toMatch(/broker's log/);
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']) expect(connectionError(err('x', code), url)).toBeUndefined();
    expect(connectionError('not an error', url)).toBeUndefined();
    expect(connectionError(new Error('no code'), url)).toBeUndefined();
  });
});

describe('MqttLink memory bound (issue 15 queue audit)', () => {
  test(`a broker that never acknowledges holds at most MAX_INFLIGHT (${MAX_INFLIGHT}) publications in MQTT.js and the buffer's maxMessages; the rest are dropped and counted`, () => {
    // A fake MQTT.js: connects at once, takes every publication, never calls back (no PUBACK, no write).
    const published: string[] = [];
    const client = Object.assign(new EventEmitter(), {
      connected: true,
      publish: (topic: string) => { published.push(topic); },
      subscribe: () => undefined,
    });
    const mod = { connect: () => client } as unknown as MqttModule;
    const link = new MqttLink(mod, { url: 'mqtt://broker', client: {}, statusTopic: 'gw/status', buffer: { maxMessages: 100, maxBytes: 1 << 20 },
      backoff: { minMs: 1000, maxMs: 30_000 }, logger: jsonLogger('error', () => undefined), clock: new FakeClock() });
    link.start();
    client.emit('connect');
    const n = MAX_INFLIGHT + 100 + 1000;
    for (let i = 0; i < n; i++) link.publish(`gw/d/${i}`, 'x');
    expect(link.stats).toMatchObject({ inflight: MAX_INFLIGHT, buffered: 100, dropped: n - MAX_INFLIGHT - 100 });
    // What MQTT.js was handed: the 'online' status (made on connect, outside the count) and MAX_INFLIGHT.
    expect(published).toHaveLength(1 + MAX_INFLIGHT);
    // The buffer kept the newest: the last publication waits there.
    expect(published).not.toContain(`gw/d/${n - 1}`);
  });
});

describe('MqttLink in-flight window', () => {
  test('at most MAX_INFLIGHT handed to the client; buffered ones go out REFILL_AT at a time (one write batch), none lost; MQTT.js tracing off', () => {
    const sent: Array<{ topic: string; cb: (e?: Error) => void }> = [];
    const handlers = new Map<string, (...a: unknown[]) => void>();
    let options: Record<string, unknown> = {};
    const client = {
      connected: true,
      on(ev: string, fn: (...a: unknown[]) => void) { handlers.set(ev, fn); return client; },
      publish(topic: string, _p: unknown, _o: unknown, cb: (e?: Error) => void) { if (topic.startsWith('t/')) sent.push({ topic, cb }); else cb(); },
      subscribe() { return client; },
    };
    const mod = { connect: (_url: string, o: Record<string, unknown>) => { options = o; return client as never; } };
    const link = new MqttLink(mod, { url: 'mqtt://x', client: { protocolVersion: 5 }, statusTopic: 's', buffer: { maxMessages: 10_000, maxBytes: 1 << 24 },
      backoff: { minMs: 1, maxMs: 2 }, logger: jsonLogger('error', () => undefined) });
    link.start();
    expect(typeof options['log']).toBe('function');
    handlers.get('connect')!();
    for (let i = 0; i < 1000; i++) link.publish(`t/${i}`, 'x', 1);
    expect(sent).toHaveLength(MAX_INFLIGHT);
    expect(link.stats.buffered).toBe(1000 - MAX_INFLIGHT);
    // Acknowledgements above the refill mark hand nothing over…
    for (let i = 0; i < MAX_INFLIGHT - REFILL_AT - 1; i++) sent[i]!.cb();
    expect(sent).toHaveLength(MAX_INFLIGHT);
    // …the one that reaches it hands over a whole batch at once.
    sent[MAX_INFLIGHT - REFILL_AT - 1]!.cb();
    expect(sent).toHaveLength(MAX_INFLIGHT + (MAX_INFLIGHT - REFILL_AT));
    expect(link.stats.inflight).toBe(MAX_INFLIGHT);
    // Acknowledge everything as it is handed over: all 1000 delivered, in order, none dropped.
    for (let i = MAX_INFLIGHT - REFILL_AT; i < sent.length; i++) sent[i]!.cb();
    expect(sent.map(s => s.topic)).toEqual(Array.from({ length: 1000 }, (_, i) => `t/${i}`));
    expect(link.stats).toMatchObject({ delivered: 1000, buffered: 0, inflight: 0, dropped: 0 });
  });
});

describe('stop() with an adapter whose close never emits close', () => {
  // A close that fails or times out may never emit 'close'; stop() waits for the adapter loop, which
  // waited for that event without a bound (a gateway-tls run under load left a process in stop()).
  test('stop() resolves, the loop ends, the close failure is logged', async () => {
    const { EventEmitter } = await import('node:events');
    const logs: string[] = [];
    const g = new Gateway(resolveConfig({ env: {}, flags: { id: 'gwC', mqtt: { url: 'mqtt://127.0.0.1:1' }, transport: 'sim', commands: { enabled: false } } }),
      { logger: jsonLogger('warn', l => { logs.push(l); }) });
    const stuck = Object.assign(new EventEmitter(), {
      controller: { address: '00:00:00:00:00:01' },
      scan: () => ({ done: new Promise(() => undefined) }),
      close: () => Promise.reject(new Error('close timed out')),
    });
    let opened!: () => void;
    const open = new Promise<void>(r => { opened = r; });
    (g as unknown as { openAdapter(): Promise<unknown> }).openAdapter = async () => { opened(); return stuck; };
    await g.start();
    await open;
    await new Promise(r => setTimeout(r, 10));
    const stopped = await Promise.race([g.stop().then(() => 'stopped'), new Promise(r => setTimeout(() => r('hung'), 5000))]);
    expect(stopped).toBe('stopped');
    expect(logs.some(l => l.includes('adapter close failed'))).toBe(true);
  });
});

describe('stop() while the adapter is opening', () => {
  // Adapter.open waits up to 30 s for a controller that does not answer (a wedged USB dongle, a UART
  // at the wrong speed); the systemd unit gives the whole stop 15 s (TimeoutStopSec) before SIGKILL,
  // which would lose the clean `offline`. stop() aborts the open instead of waiting it out.
  const config = () => resolveConfig({ env: {}, flags: { id: 'gwO', mqtt: { url: 'mqtt://127.0.0.1:1' }, transport: 'sim', commands: { enabled: false } } });
  /** Resolves 'hung' if `p` has not settled after `ms` of real time (the test's guard, not a timing assert: with the fix it settles at once). */
  const settles = (p: Promise<unknown>, ms = 10_000) => Promise.race([p.then(() => 'stopped'), new Promise(r => setTimeout(() => r('hung'), ms))]);

  test('a controller that never answers Reset: stop() aborts the open (no wait for its 30 s deadline), the transport is closed, nothing is left pending', async () => {
    // The transport's own clock is the open's deadline clock: a FakeClock nobody advances, so without
    // the abort the open (and stop()) would wait for ever.
    const clock = new FakeClock();
    const sent: number[] = [];
    let closed = 0;
    let resetSent!: () => void;
    const waiting = new Promise<void>(r => { resetSent = r; });
    const silent = {
      description: 'silent', clock,
      send: (p: Uint8Array) => { sent.push(p[1]! | (p[2]! << 8)); resetSent(); },
      setReceiver: () => undefined,
      close: async () => { closed++; },
    };
    const logs: string[] = [];
    const g = new Gateway(config(), { transport: () => silent, clock, logger: jsonLogger('info', l => { logs.push(l); }) });
    await g.start();
    await waiting;
    expect(sent).toEqual([0x0c03]); // HCI_Reset, unanswered
    expect(await settles(g.stop())).toBe('stopped');
    expect(closed).toBe(1);
    expect(g.stats).toMatchObject({ adapterOpen: false, adapterOpens: 0 });
    // The abort is the gateway's own doing, not an open failure to warn about.
    expect(logs.filter(l => l.includes('adapter open failed'))).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  test('a transport factory that never settles (a device node that blocks): stop() does not wait for it; a transport it yields later is closed', async () => {
    let deliver!: (t: unknown) => void;
    let asked!: () => void;
    const factoryCalled = new Promise<void>(r => { asked = r; });
    let closed = 0;
    const g = new Gateway(config(), {
      transport: () => { asked(); return new Promise(r => { deliver = r as never; }); },
      clock: new FakeClock(), logger: jsonLogger('error', () => undefined),
    });
    await g.start();
    await factoryCalled;
    expect(await settles(g.stop())).toBe('stopped');
    deliver({ description: 'late', send: () => undefined, setReceiver: () => undefined, close: async () => { closed++; } });
    await new Promise(r => setTimeout(r, 10));
    expect(closed).toBe(1);
    expect(g.stats.adapterOpens).toBe(0);
  });
});

describe('backlog: documents are built only when the broker link has room', () => {
  // MQTT.js replaced by a client that takes publications and acknowledges them only when told to:
  // the gateway and MqttLink are the real ones.
  const setup = () => {
    const sent: Array<{ topic: string; doc: Record<string, unknown>; cb: (e?: Error) => void }> = [];
    const handlers = new Map<string, (...a: unknown[]) => void>();
    const client = {
      connected: true,
      on(ev: string, fn: (...a: unknown[]) => void) { handlers.set(ev, fn); return client; },
      publish(topic: string, p: string, _o: unknown, cb: (e?: Error) => void) {
        if (topic.includes('/devices/')) sent.push({ topic, doc: JSON.parse(p) as Record<string, unknown>, cb });
        else cb();
      },
      subscribe() { return client; },
      end(_f: boolean, _o: unknown, cb: () => void) { cb(); },
    };
    const clock = new FakeClock();
    const g = new Gateway(resolveConfig({ env: {}, flags: { id: 'gwB', mqtt: { url: 'mqtt://127.0.0.1:1' }, transport: 'sim', commands: { enabled: false },
      summaryIntervalMs: 0, buffer: { maxMessages: 100, maxBytes: 1 << 20 } } }), {
      mqtt: { connect: () => client as never }, clock, now: () => Date.UTC(2026, 11, 6),
      transport: () => new Promise(() => undefined), // no adapter: reports are fed to ingest()
      logger: jsonLogger('error', () => undefined),
    });
    const ad = (i: number, rssi = -50) => ({
      address: `C4:7C:8D:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`.toUpperCase(),
      addressType: 'public', identity: undefined, data: Uint8Array.of(2, 1, 6, 3, 0xff, 0x34, 0x12), scanResponse: undefined, rssi,
      connectable: false, name: undefined, txPower: undefined, serviceUuids: [], serviceData: new Map(), manufacturerData: new Map([[0x1234, new Uint8Array(0)]]),
    }) as unknown as Advertisement;
    return { g, sent, handlers, client, ad };
  };

  test('a burst of 1000 first-seen devices: MAX_INFLIGHT documents built, the rest wait (one entry each, newest report), none buffered or dropped; all go out in order as acknowledgements come', async () => {
    const { g, sent, handlers, ad } = setup();
    await g.start();
    handlers.get('connect')!();
    for (let i = 0; i < 1000; i++) g.ingest(ad(i));
    expect(sent).toHaveLength(MAX_INFLIGHT);
    expect(g.stats).toMatchObject({ devices: 1000, waiting: 1000 - MAX_INFLIGHT, published: MAX_INFLIGHT });
    expect(g.mqttStats).toMatchObject({ buffered: 0, dropped: 0, inflight: MAX_INFLIGHT });
    // A waiting device heard again: still one entry, and its document will carry the newest report.
    g.ingest(ad(999, -77));
    expect(g.stats.waiting).toBe(1000 - MAX_INFLIGHT);
    // Acknowledgements above the refill mark build nothing; the one reaching it builds a batch.
    for (let i = 0; i < MAX_INFLIGHT - REFILL_AT - 1; i++) sent[i]!.cb();
    expect(sent).toHaveLength(MAX_INFLIGHT);
    sent[MAX_INFLIGHT - REFILL_AT - 1]!.cb();
    expect(sent).toHaveLength(MAX_INFLIGHT + MAX_INFLIGHT - REFILL_AT);
    for (let i = MAX_INFLIGHT - REFILL_AT; i < sent.length; i++) sent[i]!.cb();
    expect(sent).toHaveLength(1000);
    expect(sent.map(s => s.doc['seq'])).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(new Set(sent.map(s => s.topic)).size).toBe(1000);
    expect(sent[999]!.doc).toMatchObject({ address: 'C4:7C:8D:00:03:E7', rssi: -77, reports: 2 });
    expect(g.stats).toMatchObject({ waiting: 0, published: 1000 });
    expect(g.mqttStats).toMatchObject({ buffered: 0, dropped: 0, inflight: 0, delivered: 1000 });
    expect((g.summary() as { waiting: number }).waiting).toBe(0);
    await g.stop();
  });

  test('broker away: documents go to the bounded buffer as before (oldest dropped, counted), not to the backlog', async () => {
    const { g, sent, handlers, client, ad } = setup();
    await g.start();
    handlers.get('connect')!();
    for (let i = 0; i < MAX_INFLIGHT + 10; i++) g.ingest(ad(i));
    expect(g.stats.waiting).toBe(10);
    // The link drops: the ten wait on; new devices are built into the buffer (100 messages), oldest dropped.
    client.connected = false;
    handlers.get('close')!();
    for (let i = 0; i < 150; i++) g.ingest(ad(2000 + i));
    expect(g.stats.waiting).toBe(10);
    expect(g.mqttStats).toMatchObject({ buffered: 100, dropped: 50 });
    // Heard again while away: a waiting device is built into the buffer now and leaves the backlog.
    g.ingest(ad(MAX_INFLIGHT, -60));
    expect(g.stats.waiting).toBe(9);
    expect(sent).toHaveLength(MAX_INFLIGHT);
    await g.stop();
  });
});
