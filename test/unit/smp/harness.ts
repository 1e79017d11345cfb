// Two SmpSessions wired back to back in memory: an initiator and a responder exchange PDUs through a
// FIFO, a fake controller plays LE Enable Encryption / LTK Request / Encryption Change between them,
// and a scripted user answers passkey and comparison prompts. A `tap` can rewrite or drop any PDU in
// flight, which is how the attack tests play the man in the middle.
import { FakeClock } from '../../../src/clock.js';
import { equalBytes } from '../../../src/bytes/hex.js';
import { SmpSession, type SmpAction, type SmpSessionOptions, type PairingResult } from '../../../src/smp/session.js';
import type { SmpError, TimeoutError, DisconnectedError } from '../../../src/errors.js';

export type Side = 'i' | 'r';
export type PartOpts = Partial<Omit<SmpSessionOptions, 'role' | 'emit' | 'clock' | 'local' | 'peer'>>;

export const I_ADDR = { type: 0 as const, address: 'A1:A2:A3:A4:A5:A6' };
export const R_ADDR = { type: 1 as const, address: 'C1:B2:B3:B4:B5:B6' };

export interface User {
  /** What the user types on this side when asked for a passkey: 'peer' = what the other side shows. */
  passkey?: number | 'peer' | 'never';
  /** Answer to numeric comparison: default compares the two displayed values. */
  compare?: boolean | 'never';
}

export class Pair {
  readonly clock = new FakeClock();
  readonly i: SmpSession;
  readonly r: SmpSession;
  readonly actions: Record<Side, SmpAction[]> = { i: [], r: [] };
  readonly sent: Array<{ from: Side; pdu: Uint8Array }> = [];
  /** Every action of both sides in the order they were emitted. */
  readonly log: Array<{ side: Side; a: SmpAction }> = [];
  readonly displayed: Partial<Record<Side, number>> = {};
  readonly compared: Partial<Record<Side, number>> = {};
  private readonly queue: Array<() => void> = [];
  private pendingUser: Array<() => void> = [];
  tap: (from: Side, pdu: Uint8Array) => Uint8Array | undefined = (_f, p) => p;
  /** Key size the fake controller reports after Encryption Change (default 16, as controllers do for LE). */
  reportedKeySize: number | undefined;
  encryptions = 0;
  /** The responder's bond store, as its owner would consult it when ltkRequest() says "not mine". */
  responderBond: { key: Uint8Array; ediv: number } | undefined;

  constructor(iOpts: PartOpts = {}, rOpts: PartOpts = {}, readonly users: Record<Side, User> = { i: {}, r: {} }) {
    const mk = (side: Side, o: PartOpts): SmpSession => new SmpSession({
      ...o, role: side === 'i' ? 'initiator' : 'responder', clock: this.clock,
      local: side === 'i' ? I_ADDR : R_ADDR, peer: side === 'i' ? R_ADDR : I_ADDR,
      emit: a => this.onAction(side, a),
    });
    this.i = mk('i', iOpts);
    this.r = mk('r', rOpts);
  }

  session(s: Side): SmpSession {
    return s === 'i' ? this.i : this.r;
  }

  private onAction(side: Side, a: SmpAction): void {
    this.actions[side].push(a);
    this.log.push({ side, a });
    const other: Side = side === 'i' ? 'r' : 'i';
    switch (a.kind) {
      case 'send':
        this.sent.push({ from: side, pdu: a.pdu });
        this.queue.push(() => {
          const p = this.tap(side, a.pdu);
          if (p) this.session(other).receive(p);
        });
        break;
      case 'startEncryption':
        this.queue.push(() => {
          // The controller: LE Enable Encryption → the peripheral's LTK Request → both Encryption Change.
          this.encryptions++;
          const bond = this.responderBond;
          const key = this.r.ltkRequest(a.ltk.ediv, a.ltk.rand) ?? (bond && bond.ediv === a.ltk.ediv ? bond.key : undefined);
          const ok = !!key && equalBytes(key, a.ltk.key);
          const size = this.reportedKeySize ?? 16;
          this.i.encryptionChanged(ok ? 0 : 0x06, ok ? size : undefined);
          this.r.encryptionChanged(ok ? 0 : 0x06, ok ? size : undefined);
        });
        break;
      case 'displayPasskey':
        this.displayed[side] = a.passkey;
        break;
      case 'requestPasskey':
        this.pendingUser.push(() => {
          const u = this.users[side].passkey ?? 'peer';
          if (u === 'never') return;
          this.session(side).passkeyEntered(u === 'peer' ? this.displayed[other]! : u);
        });
        break;
      case 'numericComparison':
        this.compared[side] = a.value;
        this.pendingUser.push(() => {
          const u = this.users[side].compare ?? (this.compared.i === this.compared.r);
          if (u === 'never') return;
          this.session(side).numericComparisonResult(u);
        });
        break;
    }
  }

  /** Deliver everything in flight, answering the user prompts once the wire is quiet. */
  run(): this {
    for (let guard = 0; guard < 10_000; guard++) {
      const next = this.queue.shift();
      if (next) {
        next();
        continue;
      }
      if (this.pendingUser.length === 0) return this;
      const users = this.pendingUser;
      this.pendingUser = [];
      for (const u of users) u();
    }
    throw new Error('harness did not settle');
  }

  result(side: Side): PairingResult | undefined {
    const a = this.actions[side].find(x => x.kind === 'paired');
    return a?.kind === 'paired' ? a.result : undefined;
  }
  failure(side: Side): SmpError | TimeoutError | DisconnectedError | undefined {
    const a = this.actions[side].find(x => x.kind === 'failed');
    return a?.kind === 'failed' ? a.error : undefined;
  }
  /** Codes of the PDUs one side sent, in order. */
  codes(side: Side): number[] {
    return this.sent.filter(s => s.from === side).map(s => s.pdu[0]!);
  }
}
