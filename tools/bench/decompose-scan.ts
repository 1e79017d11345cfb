// Profiling aid, not a bench: where the per-report time goes, blewire's layers cut at different depths, beside the floor
// (EXT=1: on the extended corpus).
//   node --expose-gc [V8 flags] --import tsx tools/bench/decompose-scan.ts   (PROFILE=host|scanner|session|read: a CPU profile to /tmp/perfprof/d.cpuprofile)
import { Adapter } from '../../src/api/adapter.js';
import { BenchTransport } from './scanner.bench.js';
import { interleave, machineLine, report, turn } from './harness.js';
import { legacyCorpus, extendedCorpus } from './adv-corpus.js';
import { advertisingFloor } from './floor.js';
console.log(machineLine());
const corpus = process.env.EXT ? extendedCorpus() : legacyCorpus();
const feeder = (feed: (p: Buffer) => void) => async (c: Buffer[]) => { for (let i = 0; i < c.length;) { const e = Math.min(c.length, i + 1000); for (; i < e; i++) feed(c[i]!); await turn(); } };
let sink = 0;
async function stack(mode: 'host' | 'scanner' | 'session' | 'read') {
  const t = new BenchTransport();
  const adapter = await Adapter.open({ transport: t, bonds: false });
  let n = 0;
  const host = (adapter as any).host ?? (adapter as any).hci;
  if (mode === 'host') {
    const s = adapter.scan({ duplicates: true, active: true }); await adapter.scanner.settle();
    s; host.onAdvertisingReports((p: Uint8Array, sub: number, count: number) => { n += count; });
  } else if (mode === 'scanner') {
    adapter.scan({ duplicates: true, active: true }).stop();
    const s = adapter.scan({ duplicates: true, active: true }); await adapter.scanner.settle();
    (adapter.scanner as any).sessionList = []; adapter.scanner.onAdvertisement(() => { n++; }); s;
  } else {
    adapter.scan({ duplicates: true, active: true, onAdvertisement: mode === 'read' ? ad => { sink += ad.rssi + ad.address.length + ad.timestamp + ad.data.length + (ad.name?.length ?? 0) + ad.manufacturerData.size; n++; } : () => { n++; } });
    await adapter.scanner.settle();
  }
  return { feed: feeder(p => t.receiver.packet(p)), delivered: () => n };
}
const h = await stack('host'), sc = await stack('scanner'), se = await stack('session'), rd = await stack('read');
const floor = advertisingFloor(f => feeder(f));
const res = await interleave([
  { name: 'host only (sink counts)', pass: () => h.feed(corpus), delivered: h.delivered },
  { name: 'scanner listener', pass: () => sc.feed(corpus), delivered: sc.delivered },
  { name: 'session, no reads', pass: () => se.feed(corpus), delivered: se.delivered },
  { name: 'session, some reads', pass: () => rd.feed(corpus), delivered: rd.delivered },
  { name: 'floor', pass: () => floor.feed(corpus), delivered: floor.delivered },
], corpus.length, 7);
report('decomposition', res, { floor: 'floor' });
if (sink === 0.5) console.log();
if (process.env.PROFILE) {
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const target = ({ host: h, scanner: sc, session: se, read: rd } as Record<string, typeof h>)[process.env.PROFILE]!;
  const s = new Session(); s.connect();
  await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 50 }); await s.post('Profiler.start');
  for (let i = 0; i < 10; i++) await target.feed(corpus);
  const { profile } = await s.post('Profiler.stop');
  (await import('node:fs')).mkdirSync('/tmp/perfprof', { recursive: true });
  writeFileSync('/tmp/perfprof/d.cpuprofile', JSON.stringify(profile));
}
