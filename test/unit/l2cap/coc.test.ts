// Pins L2CAP credit-based channels (Core Vol 3, Part A, 4.22–4.28, 3.4, 10.1) between two of our own
// L2capLinks joined back to back: the wire bytes of the signalling and the K-frames, segmentation and
// reassembly, credits (never a K-frame without one, credits back as the reader consumes, bounded
// queues), every refusal result, every violation the spec says ends a channel, disconnection both
// ways, link loss, RTX, the enhanced mode and ATT over a channel.
import { describe, expect, test } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import {
  ArgumentError, ChannelClosedError, ChannelRefusedError, DisconnectedError, InvalidStateError, ProtocolError, TimeoutError,
} from '../../../src/errors.js';
import { MAX_QUEUED_SENDS, MAX_READERS, type CreditChannel } from '../../../src/l2cap/coc.js';
import { l2capPair } from '../../helpers/l2cap-pair.js';

const bytes = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

async function connected(opts: { mtu?: number; mps?: number; initialCredits?: number; listen?: { mtu?: number; mps?: number; initialCredits?: number } } = {}) {
  const pair = l2capPair();
  const listener = pair.registries[1].listen(0x80, opts.listen ?? {});
  const opening = pair.central.coc.open(0x80, { mtu: opts.mtu, mps: opts.mps, initialCredits: opts.initialCredits });
  const [client, server] = await Promise.all([opening, listener.accept()]);
  return { ...pair, listener, client, server: server! };
}

