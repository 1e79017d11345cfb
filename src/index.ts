// The public types extend Node's (Adapter and Connection are EventEmitters; transports take Buffers),
// so the declarations load @types/node themselves (a dependency of the package): a project whose
// tsconfig lists no `types` (what `tsc --init` writes) still sees `conn.on(...)`.
/// <reference types="node" preserve="true" />
/**
 * blewire's public surface. Everything an application needs is exported here; deeper modules are
 * implementation and may change.
 */

// The transport registry learns the simulator and replay here (each loaded on first use).
import './transports.js';

// The application API: adapter, scanning, connections, GATT.
export { Adapter, staticRandomAddress, type AdapterOpenOptions, type FindOptions, type AdapterEvents } from './api/adapter.js';
export { Connection, type ConnectionEvents } from './api/connection.js';
export { Advertisement, ScanSession, type ScanOptions, type AddressType } from './gap/scanner.js';
export type { ScanFilter, ManufacturerDataFilter, ServiceDataFilter, DataFilter } from './gap/filters.js';
export {
  DisconnectReasons, type DisconnectReason, type ConnectTarget, type ConnectOptions, type ConnectionParameters,
} from './gap/connections.js';
export { GattClient, type GattClientOptions, type GattClientStats } from './gatt/client.js';
export {
  GattService, GattCharacteristic, GattDescriptor, NotFoundError,
  type Subscription, type WriteOptions, type SubscribeOptions,
} from './gatt/model.js';
export type { OpOptions, OperationOptions } from './operation.js';
export { FileGattCache, MemoryGattCache, type GattCache } from './gatt/cache.js';
export { GattDatabase } from './gatt/server-db.js';
// The peripheral role's GATT server (adapter.serve).
export {
  GattServer, GattServerError, DEFAULT_HANDLER_TIMEOUT_MS,
  type ServedService, type ServedCharacteristic, type ServedDescriptor, type ServerRequest, type ServerWrite, type AccessSecurity,
  type Authorizer, type AuthorizationRequest, type ServeOptions, type SubscriptionChange, type GapIdentity,
} from './gatt/server/server.js';
// L2CAP credit-based channels (conn.openChannel, adapter.listen).
export {
  CreditChannel, ChannelListener, DEFAULT_COC_PARAMETERS,
  type CocParameters, type OpenChannelOptions, type ListenOptions, type ChannelStats,
} from './l2cap/coc.js';

// Typed errors (each has a stable `code`).
export {
  BlewireError, DecodeError, EncodeError, TimeoutError, AbortError, TransportError, DisconnectedError,
  ProtocolError, InvalidStateError, HciStatusError, AttError, BearerClosedError, ArgumentError, HardwareError, FileError, SmpError, BrowserError,
  AdTooLongError, ChannelRefusedError, ChannelClosedError, DatabaseFileError,
  type Layer,
} from './errors.js';

// UUIDs and names.
export { uuid, uuidOf, shortUuid, uuidName, describeUuid, type Uuid } from './codec/uuid.js';

// Clocks (inject FakeClock in tests).
export { systemClock, FakeClock, type Clock } from './clock.js';

// Transports and captures.
export {
  openTransport, registerTransport, memoryTransportPair, recordTransport, H4,
  type HciTransport, type TransportReceiver, type OpenTransportOptions,
} from './transport/index.js';
export {
  parseCapture, readCaptureFile, createCaptureWriter, openCaptureFile,
  type CaptureRecord, type CaptureFormat, type CaptureWriter,
} from './capture/index.js';
export { decodeRecords, decodeRecordsAsync, toJsonLine, type DecodedLine } from './inspect/decode.js';

// Codecs, for tools that work on raw packets.
export { decodeHciPacket, encodeHciPacket, describeHciPacket, type HciPacket } from './hci/packets.js';
export { decodeAtt, encodeAtt, describeAtt, type AttPdu } from './att/pdus.js';
export {
  parseAd, decodeAd, encodeAd, buildAd, LEGACY_AD_MAX, EXTENDED_AD_MAX, type ParsedAd, type AdContent, type BuildAdOptions,
} from './gap/ad.js';
export { decodeSmp, encodeSmp, describeSmp, type SmpPdu } from './smp/pdus.js';
// The peripheral role: advertising sets (adapter.advertise()).
export {
  AdvertisingSet, EXT_AD_FRAGMENT, type AdvertiseOptions, type AdvertisingContent, type AdvertisingEndReason,
} from './gap/advertiser.js';

// The Security Manager's crypto toolbox (Core Vol 3, Part H, 2.2): e, c1, s1, ah, f4, f5, f6, g2, h6,
// h7, AES-CMAC and P-256, spec names and parameter order, values most significant octet first.
export * as smpCrypto from './smp/crypto.js';
// Pairing (sans-IO state machine; the link drives it) and bond stores.
export {
  SmpSession, type SmpSessionOptions, type SmpAction, type PairingResult, type SmpAddress, type SmpLtk, type SmpDistributedKeys,
} from './smp/session.js';
export { PairingAttempts, type PairingAttemptsOptions } from './smp/attempts.js';
export { MemoryBondStore, FileBondStore, bondFromPairing, defaultBondDir, type Bond, type BondStore } from './smp/bonds.js';
