// Profiling aid, not a bench: blewire's extended-report path against the floor, split by what the reports
// bring. Two corpora built like adv-corpus.ts's extended one (500 advertisers, 100 visits, the same AD
// structures): MODE=none, no report changes its device's data (every report is compared and found the
// same); MODE=all, every report changes it (a counter in the last octet: every report is compared, copied,
// parsed again and its views made). Interleaved round by round (harness.ts), CPU per report. Session 18:
// none 196-202 ns against the floor's 174-175 (1.1-1.2x), all 734-746 against 491-494 (1.5x).
//   MODE=all node --expose-gc --import tsx tools/bench/decompose-changes.ts
import { blewireScanner } from './scanner.bench.js';
import { advertisingFloor } from './floor.js';
import { interleave, machineLine, report, turn } from './harness.js';
import { ADVERTISERS, advData, scanRspData, extendedEvent, hexAddr } from './adv-corpus.js';

const mode = process.env.MODE ?? 'none';
if (mode !== 'none' && mode !== 'all') throw new Error('MODE is none or all');
console.log(machineLine());
const corpus: Buffer[] = [];
let seed = 7;
const rand = (n: number): number => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };
for (let v = 0; v < 100; v++) {
  for (let i = 0; i < ADVERTISERS; i++) {
    const data = [...advData(i, mode === 'none' ? 0 : v), ...scanRspData(i), 0x09, 0xff, 0x59, 0x00, 1, 2, 3, 4, 5, mode === 'all' ? v & 0xff : 6];
    corpus.push(extendedEvent(hexAddr(i), new Uint8Array(data), -40 - rand(50)));
  }
}
const feeder = (feed: (p: Buffer) => void) => async (c: Buffer[]): Promise<void> => {
  for (let i = 0; i < c.length;) {
    const e = Math.min(c.length, i + 1000);
    for (; i < e; i++) feed(c[i]!);
    await turn();
  }
};
const bw = await blewireScanner();
const floor = advertisingFloor(f => feeder(f));
const results = await interleave([
  { name: 'blewire adapter.scan', pass: () => bw.feed(corpus), delivered: bw.delivered, unit: 'advertisements' },
  { name: 'floor', pass: () => floor.feed(corpus), delivered: floor.delivered, unit: 'deliveries' },
], corpus.length, 9);
report(`extended reports, changing their data: ${mode}`, results, { floor: 'floor' });
await bw.session.stop();
await bw.adapter.close();
