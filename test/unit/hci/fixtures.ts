// Annotated HCI fixtures (whole H4 packets): every command, return-parameter and event row of the HCI
// tables with the wire bytes written out from the Core spec, field by field. Shared by the codec
// tests (both directions, truncation, completeness).
import { fromHex } from '../../../src/bytes/hex.js';
import type { HciPacket } from '../../../src/hci/packets.js';

export interface Fixture { packet: HciPacket; hex: string }
const F = (packet: HciPacket, ...hex: string[]): Fixture => ({ packet, hex: hex.join(' ') });
const h = fromHex;
const z = (n: number): string => '00'.repeat(n);

// Addresses: BD_ADDR is little-endian on the wire (Vol 2, Part B, 1.2).
const A = 'C0:11:22:33:44:55', Aw = '55 44 33 22 11 c0';
const B = '00:1A:7D:DA:71:13', Bw = '13 71 da 7d 1a 00';
const Z = '00:00:00:00:00:00', Zw = z(6);
const KEY = '000102030405060708090a0b0c0d0e0f';
const name248 = (s: string): { bytes: Uint8Array; hex: string } => {
  const b = new Uint8Array(248);
  b.set(new TextEncoder().encode(s));
  return { bytes: b, hex: Buffer.from(b).toString('hex') };
};
const NAME = name248('blewire');
const EIR = '0409626c65' + z(235); // Complete Local Name "ble", then zero padding to 240
const P256 = Array.from({ length: 64 }, (_, i) => (i + 1).toString(16).padStart(2, '0')).join('');
const DH = Array.from({ length: 32 }, (_, i) => (0xa0 + i).toString(16).padStart(2, '0')).join('');
const CMDS64 = 'ff'.repeat(32) + z(32);

const conn = { connectionIntervalMin: 0x18, connectionIntervalMax: 0x28, maxLatency: 0, supervisionTimeout: 0x2a, minCeLength: 0, maxCeLength: 0 };
const connHex = '1800 2800 0000 2a00 0000 0000'; // interval min 0x18, max 0x28, latency 0, timeout 0x2a, CE 0, 0

