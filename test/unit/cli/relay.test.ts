// `blewire relay`: usage mistakes exit 2 with one line and nothing opened; the real command in a child
// process holds the simulator, a host in this process drives it over ws:// (the path a page's browser
// build takes), and Ctrl-C ends it with exit 0 and its counts.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../../src/api/adapter.js';
import { run as relay } from '../../../src/cli/relay.js';
import { report } from '../../../src/cli/report.js';
import { captureOutput } from './output.js';

const ROOT = resolve(import.meta.dirname, '../../..');

async function cli(argv: string[]): Promise<{ code: number; err: string[] }> {
  const out = captureOutput();
  let code: number;
  try { code = await relay(argv); } catch (e) { code = report('relay', e); }
  return { code, err: out.stderr() };
}

describe('blewire relay', () => {
  test.each([
    [[], /--origin is needed/],
    [['--origin', 'http://localhost:5173/app'], /is not an origin/],
    [['--origin', '*', '--listen', 'nowhere'], /--listen takes \[HOST:\]PORT/],
    [['--origin', '*', 'extra'], /takes no positional argument/],
  ])('%j is a usage mistake', async (argv, message) => {
    const r = await cli(argv as string[]);
    expect(r.code).toBe(2);
    expect(r.err[0]).toMatch(message);
    for (const l of r.err) expect(l).not.toMatch(/^\s+at /);
  });

  test('the real command: a host drives the simulator through it over ws://, Ctrl-C ends it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'relay', '--listen', '127.0.0.1:0', '--origin', '*', '--transport', 'sim', '--json'],
      { cwd: ROOT, env: { ...process.env, BLEWIRE_TRANSPORT: '', BLEWIRE_CAPTURE: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>(r => child.once('exit', c => r(c)));
    let stderr = '';
    child.stderr.on('data', d => { stderr += String(d); });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<Record<string, unknown>> => {
      const r = await Promise.race([lines.next(), exited.then(c => { throw new Error(`relay exited ${c}: ${stderr}`); })]);
      return JSON.parse((r as IteratorResult<string>).value as string) as Record<string, unknown>;
    };
    try {
      const first = await next();
      expect(first).toMatchObject({ event: 'relay', origins: '*' });
      expect(String(first['controller'])).toMatch(/sim/);
      const adapter = await Adapter.open({ transport: String(first['url']), bonds: false });
      expect(await next()).toMatchObject({ event: 'page attached' });
      const ad = await adapter.find({ name: 'Pulse HR', timeout: 5000 });
      expect(ad?.name).toBe('Pulse HR');
      await adapter.close();
      expect(await next()).toMatchObject({ event: 'page left' });
      child.kill('SIGINT');
      expect(await next()).toEqual({ event: 'relay closed', sessions: 1, refused: 0 });
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});
