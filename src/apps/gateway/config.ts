/**
 * Gateway configuration: defaults < config file (JSON) < environment (BLEWIRE_*) < command-line flags.
 * Credentials never have to be on the command line (where `ps` shows them): the MQTT password comes
 * from `mqtt.passwordFile`, BLEWIRE_MQTT_PASSWORD_FILE or BLEWIRE_MQTT_PASSWORD (or the config file,
 * which can be readable by the service user only). TLS (mqtts://) takes CA, client certificate and key
 * files. Every bound the gateway keeps is here, with its default.
 */
import { createPrivateKey } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { hostname } from 'node:os';
import { DEFAULT_BUFFER_BYTES, DEFAULT_BUFFER_MESSAGES } from './buffer.js';
import { GatewayError } from './errors.js';
import type { LogLevel } from './log.js';

export interface MqttSettings {
  /** mqtt://host:1883, mqtts://host:8883, ws://, wss:// */
  url: string;
  username?: string;
  password?: string;
  /** A file holding the password (trailing newline ignored). */
  passwordFile?: string;
  /** PEM files for mqtts://: the broker's CA, our client certificate and key. */
  ca?: string;
  cert?: string;
  key?: string;
  /**
   * The passphrase of an encrypted `key` (PKCS #8 `ENCRYPTED PRIVATE KEY`, or a traditional PEM key
   * with `Proc-Type: 4,ENCRYPTED`): from a file (`keyPassphraseFile`, BLEWIRE_MQTT_KEY_PASSPHRASE_FILE;
   * trailing newline ignored; e.g. a systemd credential, `$CREDENTIALS_DIRECTORY/…`) or the
   * environment (BLEWIRE_MQTT_KEY_PASSPHRASE). Never a flag, never logged.
   */
  keyPassphraseFile?: string;
  keyPassphrase?: string;
  /** Verify the broker's certificate (default true). */
  rejectUnauthorized: boolean;
  /** 5 (default; response topic and correlation data) or 4 (MQTT 3.1.1). */
  protocolVersion: 4 | 5;
  /** Default `blewire-<gateway id>`. */
  clientId?: string;
  /** Keep-alive in seconds (default 30). */
  keepalive: number;
  /** QoS of device documents (default 1: the broker acknowledges, so a broker restart loses nothing in flight). */
  qos: 0 | 1;
}

export interface GatewayConfig {
  /** Gateway name, one topic level: letters, digits, '-', '_', '.' (default: the host name). */
  id: string;
  mqtt: MqttSettings;
  /** Controller: 'hci0', 'hci:1', 'unix:/path', 'sim:demo', … (default BLEWIRE_TRANSPORT, else 'hci0'). */
  transport: string;
  /** First topic level (default 'blewire'). */
  topicPrefix: string;
  /**
   * Scan: passive by default (no scan requests, no scan responses); active sends SCAN_REQs.
   * `registryCapacity`: devices the adapter's scanner remembers (default 1024; the Adapter's own
   * default is 4096). The gateway keeps its own table of up to maxDevices; the scanner's registry only
   * merges a scan response with its advertisement and caches each device's parsed AD, at about 1.2 KB
   * of heap per entry. A device it has forgotten costs one parse of its AD when heard again: in a room of
   * more devices than this the parse is per report (it already was with 4096 in a room of 10 000).
   */
  scan: { active: boolean; interval?: number; window?: number; registryCapacity: number };
  publish: {
    /** Shortest time between two documents of one device (ms, default 1000). */
    minIntervalMs: number;
    /** Publish an unchanged device again after this long (ms, default 60 000). */
    maxIntervalMs: number;
    /** Retain device documents on the broker (default false). */
    retain: boolean;
  };
  /** Period of the gateway summary (ms, default 30 000; 0 = none). */
  summaryIntervalMs: number;
  /** Devices tracked at once; the least recently heard is forgotten beyond it (default 10 000). */
  maxDevices: number;
  /** Forget a device not heard for this long (ms, default 300 000). */
  deviceTtlMs: number;
  /** Outgoing buffer while the broker is away: oldest dropped beyond either bound. */
  buffer: { maxMessages: number; maxBytes: number };
  commands: {
    enabled: boolean;
    /** Default deadline of one command (ms, default 10 000). */
    timeoutMs: number;
    /** Largest command payload accepted (bytes, default 16 384). */
    maxPayload: number;
    /** Commands running at once (default 16). */
    maxConcurrent: number;
    /** Links the gateway keeps open at once (default 4). */
    maxConnections: number;
    /** Subscriptions (forwarded characteristics) at once (default 32). */
    maxSubscriptions: number;
  };
  /** BTHome encryption keys by device address (32 hex digits each). */
  keys: Record<string, string>;
  /**
   * Where bonds (made by the `pair` command) are kept: a directory for the adapter's file store
   * (0700, one 0600 file per bond), or false for memory only. Default: the adapter's default directory
   * ($XDG_STATE_HOME/blewire/bonds, else ~/.local/state/blewire/bonds). Bonded peers that use
   * resolvable private addresses are published under their identity address (their IRK resolves them).
   */
  bonds?: string | false;
  homeAssistant: { enabled: boolean; discoveryPrefix: string };
  /** Reconnect / reopen backoff (ms): doubles from min to max, with ±20 % jitter. */
  backoff: { minMs: number; maxMs: number };
  logLevel: LogLevel;
}

