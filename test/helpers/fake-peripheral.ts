import { FakeClock } from '../../src/clock.js';
import { GattDatabase, type CharacteristicDef, type GattServerLink, type ServiceDef } from '../../src/gatt/server-db.js';
import { channelPair, type ChannelPair } from './memory-channel.js';

/**
 * BlueZ 5.66's example GATT server as its central saw it in
 * captures/emulated/bluez-5.66-central.btsnoop (frames 830/872 services, 952/969
 * characteristics, the EATT Find Information exchanges for the test service's descriptors):
 * 46 attributes, handles 0x0001–0x002E, 6 services, 15 characteristics, 10 descriptors.
 */
const T = (n: number): string => `12345678-1234-5678-1234-56789abcdef${n.toString(16)}`;

export function bluezExampleServices(): ServiceDef[] {
  return [
    { uuid: 0x1800, characteristics: [                                   // 0x0001–0x0007
      { uuid: 0x2a00, properties: ['read'], value: 'BlueZ 5.66' },
      { uuid: 0x2a01, properties: ['read'], value: Uint8Array.of(0, 0) },
      { uuid: 0x2aa6, properties: ['read'], value: Uint8Array.of(0) },
    ] },
    { uuid: 0x1801, characteristics: [                                   // 0x0008–0x0011
      { uuid: 0x2a05, properties: ['indicate'] },                         // 0x000a, CCC 0x000b
      { uuid: 0x2b29, properties: ['read', 'write'] },
      { uuid: 0x2b2a, properties: ['read'] },
      { uuid: 0x2b3a, properties: ['read'], value: Uint8Array.of(1) },
    ] },
    { uuid: 0x180a, characteristics: [                                   // 0x0012–0x0014
      { uuid: 0x2a50, properties: ['read'], value: Uint8Array.of(1, 0x6b, 0x1d, 0x46, 0x02, 0x42, 0x05) },
    ] },
    { uuid: 0x180d, characteristics: [                                   // 0x0015–0x001c
      { uuid: 0x2a37, properties: ['notify'] },                           // 0x0017, CCC 0x0018
      { uuid: 0x2a38, properties: ['read'], value: Uint8Array.of(1) },
      { uuid: 0x2a39, properties: ['write'] },
    ] },
    { uuid: 0x180f, characteristics: [                                   // 0x001d–0x0020
      { uuid: 0x2a19, properties: ['read', 'notify'], value: Uint8Array.of(100) },
    ] },
    { uuid: T(0), characteristics: [                                     // 0x0021–0x002e
      { uuid: T(1), properties: ['read', 'write', 'writableAuxiliaries'], value: 'test value',
        descriptors: [{ uuid: 0x2900 }, { uuid: T(2), value: 'desc', writable: true }, { uuid: 0x2901, value: 'Test char', writable: true }] },
      { uuid: T(3), properties: ['read', 'write'], value: Uint8Array.of(0),
        descriptors: [{ uuid: T(4), value: 'secure desc' }, { uuid: 0x2901, value: 'Secure char' }] },
      { uuid: T(5), properties: ['read', 'write'], value: Uint8Array.of(0),
        descriptors: [{ uuid: T(6), value: 'secure desc' }, { uuid: 0x2901, value: 'Secure char' }] },
    ] },
  ];
}

/** A peripheral serving `db` on the far end of an in-memory link. */
export interface FakePeripheral {
  pair: ChannelPair;
  clock: FakeClock;
  db: GattDatabase;
  link: GattServerLink;
}

export function fakePeripheral(db: GattDatabase = new GattDatabase(bluezExampleServices()), options: { mtu?: number; clock?: FakeClock; credits?: number } = {}): FakePeripheral {
  const clock = options.clock ?? new FakeClock();
  const pair = channelPair(options.credits !== undefined ? { credits: options.credits } : {});
  const link = db.attach(pair.peripheral, { clock, ...(options.mtu !== undefined ? { mtu: options.mtu } : {}) });
  return { pair, clock, db, link };
}

/**
 * A synthetic large database: `services` services sharing `characteristics` characteristics (16-bit
 * UUIDs; every 3rd notifies and so has a CCCD, every 5th has a user description).
 */
export function syntheticServices(services: number, characteristics: number): ServiceDef[] {
  const out: ServiceDef[] = [];
  let c = 0;
  for (let s = 0; s < services; s++) {
    const n = Math.floor(characteristics / services) + (s < characteristics % services ? 1 : 0);
    const chars: CharacteristicDef[] = [];
    for (let k = 0; k < n; k++) {
      c++;
      chars.push({
        uuid: 0xb000 + c,
        properties: c % 3 === 0 ? ['read', 'notify'] : ['read', 'write'],
        value: Uint8Array.of(c & 0xff),
        ...(c % 5 === 0 ? { descriptors: [{ uuid: 0x2901, value: `char ${c}` }] } : {}),
      });
    }
    out.push({ uuid: 0xa000 + s, characteristics: chars });
  }
  return out;
}
