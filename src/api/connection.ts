/**
 * Connection: one LE link as the application sees it: address, handle, role, parameters,
 * `disconnect(reason)`, a 'disconnect' event with the typed HCI reason, parameter / data length / PHY
 * procedures, and the GATT client of the link.
 *
 * The GATT client (and with it our own small GAP/GATT server) is created with the connection, not on
 * first use: a peer may send ATT requests the moment the link is up (BlueZ sends Exchange MTU at once)
 * and must be answered even by an application that never touches GATT. Its subscriptions, cache view
 * and pending operations belong to this connection and end with it (a reconnect starts clean).
 * The first discovery call exchanges MTU (once per link, Vol 3, Part F, 3.4.2) unless that was done.
 */
import type { Clock } from '../clock.js';
import type { GattClient, GattClientOptions } from '../gatt/client.js';
import type { GattCharacteristic, GattService } from '../gatt/model.js';
import type { OpOptions, OperationOptions } from '../operation.js';
import type { FixedChannel } from '../l2cap/channel.js';
import type { L2capLink } from '../l2cap/link.js';
import type { CreditChannel, OpenChannelOptions } from '../l2cap/coc.js';
import { DisconnectReasons, type ConnectionParameters, type DisconnectReason } from '../gap/connections.js';
import type { LeLink } from '../link/link.js';
import type { AddressType } from '../gap/scanner.js';
import { peerIdentity, type PeerIdentity } from '../gap/privacy.js';
import { EventEmitter } from '../platform/events.js';
import { InvalidStateError } from '../errors.js';
import type { PairOptions, PairingProgress, SecurityState } from '../link/pairing.js';

export interface ConnectionEvents {
  disconnect: [reason: DisconnectReason];
  parameters: [parameters: ConnectionParameters];
  /** Pairing progress: a Security Request, the user prompts, encryption, the outcome. */
  pairing: [progress: PairingProgress];
  /** The link's security changed (encrypted, key size, authenticated, bonded). */
  security: [state: SecurityState];
}

/** GATT settings of a connection: the Adapter passes its own (cache, MTU) and the clock. */
export interface ConnectionGattOptions extends Partial<Omit<GattClientOptions, 'onTimeout' | 'peerId'>> {
  clock: Clock;
}

export class Connection extends EventEmitter<ConnectionEvents> {
  /** The link's GATT client (discovery, reads, writes, subscriptions; see also the shorthands below). */
  readonly gatt: GattClient;

  /** @internal Use Adapter.connect(). */
  constructor(private readonly link: LeLink, gattOptions: ConnectionGattOptions) {
    super();
    // The link owns the bearer, our server session on it and the disconnect after an ATT transaction
    // timeout; the connection attaches the link's GATT client (one per link).
    const { mtu: _mtu, server: _server, ...clientOptions } = gattOptions;
    this.gatt = link.gatt ?? link.attachGatt({
      // Bonded (the link encrypted with a bond's key, asked at each use): a peer without a Database Hash
      // but with Service Changed may then be served from the cache (Vol 3, Part G, 2.5.2; cacheRule).
      bonded: () => link.security.bonded,
      ...clientOptions,
      // The cache key: a bonded peer's identity address when it is known as the link is made (its RPA
      // resolved), so a rotating RPA still hits the cache; else the address on the air.
      peerId: link.identity ? `${link.identity.address}/${link.identity.type === 0 ? 'public' : 'random'}` : `${link.address}/${link.addressType}`,
    });
    link.onDisconnect(reason => {
      // 'disconnect' with no listener must not throw (unlike 'error'), so emit unconditionally.
      this.emit('disconnect', reason);
    });
    link.onParameters(p => this.emit('parameters', p));
    link.onSecurity(st => this.emit('security', { ...st }));
    link.pairing?.onProgress(p => this.emit('pairing', p));
  }

  // ---- security (Vol 3, Part H) ----------------------------------------------------------------------

  /**
   * The link's security: level (1 none, 2 encrypted unauthenticated, 3 authenticated, 4 authenticated
   * LE Secure Connections with a 16-octet key), encrypted, keySize, authenticated, secureConnections, bonded.
   */
  get security(): SecurityState { return { ...this.link.security }; }

  /**
   * Pair with the peer (as central: Pairing Request; as peripheral: Security Request) and, with
   * `bond` (default), store the keys. Options override the adapter's pairing policy for this pairing:
   * `io`, `bond`, `mitm`, `secureConnectionsOnly`, `minKeySize`, `oob`, the handlers
   * `onPasskeyDisplay` / `onPasskeyRequest` / `onNumericComparison`, and `timeout` / `signal`.
   * Rejects with SmpError (code ESMP, `reason` and `reasonName` from the spec), TimeoutError (the
   * 30 s SMP timeout) or DisconnectedError.
   */
  pair(options?: PairOptions): Promise<SecurityState> {
    if (!this.link.pairing) return Promise.reject(new InvalidStateError('pair: pairing is turned off on this adapter (Adapter.open({ pairing: false }))'));
    return this.link.pairing.pair(options);
  }

