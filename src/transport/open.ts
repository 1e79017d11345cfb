import { TransportError, ArgumentError } from '../errors.js';
import { CaptureSourceTransport } from './capture-source.js';
import { openRecordingFile, recordTransport, type RecordOptions } from './record.js';
import { openSerialTransport, openTcpTransport, openUnixTransport, type SerialOptions } from './stream.js';
import type { HciTransport } from './types.js';
import { openUserChannel, type UserChannelOptions } from './user-channel.js';
import { WebSocketTransport, type WebSocketClass } from './websocket.js';

/**
 * openTransport(spec): one string names any controller (Bumble's open_transport idea).
 *   hci0 | hci:N | hci-user:N          Linux HCI user channel
 *   unix:/path                         H4 over a unix socket (btvirt: unix:/tmp/bt-server-le)
 *   tcp:host:port                      H4 over TCP ([v6 address] in brackets)
 *   serial:/dev/ttyACM0?baud=N&rtscts=0|1
 *   capture:file                       controller → host packets of a capture file
 *   ws://host:port/path | wss://…      H4 over a WebSocket relay (`blewire relay`)
 *   replay:file, sim[:scenario]        registered by the replay and simulator modules
 * Modules above this layer add schemes with registerTransport(), so this file imports none of them.
 * With options.capture or BLEWIRE_CAPTURE=path the transport is wrapped in a recorder.
 */

export interface OpenTransportOptions {
  /** Record everything into this capture file (format from the extension; `{ts}` expands to the time). */
  capture?: string;
  /** Environment to read BLEWIRE_TRANSPORT and BLEWIRE_CAPTURE from (default process.env). */
  env?: Record<string, string | undefined>;
  userChannel?: UserChannelOptions;
  serial?: Pick<SerialOptions, 'loadModule'>;
  record?: RecordOptions;
  /** Free-form options for registered schemes (the simulator's world, replay expectations…). */
  [key: string]: unknown;
}

/** `rest` is the spec after "scheme:" (empty when there is none). */
export type TransportFactory = (rest: string, options: OpenTransportOptions, spec: string) => HciTransport | Promise<HciTransport>;

interface Entry { factory: TransportFactory; usage: string }
const registry = new Map<string, Entry>();

/** The forms every valid spec takes, for error messages and --help. */
const BUILTIN_FORMS = ['hci0', 'hci:N', 'hci-user:N', 'unix:/path', 'tcp:host:port', 'serial:/dev/ttyX?baud=N&rtscts=1', 'capture:file', 'ws://host:port/path'];
const LATER_FORMS: Record<string, string> = { replay: 'replay:file', sim: 'sim[:scenario]' };

/** Add (or replace) the factory for `scheme`. */
export function registerTransport(scheme: string, factory: TransportFactory, usage = `${scheme}:…`): void {
  if (!/^[a-z][a-z0-9-]*$/.test(scheme)) throw new ArgumentError(`bad transport scheme ${JSON.stringify(scheme)}`);
  registry.set(scheme, { factory, usage });
}

export function transportForms(): string[] {
  const forms = [...BUILTIN_FORMS];
  for (const [scheme, e] of registry) if (!BUILTIN.has(scheme)) forms.push(e.usage);
  for (const [scheme, usage] of Object.entries(LATER_FORMS)) if (!registry.has(scheme)) forms.push(`${usage} (not loaded)`);
  return forms;
}

function invalid(spec: string, why: string): TransportError {
  return new TransportError(`transport ${JSON.stringify(spec)}: ${why}; valid forms: ${transportForms().join(', ')}`, 'ETRANSPORT_SPEC');
}

function parseIndex(rest: string, spec: string): number {
  if (!/^\d{1,3}$/.test(rest)) throw invalid(spec, 'the adapter index must be a number');
  return Number(rest);
}

const BUILTIN = new Set(['hci', 'hci-user', 'unix', 'tcp', 'serial', 'capture', 'ws', 'wss']);

