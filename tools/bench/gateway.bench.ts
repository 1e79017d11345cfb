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
 * 3. memory: RSS of the installed command itself (`blewire-gateway`, the gateway's bundle, in its own
 *    process, as the systemd unit runs it) tracking 10 000 distinct devices, fed as LE Advertising
 *    Report events by an H4 controller on a TCP port (`--transport tcp:…`): a burst of 10 000
 *    first-seen devices, every one published to mosquitto and read back, then a steady phase of every
 *    device heard once a second (BENCH_GATEWAY_STEADY_S, default 20 s); read from /proc without
 *    forcing a GC, with the process's peak (VmHWM) over the whole run.
 *
 * Figures only, never pass/fail (ARCHITECTURE "Test tiers"). Targets: ≥ 100 k reports/s, ≥ 20 k
 * messages/s, < 80 MB RSS.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type PartialConfig } from '../../src/apps/gateway/config.js';
import { Gateway } from '../../src/apps/gateway/gateway.js';
import { buildDocument } from '../../src/apps/gateway/document.js';
import { decodeAll } from '../../src/apps/gateway/decoders/index.js';
import { jsonLogger } from '../../src/apps/gateway/log.js';
import { loadMqtt, MqttLink } from '../../src/apps/gateway/mqtt.js';
import { Adapter } from '../../src/api/adapter.js';
import type { HciTransport } from '../../src/transport/types.js';
import { encodeEvent } from '../../src/hci/packets.js';
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

// ---- 3. memory of a gateway tracking 10 000 devices (the installed command, in its own process) ---

/** The five payload kinds of the memory run (the formats' own examples, as in `advertiser()`). */
const MEMORY_PAYLOADS = [
  '020106 0b16d2fc4002c40903bf13 0b09 6274 2d73656e736f72 3031', // BTHome v2 + name
  '020106 1bff9904 0512fc5394c37c0004fffc040cac364200cdcbb8334c884f', // Ruuvi 5
  '020106 1aff4c00 0215e2c56db5dffb48d2b060d0f5a71096e000010002c5', // iBeacon
  '020106 0303aafe 1316aafe 10ee03 676f6f2e676c2f417131387a46', // Eddystone-URL
  '020106 050f0f180a18 0909 706c61696e2d3031', // plain: services + name
].map(h => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex')));

/**
 * A controller on a TCP port speaking H4, enough for the host's start-up and a scan: Reset, event
 * masks, LE scan parameters / enable succeed, LE Read Buffer Size answers 251 × 8, anything else is
 * "Unknown HCI Command" (the host's capability model takes that). `scanning` resolves with the socket
 * once the host has enabled scanning; the caller then writes LE Advertising Report events to it.
 */
function h4Controller(): Promise<{ port: number; scanning: Promise<net.Socket>; close(): void }> {
  const ok = new Set([0x0c03, 0x0c01, 0x2001, 0x200b, 0x200c, 0x2041, 0x2042, 0x0c63, 0x2005, 0x2027, 0x2029, 0x202d, 0x204e]);
  let scanning!: (s: net.Socket) => void;
  const scanP = new Promise<net.Socket>(r => { scanning = r; });
  const server = net.createServer(sock => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => undefined);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        if (buf.length < 1) break;
        const type = buf[0];
        const need = type === 0x01 ? (buf.length >= 4 ? 4 + buf[3]! : Infinity) : type === 0x02 ? (buf.length >= 5 ? 5 + buf.readUInt16LE(3) : Infinity) : 1;
        if (buf.length < need) break;
        const p = buf.subarray(0, need);
        buf = buf.subarray(need);
        if (type !== 0x01) continue;
        const opcode = p.readUInt16LE(1);
        const evt = opcode === 0x2002 ? Buffer.of(0x04, 0x0e, 0x07, 0x01, 0x02, 0x20, 0x00, 0xfb, 0x00, 0x08)
          : ok.has(opcode) ? Buffer.of(0x04, 0x0e, 0x04, 0x01, p[1]!, p[2]!, 0x00)
          : Buffer.of(0x04, 0x0f, 0x04, 0x01, 0x01, p[1]!, p[2]!);
        sock.write(evt);
        if (opcode === 0x200c && p[4] === 1) scanning(sock);
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, scanning: scanP, close: () => { server.close(); } }));
  });
}

