/**
 * Smoke test of the BlueZ guest bridge with hand-built HCI bytes (no blewire code involved, so it proves the
 * harness on its own): the host talks H4 over the bridged unix socket to a btvirt controller in the guest,
 * scans BlueZ's example advertisement, connects, and does ATT over L2CAP CID 4 against bluetoothd's GATT
 * server. BlueZ as a peripheral also acts as a GATT client and sends us requests; a tiny responder below
 * answers them (Exchange MTU with our MTU, everything else with Request Not Supported) as the spec demands.
 *
 * The steps share one connection and run in order; each records its wall time (printed in afterAll).
 * A second block proves run mode (runInGuest): the host's node and the host-built
 * @abandonware/bluetooth-hci-socket run inside the guest and bind a kernel controller's HCI user channel.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInGuest, syncH4, useBlueZGuest, type BlueZGuestInfo } from './helpers/bluez-guest.js';
import { Timings } from './helpers/timings.js';

const H4 = { command: 0x01, acl: 0x02, event: 0x04 } as const;

// The example advertisement's payload, from /usr/share/doc/bluez-test-scripts/examples/example-advertisement
// (BlueZ 5.66): service UUIDs 180D and 180F, manufacturer 0xFFFF data 00 01 02 03, service data for 9999
// 00..04, local name "TestAdvertisement", TX power included, AD type 0x26 data 01 01 00.
const EXAMPLE_AD = {
  uuids16: [0x180d, 0x180f],
  manufacturer: { company: 0xffff, data: [0x00, 0x01, 0x02, 0x03] },
  serviceData: { uuid: 0x9999, data: [0x00, 0x01, 0x02, 0x03, 0x04] },
  localName: 'TestAdvertisement',
};

interface Packet {
  type: number;
  bytes: Uint8Array; // the whole H4 packet, indicator first
}

/** Streaming H4 framer plus a waiting list: next(pred) resolves with the first matching packet. */
class H4Link {
  private buf = Buffer.alloc(0);
  private readonly queue: Packet[] = [];
  private readonly waiters: { pred: (p: Packet) => boolean; resolve: (p: Packet) => void }[] = [];
  private readonly acl = new Map<number, { want: number; parts: Buffer[]; have: number }>();
  /** Called for each reassembled L2CAP frame (handle, CID, payload) before it is queued. */
  onL2cap: ((handle: number, cid: number, payload: Uint8Array) => boolean) | undefined;
  aclCredits = 0;
  private readonly creditWaiters: (() => void)[] = [];

