// The user-facing GATT server (adapter.serve) on the shared simulated air: a blewire central against
// a blewire peripheral. Discovery, static and handler reads, long reads and writes, Write Without
// Response, security answers (Insufficient Encryption 0x0F / Authentication 0x05), notify and
// indicate to subscribers with per-link CCCDs, handler time bounds, Service Changed and robust
// caching (a change-unaware client gets Database Out Of Sync until it confirms Service Changed or
// reads the Database Hash, and its rediscovery after the confirmation works), and hostile clients.
// ATT PDUs are checked on the wire: the peripheral's HCI traffic is tapped under its host.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter, type AdapterOpenOptions } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { AttError, BearerClosedError, TimeoutError } from '../../src/errors.js';
import { GattServerError, type ServedService } from '../../src/gatt/server/server.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';
import { toHex } from '../../src/bytes/hex.js';
import { FileBondStore, MemoryBondStore } from '../../src/smp/bonds.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SVC = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** ATT PDUs (CID 0x0004) the peripheral's host sent (tx) and received (rx), as hex, in order. */
function tap(inner: HciTransport): { transport: HciTransport; att: Array<{ dir: 'tx' | 'rx'; hex: string }> } {
  const att: Array<{ dir: 'tx' | 'rx'; hex: string }> = [];
  const grab = (dir: 'tx' | 'rx', p: Uint8Array): void => {
    // H4 ACL: type 0x02, handle+flags (2), length (2), L2CAP length (2), CID (2), payload.
    if (p[0] !== 0x02 || p.length < 9) return;
    const flags = (p[2]! >> 4) & 0x3;
    if (flags === 0x1) return; // a continuation fragment: ATT PDUs checked here fit one fragment
    if ((p[7]! | (p[8]! << 8)) !== 0x0004) return;
    att.push({ dir, hex: toHex(p.subarray(9)) });
  };
  const transport: HciTransport = {
    ...(inner.clock ? { clock: inner.clock } : {}),
    description: inner.description,
    send: p => { grab('tx', p); inner.send(p); },
    setReceiver: (r: TransportReceiver) => inner.setReceiver({ packet: p => { grab('rx', p); r.packet(p); }, closed: e => r.closed(e) }),
    close: () => inner.close(),
  };
  return { transport, att };
}

const open: Adapter[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close().catch(() => undefined);
});

async function setup(opts: { central?: Partial<AdapterOpenOptions>; handlerTimeoutMs?: number } = {}) {
  const air = new SimAir();
  const ps = createSimulator({ name: 'peripheral', peripherals: [] }, { air });
  const cs = createSimulator({ name: 'central', peripherals: [] }, { air });
  const tapped = tap(ps.transport);
  const peripheral = await Adapter.open({ transport: tapped.transport, bonds: false });
  const central = await Adapter.open({ transport: cs.transport, bonds: false, ...opts.central });
  open.push(central, peripheral);
  return { air, peripheral, central, att: tapped.att, clock: air.clock, centralSim: cs };
}

async function connect(peripheral: Adapter, central: Adapter): Promise<{ conn: Connection; incoming: Connection }> {
  const accepted = peripheral.accept();
  await peripheral.advertise({ name: 'srv' });
  const ad = await central.find({ name: 'srv', timeout: 5000 });
  const conn = await central.connect(ad!);
  const incoming = (await accepted.next()).value as Connection;
  await accepted.return!();
  return { conn, incoming };
}

