import { ByteReader } from '../bytes/reader.js';
import { hex8, toHex } from '../bytes/hex.js';
import { AdTooLongError, DecodeError, EncodeError } from '../errors.js';
import { bdAddr, bytes, i8, leUint, named, repeated, rest, u16, x16, x24, x8, type Field } from '../codec/field.js';
import { defineTable, framedCodec, type Framing, type PduOf, type RowSpec } from '../codec/table.js';
import { bitfield } from '../codec/bits.js';
import { fromShort, shortUuid, uuid128, uuid16, uuid32, uuidFromBytes, type Uuid } from '../codec/uuid.js';

/**
 * Advertising and scan response data (Core Vol 3, Part C, 11; Extended Inquiry Response has the same
 * shape): a sequence of AD structures, each Length (1 octet, covering type and data), AD Type (1), AD
 * Data (Length - 1). The AD types are one declarative table (Core Specification Supplement, Part A;
 * codes from Assigned Numbers 2.3 "Common Data Types").
 *
 * Three ways in:
 *  - parseAd(data): the tolerant, fast view a scanner uses per report (name, flags, serviceUuids,
 *    serviceData, manufacturerData, txPower, appearance, …). It never throws: a structure whose
 *    Length runs past the data ends the parse, keeping every good structure before it, and is
 *    recorded in `malformed` (a real capture has 120 such reports); bad contents of a single structure
 *    (a 16-bit UUID list of odd length, …) are recorded and skipped. A zero Length is early
 *    termination (Vol 3, Part C, 11: the rest is padding, not AD, and is ignored).
 *  - decodeAd(data) / decodeAdStructure(s): strict, table-driven, every structure decoded to its
 *    kind and fields; throws DecodeError (for the CLI and tests).
 *  - encodeAd(structures): the encoder for the simulator and advertisers.
 * Byte values are views into the report (frames are immutable, STYLE c.7).
 */

// ---- value fields of the table ------------------------------------------------------------------

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

/** Per length n ≤ 32, one array of n codes that decodeUtf8's ASCII path fills and hands to String.fromCharCode. */
const CODES_OF_LENGTH: number[][] = Array.from({ length: 33 }, (_, n) => Array.from({ length: n }, () => 0));

/**
 * UTF-8 text, tolerant of invalid octets (each becomes U+FFFD); ASCII takes a fast path. The fast
 * path gathers the codes and makes the string in one call: appending one character at a time made a
 * new string per character (flat copies below 13 characters, then a cons string to flatten later),
 * about 110 ns for a 15-character device name against 67 (issue 14: names are most of a parse).
 * The codes go into one reused array per length (String.fromCharCode only reads it, and nothing
 * runs in between), and the loop has no exit: whether any octet was ≥ 0x80 is decided after it.
 * A fresh array per name, and the TextDecoder call inside the loop, were half of a name's cost
 * (14 characters, micro-benchmark: about 105 -> 60 ns).
 */
export function decodeUtf8(b: Uint8Array, start = 0, end = b.length): string {
  const n = end - start;
  if (n <= 0) return '';
  if (n > 32) return decodeUtf8Slow(b, start, end);
  const codes = CODES_OF_LENGTH[n]!;
  let high = 0;
  for (let i = 0; i < n; i++) {
    const c = b[start + i]!;
    high |= c;
    codes[i] = c;
  }
  return high < 0x80 ? String.fromCharCode.apply(null, codes) : decodeUtf8Slow(b, start, end);
}

function decodeUtf8Slow(b: Uint8Array, start: number, end: number): string {
  return utf8Decoder.decode(b.subarray(start, end));
}

const utf8: Field<string> = {
  read: r => decodeUtf8(r.rest()),
  at: (b, o, n) => decodeUtf8(b, o, o + n),
  write: (w, v) => { w.bytesOf(utf8Encoder.encode(v)); },
  size: v => utf8Encoder.encode(v).length,
  fixed: 0,
  fmt: v => JSON.stringify(v),
};

/**
 * URI scheme name string mapping (Assigned Numbers, "URI Schemes"): the URI AD data starts with one
 * UTF-8 code point naming the scheme (U+0001 means "no scheme prefix"), followed by the rest of the
 * URI (Supplement, Part A, 1.18).
 */
export const URI_SCHEMES: readonly string[] = [
  'aaa:', 'aaas:', 'about:', 'acap:', 'acct:', 'cap:', 'cid:', 'coap:', 'coaps:', 'crid:', 'data:', 'dav:', 'dict:',
  'dns:', 'file:', 'ftp:', 'geo:', 'go:', 'gopher:', 'h323:', 'http:', 'https:', 'iax:', 'icap:', 'im:', 'imap:', 'info:',
  'ipp:', 'ipps:', 'iris:', 'iris.beep:', 'iris.xpc:', 'iris.xpcs:', 'iris.lwz:', 'jabber:', 'ldap:', 'mailto:', 'mid:',
  'msrp:', 'msrps:', 'mtqp:', 'mupdate:', 'news:', 'nfs:', 'ni:', 'nih:', 'nntp:', 'opaquelocktoken:', 'pop:', 'pres:',
  'reload:', 'rtsp:', 'rtsps:', 'rtspu:', 'service:', 'session:', 'shttp:', 'sieve:', 'sip:', 'sips:', 'sms:', 'snmp:',
  'soap.beep:', 'soap.beeps:', 'stun:', 'stuns:', 'tag:', 'tel:', 'telnet:', 'tftp:', 'thismessage:', 'tn3270:', 'tip:',
  'turn:', 'turns:', 'tv:', 'urn:', 'vemmi:', 'ws:', 'wss:', 'xcon:', 'xcon-userid:', 'xmlrpc.beep:', 'xmlrpc.beeps:',
  'xmpp:', 'z39.50r:', 'z39.50s:', 'acr:', 'adiumxtra:', 'afp:', 'afs:', 'aim:', 'apt:', 'attachment:', 'aw:', 'barion:',
  'beshare:', 'bitcoin:', 'bolo:', 'callto:', 'chrome:', 'chrome-extension:', 'com-eventbrite-attendee:', 'content:',
  'cvs:', 'dlna-playsingle:', 'dlna-playcontainer:', 'dtn:', 'dvb:', 'ed2k:', 'facetime:', 'feed:', 'feedready:',
  'finger:', 'fish:', 'gg:', 'git:', 'gizmoproject:', 'gtalk:', 'ham:', 'hcp:', 'icon:', 'ipn:', 'irc:', 'irc6:', 'ircs:',
  'itms:', 'jar:', 'jms:', 'keyparc:', 'lastfm:', 'ldaps:', 'magnet:', 'maps:', 'market:', 'message:', 'mms:',
  'ms-help:', 'ms-settings-power:', 'msnim:', 'mumble:', 'mvn:', 'notes:', 'oid:', 'palm:', 'paparazzi:', 'pkcs11:',
  'platform:', 'proxy:', 'psyc:', 'query:', 'res:', 'resource:', 'rmi:', 'rsync:', 'rtmfp:', 'rtmp:', 'secondlife:',
  'sftp:', 'sgn:', 'skype:', 'smb:', 'smtp:', 'soldat:', 'spotify:', 'ssh:', 'steam:', 'submit:', 'svn:', 'teamspeak:',
  'teliaeid:', 'things:', 'udp:', 'unreal:', 'ut2004:', 'ventrilo:', 'view-source:', 'webcal:', 'wtai:', 'wyciwyg:',
  'xfire:', 'xri:', 'ymsgr:',
];
/** Code point of the first scheme (U+0002 "aaa:"); U+0001 is the empty scheme. */
const URI_SCHEME_BASE = 0x02;

