/**
 * The user-facing GATT server (the peripheral role's database): services, characteristics and
 * descriptors declared as plain objects, served on every link of an adapter next to our GAP and
 * GATT services (Core Vol 3, Part G, 7: Service Changed, Client Supported Features, Database Hash).
 *
 *   const server = await adapter.serve([{ uuid: 0x180f, characteristics: [
 *     { uuid: 0x2a19, properties: ['read', 'notify'], value: Uint8Array.of(100) },
 *   ] }]);
 *   await server.notify(0x2a19, Uint8Array.of(99));
 *
 * What this layer adds to the database and flat ATT server it builds on (server-db.ts, att/server.ts):
 * - permissions per access: `security: 'encrypted' | 'authenticated'` (or per read / write) answered
 *   with Insufficient Encryption 0x0F / Insufficient Authentication 0x05 when the link is below it
 *   (Vol 3, Part F, 3.4.1.1; Part C, 10.3.1), before any handler runs;
 * - the 'authorized' permission (Vol 3, Part F, 3.2.5): `authorize: true` (the server's hook, given to
 *   serve()) or a hook of the attribute's own, asked after security and before any handler, bounded by
 *   `handlerTimeoutMs`; a refusal, a throw or no answer is Insufficient Authorization 0x08 (3.4.1.1);
 * - async `onRead` / `onWrite` handlers with the connection, the offset and whether the write was a
 *   command, each bounded by `handlerTimeoutMs` (Unlikely Error 0x0E when it passes, the peer's ATT
 *   transaction timer being 30 s); a handler refuses with `throw new GattServerError(code)`;
 *   requests of one link are answered in order, one at a time;
 * - writes are applied only once every check passed and the handler accepted them; a long or
 *   reliable write arrives reassembled from the prepare queue (bounded: PREPARE_QUEUE_LIMIT);
 * - notify / indicate to the subscribed links (CCCD per link), indications one at a time per link
 *   awaiting each confirmation (Vol 3, Part F, 3.4.7.2);
 * - CCCD values of bonded clients kept across connections (Vol 3, Part G, 3.3.3.3), by identity: in
 *   memory, and with the bond through `persist` (the adapter's bond store), so they survive a restart;
 *   restored once the client's link is encrypted with the bond, forgotten with the bond;
 * - `update(services)` changes the database while connected: each link gets the new one and a
 *   Service Changed indication when subscribed; robust-caching clients are change-unaware until they
 *   confirm it or read the hash (server-db.ts, 2.5.2.1).
 *
 * Bounds: handler and authorization time (handlerTimeoutMs), the prepare queue per link, indications waiting per link
 * (MAX_QUEUED_INDICATIONS of the bearer, beyond it InvalidStateError), bonded CCCD records
 * (MAX_BONDED_RECORDS, oldest dropped), and requests waiting on a link behind a slow handler
 * (the bearer's MAX_OWED_TO_PEER: a flooding peer's extra requests are dropped there).
 */
import type { AttServerContext } from '../../att/bearer.js';
import { AttErrorCode } from '../../att/constants.js';
import type { AttPdu, AttPduOf } from '../../att/pdus.js';
import { AttServerError } from '../../att/server.js';
import type { Clock, TimerId } from '../../clock.js';
import { uuid as toUuid, type Uuid } from '../../codec/uuid.js';
import { ArgumentError, BearerClosedError, BlewireError, TimeoutError } from '../../errors.js';
import { log } from '../../log.js';
import { CCCD, CHARACTERISTIC_PROPERTIES, GattType, type CharacteristicPropertyName } from '../constants.js';
import { signatureCounter } from '../signing.js';
import { localServiceDefs } from '../local-db.js';
import {
  GattDatabase, GattServerLink, type CharacteristicDef, type DescriptorDef, type GattAccess, type ServiceDef, type ServiceLayout, type UuidLike, type ValueAccess, type ValueLike,
} from '../server-db.js';

/** Default bound on one onRead / onWrite handler (well below the client's 30 s ATT timeout). */
export const DEFAULT_HANDLER_TIMEOUT_MS = 5_000;
/** Bonded clients whose CCCD values are remembered (least recently connected dropped first). */
export const MAX_BONDED_RECORDS = 256;
/** CCCD values remembered per bonded client (the bond file keeps as many: MAX_BOND_CCCDS of smp/bonds.ts). */
export const MAX_BOND_CCCDS = 64;

/** What an access requires of the link (Vol 3, Part C, 10.3.1). */
export type AccessSecurity = 'none' | 'encrypted' | 'authenticated';

/**
 * Thrown by an onRead / onWrite handler to answer with this ATT error code (Vol 3, Part F,
 * 3.4.1.1; application errors are 0x80-0x9F, Vol 3, Part G, 4.9).
 */
export class GattServerError extends BlewireError {
  override readonly code = 'EGATTSERVER';
  constructor(readonly errorCode: number, message?: string) {
    super(message ?? `gatt server: answering ATT error 0x${errorCode.toString(16).padStart(2, '0')}`);
  }
}

/** What a handler is told about the access. */
export interface ServerRequest<C> {
  /** The connection of the client asking (the same object adapter.accept() gave). */
  readonly connection: C;
  /** Offset of a Read Blob (0 for a Read); the handler returns the whole value, the server slices. */
  readonly offset: number;
  readonly mtu: number;
}
export interface ServerWrite<C> extends ServerRequest<C> {
  /** Write Without Response (or a signed write): nobody hears a refusal. */
  readonly command: boolean;
  /**
   * A Signed Write Command whose signature verified with the client's CSRK from its bond and whose
   * SignCounter was fresh (Vol 3, Part C, 10.4.2): the value comes from that bonded client, unencrypted.
   */
  readonly signed: boolean;
  /** Assembled from a prepare queue (long or reliable write). */
  readonly prepared: boolean;
}

/** What an authorization hook is asked: may this client do this access now? */
export interface AuthorizationRequest<C> {
  readonly connection: C;
  /** The attribute: a characteristic's value handle or a descriptor's handle. */
  readonly handle: number;
  readonly uuid: Uuid;
  readonly op: 'read' | 'write';
  /** A Write Without Response (a refusal is silent: nobody hears it). */
  readonly command: boolean;
}

/**
 * The 'authorized' permission (Vol 3, Part F, 3.2.5; Part C, 10.5): resolve true to allow the access.
 * Anything else (false, a throw, no answer within handlerTimeoutMs) refuses it with Insufficient
 * Authorization 0x08 (Vol 3, Part F, 3.4.1.1); a thrown GattServerError answers its own code.
 */
export type Authorizer<C> = (request: AuthorizationRequest<C>) => boolean | Promise<boolean>;

export interface ServedDescriptor<C = unknown> {
  uuid: UuidLike;
  /** Its handle (default: the next free one), e.g. a device twin's captured handle. */
  handle?: number;
  value?: ValueLike;
  /** Default true. */
  readable?: boolean;
  /** Default false. */
  writable?: boolean;
  security?: AccessSecurity | { read?: AccessSecurity; write?: AccessSecurity };
  /** Needs authorization: its own hook, or true for the server's (serve(…, { authorize })). */
  authorize?: boolean | Authorizer<C>;
  maxLength?: number;
  onRead?(request: ServerRequest<C>): ValueLike | Promise<ValueLike>;
  onWrite?(value: Uint8Array, request: ServerWrite<C>): void | Promise<void>;
}

