/**
 * L2CAP credit-based channel throughput (Core Vol 3, Part A, 4.22–4.24, 10.1) on the simulator,
 * against the same link's ACL credit capacity. Issue 10's target: ≥ 90 %.
 *
 * The link: a blewire central and a blewire peripheral on one simulated air (src/sim/air.ts), 7.5 ms
 * connection interval, data length 251 on both sides (each host asks for it), the simulator's
 * controllers with 8 ACL buffers of 251 octets. Time is the simulator's: the figures are what the air
 * model lets through per simulated second, and the fraction says how much of it our channel code uses.
 *
 * 1. Capacity: the central's host keeps every ACL buffer (credit) of its controller filled with
 *    full-size packets, 251 octets each (a whole L2CAP frame on an unassigned CID, 0x003F, which the
 *    peripheral's L2CAP counts and drops), for 3 simulated seconds: ACL data octets per second. No
 *    L2CAP traffic can carry more on this link (Vol 4, Part E, 4.1.1: one packet per credit).
 * 2. The channel: the central opens a channel to the peripheral's listener (MTU 2048, MPS 247 so a
 *    K-frame fills one 251-octet ACL packet) and writes SDUs back to back (awaiting each write) while
 *    the peripheral reads them with `for await`; SDU octets delivered to the reader per second, over
 *    3 simulated seconds after a warm-up. SDUs of 1974 octets are 8 full K-frames (SDU Length + 1974
 *    = 8 × 247), the same packets as the capacity's, so the fraction's ceiling is the headers':
 *    1974 / (8 × 251) = 98.3 %. SDUs of 2048 octets end in a short K-frame, which costs less air time
 *    than a full one, so that line can pass the capacity of full packets. With the default 16 credits,
 *    and with receive windows of 8, 4, 2 and 1 credits to show where the credits become the limit.
 * A frame lost anywhere (the simulator's peer queue) or a protocol violation makes the bench throw.
 *
 *   npm run bench -- coc
 */
import { fileURLToPath } from 'node:url';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { ChannelClosedError } from '../../src/errors.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';

const INTERVAL_MS = 7.5;
const WINDOW_MS = 3000;
const WARMUP_MS = 300;
const PSM = 0x0081;
/** A CID no channel uses (0x0007–0x003F are reserved, Vol 3, Part A, 2.1): the receiver drops what comes on it. */
const UNASSIGNED_CID = 0x003f;

async function link() {
  const air = new SimAir();
  const ps = createSimulator({ name: 'peripheral', peripherals: [] }, { air });
  const cs = createSimulator({ name: 'central', peripherals: [] }, { air });
  const peripheral = await Adapter.open({ transport: ps.transport, bonds: false });
  const central = await Adapter.open({ transport: cs.transport, bonds: false });
  const accepted = peripheral.accept();
  await peripheral.advertise({ name: 'bench' });
  const ad = await central.find({ name: 'bench', timeout: 5000 });
  if (!ad) throw new Error('bench: the peripheral was not found');
  const conn = await central.connect(ad, { intervalMin: INTERVAL_MS, intervalMax: INTERVAL_MS });
  const incoming = (await accepted.next()).value as Connection;
  await accepted.return!();
  // The central asks for data length 251 as it connects; the simulator carries a data length update
  // on one side of the air only, so the peripheral asks for its own (a real peripheral host may too).
  await incoming.setDataLength();
  await air.clock.delay(50);
  const close = async (): Promise<void> => {
    await central.close();
    await peripheral.close();
  };
  return { air, cs, ps, central, peripheral, conn, incoming, close };
}

type Link = Awaited<ReturnType<typeof link>>;

function dropped(l: Link): number {
  let n = 0;
  for (const sim of [l.cs, l.ps]) for (const sl of sim.controller.links.values()) n += sl.stats.peerFramesDropped;
  return n;
}

/** ACL data octets per simulated second with every controller buffer kept full of 251-octet packets. */
async function capacity(): Promise<{ octetsPerS: number; packetsPerS: number; dataLength: number; buffers: number }> {
  const l = await link();
  const host = l.central.host;
  const len = host.acl.dataLength;
  const handle = l.conn.handle;
  const packet = new Uint8Array(5 + len);
  packet[0] = 0x02;
  packet[1] = handle & 0xff;
  packet[2] = (handle >> 8) & 0x0f; // PB 0b00: the start of a non-flushable L2CAP frame
  packet[3] = len & 0xff;
  packet[4] = len >> 8;
  packet[5] = (len - 4) & 0xff; // L2CAP Length
  packet[6] = (len - 4) >> 8;
  packet[7] = UNASSIGNED_CID;
  let sent = 0;
  let running = true;
  // More senders than buffers: a credit that comes back finds a packet waiting.
  const senders = Array.from({ length: host.acl.totalCredits * 2 }, async () => {
    while (running) {
      await host.sendAcl(handle, [packet]);
      sent++;
    }
  });
  await l.air.clock.delay(WARMUP_MS);
  const s0 = sent;
  const t0 = l.air.clock.now();
  await l.air.clock.delay(WINDOW_MS);
  const packetsPerS = (sent - s0) / ((l.air.clock.now() - t0) / 1000);
  running = false;
  await Promise.all(senders);
  const buffers = host.acl.totalCredits;
  if (dropped(l) !== 0) throw new Error(`bench: the simulator dropped ${dropped(l)} frames`);
  await l.close();
  return { octetsPerS: packetsPerS * len, packetsPerS, dataLength: len, buffers };
}

