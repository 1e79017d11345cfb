/**
 * The README's speed chart: CPU per advertising report and per 20-byte notification for blewire,
 * noble, ble-host and the floor, drawn from the figures the last `npm run bench -- scanner notify`
 * saved in tools/bench/results/ (median bars, min–max whiskers). A plain bar chart as SVG, text
 * escaped, no script, no external reference.
 *
 *   npx tsx tools/bench/chart.ts      writes docs/bench/speed.svg
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Bar { label: string; min: number; median: number; max: number; colour: string }
export interface Panel { title: string; unit: string; bars: Bar[] }

const esc = (s: string): string => s.replace(/[<>&"']/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (ns: number): string => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);

/** Horizontal bar panels, one under the other; each panel scaled to its own largest maximum. */
export function barChartSvg(title: string, panels: Panel[], note: string): string {
  const W = 760, LABEL = 170, RIGHT = 110, ROW = 26, TOP = 40, PANEL_HEAD = 28, GAP = 18;
  let y = TOP;
  const parts: string[] = [];
  for (const p of panels) {
    parts.push(`<text x="12" y="${y + 16}" class="panel">${esc(p.title)}</text>`);
    y += PANEL_HEAD;
    const top = Math.max(...p.bars.map(b => b.max)) || 1;
    const scale = (W - LABEL - RIGHT) / top;
    for (const b of p.bars) {
      const w = Math.max(1, b.median * scale);
      parts.push(`<text x="${LABEL - 8}" y="${y + 16}" class="label" text-anchor="end">${esc(b.label)}</text>`);
      parts.push(`<rect x="${LABEL}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW - 10}" fill="${b.colour}"><title>${esc(`${b.label}: median ${fmt(b.median)}, min ${fmt(b.min)}, max ${fmt(b.max)}`)}</title></rect>`);
      const x0 = LABEL + b.min * scale, x1 = LABEL + b.max * scale, cy = y + ROW / 2 - 1;
      parts.push(`<line x1="${x0.toFixed(1)}" y1="${cy}" x2="${x1.toFixed(1)}" y2="${cy}" class="whisker"/>`);
      parts.push(`<text x="${(Math.max(x1, LABEL + w) + 6).toFixed(1)}" y="${y + 16}" class="value">${esc(fmt(b.median))}</text>`);
      y += ROW;
    }
    y += GAP;
  }
  parts.push(`<text x="12" y="${y + 4}" class="note">${esc(note)}</text>`);
  const H = y + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">
<title>${esc(title)}</title>
<style>
text { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; fill: #24292f; }
.title { font-size: 16px; font-weight: bold; } .panel { font-size: 14px; font-weight: bold; }
.label, .value { font-size: 13px; } .note { font-size: 11px; fill: #57606a; }
.whisker { stroke: #24292f; stroke-width: 1.5; }
</style>
<rect width="${W}" height="${H}" fill="#ffffff"/>
<text x="12" y="24" class="title">${esc(title)}</text>
${parts.join('\n')}
</svg>
`;
}

const COLOURS: Record<string, string> = { blewire: '#2da44e', noble: '#cf222e', 'ble-host': '#bf8700', floor: '#8c959f' };
const colourOf = (name: string): string => COLOURS[Object.keys(COLOURS).find(k => name.startsWith(k)) ?? 'floor']!;

interface Saved { when: string; machine: string; data: Record<string, Array<{ name: string; ns: { min: number; median: number; max: number } }>> }

function panel(title: string, results: Saved['data'][string], keep: (n: string) => boolean, label: (n: string) => string): Panel {
  return { title, unit: 'ns', bars: results.filter(r => keep(r.name)).map(r => ({ label: label(r.name), ...r.ns, colour: colourOf(r.name) })) };
}

export function speedChart(scanner: Saved, notify: Saved): string {
  const short = (n: string): string => n.replace(' adapter.scan', '').replace(' (whole stack)', '').replace(' startScan', '').replace(' data', '');
  return barChartSvg('CPU time per input (median; whisker: min–max of the interleaved rounds)', [
    panel('Advertising report → application, every parsed field read (legacy)', scanner.data['legacy']!, () => true, short),
    panel('20-byte notification → callback', notify.data['n20']!, n => !n.includes('for await') && !n.includes('batches'), short),
  ], `${scanner.when.slice(0, 10)}, ${scanner.machine}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = new URL('./results/', import.meta.url);
  const read = (n: string): Saved => JSON.parse(readFileSync(new URL(`${n}.json`, dir), 'utf8')) as Saved;
  const out = fileURLToPath(new URL('../../docs/bench/', import.meta.url));
  mkdirSync(out, { recursive: true });
  writeFileSync(out + 'speed.svg', speedChart(read('scanner'), read('notify')));
  console.log(`wrote ${out}speed.svg`);
}
