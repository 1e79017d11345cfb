// Pins the notification path from the L2CAP link to the ATT bearer's listeners as the host drives it
// (the link's routeAt, then aclAt, the packet in place: issue 14's fast path), where the existing tests
// drive the link through acl() and the bearer through dataAt() apart: when the route exists (one
// notification listener, open bearer and link) and what it declines; the value a plain Uint8Array view
// at its offset in the packet, L2CAP and ATT counting each PDU once, every listener seeing every value
// as listeners come and go, a throwing listener, blewire:att logging, a closed bearer, reassembly's
// drop rules for a START that interrupts a PDU, fragmented notifications, and the other ATT PDUs
// arriving the same way.
import { describe, expect, test } from 'vitest';
import createDebug from 'debug';
import { log } from '../../../src/log.js';
import { FakeClock } from '../../../src/clock.js';
import { DisconnectedError } from '../../../src/errors.js';
import { AttBearer } from '../../../src/att/bearer.js';
import { L2capLink } from '../../../src/l2cap/link.js';
import { fromHex, toHex } from '../../../src/bytes/hex.js';

const HANDLE = 0x40;

function setup() {
  const clock = new FakeClock();
  const sent: string[] = [];
  const link = new L2capLink({
    aclDataLength: 27,
    sendAcl: (_h, packets) => { for (const p of packets) sent.push(toHex(p)); return Promise.resolve(); },
  }, HANDLE, { clock, role: 'central' });
  const bearer = new AttBearer(link.att, { clock });
  /** One H4 ACL packet as the controller hands it over, given to the link as HciHost does: its route first, then aclAt. */
  const acl = (pb: number, frame: string): boolean => {
    const f = fromHex(frame);
    const p = Buffer.alloc(5 + f.length);
    p[0] = 0x02;
    p.writeUInt16LE(HANDLE | (pb << 12), 1);
    p.writeUInt16LE(f.length, 3);
    p.set(f, 5);
    if (pb !== 0b01 && link.routeAt?.(pb, p, 5, p.length, undefined, 0)) return true;
    link.aclAt(pb, p, 5, p.length);
    return false;
  };
  /** An ATT PDU in one B-frame on CID 0x0004, in one START (PB 0b10). */
  const att = (pdu: string): boolean => {
    const n = fromHex(pdu).length;
    return acl(0b10, `${toHex(Uint8Array.of(n & 0xff, n >> 8))}0400${pdu.replace(/ /g, '')}`);
  };
  return { clock, link, bearer, acl, att, sent };
}

