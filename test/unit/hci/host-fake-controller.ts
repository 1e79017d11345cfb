/**
 * A scripted fake controller for host tests, on the far side of an async memoryTransportPair: it
 * decodes every packet the host sends with our codecs, answers commands (defaults for init,
 * overridable per command kind), records the wire, and lets a test inject events and ACL. Every packet
 * is delivered on its own microtask, as a real transport would, never re-entrantly inside send().
 * The object is also the host-side transport (it forwards to the pair's host side), so tests hand it
 * straight to HciHost / Adapter.open.
 */
import { toHex } from '../../../src/bytes/hex.js';
import type { HciCommand, HciCommandKind, ReturnParameters } from '../../../src/hci/commands.js';
import { opcodeOfCommand } from '../../../src/hci/commands.js';
import type { HciEvent } from '../../../src/hci/events.js';
import { decodeHciPacket, encodeAcl, encodeEvent } from '../../../src/hci/packets.js';
import type { HciTransport, TransportReceiver } from '../../../src/transport/types.js';
import { memoryTransportPair } from '../../../src/transport/memory.js';

export type Answer =
  | { complete: Record<string, unknown> }   // Command Complete with these return fields (status 0 default)
  | { status: number }                      // Command Status with this status
  | { events: HciEvent[] }                  // arbitrary events
  | 'silent';                               // no answer at all (timeouts)

export type Script = (cmd: HciCommand & { type: 'command' }) => Answer | undefined;

/** 64-byte supported-commands mask with the given [octet, bit] pairs set. */
export function commandMask(bits: ReadonlyArray<readonly [number, number]>): Uint8Array {
  const m = new Uint8Array(64);
  for (const [o, b] of bits) m[o]! |= 1 << b;
  return m;
}

export class FakeController implements HciTransport {
  readonly description = 'fake controller';
  private readonly hostSide: HciTransport;
  private readonly ctlSide: HciTransport;
  /** Every packet the host sent, hex. */
  readonly wire: string[] = [];
  /** Decoded commands the host sent. */
  readonly commands: Array<HciCommand & { type: 'command' }> = [];
  /** ACL packets the host sent: handle, pb, data hex. */
  readonly aclOut: Array<{ handle: number; pb: number; data: string }> = [];
  /** Per-kind overrides, consulted before `defaults`. */
  readonly scripts = new Map<string, Script>();
  closed = false;
  ncmd = 1;
  /** Whether to answer ACL with Number Of Completed Packets at once. */
  autoCompleteAcl = true;
  supportedCommands = commandMask([]);
  leFeatures = 0n;

  constructor() {
    [this.hostSide, this.ctlSide] = memoryTransportPair({ async: true });
    this.ctlSide.setReceiver({ packet: p => this.handle(p), closed: () => { this.closed = true; } });
  }

  setReceiver(r: TransportReceiver): void {
    this.hostSide.setReceiver(r);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.hostSide.close();
  }

  /** Answer command `kind` with `script` from now on. */
  on(kind: HciCommandKind, script: Script | Answer): void {
    this.scripts.set(kind, typeof script === 'function' ? script : () => script);
  }

  private waiters: Array<{ kind: string; resolve(c: HciCommand & { type: 'command' }): void }> = [];

  /** Resolves when the host sends a command of `kind` (or at once if it already did, unconsumed). */
  sent(kind: HciCommandKind): Promise<HciCommand & { type: 'command' }> {
    const seen = this.commands.filter(c => c.kind === kind).length;
    const consumed = this.consumed.get(kind) ?? 0;
    if (seen > consumed) {
      this.consumed.set(kind, consumed + 1);
      return Promise.resolve(this.commands.filter(c => c.kind === kind)[consumed]!);
    }
    return new Promise(resolve => this.waiters.push({ kind, resolve }));
  }
  private readonly consumed = new Map<string, number>();

  kinds(): string[] {
    return this.commands.map(c => c.kind);
  }

  /** The host's send(): recorded at once, handled when the pair delivers it. */
  send(packet: Uint8Array): void {
    if (this.closed) throw new Error('fake controller: send after close');
    this.wire.push(toHex(packet));
    this.hostSide.send(packet);
  }

  private handle(packet: Uint8Array): void {
    const p = decodeHciPacket(packet);
    if (p.type === 'acl') {
      this.aclOut.push({ handle: p.handle, pb: p.pb, data: toHex(p.data) });
      if (this.autoCompleteAcl) {
        this.inject({ kind: 'numberOfCompletedPackets', handles: [{ connectionHandle: p.handle, numCompletedPackets: 1 }] });
      }
      return;
    }
    if (p.type !== 'command') throw new Error(`fake controller: unexpected ${p.type}`);
    this.commands.push(p);
    const wi = this.waiters.findIndex(w => w.kind === p.kind);
    if (wi >= 0) {
      this.consumed.set(p.kind, (this.consumed.get(p.kind) ?? 0) + 1);
      this.waiters.splice(wi, 1)[0]!.resolve(p);
    }
    const script = this.scripts.get(p.kind);
    const answer = script?.(p) ?? this.defaults(p);
    if (answer === undefined || answer === 'silent') return;
    try {
      this.answer(p, answer);
    } catch (e) {
      // The fake itself could not build its answer (a default missing for a command the host sends):
      // a bug of the test, not of the host. Recorded, never thrown into the transport, where it would
      // reach the process and be blamed on the product.
      this.harnessErrors.push(`${p.kind}: ${(e as Error).message}`);
    }
  }

