/**
 * Host-side RPA resolution (src/gap/privacy.ts), issue 9's figures:
 *   - AddressResolver with N bonded IRKs: the cost of an RPA never seen before (found foreign: ah is
 *     computed once per IRK, Vol 6, Part B, 1.3.2.3), of one that matches the last IRK tried, and of
 *     an RPA seen before (one Map lookup in the bounded cache);
 *   - the scanner's reports per second for 500 advertisers on RPAs (ADV_IND + SCAN_RSP, the same
 *     stream shape as scanner.bench.ts) with no resolver, and with 100 bonded IRKs, none of which
 *     makes these addresses (the worst case: every address is a stranger), steady state (cache warm).
 * Figures only, never pass/fail (ARCHITECTURE "Test tiers").
 */
import { loadavg } from 'node:os';
import { FakeClock } from '../../src/clock.js';
import { aes128Encryptor } from '../../src/platform/crypto.js';
import { AddressResolver, generateRpa } from '../../src/gap/privacy.js';
import { Scanner, type Advertisement } from '../../src/gap/scanner.js';
import { HciHost } from '../../src/hci/host.js';
import { encodeEvent } from '../../src/hci/packets.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';

let seed = 0x1d872b41;
const rand = (n: number): number => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rand(256));
const irks = (n: number): Uint8Array[] => Array.from({ length: n }, () => bytes(16));
const identity = (i: number): string => ['C0', 0, 0, (i >> 8) & 0xff, i & 0xff, 0x42].map(x => (typeof x === 'string' ? x : x.toString(16).padStart(2, '0').toUpperCase())).join(':');

function resolverWith(keys: Uint8Array[]): AddressResolver {
  const r = new AddressResolver();
  keys.forEach((peerIrk, i) => r.add({ identity: { type: 1, address: identity(i) }, peerIrk }));
  return r;
}

/** µs per resolve() of each address, best of 3 rounds; `fresh` gives each round a new resolver (no cache hit). */
function perCall(addresses: string[], resolver: () => AddressResolver): number {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const r = resolver();
    const t0 = performance.now();
    for (const a of addresses) r.resolve(a, 1);
    best = Math.min(best, ((performance.now() - t0) * 1000) / addresses.length);
  }
  return best;
}

/**
 * The same search on node:crypto (one reused AES-128-ECB context per IRK, one update() of one block
 * per try), the implementation the resolver used before platform/aes-table.ts: µs per foreign RPA.
 */
function nodeCryptoFigure(keys: Uint8Array[], count: number): number {
  const encs = keys.map(k => aes128Encryptor(Uint8Array.from(k).reverse()));
  const block = new Uint8Array(16);
  let best = Infinity, sink = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      block[13] = 0x40 | (i & 0x3f); block[14] = i >> 6; block[15] = i;
      for (const e of encs) sink += e(block)[15]!;
    }
    best = Math.min(best, ((performance.now() - t0) * 1000) / count);
  }
  if (sink === 0.5) console.log(sink);
  return best;
}

function resolverFigures(): void {
  const strangerIrk = bytes(16);
  for (const n of [1, 10, 100, 1000]) {
    const keys = irks(n);
    const count = n >= 1000 ? 500 : 4000;
    // Foreign: each address is new to the resolver, made with an IRK nobody bonded (all N tried).
    const foreign = Array.from({ length: count }, () => generateRpa(strangerIrk, bytes));
    const fresh = perCall(foreign, () => resolverWith(keys));
    // Matching the last IRK the search tries (the worst case for a bonded peer).
    const last = perCall(Array.from({ length: count }, () => generateRpa(keys[n - 1]!, bytes)), () => resolverWith(keys));
    // Seen before: the cache answers.
    const warm = resolverWith(keys);
    for (const a of foreign) warm.resolve(a, 1);
    const cached = perCall(foreign, () => warm);
    console.log(`resolver, ${String(n).padStart(4)} IRKs: new RPA (foreign) ${fresh.toFixed(2)} µs, new RPA of the last IRK ${last.toFixed(2)} µs, ` +
      `seen before ${cached.toFixed(3)} µs; node:crypto, same search: ${nodeCryptoFigure(keys, Math.min(count, 1000)).toFixed(2)} µs`);
  }
}

