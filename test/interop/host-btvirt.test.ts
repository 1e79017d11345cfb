// Pins blewire's host core against an independent controller: BlueZ's btvirt. A raw-HCI test peer
// (test/interop/helpers/peer.ts, our codecs but none of our host logic) on other emulated controllers
// advertises (legacy, and extended on the BR/EDR+LE socket); blewire finds it through every filter kind,
// connects by scan result and by bare address, exchanges ACL both ways under btvirt's 1 × 192-byte
// buffer, runs three links at once and sees the right disconnect reasons from each side; the link answers
// the peer's Security Request by pairing and its Pairing Request with Command Not Supported, and survives a parameter update flood. The whole
// run is recorded as btsnoop and tshark must find no malformed packet in it.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { TestPeer } from './helpers/peer.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'blewire-host-btvirt-'));
const capture = join(dir, 'host-btvirt.btsnoop');
const captureExt = join(dir, 'host-btvirt-ext.btsnoop');

// Flags, 16-bit service list [0x180d], manufacturer 0x05f1 "bw", service data 0xfeaa 01 02, name (28 of 31 octets).
const AD = Uint8Array.from([
  0x02, 0x01, 0x06,
  0x03, 0x03, 0x0d, 0x18,
  0x05, 0xff, 0xf1, 0x05, 0x62, 0x77,
  0x05, 0x16, 0xaa, 0xfe, 0x01, 0x02,
  0x08, 0x09, ...Buffer.from('bw-peer'),
]);
const SCAN_RSP = Uint8Array.from([0x05, 0x08, ...Buffer.from('bwpe')]);

