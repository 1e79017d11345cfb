// Pins reads and writes against the declarative fake peripheral: long reads and writes across MTU
// sizes (wire-checked), read by UUID / multiple / multiple variable, reliable write cancelled on a
// bad echo, write commands under back-pressure, signed writes refused without a CSRK, timeouts,
// within() and AbortSignal.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { ArgumentError, AttError, InvalidStateError, ProtocolError, TimeoutError, AbortError } from '../../../src/errors.js';
import { GattClient } from '../../../src/gatt/client.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { channelPair, kinds, ScriptedPeer } from '../../helpers/memory-channel.js';
import { fakePeripheral } from '../../helpers/fake-peripheral.js';

const long = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

function setup(mtu: number, extra: { credits?: number } = {}) {
  const written: Uint8Array[] = [];
  const db = new GattDatabase([{ uuid: 0xfff0, characteristics: [
    { uuid: 0xfff1, properties: ['read', 'write', 'writeWithoutResponse'], value: long(300), onWrite: v => { written.push(v); } },
    { uuid: 0xfff2, properties: ['read'], value: Uint8Array.of(1, 2) },
    { uuid: 0xfff3, properties: ['read'], value: long(40) },
    { uuid: 0xfff4, properties: ['write'], onWrite: () => { throw new (class extends Error {})(); } },
  ] }]);
  const fp = fakePeripheral(db, { mtu, ...extra });
  const client = new GattClient(fp.pair.central, { clock: fp.clock, mtu, serviceChanged: false, robustCaching: false });
  return { ...fp, client, written };
}

describe('reads', () => {
  test.each([23, 64, 185, 517])('a 300-octet value reads whole at ATT_MTU %i with the fewest blobs', async mtu => {
    const { client, link, db } = setup(mtu);
    await client.exchangeMtu();
    const c = await client.characteristic(0xfff0, 0xfff1);
    link.requestLog.length = 0;
    expect(await c.read()).toEqual(long(300));
    const expectedBlobs = Math.floor((300 - (mtu - 1)) / (mtu - 1)) + 1;
    expect(link.requestLog).toEqual(['readReq', ...Array(300 >= mtu - 1 ? expectedBlobs : 0).fill('readBlobReq')]);
    void db;
  });

  test('read by UUID, read multiple and read multiple variable (truncated values completed)', async () => {
    const { client } = setup(23);
    const [a] = await client.readByUuid(0xfff2);
    expect(a).toEqual({ handle: 5, value: Uint8Array.of(1, 2) });
    expect(await client.readMultiple([5, 5])).toEqual(Uint8Array.of(1, 2, 1, 2));
    const vals = await client.readMultipleVariable([5, 7, 3]);
    expect(vals).toEqual([Uint8Array.of(1, 2), long(40), long(300)]);
  });

  test('an ATT error on read is an AttError naming the handle', async () => {
    const { client } = setup(23);
    await expect(client.readValue(0x0099)).rejects.toMatchObject({ errorCode: 0x01, handle: 0x99, request: 'readReq' });
  });
});

describe('writes', () => {
  test.each([23, 100, 517])('a 300-octet write request becomes prepare/execute at ATT_MTU %i', async mtu => {
    const { client, link, written } = setup(mtu);
    await client.exchangeMtu();
    const c = await client.characteristic(0xfff0, 0xfff1);
    link.requestLog.length = 0;
    await c.write(long(300));
    expect(written).toEqual([long(300)]);
    const prepares = Math.ceil(300 / (mtu - 5));
    expect(link.requestLog).toEqual(mtu - 3 >= 300 ? ['writeReq'] : [...Array(prepares).fill('prepareWriteReq'), 'executeWriteReq']);
  });

  test('write without response resolves only when the link takes it', async () => {
    const { client, pair, written } = setup(23, { credits: 100 });
    const c = await client.characteristic(0xfff0, 0xfff1);
    pair.grant(-1e9); // no credit left
    let sent = false;
    const p = c.write(Uint8Array.of(9), { withResponse: false }).then(() => { sent = true; });
    await Promise.resolve();
    await Promise.resolve();
    expect(sent).toBe(false);
    pair.grant(1e9 + 1);
    await p;
    expect(sent).toBe(true);
    await c.read(); // a round trip later the peer has applied the command
    expect(written.at(-1)).toEqual(Uint8Array.of(9));
    await expect(c.write(new Uint8Array(21), { withResponse: false })).rejects.toBeInstanceOf(ArgumentError);
  });

  test('write without response that never gets buffer credit times out after 30 s, not never', async () => {
    const { client, pair, clock } = setup(23, { credits: 100 });
    const c = await client.characteristic(0xfff0, 0xfff1);
    pair.grant(-1e9); // the controller never returns credit
    const p = c.write(Uint8Array.of(9), { withResponse: false }).catch(e => e);
    clock.advance(29_999);
    expect(await Promise.race([p, Promise.resolve('pending')])).toBe('pending');
    clock.advance(1);
    expect(await p).toBeInstanceOf(TimeoutError);
  });

  test('a handler failure on the peer surfaces as AttError (Unlikely Error)', async () => {
    const { client } = setup(23);
    const c = await client.characteristic(0xfff0, 0xfff4);
    await expect(c.write(Uint8Array.of(1))).rejects.toBeInstanceOf(AttError);
  });

  test('signed write without a CSRK is refused with a clear error', async () => {
    const { client, pair } = setup(23);
    const before = pair.central.sent.length;
    await expect(client.signedWrite(3, Uint8Array.of(1))).rejects.toThrow(/CSRK/);
    await expect(client.signedWrite(3, Uint8Array.of(1))).rejects.toBeInstanceOf(InvalidStateError);
    expect(pair.central.sent.length).toBe(before);
  });
});

