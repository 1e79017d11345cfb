// A user's mistake ends the command with one line that says what was wrong, exit code 2 for a usage
// mistake and 1 for a failure, and never a stack trace; nothing is opened before the arguments are
// checked. Commands run in-process (their error goes through report(), as main() does) and, for the
// whole path, once through the real entry point in a child process.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { run as read } from '../../../src/cli/read.js';
import { run as write } from '../../../src/cli/write.js';
import { run as notify } from '../../../src/cli/notify.js';
import { run as explore, setGattSessionOpener } from '../../../src/cli/explore.js';
import { run as decode } from '../../../src/cli/decode.js';
import { report } from '../../../src/cli/report.js';
import { checkHex, describeFsError } from '../../../src/cli/args.js';
import { markStdoutClosed, resetStdoutForTest } from '../../../src/cli/stdout.js';
import { captureOutput } from './output.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'blewire-mistakes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PULSE = 'D4:1E:35:7A:00:01';

let opened = 0;
beforeEach(() => {
  vi.stubEnv('BLEWIRE_TRANSPORT', '');
  vi.stubEnv('BLEWIRE_CAPTURE', '');
  vi.stubEnv('XDG_CACHE_HOME', join(dir, 'cache'));
  opened = 0;
  // Any session opened would be a failure of "checked before connecting".
  setGattSessionOpener(async () => { opened++; throw new Error('must not be opened'); });
});
afterEach(() => { setGattSessionOpener(undefined); vi.restoreAllMocks(); vi.unstubAllEnvs(); resetStdoutForTest(); });

/** What main() does with a command: its exit code, or report()'s for what it threw. */
async function cli(name: string, run: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; err: string[]; out: string[] }> {
  const out = captureOutput();
  let code: number;
  try {
    code = await run(argv);
  } catch (e) {
    code = report(name, e);
  }
  return { code, err: out.stderr(), out: out.stdout() };
}

const noStack = (lines: string[]): void => {
  for (const l of lines) expect(l).not.toMatch(/^\s+at /);
};

