import { ByteReader } from '../bytes/reader.js';
import { ByteWriter } from '../bytes/writer.js';
import { hex8, toHex } from '../bytes/hex.js';
import { DecodeError } from '../errors.js';
import { H4 } from '../transport/types.js';
import {
  decodeAcl, decodeIso, decodeSco, describeAcl, encodeAcl, encodeIso, encodeSco,
  type AclPacket, type IsoPacket, type ScoPacket,
} from './acl.js';
import { COMMAND_CODEC, describeCommand, type HciCommand } from './commands.js';
import { checkEventForEncoding, describeEvent, EVENT_CODEC, type HciEvent } from './events.js';

/**
 * Whole H4 packets (Core Vol 4, Part A, 2: one indicator byte, then an HCI packet, Vol 4, Part E, 5.4)
 * in and out. `decodeHciPacket` is the one entry point for everything a transport or capture yields;
 * the result is discriminated by `type`, and commands and events carry the `kind` of their table row
 * (flat: `{ type: 'event', kind: 'leAdvertisingReport', reports: [...] }`). Decoding throws only
 * DecodeError; decoded values hold views into the packet, which must not be mutated afterwards.
 */

export type CommandPacket = { type: 'command' } & HciCommand;
export type EventPacket = { type: 'event' } & HciEvent;
export type AclDataPacket = { type: 'acl' } & AclPacket;
export type ScoDataPacket = { type: 'sco' } & ScoPacket;
export type IsoDataPacket = { type: 'iso' } & IsoPacket;
/** An H4 indicator that is none of the five packet types; kept with its bytes. */
export interface UnknownPacket { type: 'unknown'; indicator: number; data: Uint8Array }

export type HciPacket = CommandPacket | EventPacket | AclDataPacket | ScoDataPacket | IsoDataPacket | UnknownPacket;

// Module-local copies: imported bindings can cost a getter call per access under some loaders, and
// this switch runs for every packet.
const CMD: number = H4.command, EVT: number = H4.event, ACL: number = H4.acl, SCO: number = H4.sco, ISO: number = H4.iso;
const commands = COMMAND_CODEC, events = EVENT_CODEC;

export function decodeHciPacket(h4: Uint8Array): HciPacket {
  if (h4.length === 0) throw new DecodeError('h4', 'packet', 0, 'empty packet (no indicator)');
  switch (h4[0]) {
    case CMD: {
      const p = commands.decodeFrom(new ByteReader(h4, 'hci', 'command header', 1)) as CommandPacket;
      p.type = 'command';
      return p;
    }
    case EVT: {
      return events.decodeFrom(new ByteReader(h4, 'hci', 'event header', 1)) as EventPacket;
    }
    case ACL: {
      const p = decodeAcl(h4) as AclDataPacket;
      p.type = 'acl';
      return p;
    }
    case SCO: {
      const p = decodeSco(h4) as ScoDataPacket;
      p.type = 'sco';
      return p;
    }
    case ISO: {
      const p = decodeIso(h4) as IsoDataPacket;
      p.type = 'iso';
      return p;
    }
    default:
      return { type: 'unknown', indicator: h4[0]!, data: h4.subarray(1) };
  }
}

/** A whole H4 command packet (indicator 0x01). A `type` property on the argument is ignored. */
export function encodeCommand(cmd: HciCommand): Uint8Array {
  const c = cmd as never;
  const w = ByteWriter.alloc(1 + commands.sizeOf(c), 'hci', cmd.kind);
  w.u8(H4.command);
  commands.encodeInto(w, c);
  return w.finish();
}

/** A whole H4 event packet (indicator 0x04). A `type` property on the argument is ignored. */
export function encodeEvent(evt: HciEvent): Uint8Array {
  checkEventForEncoding(evt);
  const e = evt as never;
  const w = ByteWriter.alloc(1 + events.sizeOf(e), 'hci', evt.kind);
  w.u8(H4.event);
  events.encodeInto(w, e);
  return w.finish();
}

export { encodeAcl };

/** Encode any decoded packet back to its H4 bytes. */
export function encodeHciPacket(p: HciPacket): Uint8Array {
  switch (p.type) {
    case 'command': return encodeCommand(p);
    case 'event': return encodeEvent(p);
    case 'acl': return encodeAcl(p);
    case 'sco': return encodeSco(p);
    case 'iso': return encodeIso(p);
    case 'unknown': {
      const out = new Uint8Array(1 + p.data.length);
      out[0] = p.indicator;
      out.set(p.data, 1);
      return out;
    }
  }
}

/**
 * One line for logs and the CLI, e.g. "LE Set Scan Enable enable=1 filterDuplicates=0",
 * "Command Complete LE Rand ncmd=1 status=Success randomNumber=…".
 */
export function describeHciPacket(p: HciPacket): string {
  switch (p.type) {
    case 'command': return describeCommand(p);
    case 'event': return describeEvent(p);
    case 'acl': return describeAcl(p);
    case 'sco': return `SCO handle=0x${p.handle.toString(16).padStart(4, '0')} status=${p.packetStatus} len=${p.data.length}`;
    case 'iso': return `ISO handle=0x${p.handle.toString(16).padStart(4, '0')} pb=${p.pb} ts=${p.ts ? 1 : 0} len=${p.data.length}`;
    case 'unknown': return `Unknown H4 packet indicator=${hex8(p.indicator)} data=${toHex(p.data)}`;
  }
}