export const DEFAULTS: Omit<GatewayConfig, 'id' | 'mqtt' | 'transport'> & { mqtt: Omit<MqttSettings, 'url'> } = {
  mqtt: { rejectUnauthorized: true, protocolVersion: 5, keepalive: 30, qos: 1 },
  topicPrefix: 'blewire',
  scan: { active: false, registryCapacity: 1024 },
  publish: { minIntervalMs: 1000, maxIntervalMs: 60_000, retain: false },
  summaryIntervalMs: 30_000,
  maxDevices: 10_000,
  deviceTtlMs: 300_000,
  buffer: { maxMessages: DEFAULT_BUFFER_MESSAGES, maxBytes: DEFAULT_BUFFER_BYTES },
  commands: { enabled: true, timeoutMs: 10_000, maxPayload: 16_384, maxConcurrent: 16, maxConnections: 4, maxSubscriptions: 32 },
  keys: {},
  homeAssistant: { enabled: false, discoveryPrefix: 'homeassistant' },
  backoff: { minMs: 1000, maxMs: 30_000 },
  logLevel: 'info',
};

/** A partial config as a file, the environment or flags give it. */
export type PartialConfig = {
  [K in keyof GatewayConfig]?: GatewayConfig[K] extends object ? Partial<GatewayConfig[K]> : GatewayConfig[K];
};

const bad = (msg: string): GatewayError => new GatewayError('EGW_CONFIG', `gateway config: ${msg}`);

/**
 * The largest gateway config file read (octets). A config is a few hundred octets; `keys` for a few
 * thousand devices stays far below this. A larger file, or one that is not a regular file (a FIFO, a
 * device: `readFileSync` would block or never end), is refused before its content is read.
 */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/**
 * Read and parse the JSON config file at `path`: its parsed value (resolveConfig checks the shape), or
 * GatewayError EGW_CONFIG saying why it cannot be used (missing, not a regular file, too large, not
 * UTF-8 JSON). Synchronous: it runs once at start-up, before anything else.
 */