describe('LE credit-based channels: opening', () => {
  test('request and response on the wire, then SDUs both ways', async () => {
    const { wire, client, server, settle } = await connected({ mtu: 100, mps: 23, initialCredits: 5, listen: { mtu: 512, mps: 64, initialCredits: 3 } });
    // LE Credit Based Connection Request (4.22): PSM 0x0080, SCID 0x0040, MTU 100, MPS 23, credits 5.
    expect(wire[0]).toEqual({ from: 'central', cid: 5, hex: '14010a00' + '8000' + '4000' + '6400' + '1700' + '0500' });
    // Response (4.23): DCID 0x0040, MTU 512, MPS 64, credits 3, result 0.
    expect(wire[1]).toEqual({ from: 'peripheral', cid: 5, hex: '15010a00' + '4000' + '0002' + '4000' + '0300' + '0000' });
    expect([client.cid, client.peerCid, client.mtu, client.peerMps, client.credits]).toEqual([0x40, 0x40, 512, 64, 3]);
    expect([server.mtu, server.peerMps, server.credits, server.psm]).toEqual([100, 23, 5, 0x80]);
    await client.send(fromHex('010203'));
    // One K-frame: SDU Length 3, then the data (3.4.2).
    expect(wire[2]).toEqual({ from: 'central', cid: 0x40, hex: '0300010203' });
    expect(toHex((await server.read())!)).toBe('010203');
    await server.send(bytes(50));
    await settle();
    // 50 octets over MPS 23: 21 + 23 + 6 octets of data; the first frame's 2 octets are the SDU Length.
    expect(wire.filter(w => w.from === 'peripheral' && w.cid === 0x40).map(w => w.hex.length / 2)).toEqual([23, 23, 6]);
    expect((await client.read())).toEqual(bytes(50));
  });

  test('an empty SDU is one K-frame holding only the SDU Length', async () => {
    const { wire, client, server } = await connected();
    await client.send(new Uint8Array(0));
    expect(wire.at(-1)!.hex).toBe('0000');
    expect((await server.read())!.length).toBe(0);
  });

  test('refusals are typed with the spec result: no listener, security, parameters, CIDs, backlog', async () => {
    const pair = l2capPair();
    const err = await pair.central.coc.open(0x81).catch(e => e);
    expect(err).toBeInstanceOf(ChannelRefusedError);
    expect([err.code, err.result, err.resultName]).toEqual(['ECHANNELREFUSED', 0x0002, 'SPSM not supported']);
    pair.registries[1].listen(0x82, { encrypted: true });
    expect((await pair.central.coc.open(0x82).catch(e => e)).result).toBe(0x0008);
    pair.registries[1].listen(0x83, { authenticated: true });
    expect((await pair.central.coc.open(0x83).catch(e => e)).result).toBe(0x0005);
    // Raw requests: MTU 22 (< 23) → 0x000B; SCID 0x0030 → 0x0009.
    const l = pair.registries[1].listen(0x84, { backlog: 1 });
    pair.inject(pair.peripheral, 5, fromHex('14070a00 8400 4000 1600 1700 0100'));
    pair.inject(pair.peripheral, 5, fromHex('14080a00 8400 3000 1700 1700 0100'));
    await pair.settle();
    const answers = pair.wire.filter(w => w.from === 'peripheral' && w.hex.startsWith('15'));
    expect(answers.slice(-2).map(w => w.hex.slice(-4))).toEqual(['0b00', '0900']);
    // The backlog of 1 is taken by one channel nobody accepts; the next request gets No Resources.
    await pair.central.coc.open(0x84);
    expect((await pair.central.coc.open(0x84).catch(e => e)).result).toBe(0x0004);
    // The same source CID twice → 0x000A.
    pair.inject(pair.peripheral, 5, fromHex('14090a00 8400 4000 1700 1700 0100'));
    await pair.settle();
    expect(pair.wire.at(-1)!.hex.slice(-4)).toBe('0a00');
    expect(l.refusedBusy).toBe(0);
  });

  test('the link security a listener asks for is checked against the link', async () => {
    const pair = l2capPair({ security: { encrypted: true, keySize: 7, authenticated: false } });
    pair.registries[1].listen(0x90, { encrypted: true });
    pair.registries[1].listen(0x91, { encrypted: true, keySize: 16 });
    pair.registries[1].listen(0x92, { authenticated: true });
    await expect(pair.central.coc.open(0x90)).resolves.toBeTruthy();
    expect((await pair.central.coc.open(0x91).catch(e => e)).result).toBe(0x0007);
    expect((await pair.central.coc.open(0x92).catch(e => e)).result).toBe(0x0005);
  });

  test('a request that comes while an Encryption Change is being taken in is judged by the encrypted link (Linux asks again at once after its pairing)', async () => {
    // The link has just been encrypted; its key size is still being read (Vol 4, Part E, 7.5.7), so the
    // security state says "not encrypted" a moment longer. Answered by that state, the request would get
    // 0x0008 again, and Linux would then ask for MITM protection (l2cap_le_connect_rsp raises the level).
    const security = { encrypted: false, keySize: 0, authenticated: false };
    let done!: () => void;
    let settling: Promise<void> | undefined = new Promise<void>(r => { done = r; });
    const pair = l2capPair({ security, settling: () => settling });
    pair.registries[1].listen(0x99, { encrypted: true, mtu: 700, mps: 60, initialCredits: 3 });
    pair.inject(pair.peripheral, 5, fromHex('14070a00 9900 4000 2003 bc00 0500'));
    await pair.settle();
    expect(pair.wire).toEqual([]);
    Object.assign(security, { encrypted: true, keySize: 16 });
    settling = undefined;
    done();
    await pair.settle();
    // LE Credit Based Connection Response: DCID 0x0040, MTU 700, MPS 60, credits 3, Successful.
    expect(pair.wire).toEqual([{ from: 'peripheral', cid: 5, hex: '15070a00' + '4000' + 'bc02' + '3c00' + '0300' + '0000' }]);
    expect(pair.peripheral.coc.stats.requestsDeferred).toBe(1);
  });

  test('requests held while security settles: answered in order, at most 8 (then No Resources at once), none after the link is lost', async () => {
    const security = { encrypted: false, keySize: 0, authenticated: false };
    let done!: () => void;
    const settling = new Promise<void>(r => { done = r; });
    const pair = l2capPair({ security, settling: () => settling });
    pair.registries[1].listen(0x99, { encrypted: true });
    // Nine requests (identifiers 0x10..0x18, source CIDs 0x40..0x48): the ninth is refused at once.
    for (let i = 0; i < 9; i++) {
      pair.inject(pair.peripheral, 5, fromHex(`14${(0x10 + i).toString(16)}0a00 9900 ${(0x40 + i).toString(16)}00 2003 bc00 0500`));
    }
    await pair.settle();
    expect(pair.wire.map(w => w.hex)).toEqual(['15180a00' + '0000' + '0000' + '0000' + '0000' + '0400']);
    done();
    await pair.settle();
    // Still not encrypted after settling: the eight get 0x0008, in the order they came.
    expect(pair.wire.slice(1).map(w => w.hex.slice(2, 4) + w.hex.slice(-4))).toEqual(
      Array.from({ length: 8 }, (_, i) => (0x10 + i).toString(16) + '0800'));

    const again = l2capPair({ security, settling: () => new Promise<void>(() => undefined) });
    again.registries[1].listen(0x99, { encrypted: true });
    again.inject(again.peripheral, 5, fromHex('14070a00 9900 4000 2003 bc00 0500'));
    again.drop();
    await again.settle();
    expect(again.wire).toEqual([]);
  });

  test('bad arguments fail before anything is sent', async () => {
    const pair = l2capPair();
    await expect(pair.central.coc.open(0x100)).rejects.toBeInstanceOf(ArgumentError);
    await expect(pair.central.coc.open(0x80, { mtu: 22 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(pair.central.coc.open(0x80, { mps: 65534 })).rejects.toBeInstanceOf(ArgumentError);
    expect(() => pair.registries[1].listen(0)).toThrow(ArgumentError);
    pair.registries[1].listen(0x80);
    expect(() => pair.registries[1].listen(0x80)).toThrow(InvalidStateError);
    expect(pair.wire).toEqual([]);
  });

  test('a peer that never answers: the caller\'s timeout, RTX frees the CID; a late success is disconnected', async () => {
    const pair = l2capPair();
    pair.cut(); // the request never reaches the peer
    const p = pair.central.coc.open(0x80, { timeout: 1000 });
    pair.clock.advance(1000);
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
    // The answer comes after all (identifier 1): a channel nobody waits for is disconnected at once.
    pair.inject(pair.central, 5, fromHex('15010a00 4400 4000 4000 0100 0000'));
    await pair.settle();
    expect(pair.wire.at(-1)).toEqual({ from: 'central', cid: 5, hex: '06020400' + '4400' + '4000' });
    expect(pair.central.coc.openChannels).toEqual([]);
    // With no answer at all, RTX (30 s) ends the request and no timer stays behind.
    const q = pair.central.coc.open(0x80);
    pair.clock.advance(30_000);
    await expect(q).rejects.toBeInstanceOf(TimeoutError);
    pair.clock.advance(30_000); // the disconnection request's RTX too
    await pair.settle();
    expect(pair.clock.pendingTimers).toBe(0);
  });

  test('a K-frame right behind the response (same burst, no turn of the event loop) finds its channel', async () => {
    const pair = l2capPair();
    pair.cut();
    const p = pair.central.coc.open(0x80);
    pair.inject(pair.central, 5, fromHex('15010a00 4400 4000 4000 0100 0000'));
    pair.inject(pair.central, 0x40, fromHex('0200 abcd'));
    const ch = await p;
    expect(toHex((await ch.read())!)).toBe('abcd');
  });

  test('a success answer with an unusable CID or parameters is disconnected and rejects with ProtocolError', async () => {
    const pair = l2capPair();
    pair.cut();
    const p = pair.central.coc.open(0x80);
    pair.inject(pair.central, 5, fromHex('15010a00 4400 1000 4000 0100 0000')); // MTU 16 < 23
    await expect(p).rejects.toBeInstanceOf(ProtocolError);
  });

  test('RTX: a request with no answer at all rejects after 30 s and leaves no timer', async () => {
    const pair = l2capPair();
    pair.drop(); // nothing gets through any more
    await expect(pair.central.coc.open(0x80)).rejects.toBeInstanceOf(DisconnectedError);
    expect(pair.clock.pendingTimers).toBe(0);
  });
});

describe('credits', () => {
  test('never a K-frame without a credit; credits come back as the reader consumes; queues stay bounded', async () => {
    const { wire, client, server, settle } = await connected({ listen: { initialCredits: 2, mps: 23 } });
    const sends = Array.from({ length: 10 }, (_, i) => client.send(bytes(10, i)));
    await settle();
    // The server gave 2 credits and nobody reads: 2 K-frames, then the sender waits.
    const kframes = () => wire.filter(w => w.from === 'central' && w.cid === 0x40).length;
    expect(kframes()).toBe(2);
    expect(client.credits).toBe(0);
    expect(client.stats.creditStalls).toBeGreaterThan(0);
    expect(server.queued).toBe(2);
    const got: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) {
      got.push((await server.read())!);
      await settle();
      // The reader never holds more than the window (2) SDUs.
      expect(server.queued).toBeLessThanOrEqual(2);
    }
    await Promise.all(sends);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => bytes(10, i)));
    // Credits went back in Flow Control Credit Indications (code 0x16) on the server's CID.
    const inds = wire.filter(w => w.from === 'peripheral' && w.cid === 5 && w.hex.startsWith('16'));
    expect(inds.length).toBeGreaterThan(0);
    expect(inds[0]!.hex.slice(8, 12)).toBe('4000');
    expect(kframes()).toBe(10);
  });

  test('an SDU longer than the window of K-frames still gets through (partial SDUs are credited at once)', async () => {
    const { client, server } = await connected({ listen: { initialCredits: 1, mps: 23, mtu: 1000 } });
    const [, got] = await Promise.all([client.send(bytes(1000)), server.read()]);
    expect(got).toEqual(bytes(1000));
  });

  test('a peer whose credits would pass 65535 has its channel disconnected (10.1)', async () => {
    const { wire, inject, client, server, peripheral, settle } = await connected({ initialCredits: 10 });
    // The central (peer of the server) sends credits: 10 + 65530 > 65535.
    inject(peripheral, 5, fromHex('16330400 4000 faff'));
    await settle();
    const closed = await server.closed;
    expect(closed).toBeInstanceOf(ChannelClosedError);
    expect((closed as ChannelClosedError).by).toBe('protocol');
    expect(closed.message).toMatch(/65535/);
    // Disconnection Request (4.6): DCID = the peer's CID, SCID = ours.
    expect(wire.some(w => w.from === 'peripheral' && w.hex === '06010400' + '4000' + '4000')).toBe(true);
    expect(await client.closed).toBeInstanceOf(ChannelClosedError);
    expect((await client.closed as ChannelClosedError).by).toBe('peer');
  });

  test('a K-frame without a credit, above our MPS, or an SDU Length above our MTU ends the channel', async () => {
    for (const [bad, why] of [
      [(n: number) => Array.from({ length: n + 1 }, () => '0100aa'), /no credit/],
      [() => ['1800' + 'bb'.repeat(24)], /MPS/],
      [() => ['0110' + 'cc'], /MTU/],
    ] as const) {
      const { inject, server, peripheral, settle } = await connected({ listen: { initialCredits: 3, mps: 23, mtu: 100 } });
      for (const f of bad(3)) inject(peripheral, 0x40, fromHex(f));
      await settle();
      const e = await server.closed;
      expect((e as ChannelClosedError).by).toBe('protocol');
      expect(e.message).toMatch(why);
    }
  });

  test('K-frames that overrun the SDU Length end the channel', async () => {
    const { inject, server, peripheral, settle } = await connected({ listen: { initialCredits: 5, mps: 23 } });
    inject(peripheral, 0x40, fromHex('0400 0102'));
    inject(peripheral, 0x40, fromHex('030405'));
    await settle();
    expect((await server.closed).message).toMatch(/more than the SDU Length 4/);
  });
});

