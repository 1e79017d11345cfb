// ReceiverSlot.packetAt (the in-place delivery byte-stream transports use, issue 14): in place to a
// receiver that takes it; as a view of exactly those octets to one that does not, to the queue before a
// receiver is set, and never after the close.
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { ReceiverSlot } from '../../../src/transport/receiver-slot.js';

const chunk = (): Buffer => {
  const pool = Buffer.alloc(40, 0xee);
  pool.set(fromHex('04 0e 04 01 03 0c 00 02 40 00 03 00 aa bb cc'), 11);
  return pool.subarray(11, 26);
};

describe('ReceiverSlot.packetAt', () => {
  it('hands the packet in place to a receiver with packetAt', () => {
    const slot = new ReceiverSlot();
    const c = chunk();
    const calls: unknown[][] = [];
    slot.set({ packet: () => { throw new Error('not this way'); }, packetAt: (...a) => calls.push(a), closed: () => {} });
    slot.packetAt(c, 7, 15, c.buffer, c.byteOffset);
    expect(calls).toEqual([[c, 7, 15, c.buffer, c.byteOffset]]);
  });

  it('gives a receiver without packetAt, and the queue before a receiver, a view of exactly the packet', () => {
    const slot = new ReceiverSlot();
    const c = chunk();
    slot.packetAt(c, 0, 7, c.buffer, c.byteOffset); // queued: no receiver yet
    const got: Uint8Array[] = [];
    slot.set({ packet: p => got.push(p), closed: () => {} });
    slot.packetAt(c, 7, 15, c.buffer, c.byteOffset);
    expect(got.map(p => toHex(p))).toEqual(['040e0401030c00', '0240000300aabbcc']);
    expect(got[1]!.byteOffset).toBe(c.byteOffset + 7);
    expect(got[1]!.buffer).toBe(c.buffer);
    slot.close();
    slot.packetAt(c, 0, 7, c.buffer, c.byteOffset);
    expect(got.length).toBe(2);
  });
});