export const COMMAND_FIXTURES: Fixture[] = [
  // --- Link Control (OGF 0x01 → opcode high byte 0x04)
  F({ type: 'command', kind: 'inquiry', lap: 0x9e8b33, inquiryLength: 8, numResponses: 0 },
    '01 0104 05', // Inquiry, 5 parameter bytes
    '33 8b 9e',   // LAP 0x9E8B33 (GIAC)
    '08 00'),     // inquiry length 8 (10.24 s), unlimited responses
  F({ type: 'command', kind: 'inquiryCancel' }, '01 0204 00'),
  F({ type: 'command', kind: 'createConnection', bdAddr: A, packetType: 0xcc18, pageScanRepetitionMode: 1, reserved: 0, clockOffset: 0, allowRoleSwitch: 1 },
    '01 0504 0d', Aw,
    '18 cc',      // packet type 0xCC18
    '01 00',      // page scan repetition mode R1, reserved
    '00 00 01'),  // clock offset 0, allow role switch
  F({ type: 'command', kind: 'disconnect', connectionHandle: 0x0040, reason: 0x13 },
    '01 0604 03', // Disconnect (OCF 0x0006)
    '40 00',      // connection handle 0x0040
    '13'),        // reason: Remote User Terminated Connection
  F({ type: 'command', kind: 'createConnectionCancel', bdAddr: A }, '01 0804 06', Aw),
  F({ type: 'command', kind: 'acceptConnectionRequest', bdAddr: A, role: 1 }, '01 0904 07', Aw, '01'),
  F({ type: 'command', kind: 'rejectConnectionRequest', bdAddr: A, reason: 0x0d }, '01 0a04 07', Aw, '0d'),
  F({ type: 'command', kind: 'remoteNameRequest', bdAddr: A, pageScanRepetitionMode: 1, reserved: 0, clockOffset: 0 },
    '01 1904 0a', Aw, '01 00 0000'),
  F({ type: 'command', kind: 'remoteNameRequestCancel', bdAddr: A }, '01 1a04 06', Aw),
  F({ type: 'command', kind: 'readRemoteSupportedFeatures', connectionHandle: 0x000b }, '01 1b04 02', '0b00'),
  F({ type: 'command', kind: 'readRemoteVersionInformation', connectionHandle: 0x0040 }, '01 1d04 02', '4000'),
  // --- Link Policy (OGF 0x02 → 0x08)
  F({ type: 'command', kind: 'writeDefaultLinkPolicySettings', defaultLinkPolicySettings: 0x000f }, '01 0f08 02', '0f00'),
  // --- Controller & Baseband (OGF 0x03 → 0x0c)
  F({ type: 'command', kind: 'setEventMask', eventMask: 0x3dbff807fffbffffn },
    '01 010c 08', 'ff ff fb ff 07 f8 bf 3d'), // 64-bit mask, little-endian
  F({ type: 'command', kind: 'reset' }, '01 030c 00'),
  F({ type: 'command', kind: 'deleteStoredLinkKey', bdAddr: Z, deleteAllFlag: 1 }, '01 120c 07', Zw, '01'),
  F({ type: 'command', kind: 'writeLocalName', localName: NAME.bytes }, '01 130c f8', NAME.hex), // 248 octets, NUL padded
  F({ type: 'command', kind: 'readLocalName' }, '01 140c 00'),
  F({ type: 'command', kind: 'writePageTimeout', pageTimeout: 0x2000 }, '01 180c 02', '0020'),
  F({ type: 'command', kind: 'readScanEnable' }, '01 190c 00'),
  F({ type: 'command', kind: 'writeScanEnable', scanEnable: 3 }, '01 1a0c 01', '03'), // inquiry + page scan
  F({ type: 'command', kind: 'writePageScanActivity', pageScanInterval: 0x0800, pageScanWindow: 0x0012 }, '01 1c0c 04', '0008 1200'),
  F({ type: 'command', kind: 'writeInquiryScanActivity', inquiryScanInterval: 0x1000, inquiryScanWindow: 0x0012 }, '01 1e0c 04', '0010 1200'),
  F({ type: 'command', kind: 'readClassOfDevice' }, '01 230c 00'),
  F({ type: 'command', kind: 'writeClassOfDevice', classOfDevice: 0x5a020c }, '01 240c 03', '0c 02 5a'), // 24 bits LE
  F({ type: 'command', kind: 'writeVoiceSetting', voiceSetting: 0x0060 }, '01 260c 02', '6000'),
  F({ type: 'command', kind: 'readTransmitPowerLevel', connectionHandle: 0x0040, powerLevelType: 0 }, '01 2d0c 03', '4000 00'),
  F({ type: 'command', kind: 'setControllerToHostFlowControl', flowControlEnable: 1 }, '01 310c 01', '01'),
  F({ type: 'command', kind: 'hostBufferSize', hostAclDataPacketLength: 1019, hostSynchronousDataPacketLength: 0x40, hostTotalNumAclDataPackets: 8, hostTotalNumSynchronousDataPackets: 0 },
    '01 330c 07', 'fb03', '40', '0800', '0000'),
  F({ type: 'command', kind: 'hostNumberOfCompletedPackets', handles: [{ connectionHandle: 0x0040, hostNumOfCompletedPackets: 2 }] },
    '01 350c 05', '01',  // one handle
    '4000 0200'),        // handle 0x0040: 2 packets
  F({ type: 'command', kind: 'writeCurrentIacLap', iacLap: [0x9e8b33, 0x9e8b00] }, '01 3a0c 07', '02', '338b9e', '008b9e'),
  F({ type: 'command', kind: 'writeInquiryScanType', scanType: 1 }, '01 430c 01', '01'),
  F({ type: 'command', kind: 'writeInquiryMode', inquiryMode: 2 }, '01 450c 01', '02'),
  F({ type: 'command', kind: 'writePageScanType', pageScanType: 1 }, '01 470c 01', '01'),
  F({ type: 'command', kind: 'writeExtendedInquiryResponse', fecRequired: 0, extendedInquiryResponse: h(EIR) }, '01 520c f1', '00', EIR),
  F({ type: 'command', kind: 'writeSimplePairingMode', simplePairingMode: 1 }, '01 560c 01', '01'),
  F({ type: 'command', kind: 'readDefaultErroneousDataReporting' }, '01 5a0c 00'),
  F({ type: 'command', kind: 'writeDefaultErroneousDataReporting', erroneousDataReporting: 0 }, '01 5b0c 01', '00'),
  F({ type: 'command', kind: 'setEventMaskPage2', eventMaskPage2: 0x800000n }, '01 630c 08', '00 00 80 00 00 00 00 00'),
  F({ type: 'command', kind: 'readLeHostSupport' }, '01 6c0c 00'),
  F({ type: 'command', kind: 'writeLeHostSupport', leSupportedHost: 1, unused: 0 }, '01 6d0c 02', '01 00'),
  F({ type: 'command', kind: 'writeSecureConnectionsHostSupport', secureConnectionsHostSupport: 1 }, '01 7a0c 01', '01'),
  F({ type: 'command', kind: 'readAuthenticatedPayloadTimeout', connectionHandle: 0x0040 }, '01 7b0c 02', '4000'),
  F({ type: 'command', kind: 'writeAuthenticatedPayloadTimeout', connectionHandle: 0x0040, authenticatedPayloadTimeout: 3000 }, '01 7c0c 04', '4000 b80b'),
  F({ type: 'command', kind: 'configureDataPath', dataPathDirection: 1, dataPathId: 1, vendorSpecificConfig: h('aa') },
    '01 830c 04', '01 01', '01 aa'), // direction output, path 1, 1-byte config
  F({ type: 'command', kind: 'setMinEncryptionKeySize', minEncryptionKeySize: 7 }, '01 840c 01', '07'),
  // --- Informational (OGF 0x04 → 0x10)
  F({ type: 'command', kind: 'readLocalVersionInformation' }, '01 0110 00'),
  F({ type: 'command', kind: 'readLocalSupportedCommands' }, '01 0210 00'),
  F({ type: 'command', kind: 'readLocalSupportedFeatures' }, '01 0310 00'),
  F({ type: 'command', kind: 'readLocalExtendedFeatures', pageNumber: 1 }, '01 0410 01', '01'),
  F({ type: 'command', kind: 'readBufferSize' }, '01 0510 00'),
  F({ type: 'command', kind: 'readBdAddr' }, '01 0910 00'),
  F({ type: 'command', kind: 'readLocalSupportedCodecs' }, '01 0b10 00'),
  // --- Status (OGF 0x05 → 0x14)
  F({ type: 'command', kind: 'readRssi', connectionHandle: 0x0040 }, '01 0514 02', '4000'),
  // --- LE (OGF 0x08 → 0x20)
  F({ type: 'command', kind: 'leSetEventMask', leEventMask: 0x1fn }, '01 0120 08', '1f 00 00 00 00 00 00 00'),
  F({ type: 'command', kind: 'leReadBufferSize' }, '01 0220 00'),
  F({ type: 'command', kind: 'leReadLocalSupportedFeatures' }, '01 0320 00'),
  F({ type: 'command', kind: 'leSetRandomAddress', randomAddress: A }, '01 0520 06', Aw),
  F({ type: 'command', kind: 'leSetAdvertisingParameters', advertisingIntervalMin: 0xa0, advertisingIntervalMax: 0xa0, advertisingType: 0, ownAddressType: 1, peerAddressType: 0, peerAddress: Z, advertisingChannelMap: 7, advertisingFilterPolicy: 0 },
    '01 0620 0f', 'a000 a000', // interval min/max 0xA0 (100 ms)
    '00 01 00', Zw,             // ADV_IND, own random, peer public 00:…
    '07 00'),                   // all three channels, no filter
  F({ type: 'command', kind: 'leReadAdvertisingPhysicalChannelTxPower' }, '01 0720 00'),
  F({ type: 'command', kind: 'leSetAdvertisingData', advertisingData: h('020106') },
    '01 0820 20', '03', '02 01 06', z(28)), // significant length 3, Flags AD, zero padding to 31
  F({ type: 'command', kind: 'leSetScanResponseData', scanResponseData: new Uint8Array(0) }, '01 0920 20', '00', z(31)),
  F({ type: 'command', kind: 'leSetAdvertisingEnable', enable: 1 }, '01 0a20 01', '01'),
  F({ type: 'command', kind: 'leSetScanParameters', leScanType: 1, leScanInterval: 0x10, leScanWindow: 0x10, ownAddressType: 0, scanningFilterPolicy: 0 },
    '01 0b20 07', '01', '1000 1000', '00 00'), // active, 10 ms / 10 ms, public, accept all
  F({ type: 'command', kind: 'leSetScanEnable', enable: 1, filterDuplicates: 0 },
    '01 0c20 02', // LE Set Scan Enable (OGF 0x08, OCF 0x000C), 2 parameter bytes
    '01',         // enable
    '00'),        // filterDuplicates
  F({ type: 'command', kind: 'leCreateConnection', leScanInterval: 0x60, leScanWindow: 0x30, initiatorFilterPolicy: 0, peerAddressType: 1, peerAddress: A, ownAddressType: 0, ...conn },
    '01 0d20 19', '6000 3000', '00', '01', Aw, '00', connHex),
  F({ type: 'command', kind: 'leCreateConnectionCancel' }, '01 0e20 00'),
  F({ type: 'command', kind: 'leReadFilterAcceptListSize' }, '01 0f20 00'),
  F({ type: 'command', kind: 'leClearFilterAcceptList' }, '01 1020 00'),
  F({ type: 'command', kind: 'leAddDeviceToFilterAcceptList', addressType: 1, address: A }, '01 1120 07', '01', Aw),
  F({ type: 'command', kind: 'leRemoveDeviceFromFilterAcceptList', addressType: 0, address: B }, '01 1220 07', '00', Bw),
  F({ type: 'command', kind: 'leConnectionUpdate', connectionHandle: 0x0040, connectionIntervalMin: 6, connectionIntervalMax: 12, maxLatency: 0, supervisionTimeout: 200, minCeLength: 0, maxCeLength: 0 },
    '01 1320 0e', '4000', '0600 0c00 0000 c800 0000 0000'),
  F({ type: 'command', kind: 'leSetHostChannelClassification', channelMap: h('ffffffff1f') }, '01 1420 05', 'ff ff ff ff 1f'),
  F({ type: 'command', kind: 'leReadChannelMap', connectionHandle: 0x0040 }, '01 1520 02', '4000'),
  F({ type: 'command', kind: 'leReadRemoteFeatures', connectionHandle: 0x0040 }, '01 1620 02', '4000'),
  F({ type: 'command', kind: 'leEncrypt', key: h(KEY), plaintextData: h('ff'.repeat(16)) }, '01 1720 20', KEY, 'ff'.repeat(16)),
  F({ type: 'command', kind: 'leRand' }, '01 1820 00'),
  F({ type: 'command', kind: 'leEnableEncryption', connectionHandle: 0x0040, randomNumber: h('0102030405060708'), encryptedDiversifier: 0x1234, longTermKey: h(KEY) },
    '01 1920 1c', '4000', '0102030405060708', '3412', KEY),
  F({ type: 'command', kind: 'leLongTermKeyRequestReply', connectionHandle: 0x0040, longTermKey: h(KEY) }, '01 1a20 12', '4000', KEY),
  F({ type: 'command', kind: 'leLongTermKeyRequestNegativeReply', connectionHandle: 0x0040 }, '01 1b20 02', '4000'),
  F({ type: 'command', kind: 'leReadSupportedStates' }, '01 1c20 00'),
  F({ type: 'command', kind: 'leRemoteConnectionParameterRequestReply', connectionHandle: 0x0040, intervalMin: 6, intervalMax: 12, maxLatency: 0, timeout: 200, minCeLength: 0, maxCeLength: 0 },
    '01 2020 0e', '4000', '0600 0c00 0000 c800 0000 0000'),
  F({ type: 'command', kind: 'leRemoteConnectionParameterRequestNegativeReply', connectionHandle: 0x0040, reason: 0x3b },
    '01 2120 03', '4000', '3b'), // Unacceptable Connection Parameters
  F({ type: 'command', kind: 'leSetDataLength', connectionHandle: 0x0040, txOctets: 251, txTime: 2120 }, '01 2220 06', '4000 fb00 4808'),
  F({ type: 'command', kind: 'leReadSuggestedDefaultDataLength' }, '01 2320 00'),
  F({ type: 'command', kind: 'leWriteSuggestedDefaultDataLength', suggestedMaxTxOctets: 251, suggestedMaxTxTime: 2120 }, '01 2420 04', 'fb00 4808'),
  F({ type: 'command', kind: 'leReadLocalP256PublicKey' }, '01 2520 00'),
  F({ type: 'command', kind: 'leGenerateDhkey', remoteP256PublicKey: h(P256) }, '01 2620 40', P256),
  F({ type: 'command', kind: 'leAddDeviceToResolvingList', peerIdentityAddressType: 0, peerIdentityAddress: B, peerIrk: h(KEY), localIrk: h('ff'.repeat(16)) },
    '01 2720 27', '00', Bw, KEY, 'ff'.repeat(16)),
  F({ type: 'command', kind: 'leRemoveDeviceFromResolvingList', peerIdentityAddressType: 0, peerIdentityAddress: B }, '01 2820 07', '00', Bw),
  F({ type: 'command', kind: 'leClearResolvingList' }, '01 2920 00'),
  F({ type: 'command', kind: 'leReadResolvingListSize' }, '01 2a20 00'),
  F({ type: 'command', kind: 'leReadPeerResolvableAddress', peerIdentityAddressType: 0, peerIdentityAddress: B }, '01 2b20 07', '00', Bw),
  F({ type: 'command', kind: 'leReadLocalResolvableAddress', peerIdentityAddressType: 0, peerIdentityAddress: B }, '01 2c20 07', '00', Bw),
  F({ type: 'command', kind: 'leSetAddressResolutionEnable', addressResolutionEnable: 1 }, '01 2d20 01', '01'),
  F({ type: 'command', kind: 'leSetResolvablePrivateAddressTimeout', rpaTimeout: 900 }, '01 2e20 02', '8403'),
  F({ type: 'command', kind: 'leReadMaximumDataLength' }, '01 2f20 00'),
  F({ type: 'command', kind: 'leReadPhy', connectionHandle: 0x0040 }, '01 3020 02', '4000'),
  F({ type: 'command', kind: 'leSetDefaultPhy', allPhys: 0, txPhys: 3, rxPhys: 3 }, '01 3120 03', '00 03 03'),
  F({ type: 'command', kind: 'leSetPhy', connectionHandle: 0x0040, allPhys: 0, txPhys: 2, rxPhys: 2, phyOptions: 0 }, '01 3220 07', '4000', '00 02 02', '0000'),
  F({ type: 'command', kind: 'leSetAdvertisingSetRandomAddress', advertisingHandle: 0, randomAddress: A }, '01 3520 07', '00', Aw),
  F({ type: 'command', kind: 'leSetExtendedAdvertisingParameters', advertisingHandle: 0, advertisingEventProperties: 0x0013, primaryAdvertisingIntervalMin: 0xa0, primaryAdvertisingIntervalMax: 0xa0, primaryAdvertisingChannelMap: 7, ownAddressType: 1, peerAddressType: 0, peerAddress: Z, advertisingFilterPolicy: 0, advertisingTxPower: 127, primaryAdvertisingPhy: 1, secondaryAdvertisingMaxSkip: 0, secondaryAdvertisingPhy: 1, advertisingSid: 0, scanRequestNotificationEnable: 0 },
    '01 3620 19', '00', '1300',  // handle 0, properties: legacy connectable scannable
    'a00000 a00000', '07',        // 24-bit intervals, all channels
    '01 00', Zw, '00',            // own random, peer public 00:…, no filter
    '7f', '01 00 01', '00 00'),   // no TX power preference, 1M primary, skip 0, 1M secondary, SID 0, no scan req notification
  F({ type: 'command', kind: 'leSetExtendedAdvertisingData', advertisingHandle: 0, operation: 3, fragmentPreference: 1, advertisingData: h('020106') },
    '01 3720 07', '00 03 01', '03 020106'),
  F({ type: 'command', kind: 'leSetExtendedScanResponseData', advertisingHandle: 0, operation: 3, fragmentPreference: 1, scanResponseData: new Uint8Array(0) },
    '01 3820 04', '00 03 01', '00'),
  F({ type: 'command', kind: 'leSetExtendedAdvertisingEnable', enable: 1, sets: [{ advertisingHandle: 0, duration: 0, maxExtendedAdvertisingEvents: 0 }] },
    '01 3920 06', '01', '01', '00 0000 00'), // enable, one set: handle 0, no duration, no event limit
  F({ type: 'command', kind: 'leReadMaximumAdvertisingDataLength' }, '01 3a20 00'),
  F({ type: 'command', kind: 'leReadNumberOfSupportedAdvertisingSets' }, '01 3b20 00'),
  F({ type: 'command', kind: 'leRemoveAdvertisingSet', advertisingHandle: 0 }, '01 3c20 01', '00'),
  F({ type: 'command', kind: 'leClearAdvertisingSets' }, '01 3d20 00'),
  F({ type: 'command', kind: 'leSetPeriodicAdvertisingParameters', advertisingHandle: 0, periodicAdvertisingIntervalMin: 0x50, periodicAdvertisingIntervalMax: 0x50, periodicAdvertisingProperties: 0 },
    '01 3e20 07', '00', '5000 5000', '0000'),
  F({ type: 'command', kind: 'leSetPeriodicAdvertisingData', advertisingHandle: 0, operation: 3, advertisingData: h('abcd') }, '01 3f20 05', '00 03', '02 abcd'),
  F({ type: 'command', kind: 'leSetPeriodicAdvertisingEnable', enable: 1, advertisingHandle: 0 }, '01 4020 02', '01 00'),
  F({ type: 'command', kind: 'leSetExtendedScanParameters', ownAddressType: 1, scanningFilterPolicy: 0, scanningPhys: [
    { phy: 1, scanType: 1, scanInterval: 0x12, scanWindow: 0x12 }, { phy: 4, scanType: 0, scanInterval: 0x36, scanWindow: 0x36 }] },
    '01 4120 0d', '01 00',
    '05',             // PHYs: LE 1M (bit 0) and LE Coded (bit 2) → two blocks
    '01 1200 1200',   // 1M: active, interval 0x12, window 0x12
    '00 3600 3600'),  // Coded: passive, interval 0x36, window 0x36
  F({ type: 'command', kind: 'leSetExtendedScanEnable', enable: 1, filterDuplicates: 1, duration: 0, period: 0 }, '01 4220 06', '01 01', '0000 0000'),
  F({ type: 'command', kind: 'leExtendedCreateConnection', initiatorFilterPolicy: 0, ownAddressType: 0, peerAddressType: 1, peerAddress: A, initiatingPhys: [
    { phy: 1, scanInterval: 0x60, scanWindow: 0x30, ...conn }] },
    '01 4320 1a', '00 00 01', Aw,
    '01',                       // PHYs: LE 1M only
    '6000 3000', connHex),      // scan interval/window, then connection parameters
  F({ type: 'command', kind: 'lePeriodicAdvertisingCreateSync', options: 0, advertisingSid: 1, advertiserAddressType: 1, advertiserAddress: A, skip: 0, syncTimeout: 1000, syncCteType: 0 },
    '01 4420 0e', '00 01 01', Aw, '0000 e803 00'),
  F({ type: 'command', kind: 'lePeriodicAdvertisingCreateSyncCancel' }, '01 4520 00'),
  F({ type: 'command', kind: 'lePeriodicAdvertisingTerminateSync', syncHandle: 1 }, '01 4620 02', '0100'),
  F({ type: 'command', kind: 'leReadPeriodicAdvertiserListSize' }, '01 4a20 00'),
  F({ type: 'command', kind: 'leReadTransmitPower' }, '01 4b20 00'),
  F({ type: 'command', kind: 'leSetPrivacyMode', peerIdentityAddressType: 1, peerIdentityAddress: A, privacyMode: 1 }, '01 4e20 08', '01', Aw, '01'),
  F({ type: 'command', kind: 'leReadBufferSizeV2' }, '01 6020 00'),
  F({ type: 'command', kind: 'leGenerateDhkeyV2', remoteP256PublicKey: h(P256), keyType: 1 },
    '01 5e20 41', P256, '01'), // key type 1: use the debug private key
  F({ type: 'command', kind: 'leSetHostFeature', bitNumber: 38, bitValue: 1 }, '01 7420 02', '26 01'),
  F({ type: 'command', kind: 'leSetExtendedAdvertisingParametersV2', advertisingHandle: 1, advertisingEventProperties: 0x0001, primaryAdvertisingIntervalMin: 0xa0, primaryAdvertisingIntervalMax: 0xa0, primaryAdvertisingChannelMap: 7, ownAddressType: 1, peerAddressType: 0, peerAddress: Z, advertisingFilterPolicy: 0, advertisingTxPower: -10, primaryAdvertisingPhy: 1, secondaryAdvertisingMaxSkip: 0, secondaryAdvertisingPhy: 2, advertisingSid: 1, scanRequestNotificationEnable: 0, primaryAdvertisingPhyOptions: 0, secondaryAdvertisingPhyOptions: 0 },
    '01 7f20 1b', '01', '0100', 'a00000 a00000', '07', '01 00', Zw, '00', 'f6', '01 00 02', '01 00', '00 00'),
  // --- Vendor-specific and unknown opcodes stay raw
  F({ type: 'command', kind: 'vendor', opcode: 0xfc17, data: h('abcd') }, '01 17fc 02', 'abcd'),
  F({ type: 'command', kind: 'unknown', opcode: 0x3001, data: new Uint8Array(0) }, '01 0130 00'), // OGF 0x0C is not assigned
  // --- Added with the Android init commands (issue 8): 7.3, 7.4, 7.5 and 7.8 neighbours
  F({ type: 'command', kind: 'setEventFilter', filterType: 0, filterCondition: h('') }, '01 050c 01', '00'), // Clear All Filters (Android init)
  F({ type: 'command', kind: 'flush', connectionHandle: 0x0040 }, '01 080c 02', '4000'),
  F({ type: 'command', kind: 'readPinType' }, '01 090c 00'),
  F({ type: 'command', kind: 'writePinType', pinType: 0 }, '01 0a0c 01', '00'), // variable PIN
  F({ type: 'command', kind: 'readStoredLinkKey', bdAddr: A, readAllFlag: 1 }, '01 0d0c 07', Aw, '01'),
  F({ type: 'command', kind: 'readConnectionAcceptTimeout' }, '01 150c 00'),
  F({ type: 'command', kind: 'writeConnectionAcceptTimeout', connectionAcceptTimeout: 0x1fa0 }, '01 160c 02', 'a01f'), // 5 s in 0.625 ms slots
  F({ type: 'command', kind: 'readPageTimeout' }, '01 170c 00'),
  F({ type: 'command', kind: 'readPageScanActivity' }, '01 1b0c 00'),
  F({ type: 'command', kind: 'readInquiryScanActivity' }, '01 1d0c 00'),
  F({ type: 'command', kind: 'readAuthenticationEnable' }, '01 1f0c 00'),
  F({ type: 'command', kind: 'writeAuthenticationEnable', authenticationEnable: 0 }, '01 200c 01', '00'),
  F({ type: 'command', kind: 'readVoiceSetting' }, '01 250c 00'),
  F({ type: 'command', kind: 'readLinkSupervisionTimeout', handle: 0x000b }, '01 360c 02', '0b00'),
  F({ type: 'command', kind: 'writeLinkSupervisionTimeout', handle: 0x000b, linkSupervisionTimeout: 0x7d00 }, '01 370c 04', '0b00', '007d'), // 20 s
  F({ type: 'command', kind: 'readNumberOfSupportedIac' }, '01 380c 00'),
  F({ type: 'command', kind: 'readCurrentIacLap' }, '01 390c 00'),
  F({ type: 'command', kind: 'readInquiryScanType' }, '01 420c 00'),
  F({ type: 'command', kind: 'readInquiryMode' }, '01 440c 00'),
  F({ type: 'command', kind: 'readPageScanType' }, '01 460c 00'),
  F({ type: 'command', kind: 'readExtendedInquiryResponse' }, '01 510c 00'),
  F({ type: 'command', kind: 'readSimplePairingMode' }, '01 550c 00'),
  F({ type: 'command', kind: 'readInquiryResponseTransmitPowerLevel' }, '01 580c 00'),
  F({ type: 'command', kind: 'writeInquiryTransmitPowerLevel', txPower: -4 }, '01 590c 01', 'fc'), // -4 dBm
  F({ type: 'command', kind: 'readSecureConnectionsHostSupport' }, '01 790c 00'),
  F({ type: 'command', kind: 'readDataBlockSize' }, '01 0a10 00'),
  F({ type: 'command', kind: 'readLocalSimplePairingOptions' }, '01 0c10 00'), // opcode 0x100C
  F({ type: 'command', kind: 'readLinkQuality', handle: 0x000b }, '01 0314 02', '0b00'),
  F({ type: 'command', kind: 'readEncryptionKeySize', connectionHandle: 0x0040 }, '01 0814 02', '4000'),
  F({ type: 'command', kind: 'leReceiverTest', rxChannel: 0x13 }, '01 1d20 01', '13'),
  F({ type: 'command', kind: 'leTransmitterTest', txChannel: 0x13, testDataLength: 0x25, packetPayload: 0 }, '01 1e20 03', '13 25 00'), // PRBS9
  F({ type: 'command', kind: 'leTestEnd' }, '01 1f20 00'),
  F({ type: 'command', kind: 'leRemoteConnectionParameterRequestNegativeReply', connectionHandle: 0x0040, reason: 0x3b },
    '01 2120 03', '4000', '3b'), // Unacceptable Connection Parameters
  F({ type: 'command', kind: 'leAddDeviceToPeriodicAdvertiserList', advertiserAddressType: 1, advertiserAddress: A, advertisingSid: 2 },
    '01 4720 08', '01', Aw, '02'),
  F({ type: 'command', kind: 'leRemoveDeviceFromPeriodicAdvertiserList', advertiserAddressType: 1, advertiserAddress: A, advertisingSid: 2 },
    '01 4820 08', '01', Aw, '02'),
  F({ type: 'command', kind: 'leClearPeriodicAdvertiserList' }, '01 4920 00'),
  F({ type: 'command', kind: 'leReadRfPathCompensation' }, '01 4c20 00'),
  F({ type: 'command', kind: 'leWriteRfPathCompensation', rfTxPathCompensationValue: -15, rfRxPathCompensationValue: 20 },
    '01 4d20 04', 'f1ff', '1400'), // opcode 0x204D: TX -1.5 dB, RX +2.0 dB
];

