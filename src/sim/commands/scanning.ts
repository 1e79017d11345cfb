/**
 * The simulator's scanning commands, legacy (Core Vol 4, Part E, 7.8.10-7.8.11) and extended
 * (7.8.64-7.8.65); the controller's radio (controller.ts) turns them into advertising reports.
 */
import { type HandlerMap, S } from './table.js';

export const SCANNING = {
  leSetScanParameters: (c, cmd) => {
    if (c.scan) return c.fail('leSetScanParameters', S.commandDisallowed);
    if (cmd.leScanType > 1 || cmd.leScanInterval < 4 || cmd.leScanWindow < 4 || cmd.leScanWindow > cmd.leScanInterval) {
      return c.fail('leSetScanParameters', S.invalidParameters);
    }
    c.setScanParams({ extended: false, active: cmd.leScanType === 1, duty: cmd.leScanWindow / cmd.leScanInterval, ownType: cmd.ownAddressType });
    c.complete('leSetScanParameters');
  },
  leSetScanEnable: (c, cmd) => {
    if (cmd.enable > 1 || cmd.filterDuplicates > 1) return c.fail('leSetScanEnable', S.invalidParameters);
    c.complete('leSetScanEnable');
    if (cmd.enable) c.startScan({ extended: false, filterDuplicates: cmd.filterDuplicates === 1, durationUs: 0 });
    else c.stopScan();
  },
  leSetExtendedScanParameters: (c, cmd) => {
    if (c.scan) return c.fail('leSetExtendedScanParameters', S.commandDisallowed);
    const p = cmd.scanningPhys[0];
    if (!p || p.scanType > 1 || p.scanWindow > p.scanInterval || p.scanInterval < 4) return c.fail('leSetExtendedScanParameters', S.invalidParameters);
    if (cmd.scanningPhys.some(x => (x.phy & c.supportedPhys) === 0 || x.phy === 2)) return c.fail('leSetExtendedScanParameters', S.unsupportedFeature);
    c.setScanParams({ extended: true, active: p.scanType === 1, duty: p.scanWindow / p.scanInterval, ownType: cmd.ownAddressType });
    c.complete('leSetExtendedScanParameters');
  },
  leSetExtendedScanEnable: (c, cmd) => {
    if (cmd.enable > 1 || cmd.filterDuplicates > 2) return c.fail('leSetExtendedScanEnable', S.invalidParameters);
    c.complete('leSetExtendedScanEnable');
    if (cmd.enable) c.startScan({ extended: true, filterDuplicates: cmd.filterDuplicates !== 0, durationUs: cmd.duration * 10_000 });
    else c.stopScan();
  },
} satisfies Partial<HandlerMap>;
