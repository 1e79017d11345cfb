// The WebSocket transport (src/transport/websocket.ts) and the relay (src/tooling/websocket-relay.ts),
// in Node against the `ws` package's server: the H4 stream reassembled wherever messages split it,
// hostile input from either end closing with a typed error, bounded opening, and a whole host
// (Adapter.open over ws://) scanning and reading the simulator through the relay.
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { Adapter } from '../../../src/api/adapter.js';
import { TransportError } from '../../../src/errors.js';
import { createSimulator } from '../../../src/sim/index.js';
import { startWebSocketRelay } from '../../../src/tooling/websocket-relay.js';
import { openTransport } from '../../../src/transport/open.js';
import { WebSocketTransport, type WebSocketClass } from '../../../src/transport/websocket.js';
import type { TransportReceiver } from '../../../src/transport/types.js';
import '../../../src/transports.js';

const WS = WebSocket as unknown as WebSocketClass;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); });

/** A ws server on a free port; `peer` resolves with the server side of the first connection. */
async function server(): Promise<{ url: string; peer: Promise<WebSocket> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>(r => wss.once('listening', () => r()));
  cleanup.push(() => new Promise<void>(r => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }));
  const peer = new Promise<WebSocket>(r => wss.once('connection', ws => r(ws)));
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, peer };
}

function collect(t: WebSocketTransport): { packets: number[][]; closed: Promise<Error | undefined> } {
  const packets: number[][] = [];
  let done!: (e: Error | undefined) => void;
  const closed = new Promise<Error | undefined>(r => { done = r; });
  const receiver: TransportReceiver = { packet: p => packets.push([...p]), closed: e => done(e) };
  t.setReceiver(receiver);
  return { packets, closed };
}

describe('WebSocketTransport', () => {
  test('packets split across messages and several in one message arrive whole; what we send goes out as is', async () => {
    const { url, peer } = await server();
    const t = await WebSocketTransport.open(url, { WebSocket: WS });
    cleanup.push(() => t.close());
    const rx = collect(t);
    const ws = await peer;
    const got = new Promise<number[]>(r => ws.once('message', d => r([...(d as Buffer)])));
    t.send(Uint8Array.of(0x01, 0x03, 0x0c, 0x00)); // HCI Reset
    expect(await got).toEqual([0x01, 0x03, 0x0c, 0x00]);
    // Command Complete (Reset) split after 2 octets, then an ACL packet and a second event in one message.
    ws.send(Uint8Array.of(0x04, 0x0e));
    ws.send(Uint8Array.of(0x04, 0x01, 0x03, 0x0c, 0x00, 0x02, 0x40, 0x00, 0x01, 0x00, 0xaa, 0x04, 0x13, 0x00));
    await new Promise(r => setTimeout(r, 50));
    expect(rx.packets).toEqual([[0x04, 0x0e, 0x04, 0x01, 0x03, 0x0c, 0x00], [0x02, 0x40, 0x00, 0x01, 0x00, 0xaa], [0x04, 0x13, 0x00]]);
  });

  test('a receiver that takes packets in place gets each whole packet of a message as the message plus its place', async () => {
    const { url, peer } = await server();
    const t = await WebSocketTransport.open(url, { WebSocket: WS });
    cleanup.push(() => t.close());
    const seen: Array<{ how: string; bytes: number[] }> = [];
    t.setReceiver({
      packet: p => seen.push({ how: 'packet', bytes: [...p] }),
      packetAt: (b, start, end, buffer, base) => {
        // The octets as a view made from the numbers alone, and as indexed in b: the same.
        expect([...b.subarray(start, end)]).toEqual([...new Uint8Array(buffer, base + start, end - start)]);
        seen.push({ how: 'at', bytes: [...new Uint8Array(buffer, base + start, end - start)] });
      },
      closed: () => {},
    });
    const ws = await peer;
    ws.send(Uint8Array.of(0x04, 0x0e));
    ws.send(Uint8Array.of(0x04, 0x01, 0x03, 0x0c, 0x00, 0x02, 0x40, 0x00, 0x01, 0x00, 0xaa, 0x04, 0x13, 0x00));
    await new Promise(r => setTimeout(r, 50));
    expect(seen).toEqual([
      { how: 'packet', bytes: [0x04, 0x0e, 0x04, 0x01, 0x03, 0x0c, 0x00] }, // straddled two messages: a copy
      { how: 'at', bytes: [0x02, 0x40, 0x00, 0x01, 0x00, 0xaa] },
      { how: 'at', bytes: [0x04, 0x13, 0x00] },
    ]);
  });

  test('a bad packet indicator or a text message closes it with ETRANSPORT_FRAMING; the relay leaving is ETRANSPORT_EOF', async () => {
    for (const [send, code] of [[(ws: WebSocket) => ws.send(Uint8Array.of(0x09, 1, 2)), 'ETRANSPORT_FRAMING'],
      [(ws: WebSocket) => ws.send('hello'), 'ETRANSPORT_FRAMING'], [(ws: WebSocket) => ws.close(1001, 'bye'), 'ETRANSPORT_EOF']] as const) {
      const { url, peer } = await server();
      const t = await WebSocketTransport.open(url, { WebSocket: WS });
      const rx = collect(t);
      send(await peer);
      const e = await rx.closed;
      expect(e).toBeInstanceOf(TransportError);
      expect((e as TransportError).code).toBe(code);
      expect(rx.packets).toEqual([]);
    }
  });

  test('opening is bounded and typed: nobody listening, and a listener that never answers the handshake', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent: Server = createServer(s => { sockets.add(s); });
    await new Promise<void>(r => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    await expect(WebSocketTransport.open(`ws://127.0.0.1:${port}/`, { WebSocket: WS, openTimeoutMs: 300 })).rejects.toMatchObject({ code: 'ETRANSPORT_TIMEOUT' });
    for (const s of sockets) s.destroy();
    await new Promise<void>(r => silent.close(() => r()));
    const closedPort = port;
    await expect(WebSocketTransport.open(`ws://127.0.0.1:${closedPort}/`, { WebSocket: WS })).rejects.toMatchObject({ code: 'ETRANSPORT_CONNECT' });
    await expect(openTransport('ws:nonsense')).rejects.toMatchObject({ code: 'ETRANSPORT_SPEC' });
  });
});