interface ChannelRun { sduPerS: number; octetsPerS: number; stalls: number; creditsBack: number; wallMs: number; frames: number }

async function channel(sduSize: number, initialCredits: number): Promise<ChannelRun> {
  const l = await link();
  const listener = l.peripheral.listen(PSM, { initialCredits });
  const ch = await l.conn.openChannel(PSM);
  const rx = await listener.accept({ timeout: 5000 });
  if (!rx) throw new Error('bench: no channel was accepted');
  let octets = 0;
  let sdus = 0;
  const reader = (async () => {
    for await (const sdu of rx) {
      octets += sdu.length;
      sdus++;
    }
  })();
  const sdu = new Uint8Array(sduSize).map((_, i) => i & 0xff);
  let running = true;
  const writer = (async () => {
    while (running) await ch.write(sdu);
  })();
  await l.air.clock.delay(WARMUP_MS);
  const o0 = octets;
  const n0 = sdus;
  const f0 = ch.stats.framesSent;
  const st0 = ch.stats.creditStalls;
  const c0 = ch.stats.creditsReceived;
  const t0 = l.air.clock.now();
  const w0 = performance.now();
  await l.air.clock.delay(WINDOW_MS);
  const s = (l.air.clock.now() - t0) / 1000;
  const run: ChannelRun = {
    octetsPerS: (octets - o0) / s, sduPerS: (sdus - n0) / s, frames: ch.stats.framesSent - f0,
    stalls: ch.stats.creditStalls - st0, creditsBack: ch.stats.creditsReceived - c0, wallMs: performance.now() - w0,
  };
  running = false;
  await writer;
  await ch.close();
  await reader;
  const orderly = (e: unknown, by: string): boolean => e instanceof ChannelClosedError && e.by === by;
  if (!orderly(ch.closedError, 'local') || !orderly(rx.closedError, 'peer')) {
    throw new Error(`bench: the channel ended badly: ${ch.closedError?.message} / ${rx.closedError?.message}`);
  }
  if (dropped(l) !== 0) throw new Error(`bench: the simulator dropped ${dropped(l)} frames`);
  await l.close();
  return run;
}

const kB = (n: number): string => `${(n / 1000).toFixed(1)} kB/s`;

export async function bench(): Promise<void> {
  const cap = await capacity();
  console.log(`credit-based channel throughput, simulated time (${INTERVAL_MS} ms interval, data length ${cap.dataLength}, ` +
    `${cap.buffers} ACL buffers; ${WINDOW_MS / 1000} s windows)`);
  console.log(`  link capacity: ${cap.packetsPerS.toFixed(0)} ACL packets/s × ${cap.dataLength} octets = ${kB(cap.octetsPerS)} ` +
    '(host keeps every controller buffer full)');
  for (const [size, credits, note] of [
    [1974, 16, 'SDUs of 1974 octets = 8 full K-frames; default 16 credits'],
    [2048, 16, 'SDUs of 2048 octets = 8 full K-frames + 1 of 78 octets; default 16 credits'],
    [1974, 8, 'SDUs of 1974 octets, 8 credits'],
    [1974, 4, 'SDUs of 1974 octets, 4 credits'],
    [1974, 2, 'SDUs of 1974 octets, 2 credits'],
    [1974, 1, 'SDUs of 1974 octets, 1 credit'],
  ] as const) {
    const r = await channel(size, credits);
    console.log(`  ${note.padEnd(74)} ${kB(r.octetsPerS).padStart(11)} of SDUs = ` +
      `${(100 * r.octetsPerS / cap.octetsPerS).toFixed(1).padStart(5)} % of capacity ` +
      `(${r.sduPerS.toFixed(1)} SDU/s, ${r.frames} K-frames, ${r.stalls} credit stalls, ${r.creditsBack} credits back; wall ${r.wallMs.toFixed(0)} ms)`);
  }
  console.log(`  ceiling from the headers alone for 1974-octet SDUs: ${(100 * 1974 / (8 * cap.dataLength)).toFixed(1)} %`);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1] === fileURLToPath(import.meta.url)) {
  await bench();
}
