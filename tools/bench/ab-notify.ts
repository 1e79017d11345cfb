// A/B, not a bench: this tree's notification receive path against another tree's (argv[2]: a copy of main made with git
// archive, node_modules linked), 20-byte notifications at ATT_MTU 23 (notify.bench.ts's corpus), interleaved round by round.
// argv[3] 'stream' (default): as an H4 byte stream (unix socket, TCP, UART: StreamTransport), reads of 1000 packets each
// framed by each tree's own H4Framer, with a hand-written floor that frames and views in one loop (floor.ts); 'packets': one Buffer per
// packet (the user channel; what notify.bench.ts feeds), with floor.ts's notificationFloor. Median speed-up and rounds.
// nice -n 5 node --expose-gc --import tsx tools/bench/ab-notify.ts /tmp/base [stream|packets]
import { pathToFileURL } from 'node:url';
import { interleave, machineLine, report, turn } from './harness.js';
import { notificationFloor, notificationStreamFloor } from './floor.js';
import { blewireSetup, bulkValue, heartRateValue, stream } from './notify.bench.js';
import { H4Framer } from '../../src/transport/h4-framer.js';
const base = process.argv[2]!;
const other = await import(pathToFileURL(base + '/tools/bench/notify.bench.ts').href) as typeof import('./notify.bench.js');
const OtherFramer = (await import(pathToFileURL(base + '/src/transport/h4-framer.ts').href) as typeof import('../../src/transport/h4-framer.js')).H4Framer;
const mode = process.argv[3] ?? 'stream';
console.log(machineLine(), mode);
// SIZE=244: 244-byte values at ATT_MTU 247 in 10 packets each (notify.bench.ts's second corpus), 20,000 of them; packets mode only.
const big = process.env.SIZE === '244';
if (big && mode === 'stream') throw new Error('SIZE=244 needs packets mode (the stream floor takes no fragments)');
const a = await blewireSetup(big ? 247 : 23), b = await other.blewireSetup(big ? 247 : 23);
// A tree whose notify bench wires its own stream path (framer → ReceiverSlot → host, as StreamTransport does) is fed
// through it; an older tree through its framer straight into the host's packet().
const pushOf = (x: { feed: (p: Buffer) => void; push?: (c: Uint8Array) => void }, F: typeof H4Framer): ((c: Uint8Array) => void) => {
  if (x.push) return x.push;
  const f = new F({ packet: p => x.feed(p as Buffer), error: fail });
  return c => f.push(c);
};
const COUNT = big ? 20_000 : 100_000;
const s = stream('ab', a.handle, a.valueHandle, big ? () => bulkValue(244) : heartRateValue, COUNT);
const flat = s.perNotification.flat();
const PER = 1000;
const reads: Buffer[] = [];
for (let i = 0; i < flat.length; i += PER) reads.push(Buffer.concat(flat.slice(i, i + PER)));
const fail = (e: Error): never => { throw e; };
const viaStream = (push: (c: Uint8Array) => void) => async (): Promise<void> => {
  for (const r of reads) { push(r); await turn(); }
};
const viaPackets = (feed: (p: Buffer) => void) => async (): Promise<void> => {
  for (let i = 0; i < flat.length;) { const e = Math.min(flat.length, i + PER); for (; i < e; i++) feed(flat[i]!); await turn(); }
};
let sink = 0, fl = 0;
const cb = (v: Uint8Array): void => { sink += v[v.length - 1]!; fl++; };
const handle = a.valueHandle;
const sf = notificationStreamFloor(handle, cb);
const streamFloor = async (): Promise<void> => { for (const c of reads) { sf(c); await turn(); } };
const res = await interleave(mode === 'stream' ? [
  { name: 'new', pass: viaStream(pushOf(a, H4Framer)), delivered: a.count },
  { name: 'base', pass: viaStream(pushOf(b as typeof a, OtherFramer)), delivered: b.count },
  { name: 'floor', pass: streamFloor, delivered: () => fl },
] : [
  { name: 'new', pass: viaPackets(a.feed), delivered: a.count },
  { name: 'base', pass: viaPackets(b.feed), delivered: b.count },
  { name: 'floor', pass: viaPackets(notificationFloor(handle, cb)), delivered: () => fl },
], COUNT, Number(process.env.ROUNDS ?? 9));
report(`A/B, ${big ? 244 : 20}-byte notifications`, res, { floor: 'floor', versus: ['base'] });
const r = res[0]!.samples.map((x, i) => res[1]!.samples[i]! / x).sort((x, y) => x - y);
console.log(`  new/base speed-up median ${r[r.length >> 1]!.toFixed(3)} (rounds ${r.map(x => x.toFixed(2)).join(' ')})`);
if (sink === 0.5) console.log('');
await a.adapter.close(); await b.adapter.close();
