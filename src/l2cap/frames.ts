import { ByteReader } from '../bytes/reader.js';
import { ByteWriter } from '../bytes/writer.js';
import { hex16, toHex } from '../bytes/hex.js';
import { EncodeError } from '../errors.js';
import { CID_NAMES, L2CAP_HEADER_SIZE } from './constants.js';

/**
 * The L2CAP basic frame (B-frame, Vol 3, Part A, 3.1): Length (2, the information payload only),
 * Channel ID (2), then the payload. Fixed channels (ATT, SMP, LE signalling) carry their PDUs in
 * B-frames; signalling C-frames use the same header.
 */
export interface L2capFrame {
  cid: number;
  /** The information payload, a view into the frame. */
  payload: Uint8Array;
}

/**
 * Decode one whole L2CAP PDU (header included). The Length field must equal the bytes that follow:
 * a shorter or longer PDU means reassembly went wrong, so it is a DecodeError.
 */
export function decodeL2capFrame(pdu: Uint8Array): L2capFrame {
  const r = new ByteReader(pdu, 'l2cap', 'basic frame');
  const length = r.u16();
  const cid = r.u16();
  if (length !== r.remaining) r.fail(`Length ${length} but ${r.remaining} octet(s) of payload`, 0);
  return { cid, payload: r.rest() };
}

/** Encode a B-frame: header and payload in one allocation. */
export function encodeL2capFrame(cid: number, payload: Uint8Array): Uint8Array {
  if (payload.length > 0xffff) {
    throw new EncodeError('l2cap', 'basic frame', `payload of ${payload.length} octets exceeds 65535`);
  }
  const w = ByteWriter.alloc(L2CAP_HEADER_SIZE + payload.length, 'l2cap', 'basic frame');
  return w.u16(payload.length).u16(cid).bytesOf(payload).finish();
}

/** The L2CAP length announced by the first two octets of a START fragment, or undefined if fewer. */
export function l2capLengthOf(start: Uint8Array): number | undefined {
  return start.length < 2 ? undefined : start[0]! | (start[1]! << 8);
}

/** "cid=0x0004 (ATT) 0a0300". */
export function describeL2capFrame(f: L2capFrame): string {
  const name = CID_NAMES[f.cid];
  return `cid=${hex16(f.cid)}${name ? ` (${name})` : ''} ${toHex(f.payload)}`;
}
