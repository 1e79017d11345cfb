// blewire decode --chart: real captures drawn as message sequence charts. The SVG is parsed as strict
// XML and checked against the capture decoded independently here: one lane per party (host,
// controller, one peer per connection handle), one arrow per HCI command / event and per L2CAP PDU
// (runs of the same message counted in data-count), every ATT request paired with its response and
// the round trip equal to the two records' time difference, every silence over 1 s drawn as a gap.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { run as decode } from '../../../src/cli/decode.js';
import { report } from '../../../src/cli/report.js';
import { buildChart, MAX_ROWS } from '../../../src/inspect/chart.js';
import { ATT_PDUS } from '../../../src/att/pdus.js';
import type { DecodedLine } from '../../../src/inspect/decode.js';
import { parseXml, walk, type XmlElement } from '../../helpers/xml.js';
import { captureOutput, decodedCapture } from './output.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'blewire-chart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => { vi.stubEnv('BLEWIRE_TRANSPORT', ''); });
afterEach(() => { vi.restoreAllMocks(); vi.unstubAllEnvs(); });

const CAPTURES = [
  'captures/bluez-example-gatt/capture.btsnoop',
  'captures/real/pongbot-session.btsnoop',
  'captures/real/tql130-reads-writes.btsnoop',
  'captures/emulated/bluez-5.66-central.btsnoop',
  'captures/real/pongbot-long-multiconn.btsnoop',
];

const method = (kind: string): string | undefined => (ATT_PDUS as Record<string, { method: string } | undefined>)[kind]?.method;

/** What the chart must show, computed from the decoded capture without the chart module. */
function expected(lines: DecodedLine[]): { handles: Set<number>; perKind: Map<string, number>; pairs: { req: number; rsp: number; us: number }[]; gaps: number } {
  const handles = new Set<number>();
  const perKind = new Map<string, number>();
  const pairs: { req: number; rsp: number; us: number }[] = [];
  const open = new Map<string, { frame: number; us: number }>();
  const times: number[] = [];
  let now = 0;
  for (const l of lines) {
    if (l.line === 'record') {
      now = l.timeUs;
      if (l.type === 'acl') continue;
      const k = String(l.fields['kind'] ?? l.type);
      perKind.set(k, (perKind.get(k) ?? 0) + 1);
      times.push(now);
      continue;
    }
    handles.add(l.handle);
    perKind.set(l.pdu.kind, (perKind.get(l.pdu.kind) ?? 0) + 1);
    times.push(now);
    if (l.cid !== 4) continue;
    const m = method(l.pdu.kind);
    const requester = (m === 'request' || m === 'indication') ? l.dir : l.dir === 'tx' ? 'rx' : 'tx';
    const key = `${l.handle}/${requester}/${m === 'request' || m === 'response' ? 'req' : 'ind'}`;
    if (m === 'request' || m === 'indication') open.set(key, { frame: l.frame, us: now });
    if (m === 'response' || m === 'confirmation') {
      const r = open.get(key);
      if (r) { pairs.push({ req: r.frame, rsp: l.frame, us: now - r.us }); open.delete(key); }
    }
  }
  let gaps = 0;
  for (let i = 1; i < times.length; i++) if (times[i]! - times[i - 1]! > 1_000_000) gaps++;
  return { handles, perKind, pairs, gaps };
}

const groups = (svg: XmlElement, cls: string): XmlElement[] => [...walk(svg)].filter(e => e.name === 'g' && e.attrs['class'] === cls);

