import type { ByteReader } from '../bytes/reader.js';
import { ArgumentError } from '../errors.js';
import { struct, type Field, type Fields, type Infer } from './field.js';

/**
 * Row readers for the hot receive paths (advertising reports arrive by the thousand per second,
 * notifications faster). The generic table decoder stores fields by computed key into an empty
 * object, which V8 cannot specialise once many row shapes share it. A compiled reader builds each
 * decoded PDU as one object literal, so every PDU of a kind has one fixed shape and every field read
 * has its own call site:
 *
 *   (r) => ({ type: 'event', kind: 'leAdvertisingReport', reports: F[0].read(r) })
 *
 * Two ways to get there, with identical output (same keys in the same order, same reads, same
 * trailing-byte rule as `Table.decodeBody`):
 *  - 'generate': the literal is generated source turned into a function with `new Function`. It
 *    contains only our own tables' field names (validated as identifiers) and calls the same Field
 *    descriptors the table uses.
 *  - 'closures': no code generation, for a Content Security Policy without 'unsafe-eval' or a
 *    bundler that forbids eval: a closure that copies the constant head and reads the fields in
 *    order into a fresh object.
 * The default, 'auto', generates when the runtime allows it (tried once, in a try/catch) and falls
 * back to closures when it does not. setCodegen() chooses explicitly; it applies to readers
 * compiled after the call: a framed codec (codec/table.ts, option `compile`) compiles each row on
 * first use, a compiledStruct when its module loads, so a CSP-bound embedder calls it before
 * loading the stack (test/unit/codec/compile.test.ts runs the whole HCI decode that way).
 */
export type Codegen = 'auto' | 'generate' | 'closures';

export type RowReader<T> = (r: ByteReader) => T;

let mode: Codegen = 'auto';
let available: boolean | undefined;

/** Choose how row readers are compiled from now on (see the module comment). */
export function setCodegen(m: Codegen): void {
  if (m !== 'auto' && m !== 'generate' && m !== 'closures') throw new ArgumentError(`codegen mode must be 'auto', 'generate' or 'closures', not ${JSON.stringify(m)}`);
  mode = m;
}

export function getCodegen(): Codegen {
  return mode;
}

/** True when this runtime lets us build functions from source (no CSP or bundler forbids it). */
export function canGenerateCode(): boolean {
  if (available === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      available = (new Function('return 1') as () => number)() === 1;
    } catch {
      available = false;
    }
  }
  return available;
}

