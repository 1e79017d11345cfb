/**
 * Record replay fixtures of blewire as the CENTRAL pairing with BlueZ 5.66 as the peripheral (issue 9:
 * "bluetoothd with the example agent at NoInputNoOutput, DisplayYesNo and KeyboardDisplay ... pairs and
 * bonds with blewire, legacy and SC; after a reconnect the link re-encrypts from the bond ... Record each
 * session as a replay fixture"). One qemu guest boot (bridge mode: bluetoothd, its example GATT server and
 * advertisement on hci0) records every session named on the command line, in order; each session is a
 * fresh Adapter (bonds in memory) under its own static random address, so BlueZ's bonds of one session
 * never meet another. Before each session BlueZ is set up with btmgmt (sc on/off, bondable, privacy)
 * and simple-agent at the session's IO capability; the agent says yes to Just Works authorisation and to
 * a numeric comparison, and types the passkey we display (the recorder hands it over from our
 * onPasskeyDisplay). Stops the guest at the end.
 *
 *   bluez-pairing-sc-justworks      agent NoInputNoOutput, SC: reading the example server's encrypted
 *                                   characteristic is refused (Insufficient Authentication/Encryption),
 *                                   pairs on demand (SC Just Works), reads; write + read back; reconnect,
 *                                   re-encrypt from the bond, read.
 *   bluez-pairing-sc-numeric        agent DisplayYesNo, we displayYesNo: SC Numeric Comparison; the
 *                                   secure (authenticated SC) characteristic reads.
 *   bluez-pairing-sc-passkey        agent KeyboardDisplay, we displayOnly: SC Passkey Entry, we display,
 *                                   BlueZ's agent types it; the secure characteristic reads.
 *   bluez-pairing-legacy            btmgmt sc off, agent NoInputNoOutput: legacy Just Works; reconnect,
 *                                   re-encrypt from the legacy bond (EDIV/Rand), read.
 *   bluez-pairing-legacy-passkey    btmgmt sc off, agent KeyboardDisplay, we displayOnly: legacy Passkey
 *                                   Entry (TK = our passkey), read.
 *   bluez-pairing-sc-passkey-typed  agent DisplayOnly, we keyboardOnly: SC Passkey Entry the other way
 *                                   round: BlueZ displays (its agent prints DisplayPasskey), we type; the
 *                                   digits typed are written into the stored `pair` step; secure read.
 *   bluez-pairing-legacy-passkey-typed  btmgmt sc off, agent DisplayOnly, we keyboardOnly: legacy
 *                                   Passkey Entry, TK = the passkey BlueZ displays and we type; read.
 *   bluez-pairing-no-agent          no agent: the encrypted read (on-demand pairing off) is refused with
 *                                   an ATT security error; our pairing is refused by bluetoothd.
 *   bluez-pairing-bond-removal      BlueZ removes the bond (`peer forget`: RemoveDevice): encrypt fails
 *                                   with PIN or Key Missing, pairing again works; we remove ours
 *                                   (`forget`): BlueZ refuses Just Works re-pairing; it forgets too; pair.
 *   bluez-privacy                   btmgmt privacy on: BlueZ advertises from an RPA; we pair (SC Just
 *                                   Works), get its IRK and identity; BlueZ power-cycles (a new RPA: the
 *                                   `peer new-rpa` step); we hear its identity under the new RPA, connect
 *                                   by identity, re-encrypt from the bond, read.
 *
 *   bluez-own-privacy               OUR privacy (session option `privacy`, IRK and RPA prand from the seed):
 *                                   we serve and advertise from an RPA; bluetoothd (the central, driven
 *                                   over D-Bus) connects to that RPA, reads our encrypted characteristic,
 *                                   pairs (we distribute our IRK and identity); we `rotate`; bluetoothd's
 *                                   discovery reports us under our identity (its kernel resolves the new
 *                                   RPA) and Connect on the identity reaches us there and encrypts from the bond.
 *   bluez-signed-write              we pair with signing as the central (BlueZ distributes its CSRK); at
 *                                   `peer strip-ltk` bluetoothd is stopped, the LTKs are removed from its
 *                                   info file (the CSRKs stay), it is started again; we advertise, it
 *                                   connects unencrypted and WriteValue type "command" sends a Signed Write
 *                                   Command (0xD2) with its CSRK; our server verifies and applies it. Then
 *                                   our 0xD2 with our CSRK to bluetoothd's signed-gatt-server.py
 *                                   characteristic: 5.66 drops it (no 0xD2 handler; the read shows the old
 *                                   value), a plain Write Command of another value reads back.
 *
 *   bluez-signed-write-accepted     on the SECOND guest image (Debian trixie, bluetoothd >= 5.73, whose GATT
 *                                   server handles 0xD2): we pair with signing; at `peer strip-ltk-advertise`
 *                                   bluetoothd loses its LTKs for us and restarts with the example
 *                                   advertisement and signed-gatt-server.py; we connect again (unencrypted)
 *                                   and our Signed Write Commands of 5a01 and 5a02 read back: bluetoothd
 *                                   verified and applied them; one with a flipped MAC bit and a replay of
 *                                   the first are dropped (the reads after them give the value before).
 *                                   Recorded in a run of its own (one guest image per run; `all` means
 *                                   the bookworm sessions).
 *
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-pairing.ts <session...|all> [--dir captures]
 *
 * BLEWIRE_GUEST_DIR=DIR records on a guest started by hand (tools/interop/guest/boot.sh start --dir DIR,
 * under the guest lock) and leaves it running.
 *
 * Our pairing randomness (Pairing Random, P-256 key pair, the passkey we display) comes from the
 * scenario's seed (src/tooling/entropy.ts, tests and replay only), so the replay checks every SMP octet
 * of ours and the LTK we give the controller as recorded: nothing is masked. BlueZ's values are in the
 * recorded events. After each recording, tshark reads the capture: the count of malformed frames is
 * printed (it must be 0).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordScenario } from '../../src/tooling/record.js';
import { StreamTransport } from '../../src/transport/stream.js';
import { attachBlueZGuest, startBlueZGuest, syncH4 } from '../../test/interop/helpers/bluez-guest.js';
import { STRIP_LTK } from '../../test/interop/helpers/bluez-peer.js';
import { GuestControl, type GuestProgram } from '../../test/interop/helpers/guest-control.js';

/** A bluetoothd GATT application with a characteristic that allows authenticated signed writes (prints REGISTERED). */
const SIGNED_APP = fs.readFileSync(fileURLToPath(new URL('../../test/interop/helpers/signed-gatt-server.py', import.meta.url)), 'utf8');
const SIGNED_APP_CHR = '5167ed01-7b1e-4c0d-9a5e-2f1e0d9c8b00';
const OPS = fs.readFileSync(fileURLToPath(new URL('../../test/interop/helpers/bluez-central-ops.py', import.meta.url)), 'utf8');
/** bluetoothd's discovery for up to `secs`: whether its kernel resolved our RPA to `identity` (one JSON line). */
const DISCOVER = fs.readFileSync(fileURLToPath(new URL('../../test/interop/helpers/bluez-discover.py', import.meta.url)), 'utf8');
/** BlueZ's example scripts in the guest image (simple-agent). */
const EXAMPLES = '/opt/bluez-examples';
/** BlueZ's address in the guest (btvirt's first controller, slot 0). */
const BLUEZ = '00:AA:01:00:00:00';
/**
 * example-gatt-server's test service: the value handles of its encrypt-read/write characteristic
 * (12345678-1234-5678-1234-56789abcdef3) and its secure-read/write one (…def5), as bluetoothd lays out
 * the guest's database. The sessions read them by handle, without discovering BlueZ's database: tshark
 * keeps ONE handle-to-attribute map per peer for both GATT servers (BlueZ's and ours) and across links,
 * so after our discovery it decodes bluetoothd's writes to OUR Service Changed CCCD (0x0009) as writes
 * to BlueZ's attribute 0x0009 and reports them malformed. Reading by handle keeps its map to our server.
 */
