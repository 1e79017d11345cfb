/**
 * `blewire serve <db.json> [--device NAME|ADDRESS|N] [--name NAME] [--service UUID]... [--interval MS]
 * [--json] [--transport SPEC] [--capture FILE]`: serve a GATT database from a JSON file (a virtual
 * peripheral, a simulator world, a device twin, or a list of services: src/tooling/database-file.ts)
 * and advertise it until Ctrl-C / SIGTERM, printing every connection, read, write and subscription.
 *
 * - Values: each attribute starts with the file's value; a write that the database accepts (the
 *   characteristic's properties say it may be written) replaces it in memory for every client.
 * - Advertising: the file's advertising (a twin's captured AD and scan response as they were) unless
 *   --name / --service / the other advertising options override it; without any in the file, the name
 *   and as many primary service UUIDs as fit. It continues after every connection (the advertiser
 *   resumes a connectable set, or this command starts it again after the disconnection).
 * - Notification streams of the file (a twin's captured stream, a simulator generator) play to each
 *   client that enables them in its CCCD, one timer per client, until it disables them or leaves.
 */
import { toHex } from '../bytes/hex.js';
import type { Adapter } from '../api/adapter.js';
import type { Connection } from '../api/connection.js';
import { describeUuid, type Uuid } from '../codec/uuid.js';
import type { AdvertiseOptions, AdvertisingContent } from '../gap/advertiser.js';
import { parseAd } from '../gap/ad.js';
import type { GattServer, ServedCharacteristic, ServedService, ServerRequest, ServerWrite } from '../gatt/server/server.js';
import { servedCharacteristicFields, servedDescriptorFields, servedServiceFields, type DatabaseFile, type FileStream } from '../tooling/database-file.js';
import { UsageError } from './args.js';
import { formatValue, parseArgs } from './explore.js';
import { ADVERTISING_USAGE, advertiseUntilStopped, advertisingArgs, eventPrinter, openAdapter, who, type AdvertisingArgs } from './peripheral.js';

const USAGE = `usage: blewire serve <database.json> [--device NAME|ADDRESS|N] ${ADVERTISING_USAGE.replace('[--connectable|--non-connectable] ', '')} ` +
  '[--json] [--transport SPEC] [--capture FILE]';

const HELP = `${USAGE}

Serves a GATT database from a JSON file and advertises it until Ctrl-C, printing every connection,
read, write and subscription (JSON Lines with --json). The file is any of:
  a virtual peripheral of the simulator    { "name": …, "advertising": …, "gatt": [services] }
  a simulator world                        { "peripherals": [...] }  (--device picks one)
  a device twin                            what \`blewire twin capture.btsnoop -o twin.json\` writes
  a list of services                       [ { "uuid": "180f", "characteristics": [
                                               { "uuid": "2a19", "properties": ["read", "notify"],
                                                 "value": { "hex": "57" } } ] } ]
Values are bytes as { "hex": "0a0b" } or a UTF-8 string; "security": "encrypted" (or "authenticated",
or { "read": …, "write": … }) on a characteristic makes a central pair first. The file's GAP service gives the Device
Name and Appearance; blewire serves its own GAP and GATT services (their reads are printed too). The
file's handles are kept (a twin's captured layout); blewire's GAP and GATT take the file's own GAP /
GATT handles when they fit there, else the first free room.
Writes are kept in memory while the command runs. Notification streams in the file (a twin's
captured notifications, a simulator generator) play to each client that subscribes.
Advertising: the file's (a twin's captured data as it was) unless --name, --service, --manufacturer,
--service-data or --tx-power are given; it starts again after every disconnection.
  --device NAME|ADDRESS|N   the peripheral of a world file (its name, address, or 1-based position)
  --interval MS             advertising interval, 20 to 10240 ms (default: the file's, else 100-150)
  --json                    one JSON object per event
The file is read up to 8 MiB and checked before anything is opened; a mistake in it is reported
with its place (e.g. gatt[2].characteristics[0].uuid) and exit code 1.`;

