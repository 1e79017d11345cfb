/**
 * The service model users hold: GattService, GattCharacteristic, GattDescriptor. They are views of
 * the discovered data plus the operations of the client that made them; they belong to one
 * connection and stop working (DisconnectedError) when it ends.
 */
import { BlewireError, InvalidStateError } from '../errors.js';
import { describeUuid, uuid as toUuid, uuidName, uuidOf, type Uuid } from '../codec/uuid.js';
import { CharacteristicProperty, GattType, propertyNames, type CharacteristicPropertyName } from './constants.js';
import type { OpOptions } from '../operation.js';
import type { CharacteristicData, DescriptorData, ServiceData } from './procedures.js';

/** A service, characteristic or descriptor the peer does not have. */
export class NotFoundError extends BlewireError {
  override readonly code = 'ENOTFOUND';
  constructor(readonly what: 'service' | 'characteristic' | 'descriptor', readonly uuid: string) {
    super(`gatt: the peer has no ${what} ${uuid}`);
  }
}

export interface WriteOptions extends OpOptions {
  /** Default: true when the characteristic supports write requests, else false (write without response). */
  withResponse?: boolean;
}

export interface SubscribeOptions extends OpOptions {
  /** Use indications even if notifications are supported. */
  indicate?: boolean;
  /** Values kept for a slow iterator before the oldest is dropped: 0..SUBSCRIPTION_BUFFER_MAX (65 536), default 256. */
  buffer?: number;
}

/** An active subscription: an async iterable of values; `unsubscribe()` writes the CCCD back when it was the last one. */
export interface Subscription extends AsyncIterable<Uint8Array> {
  unsubscribe(options?: OpOptions): Promise<void>;
  /** Values dropped because the iterator did not keep up. */
  readonly dropped: number;
  readonly active: boolean;
  /** The values in batches: everything that arrived since the last next() (one turn's worth at a time). */
  batches(): AsyncIterableIterator<Uint8Array[]>;
}

/** What the model needs from its client (implemented by GattClient). */
export interface GattOps {
  readValue(handle: number, options?: OpOptions): Promise<Uint8Array>;
  writeValue(handle: number, value: Uint8Array, withResponse: boolean, options?: OpOptions): Promise<void>;
  subscribeValue(ch: GattCharacteristic, callback: ((value: Uint8Array) => void) | undefined, options?: SubscribeOptions): Promise<Subscription>;
  discoverServiceCharacteristics(service: GattService, options?: OpOptions): Promise<void>;
  checkAlive(operation: string): void;
}

export class GattDescriptor {
  readonly uuid: Uuid;
  readonly handle: number;
  constructor(private readonly ops: GattOps, data: DescriptorData, readonly characteristic: GattCharacteristic) {
    this.uuid = data.uuid;
    this.handle = data.handle;
  }
  get name(): string | undefined {
    return uuidName(this.uuid);
  }
  read(options?: OpOptions): Promise<Uint8Array> {
    return this.ops.readValue(this.handle, options);
  }
  /** Descriptors are written with Write Request (long write when needed). */
  write(value: Uint8Array, options?: OpOptions): Promise<void> {
    return this.ops.writeValue(this.handle, value, true, options);
  }
  toJSON(): object {
    return { uuid: this.uuid, name: this.name, handle: this.handle };
  }
}

export class GattCharacteristic {
  readonly uuid: Uuid;
  readonly declHandle: number;
  /** The value handle (what ATT reads and writes). */
  readonly handle: number;
  readonly end: number;
  readonly propertyBits: number;
  readonly descriptors: readonly GattDescriptor[];

  constructor(private readonly ops: GattOps, data: CharacteristicData, readonly service: GattService) {
    this.uuid = data.uuid;
    this.declHandle = data.declHandle;
    this.handle = data.valueHandle;
    this.end = data.end;
    this.propertyBits = data.properties;
    this.descriptors = data.descriptors.map(d => new GattDescriptor(ops, d, this));
  }

