/**
 * Pairing cost (issue 9, "Measured"): CPU time per complete pairing of our initiator with our
 * responder in memory (both sides, key distribution included; SC includes two P-256 key generations
 * and two ECDHs), per method; and the legacy passkey brute force rate of `decode --pairing` (c1 per
 * candidate); the re-encryption on a bonded reconnect through the whole stack on the simulator (SMP PDUs
 * and LE Enable Encryption counted, CPU per encrypt()). Figures only.
 *
 *   npx tsx tools/bench/smp.bench.ts
 */
import { Adapter } from '../../src/api/adapter.js';
import { FakeClock } from '../../src/clock.js';
import { createSimulator, HEART_RATE_SENSOR } from '../../src/sim/index.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import type { HciTransport } from '../../src/transport/types.js';
import { c1 } from '../../src/smp/crypto.js';
import { SmpIoCapability as IO } from '../../src/smp/pdus.js';
import { SmpSession, type SmpAction, type SmpSessionOptions } from '../../src/smp/session.js';

type Opts = Partial<Omit<SmpSessionOptions, 'role' | 'emit' | 'clock' | 'local' | 'peer'>>;

/** One pairing, both sides, PDUs through a FIFO; the user types what the other side shows. */
function pairOnce(i: Opts, r: Opts): boolean {
  const clock = new FakeClock();
  const q: Array<() => void> = [];
  const shown: Record<string, number> = {};
  let ok = 0;
  const mk = (role: 'initiator' | 'responder', o: Opts): SmpSession => {
    const s: SmpSession = new SmpSession({
      ...o, role, clock,
      local: role === 'initiator' ? { type: 0, address: 'A1:A2:A3:A4:A5:A6' } : { type: 1, address: 'C1:B2:B3:B4:B5:B6' },
      peer: role === 'initiator' ? { type: 1, address: 'C1:B2:B3:B4:B5:B6' } : { type: 0, address: 'A1:A2:A3:A4:A5:A6' },
      emit: (a: SmpAction) => {
        const other = () => (role === 'initiator' ? resp : init);
        if (a.kind === 'send') q.push(() => other().receive(a.pdu));
        else if (a.kind === 'startEncryption') q.push(() => { const k = resp.ltkRequest(0, new Uint8Array(8)); init.encryptionChanged(k ? 0 : 6, 16); resp.encryptionChanged(k ? 0 : 6, 16); });
        else if (a.kind === 'displayPasskey') shown[role] = a.passkey;
        else if (a.kind === 'requestPasskey') q.push(() => s.passkeyEntered(shown[role === 'initiator' ? 'responder' : 'initiator']!));
        else if (a.kind === 'numericComparison') q.push(() => s.numericComparisonResult(true));
        else if (a.kind === 'paired') ok++;
      },
    });
    return s;
  };
  const init = mk('initiator', i), resp = mk('responder', r);
  init.pair();
  for (let n = 0; n < 1000 && q.length; n++) q.shift()!();
  return ok === 2;
}

function measure(name: string, i: Opts, r: Opts, n: number): void {
  pairOnce(i, r); // warm up
  const t0 = process.cpuUsage();
  let good = 0;
  for (let k = 0; k < n; k++) if (pairOnce(i, r)) good++;
  const d = process.cpuUsage(t0);
  const ms = (d.user + d.system) / 1000 / n;
  console.log(`${name.padEnd(44)} ${ms.toFixed(2)} ms CPU per pairing (both sides), ${good}/${n} paired`);
}

/**
 * Re-encryption on a bonded reconnect (issue 9: "no SMP PDU at all, one LE Enable Encryption"), the whole
 * stack on the simulator: bond once with a simulated heart-rate sensor, then `rounds` times connect,
 * encrypt() from the bond, disconnect. What crossed the HCI boundary after the bond is counted (SMP
 * PDUs either way on CID 0x0006, LE Enable Encryption commands), and the host process's CPU time per
 * encrypt() call (the simulated controller and peer run in the same process: included).
 */
