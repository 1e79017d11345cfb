// The live scan table as a pure function of (devices, width, now): every line fits the terminal's
// width (columns shrink, then drop, least important first; never a wrapped row), time since the last
// report per device, devices not heard for a while marked, three sort orders, "scanning…" before
// anything is heard, and names from the air that cannot rewrite the terminal.
import { describe, expect, test } from 'vitest';
import { fitText, formatAge, renderScanTable, safeName, sortDevices, textWidth, type ScanDevice } from '../../../src/cli/scan-table.js';

const dev = (address: string, o: Partial<ScanDevice> = {}): ScanDevice => ({
  address, type: 'random', name: '', rssi: -60, services: '', manufacturer: '', lastSeen: 0, count: 1, ...o,
});

const NOW = 12_000;
const DEVICES: ScanDevice[] = [
  dev('D4:1E:35:7A:00:01', { name: 'Pulse HR', rssi: -48, services: 'heart_rate,battery_service', lastSeen: 9_600 }),
  dev('C0:11:22:33:44:55', { type: 'public', name: 'A very long device name that goes on', rssi: -71, manufacturer: '0x004c', lastSeen: 1_000 }),
  dev('E0:00:00:00:00:03', { rssi: -90, services: 'environmental_sensing', manufacturer: '0x0059,0x02e5', lastSeen: 8_000 }),
];
const header = (lines: string[]): string[] => lines[0]!.trim().split(/\s{2,}/);

