// Pins issue 8 §4: every error a user can receive through the package entry is a BlewireError subclass
// with a stable `code` (and a `cause` where there is one). Each row provokes the error the way an
// application would (bad arguments, a Hardware Error event, a closed adapter, a malformed response on
// the simulator's link) and asserts its class and code; none may be a plain TypeError / RangeError.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import * as entry from '../../../src/index.js';
import {
  Adapter, ArgumentError, AttError, BlewireError, DecodeError, GattDatabase, HardwareError, InvalidStateError,
  ProtocolError, registerTransport, TimeoutError, TransportError, uuid,
} from '../../../src/index.js';
import { AttBearer } from '../../../src/att/bearer.js';
import { fromHex } from '../../../src/bytes/hex.js';
import { FakeClock } from '../../../src/clock.js';
import { parseSteps } from '../../../src/tooling/session.js';
import { createSimulator } from '../../../src/sim/index.js';
import { channelPair, ScriptedPeer } from '../../helpers/memory-channel.js';

async function sim() {
  const s = createSimulator('demo');
  const adapter = await Adapter.open({ transport: s.transport, clock: s.clock });
  return { s, adapter };
}

async function connected() {
  const { s, adapter } = await sim();
  const conn = await adapter.connect({ address: 'D4:1E:35:7A:00:02', type: 'random' }, { timeout: 5000 });
  return { s, adapter, conn };
}

/** Runs `provoke` and returns what it threw or rejected with. */
async function caught(provoke: () => unknown): Promise<unknown> {
  try {
    await provoke();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, got none');
}

type Row = [name: string, cls: abstract new (...a: never[]) => BlewireError, code: string, provoke: () => unknown];

const rows: Row[] = [
  ['uuid() of a name that is no UUID', ArgumentError, 'EARGUMENT', () => uuid('no such thing')],
  ['scan with a malformed address filter', ArgumentError, 'EARGUMENT', async () => {
    const { adapter } = await sim();
    try { adapter.scan({ address: 'nope' }); } finally { await adapter.close(); }
  }],
  ['connect to an anonymous advertiser', ArgumentError, 'EARGUMENT', async () => {
    const { adapter } = await sim();
    try { await adapter.connect({ address: '00:00:00:00:00:00', type: 'anonymous' } as never); } finally { await adapter.close(); }
  }],
  ['invalid connection parameters', ArgumentError, 'EARGUMENT', async () => {
    const { adapter, conn } = await connected();
    try {
      await conn.updateParameters({ intervalMin: 6, intervalMax: 5, latency: 0, supervisionTimeout: 10 } as never);
    } finally { await adapter.close(); }
  }],
  ['write without response longer than ATT_MTU - 3', ArgumentError, 'EARGUMENT', async () => {
    const { adapter, conn } = await connected();
    try {
      const c = await conn.characteristic(0x1809, 0x2a21);
      await c.write(new Uint8Array(conn.mtu - 2), { withResponse: false });
    } finally { await adapter.close(); }
  }],
  ['a GATT database whose services overlap', ArgumentError, 'EARGUMENT', () => new GattDatabase([
    { uuid: 0x180f, handle: 0x10, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: Uint8Array.of(1) }] },
    { uuid: 0x180a, handle: 0x11, characteristics: [] },
  ] as never)],
  ['registerTransport with a scheme that is no identifier', ArgumentError, 'EARGUMENT',
    () => registerTransport('NO SUCH', () => { throw new Error('never opened'); })],
  ['a transport spec nothing opens', TransportError, 'ETRANSPORT_SPEC', () => Adapter.open({ transport: 'nosuch:thing', timeout: 1000 })],
  ['a replay session step that does not parse', ArgumentError, 'EARGUMENT', () => parseSteps('connect nowhere')],
  ['fromHex of text that is not hex', ArgumentError, 'EARGUMENT', () => fromHex('0g')],
  ['a scan running when the controller reports Hardware Error', HardwareError, 'EHARDWARE', async () => {
    const { s, adapter } = await sim();
    const session = adapter.scan({});
    s.hardwareError(0x42);
    try { await session.done; } finally { await adapter.close(); }
  }],
  ['connect after the adapter was closed', TransportError, 'ECLOSED', async () => {
    const { adapter } = await sim();
    await adapter.close();
    await adapter.connect({ address: 'D4:1E:35:7A:00:02', type: 'random' });
  }],
  ['an ATT request the peer answers with an Error Response', AttError, 'EATT', async () => {
    const { adapter, conn } = await connected();
    try { await conn.gatt.readValue(0x7777); } finally { await adapter.close(); }
  }],
  ['a connect that nothing answers', TimeoutError, 'ETIMEDOUT', async () => {
    const { adapter } = await sim();
    try { await adapter.connect({ address: '11:22:33:44:55:66', type: 'random' }, { timeout: 1000 }); } finally { await adapter.close(); }
  }],
];