/** Expand a URI AD payload to the full URI; an unknown scheme code point is kept as "\u{…}" text. */
export function decodeUri(b: Uint8Array): string {
  const text = decodeUtf8(b);
  if (text.length === 0) return '';
  const cp = text.codePointAt(0)!;
  const restText = text.slice(cp > 0xffff ? 2 : 1);
  if (cp === 0x01) return restText;
  const scheme = URI_SCHEMES[cp - URI_SCHEME_BASE];
  return scheme !== undefined ? scheme + restText : text;
}

/** The URI AD payload of a URI: the longest known scheme becomes its code point, else U+0001. */
export function encodeUri(uri: string): Uint8Array {
  let best = -1;
  for (let i = 0; i < URI_SCHEMES.length; i++) {
    const s = URI_SCHEMES[i]!;
    if (uri.startsWith(s) && (best < 0 || s.length > URI_SCHEMES[best]!.length)) best = i;
  }
  const text = best < 0 ? '\u0001' + uri : String.fromCodePoint(best + URI_SCHEME_BASE) + uri.slice(URI_SCHEMES[best]!.length);
  return utf8Encoder.encode(text);
}

const uriField: Field<string> = {
  // Strict (the table decode): the payload must start with U+0001 or a known scheme's code point, so
  // the string encodes back to the same octets. The scanner's view (`at`) stays tolerant.
  read: r => {
    const at = r.offset;
    const b = r.rest();
    const cp = decodeUtf8(b, 0, Math.min(b.length, 4)).codePointAt(0);
    if (cp === undefined) return r.fail('a URI starts with its scheme code point (Supplement, Part A, 1.18)', at);
    if (cp !== 0x01 && URI_SCHEMES[cp - URI_SCHEME_BASE] === undefined) r.fail(`U+${cp.toString(16).padStart(4, '0')} is not a URI scheme code point`, at);
    return decodeUri(b);
  },
  at: (b, o, n) => decodeUri(b.subarray(o, o + n)),
  write: (w, v) => { w.bytesOf(encodeUri(v)); },
  size: v => encodeUri(v).length,
  fixed: 0,
  fmt: v => JSON.stringify(v),
};

/** The Flags AD type's bits (Supplement, Part A, 1.3). */
export const AD_FLAGS = bitfield(x8, {
  leLimitedDiscoverable: { mask: 0x01, label: 'LE Limited' },
  leGeneralDiscoverable: { mask: 0x02, label: 'LE General' },
  brEdrNotSupported: { mask: 0x04, label: 'no BR/EDR' },
  simultaneousLeBrEdrController: { mask: 0x08, label: 'LE+BR/EDR controller' },
  simultaneousLeBrEdrHost: { mask: 0x10, label: 'LE+BR/EDR host' },
});

/** Flags bits as constants (kept for existing users; AD_FLAGS names them too). */
export const AdFlags = {
  LeLimitedDiscoverable: AD_FLAGS.parts.leLimitedDiscoverable.mask,
  LeGeneralDiscoverable: AD_FLAGS.parts.leGeneralDiscoverable.mask,
  BrEdrNotSupported: AD_FLAGS.parts.brEdrNotSupported.mask,
  SimultaneousLeBrEdrController: AD_FLAGS.parts.simultaneousLeBrEdrController.mask,
  SimultaneousLeBrEdrHost: AD_FLAGS.parts.simultaneousLeBrEdrHost.mask,
} as const;

/** `0x06(LE General|no BR/EDR)`. */
export function describeFlags(v: number): string {
  return AD_FLAGS.describeBits(v);
}

const flagsField: Field<number> = AD_FLAGS;
const uuidList = (f: Field<Uuid>): Field<Uuid[]> => repeated(f);
/** Advertising interval in units of 0.625 ms (Supplement, Part A, 1.15). */
const interval0625: Field<number> = { ...u16, fmt: v => `${v} (${(v * 0.625).toFixed(3)} ms)` };
/** Advertising Interval - long: 3 or 4 octets of 0.625 ms units (Supplement, Part A, 1.15). */
const intervalLong: Field<number> = {
  read: r => {
    const n = r.remaining;
    if (n !== 3 && n !== 4) r.fail(`a long advertising interval is 3 or 4 octets, got ${n}`);
    return n === 3 ? r.u24() : r.u32();
  },
  write: (w, v) => { if (v <= 0xffffff) w.u24(v); else w.u32(v); },
  size: v => (v <= 0xffffff ? 3 : 4),
  fixed: 3,
  at: (b, o, n) => (n === 3 || n === 4 ? leUint(b, o, n) : undefined),
  fmt: v => `${v} (${(v * 0.625).toFixed(3)} ms)`,
};
const LE_ROLE_NAMES: Readonly<Record<number, string>> = {
  0x00: 'peripheral only', 0x01: 'central only', 0x02: 'peripheral preferred', 0x03: 'central preferred',
};
const ADDRESS_TYPE_NAMES: Readonly<Record<number, string>> = { 0x00: 'public', 0x01: 'random' };

