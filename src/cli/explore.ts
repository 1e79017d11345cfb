/**
 * `blewire explore <address> [--json]`: connect, discover everything, print the tree with names of
 * well-known UUIDs, properties and readable values. Also home of what the other GATT commands
 * (read, write, notify) share: argument parsing, opening a GATT session, finding a characteristic,
 * formatting values.
 *
 * The commands talk to a GattSession, not to the adapter directly: `setGattSessionOpener()` swaps
 * how a session is opened (tests use an in-memory peripheral; the default opens the Adapter and
 * puts a GattClient on the connection's ATT channel).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../bytes/hex.js';
import { describeUuid, uuid as toUuid } from '../codec/uuid.js';
import type { GattClient } from '../gatt/client.js';
import { NotFoundError, type GattCharacteristic, type GattService } from '../gatt/model.js';
import { TimeoutError } from '../errors.js';
import { checkAddress, checkInteger, checkUuid, UsageError } from './args.js';
import { stdoutClosed } from './stdout.js';
import type { IoCapabilityName } from '../link/pairing.js';
import { closePrompts, ioOption, terminalPairing } from './prompt.js';
import { decodeValue, parsePresentationFormat, type PresentationFormat } from './values.js';

const PRESENTATION_FORMAT = toUuid(0x2904);

/** What the GATT commands need from a live connection. */
export interface GattSession {
  gatt: GattClient;
  close(): Promise<void>;
}

export interface OpenOptions {
  transport?: string;
  /** Record the session into this capture file (btsnoop / pcap / pcapng by extension). */
  capture?: string;
  /** Omitted: scan for the address first and take the type it advertises with (public if unheard). */
  addressType?: 'public' | 'random';
  timeout: number;
  mtu: number;
  cache: boolean;
  /** Our IO capability when the peer asks for security (the commands pair on demand; prompts on a terminal). */
  io?: IoCapabilityName;
}

export type GattSessionOpener = (address: string, options: OpenOptions) => Promise<GattSession>;

/** Default: open the adapter, connect, and use the connection's GATT client. */
const defaultOpener: GattSessionOpener = async (address, options) => {
  await import('../transports.js'); // --transport sim / replay:file
  const { Adapter } = await import('../api/adapter.js');
  const adapter = await Adapter.open({
    ...(options.transport ? { transport: options.transport } : {}),
    ...(options.capture ? { capture: options.capture } : {}),
    ...(options.mtu !== undefined ? { mtu: options.mtu } : {}),
    ...(options.cache ? { gattCache: join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'blewire', 'gatt') } : {}),
    // A characteristic that needs encryption makes the link pair (or re-encrypt from the bond) and the
    // request is retried once; passkeys and comparisons are asked on the terminal.
    pairing: terminalPairing(options.io),
  });
  try {
    // Without --type, learn the address type from the device's own advertising (a public and a random
    // address may be equal as bytes, so guessing wrong would time out or reach another device).
    const findMs = Math.min(options.timeout, 5_000);
    const learnt = options.addressType ? undefined : (await adapter.find({ address, timeout: findMs }))?.addressType;
    const addressType = options.addressType ?? learnt ?? 'public';
    const guessed = options.addressType === undefined && learnt === undefined;
    let conn;
    try {
      conn = await adapter.connect({ address, addressType: addressType === 'random' ? 'random' : 'public' },
        { timeout: options.timeout });
    } catch (e) {
      // Say that the type was a guess: the device was not heard, so nothing told us public or random.
      if (guessed && e instanceof TimeoutError) {
        throw new TimeoutError(e.layer, e.operation, e.ms, `the address type was guessed (public) because ${address} was not seen ` +
          `advertising within ${findMs / 1000} s: is it advertising and connectable? If its address is random, give --type random`);
      }
      throw e;
    }
    const gatt = conn.gatt;
    // --timeout bounds the exchange too (a silent peer would otherwise hold it for the 30 s ATT timeout).
    await gatt.exchangeMtu({ timeout: options.timeout });
    return {
      gatt,
      close: async () => {
        closePrompts();
        await conn.disconnect().catch(() => undefined);
        await adapter.close();
      },
    };
  } catch (e) {
    closePrompts();
    await adapter.close().catch(() => undefined);
    throw e;
  }
};

let opener: GattSessionOpener = defaultOpener;

/** Replace how GATT commands open a session (tests; the lead's wiring). Returns the previous opener. */
export function setGattSessionOpener(fn: GattSessionOpener | undefined): GattSessionOpener {
  const prev = opener;
  opener = fn ?? defaultOpener;
  return prev;
}

export interface CommonArgs {
  positional: string[];
  /** The last value of each flag. */
  flags: Map<string, string | true>;
  /** Every value of a flag given more than once (`--service 180d --service 180f`), in order. */
  lists: Map<string, string[]>;
  open: OpenOptions;
  json: boolean;
}

