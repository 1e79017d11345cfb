/**
 * Eddystone (google/eddystone protocol-specification.md): service data of UUID 0xFEAA; the frame type
 * is the high nibble of the first byte. All multi-byte fields are big-endian.
 *   UID 0x00: TX power at 0 m (s8), namespace (10), instance (6), 2 RFU bytes (often omitted)
 *   URL 0x10: TX power (s8), scheme prefix, encoded URL (expansion codes below)
 *   TLM 0x20: version 0x00: battery mV (u16), temperature (8.8 signed fixed point; 0x8000 = not
 *             supported), advertising PDU count (u32), time since power-on in 0.1 s (u32);
 *             version 0x01 is the encrypted TLM (not decoded here)
 */
import { decodeLayout, type LayoutField } from './layout.js';
import type { Decoded, SensorDecoder } from './types.js';

export const EDDYSTONE_UUID = 0xfeaa;

const UID: readonly LayoutField[] = [
  { name: 'tx_power', offset: 1, type: 's8', unit: 'dBm' },
  { name: 'namespace', offset: 2, type: 'hex', length: 10 },
  { name: 'instance', offset: 12, type: 'hex', length: 6 },
];

const TLM: readonly LayoutField[] = [
  { name: 'battery_voltage', offset: 2, type: 'u16be', unit: 'mV', na: 0 },
  { name: 'temperature', offset: 4, type: 's16be', scale: 1 / 256, unit: '°C', na: -32768 },
  { name: 'advertising_count', offset: 6, type: 'u32be' },
  { name: 'uptime', offset: 10, type: 'u32be', scale: 0.1, unit: 's' },
];

/** URL Scheme Prefix (eddystone-url, "URL Scheme Prefix"). */
const SCHEMES = ['http://www.', 'https://www.', 'http://', 'https://'];
/** HTTP URL encoding expansion codes 0x00-0x0D (eddystone-url, "Eddystone-URL HTTP URL encoding"). */
const EXPANSIONS = ['.com/', '.org/', '.edu/', '.net/', '.info/', '.biz/', '.gov/', '.com', '.org', '.edu', '.net', '.info', '.biz', '.gov'];

function decodeUrl(b: Uint8Array, out: Decoded): Decoded {
  if (b.length < 3) return { ...out, error: 'URL frame too short' };
  const scheme = SCHEMES[b[2]!];
  if (scheme === undefined) return { ...out, error: `unknown URL scheme prefix 0x${b[2]!.toString(16)}` };
  let url = scheme;
  for (let i = 3; i < b.length; i++) {
    const c = b[i]!;
    if (c < EXPANSIONS.length) url += EXPANSIONS[c];
    else if (c > 0x20 && c < 0x7f) url += String.fromCharCode(c);
    else return { ...out, error: `reserved URL byte 0x${c.toString(16)} at offset ${i}` };
  }
  out.values['tx_power'] = (b[1]! << 24) >> 24;
  out.units['tx_power'] = 'dBm';
  out.values['url'] = url;
  return out;
}

export const eddystone: SensorDecoder = {
  name: 'eddystone',
  serviceData: EDDYSTONE_UUID,
  spec: 'Eddystone protocol specification (google/eddystone): UID, URL, TLM',
  decode(b) {
    if (b.length < 1) return { format: 'eddystone', values: {}, units: {}, error: 'empty frame' };
    const type = b[0]! & 0xf0;
    const out: Decoded = { format: 'eddystone', values: {}, units: {} };
    if (type === 0x00) {
      const r = decodeLayout(b, UID);
      return r ? { ...out, values: { frame: 'uid', ...r.values }, units: r.units } : { ...out, error: 'UID frame too short' };
    }
    if (type === 0x10) {
      out.values['frame'] = 'url';
      return decodeUrl(b, out);
    }
    if (type === 0x20) {
      if (b[1] === 0x01) return { ...out, values: { frame: 'tlm' }, encrypted: true, error: 'encrypted TLM is not decoded' };
      if (b[1] !== 0x00) return { ...out, values: { frame: 'tlm' }, error: `TLM version 0x${(b[1] ?? 0).toString(16)} is not supported` };
      const r = decodeLayout(b, TLM);
      return r ? { ...out, values: { frame: 'tlm', ...r.values }, units: r.units } : { ...out, error: 'TLM frame too short' };
    }
    if (type === 0x30) return { ...out, values: { frame: 'eid' }, error: 'EID frames carry an encrypted ephemeral id: not decoded' };
    return { ...out, error: `unknown frame type 0x${type.toString(16)}` };
  },
};
