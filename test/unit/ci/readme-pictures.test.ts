// The README's pictures are real: each docs/pictures/*.svg the README shows is well-formed SVG, and
// what it shows is what the command prints today (recorded again here with tools/pictures/record.ts
// on the simulated controller; only the demo's wall-clock figures are masked). If a command's output
// changes, `npm run pictures` regenerates them.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { normalise, PICTURE_DIR, recordPictures, ROOT } from '../../../tools/pictures/record.js';
import { plainLines, terminalSvg } from '../../../tools/pictures/term-svg.js';
import { parseXml, walk } from '../../helpers/xml.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

function shown(svgText: string): { title: string; lines: string[] } {
  const svg = parseXml(svgText);
  expect(svg.name).toBe('svg');
  const all = [...walk(svg)];
  return {
    title: all.find(e => e.name === 'title')!.text,
    lines: all.filter(e => e.name === 'text' && e.attrs['class'] === 'line').map(e => e.attrs['data-text']!),
  };
}

test('every picture in docs/pictures is shown by the README, and every one it shows exists', () => {
  const files = readdirSync(join(ROOT, PICTURE_DIR)).filter(f => f.endsWith('.svg')).sort();
  const referenced = [...README.matchAll(/!\[[^\]]+\]\((docs\/pictures\/[^)]+\.svg)\)/g)].map(m => m[1]!.slice(PICTURE_DIR.length + 1)).sort();
  expect(referenced).toEqual(files);
  expect(files).toEqual(['demo.svg', 'explore.svg', 'scan.svg']);
});

test('the pictures show what demo, scan and explore print today', async () => {
  for (const p of await recordPictures()) {
    const committed = shown(readFileSync(join(ROOT, PICTURE_DIR, `${p.name}.svg`), 'utf8'));
    expect(committed.title).toBe(p.title);
    expect(committed.lines.map(normalise), `${p.name}.svg is stale: run npm run pictures`).toEqual(plainLines(p.text).map(normalise));
  }
}, 180_000);

test('the terminal picture: escapes dropped, colours kept, markup escaped, well-formed', () => {
  const svg = terminalSvg('\x1b[1mbold\x1b[0m <tag> & "q"\n\x1b[31mred\x1b[39m\x1b[K\n', { title: 'a & b' });
  const { title, lines } = shown(svg);
  expect(title).toBe('a & b');
  expect(lines).toEqual(['bold <tag> & "q"', 'red']);
  expect(svg).toContain('<tspan font-weight="bold">bold</tspan>');
  expect(svg).toContain('<tspan fill="#e06c75">red</tspan>');
});
