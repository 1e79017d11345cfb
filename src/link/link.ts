/**
 * LeLink: one LE connection, whichever role opened it (we initiated it as central, or a central
 * connected to us and we are the peripheral). The per-connection object of the stack, as Zephyr's
 * `bt_conn` and NimBLE's connection entry are.
 *
 * What it owns, for this connection only (nothing here outlives the link):
 * - the L2CAP link and its channels (`l2cap`: reassembly, fixed channels, LE signalling);
 * - the ATT bearer on the fixed channel 0x0004 (`bearer`), built when the link is, so a peer that sends
 *   ATT requests the moment the link is up (BlueZ sends Exchange MTU at once) is answered whether or
 *   not anyone ever uses GATT here; enhanced bearers (EATT) would join it over credit-based channels;
 * - our server-side ATT session (`server`): the peer's requests answered from our GATT database
 *   (default: the small GAP/GATT database of `gatt/local-db.ts`), the same for both roles;
 * - the optional GATT client (`gatt`, attached by whoever wants one: the public Connection does);
 * - the SMP hook on the fixed channel 0x0006 (`smp`) and the link's security state (`security`):
 *   THE PLACE FOR THE SMP SESSION. Today the hook refuses pairing (Pairing Not Supported); the
 *   pairing state machine plugs in with `link.smp.install(session)` and fills `security`;
 * - the link-layer procedures and their state: connection parameter updates (one outstanding, later
 *   requests coalesced, bounded waiters: see `updateParameters`), PHY, data length, disconnect.
 *
 * What drives it: the GAP scheduler (`link/manager.ts`) builds it on LE Connection Complete, routes
 * the link's HCI events to it (update / PHY complete, data length change) and calls `closed()` on
 * Disconnection Complete; the host routes its ACL data to `l2cap`; callers use its procedures.
 *
 * Teardown (`closed()`): L2CAP closes every channel with DisconnectedError(reason), so the bearer,
 * our server session, the GATT client and the SMP session end; pending procedures reject; the
 * procedure timer is cleared; 'disconnect' listeners get the typed reason.
 *
 * `{ timeout, signal }` on every procedure (src/operation.ts): an already-aborted signal rejects before
 * anything is sent. Otherwise the HCI command goes out and an abort or a deadline rejects the caller
 * at once and clears its timer, but cannot withdraw the procedure from the controller (as an in-flight
 * ATT request cannot be withdrawn from the peer): it may still complete, and the parameters / PHY it
 * reports still apply to the link. Default deadlines are the LL procedure response timeout (40 s,
 * Vol 6, Part B, 5.2), for LE Set Data Length the HCI command timeout.
 */
import type { AttBearer, AttServerRole } from '../att/bearer.js';
import type { Clock, TimerId } from '../clock.js';
import { ArgumentError, DisconnectedError, HciStatusError, InvalidStateError, TimeoutError } from '../errors.js';
import { DisconnectReasons, type ConnectionParameters, type DisconnectReason } from '../gap/connections.js';
import { ms10, ms125 } from '../gap/initiator.js';
import type { AddressType } from '../gap/scanner.js';
import { GattClient, type GattClientOptions } from '../gatt/client.js';
import { openAttBearer } from '../gatt/local-db.js';
import type { GattServerLink } from '../gatt/server-db.js';
import { isUnknownCommand } from '../hci/controller.js';
import type { HciHost } from '../hci/host.js';
import { statusName } from '../hci/status.js';
import type { CocRegistry } from '../l2cap/coc.js';
import { L2capLink, validConnectionParameters, type ConnectionParameterRequest } from '../l2cap/link.js';
import { log } from '../log.js';
import { abortedError, deadline, guarded, type OperationOptions } from '../operation.js';
import type { SmpAddress } from '../smp/session.js';
import { LinkPairing, type SecurityContext, type SecurityState } from './pairing.js';
import { SmpHook } from './smp.js';

/** LL procedure response timeout (Vol 6, Part B, 5.2): the default deadline of the link procedures. */
export const PROCEDURE_TIMEOUT_MS = 40_000;
/**
 * Callers that may wait for connection parameter updates on one link at a time (the one in progress
 * and the one queued behind it together). The peer's own requests never wait here, so the bound
 * only concerns the application; one more caller is refused at once with InvalidStateError.
 */
