/**
 * The simulated controller's LE ACL data buffers (Core Vol 4, Part E, 4.1.1): `count` buffers of
 * `length` octets shared by every link. A host packet takes one until the link sends it over the air
 * (Number Of Completed Packets gives it back); a packet beyond the pool or longer than a buffer is an
 * overrun (the host broke flow control) and is lost. The buffers of a link that closes are free again
 * without Number Of Completed Packets (Vol 4, Part E, 4.3).
 */
export class SimAclBuffers {
  private inFlight = 0;
  private readonly byHandle = new Map<number, number>();

  constructor(readonly length: number, readonly count: number) {}

  /** Take a buffer for a packet of `octets` on `handle`; false when the host broke flow control. */
  take(handle: number, octets: number): boolean {
    if (octets > this.length || this.inFlight >= this.count) return false;
    this.inFlight++;
    this.byHandle.set(handle, (this.byHandle.get(handle) ?? 0) + 1);
    return true;
  }

  /** `count` packets of `handle` went over the air: how many buffers that frees (0: report nothing). */
  complete(handle: number, count: number): number {
    const n = Math.min(count, this.byHandle.get(handle) ?? 0);
    if (n <= 0) return 0;
    this.byHandle.set(handle, (this.byHandle.get(handle) ?? 0) - n);
    this.inFlight -= n;
    return n;
  }

  /** A new link starts with no buffers of its own. */
  open(handle: number): void {
    this.byHandle.set(handle, 0);
  }

  /** The link closed: its buffers are free again, silently. */
  release(handle: number): void {
    this.inFlight -= this.byHandle.get(handle) ?? 0;
    this.byHandle.delete(handle);
  }

  /** Reset: every buffer free. */
  clear(): void {
    this.inFlight = 0;
    this.byHandle.clear();
  }
}
