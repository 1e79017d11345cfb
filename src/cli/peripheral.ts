/**
 * What `blewire advertise` and `blewire serve` share: the advertising options typed on the command
 * line, opening the adapter, printing connections (text or JSON Lines), and running until Ctrl-C /
 * SIGTERM (or the caller's signal) with a clean stop: advertising stopped, links disconnected, the
 * transport closed.
 */
import { toHex } from '../bytes/hex.js';
import type { Adapter } from '../api/adapter.js';
import type { Connection } from '../api/connection.js';
import type { AdvertiseOptions, AdvertisingSet } from '../gap/advertiser.js';
import { checkHex, checkInteger, checkUuid, UsageError } from './args.js';
import type { CommonArgs } from './explore.js';

/** Local wall-clock time to the millisecond: `14:03:07.412`. */
export const clockText = (d: Date): string =>
  `${[d.getHours(), d.getMinutes(), d.getSeconds()].map(x => String(x).padStart(2, '0')).join(':')}.${String(d.getMilliseconds()).padStart(3, '0')}`;

/** One event line: `14:03:07.412  text`, or a JSON object with `t` and `event` under --json. */
export function eventPrinter(json: boolean): (event: string, text: string, fields?: Record<string, unknown>) => void {
  return (event, text, fields = {}) => {
    const now = new Date();
    console.log(json ? JSON.stringify({ t: now.toISOString(), event, ...fields }) : `${clockText(now)}  ${text}`);
  };
}

/** The advertising options of the command line (each checked before anything is opened). */
export interface AdvertisingArgs {
  name?: string;
  services?: string[];
  manufacturerData?: Array<[number, Uint8Array]>;
  serviceData?: Array<[string, Uint8Array]>;
  connectable?: boolean;
  interval?: number;
  includeTxPower?: boolean;
}

/** `--service` may repeat and take a comma-separated list. */
const listOf = (args: CommonArgs, flag: string): string[] =>
  (args.lists.get(flag) ?? []).flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '');

export function advertisingArgs(args: CommonArgs): AdvertisingArgs {
  const out: AdvertisingArgs = {};
  const name = args.flags.get('name');
  if (name === true) throw new UsageError('--name takes the name to advertise');
  if (typeof name === 'string') {
    if (new TextEncoder().encode(name).length > 248) throw new UsageError('--name is at most 248 octets of UTF-8 (the Device Name, Core Vol 3, Part C, 12.1)');
    out.name = name;
  }
  if (args.flags.get('service') === true) throw new UsageError('--service takes a service UUID');
  const services = listOf(args, 'service').map(u => checkUuid(u, 'service UUID'));
  if (services.length) out.services = services;
  const manufacturer = listOf(args, 'manufacturer').map(m => {
    const colon = m.indexOf(':');
    const id = colon > 0 ? m.slice(0, colon) : '';
    const n = /^0x[0-9a-f]{1,4}$/i.test(id) ? parseInt(id, 16) : /^\d+$/.test(id) ? Number(id) : NaN;
    if (!(n >= 0 && n <= 0xffff)) {
      throw new UsageError(`--manufacturer takes COMPANY-ID:HEX, e.g. 0x05f1:0102 (the company identifier in decimal or 0x hex, 0..0xFFFF), not ${JSON.stringify(m)}`);
    }
    return [n, checkHex(m.slice(colon + 1))] as [number, Uint8Array];
  });
  if (args.flags.get('manufacturer') === true) throw new UsageError('--manufacturer takes COMPANY-ID:HEX');
  if (manufacturer.length) out.manufacturerData = manufacturer;
  if (args.flags.get('service-data') === true) throw new UsageError('--service-data takes UUID:HEX');
  const serviceData = listOf(args, 'service-data').map(s => {
    const colon = s.lastIndexOf(':');
    if (colon <= 0) throw new UsageError(`--service-data takes UUID:HEX, e.g. feaa:0102, not ${JSON.stringify(s)}`);
    return [checkUuid(s.slice(0, colon), 'service data UUID'), checkHex(s.slice(colon + 1))] as [string, Uint8Array];
  });
  if (serviceData.length) out.serviceData = serviceData;
  if (args.flags.has('connectable') && args.flags.has('non-connectable')) throw new UsageError('--connectable and --non-connectable exclude each other');
  if (args.flags.has('non-connectable')) out.connectable = false;
  else if (args.flags.has('connectable')) out.connectable = true;
  const interval = args.flags.get('interval');
  if (interval !== undefined) {
    // 20 ms to 10.24 s: legacy advertising's range (Vol 4, Part E, 7.8.5), which every controller takes.
    out.interval = checkInteger(interval === true ? '' : interval, '--interval (ms)', 100, 20, 10_240);
  }
  if (args.flags.has('tx-power')) out.includeTxPower = true;
  return out;
}

