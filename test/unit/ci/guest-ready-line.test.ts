// Pins how boot.sh reads the guest's READY line from the console log qemu is still writing: a line
// not yet ended is not taken (a half-written one once gave the tests the GAP name "Bl"), a whole one
// is, without its CR; the first of two; nothing from a missing file.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../../tools/interop/guest/ready-line.sh', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'blewire-ready-line-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** ready_line FILE as boot.sh calls it (set -euo pipefail), and the name field boot.sh parses from it. */
function readyLine(file: string): { line: string; name: string } {
  const out = execFileSync('bash', ['-c', `set -euo pipefail; . "$0"; l="$(ready_line "$1")"; printf '%s\\n' "$l"; sed -n "s/.* name=\\([^ ]*\\).*/\\1/p" <<<"$l"`, SCRIPT, file], { encoding: 'utf8' });
  const [line = '', name = ''] = out.split('\n');
  return { line, name };
}

test('a READY line still being written is not taken; once its line ends it is, without the CR', () => {
  const file = join(dir, 'console.log');
  writeFileSync(file, '[guest] bluetoothd up\r\n[guest] services up\r\nBLEWIRE-GUEST-READY peripheral=00:AA:01:00:00:23 name=Bl');
  expect(readyLine(file)).toEqual({ line: '', name: '' });
  appendFileSync(file, 'ueZ_5.66 controllers=2');
  expect(readyLine(file).line).toBe('');
  appendFileSync(file, '\r\n[guest] more output, still being writ');
  expect(readyLine(file)).toEqual({ line: 'BLEWIRE-GUEST-READY peripheral=00:AA:01:00:00:23 name=BlueZ_5.66 controllers=2', name: 'BlueZ_5.66' });
});

test('the first of two READY lines; a line that merely contains the marker is not one', () => {
  const file = join(dir, 'two.log');
  writeFileSync(file, 'echo BLEWIRE-GUEST-READY in a shell trace\nBLEWIRE-GUEST-READY peripheral=A name=first controllers=1\nBLEWIRE-GUEST-READY peripheral=B name=second controllers=1\n');
  expect(readyLine(file).name).toBe('first');
});

test('no console log yet, or an empty one: nothing, and no error under set -e', () => {
  expect(readyLine(join(dir, 'missing.log'))).toEqual({ line: '', name: '' });
  const empty = join(dir, 'empty.log');
  writeFileSync(empty, '');
  expect(readyLine(empty)).toEqual({ line: '', name: '' });
});
