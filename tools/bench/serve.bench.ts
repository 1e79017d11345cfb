/**
 * Notifications served by our GATT server (adapter.serve + server.notify, Core Vol 3, Part F,
 * 3.4.7.1) to 1 and to 8 subscribed centrals on the simulator, against the controller's ACL credit
 * capacity on the same links. Issue 10's target: ≥ 95 % of the capacity used.
 *
 * The links: one blewire peripheral (the server) and N blewire centrals on one simulated air
 * (src/sim/air.ts), 7.5 ms connection interval, data length 251 on both sides of every link, the
 * simulator's controllers with 8 ACL buffers of 251 octets (the peripheral's 8 are shared by its N
 * links). Time is the simulator's: the figures are what the air model and the controller's buffers
 * let through per simulated second; the fraction says how much of it the server uses.
 *
 * 1. Capacity: the peripheral's host keeps every ACL buffer (credit) of its controller filled with
 *    packets the size of one notification (an L2CAP frame on an unassigned CID, which the centrals
 *    count and drop), two senders per link so that every link always has one waiting, for 3
 *    simulated seconds: ACL packets completed per second.
 * 2. The server: the application loop an app would write, `for (;;) await server.notify(uuid, value)`
 *    with a new value each time, every central subscribed (its CCCD written by `subscribe()`);
 *    notifications the centrals' subscribers received per second, over 3 simulated seconds after a
 *    warm-up, and that ÷ the capacity (one notification is one ACL packet in both shapes here).
 * Shapes: 20-octet values at ATT_MTU 23 (27-octet ACL packets) and 244-octet values at ATT_MTU 247
 * (251-octet packets). Also printed: the wall-clock time of each window (the host and the simulator
 * together), as a cost figure. A notification lost on the way makes the bench throw.
 *
 *   npm run bench -- serve
 */
import { fileURLToPath } from 'node:url';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { createSimulator, SimAir, type Simulator } from '../../src/sim/index.js';

const INTERVAL_MS = 7.5;
const WINDOW_MS = 3000;
const WARMUP_MS = 300;
const SERVICE = 0xfff0;
const VALUE = 0xfff1;
/** A CID no channel uses (0x0007–0x003F are reserved, Vol 3, Part A, 2.1): the receiver drops what comes on it. */
const UNASSIGNED_CID = 0x003f;

async function setup(centrals: number, mtu: number, valueSize: number) {
  const air = new SimAir();
  const sims: Simulator[] = [];
  const ps = createSimulator({ name: 'server', peripherals: [] }, { air });
  sims.push(ps);
  const peripheral = await Adapter.open({ transport: ps.transport, bonds: false });
  const server = await peripheral.serve([{ uuid: SERVICE, characteristics: [
    { uuid: VALUE, properties: ['read', 'notify'], value: new Uint8Array(valueSize) },
  ] }]);
  const adapters: Adapter[] = [];
  const incoming: Connection[] = [];
  let received = 0;
  let receivedOctets = 0;
  const accepted = peripheral.accept();
  await peripheral.advertise({ name: 'bench' });
  for (let i = 0; i < centrals; i++) {
    const cs = createSimulator({ name: `central-${i}`, peripherals: [] }, { air });
    sims.push(cs);
    const central = await Adapter.open({ transport: cs.transport, bonds: false, mtu });
    adapters.push(central);
    const ad = await central.find({ name: 'bench', timeout: 5000 });
    if (!ad) throw new Error('bench: the server was not found');
    const conn = await central.connect(ad, { intervalMin: INTERVAL_MS, intervalMax: INTERVAL_MS });
    const inc = (await accepted.next()).value as Connection;
    incoming.push(inc);
    // The simulator carries a data length update on one side of the air only: the server asks too.
    await inc.setDataLength();
    const ch = await conn.characteristic(SERVICE, VALUE); // exchanges the MTU first
    if (conn.mtu !== mtu) throw new Error(`bench: ATT_MTU ${conn.mtu}, expected ${mtu}`);
    await ch.subscribe(v => { received++; receivedOctets += v.length; });
  }
  await accepted.return!();
  if (server.subscribers(VALUE).length !== centrals) throw new Error(`bench: ${server.subscribers(VALUE).length} subscribers, expected ${centrals}`);
  await air.clock.delay(50);
  const close = async (): Promise<void> => {
    for (const a of adapters) await a.close();
    await peripheral.close();
  };
  const dropped = (): number => {
    let n = 0;
    for (const sim of sims) for (const sl of sim.controller.links.values()) n += sl.stats.peerFramesDropped;
    return n;
  };
  return { air, peripheral, server, incoming, counts: () => ({ received, receivedOctets }), close, dropped };
}

