import type { ByteReader } from '../bytes/reader.js';
import type { ByteWriter } from '../bytes/writer.js';
import { hex16, hex8, toHex } from '../bytes/hex.js';
import { EncodeError } from '../errors.js';
import { bytes, named, rest, u16, x16, x8, type Field } from '../codec/field.js';
import { codeU8, defineTable, framedCodec, type PduOf, type RowSpec, type UnknownPdu } from '../codec/table.js';
import { describeUuid, is16, uuid as toUuid, uuid16, uuidAny, uuidFromBytes, uuidToBytes, uuidToBytes128, type Uuid } from '../codec/uuid.js';
import { ATT_OPCODE_COMMAND_FLAG, ATT_SIGNATURE_LENGTH, attErrorName } from './constants.js';

/**
 * Every ATT PDU (Core Vol 3, Part F, 3.4) as one declarative table (STYLE c.4). Each row: opcode,
 * method (Vol 3, Part F, 3.3: request / response / command / notification / indication /
 * confirmation), the response kind for requests, the spec name and section, and the fields.
 * decodeAtt / encodeAtt / attSizeOf / describeAtt and the exhaustive AttPdu union are derived.
 *
 * Naming: a single attribute handle is `handle`, an attribute value `value` (a view into the frame);
 * list-shaped PDUs use the spec's list names (informationData, attributeDataList, …) and decode to
 * arrays of plain objects. The composite responses are validated here, once, so no GATT procedure
 * can be fed a hostile list (Zephyr's checks): element lengths, divisibility, handle ≠ 0, ascending
 * handles, end ≥ start. An unknown opcode decodes to { kind: 'unknown', code, data }.
 */

export type AttMethod = 'request' | 'response' | 'command' | 'notification' | 'indication' | 'confirmation';

interface AttRowSpec extends RowSpec {
  readonly method: AttMethod;
  /** For requests: the kind of the (success) response. An Error Response may always answer instead. */
  readonly response?: string;
}

// ---- field shapes of the composite PDUs ----------------------------------------------------------

export interface HandleUuid { handle: number; uuid: Uuid }
export interface HandlesInformation { foundAttributeHandle: number; groupEndHandle: number }
export interface HandleValue { handle: number; value: Uint8Array }
export interface GroupValue { handle: number; endGroupHandle: number; value: Uint8Array }
export interface LengthValue { length: number; value: Uint8Array }

/** Reject handle 0 (reserved, Vol 3, Part F, 3.2.2) and non-ascending handles in a response list. */
function checkHandle(r: ByteReader, h: number, prev: number, at: number): void {
  if (h === 0) r.fail('attribute handle 0x0000 is reserved', at);
  if (h <= prev) r.fail(`handle ${hex16(h)} does not ascend (previous ${hex16(prev)})`, at);
}

function encodeFail(w: ByteWriter, reason: string): never {
  throw new EncodeError(w.layer, w.what, reason);
}

/**
 * Find Information Response: Format (0x01: 16-bit UUIDs, 0x02: 128-bit) then one or more
 * handle–UUID pairs of 4 or 18 octets (Vol 3, Part F, 3.4.3.2). Encoding uses format 0x01 when every
 * UUID is a 16-bit SIG UUID, else 0x02.
 */
const informationData: Field<HandleUuid[]> = {
  read(r) {
    const format = r.u8();
    if (format !== 1 && format !== 2) r.fail(`format 0x${format.toString(16)} is neither 0x01 nor 0x02`, r.offset - 1);
    const size = format === 1 ? 4 : 18;
    if (r.remaining === 0) r.fail('the information data list is empty');
    if (r.remaining % size !== 0) r.fail(`${r.remaining} octets are not a whole number of ${size}-octet pairs`);
    const out: HandleUuid[] = [];
    let prev = 0;
    while (r.remaining > 0) {
      const at = r.offset;
      const handle = r.u16();
      checkHandle(r, handle, prev, at);
      prev = handle;
      const uuid = uuidFromBytes(r.bytes, r.offset, size - 2)!;
      r.offset += size - 2;
      out.push({ handle, uuid });
    }
    return out;
  },
  write(w, v) {
    if (v.length === 0) encodeFail(w, 'the information data list is empty');
    const short = v.every(e => safeIs16(e.uuid));
    w.u8(short ? 1 : 2);
    for (const e of v) {
      w.u16(e.handle);
      w.bytesOf(short ? uuidToBytes(e.uuid) : uuid128Bytes(w, e.uuid));
    }
  },
  size: v => 1 + v.length * (v.every(e => safeIs16(e.uuid)) ? 4 : 18),
  fixed: 5,
  fmt: v => '[' + v.map(e => `${hex16(e.handle)}:${describeUuid(e.uuid)}`).join(', ') + ']',
};

