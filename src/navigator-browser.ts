/**
 * The browser build's entry (tools/web/bundle.ts makes dist/browser/web-bluetooth.js from it): the
 * whole stack (HCI, L2CAP, ATT, GATT, the application API and the Web Bluetooth facade) running in a
 * page, reaching its controller over a WebSocket relay that forwards H4 bytes:
 *
 *   import { createBluetooth } from './web-bluetooth.js';
 *   const bluetooth = createBluetooth({ transport: 'ws://localhost:8790' });
 *   const device = await bluetooth.requestDevice({ filters: [{ services: ['heart_rate'] }] });
 *
 * In Node the same code runs from `blewire/web-bluetooth`. The bundle swaps the platform seam's
 * modules for src/platform/browser/ (see its README for what differs in a page).
 */
import { createBluetooth as createBluetoothWith, type Bluetooth, type CreateBluetoothOptions } from './web-bluetooth/bluetooth.js';

/**
 * createBluetooth() for a page: as blewire/web-bluetooth's, except that bonds stay in memory unless a
 * store is given (a page has no files; pass `open: { bonds: yourStore }` to keep them, e.g. in IndexedDB).
 */
export function createBluetooth(options: CreateBluetoothOptions = {}): Bluetooth {
  return createBluetoothWith(options.adapter ? options : { ...options, open: { bonds: false, ...options.open } });
}

export {
  Bluetooth, BluetoothLEScan, strongestSignal, MAX_CANDIDATES, MAX_SCANNED_DEVICES, DEFAULT_SCAN_TIME_MS, DEFAULT_CONNECT_TIMEOUT_MS,
  type CreateBluetoothOptions, type DeviceChooser, type DeviceCandidate, type RequestDeviceOptions,
} from './web-bluetooth/bluetooth.js';
export { BluetoothDevice, BluetoothRemoteGATTServer, type WatchAdvertisementsOptions } from './web-bluetooth/device.js';
export {
  BluetoothRemoteGATTService, BluetoothRemoteGATTCharacteristic, BluetoothRemoteGATTDescriptor,
  BluetoothCharacteristicProperties, MAX_ATTRIBUTE_VALUE,
} from './web-bluetooth/gatt.js';
export { BluetoothUUID, canonicalUUID } from './web-bluetooth/uuid.js';
export { GATT_BLOCKLIST, Blocklist, type BlocklistToken } from './web-bluetooth/blocklist.js';
export { BluetoothEventTarget } from './web-bluetooth/events.js';
export { WebSocketTransport, type WebSocketLike, type WebSocketClass, type WebSocketTransportOptions } from './transport/websocket.js';