  get name(): string | undefined {
    return uuidName(this.uuid);
  }

  get properties(): CharacteristicPropertyName[] {
    return propertyNames(this.propertyBits);
  }

  has(p: keyof typeof CharacteristicProperty): boolean {
    return (this.propertyBits & CharacteristicProperty[p]) !== 0;
  }

  /** The Client Characteristic Configuration descriptor, if discovered. */
  get cccd(): GattDescriptor | undefined {
    return this.descriptors.find(d => d.uuid === GattType.ClientCharacteristicConfiguration);
  }

  descriptor(u: number | string): GattDescriptor {
    const want = uuidOf('descriptor', u);
    const d = this.descriptors.find(x => x.uuid === want);
    if (!d) throw new NotFoundError('descriptor', describeUuid(want));
    return d;
  }

  /** Read the value (long values transparently, with Read Blob). */
  read(options?: OpOptions): Promise<Uint8Array> {
    return this.ops.readValue(this.handle, options);
  }

  /**
   * Write the value. With response: Write Request, or prepare/execute when longer than ATT_MTU - 3.
   * Without: Write Command, resolved when the link took it (back-pressure).
   */
  write(value: Uint8Array, options: WriteOptions = {}): Promise<void> {
    const withResponse = options.withResponse ?? this.has('write');
    return this.ops.writeValue(this.handle, value, withResponse, options);
  }

  /**
   * Subscribe (writes the CCCD); values go to `callback` and to the returned subscription's iterator.
   * Without a callback the subscription buffers values from the start; with one, only once it is
   * iterated (`for await` or `batches()`): a callback subscription keeps no values of its own.
   */
  subscribe(callback?: (value: Uint8Array) => void, options?: SubscribeOptions): Promise<Subscription> {
    return this.ops.subscribeValue(this, callback, options);
  }

  /** Notifications (or indications) as an async iterator: subscribes on the first next(), unsubscribes when the loop ends. */
  notifications(options?: SubscribeOptions): AsyncGenerator<Uint8Array, void, undefined> {
    return new SubscriptionLoop(() => this.subscribe(undefined, options), sub => sub[Symbol.asyncIterator]());
  }

  /**
   * Notifications (or indications) in batches: each step of the loop gets every value that arrived
   * since the last one, at least one (a busy stream costs one promise per turn of the event loop,
   * not one per value). A batch holds at most `options.buffer` values (default
   * SUBSCRIPTION_BUFFER_DEFAULT, 256): when more arrive between two steps the oldest are dropped and
   * counted. Subscribes on the first next(), unsubscribes when the loop ends.
   */
  notificationBatches(options?: SubscribeOptions): AsyncGenerator<Uint8Array[], void, undefined> {
    return new SubscriptionLoop(() => this.subscribe(undefined, options), sub => sub.batches());
  }

  toJSON(): object {
    return { uuid: this.uuid, name: this.name, handle: this.handle, properties: this.properties, descriptors: this.descriptors.map(d => d.toJSON()) };
  }
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/**
 * What notifications() and notificationBatches() return: subscribes on the first next(), reads the
 * subscription's own iterator, and unsubscribes (the CCCD written back when it was the last
 * subscriber) when the loop ends by return() (`break`), throw(), or a failed subscribe; when the
 * subscription ends by itself (link lost, Service Changed) the client has already let it go.
 *
 * Written out rather than as an async generator delegating with `yield*`: each step of one cost two
 * more promise hops, about 300 ns a step (20 ns a value in batches of 16, issue 14). While the
 * subscription is active a step is the subscription iterator's own next(); only once it has ended
 * does a step go the slower way, to drain what the subscription still holds and then report its end
 * (done, or its error once). Steps called without waiting for the last one queue in order in the
 * subscription, so none is left pending when it ends.
 */
class SubscriptionLoop<T> implements AsyncGenerator<T, void, undefined> {
  private sub: Subscription | undefined;
  private inner: AsyncIterator<T> | undefined;
  private starting: Promise<void> | undefined;
  private finished = false;

