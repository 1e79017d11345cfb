/**
 * HCI numeric constants (Core Vol 4, Part E). Code sets are `as const` objects with derived union
 * types (STYLE c.9); the tables in commands.ts / events.ts / le-events.ts hold the per-PDU data.
 */

/** Opcode Group Fields, Vol 4, Part E, 5.4.1 and 7.1–7.8. */
export const OGF = {
  linkControl: 0x01,
  linkPolicy: 0x02,
  controllerBaseband: 0x03,
  informational: 0x04,
  statusParameters: 0x05,
  testing: 0x06,
  le: 0x08,
  vendor: 0x3f,
} as const;
export type Ogf = (typeof OGF)[keyof typeof OGF];

/** Opcode = OGF (6 bits) << 10 | OCF (10 bits), Vol 4, Part E, 5.4.1. */
export const opcodeOf = (ogf: number, ocf: number): number => ((ogf & 0x3f) << 10) | (ocf & 0x3ff);
export const ogfOf = (opcode: number): number => opcode >>> 10;
export const ocfOf = (opcode: number): number => opcode & 0x3ff;

/**
 * Opcode 0x0000 in Command Complete / Command Status: no command, the event only grants
 * Num_HCI_Command_Packets credits (Vol 4, Part E, 7.7.14: "Command_Opcode 0x0000 ... used to update
 * Num_HCI_Command_Packets").
 */
export const NOP_OPCODE = 0x0000;

/** Header sizes after the H4 indicator, Vol 4, Part E, 5.4.1–5.4.5. */
export const HCI_COMMAND_HEADER_SIZE = 3;
export const HCI_EVENT_HEADER_SIZE = 2;
export const HCI_ACL_HEADER_SIZE = 4;
export const HCI_SCO_HEADER_SIZE = 3;
export const HCI_ISO_HEADER_SIZE = 4;

/** Event codes with a special framing role. */
export const EVT_COMMAND_COMPLETE = 0x0e;
export const EVT_COMMAND_STATUS = 0x0f;
export const EVT_LE_META = 0x3e;
/** Vendor-specific event code, Vol 4, Part E, 5.4.4 (kept raw). */
export const EVT_VENDOR = 0xff;

/** ACL Packet_Boundary_Flag, Vol 4, Part E, 5.4.2. */
export const AclPb = {
  /** First non-automatically-flushable packet (host → controller, LE: the normal start). */
  firstNonFlushable: 0b00,
  continuing: 0b01,
  /** First automatically-flushable packet (controller → host start fragment). */
  firstFlushable: 0b10,
  /** A complete L2CAP PDU, automatically flushable (deprecated, BR/EDR loopback only). */
  complete: 0b11,
} as const;
export type AclPb = (typeof AclPb)[keyof typeof AclPb];

/** ACL Broadcast_Flag, Vol 4, Part E, 5.4.2. */
export const AclBc = {
  pointToPoint: 0b00,
  activePeripheralBroadcast: 0b01,
} as const;

/** Connection handles are 12 bits (0x0000–0x0EFF valid), Vol 4, Part E, 5.4.2. */
export const MAX_CONNECTION_HANDLE = 0x0eff;

/** LE address types (Own/Peer_Address_Type), Vol 4, Part E, 7.8.5 / 7.7.65.1. */
export const LeAddressType = {
  public: 0x00,
  random: 0x01,
  publicIdentity: 0x02,
  randomIdentity: 0x03,
} as const;

/** PHY bit positions in *_PHYs bitmasks, Vol 4, Part E, 7.8.48 / 7.8.64 / 7.8.66. */
export const LePhyBit = {
  le1m: 0x01,
  le2m: 0x02,
  leCoded: 0x04,
} as const;

/** PHY values (not bits) in PHY Update Complete / Read PHY / reports, Vol 4, Part E, 7.7.65.12. */
export const LePhy = {
  le1m: 0x01,
  le2m: 0x02,
  leCoded: 0x03,
} as const;

/** Legacy Advertising Report Event_Type values, Vol 4, Part E, 7.7.65.2. */
export const LeAdvEventType = {
  advInd: 0x00,
  advDirectInd: 0x01,
  advScanInd: 0x02,
  advNonconnInd: 0x03,
  scanRsp: 0x04,
} as const;

/** Extended Advertising Report Event_Type bits, Vol 4, Part E, 7.7.65.13. */
export const LeExtAdvEventBits = {
  connectable: 1 << 0,
  scannable: 1 << 1,
  directed: 1 << 2,
  scanResponse: 1 << 3,
  legacy: 1 << 4,
  /** Data_Status in bits 5–6: 0 complete, 1 incomplete (more to come), 2 incomplete (truncated). */
  dataStatusShift: 5,
  dataStatusMask: 0b11 << 5,
} as const;

/** Extended Advertising Report Data_Status values (bits 5–6 of Event_Type). */
export const LeExtAdvDataStatus = {
  complete: 0,
  incompleteMore: 1,
  incompleteTruncated: 2,
} as const;

/** LE Set Extended Advertising Data Operation, Vol 4, Part E, 7.8.54. */
export const LeAdvDataOperation = {
  intermediate: 0x00,
  first: 0x01,
  last: 0x02,
  complete: 0x03,
  unchanged: 0x04,
} as const;

/** Role in LE Connection Complete, Vol 4, Part E, 7.7.65.1. */
export const LeRole = {
  central: 0x00,
  peripheral: 0x01,
} as const;
