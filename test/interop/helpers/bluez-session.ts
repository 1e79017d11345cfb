/**
 * The prologue and epilogue every BlueZ-guest test file shared, for one describe block:
 * - beforeAll: the guest (useBlueZGuest: the suite's shared one, revived if bluetoothd died there, or a
 *   private boot), its control line, bluetoothd as seen from our address (BlueZPeer), a temporary
 *   directory and the path of the file's capture in it; with `clean`, BlueZ set as the pairing files
 *   expect it (Secure Connections on, bondable, no device object or bond for our address);
 * - afterAll, after the file's own afterAll hooks (vitest runs "after" hooks in reverse order, and this
 *   one is registered first): the control line closed, a private guest stopped, the captures kept
 *   (BLEWIRE_INTEROP_KEEP) and the directory removed.
 * Call it at the top of the describe block, before the file's own hooks; the fields throw if read
 * before its beforeAll has run (or after it failed), naming the field.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { keepCapturesAndClean, useBlueZGuest, type BlueZGuestInfo } from './bluez-guest.js';
import { BlueZPeer } from './bluez-peer.js';
import { GuestControl } from './guest-control.js';

export interface BlueZSession {
  readonly guest: BlueZGuestInfo;
  readonly ctl: GuestControl;
  /** bluetoothd as seen from our address. */
  readonly bluez: BlueZPeer;
  /** The file's temporary directory (removed after the file). */
  readonly tmp: string;
  /** `<tmp>/<name>.btsnoop`: where the file records its adapter. */
  readonly capture: string;
  /** Whether the beforeAll completed (an afterAll that talks to the guest checks this first). */
  readonly ready: boolean;
}

export interface BlueZSessionOptions {
  /** Our address as bluetoothd files it (BlueZPeer's device object and info file). */
  ours: string;
  /** Deadline of one guest command, ms (BlueZPeer; default 60 000). */
  slow?: number;
  /** Before the file's own beforeAll: `btmgmt sc on`, `bondable on`, RemoveDevice for us (default false). */
  clean?: boolean;
  /** More files in tmp to keep with BLEWIRE_INTEROP_KEEP (names relative to tmp). */
  keep?: string[];
}

/** Registers the hooks; `name` names the temporary directory and the capture (`<name>.btsnoop`). */
export function useBlueZSession(name: string, opts: BlueZSessionOptions): BlueZSession {
  let state: { guest: BlueZGuestInfo; ctl: GuestControl; bluez: BlueZPeer; tmp: string; capture: string } | undefined;
  let release: () => Promise<void> = async () => undefined;
  let tmp: string | undefined;
  let ctl: GuestControl | undefined;

  beforeAll(async () => {
    let guest: BlueZGuestInfo;
    ({ guest, release } = await useBlueZGuest());
    ctl = await GuestControl.open(guest.ctlSocket);
    const bluez = new BlueZPeer(ctl, guest, opts.ours, opts.slow);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `blewire-${name}-`));
    if (opts.clean) {
      await bluez.btmgmt('sc', 'on');
      await bluez.btmgmt('bondable', 'on');
      await bluez.removeDevice();
    }
    state = { guest, ctl, bluez, tmp, capture: path.join(tmp, `${name}.btsnoop`) };
  }, 900_000);

  afterAll(async () => {
    ctl?.close();
    await release();
    keepCapturesAndClean(tmp, tmp ? [path.join(tmp, `${name}.btsnoop`), ...(opts.keep ?? []).map(f => path.join(tmp!, f))] : []);
  });

  const get = <K extends keyof NonNullable<typeof state>>(k: K): NonNullable<typeof state>[K] => {
    if (!state) throw new Error(`${name}: the BlueZ session's ${String(k)} is not there (its beforeAll did not complete)`);
    return state[k];
  };
  return {
    get guest() { return get('guest'); },
    get ctl() { return get('ctl'); },
    get bluez() { return get('bluez'); },
    get tmp() { return get('tmp'); },
    get capture() { return get('capture'); },
    get ready() { return state !== undefined; },
  };
}
