/**
 * The simulator's advertising commands, legacy (Core Vol 4, Part E, 7.8.5-7.8.9) and extended
 * advertising sets (7.8.52-7.8.60). The controller's radio (controller.ts) sends what they configure.
 */
import { type HandlerMap, S, ms } from './table.js';

/** Longest high duty cycle directed advertising, µs (Vol 6, Part B, 4.4.2.4.3). */
const HIGH_DUTY_MAX_US = 1_280_000;

export const ADVERTISING = {
  leSetAdvertisingParameters: (c, cmd) => {
    if (c.legacyAdvertising.enabled) return c.fail('leSetAdvertisingParameters', S.commandDisallowed);
    if (cmd.advertisingIntervalMin > cmd.advertisingIntervalMax || cmd.advertisingType > 4) {
      return c.fail('leSetAdvertisingParameters', S.invalidParameters);
    }
    c.legacyAdvertising.params = cmd;
    c.complete('leSetAdvertisingParameters');
  },
  leReadAdvertisingPhysicalChannelTxPower: c => c.complete('leReadAdvertisingPhysicalChannelTxPower', { txPowerLevel: 0 }),
  leSetAdvertisingData: (c, cmd) => { c.legacyAdvertising.data = cmd.advertisingData; c.complete('leSetAdvertisingData'); },
  leSetScanResponseData: (c, cmd) => { c.legacyAdvertising.scanRsp = cmd.scanResponseData; c.complete('leSetScanResponseData'); },
  leSetAdvertisingEnable: (c, cmd) => {
    if (cmd.enable > 1) return c.fail('leSetAdvertisingEnable', S.invalidParameters);
    const adv = c.legacyAdvertising;
    adv.enabled = cmd.enable === 1;
    adv.timer?.cancel();
    adv.timer = undefined;
    c.complete('leSetAdvertisingEnable');
    // High duty cycle directed advertising lasts at most 1.28 s (Vol 6, Part B, 4.4.2.4.3; 7.8.9).
    if (adv.enabled && (adv.params as { advertisingType?: number } | undefined)?.advertisingType === 1) {
      adv.timer = c.clock.schedule(HIGH_DUTY_MAX_US, () => { if (adv.enabled) c.directedAdvertisingTimeout(); });
    }
  },
  leSetAdvertisingSetRandomAddress: (c, cmd) => {
    const set = c.advSets.get(cmd.advertisingHandle);
    if (!set) return c.fail('leSetAdvertisingSetRandomAddress', S.unknownAdvertisingIdentifier);
    set.randomAddress = cmd.randomAddress;
    c.complete('leSetAdvertisingSetRandomAddress');
  },
  leSetExtendedAdvertisingParameters: (c, cmd) => {
    const existing = c.advSets.get(cmd.advertisingHandle);
    if (existing?.enabled) return c.fail('leSetExtendedAdvertisingParameters', S.commandDisallowed);
    if (cmd.advertisingHandle > 0xef) return c.fail('leSetExtendedAdvertisingParameters', S.invalidParameters);
    if (!existing && c.advSets.size >= (c.options.numAdvertisingSets ?? 4)) {
      return c.fail('leSetExtendedAdvertisingParameters', S.memoryCapacityExceeded);
    }
    const props = cmd.advertisingEventProperties;
    // PHYs (7.8.53): 1M / Coded primary, 1M / 2M / Coded secondary; legacy PDUs on the 1M primary PHY
    // only; a PHY the controller does not have is Unsupported Feature or Parameter Value (0x11).
    const primary = cmd.primaryAdvertisingPhy, secondary = cmd.secondaryAdvertisingPhy;
    if ((primary !== 1 && primary !== 3) || secondary < 1 || secondary > 3 || ((props & 0x10) !== 0 && primary !== 1)) {
      return c.fail('leSetExtendedAdvertisingParameters', S.invalidParameters);
    }
    if (!c.hasPhy(primary) || ((props & 0x10) === 0 && !c.hasPhy(secondary))) {
      return c.fail('leSetExtendedAdvertisingParameters', S.unsupportedFeature);
    }
    const set = existing ?? { data: new Uint8Array(0), scanRsp: new Uint8Array(0), enabled: false };
    set.params = cmd;
    c.advSets.set(cmd.advertisingHandle, set);
    c.complete('leSetExtendedAdvertisingParameters', { selectedTxPower: cmd.advertisingTxPower === 127 ? 0 : Math.min(cmd.advertisingTxPower, 10) });
  },
  leSetExtendedAdvertisingData: (c, cmd) => {
    const set = c.advSets.get(cmd.advertisingHandle);
    if (!set) return c.fail('leSetExtendedAdvertisingData', S.unknownAdvertisingIdentifier);
    const r = fragmentOp(set.data, cmd.operation, cmd.advertisingData);
    if (r === undefined) return c.fail('leSetExtendedAdvertisingData', S.invalidParameters);
    set.data = r;
    c.complete('leSetExtendedAdvertisingData');
  },
  leSetExtendedScanResponseData: (c, cmd) => {
    const set = c.advSets.get(cmd.advertisingHandle);
    if (!set) return c.fail('leSetExtendedScanResponseData', S.unknownAdvertisingIdentifier);
    const r = fragmentOp(set.scanRsp, cmd.operation, cmd.scanResponseData);
    if (r === undefined) return c.fail('leSetExtendedScanResponseData', S.invalidParameters);
    set.scanRsp = r;
    c.complete('leSetExtendedScanResponseData');
  },
  leSetExtendedAdvertisingEnable: (c, cmd) => {
    if (cmd.enable && cmd.sets.length === 0) return c.fail('leSetExtendedAdvertisingEnable', S.invalidParameters);
    const targets = cmd.sets.length ? cmd.sets : [...c.advSets.keys()].map(h => ({ advertisingHandle: h, duration: 0, maxExtendedAdvertisingEvents: 0 }));
    for (const s of targets) if (!c.advSets.has(s.advertisingHandle)) return c.fail('leSetExtendedAdvertisingEnable', S.unknownAdvertisingIdentifier);
    // High duty cycle directed: Duration not 0 and at most 1.28 s (7.8.56).
    for (const s of targets) {
      const props = c.advSets.get(s.advertisingHandle)!.params?.advertisingEventProperties ?? 0;
      if (cmd.enable && (props & 0x08) !== 0 && (s.duration === 0 || s.duration * 10_000 > HIGH_DUTY_MAX_US)) {
        return c.fail('leSetExtendedAdvertisingEnable', S.invalidParameters);
      }
    }
    c.complete('leSetExtendedAdvertisingEnable');
    for (const s of targets) {
      const set = c.advSets.get(s.advertisingHandle)!;
      set.timer?.cancel();
      set.timer = undefined;
      set.enabled = cmd.enable === 1;
      if (set.enabled && s.duration > 0) {
        // Duration in 10 ms units; on expiry LE Advertising Set Terminated, Advertising Timeout (7.7.65.18).
        set.timer = c.clock.schedule(s.duration * 10_000, () => {
          set.enabled = false;
          set.timer = undefined;
          c.emit({ kind: 'leAdvertisingSetTerminated', status: S.advertisingTimeout, advertisingHandle: s.advertisingHandle,
            connectionHandle: 0, numCompletedExtendedAdvertisingEvents: 0 });
          c.airChanged();
        });
      }
    }
  },
  leReadMaximumAdvertisingDataLength: c => c.complete('leReadMaximumAdvertisingDataLength', { maxAdvertisingDataLength: 1650 }),
  leReadNumberOfSupportedAdvertisingSets: c => c.complete('leReadNumberOfSupportedAdvertisingSets', {
    numSupportedAdvertisingSets: c.options.numAdvertisingSets ?? 4,
  }),
  leRemoveAdvertisingSet: (c, cmd) => {
    const set = c.advSets.get(cmd.advertisingHandle);
    if (!set) return c.fail('leRemoveAdvertisingSet', S.unknownAdvertisingIdentifier);
    if (set.enabled) return c.fail('leRemoveAdvertisingSet', S.commandDisallowed);
    c.advSets.delete(cmd.advertisingHandle);
    c.complete('leRemoveAdvertisingSet');
  },
  leClearAdvertisingSets: c => {
    if ([...c.advSets.values()].some(s => s.enabled)) return c.fail('leClearAdvertisingSets', S.commandDisallowed);
    c.advSets.clear();
    c.complete('leClearAdvertisingSets');
  },
} satisfies Partial<HandlerMap>;

/** Extended (scan response) data operations (Vol 4, Part E, 7.8.54): 0 intermediate, 1 first, 2 last, 3 complete, 4 unchanged. */
function fragmentOp(current: Uint8Array, op: number, data: Uint8Array): Uint8Array | undefined {
  switch (op) {
    case 3: case 1: return data;
    case 0: case 2: {
      const out = new Uint8Array(current.length + data.length);
      out.set(current);
      out.set(data, current.length);
      return out.length > 1650 ? undefined : out;
    }
    case 4: return data.length === 0 ? current : undefined;
    default: return undefined;
  }
}
