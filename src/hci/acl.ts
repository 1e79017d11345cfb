import { ByteReader } from '../bytes/reader.js';
import { ByteWriter } from '../bytes/writer.js';
import { hex16 } from '../bytes/hex.js';
import { EncodeError } from '../errors.js';
import { H4 } from '../transport/types.js';
import { HCI_ACL_HEADER_SIZE, HCI_ISO_HEADER_SIZE, HCI_SCO_HEADER_SIZE } from './constants.js';
import { ACL_HANDLE_FLAGS, ISO_HANDLE_FLAGS, SCO_HANDLE_FLAGS } from './bit-fields.js';

/**
 * Data packet headers after the H4 indicator: ACL (Core Vol 4, Part E, 5.4.2), synchronous (SCO/eSCO,
 * 5.4.3) and ISO (5.4.5). The header is a 12-bit handle plus flag bits, then a length that must match
 * the bytes that follow exactly: a mismatch means the packet was mis-framed, so it is a DecodeError.
 * `data` is a view into the packet (frames are immutable, STYLE c.7). The handle / flags words are the
 * bit fields of bit-fields.ts; their parts are bound once here (getter / setter), so the receive path
 * costs what inline shifts and masks would.
 */

/** Connection_Handle of an ACL handle / flags word. */
export const aclHandleOf = ACL_HANDLE_FLAGS.getter('handle');
/** Packet_Boundary_Flag of an ACL handle / flags word. */
export const aclPbOf = ACL_HANDLE_FLAGS.getter('pb');
const aclBcOf = ACL_HANDLE_FLAGS.getter('bc');
const aclWithPb = ACL_HANDLE_FLAGS.setter('pb');
const aclWithBc = ACL_HANDLE_FLAGS.setter('bc');
const scoHandleOf = SCO_HANDLE_FLAGS.getter('handle');
const scoStatusOf = SCO_HANDLE_FLAGS.getter('packetStatus');
const scoWithStatus = SCO_HANDLE_FLAGS.setter('packetStatus');
const isoHandleOf = ISO_HANDLE_FLAGS.getter('handle');
const isoPbOf = ISO_HANDLE_FLAGS.getter('pb');
const isoTs = ISO_HANDLE_FLAGS.tester('ts');
const isoWithPb = ISO_HANDLE_FLAGS.setter('pb');
const isoWithTs = ISO_HANDLE_FLAGS.setter('ts');

export interface AclPacket {
  /** Connection_Handle, 12 bits. */
  handle: number;
  /** Packet_Boundary_Flag (AclPb), 2 bits. */
  pb: number;
  /** Broadcast_Flag (AclBc), 2 bits. */
  bc: number;
  data: Uint8Array;
}

export interface ScoPacket {
  handle: number;
  /** Packet_Status_Flag, 2 bits (controller → host only). */
  packetStatus: number;
  data: Uint8Array;
}

export interface IsoPacket {
  handle: number;
  /** PB_Flag, 2 bits: 0 first fragment, 1 continuation, 2 complete SDU, 3 last fragment. */
  pb: number;
  /** TS_Flag: a Time_Stamp is present in the ISO data load. */
  ts: boolean;
  /** The ISO_Data_Load (timestamp, sequence number and SDU header not split out). */
  data: Uint8Array;
}

/** Decode an ACL packet; `h4` starts with the indicator 0x02. */
export function decodeAcl(h4: Uint8Array): AclPacket {
  const r = new ByteReader(h4, 'acl', 'ACL header', 1);
  const hf = r.u16();
  const len = r.u16();
  if (len !== r.remaining) r.fail(`Data_Total_Length ${len} but ${r.remaining} byte(s) follow`, 3);
  return { handle: aclHandleOf(hf), pb: aclPbOf(hf), bc: aclBcOf(hf), data: h4.subarray(1 + HCI_ACL_HEADER_SIZE) };
}

/**
 * The Handle/flags word of an H4 ACL packet (ACL_HANDLE_FLAGS) without allocating, for
 * the receive path; -1 when the header is short or Data_Total_Length does not match the bytes that
 * follow (decodeAcl says why, as a DecodeError).
 */
