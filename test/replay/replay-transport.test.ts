// Pins the replay transport's contract on small recordings written here byte by byte: host packets are
// expectations checked in order (after masks), controller packets are injected only after the
// expectations before them, the virtual clock follows the recording so host timers replay, and every
// divergence (mismatch, out of order, extra, early, stalled, incomplete) fails with a decoded diff.
import { describe, expect, test } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex } from '../../src/bytes/hex.js';
import { createCaptureWriter } from '../../src/capture/writer.js';
import type { CaptureRecord } from '../../src/capture/types.js';
import { encodeAcl, encodeCommand } from '../../src/hci/packets.js';
import { openTransport } from '../../src/transport/open.js';
import { ReplayDivergenceError, ReplayTransport, type ReplayOptions } from '../../src/replay/transport.js';

const T0 = 1_700_000_000_000_000;
let frame = 0;
function rec(dir: 'tx' | 'rx', ms: number, packet: string | Uint8Array): CaptureRecord {
  return { frame: ++frame, dir, timeUs: T0 + Math.round(ms * 1000), packet: typeof packet === 'string' ? fromHex(packet.replace(/ /g, '')) : packet };
}
function recording(...records: CaptureRecord[]): CaptureRecord[] {
  frame = 0;
  return records.map((r, i) => ({ ...r, frame: i + 1 }));
}

const RESET = '01 03 0c 00';
const RESET_OK = '04 0e 04 01 03 0c 00';
const scanParams = (type: number) => encodeCommand({ kind: 'leSetScanParameters', leScanType: type, leScanInterval: 0x60, leScanWindow: 0x30, ownAddressType: 0, scanningFilterPolicy: 0 });
const SCAN_PARAMS_OK = '04 0e 04 01 0b 20 00';
const scanEnable = (on: number) => encodeCommand({ kind: 'leSetScanEnable', enable: on, filterDuplicates: 0 });
const SCAN_ENABLE_OK = '04 0e 04 01 0c 20 00';
// ATT Read Request of handle h on connection 0x0040, in one ACL packet (L2CAP length 3, CID 0x0004).
const readReq = (h: number) => encodeAcl({ handle: 0x40, pb: 0, data: Uint8Array.of(3, 0, 4, 0, 0x0a, h & 0xff, h >> 8) });

/** A minimal "host": the test sends packets itself and records what it receives. */
function drive(t: ReplayTransport) {
  const got: string[] = [];
  let closedWith: Error | undefined | null = null;
  const waiters: Array<() => void> = [];
  t.setReceiver({
    packet: p => { got.push(Buffer.from(p).toString('hex')); waiters.splice(0).forEach(w => w()); },
    closed: e => { closedWith = e; waiters.splice(0).forEach(w => w()); },
  });
  return {
    got,
    get closedWith() { return closedWith; },
    /** Resolves once `n` packets have arrived. */
    async received(n: number): Promise<void> {
      while (got.length < n && closedWith === null) await new Promise<void>(r => waiters.push(r));
    },
  };
}

function replay(records: CaptureRecord[], options: ReplayOptions = {}) {
  return new ReplayTransport(records, { name: 'test', ...options });
}

async function divergence(t: ReplayTransport): Promise<ReplayDivergenceError> {
  const e = await t.finished.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(ReplayDivergenceError);
  return e as ReplayDivergenceError;
}

