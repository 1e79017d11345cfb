/**
 * The connection manager: initiating (with timeout, abort and cancel), one scheduler for scanning and
 * initiating, many links, disconnects with typed reasons, and the link-layer procedures of a central
 * (connection parameters, data length, PHY).
 *
 * Design overview
 * - Driven by `connect()` / `disconnect()` / procedure calls from the API, and by HCI events from the
 *   host: LE (Enhanced) Connection Complete, Disconnection Complete, LE Connection Update Complete,
 *   LE Remote Connection Parameter Request, LE Data Length Change, LE PHY Update Complete.
 * - One initiation at a time (HCI allows one pending LE Create Connection, Vol 4, Part E, 7.8.12):
 *   connect() calls queue in a FIFO. For each, the scanner is paused first (many controllers cannot
 *   scan while initiating, and noble's users met Command Disallowed and dead scans there) and resumed
 *   afterwards whatever happened.
 * - Timeout / abort: LE Create Connection Cancel (Vol 4, Part E, 7.8.13); the controller then reports
 *   LE Connection Complete with Unknown Connection Identifier (0x02), and connect() rejects with
 *   TimeoutError / AbortError. If the connection completed before the cancel took effect (cancel
 *   answered Command Disallowed and a successful Connection Complete arrives), the unwanted link is
 *   disconnected (0x13) and connect() still rejects: the caller gave up on it.
 * - Failure: a non-zero Connection Complete status (e.g. 0x3E Connection Failed to be Established)
 *   rejects with HciStatusError naming the command; `attempts` retries 0x3E.
 * - Links: each successful connection gets an LeLink (L2CAP fixed channels, ACL routing). When
 *   Disconnection Complete arrives, the link closes with DisconnectedError(reason): its channels,
 *   queued ACL and every pending procedure reject, and 'disconnect' listeners get the typed reason.
 * - Timers: only the connect timeout and the procedure timeouts, all on the injected clock.
 * - `{ timeout, signal }` on disconnect and the link procedures (src/gap/operation.ts): an
 *   already-aborted signal rejects before anything is sent. Otherwise the HCI command goes out and an
 *   abort or a deadline rejects the caller at once and clears its timer, but cannot withdraw the
 *   procedure from the controller (as an in-flight ATT request cannot be withdrawn from the peer): it
 *   may still complete. The waiter stays in its FIFO as a placeholder until the completion event (or
 *   the command's failure, or the link's end) takes it, so a late LE Connection Update Complete / PHY
 *   Update Complete is not taken for the next caller's; the parameters / PHY it reports still apply
 *   to the link. Default deadlines are the LL procedure response timeout (40 s, Vol 6, Part B, 5.2),
 *   for LE Set Data Length the HCI command timeout.
 */
import type { Clock, TimerId } from '../clock.js';
import { AbortError, ArgumentError, DisconnectedError, HciStatusError, ProtocolError, TimeoutError, TransportError } from '../errors.js';
import { log } from '../log.js';
import { isUnknownCommand } from '../hci/controller.js';
import type { HciHost } from '../hci/host.js';
import { statusName } from '../hci/status.js';
import { L2capLink, validConnectionParameters, type ConnectionParameterRequest } from '../l2cap/link.js';
import type { Scanner, AddressType } from './scanner.js';
import { normaliseAddress } from './filters.js';
import { abortedError, deadline, guarded, type OperationOptions } from '../operation.js';

/** HCI reasons a link can end with (Core Vol 1, Part F), with their names. */
export interface DisconnectReason {
  code: number;
  name: string;
}
export const disconnectReason = (code: number): DisconnectReason => ({ code, name: statusName(code) });

/** Reasons a host may give HCI Disconnect (Vol 4, Part E, 7.1.6). */
export const DisconnectReasons = {
  authenticationFailure: 0x05,
  remoteUserTerminated: 0x13,
  remoteLowResources: 0x14,
  remotePowerOff: 0x15,
  unsupportedRemoteFeature: 0x1a,
  pairingWithUnitKeyNotSupported: 0x29,
  unacceptableConnectionParameters: 0x3b,
} as const;