export const MAX_UPDATE_WAITERS = 8;

export interface LinkOptions {
  /** Our ATT receive MTU offered in Exchange MTU, 23..517, default 517. */
  mtu?: number;
  /**
   * Our GATT server on this link's bearer: default a session of `localGattDatabase()`; a function
   * making the link's server session (the adapter's GattServer); false: Request Not Supported.
   */
  server?: AttServerRole | false | ((link: LeLink) => GattServerLink);
  /** ATT transaction timeout; only tests should change it (default 30 s, Vol 3, Part F, 3.3.3). */
  attTransactionTimeoutMs?: number;
  /** The PSMs the adapter listens on (credit-based channels); none: every channel request is refused. */
  channels?: CocRegistry;
}

/**
 * What is known about the link's security (Vol 3, Part H; Vol 6, Part B, 5.1.3; levels of LE security
 * mode 1, Vol 3, Part C, 10.2.1). The link's pairing (`link/pairing.ts`) keeps it true from SMP's
 * outcome and the controller's Encryption Change events.
 */
export type LinkSecurity = SecurityState;

/** What a link needs of the stack around it: the host and the clock. */
export interface LinkContext {
  readonly host: HciHost;
  readonly clock: Clock;
  /** The adapter's pairing context (bond store, policy, our address); without it pairing is refused. */
  readonly security?: SecurityContext;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
  /** Clear the deadline's timer and the abort listener (idempotent; settling after done is a no-op). */
  done(): void;
}

type UpdateWaiter = Waiter<ConnectionParameters>;

/**
 * The connection update procedure of this link: at most one LE Connection Update outstanding
 * (the Link Layer runs one connection update at a time, Vol 6, Part B, 5.1.1 / 5.1.7), with its one
 * timer; a request arriving meanwhile (ours or the peer's) waits in `next`, where a later one replaces
 * the parameters of an earlier one (latest wins) and their callers wait together.
 */
type UpdateState =
  | { tag: 'idle' }
  | { tag: 'running'; waiters: UpdateWaiter[]; timer: TimerId | undefined };

type LinkListener = (reason: DisconnectReason) => void;

export class LeLink {
  readonly l2cap: L2capLink;
  /** The ATT bearer on fixed channel 0x0004 (Vol 3, Part F): our client and server roles on this link. */
  readonly bearer: AttBearer;
  /** Our server-side ATT session (answers the peer's requests), unless the server is turned off. */
  readonly server: GattServerLink | undefined;
  /** The SMP fixed-channel hook (CID 0x0006): where the SMP session plugs in. */
  readonly smp: SmpHook;
  /** The link's security state (kept by `pairing`; see SecurityState). */
  readonly security: SecurityState = { level: 1, encrypted: false, keySize: 0, authenticated: false, secureConnections: false, bonded: false };
  /**
   * Pairing and encryption of this link (SMP session, encryption commands and events, bonds), when
   * the link was built with a SecurityContext; without one the SMP hook refuses pairing.
   */
  readonly pairing: LinkPairing | undefined;
  /**
   * The peer's identity address once known: from a bond, or attached by the privacy layer when it
   * resolved the peer's RPA with a bonded IRK (`attachIdentity`). Bonds are looked up and stored by it.
   */
  identity: SmpAddress | undefined;
  /** Our address on this link as the peer saw it when it was made (set by the GAP scheduler). */
  local: SmpAddress | undefined;
  parameters: ConnectionParameters;
  dataLength: { maxTxOctets: number; maxTxTime: number; maxRxOctets: number; maxRxTime: number } | undefined;
  phy: { tx: number; rx: number } = { tx: 1, rx: 1 };
  disconnected: DisconnectReason | undefined;
  /** Policy for the peer's parameter requests (L2CAP and LL); default: accept any valid one. */
  acceptParameters: ((p: ConnectionParameterRequest) => boolean) | undefined;
  /** Counters of the connection update procedure (what the peer asked, what we sent). */
  readonly updateStats = { peerRequests: 0, coalesced: 0, commandsSent: 0, refusedCallers: 0 };
  private client: GattClient | undefined;
  private readonly disconnectListeners = new Set<LinkListener>();
  private readonly securityListeners = new Set<(s: SecurityState) => void>();
  private readonly identityListeners = new Set<(id: SmpAddress) => void>();
  private readonly parameterListeners = new Set<(p: ConnectionParameters) => void>();
  private update: UpdateState = { tag: 'idle' };
  private nextUpdate: { params: ConnectionParameterRequest; waiters: UpdateWaiter[] } | undefined;
  private readonly phyWaiters: Array<Waiter<{ tx: number; rx: number }>> = [];
  private readonly disconnectWaiters: Array<Waiter<DisconnectReason>> = [];

