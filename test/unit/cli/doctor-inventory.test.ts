// blewire doctor without a transport: the adapters of a machine, read from a fake sysfs and procfs
// built here the way Linux lays them out (a USB dongle, a UART-attached controller under rfkill, a
// Zephyr HCI UART on ttyACM, an FTDI port given to the kernel by btattach, legacy 8250 ports, and
// bluetoothd running), and from an empty machine.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { describeInventory, takeInventory } from '../../../src/cli/doctor-inventory.js';
import { run as doctor } from '../../../src/cli/doctor.js';
import { captureOutput } from './output.js';

const tmp = mkdtempSync(join(tmpdir(), 'blewire-doctor-root-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeEach(() => { vi.stubEnv('BLEWIRE_TRANSPORT', ''); vi.stubEnv('BLEWIRE_CAPTURE', ''); });
afterEach(() => { vi.restoreAllMocks(); vi.unstubAllEnvs(); });

function file(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text + '\n');
}
/** A relative symlink inside the root (as sysfs has them), or an absolute target kept as is (/proc fd). */
function link(root: string, path: string, target: string, absolute = false): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  symlinkSync(absolute ? target : relative(dirname(join(root, path)), join(root, target)), join(root, path));
}

function machine(): string {
  const root = mkdtempSync(join(tmp, 'machine-'));
  const usb = 'sys/devices/pci0000:00/0000:00:14.0/usb1';
  // hci0: an Intel USB dongle (btusb), not blocked.
  file(root, `${usb}/1-3/idVendor`, '8087');
  file(root, `${usb}/1-3/idProduct`, '0a2b');
  mkdirSync(join(root, 'sys/bus/usb/drivers/btusb'), { recursive: true });
  link(root, `${usb}/1-3/1-3:1.0/driver`, 'sys/bus/usb/drivers/btusb');
  file(root, `${usb}/1-3/1-3:1.0/bluetooth/hci0/rfkill0/soft`, '0');
  file(root, `${usb}/1-3/1-3:1.0/bluetooth/hci0/rfkill0/hard`, '0');
  link(root, `${usb}/1-3/1-3:1.0/bluetooth/hci0/device`, `${usb}/1-3/1-3:1.0`);
  link(root, 'sys/class/bluetooth/hci0', `${usb}/1-3/1-3:1.0/bluetooth/hci0`);
  // hci1: a Broadcom controller on a UART (a Raspberry Pi), soft-blocked by rfkill.
  const uart = 'sys/devices/platform/soc/fe201000.serial/serial0/serial0-0';
  mkdirSync(join(root, 'sys/bus/serial/drivers/hci_uart_bcm'), { recursive: true });
  link(root, `${uart}/driver`, 'sys/bus/serial/drivers/hci_uart_bcm');
  file(root, `${uart}/bluetooth/hci1/rfkill3/soft`, '1');
  file(root, `${uart}/bluetooth/hci1/rfkill3/hard`, '0');
  link(root, `${uart}/bluetooth/hci1/device`, uart);
  link(root, 'sys/class/bluetooth/hci1', `${uart}/bluetooth/hci1`);
  // ttyACM0: a Zephyr hci_uart board (cdc_acm).
  file(root, `${usb}/1-4/idVendor`, '2fe3');
  file(root, `${usb}/1-4/idProduct`, '0100');
  file(root, `${usb}/1-4/manufacturer`, 'ZEPHYR');
  file(root, `${usb}/1-4/product`, 'Zephyr HCI UART sample');
  mkdirSync(join(root, 'sys/bus/usb/drivers/cdc_acm'), { recursive: true });
  link(root, `${usb}/1-4/1-4:1.0/driver`, 'sys/bus/usb/drivers/cdc_acm');
  link(root, `${usb}/1-4/1-4:1.0/tty/ttyACM0/device`, `${usb}/1-4/1-4:1.0`);
  link(root, 'sys/class/tty/ttyACM0', `${usb}/1-4/1-4:1.0/tty/ttyACM0`);
  // ttyUSB0: an FTDI cable, open in btattach.
  file(root, `${usb}/1-5/idVendor`, '0403');
  file(root, `${usb}/1-5/idProduct`, '6001');
  file(root, `${usb}/1-5/product`, 'FT232R USB UART');
  mkdirSync(join(root, 'sys/bus/usb-serial/drivers/ftdi_sio'), { recursive: true });
  link(root, `${usb}/1-5/1-5:1.0/ttyUSB0/driver`, 'sys/bus/usb-serial/drivers/ftdi_sio');
  link(root, `${usb}/1-5/1-5:1.0/ttyUSB0/tty/ttyUSB0/device`, `${usb}/1-5/1-5:1.0/ttyUSB0`);
  link(root, 'sys/class/tty/ttyUSB0', `${usb}/1-5/1-5:1.0/ttyUSB0/tty/ttyUSB0`);
  // ttyS0 a real 16550A (type 4), ttyS1 a legacy minor with no UART (type 0), ttyAMA0 without a driver, tty0 a console.
  mkdirSync(join(root, 'sys/bus/platform/drivers/serial8250'), { recursive: true });
  link(root, 'sys/devices/platform/serial8250/driver', 'sys/bus/platform/drivers/serial8250');
  for (const [n, type] of [['0', '4'], ['1', '0']] as const) {
    const d = `sys/devices/platform/serial8250/tty/ttyS${n}`;
    file(root, `${d}/type`, type);
    link(root, `${d}/device`, 'sys/devices/platform/serial8250');
    link(root, `sys/class/tty/ttyS${n}`, d);
  }
  // ttyS2 as Linux >= 6.5 lays out a PNP port: the tty's device is a serial-base port under a
  // serial-base controller, and the real driver (serial) is bound above them.
  const pnp = 'sys/devices/pnp0/00:01';
  for (const d of ['serial-base/drivers/port', 'serial-base/drivers/ctrl', 'pnp/drivers/serial']) mkdirSync(join(root, 'sys/bus', d), { recursive: true });
  link(root, `${pnp}/driver`, 'sys/bus/pnp/drivers/serial');
  link(root, `${pnp}/00:01:0/driver`, 'sys/bus/serial-base/drivers/ctrl');
  link(root, `${pnp}/00:01:0/00:01:0.0/driver`, 'sys/bus/serial-base/drivers/port');
  file(root, `${pnp}/00:01:0/00:01:0.0/tty/ttyS2/type`, '4');
  link(root, `${pnp}/00:01:0/00:01:0.0/tty/ttyS2/device`, `${pnp}/00:01:0/00:01:0.0`);
  link(root, 'sys/class/tty/ttyS2', `${pnp}/00:01:0/00:01:0.0/tty/ttyS2`);
  file(root, 'sys/devices/virtual/tty/ttyAMA0/dev', '204:64');
  link(root, 'sys/class/tty/ttyAMA0', 'sys/devices/virtual/tty/ttyAMA0');
  file(root, 'sys/devices/virtual/tty/tty0/dev', '4:0');
  link(root, 'sys/class/tty/tty0', 'sys/devices/virtual/tty/tty0');
  // Processes: init, bluetoothd, btattach holding ttyUSB0.
  file(root, 'proc/1/comm', 'systemd');
  file(root, 'proc/612/comm', 'bluetoothd');
  link(root, 'proc/612/fd/3', 'socket:[1234]', true);
  file(root, 'proc/4242/comm', 'btattach');
  link(root, 'proc/4242/fd/3', '/dev/ttyUSB0', true);
  file(root, 'proc/self/comm', 'node'); // not a pid: ignored
  return root;
}