/**
 * How the tolerant scanner view (`parseAd`) takes in a structure of a row's type; a row without one
 * is only listed in `structures`. The role says what the structure means to a scanner; the field
 * sizes (UUID width, company identifier width, exact scalar size) come from the row's own fields.
 */
export type AdViewRole =
  | 'flags' | 'serviceUuids' | 'solicitedUuids' | 'name' | 'txPower' | 'appearance' | 'interval'
  | 'serviceData' | 'manufacturerData' | 'uri';

interface AdRowSpec extends RowSpec {
  readonly view?: AdViewRole;
  /** For service UUID lists and local names: the complete form (true) or the partial one. */
  readonly complete?: boolean;
}
const row = <const S extends AdRowSpec>(s: S): S => s;
const CSS = 'Core Specification Supplement, Part A, ';

export const AD_TYPES = {
  flags: row({ code: 0x01, name: 'Flags', view: 'flags', spec: CSS + '1.3', fields: { flags: flagsField }, trailing: 'ignore' }),
  incompleteUuids16: row({ code: 0x02, name: 'Incomplete List of 16-bit Service UUIDs', view: 'serviceUuids', complete: false, spec: CSS + '1.1', fields: { uuids: uuidList(uuid16) } }),
  completeUuids16: row({ code: 0x03, name: 'Complete List of 16-bit Service UUIDs', view: 'serviceUuids', complete: true, spec: CSS + '1.1', fields: { uuids: uuidList(uuid16) } }),
  incompleteUuids32: row({ code: 0x04, name: 'Incomplete List of 32-bit Service UUIDs', view: 'serviceUuids', complete: false, spec: CSS + '1.1', fields: { uuids: uuidList(uuid32) } }),
  completeUuids32: row({ code: 0x05, name: 'Complete List of 32-bit Service UUIDs', view: 'serviceUuids', complete: true, spec: CSS + '1.1', fields: { uuids: uuidList(uuid32) } }),
  incompleteUuids128: row({ code: 0x06, name: 'Incomplete List of 128-bit Service UUIDs', view: 'serviceUuids', complete: false, spec: CSS + '1.1', fields: { uuids: uuidList(uuid128) } }),
  completeUuids128: row({ code: 0x07, name: 'Complete List of 128-bit Service UUIDs', view: 'serviceUuids', complete: true, spec: CSS + '1.1', fields: { uuids: uuidList(uuid128) } }),
  shortenedLocalName: row({ code: 0x08, name: 'Shortened Local Name', view: 'name', complete: false, spec: CSS + '1.2', fields: { name: utf8 } }),
  completeLocalName: row({ code: 0x09, name: 'Complete Local Name', view: 'name', complete: true, spec: CSS + '1.2', fields: { name: utf8 } }),
  txPowerLevel: row({ code: 0x0a, name: 'Tx Power Level', view: 'txPower', spec: CSS + '1.5', fields: { txPower: i8 } }),
  classOfDevice: row({ code: 0x0d, name: 'Class of Device', spec: CSS + '1.6', fields: { classOfDevice: x24 } }),
  simplePairingHashC192: row({ code: 0x0e, name: 'Simple Pairing Hash C-192', spec: CSS + '1.6', fields: { hash: bytes(16) } }),
  simplePairingRandomizerR192: row({ code: 0x0f, name: 'Simple Pairing Randomizer R-192', spec: CSS + '1.6', fields: { randomizer: bytes(16) } }),
  /** 0x10 is Device ID (Device ID profile) in EIR, and the Security Manager TK Value (1.8) in OOB data. */
  deviceIdOrTkValue: row({ code: 0x10, name: 'Device ID / Security Manager TK Value', spec: CSS + '1.8', fields: { value: rest } }),
  securityManagerOobFlags: row({ code: 0x11, name: 'Security Manager Out of Band Flags', spec: CSS + '1.7', fields: { oobFlags: x8 } }),
  peripheralConnectionIntervalRange: row({ code: 0x12, name: 'Peripheral Connection Interval Range', spec: CSS + '1.9',
    fields: { intervalMin: x16, intervalMax: x16 } }),
  solicitationUuids16: row({ code: 0x14, name: 'List of 16-bit Service Solicitation UUIDs', view: 'solicitedUuids', spec: CSS + '1.10', fields: { uuids: uuidList(uuid16) } }),
  solicitationUuids128: row({ code: 0x15, name: 'List of 128-bit Service Solicitation UUIDs', view: 'solicitedUuids', spec: CSS + '1.10', fields: { uuids: uuidList(uuid128) } }),
  serviceData16: row({ code: 0x16, name: 'Service Data - 16-bit UUID', view: 'serviceData', spec: CSS + '1.11', fields: { uuid: uuid16, data: rest } }),
  publicTargetAddress: row({ code: 0x17, name: 'Public Target Address', spec: CSS + '1.13', fields: { addresses: repeated(bdAddr) } }),
  randomTargetAddress: row({ code: 0x18, name: 'Random Target Address', spec: CSS + '1.14', fields: { addresses: repeated(bdAddr) } }),
  appearance: row({ code: 0x19, name: 'Appearance', view: 'appearance', spec: CSS + '1.12', fields: { appearance: x16 } }),
  advertisingInterval: row({ code: 0x1a, name: 'Advertising Interval', view: 'interval', spec: CSS + '1.15', fields: { interval: interval0625 } }),
  leBluetoothDeviceAddress: row({ code: 0x1b, name: 'LE Bluetooth Device Address', spec: CSS + '1.16',
    fields: { address: bdAddr, addressType: named(x8, ADDRESS_TYPE_NAMES) } }),
  leRole: row({ code: 0x1c, name: 'LE Role', spec: CSS + '1.17', fields: { role: named(x8, LE_ROLE_NAMES) } }),
  simplePairingHashC256: row({ code: 0x1d, name: 'Simple Pairing Hash C-256', spec: CSS + '1.6', fields: { hash: bytes(16) } }),
  simplePairingRandomizerR256: row({ code: 0x1e, name: 'Simple Pairing Randomizer R-256', spec: CSS + '1.6', fields: { randomizer: bytes(16) } }),
  solicitationUuids32: row({ code: 0x1f, name: 'List of 32-bit Service Solicitation UUIDs', view: 'solicitedUuids', spec: CSS + '1.10', fields: { uuids: uuidList(uuid32) } }),
  serviceData32: row({ code: 0x20, name: 'Service Data - 32-bit UUID', view: 'serviceData', spec: CSS + '1.11', fields: { uuid: uuid32, data: rest } }),
  serviceData128: row({ code: 0x21, name: 'Service Data - 128-bit UUID', view: 'serviceData', spec: CSS + '1.11', fields: { uuid: uuid128, data: rest } }),
  leSecureConnectionsConfirmationValue: row({ code: 0x22, name: 'LE Secure Connections Confirmation Value', spec: CSS + '1.6',
    fields: { confirmationValue: bytes(16) } }),
  leSecureConnectionsRandomValue: row({ code: 0x23, name: 'LE Secure Connections Random Value', spec: CSS + '1.6',
    fields: { randomValue: bytes(16) } }),
  uri: row({ code: 0x24, name: 'URI', view: 'uri', spec: CSS + '1.18', fields: { uri: uriField } }),
  indoorPositioning: row({ code: 0x25, name: 'Indoor Positioning', spec: 'Indoor Positioning Service 1.0, 3.1', fields: { data: rest } }),
  transportDiscoveryData: row({ code: 0x26, name: 'Transport Discovery Data', spec: 'Transport Discovery Service 1.0, 4.1', fields: { data: rest } }),
  leSupportedFeatures: row({ code: 0x27, name: 'LE Supported Features', spec: CSS + '1.19', fields: { features: rest } }),
  channelMapUpdateIndication: row({ code: 0x28, name: 'Channel Map Update Indication', spec: CSS + '1.20',
    fields: { channelMap: bytes(5), instant: u16 } }),
  pbAdv: row({ code: 0x29, name: 'PB-ADV', spec: 'Mesh Profile 1.0, 5.2.1', fields: { data: rest } }),
  meshMessage: row({ code: 0x2a, name: 'Mesh Message', spec: 'Mesh Profile 1.0, 3.3.1', fields: { data: rest } }),
  meshBeacon: row({ code: 0x2b, name: 'Mesh Beacon', spec: 'Mesh Profile 1.0, 3.9', fields: { data: rest } }),
  bigInfo: row({ code: 0x2c, name: 'BIGInfo', spec: CSS + '1.21', fields: { data: rest } }),
  broadcastCode: row({ code: 0x2d, name: 'Broadcast_Code', spec: CSS + '1.22', fields: { data: rest } }),
  resolvableSetIdentifier: row({ code: 0x2e, name: 'Resolvable Set Identifier', spec: 'Coordinated Set Identification Profile 1.0, 3.1',
    fields: { rsi: bytes(6) } }),
  advertisingIntervalLong: row({ code: 0x2f, name: 'Advertising Interval - long', view: 'interval', spec: CSS + '1.15', fields: { interval: intervalLong } }),
  broadcastName: row({ code: 0x30, name: 'Broadcast_Name', spec: 'Public Broadcast Profile 1.0, 4.2', fields: { name: utf8 } }),
  encryptedAdvertisingData: row({ code: 0x31, name: 'Encrypted Advertising Data', spec: CSS + '1.23', fields: { data: rest } }),
  periodicAdvertisingResponseTimingInformation: row({ code: 0x32, name: 'Periodic Advertising Response Timing Information',
    spec: CSS + '1.24', fields: { data: rest } }),
  electronicShelfLabel: row({ code: 0x34, name: 'Electronic Shelf Label', spec: 'Electronic Shelf Label Profile 1.0, 3.1', fields: { data: rest } }),
  threeDInformationData: row({ code: 0x3d, name: '3D Information Data', spec: '3D Synchronization Profile 1.0, 5.1', fields: { data: rest } }),
  manufacturerSpecificData: row({ code: 0xff, name: 'Manufacturer Specific Data', view: 'manufacturerData', spec: CSS + '1.4',
    fields: { companyId: x16, data: rest } }),
} as const;

