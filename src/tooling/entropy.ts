/**
 * A seeded source of pairing's secrets for recorded sessions (scenario.json `host.pairingSeed`): the
 * recording and every replay of it draw the same Pairing Random values and the same P-256 key pair, so
 * the replay checks the real SMP octets (Public Key, Confirm, Random, DHKey Check; Vol 3, Part H,
 * 3.5.3-3.5.7) and the LTK we hand the controller (LE Long Term Key Request Reply, Vol 4, Part E,
 * 7.8.25) byte for byte instead of masking them.
 *
 * FOR TESTS AND REPLAY ONLY. The seed is written in the scenario file: anyone can derive every key
 * made with it. Nothing outside src/tooling and tests may use this.
 *
 * random(n): the stream SHA-256(seed ‖ "random" ‖ i) for i = 0, 1, …, consumed in order.
 * keyPair(): the private scalar SHA-256(seed ‖ "p256" ‖ k) for k = 0, 1, … (one per pairing session); a
 * digest that is not a valid scalar (0 or ≥ n, about 2^-32 likely) is skipped.
 */
import { createHash } from 'node:crypto';
import { ArgumentError } from '../errors.js';
import type { PairingEntropy } from '../link/pairing.js';
import { p256FromPrivateKey, type P256KeyPair } from '../platform/crypto.js';

/** Longest seed accepted (it is stored in scenario files; a seed is a label, not a secret). */
export const MAX_SEED_LENGTH = 256;
/** Largest single draw (SMP asks for at most 16 octets at a time). */
const MAX_DRAW = 1024;

function digest(seed: string, label: string, counter: number): Uint8Array {
  const c = new Uint8Array(4);
  new DataView(c.buffer).setUint32(0, counter);
  return new Uint8Array(createHash('sha256').update(seed, 'utf8').update(label, 'utf8').update(c).digest());
}

/** The seeded PairingEntropy of `seed` (see the module comment). */
export function seededPairingEntropy(seed: string): PairingEntropy {
  if (typeof seed !== 'string' || seed.length === 0 || seed.length > MAX_SEED_LENGTH) {
    throw new ArgumentError(`a pairing seed is a string of 1 to ${MAX_SEED_LENGTH} characters`);
  }
  let block = 0;
  let pool = new Uint8Array(0);
  let keys = 0;
  return {
    random: (n: number): Uint8Array => {
      if (!Number.isInteger(n) || n < 0 || n > MAX_DRAW) throw new ArgumentError(`seeded entropy: ${n} octets asked (0 to ${MAX_DRAW})`);
      while (pool.length < n) {
        const next = new Uint8Array(pool.length + 32);
        next.set(pool);
        next.set(digest(seed, 'random', block++), pool.length);
        pool = next;
      }
      const out = pool.slice(0, n);
      pool = pool.slice(n);
      return out;
    },
    keyPair: (): P256KeyPair => {
      // Each digest is a valid scalar with probability 1 - 2^-32: 64 tries cannot all fail in practice.
      for (let tries = 0; tries < 64; tries++) {
        try {
          return p256FromPrivateKey(digest(seed, 'p256', keys++));
        } catch {
          // 0 or ≥ n: the next counter
        }
      }
      throw new ArgumentError(`seeded entropy: no P-256 private key from the seed ${JSON.stringify(seed)}`);
    },
  };
}

/**
 * Our IRK for a recorded session with our own privacy (scenario.json `host.privacy`): the first 16
 * octets of SHA-256(seed ‖ "irk" ‖ 0), so the recording and every replay make the same RPAs (Vol 6,
 * Part B, 1.3.2.2) and distribute the same Identity Information. Tests and replay only, like the rest.
 */
export function seededIrk(seed: string): Uint8Array {
  if (typeof seed !== 'string' || seed.length === 0 || seed.length > MAX_SEED_LENGTH) {
    throw new ArgumentError(`a pairing seed is a string of 1 to ${MAX_SEED_LENGTH} characters`);
  }
  return digest(seed, 'irk', 0).slice(0, 16);
}
