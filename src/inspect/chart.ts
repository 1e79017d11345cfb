/**
 * A capture drawn as a message sequence chart (SVG): the way people explain a BLE exchange. Lanes:
 * Host, Controller, and one Peer lane per connection handle. HCI commands go Host → Controller and
 * events come back; an L2CAP PDU (reassembled from its ACL fragments) goes Host ⇄ Peer across the
 * controller, labelled with its ATT / SMP / signalling PDU. Each ATT request is paired with its
 * response or Error Response (Vol 3, Part F, 3.3.2: one request outstanding per bearer and direction;
 * indications with their confirmations), the pair shares a colour and the round trip is annotated on
 * the requester's lane. A silence longer than `gapMs` is drawn as a break with its length.
 *
 * Bounded: consecutive messages of the same kind between the same lanes, with no pairing and no gap
 * between them, collapse into one arrow "×N" (thousands of advertising reports or notifications stay
 * one row each run), and at most MAX_ROWS rows are drawn; the rest are counted in a last line.
 * Pure: decoded lines in, SVG text out (the CLI writes the file).
 */
import { ATT_PDUS } from '../att/pdus.js';
import type { DecodedLine } from './decode.js';

/** Rows drawn at most (about 22 px each: a 10 000-row chart is 220 000 px tall already). */
export const MAX_ROWS = 10_000;
/** A silence longer than this (µs) is drawn as a gap (default of ChartOptions.gapMs). */
const DEFAULT_GAP_MS = 1_000;

export interface ChartOptions {
  /** Silences longer than this (ms) are drawn as a gap; default 1000. */
  gapMs?: number;
  /** Title at the top (the capture's file name). */
  title?: string;
}

export interface ChartMessage {
  from: string;
  to: string;
  kind: string;
  label: string;
  /** First and last frame number and time (µs) of the run. */
  frame: number;
  lastFrame: number;
  timeUs: number;
  lastTimeUs: number;
  count: number;
  /** Index of the pair (request and response share it), if paired. */
  pair?: number;
  /** On a response: the round trip from its request (µs). */
  rttUs?: number;
  /** Index in rows of the paired request (on the response). */
  requestRow?: number;
}

export interface ChartGap {
  gap: true;
  us: number;
}

export type ChartRow = ChartMessage | ChartGap;

export interface Chart {
  lanes: { id: string; title: string }[];
  rows: ChartRow[];
  /** Messages not drawn because the chart reached MAX_ROWS. */
  omitted: number;
}

type Method = 'request' | 'response' | 'command' | 'notification' | 'indication' | 'confirmation';

function attMethod(kind: string): Method | undefined {
  return (ATT_PDUS as Record<string, { method: Method } | undefined>)[kind]?.method;
}

const hex4 = (n: number): string => '0x' + n.toString(16).padStart(4, '0');
const LABEL_MAX = 56;
const short = (s: string): string => (s.length > LABEL_MAX ? s.slice(0, LABEL_MAX - 1) + '…' : s);

/**
 * Builds the chart one decoded line at a time (a capture is streamed, never held whole): the rows
 * are bounded by MAX_ROWS and the pending-request map by one entry per (handle, direction, kind).
 */
export class ChartBuilder {
  private readonly gapUs: number;
  private readonly peers = new Map<number, string>(); // handle → lane id
  private readonly rows: ChartRow[] = [];
  private omitted = 0;
  private pairs = 0;
  private lastUs: number | undefined;
  private recordUs = 0;
  /** Outstanding ATT request / indication per (handle, direction of the requester, kind): row index. */
  private readonly pending = new Map<string, number>();

  constructor(options: ChartOptions = {}) {
    this.gapUs = (options.gapMs ?? DEFAULT_GAP_MS) * 1000;
  }

  private lane(handle: number): string {
    let id = this.peers.get(handle);
    if (!id) { id = `peer-${handle.toString(16).padStart(4, '0')}`; this.peers.set(handle, id); }
    return id;
  }

