/**
 * The HCI user channel — the transport blewire is designed around — proven end to end in a real Linux
 * kernel: the BlueZ guest boots in run mode with two vhci controllers (hci0 owned by bluetoothd, which
 * advertises the example GATT server; hci1 powered off and free), and blewire, bundled for node, binds
 * hci1 with @abandonware/bluetooth-hci-socket's bindUser(), scans, finds BlueZ's advertisement, connects,
 * discovers the database and reads the Device Name. The guest prints one JSON line; this file asserts
 * on it against what the guest's own tools reported (READY line: btmgmt's address and name).
 *
 * Run mode is its own boot (the files ride in an extra initramfs), so this file does not share the
 * bridge-mode guest. A guest that cannot boot, or a command that does not finish, fails the test.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { runInGuest } from './helpers/bluez-guest.js';
import { guestOutcome, stageForGuest, type GuestStage } from './helpers/guest-stage.js';

const ENTRY = fileURLToPath(new URL('./helpers/guest-user-channel-main.ts', import.meta.url));

interface GuestResult {
  error?: string;
  transport: string;
  module: string;
  controller: { address: string; acl: { length: number; count: number } };
  advertisement: { address: string; addressType: string; name?: string; serviceUuids: string[] };
  connection: { address: string; role: string; intervalMs: number; mtu: number };
  services: Array<{ uuid: string; characteristics: string[] }>;
  discoveryRequests: number;
  deviceName: string;
  disconnect: string;
  timingsMs: Record<string, number>;
}

describe('HCI user channel in the guest kernel (@abandonware/bluetooth-hci-socket bindUser)', () => {
  let stage: GuestStage | undefined;
  afterAll(() => stage?.cleanup());

  it('binds a kernel controller, scans, connects to BlueZ, discovers and reads the Device Name', async () => {
    const t0 = performance.now();
    stage = await stageForGuest(ENTRY);
    const bundled = performance.now() - t0;
    const res = await runInGuest(stage.files, stage.command, { timeoutMs: 600_000 });
    const total = performance.now() - t0;

    // What the guest's own tools said (init.sh's READY line, from `btmgmt --index 0 info`).
    const { ready: { peripheral, nameField, controllers }, out } = guestOutcome<GuestResult>(res);
    const readyAt = /\[([\d.]+)\] services up/.exec(res.console)?.[1];
    expect(controllers).toBeGreaterThanOrEqual(2);

    expect(out.error, `guest failed: ${out.error}\n${res.console.slice(-3000)}`).toBeUndefined();
    expect(res.exitCode).toBe(0);

    expect(out.transport).toBe('hci1 (user channel)');
    expect(out.module).toBe('@abandonware/bluetooth-hci-socket');
    // Our controller is the second vhci controller, distinct from BlueZ's adapter.
    expect(out.controller.address).toMatch(/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
    expect(out.controller.address).not.toBe(peripheral);
    expect(out.advertisement.address).toBe(peripheral);
    expect(out.advertisement.serviceUuids).toEqual(expect.arrayContaining([
      '0000180d-0000-1000-8000-00805f9b34fb', '0000180f-0000-1000-8000-00805f9b34fb',
    ]));
    expect(out.connection).toMatchObject({ address: peripheral, role: 'central' });
    // BlueZ's GAP name as btmgmt printed it (spaces as '_'), read over GATT through the user channel.
    expect(out.deviceName).toBe(nameField!.replace(/_/g, ' '));
    expect(out.services.map(s => s.uuid)).toEqual(expect.arrayContaining([
      '00001800-0000-1000-8000-00805f9b34fb', '00001801-0000-1000-8000-00805f9b34fb', '0000180d-0000-1000-8000-00805f9b34fb',
      '12345678-1234-5678-1234-56789abcdef0',
    ]));
    expect(out.disconnect).toBeTruthy();

    console.log([
      'user-channel-guest figures:',
      `  bundle ${(stage.bundleBytes / 1024).toFixed(0)} KiB in ${bundled.toFixed(0)} ms`,
      `  guest services up at ${readyAt ?? '?'} s guest uptime; runInGuest total (build check + boot + run + power-off) ${(total / 1000).toFixed(1)} s`,
      `  in the guest (ms): ${Object.entries(out.timingsMs).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `  controller ${out.controller.address} ACL ${out.controller.acl.length}×${out.controller.acl.count}; ATT_MTU ${out.connection.mtu}; ` +
        `discovery ${out.discoveryRequests} round trips for ${out.services.length} services`,
    ].join('\n'));
  }, 900_000);
});
