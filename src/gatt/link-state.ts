/**
 * Per-link work that callers share without owning it (issue 8, "Link state belongs to state
 * machines, not to callers' promises").
 *
 * The old client cached the first caller's promise (`x ??= runOp(callerOptions, ...)`): that
 * caller's timeout became everyone's result for the life of the link, and a rejected promise stayed
 * cached. SharedWork separates the two:
 * - the work runs under its own AbortController, outside any caller's within() scope;
 * - each caller waits under its own deadline and signal (runOp + raceAbort): a caller giving up
 *   rejects that caller only;
 * - only a success is kept by the owner (SharedWork itself keeps nothing after the run: a failed
 *   or abandoned run leaves the state idle, so the next caller starts again);
 * - `abandon: 'when-unwanted'` aborts the work when its last waiter has gone (discovery: no one
 *   wants the result, stop spending round trips); `abandon: 'never'` lets it finish (the MTU
 *   exchange: a request on the wire cannot be withdrawn, and its late response must be applied).
 *
 * States: idle → running(waiters, controller) → idle. The promise of a run is never shared with a
 * later run.
 */
import type { Clock } from '../clock.js';
import { AbortError } from '../errors.js';
import { outsideScope, raceAbort, runOp, type OpOptions } from '../operation.js';

interface Running<T> { tag: 'running'; promise: Promise<T>; ctl: AbortController; waiters: number }
type RunState<T> = { tag: 'idle' } | Running<T>;

export class SharedWork<T> {
  private state: RunState<T> = { tag: 'idle' };

  constructor(
    private readonly clock: Clock,
    private readonly what: string,
    private readonly work: (signal: AbortSignal) => Promise<T>,
    private readonly abandon: 'when-unwanted' | 'never',
  ) {}

  get running(): boolean {
    return this.state.tag === 'running';
  }

  /**
   * Wait for the current run (starting one if idle) under this caller's own deadline and signal. An
   * already-aborted signal rejects before anything starts (nothing is sent).
   */
  async join(options: OpOptions | undefined): Promise<T> {
    let run: Running<T> | undefined;
    try {
      return await runOp(this.clock, options, this.what, signal => {
        run = this.state.tag === 'running' ? this.state : this.start();
        run.waiters++;
        return raceAbort(run.promise, signal, this.what);
      });
    } finally {
      if (run) {
        run.waiters--;
        if (run.waiters === 0 && this.abandon === 'when-unwanted' && this.state === run) {
          this.state = { tag: 'idle' };
          run.ctl.abort(new AbortError(this.what, 'no caller waits for it any more'));
        }
      }
    }
  }

  /** Stop the current run (the link went down); its waiters reject with `reason`. */
  cancel(reason: Error): void {
    if (this.state.tag !== 'running') return;
    const run = this.state;
    this.state = { tag: 'idle' };
    run.ctl.abort(reason);
  }

  private start(): Running<T> {
    const ctl = new AbortController();
    const run: Running<T> = { tag: 'running', promise: undefined as never, ctl, waiters: 0 };
    run.promise = outsideScope(() => this.work(ctl.signal)).finally(() => {
      if (this.state === run) this.state = { tag: 'idle' };
    });
    run.promise.catch(() => {}); // waiters see the error; an unwaited failure is not unhandled
    this.state = run;
    return run;
  }
}
