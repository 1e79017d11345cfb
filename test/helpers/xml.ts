// A strict, small XML parser for tests: elements, attributes, text, comments, the XML declaration,
// the five predefined entities and numeric character references. Anything malformed (unclosed or
// mismatched tags, an unquoted or repeated attribute, a bare `&` or `<`, a control character,
// text after the root) throws with its offset. Enough to prove an SVG we wrote is well-formed XML
// (XML 1.0, 2.1 and 3.1) and to query it, without a dependency.
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_:][\w.:-]*/;
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeText(s: string, at: number): string {
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(s)) throw new Error(`XML: control character near offset ${at}`);
  if (/</.test(s)) throw new Error(`XML: '<' in text or attribute near offset ${at}`);
  return s.replace(/&([^;]*);|&/g, (m, ent: string | undefined) => {
    if (ent === undefined) throw new Error(`XML: bare '&' near offset ${at}`);
    if (ENTITIES[ent]) return ENTITIES[ent]!;
    const num = /^#x([0-9a-f]+)$/i.exec(ent) ?? /^#([0-9]+)$/.exec(ent);
    if (num) return String.fromCodePoint(parseInt(num[1]!, ent[1] === 'x' || ent[1] === 'X' ? 16 : 10));
    throw new Error(`XML: unknown entity &${ent}; near offset ${at}`);
  });
}

export function parseXml(src: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const fail = (what: string): never => { throw new Error(`XML: ${what} at offset ${i}`); };
  if (src.startsWith('<?xml')) {
    const end = src.indexOf('?>');
    if (end < 0) fail('unterminated declaration');
    i = end + 2;
  }
  while (i < src.length) {
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    if (src[i] === '<') {
      if (src[i + 1] === '/') {
        const m = NAME.exec(src.slice(i + 2));
        if (!m) fail('bad closing tag');
        const open = stack.pop();
        if (!open || open.name !== m![0]) fail(`</${m![0]}> closes <${open?.name ?? 'nothing'}>`);
        i += 2 + m![0].length;
        while (/\s/.test(src[i] ?? '')) i++;
        if (src[i] !== '>') fail('bad closing tag');
        i++;
        continue;
      }
      const m = NAME.exec(src.slice(i + 1));
      if (!m) fail('bad tag name');
      const el: XmlElement = { name: m![0], attrs: {}, children: [], text: '' };
      i += 1 + m![0].length;
      for (;;) {
        const ws = /^\s*/.exec(src.slice(i))![0].length;
        i += ws;
        if (src.startsWith('/>', i)) { i += 2; break; }
        if (src[i] === '>') { i++; stack.push(el); break; }
        if (ws === 0) fail('no space before an attribute');
        const a = /^([A-Za-z_:][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/.exec(src.slice(i));
        if (!a) fail('malformed attribute');
        if (a![1]! in el.attrs) fail(`repeated attribute ${a![1]}`);
        el.attrs[a![1]!] = decodeText(a![3] ?? a![4] ?? '', i);
        i += a![0].length;
      }
      const parent = stack.at(el === stack.at(-1) ? -2 : -1);
      if (parent) parent.children.push(el);
      else if (root) fail('a second root element');
      else root = el;
      continue;
    }
    const next = src.indexOf('<', i);
    const text = src.slice(i, next < 0 ? src.length : next);
    const top = stack.at(-1);
    if (top) top.text += decodeText(text, i);
    else if (text.trim() !== '') fail('text outside the root element');
    i = next < 0 ? src.length : next;
  }
  if (stack.length) throw new Error(`XML: <${stack.at(-1)!.name}> is never closed`);
  if (!root) throw new Error('XML: no root element');
  return root;
}

/** Every element under `el` (itself included), depth first. */
export function* walk(el: XmlElement): Generator<XmlElement> {
  yield el;
  for (const c of el.children) yield* walk(c);
}
