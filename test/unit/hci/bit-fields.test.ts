// Pins the HCI bit fields (issue 8, section 3: bit fields get a field type instead of shifts and
// masks): the ACL / SCO / ISO handle-flag words, the extended advertising report's Event_Type, the
// Advertising_Event_Properties of LE Set Extended Advertising Parameters and the LE feature mask, each
// on wire bytes written out from the Core specification, both directions.
import { describe, expect, test } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { decodeAcl, decodeIso, decodeSco, describeAcl, encodeAcl, encodeIso, encodeSco } from '../../../src/hci/acl.js';
import {
  ACL_HANDLE_FLAGS, ADV_EVENT_PROPERTIES, EXT_ADV_EVENT_TYPE, LE_FEATURES, LEGACY_ADV_EVENT_TYPE, LegacyAdvEventType, legacyAdvEventBits,
} from '../../../src/hci/bit-fields.js';
import { decodeHciPacket, describeHciPacket, encodeCommand, encodeHciPacket } from '../../../src/hci/packets.js';

describe('ACL / SCO / ISO handle and flags (Vol 4, Part E, 5.4.2, 5.4.3, 5.4.5)', () => {
  test('ACL: handle 0x040, PB 0b10 first automatically flushable, BC 0b01', () => {
    const h4 = fromHex('02' + '4060' + '0700' + '03000400' + '0a0300'); // 0x6040 = BC 01 | PB 10 | handle 0x040
    const p = decodeAcl(h4);
    expect([p.handle, p.pb, p.bc, toHex(p.data)]).toEqual([0x040, 2, 1, '030004000a0300']);
    expect(toHex(encodeAcl(p))).toBe(toHex(h4));
    expect(describeAcl(p)).toBe('ACL handle=0x0040 pb=first-flushable bc=1 len=7');
    expect(ACL_HANDLE_FLAGS.describeBits(0x6040)).toBe('0x6040(handle=64|first-flushable|bc=1)');
    // A continuing fragment (PB 0b01) on handle 0xeff: 0x1eff.
    expect(toHex(encodeAcl({ handle: 0xeff, pb: 1, data: fromHex('aa') }))).toBe('02ff1e0100aa');
    expect(() => encodeAcl({ handle: 0x1000, pb: 0, data: new Uint8Array(0) })).toThrow(/12 bits/);
  });
  test('SCO: Packet_Status_Flag in bits 12-13; ISO: PB in 12-13, TS in 14', () => {
    const sco = fromHex('03' + '0120' + '02' + 'beef'); // handle 0x001, status 0b10
    expect(decodeSco(sco)).toEqual({ handle: 1, packetStatus: 2, data: fromHex('beef') });
    expect(toHex(encodeSco(decodeSco(sco)))).toBe(toHex(sco));
    const iso = fromHex('05' + '6061' + '0200' + 'cafe'); // 0x6160: TS | PB 0b10 | handle 0x160
    expect(decodeIso(iso)).toEqual({ handle: 0x160, pb: 2, ts: true, data: fromHex('cafe') });
    expect(toHex(encodeIso(decodeIso(iso)))).toBe(toHex(iso));
  });
});

