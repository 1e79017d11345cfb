import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TransportError } from '../errors.js';
import { log } from '../log.js';
import { ReceiverSlot } from './receiver-slot.js';
import type { HciTransport, TransportReceiver } from './types.js';

/**
 * The Linux HCI user channel (AF_BLUETOOTH / SOCK_RAW / BTPROTO_HCI bound with HCI_CHANNEL_USER): the
 * kernel hands the whole controller to this process, one H4 packet per read, with no bluetoothd in
 * between. Node has no AF_BLUETOOTH, so this goes through an optional native module, loaded with a
 * dynamic import: `@stoprocent/bluetooth-hci-socket` (prebuilt) when installed, else
 * `@abandonware/bluetooth-hci-socket` (built from source). Both share one API.
 *
 * Buffers (STYLE c.7): abandonware's poll() reads into a stack array and emits Nan::CopyBuffer(data),
 * a fresh Buffer per packet, so its packets are passed up as they are; so are @stoprocent's (2.3.0 read:
 * its native driver emits Napi::Buffer<char>::Copy per read, its UART driver slices of a buffer that
 * Buffer.concat made for that chunk and nothing writes afterwards, its USB driver a Buffer.concat per
 * packet). For any other module we have not read, each packet is copied (about 70 ns a packet on
 * node 20: a fresh ArrayBuffer each, issue 14). Note that abandonware reads at most 1024 bytes per packet; ACL
 * packets above that (LE Data Length does not reach it; BR/EDR could) would be cut.
 *
 * Failures map to TransportErrors with stable codes and a message that says what to do.
 */

export interface HciSocketLike {
  bindUser(devId: number): unknown;
  start(): void;
  stop(): void;
  write(data: Buffer): void;
  on(event: 'data', cb: (data: Buffer) => void): unknown;
  on(event: 'error', cb: (error: NodeJS.ErrnoException) => void): unknown;
}

export interface HciSocketModule {
  /** Package name, for messages and to know whether reads are already copies. */
  name: string;
  create(): HciSocketLike;
}

export const HCI_SOCKET_PACKAGES = ['@stoprocent/bluetooth-hci-socket', '@abandonware/bluetooth-hci-socket'] as const;

/** Packages known to emit a fresh buffer per read (checked in their source). */
const COPYING_PACKAGES = new Set(['@abandonware/bluetooth-hci-socket', '@stoprocent/bluetooth-hci-socket']);

export interface UserChannelOptions {
  /** For tests: supply the socket module instead of importing one. */
  loadModule?: () => Promise<HciSocketModule>;
  /** For tests: where /proc and /sys/class/bluetooth are. */
  procRoot?: string;
  sysClassBluetooth?: string;
}

export const USER_CHANNEL_ERROR = {
  moduleMissing: 'ETRANSPORT_MODULE_MISSING',
  noBluetooth: 'ETRANSPORT_NO_BLUETOOTH',
  permission: 'ETRANSPORT_PERMISSION',
  busy: 'ETRANSPORT_BUSY',
  noAdapter: 'ETRANSPORT_NO_ADAPTER',
  other: 'ETRANSPORT_USER_CHANNEL',
} as const;

/** Import the first HCI socket package of `names` that is installed. */
export async function loadHciSocketModule(names: readonly string[] = HCI_SOCKET_PACKAGES): Promise<HciSocketModule> {
  const failures: string[] = [];
  for (const name of names) {
    try {
      const mod = (await import(name)) as { default?: unknown };
      const Ctor = (mod.default ?? mod) as new () => HciSocketLike;
      if (typeof Ctor !== 'function') throw new Error('no socket class exported');
      return { name, create: () => new Ctor() };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      // A package that is present but fails to load (e.g. no native build) is worth reporting as such.
      failures.push(`${name}: ${err.code === 'ERR_MODULE_NOT_FOUND' ? 'not installed' : err.message}`);
    }
  }
  throw new TransportError(
    'HCI user channel needs a native HCI socket module, and none could be loaded (' + failures.join('; ') + '). ' +
    'Install one: `npm install @stoprocent/bluetooth-hci-socket` (prebuilt binaries) or ' +
    '`npm install @abandonware/bluetooth-hci-socket` (needs a C++ compiler, make, python3 and Node headers)',
    USER_CHANNEL_ERROR.moduleMissing);
}

/** Names of processes called bluetoothd, as "name (pid N)". */
function bluetoothDaemons(procRoot: string): string[] {
  const found: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return found;
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const comm = readFileSync(join(procRoot, pid, 'comm'), 'utf8').trim();
      if (comm === 'bluetoothd') found.push(`${comm} (pid ${pid})`);
    } catch {
      // the process went away while we looked
    }
  }
  return found;
}

function adapters(sysClassBluetooth: string): string[] {
  try {
    return readdirSync(sysClassBluetooth).filter(n => /^hci\d+$/.test(n)).sort();
  } catch {
    return [];
  }
}

