/**
 * Runs INSIDE the BlueZ guest (bundled by guest-stage.ts, started by user-channel-guest.test.ts through
 * runInGuest): blewire on the kernel's HCI user channel of a real Linux Bluetooth stack, through
 * @abandonware/bluetooth-hci-socket's bindUser(). Scans for BlueZ's adapter on the other vhci controller,
 * connects, discovers its database, reads the Device Name and prints ONE JSON line on stdout (the host
 * asserts on it). Every failure is printed as JSON with `error` and exits 1, so the host sees why.
 *
 * Environment (set by the guest's init.sh in run mode): BLEWIRE_HCI_INDEX (a powered-off controller
 * free for the user channel), BLEWIRE_PERIPHERAL (BlueZ's adapter address).
 */
import { Adapter } from '../../../src/api/adapter.js';
import { systemClock } from '../../../src/clock.js';
import { loadHciSocketModule, openUserChannel } from '../../../src/transport/user-channel.js';
import { reportToHost } from './guest-main.js';

const HCI_SOCKET = '@abandonware/bluetooth-hci-socket';

async function main(): Promise<Record<string, unknown>> {
  const index = Number(process.env.BLEWIRE_HCI_INDEX);
  const peripheral = process.env.BLEWIRE_PERIPHERAL ?? '';
  if (!Number.isInteger(index) || index < 0) throw new Error(`BLEWIRE_HCI_INDEX is not set (${process.env.BLEWIRE_HCI_INDEX})`);
  const t: Record<string, number> = {};
  let t0 = performance.now();
  const mark = (name: string): void => {
    const now = performance.now();
    t[name] = Math.round((now - t0) * 10) / 10;
    t0 = now;
  };

  const transport = await openUserChannel(index, { loadModule: () => loadHciSocketModule([HCI_SOCKET]) });
  mark('bindUser');
  const adapter = await Adapter.open({ transport, clock: systemClock, randomAddress: true });
  mark('init');
  try {
    const info = adapter.controller;
    const ad = await adapter.find({ address: peripheral, active: true, timeout: 30_000 });
    mark('scan');
    if (!ad) throw new Error(`no advertisement from ${peripheral} within 30 s`);
    const conn = await adapter.connect(ad, { timeout: 15_000 });
    mark('connect');
    await conn.exchangeMtu({ timeout: 15_000 });
    mark('mtu');
    const services = await conn.services({ timeout: 30_000 });
    mark('discovery');
    const discoveryRequests = conn.gatt.stats.discoveryRequests;
    const nameChar = services.find(s => s.uuid === '00001800-0000-1000-8000-00805f9b34fb')
      ?.characteristics.find(c => c.uuid === '00002a00-0000-1000-8000-00805f9b34fb');
    if (!nameChar) throw new Error('no Device Name characteristic in the discovered database');
    const name = new TextDecoder().decode(await nameChar.read({ timeout: 15_000 }));
    mark('read');
    const reason = await conn.disconnect();
    mark('disconnect');
    return {
      transport: transport.description,
      module: HCI_SOCKET,
      controller: { address: info.address, acl: info.acl },
      advertisement: { address: ad.address, addressType: ad.addressType, name: ad.name, serviceUuids: ad.serviceUuids },
      connection: { address: conn.address, role: conn.role, intervalMs: conn.parameters.interval, mtu: conn.mtu },
      services: services.map(s => ({ uuid: s.uuid, characteristics: s.characteristics.map(c => c.uuid) })),
      discoveryRequests,
      deviceName: name,
      disconnect: reason.name,
      timingsMs: t,
    };
  } finally {
    await adapter.close();
  }
}

reportToHost(main);
