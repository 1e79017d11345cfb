// Peripheral-side faults (issue 10) with a blewire central against a blewire peripheral over btvirt,
// BlueZ's controller emulator: two emulated controllers, real HCI and ACL between them. No guest.
//
// 1. A client that stays connected and never confirms an indication. The central's transport drops
//    every Handle Value Confirmation (ATT 0x1E) it sends, so the peripheral's controller never gets one.
//    The peripheral runs on a SkipClock: real time, moved 30 s ahead by hand once the indication has
//    reached the central, so the ATT transaction timeout (Core Vol 3, Part F, 3.3.3) passes without a
//    30 s wait. server.indicate() rejects with ETIMEDOUT, an indication queued behind it with
//    EBEARERCLOSED, the peripheral disconnects the link, and tshark reads in the peripheral's recording:
//    one Handle Value Indication, no confirmation, then HCI Disconnect (0x0406, reason 0x13).
// 2. A central that disconnects in the middle of a long write at ATT_MTU 23: the peripheral's app sees
//    nothing partial (no Execute Write ever came), and the next link's long write arrives whole.
// 3. A client that floods: Write Commands and Read Requests on the raw ATT channel without waiting for
//    answers (Vol 3, Part F, 3.3.2 broken on purpose): commands applied in order, every Read Request
//    answered or counted as dropped by our bound, the link serves on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { BearerClosedError, TimeoutError } from '../../src/errors.js';
import type { GattServer } from '../../src/gatt/server/server.js';
import { openTransport } from '../../src/transport/open.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { SkipClock } from './helpers/skip-clock.js';
import { tshark, tsharkMalformed } from './helpers/tshark.js';

const dir = mkdtempSync(join(tmpdir(), 'blewire-peripheral-faults-'));
const capture = join(dir, 'peripheral.btsnoop');
const SVC = 0xfff0;
const NAME = 'bw-faults';

/** ATT opcode of an H4 ACL packet that starts an L2CAP PDU on CID 0x0004, else undefined. */
function attOpcode(p: Uint8Array): number | undefined {
  if (p[0] !== 0x02 || p.length < 10) return undefined;
  if (((p[2]! >> 4) & 0x3) === 0x1) return undefined; // a continuation fragment
  return (p[7]! | (p[8]! << 8)) === 0x0004 ? p[9] : undefined;
}

/**
 * The central's transport: drops its confirmations while `dropConfirmations`, counts its Prepare Write
 * Requests. A dropped packet is answered with Number Of Completed Packets (Vol 4, Part E, 7.7.19) as
 * if the controller had sent it, so the host gets its ACL credit back (btvirt has one buffer).
 */
function faulty(inner: HciTransport) {
  const state = { dropConfirmations: false, dropped: 0, prepares: 0, onPrepare: undefined as ((n: number) => void) | undefined };
  let receiver: TransportReceiver | undefined;
  const transport: HciTransport = {
    description: `${inner.description} (drops ATT confirmations on demand)`,
    send: p => {
      const op = attOpcode(p);
      if (op === 0x1e && state.dropConfirmations) {
        state.dropped++;
        const nocp = Uint8Array.of(0x04, 0x13, 0x05, 0x01, p[1]!, p[2]! & 0x0f, 0x01, 0x00);
        setImmediate(() => receiver?.packet(nocp));
        return;
      }
      inner.send(p);
      if (op === 0x16) state.onPrepare?.(++state.prepares);
    },
    setReceiver: r => { receiver = r; inner.setReceiver(r); },
    close: () => inner.close(),
  };
  return { transport, state };
}