  constructor(readonly sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => this.feed(chunk));
    sock.resume();
  }

  private feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const len = packetLength(this.buf);
      if (len < 0 || this.buf.length < len) return;
      const bytes = new Uint8Array(this.buf.subarray(0, len));
      this.buf = this.buf.subarray(len);
      this.dispatch({ type: bytes[0], bytes });
    }
  }

  private dispatch(p: Packet): void {
    if (p.type === H4.event && p.bytes[1] === 0x13) {
      // Number Of Completed Packets (Vol 4, Part E, 7.7.19): return ACL credits.
      const n = p.bytes[3];
      for (let i = 0; i < n; i++) this.aclCredits += p.bytes[4 + 2 * n + 2 * i] | (p.bytes[5 + 2 * n + 2 * i] << 8);
      while (this.aclCredits > 0 && this.creditWaiters.length > 0) this.creditWaiters.shift()!();
    }
    if (p.type === H4.acl && this.reassemble(p)) return;
    const i = this.waiters.findIndex((w) => w.pred(p));
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(p);
    else this.queue.push(p);
  }

  /** Returns true if the ACL fragment was consumed (incomplete frame, or handled by onL2cap). */
  private reassemble(p: Packet): boolean {
    const b = Buffer.from(p.bytes);
    const handle = b.readUInt16LE(1) & 0x0fff;
    const pb = (b.readUInt16LE(1) >> 12) & 0x3;
    const data = b.subarray(5);
    if (pb !== 0x01) {
      // First fragment: Basic L2CAP header gives the frame length (Vol 3, Part A, 3.1).
      this.acl.set(handle, { want: data.readUInt16LE(0) + 4, parts: [data], have: data.length });
    } else {
      const st = this.acl.get(handle);
      if (!st) return true;
      st.parts.push(data);
      st.have += data.length;
    }
    const st = this.acl.get(handle)!;
    if (st.have < st.want) return true;
    this.acl.delete(handle);
    const frame = Buffer.concat(st.parts);
    const cid = frame.readUInt16LE(2);
    const payload = new Uint8Array(frame.subarray(4, st.want));
    if (this.onL2cap?.(handle, cid, payload)) return true;
    p.bytes = Uint8Array.from([H4.acl, ...p.bytes.subarray(1, 3), frame.length & 0xff, frame.length >> 8, ...frame]);
    return false;
  }

  next(pred: (p: Packet) => boolean, what: string, timeoutMs = 5_000): Promise<Packet> {
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for ${what}; unclaimed: ${this.queue.map((q) => hex(q.bytes)).join(' ')}`));
      }, timeoutMs);
      const waiter = { pred, resolve: (p: Packet) => { clearTimeout(timer); resolve(p); } };
      this.waiters.push(waiter);
    });
  }

  /** Sends an HCI command and resolves with its Command Complete or Command Status event. */
  async command(opcode: number, params: number[] = []): Promise<Uint8Array> {
    this.sock.write(Uint8Array.from([H4.command, opcode & 0xff, opcode >> 8, params.length, ...params]));
    const evt = await this.next(
      (p) => p.type === H4.event && ((p.bytes[1] === 0x0e && u16(p.bytes, 4) === opcode) || (p.bytes[1] === 0x0f && u16(p.bytes, 5) === opcode)),
      `completion of command 0x${opcode.toString(16)}`,
    );
    return evt.bytes;
  }

  /** Sends one L2CAP frame in one ACL packet (PB 0b00: first, non-flushable), honouring ACL credits. */
  async sendL2cap(handle: number, cid: number, payload: number[]): Promise<void> {
    while (this.aclCredits === 0) await new Promise<void>((r) => this.creditWaiters.push(r));
    this.aclCredits--;
    const l2 = [payload.length & 0xff, payload.length >> 8, cid & 0xff, cid >> 8, ...payload];
    this.sock.write(Uint8Array.from([H4.acl, handle & 0xff, (handle >> 8) & 0x0f, l2.length & 0xff, l2.length >> 8, ...l2]));
  }
}

/** Whole H4 packet length from its header, or -1 if the header is incomplete (Vol 4, Part E, 5.4). */
function packetLength(b: Buffer): number {
  if (b.length < 1) return -1;
  switch (b[0]) {
    case H4.event: return b.length < 3 ? -1 : 3 + b[2];
    case H4.acl: return b.length < 5 ? -1 : 5 + b.readUInt16LE(3);
    case H4.command: return b.length < 4 ? -1 : 4 + b[3];
    default: throw new Error(`unexpected H4 indicator 0x${b[0].toString(16)} in ${b.subarray(0, 16).toString('hex')}`);
  }
}

const u16 = (b: Uint8Array, at: number): number => b[at] | (b[at + 1] << 8);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** BD_ADDR as printed by BlueZ, from its little-endian wire form. */
const addrString = (b: Uint8Array): string => Array.from(b).reverse().map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':');

/** AD structures (Vol 3, Part C, 11): [type, data] pairs. */
function parseAd(data: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  for (let i = 0; i < data.length && data[i] !== 0;) {
    const len = data[i];
    out.push([data[i + 1], data.subarray(i + 2, i + 1 + len)]);
    i += 1 + len;
  }
  return out;
}

const ATT_CID = 0x0004;
const OUR_MTU = 517;
const timings = new Timings();
const timed = <T>(name: string, fn: () => Promise<T>): Promise<T> => timings.timed(name, fn);

describe('BlueZ guest over the bridged H4 socket (raw HCI)', () => {
  let guest: BlueZGuestInfo;
  let release: () => Promise<void> = async () => undefined;
  let link: H4Link;
  let peerAddr: Uint8Array;
  let peerAddrType = 0;
  let handle = -1;
  const peerRequests: number[] = [];

  beforeAll(async () => {
    const t0 = performance.now();
    ({ guest, release } = await useBlueZGuest());
    timings.push(`guest ready (boot ${guest.readySeconds} s to READY)`, performance.now() - t0);
    link = new H4Link(await syncH4(guest.h4Socket));
    // BlueZ's own requests to us (it is a GATT client too): answer per Vol 3, Part F, 3.4.
    link.onL2cap = (h, cid, pdu) => {
      if (cid !== ATT_CID) return false;
      const op = pdu[0];
      if (op === 0x02) {
        peerRequests.push(op);
        void link.sendL2cap(h, ATT_CID, [0x03, OUR_MTU & 0xff, OUR_MTU >> 8]);
        return true;
      }
      // Requests (not commands, not responses): even opcodes below 0x30 other than responses.
      const isRequest = [0x04, 0x06, 0x08, 0x0a, 0x0c, 0x0e, 0x10, 0x12, 0x16, 0x18, 0x20].includes(op);
      if (isRequest) {
        peerRequests.push(op);
        const start = op === 0x12 || op === 0x0a || op === 0x0c || op === 0x16 || op === 0x18 || op === 0x20 ? [0, 0] : [pdu[1] ?? 0, pdu[2] ?? 0];
        void link.sendL2cap(h, ATT_CID, [0x01, op, ...start, 0x06]); // Request Not Supported
        return true;
      }
      if (op === 0x1d) {
        void link.sendL2cap(h, ATT_CID, [0x1e]); // Handle Value Confirmation
        return true;
      }
      return false;
    };
  }, 600_000);

  afterAll(async () => {
    if (link) {
      // Leave the controller quiet for the next user of the shared bridge: Reset, then close.
      await link.command(0x0c03).catch(() => undefined);
      link.sock.end();
    }
    await release();
    console.log(['BlueZ guest smoke timings:', ...timings.lines()].join('\n'));
  });

  it('answers Reset and Read BD_ADDR', async () => {
    await timed('reset + read bd_addr', async () => {
      const reset = await link.command(0x0c03);
      expect(hex(reset.subarray(0, 3))).toBe('040e04'); // Command Complete, 4 parameter bytes
      expect(hex(reset.subarray(4))).toBe('030c00'); // opcode 0x0C03, status success
      const bd = await link.command(0x1009);
      expect(bd[1]).toBe(0x0e);
      expect(bd[6]).toBe(0x00);
      const own = addrString(bd.subarray(7, 13));
      // btvirt's socket controllers are 00:AA:01:<slot>:00:42, distinct from BlueZ's own adapter.
      expect(own).toMatch(/^00:AA:01:[0-9A-F]{2}:00:42$/);
      expect(own).not.toBe(guest.peripheral);
      // LE Read Buffer Size (Vol 4, Part E, 7.8.2): our ACL credits.
      const buf = await link.command(0x2002);
      expect(buf[6]).toBe(0x00);
      expect(u16(buf, 7)).toBeGreaterThanOrEqual(27);
      link.aclCredits = buf[9];
      expect(link.aclCredits).toBeGreaterThan(0);
      // Event masks: everything incl. LE Meta (bit 61), and all LE sub-events.
      expect((await link.command(0x0c01, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f]))[6]).toBe(0);
      expect((await link.command(0x2001, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]))[6]).toBe(0);
    });
  });

  it("sees BlueZ's example advertisement when scanning", async () => {
    await timed('scan to advertising report', async () => {
      // LE Set Scan Parameters (7.8.10): active, interval/window 0x0010, public own address, accept all.
      expect((await link.command(0x200b, [0x01, 0x10, 0x00, 0x10, 0x00, 0x00, 0x00]))[6]).toBe(0);
      const isReportFromPeer = (evtType: number) => (p: Packet): boolean =>
        p.type === H4.event && p.bytes[1] === 0x3e && p.bytes[3] === 0x02 && p.bytes[5] === evtType &&
        addrString(p.bytes.subarray(7, 13)) === guest.peripheral;
      const advP = link.next(isReportFromPeer(0x00), 'ADV_IND report from BlueZ');
      const rspP = link.next(isReportFromPeer(0x04), 'SCAN_RSP report from BlueZ');
      // LE Set Scan Enable (7.8.11): enable, no duplicate filtering.
      expect((await link.command(0x200c, [0x01, 0x00]))[6]).toBe(0);
      const adv = await advP;
      const scanRsp = await rspP;
      expect((await link.command(0x200c, [0x00, 0x00]))[6]).toBe(0);

      // LE Advertising Report (7.7.65.2), one report: type, addr type, addr, data len, data, rssi.
      peerAddrType = adv.bytes[6];
      peerAddr = adv.bytes.slice(7, 13);
      const ad = new Map(parseAd(adv.bytes.subarray(14, 14 + adv.bytes[13])));
      const uuids = ad.get(0x03) ?? ad.get(0x02);
      expect(uuids).toBeDefined();
      const list = Array.from({ length: uuids!.length / 2 }, (_, i) => u16(uuids!, 2 * i));
      expect(list).toEqual(expect.arrayContaining(EXAMPLE_AD.uuids16));
      const mfr = ad.get(0xff)!;
      expect(u16(mfr, 0)).toBe(EXAMPLE_AD.manufacturer.company);
      expect(Array.from(mfr.subarray(2))).toEqual(EXAMPLE_AD.manufacturer.data);
      const svc = ad.get(0x16)!;
      expect(u16(svc, 0)).toBe(EXAMPLE_AD.serviceData.uuid);
      expect(Array.from(svc.subarray(2))).toEqual(EXAMPLE_AD.serviceData.data);
      // What did not fit in 31 bytes went to the scan response: the local name.
      const rsp = new Map(parseAd(scanRsp.bytes.subarray(14, 14 + scanRsp.bytes[13])));
      const name = rsp.get(0x09) ?? rsp.get(0x08) ?? ad.get(0x09) ?? ad.get(0x08);
      expect(Buffer.from(name ?? []).toString('utf8')).toBe(EXAMPLE_AD.localName);
    });
  });

  it('connects to BlueZ with LE Create Connection', async () => {
    await timed('create connection', async () => {
      const doneP = link.next((p) => p.type === H4.event && p.bytes[1] === 0x3e && p.bytes[3] === 0x01, 'LE Connection Complete');
      // LE Create Connection (7.8.12): scan 0x0060/0x0030, no accept list, peer, public own address,
      // interval 0x0018..0x0028, latency 0, supervision timeout 0x01F4 (5 s), CE length 0.
      const status = await link.command(0x200d, [
        0x60, 0x00, 0x30, 0x00, 0x00, peerAddrType, ...peerAddr, 0x00,
        0x18, 0x00, 0x28, 0x00, 0x00, 0x00, 0xf4, 0x01, 0x00, 0x00, 0x00, 0x00,
      ]);
      expect(hex(status.subarray(0, 4))).toBe('040f0400'); // Command Status, success
      const done = await doneP;
      // LE Connection Complete (7.7.65.1): status, handle, role (0 = central), peer type, peer address.
      expect(done.bytes[4]).toBe(0x00);
      handle = u16(done.bytes, 5) & 0x0fff;
      expect(done.bytes[7]).toBe(0x00);
      expect(addrString(done.bytes.subarray(9, 15))).toBe(guest.peripheral);
    });
  });

  const attResponse = (opcodes: number[], what: string): Promise<Packet> =>
    link.next((p) => p.type === H4.acl && u16(p.bytes, 7) === ATT_CID && opcodes.includes(p.bytes[9]) && (u16(p.bytes, 1) & 0x0fff) === handle, what);

  it('exchanges the ATT MTU with bluetoothd', async () => {
    await timed('att exchange mtu', async () => {
      const rspP = attResponse([0x03, 0x01], 'Exchange MTU Response');
      await link.sendL2cap(handle, ATT_CID, [0x02, OUR_MTU & 0xff, OUR_MTU >> 8]);
      const rsp = await rspP;
      expect(rsp.bytes[9]).toBe(0x03);
      const serverMtu = u16(rsp.bytes, 10);
      expect(serverMtu).toBeGreaterThanOrEqual(23); // Vol 3, Part F, 3.4.2.2: never below ATT_MTU default
    });
  });

  it("reads BlueZ's Device Name with Read By Type 0x2A00", async () => {
    await timed('att read by type device name', async () => {
      const rspP = attResponse([0x09, 0x01], 'Read By Type Response');
      await link.sendL2cap(handle, ATT_CID, [0x08, 0x01, 0x00, 0xff, 0xff, 0x00, 0x2a]);
      const rsp = await rspP;
      expect(rsp.bytes[9]).toBe(0x09);
      // Read By Type Response (Vol 3, Part F, 3.4.4.2): element length, then handle + value pairs.
      const elementLength = rsp.bytes[10];
      const value = rsp.bytes.subarray(13, 11 + elementLength);
      expect(u16(rsp.bytes, 11)).toBeGreaterThan(0);
      expect(Buffer.from(value).toString('utf8')).toBe(guest.peripheralName);
      expect(guest.peripheralName).toMatch(/^BlueZ \d+\.\d+$/);
    });
    // ATT round-trip time through the bridge (host -> qemu serial -> relay -> btvirt -> bluetoothd and back),
    // the figure that GATT procedure timings scale with.
    const rtts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const rspP = attResponse([0x09, 0x01], 'Read By Type Response');
      await link.sendL2cap(handle, ATT_CID, [0x08, 0x01, 0x00, 0xff, 0xff, 0x00, 0x2a]);
      expect((await rspP).bytes[9]).toBe(0x09);
      rtts.push(performance.now() - t0);
    }
    rtts.sort((a, b) => a - b);
    timings.push(`att round trip p50 of ${rtts.length} (max ${rtts[rtts.length - 1].toFixed(1)})`, rtts[rtts.length >> 1]);
  });

  it('disconnects', async () => {
    await timed('disconnect', async () => {
      const doneP = link.next((p) => p.type === H4.event && p.bytes[1] === 0x05, 'Disconnection Complete');
      // Disconnect (7.1.6): reason 0x13 remote user terminated.
      const status = await link.command(0x0406, [handle & 0xff, handle >> 8, 0x13]);
      expect(hex(status.subarray(0, 4))).toBe('040f0400');
      const done = await doneP;
      expect(done.bytes[3]).toBe(0x00);
      expect(u16(done.bytes, 4)).toBe(handle);
      // BlueZ, acting as a GATT client on this link, sent us its own requests, which we answered.
      expect(peerRequests).toContain(0x02);
    });
  });
});

// Runs inside the guest (CommonJS, the guest's node is the host's binary): binds the HCI user channel of
// the controller init.sh left powered off for us, sends HCI Reset and prints what comes back.
const USER_CHANNEL_PROBE = `
const HciSocket = require('/blewire-run/node_modules/@abandonware/bluetooth-hci-socket');
const index = Number(process.env.BLEWIRE_HCI_INDEX);
const s = new HciSocket();
const timer = setTimeout(() => { console.log('timeout'); process.exit(4); }, 10000);
s.on('data', (d) => { console.log('rx ' + d.toString('hex')); clearTimeout(timer); s.stop(); process.exit(0); });
s.on('error', (e) => { console.log('error ' + e.message); process.exit(3); });
s.bindUser(index);
s.start();
s.write(Buffer.from('01030c00', 'hex'));
`;

describe('BlueZ guest run mode (runInGuest)', () => {
  it('runs node in the guest, binds an HCI user channel in its kernel, and returns stdout and exit code', async () => {
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    const t0 = performance.now();
    const res = await runInGuest(
      {
        '/blewire-run/probe.cjs': new TextEncoder().encode(USER_CHANNEL_PROBE),
        '/blewire-run/node_modules/@abandonware/bluetooth-hci-socket': path.join(repo, 'node_modules/@abandonware/bluetooth-hci-socket'),
      },
      'node --version; echo "index=$BLEWIRE_HCI_INDEX peer=$BLEWIRE_PERIPHERAL"; node probe.cjs; exit 3',
    );
    console.log(`runInGuest (build check + boot + command + power-off): ${(performance.now() - t0).toFixed(0)} ms`);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toBe(process.version);
    expect(lines[1]).toMatch(/^index=1 peer=([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
    // Command Complete for HCI Reset from the kernel's vhci controller, through the user channel.
    expect(lines[2]).toMatch(/^rx 040e04..030c00$/);
    expect(res.exitCode).toBe(3);
    expect(res.console).toMatch(/^BLEWIRE-RUN-EXIT 3$/m);
  }, 900_000);
});
