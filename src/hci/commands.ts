import type { ByteReader } from '../bytes/reader.js';
import type { ByteWriter } from '../bytes/writer.js';
import { hex16, toHex } from '../bytes/hex.js';
import {
  arrayOf, bdAddr, bytes, fmtValue, i16, i8, lengthPrefixed, rest, struct, u16, u24, u64, u8, x16, x24, x8,
  type Field, type Fields, type Infer,
} from '../codec/field.js';
import { bare, defineTable, framedCodec, type Framing, type RowInfo, type RowSpec } from '../codec/table.js';
import { EncodeError } from '../errors.js';
import { NOP_OPCODE, OGF, ogfOf, opcodeOf } from './constants.js';
import { statusField } from './status.js';
import { ADV_EVENT_PROPERTIES, LE_FEATURES } from './bit-fields.js';

/**
 * The HCI command table (Core Vol 4, Part E, 7.1–7.8): one row per command a central host sends. Each
 * row gives OGF/OCF, the spec name and section, the parameter fields, how the command completes
 * (Command Complete, Command Status, or no event at all) and the typed return parameters that come
 * back in Command Complete. Encoders, decoders, sizes, describe() and the TypeScript unions
 * (`HciCommand`, `CommandReturn<K>`) are derived from these rows.
 *
 * Array parameters are laid out row-wise (all fields of element 0, then element 1, …), as every
 * controller and the Core spec since 5.x do (Vol 4, Part E, 5.2).
 */

// ---------------------------------------------------------------------------------------------
// Custom fields used by command rows.

/**
 * A fixed-size block whose first byte says how many of the following bytes are significant, padded
 * with zeros (LE Set Advertising Data / Scan Response Data: 1 + 31 octets, Vol 4, Part E, 7.8.7).
 * Decodes to the significant bytes only.
 */
export function paddedData(capacity: number): Field<Uint8Array> {
  return {
    read: r => {
      const n = r.u8();
      if (n > capacity) r.fail(`length ${n} exceeds ${capacity}`, r.offset - 1);
      const v = r.view(n);
      r.skip(capacity - n);
      return v;
    },
    write: (w, v) => {
      if (v.length > capacity) throw new EncodeError(w.layer, w.what, `data of ${v.length} bytes exceeds ${capacity}`);
      w.u8(v.length).bytesOf(v).fill(capacity - v.length);
    },
    size: () => 1 + capacity,
    fixed: 1 + capacity,
    fmt: v => toHex(v),
  };
}

/** A fixed-size NUL-padded UTF-8 name (Local_Name, 248 octets, Vol 4, Part E, 7.3.11): kept as bytes. */
export function nameBytes(n: number): Field<Uint8Array> {
  const base = bytes(n);
  return {
    ...base,
    fmt: v => {
      const end = v.indexOf(0);
      return JSON.stringify(new TextDecoder().decode(end < 0 ? v : v.subarray(0, end)));
    },
  };
}

/**
 * A PHYs bitmask followed by one parameter block per bit set, lowest bit first (LE Set Extended Scan
 * Parameters, Vol 4, Part E, 7.8.64; LE Extended Create Connection, 7.8.66). Decodes to one entry per
 * PHY, each carrying its PHY bit, so the bitmask and the array can never disagree.
 */
export function phyArray<T extends object>(element: Field<T>): Field<Array<{ phy: number } & T>> {
  return {
    read: r => {
      const mask = r.u8();
      const out: Array<{ phy: number } & T> = [];
      for (let bit = 0; bit < 8; bit++) {
        if (mask & (1 << bit)) out.push({ phy: 1 << bit, ...element.read(r) });
      }
      return out;
    },
    write: (w, v) => {
      let mask = 0;
      for (const e of v) {
        if (!Number.isInteger(e.phy) || e.phy <= mask || (e.phy & (e.phy - 1)) !== 0 || e.phy > 0x80) {
          throw new EncodeError(w.layer, w.what, `PHY entries must be single bits in ascending order (got ${e.phy})`);
        }
        mask |= e.phy;
      }
      w.u8(mask);
      for (const e of v) element.write(w, e);
    },
    size: v => { let n = 1; for (const e of v) n += element.size(e); return n; },
    fixed: 1,
    fmt: v => '[' + v.map(e => `phy=${e.phy} ${fmtValue(element, e)}`).join(', ') + ']',
  };
}

// ---------------------------------------------------------------------------------------------
// The table.

interface CommandRow extends RowInfo {
  readonly ogf: number;
  readonly ocf: number;
  /** How the controller answers: Command Complete (default), Command Status, or no event. */
  readonly completes?: 'status' | 'none';
  readonly params: Fields;
  /** Return parameters of Command Complete; defaults to { status }. */
  readonly returns?: Fields;
}

const S = { status: statusField } as const;
/** A signed value in units of 0.1 dB (RF path compensation, Vol 4, Part E, 7.8.75). */
const dB01: Field<number> = { ...i16, fmt: v => `${v} (${(v / 10).toFixed(1)} dB)` };
const LC = OGF.linkControl, CB = OGF.controllerBaseband, IP = OGF.informational, SP = OGF.statusParameters, LE = OGF.le;

const connParams = {
  connectionIntervalMin: u16, connectionIntervalMax: u16, maxLatency: u16, supervisionTimeout: u16,
  minCeLength: u16, maxCeLength: u16,
} as const;