describe('renderScanTable', () => {
  test('every line fits every width from 10 to 200 cells, with wide characters and escapes in names', () => {
    const nasty = [...DEVICES,
      dev('F0:00:00:00:00:04', { name: '温度计-客厅-二号机 🌡️', rssi: -55, lastSeen: 11_000 }),
      dev('F0:00:00:00:00:05', { name: 'evil\x1b[2J\x1b]0;pwned\x07\nname\r', rssi: -66, lastSeen: 11_500 })];
    for (let width = 10; width <= 200; width++) {
      const lines = renderScanTable(nasty, width, NOW, { staleMs: 10_000 });
      for (const l of lines) {
        expect(textWidth(l), `width ${width}: ${JSON.stringify(l)}`).toBeLessThanOrEqual(width);
        expect(l).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/); // no escape, newline, bell or carriage return
      }
      expect(lines.filter(l => /^..[0-9A-F]{2}:/.test(l))).toHaveLength(nasty.length); // one line per device, none wrapped
    }
  });

  test('columns shrink, then drop least important first: manufacturer, services, type, name', () => {
    expect(header(renderScanTable(DEVICES, 120, NOW))).toEqual(['ADDRESS', 'TYPE', 'RSSI', 'SEEN', 'NAME', 'SERVICES', 'MANUFACTURER']);
    const at80 = renderScanTable(DEVICES, 80, NOW);
    expect(header(at80)).toEqual(['ADDRESS', 'TYPE', 'RSSI', 'SEEN', 'NAME', 'SERVICES']);
    expect(at80[1]).toMatch(/Pulse HR +heart_rate,b…$/); // the services column is cut, marked with …
    expect(header(renderScanTable(DEVICES, 60, NOW))).toEqual(['ADDRESS', 'RSSI', 'SEEN', 'NAME']);
    const at45 = renderScanTable(DEVICES, 45, NOW);
    expect(header(at45)).toEqual(['ADDRESS', 'RSSI', 'SEEN', 'NAME']);
    expect(at45.find(l => l.includes('C0:11'))).toMatch(/A very long…$/);
    // Below the essential columns (address, RSSI, last seen) the lines are cut, never wrapped.
    expect(renderScanTable(DEVICES, 30, NOW)[1]).toBe('  D4:1E:35:7A:00:01   -48  2.…');
  });

  test('a column nobody has data for is left out', () => {
    expect(header(renderScanTable([DEVICES[0]!], 120, NOW))).toEqual(['ADDRESS', 'TYPE', 'RSSI', 'SEEN', 'NAME', 'SERVICES']);
  });

  test('time since the last report per device; a device not heard for staleMs is marked and counted', () => {
    const lines = renderScanTable(DEVICES, 120, NOW, { staleMs: 10_000 });
    expect(lines[1]).toMatch(/^  D4:1E:35:7A:00:01  random   -48  2\.4s  Pulse HR/);
    expect(lines[2]).toMatch(/^\? C0:11:22:33:44:55  public   -71   11s  /); // 11 s: over the 10 s threshold
    expect(lines[3]).toMatch(/^  E0:00:00:00:00:03  random   -90  4\.0s  /);
    expect(lines).toContain('? not heard for 10s or more (1): out of range or stopped advertising');
    // A longer threshold marks nobody and says nothing about it.
    const patient = renderScanTable(DEVICES, 120, NOW, { staleMs: 30_000 });
    expect(patient.filter(l => l.startsWith('?'))).toEqual([]);
    expect(formatAge(400)).toBe('0.4s');
    expect(formatAge(59_999)).toBe('59s');
    expect(formatAge(185_000)).toBe('3m05s');
    expect(formatAge(7_440_000)).toBe('2h04m');
  });

  test('sorted by RSSI (strongest first), name (unnamed last) or last seen (most recent first)', () => {
    const order = (sort: 'rssi' | 'name' | 'seen'): string[] =>
      renderScanTable(DEVICES, 120, NOW, { sort }).slice(1, 4).map(l => l.slice(2, 19));
    expect(order('rssi')).toEqual(['D4:1E:35:7A:00:01', 'C0:11:22:33:44:55', 'E0:00:00:00:00:03']);
    expect(order('name')).toEqual(['C0:11:22:33:44:55', 'D4:1E:35:7A:00:01', 'E0:00:00:00:00:03']);
    expect(order('seen')).toEqual(['D4:1E:35:7A:00:01', 'E0:00:00:00:00:03', 'C0:11:22:33:44:55']);
    expect(renderScanTable(DEVICES, 120, NOW, { sort: 'seen' })).toContain('scanning… 3 devices; sorted by last seen');
    // Ties are broken by address, so the table does not jump between redraws.
    const tied = [dev('00:00:00:00:00:02', { rssi: -50 }), dev('00:00:00:00:00:01', { rssi: -50 })];
    expect(sortDevices(tied, 'rssi').map(d => d.address)).toEqual(['00:00:00:00:00:01', '00:00:00:00:00:02']);
  });

  test('"scanning…" before the first report; a finished scan says neither scanning nor the keys', () => {
    expect(renderScanTable([], 80, 0)).toEqual([
      '  ADDRESS  TYPE  RSSI  SEEN  NAME  SERVICES  MANUFACTURER', '',
      'scanning… no advertiser heard yet', 'keys: r signal, n name, s last seen, q quit (Ctrl-C too)']);
    const done = renderScanTable(DEVICES, 120, NOW, { live: false, staleMs: 60_000 });
    expect(done.slice(-1)).toEqual(['3 devices; sorted by signal (RSSI)']);
  });

  test('a short terminal shows the strongest devices that fit and counts the rest', () => {
    const many = Array.from({ length: 50 }, (_, i) => dev(`00:00:00:00:00:${i.toString(16).padStart(2, '0').toUpperCase()}`, { rssi: -40 - i, lastSeen: NOW }));
    const lines = renderScanTable(many, 80, NOW, { height: 20 });
    expect(lines.length).toBeLessThanOrEqual(20);
    const rows = lines.filter(l => /^  00:/.test(l));
    expect(rows[0]).toMatch(/-40/);
    expect(lines).toContain(`scanning… 50 devices, ${50 - rows.length} more not shown; sorted by signal (RSSI)`);
  });

  test('text helpers: cells, cutting, control characters', () => {
    expect(textWidth('温度')).toBe(4);
    expect(textWidth('e\u0301')).toBe(1);
    expect(fitText('温度计温度计', 5)).toBe('温度…');
    expect(fitText('abc', 3)).toBe('abc');
    expect(safeName('a\x1b[2Jb\u009bc')).toBe('a?[2Jb?c');
  });
});
