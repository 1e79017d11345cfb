// Pins decode completeness on real traffic: every L2CAP PDU of every reference capture (real and
// emulated) on the ATT, LE signalling and SMP channels decodes to a named kind, never `unknown` and
// never a DecodeError, except on the Qualcomm debug handle 0x0EDC, which is not a link.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parseCapture } from '../../../src/capture/index.js';
import { toHex } from '../../../src/bytes/hex.js';
import { reassembleCapture } from '../../../src/l2cap/reassembly.js';
import { decodeAtt } from '../../../src/att/pdus.js';
import { decodeSmp } from '../../../src/smp/pdus.js';
import { decodeLeSignalling } from '../../../src/l2cap/signalling.js';
import { ATT_CID, LE_SIGNALLING_CID, SMP_CID } from '../../../src/l2cap/constants.js';

const CAPTURES = fileURLToPath(new URL('../../../captures/', import.meta.url));
const DEBUG_HANDLE = 0x0edc;
const files = ['real', 'emulated'].flatMap(d => readdirSync(CAPTURES + d).filter(f => f.endsWith('.btsnoop')).map(f => `${d}/${f}`));

describe('every ATT / signalling / SMP PDU in the reference captures decodes to a named kind', () => {
  for (const f of files) {
    test(f, () => {
      const kinds = new Map<string, number>();
      const problems: string[] = [];
      for (const pdu of reassembleCapture(parseCapture(new Uint8Array(readFileSync(CAPTURES + f))))) {
        if (pdu.handle === DEBUG_HANDLE) continue;
        const decode = pdu.cid === ATT_CID ? decodeAtt : pdu.cid === SMP_CID ? decodeSmp
          : pdu.cid === LE_SIGNALLING_CID ? decodeLeSignalling : undefined;
        if (!decode) continue;
        try {
          const p = decode(pdu.payload);
          if (p.kind === 'unknown') problems.push(`frame ${pdu.frame}: unknown ${toHex(pdu.payload)}`);
          kinds.set(p.kind, (kinds.get(p.kind) ?? 0) + 1);
        } catch (e) {
          problems.push(`frame ${pdu.frame}: ${(e as Error).message}`);
        }
      }
      expect(problems).toEqual([]);
      if (!f.includes('pixel6')) expect(kinds.size).toBeGreaterThan(0);
    });
  }
});
