// `blewire advertise --interval / --tx-power` checked on the wire (issue 10): the real CLI in a child
// process advertises on one btvirt controller, recording its side; a blewire central on another
// controller of the same btvirt finds it. tshark, not our decoder, reads the recording: LE Set
// Advertising Parameters carries the interval asked for in 0.625 ms units (Vol 4, Part E, 7.8.5), LE
// Read Advertising Physical Channel Tx Power (7.8.6) is asked and the level the controller answered is
// the TX Power Level AD structure (type 0x0A, Core Supplement Part A, 1.5) in LE Set Advertising Data
// (7.8.7), which is also what the central receives. No guest: btvirt only.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { tshark, tsharkMalformed } from './helpers/tshark.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'src/cli/bin.mjs');
const dir = mkdtempSync(join(tmpdir(), 'blewire-advertise-btvirt-'));
const capture = join(dir, 'advertise.btsnoop');
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');
const NAME = 'bw-adv';
const INTERVAL_MS = 200;

/** tshark's fields of the records matching `filter`, one array per record. */
async function fields(filter: string, ...names: string[]): Promise<string[][]> {
  const out = await tshark('-r', capture, '-Y', filter, '-T', 'fields', '-E', 'separator=|', ...names.flatMap(n => ['-e', n]));
  return out.split('\n').filter(Boolean).map(l => l.split('|'));
}

describe('blewire advertise --interval --tx-power over btvirt, read back by tshark', () => {
  let btvirt: Btvirt;
  let child: ChildProcessWithoutNullStreams;
  let exited: Promise<number | null>;
  const events: Array<Record<string, unknown>> = [];
  let stderr = '';

  beforeAll(async () => {
    btvirt = await startBtvirt();
    child = spawn(process.execPath, [BIN, 'advertise', '--name', NAME, '--service', '180f', '--interval', String(INTERVAL_MS), '--tx-power',
      '--transport', `unix:${btvirt.leSocket}`, '--capture', capture, '--json'],
    { cwd: ROOT, env: { ...process.env, BLEWIRE_TRANSPORT: '', BLEWIRE_CAPTURE: '' } });
    exited = new Promise(r => child.on('exit', code => r(code)));
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no advertising event: ${stderr}`)), 60_000);
      createInterface({ input: child.stdout }).on('line', line => {
        try {
          events.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          return;
        }
        if (events.some(e => e['event'] === 'advertising')) { clearTimeout(t); res(); }
      });
      child.on('exit', code => { clearTimeout(t); rej(new Error(`blewire advertise exited ${code}: ${stderr}`)); });
    });
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await btvirt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a central receives the advertised data with the TX power level; SIGINT exits 0', async () => {
    const central = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, bonds: false });
    try {
      const ad = await central.find({ name: NAME, timeout: 10_000 });
      expect(ad, stderr).toBeDefined();
      const printed = events.find(e => e['event'] === 'advertising')!;
      expect(hex(ad!.data)).toBe(printed['data']);
      expect(ad!.txPower).toBeDefined();
    } finally {
      await central.close();
    }
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 60_000);

  test('tshark: the interval in LE Set Advertising Parameters, the TX power the controller gave in the AD, no malformed frame', async () => {
    expect(await tsharkMalformed(capture)).toEqual([]);
    // LE Set Advertising Parameters (0x2006): min and max in 0.625 ms units.
    const params = await fields('bthci_cmd.opcode == 0x2006', 'bthci_cmd.le_advts_interval_min', 'bthci_cmd.le_advts_interval_max');
    expect(params.length).toBeGreaterThanOrEqual(1);
    for (const [min, max] of params) {
      expect(min).toMatch(/^\d+$/);
      expect(Number(min)).toBe(INTERVAL_MS / 0.625);
      expect(Number(max)).toBe(INTERVAL_MS / 0.625);
    }
    // LE Read Advertising Physical Channel Tx Power (0x2007) asked; its Command Complete's level.
    expect(await fields('bthci_cmd.opcode == 0x2007', 'frame.number')).toHaveLength(1);
    const answered = await fields('bthci_evt.opcode == 0x2007', 'bthci_evt.transmit_power_level');
    expect(answered).toHaveLength(1);
    expect(answered[0]![0]).toMatch(/^-?\d+$/);
    const level = Number(answered[0]![0]);
    expect(Number.isInteger(level)).toBe(true);
    // LE Set Advertising Data (0x2008): the TX Power Level AD structure holds that level, beside the name.
    const ad = await fields('bthci_cmd.opcode == 0x2008', 'btcommon.eir_ad.entry.power_level', 'btcommon.eir_ad.entry.device_name');
    expect(ad.length).toBeGreaterThanOrEqual(1);
    for (const [power, name] of ad) {
      expect(power).toMatch(/^-?\d+$/);
      expect(Number(power)).toBe(level);
      expect(name).toBe(NAME);
    }
  }, 120_000);
});
