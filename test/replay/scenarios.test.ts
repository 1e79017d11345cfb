// Pins blewire's behaviour on every recorded scenario in captures/: the scenario's steps, driven
// through the public API over the replay transport, must send exactly the recorded host packets (after
// the scenario's masks, in order, at the recorded times) and produce the recorded public results. And
// a session that does something else fails with a decoded diff naming the first packet that differs.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { staticRandomAddress } from '../../src/api/adapter.js';
import { loadScenario, type ScenarioFile } from '../../src/tooling/scenario.js';
import { runSession } from '../../src/tooling/session.js';
import { ReplayDivergenceError, ReplayTransport } from '../../src/replay/transport.js';
import { SmpError } from '../../src/errors.js';

const CAPTURES = resolve(import.meta.dirname, '../../captures');
const recorded = readdirSync(CAPTURES, { withFileTypes: true })
  .filter(d => d.isDirectory() && existsSync(join(CAPTURES, d.name, 'scenario.json')))
  // Twins (captures/twin-*) are other hosts' logs: served by the simulator (twins.test.ts), not replayed.
  .filter(d => !('twin' in (JSON.parse(readFileSync(join(CAPTURES, d.name, 'scenario.json'), 'utf8')) as object)))
  .map(d => d.name)
  .sort();

function hostAddress(s: ScenarioFile): string | undefined {
  const a = s.host?.randomAddress;
  return a === 'fresh' ? staticRandomAddress() : a;
}