  /** Adds a message; returns its row index, or undefined when it joined the previous run or was omitted. */
  private add(m: ChartMessage, pairable: boolean): number | undefined {
    const rows = this.rows;
    // Full: everything after is counted, not drawn (not even merged into the last run, which the
    // omitted messages have interrupted).
    if (this.omitted > 0) { this.omitted++; return undefined; }
    if (this.lastUs !== undefined && m.timeUs - this.lastUs > this.gapUs && rows.length < MAX_ROWS) rows.push({ gap: true, us: m.timeUs - this.lastUs });
    this.lastUs = m.timeUs;
    const prev = rows.at(-1);
    if (!pairable && prev && !('gap' in prev) && prev.pair === undefined && prev.kind === m.kind && prev.from === m.from && prev.to === m.to) {
      prev.count++;
      prev.lastFrame = m.frame;
      prev.lastTimeUs = m.timeUs;
      return undefined;
    }
    if (rows.length >= MAX_ROWS) { this.omitted++; return undefined; }
    rows.push(m);
    return rows.length - 1;
  }

  push(l: DecodedLine): void {
    if (l.line === 'record') {
      this.recordUs = l.timeUs;
      if (l.type === 'acl') return; // drawn as its reassembled L2CAP PDU
      const tx = l.dir === 'tx';
      this.add({ from: tx ? 'host' : 'controller', to: tx ? 'controller' : 'host', kind: String(l.fields['kind'] ?? l.type), label: short(l.text),
        frame: l.frame, lastFrame: l.frame, timeUs: l.timeUs, lastTimeUs: l.timeUs, count: 1 }, false);
      return;
    }
    const peer = this.lane(l.handle);
    const tx = l.dir === 'tx';
    const kind = l.pdu.kind;
    const channel = l.cid === 0x0004 ? '' : l.cid === 0x0006 ? 'SMP ' : l.cid === 0x0005 ? 'L2CAP ' : `cid ${hex4(l.cid)} `;
    const m: ChartMessage = { from: tx ? 'host' : peer, to: tx ? peer : 'host', kind, label: short(channel + l.text.replace(/^ATT /, '')),
      frame: l.frame, lastFrame: l.frame, timeUs: this.recordUs, lastTimeUs: this.recordUs, count: 1 };
    const method = l.cid === 0x0004 ? attMethod(kind) : undefined;
    if (method === 'request' || method === 'indication') {
      m.pair = this.pairs++;
      const at = this.add(m, true);
      if (at !== undefined) this.pending.set(`${l.handle}/${l.dir}/${method}`, at);
      return;
    }
    if (method === 'response' || method === 'confirmation') {
      // Answers the request the other side sent: ATT is sequential (Vol 3, Part F, 3.3.2), one
      // request and one indication outstanding per direction.
      const key = `${l.handle}/${tx ? 'rx' : 'tx'}/${method === 'response' ? 'request' : 'indication'}`;
      const at = this.pending.get(key);
      if (at !== undefined) {
        const req = this.rows[at] as ChartMessage;
        this.pending.delete(key);
        m.pair = req.pair!;
        m.rttUs = m.timeUs - req.timeUs;
        m.requestRow = at;
      }
      this.add(m, at !== undefined);
      return;
    }
    this.add(m, false);
  }

  finish(): Chart {
    const lanes = [{ id: 'host', title: 'Host' }, { id: 'controller', title: 'Controller' },
      ...[...this.peers].map(([h, id]) => ({ id, title: `Peer (handle ${hex4(h)})` }))];
    return { lanes, rows: this.rows, omitted: this.omitted };
  }
}

/** The messages of a capture, paired and collapsed. */
export function buildChart(lines: Iterable<DecodedLine>, options: ChartOptions = {}): Chart {
  const b = new ChartBuilder(options);
  for (const l of lines) b.push(l);
  return b.finish();
}

