// Pins the GATT commands (explore, read, write, notify) against the in-memory BlueZ replica, through
// the session opener the real connection plugs into.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { run as explore, setGattSessionOpener } from '../../../src/cli/explore.js';
import { run as read } from '../../../src/cli/read.js';
import { run as write } from '../../../src/cli/write.js';
import { run as notify } from '../../../src/cli/notify.js';
import { GattClient } from '../../../src/gatt/client.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { decoded } from '../../helpers/memory-channel.js';
import { bluezExampleServices, fakePeripheral, type FakePeripheral } from '../../helpers/fake-peripheral.js';

let fp: FakePeripheral;
let opened: (fp: FakePeripheral) => void = () => {};
function useReplica(): string[] {
  const db = new GattDatabase(bluezExampleServices());
  setGattSessionOpener(async () => {
    fp = fakePeripheral(db);
    opened(fp);
    const gatt = new GattClient(fp.pair.central, { clock: fp.clock, serviceChanged: false, robustCaching: false });
    await gatt.exchangeMtu();
    return { gatt, close: async () => fp.pair.disconnect() };
  });
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((s: unknown) => { lines.push(String(s)); });
  return lines;
}
afterEach(() => { setGattSessionOpener(undefined); vi.restoreAllMocks(); });

describe('blewire explore/read/write/notify', () => {
  test('explore prints the tree with names, properties and values', async () => {
    const lines = useReplica();
    expect(await explore(['AA:BB:CC:DD:EE:FF'])).toBe(0);
    const text = lines.join('\n');
    expect(text).toContain('service 0x1800 (generic_access)  [0x0001–0x0007]');
    expect(text).toContain('characteristic 0x2a00 (gap.device_name)  0x0003  (read)  = 42 6c 75 65 5a 20 35 2e 36 36  "BlueZ 5.66"');
    expect(text).toContain('characteristic 0x2a37 (heart_rate_measurement)  0x0017  (notify)');
    expect(text).toContain('descriptor 0x2902 (gatt.client_characteristic_configuration)  0x0018  = 00 00');
    expect(text).toMatch(/discovery: 14 round trips/);
  });

  test('explore --json gives the same tree as data', async () => {
    const lines = useReplica();
    await explore(['AA:BB:CC:DD:EE:FF', '--json']);
    const out = JSON.parse(lines.join('\n'));
    expect(out.services).toHaveLength(6);
    expect(out.services[5].characteristics[0]).toMatchObject({ uuid: '12345678-1234-5678-1234-56789abcdef1', value: '746573742076616c7565' });
  });

  test('read, write, notify', async () => {
    const lines = useReplica();
    expect(await read(['AA:BB:CC:DD:EE:FF', 'battery_level'])).toBe(0);
    expect(lines.at(-1)).toBe('64  100 %'); // the hex and, since the CLI decodes known formats, the Battery Level
    expect(await write(['AA:BB:CC:DD:EE:FF', '12345678-1234-5678-1234-56789abcdef3', '0102'])).toBe(0);
    expect(fp.db.value(0x28)).toEqual(Uint8Array.of(1, 2));
    const session = new Promise<FakePeripheral>(r => { opened = r; });
    const p = notify(['AA:BB:CC:DD:EE:FF', 'heart_rate_measurement', '--count', '2', '--service', 'heart_rate']);
    await (await session).link.cccdWritten(0x18, 1);
    await fp.link.notify(0x2a37, Uint8Array.of(0, 61));
    await fp.link.notify(0x2a37, Uint8Array.of(0, 62));
    expect(await p).toBe(0);
    // Arrival time, hex, decoded Heart Rate Measurement (the time and decoded form are new on purpose).
    expect(lines.slice(-2).map(l => l.replace(/^\d\d:\d\d:\d\d\.\d{3}  /, ''))).toEqual(['00 3d  61 bpm', '00 3e  62 bpm']);
    // Unsubscribed on the way out: the last thing written was 0x0000 to the CCCD.
    expect(decoded(fp.pair.central).filter(p => p.kind === 'writeReq').at(-1)).toEqual({ kind: 'writeReq', handle: 0x18, value: Uint8Array.of(0, 0) });
  });
});
