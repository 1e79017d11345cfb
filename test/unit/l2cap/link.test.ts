// Pins per-link L2CAP: routing of reassembled PDUs to ATT/SMP, fragmentation to the ACL size with the
// right boundary flags, the LE signalling handlers (parameter update accept/reject, Command Reject,
// identifiers never 0, RTX timeout) and closing with DisconnectedError.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { toHex, fromHex } from '../../../src/bytes/hex.js';
import { DisconnectedError, InvalidStateError, TimeoutError } from '../../../src/errors.js';
import { L2capLink, MAX_OWED_SIGNALLING_REPLIES, type ConnectionParameterRequest } from '../../../src/l2cap/link.js';
import { decodeAcl } from '../../../src/hci/acl.js';

function setup(role: 'central' | 'peripheral' = 'central', accept?: (p: ConnectionParameterRequest) => boolean) {
  const clock = new FakeClock();
  const out: Array<{ pb: number; data: string }> = [];
  const updates: ConnectionParameterRequest[] = [];
  const link = new L2capLink({
    aclDataLength: 8,
    sendAcl: (_h, packets) => {
      for (const p of packets) { const a = decodeAcl(p); out.push({ pb: a.pb, data: toHex(a.data) }); }
      return Promise.resolve();
    },
  }, 0x40, { clock, role, acceptParameters: accept, onParameterUpdate: p => updates.push(p) });
  return { clock, out, link, updates };
}

describe('l2cap link', () => {
  test('fragments an SDU into one B-frame cut to the ACL size: PB 00 first, 01 after', async () => {
    const { link, out } = setup();
    await link.att.send(fromHex('52 03 00 01 02 03 04 05'));
    expect(out).toEqual([
      { pb: 0, data: '0800040052030001' }, // length 8, CID 4, then payload
      { pb: 1, data: '02030405' },
    ]);
  });

  test('routes reassembled PDUs to ATT and SMP; queues until a receiver is set; unknown CIDs dropped', () => {
    const { link } = setup();
    link.acl(2, fromHex('0500 0400 0b01')); // start of a 5-byte ATT PDU
    link.acl(1, fromHex('020304'));
    link.acl(2, fromHex('0100 0600 01'));
    link.acl(2, fromHex('0100 4100 01'));
    const att: string[] = [];
    const smp: string[] = [];
    link.att.setReceiver({ data: d => att.push(toHex(d)), closed: () => undefined });
    link.smp.setReceiver({ data: d => smp.push(toHex(d)), closed: () => undefined });
    expect(att).toEqual(['0b01020304']);
    expect(smp).toEqual(['01']);
    expect(link.stats.unknownCid).toBe(1);
  });

  test('answers a valid Connection Parameter Update Request with accepted and applies it', () => {
    const { link, out, updates } = setup();
    // code 0x12, id 7, len 8: interval 24..40 (30..50 ms), latency 0, timeout 400 (4 s)
    link.acl(2, fromHex('0c00 0500 12 07 0800 1800 2800 0000 9001'));
    expect(out.map(o => o.data).join('')).toBe('0600050013070200' + '0000');
    expect(updates).toEqual([{ intervalMin: 24, intervalMax: 40, latency: 0, timeout: 400 }]);
  });

  test('rejects invalid parameters, and per policy', () => {
    const { link, out, updates } = setup('central', p => p.intervalMin >= 24);
    link.acl(2, fromHex('0c00 0500 12 01 0800 0600 0600 0000 0a00')); // timeout 100 ms < 2*7.5 ms… ok; min 6 → policy no
    link.acl(2, fromHex('0c00 0500 12 02 0800 2800 1800 0000 9001')); // min > max: invalid
    expect(out.map(o => o.data)).toEqual(['0600050013010200', '0100', '0600050013020200', '0100']);
    expect(updates).toEqual([]);
  });

  test('unknown signalling codes get Command Reject "not understood" with the same identifier', () => {
    const { link, out } = setup();
    link.acl(2, fromHex('0800 0500 7f 09 0400 01020304'));
    // length 6, CID 5, code 0x01 id 9 length 2, reason 0x0000 (Vol 3, Part A, 4.1)
    expect(out.map(o => o.data).join('')).toBe('0600050001090200' + '0000');
    expect(link.stats.commandRejectsSent).toBe(1);
  });

  test('a truncated signalling command is rejected too', () => {
    const { link, out } = setup();
    link.acl(2, fromHex('0500 0500 12 05 0800 18')); // claims 8 bytes of parameters, carries 1
    expect(out.map(o => o.data).join('')).toBe('0600050001050200' + '0000');
  });

  test('our requests use identifiers 1..255 (never 0) and time out on RTX', async () => {
    const { link, out, clock } = setup('peripheral');
    const p = link.requestConnectionParameterUpdate({ intervalMin: 24, intervalMax: 40, latency: 0, timeout: 400 });
    expect(out[0]!.data).toBe('0c00050012010800'); // length 12, CID 5, code 0x12, id 1, len 8
    link.acl(2, fromHex('0600 0500 13 01 0200 0000'));
    await expect(p).resolves.toBe(true);
    const ids = new Set<number>();
    for (let i = 0; i < 255; i++) {
      void link.request({ kind: 'connectionParameterUpdateReq', intervalMin: 24, intervalMax: 40, latency: 0, timeout: 400 }).catch(() => undefined);
      ids.add(parseInt(out.filter(o => o.pb === 0).pop()!.data.slice(10, 12), 16)); // identifier: octet 5 of the frame
    }
    expect(ids.has(0)).toBe(false);
    expect(ids.size).toBe(255); // 2..255, then 1 again once it was released
    const q = link.request({ kind: 'connectionParameterUpdateReq', intervalMin: 24, intervalMax: 40, latency: 0, timeout: 400 });
    await expect(q).rejects.toBeInstanceOf(InvalidStateError); // all 255 identifiers busy
    clock.advance(30_000);
    const r = link.request({ kind: 'connectionParameterUpdateReq', intervalMin: 24, intervalMax: 40, latency: 0, timeout: 400 });
    clock.advance(30_000);
    await expect(r).rejects.toBeInstanceOf(TimeoutError);
    expect(clock.pendingTimers).toBe(0);
  });

  test('a central does not send Connection Parameter Update Request', async () => {
    const { link } = setup('central');
    await expect(link.requestConnectionParameterUpdate({ intervalMin: 24, intervalMax: 40, latency: 0, timeout: 400 }))
      .rejects.toBeInstanceOf(InvalidStateError);
  });

  test('close: receivers and pending requests get DisconnectedError; sends reject', async () => {
    const { link, clock } = setup('peripheral');
    const closed: unknown[] = [];
    link.att.setReceiver({ data: () => undefined, closed: e => closed.push(e) });
    const p = link.request({ kind: 'connectionParameterUpdateReq', intervalMin: 24, intervalMax: 40, latency: 0, timeout: 400 });
    const err = new DisconnectedError('link', 0x08, 'Connection Timeout');
    link.close(err);
    await expect(p).rejects.toBe(err);
    expect(closed).toEqual([err]);
    await expect(link.att.send(Uint8Array.of(1))).rejects.toBe(err);
    expect(clock.pendingTimers).toBe(0);
  });

  test(`a peer flooding signalling requests while the link takes nothing is owed at most ${MAX_OWED_SIGNALLING_REPLIES} replies; the rest are dropped and counted`, async () => {
    const clock = new FakeClock();
    const sends: Array<{ data: string; done: () => void }> = [];
    const link = new L2capLink({
      aclDataLength: 27,
      sendAcl: (_h, packets) => new Promise<void>(resolve => sends.push({ data: toHex(decodeAcl(packets[0]!).data), done: resolve })),
    }, 0x40, { clock, role: 'central' });
    // MAX + 100 Echo Requests (code 0x08, not valid on LE: Command Reject "not understood"), ids cycling 1..255.
    const N = MAX_OWED_SIGNALLING_REPLIES + 100;
    const id = (i: number) => (i % 255) + 1;
    for (let i = 0; i < N; i++) link.acl(2, Uint8Array.of(0x04, 0x00, 0x05, 0x00, 0x08, id(i), 0x00, 0x00));
    expect(sends.length).toBe(MAX_OWED_SIGNALLING_REPLIES);
    expect(link.stats.dropped).toBe(100);
    // Command Reject (0x01) with the request's identifier, reason 0x0000 (Vol 3, Part A, 4.1).
    expect(sends.slice(0, 3).map(s => s.data)).toEqual([0, 1, 2].map(i => `06000500 01 ${id(i).toString(16).padStart(2, '0')} 0200 0000`.replace(/ /g, '')));
    // Once they are on the wire, the next request is answered again.
    for (const s of sends.splice(0)) s.done();
    await new Promise(r => setTimeout(r, 0));
    link.acl(2, fromHex('0400 0500 08 c8 0000'));
    expect(sends.map(s => s.data)).toEqual(['06000500' + '01c802000000']);
  });
});

