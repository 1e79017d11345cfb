import { bdAddr, bytes, named, x16, x8, type Field } from '../codec/field.js';
import { codeU8, defineTable, framedCodec, type PduOf, type RowSpec, type UnknownPdu } from '../codec/table.js';
import { bitfield } from '../codec/bits.js';

/**
 * Every Security Manager Protocol PDU (Core Vol 3, Part H, 3.5 pairing, 3.6 key distribution) as one
 * declarative table, carried on L2CAP CID 0x0006. Each PDU is a Code octet then fixed fields, so
 * every length is exact (3.3: a PDU of the wrong length is answered with Pairing Failed "Invalid
 * Parameters"; here it is a DecodeError the SMP layer turns into that answer).
 *
 * Keys, confirm and random values and public-key coordinates are kept as the octets on the wire
 * (little-endian, least significant octet first, Vol 3, Part H, 3.1), as views into the frame; the
 * crypto toolbox converts. Bit-field octets (AuthReq, key distribution) are bit-field fields
 * (codec/bits.ts): the value stays the wire number so every PDU round-trips exactly, reserved bits
 * included; SMP_AUTH_REQ / SMP_KEY_DIST name the bits for callers and describe().
 */

/** IO capabilities (Vol 3, Part H, 3.5.1, Table 3.4). */
export const SmpIoCapability = {
  DisplayOnly: 0x00,
  DisplayYesNo: 0x01,
  KeyboardOnly: 0x02,
  NoInputNoOutput: 0x03,
  KeyboardDisplay: 0x04,
} as const;
export type SmpIoCapability = (typeof SmpIoCapability)[keyof typeof SmpIoCapability];
export const SMP_IO_CAPABILITY_NAMES: Readonly<Record<number, string>> = {
  0x00: 'DisplayOnly', 0x01: 'DisplayYesNo', 0x02: 'KeyboardOnly', 0x03: 'NoInputNoOutput', 0x04: 'KeyboardDisplay',
};

/** OOB data flag (Vol 3, Part H, 3.5.1). */
export const SMP_OOB_NAMES: Readonly<Record<number, string>> = { 0x00: 'not present', 0x01: 'present' };

/**
 * AuthReq (Vol 3, Part H, 3.5.1, Figure 3.3): Bonding_Flags (2 bits; 0b01 = Bonding, Table 3.5), MITM,
 * SC, Keypress, CT2, 2 bits RFU. The field type names the bits: `SMP_AUTH_REQ.has(v, 'mitm')`,
 * `SMP_AUTH_REQ.pack({ bondingFlags: SMP_BONDING, sc: true })`; describe() prints `0x2d(bonding|mitm|sc|ct2)`.
 */
export const SMP_AUTH_REQ = bitfield(x8, {
  bondingFlags: { mask: 0x03, values: { 0x01: 'bonding' } },
  mitm: 0x04,
  sc: 0x08,
  keypress: 0x10,
  ct2: 0x20,
});
/** Bonding_Flags value "Bonding" (Vol 3, Part H, 3.5.1, Table 3.5); 0b00 is No Bonding, 0b1x reserved. */
export const SMP_BONDING = 0x01;
/** True when AuthReq's Bonding_Flags say Bonding (reserved values are not bonding). */
export const authReqBonds = (v: number): boolean => SMP_AUTH_REQ.get(v, 'bondingFlags') === SMP_BONDING;

/** Initiator / Responder Key Distribution (Vol 3, Part H, 3.6.1, Figure 3.11): EncKey, IdKey, SignKey, LinkKey, 4 bits RFU. */
export const SMP_KEY_DIST = bitfield(x8, {
  encKey: { mask: 0x01, label: 'enc' },
  idKey: { mask: 0x02, label: 'id' },
  signKey: { mask: 0x04, label: 'sign' },
  linkKey: { mask: 0x08, label: 'link' },
});

/** AuthReq bits as constants (kept for existing users; SMP_AUTH_REQ names them). */
export const SmpAuthReq = {
  BondingMask: SMP_AUTH_REQ.parts.bondingFlags.mask,
  Bonding: SMP_BONDING,
  Mitm: SMP_AUTH_REQ.parts.mitm.mask,
  SecureConnections: SMP_AUTH_REQ.parts.sc.mask,
  Keypress: SMP_AUTH_REQ.parts.keypress.mask,
  Ct2: SMP_AUTH_REQ.parts.ct2.mask,
} as const;

