/**
 * An HCI transport over a WebSocket: the H4 byte stream (Core Vol 4, Part A, 2) carried in binary
 * messages, one or more packets or parts of one per message, in both directions. It is how a browser
 * page reaches a controller that a small relay in Node holds (`blewire relay --websocket`, or any
 * relay that forwards H4 bytes); nothing here needs Node, so the same module runs in Node 22+
 * (global WebSocket), in Node 20 with a WebSocket class given, and in a browser build.
 *
 * What arrives is hostile until framed: the H4Framer checks every packet indicator and takes each
 * packet's length from its header (at most 5 + 65 535 octets held for one packet), a stream that goes
 * out of step closes the transport with the framer's DecodeError, and a text message (the protocol is
 * binary) closes it too. The opening handshake is bounded (`openTimeoutMs`, default 10 s).
 */
import { TransportError } from '../errors.js';
import { H4Framer } from './h4-framer.js';
import { ReceiverSlot } from './receiver-slot.js';
import type { HciTransport, TransportReceiver } from './types.js';

/** The part of the WHATWG WebSocket this transport uses (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (event: { data?: unknown; code?: number; reason?: string }) => void): void;
}
export type WebSocketClass = new (url: string) => WebSocketLike;

export interface WebSocketTransportOptions {
  /** The WebSocket class (default: globalThis.WebSocket; Node 20 has none, pass the `ws` package's). */
  WebSocket?: WebSocketClass;
  /** How long the opening handshake may take (ms, default 10 000). */
  openTimeoutMs?: number;
}

const OPEN = 1;
const DEFAULT_OPEN_TIMEOUT_MS = 10_000;

export class WebSocketTransport implements HciTransport {
  readonly description: string;
  readonly #socket: WebSocketLike;
  readonly #slot = new ReceiverSlot();
  readonly #framer: H4Framer;
  #closing = false;

  private constructor(socket: WebSocketLike, url: string) {
    this.#socket = socket;
    this.description = `websocket ${url}`;
    this.#framer = new H4Framer({
      packet: p => this.#slot.packet(p),
      // In place, as StreamTransport: a message's buffer and offset read once per message (issue 14).
      packetAt: (b, start, end, buffer, base) => this.#slot.packetAt(b, start, end, buffer, base),
      error: e => this.#fail(new TransportError(`${this.description}: ${e.message}`, 'ETRANSPORT_FRAMING', { cause: e })),
    });
    socket.addEventListener('message', ev => this.#onMessage(ev.data));
    socket.addEventListener('close', ev => {
      if (this.#closing) this.#slot.close();
      else this.#slot.close(new TransportError(`${this.description} closed by the relay (code ${ev.code ?? '?'}${ev.reason ? `: ${ev.reason}` : ''})`, 'ETRANSPORT_EOF'));
    });
    socket.addEventListener('error', () => this.#fail(new TransportError(`${this.description}: the WebSocket failed`)));
  }

  /** Connect to `url` (ws: or wss:) and resolve once the handshake is done. */
  static open(url: string, options: WebSocketTransportOptions = {}): Promise<WebSocketTransport> {
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    if (!Ctor) {
      return Promise.reject(new TransportError(`cannot open ${url}: this runtime has no WebSocket (Node 20: pass the ws package's class as options.WebSocket)`, 'ETRANSPORT_SPEC'));
    }
    let socket: WebSocketLike;
    try {
      socket = new Ctor(url);
    } catch (e) {
      return Promise.reject(new TransportError(`cannot open ${url}: ${(e as Error).message}`, 'ETRANSPORT_SPEC', { cause: e }));
    }
    socket.binaryType = 'arraybuffer';
    const timeoutMs = options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        try { socket.close(); } catch { /* already failing */ }
        reject(new TransportError(`cannot open ${url}: no WebSocket handshake within ${timeoutMs} ms (is the relay running?)`, 'ETRANSPORT_TIMEOUT'));
      }, timeoutMs);
      socket.addEventListener('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(new WebSocketTransport(socket, url));
      });
      const failed = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new TransportError(`cannot open ${url}: the WebSocket connection failed (is the relay running?)`, 'ETRANSPORT_CONNECT'));
      };
      socket.addEventListener('error', failed);
      socket.addEventListener('close', failed);
    });
  }

  send(packet: Uint8Array): void {
    if (this.#slot.isClosed || this.#socket.readyState !== OPEN) return;
    this.#socket.send(packet);
  }

  setReceiver(receiver: TransportReceiver): void {
    this.#slot.set(receiver);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    try { this.#socket.close(1000, 'host closed'); } catch { /* already closed */ }
    this.#slot.close();
  }

  #onMessage(data: unknown): void {
    if (data instanceof ArrayBuffer) this.#framer.push(new Uint8Array(data));
    else if (ArrayBuffer.isView(data)) this.#framer.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice());
    else this.#fail(new TransportError(`${this.description}: a text message on an H4 link (the relay must send binary messages)`, 'ETRANSPORT_FRAMING'));
  }

  #fail(error: Error): void {
    if (this.#slot.isClosed) return;
    this.#closing = true;
    try { this.#socket.close(1002, 'protocol error'); } catch { /* already closed */ }
    this.#slot.close(error);
  }
}
