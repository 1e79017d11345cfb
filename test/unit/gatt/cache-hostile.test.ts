// The disk is hostile (issue 15): a cache file with the right hash but tampered content must be a
// miss (plain discovery, no TypeError, never a write to a handle the peer did not declare), a huge
// file is not read, the store is private (0700 / 0600), and every miss says why in the debug log.
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format } from 'node:util';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { checkCache, FileGattCache, MAX_CACHE_FILE_BYTES, MemoryGattCache, parseCache, serializeCache, type GattCache } from '../../../src/gatt/cache.js';
import { GattClient } from '../../../src/gatt/client.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { log } from '../../../src/log.js';
import { bluezExampleServices, fakePeripheral } from '../../helpers/fake-peripheral.js';

const PEER = 'AA:BB:CC:DD:EE:FF/public';
const FILE = 'aa_bb_cc_dd_ee_ff_public.json';

function connect(db: GattDatabase, cache: GattCache) {
  const fp = fakePeripheral(db);
  const client = new GattClient(fp.pair.central, { clock: fp.clock, peerId: PEER, cache, serviceChanged: false, robustCaching: false });
  return { ...fp, client };
}

let dir: string;
let lines: string[];
const saved = { enabled: log.gatt.enabled, log: log.gatt.log };
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'blewire-hostile-'));
  lines = [];
  log.gatt.enabled = true;
  log.gatt.log = (...args: unknown[]) => { lines.push(format(...args)); };
});
afterEach(async () => {
  log.gatt.enabled = saved.enabled;
  log.gatt.log = saved.log;
  await rm(dir, { recursive: true, force: true });
});

/** A valid cache file for the BlueZ example, as JSON to tamper with. */
async function stored(): Promise<{ db: GattDatabase; json: any }> {
  const db = new GattDatabase(bluezExampleServices());
  await connect(db, new FileGattCache(dir)).client.services();
  return { db, json: JSON.parse(await readFile(join(dir, FILE), 'utf8')) };
}

const tampers: Array<[string, (j: any) => void, RegExp]> = [
  ['a service list that is not a list', j => { j.services = 'x'; }, /services is not a list/],
  ['a characteristic that is not an object', j => { j.services[0].characteristics[0] = 7; }, /characteristic 0 is not an object/],
  ['start > end', j => { j.services[2].start = 0x14; j.services[2].end = 0x13; }, /end 19 before start 20/],
  ['a handle beyond 0xFFFF', j => { j.services[5].end = 0x10000; }, /end is not a handle/],
  ['a __proto__ UUID', j => { j.services[0].uuid = '__proto__'; }, /uuid is not a canonical UUID/],
  ['a short UUID spelling', j => { j.services[0].uuid = '180d'; }, /not a canonical UUID/],
  ['services out of order', j => { [j.services[1], j.services[2]] = [j.services[2], j.services[1]]; }, /inside or before the previous service/],
  ['a characteristic outside its service', j => { j.services[2].characteristics[0].valueHandle = 0x30; }, /do not nest/],
  ['a CCCD redirected to another handle', j => { j.services[3].characteristics[0].descriptors[0].handle = 0x0003; }, /descriptor 0: handle 3 outside/],
  ['a CCCD beyond its characteristic', j => { j.services[3].characteristics[0].descriptors[0].handle = 0x0019; }, /outside 24–24/],
  ['properties that are not an octet', j => { j.services[3].characteristics[0].properties = 0x1ff; }, /properties not an octet/],
  ['a hash of the wrong size', j => { j.hash = j.hash.slice(2); }, /hash is not 16 octets/],
  ['an unknown format', j => { j.format = 2; }, /format 2/],
  ['too many entries', j => { j.services[0].includes = new Array(0x10000).fill(0); }, /more than a database has handles/],
];