const ENC = '0x0028';
const SECURE = '0x002c';
/** example-advertisement's LocalName (privacy on: only the name tells it is BlueZ before bonding). */
const ADV_NAME = 'TestAdvertisement';
/** The guest is qemu TCG: its kernel's P-256, python agents and D-Bus take seconds. */
const SLOW = 60_000;

interface PairingSession {
  /** The guest image (tools/interop/guest/build.sh BLEWIRE_GUEST_SUITE): default bookworm, BlueZ 5.66. */
  suite?: 'trixie';
  /** Our static random address (Vol 6, Part B, 1.3.2.1), one per session. */
  ours: string;
  steps: string[];
  /** simple-agent's IO capability; none: no agent registered (bluetoothd answers for its user alone). */
  agent?: string;
  sc: boolean;
  privacy?: boolean;
  /** OUR privacy (the session option `privacy`): RPAs of the IRK seeded from the session's seed. */
  ownPrivacy?: boolean;
  /** The database of our `serve` step (written next to scenario.json). */
  database?: unknown[];
  /** BlueZ's side as a program run alongside our steps (bluetoothd over D-Bus); what it returns is printed. */
  bluez?: (b: BlueZSide) => Promise<unknown>;
  description: string;
}

/** What a session's BlueZ program can do. */
interface BlueZSide {
  /** One bluez-central-ops.py operation on `address`; its JSON result (an error in it throws). */
  ops(op: string, address: string, ...rest: string[]): Promise<Record<string, unknown>>;
  /** The next RPA we take (the session's onAddress), in order. */
  nextAddress(): Promise<string>;
  /** Resolves once the `peer <action>` step's action is done. */
  after(action: string): Promise<void>;
  /** Resolves once our session starts a step of this kind (e.g. 'accept': we advertise and wait for a central). */
  reached(op: string): Promise<void>;
  /** Ends the session's `peer <name>` step (its action waits for this). */
  done(name: string): void;
  ctl: GuestControl;
}

