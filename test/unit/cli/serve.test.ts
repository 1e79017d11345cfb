// `blewire serve`, `blewire advertise` and `blewire twin`, run in-process as main() runs them, on the
// shared simulated air: the command's adapter is one controller, a blewire central on another
// controller of the same air scans, connects, discovers, reads, writes and subscribes. The central's
// ATT traffic is tapped under its host, so the values are checked as the bytes on the link, and the
// command's JSON Lines say what it saw. A database file is hostile input: every mistake is a typed
// error with its place in the file, exit code 1, and nothing is opened.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { Adapter } from '../../../src/api/adapter.js';
import type { Connection } from '../../../src/api/connection.js';
import { toHex } from '../../../src/bytes/hex.js';
import { run as serve } from '../../../src/cli/serve.js';
import { run as advertise } from '../../../src/cli/advertise.js';
import { run as twin } from '../../../src/cli/twin.js';
import { report } from '../../../src/cli/report.js';
import { createSimulator, SimAir, type Simulator } from '../../../src/sim/index.js';
import { registerTransport } from '../../../src/transport/open.js';
import type { HciTransport, TransportReceiver } from '../../../src/transport/types.js';
import { DatabaseFileError } from '../../../src/errors.js';
import { parseDatabase, MAX_DATABASE_FILE_BYTES } from '../../../src/tooling/database-file.js';
import { captureOutput } from './output.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'blewire-serve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The command's transport: a controller on the air of the running test (`--transport testair`), or a
// legacy-only one (`testair-legacy`); `opened` counts them, so "nothing was opened" can be checked.
let air: SimAir;
let opened = 0;
let servedSim: Simulator | undefined;
registerTransport('testair', () => {
  opened++;
  servedSim = createSimulator({ name: 'served', peripherals: [] }, { air });
  return servedSim.transport;
});
registerTransport('testair-legacy', () => {
  opened++;
  return createSimulator({ name: 'served', controller: { extended: false }, peripherals: [] }, { air }).transport;
});

/** ATT PDUs (CID 0x0004) the central's host sent (tx) and received (rx), as hex. */
function tap(inner: HciTransport): { transport: HciTransport; att: Array<{ dir: 'tx' | 'rx'; hex: string }> } {
  const att: Array<{ dir: 'tx' | 'rx'; hex: string }> = [];
  // The ATT PDU being reassembled in each direction (its entry in `att`), until its continuing fragments are in.
  const open: Record<'tx' | 'rx', { entry: { dir: 'tx' | 'rx'; hex: string }; left: number } | undefined> = { tx: undefined, rx: undefined };
  const grab = (dir: 'tx' | 'rx', p: Uint8Array): void => {
    // H4 ACL: type, handle + flags (2), length (2), L2CAP length (2), CID (2), payload; a continuing
    // fragment (PB 0b01, Vol 4, Part E, 5.4.2) adds to the PDU its first fragment started.
    if (p[0] !== 0x02 || p.length < 5) return;
    if (((p[2]! >> 4) & 0x3) === 0x1) {
      const o = open[dir];
      if (!o) return;
      o.entry.hex += toHex(p.subarray(5));
      o.left -= p.length - 5;
      if (o.left <= 0) open[dir] = undefined;
      return;
    }
    open[dir] = undefined;
    if (p.length < 9 || (p[7]! | (p[8]! << 8)) !== 0x0004) return;
    const entry = { dir, hex: toHex(p.subarray(9)) };
    att.push(entry);
    const left = (p[5]! | (p[6]! << 8)) - (p.length - 9);
    if (left > 0) open[dir] = { entry, left };
  };
  return {
    att,
    transport: {
      ...(inner.clock ? { clock: inner.clock } : {}),
      description: inner.description,
      send: p => { grab('tx', p); inner.send(p); },
      setReceiver: (r: TransportReceiver) => inner.setReceiver({ packet: p => { grab('rx', p); r.packet(p); }, closed: e => r.closed(e) }),
      close: () => inner.close(),
    },
  };
}

