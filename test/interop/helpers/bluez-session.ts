/**
 * The prologue and epilogue every BlueZ-guest test file shared, for one describe block:
 * - beforeAll: the guest (useBlueZGuest: the suite's shared one, revived if bluetoothd died there, or a
 *   private boot; with `suite`, always a private boot of that image), its control line, bluetoothd as seen from our address (BlueZPeer), a temporary
 *   directory and the path of the file's capture in it; with `clean`, BlueZ set as the pairing files
 *   expect it (Secure Connections on, bondable, no device object or bond for our address);
 * - openAdapter(): our Adapter on the bridged H4 socket at `ours`, recording to `capture`, its bonds in
 *   `<tmp>/bonds`;
 * - afterAll, after the file's own afterAll hooks (vitest runs "after" hooks in reverse order, and this
 *   one is registered first): the adapter openAdapter() gave closed; with `restore`, BlueZ put back as
 *   the next file expects it (BlueZPeer.restore: no agent, SC on, not bondable, no bond with us); the
 *   control line closed, a private guest stopped, the captures kept (BLEWIRE_INTEROP_KEEP) and the
 *   directory removed.
 * With BLEWIRE_INTEROP_KEEP the guest's side is kept too: btmon runs in the guest for the whole file
 * (`<name>-guest.btsnoop`: bluetoothd's controller as its kernel drives it, HCI and mgmt) and the
 * guest's bluetoothd log and kernel messages are copied at the end (`<name>-guest.log`), so a failure
 * that depends on what BlueZ did can be read on both sides of the air.
 * Call it at the top of the describe block, before the file's own hooks; the fields throw if read
 * before its beforeAll has run (or after it failed), naming the field.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { Adapter, AdapterOpenOptions } from '../../../src/api/adapter.js';
import { FileBondStore } from '../../../src/smp/bonds.js';
import { keepCapturesAndClean, startBlueZGuest, useBlueZGuest, type BlueZGuestInfo } from './bluez-guest.js';
import { BlueZPeer, openBridgedAdapter } from './bluez-peer.js';
import { GuestControl, type GuestProgram } from './guest-control.js';

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
  /**
   * Our Adapter on the guest's bridged H4 socket (controller reset), at `ours` as its static random
   * address, recording to `capture`, its bonds in `<tmp>/bonds`; `extra` adds options. The session's
   * afterAll closes it (before `restore`).
   */
  openAdapter(extra?: Omit<AdapterOpenOptions, 'transport' | 'capture' | 'randomAddress' | 'bonds'>): Promise<Adapter>;
}

export interface BlueZSessionOptions {
  /** Our address as bluetoothd files it (BlueZPeer's device object and info file). */
  ours: string;
  /** Deadline of one guest command, ms (BlueZPeer; default 60 000). */
  slow?: number;
  /** Before the file's own beforeAll: `btmgmt sc on`, `bondable on`, RemoveDevice for us (default false). */
  clean?: boolean;
  /**
   * After the file's own afterAll hooks and the adapter closed: BlueZPeer.restore() (no agent of ours,
   * SC on, not bondable, no bond with us), for the next file on the shared guest (default false).
   */
  restore?: boolean;
  /** More files in tmp to keep with BLEWIRE_INTEROP_KEEP (names relative to tmp). */
  keep?: string[];
  /**
   * A private guest of this image (startBlueZGuest's suite, e.g. 'trixie'), booted for this file and
   * stopped after it, instead of the suite's shared BlueZ 5.66 guest (default: that one).
   */
  suite?: string;
}

/** Registers the hooks; `name` names the temporary directory and the capture (`<name>.btsnoop`). */
export function useBlueZSession(name: string, opts: BlueZSessionOptions): BlueZSession {
  let state: { guest: BlueZGuestInfo; ctl: GuestControl; bluez: BlueZPeer; tmp: string; capture: string } | undefined;
  let release: () => Promise<void> = async () => undefined;
  let tmp: string | undefined;
  let ctl: GuestControl | undefined;
  /** btmon in the guest while BLEWIRE_INTEROP_KEEP asks for captures. */
  let btmon: { prog: GuestProgram; file: string } | undefined;
  const adapters: Adapter[] = [];

  beforeAll(async () => {
    let guest: BlueZGuestInfo;
    if (opts.suite) {
      const { stop, ...own } = await startBlueZGuest({ suite: opts.suite });
      guest = own;
      release = stop;
    } else {
      ({ guest, release } = await useBlueZGuest());
    }
    ctl = await GuestControl.open(guest.ctlSocket);
    const bluez = new BlueZPeer(ctl, guest, opts.ours, opts.slow);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `blewire-${name}-`));
    if (process.env.BLEWIRE_INTEROP_KEEP) {
      const file = `/tmp/${name}-guest.btsnoop`;
      btmon = { prog: await ctl.spawn(`btmon-${name}`, ['btmon', '-w', file]), file };
    }
    if (opts.clean) {
      await bluez.btmgmt('sc', 'on');
      await bluez.btmgmt('bondable', 'on');
      await bluez.removeDevice();
    }
    state = { guest, ctl, bluez, tmp, capture: path.join(tmp, `${name}.btsnoop`) };
  }, 900_000);

  afterAll(async () => {
    for (const a of adapters) await a.close().catch(() => undefined);
    // A restore that fails still fails the file (the next file would meet BlueZ as this one left it),
    // but the guest is stopped and the evidence kept all the same: a throwing afterAll makes vitest skip
    // the after-hooks registered before it, and this one is registered first.
    try {
      if (state && opts.restore) await state.bluez.restore();
    } finally {
      const guestFiles = ctl && tmp && btmon ? await fetchGuestEvidence(ctl, btmon, name, tmp).catch(e => {
        console.warn(`${name}: the guest's capture was not fetched: ${(e as Error).message}`);
        return [];
      }) : [];
      ctl?.close();
      await release();
      keepCapturesAndClean(tmp, tmp ? [path.join(tmp, `${name}.btsnoop`), ...guestFiles, ...(opts.keep ?? []).map(f => path.join(tmp!, f))] : []);
    }
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
    async openAdapter(extra = {}) {
      const adapter = await openBridgedAdapter(get('guest'), {
        ...extra, capture: get('capture'), randomAddress: opts.ours, bonds: new FileBondStore(path.join(get('tmp'), 'bonds')),
      });
      adapters.push(adapter);
      return adapter;
    },
  };
}

/** btmon stopped and its file, bluetoothd's log and the kernel's messages copied from the guest into tmp. */
async function fetchGuestEvidence(ctl: GuestControl, btmon: { prog: GuestProgram; file: string }, name: string, tmp: string): Promise<string[]> {
  await btmon.prog.kill();
  const snoop = path.join(tmp, `${name}-guest.btsnoop`);
  fs.writeFileSync(snoop, Buffer.from((await ctl.ok(['base64', '-w0', btmon.file], 60_000)).trim(), 'base64'));
  await ctl.run(['rm', '-f', btmon.file], 30_000);
  const log = path.join(tmp, `${name}-guest.log`);
  const text = await ctl.run(['sh', '-c', 'echo "== bluetoothd.log"; cat /tmp/bluetoothd.log; echo "== dmesg"; dmesg'], 60_000);
  fs.writeFileSync(log, text.stdout + text.stderr);
  return [snoop, log];
}
