// Pins full and targeted discovery: the tree discovered from a replica of BlueZ's example server
// equals the declared one, in 14 ATT round trips (the floor), and discovery survives hostile
// responses only by failing with ProtocolError.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { GattClient } from '../../../src/gatt/client.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { ProtocolError } from '../../../src/errors.js';
import { uuid } from '../../../src/codec/uuid.js';
import { bluezExampleServices, fakePeripheral, syntheticServices } from '../../helpers/fake-peripheral.js';
import { channelPair, kinds, ScriptedPeer } from '../../helpers/memory-channel.js';

const u16 = (n: number): string => uuid(n);

function connect(db = new GattDatabase(bluezExampleServices()), mtu = 517) {
  const fp = fakePeripheral(db, { mtu });
  const client = new GattClient(fp.pair.central, { clock: fp.clock, mtu, serviceChanged: false, robustCaching: false });
  return { ...fp, client };
}

/** The declared tree, as handles and UUIDs, to compare with what was discovered. */
function declared(db: GattDatabase) {
  return db.layout.map(s => ({
    uuid: s.uuid, start: s.start, end: s.end,
    characteristics: s.characteristics.map(c => ({
      uuid: c.uuid, decl: c.declHandle, value: c.valueHandle, properties: c.properties,
      descriptors: c.descriptors.map(d => [d.handle, d.uuid]),
    })),
  }));
}

function discovered(services: Awaited<ReturnType<GattClient['services']>>) {
  return services.map(s => ({
    uuid: s.uuid, start: s.start, end: s.end,
    characteristics: s.characteristics.map(c => ({
      uuid: c.uuid, decl: c.declHandle, value: c.handle, properties: c.propertyBits,
      descriptors: c.descriptors.map(d => [d.handle, d.uuid]),
    })),
  }));
}

describe('full discovery', () => {
  test("BlueZ's example server: the declared tree, in 14 round trips", async () => {
    const { client, db, link } = connect();
    await client.exchangeMtu();
    link.requests = 0;
    link.requestLog.length = 0;
    const services = await client.services();
    expect(discovered(services)).toEqual(declared(db));
    expect(services.map(s => s.name)).toEqual(['generic_access', 'generic_attribute', 'device_information', 'heart_rate', 'battery_service', undefined]);
    expect(link.requests).toBe(14);
    expect(link.requestLog).toEqual([
      'readByGroupTypeReq', 'readByGroupTypeReq', 'readByGroupTypeReq',
      'readByTypeReq',                                          // includes, whole range
      'readByTypeReq', 'readByTypeReq', 'readByTypeReq',        // characteristics, whole range
      ...Array(7).fill('findInformationReq'),                   // only the test service's descriptors
    ]);
    expect(client.stats.discoveryRequests).toBe(14);
    // The skipped one-handle gaps were filled in as CCCDs.
    const hrm = await (await client.service('heart_rate')).characteristic('heart_rate_measurement');
    expect(hrm.cccd?.handle).toBe(0x18);
  });

  test.each([23, 48, 100, 185])('the same tree at ATT_MTU %i', async mtu => {
    const { client, db } = connect(new GattDatabase(bluezExampleServices()), mtu);
    await client.exchangeMtu();
    expect(discovered(await client.services())).toEqual(declared(db));
  });

  test('a 30-service / 200-characteristic database with gaps merged', async () => {
    const db = new GattDatabase(syntheticServices(30, 200));
    expect(db.layout.flatMap(s => s.characteristics)).toHaveLength(200);
    const { client, link } = connect(db);
    await client.exchangeMtu();
    link.requests = 0;
    link.requestLog.length = 0;
    expect(discovered(await client.services())).toEqual(declared(db));
    // 2 service + 1 include + 4 characteristic requests; 40 descriptor ranges in 4 merged requests.
    expect(link.requestLog.filter(k => k === 'findInformationReq')).toHaveLength(4);
    expect(link.requests).toBe(11);
  });

  test('a database with no services: one request', async () => {
    const { client, link } = connect(new GattDatabase([]));
    expect(await client.services()).toEqual([]);
    expect(link.requests).toBe(1);
  });

  test('included secondary services are found through the include', async () => {
    const db = new GattDatabase([
      { uuid: 0x1808, includes: ['bas', 'custom'], characteristics: [{ uuid: 0x2a18, properties: ['read', 'indicate'] }] },
      { uuid: 0x180f, id: 'bas', primary: false, characteristics: [{ uuid: 0x2a19, properties: ['read'] }] },
      { uuid: '0000aaaa-0000-1000-8000-00805f9b34fc', id: 'custom', primary: false, characteristics: [] },
    ]);
    const { client } = connect(db);
    const services = await client.services();
    expect(services.map(s => [s.uuid, s.primary])).toEqual([[u16(0x1808), true], [u16(0x180f), false], ['0000aaaa-0000-1000-8000-00805f9b34fc', false]]);
    expect(services[0]!.includeRanges.map(i => i.uuid)).toEqual([u16(0x180f), '0000aaaa-0000-1000-8000-00805f9b34fc']);
    expect(services[1]!.characteristics.map(c => c.uuid)).toEqual([u16(0x2a19)]);
  });
});

