// The peripheral-role features that were proven blewire-to-blewire only on SimAir, now over BlueZ's
// controller emulator btvirt (issue 10: "blewire central against blewire peripheral over btvirt and on
// the simulator, every feature"): Read Multiple Variable (Vol 3, Part F, 3.4.4.11), the authorized
// permission (Insufficient Authorization 0x08, 3.2.5), an encrypted characteristic read after pairing
// on demand (0x0F, then LE Secure Connections Just Works with our peripheral as the responder), Service
// Changed after server.update() with the client's rediscovery (Vol 3, Part G, 7.1), and L2CAP LE
// credit-based channels opened by each side to the other's listener with few credits (Vol 3, Part A,
// 4.22-4.24, 10.1). The peripheral's side is recorded; tshark decodes it (ATT opcodes, the K-frames'
// SDUs) and finds no malformed frame. btvirt has one ACL buffer of 192 octets, so every K-frame waits for
// the controller's Number Of Completed Packets as well as for the peer's credits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import type { GattServer } from '../../src/gatt/server/server.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { tshark, tsharkCreditSdus, tsharkMalformed } from './helpers/tshark.js';

const dir = mkdtempSync(join(tmpdir(), 'blewire-peripheral-features-'));
const capture = join(dir, 'peripheral.btsnoop');
const SVC = '5e7a0000-1b2c-4d5e-8f90-a1b2c3d4e5f6';
const C = (n: number): string => SVC.replace('5e7a0000', `5e7a000${n}`);
const NAME = 'bw-features';
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

/** tshark's ATT opcodes and values on the peripheral's side, per direction. */
async function attRows(): Promise<Array<{ dir: 'tx' | 'rx'; opcode: number; handle: number }>> {
  const out = await tshark('-r', capture, '-Y', 'btatt', '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=f',
    '-e', 'hci_h4.direction', '-e', 'btatt.opcode', '-e', 'btatt.handle');
  return out.split('\n').filter(Boolean).map(l => {
    const [d, op, h] = l.split('|');
    return { dir: d === '0x00' || d === '0' ? 'tx' : 'rx', opcode: parseInt(op!, 16), handle: h ? parseInt(h, 16) : 0 };
  });
}

