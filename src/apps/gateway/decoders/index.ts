/**
 * The decoders the gateway runs on every advertisement it publishes. Adding a format: one file with a
 * SensorDecoder (see types.ts), and its name in this list.
 */
import { shortUuid } from '../../../index.js';
import { bthome } from './bthome.js';
import { eddystone } from './eddystone.js';
import { ibeacon } from './ibeacon.js';
import { ruuvi } from './ruuvi.js';
import type { Decoded, SensorDecoder } from './types.js';

export const DECODERS: readonly SensorDecoder[] = [bthome, ibeacon, eddystone, ruuvi];

export type { Decoded, DecodeContext, SensorDecoder, SensorValue } from './types.js';

export interface AdvertisedData {
  address: string;
  serviceData: ReadonlyMap<string, Uint8Array>;
  manufacturerData: ReadonlyMap<number, Uint8Array>;
}

/**
 * Every decoder whose field is present, in list order. `keyFor(address)` gives a device's
 * encryption key. A decoder that throws (a bug) is reported as an error, never propagated.
 */
export function decodeAll(ad: AdvertisedData, keyFor: (address: string) => Uint8Array | undefined = () => undefined,
  decoders: readonly SensorDecoder[] = DECODERS): Decoded[] {
  const out: Decoded[] = [];
  if (ad.serviceData.size === 0 && ad.manufacturerData.size === 0) return out;
  for (const d of decoders) {
    let bytes: Uint8Array | undefined;
    if (d.manufacturer !== undefined) bytes = ad.manufacturerData.get(d.manufacturer);
    else if (d.serviceData !== undefined) {
      for (const [u, v] of ad.serviceData) if (shortUuid(u) === d.serviceData) { bytes = v; break; }
    }
    if (!bytes) continue;
    try {
      const key = keyFor(ad.address);
      const r = d.decode(bytes, key ? { address: ad.address, key } : { address: ad.address });
      if (r) out.push(r);
    } catch (e) {
      out.push({ format: d.name, values: {}, units: {}, error: `decoder failed: ${(e as Error).message}` });
    }
  }
  return out;
}
