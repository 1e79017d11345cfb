// The session language's security steps (paired / encrypted) and the seeded pairing randomness that lets
// a recorded pairing replay byte for byte (src/tooling/entropy.ts, host.pairingSeed). On the simulator:
// one blewire adapter serves a database whose characteristic needs encryption, another blewire adapter
// on the same simulated air is the central: its read gets Insufficient Encryption (0x0F), it pairs (LE
// Secure Connections Just Works, bonding), reads, disconnects, reconnects and encrypts from the bond.
// The served side is recorded (record mode, as tools/interop/record-bluez-central.ts records BlueZ)
// and replayed: with the recorded seed the replay passes with no mask; with another seed it stops at our
// Pairing Public Key, the first SMP octets the seed decides.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import { recordScenario } from '../../src/tooling/record.js';
import { loadScenario } from '../../src/tooling/scenario.js';
import { runSession } from '../../src/tooling/session.js';
import { seededPairingEntropy } from '../../src/tooling/entropy.js';
import { ReplayDivergenceError, ReplayTransport } from '../../src/replay/transport.js';
import { p256FromPrivateKey } from '../../src/platform/crypto.js';

const SVC = 'b1e0c100-5c1e-4d6a-9f3b-2a7e5d8c1b00';
const ENC = SVC.replace('b1e0c100', 'b1e0c101');
const DATABASE = [{ uuid: SVC, characteristics: [{ uuid: ENC, properties: ['read', 'write'], security: 'encrypted', value: 'sealed' }] }];
const OURS = 'C3:5A:11:22:33:79';
const CENTRAL = 'C3:5A:11:22:33:7A';
const PERIPHERAL_STEPS = `serve database.json → advertise bwp ${SVC} → accept → paired → wait-disconnect → accept → encrypted → wait-disconnect`;
const CENTRAL_STEPS = `scan 500 → connect ${OURS} random → read ${ENC} → write ${ENC} 0102 → read ${ENC} → disconnect → ` +
  `connect ${OURS} random → read ${ENC} → disconnect`;
const SEED = 'peripheral-pairing-steps 1';

describe('seeded pairing randomness (tests and replay only)', () => {
  test('the same seed draws the same octets and key pairs; another seed others', () => {
    const a = seededPairingEntropy(SEED), b = seededPairingEntropy(SEED), c = seededPairingEntropy(`${SEED}x`);
    const ra = [a.random!(16), a.random!(10), a.random!(4)].map(x => Buffer.from(x).toString('hex'));
    expect([b.random!(16), b.random!(10), b.random!(4)].map(x => Buffer.from(x).toString('hex'))).toEqual(ra);
    expect(Buffer.from(c.random!(16)).toString('hex')).not.toBe(ra[0]);
    expect(new Set(ra.map(x => x.slice(0, 8))).size).toBe(3); // consecutive draws differ
    const ka = a.keyPair!(), kb = b.keyPair!();
    expect(Buffer.from(ka.privateKey)).toEqual(Buffer.from(kb.privateKey));
    // A real key pair: the public key is d·G of its private key.
    expect(Buffer.from(p256FromPrivateKey(ka.privateKey).x)).toEqual(Buffer.from(ka.x));
    // Each pairing session gets the next key pair.
    expect(Buffer.from(a.keyPair!().privateKey)).not.toEqual(Buffer.from(ka.privateKey));
    expect(Buffer.from(c.keyPair!().privateKey)).not.toEqual(Buffer.from(ka.privateKey));
  });

  test('bad seeds and draws are ArgumentErrors', () => {
    expect(() => seededPairingEntropy('')).toThrow(/pairing seed/);
    expect(() => seededPairingEntropy('x'.repeat(257))).toThrow(/pairing seed/);
    expect(() => seededPairingEntropy('s').random!(-1)).toThrow(/octets asked/);
    expect(() => seededPairingEntropy('s').random!(4096)).toThrow(/octets asked/);
  });
});

describe('peripheral security steps on the simulator, recorded and replayed', () => {
  test('a blewire central pairs on 0x0F and later encrypts from the bond; the served side lists both; the replay passes only with the recorded seed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-periph-pairing-'));
    const name = 'sim-central-pairing';
    const out = join(dir, name);
    const air = new SimAir();
    const served = createSimulator({ name: 'served', peripherals: [] }, { air });
    const central = createSimulator({ name: 'central', peripherals: [] }, { air });
    // recordScenario writes the database next to the scenario; the serve step reads it from there.
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'database.json'), JSON.stringify(DATABASE));
    const recording = recordScenario({
      name, dir, transport: served.transport, steps: PERIPHERAL_STEPS, randomAddress: OURS, pairingSeed: SEED,
      controller: 'blewire simulator', peer: 'a blewire central on the same simulated air',
    });
    const client = runSession(CENTRAL_STEPS, { transport: central.transport, randomAddress: CENTRAL });
    const [scenario, c] = await Promise.all([recording, client]);

    // The central: its reads went through (the first after pairing, the last on the re-encrypted link).
    expect(c.reads).toEqual([
      { target: ENC, value: Buffer.from('sealed').toString('hex') },
      { target: ENC, value: '0102' },
      { target: ENC, value: '0102' },
    ]);
    const p = scenario.expect;
    expect(p.pairings).toEqual([{ method: 'justWorks', secureConnections: true, authenticated: false, bonded: true, keySize: 16 }]);
    expect(p.security).toEqual([{ level: 2, encrypted: true, keySize: 16, authenticated: false, secureConnections: true, bonded: true }]);
    expect(p.served?.writes).toEqual([{ target: ENC, value: '0102', command: false }]);
    expect(scenario.host).toEqual({ randomAddress: OURS, pairingSeed: SEED });
    expect(scenario.masks).toEqual([]);

    const s = await loadScenario(out);
    const replay = async (seed: string) => {
      const transport = await ReplayTransport.fromFile(s.capturePath, { masks: s.masks, ...s.replay });
      const session = runSession(s.steps, { transport, baseDir: out, randomAddress: OURS, pairingSeed: seed });
      return { transport, session };
    };
    // Same seed: same packets (SMP included), same results.
    const same = await replay(SEED);
    const result = await same.session.catch(async (e: unknown) => { await same.transport.finished; throw e; });
    await same.transport.finished;
    expect(same.transport.progress.played).toBe(same.transport.progress.total);
    expect(JSON.parse(JSON.stringify(result))).toEqual(s.expect);
    // Another seed: our Pairing Public Key (Vol 3, Part H, 3.5.6) is the first octets that differ.
    const other = await replay(`${SEED} (not the recorded one)`);
    await expect(other.session).rejects.toThrow();
    const e = await other.transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .* \| SMP pairingPublicKey/);
  }, 60_000);
});