describe('usage mistakes exit 2 before anything is opened', () => {
  test.each([
    ['nonsense', /not a Bluetooth device address: "nonsense" \(six octets/],
    ['D4:1E:35', /not a Bluetooth device address: "D4:1E:35"/],
    ['D4:1E:35:7A:00:0G', /not a Bluetooth device address/],
  ])('address %s', async (address, message) => {
    for (const [name, run, extra] of [['read', read, ['2a19']], ['notify', notify, ['2a37']], ['write', write, ['2a39', '01']], ['explore', explore, []]] as const) {
      const r = await cli(name, run, [address, ...extra, '--transport', 'sim']);
      expect(r.code).toBe(2);
      expect(r.err[0]).toMatch(message);
      expect(r.err[1]).toBe(`Run \`blewire ${name} --help\` for its usage.`);
      noStack(r.err);
    }
    expect(opened).toBe(0);
  });

  test('an unknown UUID name is refused before connecting', async () => {
    const r = await cli('read', read, [PULSE, 'heart_rat', '--transport', 'sim']);
    expect(r.code).toBe(2);
    expect(r.err[0]).toBe('blewire read: not a characteristic UUID or a known name: "heart_rat" (e.g. 2a19, 0x2a19, battery_level, or a 128-bit UUID)');
    const s = await cli('notify', notify, [PULSE, '2a37', '--service', 'heart_rat', '--transport', 'sim']);
    expect(s.code).toBe(2);
    expect(s.err[0]).toMatch(/not a service UUID or a known name: "heart_rat"/);
    expect(opened).toBe(0);
  });

  test('hex: 0x prefixes, spaces and colons are accepted; odd digits and non-hex are refused', async () => {
    expect([...checkHex('0x0102')]).toEqual([1, 2]);
    expect([...checkHex('01 02 ff')]).toEqual([1, 2, 255]);
    expect([...checkHex('0x01 0x02')]).toEqual([1, 2]);
    expect([...checkHex('01:02')]).toEqual([1, 2]);
    expect([...checkHex('')]).toEqual([]);
    for (const bad of ['zz', '0x123', '1 2', 'g0', '0x', '01 0x2']) {
      const r = await cli('write', write, [PULSE, '2a39', bad, '--transport', 'sim']);
      expect(r.code).toBe(2);
      expect(r.err[0]).toBe(`blewire write: not hex octets: ${JSON.stringify(bad)} (e.g. 0102, 0x0102, "01 02" or 01:02; two hex digits per octet)`);
    }
    expect(opened).toBe(0);
  });

  test('numbers and the address type are checked', async () => {
    expect((await cli('read', read, [PULSE, '2a19', '--timeout', 'abc'])).err[0]).toBe('blewire read: --timeout takes a whole number from 1, not "abc"');
    expect((await cli('read', read, [PULSE, '2a19', '--mtu', '9'])).err[0]).toBe('blewire read: --mtu takes a whole number from 23 to 517, not "9"');
    expect((await cli('notify', notify, [PULSE, '2a37', '--count', '-1'])).code).toBe(2);
    const t = await cli('read', read, [PULSE, '2a19', '--type', 'randon']);
    expect(t.code).toBe(2);
    expect(t.err[0]).toBe('blewire read: --type is public or random, not "randon"');
    expect(opened).toBe(0);
  });

  test('--help prints the usage on stdout and exits 0; missing arguments exit 2', async () => {
    const h = await cli('read', read, ['--help']);
    expect(h.code).toBe(0);
    expect(h.out[0]).toMatch(/^usage: blewire read <address> <characteristic-uuid>/);
    expect((await cli('write', write, [PULSE, '2a39'])).code).toBe(2);
  });
});

describe('failures exit 1 with one line', () => {
  test('decode: a missing file, a directory', async () => {
    const missing = join(dir, 'nope.btsnoop');
    const r = await cli('decode', decode, [missing]);
    expect(r.code).toBe(1);
    expect(r.err).toEqual([`blewire decode: file: read capture ${missing}: no such file or directory (ENOENT)`]);
    const d = await cli('decode', decode, [dir]);
    expect(d.code).toBe(1);
    expect(d.err).toEqual([`blewire decode: file: read capture ${dir}: it is a directory, not a capture file`]);
  });

  test('decode: a file that is not a capture', async () => {
    const junk = join(dir, 'junk.btsnoop');
    writeFileSync(junk, 'this is not a capture at all');
    const r = await cli('decode', decode, [junk]);
    expect(r.code).toBe(1);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(/^blewire decode: capture: /);
  });

  test('system errors are described without a stack (EACCES as Node reports it: this suite runs as root)', () => {
    const e = Object.assign(new Error("EACCES: permission denied, open '/x/y.btsnoop'"), { code: 'EACCES', syscall: 'open', path: '/x/y.btsnoop', errno: -13 });
    expect(describeFsError(e)).toBe('cannot open /x/y.btsnoop: permission denied (EACCES)');
    const out = captureOutput();
    expect(report('decode', e)).toBe(1);
    expect(out.stderr()).toEqual(['blewire decode: cannot open /x/y.btsnoop: permission denied (EACCES)']);
  });

  test('a bug is named as one, with its stack only under DEBUG', () => {
    const out = captureOutput();
    vi.stubEnv('DEBUG', '');
    expect(report('scan', new TypeError('x is undefined'))).toBe(1);
    expect(out.stderr()).toEqual(['blewire scan: unexpected error: x is undefined',
      'This is a bug in blewire; DEBUG=blewire:* shows the stack. Please report it with the command you ran.']);
  });
});

describe('the address type hint', () => {
  test('says the type was guessed when the device was not heard advertising', async () => {
    setGattSessionOpener(undefined); // the real opener, on the simulator
    const r = await cli('read', read, ['D4:1E:35:7A:00:99', '2a19', '--transport', 'sim', '--timeout', '3000', '--no-cache']);
    expect(r.code).toBe(1);
    expect(r.err).toEqual(['blewire read: gap: connect to D4:1E:35:7A:00:99 timed out after 3000 ms: the address type was guessed (public) ' +
      'because D4:1E:35:7A:00:99 was not seen advertising within 3 s: is it advertising and connectable? If its address is random, give --type random']);
  });

  test('says nothing of a guess when --type was given', async () => {
    setGattSessionOpener(undefined);
    const r = await cli('read', read, ['D4:1E:35:7A:00:99', '2a19', '--transport', 'sim', '--timeout', '3000', '--type', 'random', '--no-cache']);
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(/timed out after 3000 ms/);
    expect(r.err[0]).not.toMatch(/guessed/);
  });
});

describe('a closed stdout (… | head) ends a command quietly', () => {
  test('decode stops reading and exits 0', async () => {
    const out = captureOutput();
    markStdoutClosed();
    expect(await decode([join(ROOT, 'captures/real/pongbot-long-multiconn.btsnoop')])).toBe(0);
    expect(out.stdout()).toEqual([]);
    expect(out.stderr()).toEqual([]);
  });

  test('explore prints nothing and exits 0 when the reader is gone before the tree is printed', async () => {
    setGattSessionOpener(undefined);
    const out = captureOutput();
    markStdoutClosed(); // `blewire explore … | head` whose head already exited
    expect(await explore([PULSE, '--transport', 'sim', '--no-cache'])).toBe(0);
    expect(out.stdout()).toEqual([]);
    expect(out.stderr()).toEqual([]);
  });

  test('notify (no --count) unsubscribes, disconnects and exits 0 once the reader is gone', async () => {
    setGattSessionOpener(undefined);
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
      lines.push(a.join(' '));
      if (lines.length === 2) markStdoutClosed(); // `| head -2`
    });
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    expect(await notify([PULSE, 'heart_rate_measurement', '--transport', 'sim', '--no-cache'])).toBe(0);
    expect(lines).toHaveLength(2);
    expect(err).not.toHaveBeenCalled();
  });
});

describe('the real entry point', () => {
  const main = join(ROOT, 'src/cli/main.ts');
  const run = async (args: string[]): Promise<{ code: number; stderr: string; stdout: string }> => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', main, ...args], { cwd: ROOT, timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  };

  test('exit codes and messages, no stack trace', async () => {
    const bad = await run(['read', 'D4:1E:35', '2a19', '--transport', 'sim']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^blewire read: not a Bluetooth device address: "D4:1E:35"/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const missing = await run(['decode', join(dir, 'missing.pcap')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(`blewire decode: file: read capture ${join(dir, 'missing.pcap')}: no such file or directory (ENOENT)`);
    const transport = await run(['read', PULSE, '2a19', '--transport', 'nope']);
    expect(transport.code).toBe(2);
    expect(transport.stderr).toMatch(/valid forms: .*sim/);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const form of ['hci0', 'hci:N', 'unix:/path', 'tcp:host:port', 'serial:', 'sim,', 'sim:empty', 'sim:large', 'replay:', 'capture:']) {
      expect(help.stdout).toContain(form);
    }
  }, 120_000);
});
