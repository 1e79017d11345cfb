/**
 * The simulator's encryption and privacy commands: LE Encrypt and LE Rand (Core Vol 4, Part E, 7.8.22-23),
 * starting encryption with a peer's LTK (7.8.24; Vol 6, Part B, 5.1.3), and the resolving list and
 * privacy mode (7.8.38-7.8.45, 7.8.77), which the simulator accepts without resolving addresses.
 */
import { equalBytes } from '../../bytes/hex.js';
import { aes128 } from '../../platform/crypto.js';
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
    const ltk = c.peerOf(link)?.spec.ltk;
    const refresh = link.encrypted;
    // LL encryption start (Vol 6, Part B, 5.1.3): LL_ENC_REQ / RSP, then START_ENC_REQ / RSP.
    link.afterEvents(3, () => {
      if (!ltk) {
        // The peripheral's host has no key: LL_REJECT_EXT_IND, PIN or Key Missing.
        c.emit({ kind: 'encryptionChange', status: S.pinOrKeyMissing, connectionHandle: link.handle, encryptionEnabled: refresh ? 1 : 0 });
        return;
      }
      if (ltk.ediv !== cmd.encryptedDiversifier || !equalBytes(bytesOf(ltk.rand), cmd.randomNumber)) {
        c.emit({ kind: 'encryptionChange', status: S.pinOrKeyMissing, connectionHandle: link.handle, encryptionEnabled: refresh ? 1 : 0 });
        return;
      }
      if (!equalBytes(bytesOf(ltk.key), cmd.longTermKey)) {
        // Different session keys: the first encrypted PDU fails its MIC and the link drops (Vol 6, Part B, 5.1.3.1).
        link.terminate(S.micFailure, S.micFailure);
        return;
      }
      link.encrypted = true;
      if (refresh) c.emit({ kind: 'encryptionKeyRefreshComplete', status: 0, connectionHandle: link.handle });
      else c.emit({ kind: 'encryptionChange', status: 0, connectionHandle: link.handle, encryptionEnabled: 1 });
    });
  },
  leAddDeviceToResolvingList: (c, cmd) => {
    const s = c.resolvingListOp('add', cmd.peerIdentityAddressType, cmd.peerIdentityAddress);
    return s ? c.fail('leAddDeviceToResolvingList', s) : c.complete('leAddDeviceToResolvingList');
  },
  leRemoveDeviceFromResolvingList: (c, cmd) => {
    const s = c.resolvingListOp('remove', cmd.peerIdentityAddressType, cmd.peerIdentityAddress);
    return s ? c.fail('leRemoveDeviceFromResolvingList', s) : c.complete('leRemoveDeviceFromResolvingList');
  },
  leClearResolvingList: c => { c.resolvingListOp('clear'); c.complete('leClearResolvingList'); },
  leReadResolvingListSize: c => c.complete('leReadResolvingListSize', { resolvingListSize: c.options.resolvingListSize ?? 8 }),
  leSetAddressResolutionEnable: c => c.complete('leSetAddressResolutionEnable'),
  leSetResolvablePrivateAddressTimeout: c => c.complete('leSetResolvablePrivateAddressTimeout'),
  leSetPrivacyMode: c => c.complete('leSetPrivacyMode'),
} satisfies Partial<HandlerMap>;
