// blewire pair / bonds, and a GATT command that pairs on demand, run in-process against a simulated
// sensor that pairs (the same SmpSession as the host, the controller comparing both LTKs) and answers
// Insufficient Authentication on one characteristic until the link is encrypted. The bond store is a
// temporary $XDG_STATE_HOME.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { run as pair, runBonds } from '../../../src/cli/pair.js';
import { run as read } from '../../../src/cli/read.js';
import { run as write } from '../../../src/cli/write.js';
import { run as notify } from '../../../src/cli/notify.js';
import { registerTransport } from '../../../src/transport/open.js';
import { createSimulator, HEART_RATE_SENSOR, type PeerPairingStats } from '../../../src/sim/index.js';
import type { SimPairing } from '../../../src/sim/types.js';
import { captureOutput, decodedCapture } from './output.js';
import { SmpError } from '../../../src/errors.js';

const ADDR = HEART_RATE_SENSOR.address;
let state: string;

beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'blewire-cli-bonds-'));
  vi.stubEnv('XDG_STATE_HOME', state);
  vi.stubEnv('XDG_CACHE_HOME', state);
  registerTransport('sim-secure', () => createSimulator({ name: 'secure', peripherals: [{
    ...HEART_RATE_SENSOR, notifications: [], pairing: { protect: [{ opcode: 0x0a }] },
  }] }).transport);
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  rmSync(state, { recursive: true, force: true });
});

describe('blewire pair / bonds', () => {
  test('pair bonds (Just Works without a terminal); bonds lists it; --remove forgets it', async () => {
    const out = captureOutput();
    expect(await pair([ADDR, '--transport', 'sim-secure:', '--json'])).toBe(0);
    expect(JSON.parse(out.stdout()[0]!)).toMatchObject({ address: ADDR, encrypted: true, bonded: true, secureConnections: true, level: 2, keySize: 16 });

    const listed = captureOutput();
    expect(await runBonds(['--json'])).toBe(0);
    expect(listed.stdout().map(l => JSON.parse(l))).toEqual([expect.objectContaining({ address: ADDR, type: 'random', secureConnections: true, keys: ['LTK', 'link key'] })]);

    const removed = captureOutput();
    expect(await runBonds(['--remove', ADDR.toLowerCase()])).toBe(0);
    expect(removed.stdout()[0]).toBe(`removed the bond with ${ADDR}`);
    const none = captureOutput();
    expect(await runBonds(['--remove', ADDR])).toBe(1);
    expect(none.stderr()[0]).toMatch(/no bond with/);
  });

  test('a wrong --io is a usage mistake', async () => {
    const out = captureOutput();
    await expect(pair([ADDR, '--transport', 'sim-secure:', '--io', 'telepathy'])).rejects.toThrow(/--io is one of/);
    void out;
  });

  test('read of a characteristic that needs encryption pairs on demand and prints the value', async () => {
    const out = captureOutput();
    expect(await read([ADDR, '2a38', '--transport', 'sim-secure:', '--no-cache'])).toBe(0);
    expect(out.stdout().join('\n')).toMatch(/01/);
    const listed = captureOutput();
    expect(await runBonds(['--json'])).toBe(0);
    expect(listed.stdout()).toHaveLength(1);
  });

  // The other GATT commands share the opener (src/cli/explore.ts) and so its pairing policy: a peer that
  // refuses the Write Request (Heart Rate Control Point) or the CCCD write behind a subscription with
  // Insufficient Authentication (0x05) until the link is encrypted gets paired with, and the request is
  // retried once (Vol 3, Part F, 3.4.1.1; Vol 3, Part C, 10.3).
  test.each([
    ['write', (t: string[]) => write([ADDR, '2a39', '01', ...t]), /^wrote 1 octet\(s\) to /],
    ['notify', (t: string[]) => notify([ADDR, 'heart_rate_measurement', '--count', '2', ...t]), /./],
  ] as const)('%s to a characteristic that needs encryption pairs on demand, then succeeds', async (name, cmd, last) => {
    const p = peer(`sim-secure-${name}`, { protect: [{ opcode: 0x12 }] }, name === 'notify');
    const out = captureOutput();
    expect(await cmd(['--transport', `sim-secure-${name}:`, '--no-cache'])).toBe(0);
    expect(p.stats()).toMatchObject({ pairings: 1, failures: 0 });
    expect(out.stdout().at(-1)).toMatch(last);
    if (name === 'notify') expect(out.stdout().length).toBeGreaterThanOrEqual(2);
    const listed = captureOutput();
    expect(await runBonds(['--json'])).toBe(0);
    expect(listed.stdout()).toHaveLength(1);
  });
});

