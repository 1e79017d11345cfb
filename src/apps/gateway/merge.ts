/**
 * The merged view of many gateways: every gateway publishes what it hears; a consumer subscribes to
 * `<prefix>/+/devices/+` and `<prefix>/+/status` and keeps, per device, each gateway's last RSSI.
 * The nearest gateway (room presence) is the one with the strongest recent RSSI among the gateways
 * that are online. GatewayMerger is pure logic (feed it messages); runMerge() wires it to a broker.
 *
 * Devices are keyed by their identity address when a document carries one (a bonded device using
 * resolvable private addresses), else by the address on the air.
 *
 * Bounds: at most `maxDevices` devices (least recently updated forgotten first); a gateway's report
 * older than `staleMs` no longer counts for "nearest".
 */
export interface Sighting {
  gateway: string;
  rssi: number;
  /** When the gateway last heard it (the document's lastSeen, ms since the epoch). */
  lastSeen: number;
  name?: string;
}

export interface MergedDevice {
  address: string;
  name?: string;
  /** The gateway with the strongest fresh RSSI, if any. */
  nearest: string | undefined;
  gateways: Record<string, { rssi: number; lastSeen: string }>;
}

export class GatewayMerger {
  private readonly devices = new Map<string, Map<string, Sighting>>();
  private readonly offline = new Set<string>();

  constructor(readonly prefix = 'blewire', readonly staleMs = 60_000, readonly maxDevices = 10_000) {}

  /**
   * One MQTT message; returns the device address it changed, or undefined when the message is not a
   * device document or status (or not valid). Never throws.
   */
  update(topic: string, payload: string | Uint8Array): string | undefined {
    const parts = topic.split('/');
    const pre = this.prefix.split('/');
    if (parts.length < pre.length + 2 || pre.some((p, i) => parts[i] !== p)) return undefined;
    const gw = parts[pre.length]!;
    const rest = parts.slice(pre.length + 1);
    const text = typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8');
    if (rest.length === 1 && rest[0] === 'status') {
      if (text === 'offline') this.offline.add(gw);
      else this.offline.delete(gw);
      return undefined;
    }
    if (rest.length !== 2 || rest[0] !== 'devices') return undefined;
    let doc: { address?: unknown; identity?: { address?: unknown }; rssi?: unknown; lastSeen?: unknown; name?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      return undefined;
    }
    if (!doc || typeof doc.address !== 'string' || typeof doc.rssi !== 'number') return undefined;
    const seen = typeof doc.lastSeen === 'string' ? Date.parse(doc.lastSeen) : NaN;
    // A bonded device is one device under its identity address, whichever RPA it is using now.
    const id = doc.identity && typeof doc.identity === 'object' ? doc.identity.address : undefined;
    const address = typeof id === 'string' && id.length === 17 ? id : doc.address;
    let m = this.devices.get(address);
    if (m) this.devices.delete(address);
    else {
      m = new Map();
      if (this.devices.size >= this.maxDevices) this.devices.delete(this.devices.keys().next().value as string);
    }
    this.devices.set(address, m);
    const s: Sighting = { gateway: gw, rssi: doc.rssi, lastSeen: Number.isFinite(seen) ? seen : Date.now() };
    if (typeof doc.name === 'string') s.name = doc.name;
    m.set(gw, s);
    return address;
  }

  /** The merged view of one device at time `now` (ms since the epoch). */
  view(address: string, now = Date.now()): MergedDevice | undefined {
    const m = this.devices.get(address);
    if (!m) return undefined;
    let best: Sighting | undefined;
    const gateways: MergedDevice['gateways'] = {};
    let name: string | undefined;
    for (const s of m.values()) {
      gateways[s.gateway] = { rssi: s.rssi, lastSeen: new Date(s.lastSeen).toISOString() };
      name ??= s.name;
      if (this.offline.has(s.gateway) || now - s.lastSeen > this.staleMs) continue;
      if (!best || s.rssi > best.rssi) best = s;
    }
    const out: MergedDevice = { address, nearest: best?.gateway, gateways };
    if (name !== undefined) out.name = name;
    return out;
  }

  all(now = Date.now()): MergedDevice[] {
    return [...this.devices.keys()].map(a => this.view(a, now)!);
  }

  get size(): number {
    return this.devices.size;
  }
}
