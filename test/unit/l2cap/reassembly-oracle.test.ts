// Pins ACL → L2CAP reassembly to Wireshark: on every shared real capture, the reassembled PDUs
// (frame of the last fragment, direction, handle, CID, payload) equal tshark's, PDU for PDU, including
// the ACL-only log, the 0x0EDC debug handle and the continuation fragments.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parseCapture } from '../../../src/capture/index.js';
import { toHex } from '../../../src/bytes/hex.js';
import { CaptureReassembler } from '../../../src/l2cap/reassembly.js';

const REAL = fileURLToPath(new URL('../../../captures/real/', import.meta.url));
const files = readdirSync(REAL).filter(f => f.endsWith('.btsnoop')).sort();
const h16 = (n: number) => '0x' + n.toString(16).padStart(4, '0');

describe('reassembly agrees with tshark on the real captures', () => {
  test('the shared captures are all there', () => {
    expect(files).toHaveLength(5);
  });
  for (const f of files) {
    test(f, () => {
      const oracle = readFileSync(`${REAL}oracle/${f}.l2cap.tsv`, 'utf8').trim().split('\n').slice(1)
        .filter(Boolean).map(l => {
          const [frame, dir, handle, cid, , payload] = l.split('\t');
          return [frame, dir, handle, cid, payload].join(' ');
        });
      const r = new CaptureReassembler();
      const mine: string[] = [];
      let continuations = 0;
      for (const rec of parseCapture(new Uint8Array(readFileSync(REAL + f)))) {
        if (rec.packet?.[0] === 0x02 && ((rec.packet[2]! >> 4) & 3) === 1) continuations++;
        const pdu = r.push(rec);
        if (pdu) mine.push([pdu.frame, pdu.dir, h16(pdu.handle), h16(pdu.cid), toHex(pdu.payload)].join(' '));
      }
      expect(mine).toEqual(oracle);
      expect(r.malformedAcl).toEqual([]);
      if (f.startsWith('pongbot-long')) expect(continuations).toBeGreaterThanOrEqual(33);
    });
  }
});
