// Pins host init and recovery on a scripted controller: the exact init sequence on the wire, the
// buffer-size fallback chain, Hardware Error and re-init, transport EOF mid-operation, and ACL for
// unknown handles being counted and dropped.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { HardwareError, HciStatusError, TimeoutError, TransportError } from '../../../src/errors.js';
import { HciHost } from '../../../src/hci/host.js';
import { commandMask, FakeController } from './host-fake-controller.js';

function setup() {
  const ctl = new FakeController();
  const clock = new FakeClock();
  const host = new HciHost(ctl, { clock });
  return { ctl, clock, host };
}

describe('host init', () => {
  test('resets, sets masks, reads the capability model; falls back from LE buffer v2 to v1', async () => {
    const { ctl, host } = setup();
    const info = await host.init({ randomAddress: 'C0:11:22:33:44:55' });
    expect(ctl.kinds()).toEqual([
      'reset', 'setEventMask', 'readLocalVersionInformation', 'readLocalSupportedCommands',
      'readLocalSupportedFeatures', 'readBdAddr', 'leReadLocalSupportedFeatures', 'leReadBufferSizeV2',
      'leReadBufferSize', 'leReadFilterAcceptListSize', 'leSetEventMask', 'leSetRandomAddress',
    ]);
    expect(ctl.wire[0]).toBe('01030c00'); // HCI_Reset
    expect(ctl.wire[1]).toBe('01010c08' + '9088000200800020'); // Set Event Mask, bits 4 7 11 15 25 47 61
    expect(ctl.wire[11]).toBe('01052006' + '5544332211c0'); // LE Set Random Address, little-endian
    expect(info.acl).toEqual({ length: 27, count: 2, source: 'le-v1' });
    expect(info.version?.coreVersion).toBe('5.0');
    expect(host.state).toBe('ready');
    expect(host.acl.totalCredits).toBe(2);
  });

  // Encryption Change [v2] (Vol 4, Part E, 7.7.8, Core 5.3) is unmasked with Set Event Mask Page 2
  // (7.3.69, OCF 0x063, bit 25) only when the controller lists the command (Supported Commands octet
  // 22 bit 2) AND reports HCI version 5.3 (0x0C) or later; a refusal does not fail init.
  describe('Set Event Mask Page 2 for Encryption Change [v2]', () => {
    const v = (hciVersion: number) => ({ complete: { hciVersion, hciSubversion: 1, lmpVersion: hciVersion, manufacturer: 0x05f1, lmpSubversion: 1 } });
    test('5.3 and listed: sent with bit 25 only, after the capability reads and before LE Set Event Mask', async () => {
      const { ctl, host } = setup();
      ctl.supportedCommands = commandMask([[22, 2]]);
      ctl.on('readLocalVersionInformation', v(0x0c));
      await host.init();
      const kinds = ctl.kinds();
      const i = kinds.indexOf('setEventMaskPage2');
      expect(i).toBeGreaterThan(kinds.indexOf('readLocalSupportedCommands'));
      expect(kinds[i + 1]).toBe('leSetEventMask');
      expect(ctl.wire[i]).toBe('01630c08' + '0000000200000000');
      expect(host.info.supports('setEventMaskPage2')).toBe(true);
    });
    test.each([
      ['5.3 but not listed', 0x0c, [] as Array<[number, number]>],
      ['listed but 5.2 (no [v2] before 5.3)', 0x0b, [[22, 2]] as Array<[number, number]>],
      ['listed but 5.0 (btvirt 5.66\'s version, 0x09)', 0x09, [[22, 2]] as Array<[number, number]>],
    ])('%s: not sent', async (_name, version, bits) => {
      const { ctl, host } = setup();
      ctl.supportedCommands = commandMask(bits);
      ctl.on('readLocalVersionInformation', v(version));
      await host.init();
      expect(ctl.kinds()).not.toContain('setEventMaskPage2');
    });
    test('listed and refused (Unknown HCI Command): init still completes, the command is marked unsupported', async () => {
      const { ctl, host } = setup();
      ctl.supportedCommands = commandMask([[22, 2]]);
      ctl.on('readLocalVersionInformation', v(0x0d));
      ctl.on('setEventMaskPage2', { status: 0x01 });
      await host.init();
      expect(host.state).toBe('ready');
      expect(ctl.kinds()).toContain('setEventMaskPage2');
      expect(host.info.supports('setEventMaskPage2')).toBe(false);
    });
  });

  test('LE buffer size 0 means shared BR/EDR buffers (Read Buffer Size)', async () => {
    const { ctl, host } = setup();
    ctl.on('leReadBufferSize', { complete: { leAclDataPacketLength: 0, totalNumLeAclDataPackets: 0 } });
    const info = await host.init();
    expect(info.acl).toEqual({ length: 192, count: 1, source: 'shared' });
  });

  test('feature choices come from the command mask when LE feature bits read zero (btvirt)', async () => {
    const { ctl, host } = setup();
    ctl.supportedCommands = commandMask([[37, 5], [37, 6], [37, 7], [41, 5]]);
    ctl.on('leReadBufferSizeV2', { complete: { leAclDataPacketLength: 192, totalNumLeAclDataPackets: 1, isoDataPacketLength: 0, totalNumIsoDataPackets: 0 } });
    const info = await host.init();
    expect(info.extendedScanning).toBe(true);
    expect(info.extendedConnect).toBe(true);
    expect(info.acl.source).toBe('le-v2');
    info.markUnsupported('leSetExtendedScanParameters');
    expect(info.extendedScanning).toBe(false);
  });

  test('a reset that is never answered times out with TimeoutError', async () => {
    const { ctl, host, clock } = setup();
    ctl.on('reset', 'silent');
    const p = host.init();
    await ctl.sent('reset');
    clock.advance(10_000);
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
    expect(host.state).toBe('failed');
  });

  test('command failures are typed HciStatusError with names', async () => {
    const { ctl, host } = setup();
    await host.init();
    ctl.on('leSetScanEnable', { complete: { status: 0x0c } });
    const e = await host.command({ kind: 'leSetScanEnable', enable: 1, filterDuplicates: 0 }).catch(x => x);
    expect(e).toBeInstanceOf(HciStatusError);
    expect(e.message).toBe('hci: leSetScanEnable failed with status 0x0c (Command Disallowed)');
  });

  test('Hardware Error fails pending commands, reports, and init() recovers without a restart', async () => {
    const { ctl, host } = setup();
    await host.init();
    const codes: number[] = [];
    host.onHardwareError(c => codes.push(c));
    ctl.on('leSetScanParameters', 'silent');
    const pending = host.command({ kind: 'leSetScanParameters', leScanType: 1, leScanInterval: 16, leScanWindow: 16, ownAddressType: 0, scanningFilterPolicy: 0 });
    await ctl.sent('leSetScanParameters');
    ctl.inject({ kind: 'hardwareError', hardwareCode: 0x42 });
    await expect(pending).rejects.toThrow(/Hardware Error 0x42/);
    await expect(pending).rejects.toMatchObject({ constructor: HardwareError, code: 'EHARDWARE', hardwareCode: 0x42 });
    expect(codes).toEqual([0x42]);
    expect(host.state).toBe('failed');
    await host.init();
    expect(host.state).toBe('ready');
    expect(ctl.kinds().filter(k => k === 'reset').length).toBe(2);
  });

  test('transport EOF mid-operation rejects the command with TransportError and closes the host', async () => {
    const { ctl, host } = setup();
    await host.init();
    const closed: Array<Error | undefined> = [];
    host.onClose(e => closed.push(e));
    ctl.on('leSetScanEnable', 'silent');
    const p = host.command({ kind: 'leSetScanEnable', enable: 1, filterDuplicates: 0 });
    await ctl.sent('leSetScanEnable');
    ctl.eof();
    await expect(p).rejects.toBeInstanceOf(TransportError);
    expect(closed[0]).toBeInstanceOf(TransportError);
    expect(host.state).toBe('closed');
    await expect(host.command({ kind: 'reset' })).rejects.toBeInstanceOf(TransportError);
  });

  test('ACL for unknown handles and undecodable packets are counted and dropped', async () => {
    const { ctl, host } = setup();
    await host.init();
    ctl.injectAcl(0x0123, 2, Uint8Array.of(1, 0, 4, 0, 9));
    ctl.deliver(Uint8Array.of(0x04, 0x0e, 0x09, 0x01)); // truncated Command Complete
    ctl.deliver(Uint8Array.of(0x09, 0x01));
    const r = host.command({ kind: 'leSetScanEnable', enable: 0, filterDuplicates: 0 });
    await r; // delivered after the hostile packets: the receive path survived them
    expect(host.stats).toEqual({ aclUnknownHandle: 1, decodeErrors: 1, unknownPackets: 1 });
  });
});
