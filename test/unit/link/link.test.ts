// Pins the role-neutral link (src/link/link.ts) on a scripted controller and a fake clock: a link the
// acceptor built (we are peripheral) answers the peer exactly as one we initiated; the link owns the
// bearer, our server session, the GATT client and the procedure timers, and its end tears all of them
// down; the SMP hook answers pairing with Pairing Not Supported; and a flood of the peer's Connection
// Parameter Update Requests costs one LE Connection Update at a time, no timer and no waiter per request.
import { describe, expect, test } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { FakeClock } from '../../../src/clock.js';
import { DisconnectedError, InvalidStateError, TimeoutError } from '../../../src/errors.js';
import type { Scanner } from '../../../src/gap/scanner.js';
import { HciHost } from '../../../src/hci/host.js';
import { LeLink, MAX_UPDATE_WAITERS, PROCEDURE_TIMEOUT_MS } from '../../../src/link/link.js';
import { ConnectionManager } from '../../../src/link/manager.js';
import type { SmpHandler } from '../../../src/link/smp.js';
import type { SmpSession } from '../../../src/smp/session.js';
import { FakeController } from '../hci/host-fake-controller.js';

const PEER = 'C0:11:22:33:44:55';

function complete(handle: number, role: 0 | 1) {
  return {
    kind: 'leConnectionComplete' as const, status: 0, connectionHandle: handle, role, peerAddressType: 1,
    peerAddress: PEER, connectionInterval: 40, peripheralLatency: 0, supervisionTimeout: 400, centralClockAccuracy: 0,
  };
}

async function setup() {
  const ctl = new FakeController();
  const clock = new FakeClock();
  const host = new HciHost(ctl, { clock });
  await host.init();
  const scanner = { pause: async () => {}, resume: () => {} } as unknown as Scanner;
  const mgr = new ConnectionManager(host, scanner, clock);
  return { ctl, clock, host, mgr };
}

/** A link in `role`: initiated by connect() (central) or accepted from an incoming connection (peripheral). */
async function linkAs(role: 'central' | 'peripheral', handle = 0x40) {
  const s = await setup();
  if (role === 'central') {
    const p = s.mgr.connect({ address: PEER, type: 'random' });
    await s.ctl.sent('leCreateConnection');
    s.ctl.inject(complete(handle, 0));
    return { ...s, link: await p };
  }
  const link = await new Promise<LeLink>(resolve => {
    s.mgr.onConnection(resolve);
    s.ctl.inject(complete(handle, 1));
  });
  return { ...s, link };
}

/** Let the memory transport deliver (each packet is a microtask or two). */
async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>(r => setImmediate(r));
}

const aclData = (ctl: FakeController, handle: number) => ctl.aclOut.filter(a => a.handle === handle).map(a => a.data);

describe('one link object for both roles', () => {
  test('a link the acceptor built answers the peer\'s ATT requests byte for byte as one we initiated', async () => {
    const answers: Record<string, string[]> = {};
    for (const role of ['central', 'peripheral'] as const) {
      const { ctl, link } = await linkAs(role);
      expect(link.role).toBe(role);
      expect(link.bearer.isClosed).toBe(false);
      expect(link.server).toBeDefined();
      expect(link.gatt).toBeUndefined(); // the GATT client is optional: nobody attached one
      ctl.injectAcl(0x40, 2, fromHex('0300 0400 02 1700')); // Exchange MTU Request, client Rx MTU 23
      ctl.injectAcl(0x40, 2, fromHex('0300 0400 0a 0300')); // Read Request, handle 0x0003 (Device Name)
      ctl.injectAcl(0x40, 2, fromHex('0700 0400 10 0100 ffff 0028')); // Read By Group Type, primary services
      await flush();
      answers[role] = aclData(ctl, 0x40);
    }
    expect(answers.central).toEqual([
      '0300040003' + '0502', // Exchange MTU Response, server Rx MTU 517
      '080004000b' + toHex(new TextEncoder().encode('blewire')), // Read Response: our Device Name
      expect.stringMatching(/^..00040011/), // Read By Group Type Response
    ]);
    expect(answers.peripheral).toEqual(answers.central);
  });

  test('the link\'s GATT client runs on the link\'s bearer; one per link', async () => {
    const { link, clock } = await linkAs('peripheral');
    const gatt = link.attachGatt({ clock });
    expect(gatt.bearer).toBe(link.bearer);
    expect(link.gatt).toBe(gatt);
    expect(() => link.attachGatt({ clock })).toThrow(InvalidStateError);
  });

  test('disconnect tears down the bearer, our server session, the GATT client, SMP and every timer', async () => {
    const { ctl, clock, link } = await linkAs('central');
    const baseline = clock.pendingTimers;
    const gatt = link.attachGatt({ clock });
    const smpClosed: Error[] = [];
    link.smp.install({ receive: () => {}, linkClosed: () => { smpClosed.push(new Error('closed')); } });
    const clientClosed: Error[] = [];
    gatt.on('disconnect', e => clientClosed.push(e));
    const read = gatt.readValue(0x0010); // an ATT request in flight: the bearer's 30 s timer
    const update = link.updateParameters({ intervalMin: 30, intervalMax: 30 }); // a procedure timer and a caller deadline
    read.catch(() => undefined);
    update.catch(() => undefined);
    await ctl.sent('leConnectionUpdate');
    await flush();
    expect(clock.pendingTimers).toBeGreaterThan(baseline);
    ctl.inject({ kind: 'disconnectionComplete', status: 0, connectionHandle: 0x40, reason: 0x13 });
    await expect(read).rejects.toBeInstanceOf(DisconnectedError);
    await expect(update).rejects.toBeInstanceOf(DisconnectedError);
    expect(link.connected).toBe(false);
    expect(link.bearer.isClosed).toBe(true);
    expect(clientClosed).toHaveLength(1);
    expect(smpClosed).toHaveLength(1);
    expect(clock.pendingTimers).toBe(baseline);
    await expect(gatt.readValue(0x0003)).rejects.toBeInstanceOf(DisconnectedError);
    // Nothing the link owned still reacts to the peer.
    const before = ctl.aclOut.length;
    ctl.injectAcl(0x40, 2, fromHex('0300 0400 0a 0300'));
    await flush();
    expect(ctl.aclOut.length).toBe(before);
  });
});

