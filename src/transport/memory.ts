import { TransportError } from '../errors.js';
import { ReceiverSlot } from './receiver-slot.js';
import type { HciTransport, TransportReceiver } from './types.js';

/**
 * Two transports joined back to back, for tests: what the host side sends arrives at the controller
 * side and the other way round. With `async: true` each packet is delivered in its own microtask
 * instead of inside send(), which is how a real transport behaves and what exposes code that sends
 * while it is still handling the packet before (re-entrancy bugs). Closing either side closes both:
 * the closing side's receiver gets closed() with no error, the other side a TransportError
 * 'ETRANSPORT_EOF', as a stream would report it.
 */
export interface MemoryPairOptions {
  async?: boolean;
}

class MemorySide implements HciTransport {
  readonly slot = new ReceiverSlot();
  peer!: MemorySide;
  closed = false;

  constructor(readonly description: string, private readonly async: boolean) {}

  send(packet: Uint8Array): void {
    if (this.closed) throw new TransportError(`${this.description}: cannot send, the transport is closed`, 'ETRANSPORT_CLOSED');
    const peer = this.peer;
    if (this.async) queueMicrotask(() => peer.slot.packet(packet));
    else peer.slot.packet(packet);
  }

  setReceiver(receiver: TransportReceiver): void {
    this.slot.set(receiver);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.peer.closed = true;
    const peer = this.peer;
    const eof = new TransportError(`${peer.description}: the other side closed`, 'ETRANSPORT_EOF');
    // In async mode, packets already in flight are delivered before the close (queue order).
    if (this.async) {
      this.slot.close();
      queueMicrotask(() => peer.slot.close(eof));
    } else {
      this.slot.close();
      peer.slot.close(eof);
    }
  }
}

/** [hostSide, controllerSide]: give hostSide to the stack and drive controllerSide from the test. */
export function memoryTransportPair(options: MemoryPairOptions = {}): [HciTransport, HciTransport] {
  const host = new MemorySide('memory (host side)', options.async ?? false);
  const controller = new MemorySide('memory (controller side)', options.async ?? false);
  host.peer = controller;
  controller.peer = host;
  return [host, controller];
}