describe('closing', () => {
  test('close() sends Disconnection Request; the peer answers and its reads end; SDUs read before stay read', async () => {
    const { wire, client, server, settle } = await connected();
    await client.send(fromHex('aa'));
    await settle();
    await client.close();
    expect(wire.slice(-2).map(w => [w.from, w.hex])).toEqual([
      ['central', '06020400' + '4000' + '4000'], // identifier 2: the connection request had 1
      ['peripheral', '07020400' + '4000' + '4000'],
    ]);
    expect(toHex((await server.read())!)).toBe('aa');
    expect(await server.read()).toBeUndefined();
    await expect(client.send(fromHex('bb'))).rejects.toBeInstanceOf(ChannelClosedError);
    await expect(server.send(fromHex('bb'))).rejects.toMatchObject({ code: 'ECHANNELCLOSED', by: 'peer' });
    // The CIDs are free again: a new channel gets 0x0040.
    const again = await Promise.all([client.close(), server.close()]);
    expect(again).toEqual([undefined, undefined]);
  });

  test('a Disconnection Request for a CID we do not have gets Command Reject, Invalid CID (4.1)', async () => {
    const pair = l2capPair();
    pair.inject(pair.central, 5, fromHex('06050400 4500 4600'));
    await pair.settle();
    expect(pair.wire.at(-1)!.hex).toBe('01050600' + '0200' + '4500' + '4600');
  });

  test('link loss: reads and sends reject, the error is typed and carries the link\'s', async () => {
    const { client, server, drop, clock } = await connected({ listen: { initialCredits: 0 } });
    const sending = client.send(fromHex('01'));
    const reading = server.read();
    drop();
    await expect(sending).rejects.toBeInstanceOf(ChannelClosedError);
    const e = await reading.catch(x => x);
    expect(e).toMatchObject({ code: 'ECHANNELCLOSED', by: 'link' });
    expect(e.cause).toBeInstanceOf(DisconnectedError);
    expect(clock.pendingTimers).toBe(0);
  });

  test('a send abandoned in the middle of an SDU disconnects the channel (the peer would read a truncated SDU)', async () => {
    const { client, clock, settle, cut, wire } = await connected({ listen: { initialCredits: 1, mps: 23 } });
    cut(); // the peer's side hears nothing more: it never returns a credit
    const p = client.send(bytes(200), { timeout: 500 });
    await settle();
    expect(wire.filter(w => w.cid === 0x40)).toHaveLength(1);
    clock.advance(500);
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
    await settle();
    expect(((await client.closed) as ChannelClosedError).detail).toMatch(/abandoned/);
    expect(wire.at(-1)!.hex.slice(0, 2)).toBe('06'); // Disconnection Request
    // A send not yet started is only withdrawn.
    const again = await connected({ listen: { initialCredits: 0 } });
    const q = again.client.send(bytes(10), { timeout: 100 });
    again.clock.advance(100);
    await expect(q).rejects.toBeInstanceOf(TimeoutError);
    expect(again.client.open).toBe(true);
  });

  test(`more than ${MAX_QUEUED_SENDS} unawaited sends are refused at once; an SDU above the peer's MTU is an ArgumentError`, async () => {
    const { client } = await connected({ listen: { initialCredits: 0, mtu: 64 } });
    const pending = Array.from({ length: MAX_QUEUED_SENDS }, () => client.send(fromHex('00')).catch(() => undefined));
    await expect(client.send(fromHex('00'))).rejects.toBeInstanceOf(InvalidStateError);
    await expect(client.send(bytes(65))).rejects.toBeInstanceOf(ArgumentError);
    void client.close();
    await Promise.all(pending);
  });

  test(`at most ${MAX_READERS} reads wait on a channel; the next is refused at once, the waiting ones get the SDUs in order`, async () => {
    const { client, server } = await connected();
    const waiting = Array.from({ length: MAX_READERS }, () => server.read());
    const refused = server.read().then(sdu => sdu, (e: unknown) => e);
    for (let i = 0; i <= MAX_READERS; i++) await client.send(bytes(5, i));
    expect(await refused).toBeInstanceOf(InvalidStateError);
    expect(await Promise.all(waiting)).toEqual(Array.from({ length: MAX_READERS }, (_, i) => bytes(5, i)));
    // The SDU beyond the waiting readers stayed queued for the next read; served readers left room.
    expect(await server.read()).toEqual(bytes(5, MAX_READERS));
    const again = server.read();
    await client.send(bytes(3, 99));
    expect(await again).toEqual(bytes(3, 99));
  });
});

