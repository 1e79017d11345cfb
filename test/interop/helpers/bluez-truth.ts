/**
 * What BlueZ itself says it serves, as the independent truth the interop tests compare blewire's results
 * with (never blewire's own replica of the database):
 * - the example GATT server's *declared* tree, parsed from the Python source inside the guest image that
 *   was booted (`/opt/bluez-examples/example-gatt-server`: services in Application order, each
 *   characteristic's UUID and D-Bus `Flags`, each descriptor's UUID), turned into ATT properties and
 *   the descriptors bluetoothd adds by the rules of BlueZ's GATT D-Bus API (doc/gatt-api.txt "Flags");
 * - the example advertisement's declared payload (`example-advertisement`);
 * - bluetoothd's compiled-in services (GAP, GATT, Device Information; BlueZ 5.66 src/gatt-database.c),
 *   which are not on D-Bus and are therefore listed here, once, with what each characteristic is.
 *
 * The source is read with `cpio` from the initramfs that tools/interop/guest/build.sh reports, so a
 * different BlueZ in the image changes the truth rather than silently passing.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GUEST_TOOLS } from './bluez-guest.js';

/** Bluetooth Base UUID expansion of 16-bit SIG UUIDs (Core Vol 3, Part B, 2.5.1). */
export function fullUuid(u: string): string {
  const s = u.toLowerCase();
  if (/^[0-9a-f]{4}$/.test(s)) return `0000${s}-0000-1000-8000-00805f9b34fb`;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s)) return s;
  throw new Error(`not a UUID: ${u}`);
}

/** Characteristic property bits (Core Vol 3, Part G, 3.3.1.1, Table 3.5). */
export const PROP = {
  broadcast: 0x01, read: 0x02, writeWithoutResponse: 0x04, write: 0x08, notify: 0x10, indicate: 0x20,
  authenticatedSignedWrites: 0x40, extendedProperties: 0x80,
} as const;

/**
 * BlueZ D-Bus characteristic Flags → ATT property bits (BlueZ doc/gatt-api.txt; src/gatt-database.c
 * parse_chrc_flags): the encrypt-/secure- variants are the plain property plus a permission;
 * reliable-write and writable-auxiliaries live in the Extended Properties descriptor.
 */
const FLAG_BITS: Record<string, number> = {
  'broadcast': PROP.broadcast,
  'read': PROP.read,
  'encrypt-read': PROP.read,
  'encrypt-authenticated-read': PROP.read,
  'secure-read': PROP.read,
  'write-without-response': PROP.writeWithoutResponse,
  'write': PROP.write,
  'encrypt-write': PROP.write,
  'encrypt-authenticated-write': PROP.write,
  'secure-write': PROP.write,
  'notify': PROP.notify,
  'indicate': PROP.indicate,
  'authenticated-signed-writes': PROP.authenticatedSignedWrites,
  'extended-properties': PROP.extendedProperties,
  'reliable-write': 0,
  'writable-auxiliaries': 0,
  'authorize': 0,
};
const EXTENDED_FLAGS = new Set(['reliable-write', 'writable-auxiliaries']);

export interface TruthCharacteristic {
  uuid: string;
  /** The D-Bus Flags as declared (empty for bluetoothd's own characteristics). */
  flags: string[];
  properties: number;
  descriptors: string[];
}
export interface TruthService {
  uuid: string;
  primary: boolean;
  /** Who serves it: bluetoothd itself, or the example application (its Python class). */
  origin: string;
  characteristics: TruthCharacteristic[];
}

const CCCD = fullUuid('2902');
const CEP = fullUuid('2900');

/**
 * bluetoothd's own services, registered before any application's (BlueZ 5.66 src/gatt-database.c:
 * populate_gap_service, populate_gatt_service, populate_devinfo_service; the Device Information service
 * carries only PnP ID, from main.conf DeviceID or BlueZ's default Linux Foundation ID).
 */
