import { H4 } from '../codec/h4.js';

/**
 * The Linux monitor ("btmon") record opcodes, used by btsnoop datalink 2001 (in the low 16 bits of
 * the flags word, controller index in the high 16) and by pcap/pcapng LINKTYPE 254 (a 4-byte
 * big-endian pseudo-header: adapter index, then opcode). Values from BlueZ doc/btsnoop.txt and
 * monitor/bt.h; Wireshark's packet-bthci_mon.c uses the same numbers.
 */
export const MONITOR_OPCODE = {
  newIndex: 0,
  delIndex: 1,
  commandPkt: 2,
  eventPkt: 3,
  aclTxPkt: 4,
  aclRxPkt: 5,
  scoTxPkt: 6,
  scoRxPkt: 7,
  openIndex: 8,
  closeIndex: 9,
  indexInfo: 10,
  vendorDiag: 11,
  systemNote: 12,
  userLogging: 13,
  ctrlOpen: 14,
  ctrlClose: 15,
  ctrlCommand: 16,
  ctrlEvent: 17,
  isoTxPkt: 18,
  isoRxPkt: 19,
} as const;
export type MonitorOpcode = (typeof MONITOR_OPCODE)[keyof typeof MONITOR_OPCODE];

/** Index value of records that belong to no controller (system notes). */
export const MONITOR_NO_INDEX = 0xffff;

/** Monitor opcode → [H4 indicator, direction] for the records that carry an HCI packet. */
const HCI_OPCODES: ReadonlyMap<number, readonly [number, 'tx' | 'rx']> = new Map([
  [MONITOR_OPCODE.commandPkt, [H4.command, 'tx']],
  [MONITOR_OPCODE.eventPkt, [H4.event, 'rx']],
  [MONITOR_OPCODE.aclTxPkt, [H4.acl, 'tx']],
  [MONITOR_OPCODE.aclRxPkt, [H4.acl, 'rx']],
  [MONITOR_OPCODE.scoTxPkt, [H4.sco, 'tx']],
  [MONITOR_OPCODE.scoRxPkt, [H4.sco, 'rx']],
  [MONITOR_OPCODE.isoTxPkt, [H4.iso, 'tx']],
  [MONITOR_OPCODE.isoRxPkt, [H4.iso, 'rx']],
]);

export interface MonitorBody {
  dir: 'tx' | 'rx';
  packet?: Uint8Array;
  adapter?: number;
  monitorOpcode?: number;
  note?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return utf8.decode(nul < 0 ? bytes : bytes.subarray(0, nul));
}

/**
 * Turn one monitor record into the shared record shape: HCI records become whole H4 packets (a fresh
 * allocation, since the indicator byte has to be prepended), everything else keeps its opcode and,
 * for notes and user logging, its text.
 */
export function monitorToRecord(index: number, opcode: number, data: Uint8Array): MonitorBody {
  const adapter = index === MONITOR_NO_INDEX ? undefined : index;
  const hci = HCI_OPCODES.get(opcode);
  if (hci) {
    const packet = new Uint8Array(data.length + 1);
    packet[0] = hci[0];
    packet.set(data, 1);
    return adapter === undefined ? { dir: hci[1], packet } : { dir: hci[1], packet, adapter };
  }
  const body: MonitorBody = { dir: opcode === MONITOR_OPCODE.ctrlCommand ? 'tx' : 'rx', monitorOpcode: opcode };
  if (adapter !== undefined) body.adapter = adapter;
  if (opcode === MONITOR_OPCODE.systemNote) body.note = cString(data);
  else if (opcode === MONITOR_OPCODE.userLogging && data.length >= 2) {
    // BlueZ monitor/bt.h struct monitor_user_logging: priority u8, ident_len u8, ident, message.
    const identLen = data[1]!;
    const ident = cString(data.subarray(2, 2 + identLen));
    const message = cString(data.subarray(Math.min(data.length, 2 + identLen)));
    body.note = ident ? `${ident}: ${message}` : message;
  }
  return body;
}

/** H4 packet + direction → monitor opcode and payload (the packet without its indicator byte). */
export function h4ToMonitorOpcode(indicator: number, dir: 'tx' | 'rx'): number | undefined {
  switch (indicator) {
    case H4.command: return MONITOR_OPCODE.commandPkt;
    case H4.event: return MONITOR_OPCODE.eventPkt;
    case H4.acl: return dir === 'tx' ? MONITOR_OPCODE.aclTxPkt : MONITOR_OPCODE.aclRxPkt;
    case H4.sco: return dir === 'tx' ? MONITOR_OPCODE.scoTxPkt : MONITOR_OPCODE.scoRxPkt;
    case H4.iso: return dir === 'tx' ? MONITOR_OPCODE.isoTxPkt : MONITOR_OPCODE.isoRxPkt;
    default: return undefined;
  }
}