export const AD_TABLE = defineTable('ad', AD_TYPES);

type Rows = typeof AD_TYPES;
export type AdKind = keyof Rows;
export type AdPduOf<K extends AdKind> = PduOf<Rows, K>;
/** One decoded AD structure of a known type. */
export type AdPdu = PduOf<Rows>;
/** One AD structure as it is on the wire: its type and a view of its data. */
export interface AdStructure { type: number; data: Uint8Array }
/** An AD type not in the table, kept raw. */
export interface UnknownAdPdu { kind: 'unknown'; code: number; data: Uint8Array }

export interface AdMalformation {
  /** Offset of the structure's Length octet in the data. */
  offset: number;
  /** AD type, when the structure got that far. */
  type?: number;
  reason: string;
}

/** The tolerant parse of one advertising (or scan response) payload. */
export interface ParsedAd {
  /** Every well-formed structure, in order (views into the data). */
  readonly structures: readonly AdStructure[];
  /** What was wrong, if anything (empty for well-formed data). */
  readonly malformed: readonly AdMalformation[];
  readonly flags: number | undefined;
  /** Complete Local Name, else Shortened Local Name (trailing NULs removed). */
  readonly name: string | undefined;
  /** True when `name` came from a Complete Local Name. */
  readonly nameComplete: boolean;
  readonly txPower: number | undefined;
  readonly appearance: number | undefined;
  /** Service UUIDs of every list (16/32/128, complete or not), in order, without repeats. */
  readonly serviceUuids: readonly Uuid[];
  readonly solicitedServiceUuids: readonly Uuid[];
  readonly serviceData: ReadonlyMap<Uuid, Uint8Array>;
  /** Company identifier → data after it (the last one wins when a company appears twice). */
  readonly manufacturerData: ReadonlyMap<number, Uint8Array>;
  /** Advertising interval in 0.625 ms units (either interval type). */
  readonly advertisingInterval: number | undefined;
  readonly uri: string | undefined;
}

const NO_STRUCTURES: readonly AdStructure[] = Object.freeze([]);
const NO_MALFORMED: readonly AdMalformation[] = Object.freeze([]);
const NO_UUIDS: readonly Uuid[] = Object.freeze([]);
const NO_SERVICE_DATA: ReadonlyMap<Uuid, Uint8Array> = new Map();
const NO_MANUFACTURER_DATA: ReadonlyMap<number, Uint8Array> = new Map();

// ---- the scanner view, generated from the table ------------------------------------------------
//
// parseAd runs once per advertising report a caller looks into, so it reads in place, with no
// per-structure reader or object. What it does with each AD type is not written here by code: it is
// compiled below, at load, from the rows' `view` roles and fields into flat per-type lookups.

