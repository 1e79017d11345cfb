// `decode --pairing` on pairings with BlueZ 5.66 (the replay fixtures recorded against bluetoothd in the
// qemu guest): half of every confirm, random and DHKey check in these captures was made by BlueZ's
// kernel, so a 'true' verdict is the analyser agreeing with an independent SMP implementation. The
// passkeys and comparison values to expect are the ones the recording stored in scenario.json (typed
// from simple-agent's DisplayPasskey line, or shown by us and typed by BlueZ's agent).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseCapture } from '../../../src/capture/index.js';
import { decodeRecords } from '../../../src/inspect/decode.js';
import { analysePairings } from '../../../src/inspect/pairing.js';

const fixture = (name: string) => ({
  capture: readFileSync(new URL(`../../../captures/${name}/capture.btsnoop`, import.meta.url)),
  scenario: JSON.parse(readFileSync(new URL(`../../../captures/${name}/scenario.json`, import.meta.url), 'utf8')) as unknown,
});
const analyse = (bytes: Uint8Array, passkey?: number) => analysePairings(decodeRecords(parseCapture(bytes)), passkey === undefined ? {} : { passkey });
/** Every value stored under `key` anywhere in the scenario. */
function stored(v: unknown, key: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(v)) for (const x of v) stored(x, key, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { if (k === key) out.push(x); stored(x, key, out); }
  return out;
}

describe('decode --pairing on BlueZ 5.66 pairings', () => {
  test.each([
    ['bluez-pairing-sc-passkey-typed', 'typed', 'central'],
    ['bluez-central-passkey', 'passkeys', 'peripheral'],
  ])('%s: LE Secure Connections Passkey Entry, the passkey recovered from the 20 rounds is the one entered', (name, key, role) => {
    const { capture, scenario } = fixture(name);
    const want = Number(String(stored(scenario, key).flat()[0]));
    expect(want).toBeGreaterThan(0);
    const [r, more] = analyse(capture);
    expect(more).toBeUndefined();
    expect(r).toMatchObject({ secureConnections: true, method: 'passkeyResponderDisplays', passkey: want, passkeyRecovered: true,
      checks: { initiatorConfirm: true, responderConfirm: true }, outcome: 'complete', localRole: role });
  });

  test.each([
    ['bluez-pairing-legacy-passkey-typed', 'typed', 'central'],
    ['bluez-central-legacy-passkey', 'passkeys', 'peripheral'],
  ])('%s: LE legacy Passkey Entry, with the passkey entered both confirms verify and the STK is the key the host gave the controller; one digit off, neither does', (name, key, role) => {
    const { capture, scenario } = fixture(name);
    const want = Number(String(stored(scenario, key).flat()[0]));
    const [r] = analyse(capture, want);
    expect(r).toMatchObject({ secureConnections: false, method: 'passkeyResponderDisplays', checks: { initiatorConfirm: true, responderConfirm: true },
      hostKeyMatches: true, outcome: 'complete', localRole: role });
    expect(r!.weaknesses.join('\n')).toMatch(/LE legacy pairing/);
    const [wrong] = analyse(capture, (want + 1) % 1_000_000);
    expect(wrong!.checks).toEqual({ initiatorConfirm: false, responderConfirm: false });
    expect(wrong!.hostKeyMatches).toBe(false);
  });

  test('bluez-pairing-sc-numeric: the six digits the analyser derives (g2) are the ones both users were shown', () => {
    const { capture, scenario } = fixture('bluez-pairing-sc-numeric');
    const [want] = stored(scenario, 'comparison');
    const [r] = analyse(capture);
    expect(r).toMatchObject({ method: 'numericComparison', numericComparison: want, checks: { responderConfirm: true }, outcome: 'complete' });
  });

  test('bluez-pairing-legacy: Just Works, both confirms verify with TK 0, the STK matches, and the weakness is named', () => {
    const [r] = analyse(fixture('bluez-pairing-legacy').capture);
    expect(r).toMatchObject({ secureConnections: false, method: 'justWorks', checks: { initiatorConfirm: true, responderConfirm: true }, hostKeyMatches: true, outcome: 'complete' });
    expect(r!.keys.tk).toBe('00'.repeat(16));
    expect(r!.weaknesses.join('\n')).toMatch(/Just Works/);
  });

  test('bluez-pairing-no-agent: BlueZ (the responder) refuses with 0x0C Numeric Comparison Failed once its agent-less Just Works is asked; the outcome is failed, by the responder', () => {
    const [r] = analyse(fixture('bluez-pairing-no-agent').capture);
    expect(r).toMatchObject({ secureConnections: true, outcome: 'failed', checks: { responderConfirm: true }, failure: { reason: 0x0c, by: 'responder' } });
  });
});