/** Key distribution bits as constants (kept for existing users; SMP_KEY_DIST names them). */
export const SmpKeyDist = {
  EncKey: SMP_KEY_DIST.parts.encKey.mask,
  IdKey: SMP_KEY_DIST.parts.idKey.mask,
  SignKey: SMP_KEY_DIST.parts.signKey.mask,
  LinkKey: SMP_KEY_DIST.parts.linkKey.mask,
} as const;

/** Pairing Failed reasons (Vol 3, Part H, 3.5.5, Table 3.7). */
export const SmpPairingFailedReason = {
  PasskeyEntryFailed: 0x01,
  OobNotAvailable: 0x02,
  AuthenticationRequirements: 0x03,
  ConfirmValueFailed: 0x04,
  PairingNotSupported: 0x05,
  EncryptionKeySize: 0x06,
  CommandNotSupported: 0x07,
  UnspecifiedReason: 0x08,
  RepeatedAttempts: 0x09,
  InvalidParameters: 0x0a,
  DhKeyCheckFailed: 0x0b,
  NumericComparisonFailed: 0x0c,
  BrEdrPairingInProgress: 0x0d,
  CrossTransportKeyDerivationNotAllowed: 0x0e,
  KeyRejected: 0x0f,
  Busy: 0x10,
} as const;
export type SmpPairingFailedReason = (typeof SmpPairingFailedReason)[keyof typeof SmpPairingFailedReason];
export const SMP_PAIRING_FAILED_NAMES: Readonly<Record<number, string>> = {
  0x01: 'Passkey Entry Failed',
  0x02: 'OOB Not Available',
  0x03: 'Authentication Requirements',
  0x04: 'Confirm Value Failed',
  0x05: 'Pairing Not Supported',
  0x06: 'Encryption Key Size',
  0x07: 'Command Not Supported',
  0x08: 'Unspecified Reason',
  0x09: 'Repeated Attempts',
  0x0a: 'Invalid Parameters',
  0x0b: 'DHKey Check Failed',
  0x0c: 'Numeric Comparison Failed',
  0x0d: 'BR/EDR pairing in progress',
  0x0e: 'Cross-transport Key Derivation/Generation not allowed',
  0x0f: 'Key Rejected',
  0x10: 'Busy',
};

/** Keypress notification types (Vol 3, Part H, 3.5.8, Table 3.8). */
export const SMP_KEYPRESS_NAMES: Readonly<Record<number, string>> = {
  0x00: 'Passkey entry started',
  0x01: 'Passkey digit entered',
  0x02: 'Passkey digit erased',
  0x03: 'Passkey cleared',
  0x04: 'Passkey entry completed',
};

/** Identity address types (Vol 3, Part H, 3.6.5). */
export const SMP_ADDRESS_TYPE_NAMES: Readonly<Record<number, string>> = { 0x00: 'public', 0x01: 'static random' };

/** `0x2d(bonding|mitm|sc|ct2)` for describe(). */
export function describeAuthReq(v: number): string {
  return SMP_AUTH_REQ.describeBits(v);
}

/** `0x0f(enc|id|sign|link)` for describe(). */
export function describeKeyDist(v: number): string {
  return SMP_KEY_DIST.describeBits(v);
}

const authReq: Field<number> = SMP_AUTH_REQ;
const keyDist: Field<number> = SMP_KEY_DIST;
const key128 = bytes(16);

const row = <const S extends RowSpec>(s: S): S => s;

const pairingFeatures = {
  ioCapability: named(x8, SMP_IO_CAPABILITY_NAMES),
  oobDataFlag: named(x8, SMP_OOB_NAMES),
  authReq,
  maxEncryptionKeySize: { ...x8, fmt: (v: number) => String(v) },
  initiatorKeyDistribution: keyDist,
  responderKeyDistribution: keyDist,
};

