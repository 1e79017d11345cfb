/**
 * Checks of what a user types, done before anything is opened: a malformed address, an unknown UUID
 * name, hex that is not hex or a number that is not a number is a usage error (exit code 2, one line
 * saying what was wrong and what is accepted), never a timeout or a stack trace after connecting.
 */
import { ArgumentError } from '../errors.js';
import { uuid as toUuid } from '../codec/uuid.js';

/** A usage mistake: main prints the message and exits with 2. */
export class UsageError extends ArgumentError {}

const ADDRESS = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** `C0:11:22:33:44:55` (any case), as the stack writes it: upper case. */
export function checkAddress(text: string): string {
  if (!ADDRESS.test(text)) {
    throw new UsageError(`not a Bluetooth device address: ${JSON.stringify(text)} (six octets in hex, most significant first, e.g. C0:11:22:33:44:55)`);
  }
  return text.toUpperCase();
}

/** A UUID argument: 16-bit (`2a19`, `0x2a19`), 128-bit, or a name such as `battery_level`. */
export function checkUuid(text: string, what = 'UUID'): string {
  try {
    return toUuid(/^0x[0-9a-f]{4,8}$/i.test(text) ? text.slice(2) : text);
  } catch {
    throw new UsageError(`not a ${what} or a known name: ${JSON.stringify(text)} (e.g. 2a19, 0x2a19, battery_level, or a 128-bit UUID)`);
  }
}

/**
 * Hex octets: `0102`, `0x0102`, `01 02`, `01:02`, `0x01 0x02`. An odd number of digits in a group or
 * anything else is refused (guessing where a nibble belongs would write the wrong value).
 */
export function checkHex(text: string): Uint8Array {
  // Each group between separators stands for whole octets: `1 2` is refused rather than read as 0x12.
  const groups = text.trim().split(/[\s:_-]+/).filter(g => g !== '');
  if (groups.some(g => !/^(0x)?([0-9a-f]{2})+$/i.test(g))) {
    throw new UsageError(`not hex octets: ${JSON.stringify(text)} (e.g. 0102, 0x0102, "01 02" or 01:02; two hex digits per octet)`);
  }
  const clean = groups.map(g => g.replace(/^0x/i, '')).join('');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A whole number option within [min, max]. */
export function checkInteger(text: string | undefined, option: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${option} takes a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, not ${JSON.stringify(text)}`);
  }
  return n;
}

// Moved to fs-errors.ts (report.ts needs them without this module's UUID tables); kept here too.
export { describeFsError, fsReason } from './fs-errors.js';