const esc = (s: string): string => s.replace(/[<>&"']/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!)
  // XML 1.0 allows no C0 controls but tab, LF and CR (names from the air end up in labels).
  .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '?');

function duration(us: number): string {
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(3)} s`;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

/** The chart as an SVG document. */
export function renderChartSvg(chart: Chart, options: ChartOptions = {}): string {
  const ROW = 22;
  const TOP = 70;
  const LEFT = 120; // time column
  const LANE = 420; // a 56-character label (about 7 px a character) fits between two lanes
  const x = new Map(chart.lanes.map((l, i) => [l.id, LEFT + 130 + i * LANE]));
  const width = LEFT + 130 + (chart.lanes.length - 1) * LANE + 260;
  const height = TOP + chart.rows.length * ROW + 60;
  const t0 = chart.rows.find((r): r is ChartMessage => !('gap' in r))?.timeUs ?? 0;
  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">`);
  out.push('<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">' +
    '<path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>');
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  if (options.title) out.push(`<text class="title" x="16" y="22" font-size="14" font-weight="bold">${esc(options.title)}</text>`);
  out.push(`<text x="16" y="${TOP - 12}" fill="#666">time (s)</text>`);
  for (const l of chart.lanes) {
    const lx = x.get(l.id)!;
    out.push(`<g class="lane" data-lane="${l.id}"><text x="${lx}" y="${TOP - 12}" text-anchor="middle" font-weight="bold">${esc(l.title)}</text>` +
      `<line x1="${lx}" y1="${TOP}" x2="${lx}" y2="${height - 40}" stroke="#999" stroke-dasharray="4 3"/></g>`);
  }
  chart.rows.forEach((r, i) => {
    const y = TOP + i * ROW + ROW / 2 + 4;
    if ('gap' in r) {
      out.push(`<g class="gap" data-us="${r.us}"><line x1="${LEFT}" y1="${y - 4}" x2="${width - 16}" y2="${y - 4}" stroke="#bbb" stroke-dasharray="2 6"/>` +
        `<text x="${LEFT + 8}" y="${y - 8}" fill="#888">… ${esc(duration(r.us))} of silence …</text></g>`);
      return;
    }
    const x1 = x.get(r.from)!;
    const x2 = x.get(r.to)!;
    const colour = r.pair === undefined ? '#333' : PALETTE[r.pair % PALETTE.length]!;
    const label = r.count > 1 ? `${r.label} ×${r.count}` : r.label;
    const mid = (x1 + x2) / 2;
    const attrs = `data-from="${r.from}" data-to="${r.to}" data-kind="${esc(r.kind)}" data-frame="${r.frame}" data-count="${r.count}"` +
      (r.pair === undefined ? '' : ` data-pair="${r.pair}"`);
    out.push(`<g class="msg" ${attrs}><text x="${LEFT - 8}" y="${y}" text-anchor="end" fill="#666">${((r.timeUs - t0) / 1e6).toFixed(6)}</text>` +
      `<line x1="${x1}" y1="${y}" x2="${x2}" y2="${y}" stroke="${colour}" stroke-width="1.5" marker-end="url(#head)"/>` +
      `<text x="${mid}" y="${y - 4}" text-anchor="middle" fill="${colour}">${esc(label)}</text></g>`);
    if (r.rttUs !== undefined && r.requestRow !== undefined) {
      // The round trip, as a bracket on the requester's side of its lane (the lane the response reaches).
      const side = x.get(r.to)!;
      const bx = r.to === 'host' ? side - 14 : side + 14;
      const y0 = TOP + r.requestRow * ROW + ROW / 2 + 4;
      out.push(`<g class="rtt" data-request="${(chart.rows[r.requestRow] as ChartMessage).frame}" data-response="${r.frame}" data-us="${r.rttUs}">` +
        `<path d="M${side},${y0} H${bx} V${y} H${side}" fill="none" stroke="${colour}" stroke-width="1"/>` +
        `<text x="${r.to === 'host' ? bx - 4 : bx + 4}" y="${(y0 + y) / 2 + 4}" text-anchor="${r.to === 'host' ? 'end' : 'start'}" fill="${colour}" font-size="10">${esc(duration(r.rttUs))}</text></g>`);
    }
  });
  if (chart.omitted > 0) {
    out.push(`<text class="omitted" x="16" y="${height - 16}" fill="#a00">${chart.omitted} more messages not drawn (a chart holds at most ${MAX_ROWS} rows)</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
