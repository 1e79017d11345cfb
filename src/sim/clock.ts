/**
 * Virtual time for the simulator: one clock shared by the host (through the Clock interface) and by
 * the simulated controller and its peripherals (through schedule()).
 *
 * Design overview
 * - Time is kept in integer microseconds (connection intervals are multiples of 1.25 ms, advertising
 *   delays are random microseconds; integers keep anchor arithmetic exact). `now()` returns ms.
 * - Two kinds of entries live in one time-ordered queue: host timers (setTimeout: what `pendingTimers`
 *   counts, so tests can check the host leaked none) and simulator events (schedule(): advertising
 *   events, connection events, packet deliveries). Ties run in the order they were scheduled.
 * - The runner: whenever the queue is not empty, a macrotask (platform/timers.ts; setImmediate on Node) takes the earliest entry,
 *   moves time to it and runs it; the next entry waits for the next macrotask, so every promise
 *   continuation the entry caused (the host reacting to a packet) runs first, at the same virtual
 *   instant. Time therefore jumps ahead whenever nothing is runnable: no wall-clock waiting unless
 *   `speed` asks for it (virtual ms per wall ms, e.g. 1 for real time).
 * - Code that waits on real I/O sees virtual time run on meanwhile; protocol code never does.
 * - stop() clears every entry and ends the runner (the simulator is closed); nothing fires after it.
 *   resume() lets a stopped clock run again from the time it stopped at (a shared air that a new
 *   controller joins after the last one left); what was scheduled before the stop stays cancelled.
 */
import type { Clock, TimerId } from '../clock.js';
import { log } from '../log.js';
import { macrotask } from '../platform/timers.js';

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  host: boolean;
  live: boolean;
}

/** A cancellable simulator event. */
export interface SimEvent {
  cancel(): void;
  readonly at: number;
}

export interface SimClockOptions {
  /** Virtual ms per wall-clock ms; default Infinity (as fast as possible). */
  speed?: number;
}

export class SimClock implements Clock {
  private t = 0; // µs
  private seq = 0;
  private heap: Entry[] = [];
  private hostCount = 0;
  private scheduled = false;
  /** With a finite speed: the pending wall-clock wait and the virtual time (µs) it wakes up for. */
  private wallTimer: ReturnType<typeof setTimeout> | undefined;
  private wallTimerAt = 0;
  private stopped = false;
  /** Bumped by stop(): a runner callback (macrotask or wall timer) scheduled before it does nothing. */
  private epoch = 0;
  private readonly speed: number;
  /** Entries run so far (host timers + simulator events). */
  steps = 0;
  /** Errors thrown by entries (logged and kept; the runner carries on). */
  readonly errors: unknown[] = [];

  constructor(options: SimClockOptions = {}) {
    this.speed = options.speed ?? Infinity;
  }

  /** Virtual ms since the simulator started. */
  now(): number {
    return this.t / 1000;
  }

  /** Virtual µs. */
  get micros(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const e = this.push(this.t + Math.max(0, Math.round(ms * 1000)), fn, true);
    return e as unknown as TimerId;
  }

  clearTimeout(id: TimerId): void {
    const e = id as unknown as Entry;
    if (e && e.live && e.host) {
      e.live = false;
      this.hostCount--;
    }
  }

  /** Host timers still pending (the FakeClock-compatible leak check). */
  get pendingTimers(): number {
    return this.hostCount;
  }

  /** Simulator events still pending. */
  get pendingEvents(): number {
    let n = 0;
    for (const e of this.heap) if (e.live && !e.host) n++;
    return n;
  }

  /** Run fn at virtual time `atUs` (µs; never earlier than now). */
  scheduleAt(atUs: number, fn: () => void): SimEvent {
    const e = this.push(Math.max(this.t, Math.round(atUs)), fn, false);
    return { cancel: () => { e.live = false; }, at: e.at };
  }

