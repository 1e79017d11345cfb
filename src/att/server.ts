/**
 * An ATT server over a flat attribute table (Core Vol 3, Part F, 3.4): the server role of an
 * AttBearer. It knows attributes (handle, type, value or handlers, permissions, group end) and
 * nothing about GATT; src/gatt/server-db.ts builds the table from services and characteristics and
 * uses this for our own GAP/GATT database and for virtual peripherals.
 *
 * Per-connection state (the prepare-write queue) is keyed by the bearer's `session` object, so one
 * AttServer may serve many links. Handlers are synchronous; a handler reports a protocol failure by
 * throwing AttServerError(code); anything else it throws becomes Unlikely Error.
 */
import {
  ATT_MAX_VALUE_LENGTH, AttErrorCode,
} from './constants.js';
import type { AttServerContext, AttServerRole } from './bearer.js';
import { ATT_PDUS, type AttPdu, type AttPduOf, type GroupValue, type HandleUuid, type HandleValue, type HandlesInformation, type LengthValue } from './pdus.js';
import { fromShort, is16, uuidToBytes, type Uuid } from '../codec/uuid.js';
import { concat, equalBytes } from '../bytes/hex.js';
import { log } from '../log.js';
import { ArgumentError } from '../errors.js';

/** Thrown by attribute handlers to answer with an ATT error (Vol 3, Part F, 3.4.1.1, Table 3.4). */
export class AttServerError extends Error {
  constructor(readonly errorCode: number, message?: string) {
    super(message ?? `ATT error 0x${errorCode.toString(16)}`);
  }
}

/** Who is asking: the bearer's context plus the operation. */
export interface AttAccess extends AttServerContext {
  /** 'read' for Read / Read Blob / Read By Type / Read Multiple / Find By Type Value. */
  readonly op: 'read' | 'write' | 'writeCommand' | 'signedWrite' | 'preparedWrite';
}

export interface AttAttribute {
  readonly handle: number;
  readonly type: Uuid;
  /** Last handle of the group this attribute opens (service declarations, Vol 3, Part G, 3.1). */
  readonly groupEnd?: number;
  readonly readable: boolean;
  readonly writable: boolean;
  /** The whole current value (the server slices it for offsets and MTU). */
  read(access: AttAccess): Uint8Array;
  /** Store a whole new value (long writes arrive reassembled). */
  write?(value: Uint8Array, access: AttAccess): void;
}

/** A plain attribute with a stored value (declarations, static values). */
export function staticAttribute(handle: number, type: Uuid, value: Uint8Array, extra: Partial<Pick<AttAttribute, 'groupEnd' | 'writable'>> = {}): AttAttribute {
  let v = value;
  return {
    handle, type, readable: true, writable: extra.writable ?? false,
    ...(extra.groupEnd !== undefined ? { groupEnd: extra.groupEnd } : {}),
    read: () => v,
    write: nv => { v = nv; },
  };
}

/** The GATT grouping types a Read By Group Type may ask for (Vol 3, Part G, 2.5.3). */
const PRIMARY = fromShort(0x2800);
const SECONDARY = fromShort(0x2801);
/**
 * Prepare-queue depth per connection before Prepare Queue Full (Vol 3, Part F, 3.4.6.1). A peer fills
 * it, so it is its bound: 128 entries of at most ATT_MTU - 5 octets each (≤ 512 at our MTU of 517),
 * about 64 KiB per connection, freed by Execute Write (either flag) and with the session on disconnect.
 * A long write of one 512-octet value needs at most 512 / 18 = 29 entries at ATT_MTU 23.
 */
export const PREPARE_QUEUE_LIMIT = 128;

interface Prepared { handle: number; offset: number; value: Uint8Array }

export interface AttServerOptions {
  /**
   * Verify a Signed Write Command (Vol 3, Part F, 3.4.5.4); return false to drop it. Without a
   * verifier signed writes are dropped: we hold no peer CSRK.
   */
  verifySignedWrite?(pdu: AttPduOf<'signedWriteCmd'>, ctx: AttServerContext): boolean;
}