export async function run(argv: string[], options: { signal?: AbortSignal } = {}): Promise<number> {
  const args = parseArgs(argv, ['device', 'name', 'interval', 'manufacturer', 'service-data']);
  if (args.flags.has('help')) {
    console.log(HELP);
    return 0;
  }
  const [file, extra] = args.positional;
  if (!file) {
    console.error(USAGE);
    return 2;
  }
  if (extra !== undefined) throw new UsageError(`serve takes one database file, not also ${JSON.stringify(extra)}`);
  if (args.flags.has('non-connectable')) throw new UsageError('serve advertises connectable: a central has to connect to reach the database (use `blewire advertise --non-connectable` to broadcast)');
  const adv = advertisingArgs(args);
  const device = args.flags.get('device');
  if (device === true) throw new UsageError('--device takes a peripheral\'s name, address or 1-based position');
  const { loadDatabaseFile } = await import('../tooling/database-file.js');
  const db = await loadDatabaseFile(file, typeof device === 'string' ? { device } : {});
  const name = adv.name ?? db.name ?? contentName(db.advertising?.data) ?? contentName(db.advertising?.scanResponse) ?? 'blewire';
  const print = eventPrinter(args.json);

  const adapter = await openAdapter(args);
  try {
    const served = new ServedDatabase(adapter, db, print);
    await served.start(name);
    const chars = db.services.reduce((n, s) => n + s.characteristics.length, 0);
    print('serving', `serving ${db.label} from ${file}: ${db.services.length} service(s), ${chars} characteristic(s); Device Name ${JSON.stringify(name)}`,
      { file, label: db.label, kind: db.kind, name, services: db.services.length, characteristics: chars, notes: db.notes });
    if (!args.json) for (const n of db.notes) console.log(`  note: ${n}`);
    return await advertiseUntilStopped(adapter, advertiseOptions(db, adv, name), print, {
      ...(options.signal ? { signal: options.signal } : {}), name,
      onStop: () => served.stop(),
      summary: () => served.summary(),
    });
  } finally {
    await adapter.close().catch(() => undefined);
  }
}

function contentName(c: AdvertisingContent | undefined): string | undefined {
  if (!c) return undefined;
  if (c.name !== undefined) return c.name;
  if (!c.raw) return undefined;
  return rawName(c.raw);
}

/** The Complete (0x09) or Shortened (0x08) Local Name in raw AD (Supplement, Part A, 1.2), tolerant of bad lengths. */
function rawName(raw: Uint8Array): string | undefined {
  for (let i = 0; i + 1 < raw.length;) {
    const len = raw[i]!;
    if (len === 0 || i + 1 + len > raw.length) return undefined;
    const type = raw[i + 1]!;
    if (type === 0x09 || type === 0x08) {
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(raw.subarray(i + 2, i + 1 + len));
      } catch {
        return undefined;
      }
    }
    i += 1 + len;
  }
  return undefined;
}

const LEGACY_AD_MAX = 31;
const FLAGS_OCTETS = 3; // Length, AD Type, Flags (Supplement, Part A, 1.3)