  constructor(
    private readonly ctx: LinkContext,
    readonly handle: number,
    readonly role: 'central' | 'peripheral',
    readonly address: string,
    readonly addressType: AddressType,
    params: ConnectionParameters,
    options: LinkOptions = {},
  ) {
    this.parameters = params;
    const host = ctx.host;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.l2cap = new L2capLink(
      { sendAcl: (h, p) => host.sendAcl(h, p), get aclDataLength() { return host.acl.dataLength; } },
      handle,
      {
        clock: ctx.clock, role,
        acceptParameters: p => this.acceptParameters?.(p) ?? true,
        onParameterUpdate: p => this.peerRequestedUpdate(p),
        ...(options.channels ? { channels: options.channels } : {}),
        // Listeners' security requirements are checked against what SMP reports for this link.
        security: () => this.security,
        settling: () => this.pairing?.settling,
      },
    );
    ({ bearer: this.bearer, session: this.server } = openAttBearer(this.l2cap.att, {
      clock: ctx.clock,
      ...(options.mtu !== undefined ? { mtu: options.mtu } : {}),
      ...(options.server !== undefined ? { server: typeof options.server === 'function' ? bindServer(options.server, this) : options.server } : {}),
      ...(options.attTransactionTimeoutMs !== undefined ? { transactionTimeoutMs: options.attTransactionTimeoutMs } : {}),
      // A transaction timeout leaves the bearer unusable: the link must go (Vol 3, Part F, 3.3.3).
      onTimeout: () => { this.disconnect().catch(() => undefined); },
    }));
    this.smp = new SmpHook(this.l2cap.smp, role);
    const security = ctx.security;
    if (security) {
      this.pairing = new LinkPairing({
        handle, role, address, addressType, clock: ctx.clock, security: this.security,
        get identity() { return self.identity; },
        get local() { return self.local; },
        attachIdentity: id => self.attachIdentity(id),
        get connected() { return self.connected; },
        command: cmd => host.command(cmd),
        sendSmp: frame => this.smp.send(frame),
        disconnect: reason => this.disconnect(reason),
        securityChanged: () => this.securityChanged(),
      }, security);
      this.smp.install(this.pairing);
      const pairing = this.pairing;
      this.bearer.setSecurityRaiser(code => pairing.raiseSecurity(code));
    } else {
      this.pairing = undefined;
    }
  }

  /**
   * The privacy layer resolved the peer's RPA to this identity (a bonded IRK matched): bonds of this
   * link are looked up and stored under it from now on.
   */
  attachIdentity(identity: SmpAddress): void {
    this.identity = { type: identity.type, address: identity.address.toUpperCase() };
    for (const fn of this.identityListeners) {
      try { fn(this.identity); } catch (e) { log.gap('identity listener threw: %O', e); }
    }
  }

  /** Called when the peer's identity becomes known (resolution or pairing). */
  onIdentity(fn: (identity: SmpAddress) => void): () => void {
    this.identityListeners.add(fn);
    return () => this.identityListeners.delete(fn);
  }

  onSecurity(fn: (s: SecurityState) => void): () => void {
    this.securityListeners.add(fn);
    return () => this.securityListeners.delete(fn);
  }

  private securityChanged(): void {
    for (const fn of this.securityListeners) {
      try { fn(this.security); } catch (e) { log.smp('security listener threw: %O', e); }
    }
  }

  get connected(): boolean {
    return this.disconnected === undefined;
  }

  // ---- the GATT client ----------------------------------------------------------------------------

  /** The link's GATT client, once one is attached. */
  get gatt(): GattClient | undefined {
    return this.client;
  }