export const SMP_PDUS = {
  pairingRequest: row({ code: 0x01, name: 'Pairing Request', spec: 'Vol 3, Part H, 3.5.1', fields: pairingFeatures }),
  pairingResponse: row({ code: 0x02, name: 'Pairing Response', spec: 'Vol 3, Part H, 3.5.2', fields: pairingFeatures }),
  pairingConfirm: row({ code: 0x03, name: 'Pairing Confirm', spec: 'Vol 3, Part H, 3.5.3', fields: { confirmValue: key128 } }),
  pairingRandom: row({ code: 0x04, name: 'Pairing Random', spec: 'Vol 3, Part H, 3.5.4', fields: { randomValue: key128 } }),
  pairingFailed: row({ code: 0x05, name: 'Pairing Failed', spec: 'Vol 3, Part H, 3.5.5',
    fields: { reason: named(x8, SMP_PAIRING_FAILED_NAMES) } }),
  encryptionInformation: row({ code: 0x06, name: 'Encryption Information', spec: 'Vol 3, Part H, 3.6.2',
    fields: { longTermKey: key128 } }),
  centralIdentification: row({ code: 0x07, name: 'Central Identification', spec: 'Vol 3, Part H, 3.6.3',
    fields: { ediv: x16, rand: bytes(8) } }),
  identityInformation: row({ code: 0x08, name: 'Identity Information', spec: 'Vol 3, Part H, 3.6.4',
    fields: { identityResolvingKey: key128 } }),
  identityAddressInformation: row({ code: 0x09, name: 'Identity Address Information', spec: 'Vol 3, Part H, 3.6.5',
    fields: { addrType: named(x8, SMP_ADDRESS_TYPE_NAMES), bdAddr } }),
  signingInformation: row({ code: 0x0a, name: 'Signing Information', spec: 'Vol 3, Part H, 3.6.6',
    fields: { signatureKey: key128 } }),
  securityRequest: row({ code: 0x0b, name: 'Security Request', spec: 'Vol 3, Part H, 3.6.7', fields: { authReq } }),
  pairingPublicKey: row({ code: 0x0c, name: 'Pairing Public Key', spec: 'Vol 3, Part H, 3.5.6',
    fields: { publicKeyX: bytes(32), publicKeyY: bytes(32) } }),
  pairingDhKeyCheck: row({ code: 0x0d, name: 'Pairing DHKey Check', spec: 'Vol 3, Part H, 3.5.7',
    fields: { dhKeyCheck: key128 } }),
  pairingKeypressNotification: row({ code: 0x0e, name: 'Pairing Keypress Notification', spec: 'Vol 3, Part H, 3.5.8',
    fields: { notificationType: named(x8, SMP_KEYPRESS_NAMES) } }),
} as const;

export const SMP_TABLE = defineTable('smp', SMP_PDUS);

type Rows = typeof SMP_PDUS;
export type SmpKind = keyof Rows;
export type SmpPduOf<K extends SmpKind> = PduOf<Rows, K>;
/** The exhaustive union of every SMP PDU. */
export type SmpPdu = PduOf<Rows>;
export type UnknownSmpPdu = UnknownPdu;

/** The table's one codec: Code (1) then the body (Vol 3, Part H, 3.3). */
export const SMP_CODEC = framedCodec<Rows, {}, UnknownSmpPdu>(SMP_TABLE, codeU8, { what: 'SMP PDU' });
const codec = SMP_CODEC;

/** Decode one SMP PDU (Code first). Throws only DecodeError; unknown codes decode to `unknown`. */
export function decodeSmp(frame: Uint8Array): SmpPdu | UnknownSmpPdu {
  return codec.decode(frame);
}
/** Encode one SMP PDU at its exact size. Throws EncodeError. */
export function encodeSmp(pdu: SmpPdu | UnknownSmpPdu): Uint8Array {
  return codec.encode(pdu);
}
export function smpSizeOf(pdu: SmpPdu | UnknownSmpPdu): number {
  return codec.sizeOf(pdu);
}
/** One-line description for logs and the CLI. */
export function describeSmp(pdu: SmpPdu | UnknownSmpPdu): string {
  return codec.describe(pdu);
}