function safeIs16(u: Uuid): boolean {
  try {
    return is16(toUuid(u));
  } catch {
    return false;
  }
}
function uuid128Bytes(w: ByteWriter, u: Uuid): Uint8Array {
  // A 16-bit UUID inside a format-0x02 list is written in its full 128-bit form.
  try {
    return uuidToBytes128(u);
  } catch {
    return encodeFail(w, `not a UUID: ${String(u)}`);
  }
}

/** Find By Type Value Response: one or more (found handle, group end handle) pairs (Vol 3, Part F, 3.4.3.4). */
const handlesInformationList: Field<HandlesInformation[]> = {
  read(r) {
    if (r.remaining === 0) r.fail('the handles information list is empty');
    if (r.remaining % 4 !== 0) r.fail(`${r.remaining} octets are not a whole number of 4-octet pairs`);
    const out: HandlesInformation[] = [];
    let prev = 0;
    while (r.remaining > 0) {
      const at = r.offset;
      const foundAttributeHandle = r.u16();
      const groupEndHandle = r.u16();
      checkHandle(r, foundAttributeHandle, prev, at);
      if (groupEndHandle < foundAttributeHandle) {
        r.fail(`group end ${hex16(groupEndHandle)} before found handle ${hex16(foundAttributeHandle)}`, at);
      }
      prev = groupEndHandle === 0xffff ? 0xffff : Math.max(foundAttributeHandle, groupEndHandle);
      out.push({ foundAttributeHandle, groupEndHandle });
    }
    return out;
  },
  write(w, v) {
    if (v.length === 0) encodeFail(w, 'the handles information list is empty');
    for (const e of v) w.u16(e.foundAttributeHandle).u16(e.groupEndHandle);
  },
  size: v => 4 * v.length,
  fixed: 4,
  fmt: v => '[' + v.map(e => `${hex16(e.foundAttributeHandle)}-${hex16(e.groupEndHandle)}`).join(', ') + ']',
};

/**
 * The Length-prefixed attribute data lists of Read By Type Response (elements: handle, value;
 * Vol 3, Part F, 3.4.4.2) and Read By Group Type Response (handle, end group handle, value;
 * 3.4.4.10). `allowed` restricts the element length: GATT groups only services, whose values are
 * 16- or 128-bit UUIDs, so a group element is 6 or 20 octets (Vol 3, Part G, 4.4.1).
 */
