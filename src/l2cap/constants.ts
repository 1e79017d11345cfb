/**
 * L2CAP numeric constants (Core Vol 3, Part A). Code sets are `as const` objects with derived unions
 * and name tables beside them (STYLE c.9).
 */

/** Basic L2CAP header: Length (2) + Channel ID (2), Vol 3, Part A, 3.1. */
export const L2CAP_HEADER_SIZE = 4;
/** Signalling command header: Code, Identifier, Length (Vol 3, Part A, 4). */
export const L2CAP_SIG_HEADER_SIZE = 4;
/** Minimum signalling MTU on LE-U (MTU_sig, Vol 3, Part A, 4). */
export const L2CAP_LE_SIG_MTU = 23;
/** Minimum signalling MTU on ACL-U (Vol 3, Part A, 4). */
export const L2CAP_BREDR_SIG_MTU = 48;
/**
 * Response timeout (RTX) for a signalling request: the spec allows 1–60 s (Vol 3, Part A, 6.2.1);
 * a peer that has not answered by then is treated as gone for that request.
 */
export const L2CAP_RTX_TIMEOUT_MS = 30_000;

/** Fixed channel identifiers (Vol 3, Part A, 2.1). */
export const Cid = {
  Null: 0x0000,
  BrEdrSignalling: 0x0001,
  Connectionless: 0x0002,
  /** AMP Manager protocol (BR/EDR; AMP was removed in Core 5.3). */
  AmpManager: 0x0003,
  Att: 0x0004,
  LeSignalling: 0x0005,
  Smp: 0x0006,
  /** BR/EDR Security Manager (cross-transport key derivation). */
  BrEdrSmp: 0x0007,
  AmpTest: 0x003f,
} as const;
export type Cid = (typeof Cid)[keyof typeof Cid];

export const ATT_CID = Cid.Att;
export const LE_SIGNALLING_CID = Cid.LeSignalling;
export const SMP_CID = Cid.Smp;
export const BREDR_SIGNALLING_CID = Cid.BrEdrSignalling;

/** Dynamically allocated CIDs on LE-U (Vol 3, Part A, 2.1). */
export const LE_DYNAMIC_CID_FIRST = 0x0040;
export const LE_DYNAMIC_CID_LAST = 0x007f;

export const CID_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'null',
  0x0001: 'BR/EDR signalling',
  0x0002: 'connectionless',
  0x0003: 'AMP manager',
  0x0004: 'ATT',
  0x0005: 'LE signalling',
  0x0006: 'SMP',
  0x0007: 'BR/EDR SMP',
  0x003f: 'AMP test',
};

/** Command Reject reasons (Vol 3, Part A, 4.1). */
export const CommandRejectReason = {
  CommandNotUnderstood: 0x0000,
  SignalingMtuExceeded: 0x0001,
  InvalidCidInRequest: 0x0002,
} as const;
export type CommandRejectReason = (typeof CommandRejectReason)[keyof typeof CommandRejectReason];
export const COMMAND_REJECT_REASON_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'Command not understood',
  0x0001: 'Signaling MTU exceeded',
  0x0002: 'Invalid CID in request',
};

/** Connection Parameter Update Response results (Vol 3, Part A, 4.21). */
export const ConnectionParameterUpdateResult = {
  Accepted: 0x0000,
  Rejected: 0x0001,
} as const;
export type ConnectionParameterUpdateResult =
  (typeof ConnectionParameterUpdateResult)[keyof typeof ConnectionParameterUpdateResult];
export const CONNECTION_PARAMETER_UPDATE_RESULT_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'Connection Parameters accepted',
  0x0001: 'Connection Parameters rejected',
};

/**
 * Results of the LE credit based and (enhanced) credit based connection responses
 * (Vol 3, Part A, 4.23 and 4.26).
 */
