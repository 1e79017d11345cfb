// Pins the public Adapter / Connection surface on a scripted controller: open + init, random address,
// scan as async iterator and callback, find() with timeout, connect by advertisement and by bare
// address, scanning resumed after connecting, disconnect events with typed reasons, Hardware Error
// recovery, close.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { fromHex } from '../../../src/bytes/hex.js';
import { Adapter } from '../../../src/api/adapter.js';
import { FakeController } from '../hci/host-fake-controller.js';

const PEER = 'C0:11:22:33:44:55';
const AD = fromHex('020106 0a09506f6c6172204831 30'.replace(/ /g, ''));

function report(address = PEER, eventType = 0) {
  return { kind: 'leAdvertisingReport' as const, reports: [{ eventType, addressType: 1, address, data: AD, rssi: -40 }] };
}
function connComplete(handle: number, address = PEER) {
  return { kind: 'leConnectionComplete' as const, status: 0, connectionHandle: handle, role: 0, peerAddressType: 1,
    peerAddress: address, connectionInterval: 24, peripheralLatency: 0, supervisionTimeout: 400, centralClockAccuracy: 0 };
}

async function open(opts: { randomAddress?: string } = {}) {
  const ctl = new FakeController();
  const clock = new FakeClock();
  const adapter = await Adapter.open({ transport: ctl, clock, ...opts });
  return { ctl, clock, adapter };
}

describe('Adapter', () => {
  test('open initialises the controller and sets a random address when asked', async () => {
    const { ctl, adapter } = await open({ randomAddress: 'C1:02:03:04:05:06' });
    expect(ctl.kinds()[0]).toBe('reset');
    expect(await ctl.sent('leSetRandomAddress')).toMatchObject({ randomAddress: 'C1:02:03:04:05:06' });
    expect(adapter.controller.acl.count).toBe(2);
    adapter.scan({});
    expect(await ctl.sent('leSetScanParameters')).toMatchObject({ ownAddressType: 1 });
  });

  test('scan with for await, find() resolves the first match, and undefined after its timeout', async () => {
    const { ctl, adapter, clock } = await open();
    const found = adapter.find({ namePrefix: 'Polar', active: false });
    await ctl.sent('leSetScanEnable');
    ctl.inject(report());
    const ad = await found;
    expect(ad?.name).toBe('Polar H10');
    expect(adapter.devices()).toMatchObject([{ address: PEER, addressType: 'random', rssi: -40, reports: 1 }]);
    const none = adapter.find({ name: 'nobody', timeout: 500 });
    await ctl.sent('leSetScanEnable');
    clock.advance(500);
    expect(await none).toBeUndefined();
  });

  test("'advertisement' events reach the listeners there are, through on/off, once and removeAllListeners", async () => {
    const { ctl, adapter } = await open();
    let reports = 0;
    const session = adapter.scan({ active: false, duplicates: true, onAdvertisement: () => { reports++; } });
    await ctl.sent('leSetScanEnable');
    const got: string[] = [];
    const feed = async () => {
      const n = reports;
      ctl.inject(report());
      while (reports === n) await new Promise(r => setImmediate(r));
    };
    const a = (ad: { name?: string }) => got.push('a ' + ad.name);
    const b = (ad: { name?: string }) => got.push('b ' + ad.name);
    await feed(); // nobody listens
    adapter.on('advertisement', a);
    adapter.once('advertisement', b);
    await feed();
    await feed(); // b was once
    adapter.off('advertisement', a);
    await feed(); // nobody again
    adapter.on('advertisement', b);
    adapter.removeAllListeners();
    await feed();
    adapter.on('advertisement', a); // still fed after everything was removed
    await feed();
    adapter.removeAllListeners('advertisement');
    await feed();
    expect(got).toEqual(['a Polar H10', 'b Polar H10', 'a Polar H10', 'a Polar H10']);
    session.stop();
  });

  test('connect by scan result: scanning pauses, LE Create Connection, scanning resumes; disconnect event typed', async () => {
    const { ctl, adapter } = await open();
    const session = adapter.scan({ active: false });
    const it = session[Symbol.asyncIterator]();
    await ctl.sent('leSetScanEnable');
    ctl.inject(report(PEER, 3));
    const ad = (await it.next()).value!;
    const events: unknown[] = [];
    adapter.on('connection', c => events.push(['connection', c.handle]));
    const p = adapter.connect(ad, { timeout: 5000 });
    expect(await ctl.sent('leSetScanEnable')).toMatchObject({ enable: 0 });
    expect(await ctl.sent('leCreateConnection')).toMatchObject({ peerAddress: PEER, peerAddressType: 1 });
    ctl.inject(connComplete(0x40));
    const conn = await p;
    expect(await ctl.sent('leSetScanEnable')).toMatchObject({ enable: 1 }); // scanning resumed
    expect(conn.address).toBe(PEER);
    expect(conn.role).toBe('central');
    expect(conn.parameters.interval).toBe(30);
    expect(adapter.connections).toEqual([conn]);
    const reasons: unknown[] = [];
    conn.on('disconnect', r => reasons.push(r));
    ctl.inject({ kind: 'disconnectionComplete', status: 0, connectionHandle: 0x40, reason: 0x13 });
    expect(await conn.closed).toEqual({ code: 0x13, name: 'Remote User Terminated Connection' });
    expect(reasons).toEqual([{ code: 0x13, name: 'Remote User Terminated Connection' }]);
    expect(events).toEqual([['connection', 0x40]]);
    expect(adapter.connections).toEqual([]);
    session.stop();
  });

  test('connect by bare address without a prior scan; the ATT channel carries data', async () => {
    const { ctl, adapter } = await open();
    const p = adapter.connect({ address: 'c0:11:22:33:44:55', type: 'random' });
    await ctl.sent('leCreateConnection');
    ctl.inject(connComplete(0x41));
    const conn = await p;
    await conn.attChannel.send(Uint8Array.of(0x02, 0x17, 0x00));
    expect(ctl.aclOut).toEqual([{ handle: 0x41, pb: 0, data: '0300040002' + '1700' }]);
    const got = new Promise<string>(resolve =>
      conn.attChannel.setReceiver({ data: d => resolve(Buffer.from(d).toString('hex')), closed: () => undefined }));
    ctl.injectAcl(0x41, 2, fromHex('0300 0400 031700'));
    expect(await got).toBe('031700');
  });

  test('Hardware Error: links reported lost, controller re-initialised, reset event', async () => {
    const { ctl, adapter } = await open();
    const p = adapter.connect({ address: PEER, type: 'random' });
    await ctl.sent('leCreateConnection');
    ctl.inject(connComplete(0x40));
    const conn = await p;
    const reset = new Promise(r => adapter.once('reset', r));
    ctl.inject({ kind: 'hardwareError', hardwareCode: 0x10 });
    // The reason keeps code 0x03 and names the controller's own code (issue 15: it used to say only "Hardware Failure").
    expect(await conn.closed).toEqual({ code: 0x03,
      name: 'Hardware Failure: the controller reported Hardware Error 0x10 (Vol 4, Part E, 7.7.16) and lost its links' });
    await reset;
    expect(ctl.kinds().filter(k => k === 'reset').length).toBe(2);
    expect(adapter.host.state).toBe('ready');
  });

  test('close ends scans and closes the transport; later calls reject', async () => {
    const { ctl, adapter } = await open();
    const s = adapter.scan({});
    await ctl.sent('leSetScanEnable');
    await adapter.close();
    expect(ctl.closed).toBe(true);
    await s.done;
    await expect(adapter.connect({ address: PEER })).rejects.toThrow(/closed/);
  });
});