describe('peripheral-side faults, blewire central against blewire peripheral over btvirt', () => {
  let btvirt: Btvirt;
  let peripheral: Adapter;
  let central: Adapter;
  let server: GattServer<Connection>;
  let wire: ReturnType<typeof faulty>;
  const clock = new SkipClock();
  let floodDropped = 0;
  const writes: Array<{ length: number; prepared: boolean }> = [];
  const commands: number[] = [];

  beforeAll(async () => {
    btvirt = await startBtvirt();
    peripheral = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, capture, clock, bonds: false });
    wire = faulty(await openTransport(`unix:${btvirt.leSocket}`));
    // ATT_MTU 23: a 400-octet value is a long write (Prepare Write Requests, then Execute Write).
    central = await Adapter.open({ transport: wire.transport, bonds: false, mtu: 23 });
    server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: 0xfff1, properties: ['indicate', 'read'], value: 'v' },
      { uuid: 0xfff2, properties: ['read', 'write'], maxLength: 512,
        onWrite: (value, req) => { writes.push({ length: value.length, prepared: req.prepared }); } },
      { uuid: 0xfff3, properties: ['read'], value: 'still served' },
      { uuid: 0xfff4, properties: ['read', 'writeWithoutResponse'], value: 'f', onWrite: v => { commands.push(v[0]! | (v[1]! << 8)); } },
    ] }], { name: NAME });
    await peripheral.advertise({ name: NAME, services: [SVC] });
  }, 60_000);

  afterAll(async () => {
    await central?.close().catch(() => undefined);
    await peripheral?.close().catch(() => undefined);
    await btvirt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function connect(): Promise<{ conn: Connection; incoming: Connection }> {
    const accepted = peripheral.accept();
    try {
      // btvirt reports advertising once per scan start (PEERS.md §2): find() starts a fresh scan.
      const ad = await central.find({ name: NAME, timeout: 10_000 });
      expect(ad).toBeDefined();
      const conn = await central.connect(ad!, { timeout: 10_000 });
      const incoming = (await accepted.next()).value as Connection;
      return { conn, incoming };
    } finally {
      await accepted.return!();
    }
  }

  test('a client that never confirms: after the 30 s ATT transaction timeout indicate() rejects, nothing more is sent on the bearer, the link is disconnected', async () => {
    const { conn, incoming } = await connect();
    let heard: (v: Uint8Array) => void = () => undefined;
    const first = new Promise<Uint8Array>(r => { heard = r; });
    const got: number[][] = [];
    await (await conn.characteristic(SVC, 0xfff1)).subscribe(v => { got.push([...v]); heard(v); }, { indicate: true });
    const other = await conn.characteristic(SVC, 0xfff3);
    wire.state.dropConfirmations = true;
    const centralDown = new Promise<{ code: number }>(r => conn.once('disconnect', r));
    const incomingDown = new Promise<{ code: number }>(r => incoming.once('disconnect', r));
    const ind = server.indicate(0xfff1, Uint8Array.of(0xa1)).then(() => undefined, (e: unknown) => e);
    const queued = server.indicate(0xfff1, Uint8Array.of(0xa2)).then(() => undefined, (e: unknown) => e);
    expect([...await first]).toEqual([0xa1]);
    // Still connected and served while the indication waits.
    expect(new TextDecoder().decode(await other.read())).toBe('still served');
    expect(conn.connected && incoming.connected).toBe(true);
    // 30 s pass on the peripheral's clock.
    expect(clock.skip(30_000)).toBeGreaterThan(0);
    const e1 = await ind;
    expect(e1).toBeInstanceOf(TimeoutError);
    expect((e1 as TimeoutError).code).toBe('ETIMEDOUT');
    expect((e1 as Error).message).toContain(incoming.address);
    const e2 = await queued;
    expect(e2).toBeInstanceOf(BearerClosedError);
    // btvirt reports the reason the host sent on both sides (PEERS.md §2): 0x13.
    expect((await centralDown).code).toBe(0x13);
    await incomingDown;
    expect(got).toEqual([[0xa1]]);
    expect(wire.state.dropped).toBe(1);
    expect(server.connections).toHaveLength(0);
    expect(await server.indicate(0xfff1, Uint8Array.of(0xa3))).toBe(0);
    // The same central on a new link confirms again (a new bearer).
    wire.state.dropConfirmations = false;
    const again = await connect();
    await (await again.conn.characteristic(SVC, 0xfff1)).subscribe(v => got.push([...v]), { indicate: true });
    expect(await server.indicate(0xfff1, Uint8Array.of(0xa4))).toBe(1);
    expect(got).toEqual([[0xa1], [0xa4]]);
    await again.conn.disconnect();
  }, 60_000);

  test('a central that disconnects in the middle of a long write: nothing partial reaches the app; the next long write arrives whole', async () => {
    const { conn, incoming } = await connect();
    const ch = await conn.characteristic(SVC, 0xfff2);
    const long = Uint8Array.from({ length: 400 }, (_, i) => (i * 7) & 0xff);
    const incomingDown = new Promise(r => incoming.once('disconnect', r));
    wire.state.prepares = 0;
    // After the third Prepare Write Request left, the central drops the link (HCI Disconnect queued behind it).
    wire.state.onPrepare = n => { if (n === 3) void conn.disconnect(); };
    const outcome = await ch.write(long).then(() => 'written', (e: unknown) => e);
    wire.state.onPrepare = undefined;
    expect(outcome).toBeInstanceOf(Error);
    await incomingDown;
    expect(wire.state.prepares).toBeLessThan(Math.ceil(400 / 18));
    expect(writes).toEqual([]);
    const again = await connect();
    await (await again.conn.characteristic(SVC, 0xfff2)).write(long);
    expect(writes).toEqual([{ length: 400, prepared: true }]);
    expect([...await (await again.conn.characteristic(SVC, 0xfff2)).read()]).toEqual([...long]);
    await again.conn.disconnect();
  }, 60_000);

  test('a client that floods: 200 Write Commands and 40 Read Requests without waiting for answers; every command applied in order, the link serves on', async () => {
    const { conn, incoming } = await connect();
    await conn.services();
    // Raw ATT PDUs on the link's fixed channel (ACL flow control still honoured): no request waits for its response.
    const att = (conn as unknown as { link: { l2cap: { att: { send(b: Uint8Array): Promise<void> } } } }).link.l2cap.att;
    const h = server.handleOf(0xfff4);
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < 200; i++) {
      sends.push(att.send(Uint8Array.of(0x52, h & 0xff, h >> 8, i & 0xff, i >> 8)));
      if (i % 5 === 0) sends.push(att.send(Uint8Array.of(0x0a, h & 0xff, h >> 8)));
    }
    await Promise.all(sends);
    await expect.poll(() => commands.length, { timeout: 20_000 }).toBe(200);
    expect(commands).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(conn.connected && incoming.connected).toBe(true);
    expect([...await (await conn.characteristic(SVC, 0xfff4)).read()]).toEqual([199, 0]);
    const served = (incoming as unknown as { link: { bearer: { stats: { dropped: number } } } }).link.bearer.stats;
    floodDropped = served.dropped;
    await conn.disconnect();
  }, 60_000);

  test("tshark reads the peripheral's recording: one unconfirmed indication then HCI Disconnect 0x13; Execute Write only for the whole write; nothing malformed", async () => {
    await peripheral.close();
    const rows = (await tshark('-r', capture, '-Y', 'btatt.opcode == 0x1d || btatt.opcode == 0x1e || btatt.opcode == 0x16 || btatt.opcode == 0x18 || bthci_cmd.opcode == 0x0406',
      '-T', 'fields', '-E', 'separator=|', '-e', 'frame.number', '-e', 'btatt.opcode', '-e', 'btatt.value', '-e', 'bthci_cmd.opcode', '-e', 'bthci_cmd.reason'))
      .split('\n').filter(Boolean).map(l => l.split('|'));
    const inds = rows.filter(r => r[1] === '0x1d');
    expect(inds.map(r => r[2])).toEqual(['a1', 'a4']);
    // Between the unconfirmed indication and the second link: no confirmation, and our HCI Disconnect, Remote User Terminated Connection.
    const a1 = rows.indexOf(inds[0]!), a4 = rows.indexOf(inds[1]!);
    const between = rows.slice(a1 + 1, a4);
    expect(between.filter(r => r[1] === '0x1e')).toEqual([]);
    expect(between.filter(r => r[3] === '0x0406').map(r => r[4])).toEqual(['0x13']);
    // The one after a4 was confirmed.
    expect(rows.slice(a4 + 1).some(r => r[1] === '0x1e')).toBe(true);
    // Execute Write Request (0x18) appears once: the cut-off write never executed.
    expect(rows.filter(r => r[1] === '0x18')).toHaveLength(1);
    // The flood: 40 Read Requests of 0xfff4 (handle h) reached us; each answered or counted as dropped.
    const h = server.handleOf(0xfff4).toString(16).padStart(4, '0');
    const flood = (await tshark('-r', capture, '-Y', `btatt.opcode == 0x0a && btatt.handle == 0x${h}`, '-T', 'fields', '-e', 'frame.number')).split('\n').filter(Boolean);
    expect(flood.length).toBeGreaterThanOrEqual(40);
    // Read Responses from the first of them on (the flood is the last link; its value is the latest command).
    const answers = (await tshark('-r', capture, '-Y', `btatt.opcode == 0x0b && frame.number > ${flood[0]}`, '-T', 'fields', '-e', 'frame.number')).split('\n').filter(Boolean);
    expect(answers.length + floodDropped).toBe(flood.length);
    expect(await tsharkMalformed(capture)).toEqual([]);
  }, 60_000);
});
