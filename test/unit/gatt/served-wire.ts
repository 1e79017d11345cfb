// A GattServer link on a bare ATT bearer, driven PDU by PDU (the client's requests in, the server's
// PDUs decoded out): shared by the server's unit tests.
import { AttBearer } from '../../../src/att/bearer.js';
import { decodeAtt, encodeAtt, type AttPdu } from '../../../src/att/pdus.js';
import type { FakeClock } from '../../../src/clock.js';
import { DisconnectedError } from '../../../src/errors.js';
import type { ChannelReceiver, L2capChannel } from '../../../src/l2cap/channel.js';
import type { GattServer, ServedPeer } from '../../../src/gatt/server/server.js';

export interface Wire { rx(pdu: AttPdu): void; sent: AttPdu[]; close(): void }

export const OPEN = { encrypted: false, authenticated: false, bonded: false };

export function attach(server: GattServer<string>, peer: ServedPeer<string>, clock: FakeClock): Wire {
  let receiver: ChannelReceiver | undefined;
  const sent: AttPdu[] = [];
  const channel: L2capChannel = {
    handle: 0x40, cid: 4, mtu: 0xffff,
    send: async sdu => { sent.push(decodeAtt(sdu) as AttPdu); },
    setReceiver: r => { receiver = r; },
    close: () => undefined,
  };
  const link = server.attach(peer);
  link.bind(new AttBearer(channel, { clock, server: link.role }));
  return {
    rx: pdu => receiver!.data(encodeAtt(pdu)),
    sent,
    close: () => receiver!.closed(new DisconnectedError('link', 0x13)),
  };
}

/** Lets the server's promise chains run (replies are sent a few microtasks after a request). */
export const flush = async (): Promise<void> => { for (let i = 0; i < 50; i++) await Promise.resolve(); };
