// Pins agreement with Wireshark: for every capture in captures/ (the real phone captures, the emulated
// ones, and our replay fixtures and twins),
// blewire's reassembled L2CAP PDUs (frame, dir, handle, cid, payload) equal tshark's, PDU for PDU,
// and `blewire decode --json` emits exactly those lines. tshark missing = failure, not a skip.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { tsharkL2cap, tsharkVersion, type L2capRow } from './helpers/tshark.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

function capturesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...capturesIn(p));
    else if (/\.(btsnoop|log|cfa|pcap|pcapng)$/.test(name)) out.push(p);
  }
  return out.sort();
}

// captures/emulated (Linux monitor format, two controllers in one file) tests the monitor path too.
const files = capturesIn(join(ROOT, 'captures'));

async function blewireL2cap(file: string): Promise<L2capRow[]> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'decode', '--json', file],
    { maxBuffer: 1 << 30, cwd: ROOT });
  const rows: L2capRow[] = [];
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const j = JSON.parse(line) as Record<string, unknown>;
    if (j.type !== 'l2cap') continue;
    rows.push({
      frame: j.frame as number, dir: j.dir as 'tx' | 'rx', handle: j.handle as number, cid: j.cid as number,
      payload: j.payload as string, ...(j.adapter !== undefined ? { adapter: j.adapter as number } : {}),
    });
  }
  return rows;
}

describe('blewire decode agrees with Wireshark', () => {
  test('tshark is installed', async () => {
    expect(await tsharkVersion()).toMatch(/TShark/);
  });
  test('there are captures to compare', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });
  for (const file of files) {
    test(`L2CAP PDUs of ${file.slice(file.lastIndexOf('/') + 1)}`, async () => {
      const [theirs, ours] = await Promise.all([tsharkL2cap(file), blewireL2cap(file)]);
      // Compare as text lines so a failure shows the first differing PDUs readably.
      const fmt = (r: L2capRow) => `${r.frame} ${r.dir} ${r.adapter ?? '-'} 0x${r.handle.toString(16)} 0x${r.cid.toString(16)} ${r.payload}`;
      expect(ours.map(fmt)).toEqual(theirs.map(fmt));
    });
  }
});
