/**
 * The MQTT gateway (src/apps/gateway) against a real local Mosquitto, started here on a free port of
 * 127.0.0.1 the way the interop tests start it and stopped by its PID. Three figures (issue 11,
 * "Measured"):
 *
 * 1. ingest: advertising reports per second a gateway takes in from the simulated controller with
 *    publishing on and the default rate limits (1 s on change, 60 s otherwise): 1 000 advertisers
 *    (BTHome, Ruuvi 5, iBeacon, Eddystone, plain), a tenth of them changing their data ~5 times a
 *    second. The simulator runs as fast as it can (virtual time), in the same process, so the figure
 *    is the whole pipeline on one core: simulated air + controller → H4 → HCI decode → scanner →
 *    gateway (table, rate limits, decoders, JSON) → MQTT.js → mosquitto. Given per wall second and per
 *    CPU second of this process (the machine is shared; the CPU figure is the steadier one).
 * 2. messages: MQTT messages per second delivered to mosquitto (QoS 1, PUBACK received) through the
 *    gateway's own publishing path (MqttLink: bounded buffer, at most MAX_INFLIGHT in flight), with
 *    real device documents as payloads; a `mosquitto_sub` in its own process counts what the broker
 *    forwarded, so "delivered" is checked by a client we did not write.
 * 3. memory: RSS of a fresh process (`--rss-child`) running a gateway that tracks 10 000 distinct
 *    devices (fed as LE Advertising Report events through a raw H4 transport, every one published to
 *    mosquitto), after a full GC; the same process's RSS before the devices is printed too.
 *
 * Figures only, never pass/fail (ARCHITECTURE "Test tiers"). Targets: ≥ 100 k reports/s, ≥ 20 k
 * messages/s, < 80 MB RSS.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type PartialConfig } from '../../src/apps/gateway/config.js';
import { Gateway } from '../../src/apps/gateway/gateway.js';
import { buildDocument } from '../../src/apps/gateway/document.js';
import { decodeAll } from '../../src/apps/gateway/decoders/index.js';
import { jsonLogger } from '../../src/apps/gateway/log.js';
import { loadMqtt, MqttLink } from '../../src/apps/gateway/mqtt.js';
import { Adapter } from '../../src/api/adapter.js';
import type { HciTransport } from '../../src/transport/types.js';
import { createSimulator, type Simulator } from '../../src/sim/index.js';
import type { Scenario, SimPeripheral } from '../../src/sim/types.js';
import { removeDir, startMosquitto, type Mosquitto } from '../../test/interop/helpers/mosquitto.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const hex = (s: string) => ({ hex: s.replace(/\s+/g, '') });
const quiet = jsonLogger('error', () => undefined);
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const k = (n: number) => `${(n / 1000).toFixed(1)} k`;
/** CPU ms a process used so far (/proc/<pid>/stat utime + stime, in clock ticks of 10 ms). */
const procCpuMs = (pid: number | undefined): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * 10;
  } catch {
    return NaN;
  }
};

// ---- advertisers ---------------------------------------------------------------------------------

const addr = (i: number, top = 0xc4) => [top, 0x7c, 0x8d, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff]
  .map(b => b.toString(16).padStart(2, '0').toUpperCase()).join(':');

/** One advertiser of each kind in turn, with the formats' own example payloads. */
function advertiser(i: number): SimPeripheral {
  const kind = i % 5;
  const data =
    kind === 0 ? { flags: 0x06, name: `bt-${i}`, serviceData: [[0xfcd2, hex('4002C40903BF13')]] as [number, { hex: string }][] } // BTHome v2
    : kind === 1 ? { flags: 0x06, manufacturerData: [[0x0499, hex('0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F')]] as [number, { hex: string }][] } // Ruuvi 5
    : kind === 2 ? { flags: 0x06, manufacturerData: [[0x004c, hex('0215 E2C56DB5DFFB48D2B060D0F5A71096E0 0001 0002 C5')]] as [number, { hex: string }][] } // iBeacon
    : kind === 3 ? { flags: 0x06, serviceUuids: [0xfeaa], serviceData: [[0xfeaa, hex('10EE03676F6F2E676C2F417131387A46')]] as [number, { hex: string }][] } // Eddystone-URL
    : { flags: 0x06, name: `plain-${i}`, serviceUuids: [0x180f, 0x180a] };
  return { address: addr(i), addressType: 'public', advertising: { intervalMs: 100, rssi: -40 - (i % 50), rssiDrift: 1, connectable: false, data } };
}

// ---- 1. ingest on the simulator ------------------------------------------------------------------

