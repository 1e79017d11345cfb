/**
 * The broker side of the gateway, on MQTT.js (the `mqtt` package, an optional peer dependency that
 * only the gateway loads, lazily, with a typed error saying how to install it when it is missing).
 *
 * - Retained availability: the Last Will is `<status> = offline` (retained, QoS 1); every (re)connect
 *   publishes `online` (retained) first; a clean stop publishes `offline` itself before disconnecting.
 * - Reconnect with backoff: MQTT.js's own fixed-period reconnect is off; after a connection ends the
 *   next attempt waits min → 2·min → … → max (±20 % jitter), back to min after a successful connect.
 * - Bounded memory: at most MAX_INFLIGHT publications are handed to MQTT.js at once (QoS 1 ones wait
 *   for PUBACK and are re-sent by MQTT.js after a reconnect); everything beyond waits in the
 *   BoundedQueue (oldest dropped and counted) — also while the broker is away. So the gateway holds at
 *   most MAX_INFLIGHT + buffer.maxMessages publications, whatever the broker does.
 * - Backpressure: `busy` says that a publication made now would wait in the buffer although the broker
 *   is connected (the window is full, or buffered ones are still going out); onRoom() handlers run
 *   when that ends. The gateway builds a device's document only when the link is not busy, so a burst
 *   of reports ahead of a slow broker costs one waiting record per device, not a built document each.
 * - MQTT 5 sessions: clean start off with a session expiry of 0, so MQTT.js keeps its in-flight QoS 1
 *   publications across a reconnect while the broker keeps nothing for us (no stale commands queued).
 *   MQTT 3.1.1: clean session; publications in flight when the link drops are still re-sent by MQTT.js.
 */