function attributeDataList<T extends HandleValue>(group: boolean): Field<T[]> {
  const head = group ? 4 : 2;
  return {
    read(r) {
      const length = r.u8();
      if (group ? length !== 6 && length !== 20 : length < head) {
        r.fail(`element length ${length} is not ${group ? '6 or 20' : `at least ${head}`}`, r.offset - 1);
      }
      if (r.remaining === 0) r.fail('the attribute data list is empty');
      if (r.remaining % length !== 0) r.fail(`${r.remaining} octets are not a whole number of ${length}-octet elements`);
      const out: T[] = [];
      let prev = 0;
      while (r.remaining > 0) {
        const at = r.offset;
        const handle = r.u16();
        checkHandle(r, handle, prev, at);
        if (group) {
          const endGroupHandle = r.u16();
          if (endGroupHandle < handle) r.fail(`end group ${hex16(endGroupHandle)} before handle ${hex16(handle)}`, at);
          prev = endGroupHandle;
          out.push({ handle, endGroupHandle, value: r.view(length - head) } as unknown as T);
        } else {
          prev = handle;
          out.push({ handle, value: r.view(length - head) } as T);
        }
      }
      return out;
    },
    write(w, v) {
      if (v.length === 0) encodeFail(w, 'the attribute data list is empty');
      const length = head + v[0]!.value.length;
      if (v.some(e => e.value.length !== length - head)) encodeFail(w, 'all attribute values of one response must have the same length');
      if (length > 255) encodeFail(w, `element length ${length} does not fit the one-octet Length field`);
      if (group && length !== 6 && length !== 20) encodeFail(w, `group element length ${length} is not 6 or 20`);
      w.u8(length);
      for (const e of v) {
        w.u16(e.handle);
        if (group) w.u16((e as unknown as GroupValue).endGroupHandle);
        w.bytesOf(e.value);
      }
    },
    size: v => 1 + v.reduce((n, e) => n + head + e.value.length, 0),
    fixed: 1 + head,
    fmt: v => '[' + v.map(e => group
      ? `${hex16(e.handle)}-${hex16((e as unknown as GroupValue).endGroupHandle)}:${toHex(e.value)}`
      : `${hex16(e.handle)}:${toHex(e.value)}`).join(', ') + ']',
  };
}

/** A Set Of Handles: two or more handles (Vol 3, Part F, 3.4.4.7 and 3.4.4.11). */
const setOfHandles: Field<number[]> = {
  read(r) {
    if (r.remaining % 2 !== 0) r.fail(`${r.remaining} octets are not a whole number of handles`);
    if (r.remaining < 4) r.fail('a set of handles holds at least two handles');
    const out: number[] = [];
    while (r.remaining > 0) out.push(r.u16());
    return out;
  },
  write(w, v) {
    if (v.length < 2) encodeFail(w, 'a set of handles holds at least two handles');
    for (const h of v) w.u16(h);
  },
  size: v => 2 * v.length,
  fixed: 4,
  fmt: v => '[' + v.map(hex16).join(', ') + ']',
};

/**
 * Read Multiple Variable Response: (length, value) tuples (Vol 3, Part F, 3.4.4.12). When the list
 * would exceed ATT_MTU - 1 the server truncates it, so the final value may be shorter than its
 * Length field says; only the final one.
 */
const lengthValueTupleList: Field<LengthValue[]> = {
  read(r) {
    const out: LengthValue[] = [];
    while (r.remaining > 0) {
      const length = r.u16();
      out.push({ length, value: r.view(Math.min(length, r.remaining)) });
    }
    return out;
  },
  write(w, v) {
    v.forEach((e, i) => {
      if (e.value.length > e.length || (e.value.length < e.length && i !== v.length - 1)) {
        encodeFail(w, `tuple ${i}: value of ${e.value.length} octets under length ${e.length} (only the last may be truncated)`);
      }
      w.u16(e.length).bytesOf(e.value);
    });
  },
  size: v => v.reduce((n, e) => n + 2 + e.value.length, 0),
  fixed: 0,
  fmt: v => '[' + v.map(e => toHex(e.value) + (e.value.length < e.length ? `…(${e.length})` : '')).join(', ') + ']',
};

/** Multiple Handle Value Notification: (handle, length, value) tuples, two or more (Vol 3, Part F, 3.4.7.4). */
const handleLengthValueTupleList: Field<HandleValue[]> = {
  read(r) {
    const out: HandleValue[] = [];
    while (r.remaining > 0) {
      const handle = r.u16();
      const length = r.u16();
      out.push({ handle, value: r.view(length) });
    }
    if (out.length === 0) r.fail('the tuple list is empty');
    return out;
  },
  write(w, v) {
    if (v.length === 0) encodeFail(w, 'the tuple list is empty');
    for (const e of v) w.u16(e.handle).u16(e.value.length).bytesOf(e.value);
  },
  size: v => v.reduce((n, e) => n + 4 + e.value.length, 0),
  fixed: 4,
  fmt: v => '[' + v.map(e => `${hex16(e.handle)}:${toHex(e.value)}`).join(', ') + ']',
};

