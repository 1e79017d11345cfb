import type { ByteReader } from '../bytes/reader.js';
import { hex8, toHex } from '../bytes/hex.js';
import { arrayOf, bdAddr, bytes, i8, struct, u16, u32, u64, u8, x16, x24, x8, type Field, type Infer } from '../codec/field.js';
import { defineTable, framedCodec, type Framing, type RowSpec } from '../codec/table.js';
import { EncodeError } from '../errors.js';
import {
  decodeReturnParameters, describeReturn, encodeReturnParameters, nameBytes, opcodeField,
  returnKindOpcode, sizeOfReturnParameters, commandName, type ReturnParameters,
} from './commands.js';
import { EVT_LE_META, EVT_VENDOR } from './constants.js';
import { LE_META_CODEC, LE_META_EVENTS, type LeMetaEvent, type LeMetaKind } from './le-events.js';
import { statusField } from './status.js';

/**
 * The HCI event table (Core Vol 4, Part E, 7.7), keyed by Event_Code. LE Meta (0x3E) sub-events live in
 * le-events.ts and decode to their own flat kinds; vendor events (0xFF) are kept raw; unknown codes
 * decode to `{ kind: 'unknown', code, data }`, never dropped.
 *
 * Trailing bytes: fixed-size rows are `trailing: 'ignore'` because later Core versions extend events by
 * appending parameters and a host must keep working with a newer controller (the same rule as
 * le-events.ts); count-driven rows (Number Of Completed Packets) stay strict, since bytes after the
 * counted entries mean count and data disagree.
 */

/**
 * Command Complete return parameters, decoded through the command table by the Command_Opcode that
 * precedes them. This field must directly follow the opcode field: it reads the opcode from the two
 * bytes before it (the Field interface has no access to sibling values).
 */
const returnParametersField: Field<ReturnParameters> = {
  read: (r: ByteReader) => {
    const o = r.offset;
    if (o < 2) r.fail('return parameters without an opcode');
    const opcode = r.bytes[o - 2]! | (r.bytes[o - 1]! << 8);
    return decodeReturnParameters(opcode, r);
  },
  write: (w, v) => encodeReturnParameters(w, v),
  size: v => sizeOfReturnParameters(v),
  fixed: 0,
  fmt: v => `{${v.kind}${describeReturn(v)}}`,
};

type EventRow = RowSpec;