const V_NONE = 0, V_FLAGS = 1, V_SERVICE_UUIDS = 2, V_SOLICITED_UUIDS = 3, V_NAME = 4, V_TX_POWER = 5,
  V_APPEARANCE = 6, V_INTERVAL = 7, V_SERVICE_DATA = 8, V_MANUFACTURER_DATA = 9, V_URI = 10;
const ROLE_CODES: Readonly<Record<AdViewRole, number>> = {
  flags: V_FLAGS, serviceUuids: V_SERVICE_UUIDS, solicitedUuids: V_SOLICITED_UUIDS, name: V_NAME, txPower: V_TX_POWER,
  appearance: V_APPEARANCE, interval: V_INTERVAL, serviceData: V_SERVICE_DATA, manufacturerData: V_MANUFACTURER_DATA,
  uri: V_URI,
};
/** Per AD type: its view role (V_*). */
const VIEW = new Uint8Array(256);
/** Per AD type: the UUID width of a list or of service data. */
const WIDTH = new Uint8Array(256);
/** Per AD type: 1 for the complete form of a name or list. */
const COMPLETE = new Uint8Array(256);
/** Per AD type: the field read in place (scalars, text; the company identifier of manufacturer data). */
const AT: Array<Field<any> | undefined> = new Array(256).fill(undefined);
/** Per AD type: octets to read in place when the row ignores trailing octets (0: the whole structure). */
const LENIENT = new Uint8Array(256);
/** Per AD type: the Supplement's name, for malformation reasons. */
const NAMES: string[] = new Array(256).fill('');

for (const r of Object.values(AD_TYPES) as readonly AdRowSpec[]) {
  if (r.view === undefined) continue;
  const fields = Object.values(r.fields);
  const first = fields[0]!;
  VIEW[r.code] = ROLE_CODES[r.view];
  NAMES[r.code] = r.name;
  COMPLETE[r.code] = r.complete ? 1 : 0;
  switch (r.view) {
    case 'serviceUuids': case 'solicitedUuids':
      WIDTH[r.code] = first.unit ?? 0;
      break;
    case 'serviceData':
      WIDTH[r.code] = first.fixed ?? 0;
      break;
    case 'manufacturerData':
      WIDTH[r.code] = first.fixed ?? 0;
      AT[r.code] = first;
      break;
    default:
      AT[r.code] = first;
      if (r.trailing === 'ignore') LENIENT[r.code] = first.fixed ?? 0;
  }
  const inPlace = r.view === 'serviceUuids' || r.view === 'solicitedUuids' || r.view === 'serviceData' ? WIDTH[r.code]! > 0 : !!first.at;
  if (!inPlace) throw new Error(`AD table: row ${r.name} has view ${r.view} but its first field cannot be read in place`);
}

/** The row's value field read in place over [s, s + size), or undefined when the size is wrong. */
function valueAt(type: number, d: Uint8Array, s: number, size: number): any {
  const lenient = LENIENT[type]!;
  return AT[type]!.at!(d, s, lenient !== 0 && size >= lenient ? lenient : size);
}

/** Record a malformation (module-level, not a closure: parseAd is hot). */
function bad(list: AdMalformation[] | undefined, offset: number, type: number | undefined, reason: string): AdMalformation[] {
  const out = list ?? [];
  out.push(type === undefined ? { offset, reason } : { offset, type, reason });
  return out;
}

/** Append the UUIDs of a list structure, without repeats (a partial UUID at the end is skipped). */
function addUuids(d: Uint8Array, list: Uuid[] | undefined, s: number, e: number, size: number): Uuid[] {
  const out = list ?? [];
  for (let p = s; p + size <= e; p += size) {
    const u = size === 2 ? fromShort(d[p]! | (d[p + 1]! << 8)) : uuidFromBytes(d, p, size)!;
    if (!out.includes(u)) out.push(u);
  }
  return out;
}

/**
 * Parse AD structures tolerantly (see the file comment). Never throws. One pass, no per-structure
 * reader objects; what each AD type contributes is the table's `view` role.
 */
export function parseAd(d: Uint8Array): ParsedAd {
  return parseAdIn(d, 0, d.length);
}

/**
 * parseAd over d[start, end), read in place: a caller holding the octets inside a larger array (the
 * scanner's copies live in shared chunks) needs no view of them. Offsets in `malformed` count from
 * `start`; views handed out (service / manufacturer data, structures) are views of `d`.
 *
 * `priorName`: the name of an earlier parse of the same advertiser (the scanner's, when a device's
 * data changed): when the winning name's octets are ASCII and spell it, that string is the name, and
 * no new one is made (a beacon's rolling counter changes its data on every visit, its name never).
 *
 * `buffer`: d's ArrayBuffer when d starts at its offset 0 (the scanner keeps it with each copy): the
 * views of service and manufacturer data are then made from it, about half the cost of `subarray`.
 */