export function aclHeaderWord(h4: Uint8Array): number {
  return aclHeaderWordAt(h4, 0, h4.length);
}

/** aclHeaderWord of the H4 ACL packet b[start, end). */
export function aclHeaderWordAt(b: Uint8Array, start: number, end: number): number {
  const len = end - start - 1 - HCI_ACL_HEADER_SIZE;
  if (len < 0 || (b[start + 3]! | (b[start + 4]! << 8)) !== len) return -1;
  return b[start + 1]! | (b[start + 2]! << 8);
}

/** Encode a whole H4 ACL packet. */
export function encodeAcl(p: { handle: number; pb: number; bc?: number; data: Uint8Array }): Uint8Array {
  checkBits('ACL', 'handle', p.handle, 12);
  checkBits('ACL', 'pb', p.pb, 2);
  checkBits('ACL', 'bc', p.bc ?? 0, 2);
  const w = ByteWriter.alloc(1 + HCI_ACL_HEADER_SIZE + p.data.length, 'acl', 'ACL packet');
  w.u8(H4.acl).u16(aclWithBc(aclWithPb(p.handle, p.pb), p.bc ?? 0));
  if (p.data.length > 0xffff) throw new EncodeError('acl', 'ACL packet', `data of ${p.data.length} bytes exceeds 65535`);
  w.u16(p.data.length).bytesOf(p.data);
  return w.finish();
}

export function decodeSco(h4: Uint8Array): ScoPacket {
  const r = new ByteReader(h4, 'hci', 'SCO header', 1);
  const hf = r.u16();
  const len = r.u8();
  if (len !== r.remaining) r.fail(`Data_Total_Length ${len} but ${r.remaining} byte(s) follow`, 3);
  return { handle: scoHandleOf(hf), packetStatus: scoStatusOf(hf), data: h4.subarray(1 + HCI_SCO_HEADER_SIZE) };
}

export function encodeSco(p: ScoPacket): Uint8Array {
  checkBits('SCO', 'handle', p.handle, 12);
  checkBits('SCO', 'packetStatus', p.packetStatus, 2);
  const w = ByteWriter.alloc(1 + HCI_SCO_HEADER_SIZE + p.data.length, 'hci', 'SCO packet');
  return w.u8(H4.sco).u16(scoWithStatus(p.handle, p.packetStatus)).u8(p.data.length).bytesOf(p.data).finish();
}

export function decodeIso(h4: Uint8Array): IsoPacket {
  const r = new ByteReader(h4, 'hci', 'ISO header', 1);
  const hf = r.u16();
  const len = r.u16() & 0x3fff; // ISO_Data_Load_Length is 14 bits; the top two are RFU.
  if (len !== r.remaining) r.fail(`ISO_Data_Load_Length ${len} but ${r.remaining} byte(s) follow`, 3);
  return { handle: isoHandleOf(hf), pb: isoPbOf(hf), ts: isoTs(hf), data: h4.subarray(1 + HCI_ISO_HEADER_SIZE) };
}

export function encodeIso(p: IsoPacket): Uint8Array {
  checkBits('ISO', 'handle', p.handle, 12);
  checkBits('ISO', 'pb', p.pb, 2);
  if (p.data.length > 0x3fff) throw new EncodeError('hci', 'ISO packet', `data of ${p.data.length} bytes exceeds 16383`);
  const w = ByteWriter.alloc(1 + HCI_ISO_HEADER_SIZE + p.data.length, 'hci', 'ISO packet');
  return w.u8(H4.iso).u16(isoWithTs(isoWithPb(p.handle, p.pb), p.ts ? 1 : 0)).u16(p.data.length).bytesOf(p.data).finish();
}

export function describeAcl(p: AclPacket): string {
  return `ACL handle=${hex16(p.handle)} pb=${ACL_HANDLE_FLAGS.parts.pb.values![p.pb]} bc=${p.bc} len=${p.data.length}`;
}

function checkBits(what: string, name: string, v: number, bits: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= 1 << bits) {
    throw new EncodeError('acl', `${what} packet`, `${name} ${v} does not fit in ${bits} bits`);
  }
}
