/**
 * What `blewire doctor` without a transport finds on a Linux machine: the kernel's Bluetooth adapters
 * (/sys/class/bluetooth/hciN: bus, driver, rfkill state), serial ports that may have an HCI controller
 * behind them (a UART with a driver: ttyACM / ttyUSB / ttyAMA / ttyS / ttyTHS), who holds them
 * (bluetoothd owns every kernel adapter it sees through the management interface; a process with a
 * serial port open holds it) and the command to run next for each.
 *
 * Everything is read under `root` (default `/`), so tests run it against a fake sysfs and procfs.
 * Best effort: an entry that cannot be read is described with what could be read, never thrown.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface Holder {
  pid: number;
  command: string;
}

export interface KernelAdapter {
  kind: 'hci';
  /** hci0 */
  name: string;
  index: number;
  /** usb, uart, sdio, pci, virtual … (from the device path), or undefined if unknown. */
  bus: string | undefined;
  /** The kernel driver behind it (btusb, hci_uart, btmtksdio …). */
  driver: string | undefined;
  /** USB vendor:product in hex, when it is a USB device. */
  usbId: string | undefined;
  /** rfkill: soft (rfkill block / airplane mode) or hard (a switch) block, if the adapter has an rfkill switch. */
  rfkill: { soft: boolean; hard: boolean } | undefined;
  heldBy: Holder[];
  next: string[];
}

export interface SerialPort {
  kind: 'serial';
  /** /dev/ttyACM0 */
  path: string;
  driver: string;
  usbId: string | undefined;
  /** USB manufacturer and product strings, when present. */
  product: string | undefined;
  /** Its product string names Bluetooth or HCI (a Zephyr hci_uart, an HCI firmware). */
  likelyHci: boolean;
  heldBy: Holder[];
  next: string[];
}

export interface Inventory {
  /** /sys/class/bluetooth exists: the kernel has Bluetooth support loaded. */
  kernelBluetooth: boolean;
  adapters: KernelAdapter[];
  serial: SerialPort[];
  /** Running bluetoothd processes. */
  bluetoothd: Holder[];
  /** What to do when nothing usable was found (empty otherwise). */
  next: string[];
}