  /** Run fn after `us` microseconds of virtual time. */
  schedule(us: number, fn: () => void): SimEvent {
    return this.scheduleAt(this.t + us, fn);
  }

  /** A promise that resolves after `ms` of virtual time (for tests and scripted scenarios). */
  delay(ms: number): Promise<void> {
    return new Promise(resolve => this.schedule(Math.round(ms * 1000), resolve));
  }

  /** A Clock whose timers are simulator events (not counted as host timers): for virtual peers. */
  readonly internal: Clock = {
    now: () => this.now(),
    setTimeout: (fn, ms) => this.push(this.t + Math.max(0, Math.round(ms * 1000)), fn, false) as unknown as TimerId,
    clearTimeout: id => { (id as unknown as Entry).live = false; },
  };

  stop(): void {
    this.stopped = true;
    // The runner is not scheduled any more: a resume() must be able to start a new one (with a finite
    // speed the wall timer cleared here was the only one, and a stale 'scheduled' kept kick() idle).
    this.epoch++;
    this.scheduled = false;
    if (this.wallTimer !== undefined) clearTimeout(this.wallTimer);
    this.wallTimer = undefined;
    for (const e of this.heap) e.live = false;
    this.heap = [];
    this.hostCount = 0;
  }

  /** Runs again after stop(), from the time it stopped at; entries cancelled by stop() stay cancelled. */
  resume(): void {
    this.stopped = false;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  // ---- queue ----------------------------------------------------------------------------------------

  private push(at: number, fn: () => void, host: boolean): Entry {
    const e: Entry = { at, seq: this.seq++, fn, host, live: !this.stopped };
    if (this.stopped) return e;
    if (host) this.hostCount++;
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
    this.kick();
    return e;
  }

  /** Remove and return the earliest entry, live or not. */
  private popAny(): Entry | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    {
      const top = h[0]!;
      const last = h.pop()!;
      if (h.length > 0) {
        h[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < h.length && less(h[l]!, h[m]!)) m = l;
          if (r < h.length && less(h[r]!, h[m]!)) m = r;
          if (m === i) break;
          [h[i], h[m]] = [h[m]!, h[i]!];
          i = m;
        }
      }
      return top;
    }
  }

  /** Remove and return the earliest live entry. */
  private pop(): Entry | undefined {
    for (;;) {
      const e = this.popAny();
      if (!e || e.live) return e;
    }
  }

  private peek(): Entry | undefined {
    const h = this.heap;
    while (h.length > 0 && !h[0]!.live) this.popAny();
    return h[0];
  }

  private kick(): void {
    if (this.stopped) return;
    const next = this.heap[0];
    if (this.scheduled) {
      // With a finite speed the runner may be sleeping until a later entry: an earlier one just
      // pushed (a host command while a far timer is pending) must wake it at its own time instead.
      if (this.wallTimer === undefined || !next || next.at >= this.wallTimerAt) return;
      clearTimeout(this.wallTimer);
      this.wallTimer = undefined;
    }
    this.scheduled = true;
    const epoch = this.epoch;
    if (this.speed !== Infinity && next && next.at > this.t) {
      const wallMs = (next.at - this.t) / 1000 / this.speed;
      this.wallTimerAt = next.at;
      this.wallTimer = setTimeout(() => this.step(epoch), wallMs);
    } else {
      macrotask(() => this.step(epoch));
    }
  }

  private step(epoch: number): void {
    if (epoch !== this.epoch) return; // scheduled before a stop(): a later runner owns the queue
    this.scheduled = false;
    this.wallTimer = undefined;
    if (this.stopped) return;
    const e = this.pop();
    if (!e) return;
    e.live = false;
    if (e.host) this.hostCount--;
    if (e.at > this.t) this.t = e.at;
    this.steps++;
    try {
      e.fn();
    } catch (err) {
      this.errors.push(err);
      log.sim('a scheduled callback threw: %O', err);
    }
    if (this.peek()) this.kick();
  }
}

function less(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
