// The session language's peripheral steps (serve / advertise / accept / subscribed / send-notification /
// send-indication / wait-disconnect) on the simulator: one adapter runs them, another blewire adapter
// on the same simulated air is the central running the central steps. Both sides' public results are
// asserted, and what the served side saw is what the central did.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import { runSession } from '../../src/tooling/session.js';

const SVC = 'b1e0c000-5c1e-4d6a-9f3b-2a7e5d8c1b00';
const U = (n: number): string => SVC.replace('b1e0c000', `b1e0c00${n}`);
const DATABASE = [{
  uuid: SVC,
  characteristics: [
    { uuid: U(1), properties: ['read'], value: 'hello' },
    { uuid: U(2), properties: ['read', 'write'], value: { hex: '00' } },
    { uuid: U(3), properties: ['notify'], value: { hex: '00' } },
    { uuid: U(4), properties: ['indicate'], value: { hex: '00' } },
  ],
}];
const OURS = 'C3:5A:11:22:33:77';

describe('peripheral session steps on the simulator', () => {
  test('a blewire central reads, writes, subscribes and disconnects; the served side lists it all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-periph-steps-'));
    writeFileSync(join(dir, 'database.json'), JSON.stringify(DATABASE));
    const air = new SimAir();
    const served = createSimulator({ name: 'served', peripherals: [] }, { air });
    const central = createSimulator({ name: 'central', peripherals: [] }, { air });
    const peripheral = runSession(
      `serve database.json → advertise bwr ${SVC} → accept → subscribed ${U(3)} → send-notification ${U(3)} 0101 → ` +
      `send-notification ${U(3)} 0202 → subscribed ${U(4)} → send-indication ${U(4)} 0303 → wait-disconnect`,
      { transport: served.transport, baseDir: dir, randomAddress: OURS });
    const client = runSession(
      `scan 500 → connect ${OURS} random → discover → read ${U(1)} → write ${U(2)} c0ffee → read ${U(2)} → notify ${U(3)} 2 → notify ${U(4)} 1 → disconnect`,
      { transport: central.transport, randomAddress: 'C3:5A:11:22:33:78' });
    const [p, c] = await Promise.all([peripheral, client]);

    expect(c.scan?.find(d => d.address === OURS)?.name).toBe('bwr');
    expect(c.reads).toEqual([{ target: U(1), value: '68656c6c6f' }, { target: U(2), value: 'c0ffee' }]);
    expect(c.notifications).toEqual([{ target: U(3), values: ['0101', '0202'] }, { target: U(4), values: ['0303'] }]);
    expect(c.disconnect?.code).toBe(0x16);

    expect(p.connection).toEqual({ address: 'C3:5A:11:22:33:78', addressType: 'random', role: 'peripheral', intervalMs: c.connection?.intervalMs });
    expect(p.served?.reads).toEqual([
      { target: U(1), offset: 0, value: '68656c6c6f' },
      { target: U(2), offset: 0, value: 'c0ffee' },
    ]);
    expect(p.served?.writes).toEqual([{ target: U(2), value: 'c0ffee', command: false }]);
    expect(p.served?.subscriptions).toEqual([
      // blewire's client enables Service Changed (0x2a05) indications of our GATT service by itself.
      { target: '2a05', notifications: false, indications: true },
      { target: U(3), notifications: true, indications: false },
      { target: U(3), notifications: false, indications: false },
      { target: U(4), notifications: false, indications: true },
      { target: U(4), notifications: false, indications: false },
    ]);
    expect(p.served?.notified).toEqual([
      { target: U(3), value: '0101', indication: false, delivered: 1 },
      { target: U(3), value: '0202', indication: false, delivered: 1 },
      { target: U(4), value: '0303', indication: true, delivered: 1 },
    ]);
    // The central's Disconnect reason as our controller reports it (Remote User Terminated Connection).
    expect(p.disconnect).toEqual({ code: 0x13, name: expect.any(String) });
  });

  test('steps that need a served database or a connection say so', async () => {
    const air = new SimAir();
    const served = createSimulator({ name: 'served', peripherals: [] }, { air });
    await expect(runSession('accept', { transport: served.transport })).rejects.toThrow('"accept" needs a served database first (serve <file>)');
  });
});
