/**
 * A WebSocket relay for a controller: it holds an HCI transport in Node (an adapter's user channel, a
 * serial controller, btvirt, the simulator) and lets one web page at a time drive it with the whole
 * stack running in the page (the browser build, src/navigator-browser.ts), over the H4 byte stream in
 * binary messages (src/transport/websocket.ts is the page's end).
 *
 * A web page is hostile until proven otherwise, and any site the user visits can open a WebSocket
 * to localhost. So:
 * - the relay listens on 127.0.0.1 unless told otherwise, and accepts a connection only from the
 *   origins it was given (`origins`; '*' must be said explicitly);
 * - one page at a time (a controller serves one host): a second page is refused with close code 1013;
 * - what a page sends is framed with the H4Framer before anything reaches the controller (a bad
 *   packet indicator ends that page's session, code 1002), messages are at most MAX_MESSAGE octets;
 * - what the controller sends is dropped while no page is attached (counted), and a page that does
 *   not read is cut off once MAX_BUFFERED octets wait for it, so memory stays bounded either way.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { TransportError } from '../errors.js';
import { H4Framer } from '../transport/h4-framer.js';
import type { HciTransport } from '../transport/types.js';

/** The largest message a page may send: one whole ACL packet (5 + 65 535 octets, Vol 4, Part E, 5.4.2). */
export const MAX_MESSAGE = 5 + 65_535;
/** Octets the relay lets wait for a slow page before it closes that page's session. */
export const MAX_BUFFERED = 4 * 1024 * 1024;

export interface WebSocketRelayOptions {
  /** The controller. The relay closes it when it closes. */
  transport: HciTransport;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free one). */
  port?: number;
  /** Page origins allowed to connect (`http://localhost:5173`); ['*'] allows any (not advised). */
  origins: readonly string[];
  /** Sees every packet that crosses, whole, after framing (for logs and tests). */
  onPacket?(direction: 'page' | 'controller', packet: Uint8Array): void;
  /** A page attached or left (with why). */
  onSession?(event: 'open' | 'close', origin: string, detail?: string): void;
}

export interface WebSocketRelay {
  /** ws://host:port/ */
  readonly url: string;
  readonly port: number;
  readonly stats: { sessions: number; refused: number; toController: number; toPage: number; droppedWithoutPage: number };
  /** Whether a page is attached now. */
  readonly attached: boolean;
  close(): Promise<void>;
}

export async function startWebSocketRelay(options: WebSocketRelayOptions): Promise<WebSocketRelay> {
  const { transport } = options;
  if (!Array.isArray(options.origins) || options.origins.length === 0) {
    throw new TransportError('the relay needs the origins of the pages it serves (origins: ["http://localhost:8080"], or ["*"] for any)', 'ETRANSPORT_SPEC');
  }
  const anyOrigin = options.origins.includes('*');
  const stats = { sessions: 0, refused: 0, toController: 0, toPage: 0, droppedWithoutPage: 0 };
  let page: WebSocket | undefined;
  let controllerGone: Error | undefined;

  const http = createServer((_req, res) => { res.writeHead(426, { 'content-type': 'text/plain' }).end('blewire relay: WebSocket only\n'); });
  const wss = new WebSocketServer({
    server: http,
    maxPayload: MAX_MESSAGE,
    verifyClient: (info: { origin: string; req: IncomingMessage }) => {
      const ok = anyOrigin || options.origins.includes(info.origin);
      if (!ok) stats.refused++;
      return ok;
    },
  });

  transport.setReceiver({
    packet(p) {
      options.onPacket?.('controller', p);
      if (!page || page.readyState !== page.OPEN) { stats.droppedWithoutPage++; return; }
      if (page.bufferedAmount > MAX_BUFFERED) { page.close(1008, 'the page does not read fast enough'); return; }
      stats.toPage++;
      page.send(p);
    },
    closed(error) {
      controllerGone = error ?? new TransportError('the controller transport closed', 'ETRANSPORT_CLOSED');
      page?.close(1011, `controller gone: ${controllerGone.message}`.slice(0, 120));
    },
  });

  wss.on('connection', (ws, req) => {
    const origin = req.headers.origin ?? '(none)';
    if (controllerGone) { ws.close(1011, 'controller gone'); return; }
    if (page) { stats.refused++; ws.close(1013, 'busy: the relay serves one page at a time'); return; }
    page = ws;
    stats.sessions++;
    options.onSession?.('open', origin);
    const framer = new H4Framer({
      packet(p) {
        options.onPacket?.('page', p);
        stats.toController++;
        transport.send(p.slice());
      },
      error(e) { ws.close(1002, e.message.slice(0, 120)); },
    });
    ws.on('message', (data, isBinary) => {
      if (!isBinary) { ws.close(1003, 'binary H4 messages only'); return; }
      const chunks = Array.isArray(data) ? data : [data instanceof ArrayBuffer ? Buffer.from(data) : data];
      for (const c of chunks) framer.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
    });
    ws.on('close', (code, reason) => {
      if (page === ws) page = undefined;
      options.onSession?.('close', origin, `${code}${reason.length ? ` ${reason.toString()}` : ''}`);
    });
    ws.on('error', () => ws.terminate());
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, () => { http.off('error', reject); resolve(); });
  });
  const port = (http.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    port,
    stats,
    get attached() { return page !== undefined; },
    close() {
      closing ??= (async () => {
        for (const c of wss.clients) c.terminate();
        await new Promise<void>(r => wss.close(() => r()));
        await new Promise<void>(r => http.close(() => r()));
        await transport.close();
      })();
      return closing;
    },
  };
}
