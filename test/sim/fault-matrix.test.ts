// The extended fault matrix (issue 15, "State after a fault"): five procedures — scan, connect,
// reliable write, long read, indications — under six faults — an error answer, silence, the peer
// disconnecting, the radio losing the link, a dropped packet, a controller Hardware Error — one test
// per cell, on the simulator (deterministic, virtual time). Each cell checks:
//  - the procedure settles (no hang) with the outcome written in EXPECTED: success, or the typed
//    BlewireError named there;
//  - afterwards the link is either usable (a read of the Device Name answers) or cleanly closed
//    (`closed` resolved, gone from adapter.connections), and the NEXT operation behaves: the same
//    procedure, on the same link or a new one, succeeds;
//  - once the adapter is closed no host timer is left.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { BlewireError } from '../../src/errors.js';
import { createSimulator, type PeerBehaviour, type SimPeripheral, type Simulator } from '../../src/sim/index.js';

const ADDRESS = 'D4:1E:35:7A:00:09';
/** 100 octets: at ATT_MTU 23 a read takes one Read and four Read Blob (Vol 3, Part G, 4.8.3). */
const LONG = Uint8Array.from({ length: 100 }, (_, i) => i);

function peer(behaviour: PeerBehaviour = {}): SimPeripheral {
  return {
    name: 'Matrix', address: ADDRESS, addressType: 'random', mtu: 23, behaviour,
    advertising: { data: { flags: 0x06, name: 'Matrix' }, intervalMs: 50, rssi: -50 },
    gatt: [
      { uuid: 0x1800, characteristics: [{ uuid: 0x2a00, properties: ['read'], value: 'Matrix' }] },
      { uuid: 0xfff0, characteristics: [
        { uuid: 0xfff1, properties: ['read', 'write'], value: LONG, maxLength: 200 },
        { uuid: 0xfff2, properties: ['read', 'write'], value: Uint8Array.of(0), maxLength: 64 },
        { uuid: 0xfff3, properties: ['indicate'] },
      ] },
    ],
    notifications: [{ characteristic: 0xfff3, everyMs: 200, mode: 'indicate', generator: { kind: 'counter', bytes: 2 } }],
  };
}

/** Scanned for while the link to Matrix is up (a connected peripheral stops advertising). */
const BEACON: SimPeripheral = {
  name: 'Beacon', address: 'D4:1E:35:7A:00:0A', addressType: 'random',
  advertising: { data: { flags: 0x06, name: 'Beacon' }, intervalMs: 100, rssi: -60 },
};

const PROCEDURES = ['scan', 'connect', 'reliable write', 'long read', 'indications'] as const;
const FAULTS = ['error answer', 'silence', 'peer disconnects', 'link lost', 'dropped packet', 'hardware error'] as const;
type Procedure = (typeof PROCEDURES)[number];
type Fault = (typeof FAULTS)[number];

interface World {
  sim: Simulator;
  adapter: Adapter;
  conn?: Connection;
  handles: { long: number; small: number; indicate: number; name: number };
}

const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.adapter.close().catch(() => undefined);
});

async function connect(w: World): Promise<Connection> {
  const conn = await w.adapter.connect({ address: ADDRESS, addressType: 'random' } as never, { timeout: 5000 });
  w.conn = conn;
  return conn;
}

async function discover(w: World): Promise<void> {
  const conn = w.conn!;
  const ch = async (u: number) => (await conn.characteristic(0xfff0, u)).handle;
  w.handles = { long: await ch(0xfff1), small: await ch(0xfff2), indicate: await ch(0xfff3),
    name: (await conn.characteristic(0x1800, 0x2a00)).handle };
}

/** Three indications received (each confirmed), or the subscription failing. */
async function indications(conn: Connection, sim: Simulator, within = 5000): Promise<number[]> {
  const ch = await conn.characteristic(0xfff0, 0xfff3);
  const got: number[] = [];
  const sub = await ch.subscribe(v => { got.push(v[0]! | (v[1]! << 8)); }, { indicate: true, timeout: 10_000 });
  const end = sim.now() + within;
  while (got.length < 3 && sim.now() < end && conn.connected) await new Promise<void>(r => sim.clock.setTimeout(r, 50));
  await sub.unsubscribe().catch(() => undefined);
  if (got.length < 3) throw new Error(`only ${got.length} indications in ${within} ms`);
  return got;
}