export function parseAdIn(d: Uint8Array, start: number, end: number, priorName?: string, buffer?: ArrayBuffer): ParsedAd {
  const n = end;
  let structures = 0;
  let malformed: AdMalformation[] | undefined;
  let flags: number | undefined, nameComplete = false, txPower: number | undefined;
  // The name that wins (the last complete one, else the last shortened one), decoded once after the
  // loop: a device's shortened name in its advertising data followed by its complete name in the
  // scan response (the usual merged copy) is one string made, not two. nameType -1: none.
  let nameType = -1, nameAt = 0, nameEnd = 0;
  let appearance: number | undefined, advertisingInterval: number | undefined, uri: string | undefined;
  let serviceUuids: Uuid[] | undefined, solicited: Uuid[] | undefined;
  let serviceData: Map<Uuid, Uint8Array> | undefined, manufacturerData: Map<number, Uint8Array> | undefined;
  let i = start;
  while (i < n) {
    const len = d[i]!;
    if (len === 0) {
      // Early termination (Vol 3, Part C, 11): what follows is not AD (padding), whatever its value.
      break;
    }
    if (i + 1 + len > n) {
      malformed = bad(malformed, i - start, i + 1 < n ? d[i + 1] : undefined, `Length ${len} runs ${i + 1 + len - n} octet(s) past the end of the data`);
      break;
    }
    const type = d[i + 1]!;
    const s = i + 2, e = i + 1 + len;
    structures++;
    const size = e - s;
    switch (VIEW[type]) {
      case V_NONE: break;
      case V_SERVICE_UUIDS: case V_SOLICITED_UUIDS: {
        // UUID lists (Supplement, Part A, 1.1 and 1.10): UUIDs of the row's width back to back.
        const us = WIDTH[type]!;
        if (size % us !== 0) malformed = bad(malformed, i - start, type, `${size} octet(s) are not a whole number of ${us}-octet UUIDs`);
        if (VIEW[type] === V_SERVICE_UUIDS) serviceUuids = addUuids(d, serviceUuids, s, e, us);
        else solicited = addUuids(d, solicited, s, e, us);
        break;
      }
      case V_NAME: {
        if (nameComplete && !COMPLETE[type]) break; // a complete name wins over a shortened one
        let end = e;
        while (end > s && d[end - 1] === 0) end--; // NUL padding some devices append
        nameType = type;
        nameAt = s;
        nameEnd = end;
        if (COMPLETE[type]) nameComplete = true;
        break;
      }
      case V_SERVICE_DATA: {
        const us = WIDTH[type]!;
        if (size < us) { malformed = bad(malformed, i - start, type, `${NAMES[type]} of ${size} octets has no whole UUID`); break; }
        (serviceData ??= new Map()).set(uuidFromBytes(d, s, us)!, viewOf(d, buffer, s + us, e));
        break;
      }
      case V_MANUFACTURER_DATA: {
        const cs = WIDTH[type]!;
        if (size < cs) { malformed = bad(malformed, i - start, type, `${NAMES[type]} of ${size} octets has no company identifier`); break; }
        (manufacturerData ??= new Map()).set(AT[type]!.at!(d, s, cs), viewOf(d, buffer, s + cs, e));
        break;
      }
      // One value read in place by the row's field; each role has its own call site (one field
      // type each, so V8 can inline it).
      case V_FLAGS: {
        const v = AT[type]!.at!(d, s, LENIENT[type]! !== 0 && size >= LENIENT[type]! ? LENIENT[type]! : size);
        if (v === undefined) malformed = bad(malformed, i - start, type, `${NAMES[type]} of ${size} octets`);
        else flags = v;
        break;
      }
      case V_TX_POWER: {
        const v = valueAt(type, d, s, size);
        if (v === undefined) malformed = bad(malformed, i - start, type, `${NAMES[type]} of ${size} octets`);
        else txPower = v;
        break;
      }
      case V_APPEARANCE: {
        const v = valueAt(type, d, s, size);
        if (v === undefined) malformed = bad(malformed, i - start, type, `${NAMES[type]} of ${size} octets`);
        else appearance = v;
        break;
      }
      case V_INTERVAL: {
        const v = valueAt(type, d, s, size);
        if (v === undefined) malformed = bad(malformed, i - start, type, `${NAMES[type]} of ${size} octets`);
        else advertisingInterval = v;
        break;
      }
      case V_URI: uri = valueAt(type, d, s, size); break;
    }
    i = e;
  }
  const name: string | undefined = nameType < 0 ? undefined
    : priorName !== undefined && spells(priorName, d, nameAt, nameEnd) ? priorName : AT[nameType]!.at!(d, nameAt, nameEnd - nameAt);
  const scalars = (flags === undefined ? 0 : HAS_FLAGS | flags) | (txPower === undefined ? 0 : HAS_TX_POWER | ((txPower & 0xff) << TX_SHIFT)) |
    (nameComplete ? NAME_COMPLETE : 0);
  const rare = malformed === undefined && solicited === undefined && advertisingInterval === undefined && uri === undefined ? undefined
    : new RareFields(malformed ?? NO_MALFORMED, solicited ?? NO_UUIDS, advertisingInterval, uri);
  return new ParsedAdView(d, start, structures === 0 ? start : end, scalars, name, appearance,
    serviceUuids ?? NO_UUIDS, serviceData ?? NO_SERVICE_DATA, manufacturerData ?? NO_MANUFACTURER_DATA, rare);
}


/** d[s, e) as a view: made from `buffer` when parseAdIn was given it (d at its offset 0), else `subarray`. */
function viewOf(d: Uint8Array, buffer: ArrayBuffer | undefined, s: number, e: number): Uint8Array {
  return buffer !== undefined ? new Uint8Array(buffer, s, e - s) : d.subarray(s, e);
}

/**
 * d[at, end) is ASCII and spells `text` (then decoding it would make the same string). ASCII only:
 * a character of `text` equal to an octet ≥ 0x80 says nothing about what the octets decode to.
 */
function spells(text: string, d: Uint8Array, at: number, end: number): boolean {
  const n = end - at;
  if (text.length !== n) return false;
  let high = 0;
  for (let i = 0; i < n; i++) {
    const c = d[at + i]!;
    if (text.charCodeAt(i) !== c) return false;
    high |= c;
  }
  return high < 0x80;
}

// ParsedAdView's `scalars`: flags (bits 0-7), TX power as an octet (bits 9-16), presence bits, nameComplete.
const HAS_FLAGS = 1 << 8, TX_SHIFT = 9, HAS_TX_POWER = 1 << 17, NAME_COMPLETE = 1 << 18;

/** What few advertisements carry (a malformation, solicited UUIDs, an interval, a URI), and the structure list once asked for. */
class RareFields {
  list: readonly AdStructure[] | undefined = undefined;
  constructor(
    readonly malformed: readonly AdMalformation[],
    readonly solicitedServiceUuids: readonly Uuid[],
    readonly advertisingInterval: number | undefined,
    readonly uri: string | undefined,
  ) {}
}
const NO_RARE_FIELDS = new RareFields(NO_MALFORMED, NO_UUIDS, undefined, undefined);

/**
 * The result of parseAd. The structure list is built on first access from the offsets the parse
 * recorded, so a scanner that only reads the name or the UUIDs never allocates views for every
 * structure. Small, as a scanner makes one per change of a device's data (issue 14): the scalars
 * packed into one integer, what few advertisements carry in a second object made only for them
 * (152 -> 104 bytes on node 20).
 */
class ParsedAdView implements ParsedAd {
  constructor(
    private readonly d: Uint8Array,
    /** The parsed octets, d[start, end) (end = start: no structure): `structures` walks them again when asked. */
    private readonly start: number,
    private readonly end: number,
    private readonly scalars: number,
    readonly name: string | undefined,
    readonly appearance: number | undefined,
    readonly serviceUuids: readonly Uuid[],
    readonly serviceData: ReadonlyMap<Uuid, Uint8Array>,
    readonly manufacturerData: ReadonlyMap<number, Uint8Array>,
    private rare: RareFields | undefined,
  ) {}