/** `--name value`, `--name=value` and bare `--flag`; the rest are positional. */
export function parseArgs(argv: string[], valued: string[] = []): CommonArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  const takes = new Set(['transport', 'capture', 'type', 'timeout', 'mtu', 'service', 'io', ...valued]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      const value = eq > 0 ? a.slice(eq + 1) : takes.has(name) && i + 1 < argv.length ? argv[++i]! : true;
      flags.set(name, value);
      if (value !== true) lists.set(name, [...(lists.get(name) ?? []), value]);
    } else positional.push(a);
  }
  const str = (k: string): string | undefined => (typeof flags.get(k) === 'string' ? flags.get(k) as string : undefined);
  const type = str('type');
  if (flags.has('type') && type !== 'public' && type !== 'random') throw new UsageError(`--type is public or random, not ${JSON.stringify(flags.get('type'))}`);
  const transport = str('transport');
  const capture = str('capture');
  return {
    positional,
    flags,
    lists,
    json: flags.has('json'),
    open: {
      ...(transport ? { transport } : {}),
      ...(capture ? { capture } : {}),
      ...(str('type') === 'random' || str('type') === 'public' ? { addressType: str('type') as 'public' | 'random' } : {}),
      timeout: checkInteger(str('timeout'), '--timeout', 10_000, 1),
      mtu: checkInteger(str('mtu'), '--mtu', 517, 23, 517), // ATT_MTU: 23 minimum on LE, 517 maximum (Vol 3, Part F, 3.2.8-9)
      cache: !flags.has('no-cache'),
      ...(flags.has('io') ? { io: ioOption(flags.get('io')) } : {}),
    },
  };
}

export async function withSession<T>(address: string, open: OpenOptions, fn: (s: GattSession) => Promise<T>): Promise<T> {
  const session = await opener(checkAddress(address), open);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/**
 * The opening of the one-characteristic commands (read, write, notify): `--help` prints `usage` and ends
 * with 0; without an address and a characteristic UUID (or with fewer than `count` positional arguments)
 * `usage` goes to stderr and it ends with 2. Returns that exit code, or the positional arguments.
 */
export function characteristicCommandArgs(args: CommonArgs, usage: string, count = 2): string[] | number {
  if (args.flags.has('help')) {
    console.log(usage);
    return 0;
  }
  const p = args.positional;
  if (!p[0] || !p[1] || p.length < count) {
    console.error(usage);
    return 2;
  }
  return p;
}

/**
 * The characteristic such a command names, checked before anything is opened (a typo is a usage error,
 * not a connection and then a failure): the address, the characteristic UUID and `--service`, whose
 * UUID it returns when given.
 */
export function checkCharacteristicTarget(address: string, charUuid: string, args: CommonArgs): string | undefined {
  const service = args.flags.get('service');
  checkAddress(address);
  checkUuid(charUuid, 'characteristic UUID');
  if (typeof service !== 'string') return undefined;
  checkUuid(service, 'service UUID');
  return service;
}

/** The characteristic with this UUID: in `service` if given (targeted discovery), else anywhere. */
export async function findCharacteristic(gatt: GattClient, charUuid: string, serviceUuid?: string): Promise<GattCharacteristic> {
  if (serviceUuid) return gatt.characteristic(serviceUuid, charUuid);
  const want = toUuid(charUuid);
  for (const s of await gatt.services()) {
    const c = s.characteristics.find(x => x.uuid === want);
    if (c) return c;
  }
  throw new NotFoundError('characteristic', describeUuid(want));
}

/** The characteristic's Presentation Format descriptor (0x2904, Vol 3, Part G, 3.3.3.5), read if it has one. */
export async function presentationOf(c: GattCharacteristic): Promise<PresentationFormat | undefined> {
  const d = c.descriptors.find(x => x.uuid === PRESENTATION_FORMAT);
  if (!d) return undefined;
  try {
    return parsePresentationFormat(await d.read());
  } catch {
    return undefined; // unreadable (e.g. needs encryption): the value is shown as hex only
  }
}

/** Hex, then the value decoded where its format is known (`57  87 %`), else the printable text. */
export function showValue(uuid: string, v: Uint8Array, format?: PresentationFormat): string {
  const d = decodeValue(uuid, v, format);
  return d ? `${toHex(v, ' ') || '(empty)'}  ${d.text}` : formatValue(v);
}

/** For --json: the raw hex and, where known, the decoded form. */
export function jsonValue(uuid: string, v: Uint8Array, format?: PresentationFormat): { value: string; decoded?: Record<string, unknown> } {
  const d = decodeValue(uuid, v, format);
  return d ? { value: toHex(v), decoded: { text: d.text, ...d.fields } } : { value: toHex(v) };
}

/** Hex, plus the text when the value is printable UTF-8. */
export function formatValue(v: Uint8Array): string {
  const hex = toHex(v, ' ');
  const text = printable(v);
  return text !== undefined && v.length >= 3 ? `${hex}  "${text}"` : hex || '(empty)';
}

function printable(v: Uint8Array): string | undefined {
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(v);
    return /^[\x20-\x7e\u00a0-\uffff]*$/.test(s) ? s : undefined; // no control characters
  } catch {
    return undefined;
  }
}

