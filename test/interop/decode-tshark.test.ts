// Pins agreement with Wireshark: for every capture in captures/ (the real phone captures, the emulated
// ones, and our replay fixtures and twins), `blewire decode --json` emits one record line per frame
// tshark reads (frame, dir, HCI packet type, controller index, ACL handle), and its reassembled L2CAP
// PDUs (frame, dir, handle, cid, payload) equal tshark's, PDU for PDU. A capture with no L2CAP PDU
// (an init-and-scan trace) is still checked record for record, so no test compares two empty lists
// only. tshark missing = failure, not a skip.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { tsharkL2cap, tsharkMalformed, tsharkRecords, tsharkVersion, type L2capRow, type RecordRow } from './helpers/tshark.js';

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

/** `blewire decode --json` of a capture: its record lines and its L2CAP PDU lines. */
async function blewireDecode(file: string): Promise<{ records: RecordRow[]; l2cap: L2capRow[] }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'decode', '--json', file],
    { maxBuffer: 1 << 30, cwd: ROOT });
  const records: RecordRow[] = [];
  const l2cap: L2capRow[] = [];
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const j = JSON.parse(line) as Record<string, unknown>;
    const adapter = j.adapter !== undefined ? { adapter: j.adapter as number } : {};
    if (j.type === 'l2cap') {
      l2cap.push({
        frame: j.frame as number, dir: j.dir as 'tx' | 'rx', handle: j.handle as number, cid: j.cid as number,
        payload: j.payload as string, ...adapter,
      });
    } else {
      const note = j.type === 'monitor';
      records.push({
        frame: j.frame as number, ...(note ? {} : { dir: j.dir as 'tx' | 'rx' }),
        type: note ? `monitor ${j.monitorOpcode as number}` : j.type as string, ...adapter,
        ...(j.type === 'acl' ? { handle: j.handle as number } : {}),
      });
    }
  }
  return { records, l2cap };
}

// Each capture is decoded once by each side and shared by its two tests.
const memo = <T>(fn: (file: string) => Promise<T>) => {
  const seen = new Map<string, Promise<T>>();
  return (file: string) => { let p = seen.get(file); if (!p) seen.set(file, p = fn(file)); return p; };
};
const ourDecode = memo(blewireDecode);
const theirRecords = memo(tsharkRecords);

const rel = (file: string) => file.slice(join(ROOT, 'captures').length + 1);

// Our recordings (replay fixtures: a folder with scenario.json that is not another host's log) must
// open in Wireshark with no malformed frame. The real phone captures are other hosts' logs, checked above.
const fixtures = readdirSync(join(ROOT, 'captures'), { withFileTypes: true })
  .filter(d => d.isDirectory() && existsSync(join(ROOT, 'captures', d.name, 'scenario.json')))
  .filter(d => !('twin' in (JSON.parse(readFileSync(join(ROOT, 'captures', d.name, 'scenario.json'), 'utf8')) as object)))
  .map(d => join(ROOT, 'captures', d.name, 'capture.btsnoop'))
  .sort();

describe('replay fixtures in Wireshark: nothing malformed', () => {
  test('there are fixtures, each with its capture', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(10);
    for (const f of fixtures) expect(existsSync(f), f).toBe(true);
  });
  for (const file of fixtures) {
    test(`${rel(file)}: every frame decoded, none malformed`, async () => {
      expect((await theirRecords(file)).length).toBeGreaterThan(0);
      expect(await tsharkMalformed(file)).toEqual([]);
    });
  }
});

describe('blewire decode agrees with Wireshark', () => {
  test('tshark is installed', async () => {
    expect(await tsharkVersion()).toMatch(/TShark/);
  });
  test('there are captures to compare', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });
  for (const file of files) {
    // Both tests name the capture they check (its path under captures/).
    test(`${rel(file)}: one record per frame, frame, direction, packet type, controller and ACL handle as tshark reads them`, async () => {
      const [theirs, ours] = await Promise.all([theirRecords(file), ourDecode(file)]);
      expect(theirs.length, 'tshark read no frame').toBeGreaterThan(0);
      const fmt = (r: RecordRow) => `${r.frame} ${r.dir ?? '-'} ${r.type} ${r.adapter ?? '-'} ${r.handle === undefined ? '-' : `0x${r.handle.toString(16)}`}`;
      expect(ours.records.map(fmt)).toEqual(theirs.map(fmt));
    });
    test(`${rel(file)}: L2CAP PDUs (frame, direction, handle, CID, payload) equal tshark's reassembly`, async () => {
      const [theirs, ours, records] = await Promise.all([tsharkL2cap(file), ourDecode(file), theirRecords(file)]);
      // Compare as text lines so a failure shows the first differing PDUs readably.
      const fmt = (r: L2capRow) => `${r.frame} ${r.dir} ${r.adapter ?? '-'} 0x${r.handle.toString(16)} 0x${r.cid.toString(16)} ${r.payload}`;
      expect(ours.l2cap.map(fmt)).toEqual(theirs.map(fmt));
      // A capture with ACL data must yield PDUs on both sides: two empty lists would prove nothing.
      const acl = records.filter(r => r.type === 'acl').length;
      if (acl > 0) expect(theirs.length, `${acl} ACL frames but no L2CAP PDU`).toBeGreaterThan(0);
      else expect(theirs, 'no ACL frame, so no PDU').toEqual([]);
    });
  }
});
