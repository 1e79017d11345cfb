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
