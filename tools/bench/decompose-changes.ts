// Profiling aid, not a bench: blewire's extended-report path against the floor, split by what the reports
// bring: adv-corpus.ts's extended corpus with its `changes` set (500 advertisers, 100 visits, the same AD
// structures): MODE=none, no report changes its device's data (every report is compared and found the
// same); MODE=all, every report changes it (a counter in the last octet: every report is compared, copied,
// parsed again and its views made). Interleaved round by round (harness.ts), CPU per report. Session 18:
// none 196-202 ns against the floor's 174-175 (1.1-1.2x), all 734-746 against 491-494 (1.5x).
//   MODE=all node --expose-gc --import tsx tools/bench/decompose-changes.ts
import { blewireScanner, feeder } from './scanner.bench.js';
import { advertisingFloor } from './floor.js';
import { interleave, machineLine, report } from './harness.js';
import { extendedCorpus } from './adv-corpus.js';

const mode = process.env.MODE ?? 'none';
if (mode !== 'none' && mode !== 'all') throw new Error('MODE is none or all');
console.log(machineLine());
const corpus = extendedCorpus(100, mode);
const bw = await blewireScanner();
const floor = advertisingFloor(f => feeder(f));
const results = await interleave([
  { name: 'blewire adapter.scan', pass: () => bw.feed(corpus), delivered: bw.delivered, unit: 'advertisements' },
  { name: 'floor', pass: () => floor.feed(corpus), delivered: floor.delivered, unit: 'deliveries' },
], corpus.length, 9);
report(`extended reports, changing their data: ${mode}`, results, { floor: 'floor' });
await bw.session.stop();
await bw.adapter.close();