export const HCI_COMMANDS = {
  // --- Link Control (OGF 0x01), Vol 4, Part E, 7.1
  inquiry: { ogf: LC, ocf: 0x0001, name: 'Inquiry', spec: 'Vol 4, Part E, 7.1.1', completes: 'status',
    params: { lap: x24, inquiryLength: u8, numResponses: u8 } },
  inquiryCancel: { ogf: LC, ocf: 0x0002, name: 'Inquiry Cancel', spec: 'Vol 4, Part E, 7.1.2', params: {} },
  createConnection: { ogf: LC, ocf: 0x0005, name: 'Create Connection', spec: 'Vol 4, Part E, 7.1.5', completes: 'status',
    params: { bdAddr, packetType: x16, pageScanRepetitionMode: u8, reserved: u8, clockOffset: x16, allowRoleSwitch: u8 } },
  disconnect: { ogf: LC, ocf: 0x0006, name: 'Disconnect', spec: 'Vol 4, Part E, 7.1.6', completes: 'status',
    params: { connectionHandle: x16, reason: statusField } },
  createConnectionCancel: { ogf: LC, ocf: 0x0008, name: 'Create Connection Cancel', spec: 'Vol 4, Part E, 7.1.7',
    params: { bdAddr }, returns: { ...S, bdAddr } },
  acceptConnectionRequest: { ogf: LC, ocf: 0x0009, name: 'Accept Connection Request', spec: 'Vol 4, Part E, 7.1.8',
    completes: 'status', params: { bdAddr, role: u8 } },
  rejectConnectionRequest: { ogf: LC, ocf: 0x000a, name: 'Reject Connection Request', spec: 'Vol 4, Part E, 7.1.9',
    completes: 'status', params: { bdAddr, reason: statusField } },
  remoteNameRequest: { ogf: LC, ocf: 0x0019, name: 'Remote Name Request', spec: 'Vol 4, Part E, 7.1.19', completes: 'status',
    params: { bdAddr, pageScanRepetitionMode: u8, reserved: u8, clockOffset: x16 } },
  remoteNameRequestCancel: { ogf: LC, ocf: 0x001a, name: 'Remote Name Request Cancel', spec: 'Vol 4, Part E, 7.1.20',
    params: { bdAddr }, returns: { ...S, bdAddr } },
  readRemoteSupportedFeatures: { ogf: LC, ocf: 0x001b, name: 'Read Remote Supported Features', spec: 'Vol 4, Part E, 7.1.21',
    completes: 'status', params: { connectionHandle: x16 } },
  readRemoteVersionInformation: { ogf: LC, ocf: 0x001d, name: 'Read Remote Version Information', spec: 'Vol 4, Part E, 7.1.23',
    completes: 'status', params: { connectionHandle: x16 } },

  // --- Link Policy (OGF 0x02), Vol 4, Part E, 7.2
  writeDefaultLinkPolicySettings: { ogf: OGF.linkPolicy, ocf: 0x000f, name: 'Write Default Link Policy Settings',
    spec: 'Vol 4, Part E, 7.2.12', params: { defaultLinkPolicySettings: x16 } },

  // --- Controller & Baseband (OGF 0x03), Vol 4, Part E, 7.3
  setEventMask: { ogf: CB, ocf: 0x0001, name: 'Set Event Mask', spec: 'Vol 4, Part E, 7.3.1', params: { eventMask: u64 } },
  reset: { ogf: CB, ocf: 0x0003, name: 'Reset', spec: 'Vol 4, Part E, 7.3.2', params: {} },
  // Android sends Set Event Filter (Clear All Filters) during init. The condition's layout depends on
  // Filter_Type and Filter_Condition_Type, so everything after Filter_Type is kept as bytes.
  setEventFilter: { ogf: CB, ocf: 0x0005, name: 'Set Event Filter', spec: 'Vol 4, Part E, 7.3.3',
    params: { filterType: u8, filterCondition: rest } },
  flush: { ogf: CB, ocf: 0x0008, name: 'Flush', spec: 'Vol 4, Part E, 7.3.4',
    params: { connectionHandle: x16 }, returns: { ...S, connectionHandle: x16 } },
  readPinType: { ogf: CB, ocf: 0x0009, name: 'Read PIN Type', spec: 'Vol 4, Part E, 7.3.5',
    params: {}, returns: { ...S, pinType: u8 } },
  writePinType: { ogf: CB, ocf: 0x000a, name: 'Write PIN Type', spec: 'Vol 4, Part E, 7.3.6', params: { pinType: u8 } },
  readStoredLinkKey: { ogf: CB, ocf: 0x000d, name: 'Read Stored Link Key', spec: 'Vol 4, Part E, 7.3.8',
    params: { bdAddr, readAllFlag: u8 }, returns: { ...S, maxNumKeys: u16, numKeysRead: u16 } },
  deleteStoredLinkKey: { ogf: CB, ocf: 0x0012, name: 'Delete Stored Link Key', spec: 'Vol 4, Part E, 7.3.10',
    params: { bdAddr, deleteAllFlag: u8 }, returns: { ...S, numKeysDeleted: u16 } },
  writeLocalName: { ogf: CB, ocf: 0x0013, name: 'Write Local Name', spec: 'Vol 4, Part E, 7.3.11',
    params: { localName: nameBytes(248) } },
  readLocalName: { ogf: CB, ocf: 0x0014, name: 'Read Local Name', spec: 'Vol 4, Part E, 7.3.12',
    params: {}, returns: { ...S, localName: nameBytes(248) } },
  readConnectionAcceptTimeout: { ogf: CB, ocf: 0x0015, name: 'Read Connection Accept Timeout', spec: 'Vol 4, Part E, 7.3.13',
    params: {}, returns: { ...S, connectionAcceptTimeout: u16 } },
  writeConnectionAcceptTimeout: { ogf: CB, ocf: 0x0016, name: 'Write Connection Accept Timeout',
    spec: 'Vol 4, Part E, 7.3.14', params: { connectionAcceptTimeout: u16 } },
  readPageTimeout: { ogf: CB, ocf: 0x0017, name: 'Read Page Timeout', spec: 'Vol 4, Part E, 7.3.15',
    params: {}, returns: { ...S, pageTimeout: u16 } },
  writePageTimeout: { ogf: CB, ocf: 0x0018, name: 'Write Page Timeout', spec: 'Vol 4, Part E, 7.3.16',
    params: { pageTimeout: u16 } },
  readScanEnable: { ogf: CB, ocf: 0x0019, name: 'Read Scan Enable', spec: 'Vol 4, Part E, 7.3.17',
    params: {}, returns: { ...S, scanEnable: u8 } },
  writeScanEnable: { ogf: CB, ocf: 0x001a, name: 'Write Scan Enable', spec: 'Vol 4, Part E, 7.3.18',
    params: { scanEnable: u8 } },
  readPageScanActivity: { ogf: CB, ocf: 0x001b, name: 'Read Page Scan Activity', spec: 'Vol 4, Part E, 7.3.19',
    params: {}, returns: { ...S, pageScanInterval: u16, pageScanWindow: u16 } },
  writePageScanActivity: { ogf: CB, ocf: 0x001c, name: 'Write Page Scan Activity', spec: 'Vol 4, Part E, 7.3.20',
    params: { pageScanInterval: u16, pageScanWindow: u16 } },
  readInquiryScanActivity: { ogf: CB, ocf: 0x001d, name: 'Read Inquiry Scan Activity', spec: 'Vol 4, Part E, 7.3.21',
    params: {}, returns: { ...S, inquiryScanInterval: u16, inquiryScanWindow: u16 } },
  writeInquiryScanActivity: { ogf: CB, ocf: 0x001e, name: 'Write Inquiry Scan Activity', spec: 'Vol 4, Part E, 7.3.22',
    params: { inquiryScanInterval: u16, inquiryScanWindow: u16 } },
  readAuthenticationEnable: { ogf: CB, ocf: 0x001f, name: 'Read Authentication Enable', spec: 'Vol 4, Part E, 7.3.23',
    params: {}, returns: { ...S, authenticationEnable: u8 } },
  writeAuthenticationEnable: { ogf: CB, ocf: 0x0020, name: 'Write Authentication Enable', spec: 'Vol 4, Part E, 7.3.24',
    params: { authenticationEnable: u8 } },
  readClassOfDevice: { ogf: CB, ocf: 0x0023, name: 'Read Class of Device', spec: 'Vol 4, Part E, 7.3.25',
    params: {}, returns: { ...S, classOfDevice: x24 } },
  writeClassOfDevice: { ogf: CB, ocf: 0x0024, name: 'Write Class of Device', spec: 'Vol 4, Part E, 7.3.26',
    params: { classOfDevice: x24 } },
  readVoiceSetting: { ogf: CB, ocf: 0x0025, name: 'Read Voice Setting', spec: 'Vol 4, Part E, 7.3.27',
    params: {}, returns: { ...S, voiceSetting: x16 } },
  writeVoiceSetting: { ogf: CB, ocf: 0x0026, name: 'Write Voice Setting', spec: 'Vol 4, Part E, 7.3.28',
    params: { voiceSetting: x16 } },
  readTransmitPowerLevel: { ogf: CB, ocf: 0x002d, name: 'Read Transmit Power Level', spec: 'Vol 4, Part E, 7.3.35',
    params: { connectionHandle: x16, powerLevelType: u8 }, returns: { ...S, connectionHandle: x16, txPowerLevel: i8 } },
  setControllerToHostFlowControl: { ogf: CB, ocf: 0x0031, name: 'Set Controller To Host Flow Control',
    spec: 'Vol 4, Part E, 7.3.38', params: { flowControlEnable: u8 } },
  hostBufferSize: { ogf: CB, ocf: 0x0033, name: 'Host Buffer Size', spec: 'Vol 4, Part E, 7.3.39',
    params: { hostAclDataPacketLength: u16, hostSynchronousDataPacketLength: u8, hostTotalNumAclDataPackets: u16,
      hostTotalNumSynchronousDataPackets: u16 } },
  // Normally answered by no event at all (Vol 4, Part E, 7.3.40: "no Command Complete event").
  hostNumberOfCompletedPackets: { ogf: CB, ocf: 0x0035, name: 'Host Number Of Completed Packets',
    spec: 'Vol 4, Part E, 7.3.40', completes: 'none',
    params: { handles: arrayOf(u8, struct({ connectionHandle: x16, hostNumOfCompletedPackets: u16 })) } },
  readLinkSupervisionTimeout: { ogf: CB, ocf: 0x0036, name: 'Read Link Supervision Timeout', spec: 'Vol 4, Part E, 7.3.41',
    params: { handle: x16 }, returns: { ...S, handle: x16, linkSupervisionTimeout: u16 } },
  writeLinkSupervisionTimeout: { ogf: CB, ocf: 0x0037, name: 'Write Link Supervision Timeout', spec: 'Vol 4, Part E, 7.3.42',
    params: { handle: x16, linkSupervisionTimeout: u16 }, returns: { ...S, handle: x16 } },
  readNumberOfSupportedIac: { ogf: CB, ocf: 0x0038, name: 'Read Number Of Supported IAC', spec: 'Vol 4, Part E, 7.3.43',
    params: {}, returns: { ...S, numSupportedIac: u8 } },
  readCurrentIacLap: { ogf: CB, ocf: 0x0039, name: 'Read Current IAC LAP', spec: 'Vol 4, Part E, 7.3.44',
    params: {}, returns: { ...S, iacLap: arrayOf(u8, x24) } },
  writeCurrentIacLap: { ogf: CB, ocf: 0x003a, name: 'Write Current IAC LAP', spec: 'Vol 4, Part E, 7.3.45',
    params: { iacLap: arrayOf(u8, x24) } },
  readInquiryScanType: { ogf: CB, ocf: 0x0042, name: 'Read Inquiry Scan Type', spec: 'Vol 4, Part E, 7.3.47',
    params: {}, returns: { ...S, scanType: u8 } },
  writeInquiryScanType: { ogf: CB, ocf: 0x0043, name: 'Write Inquiry Scan Type', spec: 'Vol 4, Part E, 7.3.48',
    params: { scanType: u8 } },
  readInquiryMode: { ogf: CB, ocf: 0x0044, name: 'Read Inquiry Mode', spec: 'Vol 4, Part E, 7.3.49',
    params: {}, returns: { ...S, inquiryMode: u8 } },
  writeInquiryMode: { ogf: CB, ocf: 0x0045, name: 'Write Inquiry Mode', spec: 'Vol 4, Part E, 7.3.50',
    params: { inquiryMode: u8 } },
  readPageScanType: { ogf: CB, ocf: 0x0046, name: 'Read Page Scan Type', spec: 'Vol 4, Part E, 7.3.51',
    params: {}, returns: { ...S, pageScanType: u8 } },
  writePageScanType: { ogf: CB, ocf: 0x0047, name: 'Write Page Scan Type', spec: 'Vol 4, Part E, 7.3.52',
    params: { pageScanType: u8 } },
  readExtendedInquiryResponse: { ogf: CB, ocf: 0x0051, name: 'Read Extended Inquiry Response', spec: 'Vol 4, Part E, 7.3.55',
    params: {}, returns: { ...S, fecRequired: u8, extendedInquiryResponse: bytes(240) } },
  writeExtendedInquiryResponse: { ogf: CB, ocf: 0x0052, name: 'Write Extended Inquiry Response',
    spec: 'Vol 4, Part E, 7.3.56', params: { fecRequired: u8, extendedInquiryResponse: bytes(240) } },
  readSimplePairingMode: { ogf: CB, ocf: 0x0055, name: 'Read Simple Pairing Mode', spec: 'Vol 4, Part E, 7.3.58',
    params: {}, returns: { ...S, simplePairingMode: u8 } },
  writeSimplePairingMode: { ogf: CB, ocf: 0x0056, name: 'Write Simple Pairing Mode', spec: 'Vol 4, Part E, 7.3.59',
    params: { simplePairingMode: u8 } },
  readInquiryResponseTransmitPowerLevel: { ogf: CB, ocf: 0x0058, name: 'Read Inquiry Response Transmit Power Level',
    spec: 'Vol 4, Part E, 7.3.61', params: {}, returns: { ...S, txPower: i8 } },
  writeInquiryTransmitPowerLevel: { ogf: CB, ocf: 0x0059, name: 'Write Inquiry Transmit Power Level',
    spec: 'Vol 4, Part E, 7.3.62', params: { txPower: i8 } },
  readDefaultErroneousDataReporting: { ogf: CB, ocf: 0x005a, name: 'Read Default Erroneous Data Reporting',
    spec: 'Vol 4, Part E, 7.3.64', params: {}, returns: { ...S, erroneousDataReporting: u8 } },
  writeDefaultErroneousDataReporting: { ogf: CB, ocf: 0x005b, name: 'Write Default Erroneous Data Reporting',
    spec: 'Vol 4, Part E, 7.3.65', params: { erroneousDataReporting: u8 } },
  setEventMaskPage2: { ogf: CB, ocf: 0x0063, name: 'Set Event Mask Page 2', spec: 'Vol 4, Part E, 7.3.69',
    params: { eventMaskPage2: u64 } },
  readLeHostSupport: { ogf: CB, ocf: 0x006c, name: 'Read LE Host Support', spec: 'Vol 4, Part E, 7.3.78',
    params: {}, returns: { ...S, leSupportedHost: u8, unused: u8 } },
  writeLeHostSupport: { ogf: CB, ocf: 0x006d, name: 'Write LE Host Support', spec: 'Vol 4, Part E, 7.3.79',
    params: { leSupportedHost: u8, unused: u8 } },
  readSecureConnectionsHostSupport: { ogf: CB, ocf: 0x0079, name: 'Read Secure Connections Host Support',
    spec: 'Vol 4, Part E, 7.3.91', params: {}, returns: { ...S, secureConnectionsHostSupport: u8 } },
  writeSecureConnectionsHostSupport: { ogf: CB, ocf: 0x007a, name: 'Write Secure Connections Host Support',
    spec: 'Vol 4, Part E, 7.3.92', params: { secureConnectionsHostSupport: u8 } },
  readAuthenticatedPayloadTimeout: { ogf: CB, ocf: 0x007b, name: 'Read Authenticated Payload Timeout',
    spec: 'Vol 4, Part E, 7.3.93', params: { connectionHandle: x16 },
    returns: { ...S, connectionHandle: x16, authenticatedPayloadTimeout: u16 } },
  writeAuthenticatedPayloadTimeout: { ogf: CB, ocf: 0x007c, name: 'Write Authenticated Payload Timeout',
    spec: 'Vol 4, Part E, 7.3.94', params: { connectionHandle: x16, authenticatedPayloadTimeout: u16 },
    returns: { ...S, connectionHandle: x16 } },
  configureDataPath: { ogf: CB, ocf: 0x0083, name: 'Configure Data Path', spec: 'Vol 4, Part E, 7.3.101',
    params: { dataPathDirection: u8, dataPathId: u8, vendorSpecificConfig: lengthPrefixed(u8) } },
  setMinEncryptionKeySize: { ogf: CB, ocf: 0x0084, name: 'Set Min Encryption Key Size', spec: 'Vol 4, Part E, 7.3.102',
    params: { minEncryptionKeySize: u8 } },

  // --- Informational parameters (OGF 0x04), Vol 4, Part E, 7.4
  readLocalVersionInformation: { ogf: IP, ocf: 0x0001, name: 'Read Local Version Information', spec: 'Vol 4, Part E, 7.4.1',
    params: {}, returns: { ...S, hciVersion: u8, hciSubversion: x16, lmpVersion: u8, manufacturer: x16, lmpSubversion: x16 } },
  readLocalSupportedCommands: { ogf: IP, ocf: 0x0002, name: 'Read Local Supported Commands', spec: 'Vol 4, Part E, 7.4.2',
    params: {}, returns: { ...S, supportedCommands: bytes(64) } },
  readLocalSupportedFeatures: { ogf: IP, ocf: 0x0003, name: 'Read Local Supported Features', spec: 'Vol 4, Part E, 7.4.3',
    params: {}, returns: { ...S, lmpFeatures: u64 } },
  readLocalExtendedFeatures: { ogf: IP, ocf: 0x0004, name: 'Read Local Extended Features', spec: 'Vol 4, Part E, 7.4.4',
    params: { pageNumber: u8 }, returns: { ...S, pageNumber: u8, maxPageNumber: u8, extendedLmpFeatures: u64 } },
  readBufferSize: { ogf: IP, ocf: 0x0005, name: 'Read Buffer Size', spec: 'Vol 4, Part E, 7.4.5',
    params: {}, returns: { ...S, aclDataPacketLength: u16, synchronousDataPacketLength: u8, totalNumAclDataPackets: u16,
      totalNumSynchronousDataPackets: u16 } },
  readBdAddr: { ogf: IP, ocf: 0x0009, name: 'Read BD_ADDR', spec: 'Vol 4, Part E, 7.4.6',
    params: {}, returns: { ...S, bdAddr } },
  readDataBlockSize: { ogf: IP, ocf: 0x000a, name: 'Read Data Block Size', spec: 'Vol 4, Part E, 7.4.7',
    params: {}, returns: { ...S, maxAclDataPacketLength: u16, dataBlockLength: u16, totalNumDataBlocks: u16 } },
  readLocalSupportedCodecs: { ogf: IP, ocf: 0x000b, name: 'Read Local Supported Codecs', spec: 'Vol 4, Part E, 7.4.8',
    params: {}, returns: { ...S, supportedCodecs: arrayOf(u8, x8),
      vendorSpecificCodecs: arrayOf(u8, struct({ companyId: x16, vendorCodecId: x16 })) } },

  // Real Android logs carry it (Core 5.2+): bit 0 of the options says the controller always checks a
  // remote P-256 public key; the key size is the largest the controller supports.
  readLocalSimplePairingOptions: { ogf: IP, ocf: 0x000c, name: 'Read Local Simple Pairing Options',
    spec: 'Vol 4, Part E, 7.4.9', params: {}, returns: { ...S, simplePairingOptions: x8, maxEncryptionKeySize: u8 } },
  // --- Status parameters (OGF 0x05), Vol 4, Part E, 7.5
  readLinkQuality: { ogf: SP, ocf: 0x0003, name: 'Read Link Quality', spec: 'Vol 4, Part E, 7.5.3',
    params: { handle: x16 }, returns: { ...S, handle: x16, linkQuality: u8 } },
  readRssi: { ogf: SP, ocf: 0x0005, name: 'Read RSSI', spec: 'Vol 4, Part E, 7.5.4',
    params: { connectionHandle: x16 }, returns: { ...S, connectionHandle: x16, rssi: i8 } },

  readEncryptionKeySize: { ogf: SP, ocf: 0x0008, name: 'Read Encryption Key Size', spec: 'Vol 4, Part E, 7.5.7',
    params: { connectionHandle: x16 }, returns: { ...S, connectionHandle: x16, keySize: u8 } },
  // --- LE Controller (OGF 0x08), Vol 4, Part E, 7.8
  leSetEventMask: { ogf: LE, ocf: 0x0001, name: 'LE Set Event Mask', spec: 'Vol 4, Part E, 7.8.1', params: { leEventMask: u64 } },
  leReadBufferSize: { ogf: LE, ocf: 0x0002, name: 'LE Read Buffer Size', spec: 'Vol 4, Part E, 7.8.2',
    params: {}, returns: { ...S, leAclDataPacketLength: u16, totalNumLeAclDataPackets: u8 } },
  leReadLocalSupportedFeatures: { ogf: LE, ocf: 0x0003, name: 'LE Read Local Supported Features', spec: 'Vol 4, Part E, 7.8.3',
    params: {}, returns: { ...S, leFeatures: LE_FEATURES } },
  leSetRandomAddress: { ogf: LE, ocf: 0x0005, name: 'LE Set Random Address', spec: 'Vol 4, Part E, 7.8.4',
    params: { randomAddress: bdAddr } },
  leSetAdvertisingParameters: { ogf: LE, ocf: 0x0006, name: 'LE Set Advertising Parameters', spec: 'Vol 4, Part E, 7.8.5',
    params: { advertisingIntervalMin: u16, advertisingIntervalMax: u16, advertisingType: u8, ownAddressType: u8,
      peerAddressType: u8, peerAddress: bdAddr, advertisingChannelMap: x8, advertisingFilterPolicy: u8 } },
  leReadAdvertisingPhysicalChannelTxPower: { ogf: LE, ocf: 0x0007, name: 'LE Read Advertising Physical Channel Tx Power',
    spec: 'Vol 4, Part E, 7.8.6', params: {}, returns: { ...S, txPowerLevel: i8 } },
  leSetAdvertisingData: { ogf: LE, ocf: 0x0008, name: 'LE Set Advertising Data', spec: 'Vol 4, Part E, 7.8.7',
    params: { advertisingData: paddedData(31) } },
  leSetScanResponseData: { ogf: LE, ocf: 0x0009, name: 'LE Set Scan Response Data', spec: 'Vol 4, Part E, 7.8.8',
    params: { scanResponseData: paddedData(31) } },
  leSetAdvertisingEnable: { ogf: LE, ocf: 0x000a, name: 'LE Set Advertising Enable', spec: 'Vol 4, Part E, 7.8.9',
    params: { enable: u8 } },
  leSetScanParameters: { ogf: LE, ocf: 0x000b, name: 'LE Set Scan Parameters', spec: 'Vol 4, Part E, 7.8.10',
    params: { leScanType: u8, leScanInterval: u16, leScanWindow: u16, ownAddressType: u8, scanningFilterPolicy: u8 } },
  leSetScanEnable: { ogf: LE, ocf: 0x000c, name: 'LE Set Scan Enable', spec: 'Vol 4, Part E, 7.8.11',
    params: { enable: u8, filterDuplicates: u8 } },
  leCreateConnection: { ogf: LE, ocf: 0x000d, name: 'LE Create Connection', spec: 'Vol 4, Part E, 7.8.12', completes: 'status',
    params: { leScanInterval: u16, leScanWindow: u16, initiatorFilterPolicy: u8, peerAddressType: u8, peerAddress: bdAddr,
      ownAddressType: u8, ...connParams } },
  leCreateConnectionCancel: { ogf: LE, ocf: 0x000e, name: 'LE Create Connection Cancel', spec: 'Vol 4, Part E, 7.8.13', params: {} },
  leReadFilterAcceptListSize: { ogf: LE, ocf: 0x000f, name: 'LE Read Filter Accept List Size', spec: 'Vol 4, Part E, 7.8.14',
    params: {}, returns: { ...S, filterAcceptListSize: u8 } },
  leClearFilterAcceptList: { ogf: LE, ocf: 0x0010, name: 'LE Clear Filter Accept List', spec: 'Vol 4, Part E, 7.8.15', params: {} },
  leAddDeviceToFilterAcceptList: { ogf: LE, ocf: 0x0011, name: 'LE Add Device To Filter Accept List',
    spec: 'Vol 4, Part E, 7.8.16', params: { addressType: u8, address: bdAddr } },
  leRemoveDeviceFromFilterAcceptList: { ogf: LE, ocf: 0x0012, name: 'LE Remove Device From Filter Accept List',
    spec: 'Vol 4, Part E, 7.8.17', params: { addressType: u8, address: bdAddr } },
  leConnectionUpdate: { ogf: LE, ocf: 0x0013, name: 'LE Connection Update', spec: 'Vol 4, Part E, 7.8.18', completes: 'status',
    params: { connectionHandle: x16, ...connParams } },
  leSetHostChannelClassification: { ogf: LE, ocf: 0x0014, name: 'LE Set Host Channel Classification',
    spec: 'Vol 4, Part E, 7.8.19', params: { channelMap: bytes(5) } },
  leReadChannelMap: { ogf: LE, ocf: 0x0015, name: 'LE Read Channel Map', spec: 'Vol 4, Part E, 7.8.20',
    params: { connectionHandle: x16 }, returns: { ...S, connectionHandle: x16, channelMap: bytes(5) } },
  leReadRemoteFeatures: { ogf: LE, ocf: 0x0016, name: 'LE Read Remote Features', spec: 'Vol 4, Part E, 7.8.21',
    completes: 'status', params: { connectionHandle: x16 } },
  leEncrypt: { ogf: LE, ocf: 0x0017, name: 'LE Encrypt', spec: 'Vol 4, Part E, 7.8.22',
    params: { key: bytes(16), plaintextData: bytes(16) }, returns: { ...S, encryptedData: bytes(16) } },
  leRand: { ogf: LE, ocf: 0x0018, name: 'LE Rand', spec: 'Vol 4, Part E, 7.8.23',
    params: {}, returns: { ...S, randomNumber: bytes(8) } },
  leEnableEncryption: { ogf: LE, ocf: 0x0019, name: 'LE Enable Encryption', spec: 'Vol 4, Part E, 7.8.24', completes: 'status',
    params: { connectionHandle: x16, randomNumber: bytes(8), encryptedDiversifier: x16, longTermKey: bytes(16) } },
  leLongTermKeyRequestReply: { ogf: LE, ocf: 0x001a, name: 'LE Long Term Key Request Reply', spec: 'Vol 4, Part E, 7.8.25',
    params: { connectionHandle: x16, longTermKey: bytes(16) }, returns: { ...S, connectionHandle: x16 } },
  leLongTermKeyRequestNegativeReply: { ogf: LE, ocf: 0x001b, name: 'LE Long Term Key Request Negative Reply',
    spec: 'Vol 4, Part E, 7.8.26', params: { connectionHandle: x16 }, returns: { ...S, connectionHandle: x16 } },
  leReadSupportedStates: { ogf: LE, ocf: 0x001c, name: 'LE Read Supported States', spec: 'Vol 4, Part E, 7.8.27',
    params: {}, returns: { ...S, leStates: u64 } },
  leReceiverTest: { ogf: LE, ocf: 0x001d, name: 'LE Receiver Test [v1]', spec: 'Vol 4, Part E, 7.8.28',
    params: { rxChannel: u8 } },
  leTransmitterTest: { ogf: LE, ocf: 0x001e, name: 'LE Transmitter Test [v1]', spec: 'Vol 4, Part E, 7.8.29',
    params: { txChannel: u8, testDataLength: u8, packetPayload: u8 } },
  leTestEnd: { ogf: LE, ocf: 0x001f, name: 'LE Test End', spec: 'Vol 4, Part E, 7.8.30',
    params: {}, returns: { ...S, numPackets: u16 } },
  leRemoteConnectionParameterRequestReply: { ogf: LE, ocf: 0x0020, name: 'LE Remote Connection Parameter Request Reply',
    spec: 'Vol 4, Part E, 7.8.31', params: { connectionHandle: x16, intervalMin: u16, intervalMax: u16, maxLatency: u16,
      timeout: u16, minCeLength: u16, maxCeLength: u16 }, returns: { ...S, connectionHandle: x16 } },
  leRemoteConnectionParameterRequestNegativeReply: { ogf: LE, ocf: 0x0021,
    name: 'LE Remote Connection Parameter Request Negative Reply', spec: 'Vol 4, Part E, 7.8.32',
    params: { connectionHandle: x16, reason: statusField }, returns: { ...S, connectionHandle: x16 } },
  leSetDataLength: { ogf: LE, ocf: 0x0022, name: 'LE Set Data Length', spec: 'Vol 4, Part E, 7.8.33',
    params: { connectionHandle: x16, txOctets: u16, txTime: u16 }, returns: { ...S, connectionHandle: x16 } },
  leReadSuggestedDefaultDataLength: { ogf: LE, ocf: 0x0023, name: 'LE Read Suggested Default Data Length',
    spec: 'Vol 4, Part E, 7.8.34', params: {}, returns: { ...S, suggestedMaxTxOctets: u16, suggestedMaxTxTime: u16 } },
  leWriteSuggestedDefaultDataLength: { ogf: LE, ocf: 0x0024, name: 'LE Write Suggested Default Data Length',
    spec: 'Vol 4, Part E, 7.8.35', params: { suggestedMaxTxOctets: u16, suggestedMaxTxTime: u16 } },
  leReadLocalP256PublicKey: { ogf: LE, ocf: 0x0025, name: 'LE Read Local P-256 Public Key', spec: 'Vol 4, Part E, 7.8.36',
    completes: 'status', params: {} },
  leGenerateDhkey: { ogf: LE, ocf: 0x0026, name: 'LE Generate DHKey', spec: 'Vol 4, Part E, 7.8.37', completes: 'status',
    params: { remoteP256PublicKey: bytes(64) } },
  leAddDeviceToResolvingList: { ogf: LE, ocf: 0x0027, name: 'LE Add Device To Resolving List', spec: 'Vol 4, Part E, 7.8.38',
    params: { peerIdentityAddressType: u8, peerIdentityAddress: bdAddr, peerIrk: bytes(16), localIrk: bytes(16) } },
  leRemoveDeviceFromResolvingList: { ogf: LE, ocf: 0x0028, name: 'LE Remove Device From Resolving List',
    spec: 'Vol 4, Part E, 7.8.39', params: { peerIdentityAddressType: u8, peerIdentityAddress: bdAddr } },
  leClearResolvingList: { ogf: LE, ocf: 0x0029, name: 'LE Clear Resolving List', spec: 'Vol 4, Part E, 7.8.40', params: {} },
  leReadResolvingListSize: { ogf: LE, ocf: 0x002a, name: 'LE Read Resolving List Size', spec: 'Vol 4, Part E, 7.8.41',
    params: {}, returns: { ...S, resolvingListSize: u8 } },
  leReadPeerResolvableAddress: { ogf: LE, ocf: 0x002b, name: 'LE Read Peer Resolvable Address', spec: 'Vol 4, Part E, 7.8.42',
    params: { peerIdentityAddressType: u8, peerIdentityAddress: bdAddr }, returns: { ...S, peerResolvableAddress: bdAddr } },
  leReadLocalResolvableAddress: { ogf: LE, ocf: 0x002c, name: 'LE Read Local Resolvable Address', spec: 'Vol 4, Part E, 7.8.43',
    params: { peerIdentityAddressType: u8, peerIdentityAddress: bdAddr }, returns: { ...S, localResolvableAddress: bdAddr } },
  leSetAddressResolutionEnable: { ogf: LE, ocf: 0x002d, name: 'LE Set Address Resolution Enable', spec: 'Vol 4, Part E, 7.8.44',
    params: { addressResolutionEnable: u8 } },
  leSetResolvablePrivateAddressTimeout: { ogf: LE, ocf: 0x002e, name: 'LE Set Resolvable Private Address Timeout',
    spec: 'Vol 4, Part E, 7.8.45', params: { rpaTimeout: u16 } },
  leReadMaximumDataLength: { ogf: LE, ocf: 0x002f, name: 'LE Read Maximum Data Length', spec: 'Vol 4, Part E, 7.8.46',
    params: {}, returns: { ...S, supportedMaxTxOctets: u16, supportedMaxTxTime: u16, supportedMaxRxOctets: u16,
      supportedMaxRxTime: u16 } },
  leReadPhy: { ogf: LE, ocf: 0x0030, name: 'LE Read PHY', spec: 'Vol 4, Part E, 7.8.47',
    params: { connectionHandle: x16 }, returns: { ...S, connectionHandle: x16, txPhy: u8, rxPhy: u8 } },
  leSetDefaultPhy: { ogf: LE, ocf: 0x0031, name: 'LE Set Default PHY', spec: 'Vol 4, Part E, 7.8.48',
    params: { allPhys: x8, txPhys: x8, rxPhys: x8 } },
  leSetPhy: { ogf: LE, ocf: 0x0032, name: 'LE Set PHY', spec: 'Vol 4, Part E, 7.8.49', completes: 'status',
    params: { connectionHandle: x16, allPhys: x8, txPhys: x8, rxPhys: x8, phyOptions: x16 } },
  leSetAdvertisingSetRandomAddress: { ogf: LE, ocf: 0x0035, name: 'LE Set Advertising Set Random Address',
    spec: 'Vol 4, Part E, 7.8.52', params: { advertisingHandle: u8, randomAddress: bdAddr } },
  leSetExtendedAdvertisingParameters: { ogf: LE, ocf: 0x0036, name: 'LE Set Extended Advertising Parameters',
    spec: 'Vol 4, Part E, 7.8.53', params: { advertisingHandle: u8, advertisingEventProperties: ADV_EVENT_PROPERTIES,
      primaryAdvertisingIntervalMin: u24, primaryAdvertisingIntervalMax: u24, primaryAdvertisingChannelMap: x8,
      ownAddressType: u8, peerAddressType: u8, peerAddress: bdAddr, advertisingFilterPolicy: u8, advertisingTxPower: i8,
      primaryAdvertisingPhy: u8, secondaryAdvertisingMaxSkip: u8, secondaryAdvertisingPhy: u8, advertisingSid: u8,
      scanRequestNotificationEnable: u8 }, returns: { ...S, selectedTxPower: i8 } },
  leSetExtendedAdvertisingData: { ogf: LE, ocf: 0x0037, name: 'LE Set Extended Advertising Data', spec: 'Vol 4, Part E, 7.8.54',
    params: { advertisingHandle: u8, operation: u8, fragmentPreference: u8, advertisingData: lengthPrefixed(u8) } },
  leSetExtendedScanResponseData: { ogf: LE, ocf: 0x0038, name: 'LE Set Extended Scan Response Data',
    spec: 'Vol 4, Part E, 7.8.55',
    params: { advertisingHandle: u8, operation: u8, fragmentPreference: u8, scanResponseData: lengthPrefixed(u8) } },
  leSetExtendedAdvertisingEnable: { ogf: LE, ocf: 0x0039, name: 'LE Set Extended Advertising Enable',
    spec: 'Vol 4, Part E, 7.8.56', params: { enable: u8,
      sets: arrayOf(u8, struct({ advertisingHandle: u8, duration: u16, maxExtendedAdvertisingEvents: u8 })) } },
  leReadMaximumAdvertisingDataLength: { ogf: LE, ocf: 0x003a, name: 'LE Read Maximum Advertising Data Length',
    spec: 'Vol 4, Part E, 7.8.57', params: {}, returns: { ...S, maxAdvertisingDataLength: u16 } },
  leReadNumberOfSupportedAdvertisingSets: { ogf: LE, ocf: 0x003b, name: 'LE Read Number of Supported Advertising Sets',
    spec: 'Vol 4, Part E, 7.8.58', params: {}, returns: { ...S, numSupportedAdvertisingSets: u8 } },
  leRemoveAdvertisingSet: { ogf: LE, ocf: 0x003c, name: 'LE Remove Advertising Set', spec: 'Vol 4, Part E, 7.8.59',
    params: { advertisingHandle: u8 } },
  leClearAdvertisingSets: { ogf: LE, ocf: 0x003d, name: 'LE Clear Advertising Sets', spec: 'Vol 4, Part E, 7.8.60', params: {} },
  leSetPeriodicAdvertisingParameters: { ogf: LE, ocf: 0x003e, name: 'LE Set Periodic Advertising Parameters',
    spec: 'Vol 4, Part E, 7.8.61', params: { advertisingHandle: u8, periodicAdvertisingIntervalMin: u16,
      periodicAdvertisingIntervalMax: u16, periodicAdvertisingProperties: x16 } },
  leSetPeriodicAdvertisingData: { ogf: LE, ocf: 0x003f, name: 'LE Set Periodic Advertising Data', spec: 'Vol 4, Part E, 7.8.62',
    params: { advertisingHandle: u8, operation: u8, advertisingData: lengthPrefixed(u8) } },
  leSetPeriodicAdvertisingEnable: { ogf: LE, ocf: 0x0040, name: 'LE Set Periodic Advertising Enable',
    spec: 'Vol 4, Part E, 7.8.63', params: { enable: u8, advertisingHandle: u8 } },
  leSetExtendedScanParameters: { ogf: LE, ocf: 0x0041, name: 'LE Set Extended Scan Parameters', spec: 'Vol 4, Part E, 7.8.64',
    params: { ownAddressType: u8, scanningFilterPolicy: u8,
      scanningPhys: phyArray(struct({ scanType: u8, scanInterval: u16, scanWindow: u16 })) } },
  leSetExtendedScanEnable: { ogf: LE, ocf: 0x0042, name: 'LE Set Extended Scan Enable', spec: 'Vol 4, Part E, 7.8.65',
    params: { enable: u8, filterDuplicates: u8, duration: u16, period: u16 } },
  leExtendedCreateConnection: { ogf: LE, ocf: 0x0043, name: 'LE Extended Create Connection', spec: 'Vol 4, Part E, 7.8.66',
    completes: 'status', params: { initiatorFilterPolicy: u8, ownAddressType: u8, peerAddressType: u8, peerAddress: bdAddr,
      initiatingPhys: phyArray(struct({ scanInterval: u16, scanWindow: u16, ...connParams })) } },
  lePeriodicAdvertisingCreateSync: { ogf: LE, ocf: 0x0044, name: 'LE Periodic Advertising Create Sync',
    spec: 'Vol 4, Part E, 7.8.67', completes: 'status', params: { options: x8, advertisingSid: u8, advertiserAddressType: u8,
      advertiserAddress: bdAddr, skip: u16, syncTimeout: u16, syncCteType: x8 } },
  lePeriodicAdvertisingCreateSyncCancel: { ogf: LE, ocf: 0x0045, name: 'LE Periodic Advertising Create Sync Cancel',
    spec: 'Vol 4, Part E, 7.8.68', params: {} },
  lePeriodicAdvertisingTerminateSync: { ogf: LE, ocf: 0x0046, name: 'LE Periodic Advertising Terminate Sync',
    spec: 'Vol 4, Part E, 7.8.69', params: { syncHandle: x16 } },
  leAddDeviceToPeriodicAdvertiserList: { ogf: LE, ocf: 0x0047, name: 'LE Add Device To Periodic Advertiser List',
    spec: 'Vol 4, Part E, 7.8.70', params: { advertiserAddressType: u8, advertiserAddress: bdAddr, advertisingSid: u8 } },
  leRemoveDeviceFromPeriodicAdvertiserList: { ogf: LE, ocf: 0x0048, name: 'LE Remove Device From Periodic Advertiser List',
    spec: 'Vol 4, Part E, 7.8.71', params: { advertiserAddressType: u8, advertiserAddress: bdAddr, advertisingSid: u8 } },
  leClearPeriodicAdvertiserList: { ogf: LE, ocf: 0x0049, name: 'LE Clear Periodic Advertiser List',
    spec: 'Vol 4, Part E, 7.8.72', params: {} },
  leReadPeriodicAdvertiserListSize: { ogf: LE, ocf: 0x004a, name: 'LE Read Periodic Advertiser List Size',
    spec: 'Vol 4, Part E, 7.8.73', params: {}, returns: { ...S, periodicAdvertiserListSize: u8 } },
  leReadTransmitPower: { ogf: LE, ocf: 0x004b, name: 'LE Read Transmit Power', spec: 'Vol 4, Part E, 7.8.74',
    params: {}, returns: { ...S, minTxPower: i8, maxTxPower: i8 } },
  leReadRfPathCompensation: { ogf: LE, ocf: 0x004c, name: 'LE Read RF Path Compensation', spec: 'Vol 4, Part E, 7.8.75',
    params: {}, returns: { ...S, rfTxPathCompensationValue: dB01, rfRxPathCompensationValue: dB01 } },
  // Android writes the board's RF path compensation during init.
  leWriteRfPathCompensation: { ogf: LE, ocf: 0x004d, name: 'LE Write RF Path Compensation', spec: 'Vol 4, Part E, 7.8.76',
    params: { rfTxPathCompensationValue: dB01, rfRxPathCompensationValue: dB01 } },
  leSetPrivacyMode: { ogf: LE, ocf: 0x004e, name: 'LE Set Privacy Mode', spec: 'Vol 4, Part E, 7.8.77',
    params: { peerIdentityAddressType: u8, peerIdentityAddress: bdAddr, privacyMode: u8 } },
  leReadBufferSizeV2: { ogf: LE, ocf: 0x0060, name: 'LE Read Buffer Size [v2]', spec: 'Vol 4, Part E, 7.8.2',
    params: {}, returns: { ...S, leAclDataPacketLength: u16, totalNumLeAclDataPackets: u8, isoDataPacketLength: u16,
      totalNumIsoDataPackets: u8 } },
  leGenerateDhkeyV2: { ogf: LE, ocf: 0x005e, name: 'LE Generate DHKey [v2]', spec: 'Vol 4, Part E, 7.8.37', completes: 'status',
    params: { remoteP256PublicKey: bytes(64), keyType: u8 } },
  leSetHostFeature: { ogf: LE, ocf: 0x0074, name: 'LE Set Host Feature', spec: 'Vol 4, Part E, 7.8.115',
    params: { bitNumber: u8, bitValue: u8 } },
  leSetExtendedAdvertisingParametersV2: { ogf: LE, ocf: 0x007f, name: 'LE Set Extended Advertising Parameters [v2]',
    spec: 'Vol 4, Part E, 7.8.53', params: { advertisingHandle: u8, advertisingEventProperties: ADV_EVENT_PROPERTIES,
      primaryAdvertisingIntervalMin: u24, primaryAdvertisingIntervalMax: u24, primaryAdvertisingChannelMap: x8,
      ownAddressType: u8, peerAddressType: u8, peerAddress: bdAddr, advertisingFilterPolicy: u8, advertisingTxPower: i8,
      primaryAdvertisingPhy: u8, secondaryAdvertisingMaxSkip: u8, secondaryAdvertisingPhy: u8, advertisingSid: u8,
      scanRequestNotificationEnable: u8, primaryAdvertisingPhyOptions: u8, secondaryAdvertisingPhyOptions: u8 },
    returns: { ...S, selectedTxPower: i8 } },
} as const satisfies Record<string, CommandRow>;