/** Our own-privacy session's service: one characteristic that needs an encrypted link. */
const VEILED_SVC = '5ec10000-0b1e-4a1e-9c5e-7f3a2b1c0d00';
const VEILED = VEILED_SVC.replace('5ec10000', '5ec10001');
/** Our signed-write session's service: Write Without Response and Authenticated Signed Writes (Vol 3, Part G, 3.3.1.1). */
const SIGNED_SVC = '5167ee00-7b1e-4c0d-9a5e-2f1e0d9c8b00';
const SIGNED = SIGNED_SVC.replace('5167ee00', '5167ee01');

/**
 * Connect to BlueZ once it advertises again (it re-advertises a moment after a disconnection), then let
 * bluetoothd discover our GATT database before we go on: tshark pairs ATT requests and responses per
 * link, not per direction, so its requests interleaved with ours make it misread the responses.
 */
const settle = 'wait 3000';
const reconnect = [`find ${BLUEZ} 30000`, `connect ${BLUEZ} public`, settle];

const SESSIONS: Record<string, PairingSession> = {
  'bluez-pairing-sc-justworks': {
    ours: 'C2:5A:11:22:34:01', agent: 'NoInputNoOutput', sc: true,
    steps: [...reconnect, `read ${ENC}`, 'paired', `write ${ENC} 4257`, `read ${ENC}`, 'disconnect',
      ...reconnect, 'encrypt', `read ${ENC}`, 'disconnect'],
    description: 'blewire as the central, BlueZ 5.66 as the peripheral (example-gatt-server, simple-agent NoInputNoOutput, SC on): reading the encrypted characteristic is refused with an ATT security error, so we pair on demand (LE Secure Connections Just Works, bonding; BlueZ\'s agent authorises) and the read is retried and answered; we write it and read it back; disconnect. We connect again and encrypt from the bond (LE Enable Encryption with the bond\'s LTK, no SMP from us), read, disconnect.',
  },
  'bluez-pairing-sc-numeric': {
    ours: 'C2:5A:11:22:34:02', agent: 'DisplayYesNo', sc: true,
    steps: [...reconnect, 'pair displayYesNo', `read ${SECURE}`, 'disconnect'],
    description: 'blewire as the central (displayYesNo), BlueZ 5.66 as the peripheral (simple-agent DisplayYesNo, SC on): LE Secure Connections Numeric Comparison, both sides confirm the six digits (listed in the results); the characteristic that needs an authenticated SC key (secure-read) reads; disconnect.',
  },
  'bluez-pairing-sc-passkey': {
    ours: 'C2:5A:11:22:34:03', agent: 'KeyboardDisplay', sc: true,
    steps: [...reconnect, 'pair displayOnly', `read ${SECURE}`, 'disconnect'],
    description: 'blewire as the central (displayOnly), BlueZ 5.66 as the peripheral (simple-agent KeyboardDisplay, SC on): LE Secure Connections Passkey Entry (20 rounds), we display the passkey (from the seed, listed in the results) and BlueZ\'s agent types it; the secure characteristic reads; disconnect.',
  },
  'bluez-pairing-legacy': {
    ours: 'C2:5A:11:22:34:04', agent: 'NoInputNoOutput', sc: false,
    steps: [...reconnect, 'pair', `read ${ENC}`, 'disconnect', ...reconnect, 'encrypt', `read ${ENC}`, 'disconnect'],
    description: 'blewire as the central, BlueZ 5.66 as the peripheral with Secure Connections off (btmgmt sc off, simple-agent NoInputNoOutput): LE legacy pairing Just Works (STK from c1/s1, BlueZ distributes its LTK with EDIV and Rand); the encrypted characteristic reads; disconnect. We connect again and encrypt from the legacy bond (LE Enable Encryption with BlueZ\'s EDIV, Rand and LTK), read, disconnect.',
  },
  'bluez-pairing-legacy-passkey': {
    ours: 'C2:5A:11:22:34:05', agent: 'KeyboardDisplay', sc: false,
    steps: [...reconnect, 'pair displayOnly', `read ${ENC}`, 'disconnect'],
    description: 'blewire as the central (displayOnly), BlueZ 5.66 as the peripheral with Secure Connections off (simple-agent KeyboardDisplay): LE legacy Passkey Entry, we display the passkey (the TK; from the seed, listed in the results) and BlueZ\'s agent types it; the encrypted characteristic reads; disconnect.',
  },
  'bluez-pairing-sc-passkey-typed': {
    ours: 'C2:5A:11:22:34:07', agent: 'DisplayOnly', sc: true,
    steps: [...reconnect, 'pair keyboardOnly passkey=peer', `read ${SECURE}`, 'disconnect'],
    description: 'blewire as the central (keyboardOnly), BlueZ 5.66 as the peripheral (simple-agent DisplayOnly, SC on): LE Secure Connections Passkey Entry with BlueZ displaying and us typing (Vol 3, Part H, 2.3.5.1: initiator KeyboardOnly, responder DisplayOnly), the passkey read off BlueZ\'s agent (DisplayPasskey) and typed by us: the six digits are in the stored `pair` step, so the replay types them too; 20 Confirm/Random rounds; the secure characteristic reads; disconnect.',
  },
  'bluez-pairing-legacy-passkey-typed': {
    ours: 'C2:5A:11:22:34:08', agent: 'DisplayOnly', sc: false,
    steps: [...reconnect, 'pair keyboardOnly passkey=peer', `read ${ENC}`, 'disconnect'],
    description: 'blewire as the central (keyboardOnly), BlueZ 5.66 as the peripheral with Secure Connections off (simple-agent DisplayOnly): LE legacy Passkey Entry with BlueZ displaying and us typing; TK = that passkey (Vol 3, Part H, 2.3.5.3), read off BlueZ\'s agent and stored in the `pair` step; the encrypted characteristic reads; disconnect.',
  },
  'bluez-pairing-no-agent': {
    ours: 'C2:5A:11:22:34:09', sc: true,
    steps: [...reconnect, `read ${ENC} refused`, 'pair refused', 'disconnect'],
    description: 'blewire as the central, BlueZ 5.66 as the peripheral with NO agent registered (SC on): reading the encrypted characteristic with the on-demand pairing off is refused with an ATT security error (listed in refusals); our pairing (LE Secure Connections Just Works) is then refused by bluetoothd, which has no agent to authorise it: the Pairing Failed reason from BlueZ is listed in refusals; the link stays unencrypted; disconnect.',
  },
  'bluez-pairing-bond-removal': {
    ours: 'C2:5A:11:22:34:0A', agent: 'NoInputNoOutput', sc: true,
    steps: [...reconnect, 'pair', `read ${ENC}`, 'disconnect',
      'peer forget 30000', ...reconnect, 'encrypt refused', 'pair', `read ${ENC}`, 'disconnect',
      'forget', ...reconnect, 'paired refused', 'disconnect',
      'peer forget 30000', ...reconnect, 'pair', `read ${ENC}`, 'disconnect'],
    description: 'Bond removal on either side, blewire as the central, BlueZ 5.66 as the peripheral (simple-agent NoInputNoOutput, SC on). We pair (SC Just Works, bonding) and read the encrypted characteristic. BlueZ removes the bond (Adapter1.RemoveDevice: the `peer forget` step); on a new link our encrypt() from the bond fails with the controller\'s PIN or Key Missing (0x06: BlueZ answered the LTK request negatively), and pairing again works. Then we remove our bond (the `forget` step) while BlueZ keeps its own: on the next link BlueZ\'s Security Request makes us pair (Just Works), and bluetoothd refuses the Just Works re-pairing of a device it is bonded with (main.conf JustWorksRepairing=never; the Pairing Failed reason from BlueZ in refusals). Once BlueZ forgets us too, pairing works and the characteristic reads.',
  },
  'bluez-own-privacy': {
    ours: 'C2:5A:11:22:34:0B', agent: 'NoInputNoOutput', sc: true, ownPrivacy: true,
    database: [{ uuid: VEILED_SVC, characteristics: [{ uuid: VEILED, properties: ['read'], security: 'encrypted', value: 'veiled' }] }],
    steps: ['serve database.json', `advertise bw-veiled ${VEILED_SVC}`, 'accept', 'paired', 'wait-disconnect',
      'rotate', 'accept', 'encrypted', 'wait-disconnect'],
    bluez: async b => {
      const ours = 'C2:5A:11:22:34:0B';
      const first = await b.nextAddress();
      const c1 = await b.ops('connect', first);
      if (c1['paired'] !== false) throw new Error(`bluetoothd knew our first RPA as paired: ${JSON.stringify(c1)}`);
      const r1 = await b.ops('read', first, VEILED);
      // Paired: bluetoothd now files the device under our identity (Identity Address Information).
      await b.ops('disconnect', ours);
      const next = await b.nextAddress();
      const d = await b.ctl.run(['python3', '-c', DISCOVER, ours, next, '30'], SLOW);
      const seen = JSON.parse(d.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
      if (seen['identitySeen'] !== true || seen['rpaDevice'] !== false || seen['paired'] !== true) {
        throw new Error(`bluetoothd did not resolve our new RPA ${next} to ${ours}: ${d.stdout}${d.stderr}`);
      }
      const c2 = await b.ops('connect', ours);
      if (c2['paired'] !== true) throw new Error(`bluetoothd connected to our identity unpaired: ${JSON.stringify(c2)}`);
      const r2 = await b.ops('read', ours, VEILED);
      await b.ops('disconnect', ours);
      return { first, next, read1: r1['value'], discovered: seen, read2: r2['value'] };
    },
    description: 'Our own LE privacy against BlueZ 5.66 as the central (issue 9: an RPA from our own IRK, rotated, IRK and identity distributed when bonding). blewire opens with privacy (host.privacy: our IRK and every RPA\'s prand come from host.pairingSeed; our identity is host.randomAddress, a static random address; btvirt has no LL Privacy, so the host makes the RPAs and sends them with LE Set Random Address), serves a characteristic that needs encryption and advertises from its first RPA. bluetoothd (simple-agent NoInputNoOutput, SC on), driven over D-Bus, connects to that RPA, reads the characteristic, gets Insufficient Encryption (0x0F) and pairs (LE Secure Connections Just Works; we distribute our IRK and identity, Identity Information / Identity Address Information, Vol 3, Part H, 3.6.4 / 3.6.5), reads, disconnects. We take a new RPA (the `rotate` step); bluetoothd\'s discovery reports us under our identity with no device for the new RPA (its kernel resolved it with our IRK, Vol 6, Part B, 1.3.2.3), and Device1.Connect on the identity reaches us at the new RPA and encrypts from the bond (our LTK in LE Long Term Key Request Reply, no SMP), reads, disconnects. Our RPAs are listed in rpas.',
  },
  'bluez-signed-write': {
    ours: 'C2:5A:11:22:34:0C', agent: 'NoInputNoOutput', sc: true,
    database: [{ uuid: SIGNED_SVC, characteristics: [{ uuid: SIGNED, properties: ['read', 'writeWithoutResponse', 'authenticatedSignedWrites'], value: { hex: '00' } }] }],
    steps: ['serve database.json', ...reconnect, 'pair signing', 'wait 1500', 'disconnect', 'peer strip-ltk 60000',
      `advertise bw-signed ${SIGNED_SVC}`, 'accept', 'peer bluez-wrote 60000',
      `write ${SIGNED_APP_CHR} 519e signed`, `read ${SIGNED_APP_CHR}`, `write ${SIGNED_APP_CHR} 579e cmd`, `read ${SIGNED_APP_CHR}`, 'disconnect'],
    bluez: async b => {
      // bluetoothd restarted without our LTK, and we advertise: it connects (a connection attempt before
      // we advertise would time out in its kernel).
      await b.after('strip-ltk');
      await b.reached('accept');
      const ours = 'C2:5A:11:22:34:0C';
      const c = await b.ops('connect', ours);
      const w = await b.ops('write-command', ours, SIGNED, '539e');
      // Our `peer bluez-wrote` step ends here: our own writes to bluetoothd follow; we disconnect.
      b.done('bluez-wrote');
      return { connect: c, writeCommand: w };
    },
    description: 'A Signed Write Command (ATT 0xD2, Vol 3, Part F, 3.4.5.4; signature per Vol 3, Part H, 2.4.5 with the CSRK and SignCounter) from BlueZ 5.66 to our GATT server. blewire, the central, pairs with bluetoothd (simple-agent NoInputNoOutput, SC on) asking for signing (LE Secure Connections Just Works, bonding; BlueZ distributes its CSRK in Signing Information, 3.6.6); disconnect. At `peer strip-ltk` bluetoothd is stopped, the LTK groups are removed from its info file for us (its LocalSignatureKey, the CSRK it gave us, stays: peerKeys.localSignatureKey) and it is started again: bluetoothd 5.66 signs a write only on an unencrypted link, and a bond with an LTK would encrypt at once. We advertise; bluetoothd connects to us (no encryption), discovers our database and WriteValue type "command" on our characteristic (write without response and authenticated signed writes) sends 0xD2 signed with its CSRK; our server verifies the signature and SignCounter with the CSRK from our bond and applies the write (served.writes: signed). Then our side: a Signed Write Command of 519e with OUR CSRK (the one bluetoothd stores as RemoteSignatureKey: peerKeys.remoteSignatureKey) to the characteristic of signed-gatt-server.py (read, write-without-response, authenticated-signed-writes) in bluetoothd: BlueZ 5.66 has no handler for 0xD2 and drops it (the read after it gives the old value 00); a plain Write Command of 579e reads back; we disconnect.',
  },
  'bluez-signed-write-accepted': {
    suite: 'trixie', ours: 'C2:5A:11:22:34:0D', agent: 'NoInputNoOutput', sc: true,
    steps: [...reconnect, 'pair signing', 'wait 1500', 'disconnect', 'peer strip-ltk-advertise 120000',
      ...reconnect, `read ${SIGNED_APP_CHR}`, `write ${SIGNED_APP_CHR} 5a01 signed`, `read ${SIGNED_APP_CHR}`,
      `write ${SIGNED_APP_CHR} 5aee signed flip=95`, `read ${SIGNED_APP_CHR}`,
      `write ${SIGNED_APP_CHR} 5a02 signed`, `read ${SIGNED_APP_CHR}`,
      `write ${SIGNED_APP_CHR} 5a01 signed counter=0`, `read ${SIGNED_APP_CHR}`, 'disconnect'],
    description: 'Signed Write Commands (ATT 0xD2, Vol 3, Part F, 3.4.5.4; signature per Vol 3, Part H, 2.4.5) from blewire ACCEPTED by bluetoothd: the second guest image (Debian trixie\'s userland on the same kernel; bluetoothd 5.73 and later has a 0xD2 handler, BlueZ commit 71f0a1e88; the version is in recordedWith.peer). blewire, the central, pairs with bluetoothd (simple-agent NoInputNoOutput, SC on) asking for signing (LE Secure Connections Just Works, bonding; we distribute our CSRK in Signing Information, 3.6.6, which bluetoothd stores as its RemoteSignatureKey: peerKeys.remoteSignatureKey); disconnect. At `peer strip-ltk-advertise` the LTK groups are removed from bluetoothd\'s info file for us (the signature keys stay) and it is restarted with the example advertisement and signed-gatt-server.py (read, write-without-response, authenticated-signed-writes): with an LTK bluetoothd raises the ATT link\'s security at once, and data signing is for unencrypted links (Vol 3, Part C, 10.4). We connect again (no encryption), read the characteristic (00), send a Signed Write Command of 5a01 with SignCounter 0 and read 5a01: bluetoothd checked the signature and counter and applied it. Then 5aee with SignCounter 1 and the top bit of the MAC inverted (flip=95): dropped, the read still gives 5a01; 5a02 correctly signed with SignCounter 1: read 5a02; the first Signed Write Command again, octet for octet (counter=0, below the one bluetoothd holds): dropped, the read still gives 5a02; disconnect.',
  },
  'bluez-privacy': {
    ours: 'C2:5A:11:22:34:06', agent: 'NoInputNoOutput', sc: true, privacy: true,
    steps: [`find name=${ADV_NAME} 30000`, 'connect found', settle, 'pair', 'wait 500', 'disconnect',
      'peer new-rpa 20000', `find ${BLUEZ} 60000`, `connect ${BLUEZ} public`, settle, 'encrypt', `read ${ENC}`, 'disconnect'],
    description: 'blewire as the central, BlueZ 5.66 with LE privacy on (btmgmt privacy on) as the peripheral: we hear a stranger under a resolvable private address, connect and pair (SC Just Works; BlueZ distributes its IRK and identity address); BlueZ power-cycles its adapter, which takes a new RPA (the `peer new-rpa` step); its report now names its identity (bonded: our host resolves the new RPA with its IRK), we connect by identity (to the new RPA) and encrypt from the bond, read the encrypted characteristic, disconnect.',
  },
};

function usage(msg?: string): never {
  if (msg) console.error(`record-bluez-pairing: ${msg}`);
  console.error(`usage: flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-pairing.ts <${Object.keys(SESSIONS).join('|')}|all>... [--dir captures]`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let dir = 'captures';
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--dir') dir = args[++i] ?? usage('--dir needs a folder');
    else if (args[i] === 'all') names.push(...Object.keys(SESSIONS).filter(n => SESSIONS[n]!.suite === undefined));
    else if (SESSIONS[args[i]!]) names.push(args[i]!);
    else usage(`no session ${args[i]}`);
  }
  if (!names.length) usage();
  const suites = new Set(names.map(n => SESSIONS[n]!.suite ?? 'bookworm'));
  if (suites.size > 1) usage(`the sessions named are on different guest images (${[...suites].join(', ')}): record them in separate runs`);
  const suite = names.map(n => SESSIONS[n]!.suite).find(x => x !== undefined);
  // A guest started by hand (tools/interop/guest/boot.sh start --dir DIR, under the guest lock): record
  // on it and leave it running (its owner stops it).
  const attach = process.env.BLEWIRE_GUEST_DIR;
  const guest = attach ? { ...attachBlueZGuest(attach), stop: async () => undefined } : await startBlueZGuest(suite ? { suite } : {});
  let ctl: GuestControl | undefined;
  let agent: GuestProgram | undefined;
  /** signed-gatt-server.py, while it runs. */
  let app: GuestProgram | undefined;
  try {
    ctl = await GuestControl.open(guest.ctlSocket);
    const c = ctl;
    const btmgmt = (...a: string[]): Promise<string> => c.ok(['btmgmt', '--index', '0', ...a], SLOW);
    /** Wait until bluetoothd no longer reports a link to `ours` (then 2 s more for its ATT socket to close). */
    const linkGone = async (ours: string): Promise<void> => {
      const dev = `/org/bluez/hci0/dev_${ours.replace(/:/g, '_')}`;
      await c.run(['sh', '-c', `for i in $(seq 1 150); do
          dbus-send --system --print-reply --dest=org.bluez ${dev} org.freedesktop.DBus.Properties.Get \
            string:org.bluez.Device1 string:Connected 2>/dev/null | grep -q 'boolean true' || { sleep 2; exit 0; }
          sleep 0.2; done; exit 1`], SLOW);
    };
    /** bluetoothd, and the example applications that register with it, started again as the guest's init does. */
    const restartBluetoothd = async (withExamples: boolean): Promise<void> => {
      await c.ok(['sh', '-c', 'for p in $(pidof bluetoothd); do kill $p; done; for i in $(seq 50); do pidof bluetoothd >/dev/null || exit 0; sleep 0.1; done; exit 1'], SLOW);
      await c.ok(['sh', '-c', '/usr/libexec/bluetooth/bluetoothd -n >/tmp/bluetoothd.log 2>&1 & for i in $(seq 300); do btmgmt --index 0 info 2>/dev/null | grep -q "current settings:.*powered" && exit 0; sleep 0.2; done; exit 1'], 90_000);
      if (withExamples) {
        await c.ok(['sh', '-c', `for p in $(pgrep -f '^python3 [.]/example-(gatt-server|advertisement)'); do kill $p; done; cd ${EXAMPLES};
          python3 ./example-gatt-server >/tmp/gatt-server.log 2>&1 & python3 ./example-advertisement >/tmp/advertisement.log 2>&1 &
          for i in $(seq 600); do grep -q 'GATT application registered' /tmp/gatt-server.log && grep -q 'Advertisement registered' /tmp/advertisement.log && exit 0; sleep 0.2; done; exit 1`], 150_000);
      }
    };
    let privacy = false;
    let last: string | undefined;
    for (const name of names) {
      const session = SESSIONS[name]!;
      const device = `/org/bluez/hci0/dev_${session.ours.replace(/:/g, '_')}`;
      await agent?.kill();
      agent = undefined;
      // Let bluetoothd see the previous session's link go and close its ATT socket before the adapter is
      // reconfigured (the guest's Linux 6.1 was seen to kill bluetoothd when it was not).
      if (last) await linkGone(last);
      last = session.ours;
      await c.run(['dbus-send', '--system', '--print-reply', '--dest=org.bluez', '/org/bluez/hci0',
        'org.bluez.Adapter1.RemoveDevice', `objpath:${device}`], SLOW);
      await btmgmt('sc', session.sc ? 'on' : 'off');
      await btmgmt('bondable', 'on');
      if (Boolean(session.privacy) !== privacy) {
        // Privacy is set with the adapter off; powering on takes a new RPA (the kernel marks it expired).
        await btmgmt('power', 'off');
        await btmgmt('privacy', session.privacy ? 'on' : 'off');
        await btmgmt('power', 'on');
        privacy = Boolean(session.privacy);
      }
      const a = session.agent === undefined ? undefined : await c.spawn(`agent-${name}`, ['python3', './simple-agent', '-c', session.agent], EXAMPLES);
      agent = a;
      if (a) {
        await a.expect(/Agent registered/, SLOW);
        a.respond(/Authorize\? \(yes\/no\): /, 'yes\n');
        a.respond(/Confirm passkey \(yes\/no\): /, 'yes\n');
      }
      const withAgent = (): GuestProgram => a ?? ((): never => { throw new Error(`${name}: the peer has no agent`); })();
      const typed: Array<Promise<void>> = [];
      if (session.database) {
        fs.mkdirSync(path.join(dir, name), { recursive: true });
        fs.writeFileSync(path.join(dir, name, 'database.json'), `${JSON.stringify(session.database, null, 2)}\n`);
      }
      // Our RPAs as the session takes them, and the peer actions done, for BlueZ's program.
      const addresses: string[] = [];
      const addressWaiters: Array<() => void> = [];
      const actions = new Map<string, { p: Promise<void>; r: () => void }>();
      const action = (a: string): { p: Promise<void>; r: () => void } => {
        let d = actions.get(a);
        if (!d) {
          let r = (): void => undefined;
          const p = new Promise<void>(res => { r = res; });
          d = { p, r };
          actions.set(a, d);
        }
        return d;
      };
      const after = (a: string): Promise<void> => action(a).p;
      const reached = (op: string): Promise<void> => action(`step ${op}`).p;
      let taken = 0;
      const side: BlueZSide = {
        ctl: c,
        ops: async (op, address, ...rest) => {
          const r = await c.run(['python3', '-c', OPS, op, address, ...rest], 150_000);
          const line = r.stdout.trim().split('\n').pop() ?? '';
          let res: Record<string, unknown>;
          try {
            res = JSON.parse(line) as Record<string, unknown>;
          } catch {
            throw new Error(`bluez-central-ops ${op} ${address}: no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
          }
          if (res['error']) throw new Error(`bluetoothd ${op} ${address}: ${String(res['error'])}`);
          return res;
        },
        nextAddress: () => new Promise<string>(r => {
          const i = taken++;
          const check = (): boolean => { if (addresses[i] === undefined) return false; r(addresses[i]!); return true; };
          if (!check()) addressWaiters.push(() => { check(); });
        }),
        after,
        reached,
        done: n => action(`program ${n}`).r(),
      };
      let peerKeys: Record<string, string> | undefined;
      let stripped = false;
      const bluezSide = session.bluez?.(side);
      bluezSide?.catch(() => undefined);
      const sock = await syncH4(guest.h4Socket);
      const transport = new StreamTransport(sock, `unix:${guest.h4Socket}`);
      sock.resume();
      const steps = session.steps.join(' → ');
      const started = Date.now();
      const scenario = await recordScenario({
        name, dir, transport, steps, randomAddress: session.ours, pairingSeed: `blewire ${name} 1`, timeoutMs: SLOW,
        onPasskeyDisplay: n => { const g = withAgent(); typed.push(g.expect(/Enter passkey: /, SLOW).then(() => g.write(`${n}\n`))); },
        // BlueZ displays, we type: its agent prints the six digits (DisplayPasskey, BlueZ doc/agent-api.txt).
        onPasskeyRequest: async () => (await withAgent().expect(/DisplayPasskey \(\S+, (\d{6}) entered \d+\)/, SLOW))[1]!,
        ...(session.ownPrivacy ? { privacy: true } : {}),
        onAddress: rpa => { addresses.push(rpa); for (const w of addressWaiters.splice(0)) w(); },
        onStep: step => action(`step ${step.op}`).r(),
        peerKeys: () => peerKeys,
        onPeerAction: async act => {
          if (act === 'strip-ltk' || act === 'strip-ltk-advertise') {
            // bluetoothd signs only on an unencrypted link, and a bond with an LTK encrypts at once: keep
            // its signature keys, drop the LTKs, restart it so it loads the file (src/device.c load_info).
            await linkGone(session.ours);
            const info = `/var/lib/bluetooth/${guest.peripheral}/${session.ours}/info`;
            const s = await c.ok(['python3', '-c', STRIP_LTK, info], SLOW);
            const key = /\[LocalSignatureKey\]\nKey=([0-9A-F]{32})\n/.exec(s)?.[1];
            if (!key || /LongTermKey/.test(s)) throw new Error(`bluetoothd's info file after stripping its LTKs:\n${s}`);
            const remote = /\[RemoteSignatureKey\]\nKey=([0-9A-F]{32})\n/.exec(s)?.[1];
            if (!remote) throw new Error(`bluetoothd holds no CSRK of ours:\n${s}`);
            peerKeys = { localSignatureKey: key, remoteSignatureKey: remote };
            stripped = true;
            // strip-ltk-advertise: bluetoothd with the example advertisement too, for us to connect to.
            await restartBluetoothd(act === 'strip-ltk-advertise');
            // Its GATT server gets a characteristic that allows signed writes, for ours.
            app = await c.spawn('signed-gatt-server', ['python3', '-c', SIGNED_APP]);
            await app.expect(/REGISTERED/, SLOW);
            action(act).r();
            return;
          }
          if (act === 'bluez-wrote') {
            await action('program bluez-wrote').p;
            return;
          }
          if (act === 'forget') {
            // BlueZ forgets us (its bond and device) once bluetoothd has seen our link go.
            await linkGone(session.ours);
            await c.ok(['dbus-send', '--system', '--print-reply', '--dest=org.bluez', '/org/bluez/hci0',
              'org.bluez.Adapter1.RemoveDevice', `objpath:${device}`], SLOW);
            return;
          }
          if (act !== 'new-rpa') throw new Error(`no peer action ${act}`);
          await btmgmt('power', 'off');
          await btmgmt('power', 'on');
        },
        transportLabel: 'unix:<guest run dir>/h4.sock (the guest\'s bridged H4 socket)',
        controller: `${guest.peripheralName} btvirt -s -L -l1 (emulated LE controller) in the qemu BlueZ guest${session.suite ? ` (Debian ${session.suite})` : ''}, over its bridged H4 socket`,
        peer: `${guest.peripheralName} bluetoothd (hci0 in the guest) as the peripheral: example-gatt-server and example-advertisement; btmgmt sc ${session.sc ? 'on' : 'off'}, bondable on${session.privacy ? ', privacy on' : ''}; ${session.agent === undefined ? 'no agent registered' : `simple-agent -c ${session.agent} (says yes to authorisation and comparison, types the passkey we display${session.agent === 'DisplayOnly' ? '; the passkey it displays is read off its output and typed by us' : ''})`}${session.privacy ? '; at `peer new-rpa`: btmgmt power off, power on' : ''}${session.steps.includes('peer forget 30000') ? '; at `peer forget`: Adapter1.RemoveDevice of our address once our link is gone' : ''}`,
        tool: 'tools/interop/record-bluez-pairing.ts',
        description: session.description,
        command: `flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-pairing.ts ${name}`,
        replay: { batchUs: 1000 },
      });
      await Promise.all(typed);
      if (bluezSide) console.log(JSON.stringify({ bluez: await bluezSide }));
      if (stripped) {
        // The guest as the next session expects it: bluetoothd with the example applications, no bond with us.
        await agent?.kill();
        agent = undefined;
        await app?.kill();
        app = undefined;
        await linkGone(session.ours);
        await c.run(['dbus-send', '--system', '--print-reply', '--dest=org.bluez', '/org/bluez/hci0',
          'org.bluez.Adapter1.RemoveDevice', `objpath:${device}`], SLOW);
        await restartBluetoothd(true);
      }
      const capture = path.join(dir, name, 'capture.btsnoop');
      const malformed = execFileSync('tshark', ['-r', capture, '-Y', '_ws.malformed || _ws.expert.severity == error', '-T', 'fields', '-e', 'frame.number'],
        { encoding: 'utf8' }).trim();
      const frames = execFileSync('tshark', ['-r', capture, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' }).trim().split('\n').length;
      console.log(`recorded ${path.join(dir, name)} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${frames} frames, malformed/error frames: [${malformed.split('\n').filter(Boolean).join(', ')}]`);
      console.log(JSON.stringify({ pairings: scenario.expect.pairings, security: scenario.expect.security, found: scenario.expect.found, reads: scenario.expect.reads }));
      if (!fs.existsSync(capture)) throw new Error(`no capture at ${capture}`);
    }
  } catch (e) {
    console.error(`guest console (last 3000 characters):\n${fs.readFileSync(guest.consoleLog, 'utf8').slice(-3000)}`);
    throw e;
  } finally {
    await agent?.kill().catch(() => undefined);
    await app?.kill().catch(() => undefined);
    ctl?.close();
    await guest.stop();
  }
}

await main();
