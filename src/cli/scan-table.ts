/**
 * The live table of `blewire scan` on a terminal, as a pure function of (devices, width, now): the
 * caller owns the terminal (clearing, redrawing, keys) and the clock. Every line it returns fits in
 * `width` terminal cells: columns shrink, then drop, and only when even the essential ones do not fit
 * is a line cut; a terminal never wraps a row into two.
 *
 * Names come from the air (Complete / Shortened Local Name, Core Supplement Part A, 1.2): anything
 * may be in them, including escape sequences that would rewrite the user's terminal, so control
 * characters are replaced before a name is shown, and wide characters count as two cells.
 */

export interface ScanDevice {
  address: string;
  /** public | random (or the resolved identity types). */
  type: string;
  name: string;
  rssi: number;
  /** Services and service data UUIDs, short names. */
  services: string;
  /** Company identifiers of the manufacturer data, `0x004c,…`. */
  manufacturer: string;
  /** Clock time (ms) of the last report heard from this device. */
  lastSeen: number;
  /** Reports heard. */
  count: number;
}

export type SortKey = 'rssi' | 'name' | 'seen';
export const SORT_KEYS: readonly SortKey[] = ['rssi', 'name', 'seen'];

export interface TableOptions {
  /** Lines the table may use (header, rows and footer); rows beyond it are counted, not shown. */
  height?: number;
  sort?: SortKey;
  /** A device not heard for this long (ms) is marked (out of range, or stopped advertising). */
  staleMs?: number;
  /** The scan is running (the footer says how to stop it and change the order). */
  live?: boolean;
}

export const DEFAULT_STALE_MS = 10_000;

/** Terminal cells a code point takes: 0 for combining marks, 2 for East Asian wide and emoji, else 1. */
function cells(cp: number): number {
  if ((cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) || (cp >= 0x20000 && cp <= 0x3fffd)) return 2;
  return 1;
}

/** Width of a string in terminal cells. */
export function textWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += cells(ch.codePointAt(0)!);
  return w;
}

/** At most `width` cells of `s`; a cut string ends with `…`. */
export function fitText(s: string, width: number): string {
  if (textWidth(s) <= width) return s;
  if (width <= 0) return '';
  let out = '';
  let w = 0;
  for (const ch of s) {
    const c = cells(ch.codePointAt(0)!);
    if (w + c > width - 1) break;
    out += ch;
    w += c;
  }
  return out + '…';
}

function pad(s: string, width: number, right = false): string {
  const fill = ' '.repeat(Math.max(0, width - textWidth(s)));
  return right ? fill + s : s + fill;
}

/** A name as it may be shown: C0 and C1 controls (ESC included) and DEL become `?`. */
export function safeName(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
}

/** Time since the last report: `0.4s`, `12s`, `3m05s`, `2h04m`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

interface Column {
  head: string;
  cell(d: ScanDevice, now: number): string;
  /** The column may be cut down to this many cells (undefined: never cut). */
  min?: number;
  /** Never wider than this. */
  max?: number;
  right?: boolean;
  /** Dropped when the table does not fit, lowest first; undefined: always kept. */
  drop?: number;
}

const COLUMNS: Column[] = [
  { head: 'ADDRESS', cell: d => d.address },
  { head: 'TYPE', cell: d => d.type, drop: 2 },
  { head: 'RSSI', cell: d => String(d.rssi), right: true },
  { head: 'SEEN', cell: (d, now) => formatAge(now - d.lastSeen), right: true },
  { head: 'NAME', cell: d => safeName(d.name), min: 6, max: 24, drop: 3 },
  { head: 'SERVICES', cell: d => d.services, min: 8, max: 40, drop: 1 },
  { head: 'MANUFACTURER', cell: d => d.manufacturer, min: 6, max: 20, drop: 0 },
];

/** Width of the mark column (`?` for a device not heard for a while) and of the gap between columns. */
const MARK = 2;
const GAP = 2;

