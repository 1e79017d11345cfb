import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { createCaptureWriter, parseCapture, openCaptureFile, type CaptureRecordInput } from '../../../src/capture/index.js';
import { TransportError } from '../../../src/errors.js';
import { memoryTransportPair } from '../../../src/transport/memory.js';
import { openTransport, registerTransport, transportForms } from '../../../src/transport/open.js';
import { recordTransport } from '../../../src/transport/record.js';
import { CaptureSourceTransport } from '../../../src/transport/capture-source.js';
import { collect } from './helpers.js';

const RESET = fromHex('01 03 0c 00');
const RESET_DONE = fromHex('04 0e 04 01 03 0c 00');

describe('memory transport pair', () => {
  it('synchronous: what one side sends the other receives at once; packets sent before setReceiver are queued', async () => {
    const [host, ctl] = memoryTransportPair();
    ctl.send(RESET_DONE); // before the host has a receiver
    const h = collect(host);
    const c = collect(ctl);
    expect(h.packets.map(p => toHex(p))).toEqual(['040e0401030c00']);
    host.send(RESET);
    expect(c.packets.map(p => toHex(p))).toEqual(['01030c00']);
    await host.close();
    expect(h.closed).toEqual({});
    expect(c.closed?.error).toMatchObject({ code: 'ETRANSPORT_EOF' });
    expect(() => ctl.send(RESET_DONE)).toThrow(TransportError);
  });

  it('async: delivery happens in a later microtask, so a handler that sends is not re-entered', async () => {
    const [host, ctl] = memoryTransportPair({ async: true });
    const order: string[] = [];
    ctl.setReceiver({
      packet: p => { order.push(`ctl got ${toHex(p)}`); ctl.send(RESET_DONE); order.push('ctl sent'); },
      closed: () => {},
    });
    const h = collect(host);
    host.send(RESET);
    order.push('host sent');
    expect(order).toEqual(['host sent']);
    await h.packetsReach(1);
    expect(order).toEqual(['host sent', 'ctl got 01030c00', 'ctl sent']);
    // Packets in flight still arrive before the close.
    ctl.send(RESET_DONE);
    await ctl.close();
    await h.whenClosed();
    expect(h.packets.length).toBe(2);
  });
});

