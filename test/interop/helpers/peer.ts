/**
 * A scriptable raw-HCI test peer on its own emulated controller (a second btvirt client): it
 * advertises (legacy or extended), accepts connections as peripheral, exchanges ACL and disconnects,
 * all written directly as HCI commands with our codecs (encodeCommand / decodeHciPacket / encodeAcl),
 * with none of blewire's host logic (no command channel, scanner or connection manager). It honours
 * Num_HCI_Command_Packets (one command at a time) and the controller's ACL credits, which also keeps
 * clear of btvirt's framing bug (PEERS.md §2).
 */
import { openUnixTransport } from '../../../src/transport/index.js';
import type { HciTransport } from '../../../src/transport/types.js';
import type { HciCommand, HciCommandKind, HciCommandOf } from '../../../src/hci/commands.js';
import { decodeHciPacket, encodeAcl, encodeCommand, type HciPacket } from '../../../src/hci/packets.js';
import { opcodeOfCommand } from '../../../src/hci/commands.js';
import { encodeL2capFrame } from '../../../src/l2cap/frames.js';

type Packet = HciPacket;
interface Waiter { match(p: Packet): boolean; resolve(p: Packet): void; reject(e: Error): void; timer: NodeJS.Timeout }

export class TestPeer {
  private readonly backlog: Packet[] = [];
  private waiters: Waiter[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private aclCredits = 1;
  private readonly aclWaiting: Array<() => void> = [];
  private failure: Error | undefined;
  address = '';

  private constructor(private readonly t: HciTransport, readonly name: string) {
    t.setReceiver({
      packet: bytes => {
        let p: Packet;
        try {
          p = decodeHciPacket(bytes);
        } catch {
          return;
        }
        if (p.type === 'event' && p.kind === 'numberOfCompletedPackets') {
          for (const h of p.handles) this.aclCredits += h.numCompletedPackets;
          while (this.aclCredits > 0 && this.aclWaiting.length > 0) { this.aclCredits--; this.aclWaiting.shift()!(); }
          return;
        }
        const i = this.waiters.findIndex(w => w.match(p));
        if (i >= 0) {
          const w = this.waiters.splice(i, 1)[0]!;
          clearTimeout(w.timer);
          w.resolve(p);
        } else {
          this.backlog.push(p);
          if (this.backlog.length > 10_000) this.backlog.shift();
        }
      },
      closed: e => {
        this.failure = e ?? new Error(`${name}: transport closed`);
        for (const w of this.waiters.splice(0)) { clearTimeout(w.timer); w.reject(this.failure); }
      },
    });
  }

  /** Connect to a btvirt socket (a fresh controller), Reset it and read its address and buffers. */
  static async open(socket: string, name: string): Promise<TestPeer> {
    const peer = new TestPeer(await openUnixTransport(socket), name);
    await peer.cmd({ kind: 'reset' });
    await peer.cmd({ kind: 'setEventMask', eventMask: 0x3dbff807fffbffffn });
    await peer.cmd({ kind: 'leSetEventMask', leEventMask: 0xfffffn });
    const a = await peer.cmd({ kind: 'readBdAddr' });
    peer.address = (a as { bdAddr: string }).bdAddr;
    const b = await peer.cmd({ kind: 'leReadBufferSize' }) as { totalNumLeAclDataPackets: number };
    peer.aclCredits = Math.max(1, b.totalNumLeAclDataPackets);
    return peer;
  }

  /** Wait for the next packet matching `match` (earlier unclaimed ones first). */
  next(match: (p: Packet) => boolean, timeoutMs = 5000): Promise<Packet> {
    const i = this.backlog.findIndex(match);
    if (i >= 0) return Promise.resolve(this.backlog.splice(i, 1)[0]!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        match, resolve, reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter(x => x !== w);
          reject(new Error(`${this.name}: timed out waiting for a packet`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** Send one command (one at a time) and return its decoded return parameters; non-zero status throws. */
  cmd<K extends HciCommandKind>(c: HciCommandOf<K>): Promise<Record<string, unknown>> {
    const run = async () => {
      const opcode = opcodeOfCommand(c.kind as HciCommandKind);
      const answer = this.next(p => p.type === 'event' &&
        ((p.kind === 'commandComplete' && p.commandOpcode === opcode) || (p.kind === 'commandStatus' && p.commandOpcode === opcode)));
      this.t.send(encodeCommand(c as HciCommand));
      const p = await answer;
      if (p.type === 'event' && p.kind === 'commandStatus') {
        if (p.status !== 0) throw new Error(`${this.name}: ${c.kind} status 0x${p.status.toString(16)}`);
        return { status: 0 };
      }
      const ret = (p as { returnParameters: Record<string, unknown> }).returnParameters;
      if (ret['status'] !== 0) throw new Error(`${this.name}: ${c.kind} status 0x${Number(ret['status']).toString(16)}`);
      return ret;
    };
    const r = this.chain.then(run, run);
    this.chain = r.catch(() => undefined);
    return r;
  }

  /** Legacy advertising: ADV_IND (connectable) or ADV_NONCONN_IND, with optional scan response. */
  async advertise(data: Uint8Array, scanResponse: Uint8Array = new Uint8Array(0), connectable = true): Promise<void> {
    await this.cmd({ kind: 'leSetAdvertisingEnable', enable: 0 }).catch(() => undefined);
    await this.cmd({ kind: 'leSetAdvertisingParameters', advertisingIntervalMin: 0x20, advertisingIntervalMax: 0x20,
      advertisingType: connectable ? 0 : 3, ownAddressType: 0, peerAddressType: 0, peerAddress: '00:00:00:00:00:00',
      advertisingChannelMap: 7, advertisingFilterPolicy: 0 });
    await this.cmd({ kind: 'leSetAdvertisingData', advertisingData: data });
    await this.cmd({ kind: 'leSetScanResponseData', scanResponseData: scanResponse });
    await this.cmd({ kind: 'leSetAdvertisingEnable', enable: 1 });
  }

  /** Extended advertising on set 0 (btvirt's BR/EDR+LE controller only). */
  async advertiseExtended(data: Uint8Array, connectable = false): Promise<void> {
    await this.cmd({ kind: 'leSetExtendedAdvertisingParameters', advertisingHandle: 0,
      advertisingEventProperties: connectable ? 0x0001 : 0x0000, primaryAdvertisingIntervalMin: 0x30,
      primaryAdvertisingIntervalMax: 0x30, primaryAdvertisingChannelMap: 7, ownAddressType: 0, peerAddressType: 0,
      peerAddress: '00:00:00:00:00:00', advertisingFilterPolicy: 0, advertisingTxPower: 0x7f, primaryAdvertisingPhy: 1,
      secondaryAdvertisingMaxSkip: 0, secondaryAdvertisingPhy: 1, advertisingSid: 3, scanRequestNotificationEnable: 0 });
    await this.cmd({ kind: 'leSetExtendedAdvertisingData', advertisingHandle: 0, operation: 3, fragmentPreference: 1,
      advertisingData: data });
    await this.cmd({ kind: 'leSetExtendedAdvertisingEnable', enable: 1,
      sets: [{ advertisingHandle: 0, duration: 0, maxExtendedAdvertisingEvents: 0 }] });
  }

  async stopAdvertising(): Promise<void> {
    await this.cmd({ kind: 'leSetAdvertisingEnable', enable: 0 }).catch(() => undefined);
  }

  /** The next LE (Enhanced) Connection Complete on this controller. */
  async connection(timeoutMs = 5000): Promise<{ handle: number; peerAddress: string; role: number }> {
    const p = await this.next(p => p.type === 'event' &&
      (p.kind === 'leConnectionComplete' || p.kind === 'leEnhancedConnectionComplete'), timeoutMs) as unknown as
      { connectionHandle: number; peerAddress: string; role: number; status: number };
    if (p.status !== 0) throw new Error(`${this.name}: connection failed 0x${p.status.toString(16)}`);
    return { handle: p.connectionHandle, peerAddress: p.peerAddress, role: p.role };
  }

  /** Send an L2CAP B-frame on `cid`, fragmented to `mtu` bytes per ACL packet, honouring ACL credits. */
  async sendL2cap(handle: number, cid: number, payload: Uint8Array, mtu = 27): Promise<void> {
    const frame = encodeL2capFrame(cid, payload);
    for (let o = 0; o < frame.length; o += mtu) {
      if (this.aclCredits > 0) this.aclCredits--;
      else await new Promise<void>(r => this.aclWaiting.push(r));
      this.t.send(encodeAcl({ handle, pb: o === 0 ? 0 : 1, data: frame.subarray(o, Math.min(frame.length, o + mtu)) }));
    }
  }

  /** The next whole L2CAP PDU (reassembled) on `cid`: its payload. */
  async receiveL2cap(cid: number, timeoutMs = 5000): Promise<Uint8Array> {
    let buf: Uint8Array | undefined;
    let got = 0;
    for (;;) {
      const p = await this.next(p => p.type === 'acl', timeoutMs) as unknown as { pb: number; data: Uint8Array };
      if (p.pb !== 1) {
        const len = p.data[0]! | (p.data[1]! << 8);
        buf = new Uint8Array(4 + len);
        got = 0;
      }
      if (!buf) continue;
      buf.set(p.data, got);
      got += p.data.length;
      if (got >= buf.length) {
        const c = buf[2]! | (buf[3]! << 8);
        if (c === cid) return buf.subarray(4);
        buf = undefined;
      }
    }
  }

  async disconnect(handle: number, reason = 0x13): Promise<void> {
    await this.cmd({ kind: 'disconnect', connectionHandle: handle, reason });
  }

  /** The next Disconnection Complete: handle and reason. */
  async disconnection(timeoutMs = 5000): Promise<{ handle: number; reason: number }> {
    const p = await this.next(p => p.type === 'event' && p.kind === 'disconnectionComplete', timeoutMs) as unknown as
      { connectionHandle: number; reason: number };
    return { handle: p.connectionHandle, reason: p.reason };
  }

  async close(): Promise<void> {
    await this.t.close();
  }
}
