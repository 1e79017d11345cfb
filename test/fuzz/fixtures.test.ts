// Replays what `npm run fuzz` saved (issue 15): every failing input stream under test/fixtures/fuzz/
// is fed, as the run fed it, to a fresh persistent adapter (or the capture reader) and must now pass
// every check (no escape, no hung promise, no leaked timer, bounded memory). The machinery itself is
// proven here too: a short stream of every layer passes, and a planted fault is caught, saved and
// reproduced by the replay.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { LAYERS, StackTarget } from '../../tools/fuzz/targets.js';
import { CHECK_EVERY, loadFixtures, replayFixture, runLayer } from '../../tools/fuzz/stream.js';

const DIR = fileURLToPath(new URL('../fixtures/fuzz/', import.meta.url));
const saved = loadFixtures(DIR);

describe('saved fuzz inputs replay clean', () => {
  test('the fixture directory holds only well-formed fixtures', () => {
    for (const { name, fixture } of saved) {
      expect(LAYERS, name).toContain(fixture.layer);
      expect(fixture.inputs.length, name).toBeGreaterThan(0);
      expect(fixture.inputs.length, name).toBeLessThanOrEqual(CHECK_EVERY + 64);
    }
  });

  test.each(saved.map(s => [s.name, s.fixture] as const))('%s', async (_name, fixture) => {
    expect(await replayFixture(fixture)).toEqual([]);
  }, 120_000);
});

describe('the stream fuzzer (npm run fuzz) itself', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'blewire-fuzz-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test.each(LAYERS.map(l => [l]))('%s: a short stream on one adapter passes every check', async layer => {
    const r = await runLayer(layer, { seed: 7, packets: 3000, ms: 60_000, saveDir: tmp });
    expect(r.failures.map(f => f.problems)).toEqual([]);
    expect(r.packets).toBeGreaterThanOrEqual(3000);
    expect(r.checkpoints).toBeGreaterThanOrEqual(1);
    // The files layer reads some inputs through the file system and hands the rest to the decoders.
    if (layer === 'files') expect(r.viaFiles! > 300 && r.viaFiles! < 3000, `${r.viaFiles} of 3000 via files`).toBe(true);
  }, 120_000);

  test('a planted fault (the receive path throws on one marker input) is caught, saved and reproduced by the replay', async () => {
    const feed = StackTarget.prototype.feed;
    const marker = 0xa5;
    // A broken product: an exception escapes (as from a listener) on any ATT PDU ending in the marker.
    const original = StackTarget.prototype.feed;
    StackTarget.prototype.feed = function (this: StackTarget, p: Uint8Array): number {
      if (p[0] === 0x02 && p[p.length - 1] === marker && p.length > 9 && p[7] === 0x04) {
        queueMicrotask(() => { throw new TypeError('planted: cannot read properties of undefined'); });
      }
      return original.call(this, p);
    };
    try {
      const r = await runLayer('att-client', { seed: 11, packets: 4000, ms: 60_000, saveDir: tmp, maxFailures: 1 });
      expect(r.failures).toHaveLength(1);
      expect(r.failures[0]!.problems.join('\n')).toMatch(/escaped to the process: TypeError: planted/);
      const files = readdirSync(tmp).filter(f => f.startsWith('att-client-'));
      expect(files).toHaveLength(1);
      const [{ fixture }] = loadFixtures(tmp).filter(f => f.name === files[0]);
      expect(fixture!.inputs.some(h => h.endsWith('a5'))).toBe(true);
      expect((await replayFixture(fixture!)).join('\n')).toMatch(/planted/);
    } finally {
      StackTarget.prototype.feed = feed;
    }
    // With the fault gone, the same saved input replays clean.
    const [{ fixture }] = loadFixtures(tmp).filter(f => f.name.startsWith('att-client-'));
    expect(await replayFixture(fixture!)).toEqual([]);
  }, 120_000);
});
