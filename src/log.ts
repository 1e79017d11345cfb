import createDebug from 'debug';

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
