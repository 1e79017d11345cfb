// Queue bounds a peer feeds (issue 15, "audit every other queue"): a subscription's backlog for an
// iterator that does not read is SUBSCRIPTION_BUFFER_DEFAULT values, or the caller's `buffer`, which
// must be an integer 0..SUBSCRIPTION_BUFFER_MAX (before, NaN or Infinity made it unbounded); callers
// waiting on one pairing are at most MAX_PAIR_WAITERS; connections waiting in an accept() loop that
// does not keep up with a central that connects again and again are at most ACCEPT_QUEUE_LIMIT.
import { afterEach, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { ACCEPT_QUEUE_LIMIT } from '../../src/api/incoming.js';
import { ArgumentError, InvalidStateError } from '../../src/errors.js';
import { MAX_PAIR_WAITERS } from '../../src/link/pairing.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { SUBSCRIPTION_BUFFER_DEFAULT, SUBSCRIPTION_BUFFER_MAX } from '../../src/gatt/client.js';
import { createSimulator, HEART_RATE_SENSOR, SimAir, type Simulator } from '../../src/sim/index.js';

const open: Adapter[] = [];
afterEach(async () => { for (const a of open.splice(0)) await a.close(); });

async function up(): Promise<{ sim: Simulator; adapter: Adapter }> {
  const sim = createSimulator({ name: 'bounds', peripherals: [{
    name: 'Fast', address: 'D4:1E:35:7A:00:0B', addressType: 'random',
    advertising: { data: { flags: 0x06, name: 'Fast' }, intervalMs: 50, rssi: -50 },
    gatt: [{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['notify'] }] }],
    notifications: [{ characteristic: 0xfff1, everyMs: 10, generator: { kind: 'counter', bytes: 2 } }],
  }] });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
  open.push(adapter);
  return { sim, adapter };
}

test('a subscription buffer that is not an integer 0..SUBSCRIPTION_BUFFER_MAX is an ArgumentError, nothing written', async () => {
  const { adapter } = await up();
  const conn = await adapter.connect({ address: 'D4:1E:35:7A:00:0B', addressType: 'random' } as never, { timeout: 5000 });
  const ch = await conn.characteristic(0xfff0, 0xfff1);
  for (const buffer of [Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5, SUBSCRIPTION_BUFFER_MAX + 1]) {
    await expect(ch.subscribe(undefined, { buffer }), String(buffer)).rejects.toBeInstanceOf(ArgumentError);
  }
  expect(SUBSCRIPTION_BUFFER_DEFAULT).toBeLessThanOrEqual(SUBSCRIPTION_BUFFER_MAX);
});

test.each([[4], [undefined]])('an iterator that does not read keeps at most its buffer (%s), the newest, and counts the rest', async buffer => {
  const { sim, adapter } = await up();
  const conn = await adapter.connect({ address: 'D4:1E:35:7A:00:0B', addressType: 'random' } as never, { timeout: 5000 });
  const ch = await conn.characteristic(0xfff0, 0xfff1);
  const sub = await ch.subscribe(undefined, buffer === undefined ? {} : { buffer });
  const limit = buffer ?? SUBSCRIPTION_BUFFER_DEFAULT;
  await sim.clock.delay(10 * (limit + 100)); // more than `limit` notifications arrive unread
  expect(sub.dropped).toBeGreaterThan(0);
  const it = sub[Symbol.asyncIterator]();
  const kept: number[] = [];
  for (let i = 0; i < limit; i++) {
    const r = await it.next();
    kept.push(r.value![0]! | (r.value![1]! << 8));
  }
  // The kept values are consecutive: the oldest were dropped, not the newest.
  for (let i = 1; i < kept.length; i++) expect((kept[i]! - kept[i - 1]! + 0x10000) % 0x10000).toBe(1);
  await sub.unsubscribe();
});

test('at most MAX_PAIR_WAITERS callers wait on one pairing; the next is refused at once, the others all get its outcome', async () => {
  const sim = createSimulator({ name: 'pair-waiters', peripherals: [{ ...HEART_RATE_SENSOR, notifications: [], pairing: {} }] });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, bonds: new MemoryBondStore() });
  open.push(adapter);
  const conn = await adapter.connect({ address: HEART_RATE_SENSOR.address, type: 'random' } as never, { timeout: 5000 });
  const warnings: string[] = [];
  const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`); };
  process.on('warning', onWarning);
  try {
    // No deadline: all of them wait on no signal (before, each added a listener to one shared signal).
    const waiting = Array.from({ length: MAX_PAIR_WAITERS }, () => conn.pair());
    await expect(conn.pair()).rejects.toBeInstanceOf(InvalidStateError);
    const states = await Promise.all(waiting);
    for (const s of states) expect(s).toMatchObject({ encrypted: true, bonded: true });
    await new Promise(r => setImmediate(r)); // process warnings are emitted on a later tick
    expect(warnings).toEqual([]);
  } finally {
    process.off('warning', onWarning);
  }
});

test('an accept() loop that does not read holds the newest ACCEPT_QUEUE_LIMIT connections; every one was announced', async () => {
  // A central on the same air connects and disconnects over and over while our accept() loop body is
  // busy: the iterator keeps the newest ACCEPT_QUEUE_LIMIT, the older ones were still announced by
  // 'connection' (and are closed by now).
  const air = new SimAir();
  const ps = createSimulator({ name: 'acceptor', peripherals: [] }, { air });
  const cs = createSimulator({ name: 'caller', peripherals: [] }, { air });
  const peripheral = await Adapter.open({ transport: ps.transport, clock: air.clock, bonds: false });
  const central = await Adapter.open({ transport: cs.transport, clock: air.clock, bonds: false });
  open.push(central, peripheral);
  await peripheral.advertise({ name: 'acceptor' });
  const announced: Connection[] = [];
  peripheral.on('connection', (c: Connection) => announced.push(c));
  const accepted = peripheral.accept();
  const ad = await central.find({ name: 'acceptor', timeout: 5000 });
  const calls = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const before = announced.length;
      const conn = await central.connect(ad!, { timeout: 5000 });
      while (announced.length === before) await air.clock.delay(10);
      await conn.disconnect();
    }
  };
  const extra = 3;
  await calls(ACCEPT_QUEUE_LIMIT + extra);
  expect(announced).toHaveLength(ACCEPT_QUEUE_LIMIT + extra);
  const got: Connection[] = [];
  for (let i = 0; i < ACCEPT_QUEUE_LIMIT; i++) got.push((await accepted.next()).value as Connection);
  expect(got.map(c => announced.indexOf(c))).toEqual(Array.from({ length: ACCEPT_QUEUE_LIMIT }, (_, i) => extra + i));
  // The queue is empty now: the next connection is the next item.
  await calls(1);
  expect(announced.indexOf((await accepted.next()).value as Connection)).toBe(ACCEPT_QUEUE_LIMIT + extra);
  await accepted.return!();
});
