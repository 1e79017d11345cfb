/**
 * Wireshark (tshark) as the decoding oracle: its reassembled L2CAP PDUs of a capture, one per PDU,
 * in the same shape as `blewire decode --json` L2CAP lines. tshark must be installed
 * (tools/interop/setup.sh); if it is not, this throws and the interop suite fails, never skips.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface L2capRow {
  frame: number;
  dir: 'tx' | 'rx';
  handle: number;
  cid: number;
  payload: string;
  /** Controller index, for Linux monitor captures (several controllers in one file). */
  adapter?: number;
}

// Linux monitor opcodes (btsnoop 2001 / LINKTYPE 254): even = host → controller, odd = received.
const MONITOR_DIR: Record<string, 'tx' | 'rx'> = { '2': 'tx', '3': 'rx', '4': 'tx', '5': 'rx', '6': 'tx', '7': 'rx', '18': 'tx', '19': 'rx' };

const first = (v: unknown): unknown => (Array.isArray(v) ? v[0] : v);
const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * tshark with these arguments, its stdout. Always asynchronous: a synchronous child blocks the vitest
 * worker, and on a loaded machine past its RPC timeout (files then never run while the report says
 * success; issue 15).
 */
export async function tshark(...args: string[]): Promise<string> {
  const { stdout } = await run('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  return stdout;
}

/** One capture record as tshark sees it: frame, direction, HCI packet type, controller index, ACL handle. */
/** tshark's fields (`names`) of the records of `file` matching `filter`, one array per record. */
export async function tsharkFields(file: string, filter: string, ...names: string[]): Promise<string[][]> {
  const out = await tshark('-r', file, '-Y', filter, '-T', 'fields', '-E', 'separator=|', ...names.flatMap(n => ['-e', n]));
  return out.split('\n').filter(Boolean).map(l => l.split('|'));
}

export interface RecordRow {
  frame: number;
  /** Of an HCI packet; a Linux monitor note or index record has none. */
  dir?: 'tx' | 'rx';
  /** command, event, acl, sco, iso, or `monitor N` (a Linux monitor note / index record, N its opcode). */
  type: string;
  adapter?: number;
  handle?: number;
}

// H4 packet indicators (Vol 4, Part A, 2) and the Linux monitor opcodes that carry HCI packets.
const H4_TYPE: Record<string, string> = { '0x01': 'command', '0x02': 'acl', '0x03': 'sco', '0x04': 'event', '0x05': 'iso' };
const MONITOR_TYPE: Record<string, string> = { '2': 'command', '3': 'event', '4': 'acl', '5': 'acl', '6': 'sco', '7': 'sco', '18': 'iso', '19': 'iso' };
/** hci_mon.adapter_id of notes that belong to no controller (MGMT_INDEX_NONE). */
const NO_ADAPTER = '65535';

/** Every record of a capture as tshark reads it, in frame order. */
export async function tsharkRecords(file: string): Promise<RecordRow[]> {
  const out = await tshark('-r', file, '-T', 'fields', '-E', 'occurrence=f', '-e', 'frame.number', '-e', 'hci_h4.direction',
    '-e', 'hci_h4.type', '-e', 'hci_mon.opcode', '-e', 'hci_mon.adapter_id', '-e', 'bthci_acl.chandle');
  return out.split('\n').filter(Boolean).map(line => {
    const [frame, h4dir, h4type, monOp, adapter, handle] = line.split('\t');
    const row: RecordRow = h4type
      ? { frame: Number(frame), dir: h4dir === '0x00' || h4dir === '0' ? 'tx' : 'rx', type: H4_TYPE[h4type] ?? `h4 ${h4type}` }
      : MONITOR_TYPE[monOp!]
        ? { frame: Number(frame), dir: MONITOR_DIR[monOp!]!, type: MONITOR_TYPE[monOp!]! }
        : { frame: Number(frame), type: `monitor ${monOp}` };
    if (adapter && adapter !== NO_ADAPTER) row.adapter = Number(adapter);
    if (handle) row.handle = parseInt(handle, 16);
    return row;
  });
}

export async function tsharkVersion(): Promise<string> {
  const { stdout } = await run('tshark', ['--version']);
  return stdout.split('\n')[0]!;
}

export async function tsharkL2cap(file: string): Promise<L2capRow[]> {
  const { stdout } = await run('tshark', ['-r', file, '-Y', 'btl2cap', '-T', 'json', '-x', '--no-duplicate-keys',
    '-J', 'frame hci_h4 hci_mon bthci_acl btl2cap'], { maxBuffer: 1 << 30 });
  const packets = stdout.trim() ? (JSON.parse(stdout) as Array<{ _source: { layers: Record<string, any> } }>) : [];
  const rows: L2capRow[] = [];
  for (const p of packets) {
    const L = p._source.layers;
    const frame = Number(first(L.frame['frame.number']));
    let dir: 'tx' | 'rx';
    const h4dir = first(L.hci_h4?.['hci_h4.direction']);
    if (h4dir !== undefined) dir = h4dir === '0x00' || h4dir === '0' ? 'tx' : 'rx';
    else dir = MONITOR_DIR[String(first(L.hci_mon?.['hci_mon.opcode']))] ?? 'rx';
    const adapterId = first(L.hci_mon?.['hci_mon.adapter_id']);
    const handle = parseInt(String(first(L.bthci_acl?.['bthci_acl.chandle'])), 16);
    const layers = asList(L.btl2cap);
    // With --no-duplicate-keys a repeated layer's raw bytes become a list of [hex, offset, len, …].
    const raws = asList(L.btl2cap_raw);
    const rawList: unknown[] = Array.isArray(raws[0]) ? raws : [raws];
    layers.forEach((l2: Record<string, unknown>, i: number) => {
      const raw = rawList[i] as unknown[] | undefined;
      const hex = String(Array.isArray(raw?.[0]) ? (raw![0] as unknown[])[0] : raw?.[0] ?? '');
      rows.push({
        frame, dir, handle,
        cid: parseInt(String(first(l2['btl2cap.cid'])), 16),
        payload: hex.slice(8), // after the 4-byte basic header
        ...(adapterId !== undefined ? { adapter: Number(adapterId) } : {}),
      });
    });
  }
  return rows;
}

/** Frames tshark flags as malformed, with its expert text. */
export async function tsharkMalformed(file: string): Promise<string[]> {
  const { stdout } = await run('tshark', ['-r', file, '-Y', '_ws.malformed || _ws.expert.severity == error',
    '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message'], { maxBuffer: 1 << 28 });
  return stdout.split('\n').filter(Boolean);
}

/** One SDU of a credit-based channel as tshark cut it from the K-frames (Vol 3, Part A, 3.4.2). */
export interface CreditSduRow {
  /** Frame of the SDU's last K-frame. */
  frame: number;
  dir: 'tx' | 'rx';
  handle: number;
  /** The CID the K-frames travel on (the receiver's CID). */
  cid: number;
  /** The SDU Length field of its first K-frame. */
  sduLength: number;
  /** The SDU's octets (the K-frames' payloads after the SDU Length field), hex. */
  hex: string;
  /** K-frames it took. */
  frames: number;
}

/**
 * The SDUs of every LE / enhanced credit-based channel in a capture, in frame order, cut the way
 * tshark dissects the K-frames: a frame with an SDU Length field (btl2cap.le_sdu_length) starts an SDU
 * on its (direction, handle, CID); `btl2cap.payload` of each K-frame is its data. tshark knows a CID is
 * a credit-based channel from the connection request and response it saw, so a K-frame on a CID it
 * has not seen opened is not a row here. An SDU still short of its length when the capture ends is
 * returned with what it has (its hex shorter than sduLength * 2).
 */
export async function tsharkCreditSdus(file: string): Promise<CreditSduRow[]> {
  const out = await tshark('-r', file, '-Y', 'btl2cap.cid >= 0x0040', '-T', 'fields', '-E', 'occurrence=f',
    '-e', 'frame.number', '-e', 'hci_h4.direction', '-e', 'bthci_acl.chandle', '-e', 'btl2cap.cid',
    '-e', 'btl2cap.le_sdu_length', '-e', 'btl2cap.payload');
  const rows: CreditSduRow[] = [];
  const open = new Map<string, CreditSduRow>();
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [frame, h4dir, handle, cid, sduLength, payload] = line.split('\t');
    const dir: 'tx' | 'rx' = h4dir === '0x00' || h4dir === '0' ? 'tx' : 'rx';
    const key = `${dir}/${handle}/${cid}`;
    const data = (payload ?? '').replace(/:/g, '');
    if (sduLength) {
      const row: CreditSduRow = { frame: Number(frame), dir, handle: parseInt(handle!, 16), cid: parseInt(cid!, 16),
        sduLength: Number(sduLength), hex: data, frames: 1 };
      rows.push(row);
      open.set(key, row);
    } else {
      const row = open.get(key);
      if (!row) continue;
      row.hex += data;
      row.frames++;
      row.frame = Number(frame);
    }
    const row = open.get(key);
    if (row && row.hex.length >= row.sduLength * 2) open.delete(key);
  }
  return rows;
}
