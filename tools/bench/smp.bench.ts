/**
 * Pairing cost (issue 9, "Measured"): CPU time per complete pairing of our initiator with our
 * responder in memory (both sides, key distribution included; SC includes two P-256 key generations
 * and two ECDHs), per method; and the legacy passkey brute force rate of `decode --pairing` (c1 per
 * candidate). Figures only.
 *
 *   npx tsx tools/bench/smp.bench.ts
 */
import { FakeClock } from '../../src/clock.js';
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

export async function bench(): Promise<void> {
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