const centrals: Adapter[] = [];
beforeEach(() => {
  air = new SimAir();
  opened = 0;
  vi.stubEnv('BLEWIRE_TRANSPORT', '');
  vi.stubEnv('BLEWIRE_CAPTURE', '');
});
afterEach(async () => {
  for (const c of centrals.splice(0)) await c.close().catch(() => undefined);
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

async function central(): Promise<{ adapter: Adapter; att: Array<{ dir: 'tx' | 'rx'; hex: string }> }> {
  const t = tap(createSimulator({ name: 'central', peripherals: [] }, { air }).transport);
  const adapter = await Adapter.open({ transport: t.transport, bonds: false, mtu: 185 });
  centrals.push(adapter);
  return { adapter, att: t.att };
}

/** Start a command the way main() runs it (report() for what it throws); stop() aborts it like Ctrl-C. */
function start(cmd: (argv: string[], o: { signal?: AbortSignal }) => Promise<number>, name: string, argv: string[]) {
  const out = captureOutput();
  const ac = new AbortController();
  const done = cmd(argv, { signal: ac.signal }).catch(e => report(name, e));
  const events = (): Array<Record<string, unknown>> => out.stdout().filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>);
  return { out, events, done, ready: () => advertising(out), stop: async (): Promise<number> => { ac.abort(); return done; } };
}

/**
 * Until the command advertises: it reads its file and opens its adapter in real time while the air's
 * virtual time runs on, so a central's scan deadline would pass before there is anything to hear.
 */
async function advertising(out: ReturnType<typeof captureOutput>): Promise<void> {
  await vi.waitFor(() => {
    if (out.stderr().some(l => l.startsWith('blewire '))) throw new Error(`failed: ${out.stderr().join('\n')}`);
    expect(out.stdout().some(l => /advertising/.test(l))).toBe(true);
  }, { timeout: 20_000, interval: 20 });
}

async function cli(cmd: (argv: string[]) => Promise<number>, name: string, argv: string[]) {
  const out = captureOutput();
  let code: number;
  try {
    code = await cmd(argv);
  } catch (e) {
    code = report(name, e);
  }
  return { code, out: out.stdout(), err: out.stderr() };
}

const noStack = (lines: string[]): void => { for (const l of lines) expect(l).not.toMatch(/^\s+at /); };
const le16 = (n: number): string => toHex(Uint8Array.of(n & 0xff, n >> 8));
const SVC = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
const RX = '6e400002-b5a3-f393-e0a9-e50e24dcca9e';

const WORLD = {
  name: 'two devices',
  peripherals: [
    { name: 'Other', address: 'D4:1E:35:7A:00:09', gatt: [{ uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: { hex: '10' } }] }] },
    {
      name: 'Sensor X', address: 'D4:1E:35:7A:00:01', addressType: 'random',
      advertising: { data: { flags: 6, name: 'Sensor X', serviceUuids: [0x180f] }, intervalMs: 50 },
      gatt: [
        { uuid: 0x1800, characteristics: [
          { uuid: 0x2a00, properties: ['read'], value: 'Sensor X' },
          { uuid: 0x2a01, properties: ['read'], value: { hex: '4103' } },
        ] },
        { uuid: 0x1801, characteristics: [{ uuid: 0x2a05, properties: ['indicate'] }] },
        { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read', 'notify'], value: { hex: '57' } }] },
        { uuid: SVC, characteristics: [
          { uuid: RX, properties: ['read', 'write', 'writeWithoutResponse'], value: 'hello',
            descriptors: [{ uuid: 0x2901, value: 'commands' }] },
          { uuid: 0x2a29, properties: ['read'], value: 'Acme' },
        ] },
      ],
      notifications: [{ characteristic: 0x2a19, everyMs: 100, generator: { kind: 'cycle', values: [{ hex: '56' }, { hex: '55' }, { hex: '54' }] } }],
      behaviour: { responseDelayMs: 5 },
    },
  ],
};