// ---------------------------------------------------------------------------------------------
// Derived types.

type C = typeof HCI_COMMANDS;
export type HciCommandKind = keyof C & string;

export type HciCommandOf<K extends HciCommandKind> = K extends HciCommandKind ? { kind: K } & Infer<C[K]['params']> : never;

/** OGF 0x3F: vendor-specific commands, kept raw. */
export interface VendorCommand { kind: 'vendor'; opcode: number; data: Uint8Array }
/** An opcode not in the table (and not vendor-specific), kept raw. */
export interface UnknownCommand { kind: 'unknown'; opcode: number; data: Uint8Array }

/** Every command the host can send or a capture can contain. */
export type HciCommand = HciCommandOf<HciCommandKind> | VendorCommand | UnknownCommand;

type ReturnFieldsOf<K extends HciCommandKind> = C[K] extends { returns: infer F extends Fields } ? F : typeof S;
/** The return parameters of Command Complete for command K (status first). */
export type CommandReturn<K extends HciCommandKind> = Infer<ReturnFieldsOf<K>>;

export type CompletionOf<K extends HciCommandKind> = C[K] extends { completes: infer X } ? X : 'complete';
/** Commands answered by Command Complete with return parameters. */
export type CompleteCommandKind = { [K in HciCommandKind]: CompletionOf<K> extends 'complete' ? K : never }[HciCommandKind];
/** Commands answered by Command Status (their result comes later in another event). */
export type StatusCommandKind = { [K in HciCommandKind]: CompletionOf<K> extends 'status' ? K : never }[HciCommandKind];