  get flags(): number | undefined { return (this.scalars & HAS_FLAGS) !== 0 ? this.scalars & 0xff : undefined; }
  get txPower(): number | undefined { return (this.scalars & HAS_TX_POWER) !== 0 ? ((this.scalars >> TX_SHIFT) << 24) >> 24 : undefined; }
  get nameComplete(): boolean { return (this.scalars & NAME_COMPLETE) !== 0; }
  get malformed(): readonly AdMalformation[] { return (this.rare ?? NO_RARE_FIELDS).malformed; }
  get solicitedServiceUuids(): readonly Uuid[] { return (this.rare ?? NO_RARE_FIELDS).solicitedServiceUuids; }
  get advertisingInterval(): number | undefined { return this.rare?.advertisingInterval; }
  get uri(): string | undefined { return this.rare?.uri; }

  get structures(): readonly AdStructure[] {
    const rare = this.rare;
    if (rare !== undefined && rare.list !== undefined) return rare.list;
    const { d, end } = this;
    // The parse's own walk again (it kept no list): every structure up to early termination or the
    // first Length that runs past the end.
    const out: AdStructure[] = [];
    for (let i = this.start; i < end;) {
      const len = d[i]!;
      if (len === 0 || i + 1 + len > end) break;
      out.push({ type: d[i + 1]!, data: d.subarray(i + 2, i + 1 + len) });
      i += 1 + len;
    }
    const list = out.length === 0 ? NO_STRUCTURES : out;
    (this.rare ??= new RareFields(NO_MALFORMED, NO_UUIDS, undefined, undefined)).list = list;
    return list;
  }

  /** Plain data for JSON output and deep equality in tests. */
  toJSON(): Record<string, unknown> {
    return {
      structures: this.structures, malformed: this.malformed, flags: this.flags, name: this.name,
      nameComplete: this.nameComplete, txPower: this.txPower, appearance: this.appearance,
      serviceUuids: this.serviceUuids, solicitedServiceUuids: this.solicitedServiceUuids,
      serviceData: Object.fromEntries(this.serviceData),
      manufacturerData: Object.fromEntries(this.manufacturerData),
      advertisingInterval: this.advertisingInterval, uri: this.uri,
    };
  }
}

/** The scanner's name for parseAd. */
export const parseAdvertisingData = parseAd;

/**
 * The AD structure's framing (Core Vol 3, Part C, 11): Length (1, counting the type and the data),
 * AD Type (1), data. A zero Length ends the significant part (what follows is padding).
 */
const adFraming: Framing = {
  read(r, slot) {
    const len = r.u8();
    if (len === 0) return false;
    r.need(len);
    slot.code = r.u8();
    slot.length = len - 1;
    return true;
  },
  size: () => 2,
  write(w, code, n, s) {
    if (n + 1 > 0xff) throw new EncodeError('ad', String((s as { kind?: string }).kind ?? hex8(code)), `${n} data octets do not fit one AD structure`);
    w.u8(n + 1).u8(code);
  },
};

/** The table's one codec: decode, encode, size and describe of AD structures. */
export const AD_CODEC = framedCodec<typeof AD_TYPES, {}, UnknownAdPdu>(AD_TABLE, adFraming, {
  what: 'AD structure',
  describeUnknown: u => `type ${hex8(u.code)} ${toHex(u.data)}`,
});

/** Decode one structure through the table (strict: bad contents are a DecodeError). */
export function decodeAdStructure(s: AdStructure): AdPdu | UnknownAdPdu {
  return AD_CODEC.decodeBody(s.type, new ByteReader(s.data, 'ad', 'AD structure'));
}

/**
 * Strict decode of a whole payload: every structure to its kind and fields. A Length past the end
 * or bad structure contents are DecodeErrors; zero-length termination ends the list.
 */
export function decodeAd(d: Uint8Array): Array<AdPdu | UnknownAdPdu> {
  return AD_CODEC.decodeAll(d);
}

/** Encode AD structures (decoded, unknown or raw) into one payload. Throws EncodeError. */
export function encodeAd(structures: ReadonlyArray<AdPdu | UnknownAdPdu | AdStructure>): Uint8Array {
  return AD_CODEC.encode(structures.map(s => ('kind' in s ? s : { kind: 'unknown', code: s.type, data: s.data })));
}

/** One line per structure: "completeLocalName name=\"Polar H10\"". */
export function describeAdStructure(p: AdPdu | UnknownAdPdu): string {
  return AD_CODEC.describe(p);
}

/**
 * Describe a payload tolerantly, for logs and `blewire decode`: each structure decoded when it can
 * be, raw otherwise, and the malformations. Never throws.
 */
export function describeAd(d: Uint8Array): string[] {
  const parsed = parseAd(d);
  const out = parsed.structures.map(s => {
    try {
      return describeAdStructure(decodeAdStructure(s));
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return `${AD_TABLE.kindOf(s.type) ?? `type ${hex8(s.type)}`} malformed ${toHex(s.data)}`;
    }
  });
  for (const m of parsed.malformed) out.push(`malformed at ${m.offset}: ${m.reason}`);
  return out;
}

/** What an advertiser (or the simulator) wants to say, for buildAd(). */
export interface AdContent {
  flags?: number;
  name?: string;
  /** Write the name as a Shortened Local Name even when it fits. */
  shortName?: boolean;
  txPower?: number;
  appearance?: number;
  serviceUuids?: readonly Uuid[];
  /** The service UUID lists are partial: written as the Incomplete List types (Supplement, Part A, 1.1). */
  serviceUuidsIncomplete?: boolean;
  /** Service Solicitation UUIDs (Supplement, Part A, 1.10). */
  solicitedServiceUuids?: readonly Uuid[];
  serviceData?: ReadonlyMap<Uuid, Uint8Array> | ReadonlyArray<[Uuid, Uint8Array]>;
  manufacturerData?: ReadonlyMap<number, Uint8Array> | ReadonlyArray<[number, Uint8Array]>;
  uri?: string;
}

/** Octets of legacy advertising and scan response data (Vol 6, Part B, 2.3.1; Vol 4, Part E, 7.8.7). */
export const LEGACY_AD_MAX = 31;
/** Octets of extended advertising data a controller can hold at most (Vol 4, Part E, 7.8.57, 7.8.2.x: Max_Extended_Advertising_Data_Length). */
export const EXTENDED_AD_MAX = 1650;