  /**
   * Attach the GATT client of this link, on the link's bearer (one per link: its subscriptions and
   * discovered tree are this connection's). `mtu` and `server` are the link's (LinkOptions), not the
   * client's, so they are not taken here.
   */
  attachGatt(options: Omit<GattClientOptions, 'mtu' | 'server' | 'onTimeout'>): GattClient {
    if (this.client) throw new InvalidStateError(`link 0x${this.handle.toString(16)}: a GATT client is already attached`);
    this.client = new GattClient(this.bearer, options);
    return this.client;
  }

  // ---- events -------------------------------------------------------------------------------------

  onDisconnect(fn: LinkListener): () => void {
    this.disconnectListeners.add(fn);
    return () => this.disconnectListeners.delete(fn);
  }

  onParameters(fn: (p: ConnectionParameters) => void): () => void {
    this.parameterListeners.add(fn);
    return () => this.parameterListeners.delete(fn);
  }

  // ---- procedures ---------------------------------------------------------------------------------

  /** HCI Disconnect; resolves with the reason reported in Disconnection Complete (default deadline 40 s). */
  disconnect(reason: number = DisconnectReasons.remoteUserTerminated, options?: OperationOptions): Promise<DisconnectReason> {
    const early = abortedError(`disconnect ${this.address}`, options?.signal);
    if (early) return Promise.reject(early);
    if (this.disconnected) return Promise.resolve(this.disconnected);
    return this.procedure(this.disconnectWaiters,
      () => this.ctx.host.command({ kind: 'disconnect', connectionHandle: this.handle, reason }), `disconnect ${this.address}`, options);
  }

  /**
   * LE Connection Update (Vol 4, Part E, 7.8.18) with parameters in ms; resolves with the parameters
   * the controller settled on. One update is outstanding per link; a call made meanwhile waits for it
   * and then runs with the latest parameters asked for (several callers waiting together all get
   * that update's outcome). At most MAX_UPDATE_WAITERS callers wait at a time.
   */
  updateParameters(p: { intervalMin: number; intervalMax: number; latency?: number; supervisionTimeout?: number },
    options?: OperationOptions): Promise<ConnectionParameters> {
    return this.applyParameters({
      intervalMin: ms125(p.intervalMin), intervalMax: ms125(p.intervalMax), latency: p.latency ?? 0,
      timeout: ms10(p.supervisionTimeout ?? 4000),
    }, options);
  }

  /** LE Connection Update with parameters in spec units (1.25 ms, events, 10 ms). */
  applyParameters(p: ConnectionParameterRequest, options?: OperationOptions): Promise<ConnectionParameters> {
    const early = abortedError('connection update', options?.signal);
    if (early) return Promise.reject(early);
    if (this.disconnected) return Promise.reject(new DisconnectedError('connection update', this.disconnected.code, this.disconnected.name));
    if (!validConnectionParameters(p)) return Promise.reject(new ArgumentError('updateParameters: invalid connection parameters (Vol 4, Part E, 7.8.18)'));
    if (this.updateWaiterCount() >= MAX_UPDATE_WAITERS) {
      this.updateStats.refusedCallers++;
      return Promise.reject(new InvalidStateError(
        `connection update: ${MAX_UPDATE_WAITERS} callers already wait for an update of link 0x${this.handle.toString(16)}; await one first`));
    }
    return new Promise<ConnectionParameters>((resolve, reject) => {
      const d = deadline(this.ctx.clock, options, { layer: 'gap', operation: 'connection update', defaultMs: PROCEDURE_TIMEOUT_MS });
      const w: UpdateWaiter = { resolve, reject, done: d.done };
      // A caller that gives up leaves at once (and frees its place in the bound); the procedure it
      // joined goes on, and its outcome still applies to the link.
      d.signal.addEventListener('abort', () => {
        d.done();
        this.dropUpdateWaiter(w);
        reject(d.signal.reason as Error);
      }, { once: true });
      this.requestUpdate(p, w);
    });
  }

