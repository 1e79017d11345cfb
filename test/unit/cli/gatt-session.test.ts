// The default session opener of explore/read/write/notify (src/cli/explore.ts), run in-process on
// the simulated demo world: without --type it scans for the address to learn its type (both demo
// devices use random static addresses, so a guessed "public" would never connect), connects,
// exchanges the MTU, and closes the link and the adapter when the command ends.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { run as explore } from '../../../src/cli/explore.js';
import { run as read } from '../../../src/cli/read.js';
import { run as write } from '../../../src/cli/write.js';
import { run as notify } from '../../../src/cli/notify.js';
import { TimeoutError } from '../../../src/errors.js';
import { createSimulator, HEART_RATE_SENSOR, type PeerBehaviour, type Simulator } from '../../../src/sim/index.js';
import type { HciTransport, TransportReceiver } from '../../../src/transport/types.js';
import { registerTransport } from '../../../src/transport/open.js';
import { captureOutput, decodedCapture } from './output.js';
import type { DecodedL2cap, DecodedRecord } from '../../../src/inspect/decode.js';

const PULSE = 'D4:1E:35:7A:00:01';
const THERM = 'D4:1E:35:7A:00:02';
const dir = mkdtempSync(join(tmpdir(), 'blewire-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(() => {
  vi.stubEnv('BLEWIRE_TRANSPORT', '');
  vi.stubEnv('BLEWIRE_CAPTURE', '');
  vi.stubEnv('XDG_CACHE_HOME', join(dir, 'cache')); // never the user's own GATT cache
});
afterEach(() => { vi.restoreAllMocks(); vi.unstubAllEnvs(); });

const records = (lines: ReturnType<typeof decodedCapture>): DecodedRecord[] => lines.filter((l): l is DecodedRecord => l.line === 'record');
const att = (lines: ReturnType<typeof decodedCapture>): DecodedL2cap[] => lines.filter((l): l is DecodedL2cap => l.line === 'l2cap' && l.cid === 0x0004);
const kinds = (lines: ReturnType<typeof decodedCapture>): string[] => records(lines).map(r => String(r.fields['kind']));

/** The host's create-connection command in a capture: the address and address type it asked for. */
function createConnection(lines: ReturnType<typeof decodedCapture>): { peerAddress: unknown; peerAddressType: unknown } {
  const cmd = records(lines).find(r => r.dir === 'tx' && /^le(Extended)?CreateConnection$/.test(String(r.fields['kind'])));
  expect(cmd).toBeDefined();
  return { peerAddress: cmd!.fields['peerAddress'], peerAddressType: cmd!.fields['peerAddressType'] };
}