  /**
   * Our LE Secure Connections OOB data for the next pairing on this link (Vol 3, Part H, 2.3.5.6.4):
   * `{ r, c }` (16 octets each, MSO first) to give the peer out of band; the peer pairs (or we call
   * pair()) with it as `oob: { peer }` on its side. Each pairing uses the data once: call again for the
   * next. Throws InvalidStateError when pairing is turned off on the adapter.
   */
  localOobData(): { r: Uint8Array; c: Uint8Array } {
    if (!this.link.pairing) throw new InvalidStateError('localOobData: pairing is turned off on this adapter (Adapter.open({ pairing: false }))');
    return this.link.pairing.localOobData();
  }

  /**
   * Encrypt the link with the stored bond (HCI LE Enable Encryption; no pairing). Rejects with
   * InvalidStateError when there is no bond, HciStatusError when the peer refuses the key (0x06 PIN
   * or Key Missing: the peer forgot the bond; pair() again). Default deadline 40 s.
   */
  encrypt(options?: OperationOptions): Promise<SecurityState> {
    if (!this.link.pairing) return Promise.reject(new InvalidStateError('encrypt: pairing is turned off on this adapter'));
    return this.link.pairing.encrypt(options);
  }

  /**
   * Signed Write Without Response (ATT_SIGNED_WRITE_CMD, Vol 3, Part F, 3.4.5.4; Part G, 4.9.2) to a value
   * handle, signed with the CSRK we distributed to this peer when bonding (pair with `signing: true`) and
   * the bond's next SignCounter (Vol 3, Part H, 2.4.5), which is saved first. Data signing is for an
   * unencrypted link (Vol 3, Part C, 10.4): on an encrypted one this rejects with InvalidStateError (a
   * plain write without response has the link's protection). Nothing comes back: whether the peer
   * accepted it shows only in what it does.
   */
  async signedWrite(handle: number, value: Uint8Array): Promise<void> {
    const p = this.link.pairing;
    if (!p) throw new InvalidStateError('signedWrite: pairing is turned off on this adapter, so there is no CSRK');
    if (this.link.security.encrypted) {
      throw new InvalidStateError('signedWrite: the link is encrypted; use a write without response (data signing is for unencrypted links, Vol 3, Part C, 10.4)');
    }
    const key = await p.nextSignature();
    await this.gatt.signedWrite(handle, value, key);
  }

  /** Forget this peer's bond (the link stays up); resolves whether there was one. Aioble's / Bleak's unpair(). */
  async unpair(): Promise<boolean> {
    const p = this.link.pairing;
    if (!p) return false;
    const had = await p.bond();
    if (!had) return false;
    await p.forgetBond(had);
    return true;
  }

  /** The peer's address on the air for this link (a resolvable private address when it uses privacy). */
  get address(): string { return this.link.address; }
  get addressType(): AddressType { return this.link.addressType; }
  /**
   * The peer's identity address once known: its RPA resolved with a bonded IRK when the link was made,
   * or the identity it distributed when pairing (Vol 3, Part H, 3.6.5); undefined otherwise. Bonds
   * are stored and found under it.
   */
  get identity(): PeerIdentity | undefined {
    const id = this.link.identity;
    return id ? peerIdentity(id) : undefined;
  }
  /** HCI connection handle. */
  get handle(): number { return this.link.handle; }
  get role(): 'central' | 'peripheral' { return this.link.role; }
  get parameters(): ConnectionParameters { return this.link.parameters; }
  get connected(): boolean { return this.link.connected; }
  /** Why the link ended, once it has. */
  get disconnectReason(): DisconnectReason | undefined { return this.link.disconnected; }
  get phy(): { tx: number; rx: number } { return this.link.phy; }
  get dataLength() { return this.link.dataLength; }

  // The link procedures below take `{ timeout, signal }` last. An aborted signal rejects before
  // anything is sent; an abort or timeout after the HCI command went out rejects at once, but the
  // controller may still carry the procedure out (a late disconnect still ends the link, a late
  // parameter / PHY update still shows in `parameters` / `phy` and the 'parameters' event).

  /**
   * Disconnect (default reason 0x13 Remote User Terminated Connection); resolves with the reported
   * reason. Default deadline 40 s.
   */
  disconnect(reason: number = DisconnectReasons.remoteUserTerminated, options?: OperationOptions): Promise<DisconnectReason> {
    return this.link.disconnect(reason, options);
  }

