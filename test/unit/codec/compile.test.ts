// Pins the two ways of compiling row readers (src/codec/compile.ts): generated code and the no-eval
// closures give the same objects, key for key in the same order, for every HCI event and LE sub-event
// fixture (wire bytes from the Core spec) and on random bytes; a runtime that forbids `new Function`
// falls back to closures by itself.
import { describe, expect, test, vi } from 'vitest';
import fc from 'fast-check';
import { ByteReader } from '../../../src/bytes/reader.js';
import { fromHex } from '../../../src/bytes/hex.js';
import { compileRow, compiledStruct, canGenerateCode, getCodegen, setCodegen } from '../../../src/codec/compile.js';
import { HCI_EVENTS } from '../../../src/hci/events.js';
import { LE_META_EVENTS, advertisingReport } from '../../../src/hci/le-events.js';
import { bdAddr, i8, lengthPrefixed, u8 } from '../../../src/codec/field.js';
import { ArgumentError, DecodeError } from '../../../src/errors.js';
import { EVENT_FIXTURES, LE_EVENT_FIXTURES, RETURN_FIXTURES } from '../hci/fixtures.js';
import { fuzzRuns } from '../../helpers/fuzz-runs.js';

type Row = { code: number; fields: Record<string, never>; trailing?: 'error' | 'ignore' };
const readersFor = (mode: 'generate' | 'closures') => {
  const ev = new Map<number, (r: ByteReader) => unknown>();
  const le = new Map<number, (r: ByteReader) => unknown>();
  for (const [kind, row] of Object.entries(HCI_EVENTS) as unknown as Array<[string, Row]>) {
    ev.set(row.code, compileRow({ type: 'event', kind }, row.fields, row.trailing ?? 'error', kind, mode));
  }
  for (const [kind, row] of Object.entries(LE_META_EVENTS) as unknown as Array<[string, Row]>) {
    le.set(row.code, compileRow({ type: 'event', kind }, row.fields, row.trailing ?? 'error', kind, mode));
  }
  return (h4: Uint8Array): unknown => {
    const r = new ByteReader(h4, 'hci', 'event');
    r.u8(); // indicator
    const code = r.u8();
    r.u8(); // length
    const read = code === 0x3e ? le.get(r.u8()) : ev.get(code);
    return read ? read(r) : 'no row'; // vendor and unknown codes are not table rows

  };
};
/** Outcome as comparable text: the object with its key order, or the error's class and message. */
const outcome = (f: () => unknown): string => {
  try {
    return JSON.stringify(f(), (_, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v));
  } catch (e) {
    return `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
};

describe('compiled row readers: generated code and closures agree', () => {
  const gen = readersFor('generate');
  const clo = readersFor('closures');
  const fixtures = [...EVENT_FIXTURES, ...LE_EVENT_FIXTURES, ...RETURN_FIXTURES];
  test('every event fixture decodes to the same object, keys in the same order', () => {
    expect(fixtures.length).toBeGreaterThan(60);
    for (const f of fixtures) {
      const bytes = fromHex(f.hex);
      const a = outcome(() => gen(bytes)), b = outcome(() => clo(bytes));
      expect(b, f.hex).toBe(a);
      expect(a).toMatch(/^\{|^"no row"$/); // decoded, not an error
    }
  });
  test('every truncation fails the same way', () => {
    for (const f of fixtures) {
      const bytes = fromHex(f.hex);
      for (let n = 4; n < bytes.length; n++) {
        const cut = bytes.slice(0, n);
        expect(outcome(() => clo(cut))).toBe(outcome(() => gen(cut)));
      }
    }
  });
  test('random bodies under every LE sub-event code agree', () => {
    const codes = Object.values(LE_META_EVENTS).map(r => r.code);
    fc.assert(fc.property(fc.constantFrom(...codes), fc.uint8Array({ maxLength: 80 }), (code, body) => {
      const h4 = Uint8Array.of(0x04, 0x3e, body.length + 1, code, ...body);
      expect(outcome(() => clo(h4))).toBe(outcome(() => gen(h4)));
    }), fuzzRuns(3000));
  });
  test('structs: both paths read the same report', () => {
    const fields = { eventType: u8, addressType: u8, address: bdAddr, data: lengthPrefixed(u8), rssi: i8 };
    const bytes = fromHex('00 01 5544332211c0 03 020106 c4');
    const read = (f: { read(r: ByteReader): unknown }) => outcome(() => f.read(new ByteReader(bytes, 'hci', 'report')));
    expect(read(compiledStruct(fields, 'closures'))).toBe(read(compiledStruct(fields, 'generate')));
    expect(read(compiledStruct(fields, 'generate'))).toBe(read(advertisingReport));
    expect(read(advertisingReport)).toBe('{"eventType":0,"addressType":1,"address":"C0:11:22:33:44:55","data":[2,1,6],"rssi":-60}');
  });
});

describe('choosing the mode', () => {
  test('auto uses generated code where the runtime allows it, closures where it does not', () => {
    expect(getCodegen()).toBe('auto');
    expect(canGenerateCode()).toBe(true);
    const fields = { a: u8 };
    const generated = compileRow<{ a: number }>({ kind: 'x' }, fields, 'error', 'x');
    expect(generated.name).toBe('read'); // the generated function's name
    setCodegen('closures');
    try {
      const closure = compileRow<{ a: number }>({ kind: 'x' }, fields, 'error', 'x');
      expect(closure.name).not.toBe('read');
      expect(closure(new ByteReader(Uint8Array.of(7), 'hci', 'x'))).toEqual({ kind: 'x', a: 7 });
      expect(() => closure(new ByteReader(Uint8Array.of(7, 8), 'hci', 'x'))).toThrow(DecodeError);
    } finally {
      setCodegen('auto');
    }
    expect(() => setCodegen('eval' as never)).toThrow(ArgumentError);
  });
  test('a runtime that forbids new Function (CSP) gets closures without an error', async () => {
    vi.resetModules();
    const real = globalThis.Function;
    const forbidding = new Proxy(real, {
      construct() { throw new EvalError('Refused to evaluate a string as JavaScript (CSP)'); },
      apply() { throw new EvalError('Refused to evaluate a string as JavaScript (CSP)'); },
    });
    (globalThis as { Function: unknown }).Function = forbidding;
    try {
      const fresh = await import('../../../src/codec/compile.js?csp' as string) as typeof import('../../../src/codec/compile.js');
      expect(fresh.canGenerateCode()).toBe(false);
      const read = fresh.compileRow<{ kind: string; a: number }>({ kind: 'x' }, { a: u8 }, 'error', 'x');
      expect(read(new ByteReader(Uint8Array.of(9), 'hci', 'x'))).toEqual({ kind: 'x', a: 9 });
    } finally {
      (globalThis as { Function: unknown }).Function = real;
    }
  });
  test("the whole HCI decode runs on closures when 'closures' is chosen: nothing is built from source, same results", async () => {
    const fixtures = [...EVENT_FIXTURES, ...LE_EVENT_FIXTURES, ...RETURN_FIXTURES];
    const real = globalThis.Function;
    /** A fresh module graph with this mode: every fixture decoded as whole H4 packets, and how many functions were built from source. */
    const run = async (m: 'auto' | 'closures') => {
      vi.resetModules();
      let built = 0;
      const fresh = await import('../../../src/codec/compile.js') as typeof import('../../../src/codec/compile.js');
      fresh.setCodegen(m);
      (globalThis as { Function: unknown }).Function = new Proxy(real, {
        construct(t, a, nt) { built++; return Reflect.construct(t, a, nt) as object; },
        apply(t, self, a) { built++; return Reflect.apply(t, self, a) as unknown; },
      });
      try {
        const { decodeHciPacket } = await import('../../../src/hci/packets.js') as typeof import('../../../src/hci/packets.js');
        const out = fixtures.map(f => outcome(() => decodeHciPacket(fromHex(f.hex))));
        return { out, built };
      } finally {
        (globalThis as { Function: unknown }).Function = real;
        vi.resetModules();
      }
    };
    const generated = await run('auto');
    const closures = await run('closures');
    expect(generated.built).toBeGreaterThan(20); // the counter sees code generation where it happens
    expect(closures.built).toBe(0);
    expect(closures.out).toEqual(generated.out);
    expect(closures.out.every(o => o.startsWith('{'))).toBe(true);
  });
});
