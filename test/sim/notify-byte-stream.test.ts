// Notifications over an H4 byte stream (StreamTransport: unix socket, TCP, UART) reach subscribers
// through the in-place path (TransportReceiver.packetAt: the framer hands each packet as its chunk plus
// the chunk's ArrayBuffer and offset, read once per chunk, issue 14). The adapter runs on a real
// StreamTransport whose byte stream is bridged to the simulator (so connect, MTU exchange, discovery
// and the CCCD write are the simulator's); the test then writes crafted controller bytes into the
// stream: several packets per read, inside a pooled Node Buffer at an offset, packets straddling
// reads, fragmented values (Vol 4, Part E, 5.4.2 PB flags), an event between them. The values must be
// exactly the wire's octets, views of the read's memory where a value lies inside one read, and never
// aliasing each other or a buffer written afterwards.
import { describe, expect, test } from 'vitest';
import { Duplex } from 'node:stream';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator } from '../../src/sim/index.js';
import { StreamTransport } from '../../src/transport/stream.js';
import { toHex } from '../../src/bytes/hex.js';

const PEER = 'D4:1E:35:7A:00:09';

/** The simulator's controller as the far end of a byte stream: what the host writes goes to it, what it sends comes back as bytes. */
function bridged() {
  const sim = createSimulator({
    name: 'notify-stream',
    peripherals: [{
      name: 'Pulse', address: PEER, addressType: 'random',
      advertising: { data: { flags: 0x06, name: 'Pulse' }, intervalMs: 20 },
      gatt: [{ uuid: 0x180d, characteristics: [{ uuid: 0x2a37, properties: ['notify'] }] }],
    }],
  });
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) { sim.transport.send(new Uint8Array(chunk)); cb(); },
  });
  sim.transport.setReceiver({ packet: p => duplex.push(Buffer.from(p)), closed: () => duplex.push(null) });
  const transport = new StreamTransport(duplex, 'bridge');
  return { sim, duplex, transport };
}

/** ATT_HANDLE_VALUE_NTF in an L2CAP B-frame on CID 4, as H4 ACL packets of at most `max` data octets (first PB 0b10, then 0b01). */
function notification(conn: number, handle: number, value: Uint8Array, max = 27): Uint8Array[] {
  const frame = new Uint8Array(7 + value.length);
  frame[0] = (3 + value.length) & 0xff; frame[1] = (3 + value.length) >> 8;
  frame[2] = 0x04; frame[3] = 0x00;
  frame[4] = 0x1b; frame[5] = handle & 0xff; frame[6] = handle >> 8;
  frame.set(value, 7);
  const out: Uint8Array[] = [];
  for (let o = 0; o < frame.length; o += max) {
    const d = frame.subarray(o, Math.min(frame.length, o + max));
    const p = new Uint8Array(5 + d.length);
    const hf = conn | ((o === 0 ? 0b10 : 0b01) << 12);
    p[0] = 0x02; p[1] = hf & 0xff; p[2] = hf >> 8; p[3] = d.length & 0xff; p[4] = d.length >> 8;
    p.set(d, 5);
    out.push(p);
  }
  return out;
}

const valueOf = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);

describe('notifications over an H4 byte stream', () => {
  test('values are exactly the wire octets, views of the read where they lie in one read, none aliasing another', async () => {
    const { sim, duplex, transport } = bridged();
    const adapter = await Adapter.open({ transport, clock: sim.clock, mtu: 247 });
    try {
      const conn = await adapter.connect({ address: PEER, addressType: 'random' }, { timeout: 5000 });
      const ch = await conn.characteristic(0x180d, 0x2a37);
      const got: Uint8Array[] = [];
      const sub = await ch.subscribe(v => got.push(v));
      const h = conn.handle, vh = ch.handle;

      // Read 1: a pooled Buffer holding, from offset 37: value A (20 octets, one packet), a Number Of
      // Completed Packets event, value B (one packet), value C (100 octets in 5 fragments), and the first
      // 9 octets of value D's packet. Read 2: the rest of D, then value E (one packet).
      const A = valueOf(20, 1), B = valueOf(20, 2), C = valueOf(100, 3), D = valueOf(20, 4), E = valueOf(5, 5);
      const event = Uint8Array.of(0x04, 0x13, 0x05, 0x01, h & 0xff, h >> 8, 0x00, 0x00);
      const [pa] = notification(h, vh, A), [pb] = notification(h, vh, B), pc = notification(h, vh, C), [pd] = notification(h, vh, D);
      const [pe] = notification(h, vh, E);
      const first = [pa!, event, pb!, ...pc, pd!.subarray(0, 9)];
      const len1 = first.reduce((n, p) => n + p.length, 0);
      const pool = Buffer.alloc(37 + len1 + 11, 0xee);
      let o = 37;
      const at: number[] = [];
      for (const p of first) { at.push(o); pool.set(p, o); o += p.length; }
      const read1 = pool.subarray(37, 37 + len1);
      const read2 = Buffer.concat([pd!.subarray(9), pe!]);
      duplex.push(read1);
      duplex.push(read2);
      await new Promise(r => setImmediate(r));

      expect(got.map(v => toHex(v))).toEqual([A, B, C, D, E].map(v => toHex(v)));
      for (const v of got) expect(Object.getPrototypeOf(v)).toBe(Uint8Array.prototype);
      // A and B: views of read 1's memory at their value's octets (12 past their packet's start).
      expect(got[0]!.buffer).toBe(pool.buffer);
      expect(got[0]!.byteOffset).toBe(pool.byteOffset + at[0]! + 12);
      expect(got[1]!.buffer).toBe(pool.buffer);
      expect(got[1]!.byteOffset).toBe(pool.byteOffset + at[2]! + 12);
      expect(got[1]!.length).toBe(20);
      // C (reassembled) and D (straddling reads) are not in the read's memory.
      expect(got[2]!.buffer).not.toBe(pool.buffer);
      expect(got[3]!.buffer).not.toBe(pool.buffer);
      // E: a view of read 2.
      expect(got[4]!.buffer).toBe(read2.buffer);
      expect(got[4]!.byteOffset).toBe(read2.byteOffset + pd!.length - 9 + 12);

      // More fragmented values after C: none may overwrite C's octets (reassembly regions are not reused).
      const more = [valueOf(100, 6), valueOf(60, 7), valueOf(200, 8)];
      duplex.push(Buffer.concat(more.flatMap(v => notification(h, vh, v))));
      await new Promise(r => setImmediate(r));
      expect(got.map(v => toHex(v))).toEqual([A, B, C, D, E, ...more].map(v => toHex(v)));
      expect(conn.gatt.bearer.stats.undecodable).toBe(0);
      await sub.unsubscribe();
    } finally {
      await adapter.close();
    }
  });
});
