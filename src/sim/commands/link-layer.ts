/**
 * The simulator's link-layer procedures on a connection: data length (Core Vol 4, Part E, 7.8.33-7.8.46;
 * LL_LENGTH_REQ, Vol 6, Part B, 5.1.9) and PHY (7.8.47-7.8.49; LL_PHY_REQ, Vol 6, Part B, 5.1.10).
 */
import { AirBridge } from '../air.js';
import { type HandlerMap, S } from './table.js';

export const LINK_LAYER = {
  leSetDataLength: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leSetDataLength', S.unknownConnection);
    if (cmd.txOctets < 27 || cmd.txOctets > 251 || cmd.txTime < 328 || cmd.txTime > 17040) return c.fail('leSetDataLength', S.invalidParameters);
    c.complete('leSetDataLength', { connectionHandle: link.handle });
    const other = link.peer instanceof AirBridge ? link.peer.other : undefined;
    if (other) {
      // Another host's controller is the peer: LL_LENGTH_REQ / RSP change both ends (Vol 6, Part B,
      // 5.1.9; 4.5.10): our maximum TX becomes its maximum RX; our RX is what it transmits already.
      const tx = cmd.txOctets;
      const time = tx * 8 + 112;
      link.afterEvents(2, () => {
        if (link.closed || other.link.closed) return;
        const theirs = other.link.dataLength;
        const updates = [
          [c, link, { txOctets: tx, txTime: time, rxOctets: theirs.txOctets, rxTime: theirs.txTime }],
          [other.controller, other.link, { ...theirs, rxOctets: tx, rxTime: time }],
        ] as const;
        for (const [ctl, l, d] of updates) {
          const was = l.dataLength;
          if (was.txOctets === d.txOctets && was.txTime === d.txTime && was.rxOctets === d.rxOctets && was.rxTime === d.rxTime) continue;
          l.dataLength = { ...d };
          ctl.emit({ kind: 'leDataLengthChange', connectionHandle: l.handle, maxTxOctets: d.txOctets, maxTxTime: d.txTime,
            maxRxOctets: d.rxOctets, maxRxTime: d.rxTime });
        }
      });
      return;
    }
    const peerMax = c.peerOf(link)?.spec.maxDataLength ?? 251;
    const tx = Math.min(cmd.txOctets, peerMax);
    const rx = Math.min(251, peerMax);
    // LL_LENGTH_REQ / RSP (Vol 6, Part B, 5.1.9); the event only when a value changed.
    link.afterEvents(2, () => {
      const d = link.dataLength;
      if (d.txOctets === tx && d.rxOctets === rx) return;
      link.dataLength = { txOctets: tx, txTime: tx * 8 + 112, rxOctets: rx, rxTime: rx * 8 + 112 };
      c.emit({ kind: 'leDataLengthChange', connectionHandle: link.handle, maxTxOctets: tx, maxTxTime: tx * 8 + 112,
        maxRxOctets: rx, maxRxTime: rx * 8 + 112 });
    });
  },
  leReadSuggestedDefaultDataLength: c => c.complete('leReadSuggestedDefaultDataLength', {
    suggestedMaxTxOctets: c.dataLengthDefaults.octets, suggestedMaxTxTime: c.dataLengthDefaults.time,
  }),
  leWriteSuggestedDefaultDataLength: (c, cmd) => {
    if (cmd.suggestedMaxTxOctets < 27 || cmd.suggestedMaxTxOctets > 251) return c.fail('leWriteSuggestedDefaultDataLength', S.invalidParameters);
    c.dataLengthDefaults = { octets: cmd.suggestedMaxTxOctets, time: cmd.suggestedMaxTxTime };
    c.complete('leWriteSuggestedDefaultDataLength');
  },
  leReadMaximumDataLength: c => c.complete('leReadMaximumDataLength', {
    supportedMaxTxOctets: 251, supportedMaxTxTime: 17040, supportedMaxRxOctets: 251, supportedMaxRxTime: 17040,
  }),
  leReadPhy: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leReadPhy', S.unknownConnection);
    c.complete('leReadPhy', { connectionHandle: link.handle, txPhy: link.phy.tx, rxPhy: link.phy.rx });
  },
  leSetDefaultPhy: (c, cmd) => { c.setDefaultPhy(cmd.txPhys, cmd.rxPhys); c.complete('leSetDefaultPhy'); },
  leSetPhy: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leSetPhy', S.unknownConnection);
    c.status('leSetPhy');
    const both = c.supportedPhys & (c.peerOf(link)?.spec.phys ?? 3);
    const pick = (want: number, any: boolean, cur: number): number => {
      const m = (any ? 7 : want) & both;
      return m & 2 ? 2 : m & 1 ? 1 : m & 4 ? 3 : cur;
    };
    link.afterEvents(3, () => {
      link.phy = { tx: pick(cmd.txPhys, (cmd.allPhys & 1) !== 0, link.phy.tx), rx: pick(cmd.rxPhys, (cmd.allPhys & 2) !== 0, link.phy.rx) };
      c.emit({ kind: 'lePhyUpdateComplete', status: 0, connectionHandle: link.handle, txPhy: link.phy.tx, rxPhy: link.phy.rx });
    });
  },
} satisfies Partial<HandlerMap>;
