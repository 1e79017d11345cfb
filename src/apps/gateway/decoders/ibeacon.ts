/**
 * iBeacon (Apple, Proximity Beacon Specification R1, 2.1 "Advertising Packet", Table 2-1):
 * manufacturer specific data of company 0x004C, then type 0x02, length 0x15, the 16-byte proximity
 * UUID, major and minor (big-endian), and the measured power at 1 m (signed dBm).
 */
import { decodeLayout, type LayoutField } from './layout.js';
import type { SensorDecoder } from './types.js';

export const APPLE = 0x004c;

const LAYOUT: readonly LayoutField[] = [
  { name: 'uuid', offset: 2, type: 'uuid' },
  { name: 'major', offset: 18, type: 'u16be' },
  { name: 'minor', offset: 20, type: 'u16be' },
  { name: 'measured_power', offset: 22, type: 's8', unit: 'dBm' },
];

export const ibeacon: SensorDecoder = {
  name: 'ibeacon',
  manufacturer: APPLE,
  spec: 'Apple Proximity Beacon Specification R1, Table 2-1',
  decode(b) {
    // Other Apple data (continuity, AirDrop …) uses other types: not ours.
    if (b.length < 2 || b[0] !== 0x02 || b[1] !== 0x15) return undefined;
    const r = decodeLayout(b, LAYOUT);
    return r ? { format: 'ibeacon', ...r } : { format: 'ibeacon', values: {}, units: {}, error: `iBeacon data is ${b.length} bytes, 23 expected` };
  },
};
