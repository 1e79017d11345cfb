/**
 * A Clock for tests against real peers (btvirt, the guest) that runs on real time but can be moved
 * ahead by hand: `skip(ms)` adds `ms` to now() and fires, in order, every timer that falls due on the
 * way, so a 30 s protocol timeout is reached without waiting 30 s while packets still flow in real
 * time. Timers not yet due stay on their real setTimeout (unref'd, like systemClock's).
 */
import type { Clock, TimerId } from '../../../src/clock.js';

interface Timer { at: number; seq: number; fn: () => void; real: ReturnType<typeof setTimeout> }

export class SkipClock implements Clock {
  private offset = 0;
  private seq = 0;
  private readonly timers = new Map<TimerId, Timer>();

  now(): number {
    return performance.now() + this.offset;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = { __timer: true } as TimerId;
    const real = setTimeout(() => { this.timers.delete(id); fn(); }, Math.max(0, ms));
    real.unref?.();
    this.timers.set(id, { at: this.now() + Math.max(0, ms), seq: this.seq++, fn, real });
    return id;
  }

  clearTimeout(id: TimerId): void {
    const t = this.timers.get(id);
    if (!t) return;
    clearTimeout(t.real);
    this.timers.delete(id);
  }

  /** Move time ahead by `ms`, firing every timer due by then (earliest first). Returns how many fired. */
  skip(ms: number): number {
    this.offset += ms;
    let fired = 0;
    for (;;) {
      const limit = this.now();
      let next: [TimerId, Timer] | undefined;
      for (const e of this.timers) if (e[1].at <= limit && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq))) next = e;
      if (!next) return fired;
      clearTimeout(next[1].real);
      this.timers.delete(next[0]);
      fired++;
      next[1].fn();
    }
  }

  get pendingTimers(): number {
    return this.timers.size;
  }
}