const cc = (opcodeHex: string, len: string, ...ret: string[]): string[] => [`04 0e ${len} 01 ${opcodeHex}`, ...ret];

/** Command Complete: one per command row with return parameters beyond the status. */
export const RETURN_FIXTURES: Fixture[] = [
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0408, returnParameters: { kind: 'createConnectionCancel', status: 0, bdAddr: A } },
    ...cc('0804', '0a', '00', Aw)),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x041a, returnParameters: { kind: 'remoteNameRequestCancel', status: 0, bdAddr: A } },
    ...cc('1a04', '0a', '00', Aw)),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c12, returnParameters: { kind: 'deleteStoredLinkKey', status: 0, numKeysDeleted: 0 } },
    ...cc('120c', '06', '00', '0000')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c14, returnParameters: { kind: 'readLocalName', status: 0, localName: NAME.bytes } },
    ...cc('140c', 'fc', '00', NAME.hex)),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c19, returnParameters: { kind: 'readScanEnable', status: 0, scanEnable: 3 } },
    ...cc('190c', '05', '00', '03')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c23, returnParameters: { kind: 'readClassOfDevice', status: 0, classOfDevice: 0x5a020c } },
    ...cc('230c', '07', '00', '0c025a')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c2d, returnParameters: { kind: 'readTransmitPowerLevel', status: 0, connectionHandle: 0x40, txPowerLevel: 4 } },
    ...cc('2d0c', '07', '00', '4000', '04')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c5a, returnParameters: { kind: 'readDefaultErroneousDataReporting', status: 0, erroneousDataReporting: 0 } },
    ...cc('5a0c', '05', '00', '00')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c6c, returnParameters: { kind: 'readLeHostSupport', status: 0, leSupportedHost: 1, unused: 0 } },
    ...cc('6c0c', '06', '00', '01 00')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c7b, returnParameters: { kind: 'readAuthenticatedPayloadTimeout', status: 0, connectionHandle: 0x40, authenticatedPayloadTimeout: 3000 } },
    ...cc('7b0c', '08', '00', '4000', 'b80b')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c7c, returnParameters: { kind: 'writeAuthenticatedPayloadTimeout', status: 0, connectionHandle: 0x40 } },
    ...cc('7c0c', '06', '00', '4000')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1001, returnParameters: { kind: 'readLocalVersionInformation', status: 0, hciVersion: 0x0c, hciSubversion: 0x1234, lmpVersion: 0x0c, manufacturer: 0x000f, lmpSubversion: 0x4321 } },
    ...cc('0110', '0c', '00',
      '0c',     // HCI version 5.3
      '3412',   // HCI subversion
      '0c',     // LMP version 5.3
      '0f00',   // manufacturer: Broadcom (0x000F)
      '2143')), // LMP subversion
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1002, returnParameters: { kind: 'readLocalSupportedCommands', status: 0, supportedCommands: h(CMDS64) } },
    ...cc('0210', '44', '00', CMDS64)), // 64-octet bit mask
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1003, returnParameters: { kind: 'readLocalSupportedFeatures', status: 0, lmpFeatures: 0x875b3fd8fe8ffeffn } },
    ...cc('0310', '0c', '00', 'ff fe 8f fe d8 3f 5b 87')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1004, returnParameters: { kind: 'readLocalExtendedFeatures', status: 0, pageNumber: 1, maxPageNumber: 2, extendedLmpFeatures: 0xfn } },
    ...cc('0410', '0e', '00', '01 02', '0f00000000000000')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1005, returnParameters: { kind: 'readBufferSize', status: 0, aclDataPacketLength: 1021, synchronousDataPacketLength: 0x40, totalNumAclDataPackets: 8, totalNumSynchronousDataPackets: 1 } },
    ...cc('0510', '0b', '00', 'fd03', '40', '0800', '0100')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1009, returnParameters: { kind: 'readBdAddr', status: 0, bdAddr: A } },
    ...cc('0910', '0a', '00', Aw)),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x100b, returnParameters: { kind: 'readLocalSupportedCodecs', status: 0, supportedCodecs: [0x00, 0x02], vendorSpecificCodecs: [{ companyId: 0x001d, vendorCodecId: 0x0001 }] } },
    ...cc('0b10', '0c', '00',
      '02 00 02',        // two standard codecs: u-law, mSBC... (IDs 0x00, 0x02)
      '01 1d00 0100')),  // one vendor codec: company 0x001D, codec 0x0001
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1405, returnParameters: { kind: 'readRssi', status: 0, connectionHandle: 0x40, rssi: -60 } },
    ...cc('0514', '07', '00', '4000', 'c4')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2002, returnParameters: { kind: 'leReadBufferSize', status: 0, leAclDataPacketLength: 251, totalNumLeAclDataPackets: 15 } },
    ...cc('0220', '07', '00', 'fb00', '0f')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2003, returnParameters: { kind: 'leReadLocalSupportedFeatures', status: 0, leFeatures: 0x149ffn } },
    ...cc('0320', '0c', '00', 'ff 49 01 00 00 00 00 00')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2007, returnParameters: { kind: 'leReadAdvertisingPhysicalChannelTxPower', status: 0, txPowerLevel: 9 } },
    ...cc('0720', '05', '00', '09')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x200f, returnParameters: { kind: 'leReadFilterAcceptListSize', status: 0, filterAcceptListSize: 16 } },
    ...cc('0f20', '05', '00', '10')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2015, returnParameters: { kind: 'leReadChannelMap', status: 0, connectionHandle: 0x40, channelMap: h('ffffffff1f') } },
    ...cc('1520', '0b', '00', '4000', 'ffffffff1f')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2017, returnParameters: { kind: 'leEncrypt', status: 0, encryptedData: h(KEY) } },
    ...cc('1720', '14', '00', KEY)),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2018, returnParameters: { kind: 'leRand', status: 0, randomNumber: h('0102030405060708') } },
    ...cc('1820', '0c', '00', '0102030405060708')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x201a, returnParameters: { kind: 'leLongTermKeyRequestReply', status: 0, connectionHandle: 0x40 } },
    ...cc('1a20', '06', '00', '4000')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x201b, returnParameters: { kind: 'leLongTermKeyRequestNegativeReply', status: 0, connectionHandle: 0x40 } },
    ...cc('1b20', '06', '00', '4000')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x201c, returnParameters: { kind: 'leReadSupportedStates', status: 0, leStates: 0x3ffffffffffn } },
    ...cc('1c20', '0c', '00', 'ff ff ff ff ff 03 00 00')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2020, returnParameters: { kind: 'leRemoteConnectionParameterRequestReply', status: 0, connectionHandle: 0x40 } },
    ...cc('2020', '06', '00', '4000')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2021, returnParameters: { kind: 'leRemoteConnectionParameterRequestNegativeReply', status: 0, connectionHandle: 0x40 } },
    ...cc('2120', '06', '00', '4000')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2022, returnParameters: { kind: 'leSetDataLength', status: 0, connectionHandle: 0x40 } },
    ...cc('2220', '06', '00', '4000')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2023, returnParameters: { kind: 'leReadSuggestedDefaultDataLength', status: 0, suggestedMaxTxOctets: 27, suggestedMaxTxTime: 328 } },
    ...cc('2320', '08', '00', '1b00', '4801')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x202a, returnParameters: { kind: 'leReadResolvingListSize', status: 0, resolvingListSize: 8 } },
    ...cc('2a20', '05', '00', '08')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x202b, returnParameters: { kind: 'leReadPeerResolvableAddress', status: 0, peerResolvableAddress: A } },
    ...cc('2b20', '0a', '00', Aw)),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x202c, returnParameters: { kind: 'leReadLocalResolvableAddress', status: 0, localResolvableAddress: A } },
    ...cc('2c20', '0a', '00', Aw)),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x202f, returnParameters: { kind: 'leReadMaximumDataLength', status: 0, supportedMaxTxOctets: 251, supportedMaxTxTime: 2120, supportedMaxRxOctets: 251, supportedMaxRxTime: 2120 } },
    ...cc('2f20', '0c', '00', 'fb00 4808', 'fb00 4808')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2030, returnParameters: { kind: 'leReadPhy', status: 0, connectionHandle: 0x40, txPhy: 2, rxPhy: 2 } },
    ...cc('3020', '08', '00', '4000', '02 02')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2036, returnParameters: { kind: 'leSetExtendedAdvertisingParameters', status: 0, selectedTxPower: 9 } },
    ...cc('3620', '05', '00', '09')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x203a, returnParameters: { kind: 'leReadMaximumAdvertisingDataLength', status: 0, maxAdvertisingDataLength: 1650 } },
    ...cc('3a20', '06', '00', '7206')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x203b, returnParameters: { kind: 'leReadNumberOfSupportedAdvertisingSets', status: 0, numSupportedAdvertisingSets: 16 } },
    ...cc('3b20', '05', '00', '10')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x204a, returnParameters: { kind: 'leReadPeriodicAdvertiserListSize', status: 0, periodicAdvertiserListSize: 8 } },
    ...cc('4a20', '05', '00', '08')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x204b, returnParameters: { kind: 'leReadTransmitPower', status: 0, minTxPower: -20, maxTxPower: 10 } },
    ...cc('4b20', '06', '00', 'ec 0a')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2060, returnParameters: { kind: 'leReadBufferSizeV2', status: 0, leAclDataPacketLength: 251, totalNumLeAclDataPackets: 15, isoDataPacketLength: 0, totalNumIsoDataPackets: 0 } },
    ...cc('6020', '0a', '00', 'fb00 0f', '0000 00')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x207f, returnParameters: { kind: 'leSetExtendedAdvertisingParametersV2', status: 0, selectedTxPower: -10 } },
    ...cc('7f20', '05', '00', 'f6')),
  // Status-only rows, the short failure form, the credit-only opcode, vendor and unknown returns.
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x0c03, returnParameters: { kind: 'reset', status: 0 } },
    ...cc('030c', '04', '00')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1001, returnParameters: { kind: 'readLocalVersionInformation', status: 0x01, statusOnly: true } },
    ...cc('0110', '04', '01')), // Unknown HCI Command, nothing else
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 5, commandOpcode: 0x0000, returnParameters: { kind: 'nop' } },
    '04 0e 03 05 0000'),         // credit-only: 5 command packets allowed, no opcode
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0xfc17, returnParameters: { kind: 'vendor', data: h('00aabb') } },
    ...cc('17fc', '06', '00 aabb')),
  F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x3001, returnParameters: { kind: 'unknown', data: h('00') } },
    ...cc('0130', '04', '00')),
  // --- Added with the Android init commands (issue 8)
  ...([
    ['flush', '080c', '06', { connectionHandle: 0x0040 }, '4000'],
    ['readPinType', '090c', '05', { pinType: 0 }, '00'],
    ['readStoredLinkKey', '0d0c', '08', { maxNumKeys: 16, numKeysRead: 0 }, '1000 0000'],
    ['readConnectionAcceptTimeout', '150c', '06', { connectionAcceptTimeout: 0x1fa0 }, 'a01f'],
    ['readPageTimeout', '170c', '06', { pageTimeout: 0x2000 }, '0020'],
    ['readPageScanActivity', '1b0c', '08', { pageScanInterval: 0x0800, pageScanWindow: 0x0012 }, '0008 1200'],
    ['readInquiryScanActivity', '1d0c', '08', { inquiryScanInterval: 0x1000, inquiryScanWindow: 0x0012 }, '0010 1200'],
    ['readAuthenticationEnable', '1f0c', '05', { authenticationEnable: 0 }, '00'],
    ['readVoiceSetting', '250c', '06', { voiceSetting: 0x0060 }, '6000'],
    ['readLinkSupervisionTimeout', '360c', '08', { handle: 0x000b, linkSupervisionTimeout: 0x7d00 }, '0b00 007d'],
    ['writeLinkSupervisionTimeout', '370c', '06', { handle: 0x000b }, '0b00'],
    ['readNumberOfSupportedIac', '380c', '05', { numSupportedIac: 2 }, '02'],
    ['readCurrentIacLap', '390c', '08', { iacLap: [0x9e8b33] }, '01 338b9e'], // one LAP: GIAC
    ['readInquiryScanType', '420c', '05', { scanType: 1 }, '01'],
    ['readInquiryMode', '440c', '05', { inquiryMode: 2 }, '02'], // extended inquiry results
    ['readPageScanType', '460c', '05', { pageScanType: 1 }, '01'],
    ['readExtendedInquiryResponse', '510c', 'f5', { fecRequired: 1, extendedInquiryResponse: h(EIR) }, '01 ' + EIR],
    ['readSimplePairingMode', '550c', '05', { simplePairingMode: 1 }, '01'],
    ['readInquiryResponseTransmitPowerLevel', '580c', '05', { txPower: 4 }, '04'],
    ['readSecureConnectionsHostSupport', '790c', '05', { secureConnectionsHostSupport: 1 }, '01'],
    ['readDataBlockSize', '0a10', '0a', { maxAclDataPacketLength: 1021, dataBlockLength: 0, totalNumDataBlocks: 0 }, 'fd03 0000 0000'],
    // 0x100C: remote public key validation always performed (bit 0), 16-octet keys at most
    ['readLocalSimplePairingOptions', '0c10', '06', { simplePairingOptions: 0x01, maxEncryptionKeySize: 16 }, '01 10'],
    ['readLinkQuality', '0314', '07', { handle: 0x000b, linkQuality: 0xff }, '0b00 ff'],
    ['readEncryptionKeySize', '0814', '07', { connectionHandle: 0x0040, keySize: 16 }, '4000 10'],
    ['leTestEnd', '1f20', '06', { numPackets: 0x0123 }, '2301'],
    ['leRemoteConnectionParameterRequestNegativeReply', '2120', '06', { connectionHandle: 0x0040 }, '4000'],
    ['leReadRfPathCompensation', '4c20', '08', { rfTxPathCompensationValue: -15, rfRxPathCompensationValue: 20 }, 'f1ff 1400'],
  ] as Array<[string, string, string, object, string]>).map(([kind, op, len, ret, hex]) =>
    F({ type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: parseInt(op.slice(2) + op.slice(0, 2), 16),
      returnParameters: { kind, status: 0, ...ret } as never }, ...cc(op, len, '00', hex))),
];

