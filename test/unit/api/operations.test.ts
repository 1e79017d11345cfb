// Every public awaitable of Adapter and Connection takes { timeout, signal }, on the simulator and its
// virtual clock: an already-aborted signal rejects at once with AbortError and puts no command on the
// wire; a controller that stays silent makes the operation reject with TimeoutError (layer, operation,
// ms, and a hint where there is something to check); and no timer is left once the adapter is closed.
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../../src/api/adapter.js';
import type { Connection } from '../../../src/api/connection.js';
import { AbortError, TimeoutError } from '../../../src/errors.js';
import { createSimulator, type Simulator } from '../../../src/sim/index.js';
import { MemoryBondStore } from '../../../src/smp/bonds.js';

const HR = { address: 'D4:1E:35:7A:00:01', type: 'random' } as const;

async function open(): Promise<{ sim: Simulator; adapter: Adapter }> {
  const sim = createSimulator('demo');
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
  return { sim, adapter };
}

/** A live link to the heart-rate sensor, with no automatic Data Length request behind it. */
async function connected(): Promise<{ sim: Simulator; adapter: Adapter; conn: Connection }> {
  const { sim, adapter } = await open();
  const conn = await adapter.connect(HR, { timeout: 5000, dataLength: false });
  return { sim, adapter, conn };
}

function abortedSignal(): AbortSignal {
  const ctl = new AbortController();
  ctl.abort(new Error('user gave up'));
  return ctl.signal;
}

/** The rejection of `p`, which must reject. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(v => { throw new Error(`expected a rejection, got ${String(v)}`); }, (e: unknown) => e as Error);
}

async function closeAndCheckTimers(sim: Simulator, adapter: Adapter): Promise<void> {
  await adapter.close();
  expect(sim.clock.pendingTimers).toBe(0);
}

/** The link operations of a Connection, each with the command it sends and how it is called. */
const LINK_OPS = [
  { name: 'disconnect', command: 'disconnect', operation: /^disconnect D4:1E:35:7A:00:01$/,
    run: (c: Connection, o: { timeout?: number; signal?: AbortSignal }) => c.disconnect(undefined, o) },
  { name: 'updateParameters', command: 'leConnectionUpdate', operation: /^connection update$/,
    run: (c: Connection, o: { timeout?: number; signal?: AbortSignal }) => c.updateParameters({ intervalMin: 15, intervalMax: 15 }, o) },
  { name: 'setDataLength', command: 'leSetDataLength', operation: /^set data length$/,
    run: (c: Connection, o: { timeout?: number; signal?: AbortSignal }) => c.setDataLength(251, 2120, o) },
  { name: 'setPhy', command: 'leSetPhy', operation: /^set phy$/,
    run: (c: Connection, o: { timeout?: number; signal?: AbortSignal }) => c.setPhy(2, o) },
] as const;

describe('Adapter.open', () => {
  test('an aborted signal rejects with AbortError before the controller sees a command', async () => {
    const sim = createSimulator('demo');
    const err = await rejection(Adapter.open({ transport: sim.transport, clock: sim.clock, signal: abortedSignal() }));
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ operation: 'open', reason: new Error('user gave up') });
    expect(sim.controller.commandLog).toEqual([]);
    expect(sim.clock.pendingTimers).toBe(0);
  });

  test('a silent controller: TimeoutError at the deadline, with what to check; the transport is closed, no timer left', async () => {
    const sim = createSimulator('demo');
    sim.failCommand('reset', 'silent');
    const t0 = sim.clock.now();
    const err = await rejection(Adapter.open({ transport: sim.transport, clock: sim.clock, timeout: 3000 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ layer: 'hci', operation: 'open', ms: 3000 });
    expect(err.message).toBe('hci: open timed out after 3000 ms: is the controller powered and answering HCI commands? ' +
      '`blewire doctor` checks the transport');
    expect(sim.clock.now() - t0).toBeCloseTo(3000);
    expect(sim.controller.commandLog).toEqual(['reset']);
    expect(sim.clock.pendingTimers).toBe(0);
  });

  test('a bond store that never answers: TimeoutError of the store (its own real-time deadline), the transport never used', async () => {
    const sim = createSimulator('demo');
    const never = new MemoryBondStore();
    never.list = () => new Promise(() => {});
    const err = await rejection(Adapter.open({ transport: sim.transport, clock: sim.clock, bonds: never, timeout: 100 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ layer: 'smp', operation: 'open', ms: 100 });
    expect(err.message).toMatch(/bond store/);
    expect(sim.controller.commandLog).toEqual([]);
    expect(sim.clock.pendingTimers).toBe(0);
  });

  test('an abort during bring-up rejects with AbortError carrying the reason', async () => {
    const sim = createSimulator('demo');
    sim.failCommand('reset', 'silent');
    const ctl = new AbortController();
    const p = Adapter.open({ transport: sim.transport, clock: sim.clock, signal: ctl.signal });
    sim.clock.setTimeout(() => ctl.abort('enough'), 100);
    const err = await rejection(p);
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ operation: 'open', reason: 'enough' });
    expect(sim.clock.pendingTimers).toBe(0);
  });
});

