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
import { registerTransport } from '../../../src/transport/open.js';
import { createSimulator, HEART_RATE_SENSOR } from '../../../src/sim/index.js';
import { captureOutput } from './output.js';

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
});
