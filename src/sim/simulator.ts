/**
 * The simulator: a scenario brought to life. One SimClock (virtual time), one SimController, the
 * scenario's virtual peripherals, and a SimTransport the host opens like any controller. Fault
 * injection sits on the H4 boundary (packets dropped, corrupted or delayed in either direction) and
 * on the controller and links (command errors, silence, supervision timeouts, peer disconnects).
 *
 *   const sim = createSimulator('demo');
 *   const adapter = await Adapter.open({ transport: sim.transport });  // the transport carries sim.clock
 *   …
 *   sim.now();  // virtual ms
 *
 * The simulator uses the codecs and the GATT server, nothing of the host (src/api, src/gap, …).
 */
import { decodeHciPacket } from '../hci/packets.js';
import { TransportError, ArgumentError } from '../errors.js';
import { ReceiverSlot } from '../transport/receiver-slot.js';
import { H4, type HciTransport, type TransportReceiver } from '../transport/types.js';
import { SimClock } from './clock.js';
import { SimController } from './controller.js';
import type { SimAir } from './air.js';
import type { SimLink } from './link.js';
import { VirtualPeripheral } from './peripheral.js';
import { scenarioNamed, SCENARIOS } from './scenarios.js';
import type { Scenario } from './types.js';
import { normAddress, Rng } from './util.js';

export interface SimulatorOptions {
  /** Virtual ms per wall-clock ms (default Infinity: as fast as possible; an air has its own). */
  speed?: number;
  /**
   * Share the air (and the clock) with other simulators: their hosts hear and connect to each
   * other's advertising (src/sim/air.ts). A controller with no address in the scenario gets one of its own.
   */
  air?: SimAir;
}

/** A packet-level fault on the H4 boundary between host and controller. */
export interface PacketFault {
  direction: 'toController' | 'toHost';
  type?: 'command' | 'event' | 'acl';
  /** Command or event kind (table name, e.g. 'leSetScanEnable', 'numberOfCompletedPackets'). */
  kind?: string;
  /** ATT opcode in an ACL packet that starts an L2CAP PDU on the ATT channel. */
  attOpcode?: number;
  /** Only the n-th matching packet (1-based); default the first `count`. */
  nth?: number;
  /** How many matching packets to affect (default 1; Infinity for all). */
  count?: number;
  action: 'drop' | { corrupt: { offset: number; xor?: number } } | { delayMs: number };
}

interface ActiveFault { fault: PacketFault; seen: number; applied: number }

export class SimTransport implements HciTransport {
  readonly description: string;
  private readonly slot = new ReceiverSlot();
  private closedFlag = false;

  constructor(private readonly sim: Simulator) {
    this.description = `sim:${sim.scenario.name ?? 'custom'} (simulated controller)`;
  }

  get clock(): SimClock {
    return this.sim.clock;
  }

  send(packet: Uint8Array): void {
    if (this.closedFlag) throw new TransportError(`${this.description}: cannot send, the transport is closed`, 'ETRANSPORT_CLOSED');
    this.sim.fromHost(packet);
  }

  setReceiver(receiver: TransportReceiver): void {
    this.slot.set(receiver);
  }

  /** @internal */
  deliver(packet: Uint8Array): void {
    this.slot.packet(packet);
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.sim.stop();
    this.slot.close();
  }
}

export class Simulator {
  readonly clock: SimClock;
  readonly controller: SimController;
  readonly peripherals: VirtualPeripheral[];
  readonly transport: SimTransport;
  readonly rng: Rng;
  private readonly faults: ActiveFault[] = [];

  private readonly air: SimAir | undefined;

  constructor(readonly scenario: Scenario, options: SimulatorOptions = {}) {
    this.air = options.air;
    this.clock = options.air?.clock ?? new SimClock({ ...(options.speed !== undefined ? { speed: options.speed } : {}) });
    this.rng = new Rng(scenario.seed ?? 1);
    this.peripherals = scenario.peripherals.map(p => new VirtualPeripheral(p));
    this.transport = new SimTransport(this);
    const controllerOptions = options.air && scenario.controller?.address === undefined
      ? { ...scenario.controller, address: options.air.allocateAddress() } : scenario.controller ?? {};
    this.controller = new SimController(controllerOptions, this.clock, this.rng, this.peripherals,
      p => this.toHost(p));
    if (options.air) {
      this.controller.air = options.air;
      options.air.join(this.controller);
    }
  }

  /** Virtual ms since the simulation started. */
  now(): number {
    return this.clock.now();
  }

  /** A peripheral by name or address. */
  peripheral(key: string): VirtualPeripheral {
    const up = key.toUpperCase();
    const p = this.peripherals.find(x => x.name === key || x.address === up || x.identityAddress === up);
    if (!p) throw new ArgumentError(`sim: no peripheral ${JSON.stringify(key)}`);
    return p;
  }

  /** The live link to a peripheral, if connected. */
  linkTo(key: string): SimLink | undefined {
    const p = this.peripheral(key);
    for (const link of this.controller.links.values()) if (link.peerAddress === p.address && link.peerAddressType === p.addressType) return link;
    return undefined;
  }

  // ---- fault injection ------------------------------------------------------------------------------