describe('host core against btvirt', () => {
  let btvirt: Btvirt;
  let adapter: Adapter;
  const peers: TestPeer[] = [];

  beforeAll(async () => {
    btvirt = await startBtvirt();
    adapter = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, capture });
    for (let i = 0; i < 3; i++) peers.push(await TestPeer.open(btvirt.leSocket, `peer${i}`));
  });

  afterAll(async () => {
    await adapter?.close();
    for (const p of peers) await p.close();
    await btvirt?.stop();
  });

  test('init read a sensible capability model (legacy-only LE controller, 1 × 192-byte buffers)', () => {
    const c = adapter.controller;
    expect(c.address).toMatch(/^00:AA:01:/);
    // LE-only: LMP feature bits 37 "BR/EDR Not Supported" and 38 "LE Supported (Controller)" (Vol 2, Part C, 3.3).
    expect(c.lmpFeatures! & (1n << 37n), 'BR/EDR Not Supported').not.toBe(0n);
    expect(c.lmpFeatures! & (1n << 38n), 'LE Supported (Controller)').not.toBe(0n);
    // Legacy-only: no extended advertising feature (Vol 6, Part B, 4.6), so no advertising-set reads.
    expect(c.hasLeFeature('extendedAdvertising')).toBe(false);
    expect(c.numAdvertisingSets).toBeUndefined();
    // 1 × 192-byte buffers, from LE Read Buffer Size [v1] (Vol 4, Part E, 7.8.2) with a non-zero LE length.
    expect(c.acl).toEqual({ length: 192, count: 1, source: 'le-v1' });
  });

  test('finds the legacy advertiser through every filter kind, with the scan response merged', async () => {
    const peer = peers[0]!;
    await peer.advertise(AD, SCAN_RSP);
    const filters = [
      { services: ['heart_rate'] },
      { services: [0xfeaa] },
      { name: 'bw-peer' },
      { namePrefix: 'bw-' },
      { manufacturerData: [{ companyIdentifier: 0x05f1, dataPrefix: Uint8Array.of(0x62, 0x70), mask: Uint8Array.of(0xff, 0xf0) }] },
      { serviceData: [{ service: 'feaa', dataPrefix: Uint8Array.of(1) }] },
      { address: peer.address.toLowerCase() },
      { rssi: -100 },
    ];
    for (const f of filters) {
      const ad = await adapter.find({ ...f, timeout: 3000 });
      expect(ad, JSON.stringify(f)).toBeDefined();
      expect(ad!.address).toBe(peer.address);
      expect(ad!.addressType).toBe('public');
      expect(ad!.connectable).toBe(true);
      expect(Buffer.from(ad!.scanResponse ?? [])).toEqual(Buffer.from(SCAN_RSP));
      await adapter.scanner.settle();
    }
    expect(await adapter.find({ name: 'nobody', timeout: 300 })).toBeUndefined();
    await adapter.scanner.settle();
    // The LE-only controller refused the extended scan commands; the scanner fell back to legacy.
    expect(adapter.controller.extendedScanning).toBe(false);
  });

  test('connects by scan result and by bare address; ACL both ways under the 1 × 192 buffer; reasons from each side', async () => {
    const peer = peers[0]!;
    const ad = await adapter.find({ address: peer.address, timeout: 3000 });
    const peerConn = peer.connection();
    const conn = await adapter.connect(ad!, { timeout: 5000 });
    const pc = await peerConn;
    expect(conn.address).toBe(peer.address);
    expect(pc.peerAddress).toBe(adapter.controller.address);

    // 500-byte SDU from blewire: several ACL fragments through one 192-byte buffer.
    const big = Uint8Array.from({ length: 500 }, (_, i) => i & 0xff);
    const got = peer.receiveL2cap(0x0004);
    await conn.attChannel.send(big);
    expect(Buffer.from(await got)).toEqual(Buffer.from(big));

    // And 300 bytes back from the peer in 27-byte fragments, reassembled by blewire.
    const back = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    const received = new Promise<Uint8Array>(resolve =>
      conn.attChannel.setReceiver({ data: d => resolve(d), closed: () => undefined }));
    await peer.sendL2cap(pc.handle, 0x0004, back);
    expect(Buffer.from(await received)).toEqual(Buffer.from(back));

    // Peer-side disconnect: blewire sees the peer's reason.
    await peer.disconnect(pc.handle, 0x15);
    expect(await conn.closed).toEqual({ code: 0x15, name: 'Remote Device Terminated Connection due to Power Off' });
    expect(await peer.disconnection()).toEqual({ handle: pc.handle, reason: 0x15 }); // btvirt reports it on both sides

    // Bare address, no scan first; blewire-side disconnect: the peer sees our reason.
    await peer.advertise(AD, SCAN_RSP);
    const peerConn2 = peer.connection();
    const conn2 = await adapter.connect({ address: peer.address, type: 'public' }, { timeout: 5000 });
    const pc2 = await peerConn2;
    const peerSees = peer.disconnection();
    const reason = await conn2.disconnect(0x13);
    expect(reason.code).toBe(0x13);
    expect(await peerSees).toEqual({ handle: pc2.handle, reason: 0x13 });
  });

  test('a wrong address type fails with 0x3E, typed', async () => {
    const peer = peers[0]!;
    await peer.advertise(AD, SCAN_RSP);
    await expect(adapter.connect({ address: peer.address, type: 'random' }, { timeout: 3000 }))
      .rejects.toMatchObject({ status: 0x3e });
    await peer.stopAdvertising();
  });

  test('the link answers SMP (a Security Request starts our pairing, a Pairing Request to the central is refused) and coalesces a flood of parameter update requests', async () => {
    const peer = peers[0]!;
    await peer.advertise(AD, SCAN_RSP);
    const pcP = peer.connection();
    const conn = await adapter.connect({ address: peer.address, type: 'public' }, { timeout: 5000 });
    const pc = await pcP;
    const link = adapter.connectionManager.links.get(conn.handle)!;

    // Security Request (Vol 3, Part H, 3.6.7): with no bond, the central pairs per its policy: our
    // Pairing Request (3.5.1) comes back through btvirt on CID 0x0006: NoInputNoOutput, no OOB,
    // AuthReq Bonding | SC | CT2, 16-octet keys, ours EncKey | LinkKey, theirs EncKey | IdKey | SignKey | LinkKey.
    const request = peer.receiveL2cap(0x0006);
    const failed = new Promise(resolve => conn.on('pairing', p => { if (p.stage === 'failed') resolve(p.error); }));
    await peer.sendL2cap(pc.handle, 0x0006, Uint8Array.of(0x0b, 0x01));
    expect(Buffer.from(await request).toString('hex')).toBe('0103002910090f');
    // The peer refuses (Pairing Failed, Pairing Not Supported): our pairing ends with that reason.
    await peer.sendL2cap(pc.handle, 0x0006, Uint8Array.of(0x05, 0x05));
    expect(await failed).toMatchObject({ code: 'ESMP', reason: 0x05, by: 'peer' });
    // A Pairing Request to the central: Pairing Failed, Command Not Supported (3.5.5; only the
    // central initiates).
    const answer = peer.receiveL2cap(0x0006);
    await peer.sendL2cap(pc.handle, 0x0006, Uint8Array.of(0x01, 0x03, 0x00, 0x01, 0x10, 0x07, 0x07));
    expect(Buffer.from(await answer).toString('hex')).toBe('0507');

    // 200 L2CAP Connection Parameter Update Requests (Vol 3, Part A, 4.20), interval 24 + i (1.25 ms units):
    // every one is answered, accepted (4.21). btvirt 5.66 acknowledges LE Connection Update with Command
    // Status and never reports LE Connection Update Complete, so the update stays outstanding and every
    // later request coalesces into the one queued behind it: one HCI command for the whole flood (before:
    // one command, one 40 s timer and one waiter per request).
    const N = 200;
    const results: number[] = [];
    const answered = (async () => {
      for (let i = 0; i < N; i++) {
        const rsp = await peer.receiveL2cap(0x0005, 10_000);
        expect(rsp[0]).toBe(0x13); // Connection Parameter Update Response
        results.push(rsp[4]! | (rsp[5]! << 8));
      }
    })();
    for (let i = 0; i < N; i++) {
      const iv = 24 + i;
      await peer.sendL2cap(pc.handle, 0x0005, Uint8Array.of(0x12, (i % 255) + 1, 0x08, 0x00, iv & 0xff, iv >> 8, iv & 0xff, iv >> 8,
        0x00, 0x00, 0x90, 0x01));
    }
    await answered;
    expect(results).toEqual(new Array(N).fill(0)); // all accepted
    expect(link.updateStats).toMatchObject({ peerRequests: N, commandsSent: 1, coalesced: N - 2 });
    expect(conn.connected).toBe(true);

    const peerSees = peer.disconnection();
    await conn.disconnect(0x13);
    await peerSees;
  });

  test('three links at once, data on each, disconnects from both sides with the right reasons', async () => {
    const conns = [];
    for (const peer of peers) {
      await peer.advertise(AD, SCAN_RSP);
      const pc = peer.connection();
      conns.push({ conn: await adapter.connect({ address: peer.address, type: 'public' }, { timeout: 5000 }), peer, pc: await pc });
    }
    expect(adapter.connections.length).toBe(3);
    // Send on all three at once: the scheduler shares the single controller buffer between links.
    const payloads = conns.map((_, i) => Uint8Array.from({ length: 250 + i }, (_, j) => (j + i) & 0xff));
    const receipts = conns.map(c => c.peer.receiveL2cap(0x0004));
    await Promise.all(conns.map((c, i) => c.conn.attChannel.send(payloads[i]!)));
    expect((await Promise.all(receipts)).map(r => Buffer.from(r).toString('hex'))).toEqual(payloads.map(p => Buffer.from(p).toString('hex')));

    // btvirt 5.66 keeps handles straight only for the first link of a peripheral pair: a peripheral's
    // Disconnect on a later handle is answered "unknown connection", and the remote side of a central's
    // Disconnect is reported under the wrong handle. So the peer disconnects link 0, blewire links 1, 2.
    await conns[0]!.peer.disconnect(conns[0]!.pc.handle, 0x13);
    expect(await conns[0]!.conn.closed).toEqual({ code: 0x13, name: 'Remote User Terminated Connection' });
    await conns[0]!.peer.disconnection();
    expect(await conns[1]!.conn.disconnect(0x13)).toMatchObject({ code: 0x13 });
    expect(await conns[1]!.peer.disconnection()).toMatchObject({ reason: 0x13 });
    expect(await conns[2]!.conn.disconnect(0x15)).toMatchObject({ code: 0x15 });
    expect(await conns[2]!.peer.disconnection()).toMatchObject({ reason: 0x15 });
    expect(adapter.connections.length).toBe(0);
    expect(adapter.host.stats.aclUnknownHandle).toBe(0);
  });

  test('extended advertising and scanning on the BR/EDR+LE controller; connect by extended create', async () => {
    const ext = await Adapter.open({ transport: `unix:${btvirt.bredrleSocket}`, capture: captureExt });
    const peer = await TestPeer.open(btvirt.bredrleSocket, 'ext-peer');
    try {
      expect(ext.controller.extendedScanning).toBe(true); // by version: btvirt's feature bits and mask say nothing
      await peer.advertiseExtended(AD, true);
      const ad = await ext.find({ namePrefix: 'bw-', timeout: 3000 });
      expect(ad?.extended).toBe(true);
      expect(Buffer.from(ad!.serviceData.get('0000feaa-0000-1000-8000-00805f9b34fb')!)).toEqual(Buffer.from([1, 2]));
      await ext.scanner.settle();
      const pc = peer.connection();
      const conn = await ext.connect(ad!, { timeout: 5000 });
      await pc;
      expect(conn.connected).toBe(true);
      await conn.disconnect();
    } finally {
      await ext.close();
      await peer.close();
    }
  });

  test('tshark finds no malformed packet in the recorded runs', async () => {
    await adapter.close();
    for (const file of [capture, captureExt]) {
      const { stdout } = await run('tshark', ['-r', file, '-Y', '_ws.malformed || _ws.expert.severity == error', '-T', 'fields', '-e', 'frame.number']);
      expect(stdout.trim(), file).toBe('');
      const { stdout: count } = await run('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.number']);
      expect(count.trim().split('\n').length).toBeGreaterThan(20);
    }
  });
});
