/**
 * Measures btvirt as a peer (the figures in tools/interop/README.md): start time, command round trip,
 * ACL latency and throughput with the 1-packet credit honoured, address slots, and the one-shot
 * advertising report rule. Raw HCI through RawHciPeer; btvirt is stopped by PID at the end.
 *
 *   npx tsx tools/interop/measure-btvirt.ts [--commands N] [--acl N]
 */
import { EVT_LE_META, RawHciPeer, startBtvirt, type Btvirt, type H4Packet } from '../../test/interop/helpers/btvirt.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const COMMANDS = option('--commands', 2000);
const ACL_PACKETS = option('--acl', 2000);

const OP_RESET = 0x0c03; // Vol 4, Part E, 7.3.2
const OP_READ_BD_ADDR = 0x1009; // 7.4.6
const OP_LE_SET_ADV_PARAMS = 0x2006; // 7.8.5
const OP_LE_SET_ADV_ENABLE = 0x200a; // 7.8.9
const OP_LE_SET_SCAN_PARAMS = 0x200b; // 7.8.10
const OP_LE_SET_SCAN_ENABLE = 0x200c; // 7.8.11
const OP_LE_CREATE_CONN = 0x200d; // 7.8.12
const OP_LE_RAND = 0x2018; // 7.8.23
const EVT_NOCP = 0x13; // 7.7.19

const hex = (s: string): number[] => s.replace(/\s+/g, '').match(/../g)!.map((b) => parseInt(b, 16));
const addrOf = (le: Buffer): string =>
  Array.from(le).reverse().map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');

function summary(samples: number[]): string {
  const s = [...samples].sort((x, y) => x - y);
  const q = (p: number): string => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(3);
  return `p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${s[s.length - 1]!.toFixed(3)} ms (n=${s.length})`;
}

async function fresh(socket: string, name: string): Promise<RawHciPeer> {
  const peer = await RawHciPeer.connect(socket, name);
  await peer.ok(OP_RESET);
  return peer;
}

async function main(): Promise<void> {
  const starts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const b = await startBtvirt();
    starts.push(performance.now() - t0);
    await b.stop();
  }
  console.log(`start (btvirt.sh start, until both sockets answer Reset): ${summary(starts)}`);

  const btvirt: Btvirt = await startBtvirt();
  try {
    const a = await fresh(btvirt.leSocket, 'A');
    const b = await fresh(btvirt.leSocket, 'B');

    const rtt: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < COMMANDS; i++) rtt.push((await a.command(OP_LE_RAND)).ms);
    console.log(`command round trip (LE Rand, 1 outstanding): ${summary(rtt)}; ` +
      `${(COMMANDS / ((performance.now() - t0) / 1000)).toFixed(0)} commands/s`);

    // Slots: which address does a controller get after another one disconnected?
    const slots: string[] = [addrOf(await a.ok(OP_READ_BD_ADDR)), addrOf(await b.ok(OP_READ_BD_ADDR))];
    const c = await fresh(btvirt.leSocket, 'C');
    slots.push(addrOf(await c.ok(OP_READ_BD_ADDR)));
    c.close();
    const d = await fresh(btvirt.leSocket, 'D');
    slots.push(addrOf(await d.ok(OP_READ_BD_ADDR)));
    const e = await fresh(btvirt.bredrleSocket, 'E');
    slots.push(addrOf(await e.ok(OP_READ_BD_ADDR)));
    console.log(`addresses: A ${slots[0]}, B ${slots[1]}, C ${slots[2]} (closed), then D ${slots[3]}, ` +
      `E on bredrle ${slots[4]}`);
    d.close();
    e.close();

    // One-shot reports: scanning first, advertising enabled afterwards.
    const isReport = (p: H4Packet): boolean => p.type === 'event' && p.code === EVT_LE_META && p.params[0] === 0x02;
    await a.ok(OP_LE_SET_SCAN_PARAMS, hex('00 1000 1000 00 00'));
    await a.ok(OP_LE_SET_SCAN_ENABLE, hex('01 00'));
    await b.ok(OP_LE_SET_ADV_PARAMS, hex('a000 a000 00 00 00 000000000000 07 00'));
    await b.ok(OP_LE_SET_ADV_ENABLE, [1]);
    const late = await a.next(isReport, 500).then(() => 'yes', () => 'no (within 500 ms)');
    console.log(`report when advertising starts after scanning: ${late}`);
    await a.ok(OP_LE_SET_SCAN_ENABLE, hex('00 00'));
    await a.ok(OP_LE_SET_SCAN_ENABLE, hex('01 00'));
    const toggled = await a.next(isReport, 500).then(() => 'yes', () => 'no (within 500 ms)');
    console.log(`report after toggling scan off and on: ${toggled}`);
    await a.ok(OP_LE_SET_SCAN_ENABLE, hex('00 00'));

    const peer = Buffer.from(slots[1]!.split(':').reverse().map((x) => parseInt(x, 16)));
    await a.command(OP_LE_CREATE_CONN, [...hex('1000 1000 00 00'), ...peer, ...hex('00 1800 2800 0000 f401 0000 0000')]);
    const ccA = await a.nextLeMeta(0x01);
    const ccB = await b.nextLeMeta(0x01);
    const hA = ccA.params.readUInt16LE(2);
    const hB = ccB.params.readUInt16LE(2);

    // ACL with the 1-packet credit honoured: send, wait for B to get it and for A's NOCP, repeat.
    const oneWay: number[] = [];
    const payload = new Array(187).fill(0x5a); // 4-octet L2CAP header + 187 = 191 <= 192-octet buffer
    const frame = [payload.length & 0xff, payload.length >> 8, 0x40, 0x00, ...payload]; // CID 0x0040
    let t1 = performance.now();
    for (let i = 0; i < ACL_PACKETS; i++) {
      const sent = performance.now();
      a.writeAcl(hA, 0b00, frame);
      const got = await b.next((p) => p.type === 'acl');
      await a.next((p) => p.type === 'event' && p.code === EVT_NOCP);
      oneWay.push(got.atMs - sent);
    }
    const rate = ACL_PACKETS / ((performance.now() - t1) / 1000);
    console.log(`ACL A→B one way (${frame.length}-octet packets): ${summary(oneWay)}; ${rate.toFixed(0)} packets/s ` +
      `(${((rate * frame.length) / 1e6).toFixed(2)} MB/s)`);

    const roundTrip: number[] = [];
    t1 = performance.now();
    for (let i = 0; i < ACL_PACKETS; i++) {
      const sent = performance.now();
      a.writeAcl(hA, 0b00, hex('0100 4000 01'));
      await b.next((p) => p.type === 'acl');
      await a.next((p) => p.type === 'event' && p.code === EVT_NOCP);
      b.writeAcl(hB, 0b00, hex('0100 4000 02'));
      await a.next((p) => p.type === 'acl');
      await b.next((p) => p.type === 'event' && p.code === EVT_NOCP);
      roundTrip.push(performance.now() - sent);
    }
    console.log(`ACL round trip A→B→A (incl. both NOCP): ${summary(roundTrip)}`);
    a.close();
    b.close();
  } finally {
    await btvirt.stop();
  }
}

await main();