function useGenerated(override: Codegen | undefined): boolean {
  const m = override ?? mode;
  if (m === 'closures') return false;
  if (m === 'generate') return true;
  return canGenerateCode();
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function checkNames(names: string[], what: string): void {
  for (const n of names) if (!IDENT.test(n)) throw new Error(`codec: ${what}: field name ${JSON.stringify(n)} is not an identifier`);
}

/**
 * A reader for one table row. `head` are constant properties placed first (e.g. { type: 'event',
 * kind: 'leAdvertisingReport' }); `trailing: 'error'` rejects bytes left after the last field.
 */
export function compileRow<T>(
  head: Readonly<Record<string, string>>, fields: Fields, trailing: 'error' | 'ignore', what: string, codegen?: Codegen,
): RowReader<T> {
  const names = Object.keys(fields);
  const headKeys = Object.keys(head);
  for (const k of headKeys) if (names.includes(k)) throw new Error(`codec: ${what}: field ${k} shadows a head key`);
  checkNames(headKeys, what);
  checkNames(names, what);
  const F = names.map(n => fields[n]!);
  if (useGenerated(codegen)) {
    const body = [
      ...headKeys.map(k => `${k}: ${JSON.stringify(head[k])}`),
      ...names.map((n, i) => `${n}: F[${i}].read(r)`),
    ].join(', ');
    const check = trailing === 'error' ? 'if (r.offset !== r.end) r.done();' : '';
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const make = new Function('F', 'WHAT', `return function read(r) { r.what = WHAT; const o = { ${body} }; ${check} return o; };`);
    return make(F, what) as RowReader<T>;
  }
  const headVals = headKeys.map(k => head[k]!);
  const strict = trailing === 'error';
  return (r: ByteReader): T => {
    r.what = what;
    const o: Record<string, unknown> = {};
    for (let i = 0; i < headKeys.length; i++) o[headKeys[i]!] = headVals[i];
    for (let i = 0; i < F.length; i++) o[names[i]!] = F[i]!.read(r);
    if (strict && r.offset !== r.end) r.done();
    return o as T;
  };
}

/** `struct(fields)` with a compiled read; write, size and describe are the generic struct's. */
export function compiledStruct<F extends Fields>(fields: F, codegen?: Codegen): Field<Infer<F>> {
  const base = struct(fields);
  const names = Object.keys(fields);
  checkNames(names, 'struct');
  const list = names.map(n => fields[n]!);
  if (!useGenerated(codegen)) return base; // the generic struct reads in field order into a fresh object
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('F', `return function read(r) { return { ${names.map((n, i) => `${n}: F[${i}].read(r)`).join(', ')} }; };`);
  return { ...base, read: make(list) as (r: ByteReader) => Infer<F> };
}

/**
 * A struct read in place (the advertising reports: thousands per second, most of them from devices
 * already known, whose address and data need comparing, not copying): `read(b, o, v)` stores the
 * struct at b[o] into the reusable object `v` and returns the offset after it, allocating nothing.
 * What lands in `v`, by field kind (all from the table's field descriptors):
 *  - numeric fields (those with an in-place `at` reader): `v[name]`, the value the field reads;
 *  - other fixed-size fields (a BD_ADDR): `v[name + 'At']`, the offset of their octets;
 *  - a length-prefixed byte string: `v[name + 'At']` and `v[name + 'Length']`.
 * `read` does no bounds checks: `fits(b, o, end, count)` first says whether `count` structs fill
 * b[o, end) exactly (the same rule as the table decode of a counted array: no octet missing, none
 * left over); a packet that does not fit goes the table's way, whose DecodeError says why.
 */
export interface InPlaceReader {
  read(b: Uint8Array, o: number, v: Record<string, number>): number;
  fits(b: Uint8Array, o: number, end: number, count: number): boolean;
  /** The keys `read` sets, in order (so a view object can be made with one fixed shape). */
  readonly keys: readonly string[];
}

interface InPlaceOp { key: string; kind: 'num' | 'at' | 'prefixed'; size: number; field: Field<any> }

export function inPlaceReader(fields: Fields, codegen?: Codegen): InPlaceReader {
  const names = Object.keys(fields);
  checkNames(names, 'in-place struct');
  const ops: InPlaceOp[] = [];
  // Octets before the (one) length prefix, the prefix's field, octets after the string.
  let before = 0, after = 0;
  let prefix: Field<number> | undefined;
  for (const n of names) {
    const f = fields[n]!;
    if (f.lengthPrefix) {
      if (prefix) throw new Error(`codec: in-place struct: a second length-prefixed field ${n}`);
      const ps = f.lengthPrefix.fixed;
      if (ps === undefined || !f.lengthPrefix.at) throw new Error(`codec: in-place struct: ${n} has no fixed-size numeric prefix`);
      prefix = f.lengthPrefix;
      ops.push({ key: n, kind: 'prefixed', size: ps, field: f.lengthPrefix });
      continue;
    }
    if (f.fixed === undefined) throw new Error(`codec: in-place struct: field ${n} has no fixed size`);
    ops.push({ key: n, kind: f.at ? 'num' : 'at', size: f.fixed, field: f });
    if (prefix) after += f.fixed; else before += f.fixed;
  }
  const keys = ops.flatMap(op => (op.kind === 'num' ? [op.key] : op.kind === 'at' ? [op.key + 'At'] : [op.key + 'At', op.key + 'Length']));
  const pre = prefix;
  const preSize = pre?.fixed ?? 0;
  const fits = (b: Uint8Array, o: number, end: number, count: number): boolean => {
    for (let i = 0; i < count; i++) {
      if (o + before + preSize > end) return false;
      o += before;
      if (pre) o += preSize + pre.at!(b, o, preSize)!;
      o += after;
    }
    return o === end;
  };
  let read: InPlaceReader['read'];
  if (useGenerated(codegen)) {
    // As little bytecode as the reads allow, so that V8 inlines `read` into its caller (the scanner's
    // loop over a report event's reports): each field's reader is a variable of its own, called as a
    // plain function (the `at` readers are arrow functions), and offsets are constants from `o` up to
    // the length-prefixed field, then from the `o` after it. The extended report's reader went from
    // 435 bytecodes (not inlined) to 282 (inlined into the scanner's loop) (issue 14).
    const names: string[] = [];
    const readers: unknown[] = [];
    const use = (op: InPlaceOp): string => {
      names.push('a' + names.length);
      readers.push(op.field.at);
      return names[names.length - 1]!;
    };
    let k = 0; // octets from `o` to the current field
    const at = (): string => (k === 0 ? 'o' : `o + ${k}`);
    const lines = ops.map(op => {
      let line: string;
      if (op.kind === 'num') line = `v.${op.key} = ${use(op)}(b, ${at()}, ${op.size});`;
      else if (op.kind === 'at') line = `v.${op.key}At = ${at()};`;
      else {
        line = `{ const n = ${use(op)}(b, ${at()}, ${op.size}); o += ${k + op.size}; v.${op.key}At = o; v.${op.key}Length = n; o += n; }`;
        k = 0;
        return line;
      }
      k += op.size;
      return line;
    });
    const body = `${lines.join(' ')} return ${at()};`;
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    read = new Function(...names, `return function read(b, o, v) { ${body} };`)(...readers) as InPlaceReader['read'];
  } else {
    read = (b, o, v) => {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (op.kind === 'num') v[op.key] = op.field.at!(b, o, op.size);
        else if (op.kind === 'at') v[op.key + 'At'] = o;
        else {
          const n = op.field.at!(b, o, op.size)!;
          o += op.size;
          v[op.key + 'At'] = o;
          v[op.key + 'Length'] = n;
          o += n;
          continue;
        }
        o += op.size;
      }
      return o;
    };
  }
  return { read, fits, keys };
}
