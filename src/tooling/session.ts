/**
 * Scripted sessions: one small language for "what was driven", shared by record mode
 * (tools/record.ts runs it against a live transport under the recorder) and the replay tests (which
 * run the very same steps against the replay transport and compare the public results).
 *
 *   scan 2000 [passive] → connect C0:11:22:33:44:55 [random|public] → mtu → discover →
 *   read 2a00 | read 0x0003 → write 2a39 0102 [cmd] → notify 2a37 5 → wait 500 → disconnect
 *
 * Steps are separated by "→" or "->" (or given as an array). Everything goes through blewire's public
 * API (Adapter, Connection, GattClient), with timers on the clock of the transport, so a replay
 * re-runs a recorded session faithfully. Results hold only what a user sees: devices found, the
 * discovered tree with handles and properties, values read, notifications received, the disconnect
 * reason. Values and UUIDs are strings (hex / canonical UUIDs) so they compare as JSON.
 */
import { systemClock, type Clock } from '../clock.js';
import { toHex, fromHex } from '../bytes/hex.js';
import { Adapter } from '../api/adapter.js';
import type { Connection } from '../api/connection.js';
import { GattClient } from '../gatt/client.js';
import type { GattCharacteristic, GattService } from '../gatt/model.js';
import type { HciTransport } from '../transport/types.js';
import { ArgumentError, InvalidStateError } from '../errors.js';

export type SessionStep =
  | { op: 'scan'; ms: number; active: boolean }
  | { op: 'connect'; address: string; addressType: 'public' | 'random' }
  | { op: 'mtu' }
  | { op: 'discover' }
  | { op: 'read'; target: string }
  | { op: 'write'; target: string; value: string; withResponse: boolean }
  | { op: 'notify'; target: string; count: number }
  | { op: 'wait'; ms: number }
  | { op: 'disconnect' };

export interface ScannedDevice {
  address: string;
  addressType: string;
  name?: string;
  connectable: boolean;
  data: string;
  scanResponse?: string;
}

export interface DescriptorResult { uuid: string; handle: number }
export interface CharacteristicResult {
  uuid: string;
  declHandle: number;
  handle: number;
  properties: string[];
  descriptors: DescriptorResult[];
}
export interface ServiceResult {
  uuid: string;
  primary: boolean;
  start: number;
  end: number;
  characteristics: CharacteristicResult[];
}

export interface SessionResult {
  /** Controller facts the host read at init. */
  controller: { address: string; leAclBuffers: { length: number; count: number } };
  /** Unique devices heard, in the order first heard. */
  scan?: ScannedDevice[];
  connection?: { address: string; addressType: string; role: string; intervalMs: number };
  mtu?: number;
  services?: ServiceResult[];
  reads?: Array<{ target: string; value: string }>;
  writes?: Array<{ target: string; value: string }>;
  notifications?: Array<{ target: string; values: string[] }>;
  disconnect?: { code: number; name: string };
}

/** Parse "scan 2000 → connect … → discover" (or an array of step strings). */
export function parseSteps(script: string | string[]): SessionStep[] {
  const parts = Array.isArray(script) ? script : script.split(/\s*(?:→|->)\s*/);
  return parts.map(s => s.trim()).filter(s => s.length > 0).map(parseStep);
}

function parseStep(s: string): SessionStep {
  const [op, ...args] = s.split(/\s+/);
  const num = (v: string | undefined, what: string): number => {
    if (v === undefined || !/^\d+$/.test(v)) throw new ArgumentError(`session step "${s}": ${what} must be a number`);
    return Number(v);
  };
  switch (op) {
    case 'scan': return { op, ms: num(args[0], 'the scan time (ms)'), active: args[1] !== 'passive' };
    case 'connect': {
      if (!args[0] || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(args[0])) throw new ArgumentError(`session step "${s}": connect needs an address`);
      const t = args[1] ?? 'random';
      if (t !== 'public' && t !== 'random') throw new ArgumentError(`session step "${s}": address type is public or random`);
      return { op, address: args[0].toUpperCase(), addressType: t };
    }
    case 'mtu': case 'discover': case 'disconnect': return { op };
    case 'read':
      if (!args[0]) throw new ArgumentError(`session step "${s}": read needs a characteristic UUID or a handle`);
      return { op, target: args[0] };
    case 'write':
      if (!args[0] || !args[1] || !/^([0-9a-f]{2})*$/i.test(args[1])) throw new ArgumentError(`session step "${s}": write <uuid|handle> <hex> [cmd]`);
      return { op, target: args[0], value: args[1].toLowerCase(), withResponse: args[2] !== 'cmd' };
    case 'notify':
      if (!args[0]) throw new ArgumentError(`session step "${s}": notify <uuid> <count>`);
      return { op, target: args[0], count: num(args[1], 'the notification count') };
    case 'wait': return { op, ms: num(args[0], 'the wait (ms)') };
    default: throw new ArgumentError(`session step "${s}": unknown step (scan, connect, mtu, discover, read, write, notify, wait, disconnect)`);
  }
}

/** Render steps back to the one-line form stored in scenario files. */
export function formatSteps(steps: SessionStep[]): string {
  return steps.map(s => {
    switch (s.op) {
      case 'scan': return `scan ${s.ms}${s.active ? '' : ' passive'}`;
      case 'connect': return `connect ${s.address} ${s.addressType}`;
      case 'read': return `read ${s.target}`;
      case 'write': return `write ${s.target} ${s.value}${s.withResponse ? '' : ' cmd'}`;
      case 'notify': return `notify ${s.target} ${s.count}`;
      case 'wait': return `wait ${s.ms}`;
      default: return s.op;
    }
  }).join(' → ');
}

