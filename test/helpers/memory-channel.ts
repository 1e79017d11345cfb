import { DisconnectedError } from '../../src/errors.js';
import type { ChannelReceiver, FixedChannel } from '../../src/l2cap/channel.js';
import { decodeAtt, describeAtt, encodeAtt, type AttPdu } from '../../src/att/pdus.js';

/**
 * Two FixedChannels joined back to back, as one LE link's ATT channel seen from each end. Delivery
 * is asynchronous (a microtask per SDU, in order), like a real link, so no handler re-enters another.
 * `credits` models ACL buffer back-pressure: each send takes one, and its promise resolves only when
 * a credit is available (grant more with `grant()`); unlimited by default.
 */
export interface MemoryEnd extends FixedChannel {
  /** Every SDU this end sent, in order. */
  readonly sent: Uint8Array[];
}

export interface ChannelPair {
  central: MemoryEnd;
  peripheral: MemoryEnd;
  /** Drop the link: both receivers get closed(), pending sends reject. */
  disconnect(reason?: number): void;
  /** Give the central's sender n more ACL credits (only with `credits` set). */
  grant(n: number): void;
  readonly connected: boolean;
}

export function channelPair(options: { credits?: number; handle?: number } = {}): ChannelPair {
  let connected = true;
  let credits = options.credits ?? Infinity;
  const waiting: Array<{ go: () => void; fail: (e: Error) => void }> = [];
  const receivers: Array<ChannelReceiver | undefined> = [undefined, undefined];
  const ends: MemoryEnd[] = [];

  const deliver = (to: 0 | 1, sdu: Uint8Array): void => {
    queueMicrotask(() => {
      if (connected) receivers[to]?.data(sdu);
    });
  };

  for (const side of [0, 1] as const) {
    const sent: Uint8Array[] = [];
    const end: MemoryEnd = {
      handle: options.handle ?? 0x0040,
      cid: 0x0004,
      mtu: 0xffff,
      sent,
      close: () => { receivers[side] = undefined; },
      setReceiver: r => { receivers[side] = r; },
      send(sdu: Uint8Array): Promise<void> {
        if (!connected) return Promise.reject(new DisconnectedError('send'));
        const copy = Uint8Array.from(sdu);
        if (side === 0 && credits !== Infinity) {
          return new Promise<void>((resolve, reject) => {
            const go = (): void => {
              credits--;
              sent.push(copy);
              deliver(1, copy);
              resolve();
            };
            if (credits > 0 && waiting.length === 0) go();
            else waiting.push({ go, fail: reject });
          });
        }
        sent.push(copy);
        deliver(side === 0 ? 1 : 0, copy);
        return Promise.resolve();
      },
    };
    ends.push(end);
  }

  return {
    central: ends[0]!,
    peripheral: ends[1]!,
    get connected() { return connected; },
    disconnect(reason = 0x13) {
      if (!connected) return;
      connected = false;
      for (const w of waiting.splice(0)) w.fail(new DisconnectedError('send', reason));
      for (const r of receivers) r?.closed(new DisconnectedError('link', reason, 'Remote User Terminated Connection'));
    },
    grant(n: number) {
      credits += n;
      while (credits > 0 && waiting.length > 0) waiting.shift()!.go();
    },
  };
}

/** Decoded view of what one end sent (for assertions on the wire). */
export function decoded(end: MemoryEnd): AttPdu[] {
  return end.sent.map(b => decodeAtt(b) as AttPdu);
}
export function kinds(end: MemoryEnd): string[] {
  return end.sent.map(b => decodeAtt(b).kind);
}
export function described(end: MemoryEnd): string[] {
  return end.sent.map(b => describeAtt(decodeAtt(b)));
}

/**
 * The peripheral end driven by a test: every PDU the central sends is queued here; `next()` awaits
 * the next one (no sleeps: the test awaits exactly what it expects), `send()` answers.
 */
export class ScriptedPeer {
  readonly received: Array<AttPdu | { kind: 'unknown' }> = [];
  private readonly inbox: Uint8Array[] = [];
  private waiter: ((b: Uint8Array) => void) | undefined;
  closedWith: Error | undefined;

  constructor(readonly end: MemoryEnd) {
    end.setReceiver({
      data: sdu => {
        this.received.push(decodeAtt(sdu) as AttPdu);
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = undefined;
          w(sdu);
        } else this.inbox.push(sdu);
      },
      closed: e => { this.closedWith = e; },
    });
  }

  /** The next PDU the central sends, decoded. */
  async next(): Promise<AttPdu> {
    const b = this.inbox.shift() ?? await new Promise<Uint8Array>(r => { this.waiter = r; });
    return decodeAtt(b) as AttPdu;
  }

  /** The next PDU's raw bytes. */
  async nextRaw(): Promise<Uint8Array> {
    return this.inbox.shift() ?? new Promise<Uint8Array>(r => { this.waiter = r; });
  }

  send(pdu: AttPdu): void {
    void this.end.send(encodeAtt(pdu));
  }

  sendRaw(bytes: Uint8Array): void {
    void this.end.send(bytes);
  }

  /** PDUs received but not yet taken with next(). */
  get unread(): number {
    return this.inbox.length;
  }
}
