import type { ByteReader } from '../bytes/reader.js';
import { struct, type Field, type Fields, type Infer } from '../codec/field.js';

/**
 * Compiled decoders for HCI table rows, for the hot receive path (advertising reports arrive by the
 * thousand per second). The generic table decoder stores fields by computed key into an empty object,
 * which V8 cannot specialise once many row shapes share it. Here each row's field list is turned,
 * once at load time, into a function whose body is a single object literal:
 *
 *   (r) => ({ type: 'event', kind: 'leAdvertisingReport', reports: F[0].read(r) })
 *
 * so every decoded PDU of a kind has one fixed shape and every field read has its own monomorphic
 * call site. The generated code contains only our own table's field names (validated as identifiers
 * below) and calls the same Field descriptors the table uses: behaviour is identical to
 * `Table.decodeBody` (same reads, same trailing-byte rule), only faster.
 */

export type RowReader<T> = (r: ByteReader) => T;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function literal(names: string[]): string {
  return names.map((n, i) => {
    if (!IDENT.test(n)) throw new Error(`row-codec: field name ${JSON.stringify(n)} is not an identifier`);
    return `${n}: F[${i}].read(r)`;
  }).join(', ');
}

/**
 * A reader for one table row. `head` are constant properties placed first (e.g. { type: 'event',
 * kind: 'leAdvertisingReport' }); `trailing: 'error'` rejects bytes left after the last field.
 */
export function compileRow<T>(head: Record<string, string>, fields: Fields, trailing: 'error' | 'ignore', what: string): RowReader<T> {
  const names = Object.keys(fields);
  for (const k of Object.keys(head)) if (names.includes(k)) throw new Error(`row-codec: ${what}: field ${k} shadows a head key`);
  const F = names.map(n => fields[n]!);
  const headSrc = Object.entries(head).map(([k, v]) => {
    if (!IDENT.test(k)) throw new Error(`row-codec: head key ${k} is not an identifier`);
    return `${k}: ${JSON.stringify(v)}`;
  });
  const body = [...headSrc, literal(names)].filter(Boolean).join(', ');
  const check = trailing === 'error' ? 'if (r.offset !== r.end) r.done();' : '';
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('F', 'WHAT', `return function read(r) { r.what = WHAT; const o = { ${body} }; ${check} return o; };`);
  return make(F, what) as RowReader<T>;
}

/** `struct(fields)` with a compiled read; write, size and describe are the generic struct's. */
export function compiledStruct<F extends Fields>(fields: F): Field<Infer<F>> {
  const base = struct(fields);
  const names = Object.keys(fields);
  const make = new Function('F', `return function read(r) { return { ${literal(names)} }; };`);
  return { ...base, read: make(names.map(n => fields[n]!)) as (r: ByteReader) => Infer<F> };
}