const scenarioOf = (advertisers: number): Scenario =>
  ({ name: 'gateway-bench', seed: 7, peripherals: Array.from({ length: advertisers }, (_, i) => advertiser(i)) });

/**
 * The simulator's advertising report events for `virtualS` seconds of a passive scan with duplicates
 * (what the gateway asks for), as the host receives them (H4 bytes); a tenth of the advertisers (every
 * other BTHome one) change their temperature octet every 200 ms of virtual time.
 */
async function recordReports(advertisers: number, virtualS: number): Promise<Uint8Array[]> {
  const sim = createSimulator(scenarioOf(advertisers));
  const out: Uint8Array[] = [];
  const inner = sim.transport;
  const tee: HciTransport = {
    description: 'tee', clock: inner.clock,
    send: p => inner.send(p), close: () => inner.close(),
    setReceiver: r => inner.setReceiver({
      packet: p => { if (p[0] === 0x04 && p[1] === 0x3e && (p[3] === 0x02 || p[3] === 0x0d)) out.push(p); r.packet(p); },
      closed: e => r.closed(e),
    }),
  };
  const changing = sim.scenario.peripherals.filter((_, i) => i % 10 === 0).map(p => sim.peripheral(p.address).advData);
  let step = 0;
  const change = (): void => { step++; for (const d of changing) d[d.length - 2] = step & 0x3f; sim.clock.schedule(200_000, change); };
  sim.clock.schedule(200_000, change);
  const adapter = await Adapter.open({ transport: tee, clock: sim.clock, bonds: false });
  const session = adapter.scan({ active: false, duplicates: true, onAdvertisement: () => undefined });
  await sim.clock.delay(virtualS * 1000);
  session.stop();
  await adapter.close();
  return out;
}

/**
 * A gateway on a simulated controller with no advertisers of its own (it answers the init and scan
 * commands), fed the recorded reports through the simulator's delivery path as fast as it takes them,
 * in batches between which MQTT.js and the timers run. Publishing is on (mosquitto), default limits.
 */
async function ingestRecorded(broker: Mosquitto, stream: Uint8Array[], seconds: number): Promise<{ reports: number; wall: number; cpu: number; published: number; delivered: number; devices: number; heldMax: number }> {
  let sim: Simulator | undefined;
  const gateway = new Gateway(resolveConfig({ env: {}, flags: { id: 'bench', mqtt: { url: broker.url }, transport: 'sim', commands: { enabled: false } } as PartialConfig }), {
    transport: () => { sim = createSimulator({ name: 'empty', peripherals: [] }); return sim.transport; },
    logger: quiet,
  });
  await gateway.start();
  while (!gateway.stats.adapterOpen || !gateway.mqttStats?.connected) await sleep(20);
  await sleep(200); // the scan is enabled
  const feed = (n: number): void => { for (let i = 0; i < n; i++) sim!.transport.deliver(stream[(pos++) % stream.length]!); };
  let pos = 0;
  const run = async (ms: number): Promise<void> => {
    const until = performance.now() + ms;
    while (performance.now() < until) { feed(2000); await new Promise(r => setImmediate(r)); }
  };
  await run(1500); // warm-up: every device seen, JIT warm
  let heldMax = 0;
  const r0 = gateway.stats.reports, p0 = gateway.stats.published, d0 = gateway.mqttStats!.delivered;
  const w0 = performance.now(), c0 = cpuMs();
  const until = w0 + seconds * 1000;
  while (performance.now() < until) { await run(100); heldMax = Math.max(heldMax, gateway.stats.held); }
  const wall = (performance.now() - w0) / 1000, cpu = (cpuMs() - c0) / 1000;
  const r = { reports: gateway.stats.reports - r0, wall, cpu, published: gateway.stats.published - p0, delivered: gateway.mqttStats!.delivered - d0,
    devices: gateway.stats.devices, heldMax };
  await gateway.stop();
  return r;
}

/** The same gateway with the simulator generating live in this process (its cost included). */
async function ingestLive(broker: Mosquitto, advertisers: number, seconds: number): Promise<{ reports: number; wall: number; cpu: number; simCpuShare?: number }> {
  const scenario = scenarioOf(advertisers);
  let sim: Simulator | undefined;
  const gateway = new Gateway(resolveConfig({ env: {}, flags: { id: 'bench-live', mqtt: { url: broker.url }, transport: 'sim', commands: { enabled: false } } as PartialConfig }), {
    transport: () => { sim = createSimulator(scenario); return sim.transport; },
    logger: quiet,
  });
  await gateway.start();
  while (gateway.stats.reports === 0) await sleep(20);
  await sleep(1000);
  const r0 = gateway.stats.reports;
  const w0 = performance.now(), c0 = cpuMs();
  await sleep(seconds * 1000);
  const r = { reports: gateway.stats.reports - r0, wall: (performance.now() - w0) / 1000, cpu: (cpuMs() - c0) / 1000 };
  await gateway.stop();
  return r;
}

