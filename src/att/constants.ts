/**
 * ATT numeric constants (Core Vol 3, Part F). Code sets are `as const` objects with derived unions
 * (STYLE c.9); name tables sit beside them so errors and describe() can say "Attribute Not Found".
 */

/** Default ATT_MTU on an LE bearer (Vol 3, Part F, 3.2.8). */
export const ATT_DEFAULT_LE_MTU = 23;
/** Minimum ATT_MTU on an enhanced (EATT) bearer (Vol 3, Part F, 3.2.8). */
export const ATT_MIN_EATT_MTU = 64;
/** Largest ATT_MTU a 16-bit MTU field can carry in practice; 517 = 512-octet value + 5 (Vol 3, Part F, 3.2.9). */
export const ATT_MAX_MTU = 517;
/** Longest attribute value (Vol 3, Part F, 3.2.9). */
export const ATT_MAX_VALUE_LENGTH = 512;
/** A request not answered within 30 s kills the bearer (Vol 3, Part F, 3.3.3). */
export const ATT_TRANSACTION_TIMEOUT_MS = 30_000;
/** Length of the authentication signature of a Signed Write Command (Vol 3, Part F, 3.4.5.4). */
export const ATT_SIGNATURE_LENGTH = 12;

/** Opcode bit 6: the PDU is a command (no response), Vol 3, Part F, 3.3.1. */
export const ATT_OPCODE_COMMAND_FLAG = 0x40;
/** Opcode bit 7: an authentication signature follows, Vol 3, Part F, 3.3.1. */
export const ATT_OPCODE_SIGNED_FLAG = 0x80;

/** Execute Write Request flags (Vol 3, Part F, 3.4.6.3). */
export const AttExecuteWriteFlags = {
  CancelAll: 0x00,
  WriteAll: 0x01,
} as const;
export type AttExecuteWriteFlags = (typeof AttExecuteWriteFlags)[keyof typeof AttExecuteWriteFlags];

/** Find Information Response formats (Vol 3, Part F, 3.4.3.2). */
export const AttFindInformationFormat = {
  Uuid16: 0x01,
  Uuid128: 0x02,
} as const;
export type AttFindInformationFormat = (typeof AttFindInformationFormat)[keyof typeof AttFindInformationFormat];

/**
 * ATT error codes (Vol 3, Part F, 3.4.1.1, Table 3.4), plus the Common Profile and Service Error
 * Codes 0xFC–0xFF (Core Specification Supplement, Part B, 1.2).
 */
export const AttErrorCode = {
  InvalidHandle: 0x01,
  ReadNotPermitted: 0x02,
  WriteNotPermitted: 0x03,
  InvalidPdu: 0x04,
  InsufficientAuthentication: 0x05,
  RequestNotSupported: 0x06,
  InvalidOffset: 0x07,
  InsufficientAuthorization: 0x08,
  PrepareQueueFull: 0x09,
  AttributeNotFound: 0x0a,
  AttributeNotLong: 0x0b,
  EncryptionKeySizeTooShort: 0x0c,
  InvalidAttributeValueLength: 0x0d,
  UnlikelyError: 0x0e,
  InsufficientEncryption: 0x0f,
  UnsupportedGroupType: 0x10,
  InsufficientResources: 0x11,
  DatabaseOutOfSync: 0x12,
  ValueNotAllowed: 0x13,
  WriteRequestRejected: 0xfc,
  CccdImproperlyConfigured: 0xfd,
  ProcedureAlreadyInProgress: 0xfe,
  OutOfRange: 0xff,
} as const;
export type AttErrorCode = (typeof AttErrorCode)[keyof typeof AttErrorCode];

export const ATT_ERROR_NAMES: Readonly<Record<number, string>> = {
  0x01: 'Invalid Handle',
  0x02: 'Read Not Permitted',
  0x03: 'Write Not Permitted',
  0x04: 'Invalid PDU',
  0x05: 'Insufficient Authentication',
  0x06: 'Request Not Supported',
  0x07: 'Invalid Offset',
  0x08: 'Insufficient Authorization',
  0x09: 'Prepare Queue Full',
  0x0a: 'Attribute Not Found',
  0x0b: 'Attribute Not Long',
  0x0c: 'Encryption Key Size Too Short',
  0x0d: 'Invalid Attribute Value Length',
  0x0e: 'Unlikely Error',
  0x0f: 'Insufficient Encryption',
  0x10: 'Unsupported Group Type',
  0x11: 'Insufficient Resources',
  0x12: 'Database Out Of Sync',
  0x13: 'Value Not Allowed',
  0xfc: 'Write Request Rejected',
  0xfd: 'Client Characteristic Configuration Descriptor Improperly Configured',
  0xfe: 'Procedure Already in Progress',
  0xff: 'Out of Range',
};

/**
 * The name of any ATT error code, including the ranges: 0x80–0x9F are application errors defined
 * by the higher layer, 0xE0–0xFF common profile and service errors (Vol 3, Part F, 3.4.1.1).
 */
export function attErrorName(code: number): string {
  const n = ATT_ERROR_NAMES[code];
  if (n) return n;
  if (code >= 0x80 && code <= 0x9f) return `Application Error 0x${code.toString(16)}`;
  if (code >= 0xe0) return `Common Profile and Service Error 0x${code.toString(16)}`;
  return `Reserved 0x${code.toString(16).padStart(2, '0')}`;
}