export const EVENT_FIXTURES: Fixture[] = [
  F({ type: 'event', kind: 'inquiryComplete', status: 0 }, '04 01 01', '00'),
  F({ type: 'event', kind: 'connectionComplete', status: 0, connectionHandle: 0x000b, bdAddr: A, linkType: 1, encryptionEnabled: 0 },
    '04 03 0b', '00', '0b00', Aw, '01', '00'), // ACL link, not encrypted
  F({ type: 'event', kind: 'connectionRequest', bdAddr: A, classOfDevice: 0x5a020c, linkType: 1 }, '04 04 0a', Aw, '0c025a', '01'),
  F({ type: 'event', kind: 'disconnectionComplete', status: 0, connectionHandle: 0x0040, reason: 0x13 },
    '04 05 04', // Disconnection Complete, 4 parameter bytes
    '00',       // status Success
    '4000',     // handle 0x0040
    '13'),      // Remote User Terminated Connection
  F({ type: 'event', kind: 'remoteNameRequestComplete', status: 0, bdAddr: A, remoteName: NAME.bytes }, '04 07 ff', '00', Aw, NAME.hex),
  F({ type: 'event', kind: 'encryptionChange', status: 0, connectionHandle: 0x0040, encryptionEnabled: 1 }, '04 08 04', '00 4000 01'),
  F({ type: 'event', kind: 'readRemoteSupportedFeaturesComplete', status: 0, connectionHandle: 0x000b, lmpFeatures: 0x875b3fd8fe8ffeffn },
    '04 0b 0b', '00 0b00', 'ff fe 8f fe d8 3f 5b 87'),
  F({ type: 'event', kind: 'readRemoteVersionInformationComplete', status: 0, connectionHandle: 0x0040, version: 0x0b, manufacturerName: 0x000f, subversion: 0x410e },
    '04 0c 08', '00 4000', '0b', '0f00', '0e41'),
  F({ type: 'event', kind: 'commandStatus', status: 0, numHciCommandPackets: 1, commandOpcode: 0x200d },
    '04 0f 04', '00', '01', '0d20'), // pending, 1 credit, LE Create Connection
  F({ type: 'event', kind: 'hardwareError', hardwareCode: 0x0a }, '04 10 01', '0a'),
  F({ type: 'event', kind: 'roleChange', status: 0, bdAddr: A, newRole: 1 }, '04 12 08', '00', Aw, '01'),
  F({ type: 'event', kind: 'numberOfCompletedPackets', handles: [{ connectionHandle: 0x0040, numCompletedPackets: 1 }, { connectionHandle: 0x0041, numCompletedPackets: 2 }] },
    '04 13 09', '02', // two handles, entries interleaved handle/count
    '4000 0100',      // 0x0040: 1 packet
    '4100 0200'),     // 0x0041: 2 packets
  F({ type: 'event', kind: 'modeChange', status: 0, connectionHandle: 0x000b, currentMode: 2, interval: 0x20 }, '04 14 06', '00 0b00 02 2000'),
  F({ type: 'event', kind: 'dataBufferOverflow', linkType: 1 }, '04 1a 01', '01'),
  F({ type: 'event', kind: 'maxSlotsChange', connectionHandle: 0x000b, lmpMaxSlots: 5 }, '04 1b 03', '0b00 05'),
  F({ type: 'event', kind: 'encryptionKeyRefreshComplete', status: 0, connectionHandle: 0x0040 }, '04 30 03', '00 4000'),
  F({ type: 'event', kind: 'authenticatedPayloadTimeoutExpired', connectionHandle: 0x0040 }, '04 57 02', '4000'),
  F({ type: 'event', kind: 'encryptionChangeV2', status: 0, connectionHandle: 0x0040, encryptionEnabled: 1, encryptionKeySize: 16 },
    '04 59 05', '00 4000', '01', '10'), // encryption on (AES-CCM), key size 16
  F({ type: 'event', kind: 'vendor', code: 0xff, data: h('570102') }, '04 ff 03', '57 0102'),
  F({ type: 'event', kind: 'unknown', code: 0xfe, data: h('00') }, '04 fe 01', '00'),
  // --- BR/EDR inquiry and pairing events Android logs carry (issue 8)
  F({ type: 'event', kind: 'inquiryResult', responses: [{ bdAddr: A, pageScanRepetitionMode: 1, reserved: 0, classOfDevice: 0x5a020c, clockOffset: 0x1234 }] },
    '04 02 0f', '01', Aw, '01', '0000', '0c025a', '3412'),
  F({ type: 'event', kind: 'authenticationComplete', status: 0, connectionHandle: 0x000b }, '04 06 03', '00', '0b00'),
  F({ type: 'event', kind: 'readClockOffsetComplete', status: 0, connectionHandle: 0x000b, clockOffset: 0x1234 }, '04 1c 05', '00', '0b00', '3412'),
  F({ type: 'event', kind: 'linkKeyRequest', bdAddr: A }, '04 17 06', Aw),
  F({ type: 'event', kind: 'linkKeyNotification', bdAddr: A, linkKey: h(KEY), keyType: 4 }, '04 18 17', Aw, KEY, '04'), // unauthenticated P-192
  F({ type: 'event', kind: 'pageScanRepetitionModeChange', bdAddr: A, pageScanRepetitionMode: 1 }, '04 20 07', Aw, '01'),
  F({ type: 'event', kind: 'inquiryResultWithRssi', responses: [{ bdAddr: A, pageScanRepetitionMode: 1, reserved: 0, classOfDevice: 0x5a020c, clockOffset: 0x1234, rssi: -60 }] },
    '04 22 0f', '01', Aw, '01', '00', '0c025a', '3412', 'c4'),
  F({ type: 'event', kind: 'readRemoteExtendedFeaturesComplete', status: 0, connectionHandle: 0x000b, pageNumber: 1, maxPageNumber: 2, extendedLmpFeatures: 0x0fn },
    '04 23 0d', '00', '0b00', '01', '02', '0f00000000000000'),
  // Event 0x2F, 255 octets: 1 response, address, PSRM R1, reserved, CoD, clock offset, RSSI -60 dBm, 240 octets of EIR
  F({ type: 'event', kind: 'extendedInquiryResult', numResponses: 1, bdAddr: A, pageScanRepetitionMode: 1, reserved: 0, classOfDevice: 0x5a020c,
    clockOffset: 0x1234, rssi: -60, extendedInquiryResponse: h(EIR) },
    '04 2f ff', '01', Aw, '01', '00', '0c025a', '3412', 'c4', EIR),
  F({ type: 'event', kind: 'ioCapabilityRequest', bdAddr: A }, '04 31 06', Aw),
  F({ type: 'event', kind: 'ioCapabilityResponse', bdAddr: A, ioCapability: 1, oobDataPresent: 0, authenticationRequirements: 0x03 },
    '04 32 09', Aw, '01', '00', '03'), // DisplayYesNo, no OOB, MITM + no bonding
  F({ type: 'event', kind: 'userConfirmationRequest', bdAddr: A, numericValue: 123456 }, '04 33 0a', Aw, '40e20100'),
  F({ type: 'event', kind: 'simplePairingComplete', status: 0, bdAddr: A }, '04 36 07', '00', Aw),
  F({ type: 'event', kind: 'remoteHostSupportedFeaturesNotification', bdAddr: A, hostSupportedFeatures: 0x0fn }, '04 3d 0e', Aw, '0f00000000000000'),
];