registerTransport('hci', (rest, o, spec) => openUserChannel(parseIndex(rest, spec), o.userChannel), 'hci:N');
registerTransport('hci-user', (rest, o, spec) => openUserChannel(parseIndex(rest, spec), o.userChannel), 'hci-user:N');
registerTransport('unix', (rest, _o, spec) => {
  if (!rest) throw invalid(spec, 'a socket path is needed');
  return openUnixTransport(rest);
}, 'unix:/path');
registerTransport('tcp', (rest, _o, spec) => {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(rest);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw invalid(spec, 'expected tcp:host:port');
  return openTcpTransport(m[1] ?? m[2]!, port);
}, 'tcp:host:port');
registerTransport('serial', (rest, o, spec) => {
  const [path, query = ''] = rest.split('?', 2) as [string, string?];
  if (!path) throw invalid(spec, 'a device path is needed');
  const params = new URLSearchParams(query);
  const opts: SerialOptions = { ...o.serial };
  for (const [k, v] of params) {
    if (k === 'baud') {
      if (!/^\d+$/.test(v)) throw invalid(spec, `baud must be a number, not ${JSON.stringify(v)}`);
      opts.baud = Number(v);
    } else if (k === 'rtscts') {
      if (v !== '0' && v !== '1') throw invalid(spec, 'rtscts must be 0 or 1');
      opts.rtscts = v === '1';
    } else throw invalid(spec, `unknown serial option ${JSON.stringify(k)} (baud, rtscts)`);
  }
  return openSerialTransport(path, opts);
}, 'serial:/dev/ttyX?baud=N&rtscts=1');
/** The WebSocket class: options.WebSocket, else the runtime's (Node 22+), else the `ws` package's (Node 20). */
async function webSocketClass(o: OpenTransportOptions): Promise<WebSocketClass> {
  const given = o['WebSocket'] as WebSocketClass | undefined;
  const global = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  return given ?? global ?? ((await import('ws')).WebSocket as unknown as WebSocketClass);
}
for (const scheme of ['ws', 'wss']) {
  registerTransport(scheme, async (rest, o, spec) => {
    if (!/^\/\/[^/]/.test(rest)) throw invalid(spec, `expected ${scheme}://host:port/path`);
    return WebSocketTransport.open(spec, { WebSocket: await webSocketClass(o) });
  }, `${scheme}://host:port/path`);
}
registerTransport('capture', (rest, o, spec) => {
  if (!rest) throw invalid(spec, 'a capture file is needed');
  const adapter = typeof o['adapter'] === 'number' ? o['adapter'] : undefined;
  return new CaptureSourceTransport(rest, adapter === undefined ? {} : { adapter });
}, 'capture:file');

/**
 * Open the transport a spec names (default: env BLEWIRE_TRANSPORT). Throws TransportError
 * 'ETRANSPORT_SPEC' for an unknown or unregistered scheme, listing the valid forms.
 */
export async function openTransport(spec?: string, options: OpenTransportOptions = {}): Promise<HciTransport> {
  const env = options.env ?? process.env;
  const s = spec ?? env['BLEWIRE_TRANSPORT'];
  if (!s) throw invalid('', 'no transport given (pass one or set BLEWIRE_TRANSPORT)');
  let scheme: string;
  let rest: string;
  const hciN = /^hci(\d+)$/.exec(s);
  if (hciN) {
    scheme = 'hci';
    rest = hciN[1]!;
  } else {
    const colon = s.indexOf(':');
    scheme = colon < 0 ? s : s.slice(0, colon);
    rest = colon < 0 ? '' : s.slice(colon + 1);
  }
  const entry = registry.get(scheme);
  if (!entry) {
    throw invalid(s, LATER_FORMS[scheme] ? `the ${scheme} transport is not loaded (import its module first)` : `unknown transport ${JSON.stringify(scheme)}`);
  }
  const transport = await entry.factory(rest, options, s);
  const capture = options.capture ?? env['BLEWIRE_CAPTURE'];
  if (!capture) return transport;
  let writer;
  try {
    writer = openRecordingFile(capture);
  } catch (e) {
    await transport.close();
    throw new TransportError(`cannot record to ${capture}: ${(e as Error).message}`, 'ETRANSPORT_CAPTURE', { cause: e });
  }
  return recordTransport(transport, writer, options.record);
}