  constructor(private readonly start: () => Promise<Subscription>, private readonly pick: (sub: Subscription) => AsyncIterator<T>) {}

  next(): Promise<IteratorResult<T, void>> {
    const inner = this.inner;
    if (inner !== undefined && this.sub!.active && !this.finished) return inner.next();
    return this.slowNext();
  }

  private async slowNext(): Promise<IteratorResult<T, void>> {
    if (this.finished) return DONE;
    if (this.inner === undefined) {
      this.starting ??= this.start().then(sub => {
        this.sub = sub;
        this.inner = this.pick(sub);
      }, (e: unknown) => {
        this.finished = true;
        throw e;
      });
      await this.starting;
      if (this.finished) return DONE; // return() while subscribing
    }
    // The subscription's iterator gives what it still holds, then its end once, then done.
    const r = await this.inner!.next();
    if (r.done) this.finished = true;
    return r;
  }

  async return(): Promise<IteratorResult<T, void>> {
    this.finished = true;
    await this.settle();
    return DONE;
  }

  async throw(error?: unknown): Promise<IteratorResult<T, void>> {
    this.finished = true;
    await this.settle();
    throw error;
  }

  /** Unsubscribe, once the subscribe in flight (if any) has settled. */
  private async settle(): Promise<void> {
    await this.starting?.catch(() => {});
    await this.sub?.unsubscribe().catch(() => { /* the link may be gone; nothing to undo then */ });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }
}

export class GattService {
  readonly uuid: Uuid;
  readonly start: number;
  readonly end: number;
  readonly primary: boolean;
  /** Start handles of included services. */
  readonly includeRanges: ReadonlyArray<{ start: number; end: number; uuid: Uuid }>;
  private chars: GattCharacteristic[] | undefined;

  constructor(private readonly ops: GattOps, data: ServiceData, discovered: boolean) {
    this.uuid = data.uuid;
    this.start = data.start;
    this.end = data.end;
    this.primary = data.primary;
    this.includeRanges = data.includes.map(i => ({ start: i.start, end: i.end, uuid: i.uuid }));
    if (discovered) this.setCharacteristics(data.characteristics);
  }

  get name(): string | undefined {
    return uuidName(this.uuid);
  }

  /** @internal set by the client once the characteristics are known. */
  setCharacteristics(data: CharacteristicData[]): void {
    this.chars = data.map(c => new GattCharacteristic(this.ops, c, this));
  }

  /** The characteristics, if already discovered (full discovery, cache, or a targeted call). */
  get characteristics(): readonly GattCharacteristic[] {
    if (!this.chars) throw new InvalidStateError(`gatt: the characteristics of ${describeUuid(this.uuid)} are not discovered yet; await service.getCharacteristics()`);
    return this.chars;
  }

  /** All characteristics, discovering them (and their descriptors) on first use. */
  async getCharacteristics(options?: OpOptions): Promise<readonly GattCharacteristic[]> {
    this.ops.checkAlive('getCharacteristics');
    if (!this.chars) await this.ops.discoverServiceCharacteristics(this, options);
    return this.chars!;
  }

  /** The first characteristic with this UUID (a name like 'heart_rate_measurement' works). */
  async characteristic(u: number | string, options?: OpOptions): Promise<GattCharacteristic> {
    const want = uuidOf('characteristic', u);
    const c = (await this.getCharacteristics(options)).find(x => x.uuid === want);
    if (!c) throw new NotFoundError('characteristic', describeUuid(want));
    return c;
  }

  toJSON(): object {
    return {
      uuid: this.uuid, name: this.name, primary: this.primary, start: this.start, end: this.end,
      characteristics: this.chars?.map(c => c.toJSON()),
    };
  }
}

export { toUuid };
