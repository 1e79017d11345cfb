/**
 * AES-CMAC (RFC 4493) over AES-128, the MAC behind the GATT Database Hash (Core Vol 3, Part G,
 * 7.3.1) and ATT signed writes (Vol 3, Part H, 2.4.5): the platform seam's implementation (one copy
 * for GATT and SMP). Byte order is the RFC's: key and message as given, the 16-octet MAC as produced;
 * callers place it on the wire as their spec says.
 */
export { aesCmac } from '../platform/crypto.js';
