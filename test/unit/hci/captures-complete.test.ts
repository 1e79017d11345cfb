// Pins completeness against the real world: every HCI packet in the reference real and emulated
// captures decodes, and every command, event, LE sub-event and Command Complete return in them has a
// named kind (vendor-specific packets aside, which stay raw by design).
import { describe, expect, test } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCapture } from '../../../src/capture/index.js';
import { toHex } from '../../../src/bytes/hex.js';
import { decodeHciPacket, describeHciPacket } from '../../../src/hci/packets.js';

const CAPTURES = fileURLToPath(new URL('../../../captures/', import.meta.url));
const files = ['real', 'emulated'].flatMap(dir =>
  readdirSync(join(CAPTURES, dir)).filter(f => f.endsWith('.btsnoop')).sort().map(f => join(dir, f)));

describe('HCI completeness on shared captures', () => {
  test('the captures are there', () => {
    expect(files.length).toBeGreaterThanOrEqual(7);
  });

  for (const file of files) {
    test(file, () => {
      const problems: string[] = [];
      const kinds = new Set<string>();
      let packets = 0;
      for (const rec of parseCapture(readFileSync(join(CAPTURES, file)))) {
        if (!rec.packet) continue;
        packets++;
        const where = `frame ${rec.frame} ${toHex(rec.packet.subarray(0, 8))}`;
        let p;
        try {
          p = decodeHciPacket(rec.packet);
        } catch (e) {
          problems.push(`${where}: ${(e as Error).message}`);
          continue;
        }
        if (p.type === 'unknown') problems.push(`${where}: unknown H4 indicator`);
        if (p.type === 'command' || p.type === 'event') {
          kinds.add(p.kind);
          if (p.kind === 'unknown') problems.push(`${where}: unknown ${p.type}: ${describeHciPacket(p)}`);
          if (p.type === 'event' && p.kind === 'commandComplete' && p.returnParameters.kind === 'unknown') {
            problems.push(`${where}: Command Complete of an unknown opcode: ${describeHciPacket(p)}`);
          }
        }
        describeHciPacket(p); // must not throw either
      }
      expect(problems).toEqual([]);
      expect(packets).toBeGreaterThan(0);
    });
  }
});
