/**
 * Terminal output as an SVG picture (for the README): a window with a title bar and the text in a
 * monospace font, one <text> per line, the basic SGR colours and bold / dim honoured, every other
 * escape sequence dropped. The plain text of each line is kept verbatim in the picture, so a test can
 * read it back and compare it with what the command prints today.
 */

export interface TerminalPictureOptions {
  /** The command line shown in the title bar. */
  title: string;
  /** Width in character cells (default: the longest line, at least 60). */
  columns?: number;
}

const CHAR_W = 8.4; // px per cell at 14 px DejaVu Sans Mono
const LINE_H = 18;
const PAD = 14;
const BAR = 30;

const FG: Record<number, string> = {
  30: '#3b4252', 31: '#e06c75', 32: '#98c379', 33: '#e5c07b', 34: '#61afef', 35: '#c678dd', 36: '#56b6c2', 37: '#dcdfe4',
  90: '#7f848e', 91: '#ff7b86', 92: '#b5e890', 93: '#ffd68a', 94: '#8cc8ff', 95: '#e099ff', 96: '#7fd8e2', 97: '#ffffff',
};
const DEFAULT_FG = '#dcdfe4';

const esc = (s: string): string => s.replace(/[<>&"']/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!)
  .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '?');

interface Span { text: string; fg: string; bold: boolean; dim: boolean }

/** One line with SGR sequences → styled spans; other escape sequences are dropped. */
function spans(line: string): Span[] {
  const out: Span[] = [];
  let fg = DEFAULT_FG;
  let bold = false;
  let dim = false;
  const re = /\x1b\[([0-9;]*)([A-Za-z])|\x1b\][^\x07]*\x07|\x1b./g;
  let last = 0;
  for (const m of line.matchAll(re)) {
    if (m.index! > last) out.push({ text: line.slice(last, m.index), fg, bold, dim });
    last = m.index! + m[0].length;
    if (m[2] !== 'm') continue;
    for (const p of (m[1] || '0').split(';').map(Number)) {
      if (p === 0) { fg = DEFAULT_FG; bold = false; dim = false; } else if (p === 1) bold = true;
      else if (p === 2) dim = true;
      else if (p === 22) { bold = false; dim = false; } else if (p === 39) fg = DEFAULT_FG;
      else if (FG[p]) fg = FG[p]!;
    }
  }
  if (last < line.length) out.push({ text: line.slice(last), fg, bold, dim });
  return out.filter(s => s.text !== '');
}

/** The text a picture shows, line by line, without escape sequences. */
export function plainLines(text: string): string[] {
  return text.replace(/\n$/, '').split('\n').map(l => l.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b./g, '').replace(/\s+$/, ''));
}

export function terminalSvg(text: string, options: TerminalPictureOptions): string {
  const lines = text.replace(/\n$/, '').split('\n');
  const plain = plainLines(text);
  const columns = options.columns ?? Math.max(60, ...plain.map(l => [...l].length));
  const width = Math.ceil(columns * CHAR_W + 2 * PAD);
  const height = BAR + PAD + lines.length * LINE_H + PAD;
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14">',
    `<title>${esc(options.title)}</title>`,
    `<rect width="${width}" height="${height}" rx="8" fill="#282c34"/>`,
    `<rect width="${width}" height="${BAR}" rx="8" fill="#3a3f4b"/><rect y="${BAR - 8}" width="${width}" height="8" fill="#3a3f4b"/>`,
    '<circle cx="18" cy="15" r="6" fill="#ff5f57"/><circle cx="38" cy="15" r="6" fill="#febc2e"/><circle cx="58" cy="15" r="6" fill="#28c840"/>',
    `<text x="${width / 2}" y="20" text-anchor="middle" fill="#abb2bf" font-size="13">${esc(options.title)}</text>`,
  ];
  lines.forEach((line, i) => {
    const y = BAR + PAD + (i + 1) * LINE_H - 4;
    const body = spans(line).map(s => {
      const style = [s.fg !== DEFAULT_FG ? `fill="${s.fg}"` : '', s.bold ? 'font-weight="bold"' : '', s.dim ? 'opacity="0.6"' : ''].filter(Boolean).join(' ');
      return style ? `<tspan ${style}>${esc(s.text)}</tspan>` : esc(s.text);
    }).join('');
    // data-text: the line as plain text, for the test that compares a picture with today's output.
    out.push(`<text class="line" x="${PAD}" y="${y}" fill="${DEFAULT_FG}" xml:space="preserve" style="white-space:pre" data-text="${esc(plain[i]!)}">${body}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