/** Return parameters tagged with the command kind they belong to. */
export type ReturnParametersOf<K extends HciCommandKind> = K extends HciCommandKind ? { kind: K } & CommandReturn<K> : never;

/**
 * A Command Complete that carries only the status byte where more return parameters were due: on
 * failure only the status is guaranteed, and some controllers (btvirt) send it alone on success too.
 */
export interface StatusOnlyReturn { kind: HciCommandKind; status: number; statusOnly: true }
/** Command Complete for opcode 0x0000: a credit-only event with no command. */
export interface NopReturn { kind: 'nop' }
/** Return parameters of a vendor-specific or unknown opcode, raw. */
export interface RawReturn { kind: 'vendor' | 'unknown'; data: Uint8Array }

export type ReturnParameters = ReturnParametersOf<HciCommandKind> | StatusOnlyReturn | NopReturn | RawReturn;

// ---------------------------------------------------------------------------------------------
// Compiled tables.

type ParamRows = { [K in HciCommandKind]: RowInfo & { code: number; fields: C[K]['params'] } };
type ReturnRows = { [K in HciCommandKind]: RowInfo & { code: number; fields: ReturnFieldsOf<K>; trailing: 'ignore' } };

const paramRows = {} as Record<string, RowSpec>;
const returnRows = {} as Record<string, RowSpec & { trailing: 'ignore' }>;
const nameByOpcode = new Map<number, string>();
for (const [kind, row] of Object.entries(HCI_COMMANDS) as Array<[string, CommandRow]>) {
  const code = opcodeOf(row.ogf, row.ocf);
  // Decoded commands are flat H4 packets ({ type: 'command', kind, ...params }), so no field may
  // shadow those two keys.
  if ('type' in row.params || 'kind' in row.params) throw new Error(`HCI command ${kind}: field named type/kind`);
  paramRows[kind] = { code, name: row.name, spec: row.spec, fields: row.params };
  // Controllers of later Core versions may append return parameters; the host reads what it knows and
  // ignores the rest (forward compatibility, as Bumble and BlueZ do).
  returnRows[kind] = { code, name: row.name, spec: row.spec, fields: row.returns ?? S, trailing: 'ignore' };
  nameByOpcode.set(code, row.name);
}