export const BLUETOOTHD_SERVICES: readonly TruthService[] = [
  {
    uuid: fullUuid('1800'), primary: true, origin: 'bluetoothd (GAP)', characteristics: [
      { uuid: fullUuid('2a00'), flags: [], properties: PROP.read, descriptors: [] }, // Device Name
      { uuid: fullUuid('2a01'), flags: [], properties: PROP.read, descriptors: [] }, // Appearance
      { uuid: fullUuid('2aa6'), flags: [], properties: PROP.read, descriptors: [] }, // Central Address Resolution
    ],
  },
  {
    uuid: fullUuid('1801'), primary: true, origin: 'bluetoothd (GATT)', characteristics: [
      { uuid: fullUuid('2a05'), flags: [], properties: PROP.indicate, descriptors: [CCCD] }, // Service Changed
      { uuid: fullUuid('2b29'), flags: [], properties: PROP.read | PROP.write, descriptors: [] }, // Client Supported Features
      { uuid: fullUuid('2b2a'), flags: [], properties: PROP.read, descriptors: [] }, // Database Hash
      { uuid: fullUuid('2b3a'), flags: [], properties: PROP.read, descriptors: [] }, // Server Supported Features
    ],
  },
  {
    uuid: fullUuid('180a'), primary: true, origin: 'bluetoothd (Device Information)', characteristics: [
      { uuid: fullUuid('2a50'), flags: [], properties: PROP.read, descriptors: [] }, // PnP ID
    ],
  },
];

interface PyClass { name: string; base: string; body: string }

function pyClasses(src: string): Map<string, PyClass> {
  const out = new Map<string, PyClass>();
  const re = /^class (\w+)\(([\w.]+)\):\n/gm;
  const heads = [...src.matchAll(re)];
  heads.forEach((m, i) => {
    const end = i + 1 < heads.length ? heads[i + 1]!.index : src.length;
    out.set(m[1]!, { name: m[1]!, base: m[2]!, body: src.slice(m.index, end) });
  });
  return out;
}

function pyStrings(list: string): string[] {
  return [...list.matchAll(/'([^']*)'|"([^"]*)"/g)].map(m => m[1] ?? m[2]!);
}

/** The `Base.__init__(self, bus, index, self.X_UUID, <arg>, …)` call of a class: its UUID and 5th argument. */
function initCall(cls: PyClass, base: string): { uuid: string; arg: string } {
  const m = new RegExp(`${base}\\.__init__\\(\\s*self,\\s*bus,\\s*index,\\s*self\\.(\\w+),\\s*(\\[[^\\]]*\\]|True|False)`).exec(cls.body);
  if (!m) throw new Error(`example-gatt-server: no ${base}.__init__ call in class ${cls.name}`);
  const konst = new RegExp(`^\\s*${m[1]}\\s*=\\s*'([^']+)'`, 'm').exec(cls.body);
  if (!konst) throw new Error(`example-gatt-server: no ${m[1]} constant in class ${cls.name}`);
  return { uuid: fullUuid(konst[1]!), arg: m[2]! };
}

function children(cls: PyClass, kind: 'service' | 'characteristic' | 'descriptor'): string[] {
  return [...cls.body.matchAll(new RegExp(`self\\.add_${kind}\\(\\s*(\\w+)\\(`, 'g'))].map(m => m[1]!);
}

/**
 * The example GATT server's tree as bluetoothd registers it: per characteristic the declared flags, the
 * property bits they give, and the descriptors in ATT order (CCCD for notify/indicate and Extended
 * Properties for reliable-write/writable-auxiliaries are added by bluetoothd, before the application's own).
 */
export function parseExampleGattServer(src: string): TruthService[] {
  const classes = pyClasses(src);
  const need = (name: string): PyClass => {
    const c = classes.get(name);
    if (!c) throw new Error(`example-gatt-server: class ${name} not found`);
    return c;
  };
  const app = need('Application');
  const services = children(app, 'service');
  if (services.length === 0) throw new Error('example-gatt-server: Application adds no services');
  return services.map(sName => {
    const sCls = need(sName);
    const s = initCall(sCls, 'Service');
    return {
      uuid: s.uuid,
      primary: s.arg === 'True',
      origin: `example-gatt-server (${sName})`,
      characteristics: children(sCls, 'characteristic').map(cName => {
        const cCls = need(cName);
        const c = initCall(cCls, 'Characteristic');
        const flags = pyStrings(c.arg);
        let properties = 0;
        for (const f of flags) {
          const bits = FLAG_BITS[f];
          if (bits === undefined) throw new Error(`example-gatt-server: unknown flag ${f} in ${cName}`);
          properties |= bits;
        }
        const descriptors: string[] = [];
        if (flags.includes('notify') || flags.includes('indicate')) descriptors.push(CCCD);
        if (flags.some(f => EXTENDED_FLAGS.has(f))) {
          properties |= PROP.extendedProperties;
          descriptors.push(CEP);
        }
        for (const dName of children(cCls, 'descriptor')) descriptors.push(initCall(need(dName), 'Descriptor').uuid);
        return { uuid: c.uuid, flags, properties, descriptors };
      }),
    };
  });
}

