import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Duplex } from 'node:stream';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { TransportError } from '../../../src/errors.js';
import { openTransport } from '../../../src/transport/open.js';
import { openSerialTransport, StreamTransport } from '../../../src/transport/stream.js';
import { collect } from './helpers.js';

let cleanup: (() => void)[] = [];
afterEach(() => { cleanup.reverse().forEach(f => f()); cleanup = []; });

/** A server whose accepted socket the test drives. */
async function server(listen: (s: Server) => void): Promise<{ server: Server; peer: Promise<Socket> }> {
  const s = createServer();
  const peer = new Promise<Socket>(resolve => s.once('connection', resolve));
  await new Promise<void>(resolve => { s.once('listening', resolve); listen(s); });
  cleanup.push(() => s.close());
  return { server: s, peer };
}

function readAll(sock: Socket, n: number): Promise<Uint8Array> {
  return new Promise(resolve => {
    const parts: Buffer[] = [];
    const on = (b: Buffer) => {
      parts.push(b);
      const all = Buffer.concat(parts);
      if (all.length >= n) { sock.off('data', on); resolve(all); }
    };
    sock.on('data', on);
  });
}

describe('H4 over a unix socket', () => {
  it('sends whole packets, frames what arrives in pieces, and closes cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-h4-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'ctl.sock');
    const { peer } = await server(s => s.listen(path));
    const t = await openTransport(`unix:${path}`, { env: {} });
    expect(t.description).toBe(`unix:${path}`);
    const rx = collect(t);
    const sock = await peer;
    t.send(fromHex('01 03 0c 00'));
    expect(toHex(await readAll(sock, 4))).toBe('01030c00');
    sock.write(fromHex('04 0e 04'));
    sock.write(fromHex('01 03 0c 00 04 0e'));
    sock.write(fromHex('04 01 03 0c 00'));
    await rx.packetsReach(2);
    expect(rx.packets.map(p => toHex(p))).toEqual(['040e0401030c00', '040e0401030c00']);
    await t.close();
    expect(rx.closed).toEqual({});
    expect(() => t.send(fromHex('01 03 0c 00'))).toThrow(expect.objectContaining({ code: 'ETRANSPORT_CLOSED' }));
  });

  it('a missing socket is a TransportError that says what to check', async () => {
    await expect(openTransport('unix:/nonexistent/bt.sock', { env: {} })).rejects.toMatchObject({
      code: 'ETRANSPORT_CONNECT', message: expect.stringMatching(/no such socket/),
    });
  });
});

describe('H4 over TCP', () => {
  it('delivers packets, then reports EOF in the middle of a packet as a TransportError', async () => {
    const { server: s, peer } = await server(s => s.listen(0, '127.0.0.1'));
    const port = (s.address() as { port: number }).port;
    const t = await openTransport(`tcp:127.0.0.1:${port}`, { env: {} });
    const rx = collect(t);
    const sock = await peer;
    sock.write(fromHex('04 0e 04 01 03 0c 00 02 40 00 07 00 03 00'));
    await rx.packetsReach(1);
    sock.end();
    const closed = await rx.whenClosed();
    expect(closed.error).toBeInstanceOf(TransportError);
    expect((closed.error as TransportError).code).toBe('ETRANSPORT_EOF');
    expect(closed.error!.message).toBe(`tcp:127.0.0.1:${port}: the other side closed the stream in the middle of a packet (7 of 12 byte(s) received)`);
    expect(rx.packets.map(p => toHex(p))).toEqual(['040e0401030c00']);
  });

  it('EOF between packets is still an error (a controller never hangs up by itself)', async () => {
    const { server: s, peer } = await server(s => s.listen(0, '127.0.0.1'));
    const t = await openTransport(`tcp:[127.0.0.1]:${(s.address() as { port: number }).port}`, { env: {} });
    const rx = collect(t);
    (await peer).end(fromHex('04 13 00'));
    const closed = await rx.whenClosed();
    expect(rx.packets.map(p => toHex(p))).toEqual(['041300']);
    expect(closed.error?.message).toMatch(/the other side closed the stream$/);
  });

  it('bytes that are not H4 close the transport with a framing error', async () => {
    const { server: s, peer } = await server(s => s.listen(0, '127.0.0.1'));
    const t = await openTransport(`tcp:localhost:${(s.address() as { port: number }).port}`, { env: {} });
    const rx = collect(t);
    (await peer).write(fromHex('04 13 00 ff 00'));
    const closed = await rx.whenClosed();
    expect(closed.error).toMatchObject({ code: 'ETRANSPORT_FRAMING', message: expect.stringMatching(/unknown packet indicator 0xff/) });
  });

  it('a refused connection is a TransportError', async () => {
    const { server: s } = await server(s => s.listen(0, '127.0.0.1'));
    const port = (s.address() as { port: number }).port;
    await new Promise(r => s.close(r));
    await expect(openTransport(`tcp:127.0.0.1:${port}`, { env: {} })).rejects.toMatchObject({ code: 'ETRANSPORT_CONNECT' });
  });
});

describe('H4 over a serial port', () => {
  it('without the serialport package: a TransportError saying to install it', async () => {
    const missing = () => Promise.reject(Object.assign(new Error("Cannot find package 'serialport'"), { code: 'ERR_MODULE_NOT_FOUND' }));
    await expect(openSerialTransport('/dev/ttyACM0', { loadModule: missing })).rejects.toMatchObject({
      code: 'ETRANSPORT_MODULE_MISSING', message: expect.stringMatching(/npm install serialport/),
    });
  });

  it('opens the port with the baud rate and flow control from the spec and frames its bytes', async () => {
    const opened: unknown[] = [];
    let device!: PassThrough;
    const written: Uint8Array[] = [];
    class FakeSerialPort extends Duplex {
      constructor(opts: unknown) {
        super();
        opened.push(opts);
        device = new PassThrough();
        device.on('data', (c: Buffer) => this.push(c));
        device.on('end', () => this.push(null));
      }
      open(cb: (err: Error | null) => void) { setImmediate(() => cb(null)); }
      override _read() {}
      override _write(c: Buffer, _e: BufferEncoding, cb: () => void) { written.push(c); cb(); }
    }
    const t = await openTransport('serial:/dev/ttyACM3?baud=115200&rtscts=0', { env: {}, serial: { loadModule: async () => ({ SerialPort: FakeSerialPort }) } });
    expect(opened).toEqual([{ path: '/dev/ttyACM3', baudRate: 115200, rtscts: false, autoOpen: false }]);
    expect(t.description).toBe('serial:/dev/ttyACM3?baud=115200');
    expect(t).toBeInstanceOf(StreamTransport);
    const rx = collect(t);
    device.write(fromHex('04 0e 04 01'));
    device.write(fromHex('03 0c 00'));
    await rx.packetsReach(1);
    expect(toHex(rx.packets[0]!)).toBe('040e0401030c00');
    t.send(fromHex('01 03 0c 00'));
    expect(written.map(w => toHex(w))).toEqual(['01030c00']);
    await t.close();
    expect(rx.closed).toEqual({});
  });
});