export const HCI_EVENTS = {
  inquiryComplete: { code: 0x01, name: 'Inquiry Complete', spec: 'Vol 4, Part E, 7.7.1', trailing: 'ignore',
    fields: { status: statusField } },
  // Inquiry results (Vol 4, Part E, 7.7.2 / 7.7.33 / 7.7.38): arrays row-wise, as every other array here.
  inquiryResult: { code: 0x02, name: 'Inquiry Result', spec: 'Vol 4, Part E, 7.7.2',
    fields: { responses: arrayOf(u8, struct({ bdAddr, pageScanRepetitionMode: u8, reserved: x16, classOfDevice: x24,
      clockOffset: x16 })) } },
  connectionComplete: { code: 0x03, name: 'Connection Complete', spec: 'Vol 4, Part E, 7.7.3', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, bdAddr, linkType: u8, encryptionEnabled: u8 } },
  connectionRequest: { code: 0x04, name: 'Connection Request', spec: 'Vol 4, Part E, 7.7.4', trailing: 'ignore',
    fields: { bdAddr, classOfDevice: x24, linkType: u8 } },
  disconnectionComplete: { code: 0x05, name: 'Disconnection Complete', spec: 'Vol 4, Part E, 7.7.5', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, reason: statusField } },
  remoteNameRequestComplete: { code: 0x07, name: 'Remote Name Request Complete', spec: 'Vol 4, Part E, 7.7.7',
    trailing: 'ignore', fields: { status: statusField, bdAddr, remoteName: nameBytes(248) } },
  authenticationComplete: { code: 0x06, name: 'Authentication Complete', spec: 'Vol 4, Part E, 7.7.6', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16 } },
  encryptionChange: { code: 0x08, name: 'Encryption Change [v1]', spec: 'Vol 4, Part E, 7.7.8', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, encryptionEnabled: u8 } },
  readRemoteSupportedFeaturesComplete: { code: 0x0b, name: 'Read Remote Supported Features Complete',
    spec: 'Vol 4, Part E, 7.7.11', trailing: 'ignore', fields: { status: statusField, connectionHandle: x16,
      lmpFeatures: u64 } },
  readRemoteVersionInformationComplete: { code: 0x0c, name: 'Read Remote Version Information Complete',
    spec: 'Vol 4, Part E, 7.7.12', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, version: u8, manufacturerName: x16, subversion: x16 } },
  commandComplete: { code: 0x0e, name: 'Command Complete', spec: 'Vol 4, Part E, 7.7.14',
    fields: { numHciCommandPackets: u8, commandOpcode: opcodeField, returnParameters: returnParametersField } },
  commandStatus: { code: 0x0f, name: 'Command Status', spec: 'Vol 4, Part E, 7.7.15', trailing: 'ignore',
    fields: { status: statusField, numHciCommandPackets: u8, commandOpcode: opcodeField } },
  hardwareError: { code: 0x10, name: 'Hardware Error', spec: 'Vol 4, Part E, 7.7.16', trailing: 'ignore',
    fields: { hardwareCode: x8 } },
  readClockOffsetComplete: { code: 0x1c, name: 'Read Clock Offset Complete', spec: 'Vol 4, Part E, 7.7.28', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, clockOffset: x16 } },
  roleChange: { code: 0x12, name: 'Role Change', spec: 'Vol 4, Part E, 7.7.18', trailing: 'ignore',
    fields: { status: statusField, bdAddr, newRole: u8 } },
  numberOfCompletedPackets: { code: 0x13, name: 'Number Of Completed Packets', spec: 'Vol 4, Part E, 7.7.19',
    fields: { handles: arrayOf(u8, struct({ connectionHandle: x16, numCompletedPackets: u16 })) } },
  modeChange: { code: 0x14, name: 'Mode Change', spec: 'Vol 4, Part E, 7.7.20', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, currentMode: u8, interval: u16 } },
  linkKeyRequest: { code: 0x17, name: 'Link Key Request', spec: 'Vol 4, Part E, 7.7.23', trailing: 'ignore',
    fields: { bdAddr } },
  linkKeyNotification: { code: 0x18, name: 'Link Key Notification', spec: 'Vol 4, Part E, 7.7.24', trailing: 'ignore',
    fields: { bdAddr, linkKey: bytes(16), keyType: u8 } },
  dataBufferOverflow: { code: 0x1a, name: 'Data Buffer Overflow', spec: 'Vol 4, Part E, 7.7.26', trailing: 'ignore',
    fields: { linkType: u8 } },
  maxSlotsChange: { code: 0x1b, name: 'Max Slots Change', spec: 'Vol 4, Part E, 7.7.27', trailing: 'ignore',
    fields: { connectionHandle: x16, lmpMaxSlots: u8 } },
  pageScanRepetitionModeChange: { code: 0x20, name: 'Page Scan Repetition Mode Change', spec: 'Vol 4, Part E, 7.7.31',
    trailing: 'ignore', fields: { bdAddr, pageScanRepetitionMode: u8 } },
  inquiryResultWithRssi: { code: 0x22, name: 'Inquiry Result with RSSI', spec: 'Vol 4, Part E, 7.7.33',
    fields: { responses: arrayOf(u8, struct({ bdAddr, pageScanRepetitionMode: u8, reserved: x8, classOfDevice: x24,
      clockOffset: x16, rssi: i8 })) } },
  readRemoteExtendedFeaturesComplete: { code: 0x23, name: 'Read Remote Extended Features Complete',
    spec: 'Vol 4, Part E, 7.7.34', trailing: 'ignore', fields: { status: statusField, connectionHandle: x16, pageNumber: u8,
      maxPageNumber: u8, extendedLmpFeatures: u64 } },
  // Android logs carry it. Num_Responses is always 1 (Vol 4, Part E, 7.7.38); the 240 octets are
  // EIR data, the same shape as advertising data (Vol 3, Part C, 8).
  extendedInquiryResult: { code: 0x2f, name: 'Extended Inquiry Result', spec: 'Vol 4, Part E, 7.7.38', trailing: 'ignore',
    fields: { numResponses: u8, bdAddr, pageScanRepetitionMode: u8, reserved: x8, classOfDevice: x24, clockOffset: x16,
      rssi: i8, extendedInquiryResponse: bytes(240) } },
  encryptionKeyRefreshComplete: { code: 0x30, name: 'Encryption Key Refresh Complete', spec: 'Vol 4, Part E, 7.7.39',
    trailing: 'ignore', fields: { status: statusField, connectionHandle: x16 } },
  ioCapabilityRequest: { code: 0x31, name: 'IO Capability Request', spec: 'Vol 4, Part E, 7.7.40', trailing: 'ignore',
    fields: { bdAddr } },
  ioCapabilityResponse: { code: 0x32, name: 'IO Capability Response', spec: 'Vol 4, Part E, 7.7.41', trailing: 'ignore',
    fields: { bdAddr, ioCapability: u8, oobDataPresent: u8, authenticationRequirements: x8 } },
  userConfirmationRequest: { code: 0x33, name: 'User Confirmation Request', spec: 'Vol 4, Part E, 7.7.42', trailing: 'ignore',
    fields: { bdAddr, numericValue: u32 } },
  simplePairingComplete: { code: 0x36, name: 'Simple Pairing Complete', spec: 'Vol 4, Part E, 7.7.45', trailing: 'ignore',
    fields: { status: statusField, bdAddr } },
  remoteHostSupportedFeaturesNotification: { code: 0x3d, name: 'Remote Host Supported Features Notification',
    spec: 'Vol 4, Part E, 7.7.50', trailing: 'ignore', fields: { bdAddr, hostSupportedFeatures: u64 } },
  authenticatedPayloadTimeoutExpired: { code: 0x57, name: 'Authenticated Payload Timeout Expired',
    spec: 'Vol 4, Part E, 7.7.75', trailing: 'ignore', fields: { connectionHandle: x16 } },
  encryptionChangeV2: { code: 0x59, name: 'Encryption Change [v2]', spec: 'Vol 4, Part E, 7.7.8', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, encryptionEnabled: u8, encryptionKeySize: u8 } },
} as const satisfies Record<string, EventRow>;

