// Active scanning end to end, on BlueZ's controller emulator: a blewire adapter on one btvirt controller
// advertises scannable, non-connectable (ADV_SCAN_IND) BTHome data with its name and the Tx Power Level
// its controller reports (includeTxPower), and a scan response with manufacturer data. Two `blewire
// gateway` processes (the CLI, as a user runs it) scan on two other controllers of the same btvirt and
// publish to a real mosquitto: gwAct with --active, gwPas without. Each records its HCI traffic
// (BLEWIRE_CAPTURE), and Wireshark's dissectors (tshark), not our decoder, read the captures:
// - gwAct's LE Set Scan Parameters asks for active scanning (LE_Scan_Type 0x01, Core Vol 4, Part E,
//   7.8.10), so its controller sends SCAN_REQs, and an Advertising Report of event type SCAN_RSP (0x04,
//   Vol 4, Part E, 7.7.65.2) from the advertiser comes back; gwPas asks for passive (0x00) and gets none;
// - the published documents, read back with mosquitto_sub: gwAct's merges the scan response's
//   manufacturer data into the document, gwPas's has only the advertising data; both carry the TX power
//   that tshark decodes from the advertising data (Supplement to the CSS, Part A, 1.5).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { mosquittoSub, removeDir, startMosquitto, type Mosquitto, type Subscriber } from './helpers/mosquitto.js';
import { tshark } from './helpers/tshark.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BTHOME = '4002c40903bf13';
const SCAN_RSP_MD = 'c0ffee01';
const parse = (l: { payload: string }) => JSON.parse(l.payload) as Record<string, any>;

interface Cli { p: ChildProcess; err: () => string; capture: string }