describe('targeted discovery', () => {
  test('service(uuid) uses Find By Type Value; characteristic(uuid) discovers only that service', async () => {
    const { client, link } = connect();
    const hr = await client.service('heart_rate');
    expect([hr.start, hr.end]).toEqual([0x15, 0x1c]);
    const bsl = await hr.characteristic(0x2a38);
    expect(await bsl.read()).toEqual(Uint8Array.of(1));
    expect(link.requestLog).toEqual(['findByTypeValueReq', 'readByTypeReq', 'readByTypeReq', 'readReq']);
    await expect(client.service(0x1234)).rejects.toThrow(/no service/);
  });
});

describe('hostile responses', () => {
  function scripted() {
    const clock = new FakeClock();
    const pair = channelPair();
    const client = new GattClient(pair.central, { clock, server: false, serviceChanged: false, robustCaching: false });
    const peer = new ScriptedPeer(pair.peripheral);
    return { client, peer, pair, clock };
  }
  const svc = (handle: number, end: number, uuid16: number) => ({ handle, endGroupHandle: end, value: Uint8Array.of(uuid16 & 0xff, uuid16 >> 8) });

  test('a service range going backwards across responses is a ProtocolError', async () => {
    const { client, peer } = scripted();
    const p = client.services();
    await peer.next();
    peer.send({ kind: 'readByGroupTypeRsp', attributeDataList: [svc(1, 5, 0x1800), svc(6, 9, 0x1801)] });
    expect(await peer.next()).toMatchObject({ kind: 'readByGroupTypeReq', startingHandle: 10 });
    peer.send({ kind: 'readByGroupTypeRsp', attributeDataList: [svc(4, 12, 0x180d)] });
    await expect(p).rejects.toBeInstanceOf(ProtocolError);
  });

  test('end < start in a group is rejected by the decoder, surfacing as ProtocolError', async () => {
    const { client, peer } = scripted();
    const p = client.services();
    await peer.next();
    peer.sendRaw(Uint8Array.of(0x11, 6, 5, 0, 1, 0, 0x00, 0x18));
    await expect(p).rejects.toBeInstanceOf(ProtocolError);
  });

  test('a characteristic whose value handle is not after its declaration is a ProtocolError', async () => {
    const { client, peer } = scripted();
    const p = client.services();
    await peer.next();
    peer.send({ kind: 'readByGroupTypeRsp', attributeDataList: [svc(1, 0xffff, 0x1800)] });
    await peer.next(); // includes
    peer.send({ kind: 'errorRsp', requestOpcode: 0x08, handle: 1, errorCode: 0x0a });
    await peer.next(); // characteristics
    peer.send({ kind: 'readByTypeRsp', attributeDataList: [{ handle: 3, value: Uint8Array.of(2, 2, 0, 0x00, 0x2a) }] });
    await expect(p).rejects.toThrow(/value at 0x0002/);
  });

  test('a wrong characteristic element length is a ProtocolError', async () => {
    const { client, peer } = scripted();
    const p = client.services();
    await peer.next();
    peer.send({ kind: 'readByGroupTypeRsp', attributeDataList: [svc(1, 0xffff, 0x1800)] });
    await peer.next();
    peer.send({ kind: 'errorRsp', requestOpcode: 0x08, handle: 1, errorCode: 0x0a });
    await peer.next();
    peer.send({ kind: 'readByTypeRsp', attributeDataList: [{ handle: 2, value: Uint8Array.of(2, 3, 0, 0x00) }] });
    await expect(p).rejects.toBeInstanceOf(ProtocolError);
  });

  test('a group ending at 0xFFFF ends service discovery without another request', async () => {
    const { client, peer, pair } = scripted();
    const p = client.services();
    await peer.next();
    peer.send({ kind: 'readByGroupTypeRsp', attributeDataList: [svc(1, 0xffff, 0x1800)] });
    await peer.next();
    peer.send({ kind: 'errorRsp', requestOpcode: 0x08, handle: 1, errorCode: 0x0a });
    await peer.next();
    peer.send({ kind: 'errorRsp', requestOpcode: 0x08, handle: 1, errorCode: 0x0a });
    expect((await p).map(s => [s.start, s.end])).toEqual([[1, 0xffff]]);
    expect(kinds(pair.central)).toEqual(['readByGroupTypeReq', 'readByTypeReq', 'readByTypeReq']);
  });

  test('a disconnect mid-discovery rejects it with DisconnectedError and kills the client', async () => {
    const { client, peer, pair } = scripted();
    const p = client.services();
    await peer.next();
    pair.disconnect();
    await expect(p).rejects.toMatchObject({ code: 'EDISCONNECTED' });
    await expect(client.services()).rejects.toMatchObject({ code: 'EDISCONNECTED' });
  });
});
