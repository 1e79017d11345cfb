/**
 * blewire's GATT server (adapter.serve) against BlueZ as the central: the guest boots in run mode with
 * two vhci controllers; blewire, bundled for node, binds hci1 with the HCI user channel, serves a
 * database and advertises it; bluetoothd on hci0, driven through its D-Bus API by bluez-central.py,
 * finds the advertisement, connects, discovers the database by itself, reads (a short value, then a
 * 300-octet value by Read Blob), writes with and without response and a 210-octet value by Prepare /
 * Execute Write, and subscribes to notifications and to indications (which it confirms). The guest prints one JSON line: what BlueZ saw and
 * what our server saw, with the ATT PDUs on our side of the wire; this file asserts both.
 *
 * Run mode is its own boot (the files ride in an extra initramfs), so this file does not share the
 * bridge-mode guest. A guest that cannot boot, or a command that does not finish, fails the test.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { runInGuest } from './helpers/bluez-guest.js';
import { guestOutcome, stageForGuest, type GuestStage } from './helpers/guest-stage.js';

const ENTRY = fileURLToPath(new URL('./helpers/guest-gatt-server-main.ts', import.meta.url));
const CENTRAL = fileURLToPath(new URL('./helpers/bluez-central.py', import.meta.url));
const SERVICE = 'b1e0f000-5c1e-4d6a-9f3b-2a7e5d8c1b00';
const U = (n: number): string => SERVICE.replace('b1e0f000', `b1e0f00${n}`);
const LONG = Array.from({ length: 300 }, (_, i) => String.fromCharCode(0x41 + (i % 26))).join('');

interface GuestResult {
  error?: string;
  ourAddress: string;
  bluez: {
    error?: string;
    steps: Array<[string, number]>;
    advertised: { name: string; uuids: string[] };
    services: string[];
    characteristics: Record<string, string[]>;
    read: string;
    longRead: string;
    longWrite: string;
    notified: number[];
    indicated: number[];
  };
  centralExit: number;
  centralStderr: string;
  incoming?: { address: string; role: string };
  writes: Array<{ value: string; command: boolean; prepared: boolean; from: string }>;
  reads: string[];
  notified: number;
  indicated: number;
  handles: Record<string, number>;
  att: Array<{ dir: 'tx' | 'rx'; hex: string }>;
}

const le16 = (h: number): string => [h & 0xff, h >> 8].map(b => b.toString(16).padStart(2, '0')).join('');
const hexOf = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

describe('blewire GATT server, BlueZ as the central (run mode, HCI user channel)', () => {
  let stage: GuestStage | undefined;
  afterAll(() => stage?.cleanup());

  it('bluetoothd discovers, reads, long-reads, writes, long-writes, gets notifications and confirms indications from adapter.serve()', async () => {
    const t0 = performance.now();
    stage = await stageForGuest(ENTRY);
    const files = { ...stage.files, '/blewire-run/bluez-central.py': CENTRAL };
    const res = await runInGuest(files, stage.command, { timeoutMs: 600_000 });
    const total = performance.now() - t0;

    const { ready: { peripheral: bluezAddress }, out } = guestOutcome<GuestResult>(res);
    expect(out.error, `guest failed: ${out.error}\n${res.console.slice(-3000)}`).toBeUndefined();
    expect(out.bluez.error, `bluez-central.py failed: ${out.bluez.error}\nsteps ${JSON.stringify(out.bluez.steps)}\n` +
      `stderr ${out.centralStderr}\nATT ${JSON.stringify(out.att.slice(-40))}\n${res.console.slice(-3000)}`).toBeUndefined();
    expect(res.exitCode).toBe(0);

    // BlueZ saw our advertisement and connected to us: we are the peripheral of BlueZ's adapter.
    // Flags (3) and the 128-bit service UUID (18) leave 10 octets: the name goes out shortened (AD type 0x08).
    expect(out.bluez.advertised.name).toBe('blewire-');
    expect(out.bluez.advertised.uuids).toContain(SERVICE);
    expect(out.incoming).toEqual({ address: bluezAddress, role: 'peripheral' });
    // Its own discovery found GATT and our service with the characteristics' properties. (bluetoothd
    // keeps the GAP service, 0x1800, to itself: its gap profile reads the name and appearance, and the
    // service is not exported on D-Bus; the wire check below sees the whole discovery.)
    expect(out.bluez.services).toEqual(expect.arrayContaining(['00001801-0000-1000-8000-00805f9b34fb', SERVICE]));
    expect(out.bluez.services).not.toContain('00001800-0000-1000-8000-00805f9b34fb');
    expect(out.bluez.characteristics[U(1)]).toEqual(['read']);
    expect(out.bluez.characteristics[U(2)]).toEqual(expect.arrayContaining(['read', 'write', 'write-without-response']));
    expect(out.bluez.characteristics[U(3)]).toEqual(expect.arrayContaining(['read', 'notify']));
    // Reads: a static value, and a 300-octet handler value read with Read Blob at ATT_MTU 23.
    expect(out.bluez.read).toBe('hello from blewire');
    expect(out.bluez.longRead).toBe(LONG);
    expect(out.reads[0]).toBe('peripheral@0');
    expect(out.reads).toContain('peripheral@22');
    // Writes as our handler saw them: with response, without, and the long one reassembled.
    expect(out.writes).toEqual([
      { value: 'written by bluez', command: false, prepared: false, from: bluezAddress },
      { value: 'command from bluez', command: true, prepared: false, from: bluezAddress },
      { value: out.bluez.longWrite, command: false, prepared: true, from: bluezAddress },
    ]);
    // Notification: BlueZ's StartNotify wrote our CCCD, our notify() reached it.
    expect(out.notified).toBe(1);
    expect(out.bluez.notified).toEqual([0x2a, 1, 2]);
    // Indication: BlueZ's StartNotify on the indicate-only characteristic wrote 0x0002; our indicate()
    // resolved with 1, which it does only on BlueZ's Handle Value Confirmation; BlueZ shows the value.
    expect(out.bluez.characteristics[U(5)]).toEqual(expect.arrayContaining(['read', 'indicate']));
    expect(out.indicated).toBe(1);
    expect(out.bluez.indicated).toEqual([0x1d, 0x0e]);

    // On the wire (our side): the PDUs BlueZ sent and our answers.
    const h = out.handles;
    const has = (dir: 'tx' | 'rx', hex: string): boolean => out.att.some(p => p.dir === dir && p.hex === hex);
    expect(has('rx', `0a${le16(h.f001!)}`)).toBe(true);
    expect(has('tx', `0b${hexOf('hello from blewire')}`)).toBe(true);
    expect(has('rx', `0c${le16(h.f004!)}1600`)).toBe(true);
    expect(has('tx', `0d${hexOf(LONG.slice(22, 44))}`)).toBe(true);
    expect(has('rx', `12${le16(h.f002!)}${hexOf('written by bluez')}`)).toBe(true);
    expect(has('rx', `52${le16(h.f002!)}${hexOf('command from bluez')}`)).toBe(true);
    expect(out.att.some(p => p.dir === 'rx' && p.hex.startsWith(`16${le16(h.f002!)}`))).toBe(true);
    expect(has('rx', '1801')).toBe(true);
    expect(has('tx', '19')).toBe(true);
    expect(has('rx', `12${le16(h.f003! + 1)}0100`)).toBe(true);
    expect(has('tx', `1b${le16(h.f003!)}2a0102`)).toBe(true);
    expect(has('rx', `12${le16(h.f005! + 1)}0200`)).toBe(true);
    const ind = out.att.findIndex(p => p.dir === 'tx' && p.hex === `1d${le16(h.f005!)}1d0e`);
    expect(ind).toBeGreaterThan(0);
    expect(out.att.slice(ind + 1).some(p => p.dir === 'rx' && p.hex === '1e')).toBe(true);
    // No request of BlueZ was refused with an error we did not mean (Database Out Of Sync, Unlikely Error).
    expect(out.att.filter(p => p.dir === 'tx' && p.hex.startsWith('01') && /(12|0e)$/.test(p.hex))).toEqual([]);

    console.log([
      'gatt-server-bluez figures:',
      `  runInGuest total (bundle + build check + boot + run + power-off) ${(total / 1000).toFixed(1)} s`,
      `  BlueZ steps (ms since the script started): ${out.bluez.steps.map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `  ATT PDUs on our side: ${out.att.length}`,
    ].join('\n'));
  }, 900_000);
});
