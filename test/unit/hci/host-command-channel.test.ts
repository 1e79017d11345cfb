// Pins the HCI command channel: credits from Num_HCI_Command_Packets, opcode correlation, typed status
// errors, timeouts on a fake clock and AbortSignal, asserting the packets put on the wire.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { AbortError, HciStatusError, InvalidStateError, TimeoutError, TransportError } from '../../../src/errors.js';
import { CommandChannel, MAX_QUEUED_COMMANDS } from '../../../src/hci/command-channel.js';
import { statusName } from '../../../src/hci/status.js';
import { toHex } from '../../../src/bytes/hex.js';

const cmd = (opcode: number, ...params: number[]) =>
  Uint8Array.of(0x01, opcode & 0xff, opcode >> 8, params.length, ...params);

function setup() {
  const clock = new FakeClock();
  const wire: string[] = [];
  const timeouts: string[] = [];
  const ch = new CommandChannel({
    clock, statusName, send: p => wire.push(toHex(p)), onTimeout: name => timeouts.push(name),
  });
  return { clock, wire, ch, timeouts };
}

describe('command channel', () => {
  test('starts with one credit and never exceeds the credits the controller grants', async () => {
    const { wire, ch } = setup();
    const a = ch.submit({ packet: cmd(0x0c03), opcode: 0x0c03, name: 'reset', completes: 'complete' });
    const b = ch.submit({ packet: cmd(0x1001), opcode: 0x1001, name: 'readLocalVersionInformation', completes: 'complete' });
    const c = ch.submit({ packet: cmd(0x1002), opcode: 0x1002, name: 'readLocalSupportedCommands', completes: 'complete' });
    expect(wire).toEqual(['01030c00']); // only one on the wire
    ch.onCommandComplete(2, 0x0c03, Uint8Array.of(0));
    expect((await a).status).toBe(0);
    expect(wire).toEqual(['01030c00', '01011000', '01021000']); // two credits granted: both sent
    ch.onCommandComplete(0, 0x1001, Uint8Array.of(0, 9));
    expect((await b).returnParameters).toEqual(Uint8Array.of(0, 9));
    const d = ch.submit({ packet: cmd(0x1003), opcode: 0x1003, name: 'x', completes: 'complete' });
    expect(wire.length).toBe(3); // credits 0: d waits
    ch.onCommandComplete(1, 0x1002, Uint8Array.of(0));
    await c;
    expect(wire.length).toBe(4);
    ch.onCommandComplete(1, 0x1003, Uint8Array.of(0));
    await d;
  });

  test('credit-only event (opcode 0x0000) releases queued commands', () => {
    const { wire, ch } = setup();
    void ch.submit({ packet: cmd(0x0c03), opcode: 0x0c03, name: 'reset', completes: 'complete' });
    void ch.submit({ packet: cmd(0x1001), opcode: 0x1001, name: 'v', completes: 'complete' });
    expect(wire.length).toBe(1);
    ch.onCommandStatus(0, 2, 0x0000); // one still in flight, two credits: one more may go
    expect(wire.length).toBe(2);
    expect(ch.outstanding).toBe(2);
  });

  test('non-zero status rejects with HciStatusError naming status and command (Command Disallowed)', async () => {
    const { ch } = setup();
    const p = ch.submit({ packet: cmd(0x200d), opcode: 0x200d, name: 'leCreateConnection', completes: 'status' });
    ch.onCommandStatus(0x0c, 1, 0x200d);
    const e = await p.catch(x => x);
    expect(e).toBeInstanceOf(HciStatusError);
    expect(e.status).toBe(0x0c);
    expect(e.message).toContain('leCreateConnection');
    expect(e.message).toContain('Command Disallowed');
  });

  test('unknown command answered by Command Status 0x01 rejects a command that expects Command Complete', async () => {
    const { ch } = setup();
    const p = ch.submit({ packet: cmd(0x2022), opcode: 0x2022, name: 'leSetDataLength', completes: 'complete' });
    ch.onCommandStatus(0x01, 1, 0x2022);
    await expect(p).rejects.toMatchObject({ status: 0x01, statusName: 'Unknown HCI Command' });
  });

  test('answers correlate by opcode, not by order', async () => {
    const { ch } = setup();
    ch.onCommandStatus(0, 3, 0);
    const a = ch.submit({ packet: cmd(0x0406, 1, 0, 0x13), opcode: 0x0406, name: 'disconnect', completes: 'status' });
    const b = ch.submit({ packet: cmd(0x200c, 1, 0), opcode: 0x200c, name: 'leSetScanEnable', completes: 'complete' });
    ch.onCommandComplete(3, 0x200c, Uint8Array.of(0));
    await b;
    ch.onCommandStatus(0, 3, 0x0406);
    await a;
  });

  test('timeout rejects with TimeoutError, gives the credit back and the queue moves on', async () => {
    const { ch, clock, wire, timeouts } = setup();
    const a = ch.submit({ packet: cmd(0x0c03), opcode: 0x0c03, name: 'reset', completes: 'complete', timeoutMs: 1000 });
    const b = ch.submit({ packet: cmd(0x1001), opcode: 0x1001, name: 'v', completes: 'complete', timeoutMs: 5000 });
    clock.advance(999);
    expect(wire.length).toBe(1);
    clock.advance(1);
    const e = await a.catch(x => x);
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e.layer).toBe('hci');
    expect(timeouts).toEqual(['reset']);
    expect(wire).toEqual(['01030c00', '01011000']);
    ch.onCommandComplete(1, 0x1001, Uint8Array.of(0));
    await b;
    expect(clock.pendingTimers).toBe(0);
  });

  test('a command that never left the queue for lack of credits says so; one sent and unanswered says that', async () => {
    const { ch, clock, wire } = setup();
    const a = ch.submit({ packet: cmd(0x0c03), opcode: 0x0c03, name: 'reset', completes: 'complete', timeoutMs: 5000 });
    const b = ch.submit({ packet: cmd(0x1001), opcode: 0x1001, name: 'readLocalVersionInformation', completes: 'complete', timeoutMs: 1000 });
    clock.advance(1000);
    const eb = await b.catch(x => x);
    expect(eb).toBeInstanceOf(TimeoutError);
    expect(eb.message).toBe('hci: readLocalVersionInformation timed out after 1000 ms: it was never sent: the controller granted ' +
      'no command credit (Num_HCI_Command_Packets, Vol 4, Part E, 4.4) in that time; 1 sent command(s) still unanswered, ' +
      'oldest reset; is the controller hung? Reset it or reopen the adapter');
    expect(wire).toEqual(['01030c00']); // it really never went out
    clock.advance(4000);
    const ea = await a.catch(x => x);
    expect(ea.message).toMatch(/^hci: reset timed out after 5000 ms: it was sent but the controller answered with neither Command Complete nor Command Status/);
  });

  test(`the wait queue is bounded (MAX_QUEUED_COMMANDS = ${MAX_QUEUED_COMMANDS}): a controller that grants no credit cannot grow it`, async () => {
    const { ch, clock, wire } = setup();
    const first = ch.submit({ packet: cmd(0x0c03), opcode: 0x0c03, name: 'reset', completes: 'complete' });
    const queued = Array.from({ length: MAX_QUEUED_COMMANDS }, () =>
      ch.submit({ packet: cmd(0x1001), opcode: 0x1001, name: 'v', completes: 'complete' }).catch(e => e as Error));
    expect(ch.queued).toBe(MAX_QUEUED_COMMANDS);
    const over = await ch.submit({ packet: cmd(0x1002), opcode: 0x1002, name: 'readLocalSupportedCommands', completes: 'complete' }).catch(e => e);
    expect(over).toBeInstanceOf(InvalidStateError);
    expect(over.message).toMatch(/^hci: readLocalSupportedCommands not sent: 256 commands already wait for a controller credit/);
    expect(ch.queued).toBe(MAX_QUEUED_COMMANDS);
    expect(wire.length).toBe(1);
    // Their deadlines still free everything: no timer, no promise outlives them.
    clock.advance(5000);
    await first.catch(() => undefined);
    for (const e of await Promise.all(queued)) expect(e).toBeInstanceOf(Error);
    expect(ch.queued).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  test('abort of a queued command removes it; abort in flight keeps the slot until the answer', async () => {
    const { ch, wire, clock } = setup();
    const ac1 = new AbortController();
    const ac2 = new AbortController();
    const a = ch.submit({ packet: cmd(0x200c, 1, 0), opcode: 0x200c, name: 'leSetScanEnable', completes: 'complete', signal: ac1.signal });
    const b = ch.submit({ packet: cmd(0x1001), opcode: 0x1001, name: 'v', completes: 'complete', signal: ac2.signal });
    ac2.abort();
    await expect(b).rejects.toBeInstanceOf(AbortError);
    ac1.abort();
    await expect(a).rejects.toBeInstanceOf(AbortError);
    // A second command with the same opcode must not take the first one's late answer.
    const c = ch.submit({ packet: cmd(0x200c, 0, 0), opcode: 0x200c, name: 'leSetScanEnable', completes: 'complete' });
    expect(wire).toEqual(['010c20020100']);
    ch.onCommandComplete(1, 0x200c, Uint8Array.of(0)); // answers the aborted one
    expect(wire).toEqual(['010c20020100', '010c20020000']);
    let settled = false;
    void c.then(() => { settled = true; });
    await Promise.resolve();
    expect(settled).toBe(false);
    ch.onCommandComplete(1, 0x200c, Uint8Array.of(0));
    await c;
    expect(clock.pendingTimers).toBe(0);
  });

  test('close rejects everything in flight and queued, and later submissions', async () => {
    const { ch, clock } = setup();
    const a = ch.submit({ packet: cmd(0x0c03), opcode: 0x0c03, name: 'reset', completes: 'complete' });
    const b = ch.submit({ packet: cmd(0x1001), opcode: 0x1001, name: 'v', completes: 'complete' });
    const err = new TransportError('gone');
    ch.close(err);
    await expect(a).rejects.toBe(err);
    await expect(b).rejects.toBe(err);
    await expect(ch.submit({ packet: cmd(0x0c03), opcode: 0x0c03, name: 'reset', completes: 'complete' })).rejects.toBe(err);
    expect(clock.pendingTimers).toBe(0);
    ch.reopen();
    const c = ch.submit({ packet: cmd(0x0c03), opcode: 0x0c03, name: 'reset', completes: 'complete' });
    ch.onCommandComplete(1, 0x0c03, Uint8Array.of(0));
    await c;
  });
});
