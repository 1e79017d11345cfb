/**
 * The GAP scheduler of connections: one per adapter. It routes the controller's connection events to
 * the rooms that own them and builds the link of every new connection, the same way for both roles:
 * - initiating (`gap/initiator.ts`): connect() calls, LE Create Connection, cancel, timeout; the
 *   scanner pauses while it initiates (one scheduler for scanning and initiating);
 * - accepting (`gap/acceptor.ts`): connections where we are the peripheral (the seam the peripheral
 *   role fills);
 * - the link (`link/link.ts`): one role-neutral LeLink per connection, built here on LE (Enhanced)
 *   Connection Complete whichever role it reports, with its L2CAP, ATT bearer, our server session and
 *   SMP hook; its HCI events (Connection Update Complete, PHY Update Complete, Data Length Change) and
 *   Disconnection Complete go to it.
 *
 * It also answers the LL Connection Parameters Request procedure (HCI LE Remote Connection Parameter
 * Request, Vol 4, Part E, 7.7.65.6) by the link's policy, and disconnects a link for a peer whose
 * connect() gave up.
 */
import type { Clock } from '../clock.js';
import { DisconnectedError, HciStatusError, ProtocolError } from '../errors.js';
import { Acceptor } from '../gap/acceptor.js';
import {
  disconnectReason, DisconnectReasons, type ConnectOptions, type ConnectTarget,
} from '../gap/connections.js';
import { Advertiser } from '../gap/advertiser.js';
import { Initiator } from '../gap/initiator.js';
import type { Scanner } from '../gap/scanner.js';
import type { HciHost } from '../hci/host.js';
import { statusName } from '../hci/status.js';
import { validConnectionParameters } from '../l2cap/link.js';
import { log } from '../log.js';
import { LeLink, type LinkOptions } from './link.js';
import type { SecurityContext } from './pairing.js';
import type { PeerIdentity } from '../gap/privacy.js';

const ZERO_ADDRESS = '00:00:00:00:00:00';

export class ConnectionManager {
  readonly links = new Map<number, LeLink>();
  /** Initiating: connect(), create / cancel, the FIFO of attempts. */
  readonly initiator: Initiator<LeLink>;
  /** Accepting: incoming links where we are the peripheral. */
  readonly acceptor = new Acceptor();
  /** Advertising: the sets that make centrals connect to us (their connections come to the acceptor). */
  readonly advertiser: Advertiser;
  private readonly connectionListeners = new Set<(l: LeLink) => void>();
  private readonly ownAddressType: () => number;
  private readonly randomAddress: () => string | undefined;

