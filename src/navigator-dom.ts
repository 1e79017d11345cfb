/// <reference types="node" preserve="true" />
/// <reference types="web-bluetooth" preserve="true" />
/**
 * The package subpath `blewire/web-bluetooth/dom`: the same objects as `blewire/web-bluetooth`, typed
 * with the DOM's Web Bluetooth declarations (`@types/web-bluetooth`, the ones browser code is written
 * against), so that page code and `navigator.bluetooth` typecheck exactly as they do in a browser project.
 *
 *   /// <reference types="web-bluetooth" />
 *   import { bluetooth } from 'blewire/web-bluetooth/dom';
 *   const device: BluetoothDevice = await bluetooth.requestDevice({ filters: [{ services: ['heart_rate'] }] });
 *
 * Why two typings. The Web Bluetooth spec's nullable attributes (`BluetoothDevice.gatt`,
 * `BluetoothRemoteGATTCharacteristic.value`, `BluetoothRemoteGATTDescriptor.value`,
 * `Bluetooth.referringDevice`, the `on<event>` handler attributes) are `T?` in WebIDL: they read `null`
 * in the spec's algorithms and in Chrome, and blewire returns `null` at run time, so browser code that
 * compares with `null` behaves the same. `@types/web-bluetooth` (0.0.x) declares those attributes as
 * optional (`T | undefined`) and the handler attributes as never null. `blewire/web-bluetooth` keeps
 * the spec's types; this entry gives the declarations browser code already uses. `DomTyped` below is
 * the whole difference, and the assignment under it is compiled with the package, so any other
 * mismatch with `@types/web-bluetooth` fails the build.
 */
import {
  bluetooth as specBluetooth, createBluetooth as specCreateBluetooth, BluetoothUUID as specBluetoothUUID,
  type CreateBluetoothOptions,
} from './navigator.js';

export type { CreateBluetoothOptions };

/**
 * A type as `@types/web-bluetooth` spells it: `null` read as `undefined`, handler attributes never null,
 * through promises, arrays, methods and nested objects. Byte containers and Maps are left as they are.
 */
export type DomTyped<T> = T extends null ? undefined
  : T extends Promise<infer U> ? Promise<DomTyped<U>>
    : T extends readonly (infer E)[] ? DomTyped<E>[]
      : T extends (...args: infer A) => infer R ? (...args: A) => DomTyped<R>
        : T extends ArrayBufferView | ArrayBuffer | ReadonlyMap<unknown, unknown> ? T
          : T extends object ? { [K in keyof T]: K extends `on${string}` ? NonNullable<T[K]> : DomTyped<T[K]> }
            : T;

/** The one place the spec's typing is re-read as the DOM's (see the module comment); run time is unchanged. */
function domTyped<T>(value: T): DomTyped<T> { return value as unknown as DomTyped<T>; }

/** What blewire's `Bluetooth` has beyond the DOM's: the end of its adapter, which a browser never needs. */
export interface BlewireBluetoothExtras {
  /** Closes the adapter this object opened (one given in the options stays the caller's). */
  close(): Promise<void>;
}

/** `navigator.bluetooth` typed as the DOM's `Bluetooth`: the same object as `blewire/web-bluetooth`'s `bluetooth`. */
export const bluetooth: Bluetooth & BlewireBluetoothExtras = domTyped(specBluetooth);

/** `createBluetooth()` of `blewire/web-bluetooth`, its result typed as the DOM's `Bluetooth`. */
export function createBluetooth(options?: CreateBluetoothOptions): Bluetooth & BlewireBluetoothExtras {
  return domTyped(specCreateBluetooth(options));
}

/**
 * The DOM's `BluetoothUUID` namespace (getService, getCharacteristic, getDescriptor, canonicalUUID). Its
 * `canonicalUUID` is typed to take a string as well, as `@types/web-bluetooth` has it: at run time the
 * alias goes through WebIDL's `unsigned long` conversion, as in a browser (`'6159'` is 0x180f).
 */
export const BluetoothUUID: typeof globalThis.BluetoothUUID =
  specBluetoothUUID as typeof specBluetoothUUID & { canonicalUUID(alias: number | string): string };
