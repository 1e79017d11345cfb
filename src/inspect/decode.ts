/**
 * The capture decoder behind `blewire decode`: every record of a capture decoded through the same
 * tables the live stack uses (HCI, ACL, L2CAP reassembly, ATT, SMP, signalling, AD), as structured
 * lines for JSON output and one-line descriptions for people. Nothing here throws on bad bytes: a
 * packet that does not decode becomes a `malformed` entry carrying the DecodeError's text.
 *
 * L2CAP PDUs are reassembled per (controller, direction, handle) with no dependency on connection
 * events, and are emitted at the frame of their last ACL fragment, as Wireshark does.
 */
import { toHex } from '../bytes/hex.js';
import type { CaptureRecord } from '../capture/types.js';
import { toJsonValue } from '../codec/table.js';
import { DecodeError } from '../errors.js';
import { decodeHciPacket, describeHciPacket, type HciPacket } from '../hci/packets.js';
import { CaptureReassembler } from '../l2cap/reassembly.js';
import { Cid, CID_NAMES } from '../l2cap/constants.js';
import { decodeSignalling, describeSignalling } from '../l2cap/signalling.js';
import { decodeAtt, describeAtt } from '../att/pdus.js';
import { decodeSmp, describeSmp } from '../smp/pdus.js';
import { decodeAd, describeAd } from '../gap/ad.js';

export interface DecodedRecord {
  line: 'record';
  frame: number;
  dir: 'tx' | 'rx';
  timeUs: number;
  adapter?: number;
  /** 'command' | 'event' | 'acl' | 'sco' | 'iso' | 'unknown' | 'malformed' | 'monitor' */
  type: string;
  /** The decoded packet (kind and fields), or the monitor record / the decode error. */
  fields: Record<string, unknown>;
  text: string;
  /** Per advertising report: the decoded AD structures, one line each. */
  adText?: string[][];
}

export interface DecodedL2cap {
  line: 'l2cap';
  frame: number;
  dir: 'tx' | 'rx';
  adapter?: number;
  handle: number;
  cid: number;
  payload: Uint8Array;
  /** The decoded ATT / SMP / signalling PDU (its `kind`), or kind 'raw' for channels we do not decode. */
  pdu: Record<string, unknown> & { kind: string };
  text: string;
}

export type DecodedLine = DecodedRecord | DecodedL2cap;

function errorText(e: unknown): string {
  if (e instanceof DecodeError) return e.message;
  throw e;
}

const ADV_REPORT_KINDS = new Set(['leAdvertisingReport', 'leExtendedAdvertisingReport', 'leDirectedAdvertisingReport']);

/** Decode one L2CAP payload by channel. `le` selects LE signalling rules on CID 0x0005. */
export function decodeL2capPayload(cid: number, payload: Uint8Array): { pdu: DecodedL2cap['pdu']; text: string } {
  try {
    switch (cid) {
      case Cid.Att: {
        const pdu = decodeAtt(payload);
        return { pdu: pdu as DecodedL2cap['pdu'], text: `ATT ${describeAtt(pdu)}` };
      }
      case Cid.Smp:
      case Cid.BrEdrSmp: {
        const pdu = decodeSmp(payload);
        return { pdu: pdu as DecodedL2cap['pdu'], text: `SMP ${describeSmp(pdu)}` };
      }
      case Cid.LeSignalling:
      case Cid.BrEdrSignalling: {
        const cmds = decodeSignalling(payload);
        const text = cmds.map(describeSignalling).join('; ');
        const pdu = cmds.length === 1 ? cmds[0]! : { kind: 'commands', commands: cmds };
        return { pdu: pdu as DecodedL2cap['pdu'], text: `L2CAP signalling ${text}` };
      }
      default:
        return { pdu: { kind: 'raw' }, text: `${CID_NAMES[cid] ?? 'channel'} ${toHex(payload.subarray(0, 32))}${payload.length > 32 ? '…' : ''}` };
    }
  } catch (e) {
    const msg = errorText(e);
    return { pdu: { kind: 'malformed', error: msg }, text: `malformed: ${msg}` };
  }
}