export interface BuildAdOptions {
  /**
   * The octets available: LEGACY_AD_MAX (31) for legacy advertising or scan response data; for
   * extended advertising what LE Read Maximum Advertising Data Length reports (at most 1650).
   * Without it only each structure's own limit (255 octets) applies.
   */
  maxLength?: number;
}

// Kinds the builder writes, looked up in the table by view role and field width (not named here).
type ListKey = `${'serviceUuids' | 'solicitedUuids'}/${number}/${boolean}`;
const LIST_KINDS = new Map<ListKey, AdKind>();
const SERVICE_DATA_KINDS = new Map<number, AdKind>();
const NAME_KINDS = new Map<boolean, AdKind>();
const ROLE_KINDS = new Map<AdViewRole, AdKind>();
for (const [kind, r] of Object.entries(AD_TYPES) as Array<[AdKind, AdRowSpec]>) {
  const first = Object.values(r.fields)[0]!;
  switch (r.view) {
    case undefined: break;
    case 'serviceUuids': case 'solicitedUuids':
      // Solicitation lists have no complete/incomplete forms: both keys name the one row.
      for (const c of r.view === 'serviceUuids' ? [!!r.complete] : [true, false]) LIST_KINDS.set(`${r.view}/${first.unit!}/${c}`, kind);
      break;
    case 'serviceData': SERVICE_DATA_KINDS.set(first.fixed!, kind); break;
    case 'name': NAME_KINDS.set(!!r.complete, kind); break;
    default: if (!ROLE_KINDS.has(r.view)) ROLE_KINDS.set(r.view, kind);
  }
}
const kindFor = <M>(m: Map<M, AdKind>, key: M): AdKind => {
  const k = m.get(key);
  if (k === undefined) throw new Error(`AD table: no row for ${String(key)}`);
  return k;
};

/** The wire width of a UUID at its shortest AD form: 2, 4 or 16 octets (Supplement, Part A, 1.1). */
function adWidth(u: Uuid): 2 | 4 | 16 {
  const n = shortUuid(u);
  return n === undefined ? 16 : n <= 0xffff ? 2 : 4;
}

function uuidLists(role: 'serviceUuids' | 'solicitedUuids', uuids: readonly Uuid[], complete: boolean): AdPdu[] {
  const by = new Map<number, Uuid[]>([[2, []], [4, []], [16, []]]);
  for (const u of uuids) by.get(adWidth(u))!.push(u);
  const out: AdPdu[] = [];
  for (const [width, list] of by) {
    if (list.length) out.push({ kind: kindFor(LIST_KINDS, `${role}/${width}/${complete}` as ListKey), uuids: list } as AdPdu);
  }
  return out;
}

/**
 * The structures for an AdContent, in the customary order (flags, UUIDs, name, TX power, appearance,
 * service data, manufacturer data, URI); UUIDs use their shortest form (Supplement, Part A, 1.1).
 * Every kind comes from the table by its view role.
 */
export function adStructuresOf(c: AdContent): AdPdu[] {
  const out: AdPdu[] = [];
  const one = (role: AdViewRole, value: object): void => { out.push({ kind: kindFor(ROLE_KINDS, role), ...value } as AdPdu); };
  if (c.flags !== undefined) one('flags', { flags: c.flags });
  if (c.serviceUuids?.length) out.push(...uuidLists('serviceUuids', c.serviceUuids, !c.serviceUuidsIncomplete));
  if (c.solicitedServiceUuids?.length) out.push(...uuidLists('solicitedUuids', c.solicitedServiceUuids, true));
  if (c.name !== undefined) out.push({ kind: kindFor(NAME_KINDS, !c.shortName), name: c.name } as AdPdu);
  if (c.txPower !== undefined) one('txPower', { txPower: c.txPower });
  if (c.appearance !== undefined) one('appearance', { appearance: c.appearance });
  for (const [u, data] of c.serviceData ?? []) {
    out.push({ kind: kindFor(SERVICE_DATA_KINDS, adWidth(u)), uuid: u, data } as AdPdu);
  }
  for (const [companyId, data] of c.manufacturerData ?? []) one('manufacturerData', { companyId, data });
  if (c.uri !== undefined) one('uri', { uri: c.uri });
  return out;
}

/** The longest prefix of `name` whose UTF-8 form has at most `max` octets (never splits a character). */
function shortenName(name: string, max: number): string {
  let n = 0, end = 0;
  for (const ch of name) {
    const w = utf8Encoder.encode(ch).length;
    if (n + w > max) break;
    n += w;
    end += ch.length;
  }
  return name.slice(0, end);
}

/** Octets of a list of structures on the wire (Length and AD Type octets included). */
function wireSize(list: readonly AdPdu[]): number {
  let n = 0;
  for (const p of list) n += 2 + AD_TABLE.sizeOfBody(p);
  return n;
}

/**
 * Build advertising (or scan response) data from the table. With `maxLength`, a name that does not
 * fit is written as a Shortened Local Name cut to the octets left (Supplement, Part A, 1.2: "a
 * shortened name … shall only contain contiguous characters from the beginning of the full name");
 * when the data cannot fit even so, AdTooLongError says by how many octets.
 */
export function buildAd(c: AdContent, options: BuildAdOptions = {}): Uint8Array {
  const structures = adStructuresOf(c);
  const max = options.maxLength;
  if (max !== undefined) {
    let size = wireSize(structures);
    if (size > max && c.name) {
      const nameKind = kindFor(NAME_KINDS, !c.shortName);
      const at = structures.findIndex(p => p.kind === nameKind);
      const others = size - wireSize([structures[at]!]);
      const room = max - others - 2;
      const short = room > 0 ? shortenName(c.name, room) : '';
      if (short.length > 0) {
        structures[at] = { kind: kindFor(NAME_KINDS, false), name: short } as AdPdu;
        size = others + 2 + utf8Encoder.encode(short).length;
      } else {
        // Even one character of the name does not fit: report the overflow with the shortest name.
        size = others + 2 + utf8Encoder.encode(String.fromCodePoint(c.name.codePointAt(0)!)).length;
      }
    }
    if (size > max) throw new AdTooLongError(size, max, structures.map(p => p.kind));
  }
  return encodeAd(structures);
}