describe('the L2capChannel abstraction', () => {
  test('a fixed channel reports the B-frame limit as its MTU; close() drops what arrives later and refuses sends', async () => {
    const { link, out } = setup();
    expect(link.att.mtu).toBe(0xffff);
    const got: string[] = [];
    link.att.setReceiver({ data: d => got.push(toHex(d)), closed: () => undefined });
    link.acl(2, fromHex('0100 0400 0a'));
    link.att.close();
    link.acl(2, fromHex('0100 0400 0b'));
    expect(got).toEqual(['0a']);
    expect(link.stats.dropped).toBe(1);
    await expect(link.att.send(Uint8Array.of(1))).rejects.toBeInstanceOf(InvalidStateError);
    expect(out).toEqual([]);
    // The SMP channel of the same link is untouched.
    await link.smp.send(Uint8Array.of(0x05, 0x05));
    expect(out.map(o => o.data)).toEqual(['020006000505']);
  });

  test('the ATT bearer runs unchanged over a channel that is not a fixed one (the EATT seam)', async () => {
    const { AttBearer } = await import('../../../src/att/bearer.js');
    const { encodeAtt } = await import('../../../src/att/pdus.js');
    const clock = new FakeClock();
    const sent: string[] = [];
    let receiver: import('../../../src/l2cap/channel.js').ChannelReceiver | undefined;
    // A credit-based channel as the bearer would see it: dynamic CID, the peer's MTU.
    const channel: import('../../../src/l2cap/channel.js').L2capChannel = {
      handle: 0x40, cid: 0x0040, mtu: 64,
      send: sdu => { sent.push(toHex(sdu)); return Promise.resolve(); },
      setReceiver: r => { receiver = r; },
      close: () => { receiver = undefined; },
    };
    const bearer = new AttBearer(channel, { clock, mtu: 64 });
    const read = bearer.request({ kind: 'readReq', handle: 3 });
    expect(sent).toEqual(['0a0300']);
    receiver!.data(encodeAtt({ kind: 'readRsp', value: Uint8Array.of(7) }));
    expect((await read).value).toEqual(Uint8Array.of(7));
    receiver!.closed(new DisconnectedError('link', 0x13));
    await expect(bearer.request({ kind: 'readReq', handle: 3 })).rejects.toBeInstanceOf(DisconnectedError);
  });
});