export const CreditBasedConnectionResult = {
  Successful: 0x0000,
  SpsmNotSupported: 0x0002,
  SomeRefusedNoResources: 0x0004,
  InsufficientAuthentication: 0x0005,
  InsufficientAuthorization: 0x0006,
  EncryptionKeySizeTooShort: 0x0007,
  InsufficientEncryption: 0x0008,
  InvalidSourceCid: 0x0009,
  SourceCidAlreadyAllocated: 0x000a,
  UnacceptableParameters: 0x000b,
  InvalidParameters: 0x000c,
  PendingNoFurtherInformation: 0x000d,
  PendingAuthentication: 0x000e,
  PendingAuthorization: 0x000f,
} as const;
export type CreditBasedConnectionResult = (typeof CreditBasedConnectionResult)[keyof typeof CreditBasedConnectionResult];
export const CREDIT_BASED_CONNECTION_RESULT_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'Connection successful',
  0x0002: 'SPSM not supported',
  0x0004: 'No resources available',
  0x0005: 'Insufficient authentication',
  0x0006: 'Insufficient authorization',
  0x0007: 'Encryption key size too short',
  0x0008: 'Insufficient encryption',
  0x0009: 'Invalid Source CID',
  0x000a: 'Source CID already allocated',
  0x000b: 'Unacceptable parameters',
  0x000c: 'Invalid parameters',
  0x000d: 'Pending, no further information',
  0x000e: 'Pending, authentication',
  0x000f: 'Pending, authorization',
};

/** Credit Based Reconfigure Response results (Vol 3, Part A, 4.28). */
export const CreditBasedReconfigureResult = {
  Successful: 0x0000,
  MtuReductionNotAllowed: 0x0001,
  MpsReductionNotAllowed: 0x0002,
  InvalidDestinationCid: 0x0003,
  UnacceptableParameters: 0x0004,
} as const;
export type CreditBasedReconfigureResult = (typeof CreditBasedReconfigureResult)[keyof typeof CreditBasedReconfigureResult];
export const CREDIT_BASED_RECONFIGURE_RESULT_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'Reconfiguration successful',
  0x0001: 'MTU reduction not allowed',
  0x0002: 'MPS reduction for multiple channels not allowed',
  0x0003: 'One or more Destination CIDs invalid',
  0x0004: 'Unacceptable parameters',
};

/** BR/EDR Connection Response results (Vol 3, Part A, 4.3). */
export const CONNECTION_RESULT_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'Connection successful',
  0x0001: 'Connection pending',
  0x0002: 'PSM not supported',
  0x0003: 'Security block',
  0x0004: 'No resources available',
  0x0006: 'Invalid Source CID',
  0x0007: 'Source CID already allocated',
};

/** BR/EDR Configuration Response results (Vol 3, Part A, 4.5). */
export const CONFIGURATION_RESULT_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'Success',
  0x0001: 'Failure - unacceptable parameters',
  0x0002: 'Failure - rejected',
  0x0003: 'Failure - unknown options',
  0x0004: 'Pending',
  0x0005: 'Failure - flow spec rejected',
};

/** Information Request InfoTypes (Vol 3, Part A, 4.10). */
export const INFO_TYPE_NAMES: Readonly<Record<number, string>> = {
  0x0001: 'Connectionless MTU',
  0x0002: 'Extended features supported',
  0x0003: 'Fixed channels supported',
};

/** Information Response results (Vol 3, Part A, 4.11). */
export const INFO_RESULT_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'Success',
  0x0001: 'Not supported',
};

/** HCI ACL Packet_Boundary_Flag values as L2CAP uses them (Core Vol 4, Part E, 5.4.2). */
export const AclPb = {
  /** First packet of a non-automatically-flushable PDU (host → controller; BR/EDR and LE). */
  FirstNonFlushable: 0b00,
  /** Continuing fragment. */
  Continuing: 0b01,
  /** First packet of an automatically flushable PDU (the only "first" value controller → host on LE). */
  FirstFlushable: 0b10,
  /** A complete automatically flushable PDU (deprecated, was AMP only). */
  Complete: 0b11,
} as const;
