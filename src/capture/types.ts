/**
 * The record shape every capture reader yields and every writer takes (shared contract, see
 * notes/contracts.md). Frame numbers are 1-based and equal Wireshark's: every record of the file is
 * yielded, including monitor-format records that carry no HCI packet.
 */
export interface CaptureRecord {
  /** 1-based record number, the same as Wireshark's frame.number. */
  frame: number;
  /** tx = host → controller, rx = controller → host. */
  dir: 'tx' | 'rx';
  /** Microseconds since the Unix epoch. */
  timeUs: number;
  /** The whole H4 packet, indicator byte first; absent for non-HCI records (monitor notes, new index…). */
  packet?: Uint8Array;
  /** Controller index (Linux monitor formats: btsnoop 2001, pcap/pcapng LINKTYPE 254; pcapng hciN interfaces). */
  adapter?: number;
  /** Set only when the file stored fewer bytes than the packet had (snapshot length): the original length. */
  originalLength?: number;
  /** Linux monitor opcode of a record without an HCI packet (MONITOR_OPCODE in monitor.ts). */
  monitorOpcode?: number;
  /** Text of a monitor system note or user-logging record. */
  note?: string;
  /** Raw payload of a monitor record without an HCI packet (so monitor → monitor copies are lossless). */
  monitorData?: Uint8Array;
}

/** What a writer takes: a record without its frame number (writers number records themselves). */
export type CaptureRecordInput = Omit<CaptureRecord, 'frame' | 'originalLength'> & { frame?: number };

export type CaptureFormat = 'btsnoop' | 'pcap' | 'pcapng';
