import { DecodeError } from '../errors.js';
import { H4 } from './types.js';

/**
 * H4 framing over a byte stream (Core Vol 4, Part A, 2: one indicator byte, then the HCI packet whose
 * own header gives its length). The framer is correct wherever the stream splits a packet, and it
 * never writes into memory it has handed out (STYLE c.7, the pg-protocol #3776 bug):
 * - a packet that lies wholly inside one incoming chunk is emitted as a view of that chunk (a plain
 *   Uint8Array, whatever the chunk's class), or, to a sink with packetAt, as the chunk and the packet's
 *   place in it (no view at all), which is safe because byte-stream transports (net, serialport) hand
 *   over a fresh buffer per read and never touch it again;
 * - a packet that straddles chunks is copied into a fresh allocation of exactly its size, made once
 *   its header is known; header bytes that arrive in pieces wait in a private scratch array that is
 *   only ever copied from.
 * H4 has no resynchronisation: after an unknown indicator byte the framer reports one DecodeError and
 * ignores everything after it; the owner closes the stream.
 */

/** Header length (indicator included) per packet type, and where the payload length sits. */
const HEADER: Record<number, { size: number; len: (h: Uint8Array, o: number) => number }> = {
  // Command: opcode (2), parameter length (1). Vol 4 Part E 5.4.1
  [H4.command]: { size: 4, len: (h, o) => h[o + 3]! },
  // ACL: handle + flags (2), data length (2, little-endian). Vol 4 Part E 5.4.2
  [H4.acl]: { size: 5, len: (h, o) => h[o + 3]! | (h[o + 4]! << 8) },
  // Synchronous: handle + flags (2), data length (1). Vol 4 Part E 5.4.3
  [H4.sco]: { size: 4, len: (h, o) => h[o + 3]! },
  // Event: event code (1), parameter length (1). Vol 4 Part E 5.4.4
  [H4.event]: { size: 3, len: (h, o) => h[o + 2]! },
  // ISO: handle + flags (2), 14-bit data length (2, top two bits RFU). Vol 4 Part E 5.4.5
  [H4.iso]: { size: 5, len: (h, o) => (h[o + 3]! | (h[o + 4]! << 8)) & 0x3fff },
};

export interface H4FramerSink {
  packet(packet: Uint8Array): void;
  /**
   * Optional: a packet lying wholly inside one chunk, in place (TransportReceiver.packetAt's terms:
   * bytes[start, end), bytes[i] at octet base + i of buffer). A sink without it gets packet() with a
   * plain Uint8Array view; packets straddling chunks always come through packet().
   */
  packetAt?(bytes: Uint8Array, start: number, end: number, buffer: ArrayBufferLike, base: number): void;
  error(error: DecodeError): void;
}

export class H4Framer {
  /** Header bytes of a packet whose header straddles chunks (copied from, never emitted). */
  private readonly scratch = new Uint8Array(5);
  private scratchFill = 0;
  /** A packet straddling chunks: a fresh exact-size allocation being filled. */
  private body: Uint8Array | undefined;
  private bodyFill = 0;
  /** Stream offset of the next byte pushed (for error messages). */
  private offset = 0;
  private dead = false;

  /** The sink takes packets in place (read once: the sink is fixed). */
  private readonly inPlace: boolean;

  constructor(private readonly sink: H4FramerSink) {
    this.inPlace = typeof sink.packetAt === 'function';
  }

  /** Bytes of an unfinished packet held back, and the size it will have (0 when not known yet). */
  get pending(): { have: number; need: number } {
    if (this.body) return { have: this.bodyFill, need: this.body.length };
    return { have: this.scratchFill, need: 0 };
  }

  /** Feed bytes. The caller must not write into `chunk` afterwards: packets may be views of it. */
  push(chunk: Uint8Array): void {
    if (this.dead) return;
    const n = chunk.length;
    // Read once per chunk: a packet view is then made from numbers, or (packetAt) the numbers go up
    // with the packet so that only the view the application receives is ever made. chunk.subarray()
    // would do the same work per packet and, on a Node Buffer (what net and serialport hand over),
    // make a Buffer through JavaScript: ~50 ns more per packet on node 20 (issue 14).
    const ab = chunk.buffer, at = chunk.byteOffset;
    let i = 0;
    while (i < n) {
      if (this.body) {
        const take = Math.min(this.body.length - this.bodyFill, n - i);
        this.body.set(chunk.subarray(i, i + take), this.bodyFill);
        this.bodyFill += take;
        i += take;
        if (this.bodyFill === this.body.length) this.emitBody();
        continue;
      }
      if (this.scratchFill === 0) {
        const h = HEADER[chunk[i]!];
        if (!h) return this.fail(chunk[i]!, this.offset + i);
        if (n - i >= h.size) {
          const total = h.size + h.len(chunk, i);
          if (n - i >= total) {
            const from = i;
            i += total;
            if (this.inPlace) this.sink.packetAt!(chunk, from, i, ab, at);
            else this.sink.packet(new Uint8Array(ab, at + from, total));
            if (this.dead) return;
            continue;
          }
          this.body = new Uint8Array(total);
          this.body.set(chunk.subarray(i, n));
          this.bodyFill = n - i;
          i = n;
          continue;
        }
        this.scratch.set(chunk.subarray(i, n));
        this.scratchFill = n - i;
        i = n;
        continue;
      }
      // Completing a header that began in an earlier chunk.
      const h = HEADER[this.scratch[0]!]!;
      const take = Math.min(h.size - this.scratchFill, n - i);
      this.scratch.set(chunk.subarray(i, i + take), this.scratchFill);
      this.scratchFill += take;
      i += take;
      if (this.scratchFill === h.size) {
        this.body = new Uint8Array(h.size + h.len(this.scratch, 0));
        this.body.set(this.scratch.subarray(0, h.size));
        this.bodyFill = h.size;
        this.scratchFill = 0;
        if (this.bodyFill === this.body.length) this.emitBody();
      }
    }
    this.offset += n;
  }

  private emitBody(): void {
    const packet = this.body!;
    this.body = undefined;
    this.bodyFill = 0;
    this.sink.packet(packet);
  }

  private fail(indicator: number, at: number): void {
    this.dead = true;
    this.sink.error(new DecodeError('h4', 'H4 packet', at,
      `unknown packet indicator 0x${indicator.toString(16).padStart(2, '0')} (expected 0x01-0x05); ` +
      'the byte stream is out of step and H4 cannot resynchronise, so the stream must be closed'));
  }
}
