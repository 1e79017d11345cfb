/**
 * The typed errors of blewire. Every failure a user can see is one of these, with a stable `code`
 * and a message that names what happened and, where there is one, what to do about it.
 */

export type Layer =
  | 'bytes' | 'h4' | 'hci' | 'acl' | 'l2cap' | 'att' | 'gatt' | 'smp' | 'ad' | 'capture'
  | 'transport' | 'gap' | 'sim' | 'replay';

export class BlewireError extends Error {
  readonly code: string = 'EBLEWIRE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A decoder met bytes it cannot accept. The only error any decoder throws. */
export class DecodeError extends BlewireError {
  override readonly code = 'EDECODE';
  constructor(
    readonly layer: Layer,
    readonly what: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${layer}: cannot decode ${what} at offset ${offset}: ${reason}`);
  }
}

/** A value cannot be encoded (out of range, too long); never silently truncated. */
export class EncodeError extends BlewireError {
  override readonly code = 'EENCODE';
  constructor(readonly layer: Layer, readonly what: string, reason: string) {
    super(`${layer}: cannot encode ${what}: ${reason}`);
  }
}

/**
 * Advertising or scan response data does not fit the octets available (31 for legacy advertising,
 * what the controller reports for extended advertising). `excess` says by how many octets; the
 * message lists what was asked for, so the caller knows what to drop (a name is already shortened
 * as far as it can be before this is thrown).
 */
export class AdTooLongError extends BlewireError {
  override readonly code = 'EADTOOLONG';
  readonly excess: number;
  constructor(readonly size: number, readonly limit: number, readonly kinds: readonly string[]) {
    super(`ad: the advertising data needs ${size} octets, ${size - limit} more than the ${limit} available ` +
      `(${kinds.join(', ')}): drop or shorten some of it, or use extended advertising for more than 31 octets`);
    this.excess = size - limit;
  }
}

/**
 * An operation did not finish within its deadline. `hint`, when given, says what the user can check
 * or do next and ends the message after a colon.
 */
export class TimeoutError extends BlewireError {
  override readonly code = 'ETIMEDOUT';
  constructor(readonly layer: Layer, readonly operation: string, readonly ms: number, readonly hint?: string) {
    super(`${layer}: ${operation} timed out after ${ms} ms${hint ? `: ${hint}` : ''}`);
  }
}

/** The caller's AbortSignal fired. `reason` is the signal's reason. */
export class AbortError extends BlewireError {
  override readonly code = 'EABORT';
  constructor(readonly operation: string, readonly reason?: unknown) {
    super(`${operation} was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason });
  }
}