describe('the SMP hook (CID 0x0006)', () => {
  test('Pairing Request and Security Request get Pairing Failed, Pairing Not Supported (Vol 3, Part H, 3.5.5)', async () => {
    for (const role of ['central', 'peripheral'] as const) {
      const { ctl, link } = await linkAs(role);
      expect(link.smp.session).toBeUndefined(); // no pairing session: pairing is refused
      // Pairing Request: IO NoInputNoOutput, no OOB, bonding, max key 16, keys 0x07 / 0x07.
      ctl.injectAcl(0x40, 2, fromHex('0700 0600 01 03 00 01 10 07 07'));
      // Security Request: AuthReq bonding.
      ctl.injectAcl(0x40, 2, fromHex('0200 0600 0b 01'));
      await flush();
      // L2CAP length 2, CID 0x0006, then Pairing Failed (0x05) with reason 0x05: once per request.
      expect(aclData(ctl, 0x40)).toEqual(['0200060005' + '05', '0200060005' + '05']);
      expect(link.smp.stats).toMatchObject({ received: 2, pairingRefused: 2 });
    }
  });

  test('other SMP PDUs are counted and dropped, never answered; an installed session takes over', async () => {
    const { ctl, link } = await linkAs('central');
    ctl.injectAcl(0x40, 2, fromHex('0200 0600 05 05')); // a Pairing Failed: never answered
    ctl.injectAcl(0x40, 2, fromHex('0100 0600 01')); // a truncated Pairing Request
    await flush();
    expect(aclData(ctl, 0x40)).toEqual([]);
    expect(link.smp.stats).toMatchObject({ received: 2, ignored: 1, undecodable: 1 });
    const seen: string[] = [];
    const session: SmpHandler = { receive: frame => { seen.push(toHex(frame)); } };
    link.smp.install(session);
    ctl.injectAcl(0x40, 2, fromHex('0700 0600 01 03 00 01 10 07 07'));
    await flush();
    expect(seen).toEqual(['01030001100707']);
    // The pairing state machine is what plugs in here: its session has the handler's shape (checked by tsc).
    const fits: (s: SmpSession) => SmpHandler = x => x;
    expect(typeof fits).toBe('function');
    expect(aclData(ctl, 0x40)).toEqual([]);
  });
});