/** The attribute value of a Signed Write Command: everything but the trailing 12-octet signature. */
const signedValue: Field<Uint8Array> = {
  read(r) {
    r.need(ATT_SIGNATURE_LENGTH);
    return r.view(r.remaining - ATT_SIGNATURE_LENGTH);
  },
  write: (w, v) => { w.bytesOf(v); },
  size: v => v.length,
  fixed: 0,
  fmt: v => toHex(v),
};

/** Opcode names for describe(): filled once the table exists (errorRsp names the failed request). */
const OPCODE_NAMES: Record<number, string> = {};

const row = <const S extends AttRowSpec>(s: S): S => s;

export const ATT_PDUS = {
  errorRsp: row({ code: 0x01, method: 'response', name: 'ATT_ERROR_RSP', spec: 'Vol 3, Part F, 3.4.1.1',
    fields: { requestOpcode: named(x8, OPCODE_NAMES), handle: x16, errorCode: { ...x8, fmt: (c: number) => `${hex8(c)} (${attErrorName(c)})` } } }),
  exchangeMtuReq: row({ code: 0x02, method: 'request', response: 'exchangeMtuRsp', name: 'ATT_EXCHANGE_MTU_REQ',
    spec: 'Vol 3, Part F, 3.4.2.1', fields: { clientRxMtu: u16 } }),
  exchangeMtuRsp: row({ code: 0x03, method: 'response', name: 'ATT_EXCHANGE_MTU_RSP', spec: 'Vol 3, Part F, 3.4.2.2',
    fields: { serverRxMtu: u16 } }),
  findInformationReq: row({ code: 0x04, method: 'request', response: 'findInformationRsp', name: 'ATT_FIND_INFORMATION_REQ',
    spec: 'Vol 3, Part F, 3.4.3.1', fields: { startingHandle: x16, endingHandle: x16 } }),
  findInformationRsp: row({ code: 0x05, method: 'response', name: 'ATT_FIND_INFORMATION_RSP', spec: 'Vol 3, Part F, 3.4.3.2',
    fields: { informationData } }),
  findByTypeValueReq: row({ code: 0x06, method: 'request', response: 'findByTypeValueRsp', name: 'ATT_FIND_BY_TYPE_VALUE_REQ',
    spec: 'Vol 3, Part F, 3.4.3.3', fields: { startingHandle: x16, endingHandle: x16, attributeType: uuid16, attributeValue: rest } }),
  findByTypeValueRsp: row({ code: 0x07, method: 'response', name: 'ATT_FIND_BY_TYPE_VALUE_RSP', spec: 'Vol 3, Part F, 3.4.3.4',
    fields: { handlesInformationList } }),
  readByTypeReq: row({ code: 0x08, method: 'request', response: 'readByTypeRsp', name: 'ATT_READ_BY_TYPE_REQ',
    spec: 'Vol 3, Part F, 3.4.4.1', fields: { startingHandle: x16, endingHandle: x16, attributeType: uuidAny } }),
  readByTypeRsp: row({ code: 0x09, method: 'response', name: 'ATT_READ_BY_TYPE_RSP', spec: 'Vol 3, Part F, 3.4.4.2',
    fields: { attributeDataList: attributeDataList<HandleValue>(false) } }),
  readReq: row({ code: 0x0a, method: 'request', response: 'readRsp', name: 'ATT_READ_REQ', spec: 'Vol 3, Part F, 3.4.4.3',
    fields: { handle: x16 } }),
  readRsp: row({ code: 0x0b, method: 'response', name: 'ATT_READ_RSP', spec: 'Vol 3, Part F, 3.4.4.4',
    fields: { value: rest } }),
  readBlobReq: row({ code: 0x0c, method: 'request', response: 'readBlobRsp', name: 'ATT_READ_BLOB_REQ',
    spec: 'Vol 3, Part F, 3.4.4.5', fields: { handle: x16, valueOffset: u16 } }),
  readBlobRsp: row({ code: 0x0d, method: 'response', name: 'ATT_READ_BLOB_RSP', spec: 'Vol 3, Part F, 3.4.4.6',
    fields: { value: rest } }),
  readMultipleReq: row({ code: 0x0e, method: 'request', response: 'readMultipleRsp', name: 'ATT_READ_MULTIPLE_REQ',
    spec: 'Vol 3, Part F, 3.4.4.7', fields: { setOfHandles } }),
  readMultipleRsp: row({ code: 0x0f, method: 'response', name: 'ATT_READ_MULTIPLE_RSP', spec: 'Vol 3, Part F, 3.4.4.8',
    fields: { setOfValues: rest } }),
  readByGroupTypeReq: row({ code: 0x10, method: 'request', response: 'readByGroupTypeRsp', name: 'ATT_READ_BY_GROUP_TYPE_REQ',
    spec: 'Vol 3, Part F, 3.4.4.9', fields: { startingHandle: x16, endingHandle: x16, attributeGroupType: uuidAny } }),
  readByGroupTypeRsp: row({ code: 0x11, method: 'response', name: 'ATT_READ_BY_GROUP_TYPE_RSP', spec: 'Vol 3, Part F, 3.4.4.10',
    fields: { attributeDataList: attributeDataList<GroupValue>(true) } }),
  writeReq: row({ code: 0x12, method: 'request', response: 'writeRsp', name: 'ATT_WRITE_REQ', spec: 'Vol 3, Part F, 3.4.5.1',
    fields: { handle: x16, value: rest } }),
  writeRsp: row({ code: 0x13, method: 'response', name: 'ATT_WRITE_RSP', spec: 'Vol 3, Part F, 3.4.5.2', fields: {} }),
  prepareWriteReq: row({ code: 0x16, method: 'request', response: 'prepareWriteRsp', name: 'ATT_PREPARE_WRITE_REQ',
    spec: 'Vol 3, Part F, 3.4.6.1', fields: { handle: x16, valueOffset: u16, value: rest } }),
  prepareWriteRsp: row({ code: 0x17, method: 'response', name: 'ATT_PREPARE_WRITE_RSP', spec: 'Vol 3, Part F, 3.4.6.2',
    fields: { handle: x16, valueOffset: u16, value: rest } }),
  executeWriteReq: row({ code: 0x18, method: 'request', response: 'executeWriteRsp', name: 'ATT_EXECUTE_WRITE_REQ',
    spec: 'Vol 3, Part F, 3.4.6.3', fields: { flags: named(x8, { 0: 'cancelAll', 1: 'writeAll' }) } }),
  executeWriteRsp: row({ code: 0x19, method: 'response', name: 'ATT_EXECUTE_WRITE_RSP', spec: 'Vol 3, Part F, 3.4.6.4', fields: {} }),
  handleValueNtf: row({ code: 0x1b, method: 'notification', name: 'ATT_HANDLE_VALUE_NTF', spec: 'Vol 3, Part F, 3.4.7.1',
    fields: { handle: x16, value: rest } }),
  handleValueInd: row({ code: 0x1d, method: 'indication', name: 'ATT_HANDLE_VALUE_IND', spec: 'Vol 3, Part F, 3.4.7.2',
    fields: { handle: x16, value: rest } }),
  handleValueCfm: row({ code: 0x1e, method: 'confirmation', name: 'ATT_HANDLE_VALUE_CFM', spec: 'Vol 3, Part F, 3.4.7.3', fields: {} }),
  readMultipleVariableReq: row({ code: 0x20, method: 'request', response: 'readMultipleVariableRsp',
    name: 'ATT_READ_MULTIPLE_VARIABLE_REQ', spec: 'Vol 3, Part F, 3.4.4.11', fields: { setOfHandles } }),
  readMultipleVariableRsp: row({ code: 0x21, method: 'response', name: 'ATT_READ_MULTIPLE_VARIABLE_RSP',
    spec: 'Vol 3, Part F, 3.4.4.12', fields: { lengthValueTupleList } }),
  multipleHandleValueNtf: row({ code: 0x23, method: 'notification', name: 'ATT_MULTIPLE_HANDLE_VALUE_NTF',
    spec: 'Vol 3, Part F, 3.4.7.4', fields: { handleLengthValueTupleList } }),
  writeCmd: row({ code: 0x52, method: 'command', name: 'ATT_WRITE_CMD', spec: 'Vol 3, Part F, 3.4.5.3',
    fields: { handle: x16, value: rest } }),
  signedWriteCmd: row({ code: 0xd2, method: 'command', name: 'ATT_SIGNED_WRITE_CMD', spec: 'Vol 3, Part F, 3.4.5.4',
    fields: { handle: x16, value: signedValue, authenticationSignature: bytes(ATT_SIGNATURE_LENGTH) } }),
} as const;

