/**
 * Commands over MQTT. A client publishes a JSON command on `<prefix>/<gateway>/command`:
 *
 *   { "op": "connect" | "read" | "write" | "subscribe" | "unsubscribe" | "disconnect" | "pair" | "unpair",
 *     "address": "AA:BB:CC:DD:EE:FF", "addressType"?: "public" | "random",
 *     "service"?: "180f" | "battery_service" | 128-bit, "characteristic"?: "2a19" | name | 128-bit,
 *     "value"?: hex (write), "withResponse"?: boolean (write, default true), "timeout"?: ms,
 *     "id"?: correlation id (string or number), "responseTopic"?: topic (MQTT 3.1.1 clients) }
 *
 * The answer goes to the MQTT 5 Response Topic with its Correlation Data echoed; an MQTT 3.1.1
 * client (no properties) puts `responseTopic` and `id` in the payload instead; without either the
 * answer goes to `<prefix>/<gateway>/response`. Answers: `{ id?, op, ok: true, … }` or
 * `{ id?, op?, ok: false, error: { code, message } }` with a stable code (GatewayError codes, or
 * the stack's: ETIMEDOUT, ENOTFOUND, EATT, EDISCONNECTED, EHCI…).
 *
 * pair: connect if needed, then pair and bond (Just Works: a gateway has no display or keyboard;
 * Core Vol 3, Part H, 2.3.5.1) and answer the link's security state and the peer's identity; the
 * bond lands in the gateway's bond store, and a peer that uses resolvable private addresses is from
 * then on published under its identity address. unpair: forget the bond (the link, if any, stays).
 * A bonded device's identity address may be given wherever an address is.
 *
 * read / write / subscribe connect first when the device is not connected (within the command's
 * deadline). Subscribed values are published on `<prefix>/<gateway>/devices/<address>/<service>/
 * <characteristic>` as `{ "value": hex, "time": ISO }`. Every command has a deadline (its `timeout`,
 * default commands.timeoutMs, at most 120 s); nothing a command carries can crash the gateway.
 */
import { TimeoutError, uuid as toUuid, type Connection, type GattCharacteristic, type Subscription } from '../../index.js';
import { shortName } from './document.js';
import { GatewayError } from './errors.js';

export const OPS = ['connect', 'read', 'write', 'subscribe', 'unsubscribe', 'disconnect', 'pair', 'unpair'] as const;
export type Op = (typeof OPS)[number];
const MAX_TIMEOUT_MS = 120_000;
const MAX_VALUE_BYTES = 512; // an attribute value is at most 512 octets (Vol 3, Part F, 3.2.9)

export interface Command {
  op: Op;
  address: string;
  addressType?: 'public' | 'random';
  service?: string;
  characteristic?: string;
  value?: Uint8Array;
  withResponse?: boolean;
  timeout?: number;
  id?: string | number;
}

export interface Answer {
  id?: string | number;
  op?: string;
  ok: boolean;
  [k: string]: unknown;
}

const ADDRESS = /^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/;