describe('blewire decode --chart', () => {
  test.each(CAPTURES)('%s: well-formed SVG whose lanes, arrows, pairs and gaps match the capture', async capture => {
    const out = join(dir, capture.replace(/\W+/g, '_') + '.svg');
    const o = captureOutput();
    expect(await decode(['--chart', out, join(ROOT, capture)])).toBe(0);
    expect(o.stdout().join('\n')).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ messages in \\d+ rows, \\d+ round trips`));
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const svg = parseXml(readFileSync(out, 'utf8'));
    expect(svg.name).toBe('svg');
    expect(svg.attrs['xmlns']).toBe('http://www.w3.org/2000/svg');

    const lines = decodedCapture(join(ROOT, capture));
    const want = expected(lines);
    const lanes = groups(svg, 'lane').map(g => g.attrs['data-lane']);
    expect(lanes).toEqual(['host', 'controller', ...[...want.handles].map(h => `peer-${h.toString(16).padStart(4, '0')}`)]);

    const msgs = groups(svg, 'msg');
    const drawn = new Map<string, number>();
    for (const m of msgs) {
      const k = m.attrs['data-kind']!;
      drawn.set(k, (drawn.get(k) ?? 0) + Number(m.attrs['data-count']));
      expect(lanes).toContain(m.attrs['data-from']);
      expect(lanes).toContain(m.attrs['data-to']);
      expect(m.children.filter(c => c.name === 'line')).toHaveLength(1); // one arrow per message
    }
    expect(groups(svg, 'omitted')).toEqual([]);
    expect(Object.fromEntries(drawn)).toEqual(Object.fromEntries(want.perKind));

    const rtts = groups(svg, 'rtt').map(g => ({ req: Number(g.attrs['data-request']), rsp: Number(g.attrs['data-response']), us: Number(g.attrs['data-us']) }));
    expect(rtts).toEqual(want.pairs);
    // A pair's two arrows share its data-pair (and colour).
    for (const p of want.pairs) {
      const a = msgs.find(m => Number(m.attrs['data-frame']) === p.req && m.attrs['data-pair'] !== undefined);
      const b = msgs.find(m => Number(m.attrs['data-frame']) === p.rsp && m.attrs['data-pair'] !== undefined);
      expect(a?.attrs['data-pair']).toBeDefined();
      expect(b?.attrs['data-pair']).toBe(a?.attrs['data-pair']);
    }
    expect(groups(svg, 'gap')).toHaveLength(want.gaps);
  });

  test('a capture with request/response pairs has them (the GATT example: discovery and reads)', () => {
    const want = expected(decodedCapture(join(ROOT, CAPTURES[0]!)));
    expect(want.pairs.length).toBeGreaterThan(5);
    expect(want.pairs.every(p => p.us >= 0)).toBe(true);
  });

  test('runs collapse; the chart is bounded at MAX_ROWS with the rest counted', () => {
    const lines: DecodedLine[] = [];
    for (let i = 0; i < MAX_ROWS * 2; i++) {
      // Alternate two kinds so nothing collapses.
      lines.push({ line: 'record', frame: i + 1, dir: 'rx', timeUs: i * 10, type: 'event', fields: { kind: i % 2 ? 'a' : 'b' }, text: 'x' });
    }
    const chart = buildChart(lines);
    expect(chart.rows).toHaveLength(MAX_ROWS);
    expect(chart.omitted).toBe(MAX_ROWS);
    const same = buildChart(lines.map(l => ({ ...l, fields: { kind: 'a' } })) as DecodedLine[]);
    expect(same.rows).toHaveLength(1);
    expect(same.rows[0]).toMatchObject({ count: MAX_ROWS * 2 });
  });

  test('replaces an existing file atomically (no temp file left), 0600; labels are escaped', async () => {
    const out = join(dir, 'replace.svg');
    writeFileSync(out, 'old', { mode: 0o644 });
    captureOutput();
    expect(await decode([join(ROOT, CAPTURES[0]!), '--chart', out])).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^<\?xml/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter(f => f.startsWith('replace.svg') && f !== 'replace.svg')).toEqual([]);
    // A label with markup characters (a name from the air) is escaped, and the document still parses.
    const svg = (await import('../../../src/inspect/chart.js')).renderChartSvg(buildChart([
      { line: 'record', frame: 1, dir: 'rx', timeUs: 0, type: 'event', fields: { kind: 'k' }, text: 'name="<b>&amp\x01"' }]));
    expect([...walk(parseXml(svg))].find(e => e.attrs['data-kind'] === 'k')!.children.at(-1)!.text).toBe('name="<b>&amp?"');
  });

  test('mistakes: --chart without a file is a usage error; an unwritable place fails with one line', async () => {
    const o = captureOutput();
    expect(await decode([join(ROOT, CAPTURES[0]!), '--chart'])).toBe(2);
    let code: number;
    try {
      code = await decode([join(ROOT, CAPTURES[0]!), '--chart', join(dir, 'no/such/dir/x.svg')]);
    } catch (e) {
      code = report('decode', e);
    }
    expect(code).toBe(1);
    expect(o.stderr().join('\n')).toMatch(/blewire decode: .*no\/such\/dir.*no such file or directory/);
  });
});