export function sortDevices(devices: ScanDevice[], key: SortKey): ScanDevice[] {
  const byAddress = (a: ScanDevice, b: ScanDevice): number => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.type < b.type ? -1 : 1);
  const cmp: Record<SortKey, (a: ScanDevice, b: ScanDevice) => number> = {
    rssi: (a, b) => b.rssi - a.rssi || byAddress(a, b),
    // Named devices first, alphabetically (case-insensitive); the unnamed after them.
    name: (a, b) => (a.name === '' ? 1 : 0) - (b.name === '' ? 1 : 0) ||
      a.name.localeCompare(b.name, 'en', { sensitivity: 'base' }) || byAddress(a, b),
    seen: (a, b) => b.lastSeen - a.lastSeen || byAddress(a, b),
  };
  return [...devices].sort(cmp[key]);
}

/** The lines of the table: header, one row per device shown, a blank line and the footer. */
export function renderScanTable(devices: ScanDevice[], width: number, now: number, options: TableOptions = {}): string[] {
  const sort = options.sort ?? 'rssi';
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const live = options.live ?? true;
  width = Math.max(1, Math.floor(width));
  const fit = (l: string): string => fitText(l, width);

  const footer: string[] = [];
  const stale = devices.filter(d => now - d.lastSeen >= staleMs).length;
  const sortName = { rssi: 'signal (RSSI)', name: 'name', seen: 'last seen' }[sort];
  if (devices.length === 0) {
    footer.push(live ? 'scanning… no advertiser heard yet' : 'no advertiser heard');
  }
  // The row budget: the terminal's lines minus header, blank line and the footer's lines.
  const footerLines = 1 + (live ? 1 : 0) + (stale > 0 ? 1 : 0);
  const budget = options.height === undefined ? Infinity : Math.max(1, options.height - 2 - footerLines);
  const sorted = sortDevices(devices, sort);
  const shown = sorted.slice(0, budget);
  if (devices.length > 0) {
    const more = sorted.length > shown.length ? `, ${sorted.length - shown.length} more not shown` : '';
    footer.push(`${live ? 'scanning… ' : ''}${devices.length} device${devices.length === 1 ? '' : 's'}${more}; sorted by ${sortName}`);
  }
  if (stale > 0) footer.push(`? not heard for ${formatAge(staleMs).replace(/\.0s$/, 's')} or more (${stale}): out of range or stopped advertising`);
  if (live) footer.push('keys: r signal, n name, s last seen, q quit (Ctrl-C too)');

  // Natural widths (header or widest cell, capped), then shrink and drop until the line fits.
  const cellsOf = shown.map(d => COLUMNS.map(c => c.cell(d, now)));
  let cols = COLUMNS.map((c, i) => ({ c, i, w: Math.min(c.max ?? Infinity, Math.max(textWidth(c.head), ...cellsOf.map(r => textWidth(r[i]!)))) }));
  // A column nobody has anything for (no manufacturer data heard) is not worth its header.
  cols = cols.filter(x => x.c.drop === undefined || shown.length === 0 || cellsOf.some(r => r[x.i] !== ''));
  const total = (): number => MARK + cols.reduce((s, x) => s + x.w, 0) + GAP * (cols.length - 1);
  // Least important first: cut it down to its minimum, and drop it if that is not enough; essential
  // columns (no drop rank) are never dropped, so on a very narrow terminal the lines are cut.
  for (const x of cols.filter(c => c.c.drop !== undefined).sort((a, b) => a.c.drop! - b.c.drop!)) {
    const over = total() - width;
    if (over <= 0) break;
    const floor = Math.max(x.c.min ?? x.w, textWidth(x.c.head));
    if (x.w - over >= floor) x.w -= over;
    else cols = cols.filter(c => c !== x);
  }

  const line = (mark: string, values: string[]): string =>
    fit((mark + ' '.repeat(MARK)).slice(0, MARK) + cols.map(x => pad(fitText(values[x.i]!, x.w), x.w, x.c.right)).join(' '.repeat(GAP)).trimEnd());
  const out = [line('', COLUMNS.map(c => c.head))];
  shown.forEach((d, r) => out.push(line(now - d.lastSeen >= staleMs ? '?' : '', cellsOf[r]!)));
  out.push('');
  for (const f of footer) out.push(fit(f));
  return out;
}
