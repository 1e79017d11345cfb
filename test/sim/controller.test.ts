// The simulated controller's HCI on the wire: command answers, masks, legacy/extended reports and
// fragmentation, connection events, encryption, LE Encrypt, and a supported-commands mask that matches
// what it actually answers.
import { describe, expect, test } from 'vitest';
import { fromHex, toHex } from '../../src/bytes/hex.js';
import { HCI_COMMANDS, type HciCommand, type HciCommandKind } from '../../src/hci/commands.js';
import { SUPPORTED_COMMAND_BITS } from '../../src/hci/controller.js';
import type { HciEvent } from '../../src/hci/events.js';
import { decodeHciPacket, encodeAcl, encodeCommand, encodeEvent } from '../../src/hci/packets.js';
import { EXT_ADV_EVENT_TYPE } from '../../src/hci/bit-fields.js';
import { createSimulator, leEncrypt, SIM_COMMAND_BITS, type Scenario, type Simulator } from '../../src/sim/index.js';

type Evt = HciEvent & { type: 'event' };

/** A raw HCI driver: send commands, collect decoded events in arrival order. */
function driver(s: Scenario | string) {
  const sim = createSimulator(s);
  const events: Evt[] = [];
  const acl: Array<{ handle: number; pb: number; data: Uint8Array }> = [];
  const waiters: Array<() => void> = [];
  sim.transport.setReceiver({
    packet: p => {
      const d = decodeHciPacket(p);
      if (d.type === 'event') events.push(d as Evt);
      if (d.type === 'acl') acl.push(d);
      for (const w of waiters.splice(0)) w();
    },
    closed: () => undefined,
  });
  const next = (pred: (e: Evt) => boolean, from = 0): Promise<Evt> => new Promise(resolve => {
    const check = (): void => {
      const e = events.slice(from).find(pred);
      if (e) resolve(e);
      else waiters.push(check);
    };
    check();
  });
  const cmd = async (c: HciCommand): Promise<Evt> => {
    const from = events.length;
    sim.transport.send(encodeCommand(c));
    return next(e => e.kind === 'commandComplete' || e.kind === 'commandStatus', from);
  };
  return { sim, events, acl, cmd, next };
}

const ret = (e: Evt) => (e.kind === 'commandComplete' ? e.returnParameters : undefined) as Record<string, unknown>;

async function initLe(d: ReturnType<typeof driver>, leMask = 0x1fffn | (1n << 19n)): Promise<void> {
  await d.cmd({ kind: 'reset' });
  await d.cmd({ kind: 'setEventMask', eventMask: 0x3fffffffffffffffn });
  await d.cmd({ kind: 'leSetEventMask', leEventMask: leMask });
}

describe('sim controller: commands', () => {
  test('every command in the supported-commands mask is answered, every other one is Unknown HCI Command', async () => {
    const d = driver('empty');
    const mask = ret(await d.cmd({ kind: 'readLocalSupportedCommands' }))['supportedCommands'] as Uint8Array;
    // The mask agrees with the host's own bit table wherever both name the command.
    for (const [kind, [octet, bit]] of Object.entries(SUPPORTED_COMMAND_BITS)) {
      const inSim = kind in SIM_COMMAND_BITS;
      expect([kind, ((mask[octet]! >> bit) & 1) === 1]).toEqual([kind, inSim]);
      if (inSim) expect((SIM_COMMAND_BITS as Record<string, readonly number[]>)[kind]).toEqual([octet, bit]);
    }
    // A command outside the mask gets Unknown HCI Command (0x01).
    const e = await d.cmd({ kind: 'leReadLocalP256PublicKey' });
    expect(e.kind === 'commandStatus' ? e.status : ret(e)['status']).toBe(0x01);
    const raw = await (async () => {
      const from = d.events.length;
      d.sim.transport.send(fromHex('01 99 0c 00'));
      return d.next(x => x.kind === 'commandComplete', from);
    })();
    expect(toHex(raw.kind === 'commandComplete' && raw.returnParameters.kind === 'unknown' ? raw.returnParameters.data : new Uint8Array())).toBe('01');
    expect(Object.keys(HCI_COMMANDS).length).toBeGreaterThan(Object.keys(SIM_COMMAND_BITS).length);
  });

  test('parameters that do not decode get Invalid HCI Command Parameters (0x12)', async () => {
    const d = driver('empty');
    const from = d.events.length;
    d.sim.transport.send(fromHex('01 0c 20 01 01')); // LE Set Scan Enable with one parameter byte
    const e = await d.next(x => x.kind === 'commandComplete', from);
    expect(ret(e)['status']).toBe(0x12);
  });

  test('LE Encrypt matches the Core spec sample (Vol 6, Part C, 1), octets least significant first on HCI', async () => {
    const key = fromHex('4C68384139F574D836BCF34E9DFB01BF').reverse();
    const pt = fromHex('0213243546576879acbdcedfe0f10213').reverse();
    expect(toHex(leEncrypt(key, pt).reverse())).toBe('99ad1b5226a37e3e058e3b8e27c2c666');
    const d = driver('empty');
    const e = await d.cmd({ kind: 'leEncrypt', key, plaintextData: pt });
    expect(toHex((ret(e)['encryptedData'] as Uint8Array).slice().reverse())).toBe('99ad1b5226a37e3e058e3b8e27c2c666');
  });

  test('legacy and extended command families exclude each other until Reset (Command Disallowed)', async () => {
    const d = driver('empty');
    await initLe(d);
    expect(ret(await d.cmd({ kind: 'leSetScanParameters', leScanType: 0, leScanInterval: 16, leScanWindow: 16, ownAddressType: 0, scanningFilterPolicy: 0 }))['status']).toBe(0);
    const e = await d.cmd({ kind: 'leSetExtendedScanEnable', enable: 0, filterDuplicates: 0, duration: 0, period: 0 });
    expect(ret(e)['status']).toBe(0x0c);
    await d.cmd({ kind: 'reset' });
    expect(ret(await d.cmd({ kind: 'leSetExtendedScanEnable', enable: 0, filterDuplicates: 0, duration: 0, period: 0 }))['status']).toBe(0);
  });
});

