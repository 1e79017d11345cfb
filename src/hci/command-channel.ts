/**
 * HCI command channel: the one path by which the host sends HCI commands.
 *
 * Design overview
 * - Driven by two inputs: `submit()` from the host (a whole encoded H4 command packet plus its opcode,
 *   name and completion style) and the controller's Command Complete / Command Status events, which the
 *   host decodes and hands to `onCommandComplete()` / `onCommandStatus()` synchronously.
 * - Credits: the controller says in every Command Complete / Command Status how many commands it can
 *   take now (Num_HCI_Command_Packets, Core Vol 4, Part E, 4.4). We start with one credit (the
 *   controller may take one command after power-on, Vol 4, Part E, 4.4) and each event *sets* the
 *   credit to its value minus the commands we still have in flight beyond the one it answers. We never
 *   put more commands on the wire than credited; the rest wait in a FIFO.
 * - Correlation: by opcode, oldest first (two commands with the same opcode complete in order). An
 *   event for an opcode we have not sent, or opcode 0x0000 ("credit only"), just updates credits.
 * - Completion: a row says 'complete' (Command Complete carries the answer) or 'status' (Command Status
 *   acknowledges; a later event carries the outcome). Either event is accepted for either kind, since
 *   controllers answer an unknown command with whichever they like (btvirt uses Command Status 0x01).
 *   A non-zero status rejects with HciStatusError (status name, command name).
 * - Timeouts: each command has a deadline from submission (queue wait included). When an in-flight
 *   command times out, we assume its answer is lost: it rejects with TimeoutError{layer:'hci'}, the
 *   credit it used is given back (as Linux's hci_cmd_timeout does) so the queue does not wedge, and
 *   `onTimeout` tells the host, which treats it as a sign of a dead controller.
 * - AbortSignal: a queued command is removed at once; an in-flight one cannot be withdrawn from the
 *   controller, so it rejects at once but its slot stays until the answer arrives (Zephyr's cancel
 *   sentinel) so that the answer is not taken for a later command with the same opcode.
 * - Close: `close(error)` rejects everything queued and in flight with that error (transport loss,
 *   Hardware Error before a reset, adapter close); later submissions reject at once.
 * - Bounds (issue 15: nothing a peer or a controller sends may grow memory without a written limit):
 *   in flight ≤ the credits the controller granted (its Num_HCI_Command_Packets, 8 bits, so ≤ 255);
 *   the wait queue ≤ MAX_QUEUED_COMMANDS. Every entry has a deadline, so a controller that withholds
 *   credits holds each command for its timeout at most; a submission beyond the bound rejects at once
 *   (InvalidStateError) instead of queueing. A timeout says whether the command was sent and never
 *   answered, or never left the queue for lack of credits.
 */
import type { Clock, TimerId } from '../clock.js';
import { AbortError, HciStatusError, InvalidStateError, TimeoutError, type BlewireError } from '../errors.js';
import { log } from '../log.js';

export const HCI_DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

/**
 * Commands waiting for a controller credit. The host's own procedures keep a handful outstanding
 * (init is sequential; links add one procedure each); 256 leaves room for many links while a
 * controller that grants no credit cannot make the queue, its timers and its promises grow past it.
 */
export const MAX_QUEUED_COMMANDS = 256;

