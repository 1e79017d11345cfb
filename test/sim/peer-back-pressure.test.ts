// Virtual peers obey their controller's buffers and the connection events (issue 15): a peripheral
// whose notification source ticks at 1 kHz, on a link that carries far fewer notifications per
// second, must not build a backlog (before: +32 k PDUs a minute). Sixty virtual seconds, sampled every
// 100 ms: the link holds at most PEER_TX_BUFFERS frames, the peer's host at most one waiting value,
// the host receives what the link carries, and the rest is skipped at the source and counted.
import { expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator } from '../../src/sim/index.js';
import { PEER_TX_BUFFERS } from '../../src/sim/link.js';

test('a 1 kHz notification source on a 30 ms link keeps its backlog bounded for a virtual minute', async () => {
  const sim = createSimulator({ name: 'fast source', peripherals: [{
    name: 'Firehose', address: 'C1:00:00:00:00:42', addressType: 'random',
    advertising: { data: { flags: 0x06, name: 'Firehose' }, intervalMs: 20 },
    gatt: [{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['notify'] }] }],
    notifications: [{ characteristic: 0xfff1, everyMs: 1, next: i => Uint8Array.from({ length: 20 }, (_, k) => (i + k) & 0xff) }],
  }] });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
  const conn = await adapter.connect({ address: 'C1:00:00:00:00:42', addressType: 'random' }, { timeout: 5_000, intervalMin: 30, intervalMax: 30 });
  const c = await conn.characteristic(0xfff0, 0xfff1);
  let received = 0;
  const sub = await c.subscribe(() => { received++; });
  const link = sim.linkTo('Firehose')!;
  const peer = sim.peripheral('Firehose');
  const t0 = sim.now();
  let maxFrames = 0, maxWaiting = 0, maxLl = 0;
  for (let k = 0; k < 600; k++) {
    await sim.clock.delay(100);
    const b = link.peerBacklog;
    maxFrames = Math.max(maxFrames, b.frames);
    maxWaiting = Math.max(maxWaiting, b.waiting);
    maxLl = Math.max(maxLl, b.llPdus);
  }
  const seconds = (sim.now() - t0) / 1000;
  await sub.unsubscribe();
  const { notificationsSent, valuesSkipped } = peer.stats;
  await conn.disconnect();
  await adapter.close();

  expect(seconds).toBeGreaterThanOrEqual(60);
  // The bound: the peer's controller buffers, one LL PDU per frame here (27-octet PDUs, 27-octet frames).
  expect(maxFrames).toBeLessThanOrEqual(PEER_TX_BUFFERS);
  expect(maxLl).toBeLessThanOrEqual(PEER_TX_BUFFERS);
  expect(maxWaiting).toBeLessThanOrEqual(1);
  // Every value sent reached the host (nothing lost in a queue), and every tick is accounted for.
  expect(Math.abs(received - notificationsSent)).toBeLessThanOrEqual(PEER_TX_BUFFERS + 1);
  expect(notificationsSent + valuesSkipped).toBeGreaterThanOrEqual(59_000);
  // The link, not the source, sets the rate: well under 1 kHz got through, the rest was skipped.
  expect(valuesSkipped).toBeGreaterThan(0);
  expect(received / seconds).toBeGreaterThan(100);
  expect(received / seconds).toBeLessThan(1000);
  console.log(`peer back-pressure: ${(received / seconds).toFixed(0)} notifications/s delivered, ${valuesSkipped} skipped, ` +
    `max backlog ${maxFrames} frames / ${maxLl} LL PDUs / ${maxWaiting} waiting`);
}, 120_000);