describe('adapter.serve on the simulated air', () => {
  test('discovery, static and handler reads, writes and Write Without Response, with the connection given to handlers', async () => {
    const { peripheral, central, att } = await setup({ central: { mtu: 23 } });
    const writes: Array<{ value: string; command: boolean; prepared: boolean; role: string | undefined }> = [];
    const long = 'x'.repeat(100) + 'y'.repeat(100);
    const services: ServedService<Connection>[] = [{ uuid: SVC, characteristics: [
      { uuid: 0x2a29, properties: ['read'], value: 'blewire inc.' },
      { uuid: 0xfff1, properties: ['read'], onRead: async ({ connection, offset }) => `${connection.role}@${offset}` },
      { uuid: 0xfff2, properties: ['read'], value: long },
      { uuid: 0xfff3, properties: ['write', 'writeWithoutResponse', 'read'], maxLength: 300,
        onWrite: async (value, req) => { writes.push({ value: dec(value), command: req.command, prepared: req.prepared, role: req.connection.role }); } },
      { uuid: 0xfff4, properties: ['read'], descriptors: [{ uuid: 0x2901, value: 'user description' }] },
    ] }];
    const server = await peripheral.serve(services);
    const { conn } = await connect(peripheral, central);
    const svc = (await conn.services()).find(s => s.uuid === SVC);
    expect(svc).toBeDefined();
    expect(dec(await (await conn.characteristic(SVC, 0x2a29)).read())).toBe('blewire inc.');
    const h = await conn.characteristic(SVC, 0xfff1);
    expect(dec(await h.read())).toBe('peripheral@0');
    // Read Request on the wire, the handler's value in the Read Response.
    const vh = server.handleOf(0xfff1);
    const lo = (vh & 0xff).toString(16).padStart(2, '0'), hi = (vh >> 8).toString(16).padStart(2, '0');
    expect(att).toContainEqual({ dir: 'rx', hex: `0a${lo}${hi}` });
    expect(att).toContainEqual({ dir: 'tx', hex: '0b' + toHex(new TextEncoder().encode('peripheral@0')) });
    // A long read at ATT_MTU 23: Read then Read Blob at 22, 44, … (Vol 3, Part G, 4.8.3).
    expect(dec(await (await conn.characteristic(SVC, 0xfff2)).read())).toBe(long);
    const lh = server.handleOf(0xfff2);
    expect(att).toContainEqual({ dir: 'rx', hex: `0c${toHex(Uint8Array.of(lh & 0xff, lh >> 8))}1600` });
    // Write, long write (prepare queue), Write Without Response.
    const w = await conn.characteristic(SVC, 0xfff3);
    await w.write(new TextEncoder().encode('hello'));
    const big = 'z'.repeat(60);
    await w.write(new TextEncoder().encode(big));
    await w.write(new TextEncoder().encode('cmd'), { withResponse: false });
    await expect.poll(() => writes.length, { timeout: 2000 }).toBe(3);
    expect(writes).toEqual([
      { value: 'hello', command: false, prepared: false, role: 'peripheral' },
      { value: big, command: false, prepared: true, role: 'peripheral' },
      { value: 'cmd', command: true, prepared: false, role: 'peripheral' },
    ]);
    expect(dec(server.value(0xfff3))).toBe('cmd');
    expect(dec(await w.read())).toBe('cmd');
    const wh = server.handleOf(0xfff3);
    expect(att).toContainEqual({ dir: 'rx', hex: `12${toHex(Uint8Array.of(wh & 0xff, wh >> 8))}${toHex(new TextEncoder().encode('hello'))}` });
    expect(att).toContainEqual({ dir: 'tx', hex: '13' });
    expect(att).toContainEqual({ dir: 'rx', hex: `52${toHex(Uint8Array.of(wh & 0xff, wh >> 8))}${toHex(new TextEncoder().encode('cmd'))}` });
    const d = (await conn.characteristic(SVC, 0xfff4)).descriptor(0x2901);
    expect(dec(await d.read())).toBe('user description');
  });

  test('handlers refuse with their ATT code; a handler that never answers gets Unlikely Error at its bound; values beyond maxLength are refused', async () => {
    const { peripheral, central, clock } = await setup();
    let hung = 0;
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read', 'write'], onRead: () => { throw new GattServerError(0x80); }, onWrite: () => { throw new GattServerError(0x81); } },
      { uuid: 0xfff2, properties: ['read'], onRead: () => { hung++; return new Promise<Uint8Array>(() => undefined); } },
      { uuid: 0xfff3, properties: ['write'], maxLength: 4 },
      { uuid: 0xfff4, properties: ['read'], onRead: () => { throw new Error('bug in the app'); } },
    ] }]);
    const { conn } = await connect(peripheral, central);
    const c1 = await conn.characteristic(SVC, 0xfff1);
    await expect(c1.read()).rejects.toMatchObject({ code: 'EATT', errorCode: 0x80 });
    await expect(c1.write(Uint8Array.of(1))).rejects.toMatchObject({ errorCode: 0x81 });
    const t0 = clock.now();
    await expect((await conn.characteristic(SVC, 0xfff2)).read()).rejects.toMatchObject({ errorCode: 0x0e });
    expect(hung).toBe(1);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(5000);
    expect(clock.now() - t0).toBeLessThan(6000);
    await expect((await conn.characteristic(SVC, 0xfff3)).write(Uint8Array.of(1, 2, 3, 4, 5))).rejects.toMatchObject({ errorCode: 0x0d });
    await expect((await conn.characteristic(SVC, 0xfff4)).read()).rejects.toMatchObject({ errorCode: 0x0e });
    // The link still serves after all of it.
    await (await conn.characteristic(SVC, 0xfff3)).write(Uint8Array.of(9));
    expect([...server.value(0xfff3)]).toEqual([9]);
  });

  test('security: encrypted and authenticated accesses answer 0x0F and 0x05 on an unencrypted link, before any handler runs', async () => {
    const { peripheral, central, att } = await setup({ central: { pairing: false } });
    let calls = 0;
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read', 'write'], security: 'encrypted', onRead: () => { calls++; return 'secret'; }, onWrite: () => { calls++; } },
      { uuid: 0xfff2, properties: ['read', 'write'], security: { read: 'authenticated', write: 'none' }, value: 'pin' },
    ] }]);
    const { conn } = await connect(peripheral, central);
    const enc = await conn.characteristic(SVC, 0xfff1);
    const err = await enc.read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttError);
    expect((err as AttError).errorCode).toBe(0x0f);
    await expect(enc.write(Uint8Array.of(1))).rejects.toMatchObject({ errorCode: 0x0f });
    const auth = await conn.characteristic(SVC, 0xfff2);
    await expect(auth.read()).rejects.toMatchObject({ errorCode: 0x05 });
    await auth.write(new TextEncoder().encode('ok'));
    expect(dec(server.value(0xfff2))).toBe('ok');
    expect(calls).toBe(0);
    const h = server.handleOf(0xfff1);
    const hh = toHex(Uint8Array.of(h & 0xff, h >> 8));
    expect(att).toContainEqual({ dir: 'tx', hex: `010a${hh}0f` });
    expect(att).toContainEqual({ dir: 'tx', hex: `0112${hh}0f` });
  });

  test('authorization: a refused access answers Insufficient Authorization 0x08 after security and before handlers; the hook is bounded by the handler time', async () => {
    const { peripheral, central, att, clock } = await setup({ central: { pairing: false } });
    const asked: Array<{ handle: number; uuid: string; op: string; command: boolean; role: string | undefined }> = [];
    let allow = false;
    let reads = 0;
    const writes: string[] = [];
    // authorize: true with no server hook is a configuration error, refused before anything changes.
    await expect(peripheral.serve([{ uuid: SVC, characteristics: [{ uuid: 0xfff1, properties: ['read'], authorize: true }] }]))
      .rejects.toMatchObject({ code: 'EARGUMENT' });
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read', 'write', 'writeWithoutResponse'], authorize: true, value: 'v0',
        onRead: () => { reads++; return 'read by handler'; }, onWrite: v => { writes.push(dec(v)); } },
      { uuid: 0xfff2, properties: ['read'], authorize: () => new Promise<boolean>(() => undefined), value: 'never' },
      { uuid: 0xfff3, properties: ['read'], authorize: () => { throw new GattServerError(0x80); }, value: 'app' },
      { uuid: 0xfff4, properties: ['read'], security: 'encrypted', authorize: true, value: 'sec' },
      { uuid: 0xfff5, properties: ['read'], value: 'open', descriptors: [{ uuid: 0x2901, value: 'private', authorize: true }] },
    ] }], { authorize: ({ connection, handle, uuid, op, command }) => {
      asked.push({ handle, uuid, op, command, role: connection.role });
      return allow;
    } });
    const { conn, incoming } = await connect(peripheral, central);
    const h = server.handleOf(0xfff1);
    const hh = toHex(Uint8Array.of(h & 0xff, h >> 8));
    const c1 = await conn.characteristic(SVC, 0xfff1);
    // Refused: 0x08 on the wire for a read and a write; the handlers never ran, nothing was stored.
    await expect(c1.read()).rejects.toMatchObject({ code: 'EATT', errorCode: 0x08 });
    await expect(c1.write(new TextEncoder().encode('no'))).rejects.toMatchObject({ errorCode: 0x08 });
    expect(att).toContainEqual({ dir: 'tx', hex: `010a${hh}08` });
    expect(att).toContainEqual({ dir: 'tx', hex: `0112${hh}08` });
    // A refused Write Without Response is dropped in silence.
    const sent = att.length;
    await c1.write(new TextEncoder().encode('cmd'), { withResponse: false });
    await expect.poll(() => asked.length).toBe(3);
    expect(att.slice(sent).filter(p => p.dir === 'tx')).toEqual([]);
    expect(reads).toBe(0);
    expect(writes).toEqual([]);
    expect(dec(server.value(0xfff1))).toBe('v0');
    expect(asked).toEqual([
      { handle: h, uuid: '0000fff1-0000-1000-8000-00805f9b34fb', op: 'read', command: false, role: 'peripheral' },
      { handle: h, uuid: '0000fff1-0000-1000-8000-00805f9b34fb', op: 'write', command: false, role: 'peripheral' },
      { handle: h, uuid: '0000fff1-0000-1000-8000-00805f9b34fb', op: 'write', command: true, role: 'peripheral' },
    ]);
    expect(incoming.role).toBe('peripheral');
    // Allowed: the same accesses go through to the handlers.
    allow = true;
    expect(dec(await c1.read())).toBe('read by handler');
    await c1.write(new TextEncoder().encode('yes'));
    expect(writes).toEqual(['yes']);
    // A hook that never answers is refused at the handler bound (5 s), not left hanging.
    const t0 = clock.now();
    await expect((await conn.characteristic(SVC, 0xfff2)).read()).rejects.toMatchObject({ errorCode: 0x08 });
    expect(clock.now() - t0).toBeGreaterThanOrEqual(5000);
    expect(clock.now() - t0).toBeLessThan(6000);
    // A hook may answer with its own code (GattServerError).
    await expect((await conn.characteristic(SVC, 0xfff3)).read()).rejects.toMatchObject({ errorCode: 0x80 });
    // Security comes first: an unencrypted link gets 0x0F and the hook is not asked.
    const n = asked.length;
    await expect((await conn.characteristic(SVC, 0xfff4)).read()).rejects.toMatchObject({ errorCode: 0x0f });
    expect(asked.length).toBe(n);
    // A descriptor can need authorization too.
    allow = false;
    const d = (await conn.characteristic(SVC, 0xfff5)).descriptor(0x2901);
    await expect(d.read()).rejects.toMatchObject({ errorCode: 0x08 });
    allow = true;
    expect(dec(await d.read())).toBe('private');
    expect(dec(await (await conn.characteristic(SVC, 0xfff5)).read())).toBe('open');
  });

  test('authorization and Read By Type: only the first attribute is asked; a later one that needs authorization ends the list', async () => {
    const { peripheral, central, att } = await setup();
    const asked: number[] = [];
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read'], value: 'a' },
      { uuid: 0xfff1, properties: ['read'], value: 'b', authorize: ({ handle }) => { asked.push(handle); return false; } },
    ] }]);
    const { conn } = await connect(peripheral, central);
    await conn.services();
    const [h1, h2] = server.database.layout.at(-1)!.characteristics.map(c => c.valueHandle);
    const bearer = conn.gatt.bearer;
    const rsp = await bearer.request({ kind: 'readByTypeReq', startingHandle: h1!, endingHandle: 0xffff, attributeType: '0000fff1-0000-1000-8000-00805f9b34fb' });
    expect(rsp).toMatchObject({ kind: 'readByTypeRsp' });
    expect(asked).toEqual([]);
    const s1 = toHex(Uint8Array.of(h1! & 0xff, h1! >> 8));
    expect(att).toContainEqual({ dir: 'tx', hex: `0903${s1}61` });
    // Starting at the second one: it is the first, the hook is asked and refuses.
    await expect(bearer.request({ kind: 'readByTypeReq', startingHandle: h2!, endingHandle: 0xffff, attributeType: '0000fff1-0000-1000-8000-00805f9b34fb' }))
      .rejects.toMatchObject({ errorCode: 0x08 });
    expect(asked).toEqual([h2]);
    expect(att).toContainEqual({ dir: 'tx', hex: `0108${toHex(Uint8Array.of(h2! & 0xff, h2! >> 8))}08` });
  });

  test('notify and indicate reach subscribed links only, with the CCCD kept per link; indications wait for each confirmation', async () => {
    const { peripheral, central, att } = await setup();
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['notify', 'read'], value: Uint8Array.of(0) },
      { uuid: 0xfff2, properties: ['indicate'] },
    ] }]);
    const { conn } = await connect(peripheral, central);
    // Nobody subscribed: nothing is sent.
    expect(await server.notify(0xfff1, Uint8Array.of(1))).toBe(0);
    const got: number[][] = [];
    const sub = await (await conn.characteristic(SVC, 0xfff1)).subscribe(v => got.push([...v]));
    expect(server.subscribers(0xfff1)).toHaveLength(1);
    expect(await server.notify(0xfff1, Uint8Array.of(2, 3))).toBe(1);
    await expect.poll(() => got).toEqual([[2, 3]]);
    const h = server.handleOf(0xfff1);
    expect(att).toContainEqual({ dir: 'tx', hex: `1b${toHex(Uint8Array.of(h & 0xff, h >> 8))}0203` });
    const inds: number[][] = [];
    await (await conn.characteristic(SVC, 0xfff2)).subscribe(v => inds.push([...v]), { indicate: true });
    const results = await Promise.all([server.indicate(0xfff2, Uint8Array.of(7)), server.indicate(0xfff2, Uint8Array.of(8))]);
    expect(results).toEqual([1, 1]);
    expect(inds).toEqual([[7], [8]]);
    // One at a time: the second indication went out only after the first confirmation (Vol 3, Part F, 3.4.7.2).
    const ih = server.handleOf(0xfff2);
    const ihx = toHex(Uint8Array.of(ih & 0xff, ih >> 8));
    const seq = att.filter(p => p.hex === `1d${ihx}07` || p.hex === `1d${ihx}08` || p.hex === '1e').map(p => `${p.dir}:${p.hex.slice(0, 2)}`);
    expect(seq).toEqual(['tx:1d', 'rx:1e', 'tx:1d', 'rx:1e']);
    await sub.unsubscribe();
    expect(await server.notify(0xfff1, Uint8Array.of(4))).toBe(0);
  });

  test('Read Multiple Variable and ATT_MTU 23 as the server: values whole (one completed by Read Blob); notify() cuts a value to ATT_MTU - 3 and goes only to the connections given', async () => {
    const { air, peripheral, att } = await setup({ central: { mtu: 23 } });
    const second = createSimulator({ name: 'central 2', peripherals: [] }, { air });
    const central2 = await Adapter.open({ transport: second.transport, bonds: false, mtu: 23 });
    open.push(central2);
    const long = Uint8Array.from({ length: 40 }, (_, i) => i);
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read'], value: 'one' },
      { uuid: 0xfff2, properties: ['read'], onRead: async () => Uint8Array.of(0xaa, 0xbb) },
      { uuid: 0xfff3, properties: ['read'], value: long },
      { uuid: 0xfff4, properties: ['read', 'notify'], value: Uint8Array.of(0) },
    ] }]);
    const first = await connect(peripheral, open.find(a => a !== peripheral && a !== central2)!);
    const h = [0xfff1, 0xfff2, 0xfff3].map(u => server.handleOf(u));
    const le = (x: number): string => toHex(Uint8Array.of(x & 0xff, x >> 8));
    // Read Multiple Variable (Vol 3, Part F, 3.4.4.11 / Part G, 4.8.5): the response holds Length/Value
    // tuples up to ATT_MTU - 1; the third value does not fit whole, so the client completes it.
    const values = await first.conn.gatt.readMultipleVariable(h);
    expect(values.map(v => toHex(v))).toEqual([toHex(new TextEncoder().encode('one')), 'aabb', toHex(long)]);
    expect(att).toContainEqual({ dir: 'rx', hex: `20${h.map(le).join('')}` });
    // 0x21, then (3, 'one'), (2, aabb), (40, the first 22 - 7 - 4 = 11 octets): 22 octets in all; the
    // client then reads the cut value again with a long read (Read, Read Blob at 22).
    const rsp = att.find(p => p.dir === 'tx' && p.hex.startsWith('21'))!;
    expect(rsp.hex).toBe('21' + '0300' + toHex(new TextEncoder().encode('one')) + '0200aabb' + '2800' + toHex(long.subarray(0, 11)));
    expect(att).toContainEqual({ dir: 'rx', hex: `0a${le(h[2]!)}` });
    expect(att).toContainEqual({ dir: 'rx', hex: `0c${le(h[2]!)}1600` });

    // Notifications at ATT_MTU 23 carry at most 20 octets (3.4.7.1); `connections` picks the receivers.
    const accepted = peripheral.accept();
    const ad = await central2.find({ name: 'srv', timeout: 5000 });
    const conn2 = await central2.connect(ad!);
    const incoming2 = (await accepted.next()).value as Connection;
    await accepted.return!();
    const got1: string[] = [], got2: string[] = [];
    await (await first.conn.characteristic(SVC, 0xfff4)).subscribe(v => got1.push(toHex(v)));
    await (await conn2.characteristic(SVC, 0xfff4)).subscribe(v => got2.push(toHex(v)));
    expect(server.subscribers(0xfff4)).toHaveLength(2);
    const big = Uint8Array.from({ length: 30 }, (_, i) => 0x80 + i);
    expect(await server.notify(0xfff4, big, { connections: [incoming2] })).toBe(1);
    await expect.poll(() => got2).toEqual([toHex(big.subarray(0, 20))]);
    expect(got1).toEqual([]);
    // The stored value stays whole: a read of it is a long read.
    expect(toHex(await (await first.conn.characteristic(SVC, 0xfff4)).read())).toBe(toHex(big));
    expect(await server.notify(0xfff4, Uint8Array.of(5))).toBe(2);
    await expect.poll(() => got1).toEqual(['05']);
    await expect.poll(() => got2).toEqual([toHex(big.subarray(0, 20)), '05']);
    expect(att).toContainEqual({ dir: 'tx', hex: `1b${le(server.handleOf(0xfff4))}${toHex(big.subarray(0, 20))}` });
  });

  test('a client that vanishes mid-indication: indicate resolves with no confirmation, nothing hangs, the server serves the next client', async () => {
    const { peripheral, central } = await setup();
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [{ uuid: 0xfff2, properties: ['indicate', 'read'], value: 'v' }] }]);
    const { conn, incoming } = await connect(peripheral, central);
    await (await conn.characteristic(SVC, 0xfff2)).subscribe(() => undefined, { indicate: true });
    const gone = new Promise(r => incoming.once('disconnect', r));
    const pending = server.indicate(0xfff2, Uint8Array.of(1));
    // The central drops the link before its confirmation can cross (one connection interval away).
    await conn.disconnect();
    await gone;
    expect(await pending).toBe(0);
    expect(server.connections).toHaveLength(0);
    const again = await connect(peripheral, central);
    // The value indicate() stored is what the next client reads.
    expect([...await (await again.conn.characteristic(SVC, 0xfff2)).read()]).toEqual([1]);
  });

  test('a client that stays connected and never confirms an indication: after the 30 s ATT transaction timeout indicate() rejects (ETIMEDOUT), nothing more goes to it, its link is dropped (Vol 3, Part F, 3.3.3)', async () => {
    const { peripheral, central, att, clock, centralSim } = await setup();
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff2, properties: ['indicate', 'read'], value: 'v' },
      { uuid: 0xfff3, properties: ['read'], value: 'still served' },
    ] }]);
    const { conn, incoming } = await connect(peripheral, central);
    const got: number[][] = [];
    let heard: () => void = () => undefined;
    const firstHeard = new Promise<void>(r => { heard = r; });
    await (await conn.characteristic(SVC, 0xfff2)).subscribe(v => { got.push([...v]); heard(); }, { indicate: true });
    const other = await conn.characteristic(SVC, 0xfff3);
    // The central's host confirms, but its controller drops every Handle Value Confirmation (0x1E):
    // to our server the client is there, answering nothing.
    const undrop = centralSim.inject({ direction: 'toController', attOpcode: 0x1e, action: 'drop', count: Infinity });
    const centralDown = new Promise<{ code: number }>(r => conn.once('disconnect', r));
    const incomingDown = new Promise<{ code: number }>(r => incoming.once('disconnect', r));
    const t0 = clock.now();
    const first = server.indicate(0xfff2, Uint8Array.of(1)).then(() => undefined, (e: unknown) => e);
    const queued = server.indicate(0xfff2, Uint8Array.of(2)).then(() => undefined, (e: unknown) => e);
    await firstHeard;
    // The client stays connected and is served while our indication waits (a request is not an indication).
    expect(dec(await other.read())).toBe('still served');
    expect(got).toEqual([[1]]);
    const e1 = await first;
    expect(e1).toBeInstanceOf(TimeoutError);
    expect((e1 as TimeoutError).code).toBe('ETIMEDOUT');
    expect((e1 as TimeoutError).ms).toBe(30_000);
    expect((e1 as Error).message).toContain(incoming.address);
    expect((e1 as Error).message).toContain('3.3.3');
    // Virtual time: the transaction timer ran its full 30 s (no wall-clock wait).
    expect(clock.now() - t0).toBeGreaterThanOrEqual(30_000);
    // The indication queued behind it was never sent: the bearer is closed for good.
    const e2 = await queued;
    expect(e2).toBeInstanceOf(BearerClosedError);
    expect(((e2 as BearerClosedError).cause as Error)).toBeInstanceOf(TimeoutError);
    // The link is torn down by us: Connection Terminated by Local Host here, Remote User Terminated
    // Connection at the central (Vol 4, Part E, 7.7.5).
    expect((await incomingDown).code).toBe(0x16);
    expect((await centralDown).code).toBe(0x13);
    const ih = server.handleOf(0xfff2);
    const ihx = toHex(Uint8Array.of(ih & 0xff, ih >> 8));
    // On the wire: exactly one indication, never confirmed; nothing of ours after it but the read's answer.
    expect(att.filter(p => p.hex.startsWith('1d') || p.hex === '1e')).toEqual([{ dir: 'tx', hex: `1d${ihx}01` }]);
    const after = att.slice(att.findIndex(p => p.hex === `1d${ihx}01`) + 1).filter(p => p.dir === 'tx');
    expect(after).toEqual([{ dir: 'tx', hex: '0b' + toHex(new TextEncoder().encode('still served')) }]);
    expect(server.connections).toHaveLength(0);
    expect(await server.indicate(0xfff2, Uint8Array.of(3))).toBe(0);
    // The same client on a new link (a new bearer) confirms again.
    undrop();
    const again = await connect(peripheral, central);
    await (await again.conn.characteristic(SVC, 0xfff2)).subscribe(v => got.push([...v]), { indicate: true });
    expect(await server.indicate(0xfff2, Uint8Array.of(4))).toBe(1);
    expect(got).toEqual([[1], [4]]);
  });

  test('Service Changed: a subscribed client is told, confirms, and its rediscovery right behind the confirmation is served', async () => {
    const { peripheral, central, att } = await setup();
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [{ uuid: 0xfff1, properties: ['read'], value: 'one' }] }]);
    const { conn } = await connect(peripheral, central);
    // Full discovery: the client then enables robust caching and Service Changed indications.
    await conn.services();
    const sc = server.database.characteristic(0x2a05)!;
    const scHex = toHex(Uint8Array.of(sc.valueHandle & 0xff, sc.valueHandle >> 8));
    await expect.poll(() => att.some(p => p.dir === 'rx' && p.hex === `12${toHex(Uint8Array.of(sc.cccdHandle! & 0xff, sc.cccdHandle! >> 8))}0200`)).toBe(true);
    const csf = server.database.characteristic(0x2b29)!;
    expect(att).toContainEqual({ dir: 'rx', hex: `12${toHex(Uint8Array.of(csf.valueHandle & 0xff, csf.valueHandle >> 8))}01` });
    expect(dec(await (await conn.characteristic(SVC, 0xfff1)).read())).toBe('one');
    const oldHash = [...server.database.hash];
    await server.update([
      { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: Uint8Array.of(77) }] },
      { uuid: SVC, characteristics: [{ uuid: 0xfff1, properties: ['read'], value: 'two' }, { uuid: 0xfff5, properties: ['read'], value: 'new' }] },
    ]);
    expect([...server.database.hash]).not.toEqual(oldHash);
    // The client rediscovered on its own after confirming; reads at the new handles succeed.
    await expect.poll(async () => {
      try { return dec(await (await conn.characteristic(SVC, 0xfff5)).read()); } catch (e) { return String(e); }
    }, { timeout: 5000 }).toBe('new');
    expect(dec(await (await conn.characteristic(SVC, 0xfff1)).read())).toBe('two');
    expect([...await (await conn.characteristic(0x180f, 0x2a19)).read()]).toEqual([77]);
    // On the wire: the indication of the changed range (first user handle to 0xFFFF), its confirmation,
    // then the client's rediscovery, and never a Database Out Of Sync answer.
    const start = server.database.layout.find(s => s.uuid === '0000180f-0000-1000-8000-00805f9b34fb')!.start;
    const ind = att.findIndex(p => p.dir === 'tx' && p.hex === `1d${scHex}${toHex(Uint8Array.of(start & 0xff, start >> 8))}ffff`);
    expect(ind).toBeGreaterThan(0);
    const cfm = att.findIndex((p, i) => i > ind && p.dir === 'rx' && p.hex === '1e');
    expect(cfm).toBeGreaterThan(ind);
    expect(att.slice(ind).some(p => p.dir === 'rx' && (p.hex.startsWith('10') || p.hex.startsWith('08')))).toBe(true);
    expect(att.some(p => p.dir === 'tx' && p.hex.startsWith('01') && p.hex.endsWith('12'))).toBe(false);
  });

  test('robust caching: a change-unaware client (not subscribed to Service Changed) gets Database Out Of Sync until it reads the hash; commands are ignored', async () => {
    const { peripheral, central, att } = await setup({ central: { gatt: { serviceChanged: false } } });
    const seen: string[] = [];
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read', 'writeWithoutResponse'], value: 'one', onWrite: v => { seen.push(dec(v)); } },
    ] }]);
    const { conn } = await connect(peripheral, central);
    await conn.services();
    const c = await conn.characteristic(SVC, 0xfff1);
    expect(dec(await c.read())).toBe('one');
    // The client enabled robust caching in Client Supported Features (blewire's client does by default).
    await server.update([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read', 'writeWithoutResponse'], value: 'two', onWrite: v => { seen.push(dec(v)); } },
    ] }]);
    await c.write(new TextEncoder().encode('ignored'), { withResponse: false });
    const e = await c.read().catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'EATT', errorCode: 0x12 });
    const ch = server.handleOf(0xfff1);
    expect(att).toContainEqual({ dir: 'tx', hex: `010a${toHex(Uint8Array.of(ch & 0xff, ch >> 8))}12` });
    // The client revalidates in the background (it reads the Database Hash): then it is served again.
    await expect.poll(async () => {
      try { return dec(await (await conn.characteristic(SVC, 0xfff1)).read()); } catch (x) { return String(x); }
    }, { timeout: 5000 }).toBe('two');
    expect(seen).toEqual([]);
    // Read By Type of the Database Hash over the whole range went out as discovery allows.
    expect(att.some(p => p.dir === 'rx' && p.hex === '080100ffff2a2b')).toBe(true);
  });

  test('a client that floods: 60 Read Requests and 300 Write Commands without waiting; every read answered or counted as dropped, every command applied in order, the link serves on', async () => {
    const { peripheral, central, att: wire } = await setup();
    const commands: number[] = [];
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read'], value: 'r' },
      { uuid: 0xfff2, properties: ['read', 'writeWithoutResponse'], value: Uint8Array.of(0, 0),
        onWrite: v => { commands.push(v[0]! | (v[1]! << 8)); } },
    ] }]);
    const { conn, incoming } = await connect(peripheral, central);
    await conn.services();
    // Raw ATT PDUs on the link's fixed channel: no bearer waits for a response between them (Vol 3, Part F, 3.3.2 broken on purpose).
    const att = (conn as unknown as { link: { l2cap: { att: { send(b: Uint8Array): Promise<void> } } } }).link.l2cap.att;
    const rh = server.handleOf(0xfff1), wh = server.handleOf(0xfff2);
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < 300; i++) {
      sends.push(att.send(Uint8Array.of(0x52, wh & 0xff, wh >> 8, i & 0xff, i >> 8)));
      if (i % 5 === 0) sends.push(att.send(Uint8Array.of(0x0a, rh & 0xff, rh >> 8)));
    }
    await Promise.all(sends);
    await expect.poll(() => commands.length, { timeout: 15_000 }).toBe(300);
    expect(commands).toEqual(Array.from({ length: 300 }, (_, i) => i));
    const served = (incoming as unknown as { link: { bearer: { stats: { dropped: number } } } }).link.bearer.stats;
    // On our side of the wire: the 60 Read Requests arrived, and each got its Read Response ('r') or
    // was counted as dropped by our bound on answers owed (MAX_OWED_TO_PEER, src/att/bearer.ts).
    const rhx = toHex(Uint8Array.of(rh & 0xff, rh >> 8));
    expect(wire.filter(p => p.dir === 'rx' && p.hex === `0a${rhx}`)).toHaveLength(60);
    await expect.poll(() => wire.filter(p => p.dir === 'tx' && p.hex === '0b72').length + served.dropped, { timeout: 15_000 }).toBe(60);
    expect(conn.connected && incoming.connected).toBe(true);
    expect(dec(await (await conn.characteristic(SVC, 0xfff1)).read())).toBe('r');
    expect([...server.value(0xfff2)]).toEqual([299 & 0xff, 299 >> 8]);
  });

  test('hostile client: bad CCCD values, oversized and bad-offset prepared writes, a full prepare queue, requests at bad handles; the link keeps serving', async () => {
    const { peripheral, central } = await setup();
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['read', 'write', 'notify'], value: 'v', maxLength: 512 },
    ] }]);
    const { conn } = await connect(peripheral, central);
    const bearer = conn.gatt.bearer;
    const c = server.database.characteristic(0xfff1)!;
    // CCCD: indication bit on a notify-only characteristic; one octet.
    await expect(bearer.request({ kind: 'writeReq', handle: c.cccdHandle!, value: Uint8Array.of(2, 0) })).rejects.toMatchObject({ errorCode: 0xfd });
    await expect(bearer.request({ kind: 'writeReq', handle: c.cccdHandle!, value: Uint8Array.of(1) })).rejects.toMatchObject({ errorCode: 0x0d });
    // Prepared writes: an offset past the end, a value beyond 512 octets, then the queue limit.
    await bearer.request({ kind: 'prepareWriteReq', handle: c.valueHandle, valueOffset: 10, value: Uint8Array.of(1) });
    await expect(bearer.request({ kind: 'executeWriteReq', flags: 1 })).rejects.toMatchObject({ errorCode: 0x07 });
    for (let off = 0; off < 540; off += 18) {
      await bearer.request({ kind: 'prepareWriteReq', handle: c.valueHandle, valueOffset: off, value: new Uint8Array(18) });
    }
    await expect(bearer.request({ kind: 'executeWriteReq', flags: 1 })).rejects.toMatchObject({ errorCode: 0x0d });
    let full: unknown;
    for (let i = 0; i < 200 && !full; i++) {
      full = await bearer.request({ kind: 'prepareWriteReq', handle: c.valueHandle, valueOffset: 0, value: Uint8Array.of(i) }).then(() => undefined, (e: unknown) => e);
    }
    expect(full).toMatchObject({ errorCode: 0x09 });
    await bearer.request({ kind: 'executeWriteReq', flags: 0 });
    await expect(bearer.request({ kind: 'readReq', handle: 0xfff0 })).rejects.toMatchObject({ errorCode: 0x01 });
    await expect(bearer.request({ kind: 'writeReq', handle: 0x0000, value: Uint8Array.of(1) })).rejects.toMatchObject({ errorCode: 0x01 });
    expect(dec(server.value(0xfff1))).toBe('v');
    expect(dec(await (await conn.characteristic(SVC, 0xfff1)).read())).toBe('v');
  });

  test('the CCCD of a bonded client is kept across connections; an unbonded one starts unsubscribed', async () => {
    const { peripheral, central } = await setup();
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [{ uuid: 0xfff1, properties: ['notify'] }] }]);
    const first = await connect(peripheral, central);
    await (await first.conn.characteristic(SVC, 0xfff1)).subscribe(() => undefined);
    expect(server.subscribers(0xfff1)).toHaveLength(1);
    await first.conn.disconnect();
    await expect.poll(() => server.connections.length).toBe(0);
    const second = await connect(peripheral, central);
    // Not bonded: the subscription did not survive.
    expect(server.subscribers(0xfff1)).toHaveLength(0);
    await second.conn.disconnect();
  });

  test('a bonded client\'s CCCD is kept with the bond: back on its next encrypted link (no CCCD write, the notification on the wire), after a restart too; gone with the bond', async () => {
    // Real time runs the air here (speed 10) and the bond store does file I/O: a loaded machine needs more than poll's 1 s.
    const POLL = { timeout: 15_000 };
    const dir = mkdtempSync(join(tmpdir(), 'blewire-cccd-'));
    const ADDR = 'C4:11:22:33:44:55';
    try {
      // The bond store is files: real I/O (the LTK lookup of each re-encryption) while the air's clock
      // runs. At 10 virtual ms per real ms the I/O stays far inside every protocol timer.
      const air = new SimAir({ speed: 10 });
      const cs = createSimulator({ name: 'central', peripherals: [] }, { air });
      const central = await Adapter.open({ transport: cs.transport, bonds: new MemoryBondStore() });
      open.push(central);
      const services: ServedService<Connection>[] = [{ uuid: SVC, characteristics: [
        { uuid: 0xfff1, properties: ['read', 'notify'], value: Uint8Array.of(0) },
        { uuid: 0xfff2, properties: ['read', 'notify', 'indicate'], value: Uint8Array.of(0) },
      ] }];
      const startPeripheral = async () => {
        const ps = createSimulator({ name: 'peripheral', peripherals: [] }, { air });
        const tapped = tap(ps.transport);
        const adapter = await Adapter.open({ transport: tapped.transport, bonds: new FileBondStore(dir), randomAddress: ADDR });
        open.push(adapter);
        const server = await adapter.serve(services);
        return { adapter, server, att: tapped.att };
      };
      let p = await startPeripheral();
      const h1 = p.server.handleOf(0xfff1);
      const le = (h: number): string => toHex(Uint8Array.of(h & 0xff, h >> 8));
      const cccd1 = p.server.database.characteristic(0xfff1)!.cccdHandle!;

      // First connection: pair (SC Just Works over the air: SMP on CID 6, LE Enable Encryption at the
      // central, LTK Request Reply at our peripheral), then subscribe.
      let link = await connect(p.adapter, central);
      expect(await link.conn.pair()).toMatchObject({ encrypted: true, bonded: true });
      await expect.poll(() => link.incoming.security.bonded, POLL).toBe(true);
      await (await link.conn.characteristic(SVC, 0xfff1)).subscribe(() => undefined);
      expect(p.att).toContainEqual({ dir: 'rx', hex: `12${le(cccd1)}0100` });
      await link.conn.disconnect();
      await expect.poll(() => p.server.connections.length, POLL).toBe(0);
      // Stored with the bond, by service and characteristic UUID.
      await expect.poll(async () => (await p.adapter.bonds())[0]?.cccds, POLL).toEqual({ [`${SVC}/0000fff1-0000-1000-8000-00805f9b34fb`]: 1 });

      // Reconnect: before encryption nothing is restored (anyone can claim the address) ...
      const mark = p.att.length;
      link = await connect(p.adapter, central);
      expect(p.server.subscribers(0xfff1)).toHaveLength(0);
      expect(await p.server.notify(0xfff1, Uint8Array.of(1))).toBe(0);
      // ... once the link is encrypted from the bond, the client is subscribed again without writing.
      await link.conn.encrypt();
      await expect.poll(() => link.incoming.security.encrypted, POLL).toBe(true);
      expect(await p.server.notify(0xfff1, Uint8Array.of(0x2a))).toBe(1);
      const since = p.att.slice(mark);
      expect(since).toContainEqual({ dir: 'tx', hex: `1b${le(h1)}2a` });
      expect(since.filter(x => x.dir === 'rx' && x.hex.startsWith(`12${le(cccd1)}`))).toEqual([]);
      await link.conn.disconnect();
      await expect.poll(() => p.server.connections.length, POLL).toBe(0);

      // Restart: a new adapter on the same bond directory and address finds the subscription in the bond.
      await p.adapter.close();
      p = await startPeripheral();
      await p.adapter.bonds();
      link = await connect(p.adapter, central);
      await link.conn.encrypt();
      await expect.poll(() => link.incoming.security.encrypted, POLL).toBe(true);
      const mark2 = p.att.length;
      expect(await p.server.notify(0xfff1, Uint8Array.of(0x2b))).toBe(1);
      expect(p.att.slice(mark2)).toContainEqual({ dir: 'tx', hex: `1b${le(h1)}2b` });
      expect(p.att.filter(x => x.dir === 'rx' && x.hex.startsWith(`12${le(cccd1)}`))).toEqual([]);
      await link.conn.disconnect();
      await expect.poll(() => p.server.connections.length, POLL).toBe(0);

      // The bond removed: its subscriptions go with it (a new pairing starts unsubscribed).
      const bond = (await p.adapter.bonds())[0]!;
      expect(await p.adapter.removeBond(bond.identity)).toBe(true);
      await central.removeBond(ADDR);
      link = await connect(p.adapter, central);
      expect(await link.conn.pair()).toMatchObject({ bonded: true });
      await expect.poll(() => link.incoming.security.bonded, POLL).toBe(true);
      expect(p.server.subscribers(0xfff1)).toHaveLength(0);
      expect(await p.server.notify(0xfff1, Uint8Array.of(3))).toBe(0);
      await link.conn.disconnect();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
  test('a client that subscribes and leaves while its new bond is still being saved: the CCCD values end up in the bond', async () => {
    // Pairing reports the link bonded before the store has the bond. A slow store (a loaded disk) used
    // to lose what the client subscribed to meanwhile: the CCCD writer found no bond yet, and the new
    // bond's "starts with no subscriptions" then erased the remembered values as well.
    class GatedStore extends MemoryBondStore {
      gate!: () => void;
      private readonly held = new Promise<void>(r => { this.gate = r; });
      override async save(bond: Parameters<MemoryBondStore['save']>[0]): Promise<void> {
        if (!bond.cccds) await this.held;
        return super.save(bond);
      }
    }
    const air = new SimAir();
    const cs = createSimulator({ name: 'central', peripherals: [] }, { air });
    const ps = createSimulator({ name: 'peripheral', peripherals: [] }, { air });
    const central = await Adapter.open({ transport: cs.transport, clock: air.clock, bonds: new MemoryBondStore() });
    const store = new GatedStore();
    const peripheral = await Adapter.open({ transport: ps.transport, clock: air.clock, bonds: store, randomAddress: 'C4:11:22:33:44:56' });
    open.push(central, peripheral);
    const server = await peripheral.serve([{ uuid: SVC, characteristics: [{ uuid: 0xfff1, properties: ['read', 'notify'], value: Uint8Array.of(0) }] }]);
    const link = await connect(peripheral, central);
    expect(await link.conn.pair()).toMatchObject({ encrypted: true, bonded: true });
    await (await link.conn.characteristic(SVC, 0xfff1)).subscribe(() => undefined);
    await link.conn.disconnect();
    while (server.connections.length > 0) await air.clock.delay(10);
    expect(await store.list()).toEqual([]); // the bond is still on its way
    store.gate();
    let bonds = await store.list();
    for (let i = 0; i < 100 && !bonds[0]?.cccds; i++) { await air.clock.delay(10); bonds = await store.list(); }
    expect(bonds[0]?.cccds).toEqual({ [`${SVC}/0000fff1-0000-1000-8000-00805f9b34fb`]: 1 });
  });
});
