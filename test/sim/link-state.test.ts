// Link state belongs to the link (issue 8, section 2; issue 15, "State after a fault"): a caller's
// deadline or a fault during the MTU exchange, discovery, link setup or a CCCD write rejects that
// caller only; the next operation behaves. Run on the simulator's virtual clock against the demo
// heart-rate sensor with fault behaviours.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { AbortError, AttError, ProtocolError, TimeoutError } from '../../src/errors.js';
import { createSimulator, HEART_RATE_SENSOR, type PeerBehaviour, type Simulator } from '../../src/sim/index.js';

const open: Array<{ adapter?: Adapter; sim: Simulator }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.adapter?.close();
});

async function up(behaviour: PeerBehaviour = {}): Promise<{ sim: Simulator; adapter: Adapter; conn: Connection; requests: () => string[] }> {
  const sim = createSimulator({ name: 'link-state', peripherals: [{ ...HEART_RATE_SENSOR, behaviour }] });
  const entry: { adapter?: Adapter; sim: Simulator } = { sim };
  open.push(entry);
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
  entry.adapter = adapter;
  const conn = await adapter.connect({ address: HEART_RATE_SENSOR.address, addressType: 'random' }, { timeout: 5000 });
  // Every ATT request the client sent, by kind, as the peer saw them (bearer-level counters).
  const log: string[] = [];
  const bearer = conn.gatt.bearer;
  const orig = bearer.request.bind(bearer);
  bearer.request = ((pdu: { kind: string }, o?: unknown) => { log.push(pdu.kind); return orig(pdu as never, o as never); }) as typeof bearer.request;
  return { sim, adapter, conn, requests: () => log };
}

async function done(adapter: Adapter, sim: Simulator): Promise<void> {
  await adapter.close();
  expect(sim.clock.pendingTimers).toBe(0);
}