describe('GATT commands on --transport sim, address type learnt by scanning', () => {
  test('read Device Name of "Pulse HR": scanned first, then connected to the random address it advertises with', async () => {
    const out = captureOutput();
    const capture = join(dir, 'read.btsnoop');
    expect(await read([PULSE, '2a00', '--transport', 'sim', '--no-cache', '--capture', capture])).toBe(0);
    expect(out.stdout()).toEqual(['50 75 6c 73 65 20 48 52  "Pulse HR"']);

    const lines = decodedCapture(capture);
    const k = kinds(lines);
    const scanOn = k.findIndex(x => /^leSet(Extended)?ScanEnable$/.test(x));
    const connect = k.findIndex(x => /^le(Extended)?CreateConnection$/.test(x));
    expect(scanOn).toBeGreaterThan(-1);
    expect(connect).toBeGreaterThan(scanOn);
    expect(createConnection(lines)).toEqual({ peerAddress: PULSE, peerAddressType: 1 }); // 0x01 random device address
    // The Read Request for the value handle of 0x2a00 and its response with the name.
    const rsp = att(lines).find(l => l.dir === 'rx' && l.pdu.kind === 'readRsp');
    expect(rsp?.pdu['value']).toEqual(new TextEncoder().encode('Pulse HR'));
    // The command disconnects before it closes the adapter.
    expect(k).toContain('disconnect');
    expect(k).toContain('disconnectionComplete');
  });

  test('with --type the opener does not scan; a wrong --type never connects (timeout, virtual time)', async () => {
    const out = captureOutput();
    const capture = join(dir, 'typed.btsnoop');
    expect(await read([PULSE, '2a00', '--transport', 'sim', '--type', 'random', '--no-cache', '--capture', capture])).toBe(0);
    expect(out.stdout()).toEqual(['50 75 6c 73 65 20 48 52  "Pulse HR"']);
    const k = kinds(decodedCapture(capture));
    expect(k.filter(x => /^leSet(Extended)?ScanEnable$/.test(x))).toEqual([]);
    expect(createConnection(decodedCapture(capture))).toEqual({ peerAddress: PULSE, peerAddressType: 1 });

    // Nobody has the public address D4:1E:35:7A:00:01: the connection attempt times out.
    await expect(read([PULSE, '2a00', '--transport', 'sim', '--type', 'public', '--timeout', '3000', '--no-cache']))
      .rejects.toBeInstanceOf(TimeoutError);
  });

  test('explore the thermometer: the tree with names, properties and values', async () => {
    const out = captureOutput();
    expect(await explore([THERM, '--transport', 'sim', '--no-cache'])).toBe(0);
    const text = out.stdout().join('\n');
    expect(text).toMatch(/^service 0x1800 \(generic_access\)  \[0x0001–0x/m);
    expect(text).toMatch(/characteristic 0x2a00 \(gap\.device_name\)  0x[0-9a-f]{4}  \(read\)  = 54 68 65 72 6d 2d 31  "Therm-1"/);
    expect(text).toMatch(/service 0x1809 \(health_thermometer\)/);
    expect(text).toMatch(/characteristic 0x2a1c \(temperature_measurement\)  0x[0-9a-f]{4}  \(indicate\)\n    descriptor 0x2902 \(gatt\.client_characteristic_configuration\)  0x[0-9a-f]{4}  = 00 00/);
    expect(text).toMatch(/characteristic 0x2a21 \(measurement_interval\)  0x[0-9a-f]{4}  \(read, write\)  = 01 00/);
    expect(text).toMatch(/characteristic 0x2a19 \(battery_level\)  0x[0-9a-f]{4}  \(read\)  = 3c/);
    expect(text).toMatch(/\nATT_MTU \d+; discovery: \d+ round trips; \d+ requests in all$/);
  });

  test('explore --json; with the cache on, a device without a Database Hash is discovered afresh each time', async () => {
    const out = captureOutput();
    expect(await explore([PULSE, '--transport', 'sim', '--json'])).toBe(0);
    const first = JSON.parse(out.stdout().join('\n'));
    expect(first.address).toBe(PULSE);
    expect(first.services.map((s: { uuid: string }) => s.uuid.slice(4, 8))).toEqual(['1800', '1801', '180d', '180f', '180a']);
    const hr = first.services[2].characteristics;
    expect(hr.map((c: { uuid: string }) => c.uuid.slice(4, 8))).toEqual(['2a37', '2a38', '2a39']);
    expect(hr[1]).toMatchObject({ properties: ['read'], value: '01' }); // Body Sensor Location: chest
    expect(first.roundTrips.cacheHits).toBe(0);

    const before = out.stdout().length;
    expect(await explore([PULSE, '--transport', 'sim', '--json'])).toBe(0);
    const second = JSON.parse(out.stdout().slice(before).join('\n'));
    expect(second.services).toEqual(first.services);
    // The demo devices have no Database Hash and are not bonded, so a cache could not be validated
    // (Vol 3, Part G, 2.5.2): nothing is stored under XDG_CACHE_HOME and discovery is repeated in full.
    expect(second.roundTrips.cacheHits).toBe(0);
    expect(second.roundTrips.discoveryRequests).toBe(first.roundTrips.discoveryRequests);
    expect(existsSync(join(dir, 'cache', 'blewire', 'gatt')) ? readdirSync(join(dir, 'cache', 'blewire', 'gatt')) : []).toEqual([]);
  });

  test('write the thermometer\'s Measurement Interval, read it back in a new session', async () => {
    // One simulator kept across commands (each command opens and closes its own adapter), so a value
    // written by one command is there for the next; the sim stops when the test ends.
    let sim: Simulator | undefined;
    registerTransport('sim-kept', () => {
      sim ??= createSimulator('demo');
      return keptOpen(sim.transport);
    });
    try {
      const out = captureOutput();
      expect(await read([THERM, 'measurement_interval', '--transport', 'sim-kept:', '--no-cache'])).toBe(0);
      expect(out.stdout().at(-1)).toBe('01 00');

      const capture = join(dir, 'write.btsnoop');
      expect(await write([THERM, '2a21', '0500', '--transport', 'sim-kept:', '--no-cache', '--capture', capture])).toBe(0);
      expect(out.stdout().at(-1)).toMatch(/^wrote 2 octet\(s\) to .* \(0x[0-9a-f]{4}\)$/);
      const handle = Number.parseInt(/\(0x([0-9a-f]{4})\)$/.exec(out.stdout().at(-1)!)![1]!, 16);
      const pdus = att(decodedCapture(capture)).map(l => l.pdu);
      expect(pdus).toContainEqual({ kind: 'writeReq', handle, value: Uint8Array.of(0x05, 0x00) });
      expect(pdus).toContainEqual({ kind: 'writeRsp' });

      expect(await read([THERM, '2a21', '--transport', 'sim-kept:', '--no-cache'])).toBe(0);
      expect(out.stdout().at(-1)).toBe('05 00');
    } finally {
      await sim?.transport.close();
    }
  });

  test('notify --count 3: three heart-rate measurements, then unsubscribed', async () => {
    const out = captureOutput();
    const capture = join(dir, 'notify.btsnoop');
    expect(await notify([PULSE, 'heart_rate_measurement', '--count', '3', '--transport', 'sim', '--no-cache', '--capture', capture])).toBe(0);
    const lines = out.stdout();
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      // Arrival time, the hex, and the decoded Heart Rate Measurement: flags 0x06 (UINT8 bpm, sensor
      // contact supported and detected), then bpm around 72 ± 6. (The time and the decoded form are
      // new: notify used to print the hex alone.)
      const m = /^\d\d:\d\d:\d\d\.\d{3}  06 ([0-9a-f]{2})  (\d+) bpm, contact$/.exec(l);
      expect(m, l).not.toBeNull();
      const bpm = Number.parseInt(m![1]!, 16);
      expect(Number(m![2])).toBe(bpm);
      expect(bpm).toBeGreaterThanOrEqual(60);
      expect(bpm).toBeLessThanOrEqual(84);
    }
    const pdus = att(decodedCapture(capture));
    const ntf = pdus.filter(p => p.pdu.kind === 'handleValueNtf');
    expect(ntf.map(p => p.pdu['value'])).toEqual(lines.map(l => Uint8Array.from(l.split('  ')[1]!.split(' '), h => Number.parseInt(h, 16))));
    const cccd = pdus.filter(p => p.pdu.kind === 'writeReq').map(p => p.pdu['value']);
    expect(cccd.at(-2)).toEqual(Uint8Array.of(1, 0)); // notifications on
    expect(cccd.at(-1)).toEqual(Uint8Array.of(0, 0)); // and off again on the way out
  });

  test('notify --json: one JSON line per value with its handle', async () => {
    const out = captureOutput();
    expect(await notify([PULSE, '2a37', '--count', '2', '--json', '--transport', 'sim', '--no-cache'])).toBe(0);
    const values = out.stdout().map(l => JSON.parse(l) as { t: string; handle: number; value: string });
    expect(values).toHaveLength(2);
    expect(new Set(values.map(v => v.handle)).size).toBe(1);
    for (const v of values) expect(v.value).toMatch(/^06[0-9a-f]{2}$/);
  });
});

