/**
 * The controller capability model: what the controller says it is and can do, read once after Reset,
 * and the feature choices the host makes from it (legacy or extended scanning and connecting, data
 * length, PHY).
 *
 * Controllers and emulators lie in both directions: btvirt's 5.x controller reads LE feature bits as
 * all zero yet implements extended scanning, and advertises commands in its supported-commands mask
 * that it answers "Unknown HCI Command". So every read here tolerates failure (an absent value is
 * `undefined`, never a failed init), buffer sizes fall back v2 → v1 → the shared BR/EDR buffers, and
 * `supports()` is a hint: callers that try a command and get Unknown HCI Command (0x01) record it with
 * `markUnsupported()` and fall back.
 */
import type { CommandReturn, HciCommandKind, HciCommandOf } from './commands.js';
import { HciStatusError } from '../errors.js';

import { SUPPORTED_COMMAND_BITS } from './supported-commands.js';
import { LE_FEATURES } from './bit-fields.js';
export { SUPPORTED_COMMAND_BITS };

/** LE feature bits, Core Vol 6, Part B, 4.6 (the LE_FEATURES field's names and bit numbers). */
export const LE_FEATURE_BITS = LE_FEATURES.bits;
export type LeFeatureName = keyof typeof LE_FEATURE_BITS;

/** Core specification version numbers (HCI_Version / LMP_Version), Assigned Numbers 2.1. */
const CORE_VERSIONS: Record<number, string> = {
  0: '1.0b', 1: '1.1', 2: '1.2', 3: '2.0', 4: '2.1', 5: '3.0', 6: '4.0', 7: '4.1', 8: '4.2', 9: '5.0', 10: '5.1',
  11: '5.2', 12: '5.3', 13: '5.4', 14: '6.0', 15: '6.1',
};
export const coreVersionName = (v: number): string => CORE_VERSIONS[v] ?? `unknown (${v})`;

export interface AclBuffers {
  /** Largest ACL payload (bytes) per packet. */
  length: number;
  /** Number of packets the controller can buffer. */
  count: number;
  /** Which command gave them: LE Read Buffer Size [v2] / [v1], or the shared BR/EDR Read Buffer Size. */
  source: 'le-v2' | 'le-v1' | 'shared';
}

export interface ControllerVersion {
  hciVersion: number;
  hciSubversion: number;
  lmpVersion: number;
  manufacturer: number;
  lmpSubversion: number;
  /** e.g. "5.3" */
  coreVersion: string;
}

export interface DataLengthLimits {
  maxTxOctets: number;
  maxTxTime: number;
  maxRxOctets: number;
  maxRxTime: number;
}

/** Issue one table-typed command (the host's `command()`). */
export interface CommandIssuer {
  command<K extends HciCommandKind>(cmd: HciCommandOf<K>, opts?: { timeout?: number }): Promise<CommandReturn<K>>;
}

export const HCI_UNKNOWN_COMMAND = 0x01;
export const isUnknownCommand = (e: unknown): boolean =>
  e instanceof HciStatusError && (e.status === HCI_UNKNOWN_COMMAND || e.status === 0x11 /* Unsupported Feature */);

export class ControllerInfo {
  version: ControllerVersion | undefined;
  address: string | undefined;
  supportedCommands: Uint8Array | undefined;
  lmpFeatures: bigint | undefined;
  leFeatures = 0n;
  acl: AclBuffers = { length: 27, count: 1, source: 'le-v1' };
  filterAcceptListSize: number | undefined;
  resolvingListSize: number | undefined;
  maxDataLength: DataLengthLimits | undefined;
  numAdvertisingSets: number | undefined;
  maxAdvertisingDataLength: number | undefined;
  /** Commands answered Unknown HCI Command at run time, whatever the mask claimed. */
  private readonly refused = new Set<string>();

  /** The supported-commands mask says so (a hint; see markUnsupported). */
  inMask(kind: keyof typeof SUPPORTED_COMMAND_BITS): boolean {
    const m = this.supportedCommands;
    if (!m) return false;
    const [octet, bit] = SUPPORTED_COMMAND_BITS[kind];
    return ((m[octet] ?? 0) & (1 << bit)) !== 0;
  }

  /** The mask lists the command and it has not been refused at run time. */
  supports(kind: keyof typeof SUPPORTED_COMMAND_BITS): boolean {
    return !this.refused.has(kind) && this.inMask(kind);
  }

  markUnsupported(kind: string): void {
    this.refused.add(kind);
  }

  isRefused(kind: string): boolean {
    return this.refused.has(kind);
  }

  hasLeFeature(name: LeFeatureName): boolean {
    return LE_FEATURES.has(this.leFeatures, name);
  }

  /** LE feature names that are set, for doctor. */
  leFeatureNames(): LeFeatureName[] {
    return LE_FEATURES.names(this.leFeatures);
  }

  /**
   * Extended scanning / extended create connection: by feature bit, by the supported-commands mask,
   * or, since emulators leave both at zero (btvirt's 5.x controller), by a Core 5.0+ version: the
   * scanner then tries the extended command and falls back on Unknown HCI Command. Refused at run time
   * wins over all of these.
   */
  get extendedScanning(): boolean {
    if (this.refused.has('leSetExtendedScanParameters') || this.refused.has('leSetExtendedScanEnable')) return false;
    return this.hasLeFeature('extendedAdvertising') ||
      (this.inMask('leSetExtendedScanParameters') && this.inMask('leSetExtendedScanEnable')) ||
      (this.version?.hciVersion ?? 0) >= 9;
  }
  get extendedConnect(): boolean {
    if (this.refused.has('leExtendedCreateConnection')) return false;
    return this.extendedScanning;
  }
  get dataLengthExtension(): boolean {
    return !this.refused.has('leSetDataLength') &&
      (this.hasLeFeature('dataPacketLengthExtension') || this.inMask('leSetDataLength'));
  }
  get phyUpdate(): boolean {
    return !this.refused.has('leSetPhy') && (this.hasLeFeature('le2mPhy') || this.hasLeFeature('leCodedPhy'));
  }

