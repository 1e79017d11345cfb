/**
 * What the layers above api/ (web-bluetooth/) use of the stack, in one place: the adapter and
 * connection, the scanned advertisement, the GATT model a connection hands out, and the UUID
 * helpers with the SIG name tables. A facade built on this file depends on the application API only;
 * the architecture test lets web-bluetooth/ import api/ (and the platform seam), nothing deeper.
 */
export { Adapter, type AdapterOpenOptions } from './adapter.js';
export { Connection } from './connection.js';
export type { Advertisement, AddressType, ScanSession } from '../gap/scanner.js';
export type { DisconnectReason } from '../gap/connections.js';
export type { GattService, GattCharacteristic, GattDescriptor, Subscription } from '../gatt/model.js';
export { NotFoundError as GattNotFoundError } from '../gatt/model.js';
export { fromShort, describeUuid, type Uuid } from '../codec/uuid.js';
export { SERVICE_NAMES, CHARACTERISTIC_NAMES, DESCRIPTOR_NAMES } from '../codec/uuid-names.js';