import { createRequire } from 'node:module';
import type { IClientOptions, IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import { systemClock, type Clock } from '../../index.js';

type TimerId = ReturnType<Clock['setTimeout']>;
import { BoundedQueue, type Buffered } from './buffer.js';
import { GatewayError } from './errors.js';
import type { Logger } from './log.js';

export type MqttModule = { connect(url: string, opts: IClientOptions): MqttClient };

/** Publications handed to MQTT.js and not yet acknowledged (QoS 1) or written (QoS 0), at most. */
export const MAX_INFLIGHT = 256;
/**
 * Buffered publications are handed over again once the in-flight count has fallen to this, not after
 * every acknowledgement: MQTT.js handles each incoming PUBACK in its own tick and writes each tick's
 * packets with one writev, so refilling per PUBACK cost one system call per message; refilling half
 * the window at a time writes them 128 to a call.
 */
export const REFILL_AT = MAX_INFLIGHT / 2;

/**
 * Load MQTT.js on first use; a missing package is a typed error with the fix. Its CommonJS build is
 * loaded with require() when the runtime has it: importing it as ESM costs the process about 6 MB
 * more RSS (Node analyses every CommonJS file for its exports), a tenth of a gateway's memory budget.
 */
export async function loadMqtt(): Promise<MqttModule> {
  try {
    let m: MqttModule & { default?: MqttModule };
    try {
      m = createRequire(import.meta.url)('mqtt') as MqttModule & { default?: MqttModule };
    } catch (e) {
      if ((e as { code?: string }).code === 'MODULE_NOT_FOUND') throw e;
      m = (await import('mqtt')) as unknown as MqttModule & { default?: MqttModule };
    }
    return typeof m.connect === 'function' ? m : m.default!;
  } catch (e) {
    throw new GatewayError('EGW_DEPENDENCY',
      "the gateway needs the 'mqtt' package (MQTT.js 5), which is an optional dependency of blewire: install it next to blewire with `npm install mqtt`",
      { cause: e });
  }
}

export interface MqttLinkOptions {
  url: string;
  client: IClientOptions;
  statusTopic: string;
  buffer: { maxMessages: number; maxBytes: number };
  backoff: { minMs: number; maxMs: number };
  logger: Logger;
  clock?: Clock;
  random?: () => number;
}

export interface MqttLinkStats {
  connected: boolean;
  /** Publications acknowledged (QoS 1) or written (QoS 0). */
  delivered: number;
  /** Publications waiting in the buffer now. */
  buffered: number;
  /** Publications dropped from the buffer (oldest first) since start. */
  dropped: number;
  inflight: number;
  connects: number;
  /** Connection attempts that failed or connections that ended. */
  disconnects: number;
  /** Why the last connection attempt failed, when waiting will not cure it (EGW_TLS, EGW_BROKER_REFUSED); cleared on connect. */
  lastError: GatewayError | undefined;
}

/**
 * Node's certificate verification codes (tls.TLSSocket#authorizationError, the OpenSSL X509_V_ERR_*
 * names) that mean "the broker's certificate is not trusted by the CA we were given".
 */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED',
  'CERT_REJECTED', 'INVALID_CA', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD']);

/**
 * The typed error for a connection failure that waiting will not cure: the TLS handshake failed
 * (EGW_TLS) or the broker refused the MQTT connection (EGW_BROKER_REFUSED), each with what to change.
 * Undefined for everything else (refused TCP connection, reset, timeout): those are broker loss, and
 * the reconnect backoff handles them.
 */
export function connectionError(err: unknown, url: string): GatewayError | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  const where = redact(url);
  if (typeof code === 'string') {
    if (UNTRUSTED.has(code)) {
      return new GatewayError('EGW_TLS', `${where}: the broker's TLS certificate is not trusted (${code}: ${err.message}): ` +
        "set mqtt.ca (BLEWIRE_MQTT_CA) to the PEM file of the CA that signed the broker's certificate", { cause: err });
    }
    if (EXPIRED.has(code)) {
      return new GatewayError('EGW_TLS', `${where}: the broker's TLS certificate is outside its validity period (${code}: ${err.message}): ` +
        "renew the broker's certificate, or check this machine's clock", { cause: err });
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new GatewayError('EGW_TLS', `${where}: the broker's TLS certificate does not name the host in the URL (${code}: ${err.message}): ` +
        'connect by a name (or IP address) the certificate lists in its subjectAltName, or reissue the certificate', { cause: err });
    }
    if (code.startsWith('ERR_SSL_') && /ALERT/.test(code)) {
      // The broker ended the handshake with an alert: it did not accept our certificate (or we sent none).
      return new GatewayError('EGW_TLS', `${where}: the broker refused the TLS handshake (${code}): it wants a client certificate ` +
        'signed by a CA it trusts: set mqtt.cert and mqtt.key (BLEWIRE_MQTT_CERT / BLEWIRE_MQTT_KEY) to such a certificate and its key', { cause: err });
    }
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
      return new GatewayError('EGW_TLS', `${where}: the port does not speak TLS (${code}): use mqtt:// for a plain listener, or the broker's TLS port`, { cause: err });
    }
  }
  if (typeof code === 'number' && /^Connection refused/.test(err.message)) {
    // CONNACK with a failure (MQTT 5: reason code ≥ 0x80, 3.1.1: return code 1-5), [MQTT-3.2.2-6].
    const auth = code === 4 || code === 5 || code === 0x86 || code === 0x87 || code === 0x8c;
    return new GatewayError('EGW_BROKER_REFUSED', `${where}: the broker refused the connection (${err.message}, code ${code}): ` +
      (auth ? 'check the user name and password (BLEWIRE_MQTT_USERNAME, BLEWIRE_MQTT_PASSWORD_FILE) and the broker\'s access rules'
        : 'check the broker\'s log for why'), { cause: err });
  }
  return undefined;
}

export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

export class MqttLink {
  private client: MqttClient | undefined;
  private readonly queue: BoundedQueue<Buffered>;
  private inflight = 0;
  private delivered = 0;
  private connects = 0;
  private disconnects = 0;
  private attempt = 0;
  private lastError: GatewayError | undefined;
  private retry: TimerId | undefined;
  private stopping = false;
  private readonly subs = new Map<string, 0 | 1>();
  private readonly handlers = new Set<MessageHandler>();
  private readonly connectHandlers = new Set<() => void>();
  private readonly roomHandlers = new Set<() => void>();
  private readonly clock: Clock;