describe('reliable write', () => {
  function scripted() {
    const clock = new FakeClock();
    const pair = channelPair();
    const client = new GattClient(pair.central, { clock, server: false });
    return { client, peer: new ScriptedPeer(pair.peripheral), pair, clock };
  }

  test('all echoes match: prepare each part, then execute', async () => {
    const { client, peer } = scripted();
    const p = client.reliableWrite([{ handle: 3, value: Uint8Array.of(1, 2) }, { handle: 5, value: Uint8Array.of(3) }]);
    for (let i = 0; i < 2; i++) {
      const req = await peer.next();
      if (req.kind !== 'prepareWriteReq') throw new Error(req.kind);
      peer.send({ kind: 'prepareWriteRsp', handle: req.handle, valueOffset: req.valueOffset, value: req.value });
    }
    expect(await peer.next()).toEqual({ kind: 'executeWriteReq', flags: 1 });
    peer.send({ kind: 'executeWriteRsp' });
    await p;
  });

  test('a long read never asks past 512 octets, even from a server that ignores Value_Offset', async () => {
    // BlueZ's example server answers every Read Blob with the value from offset 0 (seen in the
    // interop suite); an attribute value is at most 512 octets (Vol 3, Part F, 3.2.9).
    const { client, peer } = scripted();
    const p = client.readValue(3);
    let requests = 0;
    for (;;) {
      const req = await Promise.race([peer.next(), p.then(() => undefined, () => undefined)]);
      if (!req) break;
      requests++;
      peer.send({ kind: req.kind === 'readReq' ? 'readRsp' : 'readBlobRsp', value: long(22) } as never);
    }
    await expect(p).rejects.toBeInstanceOf(ProtocolError);
    expect(requests).toBe(24); // 1 read + 23 blobs take the offset from 22 to 528 > 512
  });

  test('a differing echo cancels the queue and rejects', async () => {
    const { client, peer, pair } = scripted();
    const p = client.reliableWrite([{ handle: 3, value: Uint8Array.of(1, 2) }, { handle: 5, value: Uint8Array.of(3) }]);
    await peer.next();
    peer.send({ kind: 'prepareWriteRsp', handle: 3, valueOffset: 0, value: Uint8Array.of(1, 0xee) });
    expect(await peer.next()).toEqual({ kind: 'executeWriteReq', flags: 0 });
    peer.send({ kind: 'executeWriteRsp' });
    await expect(p).rejects.toBeInstanceOf(ProtocolError);
    expect(kinds(pair.central)).toEqual(['prepareWriteReq', 'executeWriteReq']);
  });
});

describe('deadlines and cancellation', () => {
  test('timeout rejects the operation with TimeoutError; the bearer lives on', async () => {
    const clock = new FakeClock();
    const pair = channelPair();
    const client = new GattClient(pair.central, { clock, server: false });
    const peer = new ScriptedPeer(pair.peripheral);
    const p = client.readValue(3, { timeout: 1000 });
    await peer.next();
    clock.advance(1000);
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
    // The in-flight read still holds the slot; its late response is discarded and the next goes out.
    const q = client.readValue(4);
    peer.send({ kind: 'readRsp', value: Uint8Array.of(1) });
    expect(await peer.next()).toEqual({ kind: 'readReq', handle: 4 });
    peer.send({ kind: 'readRsp', value: Uint8Array.of(2) });
    expect(await q).toEqual(Uint8Array.of(2));
  });

  test('within() puts several operations under one deadline', async () => {
    const clock = new FakeClock();
    const pair = channelPair();
    const client = new GattClient(pair.central, { clock, server: false });
    const peer = new ScriptedPeer(pair.peripheral);
    const p = client.within(2000, async () => {
      const a = await client.readValue(3);
      clock.advance(1500);
      const b = await client.readValue(4);
      return [a, b];
    });
    await peer.next();
    peer.send({ kind: 'readRsp', value: Uint8Array.of(1) });
    await peer.next();
    clock.advance(500);
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
  });

  test('an AbortSignal cancels a queued operation without sending it', async () => {
    const clock = new FakeClock();
    const pair = channelPair();
    const client = new GattClient(pair.central, { clock, server: false });
    const peer = new ScriptedPeer(pair.peripheral);
    const a = client.readValue(3);
    const ctl = new AbortController();
    const b = client.readValue(4, { signal: ctl.signal });
    await peer.next();
    ctl.abort();
    await expect(b).rejects.toBeInstanceOf(AbortError);
    peer.send({ kind: 'readRsp', value: Uint8Array.of(1) });
    await a;
    expect(kinds(pair.central)).toEqual(['readReq']);
  });

  test('ATT transaction timeout: the client is dead and asks for the link to go', async () => {
    const clock = new FakeClock();
    const pair = channelPair();
    const asked: unknown[] = [];
    const client = new GattClient(pair.central, { clock, server: false, onTimeout: e => asked.push(e) });
    const peer = new ScriptedPeer(pair.peripheral);
    const a = client.readValue(3);
    const b = client.readValue(4);
    await peer.next();
    clock.advance(30_000);
    await expect(a).rejects.toBeInstanceOf(TimeoutError);
    await expect(b).rejects.toMatchObject({ code: 'EBEARERCLOSED' });
    expect(asked).toHaveLength(1);
    await expect(client.readValue(3)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
  });
});