export const ATT_TABLE = defineTable('att', ATT_PDUS);
for (const k of ATT_TABLE.kinds) OPCODE_NAMES[ATT_PDUS[k].code] = k;

type Rows = typeof ATT_PDUS;
export type AttKind = keyof Rows;
/** One ATT PDU of kind K (distributive over unions of kinds). */
export type AttPduOf<K extends AttKind> = PduOf<Rows, K>;
/** The exhaustive union of every known ATT PDU. */
export type AttPdu = PduOf<Rows>;
/** An opcode not in the table, kept with its bytes (never dropped silently). */
export type UnknownAttPdu = UnknownPdu;
export type RequestKind = { [K in AttKind]: Rows[K]['method'] extends 'request' ? K : never }[AttKind];
export type ResponseKindFor<K extends RequestKind> = Rows[K] extends { response: infer R extends AttKind } ? R : never;
/** The success response to a request of kind K (an errorRsp may come instead). */
export type ResponseFor<K extends RequestKind> = AttPduOf<ResponseKindFor<K>>;

/** The table's one codec: Opcode (1) then the body (Vol 3, Part F, 3.3). */
export const ATT_CODEC = framedCodec<Rows, {}, UnknownAttPdu>(ATT_TABLE, codeU8, { what: 'ATT PDU' });
const codec = ATT_CODEC;