export interface RunSessionOptions {
  transport: HciTransport;
  /** Default: the transport's own clock (simulator, replay), else the system clock. */
  clock?: Clock;
  /** A fixed static random address for the host (LE Set Random Address at init). */
  randomAddress?: string;
  /** Per-operation timeout (ms, default 10 000). */
  timeoutMs?: number;
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise(resolve => clock.setTimeout(resolve, ms));
}

/** Run the steps on a fresh Adapter over `transport`, closing it at the end (also on failure). */
export async function runSession(steps: SessionStep[] | string, options: RunSessionOptions): Promise<SessionResult> {
  const list = typeof steps === 'string' ? parseSteps(steps) : steps;
  const clock = options.clock ?? options.transport.clock ?? systemClock;
  const timeout = options.timeoutMs ?? 10_000;
  const adapter = await Adapter.open({
    transport: options.transport, clock,
    // Bonds in memory: a recorded session must not depend on (or write to) the user's bond directory,
    // whose reading is real I/O that a replay's virtual time does not wait for.
    bonds: false,
    ...(options.randomAddress !== undefined ? { randomAddress: options.randomAddress } : {}),
  });
  const info = adapter.controller;
  const result: SessionResult = {
    controller: { address: info.address ?? '', leAclBuffers: { length: info.acl.length, count: info.acl.count } },
  };
  let conn: Connection | undefined;
  let gatt: GattClient | undefined;
  let tree: GattService[] | undefined;
  const need = (what: string): { conn: Connection; gatt: GattClient } => {
    if (!conn || !gatt) throw new InvalidStateError(`session: "${what}" needs a connection first`);
    return { conn, gatt };
  };
  const characteristic = async (target: string): Promise<GattCharacteristic | number> => {
    if (/^0x[0-9a-f]{1,4}$/i.test(target)) return Number(target);
    const { gatt: g } = need(target);
    tree ??= await g.services({ timeout });
    const want = target.toLowerCase();
    for (const s of tree) {
      for (const c of s.characteristics) {
        if (c.uuid === want || c.uuid.startsWith(`0000${want}-`) || c.uuid.slice(4, 8) === want) return c;
      }
    }
    throw new ArgumentError(`session: no characteristic ${target} in the discovered database`);
  };
  try {
    for (const step of list) {
      switch (step.op) {
        case 'scan': {
          const seen = new Map<string, ScannedDevice>();
          const session = adapter.scan({ active: step.active, timeout: step.ms });
          for await (const ad of session) {
            const key = `${ad.address}/${ad.addressType}`;
            const d: ScannedDevice = {
              address: ad.address, addressType: ad.addressType, connectable: ad.connectable, data: toHex(ad.data),
              ...(ad.name !== undefined ? { name: ad.name } : {}),
              ...(ad.scanResponse ? { scanResponse: toHex(ad.scanResponse) } : {}),
            };
            seen.set(key, { ...seen.get(key), ...d });
          }
          result.scan = [...seen.values()];
          break;
        }
        case 'connect': {
          conn = await adapter.connect({ address: step.address, addressType: step.addressType }, { timeout });
          const c = conn;
          gatt = c.gatt;
          result.connection = { address: c.address, addressType: c.addressType, role: c.role, intervalMs: c.parameters.interval };
          break;
        }
        case 'mtu':
          result.mtu = await need('mtu').gatt.exchangeMtu({ timeout });
          break;
        case 'discover':
          tree = await need('discover').gatt.services({ timeout });
          result.services = tree.map(serviceResult);
          break;
        case 'read': {
          const c = await characteristic(step.target);
          const v = typeof c === 'number' ? await need('read').gatt.readValue(c, { timeout }) : await c.read({ timeout });
          (result.reads ??= []).push({ target: step.target, value: toHex(v) });
          break;
        }
        case 'write': {
          const c = await characteristic(step.target);
          const v = fromHex(step.value);
          if (typeof c === 'number') await need('write').gatt.writeValue(c, v, step.withResponse, { timeout });
          else await c.write(v, { withResponse: step.withResponse, timeout });
          (result.writes ??= []).push({ target: step.target, value: step.value });
          break;
        }
        case 'notify': {
          const c = await characteristic(step.target);
          if (typeof c === 'number') throw new ArgumentError('session: notify needs a characteristic UUID');
          const values: string[] = [];
          if (step.count > 0) {
            for await (const v of c.notifications({ timeout })) {
              values.push(toHex(v));
              if (values.length >= step.count) break;
            }
          }
          (result.notifications ??= []).push({ target: step.target, values });
          break;
        }
        case 'wait':
          await sleep(clock, step.ms);
          break;
        case 'disconnect': {
          const r = await need('disconnect').conn.disconnect();
          result.disconnect = { code: r.code, name: r.name };
          conn = undefined;
          gatt = undefined;
          tree = undefined;
          break;
        }
      }
    }
  } finally {
    await adapter.close();
  }
  return result;
}

function serviceResult(s: GattService): ServiceResult {
  return {
    uuid: s.uuid, primary: s.primary, start: s.start, end: s.end,
    characteristics: s.characteristics.map(c => ({
      uuid: c.uuid, declHandle: c.declHandle, handle: c.handle, properties: c.properties,
      descriptors: c.descriptors.map(d => ({ uuid: d.uuid, handle: d.handle })),
    })),
  };
}
