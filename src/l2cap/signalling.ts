import { ByteReader } from '../bytes/reader.js';
import { hex16, toHex } from '../bytes/hex.js';
import { EncodeError } from '../errors.js';
import { named, repeated, rest, u16, x16, type Field } from '../codec/field.js';
import { defineTable, framedCodec, type Framing, type PduOf, type RowSpec } from '../codec/table.js';
import {
  COMMAND_REJECT_REASON_NAMES, CONFIGURATION_RESULT_NAMES, CONNECTION_PARAMETER_UPDATE_RESULT_NAMES, CONNECTION_RESULT_NAMES,
  CREDIT_BASED_CONNECTION_RESULT_NAMES, CREDIT_BASED_RECONFIGURE_RESULT_NAMES, INFO_RESULT_NAMES, INFO_TYPE_NAMES,
  L2CAP_SIG_HEADER_SIZE,
} from './constants.js';

/**
 * L2CAP signalling commands (Vol 3, Part A, 4) as one declarative table: the LE signalling channel
 * (CID 0x0005) commands a central meets, and the BR/EDR signalling (CID 0x0001) commands that occur
 * in real captures. Section numbers follow Core 5.2 (where 4.12–4.19 are the AMP commands, removed in
 * 5.3 and not listed here: they decode as `unknown`).
 *
 * A signalling C-frame holds commands framed as Code (1), Identifier (1), Length (2), Data. On LE-U a
 * C-frame carries exactly one command, on ACL-U it may carry several (Vol 3, Part A, 4), so the
 * decoder returns a list. Identifier 0x00 is illegal for requests; the decoder keeps it and leaves
 * the answer (Command Reject) to the handler.
 */

interface SigRowSpec extends RowSpec {
  readonly response?: string;
}

const row = <const S extends SigRowSpec>(s: S): S => s;
const cids: Field<number[]> = { ...repeated(x16), fmt: v => '[' + v.map(hex16).join(', ') + ']' };
/** Intervals in units of 1.25 ms, latency in events, supervision timeout in 10 ms (Vol 3, Part A, 4.20). */
const ms125: Field<number> = { ...u16, fmt: v => `${v} (${(v * 1.25).toFixed(2)} ms)` };
const ms10: Field<number> = { ...u16, fmt: v => `${v} (${v * 10} ms)` };