describe('blewire serve on the simulated air', () => {
  test('a central discovers, reads, writes and subscribes; advertising resumes after the disconnection; writes are kept', async () => {
    const file = join(dir, 'world.json');
    writeFileSync(file, JSON.stringify(WORLD));
    const s = start(serve, 'serve', [file, '--device', 'd4:1e:35:7a:00:01', '--transport', 'testair', '--json']);
    await s.ready();
    // The controller refuses to advertise while connected (Command Disallowed, as some do): the resume after
    // the connection fails, and the command starts advertising again after the disconnection.
    servedSim!.failCommand('leSetExtendedAdvertisingEnable', 0x0c, 1);
    const { adapter: c, att } = await central();
    const ad = await c.find({ name: 'Sensor X', timeout: 5000 });
    expect(ad, [...s.out.stdout(), ...s.out.stderr()].join('\n')).toBeDefined();
    // The file's advertising content, built by the AD table: flags, the 16-bit list [0x180f], the name.
    expect(toHex(ad!.data)).toBe(`020106${'03030f18'}0909${toHex(new TextEncoder().encode('Sensor X'))}`);
    const conn = await c.connect(ad!);
    const services = await conn.services();
    expect(services.map(x => x.uuid)).toEqual([
      '00001800-0000-1000-8000-00805f9b34fb', '00001801-0000-1000-8000-00805f9b34fb', '0000180f-0000-1000-8000-00805f9b34fb', SVC,
    ]);
    // Our GAP service answers with the file's Device Name and Appearance (0x0341, little-endian on the wire).
    expect(new TextDecoder().decode(await (await conn.characteristic(0x1800, 0x2a00)).read())).toBe('Sensor X');
    expect(toHex(await (await conn.characteristic(0x1800, 0x2a01)).read())).toBe('4103');
    const battery = await conn.characteristic(0x180f, 0x2a19);
    expect(toHex(await battery.read())).toBe('57');
    expect(att).toContainEqual({ dir: 'rx', hex: '0b57' }); // Read Response with the file's value
    const rx = await conn.characteristic(SVC, RX);
    expect(new TextDecoder().decode(await rx.read())).toBe('hello');
    expect(new TextDecoder().decode(await rx.descriptor(0x2901).read())).toBe('commands');
    await rx.write(Uint8Array.of(1, 2, 3));
    expect(att).toContainEqual({ dir: 'tx', hex: `12${le16(rx.handle)}010203` });
    expect(att).toContainEqual({ dir: 'rx', hex: '13' });
    expect(toHex(await rx.read())).toBe('010203');
    await expect((await conn.characteristic(SVC, 0x2a29)).write(Uint8Array.of(0), { withResponse: true })).rejects.toMatchObject({ code: 'EATT', errorCode: 0x03 }); // Write Not Permitted
    // The stream plays to the subscriber: the cycle's values in order, each a Handle Value Notification.
    const got: string[] = [];
    const it = battery.notifications()[Symbol.asyncIterator]();
    for (let i = 0; i < 4; i++) got.push(toHex((await it.next()).value as Uint8Array));
    await it.return!();
    expect(got).toEqual(['56', '55', '54', '56']);
    expect(att).toContainEqual({ dir: 'rx', hex: `1b${le16(battery.handle)}56` });
    await conn.disconnect();

    // Advertising again, and the write is still there for the next central.
    await c.scanner.settle();
    const again = await c.find({ name: 'Sensor X', timeout: 5000 });
    expect(again).toBeDefined();
    const conn2 = await c.connect(again!);
    expect(toHex(await (await conn2.characteristic(SVC, RX)).read())).toBe('010203');
    await conn2.disconnect();
    await vi.waitFor(() => expect(s.events().filter(e => e['event'] === 'disconnected')).toHaveLength(2));
    expect(await s.stop()).toBe(0);

    const ev = s.events();
    const serving = ev.find(e => e['event'] === 'serving')!;
    expect(serving).toMatchObject({ label: 'Sensor X (peripheral 2 of the world)', kind: 'world', name: 'Sensor X', services: 2, characteristics: 3 });
    expect(serving['notes']).toEqual(expect.arrayContaining([expect.stringMatching(/GATT service is not served/), expect.stringMatching(/"behaviour".*not served/)]));
    expect(ev.filter(e => ['connected', 'disconnected', 'advertising'].includes(e['event'] as string))
      .map(e => `${e['event'] as string}${e['again'] ? ' again' : ''}`)).toEqual(['advertising', 'connected', 'disconnected', 'advertising again', 'connected', 'disconnected']);
    expect(ev).toContainEqual(expect.objectContaining({ event: 'read', uuid: '00002a19-0000-1000-8000-00805f9b34fb', value: '57', address: c.controller.address }));
    expect(ev).toContainEqual(expect.objectContaining({ event: 'write', uuid: RX, value: '010203', kind: 'request' }));
    expect(ev).toContainEqual(expect.objectContaining({ event: 'subscribe', uuid: '00002a19-0000-1000-8000-00805f9b34fb', notifications: true }));
    // Our own GAP / GATT values are printed too: the Device Name read, and the Client Supported Features
    // blewire's client writes by itself (robust caching, Vol 3, Part G, 2.5.2).
    expect(ev).toContainEqual(expect.objectContaining({ event: 'read', own: true, uuid: '00002a00-0000-1000-8000-00805f9b34fb',
      value: toHex(new TextEncoder().encode('Sensor X')), address: c.controller.address }));
    expect(ev).toContainEqual(expect.objectContaining({ event: 'write', own: true, uuid: '00002b29-0000-1000-8000-00805f9b34fb' }));
    expect(ev.filter(e => e['event'] === 'notify').map(e => e['value']).slice(0, 3)).toEqual(['56', '55', '54']);
    expect(s.out.stderr().at(-1)).toMatch(/^stopped: 2 connection\(s\), \d+ read\(s\), 1 write\(s\), \d+ notification/);
  });

  test('a device twin extracted from a real capture (blewire twin) serves the captured database, advertising and notifications', async () => {
    const twinFile = join(dir, 'nova.json');
    const capture = join(ROOT, 'captures/twin-pongbot-nova/capture.btsnoop');
    const t = await cli(twin, 'twin', [capture, '--address', '14:32:38:31:47:34', '-o', twinFile]);
    expect(t.code, t.err.join('\n')).toBe(0);
    expect(t.err[0]).toMatch(/^wrote .*nova.json: NOVA_O38240700268: 3 service\(s\), 9 characteristic\(s\), 1 read\(s\), \d+ write\(s\), \d+ notification\(s\)$/);
    expect(statSync(twinFile).mode & 0o777).toBe(0o600);
    const model = JSON.parse(readFileSync(twinFile, 'utf8')) as { notifications: Array<{ handle: number; value: string }>; advertising: { data: string; scanResponse: string } };

    const s = start(serve, 'serve', [twinFile, '--transport', 'testair', '--json']);
    await s.ready();
    const { adapter: c, att } = await central();
    const ad = await c.find({ name: 'NOVA_O38240700268', timeout: 5000 });
    expect(ad, s.out.stderr().join('\n')).toBeDefined();
    // The captured advertising data and scan response, byte for byte.
    expect(toHex(ad!.data)).toBe(model.advertising.data);
    expect(toHex(ad!.scanResponse!)).toBe(model.advertising.scanResponse);
    const conn = await c.connect(ad!);
    const tree = await conn.services();
    const fe00 = tree.find(x => x.uuid === '02f00000-0000-0000-0000-00000000fe00')!;
    // The captured handles are kept: the service, each declaration and value, each descriptor, as the
    // device had them. The twin's own GAP (1-9) and GATT (0x0A-0x0D) left 1-13 to ours: our GAP at 1 where
    // the device's was, our GATT (8 handles, no room at 0x0A) right after it.
    const layout = (JSON.parse(readFileSync(twinFile, 'utf8')) as { services: Array<{ uuid: string; start: number; end: number;
      characteristics: Array<{ declHandle: number; valueHandle: number; descriptors: Array<{ handle: number }> }> }> })
      .services.find(x => x.uuid === fe00.uuid)!;
    expect([fe00.start, fe00.end]).toEqual([layout.start, layout.end]);
    expect(fe00.characteristics.map(x => [x.declHandle, x.handle, x.descriptors.map(d => d.handle)]))
      .toEqual(layout.characteristics.map(x => [x.declHandle, x.valueHandle, x.descriptors.map(d => d.handle)]));
    expect(tree.map(x => [x.uuid.slice(4, 8), x.start, x.end])).toEqual([['1800', 1, 5], ['1801', 6, 13], ['0000', 14, 24]]);
    expect(fe00.characteristics.map(x => [x.uuid.slice(-4), x.properties.join('+')])).toEqual([
      ['ff03', 'read'], ['ff02', 'read+notify'], ['ff00', 'read'], ['ff01', 'writeWithoutResponse+write'],
    ]);
    expect(fe00.characteristics[1]!.descriptors.map(d => d.uuid.slice(4, 8))).toEqual(['2902', '2901']);
    // The one value the capture shows read: Appearance 0x0000.
    expect(toHex(await (await conn.characteristic(0x1800, 0x2a01)).read())).toBe('0000');
    expect(new TextDecoder().decode(await (await conn.characteristic(0x1800, 0x2a00)).read())).toBe('NOVA_O38240700268');
    // Subscribing plays the captured stream: the first values are the capture's, in order.
    const ff02 = fe00.characteristics[1]!;
    const it = ff02.notifications()[Symbol.asyncIterator]();
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(toHex((await it.next()).value as Uint8Array));
    await it.return!();
    const captured = model.notifications.slice(0, 3).map(n => n.value);
    expect(got).toEqual(captured);
    expect(att).toContainEqual({ dir: 'rx', hex: `1b${le16(ff02.handle)}${captured[0]}` });
    // A write as the phone made it (ff01, with response) is accepted and kept.
    const ff01 = fe00.characteristics[3]!;
    await ff01.write(Uint8Array.of(7, 0, 0));
    await conn.disconnect();
    expect(await s.stop()).toBe(0);
    expect(s.events()).toContainEqual(expect.objectContaining({ event: 'write', uuid: '02f00000-0000-0000-0000-00000000ff01', value: '070000' }));
  });

  test('a twin whose own GAP and GATT sat elsewhere (twin-lumentree): its handles kept, ours where its own were', async () => {
    const twinFile = join(dir, 'lumentree.json');
    const t = await cli(twin, 'twin', [join(ROOT, 'captures/twin-lumentree/capture.btsnoop'), '--handle', '0x40', '-o', twinFile]);
    expect(t.code, t.err.join('\n')).toBe(0);
    const s = start(serve, 'serve', [twinFile, '--name', 'lt-twin', '--transport', 'testair', '--json']);
    await s.ready();
    const { adapter: c } = await central();
    const ad = await c.find({ name: 'lt-twin', timeout: 5000 });
    expect(ad, s.out.stderr().join('\n')).toBeDefined();
    const conn = await c.connect(ad!);
    const tree = await conn.services();
    // The capture: GATT 0x0001-0x0005, GAP 0x0014-0x001C, 0xFFE0 from 0x0028 to 0xFFFF. The service keeps
    // 0x0028-0xFFFF with its characteristic at 0x0029/0x002A and CCCD 0x002B; our GATT (8 handles) starts
    // where the device's did, our GAP where the device's did (Device Name value at 0x0016, as on the device).
    expect(tree.map(x => [x.uuid.slice(4, 8), x.start, x.end])).toEqual([['1801', 1, 8], ['1800', 0x14, 0x18], ['ffe0', 0x28, 0xffff]]);
    const ffe1 = tree[2]!.characteristics[0]!;
    expect([ffe1.declHandle, ffe1.handle, ffe1.descriptors.map(d => [d.uuid.slice(4, 8), d.handle])]).toEqual([0x29, 0x2a, [['2902', 0x2b]]]);
    const name = await conn.characteristic(0x1800, 0x2a00);
    expect(name.handle).toBe(0x16);
    expect(new TextDecoder().decode(await name.read())).toBe('lt-twin');
    await conn.disconnect();
    expect(await s.stop()).toBe(0);
    const serving = s.events().find(e => e['event'] === 'serving')!;
    expect(serving['notes']).toEqual(expect.arrayContaining([expect.stringMatching(/handles are kept/)]));
    expect(s.events()).toContainEqual(expect.objectContaining({ event: 'read', own: true, handle: 0x16, value: toHex(new TextEncoder().encode('lt-twin')) }));
  });

  test('Ctrl-C (SIGINT) stops serving: advertising off, the link disconnected, exit 0', async () => {
    const file = join(dir, 'one.json');
    writeFileSync(file, JSON.stringify([{ uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: { hex: '64' } }] }]));
    const out = captureOutput();
    const done = serve([file, '--name', 'sig', '--transport', 'testair']).catch(e => report('serve', e));
    await advertising(out);
    const { adapter: c } = await central();
    const ad = await c.find({ name: 'sig', timeout: 5000 });
    expect(ad).toBeDefined();
    // Default advertising: flags, the primary services that fit, the name.
    expect(toHex(ad!.data)).toBe(`020106${'03030f18'}0409${toHex(new TextEncoder().encode('sig'))}`);
    const conn = await c.connect(ad!);
    expect(toHex(await (await conn.characteristic(0x180f, 0x2a19)).read())).toBe('64');
    process.emit('SIGINT');
    expect(await done).toBe(0);
    await conn.closed;
    expect(conn.connected).toBe(false);
    expect(out.stdout().join('\n')).toMatch(/read {3}0x2a19 \(battery_level\) 0x[0-9a-f]{4} by .*: 64/);
    expect(out.stderr().at(-1)).toMatch(/^stopped: 1 connection\(s\), 1 read\(s\)/);
  });
});

