/**
 * Web Bluetooth reports failures as DOMExceptions named by the spec (NotFoundError, SecurityError,
 * NetworkError, InvalidStateError, NotSupportedError, InvalidModificationError, AbortError) and bad
 * arguments as TypeErrors. The blewire error behind a failure stays reachable as `cause`, so its
 * stable `code` (EATT, EDISCONNECTED, ETIMEDOUT, …) is not lost to page code that looks deeper.
 */
import { AbortError, AttError, BlewireError, DisconnectedError, TimeoutError } from '../errors.js';

export type WebBluetoothErrorName =
  | 'NotFoundError' | 'SecurityError' | 'NetworkError' | 'InvalidStateError' | 'NotSupportedError'
  | 'InvalidModificationError' | 'AbortError' | 'NotAllowedError';

/** A DOMException with the spec's name and, when a blewire error is behind it, that error as `cause`. */
export function domError(name: WebBluetoothErrorName, message: string, cause?: unknown): DOMException {
  const e = new DOMException(message, name);
  if (cause !== undefined) Object.defineProperty(e, 'cause', { value: cause, configurable: true, writable: true });
  return e;
}

/**
 * ATT Error Response codes (Core Vol 3, Part F, 3.4.1.1) as the DOMException a browser raises for
 * them (Chrome's mapping; the spec leaves it to the UA): permissions and unsupported requests are
 * NotSupportedError, security shortfalls SecurityError, bad lengths InvalidModificationError.
 */
const ATT_ERRORS: ReadonlyMap<number, [WebBluetoothErrorName, string]> = new Map([
  [0x01, ['InvalidStateError', 'GATT attribute handle is no longer valid']],
  [0x02, ['NotSupportedError', 'GATT operation not permitted (Read Not Permitted)']],
  [0x03, ['NotSupportedError', 'GATT operation not permitted (Write Not Permitted)']],
  [0x05, ['SecurityError', 'GATT operation not authorized (Insufficient Authentication)']],
  [0x06, ['NotSupportedError', 'GATT operation not supported by the device (Request Not Supported)']],
  [0x07, ['InvalidModificationError', 'GATT value offset is invalid (Invalid Offset)']],
  [0x08, ['SecurityError', 'GATT operation not authorized (Insufficient Authorization)']],
  [0x0c, ['SecurityError', 'GATT operation not authorized (Insufficient Encryption Key Size)']],
  [0x0d, ['InvalidModificationError', 'GATT value has an invalid length (Invalid Attribute Value Length)']],
  [0x0f, ['SecurityError', 'GATT operation not authorized (Insufficient Encryption)']],
]);

/** The DOMException for a failure of a GATT operation `what` (a blewire error, or anything thrown). */
export function gattError(what: string, e: unknown): DOMException {
  if (e instanceof DOMException) return e;
  if (e instanceof AttError) {
    const [name, text] = ATT_ERRORS.get(e.errorCode) ?? ['NotSupportedError', `GATT error 0x${e.errorCode.toString(16).padStart(2, '0')} (${e.errorName})`];
    return domError(name, `${what}: ${text}.`, e);
  }
  if (e instanceof AbortError) return domError('AbortError', `${what}: aborted.`, e);
  if (e instanceof DisconnectedError) {
    return domError('NetworkError', `${what}: GATT Server is disconnected. Cannot perform GATT operations. (Re)connect first with \`device.gatt.connect\`.`, e);
  }
  if (e instanceof TimeoutError) return domError('NetworkError', `${what}: the device did not answer in time (${e.message}).`, e);
  if (e instanceof BlewireError) return domError('NetworkError', `${what}: ${e.message}`, e);
  return domError('NetworkError', `${what}: ${e instanceof Error ? e.message : String(e)}`, e);
}

export function notConnected(what: string): DOMException {
  return domError('NetworkError', `${what}: GATT Server is disconnected. Cannot perform GATT operations. (Re)connect first with \`device.gatt.connect\`.`);
}
