/**
 * Runs INSIDE the BlueZ guest (bundled by guest-stage.ts, started by gatt-server-bluez.test.ts through
 * runInGuest): blewire as the PERIPHERAL on the kernel's HCI user channel (hci1), serving a GATT database
 * with adapter.serve() and advertising it, while BlueZ's bluetoothd on hci0 is the CENTRAL, driven over
 * D-Bus by bluez-central.py (org.bluez Device1 / GattCharacteristic1: Connect, its own discovery,
 * ReadValue, WriteValue, StartNotify). blewire taps its own HCI traffic to report the ATT PDUs on the
 * wire. Prints ONE JSON line on stdout: what BlueZ saw (from the script) and what our server saw.
 *
 * Environment (set by the guest's init.sh in run mode): BLEWIRE_HCI_INDEX (a powered-off controller free
 * for the user channel), BLEWIRE_PERIPHERAL (BlueZ's adapter address, the central here).
 */
import { spawn } from 'node:child_process';
import { Adapter } from '../../../src/api/adapter.js';
import type { Connection } from '../../../src/api/connection.js';
import { toHex } from '../../../src/bytes/hex.js';
import { systemClock } from '../../../src/clock.js';
import { loadHciSocketModule, openUserChannel } from '../../../src/transport/user-channel.js';
import type { HciTransport, TransportReceiver } from '../../../src/transport/types.js';
import { reportToHost } from './guest-main.js';

const HCI_SOCKET = '@abandonware/bluetooth-hci-socket';
const SERVICE = 'b1e0f000-5c1e-4d6a-9f3b-2a7e5d8c1b00';
const LONG = Array.from({ length: 300 }, (_, i) => String.fromCharCode(0x41 + (i % 26))).join('');

function tap(inner: HciTransport, att: Array<{ dir: string; hex: string }>): HciTransport {
  const grab = (dir: string, p: Uint8Array): void => {
    if (p[0] !== 0x02 || p.length < 9 || ((p[2]! >> 4) & 0x3) === 0x1) return;
    if ((p[7]! | (p[8]! << 8)) !== 0x0004) return;
    if (att.length < 2000) att.push({ dir, hex: toHex(p.subarray(9)) });
  };
  return {
    ...(inner.clock ? { clock: inner.clock } : {}),
    description: inner.description,
    send: p => { grab('tx', p); inner.send(p); },
    setReceiver: (r: TransportReceiver) => inner.setReceiver({ packet: p => { grab('rx', p); r.packet(p); }, closed: e => r.closed(e) }),
    close: () => inner.close(),
  };
}

function runCentral(address: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn('python3', ['bluez-central.py', address, SERVICE], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.once('close', code => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }); });
  });
}

async function main(): Promise<Record<string, unknown>> {
  const index = Number(process.env.BLEWIRE_HCI_INDEX);
  if (!Number.isInteger(index) || index < 0) throw new Error(`BLEWIRE_HCI_INDEX is not set (${process.env.BLEWIRE_HCI_INDEX})`);
  const att: Array<{ dir: string; hex: string }> = [];
  const transport = tap(await openUserChannel(index, { loadModule: () => loadHciSocketModule([HCI_SOCKET]) }), att);
  // ATT_MTU 23 from our side, so bluetoothd's reads and writes of 300 and 210 octets are long ones.
  const adapter = await Adapter.open({ transport, clock: systemClock, bonds: false, mtu: 23 });
  const writes: Array<{ value: string; command: boolean; prepared: boolean; from: string }> = [];
  const reads: string[] = [];
  try {
    const server = await adapter.serve([{ uuid: SERVICE, characteristics: [
      { uuid: SERVICE.replace('b1e0f000', 'b1e0f001'), properties: ['read'], value: 'hello from blewire' },
      { uuid: SERVICE.replace('b1e0f000', 'b1e0f002'), properties: ['read', 'write', 'writeWithoutResponse'],
        onWrite: async (value, req) => { writes.push({ value: new TextDecoder().decode(value), command: req.command, prepared: req.prepared, from: (req.connection as Connection).address }); } },
      { uuid: SERVICE.replace('b1e0f000', 'b1e0f003'), properties: ['read', 'notify'], value: Uint8Array.of(0) },
      { uuid: SERVICE.replace('b1e0f000', 'b1e0f004'), properties: ['read'],
        onRead: async ({ connection, offset }) => { reads.push(`${(connection as Connection).role}@${offset}`); return LONG; } },
      { uuid: SERVICE.replace('b1e0f000', 'b1e0f005'), properties: ['read', 'indicate'], value: Uint8Array.of(0) },
    ] }]);
    const accepted = adapter.accept();
    await adapter.advertise({ name: 'blewire-srv', services: [SERVICE] });
    const incoming = accepted.next();
    // Notify as soon as BlueZ subscribes (its StartNotify writes our CCCD).
    let notified = 0;
    // Indicate as soon as BlueZ subscribes to indications: resolves with 1 once its confirmation came.
    let indicated = 0;
    const notifier = setInterval(() => {
      if (indicated === 0 && server.subscribers(SERVICE.replace('b1e0f000', 'b1e0f005'), 'indication').length > 0) {
        indicated = -1;
        server.indicate(SERVICE.replace('b1e0f000', 'b1e0f005'), Uint8Array.of(0x1d, 0x0e)).then(n => { indicated = n; }, () => { indicated = -2; });
      }
      if (notified === 0 && server.subscribers(SERVICE.replace('b1e0f000', 'b1e0f003')).length > 0) {
        notified = -1;
        server.notify(SERVICE.replace('b1e0f000', 'b1e0f003'), Uint8Array.of(0x2a, 0x01, 0x02)).then(n => { notified = n; }, () => { notified = -2; });
      }
    }, 20);
    const central = await runCentral(adapter.controller.address ?? "");
    clearInterval(notifier);
    const conn = await Promise.race([incoming.then(r => r.value as Connection | undefined), new Promise<undefined>(r => setTimeout(r, 1000, undefined))]);
    await accepted.return!();
    let bluez: unknown;
    try {
      bluez = JSON.parse(central.stdout.trim().split('\n').pop() ?? '');
    } catch {
      bluez = { error: `no JSON from bluez-central.py (exit ${central.code})`, stdout: central.stdout };
    }
    return {
      ourAddress: adapter.controller.address,
      bluez,
      centralExit: central.code,
      centralStderr: central.stderr.slice(-3000),
      incoming: conn ? { address: conn.address, role: conn.role } : undefined,
      writes,
      reads,
      notified,
      indicated,
      handles: Object.fromEntries([1, 2, 3, 4, 5].map(i => [`f00${i}`, server.handleOf(SERVICE.replace('b1e0f000', `b1e0f00${i}`))])),
      att,
    };
  } finally {
    await adapter.close();
  }
}

reportToHost(main);