describe('GATT commands against a peer that refuses or ignores Exchange MTU (issue 15, "State after a fault")', () => {
  /** A transport scheme serving the heart-rate sensor with `behaviour`; `sims` keeps each simulator made. */
  function peerWith(scheme: string, behaviour: PeerBehaviour): Simulator[] {
    const sims: Simulator[] = [];
    registerTransport(scheme, () => {
      const sim = createSimulator({ name: scheme, peripherals: [{ ...HEART_RATE_SENSOR, behaviour }] });
      sims.push(sim);
      return sim.transport;
    });
    return sims;
  }

  test('Request Not Supported: explore, read, write and notify all work at ATT_MTU 23', async () => {
    peerWith('sim-refuses-mtu', { errors: [{ opcode: 0x02, error: 0x06 }] });
    const t = ['--transport', 'sim-refuses-mtu:', '--type', 'random', '--no-cache'];
    const out = captureOutput();
    const capture = join(dir, 'refuses-mtu.btsnoop');
    expect(await explore([PULSE, '--json', ...t, '--capture', capture])).toBe(0);
    const tree = JSON.parse(out.stdout().join('\n'));
    expect(tree.services.map((s: { name: string }) => s.name)).toContain('heart_rate');
    const pdus = att(decodedCapture(capture)).map(l => l.pdu);
    expect(pdus.filter(p => p.kind === 'exchangeMtuReq')).toHaveLength(1);
    expect(pdus).toContainEqual({ kind: 'errorRsp', requestOpcode: 0x02, handle: 0, errorCode: 0x06 });

    const before = out.stdout().length;
    expect(await read([PULSE, '2a00', ...t])).toBe(0);
    expect(out.stdout().at(-1)).toBe('50 75 6c 73 65 20 48 52  "Pulse HR"');
    expect(await write([PULSE, '2a39', '01', ...t])).toBe(0);
    expect(out.stdout().at(-1)).toMatch(/^wrote 1 octet\(s\) to /);
    expect(await notify([PULSE, 'heart_rate_measurement', '--count', '2', ...t])).toBe(0);
    expect(out.stdout().slice(before + 2)).toHaveLength(2);
  });

  test('--timeout bounds the exchange: a silent peer fails after --timeout ms, not the 30 s ATT timeout', async () => {
    const sims = peerWith('sim-ignores-mtu', { ignore: [{ opcode: 0x02 }] });
    captureOutput();
    const err = await read([PULSE, '2a00', '--transport', 'sim-ignores-mtu:', '--type', 'random', '--no-cache', '--timeout', '3000']).catch(e => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).operation).toBe('exchangeMtu');
    expect(sims[0]!.now()).toBeLessThan(10_000);
  });
});

/** The simulator's transport with a close() that leaves the simulator running (for sim-kept). */
function keptOpen(t: HciTransport): HciTransport {
  let open = true;
  return {
    description: t.description,
    ...(t.clock ? { clock: t.clock } : {}),
    send: (p: Uint8Array) => {
      if (open) t.send(p);
    },
    setReceiver: (r: TransportReceiver) => t.setReceiver(r),
    close: async () => { open = false; },
  };
}
