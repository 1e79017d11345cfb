import { ByteReader } from '../bytes/reader.js';
import { ByteWriter } from '../bytes/writer.js';
import { EncodeError, type Layer } from '../errors.js';
import { toHex } from '../bytes/hex.js';
import { fmtValue, type Field, type Fields, type Infer } from './field.js';

/**
 * One declarative table per layer (STYLE c.1): each row names a PDU kind, its code on the wire, the
 * Core specification section that defines it and its fields. Decode, encode, exact size, the minimum
 * length, describe() and the exhaustive TypeScript union are all derived from the rows; no PDU has
 * hand-written codec code.
 *
 * A table covers the *body* of a PDU (what follows its code); each layer frames the body with its own
 * header (ATT: opcode; HCI: opcode and parameter length; L2CAP signalling: code, identifier, length).
 */
/**
 * What every row of every table says about itself, whatever the layer: the name the specification
 * prints for it (ATT_READ_REQ, LE Set Scan Enable, L2CAP_CONNECTION_REQ, Pairing Request, Flags,
 * Characteristic Declaration) and the section that defines it. Logs, the CLI, `decode` and the
 * all-tables test read these two and nothing else.
 */
export interface RowInfo {
  /** The specification's own name for the row. */
  readonly name: string;
  /** Specification citation, e.g. 'Vol 3, Part F, 3.4.4.3'. */
  readonly spec: string;
}

/** A table row: its RowInfo, its code on the wire and its fields. Layers extend it with their own columns. */
export interface RowSpec extends RowInfo {
  readonly code: number;
  readonly fields: Fields;
  /** What to do with bytes left after the last field: reject (default) or ignore (forward compatible). */
  readonly trailing?: 'error' | 'ignore';
}

export type Rows = Record<string, RowSpec>;

export type PduOf<R extends Rows, K extends keyof R = keyof R> =
  K extends keyof R ? { kind: K } & Infer<R[K]['fields']> : never;

/** An unknown code, kept with its bytes: nothing is ever dropped silently. */
export interface UnknownPdu {
  kind: 'unknown';
  code: number;
  data: Uint8Array;
}

interface CompiledRow {
  kind: string;
  code: number;
  name: string;
  spec: string;
  names: string[];
  fields: Field<any>[];
  minSize: number;
  trailing: 'error' | 'ignore';
}

export interface Table<R extends Rows> {
  readonly layer: Layer;
  readonly rows: R;
  readonly kinds: ReadonlyArray<keyof R & string>;
  /** Kind for a code, or undefined when the code is not in the table. */
  kindOf(code: number): (keyof R & string) | undefined;
  codeOf(kind: keyof R): number;
  specOf(kind: keyof R): string;
  /** The specification's name of a row, by kind or by code; undefined for a code not in the table. */
  nameOf(kindOrCode: (keyof R & string) | number): string | undefined;
  /** The RowInfo of every row, in table order (for tests and documentation). */
  info(): ReadonlyArray<RowInfo & { kind: keyof R & string; code: number }>;
  minSize(kind: keyof R): number;
  /** Decode the body of a PDU of this code from r (which must end where the PDU ends). */
  decodeBody(code: number, r: ByteReader): PduOf<R> | undefined;
  sizeOfBody(pdu: PduOf<R>): number;
  encodeBody(w: ByteWriter, pdu: PduOf<R>): void;
  /** `kind field=value …`, the one-line description shared by logs and the CLI. */
  describe(pdu: PduOf<R> | UnknownPdu): string;
}

