/**
 * BufferSource handling that works across JavaScript realms: page code run in a node:vm context (or
 * an iframe-like sandbox) passes typed arrays and ArrayBuffers made by its own constructors, which
 * fail `instanceof` here. ArrayBuffer.isView and the ArrayBuffer byteLength getter check the internal
 * slots instead, so any realm's buffers are accepted and everything else is a TypeError, as WebIDL's
 * BufferSource conversion says (a SharedArrayBuffer is not a BufferSource).
 */
/** WebIDL's BufferSource. */
export type WebBufferSource = ArrayBuffer | ArrayBufferView;

const byteLengthOf = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!;

function isArrayBuffer(v: unknown): v is ArrayBuffer {
  if (typeof v !== 'object' || v === null) return false;
  try {
    byteLengthOf.call(v);
    return true;
  } catch {
    return false;
  }
}

/** A copy of the bytes held by a BufferSource ("get a copy of the buffer source"), or TypeError. */
export function copyBufferSource(v: unknown, what: string): Uint8Array<ArrayBuffer> {
  if (ArrayBuffer.isView(v)) {
    if (!isArrayBuffer(v.buffer)) throw new TypeError(`${what}: a view on a SharedArrayBuffer is not a BufferSource.`);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
  }
  if (isArrayBuffer(v)) return new Uint8Array(v).slice();
  throw new TypeError(`${what}: the value is not an ArrayBuffer or an ArrayBufferView (got ${describe(v)}).`);
}

/** A new DataView over a copy of `bytes` (what `value` and readValue() hand to the page). */
export function dataViewOf(bytes: Uint8Array): DataView {
  const copy = bytes.slice();
  return new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return Object.prototype.toString.call(v).slice(8, -1);
}