  constructor(readonly host: HciHost, readonly scanner: Scanner, readonly clock: Clock,
    ownAddressType: () => number = () => 0, private readonly linkOptions: LinkOptions = {},
    randomAddress: () => string | undefined = () => undefined,
    /** Pairing for every link (bond store, policy, our address); undefined: links refuse pairing. */
    readonly security?: SecurityContext,
    /** The bonded identity behind a peer address (gap/privacy.ts), attached to the link when it is made. */
    private readonly resolveIdentity?: (address: string, hciType: number) => PeerIdentity | undefined) {
    this.ownAddressType = ownAddressType;
    this.randomAddress = randomAddress;
    this.initiator = new Initiator<LeLink>(host, scanner, clock, ownAddressType);
    // Advertising takes the same type: 0x03 only where the controller's resolving list holds our own
    // entry (gap/resolving-list.ts), which undirected advertising names with Peer_Address zero, so the
    // controller advertises from its RPAs of our IRK; a set's random address stays the fallback.
    this.advertiser = new Advertiser(host, clock, this.acceptor, () => ({ type: ownAddressType(), randomAddress: randomAddress() }));
    // A link made from an extended set with a random address of its own (privacy: one RPA per set): our
    // address on it is the set's, not the adapter's (the controller's own RPA, when it reported one, stays).
    this.advertiser.onSetConnection = (connectionHandle, address) => {
      const link = this.links.get(connectionHandle);
      if (link && link.role === 'peripheral' && link.local?.type === 1 && link.local.address === (this.randomAddress() ?? this.host.info.address)) {
        link.local = { type: 1, address };
      }
    };
    host.on('leConnectionComplete', e => this.connectionComplete(e.status, e.connectionHandle, e.role, e.peerAddressType,
      e.peerAddress, e.connectionInterval, e.peripheralLatency, e.supervisionTimeout));
    host.on('leEnhancedConnectionComplete', e => this.connectionComplete(e.status, e.connectionHandle, e.role,
      e.peerAddressType, e.peerAddress, e.connectionInterval, e.peripheralLatency, e.supervisionTimeout,
      e.peerResolvablePrivateAddress, e.localResolvablePrivateAddress));
    host.on('leEnhancedConnectionCompleteV2', e => this.connectionComplete(e.status, e.connectionHandle, e.role,
      e.peerAddressType, e.peerAddress, e.connectionInterval, e.peripheralLatency, e.supervisionTimeout,
      e.peerResolvablePrivateAddress, e.localResolvablePrivateAddress));
    host.on('disconnectionComplete', e => {
      if (e.status !== 0) return;
      const link = this.links.get(e.connectionHandle & 0x0fff);
      if (!link) return;
      this.links.delete(link.handle);
      // A link the host reports down itself (transport lost, Hardware Error, reset) keeps the event's
      // code, but its name says what really happened rather than, say, "Connection Terminated By Local Host".
      const why = this.host.syntheticDisconnect;
      link.closed(why ? { code: e.reason, name: why } : disconnectReason(e.reason));
    });
    host.on('leConnectionUpdateComplete', e => {
      this.links.get(e.connectionHandle)?.updateComplete(e.status,
        { interval: e.connectionInterval * 1.25, latency: e.peripheralLatency, supervisionTimeout: e.supervisionTimeout * 10 });
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
    // Encryption (Vol 4, Part E, 7.7.8, 7.7.39, 7.7.65.5): to the link's pairing. A link without one
    // has no key to give: the LTK request gets a negative reply, so the controller does not wait.
    host.on('encryptionChange', e => this.links.get(e.connectionHandle & 0x0fff)?.pairing?.encryptionChanged(e.status, e.encryptionEnabled !== 0));
    host.on('encryptionChangeV2', e => this.links.get(e.connectionHandle & 0x0fff)?.pairing?.encryptionChanged(e.status,
      e.encryptionEnabled !== 0, e.encryptionKeySize));
    host.on('encryptionKeyRefreshComplete', e => this.links.get(e.connectionHandle & 0x0fff)?.pairing?.encryptionChanged(e.status, true));
    host.on('leLongTermKeyRequest', e => {
      const pairing = this.links.get(e.connectionHandle)?.pairing;
      if (pairing) return pairing.ltkRequest(e.encryptedDiversifier, e.randomNumber);
      this.host.command({ kind: 'leLongTermKeyRequestNegativeReply', connectionHandle: e.connectionHandle })
        .catch(err => log.smp('LTK negative reply failed: %s', (err as Error).message));
    });
    host.on('lePhyUpdateComplete', e => this.links.get(e.connectionHandle)?.phyComplete(e.status, e.txPhy, e.rxPhy));
    host.onClose(e => this.initiator.close(e));
  }

  /** Every new link (central or peripheral role). */
  onConnection(fn: (l: LeLink) => void): () => void {
    this.connectionListeners.add(fn);
    return () => this.connectionListeners.delete(fn);
  }

  /** Queue a connection attempt; resolves with the link once LE Connection Complete succeeds. */
  connect(target: ConnectTarget, opts: ConnectOptions = {}): Promise<LeLink> {
    return this.initiator.connect(target, opts);
  }

  private connectionComplete(status: number, handle: number, role: number, peerType: number, peer: string,
    interval: number, latency: number, timeout: number, peerRpa?: string, localRpa?: string): void {
    if (status === 0x3c) {
      // Advertising Timeout: legacy high duty directed advertising ended unanswered (Vol 4, Part E, 7.8.9).
      this.advertiser.directedTimeout();
      return;
    }
    if (status !== 0) {
      // Failures only concern our own initiation (a peripheral-role failure is the advertiser's business).
      this.initiator.failed(new HciStatusError(status, statusName(status), 'leCreateConnection'));
      return;
    }
    if (handle > 0x0eff) {
      // Connection_Handle is 0x0000-0x0EFF (Vol 4, Part E, 7.7.65.1); ACL headers carry 12 bits, so a
      // larger one could never be matched by its data or its Disconnection Complete.
      log.gap('connection complete with invalid handle 0x%s ignored', handle.toString(16));
      this.initiator.failed(new ProtocolError('hci', `the controller reported connection handle 0x${handle.toString(16)}, outside 0x0000-0x0EFF`));
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
    const central = role === 0;
    // Peer_Address_Type 0x02 / 0x03 (Vol 4, Part E, 7.7.65.10): the controller resolved the peer's RPA
    // with its resolving list; Peer_Address is then the identity and Peer_Resolvable_Private_Address
    // the address on the air, which is the link's address (the one the initiator asked for).
    const resolvedByController = (peerType === 2 || peerType === 3) && peerRpa !== undefined && peerRpa !== ZERO_ADDRESS;
    const airAddress = resolvedByController ? peerRpa! : peer;
    const addressType = resolvedByController ? 'random' : peerType === 0 || peerType === 2 ? 'public' : 'random';
    // Whose link it is, asked before it exists: the initiator for our role as central, the acceptor for
    // the peripheral role. A connect() by identity through the resolving list asked for the identity.
    const claim = central ? this.initiator.claim(resolvedByController && this.initiator.initiatingTo(peer) ? peer : airAddress) : undefined;
    // One kind of link for both roles, built the same way.
    const link = new LeLink(this, handle, central ? 'central' : 'peripheral', airAddress, addressType,
      { interval: interval * 1.25, latency, supervisionTimeout: timeout * 10 }, this.linkOptions);
    // Our address as the peer saw it: the controller's RPA when it made one, else the one we set.
    const own = this.ownAddressType();
    link.local = localRpa !== undefined && localRpa !== ZERO_ADDRESS && (own & 2) !== 0 ? { type: 1, address: localRpa }
      : own & 1 ? { type: 1, address: this.randomAddress() ?? this.host.info.address ?? ZERO_ADDRESS }
        : { type: 0, address: this.host.info.address ?? ZERO_ADDRESS };
    const identity = this.resolveIdentity?.(peer, peerType);
    if (identity) link.attachIdentity({ type: identity.addressType === 'public' ? 0 : 1, address: identity.address });
    if (claim?.tag === 'ours') link.acceptParameters = claim.options.acceptParameters;
    this.links.set(handle, link);
    this.host.attachLink(handle, link.l2cap);
    if (claim?.tag === 'abandoned') {
      log.gap('late connection complete for %s after its connect gave up: disconnecting', peer);
      link.disconnect(DisconnectReasons.remoteUserTerminated).catch(() => undefined);
      return;
    }
    if (!central && this.acceptor.decide({ handle, address: peer, addressType }) === 'refuse') {
      log.gap('incoming link from %s refused by policy: disconnecting', peer);
      link.disconnect(DisconnectReasons.remoteUserTerminated).catch(() => undefined);
      return;
    }
    for (const fn of this.connectionListeners) {
      try { fn(link); } catch (e) { log.gap('connection listener threw: %O', e); }
    }
    if (claim?.tag === 'ours') claim.complete(link);
    // Data Length Extension where the controller has it (Vol 6, Part B, 4.5.10): 251-byte PDUs.
    if (central && ((claim?.tag === 'ours' ? claim.options.dataLength : undefined) ?? true) && this.host.info.dataLengthExtension) {
      link.setDataLength().catch(e => log.gap('data length update on 0x%s: %s', handle.toString(16), (e as Error).message));
    }
  }
}