export class AttServer implements AttServerRole {
  private attrs: AttAttribute[] = [];
  private readonly prepareQueues = new WeakMap<object, Prepared[]>();

  constructor(attributes: Iterable<AttAttribute>, private readonly options: AttServerOptions = {}) {
    this.setAttributes(attributes);
  }

  /** Replace the table (a database change; the owner indicates Service Changed). */
  setAttributes(attributes: Iterable<AttAttribute>): void {
    const list = [...attributes].sort((a, b) => a.handle - b.handle);
    for (let i = 0; i < list.length; i++) {
      const h = list[i]!.handle;
      if (!Number.isInteger(h) || h < 1 || h > 0xffff) throw new ArgumentError(`attribute handle ${h} is not in 0x0001..0xFFFF`);
      if (i > 0 && list[i - 1]!.handle === h) throw new ArgumentError(`two attributes share handle 0x${h.toString(16)}`);
    }
    this.attrs = list;
  }

  get attributes(): readonly AttAttribute[] {
    return this.attrs;
  }

  attribute(handle: number): AttAttribute | undefined {
    let lo = 0, hi = this.attrs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const h = this.attrs[mid]!.handle;
      if (h === handle) return this.attrs[mid];
      if (h < handle) lo = mid + 1; else hi = mid - 1;
    }
    return undefined;
  }

  /** Attributes with start ≤ handle ≤ end, in order. */
  *range(start: number, end: number): Generator<AttAttribute> {
    let lo = 0, hi = this.attrs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.attrs[mid]!.handle < start) lo = mid + 1; else hi = mid;
    }
    for (let i = lo; i < this.attrs.length && this.attrs[i]!.handle <= end; i++) yield this.attrs[i]!;
  }

  closed(): void { /* prepare queues are per session and go with it (WeakMap) */ }

  handle(pdu: AttPdu, ctx: AttServerContext): AttPdu | undefined {
    const code = ATT_PDUS[pdu.kind].code;
    try {
      switch (pdu.kind) {
        case 'findInformationReq': return this.findInformation(pdu, ctx);
        case 'findByTypeValueReq': return this.findByTypeValue(pdu, ctx);
        case 'readByTypeReq': return this.readByType(pdu, ctx);
        case 'readReq': return this.read(pdu, ctx);
        case 'readBlobReq': return this.readBlob(pdu, ctx);
        case 'readMultipleReq': return this.readMultiple(pdu, ctx);
        case 'readMultipleVariableReq': return this.readMultipleVariable(pdu, ctx);
        case 'readByGroupTypeReq': return this.readByGroupType(pdu, ctx);
        case 'writeReq': return this.writeReq(pdu, ctx);
        case 'writeCmd': this.writeCommand(pdu.handle, pdu.value, { ...ctx, op: 'writeCommand' }); return undefined;
        case 'signedWriteCmd':
          if (this.options.verifySignedWrite?.(pdu, ctx)) this.writeCommand(pdu.handle, pdu.value, { ...ctx, op: 'signedWrite' });
          return undefined;
        case 'prepareWriteReq': return this.prepareWrite(pdu, ctx);
        case 'executeWriteReq': return this.executeWrite(pdu, ctx);
        default:
          return err(code, 0, AttErrorCode.RequestNotSupported);
      }
    } catch (e) {
      if (e instanceof AttServerError) return err(code, handleOf(pdu), e.errorCode);
      log.att('attribute handler failed on %s: %s', pdu.kind, e instanceof Error ? e.message : String(e));
      return err(code, handleOf(pdu), AttErrorCode.UnlikelyError);
    }
  }

  // ---- discovery ----------------------------------------------------------------------------------

  private findInformation(pdu: AttPduOf<'findInformationReq'>, ctx: AttServerContext): AttPdu {
    const bad = checkRange(0x04, pdu.startingHandle, pdu.endingHandle);
    if (bad) return bad;
    const out: HandleUuid[] = [];
    let short: boolean | undefined;
    for (const a of this.range(pdu.startingHandle, pdu.endingHandle)) {
      const s = is16(a.type);
      // One format per response (Vol 3, Part F, 3.4.3.2): stop at the first attribute of the other one.
      if (short === undefined) short = s; else if (s !== short) break;
      if (2 + (out.length + 1) * (s ? 4 : 18) > ctx.mtu) break;
      out.push({ handle: a.handle, uuid: a.type });
    }
    if (out.length === 0) return err(0x04, pdu.startingHandle, AttErrorCode.AttributeNotFound);
    return { kind: 'findInformationRsp', informationData: out };
  }

  private findByTypeValue(pdu: AttPduOf<'findByTypeValueReq'>, ctx: AttServerContext): AttPdu {
    const bad = checkRange(0x06, pdu.startingHandle, pdu.endingHandle);
    if (bad) return bad;
    const out: HandlesInformation[] = [];
    const max = Math.floor((ctx.mtu - 1) / 4);
    for (const a of this.range(pdu.startingHandle, pdu.endingHandle)) {
      if (a.type !== pdu.attributeType || !a.readable) continue;
      if (!equalBytes(a.read({ ...ctx, op: 'read' }), pdu.attributeValue)) continue;
      // A non-grouping attribute's group end is its own handle (Vol 3, Part F, 3.4.3.4).
      out.push({ foundAttributeHandle: a.handle, groupEndHandle: a.groupEnd ?? a.handle });
      if (out.length === max) break;
    }
    if (out.length === 0) return err(0x06, pdu.startingHandle, AttErrorCode.AttributeNotFound);
    return { kind: 'findByTypeValueRsp', handlesInformationList: out };
  }

  private readByType(pdu: AttPduOf<'readByTypeReq'>, ctx: AttServerContext): AttPdu {
    const bad = checkRange(0x08, pdu.startingHandle, pdu.endingHandle);
    if (bad) return bad;
    const out: HandleValue[] = [];
    // Each value is cut to min(ATT_MTU - 4, 253) (Vol 3, Part F, 3.4.4.2); all must share a length.
    const cap = Math.min(ctx.mtu - 4, 253);
    let size = 2;
    for (const a of this.range(pdu.startingHandle, pdu.endingHandle)) {
      if (a.type !== pdu.attributeType) continue;
      if (!a.readable) {
        // The first match not readable is an error; a later one ends the list (Vol 3, Part F, 3.4.4.1).
        if (out.length === 0) return err(0x08, a.handle, AttErrorCode.ReadNotPermitted);
        break;
      }
      let value = a.read({ ...ctx, op: 'read' });
      if (value.length > cap) value = value.subarray(0, cap);
      if (out.length > 0 && value.length !== out[0]!.value.length) break;
      if (size + 2 + value.length > ctx.mtu) break;
      size += 2 + value.length;
      out.push({ handle: a.handle, value });
    }
    if (out.length === 0) return err(0x08, pdu.startingHandle, AttErrorCode.AttributeNotFound);
    return { kind: 'readByTypeRsp', attributeDataList: out };
  }

  private readByGroupType(pdu: AttPduOf<'readByGroupTypeReq'>, ctx: AttServerContext): AttPdu {
    const bad = checkRange(0x10, pdu.startingHandle, pdu.endingHandle);
    if (bad) return bad;
    if (pdu.attributeGroupType !== PRIMARY && pdu.attributeGroupType !== SECONDARY) {
      return err(0x10, pdu.startingHandle, AttErrorCode.UnsupportedGroupType);
    }
    const out: GroupValue[] = [];
    const cap = Math.min(ctx.mtu - 6, 251);
    let size = 2;
    for (const a of this.range(pdu.startingHandle, pdu.endingHandle)) {
      if (a.type !== pdu.attributeGroupType) continue;
      let value = a.read({ ...ctx, op: 'read' });
      if (value.length > cap) value = value.subarray(0, cap);
      if (out.length > 0 && value.length !== out[0]!.value.length) break;
      if (size + 4 + value.length > ctx.mtu) break;
      size += 4 + value.length;
      out.push({ handle: a.handle, endGroupHandle: a.groupEnd ?? a.handle, value });
    }
    if (out.length === 0) return err(0x10, pdu.startingHandle, AttErrorCode.AttributeNotFound);
    return { kind: 'readByGroupTypeRsp', attributeDataList: out };
  }

  // ---- reads --------------------------------------------------------------------------------------

  private readable(code: number, handle: number, ctx: AttServerContext): Uint8Array | AttPdu {
    const a = this.attribute(handle);
    if (!a || handle === 0) return err(code, handle, AttErrorCode.InvalidHandle);
    if (!a.readable) return err(code, handle, AttErrorCode.ReadNotPermitted);
    return a.read({ ...ctx, op: 'read' });
  }

  private read(pdu: AttPduOf<'readReq'>, ctx: AttServerContext): AttPdu {
    const v = this.readable(0x0a, pdu.handle, ctx);
    if (!(v instanceof Uint8Array)) return v;
    return { kind: 'readRsp', value: v.subarray(0, ctx.mtu - 1) };
  }

  private readBlob(pdu: AttPduOf<'readBlobReq'>, ctx: AttServerContext): AttPdu {
    const v = this.readable(0x0c, pdu.handle, ctx);
    if (!(v instanceof Uint8Array)) return v;
    if (pdu.valueOffset > v.length) return err(0x0c, pdu.handle, AttErrorCode.InvalidOffset);
    return { kind: 'readBlobRsp', value: v.subarray(pdu.valueOffset, pdu.valueOffset + ctx.mtu - 1) };
  }

  private readMultiple(pdu: AttPduOf<'readMultipleReq'>, ctx: AttServerContext): AttPdu {
    const parts: Uint8Array[] = [];
    for (const h of pdu.setOfHandles) {
      const v = this.readable(0x0e, h, ctx);
      if (!(v instanceof Uint8Array)) return v;
      parts.push(v);
    }
    return { kind: 'readMultipleRsp', setOfValues: concat(parts).subarray(0, ctx.mtu - 1) };
  }

  private readMultipleVariable(pdu: AttPduOf<'readMultipleVariableReq'>, ctx: AttServerContext): AttPdu {
    const out: LengthValue[] = [];
    let room = ctx.mtu - 1;
    for (const h of pdu.setOfHandles) {
      const v = this.readable(0x20, h, ctx);
      if (!(v instanceof Uint8Array)) return v;
      if (room < 2) break;
      // The list is cut at ATT_MTU - 1; only the last value may be truncated (Vol 3, Part F, 3.4.4.12).
      const value = v.subarray(0, Math.min(v.length, room - 2));
      out.push({ length: v.length, value });
      room -= 2 + value.length;
    }
    return { kind: 'readMultipleVariableRsp', lengthValueTupleList: out };
  }

  // ---- writes -------------------------------------------------------------------------------------

  private writable(code: number, handle: number): AttAttribute | AttPdu {
    const a = this.attribute(handle);
    if (!a || handle === 0) return err(code, handle, AttErrorCode.InvalidHandle);
    if (!a.writable || !a.write) return err(code, handle, AttErrorCode.WriteNotPermitted);
    return a;
  }

  private writeReq(pdu: AttPduOf<'writeReq'>, ctx: AttServerContext): AttPdu {
    const a = this.writable(0x12, pdu.handle);
    if (!isAttribute(a)) return a;
    if (pdu.value.length > ATT_MAX_VALUE_LENGTH) return err(0x12, pdu.handle, AttErrorCode.InvalidAttributeValueLength);
    a.write!(Uint8Array.from(pdu.value), { ...ctx, op: 'write' });
    return { kind: 'writeRsp' };
  }

  private writeCommand(handle: number, value: Uint8Array, access: AttAccess): void {
    // Commands get no response, so every failure is silent (Vol 3, Part F, 3.4.5.3).
    const a = this.attribute(handle);
    if (!a || !a.writable || !a.write || value.length > ATT_MAX_VALUE_LENGTH) return;
    try {
      a.write(Uint8Array.from(value), access);
    } catch { /* no response to a command */ }
  }

  private prepareWrite(pdu: AttPduOf<'prepareWriteReq'>, ctx: AttServerContext): AttPdu {
    const a = this.writable(0x16, pdu.handle);
    if (!isAttribute(a)) return a;
    let q = this.prepareQueues.get(ctx.session);
    if (!q) this.prepareQueues.set(ctx.session, q = []);
    if (q.length >= PREPARE_QUEUE_LIMIT) return err(0x16, pdu.handle, AttErrorCode.PrepareQueueFull);
    const value = Uint8Array.from(pdu.value);
    q.push({ handle: pdu.handle, offset: pdu.valueOffset, value });
    // The response echoes handle, offset and value so the client can verify them (Vol 3, Part F, 3.4.6.2).
    return { kind: 'prepareWriteRsp', handle: pdu.handle, valueOffset: pdu.valueOffset, value };
  }

  private executeWrite(pdu: AttPduOf<'executeWriteReq'>, ctx: AttServerContext): AttPdu {
    const q = this.prepareQueues.get(ctx.session) ?? [];
    this.prepareQueues.delete(ctx.session);
    if (pdu.flags === 0) return { kind: 'executeWriteRsp' };
    // Reassemble per attribute in queue order, check every one, then write (Vol 3, Part F, 3.4.6.3).
    const byHandle = new Map<number, Uint8Array>();
    for (const p of q) {
      const cur = byHandle.get(p.handle) ?? new Uint8Array(0);
      if (p.offset > cur.length) return err(0x18, p.handle, AttErrorCode.InvalidOffset);
      const next = concat([cur.subarray(0, p.offset), p.value]);
      if (next.length > ATT_MAX_VALUE_LENGTH) return err(0x18, p.handle, AttErrorCode.InvalidAttributeValueLength);
      byHandle.set(p.handle, next);
    }
    for (const [handle, value] of byHandle) {
      const a = this.attribute(handle);
      if (!a?.write) return err(0x18, handle, AttErrorCode.WriteNotPermitted);
      try {
        a.write(value, { ...ctx, op: 'preparedWrite' });
      } catch (e) {
        if (e instanceof AttServerError) return err(0x18, handle, e.errorCode);
        return err(0x18, handle, AttErrorCode.UnlikelyError);
      }
    }
    return { kind: 'executeWriteRsp' };
  }
}

function isAttribute(x: AttAttribute | AttPdu): x is AttAttribute {
  return typeof (x as AttAttribute).read === 'function';
}

function err(requestOpcode: number, handle: number, errorCode: number): AttPdu {
  return { kind: 'errorRsp', requestOpcode, handle, errorCode };
}

/** Starting handle 0 or start > end is Invalid Handle (Vol 3, Part F, 3.4.3.1 and 3.4.4.1). */
function checkRange(code: number, start: number, end: number): AttPdu | undefined {
  if (start === 0 || start > end) return err(code, start, AttErrorCode.InvalidHandle);
  return undefined;
}

function handleOf(pdu: AttPdu): number {
  const p = pdu as { handle?: number; startingHandle?: number };
  return p.handle ?? p.startingHandle ?? 0;
}


/** The attribute value of a UUID as it is stored in declarations: 2 octets for SIG 16-bit, else 16. */
export function uuidValue(u: Uuid): Uint8Array {
  return uuidToBytes(u);
}
