// Pins `blewire decode`'s pipeline on the real captures: L2CAP PDUs equal Wireshark's recorded
// decoding (the oracle files), every ATT / SMP / signalling PDU on a real link decodes to a named
// kind, and the JSON Lines carry the documented fields.
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseCapture } from '../../../src/capture/index.js';
import { decodeRecords, toJsonLine, type DecodedL2cap } from '../../../src/inspect/decode.js';

const REAL = resolve(import.meta.dirname, '../../../captures/real');
const captures = readdirSync(REAL).filter(f => f.endsWith('.btsnoop'));

function l2capLines(file: string): DecodedL2cap[] {
  const lines = [...decodeRecords(parseCapture(readFileSync(resolve(REAL, file))))];
  return lines.filter((l): l is DecodedL2cap => l.line === 'l2cap');
}

describe('decode pipeline on real captures', () => {
  test.each(captures)('%s: L2CAP PDUs equal the Wireshark oracle', file => {
    const oracle = readFileSync(resolve(REAL, 'oracle', `${file}.l2cap.tsv`), 'utf8').trim().split('\n').slice(1)
      .map(l => { const c = l.split('\t'); return `${c[0]} ${c[1]} ${c[2]} ${c[3]} ${c[5]}`; });
    const ours = l2capLines(file).map(l => {
      const j = toJsonLine(l);
      return `${j.frame} ${j.dir} 0x${l.handle.toString(16).padStart(4, '0')} 0x${l.cid.toString(16).padStart(4, '0')} ${j.payload}`;
    });
    expect(ours).toEqual(oracle);
  });

  test.each(captures)('%s: every ATT / SMP / signalling PDU on a link decodes to a named kind', file => {
    const records = [...parseCapture(readFileSync(resolve(REAL, file)))];
    const lines = [...decodeRecords(records)];
    // Handles announced by a (LE enhanced) connection complete are links; in a capture with no
    // connection events at all (ACL-only logs) every handle counts. Handle 0x0EDC in the Qualcomm
    // capture is controller debug traffic, not a link, and is never announced.
    const announced = new Set<number>();
    let sawConnectionEvents = false;
    for (const l of lines) {
      if (l.line !== 'record' || l.type !== 'event') continue;
      const f = l.fields as { kind?: string; status?: number; connectionHandle?: number };
      if (f.kind && /connectionComplete/i.test(f.kind)) {
        sawConnectionEvents = true;
        if (f.status === 0 && f.connectionHandle !== undefined) announced.add(f.connectionHandle);
      }
    }
    const checked = lines
      .filter((l): l is DecodedL2cap => l.line === 'l2cap')
      .filter(l => !sawConnectionEvents || announced.has(l.handle))
      .filter(l => [0x0001, 0x0004, 0x0005, 0x0006, 0x0007].includes(l.cid));
    // pixel6 is an init-and-scan capture with no links; all the others have hundreds of PDUs.
    if (!file.startsWith('pixel6')) expect(checked.length).toBeGreaterThan(100);
    const bad = checked
      .filter(l => l.pdu.kind === 'unknown' || l.pdu.kind === 'malformed')
      .map(l => `frame ${l.frame} cid 0x${l.cid.toString(16)}: ${l.text}`);
    expect(bad).toEqual([]);
  });

  test('JSON lines carry frame, dir, type and the decoded fields; L2CAP lines handle, cid, payload, pdu', () => {
    const lines = [...decodeRecords(parseCapture(readFileSync(resolve(REAL, 'pongbot-session.btsnoop'))))].map(toJsonLine);
    expect(lines[0]).toMatchObject({ frame: 1, dir: 'tx', type: 'command', kind: 'reset' });
    expect(lines[1]).toMatchObject({ frame: 2, dir: 'rx', type: 'event', kind: 'commandComplete' });
    const l2 = lines.find(l => l.type === 'l2cap')!;
    expect(l2).toEqual({
      frame: 272, dir: 'tx', type: 'l2cap', handle: 0x41, cid: 4, payload: '080100ffff002a',
      pdu: { kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeType: expect.stringMatching(/^00002a00-/) },
    });
    // Every line is valid JSON that survives a round trip (no bigint, no raw bytes).
    for (const l of lines.slice(0, 500)) expect(JSON.parse(JSON.stringify(l))).toEqual(l);
  });

  test('advertising reports carry their decoded AD', () => {
    const lines = [...decodeRecords(parseCapture(readFileSync(resolve(REAL, 'tql130-reads-writes.btsnoop'))))].map(toJsonLine);
    const adv = lines.find(l => l.kind === 'leExtendedAdvertisingReport') as { reports: Array<{ ad: Array<{ kind: string }> }> };
    expect(adv.reports[0]!.ad.length).toBeGreaterThan(0);
    expect(typeof adv.reports[0]!.ad[0]!.kind).toBe('string');
  });
});
