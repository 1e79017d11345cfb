/**
 * `blewire doctor` with no transport: the adapters of this machine, who holds them and what to run
 * next (doctor-inventory.ts). `blewire doctor --transport T [--json]`: can the transport open (and if not, why and what to do:
 * who holds the adapter, EBUSY, permissions), then what the controller is in plain words: version,
 * manufacturer, address, ACL buffers, LE features and capabilities, and what blewire will use.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { parseArgs } from 'node:util';
import '../transports.js'; // --transport sim / replay:file
import { Adapter } from '../api/adapter.js';
import { BlewireError } from '../errors.js';
import type { ControllerInfo } from '../hci/controller.js';
import { describeInventory, takeInventory } from './doctor-inventory.js';

const HELP = `usage: blewire doctor [--transport T] [--json]

Without a transport: lists the adapters of this machine (kernel hciN adapters with their bus, driver
and rfkill state; serial ports that may have an HCI controller behind them), which of them bluetoothd
or another process holds, and the command to run next for each (exit 1 if none was found).
With a transport: opens the transport, resets the controller and describes it. On failure it says why (adapter held by
bluetoothd or another process, missing permission, missing native module) and how to fix it.`;

/** Company identifiers of common controller makers (Assigned Numbers, Company Identifiers). */
const MANUFACTURERS: Record<number, string> = {
  0x0002: 'Intel', 0x000a: 'Qualcomm (CSR)', 0x000d: 'Texas Instruments', 0x000f: 'Broadcom', 0x001d: 'Qualcomm',
  0x0046: 'MediaTek', 0x0059: 'Nordic Semiconductor', 0x005d: 'Realtek', 0x0131: 'Cypress', 0x02e5: 'Espressif',
  0x05f1: 'The Linux Foundation (BlueZ emulator)', 0x0030: 'ST Microelectronics', 0x0025: 'NXP',
};

/** Processes that have a Bluetooth socket or hold bluetoothd (Linux only; best effort). */
function adapterHolders(): string[] {
  const out: string[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter(p => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (comm === 'bluetoothd' || comm === 'btmon' || comm === 'hciattach' || comm === 'btattach') {
        out.push(`${comm} (pid ${pid})`);
        continue;
      }
      // A socket whose protocol is Bluetooth shows in /proc/<pid>/net/bluetooth only system-wide, so
      // look for processes with sockets and a Bluetooth library name in their command line instead.
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/noble|bleno|bluetooth-hci-socket|bumble/.test(cmd) && pid !== String(process.pid)) {
        const fds = readdirSync(`/proc/${pid}/fd`).map(f => { try { return readlinkSync(`/proc/${pid}/fd/${f}`); } catch { return ''; } });
        if (fds.some(l => l.startsWith('socket:'))) out.push(`${comm} (pid ${pid}): ${cmd.trim().slice(0, 80)}`);
      }
    } catch {
      /* process gone or not ours to read */
    }
  }
  return out;
}

export function describeController(c: ControllerInfo): string[] {
  const v = c.version;
  const lines: string[] = [];
  if (v) {
    const maker = MANUFACTURERS[v.manufacturer] ?? `company 0x${v.manufacturer.toString(16).padStart(4, '0')}`;
    lines.push(`Controller: Bluetooth ${v.coreVersion} (HCI ${v.hciVersion} rev 0x${v.hciSubversion.toString(16)}), made by ${maker}`);
  } else {
    lines.push('Controller: did not say its version (Read Local Version Information failed)');
  }
  lines.push(`Address: ${c.address ?? 'unknown'}`);
  const src = { 'le-v2': 'LE Read Buffer Size v2', 'le-v1': 'LE Read Buffer Size', shared: 'shared with BR/EDR (Read Buffer Size)' }[c.acl.source];
  lines.push(`ACL buffers: ${c.acl.count} × ${c.acl.length} bytes (${src})`);
  const feats = c.leFeatureNames();
  lines.push(`LE features: ${feats.length ? feats.join(', ') : 'none reported (emulators often report none; blewire probes the commands)'}`);
  if (c.filterAcceptListSize !== undefined) lines.push(`Filter accept list: ${c.filterAcceptListSize} entries`);
  if (c.resolvingListSize !== undefined) lines.push(`Resolving list: ${c.resolvingListSize} entries`);
  if (c.maxDataLength) {
    lines.push(`Data length: up to ${c.maxDataLength.maxTxOctets} bytes per packet (Data Length Extension)`);
  } else {
    lines.push('Data length: 27 bytes per packet (no Data Length Extension)');
  }
  if (c.numAdvertisingSets !== undefined) lines.push(`Advertising sets: ${c.numAdvertisingSets}`);
  lines.push(`Scanning and connecting: ${c.extendedScanning ? 'extended commands (tried first, legacy if refused)' : 'legacy commands'}`);
  lines.push(`2M / Coded PHY: ${c.phyUpdate ? 'supported' : 'not reported'}`);
  return lines;
}