export interface ServedCharacteristic<C = unknown> {
  uuid: UuidLike;
  /** Handle of its declaration (default: the next free one); its value is the next handle (Vol 3, Part G, 3.3). */
  handle?: number;
  /**
   * Where the server's per-link CCCD of a notifying / indicating characteristic goes (a device twin's
   * captured handle; default the next free handle after the value), or false for none: a twin of a peer
   * whose layout has no room for one (such a characteristic can never notify).
   */
  cccdHandle?: number | false;
  properties: CharacteristicPropertyName[];
  /** The stored value (strings are UTF-8); writes without onWrite replace it, onWrite accepting replaces it too. */
  value?: ValueLike;
  security?: AccessSecurity | { read?: AccessSecurity; write?: AccessSecurity };
  /**
   * Needs authorization (every read and write of the value asks): its own hook, or true for the
   * server's (serve(…, { authorize })). Checked after security, before onRead / onWrite.
   */
  authorize?: boolean | Authorizer<C>;
  /** Longest value accepted (Invalid Attribute Value Length beyond it), default 512. */
  maxLength?: number;
  onRead?(request: ServerRequest<C>): ValueLike | Promise<ValueLike>;
  onWrite?(value: Uint8Array, request: ServerWrite<C>): void | Promise<void>;
  descriptors?: ServedDescriptor<C>[];
}

export interface ServedService<C = unknown> {
  uuid: UuidLike;
  primary?: boolean;
  /**
   * Handle of its declaration and the last handle of its group (a device twin's captured layout). When
   * a service has one, the user's services keep their handles and our GAP and GATT services go where
   * there is room (see ServeOptions.ownServices); without, ours come first and the user's follow.
   */
  handle?: number;
  endHandle?: number;
  characteristics?: ServedCharacteristic<C>[];
}

/** A read or write of a characteristic value of OUR GAP / GATT services (Device Name, Database Hash, …). */
export interface OwnServiceAccess<C> {
  readonly connection: C | undefined;
  readonly handle: number;
  readonly uuid: Uuid;
  readonly op: 'read' | 'write';
  /** The value as answered (reads: the whole value, before any offset) or as written. */
  readonly value: Uint8Array;
}

/** What the server knows of a link it serves (given by the adapter; read at every access). */
export interface ServedPeer<C> {
  readonly connection: C | undefined;
  readonly security: { readonly encrypted: boolean; readonly authenticated: boolean; readonly bonded: boolean };
  /** The peer's identity (bond key) when bonded, else undefined. */
  readonly identity: string | undefined;
  /** How errors name the client (its address). */
  readonly name?: string | undefined;
  /** Pending while the link's security state catches up with an encryption change (requests wait for it). */
  readonly settling?: Promise<void> | undefined;
  /**
   * Authenticate a Signed Write Command's signature with the CSRK in this client's bond and check and
   * save its SignCounter (the adapter: LinkPairing.acceptSignature). `header` is opcode and handle as
   * received. Without it every signed write is dropped (noKey).
   */
  verifySignature?(header: Uint8Array, value: Uint8Array, signature: Uint8Array): Promise<SignatureCheck>;
}

/** What ServedPeer.verifySignature found (see SIGNED_WRITE_DROPS for the reasons). */
export type SignatureCheck =
  | { readonly ok: true; readonly authenticated: boolean; readonly signCounter: number }
  | { readonly ok: false; readonly reason: 'noKey' | 'badSignature' | 'replayed' | 'storeFailed'; readonly signCounter?: number };

/**
 * Why a Signed Write Command (Vol 3, Part F, 3.4.5.4) was dropped. It is a command: nothing is answered
 * (the server "shall ignore" one that fails, 3.4.5.4), so each is counted (GattServer.signedWrites) and
 * logged (DEBUG=blewire:att) instead.
 */
export const SIGNED_WRITE_DROPS = {
  notSignable: 'its handle is not the value of a characteristic with the Authenticated Signed Writes property (0x40, Vol 3, Part G, 3.3.1.1)',
  encrypted: 'the link is encrypted: a client uses Write Without Response there (Vol 3, Part G, 4.9.2), a signed write is not expected',
  noKey: 'no bond with this client holds a CSRK it distributed (Signing Information, Vol 3, Part H, 3.6.6)',
  badSignature: 'the MAC does not match the CSRK in the bond (Vol 3, Part C, 10.4.2; Vol 3, Part H, 2.4.5)',
  replayed: 'its SignCounter is not above the last one accepted from this client (a replay, Vol 3, Part C, 10.4.2)',
  storeFailed: 'the bond store did not save the new SignCounter (in time), so the write is not applied',
} as const;
export type SignedWriteDrop = keyof typeof SIGNED_WRITE_DROPS;

/** Signed Write Commands this server received: applied, and dropped by reason. */
export interface SignedWriteStats {
  accepted: number;
  dropped: Record<SignedWriteDrop, number>;
}

/**
 * Where the CCCD values of bonded clients are kept beyond this process (the adapter: in the bond,
 * src/smp/bonds.ts). `save` is called when a bonded client's link closes, with its non-zero CCCDs by
 * "serviceUuid/characteristicUuid"; it must not throw (errors are its own to report).
 */
export interface CccdPersistence {
  save(identity: string, cccds: Record<string, number>): void;
}

/** A client changed its CCCD of a characteristic (Vol 3, Part G, 3.3.3.3): what it now receives. */
export interface SubscriptionChange<C> {
  readonly connection: C | undefined;
  /** The characteristic's UUID and value handle. */
  readonly uuid: Uuid;
  readonly handle: number;
  readonly notifications: boolean;
  readonly indications: boolean;
}

/** What our GAP service says about us (Vol 3, Part C, 12.1-12.2). */
export interface GapIdentity {
  /** Device Name (default 'blewire'). */
  name?: string;
  /** Appearance (default 0, Unknown). */
  appearance?: number;
}

export interface GattServerOptions {
  clock: Clock;
  persist?: CccdPersistence;
  /** Device Name and Appearance of our GAP service. */
  name?: string;
  appearance?: number;
  handlerTimeoutMs?: number;
}

/** Options of adapter.serve() / GattServer.update(). */
export interface ServeOptions<C> {
  /** The hook of every attribute declared with `authorize: true`. */
  authorize?: Authorizer<C>;
  /**
   * Where our GAP and GATT services go when the user's services carry their own handles (a device
   * twin's, whose own GAP / GATT held the low handles): at these declaration handles when the room
   * from there to the next service is enough, else in the first free room from handle 1 that is, else
   * after the last service. Default: the first free room.
   */
  ownServices?: { gap?: number; gatt?: number };
}

interface Entry {
  handle: number;
  uuid: Uuid;
  /** true: the server's hook; a function: its own; undefined: no authorization. */
  authorize: true | Authorizer<unknown> | undefined;
  readSecurity: AccessSecurity;
  writeSecurity: AccessSecurity;
  onRead: ((req: ServerRequest<unknown>) => ValueLike | Promise<ValueLike>) | undefined;
  onWrite: ((value: Uint8Array, req: ServerWrite<unknown>) => void | Promise<void>) | undefined;
  value: Uint8Array;
}

