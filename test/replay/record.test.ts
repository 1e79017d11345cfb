// Pins record mode: the session language parses and prints back, a scenario recorded on the simulator
// is byte-for-byte reproducible (virtual-clock timestamps), replays cleanly, and carries masks exactly
// for the values that vary between runs.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createCaptureWriter } from '../../src/capture/writer.js';
import { encodeCommand } from '../../src/hci/packets.js';
import { masksFor, recordScenario } from '../../src/tooling/record.js';
import { loadScenario } from '../../src/tooling/scenario.js';
import { formatSteps, parseSteps, runSession } from '../../src/tooling/session.js';
import { HEART_RATE_SENSOR } from '../../src/sim/index.js';
import { ReplayTransport } from '../../src/replay/transport.js';

const WORLD = { name: 'one-sensor', seed: 3, peripherals: [HEART_RATE_SENSOR] };
const STEPS = 'connect D4:1E:35:7A:00:01 random → discover → read 2a38 → notify 2a37 2 → disconnect';

describe('session steps', () => {
  test('parse and print back', () => {
    const steps = parseSteps('scan 2000 passive -> connect c0:11:22:33:44:55 public → mtu → discover → read 0x0003 → write 2a39 01ff cmd → notify 2a37 3 → wait 500 → disconnect');
    expect(steps).toEqual([
      { op: 'scan', ms: 2000, active: false },
      { op: 'connect', address: 'C0:11:22:33:44:55', addressType: 'public' },
      { op: 'mtu' }, { op: 'discover' },
      { op: 'read', target: '0x0003' },
      { op: 'write', target: '2a39', value: '01ff', withResponse: false },
      { op: 'notify', target: '2a37', count: 3 },
      { op: 'wait', ms: 500 },
      { op: 'disconnect' },
    ]);
    expect(parseSteps(formatSteps(steps))).toEqual(steps);
  });

  test('peripheral steps parse and print back', () => {
    const text = 'serve database.json → advertise bwr b1e0c000-5c1e-4d6a-9f3b-2a7e5d8c1b00 → accept → subscribed 2a37 → ' +
      'send-notification 2a37 0a0B → send-indication 2a38 02 → wait-disconnect';
    const steps = parseSteps(text);
    expect(steps).toEqual([
      { op: 'serve', file: 'database.json' },
      { op: 'advertise', name: 'bwr', services: ['b1e0c000-5c1e-4d6a-9f3b-2a7e5d8c1b00'] },
      { op: 'accept' },
      { op: 'subscribed', target: '2a37' },
      { op: 'send-notification', target: '2a37', value: '0a0b' },
      { op: 'send-indication', target: '2a38', value: '02' },
      { op: 'wait-disconnect' },
    ]);
    expect(formatSteps(steps)).toBe(text.replace('0a0B', '0a0b'));
    expect(() => parseSteps('serve')).toThrow('serve <database.json>');
    expect(() => parseSteps('send-notification 2a37 xyz')).toThrow('send-notification <uuid> <hex>');
    expect(() => parseSteps('advertise')).toThrow('advertise <name>');
    expect(() => parseSteps('hover')).toThrow(/unknown step \(scan, .*, serve, advertise, accept, subscribed, send-notification, send-indication, wait-disconnect, paired, encrypted, pairing-io, encrypt, forget, rotate, pair, find, peer, open-channel, listen, accept-channel, send-sdu, receive-sdu, close-channel, wait-channel-close\)/);
    // The security steps of an accepted link round-trip too.
    expect(parseSteps('pairing-io displayOnly → pairing-io displayYesNo')).toEqual([{ op: 'pairing-io', io: 'displayOnly' }, { op: 'pairing-io', io: 'displayYesNo' }]);
    expect(formatSteps(parseSteps('pairing-io displayYesNo'))).toBe('pairing-io displayYesNo');
    expect(() => parseSteps('pairing-io keyboardOnly')).toThrow('pairing-io <noInputNoOutput|displayOnly|displayYesNo>');
    const sec = parseSteps('accept → paired → wait-disconnect → accept → encrypted');
    expect(sec.map(x => x.op)).toEqual(['accept', 'paired', 'wait-disconnect', 'accept', 'encrypted']);
    expect(formatSteps(sec)).toBe('accept → paired → wait-disconnect → accept → encrypted');
  });

  test('central security steps parse and print back; bad ones are named', () => {
    const steps = 'find name=TestAdvertisement 30000 → connect found → pair displayOnly → pair mitm → peer new-rpa 20000 → find 00:AA:01:00:00:00 60000 → connect 00:AA:01:00:00:00 public → encrypt';
    expect(formatSteps(parseSteps(steps))).toBe(steps);
    expect(parseSteps('pair')).toEqual([{ op: 'pair', mitm: false }]);
    expect(parseSteps('find 00:aa:01:00:00:00')).toEqual([{ op: 'find', target: { address: '00:AA:01:00:00:00' }, ms: 10_000 }]);
    expect(() => parseSteps('pair sideways')).toThrow('pair: IO capability is one of displayOnly');
    expect(() => parseSteps('pair displayOnly mitm twice')).toThrow('pair [io] [mitm]');
    expect(() => parseSteps('find somebody')).toThrow('find <name=NAME|address> [ms]');
    expect(() => parseSteps('peer')).toThrow('peer <word> <ms>');
  });

  test('refusals and forgetting parse and print back; bad ones are named', () => {
    const steps = 'read 0x0028 refused → pair refused → pair keyboardOnly passkey=123456 refused → encrypt refused → paired refused → forget → paired → encrypt';
    expect(formatSteps(parseSteps(steps))).toBe(steps);
    expect(parseSteps('read 2a19 refused → pair displayOnly mitm refused → encrypt refused → paired refused → forget')).toEqual([
      { op: 'read', target: '2a19', refused: true }, { op: 'pair', io: 'displayOnly', mitm: true, refused: true },
      { op: 'encrypt', refused: true }, { op: 'paired', refused: true }, { op: 'forget' }]);
    expect(parseSteps('read 2a19 → encrypt')).toEqual([{ op: 'read', target: '2a19' }, { op: 'encrypt' }]);
    expect(() => parseSteps('read 2a19 denied')).toThrow('read <uuid|0xhandle> [refused]');
    expect(() => parseSteps('encrypt now')).toThrow('encrypt [refused]');
    expect(() => parseSteps('paired maybe')).toThrow('paired [refused]');
    expect(() => parseSteps('pair displayOnly mitm twice refused')).toThrow('pair [io] [mitm] [signing] [passkey=<NNNNNN|peer>] [refused]');
  });

  test('signing and rotation parse and print back; bad ones are named', () => {
    const steps = 'pair signing → pair displayOnly mitm signing → pair keyboardOnly signing passkey=123456 refused → rotate → write 0x0010 519e signed → write 2a39 01 cmd → write 2a39 02';
    expect(formatSteps(parseSteps(steps))).toBe(steps);
    expect(parseSteps('pair signing → pair mitm signing → rotate')).toEqual([
      { op: 'pair', mitm: false, signing: true }, { op: 'pair', mitm: true, signing: true }, { op: 'rotate' }]);
    expect(() => parseSteps('pair signing mitm')).toThrow('pair [io] [mitm] [signing]');
    expect(() => parseSteps('pair signing signing')).toThrow('pair [io] [mitm] [signing]');
    expect(parseSteps('write 0x0010 519E signed')).toEqual([{ op: 'write', target: '0x0010', value: '519e', withResponse: false, signed: true }]);
    expect(() => parseSteps('write 0x0010 51 sealed')).toThrow('write <uuid|handle> <hex> [cmd|signed [counter=<n>] [flip=<bit 0-95>]]');
    expect(() => parseSteps('write 0x0010 51 cmd signed')).toThrow('write <uuid|handle> <hex> [cmd|signed [counter=<n>] [flip=<bit 0-95>]]');
    // Signed writes a peer must drop: a stated SignCounter (a replay), a flipped signature bit.
    const drops = 'write 0x0010 5a01 signed counter=0 → write 0x0010 5aee signed flip=95 → write 0x0010 5a03 signed counter=4294967295 flip=0';
    expect(formatSteps(parseSteps(drops))).toBe(drops);
    expect(parseSteps('write 0x0010 5AEE signed flip=95')).toEqual([{ op: 'write', target: '0x0010', value: '5aee', withResponse: false, signed: true, flip: 95 }]);
    for (const bad of ['write 0x0010 51 signed flip=96', 'write 0x0010 51 signed counter=4294967296', 'write 0x0010 51 cmd counter=1',
      'write 0x0010 51 signed counter=1 counter=2', 'write 0x0010 51 signed flip=-1', 'write 0x0010 51 signed counter=0x10', 'write 0x0010 51 counter=1']) {
      expect(() => parseSteps(bad), bad).toThrow('write <uuid|handle> <hex> [cmd|signed [counter=<n>] [flip=<bit 0-95>]]');
    }
  });

  test('bad steps are named', () => {
    expect(() => parseSteps('scan soon')).toThrow('session step "scan soon": the scan time (ms) must be a number');
    expect(() => parseSteps('connect nobody')).toThrow('connect needs an address');
    expect(() => parseSteps('write 2a39 0g')).toThrow('write <uuid|handle> <hex> [cmd|signed [counter=<n>] [flip=<bit 0-95>]]');
    expect(() => parseSteps('dance')).toThrow('unknown step');
  });
});