/** Run one procedure on the world (connecting first where it needs a link). */
async function run(w: World, p: Procedure): Promise<unknown> {
  switch (p) {
    case 'scan': {
      const ad = await w.adapter.find({ name: 'Beacon', timeout: 3000 });
      if (!ad) throw new Error('scan: Beacon not heard');
      return ad.address;
    }
    case 'connect': return (await connect(w)).handle;
    case 'reliable write':
      await w.conn!.gatt.reliableWrite([{ handle: w.handles.long, value: LONG.subarray(0, 40) }, { handle: w.handles.small, value: Uint8Array.of(1, 2, 3) }],
        { timeout: 40_000 });
      return 'written';
    case 'long read': return (await w.conn!.gatt.readValue(w.handles.long, { timeout: 40_000 })).length;
    case 'indications': return (await indications(w.conn!, w.sim)).length;
  }
}

/** The peer behaviour (set before the link exists) each cell needs. */
function behaviourFor(p: Procedure, f: Fault): PeerBehaviour {
  const op = p === 'reliable write' ? 0x18 /* Execute Write */ : p === 'long read' ? 0x0c /* Read Blob */ : 0x12; /* Write (CCCD) */
  if (p === 'scan' || p === 'connect') return {};
  switch (f) {
    // The second Prepare Write (Prepare Queue Full), the second Read Blob (Unlikely Error: not Invalid
    // Offset, which readLong takes as the end of an exact-fit value, Vol 3, Part F, 3.4.4.5), the CCCD
    // write (Write Not Permitted).
    case 'error answer': return { errors: [p === 'reliable write' ? { opcode: 0x16, nth: 2, error: 0x09 }
      : p === 'long read' ? { opcode: 0x0c, nth: 2, error: 0x0e } : { opcode: 0x12, nth: 1, error: 0x03 }] };
    case 'silence': return { ignore: [{ opcode: op, nth: 1 }] };
    case 'peer disconnects': return p === 'indications' ? {} : { disconnectOn: [{ opcode: op, nth: 1 }] };
    default: return {};
  }
}

/** Faults injected at the moment the procedure starts (controller side and radio). */
function injectAtStart(w: World, p: Procedure, f: Fault): void {
  const { sim } = w;
  switch (f) {
    case 'error answer':
      if (p === 'scan') sim.failCommand('leSetExtendedScanEnable', 0x0c);
      if (p === 'connect') sim.failCommand('leExtendedCreateConnection', 0x07);
      return;
    case 'silence':
      if (p === 'scan') sim.failCommand('leSetExtendedScanEnable', 'silent');
      if (p === 'connect') sim.failCommand('leExtendedCreateConnection', 'silent');
      return;
    case 'peer disconnects':
      if (p === 'scan') sim.clock.setTimeout(() => sim.disconnect('Matrix'), 20);
      if (p === 'connect') sim.clock.setTimeout(() => sim.disconnect('Matrix'), 0);
      if (p === 'indications') sim.clock.setTimeout(() => sim.disconnect('Matrix'), 300);
      return;
    case 'link lost':
      // Not for connect: the link it makes is lost right after (below, once it exists).
      if (p !== 'connect') sim.loseLink('Matrix');
      return;
    case 'dropped packet':
      if (p === 'scan') sim.inject({ direction: 'toHost', kind: 'commandComplete', action: 'drop' });
      if (p === 'connect') sim.inject({ direction: 'toHost', kind: 'commandStatus', action: 'drop' });
      if (p === 'reliable write') sim.inject({ direction: 'toHost', attOpcode: 0x19, action: 'drop' });
      if (p === 'long read') sim.inject({ direction: 'toHost', attOpcode: 0x0d, nth: 2, action: 'drop' });
      if (p === 'indications') sim.inject({ direction: 'toHost', attOpcode: 0x1d, action: 'drop' });
      return;
    case 'hardware error':
      sim.clock.setTimeout(() => sim.hardwareError(0x42), p === 'indications' ? 300 : 1);
      return;
  }
}

/**
 * What each cell's procedure must end with: 'ok', or the BlewireError's name. Filled from the
 * specification's rules, checked against the stack: an error answer is that error (AttError,
 * HciStatusError); silence is a TimeoutError (the command timeout, the 30 s ATT transaction timeout);
 * a link that ends under an operation is a DisconnectedError.
 */
