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