type E = typeof HCI_EVENTS;
export type HciEventKind = keyof E & string;
export type HciEventOf<K extends HciEventKind> = K extends HciEventKind ? { kind: K } & Infer<E[K]['fields']> : never;

/** Vendor-specific event (code 0xFF, Vol 4, Part E, 5.4.4), kept raw. */
export interface VendorEvent { kind: 'vendor'; code: number; data: Uint8Array }
/**
 * An event code (or, when `subeventCode` is present, an LE Meta sub-event) that is not in the tables.
 * `data` is what follows the code (for LE Meta: what follows the sub-event code).
 */
export interface UnknownEvent { kind: 'unknown'; code: number; subeventCode?: number; data: Uint8Array }

/** Every event a controller can send, flat: LE Meta sub-events carry their own `le…` kinds. */
export type HciEvent = HciEventOf<HciEventKind> | LeMetaEvent | VendorEvent | UnknownEvent;
/** Kinds of all tabled events (HCI and LE Meta). */
export type EventKind = HciEventKind | LeMetaKind;

/** Compiled table: code = Event_Code. */
export const EVENT_TABLE = defineTable('hci', HCI_EVENTS);

export function isLeMetaKind(kind: string): kind is LeMetaKind {
  return Object.prototype.hasOwnProperty.call(LE_META_EVENTS, kind);
}