describe('record mode', () => {
  test('a simulator recording is reproducible byte for byte and replays with the same results', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-record-'));
    const { createSimulator } = await import('../../src/sim/index.js');
    const record = (name: string) => recordScenario({
      name, dir, transport: createSimulator(WORLD).transport, steps: STEPS, randomAddress: 'C2:00:00:00:00:01',
      controller: 'blewire simulator', peer: 'Pulse HR',
    });
    const a = await record('a');
    const b = await record('b');
    const bytesA = readFileSync(join(dir, 'a', 'capture.btsnoop'));
    expect(bytesA.equals(readFileSync(join(dir, 'b', 'capture.btsnoop')))).toBe(true);
    expect(a.expect).toEqual(b.expect);
    expect(a.masks).toEqual([]); // a fixed address varies nowhere
    expect(a.steps).toBe(STEPS);
    expect(a.expect.reads).toEqual([{ target: '2a38', value: '01' }]);
    expect(a.expect.notifications?.[0]?.values).toHaveLength(2);

    const s = await loadScenario(join(dir, 'a'));
    const transport = await ReplayTransport.fromFile(s.capturePath, { masks: s.masks });
    const result = await runSession(s.steps, { transport, randomAddress: 'C2:00:00:00:00:01' });
    await transport.finished;
    expect(JSON.parse(JSON.stringify(result))).toEqual(s.expect);
  });

  test('masks: the fresh random address, and LE Encrypt inputs when the host used LE Encrypt', () => {
    const chunks: Uint8Array[] = [];
    const w = createCaptureWriter(b => chunks.push(Uint8Array.from(b)), { format: 'btsnoop' });
    w.write({ dir: 'tx', timeUs: 1, packet: encodeCommand({ kind: 'leSetRandomAddress', randomAddress: 'C1:02:03:04:05:06' }) });
    w.write({ dir: 'tx', timeUs: 2, packet: encodeCommand({ kind: 'leEncrypt', key: new Uint8Array(16), plaintextData: new Uint8Array(16) }) });
    w.close();
    const capture = Buffer.concat(chunks);
    expect(masksFor(capture, true).map(m => 'kind' in m && `${m.kind}.${m.field}`)).toEqual([
      'leSetRandomAddress.randomAddress', 'leEncrypt.key', 'leEncrypt.plaintextData',
    ]);
    expect(masksFor(capture, false).map(m => 'kind' in m && `${m.kind}.${m.field}`)).toEqual(['leEncrypt.key', 'leEncrypt.plaintextData']);
  });
});