export interface CommandSubmission {
  /** Whole H4 command packet, indicator byte first. */
  packet: Uint8Array;
  opcode: number;
  /** For errors and logs: the table kind, e.g. 'leSetScanEnable'. */
  name: string;
  completes: 'complete' | 'status';
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What the command's answering event said: status and (for Command Complete) the return parameters. */
export interface CommandAnswer {
  event: 'complete' | 'status';
  status: number;
  /** Return parameters of Command Complete (status byte included); empty for Command Status. */
  returnParameters: Uint8Array;
}

interface Pending {
  sub: CommandSubmission;
  resolve(a: CommandAnswer): void;
  reject(e: Error): void;
  timer: TimerId | undefined;
  /** The caller gave up (abort / timeout) while the command was in flight: consume and drop its answer. */
  orphan: boolean;
  onAbort?: () => void;
}

export interface CommandChannelOptions {
  send(packet: Uint8Array): void;
  clock: Clock;
  /** Name of an HCI status code for messages (the codec's status table). */
  statusName?(status: number): string;
  /** An in-flight command got no answer in time. */
  onTimeout?(name: string, opcode: number): void;
  defaultTimeoutMs?: number;
}

export class CommandChannel {
  private credits = 1;
  private readonly queue: Pending[] = [];
  private readonly inFlight: Pending[] = [];
  private closedWith: BlewireError | Error | undefined;
  /** Events that answered nothing we sent (for doctor / tests). */
  unmatchedAnswers = 0;

  constructor(private readonly opts: CommandChannelOptions) {}

  /** Commands the controller can take right now (never negative). */
  get availableCredits(): number {
    return this.credits;
  }
  get outstanding(): number {
    return this.inFlight.length;
  }
  get queued(): number {
    return this.queue.length;
  }