describe('every user-reachable error is a typed BlewireError', () => {
  test.each(rows)('%s', async (_name, cls, code, provoke) => {
    const e = await caught(provoke);
    expect(e).toBeInstanceOf(cls);
    expect(e).toBeInstanceOf(BlewireError);
    expect((e as BlewireError).code).toBe(code);
    expect(e).not.toBeInstanceOf(TypeError);
    expect(e).not.toBeInstanceOf(RangeError);
  });

  test('HardwareError carries the controller\'s code', async () => {
    const { s, adapter } = await sim();
    const session = adapter.scan({});
    s.hardwareError(0x42);
    const e = await session.done.then(() => undefined, (err: unknown) => err) as HardwareError;
    expect(e).toBeInstanceOf(HardwareError);
    expect(e.hardwareCode).toBe(0x42);
    expect(e.message).toMatch(/Hardware Error 0x42/);
    await adapter.close();
  });

  test('a malformed ATT response is a ProtocolError whose cause is the DecodeError', async () => {
    const clock = new FakeClock();
    const pair = channelPair();
    const bearer = new AttBearer(pair.central, { clock, mtu: 517 });
    const peer = new ScriptedPeer(pair.peripheral);
    const read = bearer.request({ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff,
      attributeType: '00002a00-0000-1000-8000-00805f9b34fb' });
    await peer.next();
    peer.sendRaw(fromHex('09 07 0200 02 0300 00'));
    const e = await read.catch((err: unknown) => err) as ProtocolError;
    expect(e).toBeInstanceOf(ProtocolError);
    expect(e.code).toBe('EPROTO');
    expect(e.cause).toBeInstanceOf(DecodeError);
  });

  test('the codes are stable (they are public API)', () => {
    expect(new ArgumentError('x').code).toBe('EARGUMENT');
    expect(new HardwareError(1).code).toBe('EHARDWARE');
    expect(new InvalidStateError('x').code).toBe('EINVALIDSTATE');
    expect(new ProtocolError('att', 'x', { cause: 1 }).cause).toBe(1);
  });
});

test('the README documents every exported error class and every error code', () => {
  const root = resolve(import.meta.dirname, '../../..');
  const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
  const classes = Object.entries(entry)
    .filter(([, v]) => typeof v === 'function' && v.prototype instanceof BlewireError)
    .map(([k]) => k);
  expect(classes.length).toBeGreaterThan(10);
  expect(classes.filter(c => !readme.includes(`\`${c}\``))).toEqual([]);
  const codes = ['src/errors.ts', 'src/gatt/model.ts', 'src/replay/transport.ts']
    .flatMap(f => [...readFileSync(resolve(root, f), 'utf8').matchAll(/readonly code = '(E[A-Z_]+)'/g)].map(m => m[1]!));
  expect(codes).toContain('EARGUMENT');
  expect(codes.filter(c => !readme.includes(`\`${c}\``))).toEqual([]);
  // The gateway's codes (src/apps/gateway/errors.ts: one line per code in the GatewayErrorCode union),
  // each in the README's error table under GatewayError.
  const gw = [...readFileSync(resolve(root, 'src/apps/gateway/errors.ts'), 'utf8').matchAll(/^\s*\| '(EGW_[A-Z_]+)'/gm)].map(m => m[1]!);
  expect(gw).toEqual(expect.arrayContaining(['EGW_CONFIG', 'EGW_TLS', 'EGW_BROKER_REFUSED']));
  const row = readme.split('\n').find(l => l.startsWith('  | `GatewayError`')) ?? '';
  expect(gw.filter(c => !row.includes(`\`${c}\``))).toEqual([]);
});