interface PendingWrite { entry: Entry; value: Uint8Array; op: GattAccess['op'] }

/** One request in progress on a link: reads prefetched from async handlers, writes waiting to be applied. */
interface RequestState {
  reads: Map<number, Uint8Array>;
  offset: number;
  writes: PendingWrite[];
  /** The request is a verified Signed Write Command (answered as the Write Command it carries). */
  signed?: boolean;
}

const enc = new TextEncoder();
const bytesOf = (v: ValueLike): Uint8Array => (typeof v === 'string' ? enc.encode(v) : v);
const RANK: Record<AccessSecurity, number> = { none: 0, encrypted: 1, authenticated: 2 };

/**
 * The user's services on an adapter. Create with `adapter.serve(services)`; `update()` replaces them
 * (Service Changed), `close()` takes them off (our GAP/GATT services stay).
 */
export class GattServer<C = unknown> {
  private db: GattDatabase;
  private entries = new Map<number, Entry>();
  /** Entries of the database build() made last (they become `entries` once update() accepts it). */
  private pendingEntries = new Map<number, Entry>();
  private readonly links = new Set<ServedLink<C>>();
  /** CCCD values of bonded clients by identity, in least-recently-connected order. */
  private readonly bonded = new Map<string, Map<string, number>>();
  private userStart = 0;
  private userLayout: ServiceLayout[] = [];
  private pendingUserLayout: ServiceLayout[] = [];
  private readonly handlerTimeoutMs: number;
  private authorizer: Authorizer<C> | undefined;
  /** Signed Write Commands received on every link: applied, and dropped by reason (SIGNED_WRITE_DROPS). */
  readonly signedWrites: SignedWriteStats = {
    accepted: 0,
    dropped: { notSignable: 0, encrypted: 0, noKey: 0, badSignature: 0, replayed: 0, storeFailed: 0 },
  };
  private gap: GapIdentity;
  private readonly subscriptionListeners = new Set<(change: SubscriptionChange<C>) => void>();
  private readonly ownAccessListeners = new Set<(access: OwnServiceAccess<C>) => void>();
  /** The first handle of each of our services (GAP, GATT) in the database served now. */
  private ownStarts: number[] = [];
  private pendingOwnStarts: number[] = [];

  constructor(private readonly options: GattServerOptions) {
    this.handlerTimeoutMs = options.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS;
    this.gap = {
      ...(options.name !== undefined ? { name: options.name } : {}),
      ...(options.appearance !== undefined ? { appearance: options.appearance } : {}),
    };
    this.db = this.build([], undefined);
    this.entries = this.pendingEntries;
    this.ownStarts = this.pendingOwnStarts;
    this.userLayout = this.pendingUserLayout;
  }

  /**
   * Called for every read and write of a characteristic value of OUR GAP and GATT services (Device
   * Name, Appearance, Client Supported Features, Database Hash), which no user handler sees: who, which,
   * and the value. Returns the unsubscribe function.
   */
  onOwnServiceAccess(fn: (access: OwnServiceAccess<C>) => void): () => void {
    this.ownAccessListeners.add(fn);
    return () => { this.ownAccessListeners.delete(fn); };
  }

  /** The database's observer: accesses of values no user entry holds are our own services'. */
  private observe(a: ValueAccess): void {
    if (this.ownAccessListeners.size === 0 || this.entries.has(a.handle)) return;
    const link = a.access.link as ServedLink<C> | undefined;
    const access: OwnServiceAccess<C> = { connection: link?.peer.connection, handle: a.handle, uuid: a.uuid, op: a.op, value: Uint8Array.from(a.value) };
    for (const fn of [...this.ownAccessListeners]) {
      try { fn(access); } catch (e) { log.att('own-service access listener threw: %s', e instanceof Error ? e.message : String(e)); }
    }
  }

  /**
   * Called whenever a client writes the CCCD of one of the served characteristics (or a bonded
   * client's is restored): who, which characteristic, and what it now receives. Returns the
   * unsubscribe function.
   */
  onSubscription(fn: (change: SubscriptionChange<C>) => void): () => void {
    this.subscriptionListeners.add(fn);
    return () => { this.subscriptionListeners.delete(fn); };
  }

  /** The database served now (GAP, GATT and the user's services). */
  get database(): GattDatabase {
    return this.db;
  }

  /** The layout of the user's services served now, in the order they were given. */
  get services(): ServiceLayout[] {
    return [...this.userLayout];
  }

  /** The connections currently served. */
  get connections(): C[] {
    return [...this.links].flatMap(l => (l.peer.connection === undefined ? [] : [l.peer.connection]));
  }

  /** A new link: served from the current database (the adapter calls this for every connection). */
  attach(peer: ServedPeer<C>): GattServerLink {
    const link = new ServedLink(this.db, this, peer);
    this.links.add(link);
    link.onCccd((cccdHandle, value) => {
      if (this.subscriptionListeners.size === 0) return;
      for (const s of link.database.layout) {
        for (const c of s.characteristics) {
          if (c.cccdHandle !== cccdHandle) continue;
          const change: SubscriptionChange<C> = {
            connection: peer.connection, uuid: c.uuid, handle: c.valueHandle,
            notifications: CCCD.has(value, 'notification'), indications: CCCD.has(value, 'indication'),
          };
          for (const fn of [...this.subscriptionListeners]) {
            try { fn(change); } catch (e) { log.att('subscription listener threw: %s', e instanceof Error ? e.message : String(e)); }
          }
          return;
        }
      }
    });
    return link;
  }

  /**
   * Replace the user's services. Every live link is switched to the new database and sent Service
   * Changed for the handles from the first user service to 0xFFFF when it subscribed (Vol 3, Part G,
   * 7.1); resolves when those indications are confirmed (or failed: a link that went away is fine).
   * `gap` changes the Device Name / Appearance of our GAP service with them.
   */
  async update(services: ServedService<C>[], options: ServeOptions<C> & GapIdentity = {}): Promise<void> {
    const previousGap = this.gap;
    if (options.name !== undefined || options.appearance !== undefined) {
      this.gap = { ...this.gap, ...(options.name !== undefined ? { name: options.name } : {}), ...(options.appearance !== undefined ? { appearance: options.appearance } : {}) };
    }
    // Service Changed covers every handle that may differ: from the first user service, old or new, and
    // from any of our own services that moved (they move only around user services with their own handles).
    const previousStart = this.userStart;
    const previousOwn = this.ownStarts;
    let db;
    try {
      db = this.build(services, options.ownServices);
    } catch (e) {
      this.gap = previousGap;
      this.userStart = previousStart;
      throw e;
    }
    // Every `authorize: true` needs the server's hook: refused before anything changes.
    if (options.authorize !== undefined && typeof options.authorize !== 'function') {
      this.gap = previousGap;
      this.userStart = previousStart;
      throw new ArgumentError('gatt server: authorize must be a function (request) => boolean | Promise<boolean>');
    }
    if (options.authorize === undefined && [...this.pendingEntries.values()].some(e => e.authorize === true)) {
      this.gap = previousGap;
      this.userStart = previousStart;
      throw new ArgumentError('gatt server: an attribute says authorize: true, but serve() was given no authorize hook');
    }
    this.authorizer = options.authorize;
    this.entries = this.pendingEntries;
    this.db = db;
    const moved = this.pendingOwnStarts.flatMap((h, i) => (h !== previousOwn[i] ? [h, previousOwn[i] ?? h] : []));
    this.ownStarts = this.pendingOwnStarts;
    this.userLayout = this.pendingUserLayout;
    const start = Math.min(previousStart, this.userStart, ...moved);
    await Promise.allSettled([...this.links].map(l => l.changeDatabase(this.db, start, 0xffff)));
  }

