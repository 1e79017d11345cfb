/**
 * The simulator's encryption and privacy commands: LE Encrypt and LE Rand (Core Vol 4, Part E, 7.8.22-23),
 * starting encryption with a peer's LTK (7.8.24; Vol 6, Part B, 5.1.3) and, for a peripheral host on the
 * air, answering the LTK request (7.8.25-26), and the resolving list and
 * privacy mode (7.8.38-7.8.45, 7.8.77): the controller resolves listed peers' RPAs in reports and
 * connections when address resolution is on (controller.ts); privacy mode is accepted and not modelled.
 */
import { equalBytes } from '../../bytes/hex.js';
import { aes128 } from '../../platform/crypto.js';
import { AirBridge } from '../air.js';
import { bytesOf } from '../util.js';
import { type HandlerMap, S } from './table.js';

/** LE Encrypt (Vol 4, Part E, 7.8.22): AES-128; HCI carries key and data least significant octet first. */
export function leEncrypt(keyLe: Uint8Array, plaintextLe: Uint8Array): Uint8Array {
  const key = Uint8Array.from(keyLe).reverse();
  const data = Uint8Array.from(plaintextLe).reverse();
  return Uint8Array.from(aes128(key, data)).reverse();
}

export const SECURITY = {
  leEncrypt: (c, cmd) => c.complete('leEncrypt', { encryptedData: leEncrypt(cmd.key, cmd.plaintextData) }),
  leRand: c => c.complete('leRand', { randomNumber: c.random.bytes(8) }),
  leEnableEncryption: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leEnableEncryption', S.unknownConnection);
    c.status('leEnableEncryption');
    const peer = c.peerOf(link);
    const refresh = link.encrypted;
    const air = link.peer instanceof AirBridge ? link.peer.remote : undefined;
    if (air) {
      // Another host is the peripheral: its host answers the LTK request (Vol 6, Part B, 5.1.3.1).
      link.afterEvents(3, () => {
        if (link.closed) return;
        air.controller.ltkRequestFromAir(air.link, cmd.encryptedDiversifier, cmd.randomNumber, key => {
          if (link.closed || air.link.closed) return;
          if (!key) {
            c.encryptionChange(link.handle, S.pinOrKeyMissing, refresh ? 1 : 0, 0);
            return;
          }
          if (!equalBytes(key, cmd.longTermKey)) {
            link.terminate(S.micFailure, S.micFailure);
            return;
          }
          const keySize = c.options.encryptionKeySize ?? 16;
          for (const [ctl, l] of [[c, link], [air.controller, air.link]] as const) {
            const again = l.encrypted;
            l.encrypted = true;
            l.keySize = keySize;
            if (again) ctl.emit({ kind: 'encryptionKeyRefreshComplete', status: 0, connectionHandle: l.handle });
            else ctl.encryptionChange(l.handle, 0, 1, keySize);
          }
        });
      });
      return;
    }
    // LL encryption start (Vol 6, Part B, 5.1.3): LL_ENC_REQ / RSP, then START_ENC_REQ / RSP.
    link.afterEvents(3, () => {
      if (link.closed) return;
      // The peer's host answers its LTK request: its pairing (STK / LTK, or its bond for us) when it
      // pairs, else the scenario's fixed key for this EDIV / Rand.
      const pairing = peer?.session?.pairing;
      let found: { key: Uint8Array; keySize: number } | undefined;
      if (pairing) {
        found = pairing.ltkFor(cmd.encryptedDiversifier, cmd.randomNumber);
      } else {
        const ltk = peer?.spec.ltk;
        if (ltk && ltk.ediv === cmd.encryptedDiversifier && equalBytes(bytesOf(ltk.rand), cmd.randomNumber)) {
          found = { key: bytesOf(ltk.key), keySize: 16 };
        }
      }
      if (!found) {
        // The peripheral's host has no key: LL_REJECT_EXT_IND, PIN or Key Missing.
        pairing?.encryptionChanged(S.pinOrKeyMissing, 0);
        c.encryptionChange(link.handle, S.pinOrKeyMissing, refresh ? 1 : 0, 0);
        return;
      }
      if (!equalBytes(found.key, cmd.longTermKey)) {
        // Different session keys: the first encrypted PDU fails its MIC and the link drops (Vol 6, Part B, 5.1.3.1).
        link.terminate(S.micFailure, S.micFailure);
        return;
      }
      link.encrypted = true;
      // Fault injection: a controller that reports a shorter key than was negotiated (KNOB).
      link.keySize = c.options.encryptionKeySize ?? found.keySize;
      if (refresh) c.emit({ kind: 'encryptionKeyRefreshComplete', status: 0, connectionHandle: link.handle });
      else c.encryptionChange(link.handle, 0, 1, link.keySize);
      pairing?.encryptionChanged(0, found.keySize);
    });
  },
  leLongTermKeyRequestReply: (c, cmd) => {
    const answer = c.takeLtkRequest(cmd.connectionHandle);
    if (!answer) return c.fail('leLongTermKeyRequestReply', S.commandDisallowed);
    c.complete('leLongTermKeyRequestReply', { connectionHandle: cmd.connectionHandle });
    answer(cmd.longTermKey);
  },
  leLongTermKeyRequestNegativeReply: (c, cmd) => {
    const answer = c.takeLtkRequest(cmd.connectionHandle);
    if (!answer) return c.fail('leLongTermKeyRequestNegativeReply', S.commandDisallowed);
    c.complete('leLongTermKeyRequestNegativeReply', { connectionHandle: cmd.connectionHandle });
    answer(undefined);
  },
  readEncryptionKeySize: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('readEncryptionKeySize', S.unknownConnection);
    if (!link.encrypted) return c.fail('readEncryptionKeySize', S.insufficientSecurity);
    c.complete('readEncryptionKeySize', { connectionHandle: link.handle, keySize: link.keySize });
  },
  leAddDeviceToResolvingList: (c, cmd) => {
    const s = c.resolvingListOp('add', cmd.peerIdentityAddressType, cmd.peerIdentityAddress, cmd.peerIrk, cmd.localIrk);
    return s ? c.fail('leAddDeviceToResolvingList', s) : c.complete('leAddDeviceToResolvingList');
  },
  leRemoveDeviceFromResolvingList: (c, cmd) => {
    const s = c.resolvingListOp('remove', cmd.peerIdentityAddressType, cmd.peerIdentityAddress);
    return s ? c.fail('leRemoveDeviceFromResolvingList', s) : c.complete('leRemoveDeviceFromResolvingList');
  },
  leClearResolvingList: c => {
    const s = c.resolvingListOp('clear');
    return s ? c.fail('leClearResolvingList', s) : c.complete('leClearResolvingList');
  },
  leReadResolvingListSize: c => c.complete('leReadResolvingListSize', { resolvingListSize: c.options.resolvingListSize ?? 8 }),
  leSetAddressResolutionEnable: (c, cmd) => {
    const s = c.setAddressResolution(cmd.addressResolutionEnable);
    return s ? c.fail('leSetAddressResolutionEnable', s) : c.complete('leSetAddressResolutionEnable');
  },
  leSetResolvablePrivateAddressTimeout: (c, cmd) => {
    const s = c.setRpaTimeout(cmd.rpaTimeout);
    return s ? c.fail('leSetResolvablePrivateAddressTimeout', s) : c.complete('leSetResolvablePrivateAddressTimeout');
  },
  leReadLocalResolvableAddress: (c, cmd) => {
    const r = c.localResolvableAddress(cmd.peerIdentityAddressType, cmd.peerIdentityAddress);
    return typeof r === 'number' ? c.fail('leReadLocalResolvableAddress', r)
      : c.complete('leReadLocalResolvableAddress', { localResolvableAddress: r });
  },
  leSetPrivacyMode: (c, cmd) => {
    const s = c.setPrivacyMode(cmd.peerIdentityAddressType, cmd.peerIdentityAddress, cmd.privacyMode);
    return s ? c.fail('leSetPrivacyMode', s) : c.complete('leSetPrivacyMode');
  },
} satisfies Partial<HandlerMap>;