describe('notifications from the link to the bearer in place', () => {
  test('the route exists while the bearer has exactly one notification listener and no value listener, and both ends are open', () => {
    const { link, bearer, acl, att } = setup();
    expect(link.routeAt).toBeUndefined();
    const off = bearer.on('notification', () => undefined);
    expect(link.routeAt).toBeTypeOf('function');
    expect(att('1b 0300 01')).toBe(true); // taken by the route
    expect(att('0a 0300')).toBe(true); // a whole ATT PDU of another kind: the route hands it to dataAt
    expect(acl(0b10, '0200 0600 0a00')).toBe(false); // SMP: not the route's
    expect(acl(0b10, '0500 0400 1b0300')).toBe(false); // a START of a longer PDU: reassembly's
    expect(acl(0b01, 'aabb')).toBe(false);
    const offValue = bearer.on('value', () => undefined);
    expect(link.routeAt).toBeUndefined();
    offValue();
    const offSecond = bearer.on('notification', () => undefined);
    expect(link.routeAt).toBeUndefined();
    offSecond();
    expect(link.routeAt).toBeTypeOf('function');
    off();
    expect(link.routeAt).toBeUndefined();
    bearer.on('notification', () => undefined);
    link.close(new DisconnectedError('test', 0x13));
    expect(link.routeAt).toBeUndefined();
    expect(att('1b 0300 02')).toBe(false);
  });

  test('the listener gets a plain view of the value at its offset in the packet; L2CAP and ATT count it once', () => {
    const { link, bearer, att } = setup();
    const got: string[] = [];
    const views: Uint8Array[] = [];
    bearer.on('notification', (h, v) => { got.push(`${h.toString(16)}:${toHex(v)}`); views.push(v); });
    att('1b 2a00 1048000a');
    att('1b 2b00');
    expect(got).toEqual(['2a:1048000a', '2b:']);
    expect(Object.getPrototypeOf(views[0]!)).toBe(Uint8Array.prototype);
    expect(views[0]!.byteOffset).toBe(12); // H4 1 + ACL header 4 + L2CAP header 4 + opcode and handle 3
    expect(bearer.stats.notificationsReceived).toBe(2);
    expect((link as unknown as { reassembler: { stats: { pdus: number } } }).reassembler.stats.pdus).toBe(2);
    expect(bearer.stats.undecodable).toBe(0);
  });

  test('with a value listener, a second notification listener, and after removing them, every listener sees every value', () => {
    const { bearer, att } = setup();
    const calls: string[] = [];
    bearer.on('notification', (_h, v) => calls.push(`a${v[0]}`));
    const offValue = bearer.on('value', ev => calls.push(`v${ev.value[0]}`));
    att('1b 0300 01');
    const offB = bearer.on('notification', (_h, v) => calls.push(`b${v[0]}`));
    offValue();
    att('1b 0300 02');
    offB();
    att('1b 0300 03');
    expect(calls).toEqual(['a1', 'v1', 'a2', 'b2', 'a3']);
    expect(bearer.stats.notificationsReceived).toBe(3);
  });

  test('a listener that throws does not break the receive path: the next notification still arrives', () => {
    const { bearer, att } = setup();
    const got: number[] = [];
    bearer.on('notification', (_h, v) => {
      got.push(v[0]!);
      if (v[0] === 1) throw new Error('application bug');
    });
    expect(() => att('1b 0300 01')).not.toThrow();
    att('1b 0300 02');
    expect(got).toEqual([1, 2]);
    expect(bearer.stats.notificationsReceived).toBe(2);
  });

  test('with blewire:att logging on, the notification is logged and delivered', () => {
    const { bearer, att } = setup();
    const got: string[] = [];
    bearer.on('notification', (h, v) => got.push(`${h}:${toHex(v)}`));
    const lines: string[] = [];
    const logFn = log.att.log;
    const was = createDebug.disable();
    log.att.log = (...args: unknown[]) => { lines.push(args.map(String).join(' ')); };
    try {
      att('1b 0300 06');
      expect(lines).toEqual([]);
      createDebug.enable('blewire:att');
      att('1b 0300 07');
    } finally {
      log.att.log = logFn;
      createDebug.enable(was);
    }
    expect(got).toEqual(['3:06', '3:07']);
    expect(lines.some(l => l.includes('rx') && l.includes('handleValueNtf'))).toBe(true);
    expect(bearer.stats.notificationsReceived).toBe(2);
  });

  test('a closed bearer: a notification after the close is dropped and counted, no listener called', () => {
    const { bearer, att } = setup();
    const got: number[] = [];
    bearer.on('notification', (_h, v) => got.push(v[0]!));
    bearer.closed(new DisconnectedError('test', 0x13, 'remote user terminated'));
    bearer.on('notification', () => got.push(-1)); // added after the close: called for nothing either
    att('1b 0300 05');
    expect(got).toEqual([]);
    expect(bearer.stats.dropped).toBe(1);
    expect(bearer.stats.notificationsReceived).toBe(0);
  });

  test('a whole START while a PDU is being assembled: the partial PDU is dropped (startWhileAssembling), the new one delivered', () => {
    const { link, bearer, acl, att } = setup();
    const got: string[] = [];
    bearer.on('notification', (h, v) => got.push(`${h}:${toHex(v)}`));
    acl(0b10, '0800 0400 1b0300aa'); // announces 8 octets, brings 4
    att('1b 0400 bb');
    acl(0b01, 'cccc'); // the rest of the dropped PDU: a continuation without its START now
    const r = (link as unknown as { reassembler: { stats: { drops: Record<string, number> } } }).reassembler.stats;
    expect(got).toEqual(['4:bb']);
    expect(r.drops.startWhileAssembling).toBe(1);
    expect(r.drops.continuationWithoutStart).toBe(1);
  });

  test('a fragmented notification is reassembled on the general path and reaches the same listener', () => {
    const { bearer, acl } = setup();
    const got: string[] = [];
    bearer.on('notification', (h, v) => got.push(`${h}:${toHex(v)}`));
    acl(0b10, '0700 0400 1b0500'); // ATT PDU of 7: opcode, handle, 4 octets of value
    acl(0b01, '01020304');
    expect(got).toEqual(['5:01020304']);
    expect(bearer.stats.notificationsReceived).toBe(1);
  });

  test('other ATT PDUs in one START reach the bearer the same way (a Read Response answers a read)', async () => {
    const { bearer, att, sent } = setup();
    bearer.on('notification', () => undefined);
    const read = bearer.request({ kind: 'readReq', handle: 0x0003 });
    await Promise.resolve();
    expect(sent.at(-1)).toBe('024000070003000400' + '0a0300'); // Read Request for handle 3, in one ACL packet
    att('0b 6869');
    const rsp = await read;
    expect(rsp.kind).toBe('readRsp');
    expect(toHex(rsp.value)).toBe('6869');
    expect(bearer.stats.notificationsReceived).toBe(0);
  });
});