/** A simulated sensor that pairs with these settings, under its own transport name; its stats once up. */
function peer(name: string, pairing: SimPairing, notifying = false): { stats: () => PeerPairingStats } {
  let stats: PeerPairingStats | undefined;
  registerTransport(name, () => {
    const sim = createSimulator({ name, peripherals: [{ ...HEART_RATE_SENSOR, ...(notifying ? {} : { notifications: [] }), pairing }] });
    stats = sim.peripheral(ADDR).pairingStats;
    return sim.transport;
  });
  return { stats: () => stats! };
}

/**
 * Pretend stdin is a terminal that a user types into: each prompt written to stderr is handed to
 * `answer`, whose line (if any) arrives on stdin as typed text; null ends stdin (Ctrl-D). Returns everything written to stderr.
 */
function terminal(answer: (prompt: string, n: number) => string | null | undefined): { written: () => string } {
  const stdin = process.stdin;
  Object.defineProperty(stdin, 'isTTY', { value: true, configurable: true, writable: true });
  // stderr is not a terminal here, so readline reads plain lines (no raw mode), as with a pipe.
  Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true, writable: true });
  vi.spyOn(stdin, 'resume').mockReturnValue(stdin);
  vi.spyOn(stdin, 'pause').mockReturnValue(stdin);
  let text = '';
  let prompts = 0;
  vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array) => {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    text += s;
    if (/\? \[y\/N\] $|: $/.test(s)) {
      const line = answer(s, prompts++);
      if (line === null) setImmediate(() => stdin.emit('end')); // Ctrl-D
      else if (line !== undefined) setImmediate(() => stdin.emit('data', Buffer.from(`${line}\n`)));
    }
    return true;
  }) as typeof process.stderr.write);
  return { written: () => text };
}
afterEach(() => {
  delete (process.stdin as { isTTY?: boolean }).isTTY;
  delete (process.stderr as { isTTY?: boolean }).isTTY;
});

const PASSKEY_PROMPT = new RegExp(`^pairing with ${ADDR}: passkey shown on the device: $`);
const COMPARE_PROMPT = new RegExp(`^pairing with ${ADDR}: does the device show (\\d{6})\\? \\[y/N\\] $`);

describe('blewire pair on a terminal: passkey entry (Vol 3, Part H, 2.3.5.3)', () => {
  test('the device displays six digits; the user types them; an authenticated SC bond', async () => {
    let shown: number | undefined;
    const sensor = peer('sim-display', { io: 'displayOnly', onPasskeyDisplay: n => { shown = n; } });
    const tty = terminal(p => (PASSKEY_PROMPT.test(p) ? String(shown).padStart(6, '0') : undefined));
    const out = captureOutput();
    expect(await pair([ADDR, '--transport', 'sim-display:'])).toBe(0);
    expect(shown).toBeDefined();
    expect(tty.written()).toMatch(new RegExp(PASSKEY_PROMPT.source.slice(1, -1)));
    expect(out.stdout()).toEqual([`paired with ${ADDR}: security level 4, LE Secure Connections, authenticated, 16-octet key, bonded`]);
    expect(sensor.stats()).toMatchObject({ pairings: 1, failures: 0 });
  });
});

/** Our SMP PDUs (wire octets) in a capture the command wrote. */
function smpSent(capture: string): number[][] {
  return decodedCapture(capture).filter(l => l.line === 'l2cap' && l.cid === 0x0006 && l.dir === 'tx')
    .map(l => [...(l as { payload: Uint8Array }).payload]);
}
function captureFile(): string {
  return join(state, `pair-${Math.random().toString(16).slice(2)}.btsnoop`);
}
/** A stdin 'data' listener left behind would keep a real process alive after the command. */
function stdinListeners(): number {
  return process.stdin.listenerCount('data') + process.stdin.listenerCount('end');
}

