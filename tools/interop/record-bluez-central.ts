/**
 * Record a replay fixture of blewire as the PERIPHERAL with BlueZ 5.66 as the central (issue 10's
 * "replay fixtures of the BlueZ sessions"): boot the qemu BlueZ guest in bridge mode, run the session's
 * peripheral steps on the host over the bridged H4 socket under the recorder, while bluetoothd (hci0 in
 * the guest), driven over D-Bus through the control line (test/interop/helpers/bluez-central-ops.py,
 * one operation per call), does the central's part. Stops the guest at the end. Two sessions:
 *
 *   bluez-central-gatt      BlueZ scans, connects, discovers our database by itself, reads, writes,
 *                           reads back, subscribes (we notify twice and indicate once) and disconnects.
 *   bluez-central-pairing   BlueZ reads our encrypted characteristic, gets Insufficient Encryption
 *                           (0x0F), pairs by itself (LE Secure Connections Just Works: simple-agent
 *                           NoInputNoOutput; we respond and bond) and reads it; writes and reads it
 *                           back; disconnects, connects again and encrypts from the bond (our LTK in
 *                           LE Long Term Key Request Reply), reads, disconnects.
 *   bluez-central-passkey   the same with an authenticated characteristic (0x05): SC Passkey Entry,
 *                           we display (session step `pairing-io displayOnly`), simple-agent
 *                           KeyboardDisplay types the passkey; reconnect encrypted from the bond.
 *   bluez-central-numeric   the same with SC Numeric Comparison (`pairing-io displayYesNo`, agent
 *                           DisplayYesNo confirms once the value it shows equals ours).
 *   bluez-l2test            L2CAP LE credit-based channels with the Linux kernel, driven by BlueZ's
 *                           l2test (we are the central here): we open a channel to `l2test -d` (PSM
 *                           0x81) and send SDUs larger than its MPS, so its credits run out and come
 *                           back; then `l2test -y` opens one to our listener (PSM 0x85, 2 credits, MPS
 *                           50) and sends 4 SDUs of 600 octets, we send 3 back and close.
 *   bluez-central-legacy    btmgmt sc off: BlueZ pairs with LE legacy Just Works (we respond and give
 *                           our LTK with EDIV/Rand), reconnects and encrypts with that key.
 *   bluez-central-legacy-passkey  btmgmt sc off, we display (`pairing-io displayOnly`), simple-agent
 *                           KeyboardDisplay types it: LE legacy Passkey Entry; reconnect from the bond.
 *   bluez-peripheral-l2test credit-based channels with us as the PERIPHERAL: bluetoothd connects to our
 *                           advertising; l2test -y opens a channel to our listener, which wants an
 *                           encrypted link (0x0008 first; the kernel pairs, simple-agent NoInputNoOutput
 *                           confirms, and it asks again); we open channels to l2test -d and -w.
 *
 * BLEWIRE_GUEST_DIR=DIR records on a guest started by hand (tools/interop/guest/boot.sh start --dir DIR,
 * under the guest lock) and leaves it running.
 *
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-central-gatt
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-central-pairing
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-central-passkey
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-central-numeric
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-central-legacy
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-central-legacy-passkey
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-l2test
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-peripheral-l2test
 *
 * Our address is a fixed static random one (no mask needed). The pairing session draws its random values
 * and key pair from the scenario's seed (src/tooling/entropy.ts, tests and replay only), so the replay
 * checks our Public Key, Confirm, Random, DHKey Check and the LTK we give the controller as recorded:
 * nothing is masked. BlueZ's own operations and their results are printed; the scenario keeps what our
 * side saw (the `served`, `pairings` and `security` results) and what BlueZ did in `recordedWith.peer`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordScenario } from '../../src/tooling/record.js';
import { StreamTransport } from '../../src/transport/stream.js';
import { attachBlueZGuest, startBlueZGuest, syncH4 } from '../../test/interop/helpers/bluez-guest.js';
import { GuestControl, type GuestProgram } from '../../test/interop/helpers/guest-control.js';
import { parseRecordArgs } from '../record-args.js';

const OPS = fs.readFileSync(fileURLToPath(new URL('../../test/interop/helpers/bluez-central-ops.py', import.meta.url)), 'utf8');
/** BlueZ's example scripts in the guest image (simple-agent). */
const EXAMPLES = '/opt/bluez-examples';