  /** The value handle of a characteristic (first match by UUID, or a value handle). */
  handleOf(key: UuidLike): number {
    const c = this.db.characteristic(key);
    if (!c) throw new ArgumentError(`gatt server: no characteristic ${String(key)}`);
    return c.valueHandle;
  }

  /** The stored value of a characteristic. */
  value(key: UuidLike): Uint8Array {
    return this.entries.get(this.handleOf(key))?.value ?? new Uint8Array(0);
  }

  /** Replace the stored value of a characteristic without telling anyone. */
  setValue(key: UuidLike, value: ValueLike): void {
    const e = this.entries.get(this.handleOf(key));
    if (!e) throw new ArgumentError(`gatt server: ${String(key)} is not one of the served characteristics`);
    e.value = Uint8Array.from(bytesOf(value));
  }

  /** The connections subscribed to notifications (or indications) of a characteristic. */
  subscribers(key: UuidLike, kind: 'notification' | 'indication' = 'notification'): C[] {
    const c = this.db.characteristic(key);
    if (!c?.cccdHandle) return [];
    return [...this.links].flatMap(l => (CCCD.has(l.cccd(c.cccdHandle!), kind) && l.peer.connection !== undefined ? [l.peer.connection] : []));
  }

  /**
   * Store `value` (when given) and notify every subscribed link, or those of `connections`
   * (value cut to ATT_MTU - 3, Vol 3, Part F, 3.4.7.1). Awaits each link's send (back-pressure).
   * Resolves with the number of links notified; a link that went away meanwhile is not counted.
   */
  async notify(key: UuidLike, value?: ValueLike, options: { connections?: C[] } = {}): Promise<number> {
    if (value !== undefined) this.setValue(key, value);
    const handle = this.handleOf(key);
    const v = this.value(handle);
    let n = 0;
    for (const l of this.targets(options.connections)) {
      try {
        if (await l.notify(handle, v)) n++;
      } catch (e) {
        log.att('notify to a closing link failed: %s', e instanceof Error ? e.message : String(e));
      }
    }
    return n;
  }

  /**
   * Store `value` (when given) and indicate it to every link subscribed to indications (or those of
   * `connections`), each awaiting its confirmation; one outstanding per link (Vol 3, Part F, 3.4.7.2).
   * Resolves with the number of confirmations once every targeted link has confirmed or gone; a link
   * that disconnects instead is not counted.
   *
   * A client that stays connected and never confirms: after the ATT transaction timeout (30 s, Vol 3,
   * Part F, 3.3.3) its bearer is closed for good (no further ATT PDU, indications included, goes to
   * it), its link is disconnected, and this call rejects with a TimeoutError (ETIMEDOUT) naming the
   * characteristic, the client and the timeout, once the other links have settled; an indication of
   * ours queued behind the unconfirmed one rejects it with BearerClosedError (EBEARERCLOSED, its cause
   * that TimeoutError). To learn the outcome client by client, pass `connections: [one]`.
   */
  async indicate(key: UuidLike, value?: ValueLike, options: { connections?: C[] } = {}): Promise<number> {
    if (value !== undefined) this.setValue(key, value);
    const handle = this.handleOf(key);
    const v = this.value(handle);
    const links = this.targets(options.connections);
    const results = await Promise.allSettled(links.map(l => l.indicate(handle, v)));
    let failure: BlewireError | undefined;
    results.forEach((r, i) => {
      if (r.status !== 'rejected' || failure) return;
      const e: unknown = r.reason;
      const what = `indication of ${String(this.entries.get(handle)?.uuid ?? 'characteristic')} (handle 0x${handle.toString(16).padStart(4, '0')}) to ${links[i]!.peer.name ?? 'a client'}`;
      if (e instanceof TimeoutError) failure = new TimeoutError(e.layer, what, e.ms, e.hint);
      else if (e instanceof BearerClosedError) failure = new BearerClosedError(what, e.cause instanceof Error ? e.cause : e);
      else log.att('%s failed: %s', what, e instanceof Error ? e.message : String(e)); // the link went: not counted
    });
    if (failure) throw failure;
    return results.filter(r => r.status === 'fulfilled' && r.value).length;
  }

  /** Take the user's services off (our GAP and GATT services stay), with Service Changed. */
  async close(): Promise<void> {
    await this.update([]);
  }

  // ---- internals used by ServedLink ---------------------------------------------------------------

  /** @internal */
  entry(handle: number): Entry | undefined {
    return this.entries.get(handle);
  }

  /** @internal the hook answering for an entry, when it needs authorization. */
  authorizerOf(e: Entry): Authorizer<unknown> | undefined {
    return e.authorize === true ? this.authorizer as Authorizer<unknown> | undefined : e.authorize;
  }

  /** @internal a Signed Write Command applied or dropped (counted, and a drop logged with its reason). */
  countSigned(outcome: SignedWriteDrop | 'accepted', who: string | undefined, handle: number, signCounter: number | undefined): void {
    if (outcome === 'accepted') {
      this.signedWrites.accepted++;
      return;
    }
    this.signedWrites.dropped[outcome]++;
    log.att('signed write from %s to handle 0x%s (SignCounter %s) dropped: %s', who ?? 'a client', handle.toString(16).padStart(4, '0'),
      signCounter === undefined ? '?' : String(signCounter), SIGNED_WRITE_DROPS[outcome]);
  }

  /** @internal */
  get timeoutMs(): number {
    return this.handlerTimeoutMs;
  }

  /** @internal */
  get clock(): Clock {
    return this.options.clock;
  }

  /**
   * CCCD values of a bonded client as stored with its bond (the adapter calls this for every bond it
   * lists at open): restored when that client's link is encrypted from the bond. Bounded like the rest.
   */
  preload(identity: string, cccds: Readonly<Record<string, number>>): void {
    const byUuid = new Map<string, number>();
    for (const [k, v] of Object.entries(cccds)) {
      if (byUuid.size >= MAX_BOND_CCCDS) break;
      if (Number.isInteger(v) && v >= 1 && v <= 3) byUuid.set(k, v);
    }
    this.remember(identity, byUuid);
  }

  /** Forget a client's CCCD values (its bond was removed or replaced by a new pairing). */
  forget(identity: string): void {
    this.bonded.delete(identity);
  }

  /** Whether a client's CCCD values are remembered (it was not forgotten since). */
  remembers(identity: string): boolean {
    return this.bonded.has(identity);
  }

