// `blewire gateway-merge`, the command itself (spawned as a user runs it), against Debian's mosquitto
// with two gateways publishing: gwA and gwB on two simulated worlds that share one sensor (gwA hears it
// at -40 dBm, gwB at -75 dBm) and each have one sensor of their own. The command prints, per device,
// every gateway's RSSI and the nearest (loudest online) gateway as JSON Lines; with --publish it also
// publishes them retained on blewire/merged/<address>, read back by mosquitto_sub (a client we did not
// write). When gwA stops (its retained `offline`), the shared sensor's nearest gateway becomes gwB.
// SIGTERM ends the command with exit code 0.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig, type PartialConfig } from '../../src/apps/gateway/config.js';
import { Gateway } from '../../src/apps/gateway/gateway.js';
import { jsonLogger } from '../../src/apps/gateway/log.js';
import { createSimulator } from '../../src/sim/index.js';
import type { Scenario, SimPeripheral } from '../../src/sim/types.js';
import { mosquittoSub, removeDir, startMosquitto, type Mosquitto, type Subscriber } from './helpers/mosquitto.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SHARED = 'C4:7C:8D:6A:20:01';
const ONLY_A = 'C4:7C:8D:6A:20:0A';
const ONLY_B = 'C4:7C:8D:6A:20:0B';

const sensor = (address: string, rssi: number, name: string): SimPeripheral => ({
  address, addressType: 'public',
  advertising: { intervalMs: 60, rssi, rssiDrift: 0, connectable: false, data: { flags: 0x06, name, serviceData: [[0xfcd2, { hex: '4002C40903BF13' }]] } },
});
const worlds: Record<'gwA' | 'gwB', Scenario> = {
  gwA: { name: 'room-a', seed: 1, controller: { address: '00:1B:DC:5E:20:0A' }, peripherals: [sensor(SHARED, -40, 'shared'), sensor(ONLY_A, -60, 'only-a')] },
  gwB: { name: 'room-b', seed: 2, controller: { address: '00:1B:DC:5E:20:0B' }, peripherals: [sensor(SHARED, -75, 'shared'), sensor(ONLY_B, -55, 'only-b')] },
};

interface Merged { address: string; name?: string; nearest?: string; gateways: Record<string, { rssi: number; lastSeen: string }> }

describe('blewire gateway-merge (the CLI) with two gateways publishing to mosquitto', () => {
  let broker: Mosquitto;
  const gws = new Map<string, Gateway>();
  let sub: Subscriber;

  beforeAll(async () => {
    broker = await startMosquitto();
    sub = await mosquittoSub(broker.port, ['blewire/merged/+']);
    for (const id of ['gwA', 'gwB'] as const) {
      const config = resolveConfig({ env: {}, flags: {
        id, mqtt: { url: broker.url }, transport: 'sim', publish: { minIntervalMs: 200, maxIntervalMs: 1000 }, summaryIntervalMs: 0,
        backoff: { minMs: 200, maxMs: 1000 },
      } as PartialConfig });
      const g = new Gateway(config, { transport: () => createSimulator(worlds[id], { speed: 1 }).transport, logger: jsonLogger('error', () => undefined) });
      await g.start();
      gws.set(id, g);
    }
  }, 60_000);

  afterAll(async () => {
    for (const g of gws.values()) await g.stop();
    await sub?.stop();
    await broker?.stop();
    if (broker) removeDir(broker.dir);
  });

  test('prints each device once per gateway with its RSSI and the nearest gateway; --publish retains it; nearest moves when a gateway goes offline; SIGTERM exits 0', async () => {
    const p = spawn(process.execPath, [`${REPO}/src/cli/bin.mjs`, 'gateway-merge', '--mqtt', broker.url, '--publish', '--stale', '60000'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Merged[] = [];
    let out = '', err = '';
    p.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      let i: number;
      while ((i = out.indexOf('\n')) >= 0) { lines.push(JSON.parse(out.slice(0, i)) as Merged); out = out.slice(i + 1); }
    });
    p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    const waitLine = async (what: string, pred: (m: Merged) => boolean, ms = 30_000): Promise<Merged> => {
      const end = Date.now() + ms;
      for (;;) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (Date.now() > end || p.exitCode !== null) throw new Error(`gateway-merge printed no ${what} within ${ms} ms (${lines.length} lines; stderr: ${err})`);
        await new Promise(r => setTimeout(r, 50));
      }
    };
    try {
      const shared = await waitLine('line for the shared sensor with both gateways',
        m => m.address === SHARED && m.gateways['gwA'] !== undefined && m.gateways['gwB'] !== undefined, 60_000);
      expect(shared).toMatchObject({ address: SHARED, name: 'shared', nearest: 'gwA', gateways: { gwA: { rssi: -40 }, gwB: { rssi: -75 } } });
      expect(Object.keys(shared.gateways).sort()).toEqual(['gwA', 'gwB']);
      expect(await waitLine('line for gwA\'s own sensor', m => m.address === ONLY_A)).toMatchObject({ nearest: 'gwA', gateways: { gwA: { rssi: -60 } } });
      const b = await waitLine('line for gwB\'s own sensor', m => m.address === ONLY_B);
      expect(b).toMatchObject({ nearest: 'gwB', gateways: { gwB: { rssi: -55 } } });
      expect(Object.keys(b.gateways)).toEqual(['gwB']);
      // Every line names a gateway that publishes, and the time each one heard the device.
      for (const m of lines) for (const [gw, s] of Object.entries(m.gateways)) {
        expect(['gwA', 'gwB']).toContain(gw);
        expect(Number.isFinite(Date.parse(s.lastSeen))).toBe(true);
      }
      // --publish: the same view, retained on blewire/merged/<address>, as mosquitto_sub reads it.
      const pub = await sub.waitFor(l => l.topic === `blewire/merged/${SHARED}` && (JSON.parse(l.payload) as Merged).gateways['gwA'] !== undefined
        && (JSON.parse(l.payload) as Merged).gateways['gwB'] !== undefined, 10_000, 'a merged line for the shared sensor with both gateways');
      expect(JSON.parse(pub.payload)).toMatchObject({ address: SHARED, nearest: 'gwA' });
      const late = await mosquittoSub(broker.port, [`blewire/merged/${ONLY_B}`]);
      try {
        expect(JSON.parse((await late.waitFor(l => l.topic === `blewire/merged/${ONLY_B}`, 5000, 'the retained merged line')).payload)).toMatchObject({ nearest: 'gwB' });
      } finally {
        await late.stop();
      }
      // gwA stops: its `offline` reaches the command, and gwB's next document of the shared sensor makes gwB the nearest.
      const mark = lines.length;
      await gws.get('gwA')!.stop();
      gws.delete('gwA');
      const moved = await waitLine('line with gwB nearest after gwA went offline', m => lines.indexOf(m) >= mark && m.address === SHARED && m.nearest === 'gwB', 20_000);
      expect(moved.gateways['gwA']?.rssi).toBe(-40); // still listed (last heard), no longer the nearest
      p.kill('SIGTERM');
      const [code] = await once(p, 'exit') as [number | null];
      expect({ code, err: code === 0 ? '' : err }).toEqual({ code: 0, err: '' });
      expect(err).toMatch(/"msg":"merging"/);
    } finally {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
  }, 120_000);
});
