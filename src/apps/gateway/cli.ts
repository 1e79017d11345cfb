/**
 * `blewire gateway` and `blewire gateway-merge`.
 *
 *   blewire gateway --mqtt mqtt://host:1883 [--config gateway.json] [--id NAME] [--transport hci0]
 *                   [--active] [--min-interval MS] [--max-interval MS] [--homeassistant]
 *                   [--mqtt-version 4|5] [--log-level info]
 *   blewire gateway-merge --mqtt mqtt://host:1883 [--prefix blewire] [--publish]
 *
 * Credentials: BLEWIRE_MQTT_USERNAME with BLEWIRE_MQTT_PASSWORD_FILE (or BLEWIRE_MQTT_PASSWORD), or
 * mqtt.username / mqtt.passwordFile in the config file: never a flag (flags show in `ps`).
 * SIGTERM / SIGINT stop the gateway cleanly: `offline` published, adapter closed; exit code 0.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ArgumentError } from '../../index.js';
import { checkClientKey, readConfigFile, resolveConfig, type PartialConfig } from './config.js';
import { GatewayError } from './errors.js';
import { Gateway } from './gateway.js';
import { errorFields } from './log.js';
import { connectionError, loadMqtt, redact } from './mqtt.js';
import { GatewayMerger } from './merge.js';

const GATEWAY_HELP = `usage: blewire gateway --mqtt mqtt://host:1883 [options]

Scans continuously and publishes every device heard to an MQTT broker:
  <prefix>/<id>/devices/<address>   one JSON document per device (rate limited)
  <prefix>/<id>/status              online / offline (retained; offline is the Last Will)
  <prefix>/<id>/summary             devices, reports/s, messages/s, dropped, controller, uptime
  <prefix>/<id>/command             JSON commands (connect, read, write, subscribe, unsubscribe, disconnect)

options:
  --mqtt URL            broker: mqtt://host:1883, mqtts://host:8883 (env BLEWIRE_MQTT_URL)
  --config FILE         JSON config file (env BLEWIRE_GATEWAY_CONFIG); see the README
  --id NAME             gateway name, one topic level (default: host name; env BLEWIRE_GATEWAY_ID)
  --transport SPEC      controller: hci0, hci:1, unix:/path, tcp:host:port, sim:demo (env BLEWIRE_TRANSPORT)
  --active              active scanning (scan requests; default passive)
  --min-interval MS     at most one document per device per MS when it changes (default 1000)
  --max-interval MS     re-publish an unchanged device after MS (default 60000)
  --homeassistant       publish Home Assistant discovery for decoded sensors
  --mqtt-version 4|5    MQTT 3.1.1 or 5 (default 5)
  --log-level LEVEL     error, warn, info (default), debug
credentials: BLEWIRE_MQTT_USERNAME, BLEWIRE_MQTT_PASSWORD_FILE or BLEWIRE_MQTT_PASSWORD, or the config file;
TLS: mqtt.ca / mqtt.cert / mqtt.key in the config file or BLEWIRE_MQTT_CA / _CERT / _KEY.`;

const MERGE_HELP = `usage: blewire gateway-merge --mqtt mqtt://host:1883 [--prefix blewire] [--publish] [--stale MS]

Subscribes to every gateway's device documents and prints the merged view as JSON Lines, one line
per change: { address, name, nearest, gateways: { <id>: { rssi, lastSeen } } }. The nearest gateway
is the one hearing the device loudest (room presence). --publish also publishes each line, retained,
on <prefix>/merged/<address>.`;

/** A usage mistake (unknown flag, bad value, invalid config): the CLI prints one line and exits 2. */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof GatewayError && e.code !== 'EGW_CONFIG') throw e;
    throw new ArgumentError((e as Error).message, { cause: e });
  }
}

