// A/B, not a bench: this tree's blewire scanner against another tree's (argv[2]: a copy of main made with git archive, node_modules linked) and the floor,
// interleaved round by round on the legacy corpus (argv[3] extended: the extended one); the median speed-up and the allocation per known report.
// nice -n 5 node --expose-gc --import tsx tools/bench/ab-scan.ts /tmp/base [extended]
import { pathToFileURL } from 'node:url';
import { interleave, machineLine, report } from './harness.js';
import { legacyCorpus, extendedCorpus } from './adv-corpus.js';
import { advertisingFloor } from './floor.js';
import { blewireScanner } from './scanner.bench.js';
const other = await import(pathToFileURL(process.argv[2] + '/tools/bench/scanner.bench.ts').href) as typeof import('./scanner.bench.js');
console.log(machineLine());
const corpus = process.argv[3] === 'extended' ? extendedCorpus() : legacyCorpus();
const a = await blewireScanner(), b = await other.blewireScanner();
const CH = 1000;
const feeder = (feed: (p: Buffer) => void) => async (c: Buffer[]) => { for (let i = 0; i < c.length;) { const e = Math.min(c.length, i + CH); for (; i < e; i++) feed(c[i]!); await new Promise(r => setImmediate(r)); } };
const floor = advertisingFloor(f => feeder(f));
const res = await interleave([
  { name: 'new', pass: () => a.feed(corpus), delivered: a.delivered },
  { name: 'base', pass: () => b.feed(corpus), delivered: b.delivered },
  { name: 'floor', pass: () => floor.feed(corpus), delivered: floor.delivered },
], corpus.length, Number(process.env.ROUNDS ?? 9));
report('A/B', res, { floor: 'floor', versus: ['base'] });
const r = res[0]!.samples.map((s, i) => res[1]!.samples[i]! / s).sort((x, y) => x - y);
console.log(`  new/base speed-up median ${r[r.length >> 1]!.toFixed(3)} (rounds ${r.map(x => x.toFixed(2)).join(' ')})`);
const { sampledAllocation } = await import('./harness.js');
const batch = corpus.slice(0, 1000);
console.log('  alloc new', (await sampledAllocation(() => a.feed(batch), 1000)).toFixed(0), 'base', (await sampledAllocation(() => b.feed(batch), 1000)).toFixed(0));
