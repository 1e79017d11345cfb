/**
 * Advertising-data parse throughput (issue 2, "Speed"): parseAd() over a corpus of AD payloads —
 * the real AD of every advertising report in the shared captures (including tql130's malformed ones)
 * plus synthetic payloads shaped like common advertisers (iBeacon, Eddystone, a named sensor with
 * UUID lists, a 128-bit UUID peripheral). Prints payloads/s, AD structures/s and MB/s, for the full
 * parse, for the fields a scanner reads, and for the strict table decode (decodeAd). Figures only.
 * (heapUsed deltas proved too coarse for a per-payload allocation figure, so none is printed.)
 *
 *   npx tsx tools/bench/ad.bench.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseCapture } from '../../src/capture/index.js';
import { decodeHciPacket } from '../../src/hci/packets.js';
import { buildAd, decodeAd, parseAd } from '../../src/gap/ad.js';
import { fromShort } from '../../src/codec/uuid.js';
import { DecodeError } from '../../src/errors.js';

const CAPTURES = fileURLToPath(new URL('../../captures/real/', import.meta.url));

function realPayloads(): Uint8Array[] {
  const out: Uint8Array[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(CAPTURES).filter(f => f.endsWith('.btsnoop'));
  } catch {
    return out;
  }
  for (const f of files) {
    for (const rec of parseCapture(new Uint8Array(readFileSync(CAPTURES + f)))) {
      if (rec.packet?.[0] !== 0x04) continue;
      let p;
      try {
        p = decodeHciPacket(rec.packet) as { kind?: string; reports?: Array<{ data: Uint8Array }> };
      } catch {
        continue;
      }
      if (p.kind === 'leAdvertisingReport' || p.kind === 'leExtendedAdvertisingReport') {
        for (const r of p.reports!) if (r.data.length > 0) out.push(r.data);
      }
    }
  }
  return out;
}

function syntheticPayloads(): Uint8Array[] {
  const NUS = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
  const ibeacon = buildAd({ flags: 6, manufacturerData: [[0x004c, Uint8Array.from({ length: 23 }, (_, i) => i)]] });
  const eddystone = buildAd({ flags: 6, serviceUuids: [fromShort(0xfeaa)], serviceData: [[fromShort(0xfeaa), Uint8Array.of(0x10, 0xf8, 0x03, 0x67, 0x6f, 0x6f, 0x2e, 0x67, 0x6c)]] });
  const sensor = buildAd({ flags: 6, serviceUuids: [fromShort(0x180d), fromShort(0x180f)], name: 'Polar H10 1A2B', txPower: 4 });
  const nus = buildAd({ flags: 6, serviceUuids: [NUS] });
  return [ibeacon, eddystone, sensor, nus];
}

function measure(label: string, corpus: Uint8Array[], fn: (d: Uint8Array) => number, minMs = 600): void {
  const bytes = corpus.reduce((n, d) => n + d.length, 0);
  const perRound = corpus.reduce((n, d) => n + parseAd(d).structures.length, 0);
  for (let i = 0; i < 3; i++) for (const d of corpus) fn(d); // warm-up
  let rounds = 0, sink = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < corpus.length; i++) sink += fn(corpus[i]!);
    rounds++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  const payloads = rounds * corpus.length;
  const perSec = payloads / (elapsed / 1000);
  console.log(`${label.padEnd(34)} ${(perSec / 1e6).toFixed(2)} M payloads/s  ${((rounds * perRound) / (elapsed / 1000) / 1e6).toFixed(2)} M structures/s  ` +
    `${((rounds * bytes) / (elapsed / 1000) / 1e6).toFixed(1)} MB/s` + (sink < 0 ? ' ' : ''));
}

/** Parse and list every structure (what `blewire decode` does). */
const countParse = (d: Uint8Array): number => parseAd(d).structures.length;
/** What a scanner does per report it looks into: parse, then read the fields a filter reads. */
const countParseAndRead = (d: Uint8Array): number => {
  const p = parseAd(d);
  let n = p.serviceUuids.length + p.manufacturerData.size + p.serviceData.size;
  if (p.name !== undefined) n++;
  if (p.flags !== undefined) n++;
  return n;
};
const countStrict = (d: Uint8Array): number => {
  try {
    return decodeAd(d).length;
  } catch (e) {
    if (e instanceof DecodeError) return 0;
    throw e;
  }
};

export async function bench(): Promise<void> {
  const real = realPayloads();
  const synthetic = syntheticPayloads();
  console.log(`corpus: ${real.length} real AD payloads from the shared captures, ${synthetic.length} synthetic`);
  if (real.length > 0) {
    measure('parseAd, real captures', real, countParse);
    measure('parseAd, scanner fields only, real', real, countParseAndRead);
    measure('decodeAd (strict table), real', real, countStrict);
  }
  measure('parseAd, synthetic', synthetic, countParse);
  measure('decodeAd (strict table), synthetic', synthetic, countStrict);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await bench();