export async function runGateway(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { values } = usage(() => parseArgs({
    args: argv,
    options: {
      mqtt: { type: 'string' }, config: { type: 'string' }, id: { type: 'string' }, transport: { type: 'string' },
      active: { type: 'boolean' }, passive: { type: 'boolean' }, 'min-interval': { type: 'string' }, 'max-interval': { type: 'string' },
      homeassistant: { type: 'boolean' }, 'mqtt-version': { type: 'string' }, 'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }));
  if (values.help) {
    console.log(GATEWAY_HELP);
    return 0;
  }
  const configPath = values.config ?? env['BLEWIRE_GATEWAY_CONFIG'];
  let file: unknown;
  if (configPath) {
    try {
      file = readConfigFile(configPath);
    } catch (e) {
      throw new ArgumentError(`gateway config: cannot read ${configPath}: ${(e as Error).message}`, { cause: e });
    }
  }
  const num = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new ArgumentError(`gateway: --${name} ${JSON.stringify(v)} is not a number`);
    return n;
  };
  const flags: PartialConfig = {};
  if (values.mqtt) flags.mqtt = { url: values.mqtt };
  if (values['mqtt-version']) flags.mqtt = { ...flags.mqtt, protocolVersion: num(values['mqtt-version'], 'mqtt-version') as 4 | 5 };
  if (values.id) flags.id = values.id;
  if (values.transport) flags.transport = values.transport;
  if (values.active) flags.scan = { active: true };
  if (values.passive) flags.scan = { active: false };
  const min = num(values['min-interval'], 'min-interval');
  const max = num(values['max-interval'], 'max-interval');
  if (min !== undefined || max !== undefined) flags.publish = { ...(min !== undefined ? { minIntervalMs: min } : {}), ...(max !== undefined ? { maxIntervalMs: max } : {}) };
  if (values.homeassistant) flags.homeAssistant = { enabled: true };
  if (values['log-level']) flags.logLevel = values['log-level'] as 'info';
  const config = usage(() => resolveConfig({ file, env, flags }));
  const gateway = new Gateway(config, {});
  // The handlers go in before start(): with none installed, a SIGTERM that arrives while the gateway
  // starts (a service manager stopping it early, a loaded machine) takes the kernel's default action
  // and kills the process without `offline` or a clean MQTT disconnect. A signal during start() stops
  // the gateway as soon as start() returns.
  let signalled = false;
  let wake = (): void => { signalled = true; };
  const onSignal = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    wake();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await gateway.start();
  } catch (e) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    throw e;
  }
  await new Promise<void>(resolve => { if (signalled) resolve(); else wake = resolve; });
  await gateway.stop();
  return 0;
}

export async function runMerge(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { values } = usage(() => parseArgs({
    args: argv,
    options: { mqtt: { type: 'string' }, prefix: { type: 'string' }, publish: { type: 'boolean' }, stale: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  }));
  if (values.help) {
    console.log(MERGE_HELP);
    return 0;
  }
  const url = values.mqtt ?? env['BLEWIRE_MQTT_URL'];
  if (!url) throw new ArgumentError('gateway-merge: no broker: give --mqtt mqtt://host:1883 or BLEWIRE_MQTT_URL');
  const prefix = values.prefix ?? 'blewire';
  if (!/^[A-Za-z0-9_.\-/]{1,128}$/.test(prefix) || prefix.startsWith('/') || prefix.endsWith('/')) {
    throw new ArgumentError(`gateway-merge: --prefix ${JSON.stringify(prefix)} must be topic levels without wildcards`);
  }
  const stale = values.stale === undefined ? 60_000 : Number(values.stale);
  if (!Number.isFinite(stale) || stale < 0) throw new ArgumentError(`gateway-merge: --stale ${JSON.stringify(values.stale)} must be a number of ms ≥ 0`);
  const merger = new GatewayMerger(prefix, stale);
  // The same credentials and TLS files as the gateway's (environment only: never flags).
  const file = (name: string): string | undefined => {
    const p = env[name];
    if (!p) return undefined;
    try {
      return readFileSync(p, 'utf8');
    } catch (e) {
      throw new ArgumentError(`gateway-merge: cannot read ${name} ${p}: ${(e as Error).message}`, { cause: e });
    }
  };
  const password = file('BLEWIRE_MQTT_PASSWORD_FILE')?.replace(/\r?\n$/, '') ?? (env['BLEWIRE_MQTT_PASSWORD'] || undefined);
  const ca = file('BLEWIRE_MQTT_CA'), cert = file('BLEWIRE_MQTT_CERT'), key = file('BLEWIRE_MQTT_KEY');
  const passphraseFile = env['BLEWIRE_MQTT_KEY_PASSPHRASE_FILE'];
  const passphrase = file('BLEWIRE_MQTT_KEY_PASSPHRASE_FILE')?.replace(/\r?\n$/, '') ?? (env['BLEWIRE_MQTT_KEY_PASSPHRASE'] || undefined);
  if (key !== undefined) {
    checkClientKey(key, passphrase, `BLEWIRE_MQTT_KEY file ${env['BLEWIRE_MQTT_KEY']}`,
      passphraseFile ? `BLEWIRE_MQTT_KEY_PASSPHRASE_FILE ${passphraseFile}` : 'BLEWIRE_MQTT_KEY_PASSPHRASE', m => new ArgumentError(`gateway-merge: ${m}`));
  }
  const mod = await loadMqtt();
  const client = mod.connect(url, {
    ...(env['BLEWIRE_MQTT_USERNAME'] ? { username: env['BLEWIRE_MQTT_USERNAME'] } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}),
    ...(passphrase !== undefined ? { passphrase } : {}),
    reconnectPeriod: 2000,
  });
  const log = (level: string, msg: string, fields: Record<string, unknown> = {}): void => {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
  };
  client.on('connect', () => {
    client.subscribe([`${prefix}/+/devices/+`, `${prefix}/+/status`], { qos: 0 }, err => {
      if (err) log('warn', 'mqtt subscribe failed', { error: err.message });
      else log('info', 'merging', { url: redact(url), topics: [`${prefix}/+/devices/+`, `${prefix}/+/status`] });
    });
  });
  client.on('error', e => {
    const typed = connectionError(e, url);
    if (typed) log('error', 'mqtt connection refused', { error: errorFields(typed) });
    else log('warn', 'mqtt error', { error: e.message });
  });
  client.on('message', (topic, payload) => {
    const changed = merger.update(topic, payload);
    if (!changed) return;
    const line = JSON.stringify(merger.view(changed));
    process.stdout.write(line + '\n');
    if (values.publish) client.publish(`${prefix}/merged/${changed}`, line, { qos: 0, retain: true });
  });
  await new Promise<void>(resolve => {
    const stop = (): void => { process.off('SIGTERM', stop); process.off('SIGINT', stop); client.end(false, {}, () => resolve()); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