function decodePacket(rec: CaptureRecord & { packet: Uint8Array }): { p?: HciPacket; error?: string } {
  try {
    return { p: decodeHciPacket(rec.packet) };
  } catch (e) {
    return { error: errorText(e) };
  }
}

/** Decode a stream of capture records into record lines and reassembled L2CAP lines, in order. */
export function* decodeRecords(records: Iterable<CaptureRecord>): Generator<DecodedLine> {
  const reassembler = new CaptureReassembler();
  for (const rec of records) {
    yield* decodeOne(rec, reassembler);
  }
}

export async function* decodeRecordsAsync(records: AsyncIterable<CaptureRecord>): AsyncGenerator<DecodedLine> {
  const reassembler = new CaptureReassembler();
  for await (const rec of records) {
    yield* decodeOne(rec, reassembler);
  }
}

function* decodeOne(rec: CaptureRecord, reassembler: CaptureReassembler): Generator<DecodedLine> {
  const base = { frame: rec.frame, dir: rec.dir, timeUs: rec.timeUs, ...(rec.adapter !== undefined ? { adapter: rec.adapter } : {}) };
  if (!rec.packet) {
    const fields: Record<string, unknown> = { monitorOpcode: rec.monitorOpcode };
    if (rec.note !== undefined) fields.note = rec.note;
    if (rec.monitorData !== undefined) fields.data = rec.monitorData;
    yield { line: 'record', ...base, type: 'monitor', fields, text: rec.note ?? `monitor record opcode ${rec.monitorOpcode}` };
    return;
  }
  const { p, error } = decodePacket(rec as CaptureRecord & { packet: Uint8Array });
  if (!p) {
    yield { line: 'record', ...base, type: 'malformed', fields: { error, packet: rec.packet }, text: `malformed packet: ${error}` };
    return;
  }
  const { type, ...fields } = p as HciPacket & Record<string, unknown>;
  const out: DecodedRecord = { line: 'record', ...base, type, fields, text: describeHciPacket(p) };
  if (p.type === 'event' && ADV_REPORT_KINDS.has(p.kind as string)) {
    const reports = (p as unknown as { reports: Array<{ data?: Uint8Array }> }).reports;
    out.adText = reports.map(r => (r.data ? describeAd(r.data) : []));
    // Decoded AD structures travel with each report in JSON output (decodeAd never throws on bad AD
    // length structure; a structure whose body does not fit its type is kept raw).
    out.fields = {
      ...fields,
      reports: reports.map(r => (r.data ? { ...r, ad: safeDecodeAd(r.data) } : r)),
    };
  }
  yield out;
  if (p.type === 'acl') {
    const pdu = reassembler.push(rec);
    if (pdu) {
      const { pdu: decoded, text } = decodeL2capPayload(pdu.cid, pdu.payload);
      yield {
        line: 'l2cap', frame: rec.frame, dir: rec.dir,
        ...(rec.adapter !== undefined ? { adapter: rec.adapter } : {}),
        handle: pdu.handle, cid: pdu.cid, payload: pdu.payload, pdu: decoded, text,
      };
    }
  }
}

function safeDecodeAd(data: Uint8Array): unknown[] {
  try {
    return decodeAd(data);
  } catch (e) {
    return [{ kind: 'malformed', error: errorText(e) }];
  }
}

/** The `--json` form of a line (JSON Lines; the format is documented in the README). */
export function toJsonLine(l: DecodedLine): Record<string, unknown> {
  if (l.line === 'record') {
    return {
      frame: l.frame, dir: l.dir, ...(l.adapter !== undefined ? { adapter: l.adapter } : {}), time: l.timeUs,
      type: l.type, ...(toJsonValue(l.fields) as Record<string, unknown>),
    };
  }
  return {
    frame: l.frame, dir: l.dir, ...(l.adapter !== undefined ? { adapter: l.adapter } : {}), type: 'l2cap',
    handle: l.handle, cid: l.cid, payload: toHex(l.payload), pdu: toJsonValue(l.pdu),
  };
}
