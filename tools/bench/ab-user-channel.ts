// A/B, not a bench: the HCI user channel's transport (src/transport/user-channel.ts) with a socket module whose reads it
// copies (one not read: a fresh ArrayBuffer per packet) against one whose reads it passes up as they are (the two
// modules read to emit a fresh Buffer per read), each as a fake socket emitting notify.bench.ts's 20-byte corpus,
// one Buffer per packet, into a real HciHost → L2capLink → an ATT receiver making the value's view as the bearer
// does. Interleaved round by round (harness.ts), CPU per notification.
//   nice -n 5 node --expose-gc --import tsx tools/bench/ab-user-channel.ts
import { EventEmitter } from 'node:events';
import { interleave, machineLine, report } from './harness.js';
import { chunked, heartRateValue, stream } from './notify.bench.js';
import { openUserChannel } from '../../src/transport/user-channel.js';
import { HciHost } from '../../src/hci/host.js';
import { L2capLink } from '../../src/l2cap/link.js';
import { systemClock } from '../../src/clock.js';
let sink = 0;
async function path(name: string) {
  let sock!: EventEmitter;
  const t = await openUserChannel(0, { loadModule: async () => ({ name, create: () => (sock = Object.assign(new EventEmitter(), { bindUser() { return 0; }, start() {}, stop() {}, write() {} })) as never }) });
  const host = new HciHost(t);
  const link = new L2capLink({ sendAcl: async () => {}, aclDataLength: 27 }, 0x40, { clock: systemClock, role: 'central' });
  host.attachLink(0x40, link);
  let n = 0;
  link.att.setReceiver({ data() {}, closed() {}, dataAt(b, st, e, buffer, base = 0) {
    if (buffer === undefined) { buffer = b.buffer; base = buffer.byteLength === b.length ? 0 : b.byteOffset; }
    const v = new Uint8Array(buffer, base + st + 3, e - st - 3); sink += v[v.length - 1]!; n++;
  } });
  return { feed: (p: Buffer) => { sock.emit('data', p); }, count: () => n };
}
const copy = await path('@someone-else/bluetooth-hci-socket'), pass = await path('@stoprocent/bluetooth-hci-socket');
const s = stream('uc', 0x40, 0x2a, heartRateValue, 100_000);
const res = await interleave([
  { name: 'passed up', pass: chunked(pass.feed, s), delivered: pass.count },
  { name: 'copied', pass: chunked(copy.feed, s), delivered: copy.count },
], 100_000, Number(process.env.ROUNDS ?? 9));
console.log(machineLine());
report('user channel, 20-byte notifications, socket emit → transport → host → L2CAP → value view', res, { versus: ['copied'] });
const r = res[0]!.samples.map((x, i) => res[1]!.samples[i]! / x).sort((x, y) => x - y);
console.log(`  passed/copied speed-up median ${r[r.length >> 1]!.toFixed(3)} (rounds ${r.map(x => x.toFixed(2)).join(' ')})`);
if (sink === 0.5) console.log('');
