// blewire scan, run in-process on the simulated demo world (virtual time: a 2 s scan takes
// milliseconds of wall clock). JSON Lines are parsed and checked against the world's peripherals
// (src/sim/scenarios.ts): the heart-rate sensor "Pulse HR" and the thermometer "Therm-1".
import { afterEach, describe, expect, test, vi } from 'vitest';
import { run as scan } from '../../../src/cli/scan.js';
import { captureOutput } from './output.js';
import { registerTransport } from '../../../src/transport/open.js';
import { createSimulator } from '../../../src/sim/index.js';
import { textWidth } from '../../../src/cli/scan-table.js';
import { TRANSPORT_FORMS } from '../../../src/cli/help.js';

/** Pretend stdout (and optionally stdin) is a terminal of this size; returns the frames written. */
function terminal(columns: number, rows: number): { frames: () => string[]; raw: () => string } {
  const chunks: string[] = [];
  for (const [k, v] of [['isTTY', true], ['columns', columns], ['rows', rows]] as const) {
    Object.defineProperty(process.stdout, k, { value: v, configurable: true, writable: true });
  }
  vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string) => { chunks.push(String(chunk)); return true; }) as typeof process.stdout.write);
  const raw = (): string => chunks.join('');
  // A frame starts with cursor-home; its text is what is left once the erase sequences are removed.
  const frames = (): string[] => raw().split('\x1b[H').slice(1).map(f => f.replace(/\x1b\[[0-9]*[JK]/g, ''));
  return { frames, raw };
}

const HEART_RATE = '0000180d-0000-1000-8000-00805f9b34fb';
const BATTERY = '0000180f-0000-1000-8000-00805f9b34fb';

interface Line {
  address: string; addressType: string; rssi: number; name?: string; serviceUuids: string[];
  serviceData: Record<string, string>; txPower?: number; connectable: boolean; data: string;
  scanResponse?: string; timestamp: number;
}

async function scanJson(...args: string[]): Promise<Line[]> {
  const out = captureOutput();
  expect(await scan(['--transport', 'sim', '--json', ...args])).toBe(0);
  return out.stdout().map(l => JSON.parse(l) as Line); // every line is one JSON object: throws otherwise
}

afterEach(() => { vi.restoreAllMocks(); vi.unstubAllEnvs(); });