/** Parameter table: code = opcode. */
export const COMMAND_TABLE = defineTable('hci', paramRows as ParamRows);
/** Return-parameter table: code = opcode of the command that completed. */
export const RETURN_TABLE = defineTable('hci', returnRows as ReturnRows);

export function commandKindOf(opcode: number): HciCommandKind | undefined {
  return COMMAND_TABLE.kindOf(opcode);
}
export function opcodeOfCommand(kind: HciCommandKind): number {
  return COMMAND_TABLE.codeOf(kind);
}
export function isVendorOpcode(opcode: number): boolean {
  return ogfOf(opcode) === OGF.vendor;
}

/** "LE Rand", "Vendor 0xfc17", "NOP", "Unknown 0x0c99". */
export function commandName(opcode: number): string {
  const n = nameByOpcode.get(opcode);
  if (n !== undefined) return n;
  if (opcode === NOP_OPCODE) return 'NOP';
  return `${isVendorOpcode(opcode) ? 'Vendor' : 'Unknown'} ${hex16(opcode)}`;
}

/** A Command_Opcode field that describes itself by command name. */
export const opcodeField: Field<number> = { ...x16, fmt: v => `${hex16(v)} (${commandName(v)})` };

/**
 * Opcode (2) and Parameter_Total_Length (1) (Vol 4, Part E, 5.4.1); the parameters fill the rest of
 * the packet, so the length must match what follows.
 */
