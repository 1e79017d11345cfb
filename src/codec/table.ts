import { ByteReader } from '../bytes/reader.js';
import { ByteWriter } from '../bytes/writer.js';
import { EncodeError, type Layer } from '../errors.js';
import { toHex } from '../bytes/hex.js';
import { fmtValue, type Field, type Fields, type Infer } from './field.js';
import { compileRow, type RowReader } from './compile.js';

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
  // The rows are compiled on the table's first use, not when its module loads (issue 14, the import's
  // footprint): `import 'blewire'` defines every layer's tables (HCI commands and their returns,
  // events, ATT, SMP, L2CAP signalling, AD, GATT values: about 500 rows) and a scanning application
  // uses a few of them. A row's name, spec and code are checked then, before any of its PDUs is read or
  // written (test/unit/codec/all-tables.test.ts reads every table).
  let compiled: { byCode: Map<number, CompiledRow>; byKind: Map<string, CompiledRow> } | undefined;
  const compile = (): NonNullable<typeof compiled> => {
    const byCode = new Map<number, CompiledRow>();
    const byKind = new Map<string, CompiledRow>();
    for (const [kind, row] of Object.entries(rows)) {
      const names = Object.keys(row.fields);
      const fields = names.map(n => row.fields[n]!);
      const c: CompiledRow = {
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
      byCode.set(row.code, c);
      byKind.set(kind, c);
    }
    return (compiled = { byCode, byKind });
  };
  const rowByCode = (code: number): CompiledRow | undefined => (compiled ?? compile()).byCode.get(code);
  const rowByKind = (kind: string): CompiledRow | undefined => (compiled ?? compile()).byKind.get(kind);
  const rowOf = (kind: unknown): CompiledRow => {
    const row = rowByKind(kind as string);
    if (!row) throw new EncodeError(layer, String(kind), 'no such PDU kind in the table');
    return row;
  };

  return {
    layer,
    rows,
    kinds: Object.keys(rows) as Array<keyof R & string>,
    kindOf: code => rowByCode(code)?.kind as (keyof R & string) | undefined,
    codeOf: kind => rowOf(kind).code,
    specOf: kind => rowOf(kind).spec,
    nameOf: k => (typeof k === 'number' ? rowByCode(k) : rowByKind(k))?.name,
    info: () => [...(compiled ?? compile()).byKind.values()].map(r => ({ kind: r.kind as keyof R & string, code: r.code, name: r.name, spec: r.spec })),
    minSize: kind => rowOf(kind).minSize,
    decodeBody(code, r) {
      const row = rowByCode(code);
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

// ---------------------------------------------------------------------------------------------------
// The one codec wrapper: a table and its layer's framing.

/**
 * How a layer frames a table body on the wire: the header before it (the code, and whatever else the
 * layer puts there) and where the body ends. framedCodec() turns any table plus its framing into the
 * decode / encode / size / describe entry points, so every layer goes through the same code:
 *
 *  - ATT, SMP: Code (1), body to the end of the frame (codeU8).
 *  - L2CAP signalling: Code (1), Identifier (1), Length (2), body of Length octets.
 *  - AD: Length (1, covering the type), AD Type (1), body; Length 0 ends the significant part.
 *  - HCI commands: Opcode (2), Parameter_Total_Length (1); events: Event_Code (1), Parameter_Total_Length (1).
 *  - GATT attribute values: no header, the code (attribute type) is known from the context (bare).
 */
export interface Framing<H extends object = {}> {
  /**
   * Read one header at r into `slot`: the code, the body length (-1: the body runs to the end of r)
   * and the header values the PDU keeps (e.g. the signalling identifier). Returns false when the
   * framing says no PDU follows (AD's zero Length). Throws DecodeError.
   */
  read(r: ByteReader, slot: HeaderSlot<H>): boolean;
  /** Octets of header. */
  size(bodySize: number): number;
  /** Write the header for a body of `bodySize` octets; EncodeError when it does not fit. */
  write(w: ByteWriter, code: number, bodySize: number, pdu: H): void;
  /** Header values for describe(), e.g. ' id=3' (placed right after the name). */
  describe?(pdu: H): string;
}

export interface HeaderSlot<H extends object> { code: number; length: number; header: H | undefined }

/** Code (1), then the body to the end of the frame: ATT (Vol 3, Part F, 3.3), SMP (Vol 3, Part H, 3.3). */
export const codeU8: Framing = {
  read(r, slot) { slot.code = r.u8(); slot.length = -1; return true; },
  size: () => 1,
  write(w, code) { w.u8(code); },
};

/** No header: the code comes from the context (GATT attribute values: the attribute type). */
export const bare: Framing = {
  read() { throw new Error('codec: a bare framing has no header to read; use decodeBody(code, …)'); },
  size: () => 0,
  write() { /* nothing before the body */ },
};

export interface FramedCodecOptions<R extends Rows, H extends object, U> {
  /** A name for the frame in errors ('ATT PDU'). */
  readonly what: string;
  /** describe() starts with the row's kind (default) or with its specification name (HCI). */
  readonly label?: 'kind' | 'name';
  /**
   * Compile each row's body reader (codec/compile.ts: generated code or, without eval, closures),
   * with these constant properties first (e.g. { type: 'event' }): one fixed object shape per kind
   * for the hot receive paths. Readers are compiled on first use, so setCodegen() applies.
   */
  readonly compile?: Readonly<Record<string, string>>;
  /** A code not in the table, kept with its bytes (default { kind: 'unknown', code, data, ...header }). */
  readonly unknown?: (code: number, data: Uint8Array, header: H | undefined) => U;
  /** The code and the raw body of an unknown PDU, for encoding it back. */
  readonly unknownCode?: (u: U) => number;
  readonly unknownData?: (u: U) => Uint8Array;
  readonly describeUnknown?: (u: U) => string;
  /**
   * Codes whose body is a PDU of another table with its own framing: HCI LE Meta (0x3E), whose
   * parameters are a Subevent_Code and an LE sub-event. Decoding, encoding, sizes and describe()
   * go through the sub-codec for those codes and for the sub-table's kinds.
   */
  readonly sub?: Readonly<Record<number, FramedCodec<any, any, any>>>;
}

export type Framed<R extends Rows, H extends object> = PduOf<R> & H;

export interface FramedCodec<R extends Rows, H extends object, U> {
  readonly table: Table<R>;
  readonly framing: Framing<H>;
  /** Exactly one PDU that fills the frame. Throws DecodeError only. */
  decode(frame: Uint8Array): Framed<R, H> | U;
  /** Every PDU in the frame, in order (signalling C-frames on ACL-U, AD payloads). */
  decodeAll(frame: Uint8Array): Array<Framed<R, H> | U>;
  /** One PDU at r (undefined: the framing says none follows). */
  decodeFrom(r: ByteReader): Framed<R, H> | U | undefined;
  /** A body whose code is known (bare framing, or a header read elsewhere). */
  decodeBody(code: number, r: ByteReader, header?: H): Framed<R, H> | U;
  /** Octets of the body alone. */
  bodySizeOf(pdu: Framed<R, H> | U): number;
  /** Octets on the wire, headers included, of one PDU or several. */
  sizeOf(pdus: Framed<R, H> | U | ReadonlyArray<Framed<R, H> | U>): number;
  encode(pdus: Framed<R, H> | U | ReadonlyArray<Framed<R, H> | U>): Uint8Array;
  encodeInto(w: ByteWriter, pdu: Framed<R, H> | U): void;
  /** The body alone (bare framing). */
  encodeBody(pdu: Framed<R, H> | U): Uint8Array;
  /** `name-or-kind header field=value …`: the one line shared by logs and the CLI. */
  describe(pdu: Framed<R, H> | U): string;
  /** The row's specification name, or undefined for an unknown PDU. */
  nameOf(pdu: Framed<R, H> | U): string | undefined;
}

export function framedCodec<R extends Rows, H extends object = {}, U = UnknownPdu & H>(
  table: Table<R>, framing: Framing<H>, options: FramedCodecOptions<R, H, U>,
): FramedCodec<R, H, U> {
  type P = Framed<R, H> | U;
  type AnyCodec = FramedCodec<Rows, object, unknown>;
  const { what } = options;
  const mkUnknown = options.unknown ?? ((code: number, data: Uint8Array, header: H | undefined) =>
    ({ kind: 'unknown', code, data, ...header }) as unknown as U);
  const unknownCode = options.unknownCode ?? ((u: U) => (u as unknown as UnknownPdu).code);
  const unknownData = options.unknownData ?? ((u: U) => (u as unknown as UnknownPdu).data);
  const hasRow = (kind: string): boolean => Object.prototype.hasOwnProperty.call(table.rows, kind);
  // Codes whose body is a PDU of another table with its own framing (HCI LE Meta), and their kinds.
  const subByCode: Array<AnyCodec | undefined> = [];
  const subByKind = new Map<string, [number, AnyCodec]>();
  for (const [code, c] of Object.entries(options.sub ?? {})) {
    subByCode[Number(code)] = c as AnyCodec;
    for (const k of (c as AnyCodec).table.kinds) subByKind.set(k, [Number(code), c as AnyCodec]);
  }
  const isUnknown = (p: P): p is U => !hasRow((p as { kind: string }).kind);
  /** The sub-codec that owns a PDU (by its kind, or an unknown PDU by its outer code), if any. */
  const subOf = (p: P): AnyCodec | undefined => {
    const k = (p as { kind: string }).kind;
    if (hasRow(k)) return undefined;
    const s = subByKind.get(k);
    if (s) return s[1];
    return subByCode.length ? subByCode[unknownCode(p as U)] : undefined;
  };
  const outerCode = (p: P): number => {
    const k = (p as { kind: string }).kind;
    if (hasRow(k)) return table.codeOf(k);
    return subByKind.get(k)?.[0] ?? unknownCode(p as U);
  };

  // Compiled body readers (codec/compile.ts), by code, on first use.
  const readers: Array<RowReader<Framed<R, H>> | undefined> = [];
  const compileHead = options.compile;
  const readBody = compileHead
    ? (code: number, r: ByteReader): Framed<R, H> | undefined => {
      let read = readers[code];
      if (read === undefined) {
        const kind = table.kindOf(code);
        if (kind === undefined) return undefined;
        const row = table.rows[kind]!;
        read = readers[code] = compileRow({ ...compileHead, kind }, row.fields, row.trailing ?? 'error', kind);
      }
      return read(r);
    }
    : (code: number, r: ByteReader) => table.decodeBody(code, r) as Framed<R, H> | undefined;
  const slot: HeaderSlot<H> = { code: 0, length: -1, header: undefined };

  const decodeBody = (code: number, r: ByteReader, header?: H): P => {
    const sub = subByCode[code];
    if (sub !== undefined) return sub.decodeFrom(r) as P;
    const pdu = readBody(code, r);
    if (pdu === undefined) return mkUnknown(code, r.rest(), header);
    if (header !== undefined) Object.assign(pdu, header);
    return pdu;
  };
  const decodeFrom = (r: ByteReader): P | undefined => {
    slot.header = undefined;
    if (!framing.read(r, slot)) return undefined;
    const { code, length, header } = slot;
    return decodeBody(code, length < 0 ? r : r.sub(length), header);
  };
  const bodySizeOf = (p: P): number => {
    const sub = subOf(p);
    if (sub) return sub.sizeOf(p);
    return isUnknown(p) ? unknownData(p).length : table.sizeOfBody(p as PduOf<R>);
  };
  const writeBody = (w: ByteWriter, p: P): void => {
    const sub = subOf(p);
    if (sub) sub.encodeInto(w, p);
    else if (isUnknown(p)) w.bytesOf(unknownData(p));
    else table.encodeBody(w, p as PduOf<R>);
  };
  const list = (p: P | readonly P[]): readonly P[] => (Array.isArray(p) ? p : [p as P]);
  const encodeInto = (w: ByteWriter, p: P): void => {
    framing.write(w, outerCode(p), bodySizeOf(p), p as unknown as H);
    writeBody(w, p);
  };
  const sizeOf = (ps: P | readonly P[]): number => {
    let n = 0;
    for (const p of list(ps)) { const b = bodySizeOf(p); n += framing.size(b) + b; }
    return n;
  };
  return {
    table,
    framing,
    decode(frame) {
      const r = new ByteReader(frame, table.layer, what);
      const p = decodeFrom(r);
      if (p === undefined) return r.fail(`no ${what} in the frame`, 0);
      // A body with a Length of its own must fill the frame; a body that runs to the end was checked by its row.
      if (slot.length >= 0 && r.remaining > 0) r.fail(`${r.remaining} octet(s) after the ${what}`);
      return p;
    },
    decodeAll(frame) {
      const r = new ByteReader(frame, table.layer, what);
      const out: P[] = [];
      while (r.remaining > 0) {
        const p = decodeFrom(r);
        if (p === undefined) break;
        out.push(p);
      }
      return out;
    },
    decodeFrom,
    decodeBody,
    bodySizeOf,
    sizeOf,
    encode(ps) {
      const w = ByteWriter.alloc(sizeOf(ps), table.layer, what);
      for (const p of list(ps)) { w.what = String((p as { kind: string }).kind); encodeInto(w, p); }
      return w.finish();
    },
    encodeInto,
    encodeBody(p) {
      const w = ByteWriter.alloc(bodySizeOf(p), table.layer, String((p as { kind: string }).kind));
      writeBody(w, p);
      return w.finish();
    },
    describe(p) {
      const sub = subOf(p);
      if (sub) return sub.describe(p);
      const h = framing.describe ? framing.describe(p as unknown as H) : '';
      if (isUnknown(p)) {
        if (options.describeUnknown) return options.describeUnknown(p);
        return `unknown code=0x${unknownCode(p).toString(16)}${h} data=${toHex(unknownData(p))}`;
      }
      const kind = (p as PduOf<R>).kind as string;
      const d = table.describe(p as PduOf<R>);
      return (options.label === 'name' ? table.nameOf(kind)! : kind) + h + d.slice(kind.length);
    },
    nameOf(p) {
      const sub = subOf(p);
      if (sub) return sub.nameOf(p);
      return isUnknown(p) ? undefined : table.nameOf((p as PduOf<R>).kind as keyof R & string);
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