const PEER = {
  address: 'D4:1E:35:7A:00:09', addressType: 'random' as const,
  advertising: { data: { flags: 6, name: 'Peer' }, scanResponse: { name: 'Peer scan rsp' }, intervalMs: 100, rssi: -50 },
  gatt: [{ uuid: 0x1800, characteristics: [{ uuid: 0x2a00, properties: ['read' as const], value: 'Peer' }] }],
  ltk: { key: { hex: '00112233445566778899aabbccddeeff' }, ediv: 0x1234, rand: { hex: '0102030405060708' } },
};

describe('sim controller: radio', () => {
  test('legacy active scan: ADV_IND then SCAN_RSP with RSSI; extended fragmentation of long data', async () => {
    const long = { address: 'C1:00:00:00:00:01', advertising: { type: 'extended' as const, connectable: false,
      data: { raw: new Uint8Array(300).fill(0xab) }, intervalMs: 100 } };
    const d = driver({ peripherals: [PEER, long] });
    await initLe(d);
    await d.cmd({ kind: 'leSetScanParameters', leScanType: 1, leScanInterval: 16, leScanWindow: 16, ownAddressType: 0, scanningFilterPolicy: 0 });
    await d.cmd({ kind: 'leSetScanEnable', enable: 1, filterDuplicates: 1 });
    const adv = await d.next(e => e.kind === 'leAdvertisingReport' && e.reports[0]!.eventType === 0x00);
    const rsp = await d.next(e => e.kind === 'leAdvertisingReport' && e.reports[0]!.eventType === 0x04);
    const a = adv.kind === 'leAdvertisingReport' ? adv.reports[0]! : undefined;
    expect(a?.address).toBe('D4:1E:35:7A:00:09');
    expect(a?.rssi).toBe(-50);
    expect(rsp.kind === 'leAdvertisingReport' && new TextDecoder().decode(rsp.reports[0]!.data.subarray(2))).toBe('Peer scan rsp');
    // Legacy scanning never hears the extended advertiser.
    await d.sim.clock.delay(1000);
    expect(d.events.some(e => e.kind === 'leAdvertisingReport' && e.reports[0]!.address === 'C1:00:00:00:00:01')).toBe(false);
    await d.cmd({ kind: 'leSetScanEnable', enable: 0, filterDuplicates: 0 });

    const x = driver({ peripherals: [long] });
    await initLe(x);
    await x.cmd({ kind: 'leSetExtendedScanParameters', ownAddressType: 0, scanningFilterPolicy: 0, scanningPhys: [{ phy: 1, scanType: 0, scanInterval: 16, scanWindow: 16 }] });
    await x.cmd({ kind: 'leSetExtendedScanEnable', enable: 1, filterDuplicates: 0, duration: 0, period: 0 });
    const frags: Uint8Array[] = [];
    const statuses: number[] = [];
    const types: number[] = [];
    for (let i = 0; frags.reduce((n, f) => n + f.length, 0) < 300; i++) {
      const e = await x.next(ev => ev.kind === 'leExtendedAdvertisingReport', x.events.findIndex(ev => ev.kind === 'leExtendedAdvertisingReport') + i);
      if (e.kind !== 'leExtendedAdvertisingReport') break;
      frags.push(e.reports[0]!.data);
      statuses.push(EXT_ADV_EVENT_TYPE.get(e.reports[0]!.eventType, 'dataStatus'));
      types.push(e.reports[0]!.eventType);
    }
    expect(frags.map(f => f.length)).toEqual([229, 71]);
    expect(statuses).toEqual([1, 0]); // "more to come", then complete
    expect(types).toEqual([0x0020, 0x0000]); // extended, non-connectable, non-scannable: Data_Status only
  });

  test('extended active scan of a legacy advertiser: Event_Type as Table 7.1 of 7.7.65.13 gives it', async () => {
    const d = driver({ peripherals: [PEER] });
    await initLe(d);
    await d.cmd({ kind: 'leSetExtendedScanParameters', ownAddressType: 0, scanningFilterPolicy: 0, scanningPhys: [{ phy: 1, scanType: 1, scanInterval: 16, scanWindow: 16 }] });
    await d.cmd({ kind: 'leSetExtendedScanEnable', enable: 1, filterDuplicates: 1, duration: 0, period: 0 });
    const adv = await d.next(e => e.kind === 'leExtendedAdvertisingReport' && !EXT_ADV_EVENT_TYPE.has(e.reports[0]!.eventType, 'scanResponse'));
    const rsp = await d.next(e => e.kind === 'leExtendedAdvertisingReport' && EXT_ADV_EVENT_TYPE.has(e.reports[0]!.eventType, 'scanResponse'));
    const t = (e: typeof adv): number => (e.kind === 'leExtendedAdvertisingReport' ? e.reports[0]!.eventType : -1);
    expect(t(adv)).toBe(0x13); // ADV_IND: legacy | scannable | connectable
    expect(t(rsp)).toBe(0x1b); // SCAN_RSP to an ADV_IND: legacy | scan response | scannable | connectable
    // On the wire the Event_Type is the first two octets of the report, little-endian.
    // H4 04, LE Meta 3e, length, subevent 0d, Num_Reports 01, then the report's Event_Type (little-endian).
    const wire = encodeEvent(adv as HciEvent);
    expect(toHex(wire.subarray(0, 7))).toBe('043e' + wire[2]!.toString(16).padStart(2, '0') + '0d011300');
    expect(EXT_ADV_EVENT_TYPE.describeBits(t(rsp))).toBe('0x001b(connectable|scannable|scanResponse|legacy)');
  });

  test('connect, ACL round trip at connection events, NOCP, encryption, disconnect with 0x16', async () => {
    const d = driver({ peripherals: [PEER] });
    await initLe(d);
    const st = await d.cmd({ kind: 'leCreateConnection', leScanInterval: 96, leScanWindow: 96, initiatorFilterPolicy: 0, peerAddressType: 1,
      peerAddress: PEER.address, ownAddressType: 0, connectionIntervalMin: 24, connectionIntervalMax: 40, maxLatency: 0,
      supervisionTimeout: 400, minCeLength: 0, maxCeLength: 0 });
    expect(st.kind === 'commandStatus' && st.status).toBe(0);
    const cc = await d.next(e => e.kind === 'leEnhancedConnectionComplete');
    if (cc.kind !== 'leEnhancedConnectionComplete') throw new Error('unreachable');
    expect([cc.status, cc.role, cc.peerAddress, cc.connectionInterval]).toEqual([0, 0, PEER.address, 24]);
    const h = cc.connectionHandle;
    // ATT Read Request for handle 0x0003 (Device Name) on CID 4.
    const t0 = d.sim.now();
    d.sim.transport.send(encodeAcl({ handle: h, pb: 0, data: fromHex('0300 0400 0a 0300') }));
    const nocp = await d.next(e => e.kind === 'numberOfCompletedPackets');
    expect(nocp.kind === 'numberOfCompletedPackets' && nocp.handles).toEqual([{ connectionHandle: h, numCompletedPackets: 1 }]);
    while (d.acl.length === 0) await d.sim.clock.delay(1);
    expect(toHex(d.acl[0]!.data)).toBe('050004000b50656572'); // Read Response "Peer"
    expect(d.sim.now() - t0).toBeGreaterThanOrEqual(30); // answered one 30 ms event after the request's
    // Encryption with the peer's bonded key.
    await d.cmd({ kind: 'leEnableEncryption', connectionHandle: h, randomNumber: fromHex('0102030405060708'), encryptedDiversifier: 0x1234,
      longTermKey: fromHex('00112233445566778899aabbccddeeff') });
    const enc = await d.next(e => e.kind === 'encryptionChange');
    expect(enc.kind === 'encryptionChange' && [enc.status, enc.encryptionEnabled]).toEqual([0, 1]);
    await d.cmd({ kind: 'disconnect', connectionHandle: h, reason: 0x13 });
    const dc = await d.next(e => e.kind === 'disconnectionComplete');
    expect(dc.kind === 'disconnectionComplete' && [dc.status, dc.reason]).toEqual([0, 0x16]);
  });

  test('a wrong LTK ends the link with MIC Failure; no key gives PIN or Key Missing', async () => {
    const d = driver({ peripherals: [PEER, { ...PEER, address: 'D4:1E:35:7A:00:0A', ltk: undefined as never }] });
    await initLe(d);
    const connectTo = async (address: string) => {
      await d.cmd({ kind: 'leCreateConnection', leScanInterval: 96, leScanWindow: 96, initiatorFilterPolicy: 0, peerAddressType: 1,
        peerAddress: address, ownAddressType: 0, connectionIntervalMin: 24, connectionIntervalMax: 24, maxLatency: 0,
        supervisionTimeout: 400, minCeLength: 0, maxCeLength: 0 });
      const cc = await d.next(e => e.kind === 'leEnhancedConnectionComplete' && e.peerAddress === address);
      return cc.kind === 'leEnhancedConnectionComplete' ? cc.connectionHandle : -1;
    };
    const h1 = await connectTo(PEER.address);
    await d.cmd({ kind: 'leEnableEncryption', connectionHandle: h1, randomNumber: fromHex('0102030405060708'), encryptedDiversifier: 0x1234,
      longTermKey: new Uint8Array(16) });
    const dc = await d.next(e => e.kind === 'disconnectionComplete');
    expect(dc.kind === 'disconnectionComplete' && dc.reason).toBe(0x3d);
    const h2 = await connectTo('D4:1E:35:7A:00:0A');
    await d.cmd({ kind: 'leEnableEncryption', connectionHandle: h2, randomNumber: new Uint8Array(8), encryptedDiversifier: 0, longTermKey: new Uint8Array(16) });
    const enc = await d.next(e => e.kind === 'encryptionChange');
    expect(enc.kind === 'encryptionChange' && enc.status).toBe(0x06);
  });

  test('masks pick the connection-complete flavour; Cancel ends a pending connection with 0x02', async () => {
    const d = driver({ peripherals: [] });
    await initLe(d, 0x1fn); // LE Connection Complete only
    await d.cmd({ kind: 'leCreateConnection', leScanInterval: 96, leScanWindow: 96, initiatorFilterPolicy: 0, peerAddressType: 0,
      peerAddress: '11:22:33:44:55:66', ownAddressType: 0, connectionIntervalMin: 24, connectionIntervalMax: 40, maxLatency: 0,
      supervisionTimeout: 400, minCeLength: 0, maxCeLength: 0 });
    await d.sim.clock.delay(2000);
    expect(d.events.some(e => e.kind === 'leConnectionComplete')).toBe(false);
    expect(ret(await d.cmd({ kind: 'leCreateConnectionCancel' }))['status']).toBe(0);
    const cc = await d.next(e => e.kind === 'leConnectionComplete');
    expect(cc.kind === 'leConnectionComplete' && cc.status).toBe(0x02);
    expect(ret(await d.cmd({ kind: 'leCreateConnectionCancel' }))['status']).toBe(0x0c);
    expect(d.events.some(e => e.kind === 'leEnhancedConnectionComplete')).toBe(false);
  });

  test('the simulator implements every command the host sends during init', async () => {
    const sim: Simulator = createSimulator('empty');
    const kinds: HciCommandKind[] = ['reset', 'setEventMask', 'readLocalVersionInformation', 'readLocalSupportedCommands',
      'readLocalSupportedFeatures', 'readBdAddr', 'leReadLocalSupportedFeatures', 'leReadBufferSizeV2', 'leReadBufferSize',
      'leReadFilterAcceptListSize', 'leReadResolvingListSize', 'leReadMaximumDataLength',
      'leReadNumberOfSupportedAdvertisingSets', 'leReadMaximumAdvertisingDataLength', 'leSetEventMask', 'leSetRandomAddress'];
    for (const k of kinds) expect([k, sim.controller.implemented(k)]).toEqual([k, true]);
  });
});