describe('blewire advertise', () => {
  test('advertises the data it is given, prints connections, and stops on the signal', async () => {
    const s = start(advertise, 'advertise', ['--name', 'adv-test', '--service', '180d,battery_service', '--manufacturer', '0x05f1:0102',
      '--service-data', 'feaa:0a0b', '--interval', '50', '--transport', 'testair', '--json']);
    await s.ready();
    const { adapter: c } = await central();
    const ad = await c.find({ name: 'adv-test', timeout: 5000 });
    expect(ad).toBeDefined();
    // Flags; 16-bit list 180d 180f; name; service data feaa 0a0b; manufacturer 0x05f1 01 02 (Supplement, Part A, 1).
    expect(toHex(ad!.data)).toBe('02010605030d180f18' + `0909${toHex(new TextEncoder().encode('adv-test'))}` + '0516aafe0a0b' + '05fff1050102');
    const conn = await c.connect(ad!);
    expect(new TextDecoder().decode(await (await conn.characteristic(0x1800, 0x2a00)).read())).toBe('adv-test');
    await conn.disconnect();
    await c.scanner.settle();
    expect(await c.find({ name: 'adv-test', timeout: 5000 })).toBeDefined(); // connectable advertising resumed
    await vi.waitFor(() => expect(s.events().map(e => e['event'])).toContain('disconnected'));
    expect(await s.stop()).toBe(0);
    expect(s.events().map(e => e['event'])).toEqual(['advertising', 'connected', 'disconnected']);
  });

  test('non-connectable advertising cannot be connected to', async () => {
    const s = start(advertise, 'advertise', ['--name', 'beacon', '--non-connectable', '--transport', 'testair', '--json']);
    await s.ready();
    const { adapter: c } = await central();
    const ad = await c.find({ name: 'beacon', timeout: 5000 });
    expect(ad?.connectable).toBe(false);
    expect(await s.stop()).toBe(0);
    expect(s.events()[0]).toMatchObject({ event: 'advertising', connectable: false });
  });

  test('data that does not fit a legacy-only controller fails before advertising, saying by how many octets', async () => {
    const r = await cli(advertise, 'advertise', ['--name', 'x', '--service', `${SVC},6e400002-b5a3-f393-e0a9-e50e24dcca9f`, '--transport', 'testair-legacy']);
    expect(r.code).toBe(1);
    // Flags 3 + a 128-bit list of two (2 + 32) + the name 3 = 40 octets, 9 more than 31.
    expect(r.err.join('\n')).toMatch(/^blewire advertise: ad: the advertising data needs 40 octets, 9 more than the 31 available/);
    noStack(r.err);
  });
});

