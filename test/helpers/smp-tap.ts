import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';
import { toHex } from '../../src/bytes/hex.js';

/** Which way an SMP PDU crossed a host's HCI transport. */
export type Dir = 'tx' | 'rx';
/** What a transport filter does with one outgoing SMP PDU: keep it (undefined), drop it, or send other bytes. */
export type Rewrite = (pdu: Uint8Array) => Uint8Array | 'drop' | undefined;

export interface SmpTap {
  /** The wrapped transport to open an adapter on. */
  transport: HciTransport;
  /** Every SMP PDU (CID 0x0006) that crossed it, in order, as hex. */
  smp: Array<{ dir: Dir; hex: string }>;
  /** Set `fn` to rewrite or drop the SMP PDUs this host sends. */
  rewrite: { fn?: Rewrite };
  /** Sends an SMP PDU of our making on the link the host last sent SMP on. */
  inject: (pdu: Uint8Array) => void;
}

/**
 * A tap on one host's HCI transport for SMP tests: records the SMP PDUs (Vol 3, Part H, 3.3) both ways,
 * rewrites or drops those the host sends, and injects PDUs as that host. ACL start fragments only
 * (the packet boundary flag is not 0b01, a continuation): every SMP PDU in these tests fits one packet.
 */
export function smpTap(inner: HciTransport): SmpTap {
  const smp: Array<{ dir: Dir; hex: string }> = [];
  let handle: [number, number] | undefined;
  const frame = (h: [number, number], pdu: Uint8Array): Uint8Array => {
    // H4 ACL header (handle + flags), ACL length, L2CAP length, CID 6, the PDU.
    const n = pdu.length;
    return Uint8Array.of(0x02, h[0], h[1], (n + 4) & 0xff, (n + 4) >> 8, n & 0xff, n >> 8, 0x06, 0x00, ...pdu);
  };
  const rewrite: { fn?: Rewrite } = {};
  const isSmp = (p: Uint8Array): boolean => p[0] === 0x02 && p.length >= 9 && ((p[2]! >> 4) & 0x3) !== 0x1 && (p[7]! | (p[8]! << 8)) === 0x0006;
  const transport: HciTransport = {
    ...(inner.clock ? { clock: inner.clock } : {}),
    description: inner.description,
    send: p => {
      if (isSmp(p)) handle = [p[1]!, p[2]!];
      if (isSmp(p) && rewrite.fn) {
        const out = rewrite.fn(p.subarray(9));
        if (out === 'drop') return;
        if (out) p = frame([p[1]!, p[2]!], out);
      }
      if (isSmp(p)) smp.push({ dir: 'tx', hex: toHex(p.subarray(9)) });
      inner.send(p);
    },
    setReceiver: (r: TransportReceiver) => inner.setReceiver({
      packet: p => { if (isSmp(p)) smp.push({ dir: 'rx', hex: toHex(p.subarray(9)) }); r.packet(p); },
      closed: e => r.closed(e),
    }),
    close: () => inner.close(),
  };
  const inject = (pdu: Uint8Array): void => {
    if (!handle) throw new Error('no SMP sent yet: no handle to inject on');
    smp.push({ dir: 'tx', hex: toHex(pdu) });
    inner.send(frame(handle, pdu));
  };
  return { transport, smp, rewrite, inject };
}
