// Values decoded next to the hex by read / notify (src/cli/values.ts), from the byte layouts of the
// GATT Specification Supplement and the Presentation Format descriptor (Core Vol 3, Part G, 3.3.3.5).
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uuid } from '../../../src/codec/uuid.js';
import { decodeValue, parsePresentationFormat } from '../../../src/cli/values.js';
import { run as read } from '../../../src/cli/read.js';
import { run as notify } from '../../../src/cli/notify.js';
import { run as explore } from '../../../src/cli/explore.js';
import { captureOutput } from './output.js';

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const d = (u: number, v: Uint8Array, f?: Uint8Array) => decodeValue(uuid(u), v, f ? parsePresentationFormat(f) : undefined);

test('Battery Level: a percentage', () => {
  expect(d(0x2a19, b(0x57))).toEqual({ text: '87 %', fields: { percent: 87 } });
  expect(d(0x2a19, b())).toBeUndefined();
});

test('Heart Rate Measurement: every flag', () => {
  expect(d(0x2a37, b(0x00, 72))?.text).toBe('72 bpm');
  expect(d(0x2a37, b(0x06, 72))?.text).toBe('72 bpm, contact');
  expect(d(0x2a37, b(0x04, 72))?.text).toBe('72 bpm, no contact');
  expect(d(0x2a37, b(0x01, 0x2c, 0x01))?.text).toBe('300 bpm'); // UINT16
  // Energy expended 0x0123 kJ, two RR intervals of 1024 and 512 (1/1024 s) = 1000 ms, 500 ms.
  expect(d(0x2a37, b(0x18, 60, 0x23, 0x01, 0x00, 0x04, 0x00, 0x02))).toEqual({
    text: '60 bpm, energy 291 kJ, RR 1000 500 ms', fields: { bpm: 60, energyKj: 291, rrMs: [1000, 500] },
  });
  expect(d(0x2a37, b(0x01, 0x2c))?.text).toBe('too short for a Heart Rate Measurement');
});

test('Temperature Measurement: IEEE 11073 FLOAT, Celsius or Fahrenheit', () => {
  // 368 × 10^-1 = 36.8 °C: mantissa 0x000170, exponent 0xff.
  expect(d(0x2a1c, b(0x00, 0x70, 0x01, 0x00, 0xff))?.text).toBe('36.8 °C');
  expect(d(0x2a1c, b(0x01, 0xfe, 0x03, 0x00, 0xfe))?.text).toBe('10.22 °F'); // 1022 × 10^-2
  expect(d(0x2a1c, b(0x00, 0xff, 0xff, 0x7f, 0x00))?.text).toBe('temperature not available'); // NaN
});

test('strings', () => {
  expect(d(0x2a29, new TextEncoder().encode('Acme Sports'))?.text).toBe('"Acme Sports"');
});

test('Presentation Format: format, exponent and unit', () => {
  // sint16, exponent -2, unit 0x272f (°C): 0x0929 = 2345 → 23.45 °C.
  expect(d(0xfff1, b(0x29, 0x09), b(0x0e, 0xfe, 0x2f, 0x27, 0x01, 0x00, 0x00))).toEqual({
    text: '23.45 °C', fields: { value: 23.45, unit: '°C', format: 0x0e },
  });
  // uint8 percentage, no exponent.
  expect(d(0xfff1, b(50), b(0x04, 0x00, 0xad, 0x27, 0x01, 0x00, 0x00))?.text).toBe('50 %');
  // utf8s, unitless.
  expect(d(0xfff1, new TextEncoder().encode('on'), b(0x19, 0x00, 0x00, 0x27, 0x01, 0x00, 0x00))?.text).toBe('"on"');
  // A unit we have no symbol for is named by its code.
  expect(d(0xfff1, b(7), b(0x04, 0x00, 0x99, 0x27, 0x01, 0x00, 0x00))?.text).toBe('7 (unit 0x2799)');
  // Too short for its format: no decoded form.
  expect(d(0xfff1, b(1), b(0x06, 0x00, 0x00, 0x27, 0x01, 0x00, 0x00))).toBeUndefined();
  expect(parsePresentationFormat(b(0x04, 0x00))).toBeUndefined();
});

const PULSE = 'D4:1E:35:7A:00:01';
const dir = mkdtempSync(join(tmpdir(), 'blewire-values-'));
beforeEach(() => {
  vi.stubEnv('BLEWIRE_TRANSPORT', '');
  vi.stubEnv('BLEWIRE_CAPTURE', '');
  vi.stubEnv('XDG_CACHE_HOME', join(dir, 'cache'));
});
afterEach(() => { vi.restoreAllMocks(); vi.unstubAllEnvs(); });

test('read on the simulator: hex and the decoded value; --json keeps both', async () => {
  let out = captureOutput();
  expect(await read([PULSE, 'battery_level', '--transport', 'sim', '--no-cache'])).toBe(0);
  expect(out.stdout()).toEqual(['57  87 %']);
  vi.restoreAllMocks();
  out = captureOutput();
  expect(await read([PULSE, '2a19', '--transport', 'sim', '--no-cache', '--json'])).toBe(0);
  expect(JSON.parse(out.stdout()[0]!)).toMatchObject({ uuid: uuid(0x2a19), value: '57', decoded: { text: '87 %', percent: 87 } });
});

test('notify --json: time, raw hex and the decoded fields', async () => {
  const out = captureOutput();
  expect(await notify([PULSE, '2a37', '--transport', 'sim', '--no-cache', '--json', '--count', '2'])).toBe(0);
  const lines = out.stdout().map(l => JSON.parse(l) as { t: string; value: string; decoded: { bpm: number; contact: boolean } });
  expect(lines).toHaveLength(2);
  for (const l of lines) {
    expect(Number.isNaN(Date.parse(l.t))).toBe(false);
    expect(l.value).toMatch(/^06[0-9a-f]{2}$/);
    expect(l.decoded.bpm).toBe(Number.parseInt(l.value.slice(2), 16));
    expect(l.decoded.contact).toBe(true);
  }
});

test('explore: the tree and --json carry the decoded values next to the hex', async () => {
  let out = captureOutput();
  expect(await explore([PULSE, '--transport', 'sim', '--no-cache'])).toBe(0);
  const text = out.stdout().join('\n');
  expect(text).toMatch(/characteristic 0x2a19 \(battery_level\)  0x[0-9a-f]{4}  \([^)]*read[^)]*\)  = 57  87 %/);
  vi.restoreAllMocks();
  out = captureOutput();
  expect(await explore([PULSE, '--transport', 'sim', '--no-cache', '--json'])).toBe(0);
  const tree = JSON.parse(out.stdout().join('\n')) as { services: { characteristics: { uuid: string; value?: string; decoded?: Record<string, unknown> }[] }[] };
  const chars = tree.services.flatMap(s => s.characteristics);
  expect(chars.find(c => c.uuid === uuid(0x2a19))).toMatchObject({ value: '57', decoded: { text: '87 %', percent: 87 } });
  // Device Name is a string: its decoded form is the quoted text.
  expect(chars.find(c => c.uuid === uuid(0x2a00))).toMatchObject({ value: '50756c7365204852', decoded: { text: '"Pulse HR"' } });
});