  submit(sub: CommandSubmission): Promise<CommandAnswer> {
    return new Promise<CommandAnswer>((resolve, reject) => {
      if (this.closedWith) return reject(this.closedWith);
      if (sub.signal?.aborted) return reject(new AbortError(`hci ${sub.name}`, sub.signal.reason));
      if (this.queue.length >= MAX_QUEUED_COMMANDS) {
        return reject(new InvalidStateError(`hci: ${sub.name} not sent: ${this.queue.length} commands already wait for a ` +
          `controller credit (Num_HCI_Command_Packets, Vol 4, Part E, 4.4) and ${this.inFlight.length} are unanswered; ` +
          'the controller is not keeping up or has stopped answering'));
      }
      const p: Pending = { sub, resolve, reject, timer: undefined, orphan: false };
      const ms = sub.timeoutMs ?? this.opts.defaultTimeoutMs ?? HCI_DEFAULT_COMMAND_TIMEOUT_MS;
      p.timer = this.opts.clock.setTimeout(() => this.expire(p, ms), ms);
      if (sub.signal) {
        const signal = sub.signal;
        p.onAbort = () => this.abandon(p, new AbortError(`hci ${sub.name}`, signal.reason));
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.queue.push(p);
      this.pump();
    });
  }

  /** Command Complete (Vol 4, Part E, 7.7.14): numPackets credits, opcode, return parameters. */
  onCommandComplete(numPackets: number, opcode: number, returnParameters: Uint8Array): void {
    // Return parameters start with the status for every command we send (Vol 4, Part E, 7.x "Return parameters").
    const status = returnParameters.length > 0 ? returnParameters[0]! : 0;
    this.answer(numPackets, opcode, { event: 'complete', status, returnParameters });
  }

  /** Command Status (Vol 4, Part E, 7.7.15). */
  onCommandStatus(status: number, numPackets: number, opcode: number): void {
    this.answer(numPackets, opcode, { event: 'status', status, returnParameters: new Uint8Array(0) });
  }

  /** Reject everything with `error`; later submissions reject with it too until `reopen()`. */
  close(error: Error): void {
    this.closedWith = error;
    const all = [...this.inFlight, ...this.queue];
    this.inFlight.length = 0;
    this.queue.length = 0;
    for (const p of all) this.settle(p, undefined, error);
  }

  /** After a reset: fresh credit state, accept commands again. */
  reopen(): void {
    this.closedWith = undefined;
    this.credits = 1;
  }

  /**
   * Forget in-flight commands without rejecting the caller's view of the channel (used right before
   * HCI_Reset after a Hardware Error: answers to commands sent before the reset will never come).
   */
  abortInFlight(error: Error): void {
    const all = this.inFlight.splice(0);
    for (const p of all) this.settle(p, undefined, error);
    this.credits = 1;
  }

  private answer(numPackets: number, opcode: number, a: CommandAnswer): void {
    const i = opcode === 0 ? -1 : this.inFlight.findIndex(p => p.sub.opcode === opcode);
    // Num_HCI_Command_Packets is how many commands the controller can accept now (Vol 4, Part E, 7.7.14);
    // commands still in flight other than the one answered already occupy some of them.
    const stillOut = this.inFlight.length - (i >= 0 ? 1 : 0);
    this.credits = Math.max(0, numPackets - stillOut);
    if (i < 0) {
      if (opcode !== 0) {
        this.unmatchedAnswers++;
        log.hci('answer for opcode 0x%s that is not in flight', opcode.toString(16));
      }
      this.pump();
      return;
    }
    const p = this.inFlight.splice(i, 1)[0]!;
    if (p.orphan) {
      this.settle(p, a, undefined);
    } else {
      if (a.event === 'status' && a.status === 0 && p.sub.completes === 'complete') {
        // A Command Status 0 for a command that completes with Command Complete is a controller bug;
        // keep waiting for the Complete rather than resolving with no return parameters.
        this.inFlight.splice(i, 0, p);
      } else if (a.status !== 0) {
        const name = this.opts.statusName?.(a.status) ?? `0x${a.status.toString(16).padStart(2, '0')}`;
        this.settle(p, undefined, new HciStatusError(a.status, name, p.sub.name, opcode));
      } else {
        this.settle(p, a, undefined);
      }
    }
    this.pump();
  }

  private pump(): void {
    while (this.credits > 0 && this.queue.length > 0 && !this.closedWith) {
      const p = this.queue.shift()!;
      this.credits--;
      this.inFlight.push(p);
      this.opts.send(p.sub.packet);
    }
  }

  private expire(p: Pending, ms: number): void {
    p.timer = undefined;
    const qi = this.queue.indexOf(p);
    if (qi >= 0) {
      this.queue.splice(qi, 1);
      // It never reached the controller: say so, and what held it (not just "timed out").
      const oldest = this.inFlight.find(f => !f.orphan) ?? this.inFlight[0];
      this.settle(p, undefined, new TimeoutError('hci', p.sub.name, ms,
        'it was never sent: the controller granted no command credit (Num_HCI_Command_Packets, Vol 4, Part E, 4.4) ' +
        `in that time${oldest ? `; ${this.inFlight.length} sent command(s) still unanswered, oldest ${oldest.sub.name}` : ''}` +
        '; is the controller hung? Reset it or reopen the adapter'));
      return;
    }
    const fi = this.inFlight.indexOf(p);
    if (fi < 0) return;
    // The answer is presumed lost; free the slot and give the credit back so the queue moves on.
    this.inFlight.splice(fi, 1);
    this.credits = Math.max(this.credits, 1);
    if (!p.orphan) {
      this.settle(p, undefined, new TimeoutError('hci', p.sub.name, ms,
        'it was sent but the controller answered with neither Command Complete nor Command Status (Vol 4, Part E, 4.4); is the controller hung?'));
    }
    this.opts.onTimeout?.(p.sub.name, p.sub.opcode);
    this.pump();
  }

  private abandon(p: Pending, error: Error): void {
    const qi = this.queue.indexOf(p);
    if (qi >= 0) {
      this.queue.splice(qi, 1);
      this.settle(p, undefined, error);
      return;
    }
    if (this.inFlight.includes(p) && !p.orphan) {
      // Cannot withdraw it from the controller: reject now, keep the slot until its answer arrives.
      this.settle(p, undefined, error, true);
    }
  }

  private settle(p: Pending, a: CommandAnswer | undefined, e: Error | undefined, keepTimer = false): void {
    if (!keepTimer && p.timer !== undefined) {
      this.opts.clock.clearTimeout(p.timer);
      p.timer = undefined;
    }
    if (p.orphan) return;
    if (p.onAbort) p.sub.signal?.removeEventListener('abort', p.onAbort);
    if (keepTimer) p.orphan = true;
    if (e) p.reject(e);
    else p.resolve(a!);
  }
}
