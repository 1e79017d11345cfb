/**
 * The controller's resolving list (Core Vol 6, Part B, 4.7; Vol 4, Part E, 7.8.38-7.8.45): bonded
 * peers' IRKs given to the controller, so that it resolves their RPAs itself (advertising reports and
 * connection events then carry the identity with address type 0x02 / 0x03, Vol 4, Part E, 7.7.65.2 /
 * 7.7.65.10) and, with our privacy, makes our own RPA for each of them from our IRK (Own_Address_Type
 * 0x03, 7.8.5 / 7.8.10 / 7.8.12).
 *
 * What the host does (`sync`, after every controller bring-up and whenever a bond is stored or
 * removed): with scanning, initiating and advertising stopped around it (the caller's `quiet`),
 * - LE Set Address Resolution Enable 0x00: the list may be changed only while resolution is off or
 *   the radio is idle (7.8.38-7.8.40), and this command itself only while the radio is idle (7.8.44);
 * - LE Clear Resolving List, then LE Add Device To Resolving List for each bonded identity with an
 *   IRK, up to the size the controller reported (LE Read Resolving List Size, 7.8.41), with our IRK
 *   as Local_IRK (zeros without our privacy: the controller then uses our identity for that peer);
 * - LE Set Privacy Mode (7.8.77) to device mode for each entry, where the controller has the command;
 * - LE Set Resolvable Private Address Timeout (7.8.45) to our rotation period;
 * - LE Set Address Resolution Enable 0x01 when at least one entry is in.
 *
 * IRKs go in the order SMP carries them, least significant octet first, which is HCI's order too.
 *
 * Our own RPA made by the controller (Vol 6, Part B, 6.4 / 1.3.2.2): with our privacy and a controller
 * that claims LL Privacy, the list's first entry is ours alone: peer identity 00:00:00:00:00:00 (public),
 * peer IRK zero, Local_IRK ours. Undirected advertising names no peer, so the advertising parameters
 * carry that zero address as Peer_Address (7.8.5 / 7.8.53: with Own_Address_Type 0x02 / 0x03 the
 * Peer_Address selects the list entry whose local IRK makes the advertiser's address); the controller
 * then advertises from an RPA of our IRK and makes a new one every RPA timeout (7.8.45) by itself, with
 * no LE Set Random Address from the host. Without the entry a controller falls back to the random
 * address (our host RPA) for undirected advertising. The entry takes one slot of the list. A peer that
 * advertises from the public address 00:00:00:00:00:00 would match it; its zero IRK resolves nothing.
 *
 * The host-side resolver (privacy.ts) stays in use for everything else: bonds that did not fit in the
 * list (bounded by the controller's size), a controller without a list (or whose commands fail:
 * logged, and the list is then not used until the next bring-up), and addresses the controller hands
 * up unresolved. Memory: `entries` holds at most the controller's list size (an octet, <= 255).
 */
import type { HciHost } from '../hci/host.js';
import { log } from '../log.js';
import type { SmpAddress } from '../smp/session.js';
import type { ResolvableBond } from './privacy.js';

const ZERO_IRK = new Uint8Array(16);

/** The identity of our own entry (see above): what undirected advertising names as Peer_Address. */
export const LOCAL_ENTRY: ResolvingListEntry = { type: 0, address: '00:00:00:00:00:00' };
const LOCAL_KEY = `${LOCAL_ENTRY.type}/${LOCAL_ENTRY.address}`;

export interface ResolvingListOptions {
  /** Run `fn` with scanning, initiating and advertising stopped (the adapter's GAP scheduler). */
  quiet(fn: () => Promise<void>): Promise<void>;
  /** Our IRK (SMP order) when we use privacy, else undefined. */
  localIrk(): Uint8Array | undefined;
  /** Seconds between the controller's own RPAs for listed peers (7.8.45: 1-41400). */
  rpaTimeoutSeconds?: number;
}

/** One identity the controller resolves now. */
export interface ResolvingListEntry {
  readonly type: 0 | 1;
  readonly address: string;
}

export class ControllerResolvingList {
  /** Identities in the controller's list now ("type/ADDRESS"), with address resolution on. */
  private readonly entries = new Set<string>();
  private enabled = false;
  /** After a command failed: not used again until the next bring-up (`reset`). */
  private broken = false;
  /** One sync at a time; a request during one runs once more after it, with the bonds of then. */
  private running: Promise<void> | undefined;
  private again = false;
  private latest: readonly ResolvableBond[] = [];
  /** Bonds with an IRK that did not fit (the host-side resolver has them). */
  overflow = 0;

  constructor(private readonly host: HciHost, private readonly o: ResolvingListOptions) {}

  /** The controller has a list and the commands to fill and switch it (Supported_Commands, 6.27). */
  get available(): boolean {
    const info = this.host.info;
    return !this.broken && (info.resolvingListSize ?? 0) > 0 && info.supports('leAddDeviceToResolvingList') &&
      info.supports('leClearResolvingList') && info.supports('leSetAddressResolutionEnable');
  }

  /** Address resolution is on in the controller with at least one identity in its list. */
  get active(): boolean {
    return this.enabled && this.entries.size > 0;
  }