export const SIGNALLING_COMMANDS = {
  commandRejectRsp: row({ code: 0x01, name: 'L2CAP_COMMAND_REJECT_RSP', spec: 'Vol 3, Part A, 4.1',
    fields: { reason: named(x16, COMMAND_REJECT_REASON_NAMES), data: rest } }),
  connectionReq: row({ code: 0x02, name: 'L2CAP_CONNECTION_REQ', spec: 'Vol 3, Part A, 4.2', response: 'connectionRsp',
    fields: { psm: x16, sourceCid: x16 } }),
  connectionRsp: row({ code: 0x03, name: 'L2CAP_CONNECTION_RSP', spec: 'Vol 3, Part A, 4.3',
    fields: { destinationCid: x16, sourceCid: x16, result: named(x16, CONNECTION_RESULT_NAMES), status: x16 } }),
  configurationReq: row({ code: 0x04, name: 'L2CAP_CONFIGURATION_REQ', spec: 'Vol 3, Part A, 4.4', response: 'configurationRsp',
    fields: { destinationCid: x16, flags: x16, options: rest } }),
  configurationRsp: row({ code: 0x05, name: 'L2CAP_CONFIGURATION_RSP', spec: 'Vol 3, Part A, 4.5',
    fields: { sourceCid: x16, flags: x16, result: named(x16, CONFIGURATION_RESULT_NAMES), options: rest } }),
  disconnectionReq: row({ code: 0x06, name: 'L2CAP_DISCONNECTION_REQ', spec: 'Vol 3, Part A, 4.6', response: 'disconnectionRsp',
    fields: { destinationCid: x16, sourceCid: x16 } }),
  disconnectionRsp: row({ code: 0x07, name: 'L2CAP_DISCONNECTION_RSP', spec: 'Vol 3, Part A, 4.7',
    fields: { destinationCid: x16, sourceCid: x16 } }),
  echoReq: row({ code: 0x08, name: 'L2CAP_ECHO_REQ', spec: 'Vol 3, Part A, 4.8', response: 'echoRsp', fields: { data: rest } }),
  echoRsp: row({ code: 0x09, name: 'L2CAP_ECHO_RSP', spec: 'Vol 3, Part A, 4.9', fields: { data: rest } }),
  informationReq: row({ code: 0x0a, name: 'L2CAP_INFORMATION_REQ', spec: 'Vol 3, Part A, 4.10', response: 'informationRsp',
    fields: { infoType: named(x16, INFO_TYPE_NAMES) } }),
  informationRsp: row({ code: 0x0b, name: 'L2CAP_INFORMATION_RSP', spec: 'Vol 3, Part A, 4.11',
    fields: { infoType: named(x16, INFO_TYPE_NAMES), result: named(x16, INFO_RESULT_NAMES), data: rest } }),
  connectionParameterUpdateReq: row({ code: 0x12, name: 'L2CAP_CONNECTION_PARAMETER_UPDATE_REQ', spec: 'Vol 3, Part A, 4.20',
    response: 'connectionParameterUpdateRsp',
    fields: { intervalMin: ms125, intervalMax: ms125, latency: u16, timeout: ms10 } }),
  connectionParameterUpdateRsp: row({ code: 0x13, name: 'L2CAP_CONNECTION_PARAMETER_UPDATE_RSP', spec: 'Vol 3, Part A, 4.21',
    fields: { result: named(x16, CONNECTION_PARAMETER_UPDATE_RESULT_NAMES) } }),
  leCreditBasedConnectionReq: row({ code: 0x14, name: 'L2CAP_LE_CREDIT_BASED_CONNECTION_REQ', spec: 'Vol 3, Part A, 4.22',
    response: 'leCreditBasedConnectionRsp',
    fields: { lePsm: x16, sourceCid: x16, mtu: u16, mps: u16, initialCredits: u16 } }),
  leCreditBasedConnectionRsp: row({ code: 0x15, name: 'L2CAP_LE_CREDIT_BASED_CONNECTION_RSP', spec: 'Vol 3, Part A, 4.23',
    fields: { destinationCid: x16, mtu: u16, mps: u16, initialCredits: u16, result: named(x16, CREDIT_BASED_CONNECTION_RESULT_NAMES) } }),
  flowControlCreditInd: row({ code: 0x16, name: 'L2CAP_FLOW_CONTROL_CREDIT_IND', spec: 'Vol 3, Part A, 4.24',
    fields: { cid: x16, credits: u16 } }),
  creditBasedConnectionReq: row({ code: 0x17, name: 'L2CAP_CREDIT_BASED_CONNECTION_REQ', spec: 'Vol 3, Part A, 4.25',
    response: 'creditBasedConnectionRsp',
    fields: { spsm: x16, mtu: u16, mps: u16, initialCredits: u16, sourceCids: cids } }),
  creditBasedConnectionRsp: row({ code: 0x18, name: 'L2CAP_CREDIT_BASED_CONNECTION_RSP', spec: 'Vol 3, Part A, 4.26',
    fields: { mtu: u16, mps: u16, initialCredits: u16, result: named(x16, CREDIT_BASED_CONNECTION_RESULT_NAMES), destinationCids: cids } }),
  creditBasedReconfigureReq: row({ code: 0x19, name: 'L2CAP_CREDIT_BASED_RECONFIGURE_REQ', spec: 'Vol 3, Part A, 4.27',
    response: 'creditBasedReconfigureRsp', fields: { mtu: u16, mps: u16, destinationCids: cids } }),
  creditBasedReconfigureRsp: row({ code: 0x1a, name: 'L2CAP_CREDIT_BASED_RECONFIGURE_RSP', spec: 'Vol 3, Part A, 4.28',
    fields: { result: named(x16, CREDIT_BASED_RECONFIGURE_RESULT_NAMES) } }),
} as const;

export const SIGNALLING_TABLE = defineTable('l2cap', SIGNALLING_COMMANDS);

