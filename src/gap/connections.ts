/**
 * The vocabulary of connections shared by the GAP rooms and the link: disconnect reasons, connection
 * parameters, what connect() takes. The rooms themselves live apart:
 * - initiating (create connection, cancel, timeout, the FIFO of connect() calls): `gap/initiator.ts`,
 * - accepting (incoming links where we are the peripheral): `gap/acceptor.ts`,
 * - the link of one connection, whichever role opened it (L2CAP, ATT bearer, our GATT server session,
 *   the optional GATT client, the SMP hook, the link-layer procedures): `link/link.ts`,
 * - the one GAP scheduler that routes the controller's connection events to them: `link/manager.ts`.
 */
import type { ConnectionParameterRequest } from '../l2cap/link.js';
import { statusName } from '../hci/status.js';
import type { AddressType } from './scanner.js';

/** HCI reasons a link can end with (Core Vol 1, Part F), with their names. */
export interface DisconnectReason {
  code: number;
  name: string;
}
export const disconnectReason = (code: number): DisconnectReason => ({ code, name: statusName(code) });

/** Reasons a host may give HCI Disconnect (Vol 4, Part E, 7.1.6). */
export const DisconnectReasons = {
  authenticationFailure: 0x05,
  remoteUserTerminated: 0x13,
  remoteLowResources: 0x14,
  remotePowerOff: 0x15,
  unsupportedRemoteFeature: 0x1a,
  pairingWithUnitKeyNotSupported: 0x29,
  unacceptableConnectionParameters: 0x3b,
} as const;

export interface ConnectionParameters {
  /** Connection interval in ms (1.25 ms units on the wire). */
  interval: number;
  /** Peripheral latency in connection events. */
  latency: number;
  /** Supervision timeout in ms (10 ms units on the wire). */
  supervisionTimeout: number;
}

export interface ConnectTarget {
  address: string;
  addressType?: AddressType | 'public' | 'random';
  /** Alias of addressType (ARCHITECTURE's `{ address, type }`). */
  type?: 'public' | 'random';
}

export interface ConnectOptions {
  /** Give up after this many ms (default 10 s): LE Create Connection Cancel, then TimeoutError. */
  timeout?: number;
  signal?: AbortSignal;
  /** Wanted connection interval range in ms (default 30–50). */
  intervalMin?: number;
  intervalMax?: number;
  latency?: number;
  /** Supervision timeout in ms (default 4000). */
  supervisionTimeout?: number;
  /** Tries when the link fails to be established (0x3E); default 1. */
  attempts?: number;
  /** Policy for the peripheral's parameter requests (L2CAP and LL); default accept any valid. */
  acceptParameters?(p: ConnectionParameterRequest): boolean;
  /** Ask for 251-byte link-layer PDUs after connecting when the controller supports it (default true). */
  dataLength?: boolean;
}