/** Decode one whole ATT PDU (opcode first). Throws only DecodeError. */
export function decodeAtt(frame: Uint8Array): AttPdu | UnknownAttPdu {
  return codec.decode(frame);
}
/** Encode one ATT PDU at its exact size (the bearer checks it against ATT_MTU). Throws EncodeError. */
export function encodeAtt(pdu: AttPdu | UnknownAttPdu): Uint8Array {
  return codec.encode(pdu);
}
/** The exact encoded size of a PDU, opcode included. */
export function attSizeOf(pdu: AttPdu | UnknownAttPdu): number {
  return codec.sizeOf(pdu);
}
/** One-line description shared by logs and the CLI: "readReq handle=0x0003". */
export function describeAtt(pdu: AttPdu | UnknownAttPdu): string {
  return codec.describe(pdu);
}

/** The method of an opcode; unknown opcodes are classified by the command flag (Vol 3, Part F, 3.3.1). */
export function attMethodOf(opcode: number): AttMethod | 'unknown' {
  const kind = ATT_TABLE.kindOf(opcode);
  if (kind) return ATT_PDUS[kind].method;
  return opcode & ATT_OPCODE_COMMAND_FLAG ? 'command' : 'unknown';
}

/** The success response kind for a request kind, e.g. 'readRsp' for 'readReq'. */
export function responseKindOf<K extends RequestKind>(kind: K): ResponseKindFor<K> {
  return (ATT_PDUS[kind] as AttRowSpec).response as ResponseKindFor<K>;
}

/** True when pdu is a request (the bearer allows one in flight). */
export function isAttRequest(pdu: AttPdu | UnknownAttPdu): pdu is AttPduOf<RequestKind> {
  return pdu.kind !== 'unknown' && ATT_PDUS[pdu.kind].method === 'request';
}
