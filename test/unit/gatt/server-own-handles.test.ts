// User services that carry their own handles (a device twin's captured layout) keep them, gaps included,
// and the server's own GAP and GATT services go where there is room: at the handles asked for
// (ServeOptions.ownServices: where the twin's own GAP / GATT were) when free, else in the first free room,
// else after the last service. Reads and writes of our own services' values reach onOwnServiceAccess;
// the user's do not. Checked on a bare ATT bearer with the client's own requests.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { GattServer, type OwnServiceAccess, type ServedService } from '../../../src/gatt/server/server.js';
import { uuid } from '../../../src/codec/uuid.js';
import { attach as attachPeer, flush, OPEN } from './served-wire.js';

const attach = (server: GattServer<string>, clock: FakeClock) => attachPeer(server, { connection: 'conn', security: OPEN, identity: undefined }, clock);
const starts = (server: GattServer<string>): Array<[string, number, number]> =>
  server.database.layout.map(s => [s.uuid.slice(4, 8), s.start, s.end]);

/** The layout of captures/twin-lumentree: its GATT at 1-5, GAP at 0x14-0x1C, its service from 0x28 to 0xFFFF. */
const LUMENTREE: ServedService<string>[] = [{
  uuid: 0xffe0, handle: 0x28, endHandle: 0xffff, characteristics: [
    { uuid: 0xffe1, handle: 0x29, properties: ['read', 'notify'], value: 'x', cccdHandle: 0x2b },
  ],
}];

describe('user services with their own handles', () => {
  test('keep them; our GAP and GATT go where the file had its own when they fit (twin-lumentree layout)', async () => {
    const server = new GattServer<string>({ clock: new FakeClock() });
    await server.update(LUMENTREE, { ownServices: { gap: 0x14, gatt: 0x01 } });
    // Our GATT (8 handles: Service Changed + CCCD, Client Supported Features, Database Hash) at 1-8 where the
    // twin's GATT began; our GAP (5: Device Name, Appearance) at 0x14, where the twin's GAP was, so our
    // Device Name value is 0x16 as the device's was.
    expect(starts(server)).toEqual([['1801', 1, 8], ['1800', 0x14, 0x18], ['ffe0', 0x28, 0xffff]]);
    expect(server.database.characteristic(0x2a00)!.valueHandle).toBe(0x16);
    const c = server.database.characteristic(0xffe1)!;
    expect([c.declHandle, c.valueHandle, c.cccdHandle]).toEqual([0x29, 0x2a, 0x2b]);
    expect(server.services.map(s => s.start)).toEqual([0x28]);
  });

  test('no room at the handle asked for: the first free room; no room below: after the last service', async () => {
    const server = new GattServer<string>({ clock: new FakeClock() });
    // Asked for 0x10 but a service starts at 0x12: GAP (5) does not fit at 0x10-0x11; first room is 1.
    await server.update([
      { uuid: 0xfff0, handle: 0x12, characteristics: [{ uuid: 0xfff1, properties: ['read'] }] },
      { uuid: 0xfff8, handle: 0x20, endHandle: 0x30 },
    ], { ownServices: { gap: 0x10 } });
    expect(starts(server)).toEqual([['1800', 1, 5], ['1801', 6, 13], ['fff0', 0x12, 0x14], ['fff8', 0x20, 0x30]]);
    // The low handles all taken: ours follow the last service.
    await server.update([{ uuid: 0xfff0, handle: 1, endHandle: 0x40 }]);
    expect(starts(server)).toEqual([['fff0', 1, 0x40], ['1800', 0x41, 0x45], ['1801', 0x46, 0x4d]]);
  });

  test('characteristic and descriptor handles with gaps are kept; going back over an earlier attribute is refused', async () => {
    const server = new GattServer<string>({ clock: new FakeClock() });
    await server.update([{ uuid: 0xfff0, handle: 0x30, characteristics: [
      { uuid: 0xfff1, handle: 0x34, properties: ['read'], descriptors: [{ uuid: 0x2901, handle: 0x38, value: 'label' }] },
      { uuid: 0xfff2, handle: 0x40, properties: ['notify'], cccdHandle: false },
    ] }]);
    const a = server.database.characteristic(0xfff1)!;
    expect([a.declHandle, a.valueHandle, a.descriptors]).toEqual([0x34, 0x35, [{ uuid: uuid(0x2901), handle: 0x38 }]]);
    const b = server.database.characteristic(0xfff2)!;
    expect([b.declHandle, b.valueHandle, b.cccdHandle]).toEqual([0x40, 0x41, undefined]);
    await expect(server.update([{ uuid: 0xfff0, handle: 0x30, characteristics: [
      { uuid: 0xfff1, handle: 0x34, properties: ['read'] },
      { uuid: 0xfff2, handle: 0x35, properties: ['read'] },
    ] }])).rejects.toThrow(/characteristic .*fff2.* at 0x35: before the next free handle 0x36/);
    // A refused update leaves the database served as it was.
    expect(server.database.characteristic(0xfff1)!.declHandle).toBe(0x34);
  });

  test('without handles, ours come first as before; a full handle space leaves no room for ours', async () => {
    const server = new GattServer<string>({ clock: new FakeClock() });
    await server.update([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['read'] }] }]);
    expect(starts(server)).toEqual([['1800', 1, 5], ['1801', 6, 13], ['fff0', 14, 16]]);
    await expect(server.update([{ uuid: 0xfff0, handle: 1, endHandle: 0xfffc }])).rejects.toThrow(/no room for our GAP service \(5 handles\)/);
  });
});

describe('reads and writes of our own GAP / GATT values', () => {
  test('reach onOwnServiceAccess with the value; the user\'s attributes do not', async () => {
    const clock = new FakeClock();
    const server = new GattServer<string>({ clock, name: 'twin' });
    await server.update(LUMENTREE, { ownServices: { gap: 0x14, gatt: 0x01 } });
    const seen: Array<OwnServiceAccess<string>> = [];
    const off = server.onOwnServiceAccess(a => seen.push(a));
    const w = attach(server, clock);
    const csf = server.database.characteristic(0x2b29)!.valueHandle;
    w.rx({ kind: 'readReq', handle: 0x16 });
    await flush();
    w.rx({ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeType: uuid(0x2b2a) });
    await flush();
    w.rx({ kind: 'writeReq', handle: csf, value: Uint8Array.of(1) });
    await flush();
    w.rx({ kind: 'readReq', handle: 0x2a });
    await flush();
    expect(w.sent.map(p => p.kind)).toEqual(['readRsp', 'readByTypeRsp', 'writeRsp', 'readRsp']);
    expect(seen.map(a => [a.connection, a.op, a.handle, a.uuid.slice(4, 8), Buffer.from(a.value).toString('hex')])).toEqual([
      ['conn', 'read', 0x16, '2a00', Buffer.from('twin').toString('hex')],
      ['conn', 'read', server.database.characteristic(0x2b2a)!.valueHandle, '2b2a', Buffer.from(server.database.hash).toString('hex')],
      ['conn', 'write', csf, '2b29', '01'],
    ]);
    off();
    w.rx({ kind: 'readReq', handle: 0x16 });
    await flush();
    expect(seen).toHaveLength(3);
  });
});
