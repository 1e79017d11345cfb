import {
  arrayOf, bdAddr, bytes, i8, lengthPrefixed, struct, u16, u8, x16, x8, type Infer,
} from '../codec/field.js';
import { codeU8, defineTable, framedCodec, type RowSpec } from '../codec/table.js';
import { compiledStruct, inPlaceReader, type InPlaceReader } from '../codec/compile.js';
import { EXT_ADV_EVENT_TYPE, LEGACY_ADV_EVENT_TYPE, LE_FEATURES } from './bit-fields.js';
import { statusField } from './status.js';
import { toHex } from '../bytes/hex.js';

/**
 * LE Meta event sub-events (Core Vol 4, Part E, 7.7.65.x), keyed by Subevent_Code. Decoded LE events
 * are flat: `{ kind: 'leConnectionComplete', status, connectionHandle, … }`; every kind starts with
 * `le`, so they share one namespace with the other events.
 *
 * Trailing bytes: rows of fixed size are `trailing: 'ignore'`, because later Core versions extend
 * events by appending parameters (LE Enhanced Connection Complete v2 appended Advertising_Handle and
 * Sync_Handle to v1; Encryption Change v2 appended the key size) and a host must keep working with a
 * newer controller. Rows whose length is driven by a count (report arrays) stay strict: bytes after
 * the last counted report mean the count and the data disagree, i.e. the report cannot be trusted.
 */

type LeRow = RowSpec;

const conn = { connectionInterval: u16, peripheralLatency: u16, supervisionTimeout: u16, centralClockAccuracy: u8 } as const;

/** The fields of one legacy advertising report, row-wise (Vol 4, Part E, 7.7.65.2). */
const ADVERTISING_REPORT_FIELDS = {
  eventType: LEGACY_ADV_EVENT_TYPE, addressType: u8, address: bdAddr, data: lengthPrefixed(u8), rssi: i8,
} as const;
/** One legacy advertising report (Vol 4, Part E, 7.7.65.2). */
export const advertisingReport = compiledStruct(ADVERTISING_REPORT_FIELDS);

/** The fields of one extended advertising report (Vol 4, Part E, 7.7.65.13): 24 fixed octets, then the data. */
const EXTENDED_ADVERTISING_REPORT_FIELDS = {
  eventType: EXT_ADV_EVENT_TYPE, addressType: u8, address: bdAddr, primaryPhy: u8, secondaryPhy: u8, advertisingSid: u8,
  txPower: i8, rssi: i8, periodicAdvertisingInterval: u16, directAddressType: u8, directAddress: bdAddr,
  data: lengthPrefixed(u8),
} as const;
/** One extended advertising report (Vol 4, Part E, 7.7.65.13). */
export const extendedAdvertisingReport = compiledStruct(EXTENDED_ADVERTISING_REPORT_FIELDS);

/**
 * The same two report rows read in place (codec/compile.ts inPlaceReader), for the scanner: a report
 * of a device already known costs no object, no address string and no view (issue 14). The offsets
 * and readers come from the fields above, so the table stays the one description of the octets.
 */
let legacyInPlace: InPlaceReader | undefined;
let extendedInPlace: InPlaceReader | undefined;
export function advertisingReportInPlace(): InPlaceReader {
  return (legacyInPlace ??= inPlaceReader(ADVERTISING_REPORT_FIELDS));
}
export function extendedAdvertisingReportInPlace(): InPlaceReader {
  return (extendedInPlace ??= inPlaceReader(EXTENDED_ADVERTISING_REPORT_FIELDS));
}
/** What an in-place read of either report row leaves in its view (extended-only fields are 0 for legacy). */
export interface AdvertisingReportView {
  eventType: number; addressType: number; addressAt: number; dataAt: number; dataLength: number; rssi: number;
  primaryPhy: number; secondaryPhy: number; advertisingSid: number; txPower: number; periodicAdvertisingInterval: number;
  directAddressType: number; directAddressAt: number;
}
export function newAdvertisingReportView(): AdvertisingReportView {
  return { eventType: 0, addressType: 0, addressAt: 0, dataAt: 0, dataLength: 0, rssi: 0, primaryPhy: 0, secondaryPhy: 0,
    advertisingSid: 0, txPower: 0, periodicAdvertisingInterval: 0, directAddressType: 0, directAddressAt: 0 };
}