/** What to advertise: the file's advertising, the command line's overrides, or the name and the services that fit. */
export function advertiseOptions(db: DatabaseFile, cli: AdvertisingArgs, name: string): AdvertiseOptions {
  const interval = cli.interval ?? db.advertising?.intervalMs;
  const common: AdvertiseOptions = { connectable: true, ...(interval !== undefined ? { interval } : {}) };
  const overridden = cli.name !== undefined || cli.services !== undefined || cli.manufacturerData !== undefined ||
    cli.serviceData !== undefined || cli.includeTxPower !== undefined;
  const file = db.advertising;
  if (file?.data && !overridden) {
    return { ...common, ...file.data, ...(file.scanResponse ? { scanResponse: file.scanResponse } : {}) };
  }
  // The file's content (raw AD read back into content) or, without any, the defaults; then the overrides.
  const base: AdvertisingContent = file?.data ? (file.data.raw ? contentOfRaw(file.data.raw) : file.data) : defaultContent(db, name);
  const content: AdvertisingContent = {
    ...base,
    ...(overridden || base.name !== undefined ? { name } : {}),
    ...(cli.services ? { services: cli.services } : {}),
    ...(cli.manufacturerData ? { manufacturerData: cli.manufacturerData } : {}),
    ...(cli.serviceData ? { serviceData: cli.serviceData } : {}),
    ...(cli.includeTxPower ? { includeTxPower: true } : {}),
  };
  const nameOctets = new TextEncoder().encode(name).length;
  // The complete name in the scan response when the data is likely to carry it shortened.
  const rest = file?.data ? 0 : FLAGS_OCTETS + servicesOctets(content.services ?? []);
  const scanResponse = file?.scanResponse && !overridden ? file.scanResponse
    : !file?.data && rest + 2 + nameOctets > LEGACY_AD_MAX ? { name } : undefined;
  return { ...common, ...content, ...(scanResponse ? { scanResponse } : {}) };
}

/** What raw AD says, as content to change (tolerant: a malformed structure is skipped). */
function contentOfRaw(raw: Uint8Array): AdvertisingContent {
  const p = parseAd(raw);
  return {
    ...(p.flags !== undefined ? { flags: p.flags } : {}),
    ...(p.name !== undefined ? { name: p.name } : {}),
    ...(p.serviceUuids.length ? { services: [...p.serviceUuids] } : {}),
    ...(p.appearance !== undefined ? { appearance: p.appearance } : {}),
    ...(p.serviceData.size ? { serviceData: [...p.serviceData] } : {}),
    ...(p.manufacturerData.size ? { manufacturerData: [...p.manufacturerData] } : {}),
    ...(p.txPower !== undefined ? { includeTxPower: true } : {}),
  };
}

/** Octets of the service UUID lists (one list per width, 2 header octets each; Supplement, Part A, 1.1). */
function servicesOctets(uuids: Array<string | number>): number {
  const widths = new Map<number, number>();
  for (const u of uuids) {
    const w = typeof u === 'number' || /^0000[0-9a-f]{4}-0000-1000-8000-00805f9b34fb$/.test(u) ? 2 : 16;
    widths.set(w, (widths.get(w) ?? 0) + w);
  }
  let n = 0;
  for (const octets of widths.values()) n += 2 + octets;
  return n;
}

/** Flags, as many primary service UUIDs as leave room for 8 octets of the name, and the name (shortened by the AD builder if need be). */
function defaultContent(db: DatabaseFile, name: string): AdvertisingContent {
  const room = LEGACY_AD_MAX - FLAGS_OCTETS - 2 - Math.min(new TextEncoder().encode(name).length, 8);
  const uuids: Uuid[] = [];
  for (const s of db.services) {
    if (s.primary && servicesOctets([...uuids, s.uuid]) <= room) uuids.push(s.uuid);
  }
  return { name, ...(uuids.length ? { services: uuids } : {}) };
}

/** One served attribute: where it is, what it holds now. */
interface Attr { uuid: Uuid; label: string; handle: number; value: Uint8Array; charIndex?: [number, number]; descs?: Attr[] }

/** The file's services on the adapter's GATT server, with the printing handlers and the streams. */
class ServedDatabase {
  private readonly chars: Attr[][] = [];
  private readonly byHandle = new Map<number, Attr>();
  private readonly timers = new Map<string, ReturnType<Adapter['clock']['setTimeout']>>();
  private readonly counts = { reads: 0, writes: 0, notifications: 0 };
  private stopped = false;
  private readonly offDisconnect: () => void;
  private offSubscription: (() => void) | undefined;
  private offOwnAccess: (() => void) | undefined;
  private server: GattServer<Connection> | undefined;

