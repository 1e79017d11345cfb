// Pins the ATT bearer's transaction rules (Core Vol 3, Part F, 3.3): one request in flight, the 30 s
// timeout that kills the bearer, typed errors for error/mismatched/malformed responses, cancellation,
// disconnect, MTU exchange, answers to the peer's own requests, notifications and indications.
import { describe, expect, test } from 'vitest';
import { AttBearer, MAX_OWED_TO_PEER, MAX_QUEUED_INDICATIONS } from '../../../src/att/bearer.js';
import { encodeAtt } from '../../../src/att/pdus.js';
import { fromHex } from '../../../src/bytes/hex.js';
import { FakeClock } from '../../../src/clock.js';
import {
  AbortError, AttError, BearerClosedError, DisconnectedError, EncodeError, InvalidStateError, ProtocolError, TimeoutError,
} from '../../../src/errors.js';
import { channelPair, kinds, ScriptedPeer } from '../../helpers/memory-channel.js';

function setup(opts: { mtu?: number; credits?: number } = {}) {
  const clock = new FakeClock();
  const pair = channelPair(opts.credits !== undefined ? { credits: opts.credits } : {});
  const timeouts: Error[] = [];
  const bearer = new AttBearer(pair.central, { clock, mtu: opts.mtu ?? 517, onTimeout: e => timeouts.push(e) });
  const peer = new ScriptedPeer(pair.peripheral);
  return { clock, pair, bearer, peer, timeouts };
}

describe('one request in flight', () => {
  test('never pipelines requests, and times out after 30 s for good', async () => {
    const { bearer, peer, pair, clock, timeouts } = setup();
    const a = bearer.request({ kind: 'readReq', handle: 0x0003 });
    const b = bearer.request({ kind: 'readReq', handle: 0x0004 });
    expect(kinds(pair.central)).toEqual(['readReq']); // only one on the wire

    expect(await peer.next()).toEqual({ kind: 'readReq', handle: 3 });
    peer.send({ kind: 'readRsp', value: Uint8Array.of(1, 2) });
    expect((await a).value).toEqual(Uint8Array.of(1, 2));
    // The next request went out before the caller saw the previous response.
    expect(kinds(pair.central)).toEqual(['readReq', 'readReq']);
    expect(await peer.next()).toEqual({ kind: 'readReq', handle: 4 });

    const c = bearer.request({ kind: 'readReq', handle: 0x0005 });
    clock.advance(29_999);
    expect(timeouts).toEqual([]);
    clock.advance(1);
    await expect(b).rejects.toBeInstanceOf(TimeoutError);
    await expect(c).rejects.toBeInstanceOf(BearerClosedError);
    await expect(bearer.request({ kind: 'readReq', handle: 5 })).rejects.toBeInstanceOf(BearerClosedError);
    expect(timeouts).toHaveLength(1);
    expect(timeouts[0]).toBeInstanceOf(TimeoutError);
    expect(bearer.isClosed).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    expect(kinds(pair.central)).toEqual(['readReq', 'readReq']); // c never went out
  });

  test('a late response after the timeout is dropped, not delivered', async () => {
    const { bearer, peer, clock } = setup();
    const a = bearer.request({ kind: 'readReq', handle: 1 });
    await peer.next();
    clock.advance(30_000);
    await expect(a).rejects.toThrow(/timed out after 30000 ms: the ATT bearer is now closed \(Vol 3, Part F, 3\.3\.3\) and the link is being dropped; reconnect/);
    peer.send({ kind: 'readRsp', value: Uint8Array.of(9) });
    await expect(bearer.request({ kind: 'readReq', handle: 1 })).rejects.toBeInstanceOf(BearerClosedError);
  });

  test('a bearer with no one to drop the link says the user must disconnect and reconnect', async () => {
    const clock = new FakeClock();
    const pair = channelPair();
    const bearer = new AttBearer(pair.central, { clock, mtu: 517 });
    const peer = new ScriptedPeer(pair.peripheral);
    const a = bearer.request({ kind: 'readReq', handle: 1 });
    await peer.next();
    clock.advance(30_000);
    const err = (await a.then(() => undefined, (e: unknown) => e)) as TimeoutError;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ layer: 'att', ms: 30_000 });
    expect(err.hint).toBe('the ATT bearer is now closed (Vol 3, Part F, 3.3.3); disconnect the link and reconnect to go on');
    expect(err.message).toBe(`att: readReq handle=0x0001 timed out after 30000 ms: ${err.hint}`);
  });
});