  /**
   * Central-initiated connection parameter update (ms; latency in events). Default deadline 40 s, the
   * LL procedure response timeout (Vol 6, Part B, 5.2).
   */
  updateParameters(p: { intervalMin: number; intervalMax: number; latency?: number; supervisionTimeout?: number },
    options?: OperationOptions): Promise<ConnectionParameters> {
    return this.link.updateParameters(p, options);
  }

  /**
   * LE Data Length Extension, where the controller supports it (HciStatusError 0x01 otherwise).
   * Default deadline: the HCI command timeout (Adapter.open's `commandTimeout`).
   */
  setDataLength(txOctets?: number, txTime?: number, options?: OperationOptions): Promise<void> {
    return this.link.setDataLength(txOctets, txTime, options);
  }

  /** Prefer PHYs (bit mask: 1 = 1M, 2 = 2M, 4 = Coded). Default deadline 40 s (Vol 6, Part B, 5.2). */
  setPhy(phys: number, options?: OperationOptions): Promise<{ tx: number; rx: number }> {
    return this.link.setPhy(phys, options);
  }

  /** ATT_MTU of the link: 23 until an MTU exchange (ours or the peer's). */
  get mtu(): number { return this.gatt.mtu; }

  /** Exchange MTU (once per link; our offer is the Adapter's `mtu`, default 517). */
  exchangeMtu(options?: OpOptions): Promise<number> { return this.gatt.exchangeMtu(options); }

  /**
   * The whole GATT database: this connection's tree if known, else the peer's cached tree validated
   * by its Database Hash (one round trip), else a full discovery in as few round trips as the spec
   * allows.
   */
  async services(options?: OpOptions): Promise<GattService[]> {
    await this.gatt.exchangeMtu(options);
    return this.gatt.services(options);
  }

  /** One primary service by UUID or name ('heart_rate', 0x180d, 128-bit), with targeted discovery. */
  async service(uuid: number | string, options?: OpOptions): Promise<GattService> {
    await this.gatt.exchangeMtu(options);
    return this.gatt.service(uuid, options);
  }

  /** `conn.characteristic('heart_rate', 'heart_rate_measurement')`: targeted discovery of one characteristic. */
  async characteristic(service: number | string, characteristic: number | string, options?: OpOptions): Promise<GattCharacteristic> {
    await this.gatt.exchangeMtu(options);
    return this.gatt.characteristic(service, characteristic, options);
  }

  /**
   * Several operations under one deadline: everything started inside `fn` rejects with TimeoutError
   * after `ms`, or with AbortError when `options.signal` fires.
   */
  within<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>, options?: { signal?: AbortSignal }): Promise<T> {
    return this.gatt.within(ms, fn, options);
  }

  /**
   * Open an L2CAP LE credit-based channel to the peer's `psm` (Core Vol 3, Part A, 4.22): an async
   * iterable of received SDUs with `write(sdu)` (resolves when on the wire; waits for the peer's
   * credits) and `close()`. `mtu` / `mps` / `initialCredits` are what we announce (default 2048 / 247 /
   * 16: the reader's window; credits go back as SDUs are read). Rejects with ChannelRefusedError (the
   * spec's result code), TimeoutError (`timeout`, else the 30 s signalling RTX) or AbortError.
   */
  openChannel(psm: number, options?: OpenChannelOptions): Promise<CreditChannel> {
    return this.link.l2cap.coc.open(psm, options);
  }

  /**
   * Open 1–5 channels to one SPSM in one Credit Based Connection Request (enhanced mode, Core 5.2,
   * Vol 3, Part A, 4.25; MTU and MPS at least 64). Resolves with the channels the peer accepted.
   */
  openChannels(spsm: number, count: number, options?: OpenChannelOptions): Promise<CreditChannel[]> {
    return this.link.l2cap.coc.openEnhanced(spsm, count, options);
  }

  /** Resolves when the link is down (at once if it already is). */
  get closed(): Promise<DisconnectReason> {
    const r = this.link.disconnected;
    if (r) return Promise.resolve(r);
    return new Promise(resolve => this.link.onDisconnect(resolve));
  }

  /** `await using conn = await adapter.connect(…)`: disconnect when the scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.connected) await this.disconnect().catch(() => undefined);
  }

  /**
   * @internal The ATT fixed channel (CID 0x0004). `conn.gatt` already owns it: a second client on
   * it would take its receiver away.
   */
  get attChannel(): FixedChannel { return this.link.l2cap.att; }
  /** @internal The SMP fixed channel (CID 0x0006). */
  get smpChannel(): FixedChannel { return this.link.l2cap.smp; }
  /** @internal The link's L2CAP (signalling, stats). */
  get l2cap(): L2capLink { return this.link.l2cap; }
}
