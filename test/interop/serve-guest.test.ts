/**
 * `blewire serve` on a kernel controller through the HCI user channel, BlueZ 5.66 as the central: the
 * nearest this machine has to "a phone app tested against a twin on a real adapter" (there is no radio
 * here). The guest boots in run mode with two vhci controllers; the packaged CLI (bin.mjs and the bundle
 * tools/package/bundle-cli.mjs builds, with its dependencies beside it as an installed package has them)
 * serves the device twin of the table-tennis robot NOVA_O38240700268, extracted on the host by
 * `blewire twin` from the phone's capture in captures/twin-pongbot-nova, on hci1 with `--transport hci1`;
 * bluetoothd on hci0 is the central (helpers/guest-serve-main.ts drives both, see there). Checked against
 * the capture and against what BlueZ reports: the advertising BlueZ heard (name from the captured scan
 * response, the captured service UUID), the database bluetoothd discovered by itself, the captured
 * notification stream in order through BlueZ's AcquireNotify socket, a write as the phone made it, a
 * second connection after the first ended (advertising again), SIGTERM ending the command with exit 0,
 * and tshark on the command's own recording (--capture): no malformed frame, the notifications as sent.
 *
 * Run mode is its own boot (the files ride in an extra initramfs), so this file does not share the
 * bridge-mode guest. A guest that cannot boot, or a command that does not finish, fails the test.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runInGuest } from './helpers/bluez-guest.js';
import { guestOutcome, stageForGuest, type GuestStage } from './helpers/guest-stage.js';
import { tshark, tsharkMalformed } from './helpers/tshark.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = fileURLToPath(new URL('./helpers/guest-serve-main.ts', import.meta.url));
const OPS = fileURLToPath(new URL('./helpers/bluez-central-ops.py', import.meta.url));
const NOVA = '14:32:38:31:47:34';
const FE00 = '02f00000-0000-0000-0000-00000000fe00';
const char = (n: string): string => FE00.replace(/fe00$/, n);

interface Twin {
  advertising: { data: string; scanResponse: string };
  services: Array<{ uuid: string; characteristics: Array<{ uuid: string; valueHandle: number; properties: number }> }>;
  notifications: Array<{ handle: number; value: string }>;
}
interface GuestResult {
  error?: string;
  events: Array<Record<string, unknown>>;
  stderr: string;
  exitCode: number | null;
  bluez: Array<Record<string, unknown> & { args: string[]; error?: string }>;
  capture: string;
}

describe('blewire serve of a device twin on the HCI user channel, BlueZ as the central (run mode)', () => {
  let stage: GuestStage | undefined;
  let tmp: string | undefined;
  afterAll(() => {
    stage?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('bluetoothd finds the twin, discovers it, reads, gets the captured notifications, writes, connects again; SIGTERM exits 0', async () => {
    const t0 = performance.now();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'blewire-serve-guest-'));
    const twinFile = path.join(tmp, 'nova.json');
    const t = await run(process.execPath, [path.join(ROOT, 'src/cli/bin.mjs'), 'twin', path.join(ROOT, 'captures/twin-pongbot-nova/capture.btsnoop'),
      '--address', NOVA, '-o', twinFile]);
    expect(t.stderr).toMatch(/NOVA_O38240700268: 3 service\(s\), 9 characteristic\(s\)/);
    const twin = JSON.parse(fs.readFileSync(twinFile, 'utf8')) as Twin;
    // The command as the package installs it: bin.mjs, launch.mjs, run-bundle.mjs, package.json and a
    // bundle built now from this checkout (no tools/ folder beside it, so bin.mjs runs the bundle and
    // nothing else).
    const pkg = path.join(tmp, 'pkg');
    fs.mkdirSync(path.join(pkg, 'src/cli'), { recursive: true });
    for (const f of ['src/cli/bin.mjs', 'src/cli/launch.mjs', 'src/cli/run-bundle.mjs', 'package.json']) fs.copyFileSync(path.join(ROOT, f), path.join(pkg, f));
    await run(process.execPath, [path.join(ROOT, 'tools/package/bundle-cli.mjs'), '--outfile', path.join(pkg, 'dist/cli/blewire.cjs'),
      '--gateway-outfile', path.join(tmp, 'gateway.cjs')]);

    stage = await stageForGuest(ENTRY, ['@abandonware/bluetooth-hci-socket', 'debug', 'ms', 'ws']);
    const files = { ...stage.files, '/blewire-run/pkg': pkg, '/blewire-run/nova.json': twinFile, '/blewire-run/bluez-central-ops.py': OPS };
    const res = await runInGuest(files, stage.command, { timeoutMs: 600_000 });
    const total = performance.now() - t0;

    const { ready: { peripheral: bluezAddress }, out } = guestOutcome<GuestResult>(res);
    const context = `\nevents ${JSON.stringify(out.events)}\nstderr ${out.stderr}\nbluez ${JSON.stringify(out.bluez)}\n${res.console.slice(-3000)}`;
    expect(out.error, `guest failed: ${out.error}${context}`).toBeUndefined();
    expect(res.exitCode).toBe(0);

    // The command advertised the twin's captured data from our user-channel controller (not BlueZ's).
    const adv = out.events.find(e => e['event'] === 'advertising')!;
    expect(adv).toMatchObject({ data: twin.advertising.data, scanResponse: twin.advertising.scanResponse, connectable: true });
    expect(adv['address']).not.toBe(bluezAddress);
    // What bluetoothd made of it: the name in the captured scan response and, once its own discovery is
    // done (it then lists the services it found, not the advertised 0xFFFE), the twin's three services.
    const op = (name: string, n = 0): Record<string, unknown> => out.bluez.filter(r => r.args[0] === name)[n]!;
    const info = op('info');
    expect(info['name']).toBe('NOVA_O38240700268');
    expect([...(info['uuids'] as string[])].sort()).toEqual(twin.services.map(s => s.uuid).sort());
    expect(info['connected']).toBe(true);
    // The incoming link, from BlueZ's adapter.
    expect(out.events.filter(e => e['event'] === 'connected').map(e => e['address'])).toEqual([bluezAddress, bluezAddress]);

    // A value the capture never showed is served empty; the served side printed the read.
    expect(op('read')['value']).toBe('');
    expect(out.events).toContainEqual(expect.objectContaining({ event: 'read', uuid: char('ff03'), value: '' }));
    // BlueZ's notification socket (one packet per notification) got the device's captured stream, in order.
    const streamHandle = twin.services.find(s => s.uuid === FE00)!.characteristics.find(c => c.uuid === char('ff02'))!.valueHandle;
    const expected = twin.notifications.filter(n => n.handle === streamHandle).slice(0, 3).map(n => n.value);
    expect(op('acquire-notify')['values']).toEqual(expected);
    expect(out.events).toContainEqual(expect.objectContaining({ event: 'subscribe', uuid: char('ff02'), notifications: true }));
    // The phone's first write, as the device's handler saw it.
    expect(out.events).toContainEqual(expect.objectContaining({ event: 'write', uuid: char('ff01'), value: '070000', kind: 'request' }));
    // Advertising went on after the first connection (or started again after it ended): a second one.
    expect(out.events.filter(e => ['connected', 'disconnected'].includes(e['event'] as string)).map(e => e['event']))
      .toEqual(['connected', 'disconnected', 'connected', 'disconnected']);
    expect(op('read', 1)['value']).toBe('');
    // SIGTERM: advertising stopped, adapter closed, exit 0 with the summary line.
    expect(out.exitCode).toBe(0);
    expect(out.stderr).toMatch(/stopped: 2 connection\(s\), \d+ read\(s\), 1 write\(s\), \d+ notification/);

    // The command's own recording of the user channel, decoded by tshark.
    const capture = path.join(tmp, 'serve-guest.btsnoop');
    fs.writeFileSync(capture, Buffer.from(out.capture, 'base64'));
    expect(fs.statSync(capture).size).toBeGreaterThan(0);
    expect(await tsharkMalformed(capture)).toEqual([]);
    const notified = (await tshark('-r', capture, '-Y', 'btatt.opcode == 0x1b', '-T', 'fields', '-e', 'btatt.value'))
      .split('\n').filter(Boolean).map(v => v.replace(/:/g, ''));
    expect(notified.slice(0, 3)).toEqual(expected);
    const keep = process.env.BLEWIRE_INTEROP_KEEP;
    if (keep) fs.copyFileSync(capture, path.join(keep, path.basename(capture)));

    console.log([
      'serve-guest figures:',
      `  runInGuest total (twin + bundles + boot + run + power-off) ${(total / 1000).toFixed(1)} s`,
      `  BlueZ operations (ms each, TCG): ${out.bluez.map(r => `${r.args[0]} ${String(r['ms'])}`).join(', ')}`,
      `  events printed by blewire serve: ${out.events.length}; notifications in its recording: ${notified.length}`,
    ].join('\n'));
  }, 900_000);
});
