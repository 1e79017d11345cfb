/**
 * What a sensor decoder is: a table row that says which advertising field it reads (service data of
 * a 16-bit UUID, or manufacturer data of a company) and a decode function over those bytes, usually
 * a field layout (layout.ts) or an object table (BTHome). Adding a format is one file exporting one
 * SensorDecoder, listed in decoders/index.ts. Decoders never throw: bytes they cannot read give
 * `{ error }`, bytes that are not theirs give undefined.
 */
export type SensorValue = number | string | boolean | null;

export interface Decoded {
  /** The decoder's name ("bthome", "ibeacon", "eddystone", "ruuvi"). */
  format: string;
  values: Record<string, SensorValue>;
  /** Unit of each value that has one ("°C", "%", "hPa", …). */
  units: Record<string, string>;
  /** The payload was encrypted (BTHome); values are empty when it could not be decrypted. */
  encrypted?: boolean;
  /** A replay-protection counter carried by the payload (BTHome encrypted). */
  counter?: number;
  /** Why the payload could not be decoded (truncated, unsupported version, no key, wrong key). */
  error?: string;
}

export interface DecodeContext {
  /** The advertiser's address, "AA:BB:CC:DD:EE:FF" (BTHome's nonce uses it). */
  address: string;
  /** The advertiser's encryption key (BTHome bindkey), if the user configured one. */
  key?: Uint8Array;
}

export interface SensorDecoder {
  name: string;
  /** Reads the service data of this 16-bit UUID … */
  serviceData?: number;
  /** … or the manufacturer specific data of this company identifier (the bytes after the company id). */
  manufacturer?: number;
  /** Spec the decoder follows, for the README and the tests. */
  spec: string;
  decode(bytes: Uint8Array, ctx: DecodeContext): Decoded | undefined;
}