/** VmRSS and VmHWM (peak) of a process, bytes. */
function procMemory(pid: number): { rss: number; peak: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(/^(\w+):\s+(\d+) kB$/m.exec(st.split('\n').find(l => l.startsWith(name + ':')) ?? '')?.[2]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Diagnostics: RSS by mapping (anonymous, heap, the node binary, libraries) from /proc/<pid>/smaps. */
function smapsSummary(pid: number, label: string): string {
  const by = new Map<string, number>();
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) { name = m[1] || '[anon]'; continue; }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r) by.set(name, (by.get(name) ?? 0) + Number(r[1]));
  }
  return `smaps ${label}: ` + [...by].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, kb]) => `${n} ${(kb / 1000).toFixed(1)} MB`).join(', ') + '\n';
}

/**
 * One run of the command as a service runs it: `argv` (src/cli/gateway.mjs, which runs the bundled
 * dist/cli/gateway.cjs, or bin.mjs, which runs dist/cli/blewire.cjs), on the H4 controller above, publishing to `broker`. Two phases:
 * - burst: the `devices` are heard for the first time, back to back (written to the socket as fast as
 *   the gateway reads them), every one a first-seen document; RSS read once all `devices` documents
 *   have reached the broker (an MQTT.js subscriber here counts them) and a second has passed;
 * - steady: then for `steadyS` seconds every device is heard again once a second (10 000 reports/s
 *   with 10 000 devices), a tenth of them with a changed sensor octet each time (published at once
 *   under the 1 s rate limit), the rest unchanged (published again after publish.maxIntervalMs);
 *   RSS read at the end.
 * No forced garbage collection, the process as it is. RSS is sampled from /proc every 20 ms through
 * both phases; VmHWM is the kernel's peak over the whole run (start-up included), `peakAt` says in
 * which phase the highest sample fell.
 */
