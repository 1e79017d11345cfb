/**
 * Simulator speed: (1) connection events per wall-clock second on a busy link (a notification every
 * 7.5 ms connection event), (2) a full discovery of a 30-service / 200-characteristic database at a
 * 7.5 ms connection interval: wall time, simulated time and ATT round trips. Median of several runs.
 */
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator, largeDatabase, type Scenario } from '../../src/sim/index.js';

const PEER = 'D4:1E:35:7A:00:30';

function scenario(notifyEveryMs?: number): Scenario {
  return {
    name: 'bench', controller: { preferredIntervalMs: 7.5 },
    peripherals: [{
      name: 'Big DB', address: PEER, addressType: 'random',
      advertising: { data: { flags: 6, name: 'Big DB' }, intervalMs: 20 },
      gatt: [...(notifyEveryMs ? [{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['notify' as const] }] }] : []), ...largeDatabase(30, 200)],
      ...(notifyEveryMs ? { notifications: [{ characteristic: 0xfff1, everyMs: notifyEveryMs, generator: { kind: 'counter', bytes: 4 } }] } : {}),
    }],
  };
}

async function session(s: Scenario) {
  const sim = createSimulator(s);
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, gatt: { robustCaching: false, serviceChanged: false } });
  const conn = await adapter.connect({ address: PEER, addressType: 'random' } as never, { intervalMin: 7.5, intervalMax: 7.5, timeout: 5000 });
  const gatt = conn.gatt;
  await conn.exchangeMtu();
  return { sim, adapter, conn, gatt };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function connectionEvents(): Promise<void> {
  const rates: number[] = [];
  let events = 0;
  let virtualS = 0;
  for (let run = 0; run < 3; run++) {
    const { sim, adapter, gatt } = await session(scenario(7.5));
    const svc = await gatt.service(0xfff0);
    const ch = await svc.characteristic(0xfff1);
    const wanted = 4000;
    let got = 0;
    const link = sim.linkTo(PEER)!;
    const e0 = link.stats.activeEvents;
    const w0 = performance.now();
    const v0 = sim.now();
    for await (const _ of ch.notifications()) if (++got >= wanted) break;
    const wall = (performance.now() - w0) / 1000;
    events = link.stats.activeEvents - e0;
    virtualS = (sim.now() - v0) / 1000;
    rates.push(events / wall);
    await adapter.close();
  }
  console.log(`busy link (a notification every 7.5 ms event): ${Math.round(median(rates)).toLocaleString('en')} connection events/s ` +
    `(${events} events = ${virtualS.toFixed(1)} s simulated per run; median of ${rates.length})`);
}

async function discovery(): Promise<void> {
  const walls: number[] = [];
  let virt = 0;
  let trips = 0;
  let shape = '';
  for (let run = 0; run < 5; run++) {
    const { sim, adapter, gatt } = await session(scenario());
    const v0 = sim.now();
    const w0 = performance.now();
    const services = await gatt.services();
    walls.push(performance.now() - w0);
    virt = sim.now() - v0;
    trips = gatt.stats.requests;
    shape = `${services.length} services, ${services.reduce((n, s) => n + s.characteristics.length, 0)} characteristics`;
    await adapter.close();
  }
  const w = median(walls);
  console.log(`full discovery (${shape}, 7.5 ms interval, MTU 517): wall ${w.toFixed(1)} ms, ` +
    `simulated ${(virt / 1000).toFixed(3)} s, ${trips} ATT round trips (${(virt / trips).toFixed(1)} ms each), ` +
    `${(virt / w).toFixed(0)}× real time (median of ${walls.length})`);
}

export async function bench(): Promise<void> {
  await connectionEvents();
  await discovery();
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