describe('the MTU exchange belongs to the link', () => {
  test('services({ timeout }) timing out in the exchange: the late response is applied, later calls work', async () => {
    const { sim, adapter, conn } = await up({ delays: [{ opcode: 0x02, ms: 3000 }] });
    const t0 = sim.now();
    const err = await conn.services({ timeout: 1000 }).catch(e => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(sim.now() - t0).toBeLessThan(1100);
    expect(conn.mtu).toBe(23); // not yet
    // Before the late response: the next call joins the exchange still on the wire.
    const tree = await conn.services();
    expect(conn.mtu).toBe(247); // min(517, the peer's 247)
    expect(tree.map(s => s.name)).toContain('heart_rate');
    expect((await conn.service('battery_service')).name).toBe('battery_service');
    expect(new TextDecoder().decode(await (await conn.characteristic('generic_access', 'gap.device_name')).read())).toBe('Pulse HR');
    await done(adapter, sim);
  });

  test('a late Exchange MTU Response with nobody waiting still sets ATT_MTU', async () => {
    const { sim, adapter, conn, requests } = await up({ delays: [{ opcode: 0x02, ms: 3000 }] });
    await expect(conn.exchangeMtu({ timeout: 500 })).rejects.toBeInstanceOf(TimeoutError);
    await sim.clock.delay(3000);
    expect(conn.mtu).toBe(247);
    expect(await conn.exchangeMtu()).toBe(247);
    expect(requests().filter(k => k === 'exchangeMtuReq')).toHaveLength(1);
    await done(adapter, sim);
  });

  test('Request Not Supported: the link stays at 23 and discovery, read, write and notify work', async () => {
    const { sim, adapter, conn, requests } = await up({ errors: [{ opcode: 0x02, error: 0x06 }] });
    expect(await conn.exchangeMtu()).toBe(23);
    const services = await conn.services();
    expect(services.map(s => s.name)).toEqual(['generic_access', 'generic_attribute', 'heart_rate', 'battery_service', 'device_information']);
    expect(conn.mtu).toBe(23);
    const hrcp = await conn.characteristic('heart_rate', 'heart_rate_control_point');
    await hrcp.write(Uint8Array.of(1));
    expect(await (await conn.characteristic('battery_service', 'battery_level')).read()).toEqual(Uint8Array.of(0x57));
    const hrm = await conn.characteristic('heart_rate', 'heart_rate_measurement');
    const values: Uint8Array[] = [];
    for await (const v of hrm.notifications()) if (values.push(v) === 2) break;
    expect(values).toHaveLength(2);
    // Asked once; the refusal is remembered for the link, not repeated before every call.
    expect(requests().filter(k => k === 'exchangeMtuReq')).toHaveLength(1);
    await done(adapter, sim);
  });

  test('a malformed Exchange MTU Response fails that call only; the next one exchanges again', async () => {
    const { sim, adapter, conn, requests } = await up({ raw: [{ opcode: 0x02, nth: 1, respond: { hex: '03' } }] });
    await expect(conn.services()).rejects.toBeInstanceOf(ProtocolError);
    expect(conn.mtu).toBe(23);
    await conn.services();
    expect(conn.mtu).toBe(247);
    expect(requests().filter(k => k === 'exchangeMtuReq')).toHaveLength(2);
    await done(adapter, sim);
  });

  test('an aborted exchange: the caller gets AbortError, the response still counts', async () => {
    const { sim, adapter, conn } = await up({ delays: [{ opcode: 0x02, ms: 200 }] });
    const ctl = new AbortController();
    const p = conn.exchangeMtu({ signal: ctl.signal });
    ctl.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    await sim.clock.delay(500);
    expect(conn.mtu).toBe(247);
    await done(adapter, sim);
  });
});

describe('discovery belongs to the link', () => {
  test('one caller\'s deadline is not another\'s: a concurrent services() without one still gets the tree', async () => {
    const { sim, adapter, conn } = await up({ delays: [{ opcode: 0x10, nth: 1, ms: 2000 }] });
    await conn.exchangeMtu();
    const short = conn.gatt.services({ timeout: 500 });
    const long = conn.gatt.services();
    await expect(short).rejects.toBeInstanceOf(TimeoutError);
    expect((await long).map(s => s.name)).toContain('heart_rate');
    expect(conn.gatt.stats.discoveryRequests).toBeGreaterThan(3);
    await done(adapter, sim);
  });

  test('a discovery nobody waits for any more stops sending requests; the next services() starts afresh', async () => {
    const { sim, adapter, conn, requests } = await up({ delays: [{ opcode: 0x10, nth: 1, ms: 1000 }] });
    await conn.exchangeMtu();
    const ctl = new AbortController();
    const p = conn.gatt.services({ signal: ctl.signal });
    await sim.clock.delay(100);
    ctl.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    await sim.clock.delay(2000);
    const afterAbort = requests().length;
    expect(requests().filter(k => k === 'readByGroupTypeReq')).toHaveLength(1); // nothing after the abandoned one
    const tree = await conn.gatt.services();
    expect(tree).toHaveLength(5);
    expect(requests().length).toBeGreaterThan(afterAbort);
    await done(adapter, sim);
  });
});

describe('link setup and CCCDs', () => {
  test('a failed Service Changed CCCD write is tried again at the next services()', async () => {
    // The Service Changed CCCD of the demo sensor is handle 0x0009 (GAP 0x0001–0x0005, GATT from 0x0006).
    const { sim, adapter, conn, requests } = await up({ errors: [{ opcode: 0x12, handle: 0x0009, nth: 1, error: 0x0e }] });
    await conn.services();
    await conn.gatt.ready;
    const sc = (await conn.characteristic('generic_attribute', 'gatt.service_changed'));
    expect(sc.cccd!.handle).toBe(0x0009);
    expect(requests().filter(k => k === 'writeReq')).toHaveLength(1);
    await conn.services(); // the tree is known: only the setup runs again
    await conn.gatt.ready;
    expect(requests().filter(k => k === 'writeReq')).toHaveLength(2);
    await conn.services();
    await conn.gatt.ready;
    expect(requests().filter(k => k === 'writeReq')).toHaveLength(2); // done: not repeated
    await done(adapter, sim);
  });

  test('CCCD: the last intent wins on the wire and a refused write does not poison the next', async () => {
    const { sim, adapter, conn, requests } = await up({ errors: [{ opcode: 0x12, handle: 0x000d, nth: 1, error: 0x0e }] });
    const hrm = await conn.characteristic('heart_rate', 'heart_rate_measurement');
    expect(hrm.cccd!.handle).toBe(0x000d);
    const first = await hrm.subscribe().catch(e => e);
    expect(first).toBeInstanceOf(AttError);
    const before = requests().length;
    // subscribe, unsubscribe, subscribe in one go: one write of 01 00 is enough.
    const a = await hrm.subscribe();
    const [b] = await Promise.all([hrm.subscribe(), a.unsubscribe()]);
    expect(requests().slice(before).filter(k => k === 'writeReq')).toHaveLength(1);
    expect(b.active).toBe(true);
    await b.unsubscribe();
    expect(requests().slice(before).filter(k => k === 'writeReq')).toHaveLength(2); // 00 00 on the way out
    await done(adapter, sim);
  });
});