describe('gateway --active on btvirt: scan requests on the air, the scan response merged, TX power published', () => {
  let btvirt: Btvirt;
  let broker: Mosquitto;
  let sub: Subscriber;
  let advertiser: Adapter;
  let dir: string;
  const clis: Cli[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'blewire-active-'));
    btvirt = await startBtvirt();
    broker = await startMosquitto();
    advertiser = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, bonds: false });
    await advertiser.advertise({
      name: 'bw-active', includeTxPower: true, serviceData: [[0xfcd2, Buffer.from(BTHOME, 'hex')]], connectable: false,
      scanResponse: { manufacturerData: [[0x05f1, Buffer.from(SCAN_RSP_MD, 'hex')]] },
    });
    sub = await mosquittoSub(broker.port, ['blewire/+/devices/+', 'blewire/+/status']);
  }, 120_000);

  afterAll(async () => {
    for (const c of clis) if (c.p.exitCode === null && c.p.signalCode === null) c.p.kill('SIGKILL');
    await advertiser?.close().catch(() => undefined);
    await sub?.stop();
    await broker?.stop();
    if (broker) removeDir(broker.dir);
    await btvirt?.stop();
    if (dir) removeDir(dir);
  });

  function gateway(id: string, active: boolean): Cli {
    const capture = join(dir, `${id}.btsnoop`);
    const args = [`${REPO}/src/cli/bin.mjs`, 'gateway', '--mqtt', broker.url, '--transport', `unix:${btvirt.leSocket}`, '--id', id,
      '--min-interval', '200', '--max-interval', '1000', ...(active ? ['--active'] : [])];
    const p = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, BLEWIRE_CAPTURE: capture, BLEWIRE_GATEWAY_BONDS: join(dir, `${id}-bonds`), BLEWIRE_TRANSPORT: '' } });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    const cli = { p, err: () => err, capture };
    clis.push(cli);
    return cli;
  }

  test('active: SCAN_REQ asked for and SCAN_RSP received (tshark), merged into the document; passive: neither; TX power in both documents', async () => {
    const address = advertiser.controller.address!;
    const act = gateway('gwAct', true);
    const pas = gateway('gwPas', false);
    const topic = (id: string) => `blewire/${id}/devices/${address}`;
    // gwAct: a document with the scan response's manufacturer data merged in (after the first, ADV_SCAN_IND-only one, when the SCAN_RSP came separately).
    const merged = parse(await sub.waitFor(l => l.topic === topic('gwAct') && parse(l)['manufacturerData']?.['0x05f1'] !== undefined, 60_000,
      'gwAct\'s document with the scan response merged').catch(e => { throw new Error(`${(e as Error).message}\n${act.err().slice(-3000)}`); }));
    expect(merged).toMatchObject({
      gateway: 'gwAct', address, name: 'bw-active', connectable: false,
      serviceData: { fcd2: BTHOME }, manufacturerData: { '0x05f1': SCAN_RSP_MD },
      decoded: { bthome: { temperature: 25, humidity: 50.55 } },
    });
    expect(typeof merged['txPower']).toBe('number');
    const plain = parse(await sub.waitFor(l => l.topic === topic('gwPas'), 60_000, 'gwPas\'s document')
      .catch(e => { throw new Error(`${(e as Error).message}\n${pas.err().slice(-3000)}`); }));
    expect(plain).toMatchObject({ gateway: 'gwPas', address, name: 'bw-active', serviceData: { fcd2: BTHOME }, decoded: { bthome: { temperature: 25 } } });
    expect(plain['txPower']).toBe(merged['txPower']);
    // Let gwPas run as long again: no scan response may arrive late either.
    await new Promise(r => setTimeout(r, 1500));

    for (const c of [act, pas]) {
      c.p.kill('SIGTERM');
      const [code] = await once(c.p, 'exit') as [number | null];
      expect({ code, err: code === 0 ? '' : c.err().slice(-2000) }).toEqual({ code: 0, err: '' });
    }
    expect(sub.lines.filter(l => l.topic === topic('gwPas')).every(l => parse(l)['manufacturerData']?.['0x05f1'] === undefined)).toBe(true);

    // What went over HCI, as Wireshark decodes it.
    const scanTypes = async (file: string) => (await tshark('-r', file, '-Y', 'bthci_cmd.opcode == 0x200b', '-T', 'fields', '-e', 'bthci_cmd.le_scan_type'))
      .trim().split('\n').filter(Boolean).map(Number);
    const reports = async (file: string) => (await tshark('-r', file, '-Y', 'bthci_evt.le_meta_subevent == 0x02', '-T', 'fields', '-E', 'separator=/t',
      '-e', 'bthci_evt.le_advts_event_type', '-e', 'bthci_evt.bd_addr', '-e', 'btcommon.eir_ad.entry.power_level', '-e', 'btcommon.eir_ad.entry.company_id'))
      .trim().split('\n').filter(Boolean).map(l => l.split('\t'));
    expect(await scanTypes(act.capture)).toEqual(expect.arrayContaining([1]));
    expect((await scanTypes(act.capture)).every(t => t === 1)).toBe(true);
    expect((await scanTypes(pas.capture)).length).toBeGreaterThan(0);
    expect((await scanTypes(pas.capture)).every(t => t === 0)).toBe(true);
    const mine = (rows: string[][]) => rows.filter(r => r[1]?.toUpperCase() === address.toUpperCase());
    const actRows = mine(await reports(act.capture));
    const pasRows = mine(await reports(pas.capture));
    // ADV_SCAN_IND is event type 0x02, SCAN_RSP 0x04 (tshark prints the number).
    expect(actRows.map(r => Number(r[0]))).toEqual(expect.arrayContaining([2, 4]));
    expect(actRows.find(r => Number(r[0]) === 4)![3]).toMatch(/0x05f1/i);
    expect(pasRows.map(r => Number(r[0]))).toContain(2);
    expect(pasRows.map(r => Number(r[0]))).not.toContain(4);
    // The TX power in the documents is the Tx Power Level octet tshark reads from the advertising data.
    const tx = actRows.find(r => Number(r[0]) === 2 && r[2] !== '')![2]!;
    expect(merged['txPower']).toBe(Number(tx));
  }, 180_000);
});