export interface ConnectionParameters {
  /** Connection interval in ms (1.25 ms units on the wire). */
  interval: number;
  /** Peripheral latency in connection events. */
  latency: number;
  /** Supervision timeout in ms (10 ms units on the wire). */
  supervisionTimeout: number;
}

export interface ConnectTarget {
  address: string;
  addressType?: AddressType | 'public' | 'random';
  /** Alias of addressType (ARCHITECTURE's `{ address, type }`). */
  type?: 'public' | 'random';
}

export interface ConnectOptions {
  /** Give up after this many ms (default 10 s): LE Create Connection Cancel, then TimeoutError. */
  timeout?: number;
  signal?: AbortSignal;
  /** Wanted connection interval range in ms (default 30–50). */
  intervalMin?: number;
  intervalMax?: number;
  latency?: number;
  /** Supervision timeout in ms (default 4000). */
  supervisionTimeout?: number;
  /** Tries when the link fails to be established (0x3E); default 1. */
  attempts?: number;
  /** Policy for the peripheral's parameter requests (L2CAP and LL); default accept any valid. */
  acceptParameters?(p: ConnectionParameterRequest): boolean;
  /** Ask for 251-byte link-layer PDUs after connecting when the controller supports it (default true). */
  dataLength?: boolean;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** How long LE Connection Complete may lag the answer to LE Create Connection Cancel. */
const CANCEL_COMPLETE_TIMEOUT_MS = 5_000;
const PROCEDURE_TIMEOUT_MS = 40_000; // LL procedure response timeout is 40 s (Vol 6, Part B, 5.2)
const ms125 = (ms: number) => Math.round(ms / 1.25);
const ms10 = (ms: number) => Math.round(ms / 10);

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
  /** Clear the deadline's timer and the abort listener (idempotent; settling after done is a no-op). */
  done(): void;
}

type LinkListener = (reason: DisconnectReason) => void;

/** One LE link: state the manager keeps and procedures on it. The public Connection wraps this. */
export class LeLink {
  readonly l2cap: L2capLink;
  parameters: ConnectionParameters;
  dataLength: { maxTxOctets: number; maxTxTime: number; maxRxOctets: number; maxRxTime: number } | undefined;
  phy: { tx: number; rx: number } = { tx: 1, rx: 1 };
  disconnected: DisconnectReason | undefined;
  private readonly disconnectListeners = new Set<LinkListener>();
  private readonly parameterListeners = new Set<(p: ConnectionParameters) => void>();
  readonly waiters = {
    update: [] as Array<Waiter<ConnectionParameters>>,
    phy: [] as Array<Waiter<{ tx: number; rx: number }>>,
    disconnect: [] as Array<Waiter<DisconnectReason>>,
  };
  acceptParameters: ((p: ConnectionParameterRequest) => boolean) | undefined;

  constructor(
    private readonly manager: ConnectionManager,
    readonly handle: number,
    readonly role: 'central' | 'peripheral',
    readonly address: string,
    readonly addressType: AddressType,
    params: ConnectionParameters,
  ) {
    this.parameters = params;
    this.l2cap = new L2capLink(
      { sendAcl: (h, p) => manager.host.sendAcl(h, p), get aclDataLength() { return manager.host.acl.dataLength; } },
      handle,
      {
        clock: manager.clock, role,
        acceptParameters: p => this.acceptParameters?.(p) ?? true,
        onParameterUpdate: p => {
          this.manager.applyParameters(this, p).catch(e => log.gap('parameter update failed: %s', (e as Error).message));
        },
      },
    );
  }

  get connected(): boolean {
    return this.disconnected === undefined;
  }

  onDisconnect(fn: LinkListener): () => void {
    this.disconnectListeners.add(fn);
    return () => this.disconnectListeners.delete(fn);
  }