  /** @internal the link closed: forget it, remember (and persist) a bonded client's CCCDs. */
  detach(link: ServedLink<C>, cccds: Map<number, number>): void {
    this.links.delete(link);
    const id = link.peer.identity;
    if (id === undefined || !link.bondedLink) return;
    const byUuid = new Map<string, number>();
    for (const [handle, v] of cccds) {
      const key = this.cccdKey(link.database, handle);
      if (key && v && byUuid.size < MAX_BOND_CCCDS) byUuid.set(key, v);
    }
    const before = this.bonded.get(id);
    const same = before !== undefined ? before.size === byUuid.size && [...byUuid].every(([k, v]) => before.get(k) === v) : byUuid.size === 0;
    this.remember(id, byUuid);
    // Written only when it changed: most links of a bonded peer subscribe to the same things again.
    if (!same) this.options.persist?.save(id, Object.fromEntries(byUuid));
  }

  private remember(identity: string, byUuid: Map<string, number>): void {
    this.bonded.delete(identity);
    this.bonded.set(identity, byUuid);
    while (this.bonded.size > MAX_BONDED_RECORDS) this.bonded.delete(this.bonded.keys().next().value!);
  }

  /** @internal a bonded client's CCCDs, by CCCD handle of the current database. */
  restore(identity: string): Map<number, number> {
    const out = new Map<number, number>();
    const saved = this.bonded.get(identity);
    if (!saved) return out;
    for (const s of this.db.layout) {
      for (const c of s.characteristics) {
        if (!c.cccdHandle) continue;
        const v = saved.get(`${s.uuid}/${c.uuid}`);
        if (v) out.set(c.cccdHandle, v);
      }
    }
    return out;
  }

  private cccdKey(db: GattDatabase, cccdHandle: number): string | undefined {
    for (const s of db.layout) for (const c of s.characteristics) if (c.cccdHandle === cccdHandle) return `${s.uuid}/${c.uuid}`;
    return undefined;
  }

  private targets(connections: C[] | undefined): ServedLink<C>[] {
    const all = [...this.links];
    if (!connections) return all;
    return all.filter(l => l.peer.connection !== undefined && connections.includes(l.peer.connection));
  }

  private build(services: ServedService<C>[], own: ServeOptions<C>['ownServices']): GattDatabase {
    const entries = new Map<number, Entry>();
    const base = localServiceDefs(this.gap);
    const pending: ServedCharacteristic<C>[] = [];
    const defs: ServiceDef[] = services.map(s => ({
      uuid: s.uuid,
      ...(s.primary !== undefined ? { primary: s.primary } : {}),
      ...(s.handle !== undefined ? { handle: s.handle } : {}),
      ...(s.endHandle !== undefined ? { endHandle: s.endHandle } : {}),
      characteristics: (s.characteristics ?? []).map(c => this.characteristicDef(c, pending)),
    }));
    // User services with their own handles keep them; ours go where there is room. Else ours first.
    const pinned = services.some(s => s.handle !== undefined || (s.characteristics ?? []).some(c => c.handle !== undefined));
    const placed = pinned ? placeOwnServices(base, defs, own) : [...base, ...defs];
    const db = new GattDatabase(placed, { observe: a => this.observe(a) });
    // Bind the declarations to their handles: the user's services are in their declaration order.
    // (placeOwnServices pins the user's defs in place, so they are the same objects.)
    const layoutOf = new Map(placed.map((d, k) => [d, db.layout[k]!]));
    const userLayout = defs.map(d => layoutOf.get(d)!);
    this.pendingOwnStarts = base.map(d => layoutOf.get(d)!.start);
    this.userStart = userLayout.length ? Math.min(...userLayout.map(l => l.start)) : db.layout.at(-1)!.end + 1;
    let i = 0;
    for (const s of userLayout) {
      for (const c of s.characteristics) {
        const def = pending[i++]!;
        entries.set(c.valueHandle, this.entryOf(c.valueHandle, def));
        const userDescs = (def.descriptors ?? []);
        for (const d of c.descriptors) {
          const j = userDescs.findIndex(u => safeUuid(u.uuid) === d.uuid);
          if (j < 0) continue;
          entries.set(d.handle, this.entryOf(d.handle, userDescs[j]!));
        }
      }
    }
    this.pendingEntries = entries;
    this.pendingUserLayout = userLayout;
    return db;
  }


  private entryOf(handle: number, def: ServedCharacteristic<C> | ServedDescriptor<C>): Entry {
    const sec = def.security;
    const read: AccessSecurity = typeof sec === 'string' ? sec : sec?.read ?? 'none';
    const write: AccessSecurity = typeof sec === 'string' ? sec : sec?.write ?? defaultWriteSecurity(def);
    for (const s of [read, write]) if (!(s in RANK)) throw new ArgumentError(`gatt server: security '${String(s)}' is none of none, encrypted, authenticated`);
    const az = def.authorize;
    if (az !== undefined && typeof az !== 'boolean' && typeof az !== 'function') {
      throw new ArgumentError(`gatt server: ${String(def.uuid)}: authorize must be true, false or a function`);
    }
    return {
      handle,
      uuid: toUuid(def.uuid),
      authorize: az === true ? true : typeof az === 'function' ? az as Authorizer<unknown> : undefined,
      readSecurity: read,
      writeSecurity: write,
      onRead: def.onRead as Entry['onRead'],
      onWrite: def.onWrite as Entry['onWrite'],
      value: def.value === undefined ? new Uint8Array(0) : Uint8Array.from(bytesOf(def.value)),
    };
  }

  /** The database declaration of a user characteristic: its reads and writes go through the link's request state. */
  private characteristicDef(c: ServedCharacteristic<C>, pending: ServedCharacteristic<C>[]): CharacteristicDef {
    if (!c || !Array.isArray(c.properties)) throw new ArgumentError(`gatt server: characteristic ${String(c?.uuid)} needs a properties array`);
    pending.push(c);
    const descriptors: DescriptorDef[] = (c.descriptors ?? []).map(d => ({
      uuid: d.uuid,
      ...(d.handle !== undefined ? { handle: d.handle } : {}),
      readable: d.readable ?? true,
      writable: d.writable ?? false,
      onRead: acc => this.readThrough(acc),
      onWrite: (value, acc) => this.writeThrough(value, acc, d.maxLength),
    }));
    // A user-declared CCCD would bypass the per-link CCCD: refuse it (the server adds one itself).
    if ((c.descriptors ?? []).some(d => safeUuid(d.uuid) === GattType.ClientCharacteristicConfiguration)) {
      throw new ArgumentError(`gatt server: characteristic ${String(c.uuid)} declares a CCCD; the server adds one per link for notify / indicate`);
    }
    // The server's CCCD at the handle asked for, among the descriptors in handle order.
    const cccdAt = c.cccdHandle;
    if (typeof cccdAt === 'number') {
      const k = descriptors.findIndex(d => d.handle !== undefined && d.handle > cccdAt);
      descriptors.splice(k < 0 ? descriptors.length : k, 0, { uuid: GattType.ClientCharacteristicConfiguration, handle: cccdAt });
    }
    return {
      uuid: c.uuid,
      ...(c.handle !== undefined ? { handle: c.handle } : {}),
      properties: c.properties,
      ...(c.maxLength !== undefined ? { maxLength: c.maxLength } : {}),
      ...(cccdAt === false ? { cccd: false } : {}),
      onRead: acc => this.readThrough(acc),
      onWrite: (value, acc) => this.writeThrough(value, acc, undefined),
      descriptors,
    };
  }

