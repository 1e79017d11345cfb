// The README's speed chart is real: docs/bench/speed.svg is well-formed SVG, the README shows it (and
// nothing in docs/bench is left unshown), it has a bar per stack (blewire, noble, ble-host, floor) in
// the advertising panel and in the notification panel (ble-host there since session 17; plus blewire and
// its floor over an H4 byte stream, the rows notify.bench prints since session 12), each bar's
// tooltip giving the median the README's Speed section quotes; and the chart writer escapes what it
// is given.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { barChartSvg } from '../../../tools/bench/chart.js';
import { parseXml, walk } from '../../helpers/xml.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

test('docs/bench/speed.svg is well-formed, shown by the README, and has the bars the issue asks for', () => {
  const files = readdirSync(join(ROOT, 'docs/bench')).filter(f => f.endsWith('.svg'));
  const shown = [...README.matchAll(/!\[[^\]]+\]\(docs\/bench\/([^)]+\.svg)\)/g)].map(m => m[1]);
  expect(shown.sort()).toEqual(files.sort());
  expect(files).toEqual(['speed.svg']);
  const svg = parseXml(readFileSync(join(ROOT, 'docs/bench/speed.svg'), 'utf8'));
  expect(svg.name).toBe('svg');
  const all = [...walk(svg)];
  const panels = all.filter(e => e.name === 'text' && e.attrs['class'] === 'panel').map(e => e.text);
  expect(panels).toHaveLength(2);
  const bars = all.filter(e => e.name === 'rect' && e.children.some(c => c.name === 'title')).map(e => e.children.find(c => c.name === 'title')!.text);
  const labels = bars.map(t => t.split(':')[0]);
  expect(labels).toEqual(['blewire', 'noble', 'ble-host', 'floor', 'blewire subscribe(cb)', 'noble', 'ble-host', 'floor',
    'blewire subscribe(cb), H4 stream', 'floor, H4 stream']);
  // Each bar's median is quoted in the README's Speed section.
  const speed = README.slice(README.indexOf('## Speed'));
  for (const t of bars) {
    const median = /median ([0-9.]+ (?:µs|ns))/.exec(t)![1]!;
    expect(speed, `README Speed section quotes ${t}`).toContain(median);
  }
});

test('the chart writer escapes labels and notes, and draws one bar per entry', () => {
  const svg = barChartSvg('a <b> & "c"', [{ title: 'p & q', unit: 'ns', bars: [
    { label: '<x>', min: 1, median: 2, max: 3, colour: '#000000' }, { label: 'y', min: 10, median: 20, max: 30, colour: '#000000' }] }], 'note & <n>');
  const root = parseXml(svg);
  const all = [...walk(root)];
  expect(all.find(e => e.name === 'title')!.text).toBe('a <b> & "c"');
  expect(all.filter(e => e.name === 'rect' && e.children.length > 0)).toHaveLength(2);
  expect(all.filter(e => e.attrs['class'] === 'label').map(e => e.text)).toEqual(['<x>', 'y']);
  expect(all.find(e => e.attrs['class'] === 'note')!.text).toBe('note & <n>');
});