describe('recording decorator', () => {
  it('tees both directions with timestamps into a capture that reads back', async () => {
    const [host, ctl] = memoryTransportPair();
    const chunks: Uint8Array[] = [];
    let t = 1_700_000_000_000_000;
    const rec = recordTransport(host, createCaptureWriter(c => chunks.push(c), { format: 'btsnoop' }), { nowUs: () => (t += 125) });
    expect(rec.description).toBe('memory (host side) (recording btsnoop)');
    const h = collect(rec);
    collect(ctl);
    rec.send(RESET);
    ctl.send(RESET_DONE);
    expect(h.packets.length).toBe(1);
    await rec.close();
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    chunks.reduce((o, c) => (all.set(c, o), o + c.length), 0);
    expect([...parseCapture(all)].map(r => [r.frame, r.dir, r.timeUs, toHex(r.packet!)])).toEqual([
      [1, 'tx', 1_700_000_000_000_125, '01030c00'],
      [2, 'rx', 1_700_000_000_000_250, '040e0401030c00'],
    ]);
  });

  it('openTransport with BLEWIRE_CAPTURE records into the named file (pcap here), closed with the transport', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-rec-'));
    try {
      let peer: ReturnType<typeof memoryTransportPair>[1] | undefined;
      registerTransport('test-mem', () => {
        const [host, ctl] = memoryTransportPair();
        peer = ctl;
        return host;
      });
      const t = await openTransport(undefined, { env: { BLEWIRE_TRANSPORT: 'test-mem', BLEWIRE_CAPTURE: join(dir, 'run-{ts}.pcap') } });
      collect(t);
      collect(peer!);
      t.send(RESET);
      peer!.send(RESET_DONE);
      const [file] = readdirSync(dir);
      expect(file).toMatch(/^run-\d{8}-\d{6}\.pcap$/);
      // Written synchronously: readable before close.
      expect([...parseCapture(readFileSync(join(dir, file!)))].map(r => [r.dir, toHex(r.packet!)])).toEqual([
        ['tx', '01030c00'], ['rx', '040e0401030c00'],
      ]);
      await peer!.close(); // the other side hangs up: the recorder closes its file too
      await t.close();
      const again = [...parseCapture(readFileSync(join(dir, file!)))];
      expect(again.length).toBe(2);
      // options.capture wins over the environment.
      const t2 = await openTransport('test-mem', { capture: join(dir, 'x.pcapng'), env: { BLEWIRE_CAPTURE: join(dir, 'y.btsnoop') } });
      await t2.close();
      expect(readdirSync(dir).sort()).toEqual([file, 'x.pcapng'].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('openTransport', () => {
  it('an unknown scheme is a TransportError listing the valid forms', async () => {
    const err = await openTransport('bogus:1', { env: {} }).catch(e => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err.code).toBe('ETRANSPORT_SPEC');
    expect(err.message).toMatch(/^transport "bogus:1": unknown transport "bogus"; valid forms: hci0, hci:N, hci-user:N, unix:\/path, tcp:host:port, serial:/);
    expect(err.message).toMatch(/capture:file/);
  });

  it('replay and sim are named but must be registered by their modules first', async () => {
    await expect(openTransport('sim', { env: {} })).rejects.toThrow(/the sim transport is not loaded/);
    await expect(openTransport('replay:x.btsnoop', { env: {} })).rejects.toThrow(/the replay transport is not loaded/);
    expect(transportForms()).toContain('sim[:scenario] (not loaded)');
    let got: [string, unknown] | undefined;
    registerTransport('sim', (rest, options) => {
      got = [rest, options['world']];
      return memoryTransportPair()[0];
    }, 'sim[:scenario]');
    const t = await openTransport('sim:two-peripherals', { env: {}, world: 42 });
    expect(got).toEqual(['two-peripherals', 42]);
    expect(transportForms()).toContain('sim[:scenario]');
    await t.close();
  });

  it('rejects malformed specs with the reason', async () => {
    await expect(openTransport('hci:x', { env: {} })).rejects.toThrow(/adapter index must be a number/);
    await expect(openTransport('tcp:localhost', { env: {} })).rejects.toThrow(/expected tcp:host:port/);
    await expect(openTransport('tcp:localhost:99999', { env: {} })).rejects.toThrow(/expected tcp:host:port/);
    await expect(openTransport('serial:/dev/ttyS0?baud=fast', { env: {} })).rejects.toThrow(/baud must be a number/);
    await expect(openTransport('serial:/dev/ttyS0?parity=odd', { env: {} })).rejects.toThrow(/unknown serial option "parity"/);
    await expect(openTransport(undefined, { env: {} })).rejects.toThrow(/set BLEWIRE_TRANSPORT/);
  });
});

describe('capture source', () => {
  const SESSION: CaptureRecordInput[] = [
    { dir: 'tx', timeUs: 1, packet: RESET, adapter: 0 },
    { dir: 'rx', timeUs: 2, packet: RESET_DONE, adapter: 0 },
    { dir: 'rx', timeUs: 3, packet: fromHex('04 0e 04 01 03 0c 01'), adapter: 1 },
    { dir: 'tx', timeUs: 4, packet: fromHex('01 01 10 00'), adapter: 0 },
    { dir: 'rx', timeUs: 5, packet: fromHex('04 0e 0c 01 01 10 00 0c 00 00 0c 0f 00 00 00'), adapter: 0 },
  ];

  function file(): { path: string; done: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-src-'));
    const path = join(dir, 's.btsnoop');
    const w = openCaptureFile(path, { monitor: true });
    SESSION.forEach(r => w.write(r));
    w.close();
    return { path, done: () => rmSync(dir, { recursive: true, force: true }) };
  }

  it('plays the controller → host packets in order, then closes', async () => {
    const f = file();
    try {
      const t = await openTransport(`capture:${f.path}`, { env: {} });
      const rx = collect(t);
      expect(await rx.whenClosed()).toEqual({});
      expect(rx.packets.map(p => toHex(p))).toEqual(SESSION.filter(r => r.dir === 'rx').map(r => toHex(r.packet!)));
    } finally { f.done(); }
  });

  it('one adapter, in lockstep with the host', async () => {
    const f = file();
    try {
      const waits: number[] = [];
      let waiting: (() => void) | undefined;
      const nextWait = () => new Promise<void>(r => (waiting = r));
      const t = new CaptureSourceTransport(f.path, { adapter: 0, lockstep: true, onWaitForHost: n => { waits.push(n); waiting?.(); } });
      let wait = nextWait();
      const rx = collect(t);
      // Nothing until the host sends what the file's first tx record stands for.
      await wait;
      expect(rx.packets.length).toBe(0);
      wait = nextWait();
      t.send(RESET);
      await wait; // at record 4, after delivering record 2 and skipping adapter 1's record 3
      expect(rx.packets.map(p => toHex(p))).toEqual(['040e0401030c00']);
      t.send(fromHex('01 01 10 00'));
      await rx.whenClosed();
      expect(rx.packets.map(p => toHex(p))).toEqual(['040e0401030c00', '040e0c010110000c00000c0f000000']);
      expect(t.sent.length).toBe(2);
      expect(waits).toEqual([1, 4]);
    } finally { f.done(); }
  });

  it('a missing file closes the transport with a TransportError', async () => {
    const t = await openTransport('capture:/nonexistent.btsnoop', { env: {} });
    const closed = await collect(t).whenClosed();
    expect(closed.error).toMatchObject({ code: 'ETRANSPORT_CONNECT' });
  });
});
