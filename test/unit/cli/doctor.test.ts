// blewire doctor, run in-process: on the simulated controller it describes what the controller said
// at init (version, buffers, LE features and capabilities) and exits 0; on a transport that cannot
// open it says why and what to do, and exits non-zero.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { run as doctor } from '../../../src/cli/doctor.js';
import { registerTransport } from '../../../src/transport/open.js';
import { createSimulator } from '../../../src/sim/index.js';
import { captureOutput } from './output.js';

beforeEach(() => {
  // The machine's own settings must not leak in.
  vi.stubEnv('BLEWIRE_TRANSPORT', '');
  vi.stubEnv('BLEWIRE_CAPTURE', '');
});
afterEach(() => { vi.restoreAllMocks(); vi.unstubAllEnvs(); });

describe('blewire doctor', () => {
  test('on the simulator: version, address, buffers, LE features and capabilities in words, exit 0', async () => {
    const out = captureOutput();
    expect(await doctor(['--transport', 'sim'])).toBe(0);
    expect(out.stdout()).toEqual([
      'Transport: sim',
      'Opened and reset: OK',
      // The simulated controller reports Core 5.3 (HCI version 12), subversion 1, company 0xffff.
      'Controller: Bluetooth 5.3 (HCI 12 rev 0x1), made by company 0xffff',
      'Address: C0:FF:EE:00:00:01',
      'ACL buffers: 8 × 251 bytes (LE Read Buffer Size v2)',
      'LE features: encryption, connectionParametersRequest, extendedRejectIndication, peripheralInitiatedFeaturesExchange, ' +
        'ping, dataPacketLengthExtension, llPrivacy, le2mPhy, extendedAdvertising, channelSelectionAlgorithm2',
      'Filter accept list: 16 entries',
      'Resolving list: 8 entries',
      'Data length: up to 251 bytes per packet (Data Length Extension)',
      'Advertising sets: 4',
      'Scanning and connecting: extended commands (tried first, legacy if refused)',
      '2M / Coded PHY: supported',
    ]);
  });

  test('a smaller controller is described as such (v1 buffers, no DLE, no 2M PHY)', async () => {
    registerTransport('sim-small', () => createSimulator({
      name: 'small', peripherals: [],
      controller: { extended: false, bufferSizeV2: false, dataLength: false, aclBuffers: { length: 27, count: 3 }, phy2m: false },
    }).transport);
    const out = captureOutput();
    expect(await doctor(['--transport', 'sim-small:'])).toBe(0);
    const text = out.stdout();
    expect(text).toContain('ACL buffers: 3 × 27 bytes (LE Read Buffer Size)');
    expect(text).toContain('Data length: 27 bytes per packet (no Data Length Extension)');
    expect(text).toContain('2M / Coded PHY: not reported');
    expect(text.find(l => l.startsWith('LE features:'))).not.toMatch(/extendedAdvertising|dataPacketLengthExtension|le2mPhy/);
  });

  test('--json gives the controller model as data', async () => {
    const out = captureOutput();
    expect(await doctor(['--transport', 'sim', '--json'])).toBe(0);
    const [head, ...rest] = out.stdout();
    expect(head).toBe('Transport: sim');
    const info = JSON.parse(rest.join('\n'));
    expect(info).toMatchObject({
      version: { hciVersion: 12, coreVersion: '5.3', manufacturer: 0xffff },
      address: 'C0:FF:EE:00:00:01',
      acl: { length: 251, count: 8, source: 'le-v2' },
      filterAcceptListSize: 16,
    });
    expect(info.leFeatures).toContain('le2mPhy');
  });

  test('unix socket that does not exist: the reason, what to do, exit 1', async () => {
    const out = captureOutput();
    expect(await doctor(['--transport', 'unix:/nonexistent'])).toBe(1);
    const text = out.stdout();
    expect(text[0]).toBe('Transport: unix:/nonexistent');
    expect(text[1]).toMatch(/^Cannot open: unix:\/nonexistent: cannot connect: connect ENOENT \/nonexistent \(no such socket/);
    expect(text[2]).toMatch(/^What to do: start the controller or emulator behind that socket .*btvirt\.sh start/);
    expect(text).not.toContain('Opened and reset: OK');
  });

  test('hci0 where it cannot open (here: no AF_BLUETOOTH in the kernel): the reason, what to do, exit 1', async () => {
    const out = captureOutput();
    expect(await doctor(['--transport', 'hci0'])).toBe(1);
    const text = out.stdout();
    expect(text[1]).toMatch(/^Cannot open: /);
    // Whatever the machine lacks (kernel support, the native module, the adapter, permission), the
    // reason names the user channel and the next line says what to do about it.
    expect(text[1]).toMatch(/hci0 \(user channel\)|native HCI socket module/);
    expect(text[2]).toMatch(/^What to do: /);
    expect(text[2]).not.toMatch(/DEBUG=blewire/); // a specific remedy, not the generic fallback
  });

  test('an unknown transport: says which forms exist, exit 1 (no transport at all lists the adapters: doctor-inventory.test.ts)', async () => {
    const out = captureOutput();
    expect(await doctor(['--transport', 'bogus:1'])).toBe(1);
    expect(out.stdout().slice(-2)).toEqual([
      expect.stringMatching(/^Cannot open: transport "bogus:1": unknown transport "bogus"; valid forms: hci0, /),
      'What to do: use one of the transport forms listed above; --transport sim needs no adapter.',
    ]);
  });

  test('bad option: usage on stderr, exit 2', async () => {
    const out = captureOutput();
    expect(await doctor(['--frobnicate'])).toBe(2);
    expect(out.stderr().join('\n')).toContain('usage: blewire doctor');
  });
});