describe('a tampered cache file with the matching hash is a miss', () => {
  for (const [what, tamper, reason] of tampers) {
    test(what, async () => {
      const { db, json } = await stored();
      tamper(json);
      await writeFile(join(dir, FILE), JSON.stringify(json));
      lines = [];
      const c = connect(db, new FileGattCache(dir));
      const services = await c.client.services();
      expect(c.client.stats).toMatchObject({ cacheHits: 0, cacheMisses: 1 });
      expect(services.map(s => s.start)).toEqual([0x01, 0x08, 0x12, 0x15, 0x1d, 0x21]);
      expect(lines.some(l => /cache for AA:BB:CC:DD:EE:FF\/public ignored \(miss\)/.test(l) && reason.test(l))).toBe(true);
      // The rediscovered tree replaced the bad file.
      expect(parseCache(await readFile(join(dir, FILE), 'utf8'))).toBeDefined();
    });
  }

  test('subscribe writes 01 00 to the real CCCD, never to the handle a tampered file names', async () => {
    const { db, json } = await stored();
    json.services[3].characteristics[0].descriptors[0].handle = 0x0003;
    await writeFile(join(dir, FILE), JSON.stringify(json));
    const c = connect(db, new FileGattCache(dir));
    const hrm = await c.client.characteristic('heart_rate', 'heart_rate_measurement');
    await c.client.services();
    const writes: number[] = [];
    c.link.onCccd(h => writes.push(h));
    await hrm.subscribe(() => {});
    expect(writes).toEqual([0x18]);
    expect(new TextDecoder().decode(db.value(0x03))).toBe('BlueZ 5.66'); // the Device Name value is untouched
  });
});

test('a file beyond the size cap is refused before it is read', async () => {
  const db = new GattDatabase(bluezExampleServices());
  const fh = await open(join(dir, FILE), 'w');
  await fh.truncate(207 * 1024 * 1024); // sparse: 207 MB by its size, nothing to read
  await fh.close();
  const before = process.memoryUsage().rss;
  const c = connect(db, new FileGattCache(dir));
  await c.client.services();
  expect(c.client.stats.cacheMisses).toBe(1);
  expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  expect(lines.some(l => l.includes(`more than the ${MAX_CACHE_FILE_BYTES} allowed`))).toBe(true);
});

test('the file store is private: directory 0700, files 0600', async () => {
  const sub = join(dir, 'gatt');
  const db = new GattDatabase(bluezExampleServices());
  await connect(db, new FileGattCache(sub)).client.services();
  expect((await stat(sub)).mode & 0o777).toBe(0o700);
  expect((await stat(join(sub, FILE))).mode & 0o777).toBe(0o600);
});

test('the loaded tree is built from fresh objects: nothing but the declared fields survives', () => {
  const db = new GattDatabase(bluezExampleServices());
  const text = serializeCache({ hash: db.hash, services: [{ uuid: '0000180f-0000-1000-8000-00805f9b34fb', primary: true, start: 1, end: 3, includes: [],
    characteristics: [{ uuid: '00002a19-0000-1000-8000-00805f9b34fb', declHandle: 2, valueHandle: 3, properties: 2, end: 3, descriptors: [] }] }] });
  const polluted = text.replace('"primary":true', '"primary":true,"__proto__":{"polluted":1},"extra":[1]');
  const r = checkCache(polluted);
  if (typeof r === 'string') throw new Error(r);
  expect(Object.keys(r.services[0]!)).toEqual(['uuid', 'primary', 'start', 'end', 'includes', 'characteristics']);
  expect(({} as { polluted?: number }).polluted).toBeUndefined();
  expect(Object.getPrototypeOf(r.services[0])).toBe(Object.prototype);
});

test('the memory cache validates the same way', async () => {
  const cache = new MemoryGattCache();
  const db = new GattDatabase(bluezExampleServices());
  await connect(db, cache).client.services();
  const good = await cache.load(PEER);
  expect(good?.services).toHaveLength(6);
  const bad = JSON.parse(serializeCache(good!));
  bad.services[0].end = 0;
  await (cache as unknown as { map: Map<string, string> }).map.set(PEER, JSON.stringify(bad));
  expect(await cache.load(PEER)).toBeUndefined();
});