export const LE_EVENT_FIXTURES: Fixture[] = [
  F({ type: 'event', kind: 'leConnectionComplete', status: 0, connectionHandle: 0x0040, role: 0, peerAddressType: 1, peerAddress: A, connectionInterval: 0x28, peripheralLatency: 0, supervisionTimeout: 0x2a, centralClockAccuracy: 1 },
    '04 3e 13', '01',  // LE Meta, sub-event LE Connection Complete
    '00 4000 00 01', Aw, // success, handle 0x0040, central, peer random
    '2800 0000 2a00 01'),
  F({ type: 'event', kind: 'leAdvertisingReport', reports: [{ eventType: 0, addressType: 1, address: A, data: h('020106'), rssi: -60 }] },
    '04 3e 0f', '02',
    '01',          // one report
    '00 01', Aw,   // ADV_IND, random address
    '03 020106',   // 3 bytes of AD: Flags
    'c4'),         // RSSI -60 dBm
  F({ type: 'event', kind: 'leAdvertisingReport', reports: [
    { eventType: 0, addressType: 0, address: B, data: new Uint8Array(0), rssi: -60 },
    { eventType: 4, addressType: 1, address: A, data: h('0201'), rssi: -80 }] },
    '04 3e 18', '02', '02', // two reports, laid out row-wise
    '00 00', Bw, '00', 'c4',
    '04 01', Aw, '02 0201', 'b0'), // SCAN_RSP, 2 bytes, -80 dBm
  F({ type: 'event', kind: 'leConnectionUpdateComplete', status: 0, connectionHandle: 0x0040, connectionInterval: 6, peripheralLatency: 0, supervisionTimeout: 200 },
    '04 3e 0a', '03', '00 4000', '0600 0000 c800'),
  F({ type: 'event', kind: 'leReadRemoteFeaturesComplete', status: 0, connectionHandle: 0x0040, leFeatures: 0x149ffn },
    '04 3e 0c', '04', '00 4000', 'ff 49 01 00 00 00 00 00'),
  F({ type: 'event', kind: 'leLongTermKeyRequest', connectionHandle: 0x0040, randomNumber: h('0102030405060708'), encryptedDiversifier: 0x1234 },
    '04 3e 0d', '05', '4000', '0102030405060708', '3412'),
  F({ type: 'event', kind: 'leRemoteConnectionParameterRequest', connectionHandle: 0x0040, intervalMin: 6, intervalMax: 12, maxLatency: 0, timeout: 200 },
    '04 3e 0b', '06', '4000', '0600 0c00 0000 c800'),
  F({ type: 'event', kind: 'leDataLengthChange', connectionHandle: 0x0040, maxTxOctets: 251, maxTxTime: 2120, maxRxOctets: 251, maxRxTime: 2120 },
    '04 3e 0b', '07', '4000', 'fb00 4808', 'fb00 4808'),
  F({ type: 'event', kind: 'leReadLocalP256PublicKeyComplete', status: 0, localP256PublicKey: h(P256) }, '04 3e 42', '08', '00', P256),
  F({ type: 'event', kind: 'leGenerateDhkeyComplete', status: 0, dhKey: h(DH) }, '04 3e 22', '09', '00', DH),
  F({ type: 'event', kind: 'leEnhancedConnectionComplete', status: 0, connectionHandle: 0x0040, role: 0, peerAddressType: 1, peerAddress: A, localResolvablePrivateAddress: Z, peerResolvablePrivateAddress: Z, connectionInterval: 0x28, peripheralLatency: 0, supervisionTimeout: 0x2a, centralClockAccuracy: 1 },
    '04 3e 1f', '0a', '00 4000 00 01', Aw, Zw, Zw, '2800 0000 2a00 01'),
  F({ type: 'event', kind: 'leDirectedAdvertisingReport', reports: [{ eventType: 1, addressType: 1, address: A, directAddressType: 1, directAddress: B, rssi: -60 }] },
    '04 3e 12', '0b', '01', '01 01', Aw, '01', Bw, 'c4'),
  F({ type: 'event', kind: 'lePhyUpdateComplete', status: 0, connectionHandle: 0x0040, txPhy: 2, rxPhy: 2 }, '04 3e 06', '0c', '00 4000', '02 02'),
  F({ type: 'event', kind: 'leExtendedAdvertisingReport', reports: [{ eventType: 0x0013, addressType: 1, address: A, primaryPhy: 1, secondaryPhy: 0, advertisingSid: 0xff, txPower: 127, rssi: -60, periodicAdvertisingInterval: 0, directAddressType: 0, directAddress: Z, data: h('020106') }] },
    '04 3e 1d', '0d', '01',
    '1300',         // event type: connectable, scannable, legacy, data complete
    '01', Aw,       // random address
    '01 00 ff',     // primary 1M, no secondary, no SID
    '7f c4',        // TX power unavailable, RSSI -60
    '0000',         // no periodic advertising
    '00', Zw,       // direct address (unused)
    '03 020106'),   // 3 bytes of AD
  F({ type: 'event', kind: 'lePeriodicAdvertisingSyncEstablished', status: 0, syncHandle: 1, advertisingSid: 1, advertiserAddressType: 1, advertiserAddress: A, advertiserPhy: 2, periodicAdvertisingInterval: 0x50, advertiserClockAccuracy: 5 },
    '04 3e 10', '0e', '00 0100 01 01', Aw, '02 5000 05'),
  F({ type: 'event', kind: 'lePeriodicAdvertisingReport', syncHandle: 1, txPower: 127, rssi: -60, cteType: 0xff, dataStatus: 0, data: h('abcd') },
    '04 3e 0a', '0f', '0100', '7f c4', 'ff 00', '02 abcd'),
  F({ type: 'event', kind: 'lePeriodicAdvertisingSyncLost', syncHandle: 1 }, '04 3e 03', '10', '0100'),
  F({ type: 'event', kind: 'leScanTimeout' }, '04 3e 01', '11'),
  F({ type: 'event', kind: 'leAdvertisingSetTerminated', status: 0, advertisingHandle: 0, connectionHandle: 0x0040, numCompletedExtendedAdvertisingEvents: 0 },
    '04 3e 06', '12', '00 00 4000 00'),
  F({ type: 'event', kind: 'leScanRequestReceived', advertisingHandle: 0, scannerAddressType: 1, scannerAddress: A }, '04 3e 09', '13', '00 01', Aw),
  F({ type: 'event', kind: 'leChannelSelectionAlgorithm', connectionHandle: 0x0040, channelSelectionAlgorithm: 1 }, '04 3e 04', '14', '4000 01'),
  F({ type: 'event', kind: 'leEnhancedConnectionCompleteV2', status: 0, connectionHandle: 0x0040, role: 0, peerAddressType: 1, peerAddress: A, localResolvablePrivateAddress: Z, peerResolvablePrivateAddress: Z, connectionInterval: 0x28, peripheralLatency: 0, supervisionTimeout: 0x2a, centralClockAccuracy: 1, advertisingHandle: 0xff, syncHandle: 0xffff },
    '04 3e 22', '29', '00 4000 00 01', Aw, Zw, Zw, '2800 0000 2a00 01',
    'ff ffff'), // v2 appends Advertising_Handle and Sync_Handle (none)
  F({ type: 'event', kind: 'unknown', code: 0x3e, subeventCode: 0x7f, data: h('00') }, '04 3e 02', '7f 00'),
];

