// Profiling helper, not a bench: node --expose-gc [--cpu-prof|--heap-prof] --import tsx tools/bench/profile-scan.ts [legacy|extended]
import { blewireScanner } from './scanner.bench.js';
import { ADVERTISERS, extendedCorpus, legacyCorpus } from './adv-corpus.js';
import { sampledAllocation } from './harness.js';
const ext = process.argv[2] === 'extended';
const corpus = ext ? extendedCorpus() : legacyCorpus();
const bw = await blewireScanner();
for (let i = 0; i < 8; i++) await bw.feed(corpus);
const batch = corpus.slice(0, ext ? ADVERTISERS : 2 * ADVERTISERS);
for (let i = 0; i < 3; i++) console.log('alloc per report of a known device', (await sampledAllocation(() => bw.feed(batch), batch.length)).toFixed(0));
bw.session.stop();
await bw.adapter.close();