async function replayScenario(dir: string, steps?: string) {
  const s = await loadScenario(join(CAPTURES, dir));
  const transport = await ReplayTransport.fromFile(s.capturePath, { masks: s.masks, ...s.replay });
  const address = hostAddress(s);
  const seed = s.host?.pairingSeed;
  const timeoutMs = s.host?.timeoutMs;
  const session = runSession(steps ?? s.steps, { transport, baseDir: join(CAPTURES, dir), ...(address ? { randomAddress: address } : {}),
    ...(seed !== undefined ? { pairingSeed: seed } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(s.host?.privacy ? { privacy: true } : {}) });
  return { s, transport, session };
}

describe('replay of captures/', () => {
  test('there are recorded scenarios', () => {
    expect(recorded.length).toBeGreaterThanOrEqual(2);
  });

  for (const dir of recorded) {
    test(`${dir}: same packets, same results`, async () => {
      const { s, transport, session } = await replayScenario(dir);
      // On failure, the replay's decoded diff is the error to show (the session's own error is only
      // the consequence, e.g. the link reported lost when the replay stopped).
      const result = await session.catch(async (e: unknown) => { await transport.finished; throw e; });
      await transport.finished;
      expect(transport.progress.played).toBe(transport.progress.total);
      // Results compare as JSON, the form they are stored in.
      expect(JSON.parse(JSON.stringify(result))).toEqual(s.expect);
    });
  }
});

describe('a session that diverges from the recording fails with a decoded diff', () => {
  test('reading another characteristic first: the ATT Read Request with the other handle is named', async () => {
    const { transport, session } = await replayScenario('sim-heart-rate',
      'scan 300 → connect D4:1E:35:7A:00:01 random → discover → read 2a19 → read 2a38 → notify 2a37 3 → write 2a39 01 → disconnect');
    await expect(session).rejects.toThrow(); // the host sees its link lost when the replay stops
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL handle=0x0040 .* \| ATT readReq handle=0x000f/);
    expect(e.message).toMatch(/actual: {3}host → controller ACL handle=0x0040 .* \| ATT readReq handle=0x0014/);
    expect(e.message).toContain('fields that differ: pdu.handle: 15 → 20');
    expect(e.message).toContain('context (last 8 records played)');
  });

  test('blewire as the peripheral of BlueZ: notifying another value is a mismatch at that Handle Value Notification', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-central-gatt'));
    expect(s.steps).toContain('send-notification b1e0c003-5c1e-4d6a-9f3b-2a7e5d8c1b00 0101');
    const { transport, session } = await replayScenario('bluez-central-gatt', s.steps.replace(' 0101', ' 0909'));
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .* \| ATT handleValueNtf handle=0x0014 value=0101/);
    expect(e.message).toMatch(/actual: {3}host → controller ACL .* \| ATT handleValueNtf handle=0x0014 value=0909/);
  });

  test('blewire as the peripheral of BlueZ: not waiting for the subscription sends the notification out of order', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-central-gatt'));
    const { transport, session } = await replayScenario('bluez-central-gatt',
      s.steps.replace('subscribed b1e0c003-5c1e-4d6a-9f3b-2a7e5d8c1b00 → ', ''));
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.message).toContain('ATT handleValueNtf handle=0x0014 value=0101');
  });

  test('BlueZ pairing with blewire as the peripheral: without the recorded seed, our Pairing Public Key is a mismatch (nothing is masked)', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-central-pairing'));
    expect(s.masks).toEqual([]);
    expect(s.host?.pairingSeed).toBeDefined();
    const transport = await ReplayTransport.fromFile(s.capturePath, { masks: s.masks, ...s.replay });
    // OS randomness, as a session without the seed draws: the first octets it decides differ.
    const session = runSession(s.steps, { transport, baseDir: join(CAPTURES, 'bluez-central-pairing'), randomAddress: s.host!.randomAddress! });
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .* \| SMP pairingPublicKey/);
  });

  test('BlueZ displays, we type (Passkey Entry, keyboardOnly): the digits typed are in the step; typing others is a mismatch at our first Pairing Confirm', async () => {
    for (const [dir, sc] of [['bluez-pairing-sc-passkey-typed', true], ['bluez-pairing-legacy-passkey-typed', false]] as const) {
      const s = await loadScenario(join(CAPTURES, dir));
      expect(s.masks).toEqual([]);
      const typed = /pair keyboardOnly passkey=(\d{6})/.exec(s.steps)?.[1];
      expect(typed, dir).toBeDefined();
      expect(s.expect.pairings).toEqual([{ method: 'passkeyResponderDisplays', secureConnections: sc, authenticated: true, bonded: true,
        keySize: 16, typed }]);
      // Bit 0 flipped: SC's first round commits to it (Vol 3, Part H, 2.3.5.6.3), legacy's TK is the whole number.
      const other = String(Number(typed) ^ 1).padStart(6, '0');
      const { transport, session } = await replayScenario(dir, s.steps.replace(`passkey=${typed}`, `passkey=${other}`));
      await expect(session).rejects.toThrow();
      const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
      expect(e, dir).toBeInstanceOf(ReplayDivergenceError);
      expect(e.kind).toBe('mismatch');
      expect(e.message).toMatch(/expected: host → controller ACL .* \| SMP pairingConfirm/);
    }
  });

  test('BlueZ pairing with MITM, Passkey Entry (we display, its agent types): the fixture holds the passkey; another IO capability of ours is a mismatch at our Pairing Response', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-central-passkey'));
    expect(s.masks).toEqual([]);
    expect(s.expect.passkeys).toHaveLength(1);
    expect(s.expect.passkeys![0]).toMatch(/^\d{6}$/);
    expect(s.expect.pairings).toEqual([expect.objectContaining({ method: 'passkeyResponderDisplays', authenticated: true, secureConnections: true, bonded: true })]);
    expect(s.expect.security).toEqual([expect.objectContaining({ level: 4, authenticated: true })]);
    const { transport, session } = await replayScenario('bluez-central-passkey', s.steps.replace('pairing-io displayOnly', 'pairing-io displayYesNo'));
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .* \| SMP pairingResponse ioCapability=DisplayOnly/);
    // Numeric Comparison: the value both sides showed is in the fixture, the pairing authenticated.
    const n = await loadScenario(join(CAPTURES, 'bluez-central-numeric'));
    expect(n.masks).toEqual([]);
    expect(n.expect.comparisons).toEqual([expect.stringMatching(/^\d{6}$/)]);
    expect(n.expect.pairings).toEqual([expect.objectContaining({ method: 'numericComparison', authenticated: true, bonded: true })]);
  });

  test('BlueZ pairs with blewire as the peripheral by LE legacy pairing (sc off): Just Works with another seed is a mismatch at our Pairing Confirm; the reconnection is answered with our distributed LTK; Passkey Entry with us at another IO capability is a mismatch at our Pairing Response', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-central-legacy'));
    expect(s.masks).toEqual([]);
    expect(s.expect.pairings).toEqual([{ method: 'justWorks', secureConnections: false, authenticated: false, bonded: true, keySize: 16 }]);
    expect(s.expect.security).toEqual([{ level: 2, encrypted: true, keySize: 16, authenticated: false, secureConnections: false, bonded: true }]);
    // Legacy pairing has no public key: our first value from the seed is Sconfirm (Vol 3, Part H, 2.3.5.5).
    const transport = await ReplayTransport.fromFile(s.capturePath, { masks: s.masks, ...s.replay });
    const session = runSession(s.steps, { transport, baseDir: join(CAPTURES, 'bluez-central-legacy'), randomAddress: s.host!.randomAddress!,
      pairingSeed: `${s.host!.pairingSeed!} other` });
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .* \| SMP pairingConfirm/);

    const k = await loadScenario(join(CAPTURES, 'bluez-central-legacy-passkey'));
    expect(k.masks).toEqual([]);
    expect(k.expect.passkeys).toEqual([expect.stringMatching(/^\d{6}$/)]);
    expect(k.expect.pairings).toEqual([{ method: 'passkeyResponderDisplays', secureConnections: false, authenticated: true, bonded: true, keySize: 16 }]);
    expect(k.expect.security).toEqual([expect.objectContaining({ level: 3, authenticated: true, secureConnections: false })]);
    const r = await replayScenario('bluez-central-legacy-passkey', k.steps.replace('pairing-io displayOnly', 'pairing-io displayYesNo'));
    await expect(r.session).rejects.toThrow();
    const e2 = await r.transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e2).toBeInstanceOf(ReplayDivergenceError);
    expect(e2.kind).toBe('mismatch');
    expect(e2.message).toMatch(/expected: host → controller ACL .* \| SMP pairingResponse ioCapability=DisplayOnly/);
  });

  test('BlueZ with no agent: the encrypted read is refused (0x0F) and so is our pairing (Numeric Comparison Failed from BlueZ, after our DHKey Check); replayed without the refused mark, the pair step raises that typed SmpError', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-pairing-no-agent'));
    expect(s.masks).toEqual([]);
    expect(s.expect.refusals).toEqual([
      { op: 'read', code: 'EATT', status: 0x0f, name: 'Insufficient Encryption' },
      { op: 'pair', code: 'ESMP', status: 0x0c, name: 'Numeric Comparison Failed', by: 'peer' },
    ]);
    expect(s.expect.pairings).toBeUndefined();
    const { transport, session } = await replayScenario('bluez-pairing-no-agent', s.steps.replace('pair refused', 'pair'));
    const err = await session.then(() => undefined, (e: unknown) => e);
    await transport.finished.catch(() => undefined);
    expect(err).toBeInstanceOf(SmpError);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x0c, by: 'peer' });
  });

  test('bond removal with BlueZ: after BlueZ forgets us, encrypt is refused 0x06 and we pair again; after we forget it, its Security Request makes us pair and it refuses (0x0C); replayed without our forget step, we encrypt from the bond instead of pairing', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-pairing-bond-removal'));
    expect(s.masks).toEqual([]);
    expect(s.steps.match(/peer forget/g)).toHaveLength(2);
    expect(s.expect.refusals).toEqual([
      { op: 'encrypt', code: 'EHCISTATUS', status: 0x06, name: 'PIN or Key Missing' },
      { op: 'paired', code: 'ESMP', status: 0x0c, name: 'Numeric Comparison Failed', by: 'peer' },
    ]);
    expect(s.expect.pairings).toEqual(Array(3).fill({ method: 'justWorks', secureConnections: true, authenticated: false, bonded: true, keySize: 16 }));
    // Found bonded only the second time (BlueZ had forgotten us, we had not); the third after our forget,
    // the fourth after the refused pairing.
    expect(s.expect.found?.map(f => f.bonded)).toEqual([false, true, false, false]);
    const { transport, session } = await replayScenario('bluez-pairing-bond-removal', s.steps.replace('disconnect → forget → ', 'disconnect → '));
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .* \| SMP pairingRequest/);
    expect(e.message).toMatch(/actual: {3}host → controller LE Enable Encryption /);
  });

  test('l2test and blewire over credit-based channels: what the kernel sent us is l2test\'s own format; another SDU of ours is a mismatch at its K-frame', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-l2test'));
    // tools/l2test.c do_send: a 32-bit sequence number, the SDU length (LE 16), then 0x7f octets.
    const l2test = (seq: number, n: number): string => {
      const b = Buffer.alloc(n, 0x7f);
      b.writeUInt32LE(seq, 0);
      b.writeUInt16LE(n, 4);
      return b.toString('hex');
    };
    expect(s.expect.channels?.[1]).toMatchObject({ psm: 0x85, openedBy: 'peer', received: [0, 1, 2, 3].map(i => l2test(i, 600)) });
    const { transport, session } = await replayScenario('bluez-l2test', s.steps.replace('send-sdu 300:2', 'send-sdu 300:9'));
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .*len=/);
  });

  test('blewire as the peripheral, l2test to our encrypted listener: its first request is refused 0x0008, the kernel pairs and asks again; a listener without the requirement is a mismatch at our first answer', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-peripheral-l2test'));
    expect(s.masks).toEqual([]);
    expect(s.steps).toContain('listen 0x99 700 50 2 encrypted');
    expect(s.expect.connection).toMatchObject({ role: 'peripheral' });
    expect(s.expect.pairings).toEqual([expect.objectContaining({ method: 'justWorks', secureConnections: true })]);
    const l2test = (seq: number, n: number): string => {
      const b = Buffer.alloc(n, 0x7f);
      b.writeUInt32LE(seq, 0);
      b.writeUInt16LE(n, 4);
      return b.toString('hex');
    };
    expect(s.expect.channels?.map(c => [c.psm, c.openedBy, c.closedBy])).toEqual([[0x99, 'peer', 'local'], [0x8d, 'us', 'local'], [0x8f, 'us', 'peer']]);
    expect(s.expect.channels?.[0]?.received).toEqual([0, 1, 2, 3].map(i => l2test(i, 600)));
    expect(s.expect.channels?.[2]?.received).toEqual([0, 1, 2, 3, 4].map(i => l2test(i, 250)));
    const { transport, session } = await replayScenario('bluez-peripheral-l2test', s.steps.replace(' 2 encrypted', ' 2'));
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .* \| L2CAP signalling leCreditBasedConnectionRsp id=1 destinationCid=0x0000 .*result=Insufficient encryption/);
    expect(e.message).toMatch(/actual: {3}host → controller ACL .* \| L2CAP signalling leCreditBasedConnectionRsp id=1 destinationCid=0x0040 mtu=700 mps=50 initialCredits=2 result=Connection successful/);
  });

  test('blewire as the central of BlueZ: pairing with another IO capability is a mismatch at our Pairing Request; the passkey we displayed came from the seed', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-pairing-legacy-passkey'));
    expect(s.masks).toEqual([]);
    expect(s.expect.pairings?.[0]).toMatchObject({ method: 'passkeyInitiatorDisplays', secureConnections: false, authenticated: true });
    expect(s.expect.pairings?.[0]?.passkey).toBeGreaterThanOrEqual(0);
    const { transport, session } = await replayScenario('bluez-pairing-legacy-passkey', s.steps.replace('pair displayOnly', 'pair keyboardDisplay'));
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x) as ReplayDivergenceError;
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/expected: host → controller ACL .* \| SMP pairingRequest/);
  });

  test('without its mask, a fresh random address is a mismatch at LE Set Random Address', async () => {
    const s = await loadScenario(join(CAPTURES, 'sim-heart-rate'));
    expect(s.masks).toContainEqual(expect.objectContaining({ kind: 'leSetRandomAddress', field: 'randomAddress' }));
    const transport = await ReplayTransport.fromFile(s.capturePath, { masks: [] });
    const err = await runSession(s.steps, { transport, randomAddress: 'C1:00:00:00:00:01' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ReplayDivergenceError);
    expect((err as Error).message).toContain('actual:   host → controller LE Set Random Address randomAddress="C1:00:00:00:00:01"');
    expect((err as Error).message).toMatch(/fields that differ: randomAddress: "[0-9A-F:]{17}" → "C1:00:00:00:00:01"/);
  });

  test('leaving the notification loop one value early: the unsubscribe is out of order', async () => {
    const { transport, session } = await replayScenario('sim-heart-rate',
      'scan 300 → connect D4:1E:35:7A:00:01 random → discover → read 2a38 → read 2a19 → notify 2a37 2 → write 2a39 01 → disconnect');
    await expect(session).rejects.toThrow();
    const err = await transport.finished.then(() => undefined, (x: unknown) => x);
    expect(err).toBeInstanceOf(ReplayDivergenceError);
    // Leaving the notification loop after two values unsubscribes (CCCD write) where the recording has
    // the third notification still to come: the host's write is out of order.
    expect((err as ReplayDivergenceError).kind).toBe('out-of-order');
    expect((err as Error).message).toContain('ATT writeReq handle=0x000d value=0000');
  });
});