/** One recordable session: our database and steps, BlueZ's operations, how BlueZ is set up for it. */
interface CentralSession {
  /** Our static random address (Vol 6, Part B, 1.3.2.1): fixed, so the recording needs no mask for it. */
  ours: string;
  /** The database served (the list-of-services shape of src/tooling/database-file.ts). */
  database: unknown[];
  /** Our side (session steps). */
  steps: string;
  /** BlueZ's side, in order (bluez-central-ops.py operations; the address is added). */
  bluez: string[][];
  /**
   * Or BlueZ's side as a program of its own (l2test): `before` runs before our session starts, `during`
   * alongside it; what they return is printed. `describe` says what they do, for the scenario.
   */
  peer?: { before(c: GuestControl, ours: string): Promise<unknown>; during(c: GuestControl, ours: string): Promise<unknown>; describe: string };
  /** simple-agent's IO capability for BlueZ's pairings, if the session pairs. */
  agent?: string;
  /** false: btmgmt sc off, BlueZ pairs with LE legacy pairing (Vol 3, Part H, 2.3.5); default on. */
  sc?: boolean;
  /**
   * MITM pairing with BlueZ's agent as the user: 'passkey', it types the passkey we display; 'numeric',
   * it confirms the Numeric Comparison value after checking it equals ours.
   */
  user?: 'passkey' | 'numeric';
  /** Seed of our pairing randomness (tests and replay only). */
  pairingSeed?: string;
  description: string;
}

const GATT_SVC = 'b1e0c000-5c1e-4d6a-9f3b-2a7e5d8c1b00';
const G = (n: number): string => GATT_SVC.replace('b1e0c000', `b1e0c00${n}`);
const SEC_SVC = 'b1e0c100-5c1e-4d6a-9f3b-2a7e5d8c1b00';
const S = (n: number): string => SEC_SVC.replace('b1e0c100', `b1e0c10${n}`);
const L2_SVC = 'b1e0c200-5c1e-4d6a-9f3b-2a7e5d8c1b00';

/** BlueZ's address in the guest (btvirt's first controller, slot 0): the l2test session connects to it. */
const BLUEZ = '00:AA:01:00:00:00';
/** Programs the l2test session started, killed at the end. */
const l2tests: GuestProgram[] = [];
const l2test = async (c: GuestControl, name: string, args: string): Promise<GuestProgram> => {
  const p = await c.spawn(name, ['sh', '-c', `exec stdbuf -oL l2test ${args} > /tmp/${name}.dump`]);
  l2tests.push(p);
  return p;
};
/** The SDUs in l2test's dump (hexdump lines of 16 octets; each SDU starts again at offset 0), as hex. */
async function dumped(c: GuestControl, name: string): Promise<string[]> {
  const sdus: string[] = [];
  for (const line of (await c.ok(['cat', `/tmp/${name}.dump`], 90_000)).split('\n')) {
    const m = /^([0-9a-f]{8}): ((?:[0-9a-f]{2} | {3}){16})/.exec(line);
    if (!m) continue;
    if (parseInt(m[1]!, 16) === 0) sdus.push('');
    sdus[sdus.length - 1] += (m[2]!.match(/[0-9a-f]{2}/g) ?? []).join('');
  }
  return sdus;
}

