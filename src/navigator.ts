// The facade's types use Node's web globals (EventTarget, Event, DOMException): the declarations load
// @types/node themselves, as the package entry's do.
/// <reference types="node" preserve="true" />
/**
 * The package subpath `blewire/web-bluetooth`: the Web Bluetooth facade (web-bluetooth/) plus the
 * transport registry's wiring (as the package entry index.ts does), so that `bluetooth`, which opens
 * its adapter lazily from BLEWIRE_TRANSPORT, understands `sim` and `replay:` as well as adapters.
 *
 *   import { bluetooth } from 'blewire/web-bluetooth';
 *   globalThis.navigator ??= {}; navigator.bluetooth = bluetooth;   // then run browser code unchanged
 */
import './transports.js';
import { createBluetooth } from './web-bluetooth/index.js';

export * from './web-bluetooth/index.js';

/** navigator.bluetooth: opens its adapter on first use (BLEWIRE_TRANSPORT); `await bluetooth.close()` ends it. */
export const bluetooth = createBluetooth();
