import type { TransportReceiver } from './types.js';

/**
 * Where a transport delivers what it receives. Packets and the close that arrive before the user
 * sets a receiver are queued (HciTransport contract), and after the close nothing more is delivered:
 * every transport gets "closed() exactly once, last" from here instead of re-implementing it.
 */
export class ReceiverSlot {
  private receiver: TransportReceiver | undefined;
  private queue: Uint8Array[] = [];
  private closing: { error?: Error } | undefined;
  private delivered = false;

  /** True once close() was called (the receiver may not have been told yet). */
  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  set(receiver: TransportReceiver): void {
    this.receiver = receiver;
    while (this.queue.length && this.receiver === receiver) receiver.packet(this.queue.shift()!);
    if (this.closing && this.queue.length === 0) this.deliverClose();
  }

  packet(packet: Uint8Array): void {
    if (this.closing) return;
    if (this.receiver && this.queue.length === 0) this.receiver.packet(packet);
    else this.queue.push(packet);
  }

  /** TransportReceiver.packetAt: in place to a receiver that takes it, else a view through packet(). */
  packetAt(bytes: Uint8Array, start: number, end: number, buffer: ArrayBufferLike, base: number): void {
    if (this.closing) return;
    const r = this.receiver;
    if (r !== undefined && r.packetAt !== undefined && this.queue.length === 0) r.packetAt(bytes, start, end, buffer, base);
    else this.packet(new Uint8Array(buffer, base + start, end - start));
  }

  close(error?: Error): void {
    if (this.closing) return;
    this.closing = error ? { error } : {};
    if (this.receiver && this.queue.length === 0) this.deliverClose();
  }

  private deliverClose(): void {
    if (this.delivered || !this.receiver) return;
    this.delivered = true;
    this.receiver.closed(this.closing?.error);
  }
}