const SESSIONS: Record<string, CentralSession> = {
  'bluez-central-gatt': {
    ours: 'C3:5A:11:22:33:66',
    database: [{
      uuid: GATT_SVC,
      characteristics: [
        { uuid: G(1), properties: ['read'], value: 'hello BlueZ' },
        { uuid: G(2), properties: ['read', 'write'], value: { hex: '00' } },
        { uuid: G(3), properties: ['notify'], value: { hex: '00' } },
        { uuid: G(4), properties: ['indicate'], value: { hex: '00' } },
      ],
    }],
    // The waits between notifications let bluetoothd's D-Bus Value see each one (it polls).
    steps: [
      'serve database.json', `advertise bwr ${GATT_SVC}`, 'accept',
      `subscribed ${G(3)}`, `send-notification ${G(3)} 0101`, 'wait 1000', `send-notification ${G(3)} 0202`,
      `subscribed ${G(4)}`, `send-indication ${G(4)} 0303`,
      'wait-disconnect',
    ].join(' → '),
    bluez: [['connect'], ['read', G(1)], ['write', G(2), 'c0ffee'], ['read', G(2)], ['notify', G(3), '2'], ['notify', G(4), '1'], ['disconnect']],
    description: 'blewire as the peripheral, BlueZ as the central: BlueZ scans and connects to our advertiser, discovers our database by itself (GAP, GATT and the served service), reads a value, writes one and reads it back, enables notifications (two sent) and indications (one sent, confirmed), disconnects.',
  },
  'bluez-central-pairing': {
    ours: 'C3:5A:11:22:33:67',
    database: [{
      uuid: SEC_SVC,
      characteristics: [
        { uuid: S(1), properties: ['read', 'write'], security: 'encrypted', value: 'sealed' },
      ],
    }],
    steps: [
      'serve database.json', `advertise bwp ${SEC_SVC}`,
      'accept', 'paired', 'wait-disconnect',
      'accept', 'encrypted', 'wait-disconnect',
    ].join(' → '),
    bluez: [
      ['connect'], ['read', S(1)], ['write', S(1), '0102'], ['read', S(1)], ['disconnect'],
      ['connect'], ['read', S(1)], ['disconnect'],
    ],
    agent: 'NoInputNoOutput',
    pairingSeed: 'blewire bluez-central-pairing 1',
    description: 'blewire as the peripheral, BlueZ as the central, pairing: BlueZ reads our encrypted characteristic, gets Insufficient Encryption (0x0F), pairs by itself (LE Secure Connections Just Works, bonding; we respond) and reads it, writes it and reads it back, disconnects; it connects again, encrypts from the bond (LE Long Term Key Request Reply with our LTK, no SMP), reads it and disconnects. Our pairing randomness comes from host.pairingSeed, so nothing is masked.',
  },
  'bluez-central-passkey': {
    ours: 'C3:5A:11:22:33:69',
    database: [{
      uuid: SEC_SVC,
      characteristics: [
        { uuid: S(2), properties: ['read', 'write'], security: 'authenticated', value: 'vault' },
      ],
    }],
    steps: [
      'pairing-io displayOnly', 'serve database.json', `advertise bwk ${SEC_SVC}`,
      'accept', 'paired', 'wait-disconnect',
      'accept', 'encrypted', 'wait-disconnect',
    ].join(' → '),
    bluez: [
      ['connect'], ['read', S(2)], ['write', S(2), '0304'], ['read', S(2)], ['disconnect'],
      ['connect'], ['read', S(2)], ['disconnect'],
    ],
    agent: 'KeyboardDisplay',
    user: 'passkey',
    pairingSeed: 'blewire bluez-central-passkey 1',
    description: 'blewire as the peripheral (IO DisplayOnly), BlueZ as the central (simple-agent KeyboardDisplay): BlueZ reads our authenticated characteristic, gets Insufficient Authentication (0x05), pairs with MITM (LE Secure Connections Passkey Entry, Vol 3, Part H, 2.3.5.6.3: we display the passkey, BlueZ\'s agent types it; bonding) and reads it, writes it and reads it back, disconnects; it connects again, encrypts from the authenticated bond (our LTK in LE Long Term Key Request Reply, no SMP), reads it and disconnects. The passkey comes from host.pairingSeed like every random value of ours, so nothing is masked.',
  },
  'bluez-central-numeric': {
    ours: 'C3:5A:11:22:33:6A',
    database: [{
      uuid: SEC_SVC,
      characteristics: [
        { uuid: S(2), properties: ['read', 'write'], security: 'authenticated', value: 'vault' },
      ],
    }],
    steps: [
      'pairing-io displayYesNo', 'serve database.json', `advertise bwn ${SEC_SVC}`,
      'accept', 'paired', 'wait-disconnect',
      'accept', 'encrypted', 'wait-disconnect',
    ].join(' → '),
    bluez: [
      ['connect'], ['read', S(2)], ['write', S(2), '0506'], ['read', S(2)], ['disconnect'],
      ['connect'], ['read', S(2)], ['disconnect'],
    ],
    agent: 'DisplayYesNo',
    user: 'numeric',
    pairingSeed: 'blewire bluez-central-numeric 1',
    description: 'blewire as the peripheral (IO DisplayYesNo), BlueZ as the central (simple-agent DisplayYesNo): BlueZ reads our authenticated characteristic, gets Insufficient Authentication (0x05), pairs with MITM (LE Secure Connections Numeric Comparison, Vol 3, Part H, 2.3.5.6.2: both sides show the same six digits, BlueZ\'s agent confirms after the recorder checked they equal ours; bonding) and reads it, writes it and reads it back, disconnects; it connects again, encrypts from the authenticated bond (no SMP), reads it and disconnects. Our random values come from host.pairingSeed; BlueZ\'s Na differs per recording, but the replay plays the recorded one, so nothing is masked.',
  },
  'bluez-central-legacy': {
    ours: 'C3:5A:11:22:33:6C',
    database: [{
      uuid: SEC_SVC,
      characteristics: [
        { uuid: S(1), properties: ['read', 'write'], security: 'encrypted', value: 'sealed' },
      ],
    }],
    steps: [
      'serve database.json', `advertise bwg ${SEC_SVC}`,
      'accept', 'paired', 'wait-disconnect',
      'accept', 'encrypted', 'wait-disconnect',
    ].join(' → '),
    bluez: [
      ['connect'], ['read', S(1)], ['write', S(1), '0708'], ['read', S(1)], ['disconnect'],
      ['connect'], ['read', S(1)], ['disconnect'],
    ],
    agent: 'NoInputNoOutput',
    sc: false,
    pairingSeed: 'blewire bluez-central-legacy 1',
    description: 'blewire as the peripheral, BlueZ as the central with Secure Connections off (btmgmt sc off, simple-agent NoInputNoOutput): BlueZ reads our encrypted characteristic, gets Insufficient Encryption (0x0F), pairs by itself with LE legacy pairing Just Works (Vol 3, Part H, 2.3.5.2: TK 0, Mconfirm/Sconfirm from c1, STK from s1; we respond and distribute our LTK with EDIV and Rand, 3.6.2) and reads it, writes it and reads it back, disconnects; it connects again and encrypts with the key we distributed (LE Long Term Key Request with our EDIV and Rand, answered with our LTK, no SMP), reads it and disconnects. Our Sconfirm/Srand, LTK, EDIV and Rand come from host.pairingSeed: nothing is masked.',
  },
  'bluez-central-legacy-passkey': {
    ours: 'C3:5A:11:22:33:6D',
    database: [{
      uuid: SEC_SVC,
      characteristics: [
        { uuid: S(2), properties: ['read', 'write'], security: 'authenticated', value: 'vault' },
      ],
    }],
    steps: [
      'pairing-io displayOnly', 'serve database.json', `advertise bwh ${SEC_SVC}`,
      'accept', 'paired', 'wait-disconnect',
      'accept', 'encrypted', 'wait-disconnect',
    ].join(' → '),
    bluez: [
      ['connect'], ['read', S(2)], ['write', S(2), '090a'], ['read', S(2)], ['disconnect'],
      ['connect'], ['read', S(2)], ['disconnect'],
    ],
    agent: 'KeyboardDisplay',
    sc: false,
    user: 'passkey',
    pairingSeed: 'blewire bluez-central-legacy-passkey 1',
    description: 'blewire as the peripheral (IO DisplayOnly), BlueZ as the central with Secure Connections off (btmgmt sc off, simple-agent KeyboardDisplay): BlueZ reads our authenticated characteristic, gets Insufficient Authentication (0x05), pairs with MITM by LE legacy Passkey Entry (Vol 3, Part H, 2.3.5.3: we display the passkey, BlueZ\'s agent types it; TK = the passkey) and reads it, writes it and reads it back, disconnects; it connects again and encrypts with the authenticated key we distributed (EDIV/Rand, our LTK, no SMP), reads it and disconnects. The passkey and every random value of ours come from host.pairingSeed: nothing is masked.',
  },
  'bluez-l2test': {
    ours: 'C3:5A:11:22:33:68',
    database: [],
    // A wait after connecting lets bluetoothd discover our database first (it does so by itself).
    steps: [
      'scan 1500', `connect ${BLUEZ} public`, 'wait 3000',
      'open-channel 0x81 1000 100 4', 'send-sdu 1:0', 'send-sdu 23:1', 'send-sdu 300:2', 'send-sdu 1000:3', 'send-sdu 777:4', 'send-sdu 1000:5',
      'close-channel',
      'listen 0x85 700 50 2', 'accept-channel', 'receive-sdu 4', 'send-sdu 600:85', 'send-sdu 1:102', 'send-sdu 300:119', 'close-channel',
      'disconnect',
    ].join(' → '),
    bluez: [],
    peer: {
      describe: 'l2test -d -V le_public -P 129 -I 1000 (listens, dumps what it reads) started first; after its channel closed, l2test -y -V le_random -P 133 -N 4 -b 600 -I 900 <ours> (opens a channel to our listener, sends 4 SDUs of 600 octets, then dumps what it reads)',
      before: async c => {
        const d = await l2test(c, 'l2test-d', '-d -V le_public -P 129 -I 1000');
        await d.expect(/Waiting for connection on psm 129/, 90_000);
        return { listening: 129 };
      },
      during: async (c, ours) => {
        const d = l2tests[0]!;
        // Our close-channel: l2test's child reads the end of the stream.
        await d.expect(/Disconnect/, 300_000);
        const toL2test = await dumped(c, 'l2test-d');
        // Our listener is up right after the close (listen is the next step); give it a moment on this slow guest.
        await new Promise(r => setTimeout(r, 2000));
        const y = await l2test(c, 'l2test-y', `-y -V le_random -P 133 -N 4 -b 600 -I 900 ${ours}`);
        for (const n of [600, 1, 300]) await y.expect(new RegExp(`Received ${n} bytes`), 300_000);
        await y.expect(/Disconnect|Read error|Exit/, 300_000);
        return { toL2testD: toL2test.map(h => h.length / 2), toL2testY: (await dumped(c, 'l2test-y')).map(h => h.length / 2) };
      },
    },
    description: 'L2CAP LE credit-based channels (Vol 3, Part A, 4.22-4.24) with the Linux 6.1 kernel through BlueZ 5.66 l2test, blewire as the central: we open a channel to l2test -d (PSM 0x81, our MTU 1000 / MPS 100 / 4 credits) and send 6 SDUs of 1 to 1000 octets, more K-frames than the kernel\'s initial credits, so we wait for its credits; we close it. l2test -y opens a channel to our listener (PSM 0x85, MTU 700, MPS 50, 2 credits: the kernel stalls on ours) and sends 4 SDUs of 600 octets in l2test\'s format; we send 3 back and close; we disconnect.',
  },
  'bluez-peripheral-l2test': {
    ours: 'C3:5A:11:22:33:6B',
    database: [{
      uuid: L2_SVC,
      characteristics: [{ uuid: L2_SVC.replace('b1e0c200', 'b1e0c201'), properties: ['read'], value: 'coc' }],
    }],
    steps: [
      'serve database.json', 'listen 0x99 700 50 2 encrypted', `advertise bwl ${L2_SVC}`, 'accept',
      'accept-channel', 'paired', 'receive-sdu 4', 'send-sdu 600:33', 'send-sdu 1:34', 'send-sdu 200:35', 'close-channel',
      'open-channel 0x8d 1000 100 4', 'send-sdu 1000:64', 'send-sdu 5:65', 'send-sdu 999:66', 'send-sdu 333:67', 'close-channel',
      'open-channel 0x8f 512 23 1', 'receive-sdu 5', 'wait-channel-close',
      'disconnect',
    ].join(' → '),
    bluez: [],
    agent: 'NoInputNoOutput',
    pairingSeed: 'blewire bluez-peripheral-l2test 1',
    peer: {
      describe: 'btmgmt sc on, bondable on; simple-agent -c NoInputNoOutput (says yes to the Just Works confirmation); l2test -d -V le_public -P 141 -I 1000 and l2test -w -V le_public -P 143 -N 5 -b 250 -g 8000 listening from the start; bluetoothd connects to our advertising (bluez-central-ops.py connect, it discovers our database), then l2test -y -V le_random -P 153 -N 4 -b 600 -I 900 <ours> opens a channel to our encrypted listener: refused 0x0008, the kernel pairs and asks again',
      before: async c => {
        const d = await l2test(c, 'l2test-pd', '-d -V le_public -P 141 -I 1000');
        await d.expect(/Waiting for connection on psm 141/, 90_000);
        const w = await l2test(c, 'l2test-pw', '-w -V le_public -P 143 -N 5 -b 250 -g 8000');
        await w.expect(/Waiting for connection on psm 143/, 90_000);
        return { listening: [141, 143] };
      },
      during: async (c, ours) => {
        const [d, w] = [l2tests[0]!, l2tests[1]!];
        const r = await c.run(['python3', '-c', OPS, 'connect', ours], 150_000);
        const connected = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as Record<string, unknown>;
        if (connected['error'] || r.code !== 0) throw new Error(`bluetoothd connect: ${r.stdout}\n${r.stderr}`);
        const y = await l2test(c, 'l2test-py', `-y -V le_random -P 153 -N 4 -b 600 -I 900 ${ours}`);
        for (const n of [600, 1, 200]) await y.expect(new RegExp(`Received ${n} bytes`), 300_000);
        await y.expect(/Disconnect|Read error|Exit/, 300_000);
        for (const n of [1000, 5, 999, 333]) await d.expect(new RegExp(`Received ${n} bytes`), 300_000);
        await d.expect(/Disconnect/, 300_000);
        await w.expect(/Disconnect/, 300_000);
        return { connect: connected, toL2testY: (await dumped(c, 'l2test-py')).map(h => h.length / 2), toL2testD: (await dumped(c, 'l2test-pd')).map(h => h.length / 2) };
      },
    },
    description: 'L2CAP LE credit-based channels (Vol 3, Part A, 4.22-4.24) with blewire as the PERIPHERAL: bluetoothd (Linux 6.1, BlueZ 5.66) connects to our advertising and discovers our database. l2test -y opens a channel to our listener, which wants an encrypted link (PSM 0x99, MTU 700, MPS 50, 2 credits): its first request gets 0x0008 Insufficient Encryption, the kernel pairs (LE Secure Connections Just Works, we respond; simple-agent NoInputNoOutput confirms in BlueZ) and asks again once the link is encrypted; we accept, read 4 SDUs of 600 octets in l2test\'s format (13 K-frames each on our 2 credits) and send 3 back, close. Then we open a channel from the peripheral side to l2test -d (PSM 0x8d, 4 SDUs of up to 1000 octets: more K-frames than the kernel\'s initial credits) and one to l2test -w (PSM 0x8f, 1 credit, MPS 23: 5 SDUs of 250 octets, l2test closes); we disconnect. Our pairing randomness comes from host.pairingSeed: nothing is masked.',
  },
};

