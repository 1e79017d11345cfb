/**
 * `blewire demo`: the whole stack on the simulated controller, no adapter needed. Scans the `demo`
 * world (a heart-rate sensor, a thermometer, a crowd of advertisers), connects to the heart-rate
 * sensor, discovers and prints its GATT tree, reads Device Name and Battery Level, streams a few
 * heart-rate notifications, reads the thermometer through indications, and reports the ATT round
 * trips with simulated versus wall time. Uses only the public API (Adapter, Connection, GATT client).
 *
 *   blewire demo [--scenario demo] [--notifications 5] [--scan-ms 3000]
 */
import { Adapter } from '../api/adapter.js';
import type { Connection } from '../api/connection.js';
import { describeUuid, uuidName } from '../codec/uuid.js';
import type { Advertisement } from '../gap/scanner.js';
import { GattClient } from '../gatt/client.js';
import type { GattService } from '../gatt/model.js';
import { createSimulator, type Simulator } from '../sim/index.js';

interface DemoOptions { scenario: string; notifications: number; scanMs: number }

function parseArgs(argv: string[]): DemoOptions | string {
  const o: DemoOptions = { scenario: 'demo', notifications: 5, scanMs: 3000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string | undefined => argv[++i];
    if (a === '--help' || a === '-h') return 'usage: blewire demo [--notifications N] [--scan-ms MS]';
    else if (a === '--scenario') o.scenario = next() ?? o.scenario;
    else if (a === '--notifications') o.notifications = Number(next());
    else if (a === '--scan-ms') o.scanMs = Number(next());
    else return `blewire demo: unknown option ${a}`;
  }
  if (!Number.isInteger(o.notifications) || o.notifications < 0) return 'blewire demo: --notifications must be a whole number';
  if (!Number.isFinite(o.scanMs) || o.scanMs <= 0) return 'blewire demo: --scan-ms must be a positive number';
  return o;
}

const out = (s = ''): void => { process.stdout.write(s + '\n'); };
const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);

/** A short label for what an advertisement says. */
function summary(ad: Advertisement): string {
  const parts: string[] = [];
  const names = ad.serviceUuids.map(u => title(uuidName(u), short(u)));
  if (names.length) parts.push(names.join(', '));
  for (const [company, data] of ad.manufacturerData) {
    const who = company === 0x004c ? (data[0] === 0x02 ? 'iBeacon' : 'Apple') : company === 0x0006 ? 'Microsoft'
      : company === 0x0075 ? 'Samsung' : `company 0x${company.toString(16).padStart(4, '0')}`;
    parts.push(`${who} (${data.length} B)`);
  }
  for (const [u, data] of ad.serviceData) {
    if (!ad.serviceUuids.includes(u)) parts.push(`${title(uuidName(u), short(u))} data (${data.length} B)`);
    else parts.push(`service data (${data.length} B)`);
  }
  return parts.join('; ');
}

/** 'gap.device_name' → 'Device Name'. */
function title(name: string | undefined, fallback: string): string {
  if (!name) return fallback;
  return name.replace(/^[a-z]+\./, '').split('_').map(w => (w.length <= 3 && w !== 'hr' ? w : w[0]!.toUpperCase() + w.slice(1)))
    .join(' ').replace(/^./, c => c.toUpperCase());
}

/** '0x180d' for SIG UUIDs, the full string otherwise. */
function short(u: string): string {
  return u.endsWith('-0000-1000-8000-00805f9b34fb') && u.startsWith('0000') ? `0x${u.slice(4, 8)}` : u;
}

function printTree(services: readonly GattService[]): void {
  for (const s of services) {
    out(`  ${title(s.name, 'Service').padEnd(32)} ${short(s.uuid).padEnd(8)} handles 0x${s.start.toString(16).padStart(4, '0')}–0x${s.end.toString(16).padStart(4, '0')}`);
    for (const c of s.characteristics) {
      out(`    ${title(c.name, 'Characteristic').padEnd(30)} ${short(c.uuid).padEnd(8)} ${c.properties.join(', ')}`);
    }
  }
}

async function findChar(services: readonly GattService[], svc: number, chr: number) {
  for (const s of services) {
    if (describeUuid(s.uuid) !== describeUuid(svcUuid(svc))) continue;
    for (const c of s.characteristics) if (describeUuid(c.uuid) === describeUuid(svcUuid(chr))) return c;
  }
  return undefined;
}
const svcUuid = (n: number): string => `0000${n.toString(16).padStart(4, '0')}-0000-1000-8000-00805f9b34fb`;

/** IEEE 11073 32-bit FLOAT (24-bit mantissa, 8-bit exponent), as in Temperature Measurement. */
function float32(b: Uint8Array, o: number): number {
  let m = b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
  if (m & 0x800000) m -= 0x1000000;
  const e = (b[o + 3]! << 24) >> 24;
  return m * 10 ** e;
}

