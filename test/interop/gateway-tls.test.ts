// The gateway over mqtts:// against Debian's mosquitto with a TLS-only listener that requires client
// certificates (require_certificate), every certificate made by openssl at test time (helpers/certs.ts,
// removed afterwards). The gateway verifies the broker's certificate against the CA it is given and
// authenticates with its client certificate; mosquitto_sub (a client we did not write) reads what it
// published over TLS. A wrong CA, a missing client certificate and a client certificate from another CA
// each give a typed error (GatewayError, a BlewireError, code EGW_TLS) whose message says which setting
// to change, logged at error level; the gateway keeps running and stops cleanly. The CLI (`blewire
// gateway`) with a wrong CA in BLEWIRE_MQTT_CA logs the same code on stderr.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BlewireError } from '../../src/index.js';
import { resolveConfig, type PartialConfig } from '../../src/apps/gateway/config.js';
import { GatewayError } from '../../src/apps/gateway/errors.js';
import { Gateway } from '../../src/apps/gateway/gateway.js';
import { jsonLogger } from '../../src/apps/gateway/log.js';
import { createSimulator } from '../../src/sim/index.js';
import type { Scenario } from '../../src/sim/types.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { mosquittoSub, removeDir, startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SENSOR = 'C4:7C:8D:6A:10:01';
const world: Scenario = {
  name: 'tls', seed: 1, controller: { address: '00:1B:DC:5E:10:01' },
  peripherals: [{ address: SENSOR, addressType: 'public', advertising: { intervalMs: 60, rssi: -50, rssiDrift: 0, connectable: false,
    data: { flags: 0x06, name: 'DIY-sensor', serviceData: [[0xfcd2, { hex: '4002C40903BF13' }]] } } }],
};

function gateway(id: string, url: string, env: Record<string, string>): { gateway: Gateway; logs: string[] } {
  const logs: string[] = [];
  const config = resolveConfig({
    env: { BLEWIRE_MQTT_URL: url, ...env },
    flags: { id, transport: 'sim', publish: { minIntervalMs: 200, maxIntervalMs: 1000 }, summaryIntervalMs: 0, backoff: { minMs: 200, maxMs: 1000 } } as PartialConfig,
  });
  const g = new Gateway(config, {
    transport: () => createSimulator(world, { speed: 1 }).transport,
    logger: jsonLogger('debug', l => { logs.push(l); }),
  });
  return { gateway: g, logs };
}

/** `p`, or an error naming `what` after `ms` (a hang shows as what hung, not as the test's timeout). */
async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(t);
  }
}

async function until<T>(what: string, ms: number, fn: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise(r => setTimeout(r, 50));
  }
}