  /** LE Set Data Length (Vol 4, Part E, 7.8.33) where supported. */
  setDataLength(txOctets = 251, txTime = 2120, options?: OperationOptions): Promise<void> {
    // Answered with Command Complete (the LE Data Length Change event that may follow is not awaited),
    // so its deadline is the HCI command's unless `timeout` is given; an abort or deadline withdraws the
    // command if it is still queued in the host.
    const host = this.ctx.host;
    return guarded(this.ctx.clock, options, { layer: 'gap', operation: 'set data length' }, async signal => {
      if (this.disconnected) throw new DisconnectedError('set data length', this.disconnected.code, this.disconnected.name);
      if (host.info.isRefused('leSetDataLength')) throw new HciStatusError(0x01, statusName(0x01), 'leSetDataLength');
      try {
        await host.command({ kind: 'leSetDataLength', connectionHandle: this.handle, txOctets, txTime }, { signal });
      } catch (e) {
        if (isUnknownCommand(e)) host.info.markUnsupported('leSetDataLength');
        throw e;
      }
    });
  }

  /** LE Set PHY (Vol 4, Part E, 7.8.49); `phys` is a bit mask (1 = 1M, 2 = 2M, 4 = Coded). */
  setPhy(phys: number, options?: OperationOptions): Promise<{ tx: number; rx: number }> {
    const early = abortedError('set phy', options?.signal);
    if (early) return Promise.reject(early);
    if (this.disconnected) return Promise.reject(new DisconnectedError('set phy', this.disconnected.code, this.disconnected.name));
    const host = this.ctx.host;
    return this.procedure(this.phyWaiters, async () => {
      try {
        await host.command({ kind: 'leSetPhy', connectionHandle: this.handle, allPhys: 0, txPhys: phys, rxPhys: phys, phyOptions: 0 });
      } catch (e) {
        if (isUnknownCommand(e)) host.info.markUnsupported('leSetPhy');
        throw e;
      }
    }, 'set phy', options);
  }

  // ---- connection update: one at a time -------------------------------------------------------------

  /** The peer asked (L2CAP Connection Parameter Update Request, accepted by policy; Vol 3, Part A, 4.20). */
  private peerRequestedUpdate(p: ConnectionParameterRequest): void {
    this.updateStats.peerRequests++;
    // Nobody awaits the peer's request: no waiter, no timer of its own. It runs now, or replaces the
    // parameters of the update queued behind the one in progress.
    this.requestUpdate(p, undefined);
  }

  private updateWaiterCount(): number {
    return (this.update.tag === 'running' ? this.update.waiters.length : 0) + (this.nextUpdate?.waiters.length ?? 0);
  }

  private requestUpdate(p: ConnectionParameterRequest, w: UpdateWaiter | undefined): void {
    if (this.disconnected) return;
    if (this.update.tag === 'idle') {
      this.startUpdate(p, w ? [w] : []);
      return;
    }
    if (this.nextUpdate) this.updateStats.coalesced++;
    const waiters = this.nextUpdate?.waiters ?? [];
    if (w) waiters.push(w);
    this.nextUpdate = { params: p, waiters }; // latest parameters win
  }

  private startUpdate(p: ConnectionParameterRequest, waiters: UpdateWaiter[]): void {
    // The procedure's own guard: a controller that never reports the outcome must not hold the slot.
    const running: UpdateState & { tag: 'running' } = { tag: 'running', waiters, timer: undefined };
    running.timer = this.ctx.clock.setTimeout(() => {
      running.timer = undefined;
      if (this.update !== running) return;
      this.finishUpdate(new TimeoutError('gap', 'connection update', PROCEDURE_TIMEOUT_MS,
        'the controller never reported LE Connection Update Complete'));
    }, PROCEDURE_TIMEOUT_MS);
    this.update = running;
    this.updateStats.commandsSent++;
    this.ctx.host.command({ kind: 'leConnectionUpdate', connectionHandle: this.handle,
      connectionIntervalMin: p.intervalMin, connectionIntervalMax: p.intervalMax, maxLatency: p.latency, supervisionTimeout: p.timeout,
      minCeLength: 0, maxCeLength: 0 }).catch(e => {
      // A refused command (Command Status) ends the procedure: no Complete event will follow.
      if (this.update === running) this.finishUpdate(e as Error);
      else log.gap('connection update on 0x%s: %s', this.handle.toString(16), (e as Error).message);
    });
  }