  // The database calls these synchronously while a ServedLink runs a request; `acc.handle` is the
  // attribute, the link's request state holds prefetched reads and collects the writes.

  private readThrough(acc: GattAccess): Uint8Array {
    const link = acc.link as ServedLink<C> | undefined;
    const handle = acc.handle!;
    const pre = link?.current?.reads.get(handle);
    if (pre) return pre;
    return this.entries.get(handle)?.value ?? new Uint8Array(0);
  }

  private writeThrough(value: Uint8Array, acc: GattAccess, maxLength: number | undefined): void {
    if (maxLength !== undefined && value.length > maxLength) throw new AttServerError(AttErrorCode.InvalidAttributeValueLength);
    const link = acc.link as ServedLink<C> | undefined;
    const entry = this.entries.get(acc.handle!);
    if (!link?.current || !entry) throw new AttServerError(AttErrorCode.UnlikelyError);
    link.current.writes.push({ entry, value, op: acc.op });
  }
}

/**
 * The write security of a characteristic that does not say: 'encrypted' when it can only be written
 * signed (Authenticated Signed Writes without Write, Write Without Response or Reliable Write: a plain
 * write on an unencrypted link would otherwise get around the signature), else 'none'. A verified
 * signed write meets 'encrypted' (and 'authenticated' when the client's bond is), Vol 3, Part C, 10.2.2.
 */
function defaultWriteSecurity<C>(def: ServedCharacteristic<C> | ServedDescriptor<C>): AccessSecurity {
  const props = 'properties' in def && Array.isArray(def.properties) ? def.properties : [];
  const signedOnly = props.includes('authenticatedSignedWrites')
    && !props.some(p => p === 'write' || p === 'writeWithoutResponse' || p === 'reliableWrite');
  return signedOnly ? 'encrypted' : 'none';
}

/**
 * Our GAP and GATT services around user services that carry their own handles (ServeOptions.ownServices):
 * the user's layout is pinned as it lays out alone (a service without a handle follows the one before
 * it), then each of ours goes at its preferred handle when the room from there is free, else in the
 * first free room from handle 1, else after the last service. The result is in handle order.
 */
function placeOwnServices(base: ServiceDef[], defs: ServiceDef[], own: { gap?: number; gatt?: number } | undefined): ServiceDef[] {
  const alone = new GattDatabase(defs).layout;
  const pinned = defs.map((d, k) => Object.assign(d, { handle: alone[k]!.start, endHandle: alone[k]!.end }));
  const sizes = new GattDatabase(base).layout.map(l => l.end - l.start + 1);
  const taken: Array<[number, number]> = pinned.map(d => [d.handle, d.endHandle]);
  const preferred = [own?.gap, own?.gatt];
  const ours = base.map((b, k) => {
    const size = sizes[k]!;
    const at = roomFor(taken, size, preferred[k]);
    if (at === undefined) throw new ArgumentError(`gatt server: no room for our ${k === 0 ? 'GAP' : 'GATT'} service (${size} handles) among the services' own handles`);
    taken.push([at, at + size - 1]);
    return Object.assign(b, { handle: at }); // the same objects: the caller finds their layouts by them
  });
  return [...ours, ...pinned].sort((a, b) => a.handle - b.handle);
}

/** A start for `size` consecutive free handles: `preferred` if free, else the first free room, else undefined. */
function roomFor(taken: Array<[number, number]>, size: number, preferred: number | undefined): number | undefined {
  const sorted = [...taken].sort((a, b) => a[0] - b[0]);
  const free = (start: number): boolean => Number.isInteger(start) && start >= 1 && start + size - 1 <= 0xffff
    && sorted.every(([s, e]) => start + size - 1 < s || start > e);
  if (preferred !== undefined && free(preferred)) return preferred;
  let next = 1;
  for (const [s, e] of sorted) {
    if (s - next >= size) return next;
    next = Math.max(next, e + 1);
  }
  return next + size - 1 <= 0xffff ? next : undefined;
}

/**
 * One link served by a GattServer: checks permissions, prefetches async reads, runs the request on
 * the database synchronously, then applies its writes through the handlers; one request at a time.
 */
export class ServedLink<C> extends GattServerLink {
  /** @internal the request being answered (set only while the database runs it). */
  current: RequestState | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private busy = 0;
  private closedLink = false;

  constructor(db: GattDatabase, private readonly owner: GattServer<C>, readonly peer: ServedPeer<C>) {
    super(db);
  }

  override serve(pdu: AttPdu, ctx: AttServerContext): AttPdu | undefined | Promise<AttPdu | undefined> {
    // Bonded client: its CCCDs come back on the first request after encryption made it known.
    this.restoreBonded();
    // Encryption just started and its key size is being read: answered with the link's new security
    // (bounded by the handler time), not refused with 0x05 / 0x0F by a state a moment old.
    const settling = this.peer.settling;
    if (this.busy === 0 && !settling && !this.needsAsync(pdu)) return this.answer(pdu, ctx, new Map());
    this.busy++;
    const run = this.chain.then(() => (settling ? this.waitFor(settling) : undefined))
      .then(() => { this.restoreBonded(); return this.serveAsync(pdu, ctx); }).finally(() => { this.busy--; });
    this.chain = run.catch(() => undefined);
    return run;
  }

  override onClosed(): void {
    if (!this.closedLink) {
      this.restoreBonded(); // a link that bonded and then went quiet still counts as bonded
      this.closedLink = true;
      this.owner.detach(this, this.cccdSnapshot());
    }
    super.onClosed();
  }

  private restored = false;
  /** The link was encrypted with a bond at some point (its CCCDs are kept when it closes). */
  bondedLink = false;
  /**
   * A bonded client's CCCDs come back once its link is encrypted with the bond (Vol 3, Part G,
   * 3.3.3.3): not before, so an unencrypted link from a bonded address (anyone can claim one) hears
   * no notification it did not subscribe to on this link.
   */
  private restoreBonded(): void {
    const sec = this.peer.security;
    if (this.restored || !sec.bonded || !sec.encrypted || this.peer.identity === undefined) return;
    this.restored = true;
    this.bondedLink = true;
    for (const [h, v] of this.owner.restore(this.peer.identity)) if (this.cccd(h) === 0) this.setCccd(h, v);
  }

  private cccdSnapshot(): Map<number, number> {
    const out = new Map<number, number>();
    for (const s of this.database.layout) for (const c of s.characteristics) if (c.cccdHandle && this.cccd(c.cccdHandle)) out.set(c.cccdHandle, this.cccd(c.cccdHandle));
    return out;
  }

  /** Does this PDU reach a handler (a prefetch or an async write)? */
  private needsAsync(pdu: AttPdu): boolean {
    for (const h of this.readHandles(pdu)) {
      const e = this.owner.entry(h);
      if (e?.onRead || e?.authorize) return true;
    }
    switch (pdu.kind) {
      case 'signedWriteCmd': return true; // its signature is checked against the bond first
      case 'writeReq': case 'writeCmd': case 'prepareWriteReq': {
        const e = this.owner.entry(pdu.handle);
        return e?.onWrite !== undefined || e?.authorize !== undefined;
      }
      case 'executeWriteReq': return true;
      default: return false;
    }
  }