  /** A plain-words summary for `blewire doctor`. */
  toJSON(): Record<string, unknown> {
    return {
      version: this.version, address: this.address, leFeatures: this.leFeatureNames(), acl: this.acl,
      filterAcceptListSize: this.filterAcceptListSize, resolvingListSize: this.resolvingListSize,
      maxDataLength: this.maxDataLength, numAdvertisingSets: this.numAdvertisingSets,
      maxAdvertisingDataLength: this.maxAdvertisingDataLength, extendedScanning: this.extendedScanning,
      extendedConnect: this.extendedConnect, dataLengthExtension: this.dataLengthExtension, phyUpdate: this.phyUpdate,
    };
  }
}

async function optional<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof HciStatusError) return undefined;
    throw e; // timeouts and transport loss are not "unsupported"
  }
}

/**
 * Read everything the host wants to know (after Reset). Only failures of the transport or timeouts
 * reject; a command the controller refuses leaves its value undefined.
 */
export async function readControllerInfo(host: CommandIssuer): Promise<ControllerInfo> {
  const info = new ControllerInfo();
  const v = await optional(host.command({ kind: 'readLocalVersionInformation' }));
  if (v) {
    info.version = {
      hciVersion: v.hciVersion, hciSubversion: v.hciSubversion, lmpVersion: v.lmpVersion,
      manufacturer: v.manufacturer, lmpSubversion: v.lmpSubversion, coreVersion: coreVersionName(v.hciVersion),
    };
  }
  info.supportedCommands = (await optional(host.command({ kind: 'readLocalSupportedCommands' })))?.supportedCommands;
  info.lmpFeatures = (await optional(host.command({ kind: 'readLocalSupportedFeatures' })))?.lmpFeatures;
  info.address = (await optional(host.command({ kind: 'readBdAddr' })))?.bdAddr;
  info.leFeatures = (await optional(host.command({ kind: 'leReadLocalSupportedFeatures' })))?.leFeatures ?? 0n;
  info.acl = await readAclBuffers(host, info);
  info.filterAcceptListSize = (await optional(host.command({ kind: 'leReadFilterAcceptListSize' })))?.filterAcceptListSize;
  if (info.inMask('leReadResolvingListSize')) {
    info.resolvingListSize = (await optional(host.command({ kind: 'leReadResolvingListSize' })))?.resolvingListSize;
  }
  if (info.inMask('leReadMaximumDataLength') || info.hasLeFeature('dataPacketLengthExtension')) {
    const d = await optional(host.command({ kind: 'leReadMaximumDataLength' }));
    if (d) {
      info.maxDataLength = {
        maxTxOctets: d.supportedMaxTxOctets, maxTxTime: d.supportedMaxTxTime,
        maxRxOctets: d.supportedMaxRxOctets, maxRxTime: d.supportedMaxRxTime,
      };
    } else {
      info.markUnsupported('leSetDataLength');
    }
  }
  if (info.inMask('leReadNumberOfSupportedAdvertisingSets') || info.hasLeFeature('extendedAdvertising')) {
    info.numAdvertisingSets = (await optional(host.command({ kind: 'leReadNumberOfSupportedAdvertisingSets' })))
      ?.numSupportedAdvertisingSets;
  }
  if (info.inMask('leReadMaximumAdvertisingDataLength') || info.hasLeFeature('extendedAdvertising')) {
    info.maxAdvertisingDataLength = (await optional(host.command({ kind: 'leReadMaximumAdvertisingDataLength' })))
      ?.maxAdvertisingDataLength;
  }
  return info;
}

/**
 * ACL buffers: LE Read Buffer Size [v2] (Vol 4, Part E, 7.8.2), else [v1]; an LE length of 0 means
 * the LE traffic shares the BR/EDR buffers from Read Buffer Size (Vol 4, Part E, 7.8.2).
 */
async function readAclBuffers(host: CommandIssuer, info: ControllerInfo): Promise<AclBuffers> {
  const v2 = await optional(host.command({ kind: 'leReadBufferSizeV2' }));
  if (v2 && v2.leAclDataPacketLength > 0 && v2.totalNumLeAclDataPackets > 0) {
    return { length: v2.leAclDataPacketLength, count: v2.totalNumLeAclDataPackets, source: 'le-v2' };
  }
  if (!v2) info.markUnsupported('leReadBufferSizeV2');
  const v1 = await optional(host.command({ kind: 'leReadBufferSize' }));
  if (v1 && v1.leAclDataPacketLength > 0 && v1.totalNumLeAclDataPackets > 0) {
    return { length: v1.leAclDataPacketLength, count: v1.totalNumLeAclDataPackets, source: 'le-v1' };
  }
  const shared = await optional(host.command({ kind: 'readBufferSize' }));
  if (shared && shared.aclDataPacketLength > 0 && shared.totalNumAclDataPackets > 0) {
    return { length: shared.aclDataPacketLength, count: shared.totalNumAclDataPackets, source: 'shared' };
  }
  // Nothing usable: the minimum every LE controller must support (27 bytes, Vol 6, Part B, 2.4.2.21), one at a time.
  return { length: 27, count: 1, source: 'le-v1' };
}