describe('blewire pair on a terminal: what the user types', () => {
  test('a mistyped passkey (other digits): the peer fails the confirm, nothing is bonded', async () => {
    let shown = -1;
    const sensor = peer('sim-display-wrong', { io: 'displayOnly', onPasskeyDisplay: n => { shown = n; } });
    terminal(p => (PASSKEY_PROMPT.test(p) ? String((shown + 1) % 1_000_000).padStart(6, '0') : undefined));
    captureOutput();
    const err = await pair([ADDR, '--transport', 'sim-display-wrong:']).catch(e => e);
    expect(err).toBeInstanceOf(SmpError);
    expect(err).toMatchObject({ reason: 0x04, reasonName: 'Confirm Value Failed', by: 'peer' });
    expect(sensor.stats().failures).toBe(1);
    const listed = captureOutput();
    expect(await runBonds(['--json'])).toBe(0);
    expect(listed.stdout()).toEqual([]);
  });

  test('input that is not a passkey is asked again, then the right digits pair', async () => {
    let shown = -1;
    peer('sim-display-retry', { io: 'displayOnly', onPasskeyDisplay: n => { shown = n; } });
    const typed = ['12a456', '1234567', ''];
    const tty = terminal((p, n) => (PASSKEY_PROMPT.test(p) ? (typed[n] ?? String(shown)) : undefined));
    const out = captureOutput();
    const before = stdinListeners();
    // Three malformed answers would cancel: the third try here is the right one.
    typed.pop();
    expect(await pair([ADDR, '--transport', 'sim-display-retry:'])).toBe(0);
    expect(out.stdout()[0]).toMatch(/security level 4, .* authenticated, 16-octet key, bonded$/);
    expect(tty.written().match(/a passkey is six digits, 000000-999999; try again\n/g)).toHaveLength(2);
    expect(tty.written().match(/passkey shown on the device: /g)).toHaveLength(3);
    expect(stdinListeners()).toBe(before);
  });

  test('three answers that are not a passkey cancel: Passkey Entry Failed on the wire and to the user', async () => {
    const sensor = peer('sim-display-junk', { io: 'displayOnly' });
    const tty = terminal(p => (PASSKEY_PROMPT.test(p) ? 'abcdef' : undefined));
    captureOutput();
    const capture = captureFile();
    const err = await pair([ADDR, '--transport', 'sim-display-junk:', '--capture', capture]).catch(e => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x01, reasonName: 'Passkey Entry Failed', by: 'local' });
    expect(tty.written().match(/passkey shown on the device: /g)).toHaveLength(3);
    expect(tty.written()).toMatch(/no valid passkey: pairing cancelled\n/);
    expect(smpSent(capture).at(-1)).toEqual([0x05, 0x01]); // Pairing Failed, Passkey Entry Failed (3.5.5)
    expect(sensor.stats().failures).toBe(1);
  });

  test('stdin ending at the passkey prompt (Ctrl-D) cancels at once instead of waiting for the SMP timeout', async () => {
    peer('sim-display-eof', { io: 'displayOnly' });
    const tty = terminal(p => (PASSKEY_PROMPT.test(p) ? null : undefined));
    captureOutput();
    const before = stdinListeners();
    const err = await pair([ADDR, '--transport', 'sim-display-eof:']).catch(e => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x01, by: 'local' });
    expect(tty.written()).toMatch(/no passkey typed \(stdin closed\): pairing cancelled\n/);
    expect(stdinListeners()).toBe(before);
  });

  test('a passkey asked for without a terminal says why on stderr, then fails with Passkey Entry Failed', async () => {
    peer('sim-display-notty', { io: 'displayOnly' });
    const err0 = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    captureOutput();
    const err = await pair([ADDR, '--transport', 'sim-display-notty:', '--io', 'keyboardOnly']).catch(e => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x01 });
    expect(err0.mock.calls.map(c => String(c[0])).join('')).toMatch(`pairing with ${ADDR}: the device shows a passkey to type, but stdin is not a terminal\n`);
  });
});

