// The MQTT gateway on BlueZ's controller emulator: the gateway scans on one btvirt controller and
// publishes, to a real mosquitto, an advertiser on another btvirt controller of the same btvirt — a
// blewire adapter advertising BTHome v2 service data (bthome.io's example: 25.00 °C, 50.55 %) and
// serving a GATT database with adapter.serve(). The documents are read back with mosquitto_sub (a
// client we did not write), and a command round trip over MQTT 5 connects, reads, writes and
// disconnects over btvirt's link layer; the peripheral's server sees the write. btvirt reports an
// advertiser once per enable (PEERS.md §2), so the last check restarts the advertising with new data.
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { resolveConfig, type PartialConfig } from '../../src/apps/gateway/config.js';
import { Gateway } from '../../src/apps/gateway/gateway.js';
import { jsonLogger } from '../../src/apps/gateway/log.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { mosquittoSub, removeDir, startMosquitto, type Mosquitto, type Subscriber } from './helpers/mosquitto.js';

const BTHOME = Buffer.from('4002C40903BF13', 'hex');
const NAME = 'bw-bthome'; // flags, service data and the name fit the 31 legacy octets
const parse = (l: { payload: string }) => JSON.parse(l.payload) as Record<string, any>;

describe('gateway on btvirt: one controller scans, another advertises', () => {
  let btvirt: Btvirt;
  let broker: Mosquitto;
  let sub: Subscriber;
  let peripheral: Adapter;
  let gateway: Gateway;
  let consumer: MqttClient;
  const incoming: Connection[] = [];
  const logs: string[] = [];
  let server: Awaited<ReturnType<Adapter['serve']>>;
  let accepting: AsyncIterableIterator<Connection>;
  let set: Awaited<ReturnType<Adapter['advertise']>>;

  beforeAll(async () => {
    btvirt = await startBtvirt();
    broker = await startMosquitto();
    peripheral = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, bonds: false });
    server = await peripheral.serve([
      { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: Uint8Array.of(0x4d) }] },
      { uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['read', 'write'], value: Uint8Array.of(0) }] },
    ]);
    accepting = peripheral.accept();
    void (async () => { for await (const c of accepting) incoming.push(c); })();
    set = await peripheral.advertise({ name: NAME, serviceData: [[0xfcd2, BTHOME]], connectable: true });
    sub = await mosquittoSub(broker.port, ['blewire/gwB/#']);
    const config = resolveConfig({ env: {}, flags: {
      id: 'gwB', mqtt: { url: broker.url }, transport: `unix:${btvirt.leSocket}`, publish: { minIntervalMs: 200, maxIntervalMs: 1000 },
      summaryIntervalMs: 1000, bonds: false,
    } as PartialConfig });
    gateway = new Gateway(config, { logger: jsonLogger('debug', l => { logs.push(l); }) });
    await gateway.start();
    consumer = mqtt.connect(broker.url, { protocolVersion: 5, reconnectPeriod: 200 });
    await new Promise<void>((resolve, reject) => { consumer.once('connect', () => resolve()); consumer.once('error', reject); });
    await consumer.subscribeAsync('test/#', { qos: 1 });
  }, 120_000);

  afterAll(async () => {
    await consumer?.endAsync();
    await gateway?.stop();
    await accepting?.return?.();
    await peripheral?.close().catch(() => undefined);
    await sub?.stop();
    await broker?.stop();
    if (broker) removeDir(broker.dir);
    await btvirt?.stop();
  });

  test('the advertiser on the other controller is published, decoded, read back with mosquitto_sub', async () => {
    const address = peripheral.controller.address;
    const line = await sub.waitFor(l => l.topic === `blewire/gwB/devices/${address}`, 30_000, 'the advertiser\'s document');
    const doc = parse(line);
    expect(doc).toMatchObject({
      gateway: 'gwB', address, name: NAME, connectable: true,
      serviceData: { fcd2: BTHOME.toString('hex') },
      decoded: { bthome: { temperature: 25, humidity: 50.55 } }, units: { bthome: { temperature: '°C', humidity: '%' } },
    });
    expect(typeof doc['rssi']).toBe('number');
    // The gateway's controller is btvirt's too: the summary names it and counts the device.
    const summary = parse(await sub.waitFor(l => l.topic === 'blewire/gwB/summary' && parse(l)['devices'] >= 1, 20_000, 'a summary with the device'));
    expect(summary['controller']['address']).toMatch(/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
    expect(summary['controller']['address']).not.toBe(address);
    await sub.waitFor(l => l.topic === 'blewire/gwB/status' && l.payload === 'online', 5000, 'online');
  }, 60_000);

  test('a command round trip over btvirt: read, write (seen by the server), read back, disconnect', async () => {
    const address = peripheral.controller.address;
    const command = async (body: Record<string, unknown>, corr: string): Promise<Record<string, any>> => {
      const got = new Promise<Record<string, any>>((resolve, reject) => {
        const t = setTimeout(() => { consumer.off('message', on); reject(new Error(`no answer to ${corr}`)); }, 30_000);
        const on = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
          if (topic !== 'test/btvirt' || packet.properties?.correlationData?.toString() !== corr) return;
          clearTimeout(t);
          consumer.off('message', on);
          resolve(JSON.parse(payload.toString()) as Record<string, any>);
        };
        consumer.on('message', on);
      });
      await consumer.publishAsync('blewire/gwB/command', JSON.stringify(body),
        { qos: 1, properties: { responseTopic: 'test/btvirt', correlationData: Buffer.from(corr) } });
      return got;
    };
    let a = await command({ op: 'read', address, service: 'battery_service', characteristic: 'battery_level', timeout: 20_000 }, 'read');
    expect(a, JSON.stringify(a)).toMatchObject({ ok: true, op: 'read', address, characteristic: '2a19', value: '4d' });
    expect(incoming.length).toBe(1);
    expect(incoming[0]!.role).toBe('peripheral');
    a = await command({ op: 'write', address, service: 'fff0', characteristic: 'fff1', value: '2a07' }, 'write');
    expect(a).toMatchObject({ ok: true, withResponse: true });
    expect([...server.value(0xfff1)]).toEqual([0x2a, 0x07]);
    a = await command({ op: 'read', address, service: 'fff0', characteristic: 'fff1' }, 'readback');
    expect(a).toMatchObject({ ok: true, value: '2a07' });
    const gone = new Promise(r => incoming[0]!.once('disconnect', r));
    a = await command({ op: 'disconnect', address }, 'disc');
    expect(a).toMatchObject({ ok: true, connected: false });
    await gone;
    // Scanning goes on after the link. btvirt sends a report only when advertising or scanning is
    // enabled (PEERS.md), so the advertiser starts again with new data: 26.00 °C.
    await set.stop().catch(() => undefined);
    const r0 = gateway.stats.reports;
    set = await peripheral.advertise({ name: NAME, serviceData: [[0xfcd2, Buffer.from('4002280A03BF13', 'hex')]], connectable: true });
    const later = await sub.waitFor(l => l.topic === `blewire/gwB/devices/${address}` && parse(l)['decoded']?.['bthome']?.['temperature'] === 26, 20_000, 'the new reading')
      .catch(e => { throw new Error(`${(e as Error).message}; reports ${r0} -> ${gateway.stats.reports}; logs: ${logs.slice(-8).join('\n')}`); });
    expect(parse(later)).toMatchObject({ serviceData: { fcd2: '4002280a03bf13' }, decoded: { bthome: { temperature: 26, humidity: 50.55 } } });
  }, 90_000);
});
