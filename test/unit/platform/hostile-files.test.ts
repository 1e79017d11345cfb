// Hostile files found by the `files` layer of `npm run fuzz` (issue 15, "the disk is hostile too"):
// each input here made a reader throw an untyped TypeError / RangeError before its fix; now each is a
// typed miss or error. Values that break String() (an object whose toString is not a function) or
// JSON.stringify (a list nested 20 000 deep) were put into error messages; a config section set to
// null was read as an object; the gateway's config file was read whole with readFileSync (a FIFO or
// /dev/zero behind it never ends) and merged `__proto__` keys.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { checkCache, FileGattCache } from '../../../src/gatt/cache.js';
import { parseGrants, GrantFile } from '../../../src/web-bluetooth/grants.js';
import { MAX_CONFIG_FILE_BYTES, readConfigFile, resolveConfig } from '../../../src/apps/gateway/config.js';
import { GatewayError } from '../../../src/apps/gateway/errors.js';

const DEEP = '['.repeat(20_000) + ']'.repeat(20_000);
const NO_TO_STRING = '{"toString":1}';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'blewire-hostile-files-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('GATT cache', () => {
  test('a format that cannot be turned into a string is a miss, not a TypeError on every connect', async () => {
    const text = `{"format":${NO_TO_STRING},"hash":null,"services":[]}`;
    expect(checkCache(text)).toMatch(/format of type object/);
    writeFileSync(join(dir, 'aa_bb.json'), text);
    await expect(new FileGattCache(dir).load('aa:bb')).resolves.toBeUndefined();
  });
});

describe('Web Bluetooth permissions file', () => {
  const file = (services: string): string =>
    `{"format":"blewire-web-bluetooth-permissions","version":1,"devices":[{"id":"AAECAwQFBgcICQoLDA0ODw==","address":"C0:11:22:33:44:55","addressType":"random","services":${services}}]}`;
  test.each([['an object without toString', `[${NO_TO_STRING}]`], ['a deeply nested list', `[${DEEP}]`]])('%s among the services: refused with a reason', async (_n, services) => {
    expect(parseGrants(file(services))).toMatch(/services holds a (object|list), not a canonical UUID/);
    const path = join(dir, 'permissions.json');
    writeFileSync(path, file(services));
    const g = new GrantFile(path);
    await expect(g.load()).resolves.toEqual([]);
    expect(g.rejected).toMatch(/not a canonical UUID/);
  });
});

describe('gateway config file', () => {
  const base = { mqtt: { url: 'mqtt://localhost:1883' } };
  const resolve = (file: unknown) => () => resolveConfig({ file, env: {}, defaultId: 'gw' });

  test.each([
    ['a deeply nested key value', { ...base, keys: { 'C0:11:22:33:44:55': JSON.parse(DEEP) } }, /keys\[/],
    ['a deeply nested id', { ...base, id: JSON.parse(DEEP) }, /id a deeply nested list/],
    ['protocolVersion without toString', { mqtt: { ...base.mqtt, protocolVersion: JSON.parse(NO_TO_STRING) } }, /protocolVersion/],
    ['publish: null', { ...base, publish: null }, /publish must be an object/],
    ['buffer: 5', { ...base, buffer: 5 }, /buffer must be an object/],
    ['mqtt: []', { mqtt: [] }, /mqtt must be an object/],
  ])('%s: GatewayError EGW_CONFIG', (_n, file, message) => {
    const f = resolve(file);
    expect(f).toThrow(GatewayError);
    expect(f).toThrow(message);
  });

  test('__proto__ / constructor keys of the file do not reach the merged config', () => {
    const file = JSON.parse('{"mqtt":{"url":"mqtt://localhost:1883"},"__proto__":{"id":"from-proto","polluted":1},"constructor":{"x":1}}');
    const c = resolveConfig({ file, env: {}, defaultId: 'gw' });
    expect(c.id).toBe('gw');
    expect((c as unknown as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.getPrototypeOf(c)).toBe(Object.prototype);
  });

  test('readConfigFile: not a regular file, too large, endless, a loop, missing, not JSON: GatewayError before anything is read', () => {
    const p = (n: string) => join(dir, n);
    mkdirSync(p('a-directory'));
    writeFileSync(p('huge'), '');
    truncateSync(p('huge'), MAX_CONFIG_FILE_BYTES + 1);
    symlinkSync('/dev/zero', p('zero'));
    symlinkSync(p('loop'), p('loop'));
    writeFileSync(p('bad'), Uint8Array.of(0x7b, 0xff, 0x7d));
    for (const [name, why] of [['a-directory', /not a regular file/], ['huge', /more than/], ['zero', /not a regular file/], ['loop', /cannot read/],
      ['missing', /cannot read/], ['bad', /not UTF-8 JSON/]] as const) {
      expect(() => readConfigFile(p(name)), name).toThrow(GatewayError);
      expect(() => readConfigFile(p(name)), name).toThrow(why);
    }
    writeFileSync(p('ok'), JSON.stringify(base));
    expect(readConfigFile(p('ok'))).toEqual(base);
  });
});
