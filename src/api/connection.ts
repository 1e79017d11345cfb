/**
 * Connection: one LE link as the application sees it. Link-level only for now: address, handle, role,
 * parameters, `disconnect(reason)`, a 'disconnect' event with the typed HCI reason, parameter / data
 * length / PHY procedures, and (internal) the ATT fixed channel the GATT client sits on.
 */
import { EventEmitter } from 'node:events';
import type { FixedChannel } from '../l2cap/channel.js';
import type { L2capLink } from '../l2cap/link.js';
import {
  DisconnectReasons, type ConnectionParameters, type DisconnectReason, type LeLink,
} from '../gap/connections.js';
import type { AddressType } from '../gap/scanner.js';

/** ATT_MTU before any exchange (Vol 3, Part F, 3.2.8). The GATT layer updates it. */
const ATT_DEFAULT_MTU = 23;

export interface ConnectionEvents {
  disconnect: [reason: DisconnectReason];
  parameters: [parameters: ConnectionParameters];
}

export class Connection extends EventEmitter<ConnectionEvents> {
  /** ATT_MTU; 23 until the GATT client exchanges MTU (it sets this). */
  mtu = ATT_DEFAULT_MTU;

  /** @internal Use Adapter.connect(). */
  constructor(private readonly link: LeLink) {
    super();
    link.onDisconnect(reason => {
      // 'disconnect' with no listener must not throw (unlike 'error'), so emit unconditionally.
      this.emit('disconnect', reason);
    });
    link.onParameters(p => this.emit('parameters', p));
  }

  get address(): string { return this.link.address; }
  get addressType(): AddressType { return this.link.addressType; }
  /** HCI connection handle. */
  get handle(): number { return this.link.handle; }
  get role(): 'central' | 'peripheral' { return this.link.role; }
  get parameters(): ConnectionParameters { return this.link.parameters; }
  get connected(): boolean { return this.link.connected; }
  /** Why the link ended, once it has. */
  get disconnectReason(): DisconnectReason | undefined { return this.link.disconnected; }
  get phy(): { tx: number; rx: number } { return this.link.phy; }
  get dataLength() { return this.link.dataLength; }

  /** Disconnect (default reason 0x13 Remote User Terminated Connection); resolves with the reported reason. */
  disconnect(reason: number = DisconnectReasons.remoteUserTerminated): Promise<DisconnectReason> {
    return this.link.disconnect(reason);
  }

  /** Central-initiated connection parameter update (ms; latency in events). */
  updateParameters(p: { intervalMin: number; intervalMax: number; latency?: number; supervisionTimeout?: number }):
    Promise<ConnectionParameters> {
    return this.link.updateParameters(p);
  }

  /** LE Data Length Extension, where the controller supports it (HciStatusError 0x01 otherwise). */
  setDataLength(txOctets?: number, txTime?: number): Promise<void> {
    return this.link.setDataLength(txOctets, txTime);
  }

  /** Prefer PHYs (bit mask: 1 = 1M, 2 = 2M, 4 = Coded). */
  setPhy(phys: number): Promise<{ tx: number; rx: number }> {
    return this.link.setPhy(phys);
  }

  /** Resolves when the link is down (at once if it already is). */
  get closed(): Promise<DisconnectReason> {
    const r = this.link.disconnected;
    if (r) return Promise.resolve(r);
    return new Promise(resolve => this.link.onDisconnect(resolve));
  }

  /** `await using conn = await adapter.connect(…)`: disconnect when the scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.connected) await this.disconnect().catch(() => undefined);
  }

  /** @internal The ATT fixed channel (CID 0x0004) for the GATT client. */
  get attChannel(): FixedChannel { return this.link.l2cap.att; }
  /** @internal The SMP fixed channel (CID 0x0006). */
  get smpChannel(): FixedChannel { return this.link.l2cap.smp; }
  /** @internal The link's L2CAP (signalling, stats). */
  get l2cap(): L2capLink { return this.link.l2cap; }
}
