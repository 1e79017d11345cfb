import { x8, named, type Field } from '../codec/field.js';

/**
 * HCI status and error codes, Core Vol 1, Part F, 1.3 (list of error codes). The same code space is
 * used for command status, Command Complete status, disconnect reasons and LL error codes.
 */
export const HCI_STATUS = {
  0x00: 'Success',
  0x01: 'Unknown HCI Command',
  0x02: 'Unknown Connection Identifier',
  0x03: 'Hardware Failure',
  0x04: 'Page Timeout',
  0x05: 'Authentication Failure',
  0x06: 'PIN or Key Missing',
  0x07: 'Memory Capacity Exceeded',
  0x08: 'Connection Timeout',
  0x09: 'Connection Limit Exceeded',
  0x0a: 'Synchronous Connection Limit To A Device Exceeded',
  0x0b: 'Connection Already Exists',
  0x0c: 'Command Disallowed',
  0x0d: 'Connection Rejected due to Limited Resources',
  0x0e: 'Connection Rejected Due To Security Reasons',
  0x0f: 'Connection Rejected due to Unacceptable BD_ADDR',
  0x10: 'Connection Accept Timeout Exceeded',
  0x11: 'Unsupported Feature or Parameter Value',
  0x12: 'Invalid HCI Command Parameters',
  0x13: 'Remote User Terminated Connection',
  0x14: 'Remote Device Terminated Connection due to Low Resources',
  0x15: 'Remote Device Terminated Connection due to Power Off',
  0x16: 'Connection Terminated By Local Host',
  0x17: 'Repeated Attempts',
  0x18: 'Pairing Not Allowed',
  0x19: 'Unknown LMP PDU',
  0x1a: 'Unsupported Remote Feature',
  0x1b: 'SCO Offset Rejected',
  0x1c: 'SCO Interval Rejected',
  0x1d: 'SCO Air Mode Rejected',
  0x1e: 'Invalid LMP Parameters / Invalid LL Parameters',
  0x1f: 'Unspecified Error',
  0x20: 'Unsupported LMP Parameter Value / Unsupported LL Parameter Value',
  0x21: 'Role Change Not Allowed',
  0x22: 'LMP Response Timeout / LL Response Timeout',
  0x23: 'LMP Error Transaction Collision / LL Procedure Collision',
  0x24: 'LMP PDU Not Allowed',
  0x25: 'Encryption Mode Not Acceptable',
  0x26: 'Link Key cannot be Changed',
  0x27: 'Requested QoS Not Supported',
  0x28: 'Instant Passed',
  0x29: 'Pairing With Unit Key Not Supported',
  0x2a: 'Different Transaction Collision',
  0x2c: 'QoS Unacceptable Parameter',
  0x2d: 'QoS Rejected',
  0x2e: 'Channel Classification Not Supported',
  0x2f: 'Insufficient Security',
  0x30: 'Parameter Out Of Mandatory Range',
  0x32: 'Role Switch Pending',
  0x34: 'Reserved Slot Violation',
  0x35: 'Role Switch Failed',
  0x36: 'Extended Inquiry Response Too Large',
  0x37: 'Secure Simple Pairing Not Supported By Host',
  0x38: 'Host Busy - Pairing',
  0x39: 'Connection Rejected due to No Suitable Channel Found',
  0x3a: 'Controller Busy',
  0x3b: 'Unacceptable Connection Parameters',
  0x3c: 'Advertising Timeout',
  0x3d: 'Connection Terminated due to MIC Failure',
  0x3e: 'Connection Failed to be Established / Synchronization Timeout',
  0x40: 'Coarse Clock Adjustment Rejected but Will Try to Adjust Using Clock Dragging',
  0x41: 'Type0 Submap Not Defined',
  0x42: 'Unknown Advertising Identifier',
  0x43: 'Limit Reached',
  0x44: 'Operation Cancelled by Host',
  0x45: 'Packet Too Long',
  0x46: 'Too Late',
  0x47: 'Too Early',
} as const satisfies Record<number, string>;

export type HciStatusCode = keyof typeof HCI_STATUS;

/** Named constants for the codes the host itself tests for. */
export const HciStatus = {
  Success: 0x00,
  UnknownHciCommand: 0x01,
  UnknownConnectionIdentifier: 0x02,
  HardwareFailure: 0x03,
  AuthenticationFailure: 0x05,
  PinOrKeyMissing: 0x06,
  MemoryCapacityExceeded: 0x07,
  ConnectionTimeout: 0x08,
  ConnectionLimitExceeded: 0x09,
  ConnectionAlreadyExists: 0x0b,
  CommandDisallowed: 0x0c,
  UnsupportedFeatureOrParameterValue: 0x11,
  InvalidHciCommandParameters: 0x12,
  RemoteUserTerminatedConnection: 0x13,
  RemoteDeviceTerminatedLowResources: 0x14,
  RemoteDeviceTerminatedPowerOff: 0x15,
  ConnectionTerminatedByLocalHost: 0x16,
  UnsupportedRemoteFeature: 0x1a,
  UnspecifiedError: 0x1f,
  LlResponseTimeout: 0x22,
  LlProcedureCollision: 0x23,
  InstantPassed: 0x28,
  DifferentTransactionCollision: 0x2a,
  InsufficientSecurity: 0x2f,
  ControllerBusy: 0x3a,
  UnacceptableConnectionParameters: 0x3b,
  AdvertisingTimeout: 0x3c,
  ConnectionTerminatedMicFailure: 0x3d,
  ConnectionFailedToBeEstablished: 0x3e,
  UnknownAdvertisingIdentifier: 0x42,
  LimitReached: 0x43,
  OperationCancelledByHost: 0x44,
} as const;

const NAMES: Readonly<Record<number, string>> = HCI_STATUS;

/** The spec name of an HCI status / error code, e.g. 0x13 → "Remote User Terminated Connection". */
export function statusName(code: number): string {
  return NAMES[code] ?? `Reserved (0x${(code & 0xff).toString(16).padStart(2, '0')})`;
}

/** A status (or reason) byte: decodes to the number, describes by name. */
export const statusField: Field<number> = named(x8, NAMES);