  /** The attribute handles a read-type request will read. */
  private readHandles(pdu: AttPdu): number[] {
    switch (pdu.kind) {
      case 'readReq': case 'readBlobReq': return [pdu.handle];
      case 'readMultipleReq': case 'readMultipleVariableReq': return pdu.setOfHandles;
      case 'readByTypeReq': {
        if (pdu.startingHandle === 0 || pdu.startingHandle > pdu.endingHandle) return [];
        const out: number[] = [];
        for (const a of this.database.server.range(pdu.startingHandle, pdu.endingHandle)) if (a.type === pdu.attributeType) out.push(a.handle);
        return out;
      }
      default: return [];
    }
  }

  private async serveAsync(pdu: AttPdu, ctx: AttServerContext): Promise<AttPdu | undefined> {
    const reads = new Map<number, Uint8Array>();
    // A Signed Write Command goes on as the Write Command it carries once its signature checks out, its
    // write security met by the signature (a change-unaware client's commands are ignored before that).
    let signedLevel: number | undefined;
    if (pdu.kind === 'signedWriteCmd' && this.isChangeAware) {
      const verdict = await this.verifySigned(pdu);
      if (!verdict) return undefined;
      signedLevel = verdict.authenticated ? RANK.authenticated : RANK.encrypted;
      pdu = { kind: 'writeCmd', handle: pdu.handle, value: pdu.value };
    }
    const checked = this.check(pdu, signedLevel);
    if (checked) return checked.error;
    const refused = await this.authorize(pdu, ctx);
    if (refused) return refused.error;
    // A Read By Type ends before a later attribute this link may not read (security, authorization).
    const target = this.narrowReadByType(pdu);
    // Prefetch every handler read this request makes (readable ones: the rest are refused by the database).
    for (const h of this.readHandles(target)) {
      const e = this.owner.entry(h);
      const a = this.database.server.attribute(h);
      // Not for an attribute this link may not read: the request stops before it (narrowReadByType).
      if (!e?.onRead || !a?.readable || RANK[e.readSecurity] > this.level()) continue;
      const offset = target.kind === 'readBlobReq' ? target.valueOffset : 0;
      const r = await this.runHandler(() => e.onRead!({ connection: this.peer.connection, offset, mtu: ctx.mtu }));
      if (typeof r === 'number') return errorRsp(target, h, r);
      reads.set(h, Uint8Array.from(bytesOf(r as ValueLike)));
    }
    return this.answer(target, ctx, reads, true, signedLevel !== undefined);
  }

  /**
   * The checks of a Signed Write Command (Vol 3, Part F, 3.4.5.4; Part C, 10.4.2), cheapest first: a
   * characteristic value with the Authenticated Signed Writes property, an unencrypted link, then the
   * signature and SignCounter against the client's bond (which saves the counter). Counted either way;
   * undefined when dropped.
   */
  private async verifySigned(pdu: AttPduOf<'signedWriteCmd'>): Promise<{ authenticated: boolean } | undefined> {
    const signCounter = signatureCounter(pdu.authenticationSignature);
    const drop = (reason: SignedWriteDrop, counter: number | undefined = signCounter): undefined => {
      this.owner.countSigned(reason, this.peer.name, pdu.handle, counter);
      return undefined;
    };
    const c = this.database.layout.flatMap(sv => sv.characteristics).find(ch => ch.valueHandle === pdu.handle);
    if (!c || !CHARACTERISTIC_PROPERTIES.has(c.properties, 'authenticatedSignedWrites')) return drop('notSignable');
    if (this.peer.security.encrypted) return drop('encrypted');
    if (!this.peer.verifySignature) return drop('noKey');
    const header = Uint8Array.of(0xd2, pdu.handle & 0xff, pdu.handle >> 8);
    let timer: TimerId | undefined;
    const late = new Promise<SignatureCheck>(resolve => {
      timer = this.owner.clock.setTimeout(() => resolve({ ok: false, reason: 'storeFailed', signCounter }), this.owner.timeoutMs);
    });
    let verdict: SignatureCheck;
    try {
      verdict = await Promise.race([
        this.peer.verifySignature(header, pdu.value, pdu.authenticationSignature).catch((): SignatureCheck => ({ ok: false, reason: 'storeFailed', signCounter })),
        late,
      ]);
    } finally {
      if (timer !== undefined) this.owner.clock.clearTimeout(timer);
    }
    if (!verdict.ok) return drop(verdict.reason, verdict.signCounter);
    this.owner.countSigned('accepted', this.peer.name, pdu.handle, verdict.signCounter);
    return { authenticated: verdict.authenticated };
  }

  /**
   * The 'authorized' permission (Vol 3, Part F, 3.2.5), after security: every attribute the request
   * reads or writes whose declaration asks for authorization goes to its hook, bounded by the handler
   * time; a refusal answers Insufficient Authorization 0x08 (3.4.1.1), nothing for a command. A Read By
   * Type asks only for its first attribute: a later one that needs authorization ends the list.
   */
  private async authorize(pdu: AttPdu, ctx: AttServerContext): Promise<{ error: AttPdu | undefined } | undefined> {
    void ctx;
    const ask = async (h: number, e: Entry, op: 'read' | 'write', command: boolean): Promise<number | undefined> => {
      const hook = this.owner.authorizerOf(e);
      if (!hook) return undefined;
      const r = await this.runHandler(() => hook({ connection: this.peer.connection, handle: h, uuid: e.uuid, op, command }),
        AttErrorCode.InsufficientAuthorization);
      if (r === true) return undefined;
      if (typeof r === 'number') return r;
      return AttErrorCode.InsufficientAuthorization;
    };
    const reading = this.readHandles(pdu);
    for (const h of reading) {
      const e = this.owner.entry(h);
      if (!e?.authorize || !this.database.server.attribute(h)?.readable) continue;
      if (pdu.kind === 'readByTypeReq' && h !== reading[0]) break;
      const code = await ask(h, e, 'read', false);
      if (code !== undefined) return { error: errorRsp(pdu, h, code) };
    }
    if (pdu.kind === 'writeReq' || pdu.kind === 'writeCmd' || pdu.kind === 'signedWriteCmd' || pdu.kind === 'prepareWriteReq') {
      const e = this.owner.entry(pdu.handle);
      if (!e?.authorize || !this.database.server.attribute(pdu.handle)?.writable) return undefined;
      const command = pdu.kind === 'writeCmd' || pdu.kind === 'signedWriteCmd';
      const code = await ask(pdu.handle, e, 'write', command);
      if (code !== undefined) return { error: command ? undefined : errorRsp(pdu, pdu.handle, code) };
    }
    return undefined;
  }