describe('gateway over mqtts:// (mosquitto with a TLS listener that requires client certificates)', () => {
  let pki: TestPki;
  let broker: Mosquitto;

  beforeAll(async () => {
    pki = await makeTestPki();
    broker = await startMosquitto({ tls: { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey, requireCertificate: true }, config: ['log_type all'] });
  }, 60_000);

  afterAll(async () => {
    await broker?.stop();
    if (broker) removeDir(broker.dir);
    if (pki) removeDir(pki.dir);
  });

  test('CA-verified broker certificate and client-certificate authentication: documents read back over TLS by mosquitto_sub', async () => {
    expect(broker.url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const sub = await mosquittoSub(broker.port, ['blewire/gwT/#'], ['--cafile', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey]);
    const { gateway: g, logs } = gateway('gwT', broker.url, { BLEWIRE_MQTT_CA: pki.ca, BLEWIRE_MQTT_CERT: pki.clientCert, BLEWIRE_MQTT_KEY: pki.clientKey });
    try {
      await g.start();
      await sub.waitFor(l => l.topic === 'blewire/gwT/status' && l.payload === 'online', 30_000, 'gwT online over TLS')
        .catch(e => { throw new Error(`${(e as Error).message}; mqtt ${JSON.stringify(g.mqttStats)}; gateway log:\n${logs.slice(-20).join('')}\nbroker log:\n${broker.log().slice(-3000)}`); });
      const doc = JSON.parse((await sub.waitFor(l => l.topic === `blewire/gwT/devices/${SENSOR}`, 30_000, 'the sensor over TLS')
        .catch(e => { throw new Error(`${(e as Error).message}; gateway ${JSON.stringify(g.stats)}; gateway log:\n${logs.slice(-20).join('')}`); })).payload) as Record<string, any>;
      expect(doc).toMatchObject({ gateway: 'gwT', address: SENSOR, name: 'DIY-sensor', decoded: { bthome: { temperature: 25, humidity: 50.55 } } });
      expect(g.mqttStats?.lastError).toBeUndefined();
      expect(logs.some(l => /"level":"error"/.test(l))).toBe(false);
      // The broker saw a TLS client with a certificate from its CA (it refuses any other: require_certificate).
      expect(broker.log()).toMatch(/New client connected from 127\.0\.0\.1:\d+ as blewire-gwT/);
    } finally {
      await bounded(g.stop(), 20_000, 'gateway.stop()');
      await bounded(sub.stop(), 10_000, 'mosquitto_sub stop');
    }
  }, 150_000);

  const refusals: Array<[name: string, env: () => Record<string, string>, says: RegExp]> = [
    ['a wrong CA (the broker certificate is not trusted)', () => ({ BLEWIRE_MQTT_CA: pki.otherCa, BLEWIRE_MQTT_CERT: pki.clientCert, BLEWIRE_MQTT_KEY: pki.clientKey }),
      /not trusted .*set mqtt\.ca \(BLEWIRE_MQTT_CA\) to the PEM file of the CA that signed the broker's certificate/],
    ['no client certificate (the broker requires one)', () => ({ BLEWIRE_MQTT_CA: pki.ca }),
      /refused the TLS handshake .*set mqtt\.cert and mqtt\.key/],
    ['a client certificate from a CA the broker does not trust', () => ({ BLEWIRE_MQTT_CA: pki.ca, BLEWIRE_MQTT_CERT: pki.strangerCert, BLEWIRE_MQTT_KEY: pki.strangerKey }),
      /refused the TLS handshake .*set mqtt\.cert and mqtt\.key/],
  ];
  test.each(refusals)('%s: a typed EGW_TLS error that says what to change, logged at error level; the gateway keeps trying and stops cleanly', async (_name, env, says) => {
    const { gateway: g, logs } = gateway('gwX', broker.url, env());
    try {
      await g.start();
      const err = await until('typed MQTT error', 20_000, () => g.mqttStats?.lastError);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toBeInstanceOf(BlewireError);
      expect(err.code).toBe('EGW_TLS');
      expect(err.message.startsWith(`mqtts://127.0.0.1:${broker.port}: `)).toBe(true);
      expect(err.message).toMatch(says);
      expect(g.mqttStats?.connected).toBe(false);
      const line = await until('error log line', 5000, () => logs.find(l => /"level":"error"/.test(l)));
      expect(JSON.parse(line)).toMatchObject({ level: 'error', msg: 'mqtt connection refused', error: { name: 'GatewayError', code: 'EGW_TLS' } });
      // It keeps trying with backoff (another attempt, the same answer), and never connects.
      await until('a second attempt', 15_000, () => (logs.filter(l => /"level":"error"/.test(l)).length >= 2 ? true : undefined));
      expect(g.mqttStats?.connects).toBe(0);
      expect(broker.log()).not.toMatch(/as blewire-gwX/);
    } finally {
      await bounded(g.stop(), 20_000, 'gateway.stop()');
    }
  }, 90_000);

  test('a broker certificate issued for another name (hostname mismatch): EGW_TLS saying to connect by a name the certificate lists; mosquitto_sub agrees', async () => {
    // Same CA, client certificate accepted: only the name differs (DNS:broker.elsewhere.test, and we connect to 127.0.0.1).
    const other = await startMosquitto({ tls: { ca: pki.ca, cert: pki.elsewhereCert, key: pki.elsewhereKey, requireCertificate: true }, config: ['log_type all'] });
    const { gateway: g, logs } = gateway('gwH', other.url, { BLEWIRE_MQTT_CA: pki.ca, BLEWIRE_MQTT_CERT: pki.clientCert, BLEWIRE_MQTT_KEY: pki.clientKey });
    try {
      await g.start();
      const err = await until('typed MQTT error', 20_000, () => g.mqttStats?.lastError);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err.code).toBe('EGW_TLS');
      expect(err.message.startsWith(`mqtts://127.0.0.1:${other.port}: `)).toBe(true);
      expect(err.message).toMatch(/does not name the host in the URL \(ERR_TLS_CERT_ALTNAME_INVALID: .*127\.0\.0\.1.*\): connect by a name \(or IP address\) the certificate lists in its subjectAltName, or reissue the certificate/);
      const line = await until('error log line', 5000, () => logs.find(l => /"level":"error"/.test(l)));
      expect(JSON.parse(line)).toMatchObject({ level: 'error', msg: 'mqtt connection refused', error: { name: 'GatewayError', code: 'EGW_TLS' } });
      await until('a second attempt', 15_000, () => (logs.filter(l => /"level":"error"/.test(l)).length >= 2 ? true : undefined));
      expect(g.mqttStats?.connects).toBe(0);
      expect(other.log()).not.toMatch(/as blewire-gwH/);
    } finally {
      await bounded(g.stop(), 20_000, 'gateway.stop()');
    }
    // An independent client: mosquitto_sub with the same CA and client certificate refuses the broker by
    // name, and with --insecure (no host-name check) it is let in: the name is the only problem.
    const sub = (extra: string[]) => new Promise<{ code: number | null; err: string }>(resolve => {
      const p = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(other.port), '--cafile', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey,
        '-t', 'x/#', '-C', '1', '-W', '3', '-i', 'hostname-check', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
      p.once('exit', code => resolve({ code, err }));
    });
    try {
      const strict = await sub([]);
      expect(strict.code).not.toBe(0);
      expect(other.log()).not.toMatch(/as hostname-check/);
      const lax = await sub(['--insecure']);
      // -W 3 ends it after 3 s without a message (exit 27 in mosquitto 2.0): it was connected meanwhile.
      expect(other.log()).toMatch(/New client connected from 127\.0\.0\.1:\d+ as hostname-check/);
      expect(lax.err).not.toMatch(/TLS|certificate/i);
    } finally {
      await other.stop();
      removeDir(other.dir);
    }
  }, 90_000);

  test('an encrypted (passphrase-protected) client key with its passphrase from a file: the broker that requires a client certificate lets the gateway in', async () => {
    expect(readFileSync(pki.clientKeyEncrypted, 'utf8')).toMatch(/-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    const sub = await mosquittoSub(broker.port, ['blewire/gwE/#'], ['--cafile', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey]);
    const { gateway: g, logs } = gateway('gwE', broker.url, { BLEWIRE_MQTT_CA: pki.ca, BLEWIRE_MQTT_CERT: pki.clientCert, BLEWIRE_MQTT_KEY: pki.clientKeyEncrypted,
      BLEWIRE_MQTT_KEY_PASSPHRASE_FILE: pki.passphraseFile });
    try {
      await g.start();
      await sub.waitFor(l => l.topic === 'blewire/gwE/status' && l.payload === 'online', 30_000, 'gwE online over TLS with the encrypted key')
        .catch(e => { throw new Error(`${(e as Error).message}; mqtt ${JSON.stringify(g.mqttStats)}; gateway log:\n${logs.slice(-20).join('')}`); });
      await sub.waitFor(l => l.topic === `blewire/gwE/devices/${SENSOR}`, 30_000, 'the sensor over TLS');
      expect(broker.log()).toMatch(/New client connected from 127\.0\.0\.1:\d+ as blewire-gwE/);
      expect(g.mqttStats?.lastError).toBeUndefined();
      // The passphrase is in no log line.
      expect(logs.join('')).not.toContain(pki.passphrase);
    } finally {
      await bounded(g.stop(), 20_000, 'gateway.stop()');
      await bounded(sub.stop(), 10_000, 'mosquitto_sub stop');
    }
  }, 150_000);

  test('blewire gateway (the CLI) with an encrypted key: passphrase from BLEWIRE_MQTT_KEY_PASSPHRASE_FILE connects, never in ps or the logs; none or a wrong one is a config error at start', async () => {
    const sub = await mosquittoSub(broker.port, ['blewire/gwP/status'], ['--cafile', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey]);
    const env = { ...process.env, BLEWIRE_MQTT_CA: pki.ca, BLEWIRE_MQTT_CERT: pki.clientCert, BLEWIRE_MQTT_KEY: pki.clientKeyEncrypted };
    const args = [`${REPO}/src/cli/bin.mjs`, 'gateway', '--mqtt', broker.url, '--transport', 'sim:demo', '--id', 'gwP'];
    const p = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, BLEWIRE_MQTT_KEY_PASSPHRASE_FILE: pki.passphraseFile } });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    try {
      await sub.waitFor(l => l.payload === 'online', 60_000, 'gwP online').catch(e => { throw new Error(`${(e as Error).message}; stderr:\n${err.slice(-3000)}`); });
      // What `ps` shows of the process (its command line) holds no secret.
      const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
      expect(cmdline).toContain('gwP');
      expect(cmdline).not.toContain(pki.passphrase);
      p.kill('SIGTERM');
      const [code] = await once(p, 'exit') as [number | null];
      expect(code).toBe(0);
      expect(err).not.toContain(pki.passphrase);
      expect(err).not.toMatch(/"level":"error"/);
    } finally {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await bounded(sub.stop(), 10_000, 'mosquitto_sub stop');
    }
    // No passphrase, then a wrong one: refused before any connection, exit code not 0, the setting named.
    const wrong = join(pki.dir, 'wrong.pass');
    writeFileSync(wrong, 'not-the-passphrase\n', { mode: 0o600 });
    for (const [extra, says] of [[{}, /is encrypted: give its passphrase in a file \(mqtt\.keyPassphraseFile, BLEWIRE_MQTT_KEY_PASSPHRASE_FILE\)/],
      [{ BLEWIRE_MQTT_KEY_PASSPHRASE_FILE: wrong }, /cannot be decrypted with the passphrase from mqtt\.keyPassphraseFile .*wrong\.pass/]] as const) {
      const q = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, ...extra } });
      let out = '';
      q.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
      const code = await bounded(once(q, 'exit').then(([c]) => c as number | null), 60_000, 'the CLI refusing the key');
      expect(code).not.toBe(0);
      // The CLI prints a configuration error (GatewayError EGW_CONFIG) as a usage error: one line, no stack.
      expect(out).toMatch(/^blewire gateway: gateway config: /);
      expect(out).toMatch(says);
      expect(out).not.toContain(pki.passphrase);
    }
    expect(broker.log()).not.toMatch(/as blewire-gwP[\s\S]*as blewire-gwP/);
  }, 150_000);

  test('blewire gateway (the CLI) with a wrong CA in BLEWIRE_MQTT_CA: EGW_TLS on stderr, SIGTERM exits 0', async () => {
    const p = spawn(process.execPath, [`${REPO}/src/cli/bin.mjs`, 'gateway', '--mqtt', broker.url, '--transport', 'sim:demo', '--id', 'gwC'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BLEWIRE_MQTT_CA: pki.otherCa, BLEWIRE_MQTT_CERT: pki.clientCert, BLEWIRE_MQTT_KEY: pki.clientKey } });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    try {
      const line = await until('EGW_TLS on stderr', 60_000, () => err.split('\n').find(l => l.includes('EGW_TLS')));
      const rec = JSON.parse(line) as { level: string; error: { code: string; message: string } };
      expect(rec.level).toBe('error');
      expect(rec.error.code).toBe('EGW_TLS');
      expect(rec.error.message).toMatch(/BLEWIRE_MQTT_CA/);
      p.kill('SIGTERM');
      const [code] = await once(p, 'exit') as [number | null];
      expect(code).toBe(0);
    } finally {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
  }, 90_000);
});