describe('Adapter.reset', () => {
  test('an aborted signal rejects with AbortError and sends nothing', async () => {
    const { sim, adapter } = await open();
    const before = sim.controller.commandLog.length;
    const err = await rejection(adapter.reset({ signal: abortedSignal() }));
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ operation: 'reset' });
    expect(sim.controller.commandLog.length).toBe(before);
    await closeAndCheckTimers(sim, adapter);
  });

  test('a silent controller: TimeoutError at the caller\'s deadline; reset works again once it answers', async () => {
    const { sim, adapter } = await open();
    sim.failCommand('reset', 'silent');
    const err = await rejection(adapter.reset({ timeout: 2000 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ layer: 'hci', operation: 'reset', ms: 2000 });
    expect(err.message).toMatch(/^hci: reset timed out after 2000 ms: is the controller powered/);
    const info = await adapter.reset({ timeout: 30_000 });
    expect(info.address).toBe('C0:FF:EE:00:00:01');
    await closeAndCheckTimers(sim, adapter);
  });
});

describe('Adapter.close', () => {
  test('an aborted signal rejects with AbortError, sends nothing and leaves the adapter open', async () => {
    const { sim, adapter, conn } = await connected();
    const before = sim.controller.commandLog.length;
    const err = await rejection(adapter.close({ signal: abortedSignal() }));
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ operation: 'close' });
    expect(sim.controller.commandLog.length).toBe(before);
    expect(conn.connected).toBe(true);
    expect((await conn.characteristic('generic_access', 'gap.device_name')).uuid).toMatch(/^00002a00-/);
    await closeAndCheckTimers(sim, adapter);
  });

  test('a controller silent on Disconnect: close waits only its timeout, then closes the transport and resolves', async () => {
    const { sim, adapter, conn } = await connected();
    sim.failCommand('disconnect', 'silent');
    const t0 = sim.clock.now();
    await adapter.close({ timeout: 700 });
    expect(sim.clock.now() - t0).toBeCloseTo(700);
    expect(sim.controller.commandLog.at(-1)).toBe('disconnect');
    expect(adapter.host.isClosed).toBe(true);
    expect(conn.connected).toBe(false); // the host closing takes its links with it
    expect(sim.clock.pendingTimers).toBe(0);
  });

  test('an abort while waiting for the links closes the transport at once and rejects with AbortError', async () => {
    const { sim, adapter } = await connected();
    sim.failCommand('disconnect', 'silent');
    const ctl = new AbortController();
    const t0 = sim.clock.now();
    const p = adapter.close({ signal: ctl.signal });
    sim.clock.setTimeout(() => ctl.abort(new Error('shutting down')), 300);
    const err = await rejection(p);
    expect(err).toBeInstanceOf(AbortError);
    expect(err.message).toBe('close was aborted: shutting down');
    expect(sim.clock.now() - t0).toBeCloseTo(300);
    expect(adapter.host.isClosed).toBe(true);
    expect(sim.clock.pendingTimers).toBe(0);
  });
});

describe('Adapter.connect and find', () => {
  test('connect: an aborted signal sends no LE Create Connection; nobody there times out with what to check', async () => {
    const { sim, adapter } = await open();
    const err = await rejection(adapter.connect(HR, { signal: abortedSignal() }));
    expect(err).toBeInstanceOf(AbortError);
    expect(sim.controller.commandLog.filter(k => /CreateConnection/.test(k))).toEqual([]);
    const gone = await rejection(adapter.connect({ address: 'C0:00:00:00:00:99', type: 'random' }, { timeout: 1500 }));
    expect(gone).toBeInstanceOf(TimeoutError);
    expect(gone).toMatchObject({ layer: 'gap', operation: 'connect to C0:00:00:00:00:99', ms: 1500 });
    expect(gone.message).toBe('gap: connect to C0:00:00:00:00:99 timed out after 1500 ms: is the device advertising and ' +
      'connectable, and is the address type right (random was given; public or random, as its advertisements report)?');
    expect(sim.controller.commandLog).toContain('leCreateConnectionCancel');
    await closeAndCheckTimers(sim, adapter);
  });

  test('find: an aborted signal rejects with AbortError and starts no scan', async () => {
    const { sim, adapter } = await open();
    const before = sim.controller.commandLog.length;
    const err = await rejection(adapter.find({ name: 'Pulse HR', signal: abortedSignal() }));
    expect(err).toBeInstanceOf(AbortError);
    expect(sim.controller.commandLog.length).toBe(before);
    await closeAndCheckTimers(sim, adapter);
  });
});