describe('replay transport: playing a recording', () => {
  test('controller packets come only after the host sent what precedes them; finished resolves at the end', async () => {
    const t = replay(recording(rec('tx', 0, RESET), rec('rx', 1, RESET_OK), rec('tx', 2, scanParams(1)), rec('rx', 3, SCAN_PARAMS_OK)));
    const host = drive(t);
    await new Promise(r => setImmediate(r));
    await new Promise(r => setImmediate(r));
    expect(host.got).toEqual([]); // nothing injected before the host's Reset
    t.send(fromHex('01030c00'));
    await host.received(1);
    expect(host.got).toEqual(['040e0401030c00']);
    t.send(scanParams(1));
    await t.finished;
    expect(host.got).toEqual(['040e0401030c00', '040e04010b2000']);
    expect(t.progress).toMatchObject({ total: 4, played: 4, matched: 2, injected: 2, nextFrame: undefined });
    expect(t.clock.now()).toBe(3);
  });

  test('a host timer armed on an injected packet fires at the recorded time (idle periods replay)', async () => {
    const t = replay(recording(rec('tx', 0, scanEnable(1)), rec('rx', 0.05, SCAN_ENABLE_OK), rec('tx', 2000.05, scanEnable(0)), rec('rx', 2000.1, SCAN_ENABLE_OK)));
    const host = drive(t);
    const firedAt: number[] = [];
    t.send(scanEnable(1));
    await host.received(1);
    // As a scanner with a 2 s duration would: stop scanning 2000 ms after the scan started.
    t.clock.setTimeout(() => { firedAt.push(t.clock.now()); t.send(scanEnable(0)); }, 2000);
    await t.finished;
    expect(firedAt).toEqual([2000.05]);
    expect(t.clock.pendingTimers).toBe(0);
  });

  test('rx records within batchUs of each other are injected in one synchronous run', async () => {
    const records = recording(rec('tx', 0, RESET), rec('rx', 1, RESET_OK), rec('rx', 1.01, SCAN_PARAMS_OK), rec('rx', 5, SCAN_ENABLE_OK));
    const t = replay(records, { batchUs: 50 });
    const seen: Array<[string, number]> = [];
    let turn = 0;
    const ticker = setInterval(() => turn++, 0);
    t.setReceiver({ packet: p => seen.push([Buffer.from(p).toString('hex'), turn]), closed: () => undefined });
    t.send(fromHex('01030c00'));
    await t.finished;
    clearInterval(ticker);
    expect(seen.map(s => s[0])).toEqual(['040e0401030c00', '040e04010b2000', '040e04010c2000']);
    expect(seen[0]![1]).toBe(seen[1]![1]); // same synchronous run
  });

  test('masks: a decoded field of one command kind, and a byte range of one frame', async () => {
    const records = recording(
      rec('tx', 0, encodeCommand({ kind: 'leSetRandomAddress', randomAddress: 'C1:02:03:04:05:06' })),
      rec('rx', 1, '04 0e 04 01 05 20 00'),
      rec('tx', 2, scanParams(1)),
      rec('rx', 3, SCAN_PARAMS_OK),
    );
    const t = replay(records, { masks: [{ kind: 'leSetRandomAddress', field: 'randomAddress' }, { frame: 3, offset: 4, length: 1 }] });
    const host = drive(t);
    t.send(encodeCommand({ kind: 'leSetRandomAddress', randomAddress: 'D9:AA:BB:CC:DD:EE' }));
    await host.received(1);
    t.send(scanParams(0)); // leScanType is byte 4: masked for frame 3 only
    await t.finished;

    // Without the masks the same host fails at the first packet.
    const strict = replay(records);
    drive(strict);
    strict.send(encodeCommand({ kind: 'leSetRandomAddress', randomAddress: 'D9:AA:BB:CC:DD:EE' }));
    const e = await divergence(strict);
    expect(e.kind).toBe('mismatch');
    expect(e.message).toContain('fields that differ: randomAddress: "C1:02:03:04:05:06" → "D9:AA:BB:CC:DD:EE"');
  });

  test('openTransport("replay:file") plays a capture file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-replay-'));
    const chunks: Uint8Array[] = [];
    const w = createCaptureWriter(b => chunks.push(Uint8Array.from(b)), { format: 'btsnoop' });
    for (const r of recording(rec('tx', 0, RESET), rec('rx', 1, RESET_OK))) w.write(r);
    w.close();
    const path = join(dir, 'capture.btsnoop');
    writeFileSync(path, Buffer.concat(chunks));
    const t = await openTransport(`replay:${path}`) as ReplayTransport;
    expect(t.description).toBe(`replay:${path}`);
    const host = drive(t);
    t.send(fromHex('01030c00'));
    await host.received(1);
    await t.finished;
    await t.close();
  });
});