  constructor(private readonly mod: MqttModule, private readonly opts: MqttLinkOptions) {
    this.queue = new BoundedQueue<Buffered>(opts.buffer.maxMessages, opts.buffer.maxBytes);
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Connected and past MQTT.js's re-send of its stored publications: only then do new publications go
   * out. (MQTT.js marks itself connected before that re-send; a publication made in between could take
   * the packet identifier of a stored one, which the re-send then skips: a lost message.)
   */
  get connected(): boolean {
    return this.ready && this.client?.connected === true;
  }
  private ready = false;

  /** The protocol version in use (4 = 3.1.1, 5). */
  get protocolVersion(): number {
    return this.opts.client.protocolVersion ?? 4;
  }

  get stats(): MqttLinkStats {
    return { connected: this.connected, delivered: this.delivered, buffered: this.queue.length, dropped: this.queue.dropped,
      inflight: this.inflight, connects: this.connects, disconnects: this.disconnects, lastError: this.lastError };
  }

  onMessage(fn: MessageHandler): void { this.handlers.add(fn); }
  onConnect(fn: () => void): void { this.connectHandlers.add(fn); }
  /** Called when the link stops being `busy` (connected, nothing buffered, the window below REFILL_AT). */
  onRoom(fn: () => void): void { this.roomHandlers.add(fn); }

  /**
   * Connected, and a publication made now would not go out at once: the in-flight window is full or
   * buffered publications are still waiting their turn. (Not connected is not busy: publications then
   * go to the buffer, whose bounds say what an outage may cost.)
   */
  get busy(): boolean {
    return this.connected && (this.inflight >= MAX_INFLIGHT || this.queue.length > 0);
  }

  /** Start connecting (returns at once; the gateway runs and buffers while the broker is away). */
  start(): void {
    const c = this.mod.connect(this.opts.url, {
      ...this.opts.client,
      reconnectPeriod: 0,
      queueQoSZero: false,
      // mqtt-packet's cache of every 16-bit number as a Buffer is 65 536 objects, 6.3 MB of heap: a
      // gateway's memory matters more than the two-octet allocation per packet identifier it saves.
      writeCache: false,
      // MQTT.js traces every packet through the `debug` package (a dozen calls per publication, each
      // asking whether its namespace is enabled); the gateway logs what matters itself.
      log: noLog,
      resubscribe: false,
      will: { topic: this.opts.statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
      ...(this.opts.client.protocolVersion === 5 ? { clean: false, properties: { ...this.opts.client.properties, sessionExpiryInterval: 0 } } : { clean: true }),
    });
    this.client = c;
    c.on('connect', () => {
      this.ready = true;
      this.lastError = undefined;
      this.connects++;
      this.attempt = 0;
      this.opts.logger.info('mqtt connected', { url: redact(this.opts.url), protocolVersion: this.protocolVersion });
      c.publish(this.opts.statusTopic, 'online', { qos: 1, retain: true }, () => undefined);
      for (const [topic, qos] of this.subs) c.subscribe(topic, { qos }, err => { if (err) this.opts.logger.warn('mqtt subscribe failed', { topic, error: err }); });
      for (const fn of this.connectHandlers) safe(fn, this.opts.logger);
      this.pump();
      this.room();
    });
    c.on('message', (topic, payload, packet) => {
      for (const fn of this.handlers) safe(() => fn(topic, payload, packet), this.opts.logger);
    });
    c.on('error', err => {
      const typed = connectionError(err, this.opts.url);
      if (!typed) {
        this.opts.logger.warn('mqtt error', { url: redact(this.opts.url), error: err });
        return;
      }
      // A configuration problem, not broker loss: said at error level, every attempt (the backoff
      // spaces them), until the broker or the files change.
      this.lastError = typed;
      this.opts.logger.error('mqtt connection refused', { url: redact(this.opts.url), error: typed, attempt: this.attempt + 1 });
    });
    c.on('close', () => {
      this.ready = false;
      if (this.stopping) return;
      this.disconnects++;
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.retry !== undefined || this.stopping) return;
    const { minMs, maxMs } = this.opts.backoff;
    const base = Math.min(maxMs, minMs * 2 ** Math.min(this.attempt, 20));
    const delay = Math.round(base * (0.8 + 0.4 * (this.opts.random ?? Math.random)()));
    this.attempt++;
    this.opts.logger.info('mqtt disconnected; reconnecting', { inMs: delay, attempt: this.attempt, buffered: this.queue.length });
    this.retry = this.clock.setTimeout(() => {
      this.retry = undefined;
      if (this.stopping || !this.client) return;
      try {
        // Keep the stores: reconnect() without them starts empty ones, and the QoS 1 publications in
        // flight when the link dropped (held in the outgoing store) would be lost.
        const c = this.client;
        c.reconnect({ incomingStore: c.incomingStore, outgoingStore: c.outgoingStore });
      } catch (e) {
        this.opts.logger.warn('mqtt reconnect failed', { error: e });
        this.scheduleReconnect();
      }
    }, delay);
  }

  subscribe(topic: string, qos: 0 | 1 = 1): void {
    this.subs.set(topic, qos);
    if (this.connected) this.client!.subscribe(topic, { qos }, err => { if (err) this.opts.logger.warn('mqtt subscribe failed', { topic, error: err }); });
  }

  /** Publish, or buffer while the broker is away or too much is in flight. Never throws, never blocks. */
  publish(topic: string, payload: string | Uint8Array, qos: 0 | 1 = 1, retain = false, properties?: IClientPublishOptions['properties']): void {
    if (this.stopping) return;
    const item: Buffered & { properties?: IClientPublishOptions['properties'] } = { topic, payload, qos, retain };
    if (properties) item.properties = properties;
    if (this.connected && this.inflight < MAX_INFLIGHT && this.queue.length === 0) this.send(item);
    else this.queue.push(item);
  }

  private send(item: Buffered & { properties?: IClientPublishOptions['properties'] }): void {
    this.inflight++;
    const opts: IClientPublishOptions = { qos: item.qos, retain: item.retain };
    if (item.properties) opts.properties = item.properties;
    const payload = typeof item.payload === 'string' ? item.payload : Buffer.from(item.payload.buffer, item.payload.byteOffset, item.payload.length);
    this.client!.publish(item.topic, payload, opts, err => {
      this.inflight--;
      // An error here is "Connection closed": MQTT.js keeps QoS 1 publications in its store and sends
      // them again after the reconnect, so nothing is re-queued (that would duplicate them).
      if (!err) this.delivered++;
      if (this.inflight <= REFILL_AT) {
        this.pump();
        this.room();
      }
    });
  }

  /** Tell the onRoom() handlers when there is room: they publish what they held back, up to `busy`. */
  private room(): void {
    if (this.busy || !this.connected || this.stopping) return;
    for (const fn of this.roomHandlers) safe(fn, this.opts.logger);
  }

  private pump(): void {
    while (this.connected && this.inflight < MAX_INFLIGHT) {
      const item = this.queue.shift();
      if (!item) return;
      this.send(item);
    }
  }

  /**
   * Stop: publish `offline` (retained) when connected, wait up to `graceMs` for in-flight
   * publications, disconnect. The buffer is discarded.
   */
  async stop(graceMs = 2000): Promise<void> {
    if (this.stopping) return;
    const c = this.client;
    if (this.retry !== undefined) this.clock.clearTimeout(this.retry);
    this.retry = undefined;
    if (!c) { this.stopping = true; return; }
    if (c.connected) {
      this.pump();
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, graceMs);
        c.publish(this.opts.statusTopic, 'offline', { qos: 1, retain: true }, () => { clearTimeout(t); resolve(); });
      });
    }
    this.stopping = true;
    this.queue.clear();
    await new Promise<void>(resolve => {
      const t = setTimeout(() => { c.end(true, {}, () => resolve()); }, graceMs);
      c.end(false, {}, () => { clearTimeout(t); resolve(); });
    });
  }
}

function noLog(): void { /* MQTT.js's trace: off */ }

function safe(fn: () => void, logger: Logger): void {
  try {
    fn();
  } catch (e) {
    logger.error('handler threw', { error: e });
  }
}

/** The URL without a password, for logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}
