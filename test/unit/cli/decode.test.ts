// `blewire decode` on a truncated capture, run as the real CLI in a child process (asynchronously):
// every good record is printed before the error (its output buffer is flushed when the reader throws),
// the error names the record and the byte offset, and the exit status is 1.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { parseCapture } from '../../../src/capture/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'blewire-decode-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(done => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, maxBuffer: 1 << 26 },
      (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

test('blewire decode --json on a truncated file prints every good record, then the error, and exits 1', async () => {
  const whole = readFileSync(join(ROOT, 'captures/sim-heart-rate/capture.btsnoop'));
  // Cut inside record 72 (of 111): 71 whole records stay.
  const cut = 2954 + 20;
  const file = join(dir, 'truncated.btsnoop');
  writeFileSync(file, whole.subarray(0, cut));
  const good = [...parseCapture(new Uint8Array(whole))].filter(r => r.frame <= 71).length;
  expect(good).toBe(71);

  const { code, stdout, stderr } = await cli('decode', '--json', file);
  expect(code).toBe(1);
  const records = stdout.split('\n').filter(Boolean).map(l => JSON.parse(l) as { frame: number; type: string }).filter(j => j.type !== 'l2cap');
  expect(records.map(r => r.frame)).toEqual(Array.from({ length: good }, (_, i) => i + 1));
  expect(stderr).toBe("blewire decode: capture: cannot decode btsnoop record 72 at offset 2954: the file ends 20 byte(s) into a 24-byte header\n");
}, 60_000);

test('blewire decode (human form) on the same truncated file ends its output with record 71', async () => {
  const file = join(dir, 'truncated.btsnoop');
  const { code, stdout } = await cli('decode', file);
  expect(code).toBe(1);
  const lastRecord = stdout.split('\n').filter(l => l.startsWith('#')).at(-1);
  expect(lastRecord).toMatch(/^#71 /);
}, 60_000);