async function memoryRun(broker: Mosquitto, argv: string[], env: NodeJS.ProcessEnv, devices: number, steadyS: number) {
  const ctl = await h4Controller();
  const mod = await loadMqtt();
  const sub = mod.connect(broker.url, { clientId: `rss-count-${process.pid}`, protocolVersion: 5, log: () => undefined } as never);
  const seen = new Set<string>();
  let received = 0;
  sub.on('message', (topic: string) => { seen.add(topic); received++; });
  await new Promise<void>((res, rej) => { sub.once('connect', () => res()); sub.once('error', rej); });
  await new Promise<void>((res, rej) => sub.subscribe('blewire/rss/devices/+', { qos: 0 }, e => e ? rej(e) : res()));
  // BENCH_GATEWAY_DIAG=FILE: the child's stdout and stderr (e.g. --trace-gc) and the RSS timeline go to FILE.
  const diag = process.env.BENCH_GATEWAY_DIAG;
  const child = spawn(process.execPath, [...argv, '--mqtt', broker.url, '--transport', `tcp:127.0.0.1:${ctl.port}`, '--id', 'rss'],
    { cwd: ROOT, env: { ...env, BLEWIRE_GATEWAY_LOG_LEVEL: 'warn' }, stdio: ['ignore', diag ? 'pipe' : 'ignore', 'pipe'] });
  let log = '';
  const diagLines: string[] = [];
  const t0 = performance.now();
  const stamp = () => (performance.now() - t0).toFixed(0).padStart(6);
  child.stderr!.on('data', (c: Buffer) => { log = (log + c.toString()).slice(-4000); if (diag) diagLines.push(c.toString()); });
  child.stdout?.on('data', (c: Buffer) => { diagLines.push(c.toString()); });
  const exited = new Promise<number | null>(r => child.once('exit', c => r(c)));
  let phase = 'start';
  const high = { rss: 0, phase: '' };
  const sampler = setInterval(() => {
    try {
      const m = procMemory(child.pid!);
      if (m.rss > high.rss) { high.rss = m.rss; high.phase = phase; }
      if (diag) {
        const r = readFileSync(`/proc/${child.pid}/smaps_rollup`, 'utf8');
        const f = (n: string) => (Number(new RegExp(`^${n}:\\s+(\\d+)`, 'm').exec(r)?.[1]) / 1000).toFixed(1);
        diagLines.push(`[${stamp()} ms] ${phase} RSS ${(m.rss / 1e6).toFixed(1)} MB HWM ${(m.peak / 1e6).toFixed(1)} MB anon ${f('Anonymous')} file ${f('Rss')} received ${received}\n`);
      }
    } catch { /* exited */ }
  }, 20);
  try {
    const sock = await Promise.race([ctl.scanning, exited.then(c => { throw new Error(`the gateway exited (${c}) before scanning: ${log}`); }), sleep(60_000).then(() => { throw new Error(`no scan within 60 s: ${log}`); })]);
    await sleep(1000);
    const before = procMemory(child.pid!);
    if (diag) diagLines.push(smapsSummary(child.pid!, 'before'));
    // BENCH_GATEWAY_SNAPSHOT=1 with --heapsnapshot-signal=SIGUSR2 in BENCH_GATEWAY_FLAGS: a heap snapshot here.
    if (process.env.BENCH_GATEWAY_SNAPSHOT) { child.kill('SIGUSR2'); await sleep(3000); }
    const report = (i: number, step: number) => {
      const data = MEMORY_PAYLOADS[i % MEMORY_PAYLOADS.length]!;
      // A tenth of the devices change a sensor octet every visit of the steady phase.
      const d = step > 0 && i % 10 === 0 ? Uint8Array.from(data, (v, j) => j === data.length - 2 ? (v + step) & 0xff : v) : data;
      return encodeEvent({ kind: 'leAdvertisingReport', reports: [{ eventType: 3, addressType: 0, address: addr(100_000 + i), data: d, rssi: -50 - (i % 40) }] });
    };
    phase = 'burst';
    const cpu0 = procCpuMs(child.pid);
    for (let i = 0; i < devices; i++) {
      if (!sock.write(report(i, 0))) await new Promise(r => sock.once('drain', r));
    }
    const until = Date.now() + 120_000;
    while (seen.size < devices && Date.now() < until && child.exitCode === null) await sleep(100);
    if (seen.size < devices) throw new Error(`only ${seen.size} of ${devices} device documents reached the broker: ${log}`);
    await sleep(1000);
    const burst = procMemory(child.pid!);
    const cpu1 = procCpuMs(child.pid);
    if (diag) diagLines.push(smapsSummary(child.pid!, 'burst'));
    if (process.env.BENCH_GATEWAY_SNAPSHOT) { child.kill('SIGUSR2'); await sleep(3000); }
    phase = 'steady';
    const r0 = received;
    // Each second, every device once, spread over the second in 20 slices.
    for (let s = 0; s < steadyS; s++) {
      for (let slice = 0; slice < 20; slice++) {
        const t = performance.now();
        for (let i = slice; i < devices; i += 20) if (!sock.write(report(i, s + 1))) await new Promise(r => sock.once('drain', r));
        await sleep(Math.max(0, 50 - (performance.now() - t)));
      }
    }
    await sleep(1000);
    const steady = procMemory(child.pid!);
    const steadyReceived = received - r0;
    const cpu2 = procCpuMs(child.pid);
    child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(15_000).then(() => 'hung')]);
    if (code !== 0) throw new Error(`the gateway's SIGTERM exit was ${code}: ${log}`);
    return { before, burst, steady, steadyReceived, delivered: seen.size, highPhase: high.phase, burstCpuS: (cpu1 - cpu0) / 1000, steadyCpuS: (cpu2 - cpu1) / 1000 };
  } finally {
    clearInterval(sampler);
    if (child.exitCode === null) child.kill('SIGKILL');
    sub.end(true);
    ctl.close();
    if (diag) writeFileSync(diag, diagLines.join(''));
  }
}

