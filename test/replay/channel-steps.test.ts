// The session language's L2CAP credit-based channel steps (open-channel / listen / accept-channel /
// send-sdu / receive-sdu / close-channel / wait-channel-close) on the simulator: a blewire central opens a
// channel to a blewire peripheral's listener on the same simulated air, each side runs its own steps,
// and what one side sent is what the other received, with the parameters each announced (Vol 3, Part A,
// 4.22-4.23). Small MPS and few credits on both sides, so SDUs take several K-frames and wait for credits.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import { formatSteps, parseSteps, runSession } from '../../src/tooling/session.js';

const OURS = 'C3:5A:11:22:33:7B';
const pattern = (n: number, seed: number): string => Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)).toString('hex');

describe('channel steps on the simulator', () => {
  test('a central opens a channel to the peripheral\'s listener; SDUs both ways, each side\'s parameters, the close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-channel-steps-'));
    writeFileSync(join(dir, 'database.json'), '[]');
    const air = new SimAir();
    const served = createSimulator({ name: 'served', peripherals: [] }, { air });
    const central = createSimulator({ name: 'central', peripherals: [] }, { air });
    const peripheral = runSession(
      'listen 0x81 500 23 1 → serve database.json → advertise bwc → accept → accept-channel → receive-sdu 2 → send-sdu 100:3 → ' +
      'wait-channel-close → wait-disconnect',
      { transport: served.transport, baseDir: dir, randomAddress: OURS });
    const client = runSession(
      `scan 500 → connect ${OURS} random → open-channel 0x81 400 40 3 → send-sdu 300:7 → send-sdu 0102 → receive-sdu 1 → close-channel → disconnect`,
      { transport: central.transport, randomAddress: 'C3:5A:11:22:33:7C' });
    const [p, c] = await Promise.all([peripheral, client]);
    expect(c.channels).toEqual([{
      psm: 0x81, openedBy: 'us', peerMtu: 500, peerMps: 23, peerCredits: 1, sent: [300, 2], received: [pattern(100, 3)], closedBy: 'local',
    }]);
    expect(p.channels).toEqual([{
      psm: 0x81, openedBy: 'peer', peerMtu: 400, peerMps: 40, peerCredits: 3, sent: [100], received: [pattern(300, 7), '0102'], closedBy: 'peer',
    }]);
    expect(c.disconnect?.code).toBe(0x16);
  });

  test('channel steps parse, print back, and say what they need', async () => {
    const text = 'open-channel 0x81 1000 100 4 → send-sdu 0a0b → send-sdu 300:7 → close-channel → listen 0x85 → accept-channel → receive-sdu 4 → wait-channel-close';
    const steps = parseSteps(text);
    expect(steps.slice(0, 2)).toEqual([{ op: 'open-channel', psm: 0x81, mtu: 1000, mps: 100, credits: 4 }, { op: 'send-sdu', value: '0a0b' }]);
    expect(steps[4]).toEqual({ op: 'listen', psm: 0x85 });
    expect(formatSteps(steps)).toBe(text);
    // A listener's security requirement is its last word (Vol 3, Part A, 4.23: 0x0008 / 0x0005 without it).
    expect(parseSteps('listen 0x99 700 50 2 encrypted → listen 0x9a authenticated')).toEqual([
      { op: 'listen', psm: 0x99, mtu: 700, mps: 50, credits: 2, security: 'encrypted' }, { op: 'listen', psm: 0x9a, security: 'authenticated' }]);
    expect(formatSteps(parseSteps('listen 0x99 700 50 2 encrypted'))).toBe('listen 0x99 700 50 2 encrypted');
    expect(() => parseSteps('listen 0x99 secret')).toThrow('the MTU must be a number');
    expect(() => parseSteps('open-channel')).toThrow('open-channel <psm> [mtu] [mps] [credits]');
    expect(() => parseSteps('send-sdu 12:')).toThrow('send-sdu <hex>|<length>:<seed>');
    expect(() => parseSteps('receive-sdu many')).toThrow('the SDU count must be a number');
    const sim = createSimulator({ name: 'alone', peripherals: [] }, { air: new SimAir() });
    await expect(runSession('send-sdu 00', { transport: sim.transport })).rejects.toThrow('"send-sdu" needs a channel first');
    const sim2 = createSimulator({ name: 'alone2', peripherals: [] }, { air: new SimAir() });
    await expect(runSession('accept-channel', { transport: sim2.transport })).rejects.toThrow('"accept-channel" needs a listen step first');
  });
});
