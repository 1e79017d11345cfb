// Bond stores: what a real in-memory pairing leaves is stored and read back intact (memory and file),
// files are private (0600 in a 0700 directory) and named only from the parsed address, and a corrupt,
// oversized, mismatched or hostile file is reported and ignored, never thrown.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { ArgumentError } from '../../../src/errors.js';
import { FileBondStore, MAX_BOND_CCCDS, MemoryBondStore, bondFromPairing, bondKey, defaultBondDir, type Bond } from '../../../src/smp/bonds.js';
import { SmpIoCapability as IO } from '../../../src/smp/pdus.js';
import { Pair, R_ADDR } from './harness.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'blewire-bonds-'));
  dirs.push(d);
  return d;
}

function pairedBond(sc: boolean): Bond {
  const p = new Pair({ secureConnections: sc, io: IO.KeyboardOnly, mitm: true, keys: { csrk: new Uint8Array(16).fill(3) } },
    { secureConnections: sc, io: IO.DisplayOnly, keys: { irk: new Uint8Array(16).fill(9), identity: { type: 1, address: 'C0:01:02:03:04:05' }, csrk: new Uint8Array(16).fill(4) } });
  p.i.pair();
  p.run();
  return bondFromPairing(p.result('i')!, R_ADDR)!;
}

describe.each([false, true])('a pairing (sc %s) stored and loaded', sc => {
  test('memory store', async () => {
    const s = new MemoryBondStore();
    const b = pairedBond(sc);
    await s.save(b);
    expect(await s.load({ type: 1, address: 'c0:01:02:03:04:05' })).toEqual(b);
    expect(await s.list()).toHaveLength(1);
    await s.remove(b.identity);
    expect(await s.load(b.identity)).toBeUndefined();
  });
  test('file store: same bond back, private modes, one file named by the identity', async () => {
    const dir = join(tmp(), 'bonds');
    const s = new FileBondStore(dir);
    const b = pairedBond(sc);
    expect(b.identity).toEqual({ type: 1, address: 'C0:01:02:03:04:05' });
    expect(b.authenticated).toBe(true);
    await s.save(b);
    expect(readdirSync(dir)).toEqual(['random-C00102030405.json']);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'random-C00102030405.json')).mode & 0o777).toBe(0o600);
    const back = await new FileBondStore(dir).load(b.identity);
    expect(back).toEqual(b);
    expect(await s.list()).toEqual([b]);
    const json = JSON.parse(readFileSync(join(dir, 'random-C00102030405.json'), 'utf8'));
    expect(json.format).toBe('blewire-bond/1');
    await s.remove(b.identity);
    expect(readdirSync(dir)).toEqual([]);
  });
});

test('identity addresses that could name another path are refused', async () => {
  const s = new FileBondStore(tmp());
  for (const address of ['../../etc/passwd', 'C0:01:02:03:04:05/..', 'C0:01:02:03:04', '']) {
    await expect(s.load({ type: 0, address })).rejects.toThrow(ArgumentError);
  }
  expect(() => bondKey({ type: 2 as 0, address: 'C0:01:02:03:04:05' })).toThrow(ArgumentError);
});