describe('blewire pair on a terminal: numeric comparison (Vol 3, Part H, 2.3.5.6.2)', () => {
  test('y: the six digits are shown, confirmed, and the bond is authenticated', async () => {
    const sensor = peer('sim-yesno', { io: 'displayYesNo' });
    const shown: string[] = [];
    const tty = terminal(p => { const m = COMPARE_PROMPT.exec(p); if (m) shown.push(m[1]!); return m ? 'y' : undefined; });
    const out = captureOutput();
    expect(await pair([ADDR, '--transport', 'sim-yesno:'])).toBe(0);
    expect(shown).toHaveLength(1);
    expect(tty.written()).not.toMatch(/passkey/);
    expect(out.stdout()).toEqual([`paired with ${ADDR}: security level 4, LE Secure Connections, authenticated, 16-octet key, bonded`]);
    expect(sensor.stats()).toMatchObject({ pairings: 1, failures: 0 });
  });

  for (const [answer, what] of [['n', 'n'], ['', 'Enter (the default, No)'], ['NO', 'NO']] as const) {
    test(`${what}: Numeric Comparison Failed, sent by us, nothing bonded`, async () => {
      const sensor = peer(`sim-yesno-${what.length}`, { io: 'displayYesNo' });
      terminal(p => (COMPARE_PROMPT.test(p) ? answer : undefined));
      captureOutput();
      const capture = captureFile();
      const err = await pair([ADDR, '--transport', `sim-yesno-${what.length}:`, '--capture', capture]).catch(e => e);
      expect(err).toMatchObject({ code: 'ESMP', reason: 0x0c, reasonName: 'Numeric Comparison Failed', by: 'local' });
      expect(smpSent(capture).at(-1)).toEqual([0x05, 0x0c]);
      expect(sensor.stats().failures).toBe(1);
      const listed = captureOutput();
      await runBonds(['--json']);
      expect(listed.stdout()).toEqual([]);
    });
  }

  test('an answer that is neither yes nor no is asked again', async () => {
    peer('sim-yesno-again', { io: 'displayYesNo' });
    const tty = terminal((p, n) => (COMPARE_PROMPT.test(p) ? (n === 0 ? 'maybe' : 'Yes') : undefined));
    captureOutput();
    expect(await pair([ADDR, '--transport', 'sim-yesno-again:'])).toBe(0);
    expect(tty.written().match(/\? \[y\/N\] /g)).toHaveLength(2);
    expect(tty.written()).toMatch(/answer y or n\n/);
  });

  test("the device's user declines while our prompt waits: the peer's failure ends it, the prompt lets go of stdin", async () => {
    const sensor = peer('sim-yesno-declined', { io: 'displayYesNo', confirm: false });
    const tty = terminal(() => undefined); // our user never answers
    captureOutput();
    const before = stdinListeners();
    const err = await pair([ADDR, '--transport', 'sim-yesno-declined:']).catch(e => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x0c, by: 'peer' });
    expect(tty.written()).toMatch(new RegExp(COMPARE_PROMPT.source.slice(1, -1)));
    expect(stdinListeners()).toBe(before);
    expect(sensor.stats().failures).toBe(1);
  });
});

