// Profiling aid, not a bench: what a 20-byte notification costs, piece by piece, on the notify bench's
// own corpus (100k prebuilt controller packets, one Buffer each, fed in chunks of 1000 with a turn
// between, as notify.bench.ts feeds them). Variants interleaved round by round (harness.ts), CPU per value:
//   walk (bench feed)      - the bench's feed loop (a list of packets per notification) touching the last octet
//   walk (flat list)       - the same packets from one flat list: what the per-notification lists cost
//   headers                - plus the ACL / L2CAP / ATT headers read and checked in place
//   view                   - plus one Uint8Array view of the value: new Uint8Array(p.buffer, p.byteOffset + 12, n)
//   view, no byteOffset    - the same without reading byteOffset (valid here only: the corpus's packets
//                            start their buffers): what that one getter costs
//   view, byteLength       - the view with byteOffset read only when the packet does not span its buffer
//                            (what blewire's bearer and floor.ts do; valid for any packet)
//   subarray               - the view made by Buffer's subarray instead
//   copy                   - a fresh Uint8Array of the value's length, octets copied (no view)
//   floor                  - floor.ts's notificationFloor (headers, the view, a callback)
//   blewire                - the notify bench's subscriber (subscribe(callback)), the whole receive path
//   node --expose-gc --import tsx tools/bench/decompose-notify.ts
import { blewireSetup, chunked, heartRateValue, stream, type Feed } from './notify.bench.js';
import { interleave, machineLine, report, turn } from './harness.js';
import { notificationFloor } from './floor.js';

const bw = await blewireSetup(23);
const s = stream('decompose', bw.handle, bw.valueHandle, heartRateValue, 100_000);
const flat = s.perNotification.flat();
const flatPass = (f: Feed) => async (): Promise<void> => {
  for (let i = 0; i < flat.length;) {
    const e = Math.min(flat.length, i + 1000);
    for (; i < e; i++) f(flat[i]!);
    await turn();
  }
};
const handle = bw.valueHandle;
let sink = 0;
/** The notification's headers as the floor checks them: a complete B-frame on CID 4 holding an ATT_HANDLE_VALUE_NTF of our handle. */
const ours = (p: Buffer): boolean => {
  const n = p[3]! | (p[4]! << 8);
  return ((p[2]! >> 4) & 3) !== 1 && n - 4 === (p[5]! | (p[6]! << 8)) && p[7] === 4 && p[8] === 0 && p[9] === 0x1b &&
    (p[10]! | (p[11]! << 8)) === handle;
};
const counted = (name: string, f: (p: Buffer) => boolean, pass: (f: Feed) => () => Promise<void> = flatPass) => {
  let n = 0;
  return { name, pass: pass(p => { if (f(p)) n++; }), delivered: () => n, unit: 'values' };
};
let fl = 0;
const floor = notificationFloor(handle, v => { sink += v[v.length - 1]!; fl++; });
const results = await interleave([
  counted('walk (bench feed)', p => { sink += p[p.length - 1]!; return true; }, f => chunked(f, s)),
  counted('walk (flat list)', p => { sink += p[p.length - 1]!; return true; }),
  counted('headers', p => { if (!ours(p)) return false; sink += p[p.length - 1]!; return true; }),
  counted('view', p => {
    if (!ours(p)) return false;
    const v = new Uint8Array(p.buffer, p.byteOffset + 12, p.length - 12); sink += v[v.length - 1]!; return true;
  }),
  counted('view, no byteOffset', p => {
    if (!ours(p)) return false;
    const v = new Uint8Array(p.buffer, 12, p.length - 12); sink += v[v.length - 1]!; return true;
  }),
  counted('view, byteLength', p => {
    if (!ours(p)) return false;
    const ab = p.buffer, v = new Uint8Array(ab, (ab.byteLength === p.length ? 0 : p.byteOffset) + 12, p.length - 12);
    sink += v[v.length - 1]!; return true;
  }),
  counted('subarray', p => { if (!ours(p)) return false; const v = p.subarray(12); sink += v[v.length - 1]!; return true; }),
  counted('copy', p => {
    if (!ours(p)) return false;
    const m = p.length - 12, v = new Uint8Array(m);
    for (let i = 0; i < m; i++) v[i] = p[12 + i]!;
    sink += v[m - 1]!; return true;
  }),
  { name: 'floor', pass: flatPass(floor), delivered: () => fl, unit: 'values' },
  { name: 'blewire', pass: flatPass(bw.feed), delivered: bw.count, unit: 'values' },
], 100_000, Number(process.env.ROUNDS ?? 9));
console.log(machineLine());
report('20-byte notifications, decomposed (flat list unless said)', results, { floor: 'floor' });
if (sink === 0.5) console.log('');
await bw.adapter.close();
