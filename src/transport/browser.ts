/**
 * The transport layer as a browser build sees it (tools/web/bundle.ts puts this module where
 * transport/index.ts would be): a page has no user channel, serial port, socket or file, so the one
 * transport is the WebSocket (`ws://relay:port`, `wss://…`), and recording a capture is not possible.
 * Same names as the parts of transport/index.ts that the layers above use.
 */
import { TransportError } from '../errors.js';
import type { HciTransport } from './types.js';
import { WebSocketTransport, type WebSocketTransportOptions } from './websocket.js';

export { H4, type H4Type, type HciTransport, type TransportReceiver } from './types.js';
export { WebSocketTransport, type WebSocketLike, type WebSocketClass, type WebSocketTransportOptions } from './websocket.js';

export interface OpenTransportOptions extends WebSocketTransportOptions {
  capture?: string;
  [key: string]: unknown;
}

/** `ws://host:port/path` or `wss://…`, the only forms a page can open. */
export function transportForms(): string[] {
  return ['ws://host:port/path', 'wss://host:port/path'];
}

export async function openTransport(spec?: string, options: OpenTransportOptions = {}): Promise<HciTransport> {
  if (!spec) throw new TransportError('no transport given: a page has no BLEWIRE_TRANSPORT; pass { transport: "ws://relay:port" }', 'ETRANSPORT_SPEC');
  if (options.capture) throw new TransportError('a browser build cannot record a capture (no file system); record on the relay instead', 'ETRANSPORT_CAPTURE');
  if (!/^wss?:\/\/./.test(spec)) {
    throw new TransportError(`unknown transport ${JSON.stringify(spec)}: in a browser the transport is a WebSocket relay (${transportForms().join(', ')})`, 'ETRANSPORT_SPEC');
  }
  return WebSocketTransport.open(spec, options);
}

export function openRecordingFile(path: string): never {
  throw new TransportError(`cannot record to ${path}: a browser build has no file system`, 'ETRANSPORT_CAPTURE');
}

export function recordTransport(_transport: HciTransport, _writer: unknown): never {
  throw new TransportError('a browser build cannot record a capture (no file system)', 'ETRANSPORT_CAPTURE');
}