  /** The update in progress ended (parameters, or why not); the queued one, if any, starts. */
  private finishUpdate(outcome: ConnectionParameters | Error): void {
    if (this.update.tag !== 'running') return;
    const { waiters, timer } = this.update;
    if (timer !== undefined) this.ctx.clock.clearTimeout(timer);
    this.update = { tag: 'idle' };
    for (const w of waiters) {
      w.done();
      if (outcome instanceof Error) w.reject(outcome);
      else w.resolve(outcome);
    }
    const next = this.nextUpdate;
    this.nextUpdate = undefined;
    if (next && !this.disconnected) this.startUpdate(next.params, next.waiters);
  }

  private dropUpdateWaiter(w: UpdateWaiter): void {
    for (const list of [this.update.tag === 'running' ? this.update.waiters : [], this.nextUpdate?.waiters ?? []]) {
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
    }
  }

  // ---- events from the scheduler --------------------------------------------------------------------

  /** @internal LE Connection Update Complete (Vol 4, Part E, 7.7.65.3) for this link. */
  updateComplete(status: number, p: ConnectionParameters): void {
    if (status !== 0) {
      this.finishUpdate(new HciStatusError(status, statusName(status), 'leConnectionUpdate'));
      return;
    }
    // Also unsolicited (an update the peer's or our controller started): the parameters apply either way.
    this.parametersChanged(p);
    this.finishUpdate(p);
  }

  /** @internal LE PHY Update Complete (Vol 4, Part E, 7.7.65.12) for this link. */
  phyComplete(status: number, tx: number, rx: number): void {
    const w = this.phyWaiters.shift();
    w?.done();
    if (status !== 0) {
      w?.reject(new HciStatusError(status, statusName(status), 'leSetPhy'));
      return;
    }
    this.phy = { tx, rx };
    w?.resolve(this.phy);
  }

  /** @internal Disconnection Complete: everything the link owns ends. Idempotent. */
  closed(reason: DisconnectReason): void {
    if (this.disconnected) return;
    this.disconnected = reason;
    const err = new DisconnectedError(`link 0x${this.handle.toString(16)} to ${this.address}`, reason.code, reason.name);
    // Channels first: the bearer (and with it our server session and the GATT client) and SMP end.
    this.l2cap.close(err);
    const next = this.nextUpdate;
    this.nextUpdate = undefined;
    this.finishUpdate(err);
    for (const w of next?.waiters ?? []) {
      w.done();
      w.reject(err);
    }
    for (const w of this.phyWaiters.splice(0)) {
      w.done();
      w.reject(err);
    }
    for (const w of this.disconnectWaiters.splice(0)) {
      w.done();
      w.resolve(reason);
    }
    for (const fn of this.disconnectListeners) {
      try { fn(reason); } catch (e) { log.gap('disconnect listener threw: %O', e); }
    }
  }

  /** @internal */
  parametersChanged(p: ConnectionParameters): void {
    this.parameters = p;
    for (const fn of this.parameterListeners) {
      try { fn(p); } catch (e) { log.gap('parameter listener threw: %O', e); }
    }
  }

  /**
   * One HCI-command-then-event procedure (PHY, disconnect): the waiter joins its FIFO, the command is
   * sent, the event handler settles the oldest waiter. A failed command takes its waiter out at once
   * (no event will follow). A deadline or abort rejects the caller and clears the timer but leaves the
   * waiter in place as a settled placeholder, because the controller may still complete the procedure
   * and its event belongs to this waiter, not the next.
   */
  private procedure<T>(list: Array<Waiter<T>>, send: () => Promise<unknown>, what: string,
    options: OperationOptions | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const d = deadline(this.ctx.clock, options, { layer: 'gap', operation: what, defaultMs: PROCEDURE_TIMEOUT_MS });
      const w: Waiter<T> = { resolve, reject, done: d.done };
      d.signal.addEventListener('abort', () => { d.done(); reject(d.signal.reason as Error); }, { once: true });
      list.push(w);
      send().catch(e => {
        const i = list.indexOf(w);
        if (i >= 0) list.splice(i, 1);
        d.done();
        reject(e as Error);
      });
    });
  }
}

function bindServer(make: (link: LeLink) => GattServerLink, link: LeLink): () => GattServerLink {
  return () => make(link);
}
