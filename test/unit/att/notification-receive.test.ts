// Pins the bearer's Handle Value Notification receive path (the fast path beside the generic table
// decode): the handle and value listeners see, a PDU too short for its handle counted as undecodable
// and delivered to nobody, an empty value delivered, and listeners added or removed while a value is
// being delivered taking effect from the next value; the in-place path (dataAt, what the L2CAP link
// calls) logging each notification when `DEBUG` / debug.enable() turns blewire:att on.
import { describe, expect, test } from 'vitest';
import createDebug from 'debug';
import { log, logOn } from '../../../src/log.js';
import { AttBearer, type AttValueEvent } from '../../../src/att/bearer.js';
import { FakeClock } from '../../../src/clock.js';
import { channelPair, ScriptedPeer } from '../../helpers/memory-channel.js';

function setup() {
  const pair = channelPair();
  const bearer = new AttBearer(pair.central, { clock: new FakeClock() });
  const peer = new ScriptedPeer(pair.peripheral);
  const seen: AttValueEvent[] = [];
  bearer.on('value', ev => seen.push(ev));
  /** Send raw PDUs from the peer and wait until the bearer handled them (delivery is a microtask each). */
  const sendRaw = async (...pdus: Uint8Array[]): Promise<void> => {
    for (const p of pdus) await pair.peripheral.send(p);
  };
  return { bearer, peer, seen, sendRaw };
}

describe('Handle Value Notification receive', () => {
  test('handle and value as the table decodes them; the value is the rest of the PDU', async () => {
    const { bearer, seen, sendRaw } = setup();
    await sendRaw(Uint8Array.of(0x1b, 0x2a, 0x01, 0x10, 0x48, 0x00, 0x04), Uint8Array.of(0x1b, 0xff, 0xff));
    expect(seen).toEqual([
      { kind: 'notification', handle: 0x012a, value: Uint8Array.of(0x10, 0x48, 0x00, 0x04) },
      { kind: 'notification', handle: 0xffff, value: new Uint8Array(0) },
    ]);
    expect(bearer.stats.notificationsReceived).toBe(2);
    expect(bearer.stats.undecodable).toBe(0);
  });

  test('a notification too short for its handle is undecodable: counted, delivered to nobody, answered with nothing', async () => {
    const { bearer, peer, seen, sendRaw } = setup();
    await sendRaw(Uint8Array.of(0x1b, 0x2a), Uint8Array.of(0x1b));
    expect(seen).toEqual([]);
    expect(bearer.stats).toMatchObject({ undecodable: 2, notificationsReceived: 0 });
    expect(peer.unread).toBe(0);
    await sendRaw(Uint8Array.of(0x1b, 0x03, 0x00, 0x07)); // the bearer still works
    expect(seen).toEqual([{ kind: 'notification', handle: 3, value: Uint8Array.of(7) }]);
  });

  test('listeners added or removed during a delivery take effect from the next value', async () => {
    const { bearer, sendRaw } = setup();
    const calls: string[] = [];
    let offB: () => void = () => {};
    const offA = bearer.on('value', ev => {
      calls.push(`a${ev.value[0]}`);
      if (ev.value[0] === 1) {
        offB();
        bearer.on('value', e => calls.push(`c${e.value[0]}`));
      }
    });
    offB = bearer.on('value', ev => calls.push(`b${ev.value[0]}`));
    await sendRaw(Uint8Array.of(0x1b, 0x03, 0x00, 1), Uint8Array.of(0x1b, 0x03, 0x00, 2));
    offA();
    await sendRaw(Uint8Array.of(0x1b, 0x03, 0x00, 3));
    expect(calls).toEqual(['a1', 'b1', 'a2', 'c2', 'c3']);
  });
});

describe('logging on the in-place path', () => {
  test('debug.enable() and disable() switch logOn; with blewire:att on, dataAt notifications are logged, off they are not', () => {
    const { bearer } = setup();
    const values: string[] = [];
    bearer.on('notification', (handle, value) => values.push(`${handle}:${Buffer.from(value).toString('hex')}`));
    const lines: string[] = [];
    const was = createDebug.disable();
    const logFn = log.att.log;
    log.att.log = (...args: unknown[]) => { lines.push(args.map(String).join(' ')); };
    try {
      const pdu = Uint8Array.of(0xee, 0x1b, 0x03, 0x00, 0xaa, 0xbb, 0xee);
      bearer.dataAt(pdu, 1, 6);
      expect(logOn.att).toBe(false);
      expect(lines).toEqual([]);
      createDebug.enable('blewire:att');
      expect(logOn.att).toBe(true);
      expect(logOn.hci).toBe(false);
      bearer.dataAt(pdu, 1, 6);
      expect(lines.some(l => l.includes('rx') && l.includes('handleValueNtf'))).toBe(true);
      createDebug.disable();
      expect(logOn.att).toBe(false);
      lines.length = 0;
      bearer.dataAt(pdu, 1, 6);
      expect(lines).toEqual([]);
      expect(values).toEqual(['3:aabb', '3:aabb', '3:aabb']);
    } finally {
      log.att.log = logFn;
      createDebug.enable(was);
    }
  });
});

describe('the value view on the in-place path', () => {
  const PDU = [0x1b, 0x2a, 0x00, 0x10, 0x48, 0x00, 0x04];
  test('an ATT PDU inside a larger buffer (a pooled read): the view is of exactly the value, at its offset', () => {
    const { bearer } = setup();
    const got: Uint8Array[] = [];
    bearer.on('notification', (_h, v) => got.push(v));
    const pool = new Uint8Array(64).fill(0xee);
    pool.set(PDU, 21);
    const b = pool.subarray(16, 40); // b does not span its buffer: its byteOffset must be read
    bearer.dataAt(b, 5, 5 + PDU.length);
    expect(Array.from(got[0]!)).toEqual([0x10, 0x48, 0x00, 0x04]);
    expect(got[0]!.buffer).toBe(pool.buffer);
    expect(got[0]!.byteOffset).toBe(16 + 5 + 3);
  });

  test('a packet that is its whole buffer (a user-channel read), and one given with its buffer and offset', () => {
    const { bearer } = setup();
    const got: Uint8Array[] = [];
    bearer.on('notification', (_h, v) => got.push(v));
    const whole = Uint8Array.of(0xaa, 0xbb, ...PDU);
    bearer.dataAt(whole, 2, whole.length);
    const pool = new Uint8Array(40).fill(0xee);
    pool.set(PDU, 30);
    const b = pool.subarray(10); // indexes of b are octets 10 + i of the buffer
    bearer.dataAt(b, 20, 20 + PDU.length, pool.buffer, 10);
    expect(got.map(v => Array.from(v))).toEqual([[0x10, 0x48, 0x00, 0x04], [0x10, 0x48, 0x00, 0x04]]);
    expect(got[0]!.byteOffset).toBe(5);
    expect(got[1]!.byteOffset).toBe(33);
    expect(got.every(v => Object.getPrototypeOf(v) === Uint8Array.prototype)).toBe(true);
  });
});