const SERIAL = /^tty(ACM|USB|AMA|S|THS|mxc|SAC)\d+$/;
const HCI_WORDS = /bluetooth|\bhci\b|\bble\b|zephyr/i;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function list(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function linkName(path: string): string | undefined {
  try {
    return basename(readlinkSync(path));
  } catch {
    return undefined;
  }
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Walk up from a device directory to the USB device (the one with idVendor / idProduct). */
function usbDevice(dir: string): string | undefined {
  let d = real(dir);
  for (let i = 0; i < 6 && d.length > 1; i++) {
    if (existsSync(join(d, 'idVendor'))) return d;
    d = join(d, '..');
  }
  return undefined;
}

/**
 * The driver of a tty's device. Since Linux 6.5 a serial port sits under serial-base `port` / `ctrl`
 * devices; the driver that matters (serial8250, serial for PNP, pl011, …) is the one above them.
 */
function ttyDriver(deviceDir: string): string | undefined {
  let d = real(deviceDir);
  for (let i = 0; i < 4 && d.length > 1; i++) {
    let target: string | undefined;
    try {
      target = readlinkSync(join(d, 'driver'));
    } catch {
      target = undefined;
    }
    if (target !== undefined && !target.includes('/serial-base/')) return basename(target);
    if (target === undefined && i === 0) return undefined; // no driver bound to the port itself
    d = join(d, '..');
  }
  return undefined;
}

function busOf(devicePath: string): string | undefined {
  for (const bus of ['usb', 'sdio', 'mmc', 'serial', 'pci', 'virtual', 'platform']) {
    if (devicePath.includes(`/${bus}`)) return bus === 'mmc' ? 'sdio' : bus === 'serial' ? 'uart' : bus;
  }
  return undefined;
}

interface Proc {
  pid: number;
  command: string;
  fds: string[];
}

/** Every process whose name and open files we may read. */
function processes(root: string): Proc[] {
  const out: Proc[] = [];
  for (const p of list(join(root, 'proc'))) {
    if (!/^\d+$/.test(p)) continue;
    const command = read(join(root, 'proc', p, 'comm'));
    if (command === undefined) continue;
    const fdDir = join(root, 'proc', p, 'fd');
    const fds: string[] = [];
    for (const f of list(fdDir)) {
      try {
        fds.push(readlinkSync(join(fdDir, f)));
      } catch {
        /* closed meanwhile */
      }
    }
    out.push({ pid: Number(p), command, fds });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

export function takeInventory(root = '/'): Inventory {
  const procs = processes(root);
  const bluetoothd = procs.filter(p => p.command === 'bluetoothd').map(({ pid, command }) => ({ pid, command }));
  const classDir = join(root, 'sys/class/bluetooth');
  const kernelBluetooth = existsSync(classDir);

  const adapters: KernelAdapter[] = [];
  for (const name of list(classDir).filter(n => /^hci\d+$/.test(n)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)))) {
    const dir = join(classDir, name);
    const index = Number(name.slice(3));
    const devicePath = real(dir);
    const usb = usbDevice(join(dir, 'device'));
    const rfkillDir = list(dir).find(e => /^rfkill\d+$/.test(e));
    const rfkill = rfkillDir === undefined ? undefined
      : { soft: read(join(dir, rfkillDir, 'soft')) === '1', hard: read(join(dir, rfkillDir, 'hard')) === '1' };
    // bluetoothd manages every adapter the kernel has through the management interface (mgmt), so
    // while it runs the user channel gets EBUSY on an adapter that is up.
    const heldBy = bluetoothd;
    const next: string[] = [];
    if (rfkill?.hard) next.push('a hardware switch (or the firmware) blocks it: turn the radio on, then check with `rfkill list`');
    else if (rfkill?.soft) next.push('it is blocked by rfkill: `sudo rfkill unblock bluetooth`');
    if (heldBy.length) next.push(`free it from bluetoothd: \`sudo btmgmt --index ${index} power off\` (or \`sudo systemctl stop bluetooth\`)`);
    next.push(`blewire doctor --transport ${name}`);
    adapters.push({
      kind: 'hci', name, index, bus: busOf(devicePath), driver: linkName(join(dir, 'device/driver')),
      usbId: usb ? `${read(join(usb, 'idVendor'))}:${read(join(usb, 'idProduct'))}` : undefined, rfkill, heldBy, next,
    });
  }

  const serial: SerialPort[] = [];
  const ttyDir = join(root, 'sys/class/tty');
  const ttys = list(ttyDir).filter(n => SERIAL.test(n))
    .sort((a, b) => a.replace(/\d+$/, '').localeCompare(b.replace(/\d+$/, '')) || Number(a.match(/\d+$/)![0]) - Number(b.match(/\d+$/)![0]));
  for (const tty of ttys) {
    const driver = ttyDriver(join(ttyDir, tty, 'device'));
    if (!driver) continue; // no device behind the name (a console or an unused minor)
    // A legacy 8250 port exists for every configured minor; `type` 0 means no UART answered there.
    const type = read(join(ttyDir, tty, 'type'));
    if (type !== undefined && type !== '' && Number(type) === 0) continue;
    const path = `/dev/${tty}`;
    const usb = usbDevice(join(ttyDir, tty, 'device'));
    const product = usb ? [read(join(usb, 'manufacturer')), read(join(usb, 'product'))].filter(Boolean).join(' ') || undefined : undefined;
    const heldBy = procs.filter(p => p.fds.includes(path)).map(({ pid, command }) => ({ pid, command }));
    const next: string[] = [];
    if (heldBy.length) next.push(`it is open in ${heldBy.map(h => `${h.command} (pid ${h.pid})`).join(', ')}: stop that first` +
      (heldBy.some(h => /^(btattach|hciattach)$/.test(h.command)) ? ' (it gave the UART to the kernel, whose hciN then belongs to bluetoothd)' : ''));
    next.push(`blewire doctor --transport serial:${path}?baud=${/^tty(ACM)/.test(tty) ? '115200' : '1000000'}`);
    serial.push({
      kind: 'serial', path, driver, usbId: usb ? `${read(join(usb, 'idVendor'))}:${read(join(usb, 'idProduct'))}` : undefined,
      product, likelyHci: product !== undefined && HCI_WORDS.test(product), heldBy, next,
    });
  }

  const next: string[] = [];
  if (adapters.length === 0 && serial.length === 0) {
    next.push(kernelBluetooth
      ? 'no adapter found: plug one in (a USB dongle appears as hciN), or connect a controller over a UART'
      : 'no adapter found and no kernel Bluetooth support loaded (`sudo modprobe bluetooth btusb` for a USB dongle); ' +
        'a controller on a UART (serial:/dev/ttyACM0) needs no kernel support');
    next.push('without hardware: `blewire demo`, or any command with --transport sim');
  }
  return { kernelBluetooth, adapters, serial, bluetoothd, next };
}

/** The inventory in words, for the terminal. */
export function describeInventory(inv: Inventory): string[] {
  const lines: string[] = [];
  const held = (h: Holder[]): string => h.map(x => `${x.command} (pid ${x.pid})`).join(', ');
  lines.push(`Kernel Bluetooth: ${inv.kernelBluetooth ? 'loaded' : 'not loaded (/sys/class/bluetooth is missing)'}` +
    `; bluetoothd: ${inv.bluetoothd.length ? `running, ${held(inv.bluetoothd)}` : 'not running'}`);
  lines.push(inv.adapters.length || inv.serial.length ? 'Adapters on this machine:' : 'Adapters on this machine: none found');
  for (const a of inv.adapters) {
    const facts = [a.bus ? a.bus.toUpperCase() : 'bus unknown', a.driver ? `driver ${a.driver}` : undefined, a.usbId ? `id ${a.usbId}` : undefined,
      a.rfkill ? `rfkill ${a.rfkill.hard ? 'hard-blocked' : a.rfkill.soft ? 'soft-blocked' : 'unblocked'}` : undefined,
      a.heldBy.length ? `held by ${held(a.heldBy)}` : 'not held by bluetoothd'].filter(Boolean);
    lines.push(`  ${a.name}  ${facts.join(', ')}`);
    for (const n of a.next) lines.push(`        next: ${n}`);
  }
  for (const s of inv.serial) {
    const facts = [`serial, driver ${s.driver}`, s.usbId ? `id ${s.usbId}` : undefined, s.product ? `"${s.product}"` : undefined,
      s.likelyHci ? 'looks like an HCI controller' : 'may be an HCI UART', s.heldBy.length ? `open in ${held(s.heldBy)}` : undefined].filter(Boolean);
    lines.push(`  ${s.path}  ${facts.join(', ')}`);
    for (const n of s.next) lines.push(`        next: ${n}`);
  }
  for (const n of inv.next) lines.push(`What to do: ${n}`);
  return lines;
}