/** Parse and validate one command payload; throws GatewayError (EGW_BAD_JSON, EGW_BAD_COMMAND, EGW_UNKNOWN_OP). */
export function parseCommand(text: string): Command & { responseTopic?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new GatewayError('EGW_BAD_JSON', `command is not JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new GatewayError('EGW_BAD_COMMAND', 'command must be a JSON object');
  const o = raw as Record<string, unknown>;
  const bad = (msg: string): GatewayError => new GatewayError('EGW_BAD_COMMAND', msg);
  if (o['id'] !== undefined && typeof o['id'] !== 'string' && typeof o['id'] !== 'number') throw bad('"id" must be a string or a number');
  if (typeof o['op'] !== 'string') throw bad('"op" must be a string: one of ' + OPS.join(', '));
  if (!(OPS as readonly string[]).includes(o['op'])) throw new GatewayError('EGW_UNKNOWN_OP', `unknown op ${JSON.stringify(o['op'].slice(0, 40))}: one of ${OPS.join(', ')}`);
  const op = o['op'] as Op;
  if (typeof o['address'] !== 'string' || !ADDRESS.test(o['address'])) throw bad('"address" must be a device address AA:BB:CC:DD:EE:FF');
  const cmd: Command & { responseTopic?: string } = { op, address: o['address'].toUpperCase() };
  if (o['id'] !== undefined) cmd.id = typeof o['id'] === 'string' ? o['id'].slice(0, 128) : (o['id'] as number);
  if (o['addressType'] !== undefined) {
    if (o['addressType'] !== 'public' && o['addressType'] !== 'random') throw bad('"addressType" must be "public" or "random"');
    cmd.addressType = o['addressType'];
  }
  if (o['timeout'] !== undefined) {
    const t = o['timeout'];
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > MAX_TIMEOUT_MS) throw bad(`"timeout" must be a number of ms in (0, ${MAX_TIMEOUT_MS}]`);
    cmd.timeout = t;
  }
  if (o['responseTopic'] !== undefined) {
    if (typeof o['responseTopic'] !== 'string' || !validTopic(o['responseTopic'])) throw bad('"responseTopic" must be a topic name without wildcards');
    cmd.responseTopic = o['responseTopic'];
  }
  const needsChar = op === 'read' || op === 'write' || op === 'subscribe' || op === 'unsubscribe';
  if (needsChar) {
    for (const k of ['service', 'characteristic'] as const) {
      const v = o[k];
      if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw bad(`"${k}" must be a UUID ("180f", 128-bit) or a name ("battery_service")`);
      try {
        toUuid(v);
      } catch {
        throw bad(`"${k}" ${JSON.stringify(v)} is not a UUID or a known name`);
      }
      cmd[k] = v;
    }
  }
  if (op === 'write') {
    const v = o['value'];
    if (typeof v !== 'string' || !/^([0-9A-Fa-f]{2})*$/.test(v)) throw bad('"value" must be a hex string (an even number of hex digits)');
    if (v.length / 2 > MAX_VALUE_BYTES) throw bad(`"value" is ${v.length / 2} bytes; an attribute value is at most ${MAX_VALUE_BYTES}`);
    cmd.value = Uint8Array.from(Buffer.from(v, 'hex'));
    if (o['withResponse'] !== undefined) {
      if (typeof o['withResponse'] !== 'boolean') throw bad('"withResponse" must be true or false');
      cmd.withResponse = o['withResponse'];
    }
  }
  return cmd;
}

export function validTopic(t: string): boolean {
  return t.length > 0 && t.length <= 256 && !/[+#\u0000]/.test(t);
}

/** A typed error as an answer's `error` field. */
export function errorAnswer(e: unknown): { code: string; message: string } {
  if (e instanceof Error && typeof (e as { code?: unknown }).code === 'string') return { code: (e as unknown as { code: string }).code, message: e.message };
  return { code: 'EGW_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** What the command runner needs from the gateway (its adapter, devices and MQTT publishing). */
export interface CommandHost {
  /** The address type the scanner saw for a device, or undefined when the gateway never heard it. */
  knownDevice(address: string): 'public' | 'random' | undefined;
  connect(address: string, addressType: 'public' | 'random', options: { timeout: number; signal: AbortSignal }): Promise<Connection>;
  connection(address: string): Connection | undefined;
  /** Forget a device's bond; resolves whether there was one. */
  removeBond(address: string): Promise<boolean>;
  publishValue(address: string, service: string, characteristic: string, value: Uint8Array): void;
  readonly clock: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(id: never): void };
}

export interface CommandLimits {
  timeoutMs: number;
  maxConcurrent: number;
  maxConnections: number;
  maxSubscriptions: number;
}

export class CommandRunner {
  private running = 0;
  readonly subscriptions = new Map<string, Subscription>();
  /** Commands handled, by outcome (for the summary). */
  ok = 0;
  failed = 0;

  constructor(private readonly host: CommandHost, private readonly limits: CommandLimits) {}

  /** Run one parsed command to its answer; never rejects. */
  async run(cmd: Command): Promise<Answer> {
    const head: Answer = { ok: false, op: cmd.op, address: cmd.address };
    if (cmd.id !== undefined) head.id = cmd.id;
    if (this.running >= this.limits.maxConcurrent) {
      this.failed++;
      return { ...head, error: errorAnswer(new GatewayError('EGW_BUSY', `${this.running} commands are running (commands.maxConcurrent); try again`)) };
    }
    this.running++;
    const ms = cmd.timeout ?? this.limits.timeoutMs;
    const ctl = new AbortController();
    const timer = this.host.clock.setTimeout(() => ctl.abort(new TimeoutError(cmd.op === 'connect' ? 'gap' : 'gatt', `command ${cmd.op} ${cmd.address}`, ms)), ms);
    try {
      const result = await Promise.race([
        this.execute(cmd, ctl.signal, ms),
        new Promise<never>((_, reject) => {
          if (ctl.signal.aborted) reject(ctl.signal.reason as Error);
          ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason as Error), { once: true });
        }),
      ]);
      this.ok++;
      return { ...head, ...result, ok: true };
    } catch (e) {
      this.failed++;
      return { ...head, error: errorAnswer(e) };
    } finally {
      this.host.clock.clearTimeout(timer as never);
      this.running--;
    }
  }

  private async ensureConnected(cmd: Command, signal: AbortSignal, ms: number): Promise<Connection> {
    const existing = this.host.connection(cmd.address);
    if (existing?.connected) return existing;
    const type = cmd.addressType ?? this.host.knownDevice(cmd.address);
    if (!type) throw new GatewayError('EGW_UNKNOWN_DEVICE', `device ${cmd.address} has not been heard by this gateway (give "addressType" to connect to it anyway)`);
    return this.host.connect(cmd.address, type, { timeout: ms, signal });
  }

  private async characteristic(cmd: Command, signal: AbortSignal, ms: number): Promise<GattCharacteristic> {
    const conn = await this.ensureConnected(cmd, signal, ms);
    return conn.characteristic(cmd.service!, cmd.characteristic!, { signal });
  }

  private subKey(address: string, ch: GattCharacteristic): string {
    return `${address}/${shortName(ch.service.uuid)}/${shortName(ch.uuid)}`;
  }

  private async execute(cmd: Command, signal: AbortSignal, ms: number): Promise<Record<string, unknown>> {
    switch (cmd.op) {
      case 'connect': {
        const was = this.host.connection(cmd.address)?.connected === true;
        const conn = await this.ensureConnected(cmd, signal, ms);
        return { connected: true, alreadyConnected: was, mtu: conn.mtu };
      }
      case 'disconnect': {
        const conn = this.host.connection(cmd.address);
        if (!conn?.connected) return { connected: false, alreadyDisconnected: true };
        const reason = await conn.disconnect(undefined, { signal });
        return { connected: false, reason };
      }
      case 'read': {
        const ch = await this.characteristic(cmd, signal, ms);
        const value = await ch.read({ signal });
        return { service: shortName(ch.service.uuid), characteristic: shortName(ch.uuid), value: Buffer.from(value).toString('hex') };
      }
      case 'write': {
        const ch = await this.characteristic(cmd, signal, ms);
        const withResponse = cmd.withResponse ?? true;
        await ch.write(cmd.value!, { withResponse, signal });
        return { service: shortName(ch.service.uuid), characteristic: shortName(ch.uuid), withResponse };
      }
      case 'subscribe': {
        const ch = await this.characteristic(cmd, signal, ms);
        const key = this.subKey(cmd.address, ch);
        const service = shortName(ch.service.uuid), characteristic = shortName(ch.uuid);
        if (this.subscriptions.get(key)?.active) return { service, characteristic, alreadySubscribed: true };
        if (this.subscriptions.size >= this.limits.maxSubscriptions) throw new GatewayError('EGW_BUSY', `${this.subscriptions.size} subscriptions are active (commands.maxSubscriptions)`);
        const sub = await ch.subscribe(v => this.host.publishValue(cmd.address, service, characteristic, v), { signal });
        this.subscriptions.set(key, sub);
        return { service, characteristic, subscribed: true };
      }
      case 'pair': {
        const conn = await this.ensureConnected(cmd, signal, ms);
        const security = await conn.pair({ signal });
        const id = conn.identity;
        return { security, ...(id ? { identity: { address: id.address, addressType: id.addressType } } : {}), addressOnAir: conn.address };
      }
      case 'unpair': {
        return { removed: await this.host.removeBond(cmd.address) };
      }
      case 'unsubscribe': {
        const conn = this.host.connection(cmd.address);
        if (!conn?.connected) throw new GatewayError('EGW_NOT_CONNECTED', `device ${cmd.address} is not connected`);
        const ch = await conn.characteristic(cmd.service!, cmd.characteristic!, { signal });
        const key = this.subKey(cmd.address, ch);
        const sub = this.subscriptions.get(key);
        this.subscriptions.delete(key);
        if (!sub) return { service: shortName(ch.service.uuid), characteristic: shortName(ch.uuid), wasSubscribed: false };
        await sub.unsubscribe({ signal });
        return { service: shortName(ch.service.uuid), characteristic: shortName(ch.uuid), wasSubscribed: true };
      }
    }
  }

  /** A link went down: its subscriptions end with it. */
  dropDevice(address: string): void {
    for (const k of [...this.subscriptions.keys()]) if (k.startsWith(address + '/')) this.subscriptions.delete(k);
  }

  get active(): number {
    return this.running;
  }
}