describe.each(LINK_OPS)('Connection.$name', op => {
  test('an aborted signal rejects with AbortError and sends nothing', async () => {
    const { sim, adapter, conn } = await connected();
    const before = sim.controller.commandLog.length;
    const err = await rejection(op.run(conn, { signal: abortedSignal() }));
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).operation).toMatch(op.operation);
    expect((err as AbortError).reason).toEqual(new Error('user gave up'));
    expect(sim.controller.commandLog.length).toBe(before);
    expect(conn.connected).toBe(true);
    await closeAndCheckTimers(sim, adapter);
  });

  test('a silent controller: TimeoutError at the caller\'s deadline, layer gap; the link stays usable', async () => {
    const { sim, adapter, conn } = await connected();
    sim.failCommand(op.command, 'silent');
    const t0 = sim.clock.now();
    const err = await rejection(op.run(conn, { timeout: 1000 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ layer: 'gap', ms: 1000 });
    expect((err as TimeoutError).operation).toMatch(op.operation);
    expect(sim.clock.now() - t0).toBeCloseTo(1000);
    expect(sim.controller.commandLog.at(-1)).toBe(op.command);
    expect(conn.connected).toBe(true);
    await closeAndCheckTimers(sim, adapter);
  });

  test('an abort after the command went out rejects at once with AbortError and clears the timer', async () => {
    const { sim, adapter, conn } = await connected();
    sim.failCommand(op.command, 'silent');
    const ctl = new AbortController();
    const p = op.run(conn, { signal: ctl.signal });
    sim.clock.setTimeout(() => ctl.abort('changed my mind'), 50);
    const err = await rejection(p);
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ reason: 'changed my mind' });
    await closeAndCheckTimers(sim, adapter);
  });
});

describe('Connection procedures the controller completes after the caller gave up', () => {
  test('a late LE Connection Update Complete belongs to the abandoned update, not to the next one', async () => {
    const { sim, adapter, conn } = await connected();
    const ctl = new AbortController();
    const first = conn.updateParameters({ intervalMin: 15, intervalMax: 15 }, { signal: ctl.signal });
    ctl.abort(); // the HCI command is already on its way: the controller carries the update out anyway
    expect(await rejection(first)).toBeInstanceOf(AbortError);
    const second = await conn.updateParameters({ intervalMin: 45, intervalMax: 45 });
    expect(second.interval).toBe(45);
    expect(conn.parameters.interval).toBe(45);
    expect(sim.controller.commandLog.filter(k => k === 'leConnectionUpdate')).toHaveLength(2);
    await closeAndCheckTimers(sim, adapter);
  });

  test('a disconnect that timed out still ends the link when the controller gets to it', async () => {
    const { sim, adapter, conn } = await connected();
    const err = await rejection(conn.disconnect(undefined, { timeout: 0.001 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(await conn.closed).toEqual({ code: 0x16, name: 'Connection Terminated By Local Host' });
    await closeAndCheckTimers(sim, adapter);
  });
});

describe('Connection.within', () => {
  test('an aborted signal rejects before fn runs; an abort inside ends the scope with AbortError', async () => {
    const { sim, adapter, conn } = await connected();
    let ran = false;
    const err = await rejection(conn.within(5000, async () => { ran = true; }, { signal: abortedSignal() }));
    expect(err).toBeInstanceOf(AbortError);
    expect(ran).toBe(false);
    const ctl = new AbortController();
    const p = conn.within(5000, async signal => {
      ctl.abort('stop');
      expect(signal.aborted).toBe(true);
      return conn.services();
    }, { signal: ctl.signal });
    const inner = await rejection(p);
    expect(inner).toBeInstanceOf(AbortError);
    expect(inner).toMatchObject({ reason: 'stop' });
    await closeAndCheckTimers(sim, adapter);
  });
});