async function ingest(broker: Mosquitto, advertisers = 1000, seconds = 6): Promise<void> {
  const stream = await recordReports(advertisers, 20);
  const r = await ingestRecorded(broker, stream, seconds);
  console.log(`ingest (${advertisers} simulated advertisers, their ${stream.length} recorded report events replayed into the gateway's ` +
    `simulated controller; default rate limits, publishing to mosquitto): ${k(r.reports / r.cpu)} reports per CPU-second, ` +
    `${k(r.reports / r.wall)}/s wall (${r.reports} reports in ${r.wall.toFixed(1)} s, CPU ${r.cpu.toFixed(1)} s; ${r.devices} devices; ` +
    `${r.published} documents published, ${r.delivered} delivered; at most ${r.heldMax} changes held by the rate limits)`);
  const l = await ingestLive(broker, advertisers, seconds);
  console.log(`  with the simulator generating the reports live in the same process: ${k(l.reports / l.cpu)} reports per CPU-second, ` +
    `${k(l.reports / l.wall)}/s wall (the simulated air and controller cost most of it)`);
}

// ---- 2. messages delivered to mosquitto ----------------------------------------------------------

async function messages(broker: Mosquitto, total = 100_000, qos: 0 | 1 = 1): Promise<void> {
  // Real device documents (one per kind) as payloads, as the gateway builds them from a scan.
  const docs: Array<{ topic: string; payload: string }> = [];
  {
    const sim = createSimulator({ name: 'docs', peripherals: Array.from({ length: 5 }, (_, i) => advertiser(i)) });
    const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
    const seen = new Map<string, unknown>();
    const session = adapter.scan({ duplicates: true, onAdvertisement: ad => { if (!seen.has(ad.address)) seen.set(ad.address, ad); } });
    while (seen.size < 5) await sim.clock.delay(50);
    session.stop();
    let seq = 0;
    for (const ad of seen.values() as Iterable<Parameters<typeof buildDocument>[1]>) {
      const decoded = decodeAll({ address: ad.address, serviceData: ad.serviceData, manufacturerData: ad.manufacturerData }, () => undefined);
      docs.push({ topic: `blewire/bench/devices/${ad.address}`, payload: JSON.stringify(buildDocument('bench', ad, decoded, { firstSeen: Date.now(), lastSeen: Date.now() }, 1, ++seq)) });
    }
    await adapter.close();
  }
  const bytes = docs.reduce((s, d) => s + d.payload.length, 0) / docs.length;
  // The independent count: mosquitto_sub in its own process exits 0 once it has received `total`
  // messages (-C); its output goes nowhere, so reading it costs this process nothing.
  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '0', '-t', 'blewire/bench/devices/+', '-C', String(total)],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let subErr = '';
  sub.stderr!.on('data', (c: Buffer) => { subErr += c.toString(); });
  const subExit = new Promise<number | null>(r => sub.once('exit', c => r(c)));
  await sleep(300); // subscribed
  const link = new MqttLink(await loadMqtt(), {
    url: broker.url, statusTopic: 'blewire/bench/status', buffer: { maxMessages: 10_000, maxBytes: 16 << 20 },
    backoff: { minMs: 200, maxMs: 1000 }, logger: quiet, client: { clientId: `blewire-bench-q${qos}`, protocolVersion: 5, keepalive: 30 },
  });
  link.start();
  while (!link.connected) await sleep(10);
  const w0 = performance.now(), c0 = cpuMs(), b0 = procCpuMs(broker.pid);
  let sent = 0;
  // Keep the gateway's buffer fed without overflowing it (nothing dropped): what MqttLink and MQTT.js
  // can push, PUBACKs included.
  // Between refills the process sleeps a millisecond rather than spinning on setImmediate: a spinning
  // loop burnt this process's CPU while it waited for PUBACKs, and the per-CPU-second figure counted it.
  while (link.stats.delivered < total) {
    while (sent < total && link.stats.buffered < 5000) {
      const d = docs[sent % docs.length]!;
      link.publish(d.topic, d.payload, qos);
      sent++;
    }
    await sleep(1);
  }
  const wall = (performance.now() - w0) / 1000, cpu = (cpuMs() - c0) / 1000, brokerCpu = (procCpuMs(broker.pid) - b0) / 1000;
  const dropped = link.stats.dropped;
  // The subscriber (QoS 0, its own process) has everything once the broker has forwarded it.
  const t = setTimeout(() => sub.kill('SIGTERM'), 90_000);
  const subCode = await subExit;
  clearTimeout(t);
  const got = subCode === 0 ? `all ${total}` : `not all (exit ${subCode}${subErr ? `: ${subErr.trim()}` : ''})`;
  await link.stop();
  console.log(`messages (QoS ${qos}, ${Math.round(bytes)}-byte device documents, MqttLink → mosquitto): ${k(total / wall)} messages/s delivered ` +
    `(${qos === 1 ? 'PUBACKed' : 'written to the socket'}; ${total} in ${wall.toFixed(1)} s; ${k(total / cpu)} per CPU-second of the gateway's process (CPU ${cpu.toFixed(1)} s), ` +
    `${k(total / brokerCpu)} per CPU-second of mosquitto (CPU ${brokerCpu.toFixed(1)} s, its subscriber included); ` +
    `dropped ${dropped}; mosquitto_sub received ${got})`);
}

