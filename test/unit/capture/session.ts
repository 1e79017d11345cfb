import { fromHex } from '../../../src/bytes/hex.js';
import type { CaptureRecordInput } from '../../../src/capture/index.js';

/** A short, well-formed LE session (every packet decodes cleanly in Wireshark). */
export const SESSION: CaptureRecordInput[] = [
  // HCI Reset, Vol 4 Part E 7.3.2
  { dir: 'tx', timeUs: 1_700_000_000_000_000, packet: fromHex('01 03 0c 00') },
  // Command Complete (Reset), Vol 4 Part E 7.7.14
  { dir: 'rx', timeUs: 1_700_000_000_000_250, packet: fromHex('04 0e 04 01 03 0c 00') },
  // LE Advertising Report, one ADV_IND with no data, RSSI -59, Vol 4 Part E 7.7.65.2
  { dir: 'rx', timeUs: 1_700_000_000_100_000, packet: fromHex('04 3e 0c 02 01 00 00 11 22 33 44 55 66 00 c5') },
  // ACL handle 0x0040, ATT Read Request handle 0x0003 (Vol 3 Part F 3.4.4.3)
  { dir: 'tx', timeUs: 1_700_000_000_200_000, packet: fromHex('02 40 00 07 00 03 00 04 00 0a 03 00') },
  // ACL handle 0x0040, ATT Read Response 01 02
  { dir: 'rx', timeUs: 1_700_000_000_200_999, packet: fromHex('02 40 20 07 00 03 00 04 00 0b 01 02') },
  // Disconnection Complete, reason 0x13, Vol 4 Part E 7.7.5
  { dir: 'rx', timeUs: 1_700_000_001_000_000, packet: fromHex('04 05 04 00 40 00 13') },
];