describe('blewire scan --transport sim', () => {
  test('--json: JSON Lines, one per new advertiser, with the heart-rate sensor and its merged scan response', async () => {
    const lines = await scanJson('--duration', '2');
    const pulse = lines.filter(l => l.address === 'D4:1E:35:7A:00:01');
    expect(pulse).toHaveLength(1); // without --duplicates each advertiser is reported once (its data never changes)
    expect(pulse[0]).toMatchObject({
      addressType: 'random', name: 'Pulse HR', rssi: expect.any(Number), connectable: true,
      serviceUuids: [HEART_RATE, BATTERY],
      // flags 06, 16-bit UUIDs 180d 180f, complete name "Pulse HR"
      data: '02010605030d180f18090950756c7365204852',
      // active scanning: the scan response (TX power 4 dBm, appearance 0x0341) is merged into the line
      scanResponse: '020a0403194103', txPower: 4,
    });
    expect(lines.find(l => l.address === 'D4:1E:35:7A:00:02')).toMatchObject({ name: 'Therm-1', serviceUuids: ['00001809-0000-1000-8000-00805f9b34fb'] });
    // The crowd is there too (54 more advertisers), each address once.
    expect(new Set(lines.map(l => `${l.addressType}/${l.address}`)).size).toBe(lines.length);
    expect(lines.length).toBeGreaterThan(40);
    // Names that only the scan response carries (the tracker tags) are seen when scanning actively.
    expect(lines.some(l => /^Tag-/.test(l.name ?? ''))).toBe(true);
    // --duration is virtual time: nothing is reported after the 2 s window (timestamps are the sim's ms).
    expect(Math.max(...lines.map(l => l.timestamp))).toBeLessThan(2_100);
  });

  test('--service heart_rate keeps only the heart-rate sensor', async () => {
    const lines = await scanJson('--duration', '2', '--service', 'heart_rate');
    expect(lines.map(l => [l.address, l.name])).toEqual([['D4:1E:35:7A:00:01', 'Pulse HR']]);
    expect(lines[0]!.serviceUuids).toContain(HEART_RATE);
  });

  test('--service repeated: a device must advertise all of them (Web Bluetooth filter semantics)', async () => {
    const both = await scanJson('--duration', '2', '--service', '180d', '--service', '0x180f');
    expect(both.map(l => l.name)).toEqual(['Pulse HR']);
    // Nobody advertises Health Thermometer and Heart Rate together.
    expect(await scanJson('--duration', '2', '--service', '1809', '--service', '180d')).toEqual([]);
  });

  test('--name-prefix Therm keeps only the thermometer', async () => {
    const lines = await scanJson('--duration', '2', '--name-prefix', 'Therm');
    expect(lines.map(l => [l.address, l.addressType, l.name])).toEqual([['D4:1E:35:7A:00:02', 'random', 'Therm-1']]);
  });

  test('--passive: no scan requests, so no scan-response-only fields', async () => {
    const lines = await scanJson('--duration', '2', '--passive');
    const pulse = lines.find(l => l.address === 'D4:1E:35:7A:00:01');
    expect(pulse).toMatchObject({ name: 'Pulse HR', data: '02010605030d180f18090950756c7365204852' });
    expect(pulse).not.toHaveProperty('scanResponse');
    expect(pulse).not.toHaveProperty('txPower'); // only in Pulse HR's scan response
    expect(lines.filter(l => l.scanResponse !== undefined)).toEqual([]);
    expect(lines.filter(l => /^Tag-/.test(l.name ?? ''))).toEqual([]); // tag names live in scan responses
  });

  test('--duplicates reports every advertising event (Pulse HR advertises every 50 ms)', async () => {
    const lines = await scanJson('--duration', '1', '--duplicates', '--name-prefix', 'Pulse');
    expect(lines.length).toBeGreaterThan(10);
    expect(new Set(lines.map(l => l.address))).toEqual(new Set(['D4:1E:35:7A:00:01']));
  });

  test('a closed pipe (scan --json | head -1) ends the scan quietly with exit 0', async () => {
    const lines: string[] = [];
    const listeners = process.stdout.listenerCount('error');
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string) => {
      lines.push(chunk);
      // The reader has gone: the stream reports EPIPE, as a pipe does after its reader exits.
      queueMicrotask(() => process.stdout.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
      return true;
    }) as typeof process.stdout.write);
    expect(await scan(['--transport', 'sim', '--json'])).toBe(0); // no --duration: only the EPIPE can end it
    expect(lines).toHaveLength(1);
    expect(process.stdout.listenerCount('error')).toBe(listeners); // its EPIPE listener is gone again
  });

  test('bad arguments exit 2 with the usage on stderr', async () => {
    const out = captureOutput();
    expect(await scan(['--transport', 'sim', '--duration', '0'])).toBe(2);
    expect(out.stderr().join('\n')).toContain('--duration must be a positive number');
    expect(await scan(['--transport', 'sim', '--frobnicate'])).toBe(2);
    expect(out.stderr().join('\n')).toContain('usage: blewire scan');
    expect(out.stdout()).toEqual([]);
  });
});

