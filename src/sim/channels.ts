/**
 * Credit-based channels in a virtual peer (Core Vol 3, Part A, 4.22–4.28): the peer listens on or
 * opens PSMs with a behaviour (echo, sink, source) and, for fault injection, breaks the mode's rules
 * on purpose (never returns credits, overflows our credits, sends an SDU above our MTU, disconnects
 * in the middle of an SDU), so every path of our channel engine can be driven deterministically.
 *
 * Design overview
 * - The peer runs the same channel engine as the host (l2cap/coc.ts) over its side of the simulated
 *   link: K-frames and signalling leave through `PeerLinkApi.send` (its controller's buffers, so a
 *   source is paced by the link and by our credits), and arrive through `frame()` / `signalling()`.
 *   The behaviours and the faults are written here, against the channel's public surface or as raw
 *   frames, never by changing the engine.
 * - Its signalling requests carry identifiers 1–255 and are matched to our responses; they have no RTX
 *   timer of their own (the link's end rejects them): a simulated peer that waits forever is a fault we
 *   choose, not one it makes.
 * - Timers are simulator events on the shared virtual clock, cancelled when the link closes.
 * - Bounds: pending requests ≤ 255 (identifiers); per channel the engine's (see coc.ts); an echo holds
 *   at most one SDU (it reads the next only once the previous one is sent back).
 */
import type { Clock } from '../clock.js';
import { DisconnectedError } from '../errors.js';
import { CocEngine, CocRegistry, type CreditChannel } from '../l2cap/coc.js';
import { encodeSignalling, type AnySignallingCommand } from '../l2cap/signalling.js';
import { log } from '../log.js';
import type { SimEvent } from './clock.js';
import type { SimChannel } from './types.js';

const CID_SIGNALLING = 0x0005;

/** What the channels need of the peer's link. */
export interface PeerChannelLink {
  readonly handle: number;
  readonly clock: Clock;
  send(cid: number, payload: Uint8Array): Promise<boolean>;
  schedule(us: number, fn: () => void): SimEvent;
}

/** Per-peer counters of its channels (all links). */
export interface PeerChannelStats {
  opened: number;
  sdusReceived: number;
  bytesReceived: number;
  sdusSent: number;
  bytesSent: number;
  /** Opens of ours refused (ChannelRefusedError on our side) or theirs that failed. */
  failures: number;
}

export function emptyChannelStats(): PeerChannelStats {
  return { opened: 0, sdusReceived: 0, bytesReceived: 0, sdusSent: 0, bytesSent: 0, failures: 0 };
}

/** The credit-based channels of one virtual peer on one link. */
export class PeerChannels {
  readonly engine: CocEngine;
  /** Channels this peer has open on this link (the latest last). */
  readonly channels: CreditChannel[] = [];
  private readonly pending = new Map<number, { resolve(c: AnySignallingCommand): void; reject(e: Error): void }>();
  private nextId = 1;
  private readonly timers: SimEvent[] = [];
  private ended = false;
  private readonly specByPsm = new Map<number, SimChannel>();

  constructor(private readonly link: PeerChannelLink, specs: readonly SimChannel[], readonly stats: PeerChannelStats) {
    const registry = new CocRegistry(link.clock);
    const withholding = new Set<number>();
    this.engine = new CocEngine({
      handle: link.handle,
      clock: link.clock,
      sendFrame: (cid, payload) => link.send(cid, payload).then(ok => {
        if (!ok) throw new DisconnectedError('sim peer channel send');
      }),
      request: (cmd, onAnswer) => this.request(cmd as AnySignallingCommand, onAnswer),
      reply: cmd => this.sendSignalling(cmd),
      indicate: cmd => {
        // A peer that never returns credits drops its Flow Control Credit Indications.
        if (cmd.kind === 'flowControlCreditInd' && withholding.has(cmd.cid)) return;
        this.sendSignalling(cmd);
      },
      security: () => ({ encrypted: false, keySize: 0, authenticated: false }),
    }, registry);
    for (const spec of specs) {
      this.specByPsm.set(spec.psm, spec);
      const params = {
        ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
        ...(spec.mps !== undefined ? { mps: spec.mps } : {}),
        ...(spec.initialCredits !== undefined ? { initialCredits: spec.initialCredits } : {}),
      };
      if ((spec.role ?? 'listen') === 'listen') {
        const listener = registry.listen(spec.psm, { ...params, backlog: 4 });
        const accept = (): void => {
          listener.accept().then(ch => {
            if (!ch) return;
            if (spec.faults?.withholdCredits) withholding.add(ch.cid);
            this.run(ch, spec);
            accept();
          }, () => undefined);
        };
        accept();
      } else {
        this.timers.push(link.schedule(Math.round((spec.openAfterMs ?? 0) * 1000), () => {
          this.engine.open(spec.psm, params).then(ch => {
            if (spec.faults?.withholdCredits) withholding.add(ch.cid);
            this.run(ch, spec);
          }, e => {
            stats.failures++;
            log.sim('peer channel open on PSM 0x%s: %s', spec.psm.toString(16), (e as Error).message);
          });
        }));
      }
    }
  }