/** The transport cannot be opened or has failed; the message says what the user can do. */
export class TransportError extends BlewireError {
  override readonly code: string;
  constructor(message: string, code = 'ETRANSPORT', options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A link went down while an operation on it was pending. */
export class DisconnectedError extends BlewireError {
  override readonly code = 'EDISCONNECTED';
  constructor(readonly operation: string, readonly reason?: number, readonly reasonName?: string) {
    super(`${operation}: the link was disconnected${reasonName ? ` (${reasonName})` : ''}`);
  }
}

/**
 * The peer or the controller broke the protocol (a response that does not fit the request, etc.).
 * `cause`, when there is one, is the error that showed it (e.g. the DecodeError of a malformed response).
 */
export class ProtocolError extends BlewireError {
  override readonly code = 'EPROTO';
  constructor(readonly layer: Layer, message: string, options?: { cause?: unknown }) {
    super(`${layer}: ${message}`, options);
  }
}

/**
 * A caller passed a value blewire cannot use (a malformed UUID or address, an oversized write
 * without response, an invalid GATT database declaration, …). Nothing was sent. The message names
 * the argument, what it was and what is accepted. Before 0.x these were plain `TypeError` /
 * `RangeError`; catch `ArgumentError` (or test `code === 'EARGUMENT'`) instead.
 */
export class ArgumentError extends BlewireError {
  override readonly code = 'EARGUMENT';
}

/**
 * The controller reported a Hardware Error event (Core Vol 4, Part E, 7.7.16). `hardwareCode` is the
 * controller-specific code of the event. Pending commands and links are lost; the Adapter resets and
 * re-initialises the controller (its `reset` event says when it is usable again).
 */
export class HardwareError extends BlewireError {
  override readonly code = 'EHARDWARE';
  constructor(readonly hardwareCode: number, readonly operation?: string) {
    super(`${operation ? `${operation}: ` : ''}hci: the controller reported Hardware Error ` +
      `0x${hardwareCode.toString(16).padStart(2, '0')}; it loses its links and must be reset ` +
      '(Adapter does this by itself; retry after its reset event)');
  }
}

/** An operation is not valid in the current state (e.g. a second MTU exchange). */
export class InvalidStateError extends BlewireError {
  override readonly code = 'EINVALIDSTATE';
}

/**
 * The controller answered an HCI command (or reported an HCI procedure) with a non-zero status
 * (Core Vol 1, Part F). `status` is the error code, `statusName` its spec name, `command` the command
 * (table kind or "0x2005") that failed.
 */
export class HciStatusError extends BlewireError {
  override readonly code = 'EHCISTATUS';
  constructor(
    readonly status: number,
    readonly statusName: string,
    readonly command: string,
    readonly opcode?: number,
    /** What the status means for the caller's request, appended to the message after a colon. */
    readonly hint?: string,
  ) {
    super(`hci: ${command} failed with status 0x${status.toString(16).padStart(2, '0')} (${statusName})${hint ? `: ${hint}` : ''}`);
  }
}

/**
 * The peer answered an ATT request with an Error Response (Core Vol 3, Part F, 3.4.1.1).
 * `errorCode`/`errorName` are the ATT error, `handle` the attribute in error, `request` the kind of
 * the request that failed (e.g. 'readReq') and `requestOpcode` its opcode.
 */
export class AttError extends BlewireError {
  override readonly code = 'EATT';
  constructor(
    readonly errorCode: number,
    readonly errorName: string,
    readonly handle: number,
    readonly request: string,
    readonly requestOpcode: number,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(`att: error 0x${errorCode.toString(16).padStart(2, '0')} (${errorName}) on handle ` +
      `0x${handle.toString(16).padStart(4, '0')} for ${request}${options?.detail ? `; ${options.detail}` : ''}`,
    options?.cause === undefined ? undefined : { cause: options.cause });
  }

  /**
   * The same error answer, after the stack tried to raise the link's security for it (pair or
   * encrypt) and failed: `cause` says why, the message says what to do.
   */
  withSecurityFailure(failure: unknown): AttError {
    const why = failure instanceof Error ? failure.message : String(failure);
    return new AttError(this.errorCode, this.errorName, this.handle, this.request, this.requestOpcode, {
      cause: failure,
      detail: `raising the link's security for it failed (${why}); check the peer accepts pairing ` +
        '(BlueZ: an agent and bondable on) or pair first with conn.pair()',
    });
  }
}

/**
 * The ATT bearer is closed for good (after a transaction timeout, Core Vol 3, Part F, 3.3.3, or
 * after the link went down); `cause` is the error that closed it.
 */
export class BearerClosedError extends BlewireError {
  override readonly code = 'EBEARERCLOSED';
  constructor(readonly operation: string, cause: Error) {
    super(`att: ${operation}: the bearer is closed (${cause.message})`, { cause });
  }
}

/**
 * A private file or directory (GATT cache, bond store) could not be read or written safely: the
 * operation, the path, what was wrong, and the system error as `cause` if there was one.
 */
export class FileError extends BlewireError {
  override readonly code = 'EFILE';
  constructor(readonly operation: string, readonly path: string, detail: string, options?: { cause?: unknown }) {
    super(`file: ${operation} ${path}: ${detail}`, options);
  }
}

/**
 * A GATT database file (`blewire serve`, src/tooling/database-file.ts) that cannot be served: the
 * file, where in it (`at`, a JSON path such as `peripherals[0].gatt[2].characteristics[1].uuid`,
 * empty for the file as a whole) and what is wrong there.
 */
export class DatabaseFileError extends BlewireError {
  override readonly code = 'EDBFILE';
  constructor(readonly file: string, readonly at: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`${file}${at ? `, at ${at}` : ''}: ${reason}`, options);
  }
}

/**
 * A pairing failed (Core Vol 3, Part H). `reason` is the Pairing Failed reason code (3.5.5, Table 3.7)
 * and `reasonName` its spec name; `by` says who ended it: `'local'` (we sent Pairing Failed, or
 * refused before sending anything), `'peer'` (the peer sent Pairing Failed), `'encryption'` (the
 * controller could not start encryption with the key; `hciStatus` is its status). `detail` says what
 * exactly went wrong and what to do.
 */
export class SmpError extends BlewireError {
  override readonly code = 'ESMP';
  constructor(
    readonly reason: number,
    readonly reasonName: string,
    readonly by: 'local' | 'peer' | 'encryption',
    readonly detail?: string,
    readonly hciStatus?: number,
  ) {
    super(`smp: pairing failed: ${reasonName} (0x${reason.toString(16).padStart(2, '0')}, ` +
      `${by === 'peer' ? 'sent by the peer' : by === 'encryption' ? 'encryption did not start' : 'sent by us'})` +
      `${detail ? `: ${detail}` : ''}`);
  }
}

/**
 * The peer refused to open an L2CAP credit-based channel (Core Vol 3, Part A, 4.23 / 4.26). `result`
 * is the response's result code and `resultName` its spec name; the message says what to do (pair
 * first for the security results, use another PSM for 0x0002, retry later for 0x0004).
 */
export class ChannelRefusedError extends BlewireError {
  override readonly code = 'ECHANNELREFUSED';
  constructor(readonly psm: number, readonly result: number, readonly resultName: string, hint?: string) {
    super(`l2cap: the peer refused the credit-based channel on PSM 0x${psm.toString(16).padStart(4, '0')}: ` +
      `${resultName} (0x${result.toString(16).padStart(4, '0')})${hint ? `: ${hint}` : ''}`);
  }
}

/**
 * An L2CAP credit-based channel is closed (Core Vol 3, Part A, 4.6): `by` says who ended it:
 * `'local'` (we closed it), `'peer'` (its Disconnection Request), `'protocol'` (one side broke the
 * channel's rules and it was disconnected, Vol 3, Part A, 3.4.3 and 10.1: `detail` says which),
 * `'link'` (the LE link went down; `cause` is its DisconnectedError).
 */
export class ChannelClosedError extends BlewireError {
  override readonly code = 'ECHANNELCLOSED';
  constructor(readonly cid: number, readonly by: 'local' | 'peer' | 'protocol' | 'link', readonly detail?: string,
    options?: { cause?: unknown }) {
    super(`l2cap: channel 0x${cid.toString(16).padStart(4, '0')} is closed (${
      by === 'local' ? 'closed by us' : by === 'peer' ? 'disconnected by the peer' : by === 'link' ? 'the link went down'
        : 'protocol violation'})${detail ? `: ${detail}` : ''}`, options);
  }
}

/**
 * The browser of the Web Bluetooth bridge (Debian's `chromium`, src/platform/chromium.ts) could not be
 * started, did not answer on its DevTools pipe, or went away: the message says which and what to do.
 */
export class BrowserError extends BlewireError {
  override readonly code = 'EBROWSER';
}