/**
 * strerror() texts by errno name: the native modules do not always set `code` (seen: abandonware's
 * constructor error carries only the strerror message when loaded by some module loaders).
 */
const STRERROR: Record<string, RegExp> = {
  EAFNOSUPPORT: /address family not supported/i,
  EPERM: /operation not permitted/i,
  EACCES: /permission denied/i,
  EBUSY: /device or resource busy/i,
  ENODEV: /no such device/i,
};

function errnoName(err: NodeJS.ErrnoException | undefined): string | undefined {
  if (typeof err?.code === 'string') return err.code;
  const message = String(err?.message ?? '');
  return Object.keys(STRERROR).find(k => message.startsWith(k) || STRERROR[k]!.test(message));
}

/** Turn a failure of socket(), bind() or a later read into a TransportError that says what to do. */
export function userChannelError(error: unknown, index: number, options: UserChannelOptions = {}): TransportError {
  const err = error as NodeJS.ErrnoException;
  const what = `hci${index} (user channel)`;
  const detail = err?.message ?? String(error);
  switch (errnoName(err)) {
    case 'EAFNOSUPPORT':
      return new TransportError(
        `${what}: this kernel has no Bluetooth support (socket(AF_BLUETOOTH) failed with EAFNOSUPPORT). ` +
        'Load the module (`sudo modprobe bluetooth`), use a kernel built with CONFIG_BT, or use another ' +
        'transport (serial:/dev/ttyACM0, unix:/tmp/bt-server-le, tcp:host:port)',
        USER_CHANNEL_ERROR.noBluetooth, { cause: error });
    case 'EPERM':
    case 'EACCES':
      return new TransportError(
        `${what}: permission denied (${errnoName(err)}); the HCI user channel needs root or CAP_NET_ADMIN. ` +
        'Grant it to node once: `sudo setcap cap_net_admin,cap_net_raw+eip $(readlink -f $(which node))`, or run as root',
        USER_CHANNEL_ERROR.permission, { cause: error });
    case 'EBUSY': {
      const daemons = bluetoothDaemons(options.procRoot ?? '/proc');
      const holder = daemons.length
        ? `it is up and held by ${daemons.join(', ')}, which powers on every free adapter`
        : 'it is up (in use by the kernel or another program)';
      return new TransportError(
        `${what}: the adapter is busy: ${holder}. The user channel needs it down and unowned: ` +
        `\`sudo btmgmt --index ${index} power off\` (keeps bluetoothd for other adapters) or ` +
        `\`sudo systemctl stop bluetooth\`, then \`sudo hciconfig hci${index} down\``,
        USER_CHANNEL_ERROR.busy, { cause: error });
    }
    case 'ENODEV': {
      const present = adapters(options.sysClassBluetooth ?? '/sys/class/bluetooth');
      return new TransportError(
        `${what}: no such adapter; ${present.length ? `adapters present: ${present.join(', ')}` : 'this machine has no Bluetooth adapters (/sys/class/bluetooth is empty)'}`,
        USER_CHANNEL_ERROR.noAdapter, { cause: error });
    }
    default:
      return new TransportError(`${what}: ${detail}`, USER_CHANNEL_ERROR.other, { cause: error });
  }
}

export class UserChannelTransport implements HciTransport {
  readonly description: string;
  private readonly slot = new ReceiverSlot();
  private closing = false;

  constructor(private readonly socket: HciSocketLike, readonly index: number, copyReads: boolean, options: UserChannelOptions) {
    this.description = `hci${index} (user channel)`;
    socket.on('data', data => this.slot.packet(copyReads ? Uint8Array.prototype.slice.call(data) : data));
    socket.on('error', error => {
      if (this.closing) return;
      const e = userChannelError(error, index, options);
      log.transport('%s failed: %s', this.description, e.message);
      this.stopSocket();
      this.slot.close(e);
    });
  }

  send(packet: Uint8Array): void {
    if (this.closing || this.slot.isClosed) {
      throw new TransportError(`${this.description}: cannot send, the transport is closed`, 'ETRANSPORT_CLOSED');
    }
    this.socket.write(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
  }

  setReceiver(receiver: TransportReceiver): void {
    this.slot.set(receiver);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stopSocket();
    this.slot.close();
  }

  private stopSocket(): void {
    try {
      this.socket.stop();
    } catch {
      // already stopped
    }
  }
}

/** Open controller `index` (hciN) through the HCI user channel. */
export async function openUserChannel(index: number, options: UserChannelOptions = {}): Promise<UserChannelTransport> {
  const mod = await (options.loadModule ?? (() => loadHciSocketModule()))();
  let socket: HciSocketLike;
  try {
    socket = mod.create();
    socket.bindUser(index);
  } catch (e) {
    throw userChannelError(e, index, options);
  }
  const transport = new UserChannelTransport(socket, index, !COPYING_PACKAGES.has(mod.name), options);
  try {
    socket.start();
  } catch (e) {
    await transport.close();
    throw userChannelError(e, index, options);
  }
  log.transport('opened hci%d through %s', index, mod.name);
  return transport;
}
