// Profiling aid, not a bench: what a 20-byte notification costs on the H4 byte-stream path, layer by layer
// (notify.bench.ts's stream corpus: 100k notifications in reads of 1000 packets, a turn between reads).
// Variants interleaved round by round (harness.ts), CPU per value:
//   floor            - floor.ts's stream floor (frames and makes the value's view in one loop)
//   framer           - H4Framer to a sink whose packetAt only counts
//   + host           - H4Framer → ReceiverSlot → HciHost, to an AclReceiver whose aclAt only counts
//   + l2cap, no view - … → L2capLink, to an ATT receiver whose dataAt reads the value's first octet
//   + l2cap          - … → L2capLink, to an ATT receiver whose dataAt makes the value's view and calls back
//   blewire          - the whole path (… → AttBearer → GattClient → subscribe(callback))
// MODE=packets: the same layers fed one Buffer per packet (the user channel; what notify.bench.ts's first rows feed),
// with floor.ts's notificationFloor and no framer row.
//   [MODE=packets] node --expose-gc --import tsx tools/bench/decompose-notify-stream.ts
import { blewireSetup, chunked, heartRateValue, readPass, stream, streamReads } from './notify.bench.js';
import { interleave, machineLine, report } from './harness.js';
import { notificationFloor, notificationStreamFloor } from './floor.js';
import { H4Framer } from '../../src/transport/h4-framer.js';
import { ReceiverSlot } from '../../src/transport/receiver-slot.js';
import { HciHost } from '../../src/hci/host.js';
import { L2capLink } from '../../src/l2cap/link.js';
import { systemClock } from '../../src/clock.js';
import type { TransportReceiver } from '../../src/transport/types.js';

const bw = await blewireSetup(23);
const s = stream('decompose', bw.handle, bw.valueHandle, heartRateValue, 100_000);
const reads = streamReads(s);
let sink = 0;
const fail = (e: Error): never => { throw e; };
/** A host on a transport that only keeps its receiver; the stream framed into it as StreamTransport does. */
const packets = process.env.MODE === 'packets';
const hostPath = () => {
  let rx!: TransportReceiver;
  const host = new HciHost({ description: 'decompose', send() {}, setReceiver(r) { rx = r; }, close: async () => {} });
  const slot = new ReceiverSlot();
  slot.set(rx);
  const framer = new H4Framer({ packet: p => slot.packet(p), packetAt: (b, st, e, buf, base) => slot.packetAt(b, st, e, buf, base), error: fail });
  return { host, push: (c: Uint8Array) => framer.push(c), feed: (p: Buffer) => slot.packet(p) };
};
/** A pass over the corpus into a host path: reads through its framer, or (MODE=packets) packets into its slot. */
const passOf = (x: { push: (c: Uint8Array) => void; feed: (p: Buffer) => void }) => packets ? chunked(x.feed, s) : readPass(x.push, reads);
let nFramer = 0;
const framer = new H4Framer({ packet: () => { nFramer++; }, packetAt: (b, st) => { sink += b[st + 1]!; nFramer++; }, error: fail });
let nHost = 0;
const h1 = hostPath();
h1.host.attachLink(bw.handle, { acl() {}, aclAt(_pb, p, st) { sink += p[st]!; nHost++; } });
let nL2 = 0;
const h2 = hostPath();
const link = new L2capLink({ sendAcl: async () => {}, aclDataLength: 27 }, bw.handle, { clock: systemClock, role: 'central' });
h2.host.attachLink(bw.handle, link);
link.att.setReceiver({
  data() {}, closed() {},
  dataAt(b, st, e, buffer, base = 0) {
    if (buffer === undefined) { buffer = b.buffer; base = buffer.byteLength === b.length ? 0 : b.byteOffset; }
    const v = new Uint8Array(buffer, base + st + 3, e - st - 3);
    sink += v[v.length - 1]!; nL2++;
  },
});
let nL2b = 0;
const h3 = hostPath();
const link3 = new L2capLink({ sendAcl: async () => {}, aclDataLength: 27 }, bw.handle, { clock: systemClock, role: 'central' });
h3.host.attachLink(bw.handle, link3);
link3.att.setReceiver({ data() {}, closed() {}, dataAt(b, st) { sink += b[st + 3]!; nL2b++; } });
let fl = 0;
const results = await interleave([
  packets
    ? { name: 'floor', pass: chunked(notificationFloor(bw.valueHandle, v => { sink += v[v.length - 1]!; fl++; }), s), delivered: () => fl, unit: 'values' }
    : { name: 'floor', pass: readPass(notificationStreamFloor(bw.valueHandle, v => { sink += v[v.length - 1]!; fl++; }), reads), delivered: () => fl, unit: 'values' },
  ...(packets ? [] : [{ name: 'framer', pass: readPass(c => framer.push(c), reads), delivered: () => nFramer, unit: 'packets' }]),
  { name: '+ host', pass: passOf(h1), delivered: () => nHost, unit: 'packets' },
  { name: '+ l2cap, no view', pass: passOf(h3), delivered: () => nL2b, unit: 'values' },
  { name: '+ l2cap', pass: passOf(h2), delivered: () => nL2, unit: 'values' },
  { name: 'blewire', pass: packets ? chunked(bw.feed, s) : readPass(bw.push, reads), delivered: bw.count, unit: 'values' },
], 100_000, Number(process.env.ROUNDS ?? 9));
console.log(machineLine());
report(`20-byte notifications ${packets ? 'one packet per read (user channel)' : 'over an H4 byte stream'}, decomposed`, results, { floor: 'floor' });
if (sink === 0.5) console.log('');
await bw.adapter.close();