export const ADVERTISING_USAGE = '[--name NAME] [--service UUID]... [--manufacturer ID:HEX]... [--service-data UUID:HEX]... ' +
  '[--connectable|--non-connectable] [--interval MS] [--tx-power]';

/** Open the adapter the command line names (--transport, BLEWIRE_TRANSPORT; --capture records it). */
export async function openAdapter(args: CommonArgs): Promise<Adapter> {
  await import('../transports.js');
  const { Adapter } = await import('../api/adapter.js');
  const o = args.open;
  return Adapter.open({
    ...(o.transport ? { transport: o.transport } : {}),
    ...(o.capture ? { capture: o.capture } : {}),
    ...(args.flags.has('mtu') ? { mtu: o.mtu } : {}),
  });
}

/** `advertising as "name" from ADDRESS (public), connectable, AD 02 01 06 …`. */
export function describeSet(adapter: Adapter, set: AdvertisingSet, name: string | undefined): string {
  const own = adapter.controller.address ?? 'the controller\'s address';
  return `advertising${name ? ` as ${JSON.stringify(name)}` : ''} from ${own}, ${set.connectable ? 'connectable' : 'non-connectable'}, ` +
    `${set.legacy ? 'legacy' : 'extended'} PDUs; data ${toHex(set.advertisingData) || '(none)'}` +
    `${set.scanResponseData.length ? `, scan response ${toHex(set.scanResponseData)}` : ''}`;
}

export const who = (c: Connection): string => `${c.address} (${c.addressType})`;

/**
 * Advertise with `options` until stopped, printing connections and disconnections; after every
 * disconnection the advertising is started again if the controller ended it (the advertiser resumes a
 * connectable set by itself where the controller can advertise while connected). Resolves with the
 * exit code when Ctrl-C / SIGTERM / `signal` stops it (0) or the transport goes away (1).
 */
export async function advertiseUntilStopped(adapter: Adapter, options: AdvertiseOptions, print: ReturnType<typeof eventPrinter>,
  hooks: { signal?: AbortSignal; name?: string; onStop?: () => void | Promise<void>; summary?: () => string } = {}): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const external = hooks.signal;
  if (external?.aborted) stop.abort();
  external?.addEventListener('abort', onSignal, { once: true });
  let transportLost: unknown;
  const onClose = (e: unknown): void => { transportLost = e ?? new Error('closed'); stop.abort(); };
  adapter.on('close', onClose);
  let set = await adapter.advertise(options);
  let connections = 0;
  print('advertising', describeSet(adapter, set, hooks.name), {
    address: adapter.controller.address, connectable: set.connectable, legacy: set.legacy,
    data: toHex(set.advertisingData), scanResponse: toHex(set.scanResponseData),
  });
  let again: Promise<void> = Promise.resolve();
  const onConnection = (c: Connection): void => {
    if (c.role !== 'peripheral') return;
    connections++;
    print('connected', `connected ${who(c)}, handle 0x${c.handle.toString(16).padStart(4, '0')}`, { address: c.address, addressType: c.addressType, handle: c.handle });
  };
  const onDisconnect = (c: Connection, reason: { code: number; name: string }): void => {
    if (c.role !== 'peripheral') return;
    print('disconnected', `disconnected ${who(c)}: ${reason.name} (0x${reason.code.toString(16).padStart(2, '0')})`,
      { address: c.address, handle: c.handle, reason: reason.code, reasonName: reason.name });
    if (stop.signal.aborted || !set.connectable) return;
    again = again.then(async () => {
      if (stop.signal.aborted || adapter.advertising.includes(set)) return;
      try {
        set = await adapter.advertise(options);
        print('advertising', 'advertising again', { again: true });
      } catch (e) {
        // Another central may still be connected to a controller that cannot advertise meanwhile: the next disconnection tries again.
        print('error', `cannot advertise again yet: ${e instanceof Error ? e.message : String(e)}`, { error: e instanceof Error ? e.message : String(e) });
      }
    });
  };
  adapter.on('connection', onConnection);
  adapter.on('disconnect', onDisconnect);
  // A signal handler does not keep Node running: on a transport with nothing pending (the simulator)
  // the process would end here. One idle timer keeps it until Ctrl-C.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  try {
    if (!stop.signal.aborted) await new Promise<void>(resolve => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
  } finally {
    clearInterval(keepAlive);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    external?.removeEventListener('abort', onSignal);
    adapter.off('connection', onConnection);
    adapter.off('disconnect', onDisconnect);
    adapter.off('close', onClose);
  }
  await again;
  await hooks.onStop?.();
  if (transportLost !== undefined) {
    console.error(`blewire: the transport closed: ${transportLost instanceof Error ? transportLost.message : String(transportLost)}`);
    return 1;
  }
  await set.stop().catch(() => undefined);
  console.error(`stopped: ${connections} connection(s)${hooks.summary ? `, ${hooks.summary()}` : ''}`);
  return 0;
}