// ---- 3. memory of a gateway tracking 10 000 devices (child process) -------------------------------

async function memory(broker: Mosquitto, devices = 10_000): Promise<void> {
  // The child runs the compiled JavaScript, as an installed gateway does (a TypeScript loader in the
  // process would add its own tens of MB): compile src/ into .cache/bench-dist first.
  const dist = join(ROOT, '.cache', 'bench-dist');
  console.log('  (compiling src/ into .cache/bench-dist for the memory child…)');
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tools', 'tsconfig.build.json'),
    '--outDir', dist, '--declaration', 'false'], { cwd: ROOT, stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error('tsc failed');
  // Twice: with the V8 flags of `blewire-gateway` (the command the systemd unit runs; read from its
  // first line, so the bench measures what that command runs), and with Node's defaults (`blewire gateway`).
  const shebang = readFileSync(join(ROOT, 'src', 'cli', 'gateway.mjs'), 'utf8').split('\n')[0]!;
  const binFlags = shebang.split(/\s+/).filter(a => a.startsWith('--'));
  for (const [label, flags] of [['blewire-gateway, ' + binFlags.join(' '), binFlags], ['Node defaults', []]] as const) {
    const child = spawn(process.execPath, [...flags, '--expose-gc', join(ROOT, 'tools', 'bench', 'gateway-rss-child.mjs'), dist, broker.url, String(devices)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    const code = await new Promise<number | null>(r => child.once('exit', c => r(c)));
    const line = out.trim().split('\n').pop() ?? '';
    if (code !== 0 || !line.startsWith('{')) throw new Error(`the RSS child failed (exit ${code}): ${out}`);
    const r = JSON.parse(line) as Record<string, number>;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    console.log(`memory (${label}; fresh process on the compiled JavaScript, a gateway tracking ${r['devices']} devices, every one published: ` +
      `${r['delivered']} delivered, ${r['dropped']} dropped): RSS ${mb(r['rss']!)} MB (${mb(r['rssBefore']!)} MB before the devices; ` +
      `JS heap ${mb(r['heapUsed']!)} MB, ${mb(r['heapBefore']!)} MB before)`);
  }
}

/** `parts`: some of 'ingest', 'messages', 'memory' (run directly: `… gateway.bench.ts --only ingest`, e.g. under --cpu-prof). */
export async function bench(parts: readonly string[] = ['ingest', 'messages', 'memory']): Promise<void> {
  // No bound on a subscriber's queue: mosquitto otherwise drops QoS 0 messages beyond 1000 queued for a
  // subscriber that falls behind (max_queued_messages), and mosquitto_sub's count would measure that.
  const broker = await startMosquitto({ config: ['max_queued_messages 0'] });
  try {
    console.log(`gateway: mosquitto pid ${broker.pid} on 127.0.0.1:${broker.port}; load average ${loadavg().map(l => l.toFixed(1)).join(' ')} ` +
      '(wall-clock rates depend on it; the per-CPU-second figures much less)');
    if (parts.includes('ingest')) await ingest(broker);
    // QoS 1 is the gateway's default (mqtt.qos: a broker restart loses nothing in flight); QoS 0 is the
    // setting for a gateway that would rather lose a document than spend the acknowledgements.
    if (parts.includes('messages')) { await messages(broker, 100_000, 1); await messages(broker, 100_000, 0); }
    if (parts.includes('memory')) await memory(broker);
  } finally {
    await broker.stop();
    removeDir(broker.dir);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const only = process.argv.indexOf('--only');
  bench(only > 0 ? process.argv[only + 1]!.split(',') : undefined).catch(e => { console.error(e); process.exitCode = 1; });
}
