// Pins the connection manager on a scripted controller and a fake clock: the create-connection wire
// bytes, connect timeout → LE Create Connection Cancel → TimeoutError, cancel racing completion,
// 0x3E failure (and retry), Command Disallowed, queued connects with scanning paused and resumed,
// many links, disconnect reasons, pending operations rejecting with DisconnectedError, and the
// peripheral's parameter requests (LL and L2CAP).
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { AbortError, DisconnectedError, HciStatusError, ProtocolError, TimeoutError, TransportError } from '../../../src/errors.js';
import { HciHost } from '../../../src/hci/host.js';
import { ConnectionManager } from '../../../src/link/manager.js';
import type { LeLink } from '../../../src/link/link.js';
import type { Scanner } from '../../../src/gap/scanner.js';
import { commandMask, FakeController } from '../hci/host-fake-controller.js';
import { fromHex, toHex } from '../../../src/bytes/hex.js';

const PEER = 'C0:11:22:33:44:55';

function complete(handle: number, status = 0, address = PEER) {
  return {
    kind: 'leConnectionComplete' as const, status, connectionHandle: handle, role: 0, peerAddressType: 1,
    peerAddress: address, connectionInterval: 40, peripheralLatency: 0, supervisionTimeout: 400, centralClockAccuracy: 0,
  };
}

async function setup(opts: { extended?: boolean } = {}) {
  const ctl = new FakeController();
  if (opts.extended) ctl.supportedCommands = commandMask([[37, 5], [37, 6], [37, 7]]);
  const clock = new FakeClock();
  const host = new HciHost(ctl, { clock });
  await host.init();
  const scanLog: string[] = [];
  const scanner = {
    pause: async () => { scanLog.push('pause'); },
    resume: () => { scanLog.push('resume'); },
  } as unknown as Scanner;
  const mgr = new ConnectionManager(host, scanner, clock);
  return { ctl, clock, host, mgr, scanLog };
}