const EXPECTED: Record<Procedure, Record<Fault, string>> = {
  scan: { 'error answer': 'HciStatusError', silence: 'TimeoutError', 'peer disconnects': 'ok', 'link lost': 'ok',
    'dropped packet': 'TimeoutError', 'hardware error': 'HardwareError' },
  // A dropped Command Status of LE Extended Create Connection costs nothing: LE Connection Complete follows.
  connect: { 'error answer': 'HciStatusError', silence: 'TimeoutError', 'peer disconnects': 'ok', 'link lost': 'ok',
    'dropped packet': 'ok', 'hardware error': 'HardwareError' },
  'reliable write': { 'error answer': 'AttError', silence: 'TimeoutError', 'peer disconnects': 'DisconnectedError',
    'link lost': 'DisconnectedError', 'dropped packet': 'TimeoutError', 'hardware error': 'DisconnectedError' },
  'long read': { 'error answer': 'AttError', silence: 'TimeoutError', 'peer disconnects': 'DisconnectedError',
    'link lost': 'DisconnectedError', 'dropped packet': 'TimeoutError', 'hardware error': 'DisconnectedError' },
  indications: { 'error answer': 'AttError', silence: 'TimeoutError', 'peer disconnects': 'Error', 'link lost': 'DisconnectedError',
    'dropped packet': 'Error', 'hardware error': 'Error' },
};

async function cell(p: Procedure, f: Fault): Promise<void> {
  const sim = createSimulator({ name: `matrix ${p} × ${f}`, peripherals: [peer(behaviourFor(p, f)), BEACON] });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, commandTimeout: 2000 });
  const w: World = { sim, adapter, handles: { long: 0, small: 0, indicate: 0, name: 0 } };
  worlds.push(w);
  // Every procedure but connect runs with a link up (scan too: the link's fault must not stop the scan).
  if (p !== 'connect') {
    await connect(w);
    await discover(w);
  }
  if (p === 'connect' && f === 'link lost') {
    adapter.once('connection', () => sim.loseLink('Matrix'));
  }
  injectAtStart(w, p, f);
  const first = w.conn;

  // 1. The procedure settles, with the expected outcome.
  const outcome = await run(w, p).then(() => 'ok', (e: unknown) => {
    if (e instanceof BlewireError) return e.name;
    // Our own indication collector reports too few values with a plain Error (not the stack's).
    if (p === 'indications' && e instanceof Error && e.message.startsWith('only ')) return 'Error';
    throw e;
  });
  expect(outcome, `${p} under ${f}`).toBe(EXPECTED[p][f]);

  // 2. The link is usable (a read answers), or cleanly closed (the read, if tried, failed typed, and
  //    the link ends: `closed` resolves with a reason and the adapter forgets it).
  const conn = w.conn ?? first;
  if (conn) {
    let usable = false;
    if (conn.connected) {
      const name = await (async () => conn.gatt.readValue(w.handles.name || (await conn.characteristic(0x1800, 0x2a00)).handle,
        { timeout: 40_000 }))().catch((e: unknown) => e);
      if (name instanceof Uint8Array) {
        expect(new TextDecoder().decode(name), 'the link after the fault answers').toBe('Matrix');
        usable = true;
      } else {
        expect(name, 'a link that cannot answer fails typed').toBeInstanceOf(BlewireError);
      }
    }
    if (!usable) {
      const reason = await conn.closed;
      expect(typeof reason.code, 'closed with a reason').toBe('number');
      expect(conn.connected).toBe(false);
      expect(adapter.connections, 'a closed link is gone from the adapter').not.toContain(conn);
    }
  }

  // 3. The next operation behaves: the same procedure, on a (new) link where it needs one. The fault
  //    was one-shot (the peer behaves from now on); 35 s of virtual time pass first, past a Hardware
  //    Error's re-initialisation, a supervision timeout and the peer's own 30 s ATT timeout.
  sim.peripheral('Matrix').spec.behaviour = {};
  await new Promise<void>(r => sim.clock.setTimeout(r, 35_000));
  expect(adapter.host.state).toBe('ready');
  if (p !== 'scan' && p !== 'connect' && !w.conn?.connected) {
    await connect(w);
    await discover(w);
  }
  if (p === 'connect' && w.conn?.connected) await w.conn.disconnect();
  await expect(run(w, p), `${p} after ${f}`).resolves.toBeDefined();

  // 4. Nothing left on the clock once closed.
  await adapter.close();
  expect(sim.clock.pendingTimers, 'host timers left after close').toBe(0);
}

describe('fault matrix: every procedure under every fault leaves a usable or cleanly closed link', () => {
  for (const p of PROCEDURES) {
    for (const f of FAULTS) {
      test(`${p} × ${f}`, () => cell(p, f), 30_000);
    }
  }
});