async function memory(broker: Mosquitto, devices = 10_000, steadyS = Number(process.env.BENCH_GATEWAY_STEADY_S ?? 20)): Promise<void> {
  // The commands an installed package runs: gateway.mjs runs dist/cli/gateway.cjs and bin.mjs runs
  // dist/cli/blewire.cjs, each when it is newer than src/; bundle them first (what `npm run build`
  // does) so that the runs below measure the bundles, not tsx.
  console.log('  (bundling dist/cli/gateway.cjs and dist/cli/blewire.cjs for the memory runs…)');
  const b = spawnSync(process.execPath, [join(ROOT, 'tools', 'package', 'bundle-cli.mjs')], { cwd: ROOT, stdio: 'inherit' });
  if (b.status !== 0) throw new Error('bundle-cli failed');
  // `blewire-gateway` (what the systemd unit runs) passes its V8 flags on its first line (`env -S`);
  // spawn Node with the same flags, read from that line, so the bench measures what the command runs.
  const gatewayBin = join(ROOT, 'src', 'cli', 'gateway.mjs');
  const binFlags = readFileSync(gatewayBin, 'utf8').split('\n')[0]!.split(/\s+/).filter(a => a.startsWith('--'));
  // A private code-cache folder: the first run compiles the bundle and writes the cache (as the first
  // start of an installed gateway does), the second runs with it.
  const cache = mkdtempSync(join(tmpdir(), 'blewire-bench-cache-'));
  const env = { ...process.env, XDG_CACHE_HOME: cache };
  const mb = (n: number) => (n / 1e6).toFixed(1);
  try {
    // BENCH_GATEWAY_FLAGS='--flag …': one run of gateway.mjs with these V8 flags instead (to compare flags).
    const only = process.env.BENCH_GATEWAY_FLAGS;
    for (const [label, argv] of only !== undefined ? [[`flags ${only}`, [...only.split(' ').filter(Boolean), gatewayBin]]] as const : [
      [`blewire-gateway (${binFlags.join(' ')}), first start, no code cache`, [...binFlags, gatewayBin]],
      [`blewire-gateway (${binFlags.join(' ')}), with its code cache`, [...binFlags, gatewayBin]],
      ['blewire gateway (Node defaults)', [join(ROOT, 'src', 'cli', 'bin.mjs'), 'gateway']],
    ] as const) {
      const r = await memoryRun(broker, [...argv], env, devices, steadyS);
      console.log(`memory, ${label}: a gateway process tracking ${devices} devices, no forced GC: ${mb(r.before.rss)} MB scanning before the devices; ` +
        `after the burst of ${devices} first-seen devices (${r.delivered} documents read back from mosquitto) RSS ${mb(r.burst.rss)} MB; ` +
        `after ${steadyS} s steady (every device once a second, a tenth changing; ${r.steadyReceived} documents read back) RSS ${mb(r.steady.rss)} MB; ` +
        `peak (VmHWM) ${mb(r.steady.peak)} MB (highest 20 ms sample in the ${r.highPhase} phase); ` +
        `the gateway's CPU time: burst ${r.burstCpuS.toFixed(2)} s, steady ${r.steadyCpuS.toFixed(2)} s (${(r.steadyCpuS * 1e6 / (devices * steadyS)).toFixed(1)} µs per report); load average ${loadavg()[0]!.toFixed(1)}`);
    }
  } finally {
    removeDir(cache);
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