/**
 * Event_Code (1) and Parameter_Total_Length (1) (Vol 4, Part E, 5.4.4); the parameters fill the rest
 * of the packet, so the length must match what follows.
 */
const eventFraming: Framing = {
  read(r, slot) {
    const at = r.offset;
    slot.code = r.u8();
    const len = r.u8();
    if (len !== r.remaining) r.fail(`Parameter_Total_Length ${len} but ${r.remaining} byte(s) follow`, at + 1);
    slot.length = -1;
    return true;
  },
  size: () => 2,
  write(w, code, n, evt) {
    if (n > 0xff) throw new EncodeError('hci', String((evt as { kind?: string }).kind), `parameters of ${n} bytes exceed 255`);
    w.u8(code).u8(n);
  },
};

type EventPacketShape = HciEvent & { type: 'event' };

/**
 * The event table's one codec. Readers are compiled (codec/compile.ts: one fixed object shape per
 * kind, `type: 'event'` first, since the result is the HciPacket shape, see packets.ts); LE Meta
 * (0x3E) is the LE sub-event codec; vendor (0xFF) and unknown codes are kept raw.
 */
export const EVENT_CODEC = framedCodec<E, {}, VendorEvent | UnknownEvent>(EVENT_TABLE, eventFraming, {
  what: 'event header',
  label: 'name',
  compile: { type: 'event' },
  sub: { [EVT_LE_META]: LE_META_CODEC },
  unknown: (code, data) => ({ type: 'event', kind: code === EVT_VENDOR ? 'vendor' : 'unknown', code, data }) as VendorEvent | UnknownEvent,
  describeUnknown: u => (u.kind === 'vendor' ? `Vendor Event data=${toHex(u.data)}` : `Unknown event ${hex8(u.code)} data=${toHex(u.data)}`),
});

/**
 * Decode the parameters of an event with this code (r ends where the event ends). The result carries
 * `type: 'event'` (it is the HciPacket shape, see packets.ts).
 */
export function decodeEventParams(code: number, r: ByteReader): EventPacketShape {
  return EVENT_CODEC.decodeBody(code, r) as EventPacketShape;
}

/** Event code for an event value. */
export function eventCode(evt: HciEvent): number {
  if (evt.kind === 'vendor' || evt.kind === 'unknown') return evt.code;
  return isLeMetaKind(evt.kind) ? EVT_LE_META : EVENT_TABLE.codeOf(evt.kind);
}

/** Parameter_Total_Length of an event (everything after the 2-byte event header). */
export function sizeOfEventParams(evt: HciEvent): number {
  return EVENT_CODEC.bodySizeOf(evt as never);
}

/** The return parameters of a Command Complete must belong to the opcode they are sent under. */
export function checkEventForEncoding(evt: HciEvent): void {
  if (evt.kind === 'commandComplete') {
    const op = returnKindOpcode(evt.returnParameters);
    if (op !== undefined && op !== evt.commandOpcode) {
      throw new EncodeError('hci', 'commandComplete',
        `return parameters of ${evt.returnParameters.kind} under opcode ${commandName(evt.commandOpcode)}`);
    }
  }
}

/** One-line description: "Disconnection Complete status=Success connectionHandle=0x0040 reason=…". */
export function describeEvent(evt: HciEvent): string {
  if (evt.kind === 'commandComplete') {
    return `Command Complete ${commandName(evt.commandOpcode)} ncmd=${evt.numHciCommandPackets}` +
      describeReturn(evt.returnParameters);
  }
  if (evt.kind === 'commandStatus') {
    return `Command Status ${commandName(evt.commandOpcode)} status=${statusField.fmt!(evt.status)} ` +
      `ncmd=${evt.numHciCommandPackets}`;
  }
  return EVENT_CODEC.describe(evt as never);
}
