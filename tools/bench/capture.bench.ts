/**
 * Capture reading speed: MB/s and records/s for each reference capture (in memory with parseCapture and
 * streamed with readCaptureFile), then for a generated ~100 MB btsnoop streamed from disk, with RSS
 * before, at the peak and after, to show that memory stays bounded whatever the file size.
 */
import { closeSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCaptureWriter, parseCapture, readCaptureFile } from '../../src/capture/index.js';
import { fromHex } from '../../src/bytes/hex.js';

const CAPTURES = fileURLToPath(new URL('../../captures/', import.meta.url));
const MB = 1024 * 1024;
const fmt = (n: number, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d });

function referenceCaptures(): string[] {
  const out: string[] = [];
  for (const sub of ['real', 'emulated']) {
    try {
      for (const f of readdirSync(join(CAPTURES, sub)).sort()) if (/\.(btsnoop|pcap|pcapng|log|cfa)$/.test(f)) out.push(join(sub, f));
    } catch {
      // not present on this machine
    }
  }
  return out;
}

async function timeIt(fn: () => Promise<number> | number, minMs = 300): Promise<{ ms: number; records: number; runs: number }> {
  let runs = 0;
  let records = 0;
  const start = performance.now();
  while (performance.now() - start < minMs || runs < 3) {
    records += await fn();
    runs++;
  }
  return { ms: (performance.now() - start) / runs, records: records / runs, runs };
}

export async function bench(): Promise<void> {
  console.log('file                                   size      records  parseCapture MB/s  rec/s       readCaptureFile MB/s  rec/s');
  for (const rel of referenceCaptures()) {
    const path = join(CAPTURES, rel);
    const bytes = readFileSync(path);
    const mem = await timeIt(() => {
      let n = 0;
      for (const _ of parseCapture(bytes)) n++;
      return n;
    });
    const stream = await timeIt(async () => {
      let n = 0;
      for await (const _ of readCaptureFile(path)) n++;
      return n;
    });
    const size = bytes.length / MB;
    console.log(`${rel.padEnd(38)} ${fmt(size, 2).padStart(5)} MB ${String(mem.records).padStart(8)}  ` +
      `${fmt(size / (mem.ms / 1000)).padStart(8)}          ${fmt(mem.records / (mem.ms / 1000), 0).padStart(10)}  ` +
      `${fmt(size / (stream.ms / 1000)).padStart(8)}              ${fmt(stream.records / (stream.ms / 1000), 0).padStart(10)}`);
  }

  // A generated ~100 MB btsnoop of typical LE traffic (adv reports, ACL both ways, completed packets).
  const dir = mkdtempSync(join(tmpdir(), 'blewire-bench-'));
  const path = join(dir, 'big.btsnoop');
  try {
    const packets = [
      fromHex('04 3e 1a 02 01 00 00 66 55 44 33 22 11 0e 02 01 06 0a 09 62 6c 65 77 69 72 65 2d 31 c5'),
      fromHex('02 40 00 07 00 03 00 04 00 0a 03 00'),
      fromHex('02 40 20 0c 00 08 00 04 00 0b 62 6c 65 77 69 72 65'),
      fromHex('04 13 05 01 40 00 01 00'),
    ];
    const chunks: Uint8Array[] = [];
    const w = createCaptureWriter(c => chunks.push(c), { format: 'btsnoop' });
    let perBlock = 0;
    for (let size = 0; size < 4 * MB; perBlock++) {
      const p = packets[perBlock % packets.length]!;
      w.write({ dir: p[0] === 2 && p[2] === 0 ? 'tx' : 'rx', timeUs: 1_700_000_000_000_000 + perBlock * 100, packet: p });
      size += chunks.at(-1)!.length;
    }
    const header = chunks.shift()!;
    const block = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    chunks.reduce((o, c) => (block.set(c, o), o + c.length), 0);
    const fd = openSync(path, 'w');
    writeSync(fd, header);
    for (let i = 0; i < 25; i++) writeSync(fd, block);
    closeSync(fd);
    const size = statSync(path).size / MB;

    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let n = 0;
    const start = performance.now();
    for await (const _ of readCaptureFile(path)) {
      if ((++n & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    const ms = performance.now() - start;
    globalThis.gc?.();
    const after = process.memoryUsage().rss;
    console.log(`generated btsnoop: ${fmt(size)} MB, ${fmt(n, 0)} records, streamed in ${fmt(ms / 1000, 2)} s: ` +
      `${fmt(size / (ms / 1000))} MB/s, ${fmt(n / (ms / 1000), 0)} records/s`);
    console.log(`RSS before ${fmt(before / MB)} MB, peak ${fmt(peak / MB)} MB (+${fmt((peak - before) / MB)}), after ${fmt(after / MB)} MB ` +
      `(file ${fmt(size)} MB: never loaded at once)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
