/**
 * RuuviTag data format 5 (RAWv2, docs.ruuvi.com "Data format 5 (RAWv2)"): manufacturer specific data
 * of company 0x0499, 24 bytes, all fields big-endian. "Not available" is the largest value of an
 * unsigned field, the smallest of a signed one, and all ones for the MAC.
 */
import { decodeLayout, type LayoutField } from './layout.js';
import type { SensorDecoder } from './types.js';

export const RUUVI = 0x0499;

const DF5: readonly LayoutField[] = [
  { name: 'temperature', offset: 1, type: 's16be', scale: 0.005, unit: '°C', na: -32768 },
  { name: 'humidity', offset: 3, type: 'u16be', scale: 0.0025, unit: '%', na: 0xffff },
  { name: 'pressure', offset: 5, type: 'u16be', add: 50_000, unit: 'Pa', na: 0xffff },
  { name: 'acceleration_x', offset: 7, type: 's16be', scale: 0.001, unit: 'g', na: -32768 },
  { name: 'acceleration_y', offset: 9, type: 's16be', scale: 0.001, unit: 'g', na: -32768 },
  { name: 'acceleration_z', offset: 11, type: 's16be', scale: 0.001, unit: 'g', na: -32768 },
  // Power info: 11 bits battery above 1600 mV, 5 bits TX power above -40 dBm in 2 dB steps.
  { name: 'battery_voltage', offset: 13, type: 'u16be', shift: 5, bits: 11, scale: 0.001, add: 1.6, unit: 'V', na: 2047 },
  { name: 'tx_power', offset: 13, type: 'u16be', shift: 0, bits: 5, scale: 2, add: -40, unit: 'dBm', na: 31 },
  { name: 'movement_counter', offset: 15, type: 'u8', na: 0xff },
  { name: 'measurement_sequence', offset: 16, type: 'u16be', na: 0xffff },
  { name: 'mac', offset: 18, type: 'hex', length: 6 },
];

export const ruuvi: SensorDecoder = {
  name: 'ruuvi',
  manufacturer: RUUVI,
  spec: 'Ruuvi data format 5 (RAWv2), docs.ruuvi.com',
  decode(b) {
    if (b.length < 1 || b[0] !== 5) return undefined; // other Ruuvi formats: not decoded here
    const r = decodeLayout(b, DF5);
    if (!r) return { format: 'ruuvi', values: {}, units: {}, error: `data format 5 is 24 bytes, got ${b.length}` };
    if (r.values['mac'] === 'ffffffffffff') r.values['mac'] = null;
    return { format: 'ruuvi', values: { data_format: 5, ...r.values }, units: r.units };
  },
};