  /** A K-frame on a dynamic CID from the central. */
  frame(cid: number, payload: Uint8Array): void {
    if (!this.ended) this.engine.frame(cid, payload);
  }

  /** An LE signalling command from the central; false when it is not about channels. */
  signalling(cmd: AnySignallingCommand): boolean {
    if (this.ended) return true;
    switch (cmd.kind) {
      case 'leCreditBasedConnectionRsp':
      case 'creditBasedConnectionRsp':
      case 'creditBasedReconfigureRsp':
      case 'disconnectionRsp': {
        const p = this.pending.get(cmd.identifier);
        if (p) {
          this.pending.delete(cmd.identifier);
          p.resolve(cmd);
        }
        return true;
      }
      case 'commandRejectRsp': {
        const p = this.pending.get(cmd.identifier);
        if (!p) return false;
        this.pending.delete(cmd.identifier);
        p.resolve(cmd);
        return true;
      }
      default:
        if (cmd.identifier === 0) return false;
        return this.engine.signalling(cmd);
    }
  }

  /** The link is gone. */
  closed(reason: number): void {
    if (this.ended) return;
    this.ended = true;
    for (const t of this.timers) t.cancel();
    const err = new DisconnectedError('sim peer link', reason);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.engine.linkClosed(err);
  }

  private request(cmd: AnySignallingCommand, onAnswer?: (rsp: AnySignallingCommand) => void): Promise<AnySignallingCommand> {
    if (this.ended) return Promise.reject(new DisconnectedError('sim peer request'));
    let id = this.nextId;
    for (let i = 0; i < 255 && this.pending.has(id); i++) id = id === 255 ? 1 : id + 1;
    if (this.pending.has(id)) return Promise.reject(new DisconnectedError('sim peer: 255 requests pending'));
    this.nextId = id === 255 ? 1 : id + 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: c => { onAnswer?.(c); resolve(c); }, reject });
      this.sendSignalling({ ...cmd, identifier: id } as AnySignallingCommand);
    });
  }

  private sendSignalling(cmd: AnySignallingCommand): void {
    void this.link.send(CID_SIGNALLING, encodeSignalling(cmd));
  }

  /** Raw K-frame payload on a channel, bypassing the engine (fault injection). */
  private raw(ch: CreditChannel, payload: Uint8Array): void {
    void this.link.send(ch.peerCid, payload);
  }

  private run(ch: CreditChannel, spec: SimChannel): void {
    this.stats.opened++;
    this.channels.push(ch);
    const f = spec.faults ?? {};
    if (f.overflowCredits) {
      // Credits that push our count past 65535 (Vol 3, Part A, 10.1): we must disconnect.
      this.sendSignalling({ kind: 'flowControlCreditInd', identifier: 1, cid: ch.cid, credits: 0xffff });
    }
    if (f.oversizedSdu) {
      // An SDU Length above the MTU we announced (Vol 3, Part A, 3.4.3): we must disconnect.
      const len = Math.min(0xffff, ch.mtu + 1);
      this.raw(ch, Uint8Array.of(len & 0xff, len >> 8, 0x00));
    }
    if (f.disconnectMidSdu) {
      // The first K-frame of a two-frame SDU, then Disconnection Request (Vol 3, Part A, 4.6).
      const total = ch.peerMps; // needs a second frame: the first carries peerMps - 2 octets
      const first = new Uint8Array(ch.peerMps);
      first[0] = total & 0xff;
      first[1] = total >> 8;
      this.raw(ch, first);
      void ch.close();
      return;
    }
    const behaviour = spec.behaviour ?? 'echo';
    if (behaviour === 'source') {
      void this.source(ch, spec.source?.sdus ?? 10, spec.source?.size ?? ch.mtu);
    } else {
      void this.consume(ch, behaviour === 'echo');
    }
  }

  private async consume(ch: CreditChannel, echo: boolean): Promise<void> {
    try {
      for await (const sdu of ch) {
        this.stats.sdusReceived++;
        this.stats.bytesReceived += sdu.length;
        if (echo && sdu.length <= ch.mtu) {
          await ch.send(sdu);
          this.stats.sdusSent++;
          this.stats.bytesSent += sdu.length;
        }
      }
    } catch (e) {
      log.sim('peer channel 0x%s: %s', ch.cid.toString(16), (e as Error).message);
    }
  }

  private async source(ch: CreditChannel, sdus: number, size: number): Promise<void> {
    const n = Math.min(size, ch.mtu);
    try {
      for (let i = 0; i < sdus; i++) {
        const sdu = new Uint8Array(n);
        for (let k = 0; k < n; k++) sdu[k] = (i + k) & 0xff;
        await ch.send(sdu);
        this.stats.sdusSent++;
        this.stats.bytesSent += n;
      }
    } catch (e) {
      log.sim('peer channel 0x%s source: %s', ch.cid.toString(16), (e as Error).message);
    }
  }
}