async function session(conn: Connection, _sim: Simulator) {
  return conn.gatt;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (typeof parsed === 'string') {
    (parsed.startsWith('usage') ? out : (s: string) => process.stderr.write(s + '\n'))(parsed);
    return parsed.startsWith('usage') ? 0 : 2;
  }
  const opts = parsed;
  const wall0 = performance.now();
  const sim = createSimulator(opts.scenario);
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
  let roundTrips = 0;
  try {
    const info = adapter.controller;
    out(`blewire demo — a simulated world, no adapter needed`);
    out();
    out(`Controller  ${sim.transport.description}, Bluetooth ${info.version?.coreVersion ?? '?'}, ` +
      `LE ACL ${info.acl.length} B × ${info.acl.count}${info.extendedScanning ? ', extended scanning' : ''}`);

    // ---- scan ----
    const seen = new Map<string, Advertisement>();
    for await (const ad of adapter.scan({ active: true, timeout: opts.scanMs })) seen.set(`${ad.address}/${ad.addressType}`, ad);
    const ads = [...seen.values()].sort((a, b) => b.rssi - a.rssi);
    out(`Scanned ${ms(opts.scanMs)} (active): ${ads.length} devices`);
    out();
    out(`  ${'ADDRESS'.padEnd(17)}  ${'RSSI'.padStart(4)}  ${'NAME'.padEnd(20)}  ADVERTISES`);
    const top = ads.slice(0, 12);
    for (const ad of top) {
      out(`  ${ad.address}  ${String(ad.rssi).padStart(4)}  ${(ad.name ?? '—').slice(0, 20).padEnd(20)}  ${summary(ad)}`.trimEnd());
    }
    if (ads.length > top.length) out(`  … and ${ads.length - top.length} more`);
    out();

    const hr = ads.find(a => a.serviceUuids.some(u => describeUuid(u) === describeUuid(svcUuid(0x180d))));
    if (!hr) {
      out('No heart-rate sensor in range.');
      return 1;
    }

    // ---- heart-rate sensor ----
    let t0 = sim.now();
    const conn = await adapter.connect(hr, { timeout: 5000 });
    out(`Connected to ${hr.name ?? hr.address} (${hr.address}, ${hr.addressType}) in ${ms(sim.now() - t0)}, ` +
      `interval ${conn.parameters.interval} ms`);
    const gatt = await session(conn, sim);
    t0 = sim.now();
    const services = await gatt.services();
    const nChars = services.reduce((n, s) => n + s.characteristics.length, 0);
    out(`Discovered ${services.length} services, ${nChars} characteristics in ${gatt.stats.requests} ATT round trips (${ms(sim.now() - t0)})`);
    out();
    printTree(services);
    out();

    const dec = new TextDecoder();
    const nameChar = await findChar(services, 0x1800, 0x2a00);
    const battery = await findChar(services, 0x180f, 0x2a19);
    if (nameChar) out(`  Device Name      ${dec.decode(await nameChar.read())}`);
    if (battery) out(`  Battery Level    ${(await battery.read())[0]} %`);
    const hrm = await findChar(services, 0x180d, 0x2a37);
    if (hrm && opts.notifications > 0) {
      out(`  Heart Rate Measurement (notifications):`);
      let n = 0;
      const start = sim.now();
      for await (const v of hrm.notifications()) {
        // Heart Rate Measurement: flags bit 0 selects UINT8 / UINT16 bpm.
        const bpm = v[0]! & 1 ? v[1]! | (v[2]! << 8) : v[1]!;
        out(`    ${`+${ms(sim.now() - start)}`.padEnd(10)} ${String(bpm).padStart(3)} bpm`);
        if (++n >= opts.notifications) break;
      }
    }
    roundTrips += gatt.stats.requests;
    const r = await conn.disconnect();
    out(`  Disconnected (${r.name})`);
    out();

    // ---- thermometer ----
    const thermAd = ads.find(a => a.serviceUuids.some(u => describeUuid(u) === describeUuid(svcUuid(0x1809))));
    if (thermAd) {
      const tconn = await adapter.connect(thermAd, { timeout: 5000 });
      const tg = await session(tconn, sim);
      const health = await tg.service(0x1809);
      const temp = await health.characteristic(0x2a1c);
      out(`Connected to ${thermAd.name ?? thermAd.address}: Temperature Measurement (indications):`);
      let n = 0;
      for await (const v of temp.notifications()) {
        out(`    ${float32(v, 1).toFixed(1)} °C`);
        if (++n >= 3) break;
      }
      roundTrips += tg.stats.requests;
      const tr = await tconn.disconnect();
      out(`  Disconnected (${tr.name})`);
      out();
    }

    const wall = performance.now() - wall0;
    const virt = sim.now();
    out(`ATT round trips ${roundTrips}; simulated time ${ms(virt)}, wall time ${ms(wall)} ` +
      `(${(virt / Math.max(wall, 1)).toFixed(0)}× real time)`);
    return 0;
  } finally {
    await adapter.close();
  }
}