  onParameters(fn: (p: ConnectionParameters) => void): () => void {
    this.parameterListeners.add(fn);
    return () => this.parameterListeners.delete(fn);
  }

  /** HCI Disconnect; resolves with the reason reported in Disconnection Complete (default deadline 40 s). */
  disconnect(reason: number = DisconnectReasons.remoteUserTerminated, options?: OperationOptions): Promise<DisconnectReason> {
    return this.manager.disconnect(this, reason, options);
  }

  /** Central-initiated LE Connection Update; resolves with the parameters the controller settled on. */
  updateParameters(p: { intervalMin: number; intervalMax: number; latency?: number; supervisionTimeout?: number },
    options?: OperationOptions): Promise<ConnectionParameters> {
    return this.manager.applyParameters(this, {
      intervalMin: ms125(p.intervalMin), intervalMax: ms125(p.intervalMax), latency: p.latency ?? 0,
      timeout: ms10(p.supervisionTimeout ?? 4000),
    }, options);
  }

  /** LE Set Data Length (Vol 4, Part E, 7.8.33) where supported. */
  setDataLength(txOctets = 251, txTime = 2120, options?: OperationOptions): Promise<void> {
    return this.manager.setDataLength(this, txOctets, txTime, options);
  }

  /** LE Set PHY (Vol 4, Part E, 7.8.49); `phys` is a bit mask (1 = 1M, 2 = 2M, 4 = Coded). */
  setPhy(phys: number, options?: OperationOptions): Promise<{ tx: number; rx: number }> {
    return this.manager.setPhy(this, phys, options);
  }