export const LE_META_EVENTS = {
  leConnectionComplete: { code: 0x01, name: 'LE Connection Complete', spec: 'Vol 4, Part E, 7.7.65.1', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, role: u8, peerAddressType: u8, peerAddress: bdAddr, ...conn } },
  leAdvertisingReport: { code: 0x02, name: 'LE Advertising Report', spec: 'Vol 4, Part E, 7.7.65.2',
    fields: { reports: arrayOf(u8, advertisingReport) } },
  leConnectionUpdateComplete: { code: 0x03, name: 'LE Connection Update Complete', spec: 'Vol 4, Part E, 7.7.65.3',
    trailing: 'ignore', fields: { status: statusField, connectionHandle: x16, connectionInterval: u16,
      peripheralLatency: u16, supervisionTimeout: u16 } },
  leReadRemoteFeaturesComplete: { code: 0x04, name: 'LE Read Remote Features Complete', spec: 'Vol 4, Part E, 7.7.65.4',
    trailing: 'ignore', fields: { status: statusField, connectionHandle: x16, leFeatures: LE_FEATURES } },
  leLongTermKeyRequest: { code: 0x05, name: 'LE Long Term Key Request', spec: 'Vol 4, Part E, 7.7.65.5', trailing: 'ignore',
    fields: { connectionHandle: x16, randomNumber: bytes(8), encryptedDiversifier: x16 } },
  leRemoteConnectionParameterRequest: { code: 0x06, name: 'LE Remote Connection Parameter Request',
    spec: 'Vol 4, Part E, 7.7.65.6', trailing: 'ignore',
    fields: { connectionHandle: x16, intervalMin: u16, intervalMax: u16, maxLatency: u16, timeout: u16 } },
  leDataLengthChange: { code: 0x07, name: 'LE Data Length Change', spec: 'Vol 4, Part E, 7.7.65.7', trailing: 'ignore',
    fields: { connectionHandle: x16, maxTxOctets: u16, maxTxTime: u16, maxRxOctets: u16, maxRxTime: u16 } },
  leReadLocalP256PublicKeyComplete: { code: 0x08, name: 'LE Read Local P-256 Public Key Complete',
    spec: 'Vol 4, Part E, 7.7.65.8', trailing: 'ignore', fields: { status: statusField, localP256PublicKey: bytes(64) } },
  leGenerateDhkeyComplete: { code: 0x09, name: 'LE Generate DHKey Complete', spec: 'Vol 4, Part E, 7.7.65.9',
    trailing: 'ignore', fields: { status: statusField, dhKey: bytes(32) } },
  leEnhancedConnectionComplete: { code: 0x0a, name: 'LE Enhanced Connection Complete', spec: 'Vol 4, Part E, 7.7.65.10',
    trailing: 'ignore', fields: { status: statusField, connectionHandle: x16, role: u8, peerAddressType: u8,
      peerAddress: bdAddr, localResolvablePrivateAddress: bdAddr, peerResolvablePrivateAddress: bdAddr, ...conn } },
  leDirectedAdvertisingReport: { code: 0x0b, name: 'LE Directed Advertising Report', spec: 'Vol 4, Part E, 7.7.65.11',
    fields: { reports: arrayOf(u8, struct({ eventType: LEGACY_ADV_EVENT_TYPE, addressType: u8, address: bdAddr, directAddressType: u8,
      directAddress: bdAddr, rssi: i8 })) } },
  lePhyUpdateComplete: { code: 0x0c, name: 'LE PHY Update Complete', spec: 'Vol 4, Part E, 7.7.65.12', trailing: 'ignore',
    fields: { status: statusField, connectionHandle: x16, txPhy: u8, rxPhy: u8 } },
  leExtendedAdvertisingReport: { code: 0x0d, name: 'LE Extended Advertising Report', spec: 'Vol 4, Part E, 7.7.65.13',
    fields: { reports: arrayOf(u8, extendedAdvertisingReport) } },
  lePeriodicAdvertisingSyncEstablished: { code: 0x0e, name: 'LE Periodic Advertising Sync Established',
    spec: 'Vol 4, Part E, 7.7.65.14', trailing: 'ignore', fields: { status: statusField, syncHandle: x16,
      advertisingSid: u8, advertiserAddressType: u8, advertiserAddress: bdAddr, advertiserPhy: u8,
      periodicAdvertisingInterval: u16, advertiserClockAccuracy: u8 } },
  lePeriodicAdvertisingReport: { code: 0x0f, name: 'LE Periodic Advertising Report', spec: 'Vol 4, Part E, 7.7.65.15',
    fields: { syncHandle: x16, txPower: i8, rssi: i8, cteType: u8, dataStatus: u8, data: lengthPrefixed(u8) } },
  lePeriodicAdvertisingSyncLost: { code: 0x10, name: 'LE Periodic Advertising Sync Lost', spec: 'Vol 4, Part E, 7.7.65.16',
    trailing: 'ignore', fields: { syncHandle: x16 } },
  leScanTimeout: { code: 0x11, name: 'LE Scan Timeout', spec: 'Vol 4, Part E, 7.7.65.17', trailing: 'ignore', fields: {} },
  leAdvertisingSetTerminated: { code: 0x12, name: 'LE Advertising Set Terminated', spec: 'Vol 4, Part E, 7.7.65.18',
    trailing: 'ignore', fields: { status: statusField, advertisingHandle: u8, connectionHandle: x16,
      numCompletedExtendedAdvertisingEvents: u8 } },
  leScanRequestReceived: { code: 0x13, name: 'LE Scan Request Received', spec: 'Vol 4, Part E, 7.7.65.19', trailing: 'ignore',
    fields: { advertisingHandle: u8, scannerAddressType: u8, scannerAddress: bdAddr } },
  leChannelSelectionAlgorithm: { code: 0x14, name: 'LE Channel Selection Algorithm', spec: 'Vol 4, Part E, 7.7.65.20',
    trailing: 'ignore', fields: { connectionHandle: x16, channelSelectionAlgorithm: u8 } },
  leEnhancedConnectionCompleteV2: { code: 0x29, name: 'LE Enhanced Connection Complete [v2]',
    spec: 'Vol 4, Part E, 7.7.65.10', trailing: 'ignore', fields: { status: statusField, connectionHandle: x16, role: u8,
      peerAddressType: u8, peerAddress: bdAddr, localResolvablePrivateAddress: bdAddr,
      peerResolvablePrivateAddress: bdAddr, ...conn, advertisingHandle: x8, syncHandle: x16 } },
} as const satisfies Record<string, LeRow>;

