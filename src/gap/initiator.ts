/**
 * Initiating (Core Vol 3, Part C, 9.3; Vol 4, Part E, 7.8.12 / 7.8.66 / 7.8.13): the central side of
 * making a connection, one room of the GAP scheduler (`link/manager.ts`), which routes LE Connection
 * Complete here and builds the link itself.
 *
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
 * - Hardware Error: the initiation in progress rejects with HardwareError at once (its Connection
 *   Complete is lost with the controller's state); queued ones go on after the adapter's re-initialisation.
 * - Timers: the connect timeout and the wait for Connection Complete after a cancel, on the injected clock.
 *
 * The link type is the scheduler's (`L`): this room never builds or owns a link, it only hands the
 * one the scheduler built for its Connection Complete to the waiting connect().
 */
import type { Clock, TimerId } from '../clock.js';
import { AbortError, ArgumentError, HardwareError, HciStatusError, TimeoutError, TransportError } from '../errors.js';
import { log } from '../log.js';
import { isUnknownCommand } from '../hci/controller.js';
import type { HciHost } from '../hci/host.js';
import { statusName } from '../hci/status.js';
import { DisconnectReasons, type ConnectOptions, type ConnectTarget } from './connections.js';
import { normaliseAddress } from './filters.js';
import type { AddressType, Scanner } from './scanner.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** How long LE Connection Complete may lag the answer to LE Create Connection Cancel. */
const CANCEL_COMPLETE_TIMEOUT_MS = 5_000;
export const ms125 = (ms: number): number => Math.round(ms / 1.25);
export const ms10 = (ms: number): number => Math.round(ms / 10);

/** What the initiator needs of a link: to drop one nobody wants any more. */
export interface InitiatedLink {
  disconnect(reason: number): Promise<unknown>;
}

interface Initiation<L> {
  tag: 'connect';
  target: { address: string; type: number; addressType: AddressType };
  opts: ConnectOptions;
  resolve(l: L): void;
  reject(e: Error): void;
}

/** Work that must not overlap an initiation (our RPA's rotation): queued with the connect() calls. */
interface Exclusive {
  tag: 'exclusive';
  run(): Promise<void>;
  resolve(): void;
  reject(e: Error): void;
}

type InitState<L> =
  | { tag: 'idle' }
  | { tag: 'initiating'; init: Initiation<L>; complete(l: L | Error): void };

/** Whose a successful central-role Connection Complete is (see `claim`). */
export type Claim<L> =
  | { tag: 'ours'; options: ConnectOptions; complete(link: L): void }
  /** A connect() gave up on this peer after its cancel was answered: nobody wants the link. */
  | { tag: 'abandoned' }
  /** Not from a connect() of ours (e.g. another host on the controller): announced, not awaited. */
  | { tag: 'other' };

export class Initiator<L extends InitiatedLink> {
  private readonly queue: Array<Initiation<L> | Exclusive> = [];
  private state: InitState<L> = { tag: 'idle' };
  private running = false;
  private useExtended: boolean | undefined;
  /**
   * Peers whose connect() gave up after the cancel was answered but before the controller reported the
   * outcome. A success that still arrives for one is a link nobody wants: it is disconnected at once
   * rather than announced as a new connection. Bounded by the number of connect() calls that gave up
   * that way, each removed by the next Connection Complete for that peer.
   */
  private readonly abandoned = new Set<string>();

  /**
   * Whether the controller's resolving list holds this identity with address resolution on
   * (gap/resolving-list.ts): LE Create Connection then names it as an identity, Peer_Address_Type
   * 0x02 / 0x03, and the controller connects to whatever RPA of it is on the air (Vol 4, Part E, 7.8.12).
   */
  controllerResolves: (address: string, type: 0 | 1) => boolean = () => false;

  constructor(private readonly host: HciHost, private readonly scanner: Scanner, private readonly clock: Clock,
    private readonly ownAddressType: () => number = () => 0) {
    // A Hardware Error (Vol 4, Part E, 7.7.16) loses the controller's state: the pending LE Create
    // Connection will never complete, so the connect() waiting for it fails now, not at its timeout.
    host.onHardwareError(code => this.failed(new HardwareError(code, 'connect')));
  }