describe('blewire scan on a terminal: the live table', () => {
  afterEach(() => {
    for (const k of ['isTTY', 'columns', 'rows']) delete (process.stdout as unknown as Record<string, unknown>)[k];
    delete (process.stdin as unknown as Record<string, unknown>)['isTTY'];
  });

  test('"scanning…" at once, then the devices, every line within the width; the last frame stays', async () => {
    const term = terminal(64, 30);
    expect(await scan(['--transport', 'sim', '--duration', '2', '--sort', 'name'])).toBe(0);
    const frames = term.frames();
    // The first frame is written before the transport even opens.
    expect(frames[0]).toContain('scanning… no advertiser heard yet');
    const last = frames.at(-1)!.split('\n').filter(l => l !== '');
    for (const f of frames) for (const l of f.split('\n')) expect(textWidth(l), JSON.stringify(l)).toBeLessThanOrEqual(64);
    expect(last[0]).toMatch(/^  ADDRESS +TYPE +RSSI +SEEN +NAME$/); // 64 cells: services and manufacturer dropped
    expect(last.some(l => /^  D4:1E:35:7A:00:01  random +-\d+ +\d+\.\ds +Pulse HR$/.test(l))).toBe(true);
    // Sorted by name: the named devices in order, before the unnamed.
    const names = last.filter(l => /^[ ?] [0-9A-F]{2}:/.test(l)).map(l => l.slice(2).trim().split(/\s{2,}/)[4] ?? '');
    const named = names.filter(n => n !== '');
    expect(named).toEqual([...named].sort((a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' })));
    expect(names.slice(named.length).every(n => n === '')).toBe(true);
    // 30 lines: the rest are counted; the final frame is not live (no "scanning…", no keys).
    expect(last.length).toBeLessThanOrEqual(30);
    expect(last.at(-1)).toMatch(/^\d+ devices, \d+ more not shown; sorted by name$/);
  });

  test('keys on a terminal stdin: n sorts by name, q stops the scan (no --duration)', async () => {
    const term = terminal(100, 40);
    const stdin = process.stdin;
    Object.defineProperty(stdin, 'isTTY', { value: true, configurable: true, writable: true });
    const raw: boolean[] = [];
    const setRawMode = vi.fn((on: boolean) => { raw.push(on); return stdin; });
    Object.defineProperty(stdin, 'setRawMode', { value: setRawMode, configurable: true, writable: true });
    vi.spyOn(stdin, 'resume').mockReturnValue(stdin);
    vi.spyOn(stdin, 'pause').mockReturnValue(stdin);
    // After the first redraw (every 500 ms) with devices in it, by signal.
    const pressed = setTimeout(() => stdin.emit('data', Buffer.from('n')), 800);
    const quit = setTimeout(() => stdin.emit('data', Buffer.from('q')), 1000);
    try {
      expect(await scan(['--transport', 'sim'])).toBe(0);
    } finally {
      clearTimeout(pressed);
      clearTimeout(quit);
      delete (stdin as { setRawMode?: unknown }).setRawMode;
    }
    expect(raw).toEqual([true, false]); // the terminal is given back as it was
    expect(stdin.listenerCount('data')).toBe(0);
    const frames = term.frames();
    expect(frames.some(f => f.includes('sorted by signal (RSSI)'))).toBe(true);
    // The status line ends the frame, or comes just before the stale devices' footnote: the simulated
    // world runs on its own clock, and on a busy machine a device can go unheard for --stale first.
    expect(frames.at(-1)).toMatch(/\d+ devices(, \d+ more not shown)?; sorted by name\n(\? not heard for \d+s or more \(\d+\)[^\n]*\n)?$/);
  });

  test('--help lists every transport form; --sort and --stale are checked', async () => {
    const out = captureOutput();
    expect(await scan(['--help'])).toBe(0);
    const help = out.stdout().join('\n');
    expect(help).toContain(TRANSPORT_FORMS);
    for (const form of ['hci0', 'hci:N', 'hci-user:N', 'unix:/path', 'tcp:host:port', 'serial:', 'sim,', 'sim:demo', 'sim:empty', 'sim:large', 'replay:', 'capture:']) {
      expect(help).toContain(form);
    }
    expect(help).toContain('--sort KEY');
    expect(await scan(['--transport', 'sim', '--sort', 'loudness'])).toBe(2);
    expect(out.stderr().join('\n')).toContain('--sort is one of rssi, name, seen, not "loudness"');
    expect(await scan(['--transport', 'sim', '--stale', '-1'])).toBe(2);
  });
});

describe('blewire scan on a controller that falls silent', () => {
  test('warns on stderr that the controller stopped answering and exits non-zero', async () => {
    // The demo world, whose controller stops sending anything to the host 500 ms into the scan.
    registerTransport('sim-falls-silent', () => {
      const sim = createSimulator('demo');
      sim.clock.schedule(500_000, () => { sim.inject({ direction: 'toHost', count: Infinity, action: 'drop' }); });
      return sim.transport;
    });
    const out = captureOutput();
    const code = await scan(['--transport', 'sim-falls-silent:', '--json', '--duration', '10']);
    expect(code).toBe(1);
    expect(out.stderr().join('\n')).toMatch(/blewire scan: the controller stopped answering/);
    // What was heard before it fell silent is still printed.
    expect(out.stdout().length).toBeGreaterThan(0);
  });
});