describe('database files are hostile input', () => {
  const bad = (name: string, text: string | Buffer): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  test.each([
    ['not JSON', '{"gatt": [', /not JSON/],
    ['JSON but no database', '{"hello": 1}', /not a GATT database/],
    ['a number', '42', /not a GATT database/],
    ['gatt not a list', '{"gatt": {}}', /at gatt: a list is needed, not an object/],
    ['bad service UUID', '{"gatt": [{"uuid": "nonsense"}]}', /at gatt\[0\]\.uuid: "nonsense" is not a UUID/],
    ['UUID out of range', '{"gatt": [{"uuid": -1}]}', /at gatt\[0\]\.uuid: -1 is not a 16- or 32-bit UUID/],
    ['unknown property', '{"gatt": [{"uuid": "180f", "characteristics": [{"uuid": "2a19", "properties": ["fly"]}]}]}', /at gatt\[0\]\.characteristics\[0\]\.properties\[0\]: "fly" is not a property/],
    ['value too long', JSON.stringify({ gatt: [{ uuid: 1, characteristics: [{ uuid: 2, properties: ['read'], value: { hex: '00'.repeat(513) } }] }] }), /513 octets, more than the 512/],
    ['bad hex', '{"gatt": [{"uuid": 1, "characteristics": [{"uuid": 2, "properties": ["read"], "value": {"hex": "zz"}}]}]}', /value\.hex: not hex octets/],
    ['bad security', '{"gatt": [{"uuid": 1, "characteristics": [{"uuid": 2, "properties": ["read"], "security": "secret"}]}]}', /at gatt\[0\]\.characteristics\[0\]\.security: "none", "encrypted" or "authenticated" is needed, not "secret"/],
    ['security with another key', '{"gatt": [{"uuid": 1, "characteristics": [{"uuid": 2, "properties": ["read"], "security": {"notify": "encrypted"}}]}]}', /security\.notify: security names "read" and "write" only/],
    ['characteristic handle going back', JSON.stringify({ gatt: [{ uuid: 1, handle: 0x10, characteristics: [{ uuid: 2, handle: 0x12, properties: ['read'] }, { uuid: 3, handle: 0x13, properties: ['read'] }] }] }), /at gatt: the services do not lay out: characteristic .* at 0x13: before the next free handle 0x14/],
    ['descriptor handle 0', JSON.stringify({ gatt: [{ uuid: 1, characteristics: [{ uuid: 2, properties: ['read'], descriptors: [{ uuid: 0x2901, handle: 0 }] }] }] }), /descriptors\[0\]\.handle: a whole number from 1 to 65535/],
    ['overlapping handles', JSON.stringify({ gatt: [{ uuid: 1, handle: 5 }, { uuid: 2, handle: 5 }] }), /at gatt: the services do not lay out/],
    ['world without --device', JSON.stringify(WORLD), /2 peripherals have a GATT database; pick one with --device/],
    ['twin with a bad handle', JSON.stringify({ name: 't', reads: [], services: [{ uuid: '180f', start: 0, end: 3, characteristics: [] }] }), /at services\[0\]\.start: a whole number from 1 to 65535/],
    ['twin read not hex', JSON.stringify({ name: 't', reads: [{ handle: 3, value: 'xyz' }], services: [] }), /at reads\[0\]\.value: hex octets are needed/],
    ['deep nesting', '['.repeat(200_000) + ']'.repeat(200_000), /not JSON|not a GATT database|an object is needed, not a list/],
    ['a capture', readFileSync(join(ROOT, 'captures/twin-pongbot-nova/capture.btsnoop')), /not UTF-8 text \(is it a capture\?|not JSON/],
  ])('%s: exit 1, one line naming the place, nothing opened', async (name, text, message) => {
    const r = await cli(serve, 'serve', [bad(`${name.replace(/\W/g, '-')}.json`, text), '--transport', 'testair']);
    expect(r.code).toBe(1);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(message);
    noStack(r.err);
    expect(opened).toBe(0);
  });

  test('missing, a directory, too large, /dev/zero', async () => {
    const big = join(dir, 'big.json');
    writeFileSync(big, '');
    await (await import('node:fs/promises')).truncate(big, MAX_DATABASE_FILE_BYTES + 1);
    mkdirSync(join(dir, 'adir'), { recursive: true });
    for (const [file, message] of [
      [join(dir, 'nope.json'), /no such file or directory \(ENOENT\)/],
      [join(dir, 'adir'), /it is a directory, not a file \(EISDIR\)/],
      [big, /larger than 8 MiB/],
      ['/dev/zero', /larger than 8 MiB/],
    ] as const) {
      const r = await cli(serve, 'serve', [file, '--transport', 'testair']);
      expect(r.code, file).toBe(1);
      expect(r.err.join('\n')).toMatch(message);
      noStack(r.err);
    }
    expect(opened).toBe(0);
  });

  test('typed errors from the library call: DatabaseFileError with the JSON path', () => {
    expect(() => parseDatabase({ peripherals: [{ gatt: [] }] }, { device: 'nobody' })).toThrow(DatabaseFileError);
    try {
      parseDatabase({ gatt: [{ uuid: 1, characteristics: [{ uuid: 2, properties: 'read' }] }] });
    } catch (e) {
      expect(e).toMatchObject({ code: 'EDBFILE', at: 'gatt[0].characteristics[0].properties' });
    }
    // A list of services, a database object and a CCCD in the file (the server's own stands for it).
    const db = parseDatabase({ name: 'n', services: [{ uuid: '180d', characteristics: [{ uuid: '2a37', properties: ['notify'], descriptors: [{ uuid: '2902' }] }] }] });
    expect(db).toMatchObject({ kind: 'services', name: 'n', services: [{ characteristics: [{ descriptors: [] }] }] });
    // What an access needs (Vol 3, Part C, 10.3.1) goes through to the server.
    const sec = parseDatabase([{ uuid: '180d', characteristics: [
      { uuid: '2a37', properties: ['read'], security: 'encrypted' },
      { uuid: '2a38', properties: ['read', 'write'], security: { write: 'authenticated' }, descriptors: [{ uuid: '2901', security: 'encrypted' }] },
    ] }]);
    expect(sec.services[0]!.characteristics.map(c => c.security)).toEqual(['encrypted', { write: 'authenticated' }]);
    expect(sec.services[0]!.characteristics[1]!.descriptors[0]!.security).toBe('encrypted');
  });

  test('usage mistakes exit 2 before the file is read or anything opened', async () => {
    const file = join(dir, 'one.json');
    writeFileSync(file, '[]');
    for (const [argv, message] of [
      [[], /^usage: blewire serve <database.json>/],
      [[file, 'extra'], /one database file/],
      [[file, '--non-connectable'], /serve advertises connectable/],
      [[file, '--service', 'nonsense'], /not a service UUID or a known name: "nonsense"/],
      [[file, '--interval', '5'], /--interval \(ms\) takes a whole number from 20 to 10240, not "5"/],
      [[file, '--manufacturer', 'acme:01'], /--manufacturer takes COMPANY-ID:HEX/],
      [[file, '--service-data', 'feaa:0x1'], /not hex octets/],
      [[file, '--device'], /--device takes/],
    ] as const) {
      const r = await cli(serve, 'serve', ['--transport', 'testair', ...argv]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err[0], argv.join(' ')).toMatch(message);
      noStack(r.err);
    }
    for (const [argv, message] of [
      [['--name', 'x', 'y'], /advertise takes options only/],
      [['--connectable', '--non-connectable'], /exclude each other/],
      [['--manufacturer', '70000:01'], /--manufacturer takes COMPANY-ID:HEX/],
    ] as const) {
      const r = await cli(advertise, 'advertise', [...argv, '--transport', 'testair']);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err[0]).toMatch(message);
    }
    expect(opened).toBe(0);
  });

  test('--help of serve, advertise and twin', async () => {
    for (const [cmd, name, words] of [[serve, 'serve', /device twin/], [advertise, 'advertise', /--non-connectable/], [twin, 'twin', /--handle/]] as const) {
      const r = await cli(cmd, name, ['--help']);
      expect(r.code).toBe(0);
      expect(r.out[0]).toMatch(new RegExp(`^usage: blewire ${name} `));
      expect(r.out.join('\n')).toMatch(words);
    }
  });
});