describe('advertising bit fields', () => {
  test('extended report Event_Type decodes to named bits (7.7.65.13)', () => {
    // LE Meta, LE Extended Advertising Report, one report: Event_Type 0x001b (SCAN_RSP to an ADV_IND),
    // random address, PHY 1M / none, SID 0xff, TxPower 127, RSSI -60, no periodic, no direct address, 3 octets.
    const h4 = fromHex('043e' + '1d' + '0d' + '01' + '1b00' + '01' + '5544332211c0' + '01' + '00' + 'ff' + '7f' + 'c4'
      + '0000' + '00' + '000000000000' + '03' + '020106');
    const p = decodeHciPacket(h4);
    if (p.type !== 'event' || p.kind !== 'leExtendedAdvertisingReport') throw new Error(`decoded as ${p.type}`);
    const t = p.reports[0]!.eventType;
    expect(t).toBe(0x1b);
    expect(['connectable', 'scannable', 'directed', 'scanResponse', 'legacy'].filter(k => EXT_ADV_EVENT_TYPE.has(t, k as never)))
      .toEqual(['connectable', 'scannable', 'scanResponse', 'legacy']);
    expect(EXT_ADV_EVENT_TYPE.get(0x0040, 'dataStatus')).toBe(2); // incomplete, truncated
    expect(describeHciPacket(p)).toContain('eventType=0x001b(connectable|scannable|scanResponse|legacy)');
    expect(toHex(encodeHciPacket(p))).toBe(toHex(h4));
    expect(EXT_ADV_EVENT_TYPE.pack({ legacy: true, connectable: true, scannable: true })).toBe(0x13); // ADV_IND, Table 7.1
  });
  test('the legacy report\'s Event_Type (7.7.65.2) is a named enumeration, read through the extended bits (Table 7.1)', () => {
    // LE Advertising Report: 1 report, ADV_SCAN_IND (0x02), random address, 3 octets of AD, RSSI -60.
    const h4 = fromHex('043e' + '0f' + '02' + '01' + '02' + '01' + '5544332211c0' + '03' + '020106' + 'c4');
    const p = decodeHciPacket(h4);
    if (p.type !== 'event' || p.kind !== 'leAdvertisingReport') throw new Error(`decoded as ${p.type}`);
    expect(p.reports[0]!.eventType).toBe(LegacyAdvEventType.AdvScanInd);
    expect(describeHciPacket(p)).toContain('eventType=ADV_SCAN_IND');
    expect(toHex(encodeHciPacket(p))).toBe(toHex(h4));
    const names = [0, 1, 2, 3, 4, 5].map(v => LEGACY_ADV_EVENT_TYPE.fmt!(v));
    expect(names).toEqual(['ADV_IND', 'ADV_DIRECT_IND', 'ADV_SCAN_IND', 'ADV_NONCONN_IND', 'SCAN_RSP', '0x05']);
    // Table 7.1's extended Event_Type for each legacy PDU; a reserved value claims nothing but `legacy`.
    expect(Object.values(LegacyAdvEventType).map(legacyAdvEventBits)).toEqual([0x13, 0x15, 0x12, 0x10, 0x1a]);
    expect(legacyAdvEventBits(0x05)).toBe(0x10);
    const bits = legacyAdvEventBits(LegacyAdvEventType.ScanRsp);
    expect(EXT_ADV_EVENT_TYPE.has(bits, 'scanResponse') && EXT_ADV_EVENT_TYPE.has(bits, 'legacy')).toBe(true);
    expect(EXT_ADV_EVENT_TYPE.has(legacyAdvEventBits(LegacyAdvEventType.AdvDirectInd), 'directed')).toBe(true);
  });
  test('Advertising_Event_Properties of LE Set Extended Advertising Parameters (7.8.53)', () => {
    const props = ADV_EVENT_PROPERTIES.pack({ legacy: true, connectable: true, scannable: true });
    const bytes = encodeCommand({ kind: 'leSetExtendedAdvertisingParameters', advertisingHandle: 0,
      advertisingEventProperties: props, primaryAdvertisingIntervalMin: 0xa0, primaryAdvertisingIntervalMax: 0xa0,
      primaryAdvertisingChannelMap: 7, ownAddressType: 1, peerAddressType: 0, peerAddress: '00:00:00:00:00:00',
      advertisingFilterPolicy: 0, advertisingTxPower: 127, primaryAdvertisingPhy: 1, secondaryAdvertisingMaxSkip: 0,
      secondaryAdvertisingPhy: 1, advertisingSid: 0, scanRequestNotificationEnable: 0 });
    expect(toHex(bytes.subarray(0, 7))).toBe('013620' + '19' + '00' + '1300'); // opcode 0x2036, 25 octets, handle 0, properties 0x0013
    expect(ADV_EVENT_PROPERTIES.describeBits(0x0045)).toBe('0x0045(connectable|directed|includeTxPower)');
  });
});

describe('LE features (Vol 6, Part B, 4.6)', () => {
  test('LE Read Remote Features Complete: the mask decodes to named bits and back', () => {
    // LE Meta, subevent 0x04, status 0, handle 0x0040, LE_Features 0x000000000000413f (bits 0-5, 8, 14).
    const h4 = fromHex('043e0c' + '04' + '00' + '4000' + '3f41000000000000');
    const p = decodeHciPacket(h4);
    if (p.type !== 'event' || p.kind !== 'leReadRemoteFeaturesComplete') throw new Error('not decoded');
    expect(p.leFeatures).toBe(0x413fn);
    expect(LE_FEATURES.names(p.leFeatures)).toEqual(['encryption', 'connectionParametersRequest', 'extendedRejectIndication',
      'peripheralInitiatedFeaturesExchange', 'ping', 'dataPacketLengthExtension', 'le2mPhy', 'channelSelectionAlgorithm2']);
    expect(LE_FEATURES.has(p.leFeatures, 'extendedAdvertising')).toBe(false);
    expect(LE_FEATURES.pack(['encryption', 'le2mPhy', 'channelSelectionAlgorithm2'])).toBe(0x4101n);
    expect(LE_FEATURES.describeBits(1n | (1n << 40n))).toBe('0x0000010000000001(encryption|bit40)');
    expect(toHex(encodeHciPacket(p))).toBe(toHex(h4));
  });
});
