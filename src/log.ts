import { createDebug } from './platform/debug.js';

/** Per-layer loggers (`DEBUG=blewire:*`, or `blewire:hci`, `blewire:att`, …). */
export const log = {
  transport: createDebug('blewire:transport'),
  hci: createDebug('blewire:hci'),
  acl: createDebug('blewire:acl'),
  l2cap: createDebug('blewire:l2cap'),
  att: createDebug('blewire:att'),
  gatt: createDebug('blewire:gatt'),
  gap: createDebug('blewire:gap'),
  smp: createDebug('blewire:smp'),
  sim: createDebug('blewire:sim'),
  capture: createDebug('blewire:capture'),
} as const;

/**
 * Whether each logger is on, as plain booleans, for the receive fast paths (issue 14). debug's own
 * `enabled` is a getter on a function object whose properties V8 keeps in dictionary mode: reading it
 * once per notification cost about 15 ns, as much as the rest of the ATT → GATT routing. These follow
 * `DEBUG` and every `debug.enable()` / `debug.disable()` (disable goes through enable), which is
 * wrapped below to refresh them; the wrapper calls debug's own enable first, unchanged. A logger's
 * own override (`log.att.enabled = true`) is not seen here: the fast paths then stay fast and quiet.
 */
export const logOn: { -readonly [K in keyof typeof log]: boolean } = {
  transport: false, hci: false, acl: false, l2cap: false, att: false,
  gatt: false, gap: false, smp: false, sim: false, capture: false,
};

function refreshLogOn(): void {
  for (const k of Object.keys(logOn) as Array<keyof typeof log>) logOn[k] = log[k].enabled;
}

const debugEnable = createDebug.enable;
createDebug.enable = (namespaces: string): void => {
  debugEnable.call(createDebug, namespaces);
  refreshLogOn();
};
refreshLogOn();