describe('the relay', () => {
  test('Adapter.open({ transport: "ws://…" }) in Node drives the simulator through it: scan, connect, read', async () => {
    const sim = createSimulator('demo', { speed: 1 });
    const relay = await startWebSocketRelay({ transport: sim.transport, origins: ['*'] });
    cleanup.push(() => relay.close());
    // No Origin header from a Node client: '*' lets it in. On Node 20 the registry falls back to `ws`.
    const adapter = await Adapter.open({ transport: relay.url, bonds: false });
    cleanup.push(() => adapter.close());
    expect(relay.attached).toBe(true);
    const ad = await adapter.find({ name: 'Pulse HR', timeout: 5000 });
    expect(ad).toBeDefined();
    const conn = await adapter.connect(ad!);
    const level = await (await conn.characteristic(0x180f, 0x2a19)).read();
    expect(level[0]).toBe(87);
    await conn.disconnect();
    expect(relay.stats.toController).toBeGreaterThan(10);
    expect(relay.stats.toPage).toBeGreaterThan(10);
  }, 30_000);

  test('it needs origins, and refuses a page from another one', async () => {
    const sim = createSimulator('demo', { speed: 1 });
    await expect(startWebSocketRelay({ transport: sim.transport, origins: [] })).rejects.toMatchObject({ code: 'ETRANSPORT_SPEC' });
    const relay = await startWebSocketRelay({ transport: sim.transport, origins: ['http://localhost:5173'] });
    cleanup.push(() => relay.close());
    const status = await new Promise<string>(resolve => {
      const ws = new WebSocket(relay.url, { origin: 'https://elsewhere.example' });
      ws.once('unexpected-response', (_q, res) => resolve(`http ${res.statusCode}`));
      ws.once('open', () => resolve('open'));
      ws.once('error', e => resolve(e.message));
    });
    expect(status).toBe('http 401');
    expect(relay.stats.refused).toBe(1);
    expect(relay.attached).toBe(false);
  });
});