/** ACL packets of `len` octets completed per simulated second with every controller buffer kept full. */
async function capacity(centrals: number, mtu: number, valueSize: number, len: number): Promise<number> {
  const s = await setup(centrals, mtu, valueSize);
  const host = s.peripheral.host;
  let sent = 0;
  let running = true;
  const senders = s.incoming.flatMap(conn => {
    const packet = new Uint8Array(5 + len);
    packet[0] = 0x02;
    packet[1] = conn.handle & 0xff;
    packet[2] = (conn.handle >> 8) & 0x0f;
    packet[3] = len & 0xff;
    packet[4] = len >> 8;
    packet[5] = (len - 4) & 0xff;
    packet[6] = (len - 4) >> 8;
    packet[7] = UNASSIGNED_CID;
    return [0, 1].map(async () => {
      while (running) {
        await host.sendAcl(conn.handle, [packet]);
        sent++;
      }
    });
  });
  await s.air.clock.delay(WARMUP_MS);
  const s0 = sent;
  const t0 = s.air.clock.now();
  await s.air.clock.delay(WINDOW_MS);
  const rate = (sent - s0) / ((s.air.clock.now() - t0) / 1000);
  running = false;
  await Promise.all(senders);
  await s.close();
  return rate;
}

async function served(centrals: number, mtu: number, valueSize: number): Promise<{ perS: number; wallMs: number; octetsPerS: number }> {
  const s = await setup(centrals, mtu, valueSize);
  let running = true;
  let notified = 0;
  const value = new Uint8Array(valueSize);
  const app = (async () => {
    while (running) {
      value[0] = (value[0]! + 1) & 0xff;
      notified += await s.server.notify(VALUE, value);
    }
  })();
  await s.air.clock.delay(WARMUP_MS);
  const c0 = s.counts();
  const t0 = s.air.clock.now();
  const w0 = performance.now();
  await s.air.clock.delay(WINDOW_MS);
  const c1 = s.counts();
  const sec = (s.air.clock.now() - t0) / 1000;
  const wallMs = performance.now() - w0;
  running = false;
  await app;
  // Everything handed to the controllers arrives: let the links drain, then count.
  await s.air.clock.delay(200);
  if (s.counts().received !== notified) throw new Error(`bench: ${notified} notifications sent, ${s.counts().received} received`);
  if (s.dropped() !== 0) throw new Error(`bench: the simulator dropped ${s.dropped()} frames`);
  await s.close();
  return { perS: (c1.received - c0.received) / sec, octetsPerS: (c1.receivedOctets - c0.receivedOctets) / sec, wallMs };
}

export async function bench(): Promise<void> {
  console.log(`notifications served (adapter.serve + notify), simulated time (${INTERVAL_MS} ms interval, data length 251, ` +
    `8 ACL buffers in the server's controller; ${WINDOW_MS / 1000} s windows)`);
  for (const shape of [{ mtu: 23, value: 20 }, { mtu: 247, value: 244 }]) {
    const len = 4 + 3 + shape.value; // L2CAP header, ATT opcode and handle, the value: one ACL packet
    for (const n of [1, 8]) {
      const cap = await capacity(n, shape.mtu, shape.value, len);
      const r = await served(n, shape.mtu, shape.value);
      console.log(`  ${String(shape.value).padStart(3)}-octet values, ATT_MTU ${String(shape.mtu).padStart(3)}, ${n} central${n > 1 ? 's' : ' '}: ` +
        `${r.perS.toFixed(0).padStart(5)} notifications/s (${(r.octetsPerS / 1000).toFixed(1)} kB/s of values) = ` +
        `${(100 * r.perS / cap).toFixed(1).padStart(5)} % of the ACL credit capacity (${cap.toFixed(0)} packets of ${len} octets/s); ` +
        `wall ${r.wallMs.toFixed(0)} ms`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1] === fileURLToPath(import.meta.url)) {
  await bench();
}
