import type { NetConnectOpts, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TransportError } from '../errors.js';
import { log } from '../log.js';
import { H4Framer } from './h4-framer.js';
import { ReceiverSlot } from './receiver-slot.js';
import type { HciTransport, TransportReceiver } from './types.js';

/**
 * H4 over a byte stream: a unix socket (btvirt's /tmp/bt-server-le, a qemu chardev), TCP (Bumble's
 * tcp-server, a remote UART bridge) or a serial port (a Zephyr hci_uart / nRF board). The stream is
 * framed by the H4 framer; the transport ends when the stream does:
 * - close() by us: receiver.closed() with no error;
 * - the other side ends or fails: receiver.closed(TransportError), saying whether a packet was cut off;
 * - bytes that are not H4: receiver.closed(TransportError 'ETRANSPORT_FRAMING') and the stream is closed.
 */
export class StreamTransport implements HciTransport {
  private readonly slot = new ReceiverSlot();
  private readonly framer: H4Framer;
  private closing = false;
  private readonly closedPromise: Promise<void>;

  constructor(private readonly stream: Duplex, readonly description: string) {
    this.framer = new H4Framer({
      packet: p => this.slot.packet(p),
      packetAt: (b, start, end, buffer, base) => this.slot.packetAt(b, start, end, buffer, base),
      error: e => {
        this.fail(new TransportError(`${description}: ${e.message}`, 'ETRANSPORT_FRAMING', { cause: e }));
        stream.destroy();
      },
    });
    stream.on('data', (chunk: Uint8Array) => this.framer.push(chunk));
    stream.on('error', (err: Error) => {
      this.fail(new TransportError(`${description}: ${err.message}`, 'ETRANSPORT_IO', { cause: err }));
    });
    stream.on('end', () => this.fail(this.eofError()));
    this.closedPromise = new Promise(resolve => stream.once('close', () => {
      this.fail(this.eofError());
      resolve();
    }));
  }

  send(packet: Uint8Array): void {
    if (this.closing || this.slot.isClosed) {
      throw new TransportError(`${this.description}: cannot send, the transport is closed`, 'ETRANSPORT_CLOSED');
    }
    this.stream.write(packet);
  }

  setReceiver(receiver: TransportReceiver): void {
    this.slot.set(receiver);
  }

  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.slot.close();
      this.stream.end();
      this.stream.destroy();
    }
    await this.closedPromise;
  }

  private eofError(): TransportError {
    const { have, need } = this.framer.pending;
    const cut = have > 0
      ? ` in the middle of a packet (${have}${need ? ` of ${need}` : ''} byte(s) received)`
      : '';
    return new TransportError(`${this.description}: the other side closed the stream${cut}`, 'ETRANSPORT_EOF');
  }

  private fail(error: TransportError): void {
    if (this.closing || this.slot.isClosed) return;
    log.transport('%s closed: %s', this.description, error.message);
    this.slot.close(error);
  }
}

/**
 * node:net's connect, loaded when a socket transport is opened rather than when blewire is imported
 * (issue 14: the net module added 1.5 MiB to the RSS of a process that imports it, and the user
 * channel, serial and WebSocket transports do not use it).
 */
const connect = (options: NetConnectOpts): Socket => process.getBuiltinModule('node:net').connect(options);

function connected(socket: Socket, description: string): Promise<StreamTransport> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ENOENT' ? ' (no such socket: is the controller or emulator running?)'
        : err.code === 'ECONNREFUSED' ? ' (nothing is listening there)'
          : err.code === 'EACCES' ? ' (permission denied)' : '';
      reject(new TransportError(`${description}: cannot connect: ${err.message}${hint}`, 'ETRANSPORT_CONNECT', { cause: err }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      socket.setNoDelay?.(true);
      resolve(new StreamTransport(socket, description));
    });
  });
}

/** H4 over a unix-domain stream socket. */
export function openUnixTransport(path: string): Promise<StreamTransport> {
  return connected(connect({ path }), `unix:${path}`);
}

/** H4 over TCP. */
export function openTcpTransport(host: string, port: number): Promise<StreamTransport> {
  return connected(connect({ host, port }), `tcp:${host.includes(':') ? `[${host}]` : host}:${port}`);
}

export interface SerialOptions {
  /** Default 1,000,000 (the usual rate of H4 UART controllers such as Zephyr's hci_uart). */
  baud?: number;
  /** RTS/CTS hardware flow control; H4 needs it on most boards (Vol 4 Part A 1). Default true. */
  rtscts?: boolean;
  /** For tests: how to load the serialport module. */
  loadModule?: () => Promise<unknown>;
}

interface SerialPortCtor {
  new (options: { path: string; baudRate: number; rtscts: boolean; autoOpen: boolean }): Duplex & { open(cb: (err: Error | null) => void): void };
}

/** H4 over a serial port, through the optional `serialport` package. */
export async function openSerialTransport(path: string, options: SerialOptions = {}): Promise<StreamTransport> {
  const baud = options.baud ?? 1_000_000;
  const description = `serial:${path}?baud=${baud}`;
  let mod: unknown;
  try {
    mod = await (options.loadModule ?? (() => import('serialport')))();
  } catch (cause) {
    throw new TransportError(
      `${description}: serial transports need the optional "serialport" package, which is not installed; run \`npm install serialport\``,
      'ETRANSPORT_MODULE_MISSING', { cause });
  }
  const SerialPort = (mod as { SerialPort?: SerialPortCtor }).SerialPort;
  if (typeof SerialPort !== 'function') {
    throw new TransportError(`${description}: the installed "serialport" package has no SerialPort class`, 'ETRANSPORT_MODULE_MISSING');
  }
  const port = new SerialPort({ path, baudRate: baud, rtscts: options.rtscts ?? true, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open(err => {
    if (!err) return resolve();
    reject(new TransportError(`${description}: cannot open: ${err.message}`, 'ETRANSPORT_CONNECT', { cause: err }));
  }));
  return new StreamTransport(port, description);
}