test('corrupt, oversized, mismatched and non-regular files are reported and ignored', async () => {
  const dir = tmp();
  const errors: string[] = [];
  const s = new FileBondStore(dir, { onError: (p, e) => errors.push(`${p.split('/').pop()}: ${e.message}`) });
  const good = pairedBond(true);
  await s.save(good);
  const json = JSON.parse(readFileSync(join(dir, 'random-C00102030405.json'), 'utf8'));
  writeFileSync(join(dir, 'public-000000000001.json'), '{ not json');
  writeFileSync(join(dir, 'public-000000000002.json'), JSON.stringify({ ...json, identity: { type: 'public', address: '00:00:00:00:00:02' }, keySize: 99 }));
  writeFileSync(join(dir, 'public-000000000003.json'), JSON.stringify({ ...json, identity: { type: 'public', address: '00:00:00:00:00:03' }, ltk: { key: 'zz', ediv: 1, rand: '00' } }));
  writeFileSync(join(dir, 'public-000000000004.json'), JSON.stringify(json)); // another peer's bond under this name
  writeFileSync(join(dir, 'public-000000000005.json'), 'x'.repeat(17 * 1024));
  writeFileSync(join(dir, 'public-000000000006.json'), Buffer.from([0xff, 0xfe, 0x00])); // not UTF-8
  symlinkSync('/dev/zero', join(dir, 'public-000000000007.json'));
  writeFileSync(join(dir, 'notes.txt'), 'ignored: not a bond file name');
  const all = await s.list();
  expect(all).toEqual([good]);
  expect(errors.map(e => e.split(':')[0]).sort()).toEqual([1, 2, 3, 4, 5, 6, 7].map(n => `public-00000000000${n}.json`));
  expect(await s.load({ type: 0, address: '00:00:00:00:00:04' })).toBeUndefined();
  expect(errors.some(e => /not of its file name/.test(e))).toBe(true);
});

test('CCCD values of our GATT server ride in the bond: stored, read back, and a bad record makes the file unusable (reported, ignored)', async () => {
  const dir = tmp();
  const errors: string[] = [];
  const s = new FileBondStore(dir, { onError: (p, e) => errors.push(`${p.split('/').pop()}: ${e.message}`) });
  const svc = '6e400001-b5a3-f393-e0a9-e50e24dcca9e', chr = '0000fff1-0000-1000-8000-00805f9b34fb';
  const good = { ...pairedBond(true), cccds: { [`${svc}/${chr}`]: 1, [`${svc}/0000fff2-0000-1000-8000-00805f9b34fb`]: 2 } };
  await s.save(good);
  expect(await s.load(good.identity)).toEqual(good);
  const json = JSON.parse(readFileSync(join(dir, 'random-C00102030405.json'), 'utf8'));
  expect(json.cccds).toEqual(good.cccds);
  const bad = (n: number, cccds: unknown): void => writeFileSync(join(dir, `public-00000000000${n}.json`),
    JSON.stringify({ ...json, identity: { type: 'public', address: `00:00:00:00:00:0${n}` }, cccds }));
  bad(1, { [`${svc}/${chr}`]: 4 }); // bits beyond notification | indication
  bad(2, { '../../x': 1 }); // not "service/characteristic"
  bad(3, Object.fromEntries(Array.from({ length: MAX_BOND_CCCDS + 1 }, (_, i) => [`${svc}/0000${(0x1000 + i).toString(16)}-0000-1000-8000-00805f9b34fb`, 1])));
  bad(4, [1, 2]);
  expect(await s.list()).toEqual([good]);
  expect(errors.map(e => e.split(':')[0]).sort()).toEqual([1, 2, 3, 4].map(n => `public-00000000000${n}.json`));
  expect(errors.join('\n')).toMatch(/more than 64/);
  // Saving a bond with a bad record is refused before anything is written.
  await expect(s.save({ ...good, cccds: { x: 1 } })).rejects.toThrow(/serviceUuid\/characteristicUuid/);
  expect(await s.load(good.identity)).toEqual(good);
});

test('the default directory follows XDG_STATE_HOME', () => {
  const saved = process.env['XDG_STATE_HOME'];
  try {
    process.env['XDG_STATE_HOME'] = '/var/tmp/state';
    expect(defaultBondDir()).toBe('/var/tmp/state/blewire/bonds');
    delete process.env['XDG_STATE_HOME'];
    expect(defaultBondDir()).toMatch(/\/\.local\/state\/blewire\/bonds$/);
  } finally {
    if (saved === undefined) delete process.env['XDG_STATE_HOME'];
    else process.env['XDG_STATE_HOME'] = saved;
  }
});

test('a pairing without bonding leaves no bond', () => {
  const p = new Pair({ bond: false }, {});
  p.i.pair();
  p.run();
  expect(bondFromPairing(p.result('i')!, R_ADDR)).toBeUndefined();
});