  /**
   * The list is on and the controller claims LL Privacy (LE feature bit 6, Vol 6, Part B, 4.6.5), the
   * feature that resolving in the link layer and Own_Address_Type 0x02 / 0x03 belong to. Only then do
   * we rely on it: for our own address type and for naming a peer by identity when initiating. A
   * controller that takes the list commands without the feature (btvirt) gets the list all the same,
   * and whatever it resolves is welcome, but our addresses stay ours (host RPA, type 0x01).
   */
  get resolves(): boolean {
    return this.active && this.host.info.hasLeFeature('llPrivacy');
  }

  /** Whether the controller resolves this identity (its RPAs reach us as the identity, type 0x02 / 0x03). */
  has(address: string, type: 0 | 1): boolean {
    const key = `${type}/${address.toUpperCase()}`;
    return this.resolves && key !== LOCAL_KEY && this.entries.has(key);
  }

  /**
   * The controller makes our advertising address from our IRK (our entry is in its list and it
   * claims LL Privacy): undirected advertising with Own_Address_Type 0x03 goes out from its RPAs.
   */
  get ownRpaByController(): boolean {
    return this.resolves && this.entries.has(LOCAL_KEY);
  }

  /** The controller lost its list (reset, Hardware Error): nothing is in it and it may be tried again. */
  reset(): void {
    this.entries.clear();
    this.enabled = false;
    this.broken = false;
  }

  /**
   * Make the controller's list hold these bonds' identities (those with an IRK, as many as fit).
   * Resolves when the controller has them (or the list was found unusable: then it is not used).
   */
  sync(bonds: Iterable<ResolvableBond>): Promise<void> {
    this.latest = [...bonds];
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.again = false;
          await this.write(this.latest);
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    };
    this.running = run();
    return this.running;
  }

  private async write(bonds: readonly ResolvableBond[]): Promise<void> {
    if (!this.available) return;
    const size = this.host.info.resolvingListSize ?? 0;
    const wanted: Array<{ identity: SmpAddress; irk: Uint8Array }> = [];
    const seen = new Set<string>();
    let overflow = 0;
    // Our entry first (see the top of this file): only where the controller makes RPAs in its link layer.
    const localIrk = this.o.localIrk();
    if (localIrk && this.host.info.hasLeFeature('llPrivacy')) {
      wanted.push({ identity: { type: LOCAL_ENTRY.type, address: LOCAL_ENTRY.address }, irk: ZERO_IRK });
      seen.add(LOCAL_KEY);
    }
    for (const b of bonds) {
      if (!(b.peerIrk instanceof Uint8Array) || b.peerIrk.length !== 16) continue;
      const key = `${b.identity.type === 0 ? 0 : 1}/${b.identity.address.toUpperCase()}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (wanted.length >= size) overflow++;
      else wanted.push({ identity: b.identity, irk: b.peerIrk });
    }
    const same = wanted.length === this.entries.size && this.enabled === wanted.length > 0 &&
      wanted.every(w => this.entries.has(`${w.identity.type === 0 ? 0 : 1}/${w.identity.address.toUpperCase()}`));
    this.overflow = overflow;
    if (same) return;
    const local = this.o.localIrk() ?? ZERO_IRK;
    try {
      await this.o.quiet(async () => {
        // Off first: 7.8.38-7.8.40 refuse list changes while resolution is on and the radio runs.
        await this.host.command({ kind: 'leSetAddressResolutionEnable', addressResolutionEnable: 0 });
        this.enabled = false;
        await this.host.command({ kind: 'leClearResolvingList' });
        this.entries.clear();
        for (const w of wanted) {
          const type = w.identity.type === 0 ? 0 : 1, address = w.identity.address.toUpperCase();
          await this.host.command({ kind: 'leAddDeviceToResolvingList', peerIdentityAddressType: type, peerIdentityAddress: address, peerIrk: w.irk, localIrk: local });
          this.entries.add(`${type}/${address}`);
          if (`${type}/${address}` === LOCAL_KEY) continue; // ours: no peer to hear
          // Device privacy mode (7.8.77): in the default network mode the controller would ignore a
          // bonded peer that advertises with its identity address (privacy off, or a device that
          // uses its identity for some sets), and the host would no longer hear it at all.
          if (this.host.info.supports('leSetPrivacyMode')) {
            await this.host.command({ kind: 'leSetPrivacyMode', peerIdentityAddressType: type, peerIdentityAddress: address, privacyMode: 1 });
          }
        }
        if (wanted.length === 0) return;
        const timeout = this.o.rpaTimeoutSeconds;
        if (timeout !== undefined && this.host.info.supports('leSetResolvablePrivateAddressTimeout')) {
          await this.host.command({ kind: 'leSetResolvablePrivateAddressTimeout', rpaTimeout: timeout });
        }
        await this.host.command({ kind: 'leSetAddressResolutionEnable', addressResolutionEnable: 1 });
        this.enabled = true;
      });
      if (overflow > 0) log.gap('resolving list: %d bonded IRKs did not fit in the controller\'s %d entries; the host resolves them', overflow, size);
    } catch (e) {
      // The host-side resolver covers every bond; the controller's list is left alone from now on.
      this.broken = true;
      this.entries.clear();
      log.gap('resolving list not used (%s): the host resolves every bonded RPA', (e as Error).message);
      if (this.enabled) {
        this.enabled = false;
        await this.o.quiet(async () => {
          await this.host.command({ kind: 'leSetAddressResolutionEnable', addressResolutionEnable: 0 });
        }).catch(() => undefined);
      }
    }
  }
}