  constructor(private readonly adapter: Adapter, private readonly db: DatabaseFile, private readonly print: ReturnType<typeof eventPrinter>) {
    const onDisconnect = (c: Connection): void => this.stopStreams(c);
    adapter.on('disconnect', onDisconnect);
    this.offDisconnect = () => adapter.off('disconnect', onDisconnect);
  }

  async start(name: string): Promise<void> {
    const services: ServedService<Connection>[] = this.db.services.map((s, si) => ({
      ...servedServiceFields(s),
      characteristics: s.characteristics.map((c, ci): ServedCharacteristic<Connection> => {
        const attr: Attr = { uuid: c.uuid, label: describeUuid(c.uuid), handle: 0, value: c.value, charIndex: [si, ci] };
        (this.chars[si] ??= [])[ci] = attr;
        const descriptors = c.descriptors.map(d => {
          const da: Attr = { uuid: d.uuid, label: `${describeUuid(d.uuid)} of ${attr.label}`, handle: 0, value: d.value };
          (attr.descs ??= []).push(da);
          return {
            ...servedDescriptorFields(d),
            onRead: (req: ServerRequest<Connection>) => this.read(da, req),
            onWrite: (v: Uint8Array, req: ServerWrite<Connection>) => this.write(da, v, req),
          };
        });
        return {
          ...servedCharacteristicFields(c),
          onRead: req => this.read(attr, req),
          onWrite: (v, req) => this.write(attr, v, req),
          ...(descriptors.length ? { descriptors } : {}),
        };
      }),
    }));
    const server = await this.adapter.serve(services, { name, ...(this.db.appearance !== undefined ? { appearance: this.db.appearance } : {}),
      ...(this.db.ownServices ? { ownServices: this.db.ownServices } : {}) });
    this.server = server;
    // The handles the server gave the file's services (their own, when the file has them).
    server.services.forEach((s, si) => s.characteristics.forEach((c, ci) => {
      const attr = this.chars[si]?.[ci];
      if (!attr) return;
      attr.handle = c.valueHandle;
      this.byHandle.set(c.valueHandle, attr);
      const descs = attr.descs ?? [];
      for (const d of descs) d.handle = c.descriptors.find(x => x.uuid === d.uuid)?.handle ?? 0;
    }));
    // Reads and writes of our own GAP and GATT values (Device Name, Database Hash, Client Supported
    // Features…), which no handler of the file's sees.
    this.offOwnAccess = server.onOwnServiceAccess(a => {
      const label = `${describeUuid(a.uuid)} (blewire's own)`;
      const hex = `0x${a.handle.toString(16).padStart(4, '0')}`;
      const by = a.connection ? ` by ${who(a.connection)}` : '';
      this.print(a.op, `${a.op === 'read' ? 'read  ' : 'write '} ${label} ${hex}${by}: ${formatValue(a.value)}`,
        { address: a.connection?.address, handle: a.handle, uuid: a.uuid, value: toHex(a.value), own: true });
    });
    this.offSubscription = server.onSubscription(change => {
      const attr = this.byHandle.get(change.handle);
      const label = attr?.label ?? describeUuid(change.uuid);
      const what = change.notifications && change.indications ? 'notifications and indications'
        : change.notifications ? 'notifications' : change.indications ? 'indications' : 'nothing';
      const c = change.connection;
      this.print(change.notifications || change.indications ? 'subscribe' : 'unsubscribe',
        `${change.notifications || change.indications ? 'subscribe  ' : 'unsubscribe'} ${label} 0x${change.handle.toString(16).padStart(4, '0')}: ${what}${c ? ` by ${who(c)}` : ''}`,
        { address: c?.address, handle: change.handle, uuid: change.uuid, notifications: change.notifications, indications: change.indications });
      if (c && attr?.charIndex) this.subscriptionChanged(c, attr, change.notifications, change.indications);
    });
  }

