/**
 * Pairing method selection (Core Vol 3, Part H, 2.3.5.1) as data: the rules of Table 2.6 (LE legacy)
 * and Table 2.7 (LE Secure Connections) in `selectMethod`, and the IO capability mapping of Table 2.8
 * as two 5×5 tables indexed [responder IO][initiator IO].
 */
import { SMP_AUTH_REQ } from './pdus.js';

/**
 * Association models. Passkey entry says who shows the six digits and who types them:
 * `passkeyInitiatorDisplays` (initiator displays, responder inputs), `passkeyResponderDisplays`,
 * `passkeyBothInput` (both keyboards: the user types the same number on both).
 */
export type PairingMethod =
  | 'justWorks' | 'numericComparison' | 'oob'
  | 'passkeyInitiatorDisplays' | 'passkeyResponderDisplays' | 'passkeyBothInput';

const JW = 'justWorks', NC = 'numericComparison';
const ID = 'passkeyInitiatorDisplays', RD = 'passkeyResponderDisplays', BI = 'passkeyBothInput';

/**
 * Table 2.8, LE legacy column entries. Rows: responder DisplayOnly, DisplayYesNo, KeyboardOnly,
 * NoInputNoOutput, KeyboardDisplay; columns: initiator in the same order.
 */
export const LEGACY_IO_TABLE: readonly (readonly PairingMethod[])[] = [
  /* responder DisplayOnly     */ [JW, JW, RD, JW, RD],
  /* responder DisplayYesNo    */ [JW, JW, RD, JW, RD],
  /* responder KeyboardOnly    */ [ID, ID, BI, JW, ID],
  /* responder NoInputNoOutput */ [JW, JW, JW, JW, JW],
  /* responder KeyboardDisplay */ [ID, ID, RD, JW, ID],
];

/** Table 2.8, LE Secure Connections entries (numeric comparison where both can show and confirm). */
export const SC_IO_TABLE: readonly (readonly PairingMethod[])[] = [
  /* responder DisplayOnly     */ [JW, JW, RD, JW, RD],
  /* responder DisplayYesNo    */ [JW, NC, RD, JW, NC],
  /* responder KeyboardOnly    */ [ID, ID, BI, JW, ID],
  /* responder NoInputNoOutput */ [JW, JW, JW, JW, JW],
  /* responder KeyboardDisplay */ [ID, NC, RD, JW, NC],
];

export interface PairingFeatures {
  readonly ioCapability: number;
  readonly oobDataFlag: number;
  readonly authReq: number;
}

/**
 * The method both sides arrive at from the Pairing Request (initiator) and Response (responder).
 * LE legacy (Table 2.6): both OOB flags set → OOB; else neither MITM → Just Works; else Table 2.8.
 * LE Secure Connections (Table 2.7): either OOB flag set → OOB; else neither MITM → Just Works; else
 * Table 2.8. IO capabilities must be 0..4 (callers reject reserved values first).
 */
export function selectMethod(sc: boolean, initiator: PairingFeatures, responder: PairingFeatures): PairingMethod {
  const iOob = initiator.oobDataFlag === 1, rOob = responder.oobDataFlag === 1;
  if (sc ? iOob || rOob : iOob && rOob) return 'oob';
  if (!SMP_AUTH_REQ.has(initiator.authReq | responder.authReq, 'mitm')) return 'justWorks';
  return (sc ? SC_IO_TABLE : LEGACY_IO_TABLE)[responder.ioCapability]![initiator.ioCapability]!;
}

/** Whether a method gives MITM protection (an authenticated key): all but Just Works (2.3.5.6, 2.3.5.2). */
export const isAuthenticated = (m: PairingMethod): boolean => m !== 'justWorks';

export const isPasskey = (m: PairingMethod): boolean =>
  m === 'passkeyInitiatorDisplays' || m === 'passkeyResponderDisplays' || m === 'passkeyBothInput';

/** The method's name for messages and the decode report. */
export const PAIRING_METHOD_NAMES: Readonly<Record<PairingMethod, string>> = {
  justWorks: 'Just Works',
  numericComparison: 'Numeric Comparison',
  oob: 'Out of Band',
  passkeyInitiatorDisplays: 'Passkey Entry (initiator displays, responder inputs)',
  passkeyResponderDisplays: 'Passkey Entry (responder displays, initiator inputs)',
  passkeyBothInput: 'Passkey Entry (both input)',
};
