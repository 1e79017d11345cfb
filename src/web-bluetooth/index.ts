/**
 * Web Bluetooth (the WebBluetoothCG spec's `navigator.bluetooth`) over blewire's application API:
 * `createBluetooth({ adapter | transport, deviceChooser, scanTime })`, the interfaces, BluetoothUUID
 * and the GATT blocklist. Built on api/ only (test/unit/architecture.test.ts). The package subpath
 * `blewire/web-bluetooth` (src/navigator.ts) adds the lazy `bluetooth` object.
 */
export {
  Bluetooth, BluetoothLEScan, createBluetooth, strongestSignal, MAX_CANDIDATES, MAX_SCANNED_DEVICES, DEFAULT_SCAN_TIME_MS, DEFAULT_CONNECT_TIMEOUT_MS,
  type CreateBluetoothOptions, type DeviceChooser, type DeviceCandidate, type RequestDeviceOptions,
} from './bluetooth.js';
export { BluetoothDevice, BluetoothRemoteGATTServer, type WatchAdvertisementsOptions } from './device.js';
export {
  BluetoothRemoteGATTService, BluetoothRemoteGATTCharacteristic, BluetoothRemoteGATTDescriptor,
  BluetoothCharacteristicProperties, MAX_ATTRIBUTE_VALUE,
} from './gatt.js';
export { BluetoothUUID, canonicalUUID } from './uuid.js';
export { terminalChooser, MAX_CHOOSER_LINES } from './chooser.js';
export { openBrowserPage, MAX_BRIDGE_HANDLES, MAX_CONSOLE_LINES, type BrowserPage, type BrowserPageOptions } from './bridge.js';
export { GATT_BLOCKLIST, Blocklist, type BlocklistToken } from './blocklist.js';
export { BluetoothEventTarget } from './events.js';
export type { WebBufferSource } from './buffer.js';