  private read(a: Attr, req: ServerRequest<Connection>): Uint8Array {
    this.counts.reads++;
    this.print('read', `read   ${a.label} 0x${a.handle.toString(16).padStart(4, '0')}${req.offset ? ` at offset ${req.offset}` : ''} by ${who(req.connection)}: ${formatValue(a.value)}`,
      { address: req.connection.address, handle: a.handle, uuid: a.uuid, offset: req.offset, value: toHex(a.value) });
    return a.value;
  }

  private write(a: Attr, v: Uint8Array, req: ServerWrite<Connection>): void {
    this.counts.writes++;
    a.value = Uint8Array.from(v);
    const how = req.command ? 'command' : req.prepared ? 'prepared' : 'request';
    this.print('write', `write  ${a.label} 0x${a.handle.toString(16).padStart(4, '0')} by ${who(req.connection)} (${how}): ${formatValue(v)}`,
      { address: req.connection.address, handle: a.handle, uuid: a.uuid, value: toHex(v), kind: how });
  }

  // ---- notification streams ----------------------------------------------------------------------

  private streamOf(a: Attr): FileStream | undefined {
    const [si, ci] = a.charIndex!;
    return this.db.streams.find(s => s.service === si && s.characteristic === ci);
  }

  private subscriptionChanged(c: Connection, a: Attr, notifications: boolean, indications: boolean): void {
    const stream = this.streamOf(a);
    if (!stream) return;
    const key = `${c.handle}/${a.handle}`;
    const on = stream.mode === 'indicate' ? indications : notifications;
    if (!on) {
      this.clear(key);
      return;
    }
    if (this.timers.has(key) || this.stopped) return;
    void this.play(c, a, stream, key);
  }

  private async play(c: Connection, a: Attr, stream: FileStream, key: string): Promise<void> {
    const [{ generate }, { Rng }] = await Promise.all([import('../sim/peripheral.js'), import('../sim/util.js')]);
    const rng = new Rng(1);
    const clock = this.adapter.clock;
    let i = 0;
    const next = (): void => {
      const delay = stream.intervalsMs.length ? stream.intervalsMs[i % stream.intervalsMs.length]! : stream.everyMs;
      this.timers.set(key, clock.setTimeout(() => { void send(); }, Math.max(0, delay)));
    };
    const send = async (): Promise<void> => {
      if (!this.timers.has(key) || this.stopped) return;
      const value = generate(stream.generator, i++, rng);
      a.value = value;
      let sent = false;
      try {
        const gatt = this.server!;
        sent = stream.mode === 'indicate'
          ? (await gatt.indicate(a.handle, value, { connections: [c] })) > 0
          : (await gatt.notify(a.handle, value, { connections: [c] })) > 0;
      } catch {
        sent = false;
      }
      if (sent) {
        this.counts.notifications++;
        this.print(stream.mode === 'indicate' ? 'indicate' : 'notify',
          `${stream.mode === 'indicate' ? 'indicate' : 'notify '} ${a.label} 0x${a.handle.toString(16).padStart(4, '0')} to ${who(c)}: ${formatValue(value)}`,
          { address: c.address, handle: a.handle, uuid: a.uuid, value: toHex(value) });
      }
      if (this.timers.has(key) && !this.stopped && c.connected) next();
    };
    if (this.timers.has(key) || this.stopped) return;
    next();
  }

  private clear(key: string): void {
    const t = this.timers.get(key);
    if (t !== undefined) this.adapter.clock.clearTimeout(t);
    this.timers.delete(key);
  }

  private stopStreams(c: Connection): void {
    for (const key of [...this.timers.keys()]) if (key.startsWith(`${c.handle}/`)) this.clear(key);
  }

  stop(): void {
    this.stopped = true;
    for (const key of [...this.timers.keys()]) this.clear(key);
    this.offSubscription?.();
    this.offOwnAccess?.();
    this.offDisconnect();
  }

  summary(): string {
    return `${this.counts.reads} read(s), ${this.counts.writes} write(s), ${this.counts.notifications} notification(s) / indication(s)`;
  }
}