function usage(msg?: string): never {
  if (msg) console.error(`record-bluez-central: ${msg}`);
  console.error(`usage: flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts <${Object.keys(SESSIONS).join('|')}> [--dir captures] [--batch-us N]`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { name, opts } = parseRecordArgs(process.argv.slice(2), usage);
  const session = SESSIONS[name] ?? usage(`no session ${name}`);
  const { ours } = session;
  const dir = opts['dir'] ?? 'captures';
  const out = path.join(dir, name);
  fs.mkdirSync(out, { recursive: true });
  if (session.database.length) fs.writeFileSync(path.join(out, 'database.json'), `${JSON.stringify(session.database, null, 2)}\n`);
  // A guest started by hand (tools/interop/guest/boot.sh start --dir DIR) under the guest lock: record on
  // it and leave it running (its owner stops it).
  const attach = process.env.BLEWIRE_GUEST_DIR;
  const guest = attach ? { ...attachBlueZGuest(attach), stop: async () => undefined } : await startBlueZGuest();
  let ctl: GuestControl | undefined;
  let agent: GuestProgram | undefined;
  const device = `/org/bluez/hci0/dev_${ours.replace(/:/g, '_')}`;
  try {
    ctl = await GuestControl.open(guest.ctlSocket);
    const c = ctl;
    const bluez = async (op: string[]): Promise<Record<string, unknown>> => {
      const r = await c.run(['python3', '-c', OPS, op[0]!, ours, ...op.slice(1)], 150_000);
      const line = r.stdout.trim().split('\n').pop() ?? '';
      let res: Record<string, unknown>;
      try {
        res = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`bluez-central-ops ${op.join(' ')}: no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      }
      if (res['error']) throw new Error(`bluetoothd ${op.join(' ')}: ${String(res['error'])}`);
      return res;
    };
    if (session.agent) {
      // BlueZ pairs (LE Secure Connections on, bondable) with an agent answering for its user.
      await c.ok(['btmgmt', '--index', '0', 'sc', session.sc === false ? 'off' : 'on'], 90_000);
      await c.ok(['btmgmt', '--index', '0', 'bondable', 'on'], 90_000);
      await c.run(['dbus-send', '--system', '--print-reply', '--dest=org.bluez', '/org/bluez/hci0',
        'org.bluez.Adapter1.RemoveDevice', `objpath:${device}`], 90_000);
      agent = await c.spawn('agent', ['python3', './simple-agent', '-c', session.agent], EXAMPLES);
      await agent.expect(/Agent registered/, 90_000);
      agent.respond(/Authorize\? \(yes\/no\): /, 'yes\n');
    }
    // BlueZ's user: types the passkey we display, or confirms the value both sides show if it is ours.
    const a = agent;
    const user: Array<Promise<unknown>> = [];
    const onPasskeyDisplay = (passkey: string): void => {
      console.log(JSON.stringify({ weDisplay: passkey }));
      user.push(a!.expect(/Enter passkey: /, 90_000).then(() => a!.write(`${passkey}\n`)));
    };
    const onNumericComparison = (value: string): void => {
      user.push((async () => {
        const m = await a!.expect(/RequestConfirmation \(\S+, (\d{6})\)/, 90_000);
        await a!.expect(/Confirm passkey \(yes\/no\): /, 90_000);
        console.log(JSON.stringify({ weShow: value, bluezShows: m[1] }));
        await a!.write(Number(m[1]) === Number(value) ? 'yes\n' : 'no\n');
      })());
    };
    const sock = await syncH4(guest.h4Socket);
    const transport = new StreamTransport(sock, `unix:${guest.h4Socket}`);
    sock.resume();
    if (session.peer) console.log(JSON.stringify({ before: await session.peer.before(c, ours) }));
    const central = (async () => {
      if (session.peer) return [await session.peer.during(c, ours)];
      const results: Array<Record<string, unknown>> = [];
      for (const op of session.bluez) results.push(await bluez(op));
      return results;
    })();
    central.catch(() => undefined);
    const batch = opts['batch-us'] ?? '1000';
    const scenario = await recordScenario({
      name, dir, transport, steps: session.steps, randomAddress: ours,
      ...(session.pairingSeed !== undefined ? { pairingSeed: session.pairingSeed } : {}),
      ...(session.user === 'passkey' ? { onPasskeyDisplay } : session.user === 'numeric' ? { onNumericComparison } : {}),
      transportLabel: 'unix:<guest run dir>/h4.sock (the guest\'s bridged H4 socket)',
      controller: 'BlueZ 5.66 btvirt -s -L -l1 (emulated LE controller) in the qemu BlueZ guest, over its bridged H4 socket',
      peer: session.peer ? `BlueZ 5.66 (Linux 6.1 kernel L2CAP in the qemu guest, hci0 on the same btvirt air): ${session.peer.describe}`
        : `BlueZ 5.66 bluetoothd (hci0 in the guest) as the central, driven over D-Bus by test/interop/helpers/bluez-central-ops.py: ${session.bluez.map(o => o.join(' ')).join(', ')}${session.agent ? `; btmgmt sc ${session.sc === false ? 'off' : 'on'}, bondable on; simple-agent -c ${session.agent}` : ''}`,
      tool: 'tools/interop/record-bluez-central.ts',
      description: session.description,
      command: `flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts ${name}`,
      replay: { batchUs: Number(batch) },
    });
    const ops = await central;
    await Promise.all(user);
    console.log(`recorded ${out}: ${scenario.steps}`);
    console.log(JSON.stringify({ bluez: ops, expect: scenario.expect }, null, 2));
  } finally {
    await agent?.kill().catch(() => undefined);
    // A guest attached to stays up for the next recording: leave BlueZ with Secure Connections on.
    if (session.sc === false) await ctl?.ok(['btmgmt', '--index', '0', 'sc', 'on'], 90_000).catch(() => undefined);
    for (const p of l2tests) await p.kill().catch(() => undefined);
    ctl?.close();
    await guest.stop();
  }
}

await main();
