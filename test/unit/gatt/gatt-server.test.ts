// The GattServer of src/gatt/server/ on a bare ATT bearer, driven PDU by PDU: what the simulator's
// connection-event pacing cannot show. A Handle Value Confirmation of Service Changed and the client's
// next request delivered in the same turn (one HCI read holding both): the request is served, not
// answered Database Out Of Sync. CCCDs of a bonded client come back on its next connection; an unbonded
// client's do not; the records are bounded (MAX_BONDED_RECORDS, least recently connected dropped).
// Security errors and the handler bound on the wire.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { GattServer, MAX_BONDED_RECORDS, type ServedPeer } from '../../../src/gatt/server/server.js';
import { attach, flush, OPEN } from './served-wire.js';

const peerOf = (security: { encrypted: boolean; authenticated: boolean; bonded: boolean }, identity?: string): ServedPeer<string> =>
  ({ connection: 'conn', security, identity });

describe('GattServer on a bare bearer', () => {
  test('a request right behind the Service Changed confirmation, in the same turn, is served (not Database Out Of Sync)', async () => {
    const clock = new FakeClock();
    const server = new GattServer<string>({ clock });
    await server.update([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['read'], value: 'a' }] }]);
    const w = attach(server, peerOf(OPEN), clock);
    const db = server.database;
    const csf = db.characteristic(0x2b29)!.valueHandle;
    const sc = db.characteristic(0x2a05)!;
    w.rx({ kind: 'writeReq', handle: csf, value: Uint8Array.of(1) });
    w.rx({ kind: 'writeReq', handle: sc.cccdHandle!, value: Uint8Array.of(2, 0) });
    await flush();
    expect(w.sent).toEqual([{ kind: 'writeRsp' }, { kind: 'writeRsp' }]);
    const done = server.update([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['read'], value: 'b' }, { uuid: 0xfff2, properties: ['read'], value: 'c' }] }]);
    await flush();
    const start = server.database.layout[2]!.start;
    expect(w.sent[2]).toEqual({ kind: 'handleValueInd', handle: sc.valueHandle, value: Uint8Array.of(start & 0xff, start >> 8, 0xff, 0xff) });
    // Before the confirmation the client is change-unaware: a read at a handle is refused.
    const c2 = server.handleOf(0xfff2);
    w.rx({ kind: 'readReq', handle: c2 });
    await flush();
    expect(w.sent[3]).toEqual({ kind: 'errorRsp', requestOpcode: 0x0a, handle: c2, errorCode: 0x12 });
    // The confirmation and the next read in one turn.
    w.rx({ kind: 'handleValueCfm' });
    w.rx({ kind: 'readReq', handle: c2 });
    await flush();
    expect(w.sent[4]).toEqual({ kind: 'readRsp', value: new TextEncoder().encode('c') });
    await done;
    expect(clock.pendingTimers).toBe(0);
  });

  test('while change-unaware, discovery is served and a Read By Type of the Database Hash makes the client change-aware', async () => {
    const clock = new FakeClock();
    const server = new GattServer<string>({ clock });
    const w = attach(server, peerOf(OPEN), clock);
    w.rx({ kind: 'writeReq', handle: server.database.characteristic(0x2b29)!.valueHandle, value: Uint8Array.of(1) });
    await flush();
    await server.update([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['read', 'writeWithoutResponse'], value: 'x' }] }]);
    const h = server.handleOf(0xfff1);
    w.sent.length = 0;
    w.rx({ kind: 'writeCmd', handle: h, value: Uint8Array.of(9) }); // ignored
    w.rx({ kind: 'readByGroupTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeGroupType: '00002800-0000-1000-8000-00805f9b34fb' });
    w.rx({ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeType: '00002803-0000-1000-8000-00805f9b34fb' });
    w.rx({ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0x0010, attributeType: '00002b2a-0000-1000-8000-00805f9b34fb' });
    await flush();
    expect(w.sent.map(p => p.kind)).toEqual(['readByGroupTypeRsp', 'readByTypeRsp', 'errorRsp']);
    expect(w.sent[2]).toMatchObject({ errorCode: 0x12 });
    w.rx({ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeType: '00002b2a-0000-1000-8000-00805f9b34fb' });
    w.rx({ kind: 'readReq', handle: h });
    await flush();
    expect(w.sent[3]).toMatchObject({ kind: 'readByTypeRsp' });
    expect((w.sent[3] as { attributeDataList: Array<{ value: Uint8Array }> }).attributeDataList[0]!.value).toEqual(server.database.hash);
    expect(w.sent[4]).toEqual({ kind: 'readRsp', value: new TextEncoder().encode('x') });
  });

  test('CCCDs of a bonded client are restored on its next link; an unbonded client starts unsubscribed', async () => {
    const clock = new FakeClock();
    const server = new GattServer<string>({ clock });
    await server.update([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['notify', 'indicate'] }] }]);
    const c = server.database.characteristic(0xfff1)!;
    const bonded = { encrypted: true, authenticated: false, bonded: true };
    const a = attach(server, peerOf(bonded, '0/AA:BB:CC:DD:EE:01'), clock);
    const b = attach(server, peerOf(OPEN, '0/AA:BB:CC:DD:EE:02'), clock);
    a.rx({ kind: 'writeReq', handle: c.cccdHandle!, value: Uint8Array.of(2, 0) });
    b.rx({ kind: 'writeReq', handle: c.cccdHandle!, value: Uint8Array.of(1, 0) });
    await flush();
    expect(server.subscribers(0xfff1, 'indication')).toHaveLength(1);
    a.close();
    b.close();
    expect(server.connections).toHaveLength(0);
    const a2 = attach(server, peerOf(bonded, '0/AA:BB:CC:DD:EE:01'), clock);
    const b2 = attach(server, peerOf(OPEN, '0/AA:BB:CC:DD:EE:02'), clock);
    expect(server.subscribers(0xfff1, 'indication')).toHaveLength(1);
    expect(server.subscribers(0xfff1, 'notification')).toHaveLength(0);
    a2.rx({ kind: 'readReq', handle: c.cccdHandle! });
    await flush();
    expect(a2.sent[0]).toEqual({ kind: 'readRsp', value: Uint8Array.of(2, 0) });
    const sent = server.indicate(0xfff1, Uint8Array.of(5));
    await flush();
    expect(a2.sent[1]).toEqual({ kind: 'handleValueInd', handle: c.valueHandle, value: Uint8Array.of(5) });
    expect(b2.sent).toEqual([]);
    a2.rx({ kind: 'handleValueCfm' });
    expect(await sent).toBe(1);
  });

  test('bonded clients\' CCCD records are bounded: the least recently connected of MAX_BONDED_RECORDS + 1 is forgotten', async () => {
    // Every bonded client that connects, subscribes and leaves adds a record (Vol 3, Part G, 3.3.3.3);
    // bonds are cheap for a peer to make (Just Works), so the records are capped and the one whose
    // client connected least recently goes first.
    const clock = new FakeClock();
    const server = new GattServer<string>({ clock });
    await server.update([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['notify'] }] }]);
    const c = server.database.characteristic(0xfff1)!;
    const bonded = { encrypted: true, authenticated: false, bonded: true };
    const id = (i: number): string => `1/C0:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
    const visit = async (i: number): Promise<void> => {
      const w = attach(server, peerOf(bonded, id(i)), clock);
      w.rx({ kind: 'writeReq', handle: c.cccdHandle!, value: Uint8Array.of(1, 0) });
      await flush();
      expect(w.sent).toEqual([{ kind: 'writeRsp' }]);
      w.close();
    };
    for (let i = 0; i < MAX_BONDED_RECORDS; i++) await visit(i);
    await visit(0); // client 0 comes back: now client 1 is the least recently connected
    await visit(MAX_BONDED_RECORDS); // one record too many
    expect(server.remembers(id(1))).toBe(false);
    for (const i of [0, 2, MAX_BONDED_RECORDS - 1, MAX_BONDED_RECORDS]) expect(server.remembers(id(i)), id(i)).toBe(true);
    // On the wire: client 1's next link starts unsubscribed, client 2's is subscribed again.
    const one = attach(server, peerOf(bonded, id(1)), clock);
    const two = attach(server, peerOf(bonded, id(2)), clock);
    one.rx({ kind: 'readReq', handle: c.cccdHandle! });
    two.rx({ kind: 'readReq', handle: c.cccdHandle! });
    await flush();
    expect(one.sent).toEqual([{ kind: 'readRsp', value: Uint8Array.of(0, 0) }]);
    expect(two.sent).toEqual([{ kind: 'readRsp', value: Uint8Array.of(1, 0) }]);
    // Preloaded records (the adapter's bond store at open) obey the same bound.
    for (let i = 1000; i < 1000 + MAX_BONDED_RECORDS; i++) server.preload(id(i), { '0000fff0-0000-1000-8000-00805f9b34fb/0000fff1-0000-1000-8000-00805f9b34fb': 1 });
    expect(server.remembers(id(2))).toBe(false);
    expect(server.remembers(id(1000))).toBe(true);
  });

  test('security is checked before the handler; encrypted links pass; a Read By Type stops before an attribute the link may not read', async () => {
    const clock = new FakeClock();
    const server = new GattServer<string>({ clock });
    let reads = 0;
    await server.update([{ uuid: 0xfff0, characteristics: [
      { uuid: 0xfff1, properties: ['read'], value: 'open' },
      { uuid: 0xfff1, properties: ['read'], security: 'encrypted', onRead: () => { reads++; return 'enc'; } },
      { uuid: 0xfff3, properties: ['read', 'write'], security: 'authenticated', value: 'auth' },
    ] }]);
    const [open, secret] = server.database.layout[2]!.characteristics;
    const auth = server.database.characteristic(0xfff3)!;
    const w = attach(server, peerOf(OPEN), clock);
    w.rx({ kind: 'readReq', handle: secret!.valueHandle });
    w.rx({ kind: 'writeReq', handle: auth.valueHandle, value: Uint8Array.of(1) });
    w.rx({ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeType: '0000fff1-0000-1000-8000-00805f9b34fb' });
    await flush();
    expect(w.sent).toEqual([
      { kind: 'errorRsp', requestOpcode: 0x0a, handle: secret!.valueHandle, errorCode: 0x0f },
      { kind: 'errorRsp', requestOpcode: 0x12, handle: auth.valueHandle, errorCode: 0x05 },
      { kind: 'readByTypeRsp', attributeDataList: [{ handle: open!.valueHandle, value: new TextEncoder().encode('open') }] },
    ]);
    expect(reads).toBe(0);
    const e = attach(server, peerOf({ encrypted: true, authenticated: false, bonded: false }), clock);
    e.rx({ kind: 'readReq', handle: secret!.valueHandle });
    await flush();
    expect(e.sent).toEqual([{ kind: 'readRsp', value: new TextEncoder().encode('enc') }]);
    e.rx({ kind: 'readReq', handle: auth.valueHandle });
    await flush();
    expect(e.sent[1]).toEqual({ kind: 'errorRsp', requestOpcode: 0x0a, handle: auth.valueHandle, errorCode: 0x05 });
  });

  test('a slow handler holds the requests behind it (in order), and its bound frees them', async () => {
    const clock = new FakeClock();
    const server = new GattServer<string>({ clock, handlerTimeoutMs: 1000 });
    await server.update([{ uuid: 0xfff0, characteristics: [
      { uuid: 0xfff1, properties: ['read'], onRead: () => new Promise<string>(() => undefined) },
      { uuid: 0xfff2, properties: ['read'], value: 'fast' },
    ] }]);
    const w = attach(server, peerOf(OPEN), clock);
    w.rx({ kind: 'readReq', handle: server.handleOf(0xfff1) });
    w.rx({ kind: 'readReq', handle: server.handleOf(0xfff2) });
    await flush();
    expect(w.sent).toEqual([]);
    clock.advance(1000);
    await flush();
    expect(w.sent).toEqual([
      { kind: 'errorRsp', requestOpcode: 0x0a, handle: server.handleOf(0xfff1), errorCode: 0x0e },
      { kind: 'readRsp', value: new TextEncoder().encode('fast') },
    ]);
  });
});