/** What to do about a transport that would not open, by the error's stable code (first line starts "What to do:"). */
function advice(err: BlewireError): string[] {
  const code = err.code ?? '';
  if (code === 'ETRANSPORT_BUSY' || /EBUSY|busy/i.test(err.message)) {
    const holders = adapterHolders();
    return [
      'What to do: free the adapter with `sudo btmgmt --index N power off` (or stop bluetoothd: `sudo systemctl stop bluetooth`), then retry.',
      holders.length ? `The adapter is held by: ${holders.join('; ')}` : 'The adapter is busy (held by the kernel\'s Bluetooth stack).',
    ];
  }
  if (code === 'ETRANSPORT_PERMISSION' || /EPERM|EACCES|permission/i.test(err.message)) {
    return ['What to do: the user channel needs CAP_NET_ADMIN: run as root or `sudo setcap cap_net_admin+eip $(readlink -f $(which node))`.'];
  }
  switch (code) {
    case 'ETIMEDOUT':
      return ['What to do: the transport opened but the controller did not answer HCI Reset: check the port, the baud rate and that an HCI controller (not an AT-command modem) is behind it.'];
    case 'ETRANSPORT_NO_BLUETOOTH':
      return ['What to do: load the kernel\'s Bluetooth support (`sudo modprobe bluetooth`, a kernel with CONFIG_BT), or use a transport that needs none: serial:/dev/ttyACM0, unix:/path (btvirt), tcp:host:port, or sim.'];
    case 'ETRANSPORT_NO_ADAPTER':
      return ['What to do: plug in an adapter or name one that is present (`ls /sys/class/bluetooth`, then --transport hciN).'];
    case 'ETRANSPORT_MODULE_MISSING':
      return ['What to do: install a native HCI socket module (see above), or use serial:, unix:, tcp: or sim, which need none.'];
    case 'ETRANSPORT_CONNECT':
      return ['What to do: start the controller or emulator behind that socket (for btvirt: `tools/interop/btvirt.sh start` prints le_socket=…), or correct the path or host:port.'];
    case 'ETRANSPORT_SPEC':
      return ['What to do: use one of the transport forms listed above; --transport sim needs no adapter.'];
    default:
      return ['What to do: check the transport spec and run again with DEBUG=blewire:* to see the HCI exchange.'];
  }
}

export interface DoctorOptions {
  /** Where sysfs and procfs are read from (tests use a fake tree); default '/'. */
  root?: string;
}

export async function run(argv: string[], options: DoctorOptions = {}): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, options: { transport: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (e) {
    console.error(`blewire doctor: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const spec = args.transport || process.env.BLEWIRE_TRANSPORT || undefined; // an empty variable is no transport
  if (spec === undefined) {
    const inv = takeInventory(options.root ?? '/');
    if (args.json) {
      console.log(JSON.stringify(inv, null, 2)); // JSON only, for scripts
    } else {
      console.log('Transport: (none given: listing the adapters of this machine; --transport or BLEWIRE_TRANSPORT checks one)');
      for (const l of describeInventory(inv)) console.log(l);
    }
    return inv.adapters.length || inv.serial.length ? 0 : 1;
  }
  console.log(`Transport: ${spec ?? '(none given: use --transport or BLEWIRE_TRANSPORT)'}`);
  let adapter: Adapter;
  try {
    adapter = await Adapter.open({ transport: spec, commandTimeout: 3000 });
  } catch (e) {
    const err = e as BlewireError;
    console.log(`Cannot open: ${err.message}`);
    for (const l of advice(err)) console.log(l);
    return 1;
  }
  try {
    const info = adapter.controller;
    if (args.json) {
      console.log(JSON.stringify(info.toJSON(), (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
    } else {
      console.log('Opened and reset: OK');
      for (const l of describeController(info)) console.log(l);
    }
  } finally {
    await adapter.close();
  }
  return 0;
}
