/**
 * The simulator's command catalogue: the HCI status codes it answers with, the commands it implements
 * (its Supported_Commands mask is built from them), the command families a controller with or without
 * extended advertising accepts, and the shape of a command handler. The handlers themselves live by
 * family beside this file (info, advertising, scanning, connections, link-layer, security).
 */
import { SUPPORTED_COMMAND_BITS, type SupportedCommandKind } from '../../hci/supported-commands.js';
import type { HciCommandKind, HciCommandOf } from '../../hci/commands.js';
import type { SimController } from '../controller.js';

/** HCI status codes the simulator produces (Vol 1, Part F). */
export const S = {
  success: 0x00, unknownCommand: 0x01, unknownConnection: 0x02, hardwareFailure: 0x03, pinOrKeyMissing: 0x06,
  memoryCapacityExceeded: 0x07, connectionTimeout: 0x08, commandDisallowed: 0x0c, invalidParameters: 0x12,
  remoteUserTerminated: 0x13, localHostTerminated: 0x16, unsupportedFeature: 0x11, unsupportedRemoteFeature: 0x1a,
  unacceptableConnectionParameters: 0x3b, insufficientSecurity: 0x2f, advertisingTimeout: 0x3c, unknownAdvertisingIdentifier: 0x42, micFailure: 0x3d, failedToEstablish: 0x3e,
} as const;

/** The commands the simulator implements; its Supported_Commands mask is built from these. */
export const SIM_COMMANDS = [
  'disconnect',
  'readRemoteVersionInformation',
  'setEventMask',
  'reset',
  'readLocalVersionInformation',
  'readLocalSupportedFeatures',
  'readBufferSize',
  'readBdAddr',
  'readRssi',
  'readEncryptionKeySize',
  'setEventMaskPage2',
  'readLeHostSupport',
  'writeLeHostSupport',
  'leSetEventMask',
  'leReadBufferSize',
  'leReadLocalSupportedFeatures',
  'leSetRandomAddress',
  'leSetAdvertisingParameters',
  'leReadAdvertisingPhysicalChannelTxPower',
  'leSetAdvertisingData',
  'leSetScanResponseData',
  'leSetAdvertisingEnable',
  'leSetScanParameters',
  'leSetScanEnable',
  'leCreateConnection',
  'leCreateConnectionCancel',
  'leReadFilterAcceptListSize',
  'leClearFilterAcceptList',
  'leAddDeviceToFilterAcceptList',
  'leRemoveDeviceFromFilterAcceptList',
  'leConnectionUpdate',
  'leReadRemoteFeatures',
  'leEncrypt',
  'leRand',
  'leEnableEncryption',
  'leLongTermKeyRequestReply',
  'leLongTermKeyRequestNegativeReply',
  'leReadSupportedStates',
  'leRemoteConnectionParameterRequestReply',
  'leRemoteConnectionParameterRequestNegativeReply',
  'leSetDataLength',
  'leReadSuggestedDefaultDataLength',
  'leWriteSuggestedDefaultDataLength',
  'leAddDeviceToResolvingList',
  'leRemoveDeviceFromResolvingList',
  'leClearResolvingList',
  'leReadResolvingListSize',
  'leSetAddressResolutionEnable',
  'leSetResolvablePrivateAddressTimeout',
  'leReadLocalResolvableAddress',
  'leReadMaximumDataLength',
  'leReadPhy',
  'leSetDefaultPhy',
  'leSetPhy',
  'leSetAdvertisingSetRandomAddress',
  'leSetExtendedAdvertisingParameters',
  'leSetExtendedAdvertisingData',
  'leSetExtendedScanResponseData',
  'leSetExtendedAdvertisingEnable',
  'leReadMaximumAdvertisingDataLength',
  'leReadNumberOfSupportedAdvertisingSets',
  'leRemoveAdvertisingSet',
  'leClearAdvertisingSets',
  'leSetExtendedScanParameters',
  'leSetExtendedScanEnable',
  'leExtendedCreateConnection',
  'leReadTransmitPower',
  'leSetPrivacyMode',
  'leReadBufferSizeV2',
] as const satisfies readonly SupportedCommandKind[];

/** Supported_Commands bit of every command the simulator implements (Vol 4, Part E, 6.27: [octet, bit]). */
export const SIM_COMMAND_BITS = Object.fromEntries(SIM_COMMANDS.map(k => [k, SUPPORTED_COMMAND_BITS[k]])) as
  { readonly [K in (typeof SIM_COMMANDS)[number]]: (typeof SUPPORTED_COMMAND_BITS)[K] };
/** Read Local Supported Commands has no bit of its own: every controller answers it (Vol 4, Part E, 7.4.2). */
export type SimCommandKind = keyof typeof SIM_COMMAND_BITS | 'readLocalSupportedCommands';

/** Commands only a controller with extended advertising answers. */
export const EXTENDED_ONLY: ReadonlySet<string> = new Set([
  'leSetAdvertisingSetRandomAddress', 'leSetExtendedAdvertisingParameters', 'leSetExtendedAdvertisingData',
  'leSetExtendedScanResponseData', 'leSetExtendedAdvertisingEnable', 'leReadMaximumAdvertisingDataLength',
  'leReadNumberOfSupportedAdvertisingSets', 'leRemoveAdvertisingSet', 'leClearAdvertisingSets',
  'leSetExtendedScanParameters', 'leSetExtendedScanEnable', 'leExtendedCreateConnection',
]);
export const LEGACY_FAMILY: ReadonlySet<string> = new Set([
  'leSetAdvertisingParameters', 'leSetAdvertisingData', 'leSetScanResponseData', 'leSetAdvertisingEnable',
  'leSetScanParameters', 'leSetScanEnable', 'leCreateConnection', 'leReadAdvertisingPhysicalChannelTxPower',
]);
export const DATA_LENGTH_COMMANDS: ReadonlySet<string> = new Set(['leSetDataLength', 'leReadSuggestedDefaultDataLength',
  'leWriteSuggestedDefaultDataLength', 'leReadMaximumDataLength']);

export type Handler<K extends HciCommandKind> = (ctrl: SimController, cmd: HciCommandOf<K>) => void;
/** One handler per implemented command. */
export type HandlerMap = { [K in SimCommandKind]: Handler<K> };

/** A parameter in `unitUs` microsecond units, in microseconds. */
export const ms = (units: number, unitUs: number): number => units * unitUs;

/** Connection parameters a host may ask for (Vol 4, Part E, 7.8.12). */
export function validConnParams(p: { connectionIntervalMin: number; connectionIntervalMax: number; maxLatency: number; supervisionTimeout: number }): boolean {
  const { connectionIntervalMin: min, connectionIntervalMax: max, maxLatency: lat, supervisionTimeout: to } = p;
  if (min < 6 || max > 3200 || min > max || lat > 499 || to < 10 || to > 3200) return false;
  // The supervision timeout must exceed (1 + latency) × interval × 2 (Vol 4, Part E, 7.8.12).
  return to * 10 > (1 + lat) * max * 1.25 * 2;
}
