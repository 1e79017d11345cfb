/**
 * HCI packet indicators of the UART transport layer (H4), Core Vol 4, Part A, 2: the first byte of
 * every packet in an H4 stream, in btsnoop 1002 records and in pcap LINKTYPE 201. Below transports
 * and captures, since both frame packets with it.
 */
export const H4 = {
  command: 0x01,
  acl: 0x02,
  sco: 0x03,
  event: 0x04,
  iso: 0x05,
} as const;
export type H4Type = (typeof H4)[keyof typeof H4];