const commandFraming: Framing = {
  read(r, slot) {
    const at = r.offset;
    slot.code = r.u16();
    const len = r.u8();
    if (len !== r.remaining) r.fail(`Parameter_Total_Length ${len} but ${r.remaining} byte(s) follow`, at + 2);
    slot.length = -1;
    return true;
  },
  size: () => 3,
  write(w, code, n, cmd) {
    if (n > 0xff) throw new EncodeError('hci', String((cmd as { kind?: string }).kind), `parameters of ${n} bytes exceed 255`);
    w.u16(code).u8(n);
  },
};

/** The command table's one codec; describe() starts with the command's specification name. */
export const COMMAND_CODEC = framedCodec<ParamRows, {}, VendorCommand | UnknownCommand>(COMMAND_TABLE, commandFraming, {
  what: 'command header',
  label: 'name',
  unknown: (opcode, data) => ({ kind: isVendorOpcode(opcode) ? 'vendor' : 'unknown', opcode, data }),
  unknownCode: u => u.opcode,
  describeUnknown: u => `${commandName(u.opcode)} data=${toHex(u.data)}`,
});

/**
 * The return-parameter table's codec: no header (the Command_Opcode before it, in Command Complete,
 * is the code).
 */
export const RETURN_CODEC = framedCodec<ReturnRows, {}, never>(RETURN_TABLE, bare, { what: 'return parameters', label: 'name' });