  /** Drop, corrupt or delay matching packets on the H4 boundary. Returns a function that removes it. */
  inject(fault: PacketFault): () => void {
    const f: ActiveFault = { fault, seen: 0, applied: 0 };
    this.faults.push(f);
    return () => {
      const i = this.faults.indexOf(f);
      if (i >= 0) this.faults.splice(i, 1);
    };
  }

  /** Answer the next `times` commands of `kind` with `status`, or not at all ('silent'). */
  failCommand(kind: string, result: number | 'silent', times = 1): void {
    this.controller.commandFaults.set(kind, { result, times });
  }

  /** The peripheral terminates its link (reason default 0x13 Remote User Terminated Connection). */
  disconnect(key: string, reason = 0x13): void {
    this.linkTo(key)?.terminate(reason, reason);
  }

  /** The radio loses the peripheral: the link ends by supervision timeout (0x08). */
  loseLink(key: string): void {
    this.linkTo(key)?.silence();
  }

  /** The controller reports a Hardware Error and loses its state. */
  hardwareError(code = 0x01): void {
    this.controller.hardwareError(code);
  }

  /** Close the transport from the controller's side (the host sees the transport end). */
  unplug(): void {
    this.stop();
    (this.transport as unknown as { slot: ReceiverSlot }).slot.close(new TransportError('sim: the controller went away', 'ETRANSPORT_EOF'));
  }

  // ---- packet paths ---------------------------------------------------------------------------------

  /** @internal From the host (the transport's send). */
  fromHost(packet: Uint8Array): void {
    const p = this.applyFaults('toController', packet, q => this.controller.receive(q));
    if (p) this.controller.receive(p);
  }

  private toHost(packet: Uint8Array): void {
    const p = this.applyFaults('toHost', packet, q => this.transport.deliver(q));
    if (p) this.transport.deliver(p);
  }

  /** Returns the packet to pass on now, or undefined when a fault took it (dropped or delayed). */
  private applyFaults(direction: PacketFault['direction'], packet: Uint8Array, later: (p: Uint8Array) => void): Uint8Array | undefined {
    if (this.faults.length === 0) return packet;
    for (const f of this.faults) {
      const rule = f.fault;
      if (rule.direction !== direction || !matches(rule, packet)) continue;
      f.seen++;
      const limit = rule.count ?? 1;
      if (rule.nth !== undefined ? f.seen !== rule.nth : f.applied >= limit) continue;
      f.applied++;
      const a = rule.action;
      if (a === 'drop') return undefined;
      if ('corrupt' in a) {
        const copy = Uint8Array.from(packet);
        const i = a.corrupt.offset < 0 ? copy.length + a.corrupt.offset : a.corrupt.offset;
        if (i >= 0 && i < copy.length) copy[i] = copy[i]! ^ (a.corrupt.xor ?? 0xff);
        return copy;
      }
      this.clock.schedule(Math.round(a.delayMs * 1000), () => later(packet));
      return undefined;
    }
    return packet;
  }

  /** @internal Stop everything (the transport closed). */
  stop(): void {
    this.controller.shutdown();
    if (this.air) this.air.leave(this.controller);
    else this.clock.stop();
  }

  /** Counters for tests and benchmarks. */
  get stats() {
    let activeEvents = 0;
    let elapsedEvents = 0;
    for (const l of this.controller.links.values()) {
      activeEvents += l.stats.activeEvents;
      elapsedEvents += l.eventsElapsed();
    }
    return { ...this.controller.stats, activeEvents, elapsedEvents, steps: this.clock.steps, virtualMs: this.now() };
  }
}

function matches(rule: PacketFault, packet: Uint8Array): boolean {
  const type = packet[0] === H4.command ? 'command' : packet[0] === H4.event ? 'event' : packet[0] === H4.acl ? 'acl' : undefined;
  if (rule.type !== undefined && rule.type !== type) return false;
  if (rule.kind !== undefined) {
    if (type !== 'command' && type !== 'event') return false;
    try {
      const d = decodeHciPacket(packet) as { kind?: string };
      if (d.kind !== rule.kind) return false;
    } catch {
      return false;
    }
  }
  if (rule.attOpcode !== undefined) {
    // ACL: 1 indicator + 4 header, PB must be a start (not 0b01); L2CAP length 2, CID 2, then ATT.
    if (type !== 'acl' || packet.length < 10) return false;
    const pb = (packet[2]! >> 4) & 0b11;
    const cid = packet[7]! | (packet[8]! << 8);
    if (pb === 0b01 || cid !== 0x0004 || packet[9] !== rule.attOpcode) return false;
  }
  return true;
}

/** A simulator for a scenario object or a built-in scenario name ('demo', 'empty', 'large'). */
export function createSimulator(scenario: Scenario | string = 'demo', options: SimulatorOptions = {}): Simulator {
  if (typeof scenario === 'string') {
    const s = scenarioNamed(scenario);
    if (!s) throw new TransportError(`sim: unknown scenario ${JSON.stringify(scenario)} (built-in: ${Object.keys(SCENARIOS).join(', ')})`, 'ETRANSPORT_SPEC');
    return new Simulator(s, options);
  }
  for (const p of scenario.peripherals) normAddress(p.address);
  return new Simulator(scenario, options);
}