describe('takeInventory', () => {
  test('kernel adapters: bus, driver, USB id, rfkill, held by bluetoothd, what to run next', () => {
    const inv = takeInventory(machine());
    expect(inv.kernelBluetooth).toBe(true);
    expect(inv.bluetoothd).toEqual([{ pid: 612, command: 'bluetoothd' }]);
    expect(inv.adapters).toEqual([
      {
        kind: 'hci', name: 'hci0', index: 0, bus: 'usb', driver: 'btusb', usbId: '8087:0a2b', rfkill: { soft: false, hard: false },
        heldBy: [{ pid: 612, command: 'bluetoothd' }],
        next: ['free it from bluetoothd: `sudo btmgmt --index 0 power off` (or `sudo systemctl stop bluetooth`)', 'blewire doctor --transport hci0'],
      },
      {
        kind: 'hci', name: 'hci1', index: 1, bus: 'uart', driver: 'hci_uart_bcm', usbId: undefined, rfkill: { soft: true, hard: false },
        heldBy: [{ pid: 612, command: 'bluetoothd' }],
        next: ['it is blocked by rfkill: `sudo rfkill unblock bluetooth`',
          'free it from bluetoothd: `sudo btmgmt --index 1 power off` (or `sudo systemctl stop bluetooth`)', 'blewire doctor --transport hci1'],
      },
    ]);
    expect(inv.next).toEqual([]);
  });

  test('serial ports with a driver and a UART behind them; the holder of each; HCI firmware recognised', () => {
    const inv = takeInventory(machine());
    expect(inv.serial.map(s => s.path)).toEqual(['/dev/ttyACM0', '/dev/ttyS0', '/dev/ttyS2', '/dev/ttyUSB0']); // not ttyS1 (no UART), ttyAMA0 (no driver), tty0
    expect(inv.serial[0]).toEqual({
      kind: 'serial', path: '/dev/ttyACM0', driver: 'cdc_acm', usbId: '2fe3:0100', product: 'ZEPHYR Zephyr HCI UART sample', likelyHci: true,
      heldBy: [], next: ['blewire doctor --transport serial:/dev/ttyACM0?baud=115200'],
    });
    expect(inv.serial[1]).toMatchObject({ driver: 'serial8250', usbId: undefined, product: undefined, likelyHci: false, heldBy: [] });
    expect(inv.serial[2]).toMatchObject({ path: '/dev/ttyS2', driver: 'serial' }); // not serial-base's port / ctrl
    expect(inv.serial[3]).toMatchObject({ driver: 'ftdi_sio', usbId: '0403:6001', product: 'FT232R USB UART', likelyHci: false,
      heldBy: [{ pid: 4242, command: 'btattach' }] });
    expect(inv.serial[3]!.next[0]).toMatch(/^it is open in btattach \(pid 4242\): stop that first \(it gave the UART to the kernel/);
  });

  test('an empty machine: nothing found, and what to do', () => {
    const root = mkdtempSync(join(tmp, 'empty-'));
    const inv = takeInventory(root);
    expect(inv).toMatchObject({ kernelBluetooth: false, adapters: [], serial: [], bluetoothd: [] });
    expect(inv.next[0]).toMatch(/no kernel Bluetooth support loaded .*modprobe/);
    expect(inv.next[1]).toMatch(/blewire demo.*--transport sim/);
    expect(describeInventory(inv)).toContain('Adapters on this machine: none found');
  });
});

describe('blewire doctor with no transport', () => {
  test('lists the adapters and the next command for each, exit 0', async () => {
    const out = captureOutput();
    expect(await doctor([], { root: machine() })).toBe(0);
    expect(out.stdout()).toEqual([
      'Transport: (none given: listing the adapters of this machine; --transport or BLEWIRE_TRANSPORT checks one)',
      'Kernel Bluetooth: loaded; bluetoothd: running, bluetoothd (pid 612)',
      'Adapters on this machine:',
      '  hci0  USB, driver btusb, id 8087:0a2b, rfkill unblocked, held by bluetoothd (pid 612)',
      '        next: free it from bluetoothd: `sudo btmgmt --index 0 power off` (or `sudo systemctl stop bluetooth`)',
      '        next: blewire doctor --transport hci0',
      '  hci1  UART, driver hci_uart_bcm, rfkill soft-blocked, held by bluetoothd (pid 612)',
      '        next: it is blocked by rfkill: `sudo rfkill unblock bluetooth`',
      '        next: free it from bluetoothd: `sudo btmgmt --index 1 power off` (or `sudo systemctl stop bluetooth`)',
      '        next: blewire doctor --transport hci1',
      '  /dev/ttyACM0  serial, driver cdc_acm, id 2fe3:0100, "ZEPHYR Zephyr HCI UART sample", looks like an HCI controller',
      '        next: blewire doctor --transport serial:/dev/ttyACM0?baud=115200',
      '  /dev/ttyS0  serial, driver serial8250, may be an HCI UART',
      '        next: blewire doctor --transport serial:/dev/ttyS0?baud=1000000',
      '  /dev/ttyS2  serial, driver serial, may be an HCI UART',
      '        next: blewire doctor --transport serial:/dev/ttyS2?baud=1000000',
      '  /dev/ttyUSB0  serial, driver ftdi_sio, id 0403:6001, "FT232R USB UART", may be an HCI UART, open in btattach (pid 4242)',
      expect.stringMatching(/^        next: it is open in btattach \(pid 4242\): stop that first/),
      '        next: blewire doctor --transport serial:/dev/ttyUSB0?baud=1000000',
    ]);
  });

  test('--json gives the inventory as data; an empty machine exits 1 with what to do', async () => {
    let out = captureOutput();
    expect(await doctor(['--json'], { root: machine() })).toBe(0);
    const inv = JSON.parse(out.stdout().join('\n'));
    expect(inv.adapters.map((a: { name: string }) => a.name)).toEqual(['hci0', 'hci1']);
    expect(inv.serial).toHaveLength(4);
    vi.restoreAllMocks();
    out = captureOutput();
    expect(await doctor([], { root: mkdtempSync(join(tmp, 'bare-')) })).toBe(1);
    const text = out.stdout();
    expect(text).toContain('Adapters on this machine: none found');
    expect(text.at(-1)).toMatch(/^What to do: without hardware: `blewire demo`/);
  });
});
