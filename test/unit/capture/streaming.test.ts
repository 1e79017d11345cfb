import { describe, expect, it } from 'vitest';
import { closeSync, openSync, rmSync, writeSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCaptureWriter, readCaptureFile } from '../../../src/capture/index.js';
import { SESSION } from './session.js';

describe('streaming reader', () => {
  it('reads a 64 MB capture with memory bounded far below the file size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-big-'));
    const path = join(dir, 'big.btsnoop');
    try {
      // ~64 MB: one 1 MB block of records, written 64 times.
      const block: Uint8Array[] = [];
      const w = createCaptureWriter(c => block.push(c), { format: 'btsnoop' });
      let perBlock = 0;
      for (let size = 0; size < 1 << 20; perBlock++) {
        w.write({ ...SESSION[perBlock % SESSION.length]!, timeUs: 1_700_000_000_000_000 + perBlock });
        size += block.at(-1)!.length;
      }
      const header = block.shift()!;
      const body = new Uint8Array(block.reduce((n, c) => n + c.length, 0));
      block.reduce((o, c) => (body.set(c, o), o + c.length), 0);
      const fd = openSync(path, 'w');
      writeSync(fd, header);
      for (let i = 0; i < 64; i++) writeSync(fd, body);
      closeSync(fd);
      const written = perBlock * 64;

      const base = process.memoryUsage();
      let peakExternal = 0;
      let peakHeap = 0;
      let count = 0;
      let bytes = 0;
      for await (const r of readCaptureFile(path)) {
        count++;
        bytes += r.packet!.length;
        if ((count & 0x3fff) === 0) {
          const m = process.memoryUsage();
          peakExternal = Math.max(peakExternal, m.arrayBuffers - base.arrayBuffers);
          peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed);
        }
      }
      expect(statSync(path).size).toBeGreaterThan(64 << 20);
      expect(count).toBe(written);
      expect(bytes).toBeGreaterThan(0);
      // Loading the file at once would add 64 MB of array buffers; streaming holds a few chunks.
      expect(peakExternal).toBeLessThan(16 << 20);
      expect(peakHeap).toBeLessThan(48 << 20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