export function readConfigFile(path: string): unknown {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw bad(`cannot read the config file ${path}: ${(e as Error).message}`);
  }
  let bytes: Uint8Array;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw bad(`the config file ${path} is not a regular file`);
    if (st.size > MAX_CONFIG_FILE_BYTES) throw bad(`the config file ${path} is ${st.size} octets, more than the ${MAX_CONFIG_FILE_BYTES} allowed`);
    // The buffer starts at the size fstat gave (+1 to see growth), not at the cap: a 300-octet config
    // must not cost a 1 MiB allocation. It grows (to at most the cap + 1) if the file grows meanwhile.
    let buf = new Uint8Array(st.size + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        const bigger = new Uint8Array(Math.min(MAX_CONFIG_FILE_BYTES + 1, buf.length * 2));
        bigger.set(buf);
        buf = bigger;
      }
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
      if (n > MAX_CONFIG_FILE_BYTES) throw bad(`the config file ${path} grew beyond ${MAX_CONFIG_FILE_BYTES} octets while being read`);
    }
    bytes = buf.subarray(0, n);
  } catch (e) {
    if (e instanceof GatewayError) throw e;
    throw bad(`cannot read the config file ${path}: ${(e as Error).message}`);
  } finally {
    closeSync(fd);
  }
  return parseConfigFile(bytes, path);
}

/** The config file's content (read from `path`): its parsed value, or GatewayError EGW_CONFIG if it is not UTF-8 JSON. */
export function parseConfigFile(bytes: Uint8Array, path: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw bad(`the config file ${path} is not UTF-8 JSON: ${(e as Error).message}`);
  }
}

/** Keys a JSON file may not set on the merged config: they would reach its prototype. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function deepMerge<T extends Record<string, unknown>>(base: T, over: Record<string, unknown> | undefined): T {
  if (!over) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined || UNSAFE_KEYS.has(k)) continue;
    const b = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
      ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out as T;
}

/** The environment's part: BLEWIRE_GATEWAY_ID, BLEWIRE_MQTT_URL, BLEWIRE_MQTT_USERNAME, … (README lists them). */
export function configFromEnv(env: Record<string, string | undefined>): PartialConfig {
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw bad(`${name}=${JSON.stringify(v)} is not a number`);
    return n;
  };
  const bool = (name: string): boolean | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off)$/i.test(v)) return false;
    throw bad(`${name}=${JSON.stringify(v)} is not a boolean (true/false)`);
  };
  const mqtt: Partial<MqttSettings> = {
    url: env['BLEWIRE_MQTT_URL'] || undefined,
    username: env['BLEWIRE_MQTT_USERNAME'] || undefined,
    password: env['BLEWIRE_MQTT_PASSWORD'] || undefined,
    passwordFile: env['BLEWIRE_MQTT_PASSWORD_FILE'] || undefined,
    ca: env['BLEWIRE_MQTT_CA'] || undefined,
    cert: env['BLEWIRE_MQTT_CERT'] || undefined,
    key: env['BLEWIRE_MQTT_KEY'] || undefined,
    keyPassphrase: env['BLEWIRE_MQTT_KEY_PASSPHRASE'] || undefined,
    keyPassphraseFile: env['BLEWIRE_MQTT_KEY_PASSPHRASE_FILE'] || undefined,
    clientId: env['BLEWIRE_MQTT_CLIENT_ID'] || undefined,
  };
  const pv = num('BLEWIRE_MQTT_PROTOCOL_VERSION');
  if (pv !== undefined) mqtt.protocolVersion = pv as 4 | 5;
  const out: PartialConfig = { mqtt };
  if (env['BLEWIRE_GATEWAY_ID']) out.id = env['BLEWIRE_GATEWAY_ID'];
  if (env['BLEWIRE_TRANSPORT']) out.transport = env['BLEWIRE_TRANSPORT'];
  if (env['BLEWIRE_GATEWAY_TOPIC_PREFIX']) out.topicPrefix = env['BLEWIRE_GATEWAY_TOPIC_PREFIX'];
  const active = bool('BLEWIRE_GATEWAY_ACTIVE');
  if (active !== undefined) out.scan = { active };
  const ha = bool('BLEWIRE_GATEWAY_HOMEASSISTANT');
  if (ha !== undefined) out.homeAssistant = { enabled: ha };
  const min = num('BLEWIRE_GATEWAY_MIN_INTERVAL_MS');
  const max = num('BLEWIRE_GATEWAY_MAX_INTERVAL_MS');
  if (min !== undefined || max !== undefined) out.publish = { ...(min !== undefined ? { minIntervalMs: min } : {}), ...(max !== undefined ? { maxIntervalMs: max } : {}) };
  if (env['BLEWIRE_GATEWAY_BONDS']) out.bonds = env['BLEWIRE_GATEWAY_BONDS'];
  if (env['BLEWIRE_GATEWAY_LOG_LEVEL']) out.logLevel = env['BLEWIRE_GATEWAY_LOG_LEVEL'] as LogLevel;
  return out;
}

