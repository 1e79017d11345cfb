// Signed Write Commands to our GATT server (Vol 3, Part F, 3.4.5.4; Part C, 10.4.2; signature Vol 3,
// Part H, 2.4.5): a blewire central that paired with `signing: true` (so its CSRK is in the peripheral's
// bond) signs, a blewire peripheral verifies. Valid, replayed, forged, unbonded, wrong characteristic,
// encrypted link: only the first reaches onWrite; each drop is counted by reason.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import type { ServerWrite } from '../../src/gatt/server/server.js';
import { attSignature } from '../../src/gatt/signing.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';

const SVC = '5167ed00-7b1e-4c0d-9a5e-2f1e0d9c8b10';
const open: Adapter[] = [];
afterEach(async () => { for (const a of open.splice(0)) await a.close().catch(() => undefined); });

async function setup() {
  const air = new SimAir();
  const ps = createSimulator({ name: 'peripheral', peripherals: [] }, { air });
  const cs = createSimulator({ name: 'central', peripherals: [] }, { air });
  const peerBonds = new MemoryBondStore();
  const centralBonds = new MemoryBondStore();
  const peripheral = await Adapter.open({ transport: ps.transport, clock: air.clock, bonds: peerBonds, randomAddress: 'C4:11:22:33:44:57' });
  const central = await Adapter.open({ transport: cs.transport, clock: air.clock, bonds: centralBonds, randomAddress: 'C4:11:22:33:44:58' });
  open.push(central, peripheral);
  const writes: Array<{ value: number[]; signed: boolean; command: boolean }> = [];
  const onWrite = (v: Uint8Array, r: ServerWrite<Connection>): void => { writes.push({ value: [...v], signed: r.signed, command: r.command }); };
  const server = await peripheral.serve([{ uuid: SVC, characteristics: [
    { uuid: 0xfff1, properties: ['read', 'authenticatedSignedWrites'], value: Uint8Array.of(0), onWrite },
    { uuid: 0xfff2, properties: ['read', 'writeWithoutResponse'], value: Uint8Array.of(0), onWrite },
  ] }]);
  const connect = async (): Promise<Connection> => {
    const accepted = peripheral.accept();
    await peripheral.advertise({ name: 'signed' });
    const ad = await central.find({ name: 'signed', timeout: 5000 });
    const conn = await central.connect(ad!);
    await accepted.next();
    await accepted.return!();
    return conn;
  };
  return { air, peripheral, central, server, writes, connect, peerBonds, centralBonds };
}

const settle = async (s: Awaited<ReturnType<typeof setup>>): Promise<void> => { await s.air.clock.delay(200); };

describe('our GATT server verifies Signed Write Commands', () => {
  test('valid, replayed, forged, wrong characteristic, plain write to a signed-only characteristic, encrypted link', async () => {
    const s = await setup();
    let conn = await s.connect();
    expect(await conn.pair({ signing: true })).toMatchObject({ bonded: true });
    await s.air.clock.delay(200);
    const peerBond = (await s.peerBonds.list())[0]!;
    expect(peerBond.peerCsrk).toHaveLength(16);
    await conn.disconnect();
    await s.air.clock.delay(200);
    conn = await s.connect();
    expect(conn.security.encrypted).toBe(false);
    const h1 = s.server.handleOf(0xfff1), h2 = s.server.handleOf(0xfff2);

    // Valid: reaches onWrite as a signed command; the counter is saved with the bond before.
    await conn.signedWrite(h1, Uint8Array.of(7));
    await conn.signedWrite(h1, Uint8Array.of(8));
    await settle(s);
    expect(s.writes).toEqual([{ value: [7], signed: true, command: true }, { value: [8], signed: true, command: true }]);
    expect(s.server.signedWrites.accepted).toBe(2);
    expect((await s.peerBonds.list())[0]!.peerSignCounter).toBe(2);

    const csrk = (await s.centralBonds.list())[0]!.localCsrk!;
    const raw = (handle: number, value: Uint8Array, counter: number, sig = attSignature(csrk, Uint8Array.of(0xd2, handle & 0xff, handle >> 8), value, counter)) =>
      conn.gatt.bearer.command({ kind: 'signedWriteCmd', handle, value, authenticationSignature: sig });
    // Replayed: counter 1 again (a correct MAC), and 0.
    await raw(h1, Uint8Array.of(8), 1);
    await raw(h1, Uint8Array.of(7), 0);
    // Forged: a fresh counter, one MAC bit flipped.
    const forged = attSignature(csrk, Uint8Array.of(0xd2, h1 & 0xff, h1 >> 8), Uint8Array.of(9), 5);
    forged[11] ^= 1;
    await raw(h1, Uint8Array.of(9), 5, forged);
    // Another key entirely.
    await raw(h1, Uint8Array.of(9), 6, attSignature(new Uint8Array(16).fill(1), Uint8Array.of(0xd2, h1 & 0xff, h1 >> 8), Uint8Array.of(9), 6));
    // A characteristic without the 0x40 property (correctly signed).
    await raw(h2, Uint8Array.of(3), 7);
    // A plain Write Command to the signed-only characteristic on the unencrypted link: not applied.
    await conn.gatt.bearer.command({ kind: 'writeCmd', handle: h1, value: Uint8Array.of(4) });
    await settle(s);
    expect(s.writes).toHaveLength(2);
    expect(s.server.signedWrites.dropped).toMatchObject({ replayed: 2, badSignature: 2, notSignable: 1, noKey: 0 });
    // A skipped counter is fine (only "not above the last" is refused): 10 after 1.
    await raw(h1, Uint8Array.of(10), 10);
    await settle(s);
    expect(s.writes.at(-1)).toEqual({ value: [10], signed: true, command: true });
    expect((await s.peerBonds.list())[0]!.peerSignCounter).toBe(11);

    // Encrypted link: a signed write is dropped (the client writes plainly there), a plain one is applied.
    await conn.encrypt();
    await settle(s);
    await raw(h1, Uint8Array.of(11), 11);
    await conn.gatt.bearer.command({ kind: 'writeCmd', handle: h1, value: Uint8Array.of(12) });
    await settle(s);
    expect(s.server.signedWrites.dropped.encrypted).toBe(1);
    expect(s.writes.at(-1)).toEqual({ value: [12], signed: false, command: true });
    expect((await s.peerBonds.list())[0]!.peerSignCounter).toBe(11);
  });

  test('no bond: a client that never paired has its signed writes dropped (noKey)', async () => {
    const s = await setup();
    const conn = await s.connect();
    const h1 = s.server.handleOf(0xfff1);
    const sig = attSignature(new Uint8Array(16).fill(2), Uint8Array.of(0xd2, h1 & 0xff, h1 >> 8), Uint8Array.of(1), 0);
    await conn.gatt.bearer.command({ kind: 'signedWriteCmd', handle: h1, value: Uint8Array.of(1), authenticationSignature: sig });
    await settle(s);
    expect(s.writes).toEqual([]);
    expect(s.server.signedWrites.dropped.noKey).toBe(1);
  });
});