describe('enhanced credit-based mode (Core 5.2)', () => {
  test('three channels in one request; the peer reconfigures MTU up; a decrease is refused', async () => {
    const pair = l2capPair();
    const l = pair.registries[1].listen(0x85, { mtu: 128, mps: 64, initialCredits: 4 });
    const chans = await pair.central.coc.openEnhanced(0x85, 3, { mtu: 256, mps: 64, initialCredits: 8 });
    // Credit Based Connection Request (4.25): SPSM, MTU 256, MPS 64, credits 8, SCIDs 0x40..0x42.
    expect(pair.wire[0]!.hex).toBe('17010e00' + '8500' + '0001' + '4000' + '0800' + '4000' + '4100' + '4200');
    // Response (4.26): MTU 128, MPS 64, credits 4, result 0, DCIDs.
    expect(pair.wire[1]!.hex).toBe('18010e00' + '8000' + '4000' + '0400' + '0000' + '4000' + '4100' + '4200');
    const servers = [await l.accept(), await l.accept(), await l.accept()] as CreditChannel[];
    expect(chans.map(c => c.mode)).toEqual(['enhanced', 'enhanced', 'enhanced']);
    await chans[2]!.send(fromHex('0102'));
    expect(toHex((await servers[2]!.read())!)).toBe('0102');
    // The server's side asks to grow its MTU on all three (4.27), CIDs are its own.
    pair.inject(pair.central, 5, fromHex('190a0a00 0002 4000 4000 4100 4200'));
    await pair.settle();
    expect(pair.wire.at(-1)!.hex).toBe('1a0a0200' + '0000');
    expect(chans.map(c => c.mtu)).toEqual([512, 512, 512]);
    pair.inject(pair.central, 5, fromHex('190b0600 4000 4000 4000'));
    await pair.settle();
    expect(pair.wire.at(-1)!.hex).toBe('1a0b0200' + '0100'); // MTU reduction not allowed
    pair.inject(pair.central, 5, fromHex('190c0600 0004 4000 7700'));
    await pair.settle();
    expect(pair.wire.at(-1)!.hex).toBe('1a0c0200' + '0300'); // invalid destination CID
  });

  test('an enhanced request with MTU below 64 is refused with Invalid Parameters, every CID 0', async () => {
    const pair = l2capPair();
    pair.registries[1].listen(0x85);
    pair.inject(pair.peripheral, 5, fromHex('17020c00 8500 3000 4000 0100 4000 4100'));
    await pair.settle();
    expect(pair.wire.at(-1)!.hex).toBe('18020c00' + '0000' + '0000' + '0000' + '0c00' + '0000' + '0000');
  });
});

describe('ATT over a credit-based channel (the EATT seam)', () => {
  test('the ATT bearer reads through a channel; the link loss reaches it as DisconnectedError', async () => {
    const { AttBearer } = await import('../../../src/att/bearer.js');
    const { encodeAtt, decodeAtt } = await import('../../../src/att/pdus.js');
    const { client, server, clock, drop } = await connected({ mtu: 64, listen: { mtu: 64 } });
    server.setReceiver({
      data: sdu => {
        const pdu = decodeAtt(sdu);
        if (pdu.kind === 'readReq') server.send(encodeAtt({ kind: 'readRsp', value: Uint8Array.of(pdu.handle) })).catch(() => undefined);
      },
      closed: () => undefined,
    });
    const bearer = new AttBearer(client, { clock, mtu: 64 });
    expect((await bearer.request({ kind: 'readReq', handle: 9 })).value).toEqual(Uint8Array.of(9));
    drop();
    await expect(bearer.request({ kind: 'readReq', handle: 9 })).rejects.toBeInstanceOf(DisconnectedError);
  });
});
