import { bitfield, bitset64 } from '../codec/bits.js';
import { named, u64, x16, x8 } from '../codec/field.js';
import { hex16 } from '../bytes/hex.js';

/**
 * HCI parameters that are bit fields, as bit-field fields (codec/bits.ts): the tables use them as
 * field types (the decoded value stays the wire number, so every packet round-trips, reserved bits
 * included), callers test and build them by name instead of with shifts and masks, and describe()
 * names the bits.
 */

/**
 * Event_Type of an extended advertising report (Vol 4, Part E, 7.7.65.13): connectable, scannable,
 * directed, scan response, legacy PDU, then Data_Status in bits 5-6 (0b00 complete, 0b01 incomplete
 * with more to come, 0b10 incomplete and truncated, 0b11 reserved); bits 7-15 reserved. A legacy PDU
 * reported this way sets bit 4 and the bits that describe it (Table 7.1: ADV_IND 0x13, SCAN_RSP to
 * ADV_IND 0x1b, …).
 */
export const EXT_ADV_EVENT_TYPE = bitfield(x16, {
  connectable: 0x0001,
  scannable: 0x0002,
  directed: 0x0004,
  scanResponse: 0x0008,
  legacy: 0x0010,
  dataStatus: { mask: 0x0060, values: { 1: 'incomplete', 2: 'truncated' } },
}, hex16);
/** Data_Status values of EXT_ADV_EVENT_TYPE (Vol 4, Part E, 7.7.65.13). */
export const ExtAdvDataStatus = { Complete: 0, Incomplete: 1, Truncated: 2 } as const;

/**
 * Event_Type of a legacy advertising report (Vol 4, Part E, 7.7.65.2): an enumeration of the legacy
 * PDU that was received, not bits. Values 0x05-0xFF are reserved.
 */
export const LegacyAdvEventType = {
  AdvInd: 0x00,
  AdvDirectInd: 0x01,
  AdvScanInd: 0x02,
  AdvNonconnInd: 0x03,
  ScanRsp: 0x04,
} as const;
export type LegacyAdvEventType = (typeof LegacyAdvEventType)[keyof typeof LegacyAdvEventType];

/** The legacy Event_Type as a field: the wire number, described by the PDU's name (`ADV_IND`). */
export const LEGACY_ADV_EVENT_TYPE = named(x8, {
  [LegacyAdvEventType.AdvInd]: 'ADV_IND',
  [LegacyAdvEventType.AdvDirectInd]: 'ADV_DIRECT_IND',
  [LegacyAdvEventType.AdvScanInd]: 'ADV_SCAN_IND',
  [LegacyAdvEventType.AdvNonconnInd]: 'ADV_NONCONN_IND',
  [LegacyAdvEventType.ScanRsp]: 'SCAN_RSP',
});

/**
 * The same legacy PDUs in the extended report's Event_Type bits (Vol 4, Part E, 7.7.65.13, Table 7.1),
 * so a scanner reads both report kinds through EXT_ADV_EVENT_TYPE: ADV_IND 0x13, ADV_DIRECT_IND 0x15,
 * ADV_SCAN_IND 0x12, ADV_NONCONN_IND 0x10, SCAN_RSP 0x1a (the table's scan response to ADV_SCAN_IND:
 * a scan response answers a scannable advertisement; whether it was also connectable, the legacy
 * report does not say). A reserved value maps to legacy alone (nothing is claimed about it).
 */
const LEGACY_AS_EXT: readonly number[] = [0x13, 0x15, 0x12, 0x10, 0x1a];
export function legacyAdvEventBits(eventType: number): number {
  return LEGACY_AS_EXT[eventType] ?? 0x10;
}

/**
 * Advertising_Event_Properties of LE Set Extended Advertising Parameters (Vol 4, Part E, 7.8.53):
 * connectable, scannable, directed, high duty cycle directed, legacy PDUs, anonymous, include TxPower.
 */
export const ADV_EVENT_PROPERTIES = bitfield(x16, {
  connectable: 0x0001,
  scannable: 0x0002,
  directed: 0x0004,
  highDutyCycleDirected: 0x0008,
  legacy: 0x0010,
  anonymous: 0x0020,
  includeTxPower: 0x0040,
}, hex16);


/**
 * The Handle / flags word of an HCI ACL data packet (Vol 4, Part E, 5.4.2): Connection_Handle (12 bits),
 * Packet_Boundary_Flag (2 bits: 0b00 first non-automatically-flushable, 0b01 continuing fragment,
 * 0b10 first automatically flushable, 0b11 complete L2CAP PDU), Broadcast_Flag (2 bits).
 */
export const ACL_HANDLE_FLAGS = bitfield(x16, {
  handle: { mask: 0x0fff, label: 'handle' },
  pb: { mask: 0x3000, values: { 0: 'first-non-flushable', 1: 'continuing', 2: 'first-flushable', 3: 'complete' } },
  bc: { mask: 0xc000 },
}, hex16);

/** The Handle / flags word of a synchronous data packet (Vol 4, Part E, 5.4.3): handle, Packet_Status_Flag. */
export const SCO_HANDLE_FLAGS = bitfield(x16, { handle: 0x0fff, packetStatus: 0x3000 }, hex16);

/** The Handle / flags word of an ISO data packet (Vol 4, Part E, 5.4.5): handle, PB_Flag, TS_Flag, 1 bit RFU. */
export const ISO_HANDLE_FLAGS = bitfield(x16, { handle: 0x0fff, pb: 0x3000, ts: 0x4000 }, hex16);

/** LE feature bits (Vol 6, Part B, 4.6, Table 4.4), as LE Read Local Supported Features and LE Read Remote Features Complete carry them. */
export const LE_FEATURES = bitset64(u64, {
  encryption: 0,
  connectionParametersRequest: 1,
  extendedRejectIndication: 2,
  peripheralInitiatedFeaturesExchange: 3,
  ping: 4,
  dataPacketLengthExtension: 5,
  llPrivacy: 6,
  extendedScannerFilterPolicies: 7,
  le2mPhy: 8,
  stableModulationIndexTx: 9,
  stableModulationIndexRx: 10,
  leCodedPhy: 11,
  extendedAdvertising: 12,
  periodicAdvertising: 13,
  channelSelectionAlgorithm2: 14,
  powerClass1: 15,
  minimumNumberOfUsedChannels: 16,
});