describe('peripheral features, blewire central against blewire peripheral over btvirt', () => {
  let btvirt: Btvirt;
  let peripheral: Adapter;
  let central: Adapter;
  let server: GattServer<Connection>;
  let conn: Connection;
  let incoming: Connection;
  let allow = false;
  /** SDUs on the channel the peripheral opened (0x83): ours to the central, the central's to us. */
  let down: Uint8Array[] = [];
  let up: Uint8Array[] = [];
  /** Every SDU either side sent. */
  const carried = new Set<string>();

  beforeAll(async () => {
    btvirt = await startBtvirt();
    peripheral = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, capture, bonds: new MemoryBondStore() });
    // ATT_MTU 23 on the central: the Read Multiple Variable response cannot hold every value whole.
    central = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, bonds: new MemoryBondStore(), mtu: 23 });
    server = await peripheral.serve([{ uuid: SVC, characteristics: [
      { uuid: C(1), properties: ['read'], value: 'one' },
      { uuid: C(2), properties: ['read'], onRead: () => Uint8Array.of(0xaa, 0xbb) },
      { uuid: C(3), properties: ['read'], value: pattern(40, 3) },
      { uuid: C(4), properties: ['read'], authorize: true, value: 'authorized' },
      { uuid: C(5), properties: ['read'], security: 'encrypted', value: 'sealed' },
    ] }], { authorize: () => allow, name: NAME });
    const accepted = peripheral.accept();
    await peripheral.advertise({ name: NAME });
    const ad = await central.find({ name: NAME, timeout: 10_000 });
    conn = await central.connect(ad!, { timeout: 10_000 });
    incoming = (await accepted.next()).value as Connection;
    await accepted.return!();
  }, 60_000);

  afterAll(async () => {
    await central?.close().catch(() => undefined);
    await peripheral?.close().catch(() => undefined);
    await btvirt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('Read Multiple Variable: every value whole at ATT_MTU 23 (the cut one completed with a long read)', async () => {
    await conn.services();
    const handles = [1, 2, 3].map(n => server.handleOf(C(n)));
    const values = await conn.gatt.readMultipleVariable(handles);
    expect(values.map(hex)).toEqual([hex(new TextEncoder().encode('one')), 'aabb', hex(pattern(40, 3))]);
  });

  test('authorized: refused with 0x08 while the hook says no, read once it says yes', async () => {
    const c4 = await conn.characteristic(SVC, C(4));
    await expect(c4.read()).rejects.toMatchObject({ code: 'EATT', errorCode: 0x08 });
    allow = true;
    expect(new TextDecoder().decode(await c4.read())).toBe('authorized');
  });

  test('encrypted: the central gets 0x0F, pairs on demand (we respond) and reads it', async () => {
    expect(incoming.security.encrypted).toBe(false);
    const c5 = await conn.characteristic(SVC, C(5));
    expect(new TextDecoder().decode(await c5.read())).toBe('sealed');
    expect(incoming.security).toMatchObject({ encrypted: true, bonded: true });
    expect(conn.security.encrypted).toBe(true);
  });

  test('Service Changed: server.update() indicates the changed range; the client confirms, rediscovers and reads the new characteristic', async () => {
    await server.update([{ uuid: SVC, characteristics: [
      { uuid: C(1), properties: ['read'], value: 'one again' },
      { uuid: C(6), properties: ['read'], value: 'new' },
    ] }]);
    await expect.poll(async () => {
      try { return new TextDecoder().decode(await (await conn.characteristic(SVC, C(6))).read()); } catch (e) { return String(e); }
    }, { timeout: 10_000 }).toBe('new');
    expect(new TextDecoder().decode(await (await conn.characteristic(SVC, C(1))).read())).toBe('one again');
  });

  test('credit-based channels both ways on the same link: the central opens to the peripheral\'s listener and the peripheral to the central\'s; 1-2 credits, SDUs of many K-frames', async () => {
    const toPeripheral = peripheral.listen(0x81, { mtu: 1024, mps: 60, initialCredits: 1 });
    const toCentral = central.listen(0x83, { mtu: 600, mps: 40, initialCredits: 2 });
    try {
      const [a, aIn] = await Promise.all([conn.openChannel(0x81, { mtu: 700, mps: 100, initialCredits: 2 }), toPeripheral.accept({ timeout: 10_000 })]);
      expect(aIn!.handle).toBe(incoming.handle);
      const [b, bIn] = await Promise.all([incoming.openChannel(0x83, { mtu: 900, mps: 80, initialCredits: 1 }), toCentral.accept({ timeout: 10_000 })]);
      const sdus = [pattern(1000, 1), pattern(1, 2), pattern(0, 3), pattern(600, 4)];
      const back = [pattern(700, 5), pattern(59, 6), pattern(500, 7)];
      down = [pattern(600, 8), pattern(222, 9)];
      up = [pattern(900, 10), pattern(81, 11)];
      // Writes and reads at once: each side stalls on the other's credits and goes on as it reads.
      const readAll = async (ch: NonNullable<typeof aIn>, n: number): Promise<string[]> => {
        const got: string[] = [];
        for (let i = 0; i < n; i++) got.push(hex((await ch.read({ timeout: 10_000 }))!));
        return got;
      };
      const [r1, r2, r3, r4] = await Promise.all([
        readAll(aIn!, sdus.length), readAll(a, back.length), readAll(bIn!, down.length), readAll(b, up.length),
        (async () => { for (const s of sdus) await a.write(s, { timeout: 10_000 }); })(),
        (async () => { for (const s of back) await aIn!.write(s, { timeout: 10_000 }); })(),
        (async () => { for (const s of down) await b.write(s, { timeout: 10_000 }); })(),
        (async () => { for (const s of up) await bIn!.write(s, { timeout: 10_000 }); })(),
      ]);
      expect(r1).toEqual(sdus.map(hex));
      expect(r2).toEqual(back.map(hex));
      expect(r3).toEqual(down.map(hex));
      expect(r4).toEqual(up.map(hex));
      for (const ch of [a, aIn!, b, bIn!]) {
        if (ch.stats.framesSent > 2) expect(ch.stats.creditStalls).toBeGreaterThan(0);
      }
      for (const s of [...sdus, ...back, ...down, ...up]) carried.add(hex(s));
      await a.close();
      await b.close();
      expect(aIn!.closedError).toMatchObject({ by: 'peer' });
      expect(bIn!.closedError).toMatchObject({ by: 'peer' });
    } finally {
      toPeripheral.close();
      toCentral.close();
    }
  });

  test('tshark on the peripheral\'s recording: the ATT exchanges above, the SDUs of the channels we opened, no malformed frame', async () => {
    await conn.disconnect();
    await new Promise(r => setTimeout(r, 200));
    const rows = await attRows();
    // Read Multiple Variable Request and its response; the refused read (0x08) and the encrypted one (0x0F).
    expect(rows.some(r => r.dir === 'rx' && r.opcode === 0x20)).toBe(true);
    expect(rows.some(r => r.dir === 'tx' && r.opcode === 0x21)).toBe(true);
    const errors = (await tshark('-r', capture, '-Y', 'btatt.opcode == 0x01', '-T', 'fields', '-e', 'btatt.error_code')).split('\n').filter(Boolean);
    expect(errors).toEqual(expect.arrayContaining(['0x08', '0x0f']));
    // The Service Changed indication (0x1D) and its confirmation (0x1E).
    expect(rows.some(r => r.dir === 'tx' && r.opcode === 0x1d)).toBe(true);
    expect(rows.some(r => r.dir === 'rx' && r.opcode === 0x1e)).toBe(true);
    // SMP on the peripheral's side: the central's Pairing Request, our Pairing Response.
    const smp = (await tshark('-r', capture, '-Y', 'btsmp', '-T', 'fields', '-e', 'btsmp.opcode')).split('\n').filter(Boolean);
    expect(smp.slice(0, 2)).toEqual(['0x01', '0x02']);
    // tshark's reassembly of the channel SDUs: it follows both directions of the channel the peripheral
    // opened (0x83); of the central's channel it knows only what we sent (the side that answered the
    // request, as in coc-bluez). Each SDU it cut out is one that was sent, octet for octet.
    const sdus = await tsharkCreditSdus(capture);
    expect(sdus.filter(r => r.dir === 'tx').map(r => r.hex)).toEqual(expect.arrayContaining(down.map(hex)));
    expect(sdus.filter(r => r.dir === 'rx').map(r => r.hex)).toEqual(expect.arrayContaining(up.map(hex)));
    expect(sdus.filter(r => !carried.has(r.hex))).toEqual([]);
    expect(await tsharkMalformed(capture)).toEqual([]);
  });
});