describe('connection manager', () => {
  test('legacy LE Create Connection on the wire, link with parameters on completion', async () => {
    const { ctl, mgr, scanLog } = await setup();
    const p = mgr.connect({ address: PEER, addressType: 'random' });
    await ctl.sent('leCreateConnection');
    expect(ctl.wire[ctl.wire.length - 1]).toBe(
      '010d2019' + '6000' + '6000' + '00' + '01' + '5544332211c0' + '00' + '1800' + '2800' + '0000' + '9001' + '0000' + '0000');
    ctl.inject(complete(0x40));
    const link = await p;
    expect(link.handle).toBe(0x40);
    expect(link.address).toBe(PEER);
    expect(link.addressType).toBe('random');
    expect(link.parameters).toEqual({ interval: 50, latency: 0, supervisionTimeout: 4000 });
    expect(scanLog).toEqual(['pause', 'resume']);
  });

  test('extended create connection when the controller has it', async () => {
    const { ctl, mgr } = await setup({ extended: true });
    const p = mgr.connect({ address: PEER, type: 'public' });
    const cmd = await ctl.sent('leExtendedCreateConnection');
    expect(cmd).toMatchObject({ peerAddressType: 0, peerAddress: PEER, initiatingPhys: [{ phy: 1 }] });
    ctl.inject({ ...complete(0x41), kind: 'leEnhancedConnectionComplete', localResolvablePrivateAddress: '00:00:00:00:00:00',
      peerResolvablePrivateAddress: '00:00:00:00:00:00' });
    expect((await p).handle).toBe(0x41);
  });

  test('extended create answered Unknown Command falls back to legacy', async () => {
    const { ctl, mgr, host } = await setup({ extended: true });
    ctl.on('leExtendedCreateConnection', { status: 0x01 });
    const p = mgr.connect({ address: PEER, type: 'random' });
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0x42));
    await p;
    expect(host.info.extendedConnect).toBe(false);
  });

  test('timeout cancels with LE Create Connection Cancel and rejects with TimeoutError', async () => {
    const { ctl, mgr, clock, scanLog } = await setup();
    ctl.on('leCreateConnectionCancel', () => ({ events: [
      { kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x200e, returnParameters: { kind: 'leCreateConnectionCancel', status: 0 } },
      complete(0, 0x02, '00:00:00:00:00:00'),
    ] }));
    const p = mgr.connect({ address: PEER, type: 'random' }, { timeout: 5000 });
    await ctl.sent('leCreateConnection');
    clock.advance(5000);
    await ctl.sent('leCreateConnectionCancel');
    const e = await p.catch(x => x);
    expect(e).toBeInstanceOf(TimeoutError);
    expect(ctl.wire[ctl.wire.length - 1]).toBe('010e2000');
    expect(scanLog).toEqual(['pause', 'resume']);
    expect(mgr.links.size).toBe(0);
  });

  test.each([['answered Success', 0], ['answered Command Disallowed', 0x0c]])(
    'cancel %s but LE Connection Complete never comes: connect rejects 5 s later, the next connect runs', async (_, cancelStatus) => {
      // Found by test/fuzz/controller.test.ts: connect() and the whole initiation queue hung for good.
      const { ctl, mgr, clock, scanLog } = await setup();
      ctl.on('leCreateConnectionCancel', () => ({ events: [
        { kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x200e, returnParameters: { kind: 'leCreateConnectionCancel', status: cancelStatus } },
      ] }));
      const p = mgr.connect({ address: PEER, type: 'random' }, { timeout: 1000 });
      const outcome = p.catch(x => x);
      await ctl.sent('leCreateConnection');
      clock.advance(1000);
      await ctl.sent('leCreateConnectionCancel');
      await new Promise(resolve => setImmediate(resolve)); // its Command Complete is delivered and handled
      clock.advance(4999);
      await new Promise(resolve => setImmediate(resolve));
      const early = await Promise.race([outcome, Promise.resolve('pending')]);
      expect(early).toBe('pending');
      clock.advance(1);
      expect(await outcome).toBeInstanceOf(TimeoutError);
      expect(scanLog).toEqual(['pause', 'resume']);
      const next = mgr.connect({ address: PEER, type: 'random' });
      await ctl.sent('leCreateConnection');
      ctl.inject(complete(0x40));
      expect((await next).handle).toBe(0x40);
      expect(clock.pendingTimers).toBe(0);
    });

  test('a connection handle outside 0x0000-0x0EFF fails the connect with ProtocolError and makes no link', async () => {
    // Found by test/fuzz/controller.test.ts: handle 0x1000 made a link its Disconnection Complete could
    // never find (ACL headers carry 12 bits), so closing the adapter left its disconnect timer behind.
    const { ctl, mgr } = await setup();
    const p = mgr.connect({ address: PEER, type: 'random' }).catch(x => x);
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0x1000));
    expect(await p).toBeInstanceOf(ProtocolError);
    expect(mgr.links.size).toBe(0);
  });

  test('a success that arrives after connect() gave up is disconnected, not announced as a new link', async () => {
    const { ctl, mgr, clock } = await setup();
    ctl.on('leCreateConnectionCancel', () => ({ events: [
      { kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x200e, returnParameters: { kind: 'leCreateConnectionCancel', status: 0x0c } },
    ] }));
    const announced: LeLink[] = [];
    mgr.onConnection(l => announced.push(l));
    const outcome = mgr.connect({ address: PEER, type: 'random' }, { timeout: 1000 }).catch(x => x);
    await ctl.sent('leCreateConnection');
    clock.advance(1000);
    await ctl.sent('leCreateConnectionCancel');
    await new Promise(resolve => setImmediate(resolve));
    clock.advance(5000);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    ctl.inject(complete(0x41));
    const d = await ctl.sent('disconnect');
    expect(d).toMatchObject({ connectionHandle: 0x41, reason: 0x13 });
    expect(announced).toEqual([]);
  });

  test('LE Connection Complete for a handle that is still live: the old link is reported lost, the new one takes the handle', async () => {
    // Found by test/fuzz/controller.test.ts: the old link was forgotten, never closed, its waiters hung.
    const { ctl, mgr, host } = await setup();
    const p = mgr.connect({ address: PEER, type: 'random' });
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0x40));
    const old = await p;
    const pending = old.l2cap.request({ kind: 'connectionParameterUpdateReq', intervalMin: 6, intervalMax: 8, latency: 0, timeout: 100 })
      .catch(x => x);
    const lost = new Promise(resolve => old.onDisconnect(resolve));
    const fresh = new Promise<LeLink>(resolve => mgr.onConnection(resolve));
    ctl.inject({ ...complete(0x40, 0, 'C0:11:22:33:44:66'), role: 1 });
    expect(await lost).toEqual({ code: 0x1f, name: 'Unspecified Error' });
    expect(await pending).toBeInstanceOf(DisconnectedError);
    const link = await fresh;
    expect(link.address).toBe('C0:11:22:33:44:66');
    expect(mgr.links.get(0x40)).toBe(link);
    await link.l2cap.att.send(Uint8Array.of(0x02, 0x17, 0x00));
    expect(ctl.aclOut.at(-1)).toEqual({ handle: 0x40, pb: 0, data: '0300040002' + '1700' });
    expect(host.acl.isOpen(0x40)).toBe(true);
  });

  test('abort racing completion: cancel answered Command Disallowed, link completes, is disconnected, connect rejects', async () => {
    const { ctl, mgr } = await setup();
    ctl.on('leCreateConnectionCancel', () => ({ events: [
      complete(0x40),
      { kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x200e, returnParameters: { kind: 'leCreateConnectionCancel', status: 0x0c } },
    ] }));
    ctl.on('disconnect', c => ({ events: [
      { kind: 'commandStatus', status: 0, numHciCommandPackets: 1, commandOpcode: 0x0406 },
      { kind: 'disconnectionComplete', status: 0, connectionHandle: (c as { connectionHandle: number }).connectionHandle, reason: 0x16 },
    ] }));
    const ac = new AbortController();
    const p = mgr.connect({ address: PEER, type: 'random' }, { signal: ac.signal });
    await ctl.sent('leCreateConnection');
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    const d = await ctl.sent('disconnect');
    expect(d).toMatchObject({ connectionHandle: 0x40, reason: 0x13 });
  });

  test('0x3E Connection Failed to be Established rejects typed; attempts retries it', async () => {
    const { ctl, mgr } = await setup();
    const p = mgr.connect({ address: PEER, type: 'random' });
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0, 0x3e));
    const e = await p.catch(x => x);
    expect(e).toBeInstanceOf(HciStatusError);
    expect(e.status).toBe(0x3e);
    expect(e.message).toContain('Connection Failed to be Established');

    const q = mgr.connect({ address: PEER, type: 'random' }, { attempts: 2 });
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0, 0x3e));
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0x44));
    expect((await q).handle).toBe(0x44);
  });

  test('Command Disallowed on create rejects with HciStatusError and the queue moves on', async () => {
    const { ctl, mgr } = await setup();
    ctl.on('leCreateConnection', { status: 0x0c });
    await expect(mgr.connect({ address: PEER })).rejects.toMatchObject({ status: 0x0c, command: 'leCreateConnection' });
  });

  test('concurrent connects queue: the second create is sent only after the first completes; many links', async () => {
    const { ctl, mgr, scanLog } = await setup();
    const a = mgr.connect({ address: PEER, type: 'random' });
    const b = mgr.connect({ address: 'C0:00:00:00:00:02', type: 'random' });
    const c = mgr.connect({ address: 'C0:00:00:00:00:03', type: 'random' });
    await ctl.sent('leCreateConnection');
    expect(ctl.kinds().filter(k => k === 'leCreateConnection').length).toBe(1);
    ctl.inject(complete(0x40));
    await a;
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0x41, 0, 'C0:00:00:00:00:02'));
    await b;
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0x42, 0, 'C0:00:00:00:00:03'));
    await c;
    expect([...mgr.links.keys()]).toEqual([0x40, 0x41, 0x42]);
    expect(scanLog).toEqual(['pause', 'resume', 'pause', 'resume', 'pause', 'resume']);
  });

  async function connected(handle = 0x40) {
    const s = await setup();
    const p = s.mgr.connect({ address: PEER, type: 'random' });
    await s.ctl.sent('leCreateConnection');
    s.ctl.inject(complete(handle));
    return { ...s, link: await p };
  }

  test('disconnect sends HCI Disconnect and resolves with the reason; peer disconnect is typed', async () => {
    const { ctl, link } = await connected();
    const reasons: unknown[] = [];
    link.onDisconnect(r => reasons.push(r));
    const p = link.disconnect();
    expect(await ctl.sent('disconnect')).toMatchObject({ connectionHandle: 0x40, reason: 0x13 });
    expect(ctl.wire[ctl.wire.length - 1]).toBe('01060403400013');
    ctl.inject({ kind: 'disconnectionComplete', status: 0, connectionHandle: 0x40, reason: 0x16 });
    expect(await p).toEqual({ code: 0x16, name: 'Connection Terminated By Local Host' });
    expect(reasons).toEqual([{ code: 0x16, name: 'Connection Terminated By Local Host' }]);
  });

  test('every pending operation of a link rejects with DisconnectedError when it drops; ACL credits return', async () => {
    const { ctl, link, host } = await connected();
    ctl.autoCompleteAcl = false;
    ctl.on('leConnectionUpdate', { status: 0 });
    const upd = link.updateParameters({ intervalMin: 15, intervalMax: 30 });
    const att: unknown[] = [];
    link.l2cap.att.setReceiver({ data: () => undefined, closed: e => att.push(e) });
    const w1 = link.l2cap.att.send(new Uint8Array(10));
    const w2 = link.l2cap.att.send(new Uint8Array(10));
    const w3 = link.l2cap.att.send(new Uint8Array(10)); // 2 credits: this one waits
    await w1; await w2;
    expect(host.acl.freeCredits).toBe(0);
    await ctl.sent('leConnectionUpdate');
    ctl.inject({ kind: 'disconnectionComplete', status: 0, connectionHandle: 0x40, reason: 0x08 });
    const e = await upd.catch(x => x);
    expect(e).toBeInstanceOf(DisconnectedError);
    expect(e.reason).toBe(0x08);
    await expect(w3).rejects.toBeInstanceOf(DisconnectedError);
    expect(att[0]).toBeInstanceOf(DisconnectedError);
    expect(host.acl.freeCredits).toBe(2);
  });

  test('answers LE Remote Connection Parameter Request (reply when valid, negative reply 0x3B otherwise)', async () => {
    const { ctl, link } = await connected();
    ctl.inject({ kind: 'leRemoteConnectionParameterRequest', connectionHandle: 0x40, intervalMin: 24, intervalMax: 40, maxLatency: 0, timeout: 400 });
    expect(await ctl.sent('leRemoteConnectionParameterRequestReply')).toMatchObject({ connectionHandle: 0x40, intervalMin: 24, intervalMax: 40, timeout: 400 });
    ctl.inject({ kind: 'leRemoteConnectionParameterRequest', connectionHandle: 0x40, intervalMin: 2, intervalMax: 1, maxLatency: 0, timeout: 400 });
    expect(await ctl.sent('leRemoteConnectionParameterRequestNegativeReply')).toMatchObject({ connectionHandle: 0x40, reason: 0x3b });
    void link;
  });

  test('an accepted L2CAP Connection Parameter Update Request is applied with LE Connection Update', async () => {
    const { ctl, link } = await connected();
    const changed: unknown[] = [];
    link.onParameters(p => changed.push(p));
    ctl.injectAcl(0x40, 2, fromHex('0c00 0500 12 03 0800 1800 2800 0000 9001'));
    const u = await ctl.sent('leConnectionUpdate');
    expect(u).toMatchObject({ connectionHandle: 0x40, connectionIntervalMin: 24, connectionIntervalMax: 40, supervisionTimeout: 400 });
    expect(ctl.aclOut.map(a => a.data)).toContain(toHex(fromHex('0600 0500 13 03 0200 0000')));
    ctl.inject({ kind: 'leConnectionUpdateComplete', status: 0, connectionHandle: 0x40, connectionInterval: 32, peripheralLatency: 0, supervisionTimeout: 400 });
    await Promise.resolve();
    expect(changed).toEqual([{ interval: 40, latency: 0, supervisionTimeout: 4000 }]);
  });

  test('PHY update and data length: unsupported commands reject typed and are remembered', async () => {
    const { ctl, link, host } = await connected();
    const phy = link.setPhy(2);
    await ctl.sent('leSetPhy');
    ctl.inject({ kind: 'lePhyUpdateComplete', status: 0, connectionHandle: 0x40, txPhy: 2, rxPhy: 2 });
    expect(await phy).toEqual({ tx: 2, rx: 2 });
    ctl.on('leSetDataLength', { status: 0x01 });
    await expect(link.setDataLength()).rejects.toMatchObject({ status: 0x01 });
    expect(host.info.dataLengthExtension).toBe(false);
    void (link as LeLink);
  });

  test('transport EOF while initiating rejects the connect at once, and queued ones too', async () => {
    const { ctl, mgr } = await setup();
    const a = mgr.connect({ address: PEER, type: 'random' });
    const b = mgr.connect({ address: 'C0:00:00:00:00:02', type: 'random' });
    await ctl.sent('leCreateConnection');
    ctl.eof();
    await expect(a).rejects.toBeInstanceOf(TransportError);
    await expect(b).rejects.toBeInstanceOf(TransportError);
  });

  test('Data Length Extension is requested after connecting when the controller has it', async () => {
    const ctl = new FakeController();
    ctl.supportedCommands = commandMask([[33, 6], [35, 3]]);
    ctl.on('leReadMaximumDataLength', { complete: { supportedMaxTxOctets: 251, supportedMaxTxTime: 2120, supportedMaxRxOctets: 251, supportedMaxRxTime: 2120 } });
    const clock = new FakeClock();
    const host = new HciHost(ctl, { clock });
    await host.init();
    const mgr = new ConnectionManager(host, { pause: async () => undefined, resume: () => undefined } as unknown as Scanner, clock);
    const p = mgr.connect({ address: PEER, type: 'random' });
    await ctl.sent('leCreateConnection');
    ctl.inject(complete(0x40));
    await p;
    expect(await ctl.sent('leSetDataLength')).toMatchObject({ connectionHandle: 0x40, txOctets: 251, txTime: 2120 });
  });
});
