/**
 * The simulator's initialisation and information commands: Reset, event masks, version, features,
 * buffer sizes, supported commands and states, BD_ADDR and the random address (Core Vol 4, Part E,
 * 7.3, 7.4 and the LE ones of 7.8).
 */
import { type HandlerMap, S } from './table.js';

export const INFO = {
  setEventMask: (c, cmd) => { c.eventMask = cmd.eventMask; c.complete('setEventMask'); },
  reset: c => { c.reset(); c.complete('reset'); },
  readLocalVersionInformation: c => c.complete('readLocalVersionInformation', {
    // 5.3 (0x0C), or 5.2 for a controller without Encryption Change [v2] (added in 5.3).
    hciVersion: c.encryptionChangeV2 ? 0x0c : 0x0b, hciSubversion: 0x0001, lmpVersion: c.encryptionChangeV2 ? 0x0c : 0x0b, manufacturer: 0xffff, lmpSubversion: 0x0001,
  }),
  readLocalSupportedFeatures: c => c.complete('readLocalSupportedFeatures', {
    // LE Supported (Controller) bit 38 and BR/EDR Not Supported bit 37 (Vol 2, Part C, 3.3).
    lmpFeatures: (1n << 38n) | (1n << 37n),
  }),
  // An LE-only controller has no BR/EDR buffers (Vol 4, Part E, 7.4.5).
  readBufferSize: c => c.complete('readBufferSize', {
    aclDataPacketLength: 0, synchronousDataPacketLength: 0, totalNumAclDataPackets: 0, totalNumSynchronousDataPackets: 0,
  }),
  readLocalSupportedCommands: c => c.complete('readLocalSupportedCommands', { supportedCommands: c.supportedCommands() }),
  readBdAddr: c => c.complete('readBdAddr', { bdAddr: c.address }),
  setEventMaskPage2: (c, cmd) => { c.eventMaskPage2 = cmd.eventMaskPage2; c.complete('setEventMaskPage2'); },
  readLeHostSupport: c => c.complete('readLeHostSupport', { leSupportedHost: 1, unused: 0 }),
  writeLeHostSupport: c => c.complete('writeLeHostSupport'),
  leSetEventMask: (c, cmd) => { c.leEventMask = cmd.leEventMask; c.complete('leSetEventMask'); },
  leReadBufferSize: c => c.complete('leReadBufferSize', { leAclDataPacketLength: c.acl.length, totalNumLeAclDataPackets: c.acl.count }),
  leReadBufferSizeV2: c => c.complete('leReadBufferSizeV2', {
    leAclDataPacketLength: c.acl.length, totalNumLeAclDataPackets: c.acl.count, isoDataPacketLength: 0, totalNumIsoDataPackets: 0,
  }),
  leReadLocalSupportedFeatures: c => c.complete('leReadLocalSupportedFeatures', { leFeatures: c.leFeatures() }),
  leReadSupportedStates: c => c.complete('leReadSupportedStates', { leStates: 0x3ffffffffffn }),
  leReadTransmitPower: c => c.complete('leReadTransmitPower', { minTxPower: -20, maxTxPower: 10 }),
  leSetRandomAddress: (c, cmd) => {
    // Vol 4, Part E, 7.8.4: not while advertising or scanning with it.
    if (c.scan || c.initiating || c.legacyAdvertising.enabled) return c.fail('leSetRandomAddress', S.commandDisallowed);
    c.randomAddress = cmd.randomAddress;
    c.complete('leSetRandomAddress');
  },
} satisfies Partial<HandlerMap>;