type Rows = typeof SIGNALLING_COMMANDS;
export type SignallingKind = keyof Rows;
/** One signalling command of kind K, with the identifier that pairs requests and responses. */
export type SignallingCommandOf<K extends SignallingKind> = K extends SignallingKind
  ? PduOf<Rows, K> & { identifier: number } : never;
export type SignallingCommand = SignallingCommandOf<SignallingKind>;
/** A code not in the table, kept with its identifier and data. */
export interface UnknownSignallingCommand { kind: 'unknown'; code: number; identifier: number; data: Uint8Array }
export type AnySignallingCommand = SignallingCommand | UnknownSignallingCommand;

/** The request kinds and the response each expects (commandRejectRsp may answer any request). */
export type SignallingRequestKind = { [K in SignallingKind]: Rows[K] extends { response: string } ? K : never }[SignallingKind];
export type SignallingResponseFor<K extends SignallingRequestKind> =
  Rows[K] extends { response: infer R extends SignallingKind } ? SignallingCommandOf<R> : never;

/** Code (1), Identifier (1), Length (2), then Length octets of data (Vol 3, Part A, 4). */
const signallingFraming: Framing<{ identifier: number }> = {
  read(r, slot) {
    slot.code = r.u8();
    slot.header = { identifier: r.u8() };
    slot.length = r.u16();
    return true;
  },
  size: () => L2CAP_SIG_HEADER_SIZE,
  write(w, code, n, cmd) {
    if (n > 0xffff) throw new EncodeError('l2cap', String((cmd as { kind?: string }).kind), `data of ${n} octets exceeds 65535`);
    w.u8(code).u8(cmd.identifier).u16(n);
  },
  describe: cmd => ` id=${cmd.identifier}`,
};

/** The table's one codec (the identifier travels with each command). */
export const SIGNALLING_CODEC = framedCodec<Rows, { identifier: number }, UnknownSignallingCommand>(
  SIGNALLING_TABLE, signallingFraming, {
    what: 'signalling C-frame',
    describeUnknown: u => `unknown code=0x${u.code.toString(16).padStart(2, '0')} id=${u.identifier} data=${toHex(u.data)}`,
  });
const codec = SIGNALLING_CODEC;

/**
 * Decode every command in a signalling C-frame payload (what follows the basic L2CAP header).
 * A command whose Length runs past the frame, or a fixed-size command with the wrong Length, is a
 * DecodeError naming the command and its offset.
 */
export function decodeSignalling(payload: Uint8Array): AnySignallingCommand[] {
  if (payload.length === 0) new ByteReader(payload, 'l2cap', 'signalling C-frame').fail('empty C-frame');
  return codec.decodeAll(payload) as AnySignallingCommand[];
}

/** Decode a C-frame that must hold exactly one command (LE-U, Vol 3, Part A, 4). */
export function decodeLeSignalling(payload: Uint8Array): AnySignallingCommand {
  const cmds = decodeSignalling(payload);
  if (cmds.length !== 1) {
    const r = new ByteReader(payload, 'l2cap', 'LE signalling C-frame');
    r.fail(`an LE C-frame carries exactly one command, found ${cmds.length}`, 0);
  }
  return cmds[0]!;
}

/** Size of the encoded commands, headers included. */
export function signallingSizeOf(cmds: AnySignallingCommand | readonly AnySignallingCommand[]): number {
  return codec.sizeOf(cmds);
}

/** Encode one or more commands into a C-frame payload (without the basic L2CAP header). */
export function encodeSignalling(cmds: AnySignallingCommand | readonly AnySignallingCommand[]): Uint8Array {
  return codec.encode(cmds);
}

/** "connectionParameterUpdateReq id=1 intervalMin=…". */
export function describeSignalling(cmd: AnySignallingCommand): string {
  return codec.describe(cmd);
}

/** The response kind a request expects, e.g. 'connectionParameterUpdateRsp'. */
export function signallingResponseKindOf(kind: SignallingRequestKind): SignallingKind {
  return (SIGNALLING_COMMANDS[kind] as SigRowSpec).response as SignallingKind;
}