describe('Connection Parameter Update Request flood (issue 15)', () => {
  /** L2CAP Connection Parameter Update Request (Vol 3, Part A, 4.20), identifier id, interval min..max (1.25 ms). */
  const request = (id: number, min: number, max: number) =>
    Uint8Array.of(0x0c, 0x00, 0x05, 0x00, 0x12, id, 0x08, 0x00, min & 0xff, min >> 8, max & 0xff, max >> 8, 0, 0, 0x90, 0x01);
  const updates = (ctl: FakeController) => ctl.commands.filter(c => c.kind === 'leConnectionUpdate');

  test('40 000 requests: each answered, one LE Connection Update outstanding, the latest queued, no timer or waiter per request', async () => {
    const { ctl, clock, link } = await linkAs('central');
    const N = 40_000;
    const baseline = clock.pendingTimers;
    for (let i = 0; i < N; i++) ctl.injectAcl(0x40, 2, request((i % 255) + 1, 24 + (i % 100), 200));
    await flush(200);
    // Every request got its response (Vol 3, Part A, 4.21), accepted.
    // L2CAP length 6, CID 0x0005, Connection Parameter Update Response (0x13), its identifier, length 2, result.
    const responses = aclData(ctl, 0x40).filter(d => d.startsWith('0600050013'));
    expect(responses).toHaveLength(N);
    expect(responses.every(d => d.endsWith('0000'))).toBe(true);
    // One HCI command, one timer (the procedure's), no waiters.
    expect(updates(ctl)).toHaveLength(1);
    expect(clock.pendingTimers - baseline).toBeLessThanOrEqual(1);
    expect(link.updateStats).toMatchObject({ peerRequests: N, commandsSent: 1, coalesced: N - 2 });
    // The update completes: the one queued behind it goes out with the latest request's parameters.
    ctl.inject({ kind: 'leConnectionUpdateComplete', status: 0, connectionHandle: 0x40, connectionInterval: 24, peripheralLatency: 0, supervisionTimeout: 400 });
    await flush();
    expect(updates(ctl)).toHaveLength(2);
    expect(updates(ctl)[1]).toMatchObject({ connectionIntervalMin: 24 + ((N - 1) % 100), connectionIntervalMax: 200 });
    ctl.inject({ kind: 'leConnectionUpdateComplete', status: 0, connectionHandle: 0x40, connectionInterval: 123, peripheralLatency: 0, supervisionTimeout: 400 });
    await flush();
    expect(updates(ctl)).toHaveLength(2);
    expect(link.parameters.interval).toBe(123 * 1.25);
    expect(clock.pendingTimers).toBe(baseline);
  }, 60_000);

  test('a controller that never reports the outcome frees the slot after the LL response timeout', async () => {
    const { ctl, clock, link } = await linkAs('central');
    const baseline = clock.pendingTimers;
    ctl.injectAcl(0x40, 2, request(1, 24, 40));
    ctl.injectAcl(0x40, 2, request(2, 30, 40));
    await flush();
    expect(updates(ctl)).toHaveLength(1);
    clock.advance(PROCEDURE_TIMEOUT_MS);
    await flush();
    expect(updates(ctl)).toHaveLength(2);
    expect(updates(ctl)[1]).toMatchObject({ connectionIntervalMin: 30 });
    clock.advance(PROCEDURE_TIMEOUT_MS);
    await flush();
    expect(updates(ctl)).toHaveLength(2);
    expect(clock.pendingTimers).toBe(baseline);
    void link;
  });

  test(`callers of updateParameters: at most ${MAX_UPDATE_WAITERS} wait, all settle with the update they joined`, async () => {
    const { ctl, clock, link } = await linkAs('central');
    const first = link.updateParameters({ intervalMin: 30, intervalMax: 30 });
    await ctl.sent('leConnectionUpdate');
    const queued = Array.from({ length: MAX_UPDATE_WAITERS - 1 }, (_, i) => link.updateParameters({ intervalMin: 40 + i * 5, intervalMax: 100 }));
    await expect(link.updateParameters({ intervalMin: 50, intervalMax: 50 })).rejects.toBeInstanceOf(InvalidStateError);
    ctl.inject({ kind: 'leConnectionUpdateComplete', status: 0, connectionHandle: 0x40, connectionInterval: 24, peripheralLatency: 0, supervisionTimeout: 400 });
    expect((await first).interval).toBe(30);
    await ctl.sent('leConnectionUpdate');
    // The queued callers were coalesced into one procedure with the latest parameters.
    expect(updates(ctl)[1]).toMatchObject({ connectionIntervalMin: Math.round((40 + (MAX_UPDATE_WAITERS - 2) * 5) / 1.25) });
    ctl.inject({ kind: 'leConnectionUpdateComplete', status: 0x3b, connectionHandle: 0x40, connectionInterval: 0, peripheralLatency: 0, supervisionTimeout: 0 });
    for (const q of queued) await expect(q).rejects.toMatchObject({ status: 0x3b });
    expect(updates(ctl)).toHaveLength(2);
    // A caller's own deadline rejects it and frees its place; the procedure itself goes on.
    const late = link.updateParameters({ intervalMin: 30, intervalMax: 30 }, { timeout: 100 });
    clock.advance(100);
    await expect(late).rejects.toBeInstanceOf(TimeoutError);
    expect(updates(ctl)).toHaveLength(3);
  });
});
