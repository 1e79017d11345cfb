/**
 * Events as Web Bluetooth defines them: every interface that fires events is a real EventTarget
 * with `on<event>` attributes, and bubbling events travel characteristic → service → device →
 * bluetooth (spec 6.1, "Bluetooth Tree": each object's parent). Node's EventTarget has no parents, so
 * a bubbling event is dispatched at its target and then, unless a listener stopped propagation, at
 * each ancestor as an event of the same type whose `target` is the original target and whose
 * `eventPhase` is BUBBLING_PHASE: page code that reads `event.target.value` in a listener on the
 * device (or on navigator.bluetooth) sees the characteristic, as in a browser.
 *
 * webidlInterface() makes a class look like a WebIDL interface to page code: attributes and
 * operations are enumerable on the prototype (so `for (const p in characteristic.properties)` lists
 * them) and the object's toString tag is the interface name.
 */

export type Handler = ((this: EventTarget, ev: Event) => unknown) | null;

/** An EventTarget with a parent in the Bluetooth tree. */
export class BluetoothEventTarget extends EventTarget {
  readonly #handlers = new Map<string, { current: Handler }>();
  /** @internal The next target on the bubbling path (undefined at the root). */
  protected bluetoothParent(): BluetoothEventTarget | undefined { return undefined; }

  /** @internal The event handler IDL attribute `on<type>`: one listener, added at the first assignment. */
  getHandler(type: string): Handler {
    return this.#handlers.get(type)?.current ?? null;
  }

  /** @internal */
  setHandler(type: string, fn: unknown): void {
    const h = typeof fn === 'function' ? fn as Exclude<Handler, null> : null;
    let slot = this.#handlers.get(type);
    if (!slot) {
      if (h === null) return;
      const s: { current: Handler } = { current: h };
      slot = s;
      this.#handlers.set(type, s);
      this.addEventListener(type, ev => { if (s.current) s.current.call(this, ev); });
    }
    slot.current = h;
  }

  /** @internal Fire `type` at this object (and up the tree when `bubbles`), with extra read-only fields. */
  fire(type: string, bubbles: boolean, fields: Record<string, unknown> = {}): void {
    const first = makeEvent(type, bubbles, fields);
    this.dispatchEvent(first);
    if (!bubbles) return;
    let stopped = first.cancelBubble;
    for (let p = this.bluetoothParent(); p && !stopped; p = p.bluetoothParent()) {
      const ev = makeEvent(type, bubbles, fields);
      Object.defineProperty(ev, 'target', { value: this, enumerable: true, configurable: true });
      Object.defineProperty(ev, 'srcElement', { value: this, enumerable: true, configurable: true });
      Object.defineProperty(ev, 'eventPhase', { value: 3 /* BUBBLING_PHASE */, enumerable: true, configurable: true });
      p.dispatchEvent(ev);
      stopped = ev.cancelBubble;
    }
  }
}

function makeEvent(type: string, bubbles: boolean, fields: Record<string, unknown>): Event {
  const ev = new Event(type, { bubbles });
  for (const [k, v] of Object.entries(fields)) Object.defineProperty(ev, k, { value: v, enumerable: true, configurable: true });
  return ev;
}

/**
 * Shape `cls` like a WebIDL interface: the named accessors and methods become enumerable, each event
 * type gets an enumerable `on<type>` accessor, and Symbol.toStringTag is the interface name.
 */
export function webidlInterface(cls: { prototype: object }, name: string, members: readonly string[], events: readonly string[] = []): void {
  const proto = cls.prototype;
  for (const m of members) {
    const d = Object.getOwnPropertyDescriptor(proto, m);
    if (!d) throw new Error(`webidlInterface: ${name} has no member ${m}`);
    Object.defineProperty(proto, m, { ...d, enumerable: true });
  }
  for (const type of events) {
    Object.defineProperty(proto, `on${type}`, {
      enumerable: true, configurable: true,
      get(this: BluetoothEventTarget) { return this.getHandler(type); },
      set(this: BluetoothEventTarget, fn: unknown) { this.setHandler(type, fn); },
    });
  }
  Object.defineProperty(proto, Symbol.toStringTag, { value: name, configurable: true });
}

/** Events of the BluetoothDeviceEventHandlers, CharacteristicEventHandlers and ServiceEventHandlers mixins. */
export const DEVICE_EVENTS = ['advertisementreceived', 'gattserverdisconnected'] as const;
export const CHARACTERISTIC_EVENTS = ['characteristicvaluechanged'] as const;
export const SERVICE_EVENTS = ['serviceadded', 'servicechanged', 'serviceremoved'] as const;