type L = typeof LE_META_EVENTS;
export type LeMetaKind = keyof L & string;
export type LeMetaEventOf<K extends LeMetaKind> = K extends LeMetaKind ? { kind: K } & Infer<L[K]['fields']> : never;
/** Every known LE Meta sub-event, flattened to its own kind. */
export type LeMetaEvent = LeMetaEventOf<LeMetaKind>;

export type LeAdvertisingReport = LeMetaEventOf<'leAdvertisingReport'>['reports'][number];
export type LeExtendedAdvertisingReport = LeMetaEventOf<'leExtendedAdvertisingReport'>['reports'][number];

/** Compiled table: code = Subevent_Code. */
export const LE_META_TABLE = defineTable('hci', LE_META_EVENTS);

/** An LE Meta sub-event that is not in the table, kept with what follows its Subevent_Code. */
export interface UnknownLeMetaEvent { type: 'event'; kind: 'unknown'; code: number; subeventCode: number; data: Uint8Array }

/**
 * The LE Meta parameters' codec: Subevent_Code (1), then the sub-event (Vol 4, Part E, 7.7.65).
 * Readers are compiled (the advertising reports arrive by the thousand), `type: 'event'` first.
 */
export const LE_META_CODEC = framedCodec<L, {}, UnknownLeMetaEvent>(LE_META_TABLE, codeU8, {
  what: 'LE Meta event',
  label: 'name',
  compile: { type: 'event' },
  unknown: (subeventCode, data) => ({ type: 'event', kind: 'unknown', code: 0x3e, subeventCode, data }),
  unknownCode: u => u.subeventCode,
  describeUnknown: u => `Unknown LE Meta sub-event 0x${u.subeventCode.toString(16).padStart(2, '0')} data=${toHex(u.data)}`,
});

export function leMetaName(kind: LeMetaKind): string {
  return LE_META_EVENTS[kind].name;
}