  /** Answers the fake could not build (each one is a bug of the test's controller, not of the host). */
  readonly harnessErrors: string[] = [];

  private answer(p: HciCommand & { type: 'command' }, answer: Exclude<Answer, 'silent'>): void {
    const opcode = p.kind === 'vendor' || p.kind === 'unknown' ? p.opcode : opcodeOfCommand(p.kind);
    if ('status' in answer) {
      this.inject({ kind: 'commandStatus', status: answer.status, numHciCommandPackets: this.ncmd, commandOpcode: opcode });
    } else if ('complete' in answer) {
      const ret = { kind: p.kind, status: 0, ...answer.complete } as ReturnParameters;
      this.inject({ kind: 'commandComplete', numHciCommandPackets: this.ncmd, commandOpcode: opcode, returnParameters: ret });
    } else {
      for (const e of answer.events) this.inject(e);
    }
  }

  private defaults(p: HciCommand): Answer | undefined {
    // Like btvirt's LE-only controller: extended commands the mask does not list are unknown (0x01).
    if ((p.kind.startsWith('leSetExtended') || p.kind === 'leExtendedCreateConnection') && !this.supportedCommands[37]) {
      return { status: 0x01 };
    }
    switch (p.kind) {
      case 'readLocalVersionInformation':
        return { complete: { hciVersion: 9, hciSubversion: 1, lmpVersion: 9, manufacturer: 0x05f1, lmpSubversion: 1 } };
      case 'readLocalSupportedCommands': return { complete: { supportedCommands: this.supportedCommands } };
      case 'readLocalSupportedFeatures': return { complete: { lmpFeatures: 0n } };
      case 'readBdAddr': return { complete: { bdAddr: '00:AA:01:00:00:42' } };
      case 'leReadLocalSupportedFeatures': return { complete: { leFeatures: this.leFeatures } };
      case 'leReadBufferSizeV2': return { status: 0x01 };
      case 'leReadBufferSize': return { complete: { leAclDataPacketLength: 27, totalNumLeAclDataPackets: 2 } };
      case 'readBufferSize':
        return { complete: { aclDataPacketLength: 192, synchronousDataPacketLength: 0, totalNumAclDataPackets: 1, totalNumSynchronousDataPackets: 0 } };
      case 'leReadFilterAcceptListSize': return { complete: { filterAcceptListSize: 8 } };
      // Optional reads of the bring-up, sent when the supported-commands mask or the LE features list
      // them (src/hci/controller.ts readControllerInfo); values a 5.x controller reports.
      case 'leReadResolvingListSize': return { complete: { resolvingListSize: 8 } };
      case 'leReadMaximumDataLength': // Vol 4, Part E, 7.8.46; maxima of Vol 6, Part B, 4.5.10 (Coded PHY time)
        return { complete: { supportedMaxTxOctets: 251, supportedMaxTxTime: 17040, supportedMaxRxOctets: 251, supportedMaxRxTime: 17040 } };
      case 'leReadSuggestedDefaultDataLength': return { complete: { suggestedMaxTxOctets: 27, suggestedMaxTxTime: 328 } };
      case 'leReadNumberOfSupportedAdvertisingSets': return { complete: { numSupportedAdvertisingSets: 4 } };
      case 'leReadMaximumAdvertisingDataLength': return { complete: { maxAdvertisingDataLength: 1650 } };
      // After an Encryption Change the link reads the key size (Vol 4, Part E, 7.5.7): a full-size LE key.
      case 'readEncryptionKeySize': return { complete: { connectionHandle: p.connectionHandle, keySize: 16 } };
      case 'leCreateConnection': case 'leExtendedCreateConnection': case 'disconnect': case 'leConnectionUpdate':
      case 'leReadRemoteFeatures': case 'leSetPhy': case 'leEnableEncryption':
        return { status: 0 };
      case 'vendor': case 'unknown': return { status: 0x01 };
      default:
        // Echo the handle for commands whose return parameters carry it (e.g. 7.8.31 replies).
        return { complete: 'connectionHandle' in p ? { connectionHandle: (p as { connectionHandle: number }).connectionHandle } : {} };
    }
  }

  /** Deliver an event to the host on a microtask. */
  inject(evt: HciEvent): void {
    this.deliver(encodeEvent(evt));
  }

  /** Deliver an ACL packet from the peer. */
  injectAcl(handle: number, pb: number, data: Uint8Array): void {
    this.deliver(encodeAcl({ handle, pb, data }));
  }

  /** Deliver raw bytes (hostile input). */
  deliver(packet: Uint8Array): void {
    if (!this.closed) this.ctlSide.send(packet);
  }

  /** The transport dies (EOF from the controller side). */
  eof(): void {
    this.closed = true;
    void this.ctlSide.close();
  }
}