/** Decode the parameters of a command with this opcode from r (which ends where the packet ends). */
export function decodeCommandParams(opcode: number, r: ByteReader): HciCommand {
  return COMMAND_CODEC.decodeBody(opcode, r) as HciCommand;
}

export function commandOpcode(cmd: HciCommand): number {
  return cmd.kind === 'vendor' || cmd.kind === 'unknown' ? cmd.opcode : COMMAND_TABLE.codeOf(cmd.kind);
}

export function sizeOfCommandParams(cmd: HciCommand): number {
  return COMMAND_CODEC.bodySizeOf(cmd as never);
}

/** Decode Command Complete return parameters for `opcode` from r (to the end of the event). */
export function decodeReturnParameters(opcode: number, r: ByteReader): ReturnParameters {
  if (opcode === NOP_OPCODE && r.remaining === 0) return { kind: 'nop' };
  const kind = COMMAND_TABLE.kindOf(opcode);
  if (kind === undefined) return { kind: isVendorOpcode(opcode) ? 'vendor' : 'unknown', data: r.rest() };
  // A lone status byte is accepted as a short return: on failure only the status is guaranteed (the
  // rest of the return parameters may be absent), and BlueZ's btvirt (5.66) answers some commands,
  // e.g. LE Remote Connection Parameter Request Reply, with the status alone even on success.
  if (r.remaining === 1 && RETURN_TABLE.minSize(kind) > 1) {
    return { kind, status: r.u8(), statusOnly: true };
  }
  r.what = `${kind} return parameters`;
  const ret = RETURN_CODEC.decodeBody(opcode, r) as ReturnParameters;
  r.rest(); // parameters appended by a newer controller are ignored (the row is `trailing: 'ignore'`)
  return ret;
}