export function defineTable<const R extends Rows>(layer: Layer, rows: R): Table<R> {
  const byCode = new Map<number, CompiledRow>();
  const byKind = new Map<string, CompiledRow>();
  for (const [kind, row] of Object.entries(rows)) {
    const names = Object.keys(row.fields);
    const fields = names.map(n => row.fields[n]!);
    const compiled: CompiledRow = {
      kind, code: row.code, name: row.name, spec: row.spec, names, fields,
      minSize: fields.reduce((n, f) => n + (f.fixed ?? 0), 0),
      trailing: row.trailing ?? 'error',
    };
    if (typeof row.name !== 'string' || row.name === '' || typeof row.spec !== 'string' || row.spec === '') {
      throw new Error(`${layer} table: row ${kind} needs a name and a spec citation`);
    }
    if (byCode.has(row.code)) {
      throw new Error(`${layer} table: code 0x${row.code.toString(16)} used by ${byCode.get(row.code)!.kind} and ${kind}`);
    }
    byCode.set(row.code, compiled);
    byKind.set(kind, compiled);
  }
  const rowOf = (kind: unknown): CompiledRow => {
    const row = byKind.get(kind as string);
    if (!row) throw new EncodeError(layer, String(kind), 'no such PDU kind in the table');
    return row;
  };

  return {
    layer,
    rows,
    kinds: Object.keys(rows) as Array<keyof R & string>,
    kindOf: code => byCode.get(code)?.kind as (keyof R & string) | undefined,
    codeOf: kind => rowOf(kind).code,
    specOf: kind => rowOf(kind).spec,
    nameOf: k => (typeof k === 'number' ? byCode.get(k) : byKind.get(k))?.name,
    info: () => [...byKind.values()].map(r => ({ kind: r.kind as keyof R & string, code: r.code, name: r.name, spec: r.spec })),
    minSize: kind => rowOf(kind).minSize,
    decodeBody(code, r) {
      const row = byCode.get(code);
      if (!row) return undefined;
      r.what = row.kind;
      const out: Record<string, unknown> = { kind: row.kind };
      const { names, fields } = row;
      for (let i = 0; i < fields.length; i++) out[names[i]!] = fields[i]!.read(r);
      if (row.trailing === 'error' && r.remaining > 0) r.done();
      return out as PduOf<R>;
    },
    sizeOfBody(pdu) {
      const row = rowOf(pdu.kind);
      let n = 0;
      const p = pdu as Record<string, unknown>;
      for (let i = 0; i < row.fields.length; i++) n += row.fields[i]!.size(p[row.names[i]!]);
      return n;
    },
    encodeBody(w, pdu) {
      const row = rowOf(pdu.kind);
      w.what = row.kind;
      const p = pdu as Record<string, unknown>;
      for (let i = 0; i < row.fields.length; i++) {
        const v = p[row.names[i]!];
        if (v === undefined) throw new EncodeError(layer, row.kind, `field ${row.names[i]} is missing`);
        row.fields[i]!.write(w, v);
      }
    },
    describe(pdu) {
      if (pdu.kind === 'unknown') {
        const u = pdu as UnknownPdu;
        return `unknown code=0x${u.code.toString(16)} data=${toHex(u.data)}`;
      }
      const row = rowOf(pdu.kind);
      const p = pdu as Record<string, unknown>;
      let s = row.kind;
      for (let i = 0; i < row.fields.length; i++) s += ` ${row.names[i]}=${fmtValue(row.fields[i], p[row.names[i]!])}`;
      return s;
    },
  };
}

/**
 * The common framing "one code byte, then the body" (ATT, SMP): decode a whole PDU, encode a whole PDU.
 * Unknown codes decode to an UnknownPdu.
 */
export function u8CodedCodec<R extends Rows>(table: Table<R>, what: string) {
  type Pdu = PduOf<R>;
  return {
    decode(frame: Uint8Array): Pdu | UnknownPdu {
      const r = new ByteReader(frame, table.layer, what);
      const code = r.u8();
      const pdu = table.decodeBody(code, r);
      return pdu ?? { kind: 'unknown', code, data: frame.subarray(1) };
    },
    sizeOf(pdu: Pdu | UnknownPdu): number {
      return 1 + (pdu.kind === 'unknown' ? (pdu as UnknownPdu).data.length : table.sizeOfBody(pdu as Pdu));
    },
    encode(pdu: Pdu | UnknownPdu): Uint8Array {
      const size = this.sizeOf(pdu);
      const w = ByteWriter.alloc(size, table.layer, String(pdu.kind));
      if (pdu.kind === 'unknown') {
        w.u8((pdu as UnknownPdu).code).bytesOf((pdu as UnknownPdu).data);
      } else {
        w.u8(table.codeOf(pdu.kind));
        table.encodeBody(w, pdu as Pdu);
      }
      return w.finish();
    },
  };
}

/** Values as JSON-friendly data: bytes become hex, bigints decimal strings (for `decode --json`). */
export function toJsonValue(v: unknown): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJsonValue(x);
    return o;
  }
  return v;
}