/** A transport that answers commands like a plain controller and hands packets to the host synchronously. */
class BenchTransport implements HciTransport {
  readonly description = 'bench';
  receiver!: TransportReceiver;
  setReceiver(r: TransportReceiver): void { this.receiver = r; }
  async close(): Promise<void> {}
  send(p: Uint8Array): void {
    const opcode = p[1]! | (p[2]! << 8);
    const ok = [0x0c03, 0x0c01, 0x2001, 0x200b, 0x200c, 0x2041, 0x2042];
    let evt: Uint8Array;
    if (opcode === 0x2002) evt = Uint8Array.of(0x04, 0x0e, 0x07, 0x01, 0x02, 0x20, 0x00, 0xfb, 0x00, 0x08);
    else if (ok.includes(opcode)) evt = Uint8Array.of(0x04, 0x0e, 0x04, 0x01, p[1]!, p[2]!, 0x00);
    else evt = Uint8Array.of(0x04, 0x0f, 0x04, 0x01, 0x01, p[1]!, p[2]!);
    queueMicrotask(() => this.receiver.packet(evt));
  }
}

function stream(addresses: string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const adv = Uint8Array.of(0x02, 0x01, 0x06, 0x05, 0x03, 0x0d, 0x18, 0x0f, 0x18, 0x07, 0x08, 0x53, 0x65, 0x6e, 0x73, 0x6f, 0x72);
  const rsp = Uint8Array.of(0x09, 0x09, 0x53, 0x65, 0x6e, 0x73, 0x6f, 0x72, 0x2d, 0x31);
  for (let round = 0; round < 20; round++) {
    for (const address of addresses) {
      const rssi = -40 - rand(50);
      out.push(encodeEvent({ kind: 'leAdvertisingReport', reports: [{ eventType: 0, addressType: 1, address, data: adv, rssi }] }));
      out.push(encodeEvent({ kind: 'leAdvertisingReport', reports: [{ eventType: 4, addressType: 1, address, data: rsp, rssi }] }));
    }
  }
  return out;
}

async function scannerRate(resolver: AddressResolver | undefined, packets: Uint8Array[]): Promise<number> {
  const t = new BenchTransport();
  const clock = new FakeClock();
  const host = new HciHost(t, { clock });
  await host.init();
  const scanner = new Scanner(host, { clock, ...(resolver ? { resolve: (bits: number, ty: number, a: string) => resolver.resolveValue(bits, ty, a),
    resolverGeneration: () => resolver.generation } : {}) });
  let sink = 0;
  const session = scanner.scan({ duplicates: true, active: true, onAdvertisement: (ad: Advertisement) => {
    sink += ad.rssi + ad.address.length + (ad.identity ? 1 : 0);
  } });
  await scanner.settle();
  for (const p of packets) t.receiver.packet(p); // warm-up (the resolver's cache fills)
  let best = 0;
  for (let r = 0; r < 3; r++) {
    let n = 0;
    const t0 = performance.now();
    let now = t0;
    while (now - t0 < 700) {
      for (const p of packets) t.receiver.packet(p);
      n += packets.length;
      now = performance.now();
    }
    best = Math.max(best, n / ((now - t0) / 1000));
  }
  session.stop();
  if (sink === 0.5) console.log(sink);
  return best;
}

export async function bench(): Promise<void> {
  const load = (): string => loadavg().map(x => x.toFixed(2)).join(' ');
  console.log(`load average at start: ${load()}`);
  resolverFigures();
  const strangerIrk = bytes(16);
  const packets = stream(Array.from({ length: 500 }, () => generateRpa(strangerIrk, bytes)));
  // Interleaved rounds, each side's best: a busy machine slows both alike.
  let none = 0, with100 = 0;
  const bonded = resolverWith(irks(100));
  for (let i = 0; i < 3; i++) {
    none = Math.max(none, await scannerRate(undefined, packets));
    with100 = Math.max(with100, await scannerRate(bonded, packets));
  }
  console.log(`resolver stats after the scanner runs: ${JSON.stringify(bonded.stats)}`);
  const fmt = (x: number): string => `${(x / 1e6).toFixed(2)} M reports/s`;
  console.log(`scanner, 500 advertisers on RPAs, ADV_IND + SCAN_RSP: no bonds ${fmt(none)}, 100 bonded IRKs (all strangers, cache warm) ` +
    `${fmt(with100)}; ratio 100 IRKs / none: ${(with100 / none).toFixed(2)} (issue 9 target: at least 0.80)`);
  console.log(`load average at end: ${load()}`);
}