export const DATA_FIXTURES: Fixture[] = [
  F({ type: 'acl', handle: 0x0040, pb: 2, bc: 0, data: h('0300040002 1702') },
    '02', '4020',   // handle 0x040, PB 0b10 (first automatically flushable), BC 0
    '0700',         // 7 bytes
    '0300 0400 02 1702'), // L2CAP len 3, CID 4 (ATT), Exchange MTU Request 535
  F({ type: 'acl', handle: 0x0edc, pb: 2, bc: 0, data: h('aa') }, '02 dc2e 0100 aa'), // Qualcomm debug handle 0x0EDC
  F({ type: 'acl', handle: 0x0041, pb: 1, bc: 0, data: h('0102') }, '02 4110 0200 0102'), // continuation fragment
  F({ type: 'sco', handle: 0x0001, packetStatus: 0, data: h('aabb') }, '03 0100 02 aabb'),
  F({ type: 'iso', handle: 0x0001, pb: 2, ts: true, data: h('010203') }, '05 0160 0300 010203'), // complete SDU with timestamp
];

export const UNKNOWN_H4_FIXTURE: Fixture = F({ type: 'unknown', indicator: 0x09, data: h('0102') }, '09 0102');

export const ALL_FIXTURES: Fixture[] = [
  ...COMMAND_FIXTURES, ...RETURN_FIXTURES, ...EVENT_FIXTURES, ...LE_EVENT_FIXTURES, ...DATA_FIXTURES,
];