export interface DeclaredAdvertisement {
  serviceUuids: string[];
  manufacturerData: Array<{ company: number; data: number[] }>;
  serviceData: Array<{ uuid: string; data: number[] }>;
  localName: string | undefined;
}

const pyInts = (list: string): number[] => [...list.matchAll(/0x[0-9a-fA-F]+|\d+/g)].map(m => Number(m[0]));

/** The TestAdvertisement class of `example-advertisement`: what it asks bluetoothd to advertise. */
export function parseExampleAdvertisement(src: string): DeclaredAdvertisement {
  const cls = pyClasses(src).get('TestAdvertisement');
  if (!cls) throw new Error('example-advertisement: class TestAdvertisement not found');
  const b = cls.body;
  return {
    serviceUuids: [...b.matchAll(/add_service_uuid\('([^']+)'\)/g)].map(m => fullUuid(m[1]!)),
    manufacturerData: [...b.matchAll(/add_manufacturer_data\((0x[0-9a-fA-F]+|\d+),\s*(\[[^\]]*\])\)/g)]
      .map(m => ({ company: Number(m[1]), data: pyInts(m[2]!) })),
    serviceData: [...b.matchAll(/add_service_data\('([^']+)',\s*(\[[^\]]*\])\)/g)].map(m => ({ uuid: fullUuid(m[1]!), data: pyInts(m[2]!) })),
    localName: /add_local_name\('([^']*)'\)/.exec(b)?.[1],
  };
}

const run = promisify(execFile);

/**
 * The guest image build.sh reports (building it if needed, cached otherwise). Asynchronous: a build
 * can take minutes, and a synchronous child would block the vitest worker past its RPC timeout.
 */
export async function guestImage(): Promise<{ initrd: string; kernel: string }> {
  const { stdout: out } = await run(path.join(GUEST_TOOLS, 'build.sh'), ['--quiet'], { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 900_000 });
  const kv = new Map(out.split('\n').filter(l => l.includes('=')).map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  const initrd = kv.get('GUEST_INITRD');
  const kernel = kv.get('GUEST_KERNEL');
  if (!initrd || !kernel || !fs.existsSync(initrd)) throw new Error(`guest build.sh did not report an image:\n${out}`);
  return { initrd, kernel };
}

/** One file of the guest's root file system, read from its (uncompressed newc) initramfs. */
export async function guestFile(initrd: string, guestPath: string): Promise<string> {
  const rel = guestPath.replace(/^\/+/, '');
  const text = await new Promise<string>((resolve, reject) => {
    const child = execFile('cpio', ['-i', '--quiet', '--to-stdout', rel], { encoding: 'utf8', maxBuffer: 16 << 20 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)));
    fs.createReadStream(initrd).on('error', reject).pipe(child.stdin!).on('error', () => undefined); // cpio may stop reading early
  });
  if (!text) throw new Error(`${guestPath} is not in ${initrd}`);
  return text;
}

/** The whole truth for the bridged guest: bluetoothd's services, then the example application's. */
export async function bluezTruth(): Promise<{ services: TruthService[]; advertisement: DeclaredAdvertisement }> {
  const { initrd } = await guestImage();
  const server = await guestFile(initrd, '/opt/bluez-examples/example-gatt-server');
  const adv = await guestFile(initrd, '/opt/bluez-examples/example-advertisement');
  return {
    services: [...BLUETOOTHD_SERVICES, ...parseExampleGattServer(server)],
    advertisement: parseExampleAdvertisement(adv),
  };
}