  /**
   * Security of every attribute the request touches; an error answer, or undefined to go on. `signedLevel`:
   * a verified signed write's level (its bond's), which stands for the link's on the write.
   */
  private check(pdu: AttPdu, signedLevel?: number): { error: AttPdu | undefined } | undefined {
    if (!this.isChangeAware) return undefined; // the database's robust-caching answer comes first
    const level = signedLevel ?? this.level();
    // Vol 3, Part F, 3.4.1.1 and Part C, 10.3.1: an access that needs an authenticated link answers
    // Insufficient Authentication (0x05), one that needs encryption only Insufficient Encryption (0x0F).
    const fail = (need: AccessSecurity): number | undefined =>
      RANK[need] <= level ? undefined : need === 'authenticated' ? AttErrorCode.InsufficientAuthentication : AttErrorCode.InsufficientEncryption;
    const isCommand = pdu.kind === 'writeCmd' || pdu.kind === 'signedWriteCmd';
    const reading = this.readHandles(pdu);
    for (const h of reading) {
      const e = this.owner.entry(h);
      const a = this.database.server.attribute(h);
      if (!e || !a?.readable) continue;
      const code = fail(e.readSecurity);
      if (code === undefined) continue;
      if (pdu.kind === 'readByTypeReq' && h !== reading[0]) break; // a later one ends the list: the database is asked for less
      return { error: errorRsp(pdu, h, code) };
    }
    let writeHandle: number | undefined;
    if (pdu.kind === 'writeReq' || pdu.kind === 'writeCmd' || pdu.kind === 'signedWriteCmd' || pdu.kind === 'prepareWriteReq') writeHandle = pdu.handle;
    if (writeHandle !== undefined) {
      const e = this.owner.entry(writeHandle);
      const a = this.database.server.attribute(writeHandle);
      if (e && a?.writable) {
        const code = fail(e.writeSecurity);
        if (code !== undefined) return { error: isCommand ? undefined : errorRsp(pdu, writeHandle, code) };
      }
    }
    return undefined;
  }

  /** Run the request on the database, then apply the writes it collected. */
  private answer(pdu: AttPdu, ctx: AttServerContext, reads: Map<number, Uint8Array>, checkedAlready = false, signed = false): AttPdu | undefined | Promise<AttPdu | undefined> {
    if (!checkedAlready) {
      const checked = this.check(pdu);
      if (checked) return checked.error;
    }
    const refused = this.robustCachingCheck(pdu);
    if (refused !== false) return refused;
    pdu = this.narrowReadByType(pdu);
    const state: RequestState = { reads, offset: 0, writes: [], signed };
    this.current = state;
    let rsp: AttPdu | undefined;
    try {
      rsp = this.serveNow(pdu, ctx);
    } finally {
      this.current = undefined;
    }
    if (state.writes.length === 0) return rsp;
    if (rsp && rsp.kind === 'errorRsp') return rsp;
    return this.applyWrites(pdu, state.writes, ctx, signed).then(r => r ?? rsp);
  }

  /** The link's security as a rank of AccessSecurity: 0 none, 1 encrypted, 2 encrypted and authenticated. */
  private level(): number {
    const sec = this.peer.security;
    return sec.encrypted ? (sec.authenticated ? 2 : 1) : 0;
  }

  /** A Read By Type whose later match is not readable at this link's security ends before it. */
  private narrowReadByType(pdu: AttPdu): AttPdu {
    if (pdu.kind !== 'readByTypeReq') return pdu;
    const level = this.level();
    const handles = this.readHandles(pdu);
    for (const h of handles) {
      const e = this.owner.entry(h);
      if (e && (RANK[e.readSecurity] > level || (e.authorize && h !== handles[0]))) {
        return { ...pdu, endingHandle: h - 1 } as AttPduOf<'readByTypeReq'>;
      }
    }
    return pdu;
  }

  private async applyWrites(pdu: AttPdu, writes: PendingWrite[], ctx: AttServerContext, signed: boolean): Promise<AttPdu | undefined> {
    const command = pdu.kind === 'writeCmd' || pdu.kind === 'signedWriteCmd';
    for (const w of writes) {
      if (w.entry.onWrite) {
        const r = await this.runHandler(() => w.entry.onWrite!(w.value, {
          connection: this.peer.connection, offset: 0, mtu: ctx.mtu, command, signed, prepared: w.op === 'preparedWrite',
        }));
        if (typeof r === 'number') return command ? undefined : errorRsp(pdu, w.entry.handle, r);
      }
      w.entry.value = w.value;
    }
    return undefined;
  }

  /** Resolves when `p` settles or the handler time passes, whichever is first. */
  private waitFor(p: Promise<void>): Promise<void> {
    const clock = this.owner.clock;
    return new Promise<void>(resolve => {
      const timer = clock.setTimeout(resolve, this.owner.timeoutMs);
      p.then(() => { clock.clearTimeout(timer); resolve(); }, () => { clock.clearTimeout(timer); resolve(); });
    });
  }

  /** A handler's result, or the ATT error code to answer with (its GattServerError, Unlikely Error, timeout). */
  private runHandler<T>(fn: () => T | Promise<T>, fallback: number = AttErrorCode.UnlikelyError): Promise<T | number> {
    const clock = this.owner.clock;
    return new Promise<T | number>(resolve => {
      let done = false;
      const timer = clock.setTimeout(() => {
        if (done) return;
        done = true;
        log.att('gatt server handler did not answer within %d ms: ATT error 0x%s', this.owner.timeoutMs, fallback.toString(16));
        resolve(fallback);
      }, this.owner.timeoutMs);
      const finish = (v: T | number): void => {
        if (done) return;
        done = true;
        clock.clearTimeout(timer);
        resolve(v);
      };
      try {
        Promise.resolve(fn()).then(v => finish(v), (e: unknown) => finish(codeOf(e, fallback)));
      } catch (e) {
        finish(codeOf(e, fallback));
      }
    });
  }

  /** Indicate on this link; false when the client has not enabled indications. */
  override async indicate(key: UuidLike, value?: ValueLike): Promise<boolean> {
    if (this.closedLink) return false;
    this.restoreBonded();
    return super.indicate(key, value);
  }

  override async notify(key: UuidLike, value?: ValueLike): Promise<boolean> {
    if (this.closedLink) return false;
    this.restoreBonded();
    return super.notify(key, value);
  }

  override cccd(handle: number): number {
    if (!this.closedLink) this.restoreBonded();
    return super.cccd(handle);
  }
}

function codeOf(e: unknown, fallback: number): number {
  if (e instanceof GattServerError || e instanceof AttServerError) {
    const c = e.errorCode;
    return Number.isInteger(c) && c > 0 && c <= 0xff ? c : fallback;
  }
  log.att('gatt server handler threw: %s', e instanceof Error ? e.message : String(e));
  return fallback;
}

const OPCODE: Partial<Record<AttPdu['kind'], number>> = {
  readByTypeReq: 0x08, readReq: 0x0a, readBlobReq: 0x0c, readMultipleReq: 0x0e, writeReq: 0x12, prepareWriteReq: 0x16,
  executeWriteReq: 0x18, readMultipleVariableReq: 0x20,
};

function errorRsp(pdu: AttPdu, handle: number, errorCode: number): AttPdu {
  return { kind: 'errorRsp', requestOpcode: OPCODE[pdu.kind] ?? 0, handle, errorCode };
}

function safeUuid(x: UuidLike): Uuid | undefined {
  try {
    return toUuid(x);
  } catch {
    return undefined;
  }
}