  /** Queue a connection attempt; resolves with the link once LE Connection Complete succeeds. */
  connect(target: ConnectTarget, opts: ConnectOptions = {}): Promise<L> {
    return new Promise<L>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new AbortError('connect', opts.signal.reason));
      const t = target.addressType ?? target.type ?? 'public';
      if (t === 'anonymous') return reject(new ArgumentError('connect: cannot connect to an anonymous advertiser (it sent no address); connect to a device that advertises its address'));
      const address = normaliseAddress(target.address);
      this.queue.push({ tag: 'connect', target: { address, type: t === 'random' ? 1 : 0, addressType: t }, opts, resolve, reject });
      void this.pump();
    });
  }

  /**
   * Run `fn` between initiations, with scanning paused, in the FIFO of connect() calls: never while an
   * LE Create Connection is pending. Our RPA rotates this way, since LE Set Random Address is refused
   * while scanning or initiating (Vol 4, Part E, 7.8.4), and an initiation must not see its own address
   * change under it.
   */
  exclusive(fn: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ tag: 'exclusive', run: fn, resolve, reject });
      void this.pump();
    });
  }

  /** A failed LE Connection Complete: only our own initiation can be waiting for it. */
  failed(error: Error): void {
    if (this.state.tag === 'initiating') this.state.complete(error);
  }

  /** Is the initiation in progress aimed at this address? */
  initiatingTo(peer: string): boolean {
    return this.state.tag === 'initiating' && this.state.init.target.address === normaliseAddress(peer);
  }

  /** A successful central-role LE Connection Complete for `peer`: whose link is it? */
  claim(peer: string): Claim<L> {
    const key = normaliseAddress(peer);
    const initiating = this.state.tag === 'initiating' ? this.state : undefined;
    const lateAbandoned = this.abandoned.has(key) && initiating?.init.target.address !== key;
    this.abandoned.delete(key);
    if (lateAbandoned) return { tag: 'abandoned' };
    if (!initiating) return { tag: 'other' };
    return { tag: 'ours', options: initiating.init.opts, complete: l => initiating.complete(l) };
  }

  /** The adapter closed: the initiation in progress and every queued one reject. */
  close(e: Error | undefined): void {
    const err = e ?? new TransportError('connect: the adapter was closed', 'ECLOSED');
    // The initiation in progress will never see its Connection Complete now.
    if (this.state.tag === 'initiating') this.state.complete(err);
    for (const i of this.queue.splice(0)) i.reject(err);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let init = this.queue.shift(); init; init = this.queue.shift()) {
        if (init.tag === 'exclusive') {
          await this.scanner.pause();
          try {
            await init.run();
            init.resolve();
          } catch (e) {
            init.reject(e as Error);
          } finally {
            this.scanner.resume();
          }
          continue;
        }
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

  private initiate(init: Initiation<L>): Promise<L> {
    const { opts, target } = init;
    const timeoutMs = opts.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise<L>((resolve, reject) => {
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
          if (!(r instanceof Error)) {
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

  private async sendCreate(init: Initiation<L>): Promise<void> {
    const { opts, target } = init;
    const conn = {
      connectionIntervalMin: ms125(opts.intervalMin ?? 30), connectionIntervalMax: ms125(opts.intervalMax ?? 50),
      maxLatency: opts.latency ?? 0, supervisionTimeout: ms10(opts.supervisionTimeout ?? 4000), minCeLength: 0, maxCeLength: 0,
    };
    const own = this.ownAddressType();
    const peerAddressType = this.controllerResolves(target.address, target.type === 1 ? 1 : 0) ? target.type + 2 : target.type;
    if (this.useExtended === undefined) this.useExtended = this.host.info.extendedConnect;
    if (this.useExtended) {
      try {
        await this.host.command({ kind: 'leExtendedCreateConnection', initiatorFilterPolicy: 0, ownAddressType: own,
          peerAddressType, peerAddress: target.address,
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
      peerAddressType, peerAddress: target.address, ownAddressType: own, ...conn });
  }
}