export interface ConfigSources {
  /** Parsed JSON of the config file. */
  file?: unknown;
  env?: Record<string, string | undefined>;
  /** From the command line (never credentials). */
  flags?: PartialConfig;
  /** Reads files (passwordFile, TLS files): injected for tests. */
  readText?: (path: string) => string;
  defaultId?: string;
}

export interface ResolvedConfig extends GatewayConfig {
  /** TLS material read from the files named in mqtt.ca / cert / key, and the key's passphrase. */
  tls: { ca?: string; cert?: string; key?: string; passphrase?: string };
}

const ID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * A value from the config file as an error message shows it: at most 80 characters, and never a
 * throw of its own (JSON.stringify overflows the stack on a deeply nested value; String() throws on
 * an object whose toString is not a function).
 */
function show(v: unknown): string {
  try {
    const t = JSON.stringify(v);
    if (t === undefined) return typeof v;
    return t.length > 80 ? `${t.slice(0, 80)}…` : t;
  } catch {
    return Array.isArray(v) ? 'a deeply nested list' : typeof v;
  }
}

/** Merge the sources, read the credential files and validate everything; throws GatewayError EGW_CONFIG. */
export function resolveConfig(src: ConfigSources): ResolvedConfig {
  const read = src.readText ?? ((p: string) => readFileSync(p, 'utf8'));
  if (src.file !== undefined && (typeof src.file !== 'object' || src.file === null || Array.isArray(src.file))) {
    throw bad('the config file must hold a JSON object');
  }
  // A section the defaults hold as an object (mqtt, publish, buffer, …) must be one in the file too:
  // null or a number there would replace it and every check below would read a property of it.
  for (const [k, d] of Object.entries(DEFAULTS)) {
    const v = (src.file as Record<string, unknown> | undefined)?.[k];
    if (v !== undefined && d !== null && typeof d === 'object' && !Array.isArray(d) && (typeof v !== 'object' || v === null || Array.isArray(v))) {
      throw bad(`${k} must be an object, not ${show(v)}`);
    }
  }
  const fileMqtt = (src.file as Record<string, unknown> | undefined)?.['mqtt'];
  if (fileMqtt !== undefined && (typeof fileMqtt !== 'object' || fileMqtt === null || Array.isArray(fileMqtt))) throw bad(`mqtt must be an object, not ${show(fileMqtt)}`);
  const env = src.env ? configFromEnv(src.env) : {};
  let merged = deepMerge(DEFAULTS as unknown as Record<string, unknown>, src.file as Record<string, unknown> | undefined);
  merged = deepMerge(merged, env as Record<string, unknown>);
  merged = deepMerge(merged, src.flags as Record<string, unknown> | undefined);
  const c = merged as unknown as GatewayConfig;
  c.id ??= (src.defaultId ?? hostname()).replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'gateway';
  c.transport ??= 'hci0';

  if (typeof c.id !== 'string' || !ID.test(c.id)) throw bad(`id ${show(c.id)} must be 1-64 letters, digits, '-', '_' or '.' (one MQTT topic level)`);
  if (typeof c.topicPrefix !== 'string' || !/^[A-Za-z0-9_.\-/]{1,128}$/.test(c.topicPrefix) || c.topicPrefix.startsWith('/') || c.topicPrefix.endsWith('/')) {
    throw bad(`topicPrefix ${show(c.topicPrefix)} must be topic levels without wildcards`);
  }
  if (!c.mqtt || typeof c.mqtt.url !== 'string' || c.mqtt.url === '') throw bad('no broker: give --mqtt mqtt://host:1883, BLEWIRE_MQTT_URL or "mqtt": { "url": … } in the config file');
  let url: URL;
  try {
    url = new URL(c.mqtt.url);
  } catch {
    throw bad(`mqtt url ${show(c.mqtt.url)} is not a URL (mqtt://host:1883)`);
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:', 'tls:'].includes(url.protocol)) throw bad(`mqtt url scheme ${url.protocol} is not one of mqtt:, mqtts:, ws:, wss:`);
  if (c.mqtt.protocolVersion !== 4 && c.mqtt.protocolVersion !== 5) throw bad(`mqtt.protocolVersion must be 4 (3.1.1) or 5, not ${show(c.mqtt.protocolVersion)}`);
  if (c.mqtt.qos !== 0 && c.mqtt.qos !== 1) throw bad('mqtt.qos must be 0 or 1');
  const positive = (v: unknown, name: string, min = 1): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw bad(`${name} must be a number ≥ ${min}, not ${show(v)}`);
  };
  positive(c.mqtt.keepalive, 'mqtt.keepalive', 0);
  positive(c.publish.minIntervalMs, 'publish.minIntervalMs', 0);
  positive(c.publish.maxIntervalMs, 'publish.maxIntervalMs', 0);
  positive(c.summaryIntervalMs, 'summaryIntervalMs', 0);
  positive(c.maxDevices, 'maxDevices');
  positive(c.scan.registryCapacity, 'scan.registryCapacity', 16);
  if (!Number.isInteger(c.scan.registryCapacity) || c.scan.registryCapacity > 1 << 20) throw bad(`scan.registryCapacity must be a whole number from 16 to ${1 << 20}, not ${show(c.scan.registryCapacity)}`);
  positive(c.deviceTtlMs, 'deviceTtlMs');
  positive(c.buffer.maxMessages, 'buffer.maxMessages');
  positive(c.buffer.maxBytes, 'buffer.maxBytes', 1024);
  positive(c.commands.timeoutMs, 'commands.timeoutMs');
  positive(c.commands.maxPayload, 'commands.maxPayload', 64);
  positive(c.commands.maxConcurrent, 'commands.maxConcurrent');
  positive(c.commands.maxConnections, 'commands.maxConnections', 0);
  positive(c.commands.maxSubscriptions, 'commands.maxSubscriptions', 0);
  positive(c.backoff.minMs, 'backoff.minMs');
  positive(c.backoff.maxMs, 'backoff.maxMs', c.backoff.minMs);
  if (!['error', 'warn', 'info', 'debug'].includes(c.logLevel)) throw bad(`logLevel must be error, warn, info or debug, not ${show(c.logLevel)}`);
  if (typeof c.keys !== 'object' || c.keys === null) throw bad('keys must be an object { "AA:BB:…": "32 hex digits" }');
  const keys: Record<string, string> = {};
  for (const [addr, key] of Object.entries(c.keys)) {
    if (!/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/.test(addr)) throw bad(`keys: ${show(addr)} is not a device address AA:BB:CC:DD:EE:FF`);
    if (typeof key !== 'string' || !/^[0-9A-Fa-f]{32}$/.test(key)) throw bad(`keys[${addr}] must be 32 hex digits (a 16-byte key)`);
    keys[addr.toUpperCase()] = key.toLowerCase();
  }
  c.keys = keys;
  if (c.bonds !== undefined && c.bonds !== false && (typeof c.bonds !== 'string' || c.bonds === '')) {
    throw bad('bonds must be a directory path, or false to keep bonds in memory only');
  }

  // Credentials: the URL may carry them, but a file or the environment is the way that stays out of `ps`.
  if (url.username && !c.mqtt.username) c.mqtt.username = decodeURIComponent(url.username);
  if (url.password && !c.mqtt.password) c.mqtt.password = decodeURIComponent(url.password);
  if (c.mqtt.passwordFile) {
    try {
      c.mqtt.password = read(c.mqtt.passwordFile).replace(/\r?\n$/, '');
    } catch (e) {
      throw bad(`cannot read the MQTT password file ${c.mqtt.passwordFile}: ${(e as Error).message}`);
    }
  }
  const tls: ResolvedConfig['tls'] = {};
  for (const k of ['ca', 'cert', 'key'] as const) {
    const p = c.mqtt[k];
    if (!p) continue;
    try {
      tls[k] = read(p);
    } catch (e) {
      throw bad(`cannot read mqtt.${k} file ${p}: ${(e as Error).message}`);
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw bad('a client certificate needs both mqtt.cert and mqtt.key');
  let passphrase = c.mqtt.keyPassphrase;
  let from = 'BLEWIRE_MQTT_KEY_PASSPHRASE';
  if (c.mqtt.keyPassphraseFile) {
    from = `mqtt.keyPassphraseFile ${c.mqtt.keyPassphraseFile}`;
    try {
      passphrase = read(c.mqtt.keyPassphraseFile).replace(/\r?\n$/, '');
    } catch (e) {
      throw bad(`cannot read the key passphrase file ${c.mqtt.keyPassphraseFile}: ${(e as Error).message}`);
    }
  }
  if (tls.key !== undefined) {
    checkClientKey(tls.key, passphrase, `mqtt.key file ${c.mqtt.key}`, from, m => bad(m));
    if (passphrase !== undefined) tls.passphrase = passphrase;
  }
  // The passphrase lives in tls only: the settings keep no copy of it.
  delete c.mqtt.keyPassphrase;
  return { ...c, tls };
}

/** True for a PEM private key that needs a passphrase (PKCS #8 encrypted, or traditional with Proc-Type 4,ENCRYPTED). */
export function isEncryptedKey(pem: string): boolean {
  return /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(pem) || /^Proc-Type:\s*4,\s*ENCRYPTED/m.test(pem);
}

/**
 * Refuse, before any connection, a client key that cannot be used: an encrypted key without a
 * passphrase (OpenSSL would fail every handshake attempt, or try to prompt on a terminal a daemon does
 * not have), or a passphrase that does not decrypt it. The messages name the key's file and where the
 * passphrase came from, never the passphrase.
 */
export function checkClientKey(key: string, passphrase: string | undefined, what: string, from: string, fail: (msg: string) => Error): void {
  if (!isEncryptedKey(key)) return;
  if (passphrase === undefined) {
    throw fail(`the ${what} is encrypted: give its passphrase in a file (mqtt.keyPassphraseFile, BLEWIRE_MQTT_KEY_PASSPHRASE_FILE) ` +
      'or the environment (BLEWIRE_MQTT_KEY_PASSPHRASE), or use an unencrypted key readable by the service user only');
  }
  try {
    createPrivateKey({ key, format: 'pem', passphrase });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw fail(`the ${what} cannot be decrypted with the passphrase from ${from} (${typeof code === 'string' ? code : 'error'}): ` +
      'check that file (a trailing newline is ignored, other white space is not)');
  }
}

/** Topic names of one gateway. */
export function topicsOf(c: Pick<GatewayConfig, 'topicPrefix' | 'id'>) {
  const base = `${c.topicPrefix}/${c.id}`;
  return {
    base,
    status: `${base}/status`,
    summary: `${base}/summary`,
    devices: `${base}/devices`,
    device: (address: string) => `${base}/devices/${address}`,
    characteristic: (address: string, service: string, characteristic: string) => `${base}/devices/${address}/${service}/${characteristic}`,
    command: `${base}/command`,
    response: `${base}/response`,
  };
}
