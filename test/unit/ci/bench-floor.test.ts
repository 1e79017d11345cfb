// The advertising floor (tools/bench/floor.ts) parses with a hand-written AD parser of its own, so
// that its optimised code does not depend on how V8 inlines blewire's parser (issue 14). These
// tests hold it to the same work: the same values as blewire's parseAd for every field the
// benchmarks read, on the benchmark corpus and on the AD forms the corpus does not carry, and
// every such field read by the floor's per-report reader.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseAd } from '../../../src/gap/ad.js';
import { ADVERTISERS, extendedCorpus, legacyCorpus } from '../../../tools/bench/adv-corpus.js';
import { advertisingFloor, floorParse } from '../../../tools/bench/floor.js';

const ROOT = resolve(import.meta.dirname, '../../..');

/** The fields the benchmarks read, as plain data. */
function fields(p: {
  name: string | undefined; flags: number | undefined; txPower: number | undefined; appearance: number | undefined;
  serviceUuids: readonly string[]; serviceData: ReadonlyMap<string, Uint8Array>; manufacturerData: ReadonlyMap<number, Uint8Array>;
}) {
  return {
    name: p.name, flags: p.flags, txPower: p.txPower, appearance: p.appearance, serviceUuids: [...p.serviceUuids],
    serviceData: [...p.serviceData].map(([k, v]) => [k, [...v]]),
    manufacturerData: [...p.manufacturerData].map(([k, v]) => [k, [...v]]),
  };
}

/** The AD payload of each report in the corpus, read from the event octets (Vol 4, Part E, 7.7.65.2 and 7.7.65.13). */
function payloads(events: Buffer[]): Uint8Array[] {
  return events.map(e => {
    if (e[3] === 0x02) return e.subarray(5 + 9, 5 + 9 + e[5 + 8]!);
    expect(e[3]).toBe(0x0d);
    return e.subarray(5 + 24, 5 + 24 + e[5 + 23]!);
  });
}

const ad = (...structures: number[][]): Uint8Array => Uint8Array.from(structures.flatMap(s => [s.length, ...s]));

describe('benchmark advertising floor', () => {
  test('its parse yields parseAd\'s values on the benchmark corpus (legacy advertising data + scan response merged, extended)', () => {
    const legacy = payloads(legacyCorpus(2));
    let checked = 0;
    for (let i = 0; i + 1 < legacy.length; i += 2) {
      const merged = Uint8Array.from([...legacy[i]!, ...legacy[i + 1]!]);
      for (const d of [legacy[i]!, legacy[i + 1]!, merged]) {
        expect(fields(floorParse(d))).toEqual(fields(parseAd(d)));
        checked++;
      }
    }
    for (const d of payloads(extendedCorpus(2))) {
      expect(fields(floorParse(d))).toEqual(fields(parseAd(d)));
      checked++;
    }
    expect(checked).toBe(3 * 2 * ADVERTISERS + 2 * ADVERTISERS);
    // The corpus exercises every field the benchmarks read.
    const ext = fields(floorParse(payloads(extendedCorpus(1))[1]!));
    expect(ext.name).toBe('Sensor-1-long');
    expect(ext.flags).toBe(0x06);
    expect(ext.txPower).toBe(4);
    expect(ext.manufacturerData.map(([k]) => k)).toEqual([0x004c, 0x0059]);
  });

  test('its parse yields parseAd\'s values on AD forms the corpus lacks', () => {
    const name = [...Buffer.from('Thermomètre')];
    const cases = [
      // 32- and 128-bit UUID lists with a repeat across lists; 32- and 128-bit service data.
      ad([0x05, 0x78, 0x56, 0x34, 0x12], [0x03, 0x0d, 0x18, 0x0d, 0x18], [0x05, 0x78, 0x56, 0x34, 0x12],
        [0x07, ...Array.from({ length: 16 }, (_, i) => i * 17)], [0x20, 0x01, 0x02, 0x03, 0x04, 0xaa],
        [0x21, ...Array.from({ length: 16 }, (_, i) => 255 - i), 0xbb, 0xcc]),
      // A complete name then a shortened one (the complete one wins), NUL padding, appearance, negative TX power.
      ad([0x09, ...name, 0, 0], [0x08, 0x41, 0x42], [0x19, 0x41, 0x03], [0x0a, 0xf4]),
      // A shortened name only, a company twice (the last wins), then early termination.
      Uint8Array.from([...ad([0x08, 0x61]), ...ad([0xff, 0x4c, 0x00, 1], [0xff, 0x4c, 0x00, 2]), 0, 0x09, 0x5a]),
      // A name longer than 32 octets (extended advertising), non-ASCII.
      ad([0x09, ...Buffer.from('Ωmega sensor with a rather long name, 40+')]),
      // Nothing.
      new Uint8Array(0),
    ];
    for (const d of cases) expect(fields(floorParse(d))).toEqual(fields(parseAd(d)));
    expect(floorParse(cases[1]!).name).toBe('Thermomètre');
    expect(floorParse(cases[2]!).manufacturerData.get(0x004c)).toEqual(Uint8Array.of(2));
  });

  test('reads every parsed field the blewire contender reads, and delivers one object per report', async () => {
    const src = (f: string) => readFileSync(resolve(ROOT, 'tools/bench', f), 'utf8');
    const body = (text: string, fn: string) => text.slice(text.indexOf(`function ${fn}(`), text.indexOf('\n}\n', text.indexOf(`function ${fn}(`)));
    const benchReads = new Set([...body(src('scanner.bench.ts'), 'readAll').matchAll(/\bad\.(\w+)/g)].map(m => m[1]!));
    const parsedKeys = Object.keys(floorParse(new Uint8Array(0)));
    const floorReads = new Set([...body(src('floor.ts'), 'readAll').matchAll(/\bp\.(\w+)/g)].map(m => m[1]!));
    const notParsed = ['rssi', 'address', 'addressType', 'timestamp', 'connectable', 'scannable', 'data', 'scanResponse'];
    const benchParsed = [...benchReads].filter(k => !notParsed.includes(k));
    expect(benchParsed.length).toBeGreaterThan(5);
    expect(parsedKeys.sort()).toEqual(benchParsed.sort());
    expect([...floorReads].sort()).toEqual(benchParsed.sort());

    const corpus = [...legacyCorpus(2), ...extendedCorpus(1)];
    const floor = advertisingFloor(feed => (c: Buffer[]) => { for (const p of c) feed(p); });
    floor.feed(corpus);
    expect(floor.delivered()).toBe(2 * 2 * ADVERTISERS + ADVERTISERS);
  });

  test('keeps copies of its own: a transport reusing the packet\'s buffer changes nothing it holds', () => {
    const floor = advertisingFloor(feed => (c: Buffer[]) => { for (const p of c) feed(p); });
    const [first] = legacyCorpus(1);
    const again = Buffer.from(first!);
    floor.feed([first!]);
    first!.fill(0x55, 14); // the transport writes its next read over the same buffer (AD from offset 14)
    floor.feed([again]); // the same report again: the same data as the copy
    expect(floor.changes()).toBe(1);
    expect(floor.delivered()).toBe(2);
  });
});