describe('blewire pair options, on the wire (our Pairing Request, 3.5.1)', () => {
  test('defaults without a terminal: NoInputNoOutput, bonding + SC + CT2, 16-octet key', async () => {
    peer('sim-opt-default', {});
    captureOutput();
    const capture = captureFile();
    expect(await pair([ADDR, '--transport', 'sim-opt-default:', '--json', '--capture', capture])).toBe(0);
    const [req] = smpSent(capture);
    // io 0x03, OOB 0, AuthReq 0x29 (Bonding 01 | SC 0x08 | CT2 0x20), max key 16
    expect(req!.slice(0, 5)).toEqual([0x01, 0x03, 0x00, 0x29, 0x10]);
  });

  test('--mitm sets the MITM bit and insists on it: against a peer with no IO it fails with Authentication Requirements', async () => {
    peer('sim-opt-mitm', { io: 'noInputNoOutput' });
    captureOutput();
    const capture = captureFile();
    const err = await pair([ADDR, '--transport', 'sim-opt-mitm:', '--json', '--mitm', '--io', 'keyboardDisplay', '--capture', capture]).catch(e => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x03, reasonName: 'Authentication Requirements' });
    const sent = smpSent(capture);
    expect(sent[0]!.slice(0, 5)).toEqual([0x01, 0x04, 0x00, 0x2d, 0x10]); // KeyboardDisplay, AuthReq 0x2D (MITM 0x04 added)
    expect(sent.at(-1)).toEqual([0x05, 0x03]);
  });

  test('--mitm with a peer that can display: passkey entry, authenticated', async () => {
    let shown = -1;
    peer('sim-opt-mitm-ok', { io: 'displayOnly', onPasskeyDisplay: n => { shown = n; } });
    terminal(p => (PASSKEY_PROMPT.test(p) ? String(shown) : undefined));
    const out = captureOutput();
    expect(await pair([ADDR, '--transport', 'sim-opt-mitm-ok:', '--json', '--mitm'])).toBe(0);
    expect(JSON.parse(out.stdout()[0]!)).toMatchObject({ authenticated: true, level: 4 });
  });

  test('--sc-only refuses a legacy-only peer with Authentication Requirements; without it, legacy pairs', async () => {
    peer('sim-opt-legacy', { secureConnections: false });
    captureOutput();
    const capture = captureFile();
    const err = await pair([ADDR, '--transport', 'sim-opt-legacy:', '--json', '--sc-only', '--capture', capture]).catch(e => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x03 });
    expect(smpSent(capture).map(p => p[0])).toEqual([0x01, 0x05]); // Pairing Request, then Pairing Failed: no key material
    expect(smpSent(capture).at(-1)).toEqual([0x05, 0x03]);
    const out = captureOutput();
    expect(await pair([ADDR, '--transport', 'sim-opt-legacy:', '--json'])).toBe(0);
    expect(JSON.parse(out.stdout()[0]!)).toMatchObject({ encrypted: true, secureConnections: false });
  });

  test('--no-bond: Bonding_Flags 00 and no keys asked for; encrypted, not bonded, no bond stored', async () => {
    peer('sim-opt-nobond', {});
    const out = captureOutput();
    const capture = captureFile();
    expect(await pair([ADDR, '--transport', 'sim-opt-nobond:', '--json', '--no-bond', '--capture', capture])).toBe(0);
    expect(JSON.parse(out.stdout()[0]!)).toMatchObject({ encrypted: true, bonded: false });
    expect(smpSent(capture)[0]).toEqual([0x01, 0x03, 0x00, 0x28, 0x10, 0x00, 0x00]);
    const listed = captureOutput();
    expect(await runBonds(['--json'])).toBe(0);
    expect(listed.stdout()).toEqual([]);
  });

  test('--min-key-size: a peer offering 10 octets fails by default (Encryption Key Size), pairs with --min-key-size 10', async () => {
    peer('sim-opt-key10', { maxKeySize: 10 });
    captureOutput();
    const capture = captureFile();
    const err = await pair([ADDR, '--transport', 'sim-opt-key10:', '--json', '--capture', capture]).catch(e => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x06, reasonName: 'Encryption Key Size' });
    expect(smpSent(capture).at(-1)).toEqual([0x05, 0x06]);
    const out = captureOutput();
    expect(await pair([ADDR, '--transport', 'sim-opt-key10:', '--json', '--min-key-size', '10'])).toBe(0);
    expect(JSON.parse(out.stdout()[0]!)).toMatchObject({ encrypted: true, keySize: 10 });
  });

  test('--min-key-size outside 7..16, or not a number, is a usage mistake', async () => {
    captureOutput();
    for (const bad of ['6', '17', 'ten']) {
      await expect(pair([ADDR, '--transport', 'sim-secure:', '--min-key-size', bad])).rejects.toThrow(/--min-key-size/);
    }
  });
});