  /** @internal */
  closed(reason: DisconnectReason): void {
    if (this.disconnected) return;
    this.disconnected = reason;
    const err = new DisconnectedError(`link 0x${this.handle.toString(16)} to ${this.address}`, reason.code, reason.name);
    this.l2cap.close(err);
    for (const list of [this.waiters.update, this.waiters.phy] as Array<Array<Waiter<unknown>>>) {
      for (const w of list.splice(0)) {
        w.done();
        w.reject(err);
      }
    }
    for (const w of this.waiters.disconnect.splice(0)) {
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
}

interface Initiation {
  target: { address: string; type: number; addressType: AddressType };
  opts: ConnectOptions;
  resolve(l: LeLink): void;
  reject(e: Error): void;
}

type InitState =
  | { tag: 'idle' }
  | { tag: 'initiating'; init: Initiation; complete(l: LeLink | Error): void };

export class ConnectionManager {
  readonly links = new Map<number, LeLink>();
  private readonly queue: Initiation[] = [];
  private state: InitState = { tag: 'idle' };
  private running = false;
  private readonly connectionListeners = new Set<(l: LeLink) => void>();
  private useExtended: boolean | undefined;
  /**
   * Peers whose connect() gave up after the cancel was answered but before the controller reported the
   * outcome. A success that still arrives for one is a link nobody wants: it is disconnected at once
   * rather than announced as a new connection.
   */
  private readonly abandoned = new Set<string>();

  constructor(readonly host: HciHost, readonly scanner: Scanner, readonly clock: Clock,
    private readonly ownAddressType: () => number = () => 0) {
    host.on('leConnectionComplete', e => this.connectionComplete(e.status, e.connectionHandle, e.role, e.peerAddressType,
      e.peerAddress, e.connectionInterval, e.peripheralLatency, e.supervisionTimeout));
    host.on('leEnhancedConnectionComplete', e => this.connectionComplete(e.status, e.connectionHandle, e.role,
      e.peerAddressType, e.peerAddress, e.connectionInterval, e.peripheralLatency, e.supervisionTimeout));
    host.on('leEnhancedConnectionCompleteV2', e => this.connectionComplete(e.status, e.connectionHandle, e.role,
      e.peerAddressType, e.peerAddress, e.connectionInterval, e.peripheralLatency, e.supervisionTimeout));
    host.on('disconnectionComplete', e => {
      if (e.status !== 0) return;
      const link = this.links.get(e.connectionHandle & 0x0fff);
      if (!link) return;
      this.links.delete(link.handle);
      link.closed(disconnectReason(e.reason));
    });
    host.on('leConnectionUpdateComplete', e => {
      const link = this.links.get(e.connectionHandle);
      if (!link) return;
      const w = link.waiters.update.shift();
      w?.done();
      if (e.status !== 0) {
        w?.reject(new HciStatusError(e.status, statusName(e.status), 'leConnectionUpdate'));
        return;
      }
      const p = { interval: e.connectionInterval * 1.25, latency: e.peripheralLatency, supervisionTimeout: e.supervisionTimeout * 10 };
      link.parametersChanged(p);
      w?.resolve(p);
    });
    host.on('leRemoteConnectionParameterRequest', e => {
      const link = this.links.get(e.connectionHandle);
      const p = { intervalMin: e.intervalMin, intervalMax: e.intervalMax, latency: e.maxLatency, timeout: e.timeout };
      const ok = link !== undefined && validConnectionParameters(p) && (link.acceptParameters?.(p) ?? true);
      // Answer the LL Connection Parameters Request procedure (Vol 4, Part E, 7.8.31 / 7.8.32).
      const answer = ok
        ? this.host.command({ kind: 'leRemoteConnectionParameterRequestReply', connectionHandle: e.connectionHandle,
          intervalMin: p.intervalMin, intervalMax: p.intervalMax, maxLatency: p.latency, timeout: p.timeout, minCeLength: 0, maxCeLength: 0 })
        : this.host.command({ kind: 'leRemoteConnectionParameterRequestNegativeReply', connectionHandle: e.connectionHandle,
          reason: DisconnectReasons.unacceptableConnectionParameters });
      answer.catch(err => log.gap('answer to remote parameter request failed: %s', (err as Error).message));
    });
    host.on('leDataLengthChange', e => {
      const link = this.links.get(e.connectionHandle);
      if (link) link.dataLength = { maxTxOctets: e.maxTxOctets, maxTxTime: e.maxTxTime, maxRxOctets: e.maxRxOctets, maxRxTime: e.maxRxTime };
    });
    host.on('lePhyUpdateComplete', e => {
      const link = this.links.get(e.connectionHandle);
      if (!link) return;
      const w = link.waiters.phy.shift();
      w?.done();
      if (e.status !== 0) {
        w?.reject(new HciStatusError(e.status, statusName(e.status), 'leSetPhy'));
        return;
      }
      link.phy = { tx: e.txPhy, rx: e.rxPhy };
      w?.resolve(link.phy);
    });
    host.onClose(e => {
      const err = e ?? new TransportError('connect: the adapter was closed', 'ECLOSED');
      // The initiation in progress will never see its Connection Complete now.
      if (this.state.tag === 'initiating') this.state.complete(err);
      this.failQueue(err);
    });
  }

  /** Every new link (central or peripheral role). */
  onConnection(fn: (l: LeLink) => void): () => void {
    this.connectionListeners.add(fn);
    return () => this.connectionListeners.delete(fn);
  }

  /** Queue a connection attempt; resolves with the link once LE Connection Complete succeeds. */
  connect(target: ConnectTarget, opts: ConnectOptions = {}): Promise<LeLink> {
    return new Promise<LeLink>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new AbortError('connect', opts.signal.reason));
      const t = target.addressType ?? target.type ?? 'public';
      if (t === 'anonymous') return reject(new ArgumentError('connect: cannot connect to an anonymous advertiser (it sent no address); connect to a device that advertises its address'));
      const address = normaliseAddress(target.address);
      this.queue.push({ target: { address, type: t === 'random' ? 1 : 0, addressType: t }, opts, resolve, reject });
      void this.pump();
    });
  }

  private failQueue(e: Error): void {
    for (const i of this.queue.splice(0)) i.reject(e);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let init = this.queue.shift(); init; init = this.queue.shift()) {
        if (init.opts.signal?.aborted) {
          init.reject(new AbortError('connect', init.opts.signal.reason));
          continue;
        }
        await this.scanner.pause();
        try {
          const attempts = Math.max(1, init.opts.attempts ?? 1);
          for (let i = 1; ; i++) {
            try {
              init.resolve(await this.initiate(init));
              break;
            } catch (e) {
              // 0x3E: the link failed to be established (Vol 1, Part F, 2.62) and may well work on a retry.
              if (i < attempts && e instanceof HciStatusError && e.status === 0x3e) continue;
              init.reject(e as Error);
              break;
            }
          }
        } finally {
          this.scanner.resume();
        }
      }
    } finally {
      this.running = false;
    }
  }

  private initiate(init: Initiation): Promise<LeLink> {
    const { opts, target } = init;
    const timeoutMs = opts.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise<LeLink>((resolve, reject) => {
      let giveUp: Error | undefined;
      let timer: TimerId | undefined;
      let onAbort: (() => void) | undefined;
      const cleanup = () => {
        if (timer !== undefined) this.clock.clearTimeout(timer);
        if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
        this.state = { tag: 'idle' };
      };
      const cancel = (why: Error) => {
        if (giveUp) return;
        giveUp = why;
        // Cancel the pending create; its Command Complete is 0x0C when it is too late (already connected).
        this.host.command({ kind: 'leCreateConnectionCancel' }).then(awaitComplete, e => {
          log.gap('create connection cancel: %s', (e as Error).message);
          if (!(e instanceof HciStatusError)) { cleanup(); reject(why); } else awaitComplete();
        });
      };
      // After the cancel's answer the controller owes LE Connection Complete (0x02, or the link when
      // the cancel came too late, Vol 4, Part E, 7.8.13). One that never sends it must not hold
      // connect() and the initiation queue (and the paused scanner) forever.
      const awaitComplete = (): void => {
        if (this.state.tag !== 'initiating' || this.state.init !== init) return;
        if (timer !== undefined) this.clock.clearTimeout(timer); // an abort came before the connect timeout
        timer = this.clock.setTimeout(() => {
          timer = undefined;
          this.abandoned.add(target.address);
          cleanup();
          reject(giveUp!);
        }, CANCEL_COMPLETE_TIMEOUT_MS);
      };
      this.state = {
        tag: 'initiating', init,
        complete: r => {
          cleanup();
          if (r instanceof LeLink) {
            if (giveUp) {
              // Cancel raced completion and lost: the caller no longer wants this link.
              r.disconnect(DisconnectReasons.remoteUserTerminated).catch(() => undefined);
              reject(giveUp);
            } else {
              resolve(r);
            }
          } else if (giveUp) {
            reject(giveUp); // 0x02 Unknown Connection Identifier after our cancel (Vol 4, Part E, 7.8.13)
          } else {
            reject(r);
          }
        },
      };
      timer = this.clock.setTimeout(() => {
        timer = undefined;
        cancel(new TimeoutError('gap', `connect to ${target.address}`, timeoutMs,
          `is the device advertising and connectable, and is the address type right (${target.addressType} was given; ` +
          'public or random, as its advertisements report)?'));
      }, timeoutMs);
      if (opts.signal) {
        const signal = opts.signal;
        onAbort = () => cancel(new AbortError(`connect to ${target.address}`, signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.sendCreate(init).catch(e => {
        cleanup();
        reject(e as Error);
      });
    });
  }

  private async sendCreate(init: Initiation): Promise<void> {
    const { opts, target } = init;
    const conn = {
      connectionIntervalMin: ms125(opts.intervalMin ?? 30), connectionIntervalMax: ms125(opts.intervalMax ?? 50),
      maxLatency: opts.latency ?? 0, supervisionTimeout: ms10(opts.supervisionTimeout ?? 4000), minCeLength: 0, maxCeLength: 0,
    };
    const own = this.ownAddressType();
    if (this.useExtended === undefined) this.useExtended = this.host.info.extendedConnect;
    if (this.useExtended) {
      try {
        await this.host.command({ kind: 'leExtendedCreateConnection', initiatorFilterPolicy: 0, ownAddressType: own,
          peerAddressType: target.type, peerAddress: target.address,
          initiatingPhys: [{ phy: 1, scanInterval: 96, scanWindow: 96, ...conn }] });
        return;
      } catch (e) {
        if (!isUnknownCommand(e)) throw e;
        this.host.info.markUnsupported('leExtendedCreateConnection');
        this.useExtended = false;
      }
    }
    // Scan interval = window = 60 ms while initiating (units of 0.625 ms, Vol 4, Part E, 7.8.12).
    await this.host.command({ kind: 'leCreateConnection', leScanInterval: 96, leScanWindow: 96, initiatorFilterPolicy: 0,
      peerAddressType: target.type, peerAddress: target.address, ownAddressType: own, ...conn });
  }

  private connectionComplete(status: number, handle: number, role: number, peerType: number, peer: string,
    interval: number, latency: number, timeout: number): void {
    const initiating = this.state.tag === 'initiating' ? this.state : undefined;
    if (status !== 0) {
      // Failures only concern our own initiation (a peripheral-role failure is the advertiser's business).
      initiating?.complete(new HciStatusError(status, statusName(status), 'leCreateConnection'));
      return;
    }
    if (handle > 0x0eff) {
      // Connection_Handle is 0x0000-0x0EFF (Vol 4, Part E, 7.7.65.1); ACL headers carry 12 bits, so a
      // larger one could never be matched by its data or its Disconnection Complete.
      log.gap('connection complete with invalid handle 0x%s ignored', handle.toString(16));
      initiating?.complete(new ProtocolError('hci', `the controller reported connection handle 0x${handle.toString(16)}, outside 0x0000-0x0EFF`));
      return;
    }
    const stale = this.links.get(handle);
    if (stale) {
      // A handle names one live link (Vol 4, Part E, 5.4.2): the controller dropped the old link without
      // Disconnection Complete. Report it lost, so its owner and pending operations are not left waiting.
      log.gap('connection complete for handle 0x%s that is still live: the old link is lost', handle.toString(16));
      this.links.delete(handle);
      this.host.detachLink(handle, new DisconnectedError('acl', 0x1f, statusName(0x1f)));
      stale.closed(disconnectReason(0x1f));
    }
    const peerKey = normaliseAddress(peer);
    const lateAbandoned = role === 0 && this.abandoned.has(peerKey) && (!initiating || initiating.init.target.address !== peerKey);
    this.abandoned.delete(peerKey);
    const link = new LeLink(this, handle, role === 0 ? 'central' : 'peripheral', peer,
      peerType === 0 || peerType === 2 ? 'public' : 'random',
      { interval: interval * 1.25, latency, supervisionTimeout: timeout * 10 });
    if (initiating && role === 0) link.acceptParameters = initiating.init.opts.acceptParameters;
    this.links.set(handle, link);
    this.host.attachLink(handle, link.l2cap);
    if (lateAbandoned) {
      log.gap('late connection complete for %s after its connect gave up: disconnecting', peer);
      link.disconnect(DisconnectReasons.remoteUserTerminated).catch(() => undefined);
      return;
    }
    for (const fn of this.connectionListeners) {
      try { fn(link); } catch (e) { log.gap('connection listener threw: %O', e); }
    }
    if (initiating && role === 0) initiating.complete(link);
    // Data Length Extension where the controller has it (Vol 6, Part B, 4.5.10): 251-byte PDUs.
    if (role === 0 && (initiating?.init.opts.dataLength ?? true) && this.host.info.dataLengthExtension) {
      link.setDataLength().catch(e => log.gap('data length update on 0x%s: %s', handle.toString(16), (e as Error).message));
    }
  }

  /** @internal LeLink.disconnect */
  disconnect(link: LeLink, reason: number, options?: OperationOptions): Promise<DisconnectReason> {
    const early = abortedError(`disconnect ${link.address}`, options?.signal);
    if (early) return Promise.reject(early);
    if (link.disconnected) return Promise.resolve(link.disconnected);
    return this.procedure(link, link.waiters.disconnect,
      () => this.host.command({ kind: 'disconnect', connectionHandle: link.handle, reason }), `disconnect ${link.address}`, options);
  }

  /** @internal: LE Connection Update with parameters in spec units. */
  applyParameters(link: LeLink, p: ConnectionParameterRequest, options?: OperationOptions): Promise<ConnectionParameters> {
    const early = abortedError('connection update', options?.signal);
    if (early) return Promise.reject(early);
    if (link.disconnected) return Promise.reject(new DisconnectedError('connection update', link.disconnected.code, link.disconnected.name));
    if (!validConnectionParameters(p)) return Promise.reject(new ArgumentError('updateParameters: invalid connection parameters (Vol 4, Part E, 7.8.18)'));
    return this.procedure(link, link.waiters.update, () => this.host.command({ kind: 'leConnectionUpdate', connectionHandle: link.handle,
      connectionIntervalMin: p.intervalMin, connectionIntervalMax: p.intervalMax, maxLatency: p.latency, supervisionTimeout: p.timeout,
      minCeLength: 0, maxCeLength: 0 }), 'connection update', options);
  }

  /**
   * @internal LE Set Data Length answers with Command Complete (the LE Data Length Change event that
   * may follow is not awaited), so its deadline is the HCI command's unless `timeout` is given; an
   * abort or deadline withdraws the command if it is still queued in the host.
   */
  async setDataLength(link: LeLink, txOctets: number, txTime: number, options?: OperationOptions): Promise<void> {
    return guarded(this.clock, options, { layer: 'gap', operation: 'set data length' }, async signal => {
      if (link.disconnected) throw new DisconnectedError('set data length', link.disconnected.code, link.disconnected.name);
      if (this.host.info.isRefused('leSetDataLength')) throw new HciStatusError(0x01, statusName(0x01), 'leSetDataLength');
      try {
        await this.host.command({ kind: 'leSetDataLength', connectionHandle: link.handle, txOctets, txTime }, { signal });
      } catch (e) {
        if (isUnknownCommand(e)) this.host.info.markUnsupported('leSetDataLength');
        throw e;
      }
    });
  }

  /** @internal */
  setPhy(link: LeLink, phys: number, options?: OperationOptions): Promise<{ tx: number; rx: number }> {
    const early = abortedError('set phy', options?.signal);
    if (early) return Promise.reject(early);
    if (link.disconnected) return Promise.reject(new DisconnectedError('set phy', link.disconnected.code, link.disconnected.name));
    return this.procedure(link, link.waiters.phy, async () => {
      try {
        await this.host.command({ kind: 'leSetPhy', connectionHandle: link.handle, allPhys: 0, txPhys: phys, rxPhys: phys, phyOptions: 0 });
      } catch (e) {
        if (isUnknownCommand(e)) this.host.info.markUnsupported('leSetPhy');
        throw e;
      }
    }, 'set phy', options);
  }

  /**
   * One HCI-command-then-event procedure on a link: the waiter joins its FIFO, the command is sent,
   * the event handler settles the oldest waiter. A failed command takes its waiter out at once (no
   * event will follow). A deadline or abort rejects the caller and clears the timer but leaves the
   * waiter in place as a settled placeholder, because the controller may still complete the
   * procedure and its event belongs to this waiter, not the next.
   */
  private procedure<T>(link: LeLink, list: Array<Waiter<T>>, send: () => Promise<unknown>, what: string,
    options: OperationOptions | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const d = deadline(this.clock, options, { layer: 'gap', operation: what, defaultMs: PROCEDURE_TIMEOUT_MS });
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
