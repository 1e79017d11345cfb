/**
 * The simulator's connection commands: create (legacy and extended) and cancel, disconnect, connection
 * update and the peer's parameter requests, remote version and features, RSSI, and the filter accept
 * list (Core Vol 4, Part E, 7.1.6, 7.1.23, 7.5.4, 7.8.12-7.8.21, 7.8.31-7.8.32, 7.8.66).
 */
import { type HandlerMap, S, ms, validConnParams } from './table.js';

export const CONNECTIONS = {
  disconnect: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link || link.closed) return c.fail('disconnect', S.unknownConnection);
    // Allowed reasons (Vol 4, Part E, 7.1.6).
    if (![0x05, 0x13, 0x14, 0x15, 0x1a, 0x29, 0x3b].includes(cmd.reason)) return c.fail('disconnect', S.invalidParameters);
    c.status('disconnect');
    // The peer hears our reason; our host is told Connection Terminated By Local Host (0x16).
    link.terminate(cmd.reason, S.localHostTerminated);
  },
  readRemoteVersionInformation: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('readRemoteVersionInformation', S.unknownConnection);
    c.status('readRemoteVersionInformation');
    link.afterEvents(2, () => c.emit({ kind: 'readRemoteVersionInformationComplete', status: 0, connectionHandle: link.handle,
      version: 0x0c, manufacturerName: 0xffff, subversion: 0x0001 }));
  },
  readRssi: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('readRssi', S.unknownConnection);
    c.complete('readRssi', { connectionHandle: link.handle, rssi: c.peerOf(link)?.rssi ?? -60 });
  },
  leCreateConnection: (c, cmd) => {
    if (c.initiating) return c.fail('leCreateConnection', S.commandDisallowed);
    if (!validConnParams(cmd) || cmd.initiatorFilterPolicy > 1 || cmd.peerAddressType > 3) {
      return c.fail('leCreateConnection', S.invalidParameters);
    }
    c.status('leCreateConnection');
    c.startInitiating({
      extended: false, ownAddressType: cmd.ownAddressType, filterPolicy: cmd.initiatorFilterPolicy, peerAddressType: cmd.peerAddressType,
      peerAddress: cmd.peerAddress.toUpperCase(), intervalMinUs: ms(cmd.connectionIntervalMin, 1250),
      intervalMaxUs: ms(cmd.connectionIntervalMax, 1250), latency: cmd.maxLatency,
      supervisionTimeoutUs: ms(cmd.supervisionTimeout, 10_000),
    });
  },
  leCreateConnectionCancel: c => {
    if (!c.initiating) return c.fail('leCreateConnectionCancel', S.commandDisallowed);
    c.complete('leCreateConnectionCancel');
    c.cancelInitiating();
  },
  leExtendedCreateConnection: (c, cmd) => {
    if (c.initiating) return c.fail('leExtendedCreateConnection', S.commandDisallowed);
    const p = cmd.initiatingPhys.find(x => x.phy === 1) ?? cmd.initiatingPhys[0];
    if (!p || !validConnParams(p) || cmd.initiatorFilterPolicy > 1) return c.fail('leExtendedCreateConnection', S.invalidParameters);
    c.status('leExtendedCreateConnection');
    c.startInitiating({
      extended: true, ownAddressType: cmd.ownAddressType, filterPolicy: cmd.initiatorFilterPolicy, peerAddressType: cmd.peerAddressType,
      peerAddress: cmd.peerAddress.toUpperCase(), intervalMinUs: ms(p.connectionIntervalMin, 1250),
      intervalMaxUs: ms(p.connectionIntervalMax, 1250), latency: p.maxLatency, supervisionTimeoutUs: ms(p.supervisionTimeout, 10_000),
    });
  },
  leConnectionUpdate: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leConnectionUpdate', S.unknownConnection);
    if (!validConnParams(cmd)) return c.fail('leConnectionUpdate', S.invalidParameters);
    c.status('leConnectionUpdate');
    const peer = c.peerOf(link);
    const reject = peer?.spec.behaviour?.rejectParameterUpdates ?? false;
    c.updateLink(link, {
      intervalUs: Math.round(Math.max(ms(cmd.connectionIntervalMin, 1250), Math.min(ms(cmd.connectionIntervalMax, 1250),
        c.options.preferredIntervalMs !== undefined ? c.options.preferredIntervalMs * 1000 : ms(cmd.connectionIntervalMin, 1250))) / 1250) * 1250,
      latency: cmd.maxLatency, supervisionTimeoutUs: ms(cmd.supervisionTimeout, 10_000),
    }, reject ? S.unacceptableConnectionParameters : 0);
  },
  leReadRemoteFeatures: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leReadRemoteFeatures', S.unknownConnection);
    c.status('leReadRemoteFeatures');
    const f = c.peerOf(link)?.spec.leFeatures ?? 0b1_0010_0011;
    link.afterEvents(2, () => c.emit({ kind: 'leReadRemoteFeaturesComplete', status: 0, connectionHandle: link.handle, leFeatures: BigInt(f) }));
  },
  leRemoteConnectionParameterRequestReply: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link || !c.takeParamRequest(link.handle)) return c.fail('leRemoteConnectionParameterRequestReply', link ? S.commandDisallowed : S.unknownConnection);
    c.complete('leRemoteConnectionParameterRequestReply', { connectionHandle: link.handle });
    c.updateLink(link, { intervalUs: Math.round(ms(cmd.intervalMax, 1250) / 1250) * 1250, latency: cmd.maxLatency,
      supervisionTimeoutUs: ms(cmd.timeout, 10_000) });
  },
  leRemoteConnectionParameterRequestNegativeReply: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link || !c.takeParamRequest(link.handle)) {
      return c.fail('leRemoteConnectionParameterRequestNegativeReply', link ? S.commandDisallowed : S.unknownConnection);
    }
    c.complete('leRemoteConnectionParameterRequestNegativeReply', { connectionHandle: link.handle });
  },
  leReadFilterAcceptListSize: c => c.complete('leReadFilterAcceptListSize', { filterAcceptListSize: c.options.filterAcceptListSize ?? 16 }),
  leClearFilterAcceptList: c => {
    const s = c.acceptListOp('clear');
    return s ? c.fail('leClearFilterAcceptList', s) : c.complete('leClearFilterAcceptList');
  },
  leAddDeviceToFilterAcceptList: (c, cmd) => {
    const s = c.acceptListOp('add', cmd.addressType, cmd.address.toUpperCase());
    return s ? c.fail('leAddDeviceToFilterAcceptList', s) : c.complete('leAddDeviceToFilterAcceptList');
  },
  leRemoveDeviceFromFilterAcceptList: (c, cmd) => {
    const s = c.acceptListOp('remove', cmd.addressType, cmd.address.toUpperCase());
    return s ? c.fail('leRemoveDeviceFromFilterAcceptList', s) : c.complete('leRemoveDeviceFromFilterAcceptList');
  },
} satisfies Partial<HandlerMap>;