describe('replay transport: divergences fail with a decoded diff', () => {
  test('a different command: both decoded, the differing field named, the first differing byte, context', async () => {
    const t = replay(recording(rec('tx', 0, RESET), rec('rx', 1, RESET_OK), rec('tx', 2, scanParams(1)), rec('rx', 3, SCAN_PARAMS_OK)));
    const host = drive(t);
    t.send(fromHex('01030c00'));
    await host.received(1);
    t.send(scanParams(0));
    const e = await divergence(t);
    expect(e.kind).toBe('mismatch');
    expect(e.frame).toBe(3);
    const lines = e.message.split('\n');
    expect(lines[0]).toBe("replay:test: mismatch at frame 3 (record 3 of 4, t=+1.000 ms): the host's packet differs from frame 3");
    expect(lines[1]).toBe('  expected: host → controller LE Set Scan Parameters leScanType=1 leScanInterval=96 leScanWindow=48 ownAddressType=0 scanningFilterPolicy=0');
    expect(lines[2]).toBe('  actual:   host → controller LE Set Scan Parameters leScanType=0 leScanInterval=96 leScanWindow=48 ownAddressType=0 scanningFilterPolicy=0');
    expect(lines[3]).toBe('  fields that differ: leScanType: 1 → 0');
    expect(lines[4]).toBe('  expected bytes: 01 0b 20 07 01 60 00 30 00 00 00');
    expect(lines[5]).toBe('  actual bytes:   01 0b 20 07 00 60 00 30 00 00 00');
    expect(lines[6]).toBe('  first difference at byte 4');
    expect(e.message).toContain('  context (last 2 records played):\n    frame 1 +0.000 ms host → controller Reset\n    frame 2 +1.000 ms controller → host Command Complete Reset');
    expect(e.message).toContain('  next in the recording:\n    frame 3 +2.000 ms host → controller LE Set Scan Parameters');
    // The host learns it too: its receiver is closed with the same error, and sending again throws it.
    expect(host.closedWith).toBe(e);
    expect(() => t.send(scanParams(1))).toThrow(e);
  });

  test('ATT inside ACL is decoded in the diff (handle 3 expected, 4 sent)', async () => {
    const t = replay(recording(rec('tx', 0, readReq(3)), rec('rx', 1, encodeAcl({ handle: 0x40, pb: 2, data: fromHex('020004000b01') }))));
    drive(t);
    t.send(readReq(4));
    const e = await divergence(t);
    expect(e.message).toContain('expected: host → controller ACL handle=0x0040 pb=first-non-flushable bc=0 len=7 | ATT readReq handle=0x0003');
    expect(e.message).toContain('actual:   host → controller ACL handle=0x0040 pb=first-non-flushable bc=0 len=7 | ATT readReq handle=0x0004');
    expect(e.message).toContain('fields that differ: pdu.handle: 3 → 4');
  });

  test('a second request before the first one\'s response is out of order (a pipelining regression)', async () => {
    const t = replay(recording(rec('tx', 0, readReq(3)), rec('rx', 30, encodeAcl({ handle: 0x40, pb: 2, data: fromHex('020004000b01') })), rec('tx', 31, readReq(5))));
    drive(t);
    t.send(readReq(3));
    t.send(readReq(5)); // synchronously: the response to the first is not injected yet
    const e = await divergence(t);
    expect(e.kind).toBe('out-of-order');
    expect(e.frame).toBe(2);
    expect(e.message).toContain("the recording's next record (frame 2) is controller → host: the host did not wait for it (the next host packet expected is frame 3)");
    expect(e.message).toContain('actual:   host → controller ACL handle=0x0040 pb=first-non-flushable bc=0 len=7 | ATT readReq handle=0x0005');
    expect(e.message).toContain('context (last 1 records played):\n    frame 1 +0.000 ms host → controller ACL handle=0x0040');
    expect(e.message).toContain('next in the recording:\n    frame 2 +30.000 ms controller → host ACL handle=0x0040 pb=first-flushable bc=0 len=6 | ATT readRsp value=01');
  });

  test('a packet after the last record is extra', async () => {
    const t = replay(recording(rec('tx', 0, RESET), rec('rx', 1, RESET_OK)));
    const host = drive(t);
    t.send(fromHex('01030c00'));
    await host.received(1);
    await t.finished;
    t.send(scanEnable(1));
    expect(t.divergence?.kind).toBe('extra');
    expect(t.divergence?.message).toContain('the host sent a packet after the last record of the recording');
    expect(t.divergence?.message).toContain('actual:   host → controller LE Set Scan Enable enable=1 filterDuplicates=0');
  });

  test('a timeout that fires before its recorded time is early', async () => {
    const t = replay(recording(rec('tx', 0, scanEnable(1)), rec('rx', 0.05, SCAN_ENABLE_OK), rec('tx', 2000.05, scanEnable(0)), rec('rx', 2000.1, SCAN_ENABLE_OK)));
    const host = drive(t);
    t.send(scanEnable(1));
    await host.received(1);
    t.clock.setTimeout(() => t.send(scanEnable(0)), 1000); // a regression: 1 s instead of 2 s
    const e = await divergence(t);
    expect(e.kind).toBe('early');
    expect(e.message).toContain('the host sent frame 3 at +1000.050 ms, 1000.000 ms before its recorded time (+2000.050 ms)');
  });

  test('a host that never sends what the recording expects stalls after the slack, with the clock moved on', async () => {
    const t = replay(recording(rec('tx', 0, RESET), rec('rx', 1, RESET_OK), rec('tx', 10, scanParams(1))), { slackMs: 500 });
    const host = drive(t);
    t.send(fromHex('01030c00'));
    await host.received(1);
    const e = await divergence(t);
    expect(e.kind).toBe('stalled');
    expect(e.message).toContain("the host sent nothing by 500 ms after frame 3's recorded time (+10.000 ms)");
    expect(e.message).toContain('expected: host → controller LE Set Scan Parameters leScanType=1');
    expect(t.clock.now()).toBe(510);
    expect(host.closedWith).toBe(e);
  });

  test('closing before the end leaves finished rejected as incomplete, naming the frame it waited for', async () => {
    const t = replay(recording(rec('tx', 0, RESET), rec('rx', 1, RESET_OK), rec('tx', 2, scanParams(1))));
    const host = drive(t);
    t.send(fromHex('01030c00'));
    await host.received(1);
    await t.close();
    const e = await divergence(t);
    expect(e.kind).toBe('incomplete');
    expect(e.message).toContain('incomplete at frame 3');
    expect(e.message).toContain('1 of 3 records not played');
  });
});