async function reencryption(rounds: number): Promise<void> {
  const sim = createSimulator({ name: 'bench-reencrypt', peripherals: [{ ...HEART_RATE_SENSOR, notifications: [], pairing: {} }] });
  const inner = sim.transport;
  let counting = false;
  const seen = { smp: 0, enable: 0 };
  const isSmp = (p: Uint8Array): boolean => p[0] === 0x02 && p.length >= 9 && (p[7]! | (p[8]! << 8)) === 0x0006 && (p[2]! & 0x30) !== 0x10;
  const transport: HciTransport = {
    clock: inner.clock!, description: 'bench',
    send: p => {
      if (counting && p[0] === 0x01 && p[1] === 0x19 && p[2] === 0x20) seen.enable++;
      if (counting && isSmp(p)) seen.smp++;
      inner.send(p);
    },
    setReceiver: r => inner.setReceiver({ packet: p => { if (counting && isSmp(p)) seen.smp++; r.packet(p); }, closed: e => r.closed(e) }),
    close: () => inner.close(),
  };
  const adapter = await Adapter.open({ transport, clock: sim.clock, bonds: new MemoryBondStore() });
  try {
    const first = await adapter.connect((await adapter.find({ services: ['heart_rate'], timeout: 5000 }))!, { timeout: 5000 });
    await first.pair();
    await first.disconnect();
    counting = true;
    let cpu = 0, virtualMs = 0, ok = 0;
    for (let n = 0; n < rounds; n++) {
      const conn = await adapter.connect({ address: HEART_RATE_SENSOR.address, type: 'random' }, { timeout: 5000 });
      const t0 = process.cpuUsage(), v0 = sim.clock.now();
      const st = await conn.encrypt();
      const d = process.cpuUsage(t0);
      cpu += d.user + d.system;
      virtualMs += sim.clock.now() - v0;
      if (st.encrypted && st.bonded) ok++;
      await conn.disconnect();
    }
    console.log(`${'re-encryption from the bond (simulator)'.padEnd(44)} ${(cpu / rounds).toFixed(0)} µs CPU per encrypt() (host, simulated controller and peer), ` +
      `${(virtualMs / rounds).toFixed(1)} ms simulated; over ${rounds} reconnects: ${seen.smp} SMP PDUs, ${seen.enable} LE Enable Encryption, ${ok}/${rounds} encrypted and bonded`);
  } finally {
    await adapter.close();
  }
}

export async function bench(): Promise<void> {
  await reencryption(50);
  measure('LE legacy, Just Works', { secureConnections: false }, { secureConnections: false }, 300);
  measure('LE legacy, Passkey Entry', { secureConnections: false, io: IO.KeyboardOnly, mitm: true }, { secureConnections: false, io: IO.DisplayOnly }, 300);
  measure('LE Secure Connections, Just Works', {}, {}, 100);
  measure('LE Secure Connections, Numeric Comparison', { io: IO.DisplayYesNo, mitm: true }, { io: IO.DisplayYesNo }, 100);
  measure('LE Secure Connections, Passkey Entry (20 rounds)', { io: IO.KeyboardOnly, mitm: true }, { io: IO.DisplayOnly }, 100);
  const k = new Uint8Array(16), r = new Uint8Array(16).fill(5), p = new Uint8Array(7), a = new Uint8Array(6);
  const N = 50_000;
  const t0 = process.cpuUsage();
  for (let n = 0; n < N; n++) { k[15] = n & 255; k[14] = n >> 8; c1(k, r, p, p, 0, 1, a, a); }
  const d = process.cpuUsage(t0);
  const us = (d.user + d.system) / N;
  console.log(`${'decode --pairing legacy passkey search (c1)'.padEnd(44)} ${us.toFixed(1)} µs per candidate, ${(us * 1e6 / 1e6).toFixed(0)} s for all 10^6`);
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
