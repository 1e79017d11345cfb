// Profiling helper, not a bench: node --expose-gc [--cpu-prof|--heap-prof] --import tsx tools/bench/profile-notify.ts [20|244] [callback|batches [perTurn]]
// (PASSES=n for more passes; DIRECT=1 reads subscription.batches() instead of notificationBatches())
// Sets up the notify bench's connection and feeds its stream to blewire alone, so a profile shows the
// receive path (ACL → L2CAP → ATT → GATT → subscriber) without noble in it; the floor's passes interleave.
import { blewireSetup, bulkValue, chunked, heartRateValue, iteratorPass, stream } from './notify.bench.js';
import { allocation, cpuMicros, turn } from './harness.js';
import { notificationFloor } from './floor.js';
const big = process.argv[2] === '244';
const mode = process.argv[3] ?? 'callback';
const bw = await blewireSetup(big ? 247 : 23);
const s = stream('profile', bw.handle, bw.valueHandle, big ? () => bulkValue(244) : heartRateValue, big ? 20_000 : 100_000);
// The floor's passes interleaved with blewire's (floor.ts), so a pass can be read against it under load.
let floorCount = 0;
const floor = chunked(notificationFloor(bw.valueHandle, v => { floorCount += v[v.length - 1]! === 256 ? 2 : 1; }), s);
if (mode === 'batches') {
  await bw.sub.unsubscribe();
  const perTurn = Number(process.argv[4] ?? 256);
  const ip = iteratorPass(bw.feed, (process.env.DIRECT ? (await bw.ch.subscribe()).batches() : bw.ch.notificationBatches()[Symbol.asyncIterator]()), s, perTurn);
  await turn();
  for (let i = 0; i < Number(process.env.PASSES ?? 20); i++) {
    let t = cpuMicros();
    await ip.pass();
    const ns = (cpuMicros() - t) * 1000 / s.perNotification.length;
    t = cpuMicros();
    await floor();
    const fl = (cpuMicros() - t) * 1000 / s.perNotification.length;
    console.log(`pass ${i}: ${ns.toFixed(0)} ns per value, floor ${fl.toFixed(0)} ns, ${(ns / fl).toFixed(2)}× floor (${perTurn} per turn)`);
  }
  await ip.stop();
} else {
  const pass = chunked(bw.feed, s);
  for (let i = 0; i < Number(process.env.PASSES ?? 20); i++) {
    let t = cpuMicros();
    await pass();
    const ns = (cpuMicros() - t) * 1000 / s.perNotification.length;
    t = cpuMicros();
    await floor();
    const fl = (cpuMicros() - t) * 1000 / s.perNotification.length;
    console.log(`pass ${i}: ${ns.toFixed(0)} ns per value, floor ${fl.toFixed(0)} ns, ${(ns / fl).toFixed(2)}× floor`);
  }
  if (floorCount === 0) console.log('');
  const batch = { ...s, perNotification: s.perNotification.slice(0, 1000) };
  console.log('alloc per value', (await allocation(chunked(bw.feed, batch), 1000))?.toFixed(0), 'B');
  await bw.sub.unsubscribe();
}
await bw.adapter.close();
