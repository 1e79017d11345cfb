/**
 * The outgoing buffer used while the broker is away: a FIFO with two bounds (messages and payload
 * bytes). When either bound would be exceeded the OLDEST entries are dropped and counted, so a
 * gateway that loses its broker for a day keeps the freshest data and a fixed amount of memory.
 *
 * Defaults (GatewayConfig.buffer): 10 000 messages or 16 MiB of payload, whichever is reached first.
 * Topic strings are not counted in `bytes`; each entry costs about 100 bytes of overhead besides.
 */
import { GatewayError } from './errors.js';

export interface Buffered {
  topic: string;
  payload: string | Uint8Array;
  qos: 0 | 1;
  retain: boolean;
}

export const DEFAULT_BUFFER_MESSAGES = 10_000;
export const DEFAULT_BUFFER_BYTES = 16 * 1024 * 1024;

export class BoundedQueue<T extends { payload: string | Uint8Array }> {
  private items: Array<T | undefined> = [];
  private head = 0;
  /** Payload bytes held (strings counted as their UTF-16 length, a close upper bound for JSON). */
  bytes = 0;
  /** Entries dropped (oldest first) to stay within the bounds, since creation. */
  dropped = 0;

  constructor(readonly maxMessages = DEFAULT_BUFFER_MESSAGES, readonly maxBytes = DEFAULT_BUFFER_BYTES) {
    if (!(maxMessages >= 1) || !(maxBytes >= 1)) throw new GatewayError('EGW_CONFIG', `the offline buffer's bounds must be at least 1 (maxMessages ${maxMessages}, maxBytes ${maxBytes}): fix buffer.maxMessages / buffer.maxBytes in the configuration`);
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Append; drops the oldest entries while a bound is exceeded. An entry larger than maxBytes is dropped itself. */
  push(item: T): void {
    const size = item.payload.length;
    if (size > this.maxBytes) {
      this.dropped++;
      return;
    }
    while (this.length > 0 && (this.length + 1 > this.maxMessages || this.bytes + size > this.maxBytes)) this.dropOldest();
    this.items.push(item);
    this.bytes += size;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined;
    this.bytes -= item.payload.length;
    this.compact();
    return item;
  }

  /** The oldest entry without removing it. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }

  private dropOldest(): void {
    this.shift();
    this.dropped++;
  }

  private compact(): void {
    // Reclaim the consumed prefix once it is large, so the array never grows past ~2x the live entries.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