const name = (u: string): string => describeUuid(u);

interface Node {
  uuid: string; name?: string | undefined; handle: number; end?: number; primary?: boolean;
  properties?: string[]; value?: string; decoded?: Record<string, unknown>; error?: string;
  characteristics?: Node[]; descriptors?: Node[];
}

/** Raw hex and, where the format is known, the decoded form (as read and notify --json give it). */
async function valueOf(uuid: string, read: () => Promise<Uint8Array>, format?: PresentationFormat):
Promise<{ value?: string; decoded?: Record<string, unknown>; error?: string }> {
  let v: Uint8Array;
  try {
    v = await read();
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
  return jsonValue(uuid, v, format);
}

/** Discover and read everything readable into a plain tree. */
export async function exploreTree(gatt: GattClient): Promise<Node[]> {
  const out: Node[] = [];
  for (const s of await gatt.services()) out.push(await serviceNode(s));
  return out;
}

async function serviceNode(s: GattService): Promise<Node> {
  const chars: Node[] = [];
  for (const c of s.characteristics) {
    const node: Node = { uuid: c.uuid, name: c.name, handle: c.handle, properties: c.properties };
    // Descriptors first: a Presentation Format descriptor (0x2904) says how to show the value.
    const descs: Node[] = [];
    let format: PresentationFormat | undefined;
    for (const d of c.descriptors) {
      const dn: Node = { uuid: d.uuid, name: d.name, handle: d.handle };
      Object.assign(dn, await valueOf(d.uuid, () => d.read()));
      if (d.uuid === PRESENTATION_FORMAT && dn.value !== undefined) format = parsePresentationFormat(fromHexSafe(dn.value));
      descs.push(dn);
    }
    if (c.has('read')) Object.assign(node, await valueOf(c.uuid, () => c.read(), format));
    node.descriptors = descs;
    chars.push(node);
  }
  return { uuid: s.uuid, name: s.name, handle: s.start, end: s.end, primary: s.primary, characteristics: chars };
}

function printTree(tree: Node[], log: (s: string) => void): void {
  // The decoded text the tree already holds (it used the Presentation Format descriptor when present).
  const fmt = (n: Node): string => {
    const text = n.decoded?.['text'];
    return typeof text === 'string' ? `${toHex(fromHexSafe(n.value!), ' ') || '(empty)'}  ${text}` : formatValue(fromHexSafe(n.value!));
  };
  for (const s of tree) {
    log(`${s.primary === false ? 'secondary ' : ''}service ${name(s.uuid)}  [0x${s.handle.toString(16).padStart(4, '0')}–0x${s.end!.toString(16).padStart(4, '0')}]`);
    for (const c of s.characteristics ?? []) {
      const v = c.value !== undefined ? `  = ${fmt(c)}` : c.error ? `  ! ${c.error}` : '';
      log(`  characteristic ${name(c.uuid)}  0x${c.handle.toString(16).padStart(4, '0')}  (${c.properties!.join(', ')})${v}`);
      for (const d of c.descriptors ?? []) {
        const dv = d.value !== undefined ? `  = ${fmt(d)}` : d.error ? `  ! ${d.error}` : '';
        log(`    descriptor ${name(d.uuid)}  0x${d.handle.toString(16).padStart(4, '0')}${dv}`);
      }
    }
  }
}

function fromHexSafe(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export const USAGE_COMMON = '[--type public|random] [--transport SPEC] [--capture FILE] [--timeout MS] [--mtu N] [--no-cache] [--io CAPABILITY]';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const [address] = args.positional;
  if (!address || args.flags.has('help')) {
    console.error(`usage: blewire explore <address> [--json] ${USAGE_COMMON}`);
    return address ? 0 : 2;
  }
  return withSession(address, args.open, async ({ gatt }) => {
    const tree = await exploreTree(gatt);
    if (stdoutClosed()) return 0; // `| head` went away while we discovered
    if (args.json) {
      console.log(JSON.stringify({ address, mtu: gatt.mtu, roundTrips: gatt.stats, services: tree }, null, 2));
    } else {
      printTree(tree, s => console.log(s));
      const st = gatt.stats;
      console.log(`\nATT_MTU ${gatt.mtu}; discovery: ${st.discoveryRequests} round trips${st.cacheHits ? ' (served from the cache)' : ''}; ${st.requests} requests in all`);
    }
    return 0;
  });
}