export function sizeOfReturnParameters(ret: ReturnParameters): number {
  switch (ret.kind) {
    case 'nop': return 0;
    case 'vendor': case 'unknown': return (ret as RawReturn).data.length;
    default: return 'statusOnly' in ret && ret.statusOnly ? 1 : RETURN_CODEC.bodySizeOf(ret as never);
  }
}

export function encodeReturnParameters(w: ByteWriter, ret: ReturnParameters): void {
  switch (ret.kind) {
    case 'nop': return;
    case 'vendor': case 'unknown': w.bytesOf((ret as RawReturn).data); return;
    default:
      if ('statusOnly' in ret && ret.statusOnly) w.u8(ret.status);
      else RETURN_CODEC.encodeInto(w, ret as never);
  }
}

/** Opcode a ReturnParameters value belongs to (for encoding Command Complete). */
export function returnKindOpcode(ret: ReturnParameters): number | undefined {
  return ret.kind === 'nop' ? NOP_OPCODE : ret.kind === 'vendor' || ret.kind === 'unknown' ? undefined
    : COMMAND_TABLE.codeOf(ret.kind);
}

/** `Name field=value …` for a command. */
export function describeCommand(cmd: HciCommand): string {
  return COMMAND_CODEC.describe(cmd as never);
}

/** ` field=value …` for the return parameters (kind not repeated). */
export function describeReturn(ret: ReturnParameters): string {
  switch (ret.kind) {
    case 'nop': return '';
    case 'vendor': case 'unknown': return ret.data.length ? ` data=${toHex(ret.data)}` : '';
    default: {
      if ('statusOnly' in ret && ret.statusOnly) return describeFields(S, ret);
      const d = RETURN_CODEC.describe(ret as never);
      return d.slice(RETURN_TABLE.nameOf(ret.kind)!.length);
    }
  }
}

export function describeFields(fields: Fields, v: object): string {
  let s = '';
  const o = v as Record<string, unknown>;
  for (const name in fields) s += ` ${name}=${fmtValue(fields[name], o[name])}`;
  return s;
}
