// Pins ACL flow control: never more packets in the controller than it has buffers, Number Of Completed
// Packets accounting, per-link round-robin fairness, and credits returned on disconnect.
import { describe, expect, test } from 'vitest';
import { AclFlow, MAX_QUEUED_SDUS_PER_LINK } from '../../../src/hci/acl-flow.js';
import { DisconnectedError, InvalidStateError } from '../../../src/errors.js';

const pkt = (handle: number, n: number) => Uint8Array.of(0x02, handle & 0xff, handle >> 8, 1, 0, n);

function setup(total: number) {
  const wire: Array<[number, number]> = [];
  const flow = new AclFlow({ send: p => wire.push([p[1]! | ((p[2]! & 0x0f) << 8), p[5]!]) });
  flow.configure(27, total);
  return { wire, flow };
}

describe('acl flow', () => {
  test('credits are never exceeded and come back with Number Of Completed Packets', async () => {
    const { wire, flow } = setup(2);
    flow.open(0x40);
    const done = flow.enqueue(0x40, [pkt(0x40, 1), pkt(0x40, 2), pkt(0x40, 3), pkt(0x40, 4)]);
    expect(wire).toEqual([[0x40, 1], [0x40, 2]]);
    expect(flow.freeCredits).toBe(0);
    flow.completed(0x40, 1);
    expect(wire.length).toBe(3);
    flow.completed(0x40, 2);
    expect(wire.length).toBe(4);
    await done;
    expect(flow.inController(0x40)).toBe(1);
  });

  test(`a controller that returns no credits cannot grow a link's queue past ${MAX_QUEUED_SDUS_PER_LINK} SDUs; other links and the drain on disconnect still work`, async () => {
    const { wire, flow } = setup(1);
    flow.open(0x40); flow.open(0x41);
    const waiting = Array.from({ length: MAX_QUEUED_SDUS_PER_LINK + 1 }, (_, i) => flow.enqueue(0x40, [pkt(0x40, i & 0xff)]).catch(e => e as Error));
    // One went to the controller, MAX wait; the next is refused at once, with what is stuck and why.
    const over = await flow.enqueue(0x40, [pkt(0x40, 0xee)]).catch(e => e);
    expect(over).toBeInstanceOf(InvalidStateError);
    expect(over.message).toBe(`acl: send on handle 0x40 refused: ${MAX_QUEUED_SDUS_PER_LINK} SDUs already wait for controller buffers ` +
      '(1 sent and not reported completed, Vol 4, Part E, 4.1.1); await each send, or the controller has stopped returning credits');
    expect(wire).toEqual([[0x40, 0]]);
    // The bound is per link: another link still queues (and gets the credit in turn).
    const other = flow.enqueue(0x41, [pkt(0x41, 1)]);
    flow.completed(0x40, 1);
    flow.completed(0x40, 1);
    await other;
    expect(wire).toEqual([[0x40, 0], [0x40, 1], [0x41, 1]]);
    // Disconnect drains the stuck link: every waiting send settles.
    flow.close(0x40, new DisconnectedError('acl', 0x08, 'Connection Timeout'));
    const settled = await Promise.all(waiting);
    expect(settled.filter(e => e instanceof DisconnectedError).length).toBe(MAX_QUEUED_SDUS_PER_LINK - 1);
    expect(settled.filter(e => e === undefined).length).toBe(2);
  });

  test('a busy link cannot starve another: round robin one fragment per turn', () => {
    const { wire, flow } = setup(0);
    flow.open(1); flow.open(2);
    void flow.enqueue(1, [pkt(1, 1), pkt(1, 2)]);
    void flow.enqueue(1, [pkt(1, 3), pkt(1, 4)]);
    void flow.enqueue(2, [pkt(2, 1)]);
    expect(wire).toEqual([]);
    flow.configure(27, 1);
    for (let i = 0; i < 4; i++) flow.completed(wire[wire.length - 1]![0], 1);
    expect(wire).toEqual([[1, 1], [2, 1], [1, 2], [1, 3], [1, 4]]);
  });

  test('disconnect returns the credits the link held and rejects its queue', async () => {
    const { wire, flow } = setup(2);
    flow.open(1); flow.open(2);
    void flow.enqueue(1, [pkt(1, 1), pkt(1, 2)]);
    const queued = flow.enqueue(1, [pkt(1, 3)]);
    const other = flow.enqueue(2, [pkt(2, 1)]);
    expect(wire).toEqual([[1, 1], [1, 2]]);
    flow.close(1, new DisconnectedError('write', 0x13));
    await expect(queued).rejects.toBeInstanceOf(DisconnectedError);
    expect(wire).toEqual([[1, 1], [1, 2], [2, 1]]);
    await other;
    expect(flow.freeCredits).toBe(1);
  });

  test('completed packets for unknown handles, or more than were sent, are counted and ignored', () => {
    const { flow } = setup(3);
    flow.open(1);
    void flow.enqueue(1, [pkt(1, 1)]);
    flow.completed(0x99, 4);
    flow.completed(1, 3);
    expect(flow.unknownCompleted).toBe(6);
    expect(flow.freeCredits).toBe(3);
  });
});