describe('blewire twin', () => {
  test('prints the twin of a capture as JSON; mistakes are one line', async () => {
    const r = await cli(twin, 'twin', [join(ROOT, 'captures/twin-lumentree/capture.btsnoop')]);
    expect(r.code).toBe(0);
    const model = JSON.parse(r.out.join('\n')) as { services: unknown[]; notifications: unknown[] };
    expect(model.services).toHaveLength(3);
    expect(model.notifications).toHaveLength(1178);
    for (const [argv, code, message] of [
      [[join(dir, 'none.btsnoop')], 1, /ENOENT/],
      [[join(ROOT, 'captures/twin-lumentree/capture.btsnoop'), '--address', 'nonsense'], 2, /not a Bluetooth device address/],
      [[join(ROOT, 'captures/twin-lumentree/capture.btsnoop'), '--address', '00:11:22:33:44:55'], 2, /no connection 1 to 00:11:22:33:44:55/],
      [[join(ROOT, 'captures/twin-lumentree/capture.btsnoop'), '--handle', '0x40', '--address', '00:11:22:33:44:55'], 2, /exclude each other/],
    ] as const) {
      const e = await cli(twin, 'twin', [...argv]);
      expect(e.code, argv.join(' ')).toBe(code);
      expect(e.err.join('\n')).toMatch(message);
      noStack(e.err);
    }
  });
});
