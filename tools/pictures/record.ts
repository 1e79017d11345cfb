/**
 * The README's pictures, recorded from real runs of the CLI on the simulated controller:
 * `npm run pictures` writes docs/pictures/*.svg (terminal pictures, term-svg.ts). Each command runs
 * in this process with its output captured; the scan table is drawn for a terminal of 100 × 24.
 * test/unit/ci/readme-pictures.test.ts records them again and checks that the committed pictures
 * show what the commands print today (masking only the wall-clock figures of the demo).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { terminalSvg } from './term-svg.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const PICTURE_DIR = 'docs/pictures';

export interface Picture {
  /** File name without .svg. */
  name: string;
  /** The command line, as the title bar shows it. */
  title: string;
  text: string;
  columns?: number;
}

/** Lines that differ between two runs for reasons outside the product (wall-clock time). */
export function normalise(line: string): string {
  return line.replace(/wall time [\d.]+ (m?s) \(\d+× real time\)/, 'wall time … (…× real time)');
}

type Run = (argv: string[]) => Promise<number>;

/** Run a command with stdout (and console) captured; optionally as if stdout were a terminal. */
async function capture(run: Run, argv: string[], tty?: { columns: number; rows: number }): Promise<string> {
  const chunks: string[] = [];
  const stdout = process.stdout as unknown as Record<string, unknown>;
  const saved = { write: process.stdout.write, log: console.log, error: console.error };
  const props = ['isTTY', 'columns', 'rows'];
  const own = props.map(p => Object.getOwnPropertyDescriptor(stdout, p));
  process.stdout.write = ((c: string | Uint8Array) => { chunks.push(typeof c === 'string' ? c : Buffer.from(c).toString('utf8')); return true; }) as typeof process.stdout.write;
  console.log = (...a: unknown[]) => { chunks.push(a.map(String).join(' ') + '\n'); };
  console.error = (...a: unknown[]) => { chunks.push(a.map(String).join(' ') + '\n'); };
  if (tty) for (const [k, v] of [['isTTY', true], ['columns', tty.columns], ['rows', tty.rows]] as const) Object.defineProperty(stdout, k, { value: v, configurable: true, writable: true });
  try {
    const code = await run(argv);
    if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}: ${chunks.join('')}`);
  } finally {
    process.stdout.write = saved.write;
    console.log = saved.log;
    console.error = saved.error;
    props.forEach((p, i) => { if (own[i]) Object.defineProperty(stdout, p, own[i]!); else delete stdout[p]; });
  }
  return chunks.join('');
}

const load = async (name: string): Promise<Run> =>
  ((await import(pathToFileURL(join(ROOT, 'src/cli', `${name}.ts`)).href)) as { run: Run }).run;

export async function recordPictures(): Promise<Picture[]> {
  const demo = await capture(await load('demo'), []);
  const size = { columns: 100, rows: 24 };
  const scanOut = await capture(await load('scan'), ['--transport', 'sim', '--duration', '3'], size);
  // The table as it stays on the terminal: the last frame (after the last clear-screen).
  const scan = scanOut.slice(scanOut.lastIndexOf('\x1b[2J') + 4);
  const explore = await capture(await load('explore'), ['D4:1E:35:7A:00:01', '--transport', 'sim', '--no-cache']);
  return [
    { name: 'demo', title: '$ npx blewire demo', text: demo },
    { name: 'scan', title: '$ npx blewire scan --transport sim', text: scan, columns: size.columns },
    { name: 'explore', title: '$ npx blewire explore D4:1E:35:7A:00:01 --transport sim', text: explore },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = join(ROOT, PICTURE_DIR);
  mkdirSync(dir, { recursive: true });
  for (const p of await recordPictures()) {
    writeFileSync(join(dir, `${p.name}.svg`), terminalSvg(p.text, { title: p.title, ...(p.columns ? { columns: p.columns } : {}) }));
    console.log(`wrote ${PICTURE_DIR}/${p.name}.svg`);
  }
}