describe('responses', () => {
  test('Error Response rejects with AttError naming code, handle and request', async () => {
    const { bearer, peer } = setup();
    const p = bearer.request({ kind: 'readByTypeReq', startingHandle: 0x21, endingHandle: 0xffff, attributeType: '00002803-0000-1000-8000-00805f9b34fb' });
    await peer.next();
    peer.send({ kind: 'errorRsp', requestOpcode: 0x08, handle: 0x0021, errorCode: 0x0a });
    const err = await p.catch(e => e);
    expect(err).toBeInstanceOf(AttError);
    expect(err).toMatchObject({ errorCode: 0x0a, errorName: 'Attribute Not Found', handle: 0x21, request: 'readByTypeReq', requestOpcode: 8 });
    expect(err.message).toBe('att: error 0x0a (Attribute Not Found) on handle 0x0021 for readByTypeReq');
  });

  test('a response of the wrong kind is a ProtocolError and frees the slot', async () => {
    const { bearer, peer, pair } = setup();
    const a = bearer.request({ kind: 'readReq', handle: 3 });
    const b = bearer.request({ kind: 'writeReq', handle: 3, value: Uint8Array.of(1) });
    await peer.next();
    peer.send({ kind: 'writeRsp' });
    await expect(a).rejects.toBeInstanceOf(ProtocolError);
    expect(await peer.next()).toMatchObject({ kind: 'writeReq' });
    peer.send({ kind: 'writeRsp' });
    await expect(b).resolves.toEqual({ kind: 'writeRsp' });
    expect(bearer.stats.protocolErrors).toBe(1);
    expect(kinds(pair.central)).toEqual(['readReq', 'writeReq']);
  });

  test('an Error Response naming another request is a ProtocolError', async () => {
    const { bearer, peer } = setup();
    const a = bearer.request({ kind: 'readReq', handle: 3 });
    await peer.next();
    peer.send({ kind: 'errorRsp', requestOpcode: 0x12, handle: 3, errorCode: 1 });
    await expect(a).rejects.toBeInstanceOf(ProtocolError);
  });

  test.each([
    ['wrong element length', '09 07 0200 02 0300 00'],            // length 7 but 5 octets follow
    ['handle 0', '09 04 0000 0102'],
    ['non-increasing handles', '09 04 0500 0102 0500 0304'],
    ['empty list', '09 04'],
  ])('a malformed Read By Type Response (%s) is a ProtocolError, not a crash', async (_name, hex) => {
    const { bearer, peer } = setup();
    const a = bearer.request({ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeType: '00002a00-0000-1000-8000-00805f9b34fb' });
    await peer.next();
    peer.sendRaw(fromHex(hex));
    const err = await a.catch(e => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(bearer.stats.undecodable).toBe(1);
    // The bearer is still usable.
    const b = bearer.request({ kind: 'readReq', handle: 1 });
    await peer.next();
    peer.send({ kind: 'readRsp', value: new Uint8Array(0) });
    await expect(b).resolves.toMatchObject({ kind: 'readRsp' });
  });

  test('a response with no request outstanding is counted and dropped', async () => {
    const { bearer, peer } = setup();
    const marker = new Promise(r => bearer.on('value', r));
    peer.send({ kind: 'readRsp', value: Uint8Array.of(1) });
    peer.send({ kind: 'handleValueNtf', handle: 1, value: new Uint8Array(0) });
    await marker; // the stray response was handled before this
    const a = bearer.request({ kind: 'readReq', handle: 1 });
    expect(await peer.next()).toMatchObject({ kind: 'readReq' });
    peer.send({ kind: 'readRsp', value: Uint8Array.of(2) });
    expect((await a).value).toEqual(Uint8Array.of(2));
    expect(bearer.stats.protocolErrors).toBe(1);
  });

  test('a request larger than ATT_MTU is refused locally', async () => {
    const { bearer, pair } = setup();
    await expect(bearer.request({ kind: 'writeReq', handle: 1, value: new Uint8Array(21) })).rejects.toBeInstanceOf(EncodeError);
    expect(pair.central.sent).toHaveLength(0);
  });
});

describe('cancellation', () => {
  test('aborting a queued request removes it; an in-flight one keeps its slot until the response', async () => {
    const { bearer, peer, pair } = setup();
    const c1 = new AbortController();
    const c2 = new AbortController();
    const a = bearer.request({ kind: 'readReq', handle: 1 }, { signal: c1.signal });
    const b = bearer.request({ kind: 'readReq', handle: 2 }, { signal: c2.signal });
    const c = bearer.request({ kind: 'readReq', handle: 3 });
    await peer.next();
    c2.abort();
    await expect(b).rejects.toBeInstanceOf(AbortError);
    c1.abort();
    await expect(a).rejects.toBeInstanceOf(AbortError);
    // a is still on the wire: nothing else may be sent until its response.
    expect(kinds(pair.central)).toEqual(['readReq']);
    peer.send({ kind: 'readRsp', value: Uint8Array.of(1) });
    expect(await peer.next()).toEqual({ kind: 'readReq', handle: 3 }); // b was never sent
    peer.send({ kind: 'readRsp', value: Uint8Array.of(3) });
    expect((await c).value).toEqual(Uint8Array.of(3));
  });

  test('an already aborted signal rejects at once with its reason', async () => {
    const { bearer, pair } = setup();
    const t = new TimeoutError('gatt', 'read', 5);
    await expect(bearer.request({ kind: 'readReq', handle: 1 }, { signal: AbortSignal.abort(t) })).rejects.toBe(t);
    expect(pair.central.sent).toHaveLength(0);
  });
});

describe('disconnect', () => {
  test('rejects the in-flight and queued requests with DisconnectedError, and every later call', async () => {
    const { bearer, peer, pair, clock } = setup();
    const a = bearer.request({ kind: 'readReq', handle: 1 });
    const b = bearer.request({ kind: 'readReq', handle: 2 });
    await peer.next();
    pair.disconnect(0x08);
    await expect(a).rejects.toBeInstanceOf(DisconnectedError);
    await expect(b).rejects.toBeInstanceOf(DisconnectedError);
    await expect(bearer.request({ kind: 'readReq', handle: 3 })).rejects.toBeInstanceOf(DisconnectedError);
    await expect(bearer.command({ kind: 'writeCmd', handle: 3, value: Uint8Array.of(1) })).rejects.toBeInstanceOf(DisconnectedError);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('MTU', () => {
  test('exchange once per link: min of both sides, event fired, second exchange refused', async () => {
    const { bearer, peer } = setup({ mtu: 247 });
    const seen: number[] = [];
    bearer.on('mtu', m => seen.push(m));
    expect(bearer.mtu).toBe(23);
    const p = bearer.exchangeMtu();
    expect(await peer.next()).toEqual({ kind: 'exchangeMtuReq', clientRxMtu: 247 });
    peer.send({ kind: 'exchangeMtuRsp', serverRxMtu: 185 });
    expect(await p).toBe(185);
    expect(bearer.mtu).toBe(185);
    expect(seen).toEqual([185]);
    await expect(bearer.exchangeMtu()).rejects.toBeInstanceOf(InvalidStateError);
  });

  test('a server MTU below 23 leaves ATT_MTU at 23', async () => {
    const { bearer, peer } = setup();
    const p = bearer.exchangeMtu();
    await peer.next();
    peer.send({ kind: 'exchangeMtuRsp', serverRxMtu: 5 });
    expect(await p).toBe(23);
  });

  test("the peer's Exchange MTU Request is answered at once, outside the request slot", async () => {
    const { bearer, peer } = setup({ mtu: 517 });
    const a = bearer.request({ kind: 'readReq', handle: 1 });
    await peer.next();
    peer.send({ kind: 'exchangeMtuReq', clientRxMtu: 100 });
    expect(await peer.next()).toEqual({ kind: 'exchangeMtuRsp', serverRxMtu: 517 });
    expect(bearer.mtu).toBe(100);
    peer.send({ kind: 'readRsp', value: new Uint8Array(0) });
    await a;
  });

  test("a repeated Exchange MTU Request from the peer is answered but cannot shrink ATT_MTU", async () => {
    // Found by the whole-stack fuzzing: a second request lowered an ATT_MTU already in use
    // (the exchange happens once per link, Vol 3, Part F, 3.4.2.1).
    const { bearer, peer } = setup({ mtu: 517 });
    peer.send({ kind: 'exchangeMtuReq', clientRxMtu: 247 });
    expect(await peer.next()).toEqual({ kind: 'exchangeMtuRsp', serverRxMtu: 517 });
    expect(bearer.mtu).toBe(247);
    peer.send({ kind: 'exchangeMtuReq', clientRxMtu: 23 });
    expect(await peer.next()).toEqual({ kind: 'exchangeMtuRsp', serverRxMtu: 517 });
    expect(bearer.mtu).toBe(247);
  });
});

describe("the peer's requests", () => {
  test('without a server role: Request Not Supported; unknown requests too; unknown commands ignored', async () => {
    const { peer, bearer } = setup();
    peer.send({ kind: 'readByGroupTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeGroupType: '00002800-0000-1000-8000-00805f9b34fb' });
    expect(await peer.next()).toEqual({ kind: 'errorRsp', requestOpcode: 0x10, handle: 0, errorCode: 0x06 });
    peer.sendRaw(Uint8Array.of(0x7e, 1, 2));           // unknown command (bit 6 set): ignored
    peer.sendRaw(Uint8Array.of(0x3e, 1, 2));           // unknown request
    expect(await peer.next()).toEqual({ kind: 'errorRsp', requestOpcode: 0x3e, handle: 0, errorCode: 0x06 });
    peer.sendRaw(Uint8Array.of(0x0a, 0x01));           // Read Request cut short
    expect(await peer.next()).toEqual({ kind: 'errorRsp', requestOpcode: 0x0a, handle: 0, errorCode: 0x04 });
    expect(bearer.stats.undecodable).toBe(1);
    expect(peer.unread).toBe(0);
  });

  test('a server role answers, and its async answers keep request order', async () => {
    const clock = new FakeClock();
    const pair = channelPair();
    let release!: () => void;
    const gate = new Promise<void>(r => { release = r; });
    new AttBearer(pair.central, {
      clock,
      server: {
        handle: async pdu => {
          if (pdu.kind === 'readReq' && pdu.handle === 1) await gate;
          return { kind: 'readRsp', value: Uint8Array.of(pdu.kind === 'readReq' ? pdu.handle : 0) };
        },
      },
    });
    const peer = new ScriptedPeer(pair.peripheral);
    peer.send({ kind: 'readReq', handle: 1 });
    peer.send({ kind: 'readReq', handle: 2 });
    const first = peer.next();
    release();
    expect(await first).toEqual({ kind: 'readRsp', value: Uint8Array.of(1) });
    expect(await peer.next()).toEqual({ kind: 'readRsp', value: Uint8Array.of(2) });
  });
});

describe('notifications and indications', () => {
  test('notifications reach listeners; indications are confirmed after listeners ran', async () => {
    const { bearer, peer } = setup();
    const log: string[] = [];
    bearer.on('value', ev => log.push(`${ev.kind} ${ev.handle} ${ev.value.join(',')}`));
    peer.send({ kind: 'handleValueNtf', handle: 0x17, value: Uint8Array.of(6, 70) });
    peer.send({ kind: 'multipleHandleValueNtf', handleLengthValueTupleList: [{ handle: 0x17, value: Uint8Array.of(1) }, { handle: 0x1f, value: Uint8Array.of(2, 3) }] });
    peer.send({ kind: 'handleValueInd', handle: 0x0a, value: Uint8Array.of(1, 0, 0xff, 0xff) });
    expect(await peer.next()).toEqual({ kind: 'handleValueCfm' });
    expect(log).toEqual(['notification 23 6,70', 'notification 23 1', 'notification 31 2,3', 'indication 10 1,0,255,255']);
  });

  test('our indications: one outstanding at a time, resolved by the confirmation, 30 s timeout', async () => {
    const { bearer, peer, clock, pair, timeouts } = setup();
    const a = bearer.indicate(0x0a, Uint8Array.of(1));
    const b = bearer.indicate(0x0a, Uint8Array.of(2));
    expect(await peer.next()).toEqual({ kind: 'handleValueInd', handle: 0x0a, value: Uint8Array.of(1) });
    expect(kinds(pair.central)).toEqual(['handleValueInd']);
    peer.send({ kind: 'handleValueCfm' });
    await a;
    expect(await peer.next()).toEqual({ kind: 'handleValueInd', handle: 0x0a, value: Uint8Array.of(2) });
    clock.advance(30_000);
    await expect(b).rejects.toBeInstanceOf(TimeoutError);
    expect(timeouts).toHaveLength(1);
  });
});

describe('commands', () => {
  test('write command waits for link credit instead of queueing without bound', async () => {
    const { bearer, pair } = setup({ credits: 1 });
    await bearer.command({ kind: 'writeCmd', handle: 3, value: Uint8Array.of(1) });
    let done = false;
    const p = bearer.command({ kind: 'writeCmd', handle: 3, value: Uint8Array.of(2) }).then(() => { done = true; });
    await Promise.resolve();
    await Promise.resolve();
    expect(done).toBe(false);
    expect(pair.central.sent).toEqual([encodeAtt({ kind: 'writeCmd', handle: 3, value: Uint8Array.of(1) })]);
    pair.grant(1);
    await p;
    expect(pair.central.sent).toHaveLength(2);
  });
});

describe('bounds on what a peer or our callers can queue (issue 15)', () => {
  const flush = () => new Promise(r => setTimeout(r, 0));

  test(`a peer flooding requests while the link takes nothing is owed at most ${MAX_OWED_TO_PEER} answers; the rest are dropped, and the bearer serves on`, async () => {
    const { bearer, pair, peer } = setup({ credits: 0 });
    for (let i = 0; i < 40; i++) peer.send({ kind: 'readReq', handle: 1 + i });
    await flush();
    expect(pair.central.sent.length).toBe(0);
    expect(bearer.stats.dropped).toBe(40 - MAX_OWED_TO_PEER);
    pair.grant(100);
    await flush();
    // Exactly the owed answers went out (Request Not Supported: no server role), for the first requests.
    expect(pair.central.sent.map(b => b[0])).toEqual(Array(MAX_OWED_TO_PEER).fill(0x01));
    // Error Response 01 0a 0000 06: Read Request, Request Not Supported (Vol 3, Part F, 3.4.1.1).
    expect(new Set(pair.central.sent.map(b => Buffer.from(b).toString('hex')))).toEqual(new Set(['010a000006']));
    // Once they are on the wire the debt is paid: a well-behaved request is answered again.
    peer.send({ kind: 'readReq', handle: 0x0099 });
    await flush();
    expect(pair.central.sent.length).toBe(MAX_OWED_TO_PEER + 1);
    expect(bearer.stats.dropped).toBe(40 - MAX_OWED_TO_PEER);
  });

  test('a peer flooding indications without waiting for confirmations gets at most the owed confirmations; extra indications are dropped, not delivered', async () => {
    const { bearer, pair, peer } = setup({ credits: 0 });
    const seen: number[] = [];
    bearer.on('value', ev => seen.push(ev.handle));
    for (let i = 0; i < 30; i++) peer.send({ kind: 'handleValueInd', handle: 0x10 + i, value: Uint8Array.of(i) });
    await flush();
    expect(seen).toEqual(Array.from({ length: MAX_OWED_TO_PEER }, (_, i) => 0x10 + i));
    pair.grant(100);
    await flush();
    expect(kinds(pair.central)).toEqual(Array(MAX_OWED_TO_PEER).fill('handleValueCfm'));
    expect(bearer.stats.dropped).toBe(30 - MAX_OWED_TO_PEER);
  });

  test(`our indications: one awaits confirmation, ${MAX_QUEUED_INDICATIONS} may wait behind it, one more is refused at once`, async () => {
    const { bearer, peer, clock } = setup();
    const waiting = Array.from({ length: MAX_QUEUED_INDICATIONS + 1 }, (_, i) => bearer.indicate(0x20, Uint8Array.of(i)).catch(e => e as Error));
    const over = await bearer.indicate(0x20, Uint8Array.of(0xff)).catch(e => e);
    expect(over).toBeInstanceOf(InvalidStateError);
    expect(over.message).toMatch(/^att: indication of 0x0020 refused: 64 indications already wait behind one the peer has not confirmed/);
    expect(await peer.next()).toMatchObject({ kind: 'handleValueInd', handle: 0x20 });
    // A peer that never confirms: the transaction timeout settles every one of them, no timer stays.
    clock.advance(30_000);
    expect((await Promise.all(waiting)).every(e => e instanceof Error)).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });
});
