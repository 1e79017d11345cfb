/**
 * Scripted sessions: one small language for "what was driven", shared by record mode
 * (tools/record.ts runs it against a live transport under the recorder) and the replay tests (which
 * run the very same steps against the replay transport and compare the public results).
 *
 *   scan 2000 [passive] → connect C0:11:22:33:44:55 [random|public] → mtu → discover →
 *   read 2a00 | read 0x0003 → write 2a39 0102 [cmd] → notify 2a37 5 → wait 500 → disconnect
 *
 * Peripheral steps (blewire serving, a central such as BlueZ driving the link from the other side):
 *
 *   serve database.json → advertise bw-replay 180d → accept → subscribed 2a37 →
 *   send-notification 2a37 0001 → send-indication 2a38 02 → wait-disconnect
 *
 * Security on the accepted link (the central pairs or encrypts, e.g. after our Insufficient Encryption):
 * `paired` waits for a pairing on the link to end and lists its outcome (`pairings`; a failed one fails
 * the step), `encrypted` waits until the link is encrypted (a bonded central's LTK) and lists the link's
 * security (`security`). A recorded pairing replays byte for byte when the session runs with the
 * scenario's `pairingSeed` (src/tooling/entropy.ts, tests and replay only). `pairing-io displayOnly`
 * (or `displayYesNo`, `noInputNoOutput`) sets our IO capability for the pairings that follow: MITM
 * pairing by Passkey Entry (we display; `passkeys` in the results) or Numeric Comparison (we accept;
 * `comparisons`), Vol 3, Part H, 2.3.5.1.
 *
 * Pairing as the central (Vol 3, Part H, 2.3; the peer a peripheral that asks for security):
 *
 *   find name=TestAdvertisement 20000 → connect found → pair displayOnly → read 2a19 → disconnect →
 *   connect 00:AA:01:00:00:00 public → encrypt → read 2a19 → disconnect
 *
 * `pair [io] [mitm]` pairs the link at that IO capability (default noInputNoOutput): a passkey we
 * display and a numeric comparison value are listed with the outcome in `pairings` (the comparison is
 * confirmed). `passkey=NNNNNN` is the passkey we type when the peer displays one (Passkey Entry with
 * an input IO capability, e.g. `pair keyboardOnly passkey=123456`); `passkey=peer` in a recording asks
 * the recorder (`onPasskeyRequest`, which reads it off the peer's display) and writes the six digits
 * typed into the step, so the stored steps replay the same input. A read or write
 * the peer refuses with Insufficient Authentication / Encryption pairs on demand; `paired` then lists that
 * pairing. `encrypt` encrypts the link from the bond made earlier in the session (bonds are kept in
 * memory) and lists the link's security. `find <name=NAME|address> [ms]` scans until that device is
 * heard (an address may be a bonded identity whose RPA resolves) and lists it in `found`; `connect found`
 * connects to it as heard. `peer <word> <ms>` is a point where the peer's side acts out of band (e.g.
 * BlueZ power-cycles and takes a new RPA): a recording runs `onPeerAction(word)` there, a replay nothing;
 * either way the step lasts `ms` on the session clock, so the replay's timing matches the recording.
 * `forget` removes our bond with the last peer connected (Adapter.removeBond). A step ending in
 * `refused` (`read <target> refused`, `pair … refused`, `encrypt refused`, `paired refused`) must fail,
 * and what refused it is listed in `refusals`: the ATT error (the read's on-demand pairing is off for
 * it), the Pairing Failed reason and its sender (Vol 3, Part H, 3.5.5), or the controller's status (e.g.
 * 0x06 PIN or Key Missing when the peer lost the key); a refused step that succeeds fails the session.
 * `pair … signing` also asks for CSRKs (Signing Information, Vol 3, Part H, 3.6.6); a served write that
 * came as a verified Signed Write Command (Vol 3, Part F, 3.4.5.4) is listed with `signed: true`;
 * `write <target> <hex> signed` sends one with our CSRK, and `… signed counter=N` / `flip=B` one the peer
 * must drop (SignCounter N, a replay; bit B of the signature inverted). With
 * the session option `privacy` we use RPAs of our own IRK (both seeded with pairingSeed) and `rotate`
 * takes a new one (Vol 3, Part C, 10.7.1.2); `rpas` lists them.
 *
 * L2CAP LE credit-based channels (Vol 3, Part A, 4.22-4.24) on the link, either role:
 *
 *   open-channel 0x81 1000 100 4 → send-sdu 0102 → send-sdu 300:7 → close-channel →
 *   listen 0x85 700 50 2 → accept-channel → receive-sdu 4 → send-sdu 600:85 → wait-channel-close
 *
 * `open-channel` / `listen` take the PSM and optionally our MTU, MPS and initial credits; `send-sdu`
 * takes hex or `<length>:<seed>` (octet i is (7i + seed) & 0xff); `receive-sdu N` reads N SDUs;
 * `close-channel` disconnects it, `wait-channel-close` waits for the peer to. Results: `channels`, what
 * each channel was (who opened it, the peer's MTU, MPS and initial credits), the lengths of the SDUs
 * sent, the SDUs received (hex) and who closed it.
 *
 * `serve` takes a database file (src/tooling/database-file.ts shapes, resolved against `baseDir`, the
 * scenario's folder) read synchronously, so a replay's virtual time never waits on real I/O; reads and
 * writes the central makes are answered from the file's values (a write replaces the value) and listed
 * in the results (`served`) in the order they came.
 *
 * Steps are separated by "→" or "->" (or given as an array). Everything goes through blewire's public
 * API (Adapter, Connection, GattClient), with timers on the clock of the transport, so a replay
 * re-runs a recorded session faithfully. Results hold only what a user sees: devices found, the
 * discovered tree with handles and properties, values read, notifications received, the disconnect
 * reason. Values and UUIDs are strings (hex / canonical UUIDs) so they compare as JSON.
 */
import { systemClock, type Clock } from '../clock.js';
import { toHex, fromHex } from '../bytes/hex.js';
import { Adapter } from '../api/adapter.js';
import type { Connection } from '../api/connection.js';
import { GattClient } from '../gatt/client.js';
import { attSignature } from '../gatt/procedures.js';
import type { GattCharacteristic, GattService } from '../gatt/model.js';
import type { HciTransport } from '../transport/types.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ArgumentError, AttError, HciStatusError, InvalidStateError, SmpError, TimeoutError } from '../errors.js';
import type { GattServer, ServedCharacteristic, ServedService, SubscriptionChange } from '../gatt/server/server.js';
import { parseDatabase, servedCharacteristicFields, servedDescriptorFields, servedServiceFields } from './database-file.js';
import { MAX_DATABASE_FILE_BYTES } from './database-file.js';
import { seededIrk, seededPairingEntropy } from './entropy.js';
import { MemoryBondStore } from '../smp/bonds.js';
import { IO_CAPABILITY_NAMES, type IoCapabilityName, type PairingPolicy, type PairingProgress } from '../link/pairing.js';
import type { Advertisement } from '../gap/scanner.js';
import type { ChannelListener, CreditChannel } from '../l2cap/coc.js';

export type SessionStep =
  | { op: 'scan'; ms: number; active: boolean }
  | { op: 'connect'; address: string; addressType: 'public' | 'random' }
  | { op: 'mtu' }
  | { op: 'discover' }
  // `refused`: the step must fail with the peer's (or the controller's) refusal, listed in `refusals`.
  | { op: 'read'; target: string; refused?: true }
  // `signed`: a Signed Write Command with our CSRK (Vol 3, Part F, 3.4.5.4; conn.signedWrite, unencrypted links).
  // `counter` / `flip`: one the peer must drop, to test it: signed with that SignCounter (a replay; the
  // bond's counter is not used up), or with bit `flip` (0-95) of the 12-octet signature inverted.
  | { op: 'write'; target: string; value: string; withResponse: boolean; signed?: true; counter?: number; flip?: number }
  | { op: 'notify'; target: string; count: number }
  | { op: 'wait'; ms: number }
  | { op: 'disconnect' }
  // Peripheral role (Vol 3, Part C, 9.3 / Vol 6, Part B, 4.4.2): we serve and advertise, the peer connects.
  | { op: 'serve'; file: string }
  | { op: 'advertise'; name: string; services: string[] }
  | { op: 'accept' }
  | { op: 'subscribed'; target: string }
  | { op: 'send-notification'; target: string; value: string }
  | { op: 'send-indication'; target: string; value: string }
  | { op: 'wait-disconnect' }
  | { op: 'paired'; refused?: true }
  | { op: 'encrypted' }
  | { op: 'pairing-io'; io: SessionIo }
  // Central-role security (Vol 3, Part H, 2.3 / Vol 3, Part C, 10.2).
  | { op: 'pair'; io?: IoCapabilityName; mitm: boolean; signing?: true; passkey?: string; refused?: true }
  | { op: 'encrypt'; refused?: true }
  // We remove our bond with the last peer connected (Adapter.removeBond); its link, if up, stays up.
  | { op: 'forget' }
  | { op: 'find'; target: { name: string } | { address: string }; ms: number }
  | { op: 'peer'; action: string; ms: number }
  // Our own privacy (session option `privacy`): take a new RPA now (Vol 3, Part C, 10.7.1.2).
  | { op: 'rotate' }
  // L2CAP LE credit-based channels (Vol 3, Part A, 4.22-4.24).
  | { op: 'open-channel'; psm: number; mtu?: number; mps?: number; credits?: number }
  // `security`: what the listener asks of the link (else 0x0008 / 0x0005, Vol 3, Part A, 4.23).
  | { op: 'listen'; psm: number; mtu?: number; mps?: number; credits?: number; security?: 'encrypted' | 'authenticated' }
  | { op: 'accept-channel' }
  | { op: 'send-sdu'; value: string }
  | { op: 'receive-sdu'; count: number }
  | { op: 'close-channel' }
  | { op: 'wait-channel-close' };

/**
 * Our IO capability for pairings the peer starts (Vol 3, Part H, 2.3.2): `displayOnly` shows a passkey
 * (Passkey Entry, the peer types it), `displayYesNo` accepts Numeric Comparison. What was shown is in
 * the results (`passkeys`, `comparisons`); with the scenario's pairingSeed it is the same in a replay.
 */
export type SessionIo = 'noInputNoOutput' | 'displayOnly' | 'displayYesNo';
const SESSION_IOS: readonly SessionIo[] = ['noInputNoOutput', 'displayOnly', 'displayYesNo'];

export interface ScannedDevice {
  address: string;
  addressType: string;
  name?: string;
  connectable: boolean;
  data: string;
  scanResponse?: string;
}

export interface DescriptorResult { uuid: string; handle: number }
export interface CharacteristicResult {
  uuid: string;
  declHandle: number;
  handle: number;
  properties: string[];
  descriptors: DescriptorResult[];
}
export interface ServiceResult {
  uuid: string;
  primary: boolean;
  start: number;
  end: number;
  characteristics: CharacteristicResult[];
}

export interface SessionResult {
  /** Controller facts the host read at init. */
  controller: { address: string; leAclBuffers: { length: number; count: number } };
  /** Unique devices heard, in the order first heard. */
  scan?: ScannedDevice[];
  connection?: { address: string; addressType: string; role: string; intervalMs: number };
  mtu?: number;
  services?: ServiceResult[];
  reads?: Array<{ target: string; value: string }>;
  /** `signed`: sent as a Signed Write Command (nothing comes back: whether the peer took it shows in a later read); `counter` / `flip` as in the step. */
  writes?: Array<{ target: string; value: string; signed?: true; counter?: number; flip?: number }>;
  notifications?: Array<{ target: string; values: string[] }>;
  disconnect?: { code: number; name: string };
  /**
   * `paired` and `pair` steps: each pairing's outcome (Vol 3, Part H, 2.3), in order; a `pair` step adds the
   * passkey we displayed or the numeric comparison value shown (2.3.5.6.2 / 2.3.5.6.3), when there was one.
   */
  pairings?: Array<{ method: string; secureConnections: boolean; authenticated: boolean; bonded: boolean; keySize: number;
    passkey?: number; comparison?: number; typed?: string }>;
  /** Passkeys we displayed (six digits) and Numeric Comparison values we accepted, after `pairing-io`. */
  passkeys?: string[];
  comparisons?: string[];
  /** `find` steps: the device heard (its identity when a bond's IRK resolved its address). */
  found?: Array<{ address: string; addressType: string; identity?: { address: string; addressType: string }; bonded: boolean }>;
  /**
   * Steps marked `refused`, in order: what refused them. `EATT`: the ATT error (Vol 3, Part F, 3.4.1.1),
   * `ESMP`: the Pairing Failed reason (Vol 3, Part H, 3.5.5) and who sent it, `EHCISTATUS`: the
   * controller's status (Vol 1, Part F), e.g. 0x06 PIN or Key Missing when the peer lost its key.
   */
  refusals?: Array<{ op: string; code: string; status: number; name: string; by?: string }>;
  /** `encrypted` and `encrypt` steps: the link's security once encrypted (Vol 3, Part C, 10.2.1). */
  security?: Array<{ level: number; encrypted: boolean; keySize: number; authenticated: boolean; secureConnections: boolean; bonded: boolean }>;
  /** Our own privacy: the RPAs we took, in order (at open, then each `rotate`'s; Vol 6, Part B, 1.3.2.2). */
  rpas?: string[];
  /** Channel steps: each credit-based channel, in the order opened or accepted. */
  channels?: Array<{ psm: number; openedBy: 'us' | 'peer'; peerMtu: number; peerMps: number; peerCredits: number;
    sent: number[]; received: string[]; closedBy?: string }>;
  /** Peripheral steps: what the central did to the database we served, in order. */
  served?: {
    reads: Array<{ target: string; offset: number; value: string }>;
    /** `signed`: a Signed Write Command (Vol 3, Part F, 3.4.5.4) whose signature and SignCounter verified with the client's CSRK. */
    writes: Array<{ target: string; value: string; command: boolean; signed?: true }>;
    subscriptions: Array<{ target: string; notifications: boolean; indications: boolean }>;
    notified: Array<{ target: string; value: string; indication: boolean; delivered: number }>;
  };
}

/** Parse "scan 2000 → connect … → discover" (or an array of step strings). */
export function parseSteps(script: string | string[]): SessionStep[] {
  const parts = Array.isArray(script) ? script : script.split(/\s*(?:→|->)\s*/);
  return parts.map(s => s.trim()).filter(s => s.length > 0).map(parseStep);
}

const HEX = /^([0-9a-f]{2})*$/i;
const WRITE_USAGE = 'write <uuid|handle> <hex> [cmd|signed [counter=<n>] [flip=<bit 0-95>]]';

/**
 * The step language, one row per step: its syntax (for messages), how its words parse, how it is
 * written back. parseSteps and formatSteps are driven by this table only.
 */
interface StepSyntax<S extends { op: string }> {
  usage: string;
  parse(args: string[], bad: (what: string) => never, num: (v: string | undefined, what: string) => number): S;
  format?(step: S): string;
}
type StepTable = { [K in SessionStep['op']]: StepSyntax<Extract<SessionStep, { op: K }>> };

const bare = <K extends 'mtu' | 'discover' | 'disconnect' | 'accept' | 'wait-disconnect' | 'encrypted' | 'forget' | 'rotate'
  | 'accept-channel' | 'close-channel' | 'wait-channel-close'>(op: K): StepSyntax<{ op: K }> =>
  ({ usage: op, parse: () => ({ op }) });

const STEPS: StepTable = {
  scan: {
    usage: 'scan <ms> [passive]',
    parse: (a, _bad, num) => ({ op: 'scan', ms: num(a[0], 'the scan time (ms)'), active: a[1] !== 'passive' }),
    format: s => `scan ${s.ms}${s.active ? '' : ' passive'}`,
  },
  connect: {
    usage: 'connect <address> [public|random] | connect found',
    parse: (a, bad) => {
      if (a[0] === 'found' && a.length === 1) return { op: 'connect', address: 'found', addressType: 'random' };
      if (!a[0] || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(a[0])) bad('connect needs an address (or found)');
      const t = a[1] ?? 'random';
      if (t !== 'public' && t !== 'random') return bad('address type is public or random');
      return { op: 'connect', address: a[0]!.toUpperCase(), addressType: t };
    },
    format: s => (s.address === 'found' ? 'connect found' : `connect ${s.address} ${s.addressType}`),
  },
  mtu: bare('mtu'),
  discover: bare('discover'),
  disconnect: bare('disconnect'),
  read: {
    usage: 'read <uuid|0xhandle> [refused]',
    parse: (a, bad) => (a[0] && (a.length === 1 || (a.length === 2 && a[1] === 'refused'))
      ? { op: 'read', target: a[0], ...(a[1] ? { refused: true as const } : {}) } : bad('read <uuid|0xhandle> [refused]')),
    format: s => `read ${s.target}${s.refused ? ' refused' : ''}`,
  },
  write: {
    usage: WRITE_USAGE,
    parse: (a, bad) => {
      if (!a[0] || !a[1] || !HEX.test(a[1]) || (a[2] !== undefined && a[2] !== 'cmd' && a[2] !== 'signed')) return bad(WRITE_USAGE);
      if (a[2] !== 'signed') {
        if (a.length > 3) return bad(WRITE_USAGE);
        return { op: 'write', target: a[0], value: a[1].toLowerCase(), withResponse: a[2] === undefined };
      }
      const extra: { counter?: number; flip?: number } = {};
      for (const w of a.slice(3)) {
        const m = /^(counter|flip)=(\d{1,10})$/.exec(w);
        const n = m ? Number(m[2]) : NaN;
        if (!m || extra[m[1] as 'counter' | 'flip'] !== undefined || n > (m[1] === 'counter' ? 0xffffffff : 95)) return bad(WRITE_USAGE);
        extra[m[1] as 'counter' | 'flip'] = n;
      }
      return { op: 'write', target: a[0], value: a[1].toLowerCase(), withResponse: false, signed: true as const, ...extra };
    },
    format: s => `write ${s.target} ${s.value}${s.signed ? ' signed' : s.withResponse ? '' : ' cmd'}`
      + `${s.counter !== undefined ? ` counter=${s.counter}` : ''}${s.flip !== undefined ? ` flip=${s.flip}` : ''}`,
  },
  notify: {
    usage: 'notify <uuid> <count>',
    parse: (a, bad, num) => (a[0] ? { op: 'notify', target: a[0], count: num(a[1], 'the notification count') } : bad('notify <uuid> <count>')),
    format: s => `notify ${s.target} ${s.count}`,
  },
  wait: {
    usage: 'wait <ms>',
    parse: (a, _bad, num) => ({ op: 'wait', ms: num(a[0], 'the wait (ms)') }),
    format: s => `wait ${s.ms}`,
  },
  serve: {
    usage: 'serve <database.json>',
    parse: (a, bad) => (a[0] && a.length === 1 ? { op: 'serve', file: a[0] } : bad('serve <database.json> (one file, relative to the scenario)')),
    format: s => `serve ${s.file}`,
  },
  advertise: {
    usage: 'advertise <name> [uuid...]',
    parse: (a, bad) => (a[0] ? { op: 'advertise', name: a[0], services: a.slice(1) } : bad('advertise <name> [service uuid...]')),
    format: s => ['advertise', s.name, ...s.services].join(' '),
  },
  accept: bare('accept'),
  subscribed: {
    usage: 'subscribed <uuid>',
    parse: (a, bad) => (a[0] ? { op: 'subscribed', target: a[0] } : bad('subscribed <characteristic uuid>')),
    format: s => `subscribed ${s.target}`,
  },
  'send-notification': {
    usage: 'send-notification <uuid> <hex>',
    parse: (a, bad) => (a[0] && a[1] && HEX.test(a[1]) ? { op: 'send-notification', target: a[0], value: a[1].toLowerCase() } : bad('send-notification <uuid> <hex>')),
    format: s => `send-notification ${s.target} ${s.value}`,
  },
  'send-indication': {
    usage: 'send-indication <uuid> <hex>',
    parse: (a, bad) => (a[0] && a[1] && HEX.test(a[1]) ? { op: 'send-indication', target: a[0], value: a[1].toLowerCase() } : bad('send-indication <uuid> <hex>')),
    format: s => `send-indication ${s.target} ${s.value}`,
  },
  'wait-disconnect': bare('wait-disconnect'),
  paired: {
    usage: 'paired [refused]',
    parse: (a, bad) => (a.length === 0 ? { op: 'paired' } : a.length === 1 && a[0] === 'refused' ? { op: 'paired', refused: true } : bad('paired [refused]')),
    format: s => `paired${s.refused ? ' refused' : ''}`,
  },
  encrypted: bare('encrypted'),
  'pairing-io': {
    usage: `pairing-io <${SESSION_IOS.join('|')}>`,
    parse: (a, bad) => (a[0] && a.length === 1 && (SESSION_IOS as readonly string[]).includes(a[0])
      ? { op: 'pairing-io', io: a[0] as SessionIo } : bad(`pairing-io <${SESSION_IOS.join('|')}>`)),
    format: s => `pairing-io ${s.io}`,
  },
  encrypt: {
    usage: 'encrypt [refused]',
    parse: (a, bad) => (a.length === 0 ? { op: 'encrypt' } : a.length === 1 && a[0] === 'refused' ? { op: 'encrypt', refused: true } : bad('encrypt [refused]')),
    format: s => `encrypt${s.refused ? ' refused' : ''}`,
  },
  forget: bare('forget'),
  rotate: bare('rotate'),
  pair: {
    usage: `pair [${IO_CAPABILITY_NAMES.join('|')}] [mitm] [signing] [passkey=<NNNNNN|peer>] [refused]`,
    parse: (words, bad) => {
      const refused = words[words.length - 1] === 'refused';
      const a = refused ? words.slice(0, -1) : words;
      const typed = a.length > 0 && a[a.length - 1]!.startsWith('passkey=') ? a[a.length - 1]!.slice(8) : undefined;
      if (typed !== undefined && typed !== 'peer' && !/^\d{6}$/.test(typed)) bad('pair: passkey= takes six digits or peer');
      const b = typed !== undefined ? a.slice(0, -1) : a;
      const io = b[0] !== undefined && b[0] !== 'mitm' && b[0] !== 'signing' ? b[0] : undefined;
      if (io !== undefined && !(IO_CAPABILITY_NAMES as readonly string[]).includes(io)) bad(`pair: IO capability is one of ${IO_CAPABILITY_NAMES.join(', ')}`);
      const rest = b.slice(io !== undefined ? 1 : 0);
      // In this order: mitm, then signing (each at most once).
      const mitm = rest[0] === 'mitm';
      const signing = rest[mitm ? 1 : 0] === 'signing';
      if (rest.length !== Number(mitm) + Number(signing)) bad('pair [io] [mitm] [signing] [passkey=<NNNNNN|peer>] [refused]');
      return { op: 'pair', ...(io !== undefined ? { io: io as IoCapabilityName } : {}), mitm, ...(signing ? { signing: true as const } : {}),
        ...(typed !== undefined ? { passkey: typed } : {}), ...(refused ? { refused: true as const } : {}) };
    },
    format: s => ['pair', ...(s.io ? [s.io] : []), ...(s.mitm ? ['mitm'] : []), ...(s.signing ? ['signing'] : []),
      ...(s.passkey !== undefined ? [`passkey=${s.passkey}`] : []), ...(s.refused ? ['refused'] : [])].join(' '),
  },
  find: {
    usage: 'find <name=NAME|address> [ms]',
    parse: (a, bad, num) => {
      const t = a[0];
      if (!t || a.length > 2) return bad('find <name=NAME|address> [ms]');
      const target = t.startsWith('name=') && t.length > 5 ? { name: t.slice(5) }
        : /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(t) ? { address: t.toUpperCase() } : bad('find <name=NAME|address> [ms]');
      return { op: 'find', target, ms: a[1] !== undefined ? num(a[1], 'the scan time (ms)') : 10_000 };
    },
    format: s => `find ${'name' in s.target ? `name=${s.target.name}` : s.target.address} ${s.ms}`,
  },
  peer: {
    usage: 'peer <word> <ms>',
    parse: (a, bad, num) => (a[0] && a.length === 2 && /^[a-z0-9-]{1,40}$/i.test(a[0])
      ? { op: 'peer', action: a[0], ms: num(a[1], 'the peer step\'s time (ms)') } : bad('peer <word> <ms> (letters, digits, -)')),
    format: s => `peer ${s.action} ${s.ms}`,
  },
  'open-channel': channelStep('open-channel'),
  listen: {
    usage: 'listen <psm> [mtu] [mps] [credits] [encrypted|authenticated]',
    parse: (a, bad, num) => {
      const last = a[a.length - 1];
      const security = last === 'encrypted' || last === 'authenticated' ? last : undefined;
      const step = channelStep('listen').parse(security ? a.slice(0, -1) : a, bad, num);
      return security ? { ...step, security } : step;
    },
    format: s => [channelStep('listen').format!(s), ...(s.security ? [s.security] : [])].join(' '),
  },
  'accept-channel': bare('accept-channel'),
  'send-sdu': {
    usage: 'send-sdu <hex>|<length>:<seed>',
    parse: (a, bad) => (a[0] && a.length === 1 && (HEX.test(a[0]) || SDU_PATTERN.test(a[0]))
      ? { op: 'send-sdu', value: a[0].toLowerCase() } : bad('send-sdu <hex>|<length>:<seed>')),
    format: s => `send-sdu ${s.value}`,
  },
  'receive-sdu': {
    usage: 'receive-sdu <count>',
    parse: (a, _bad, num) => ({ op: 'receive-sdu', count: num(a[0], 'the SDU count') }),
    format: s => `receive-sdu ${s.count}`,
  },
  'close-channel': bare('close-channel'),
  'wait-channel-close': bare('wait-channel-close'),
};

/** `<length>:<seed>`: a recognisable SDU of that length, octet i = (7i + seed) & 0xff; at most 65535 octets (Vol 3, Part A, 4.22). */
const SDU_PATTERN = /^(\d{1,5}):(\d{1,3})$/;
function sduOf(value: string): Uint8Array {
  const m = SDU_PATTERN.exec(value);
  if (!m) return fromHex(value);
  const n = Number(m[1]), seed = Number(m[2]);
  if (n > 0xffff || seed > 0xff) throw new ArgumentError(`session: send-sdu ${value}: at most 65535 octets and a seed of 0-255`);
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
}

/** Who ended a channel (ChannelClosedError.by), when it was a close. */
function closedBy(ch: CreditChannel): string | undefined {
  const e = ch.closedError as { by?: unknown } | undefined;
  return typeof e?.by === 'string' ? e.by : undefined;
}

/** open-channel / listen: `<psm> [mtu] [mps] [credits]`, the PSM in decimal or 0x hex. */
type ChannelOpenStep = Extract<SessionStep, { op: 'open-channel' | 'listen' }>;
function channelStep<K extends 'open-channel' | 'listen'>(op: K): StepSyntax<Extract<SessionStep, { op: K }>> {
  return {
    usage: `${op} <psm> [mtu] [mps] [credits]`,
    parse: (a, bad, num) => {
      const psm = a[0] && /^0x[0-9a-f]{1,4}$/i.test(a[0]) ? Number(a[0]) : a[0] && /^\d+$/.test(a[0]) ? Number(a[0]) : bad(`${op} <psm> [mtu] [mps] [credits]`);
      const [mtu, mps, credits] = [a[1], a[2], a[3]].map((v, i) => (v === undefined ? undefined : num(v, ['the MTU', 'the MPS', 'the credits'][i]!)));
      return { op, psm, ...(mtu !== undefined ? { mtu } : {}), ...(mps !== undefined ? { mps } : {}), ...(credits !== undefined ? { credits } : {}) } as Extract<SessionStep, { op: K }>;
    },
    format: (s: ChannelOpenStep) => [op, `0x${s.psm.toString(16)}`, ...[s.mtu, s.mps, s.credits].filter(v => v !== undefined)].join(' '),
  };
}

const isOp = (op: string): op is SessionStep['op'] => Object.prototype.hasOwnProperty.call(STEPS, op);

function parseStep(s: string): SessionStep {
  const [op = '', ...args] = s.split(/\s+/);
  const bad = (what: string): never => { throw new ArgumentError(`session step "${s}": ${what}`); };
  const num = (v: string | undefined, what: string): number => {
    if (v === undefined || !/^\d+$/.test(v)) bad(`${what} must be a number`);
    return Number(v);
  };
  if (!isOp(op)) bad(`unknown step (${Object.keys(STEPS).join(', ')})`);
  return (STEPS[op as SessionStep['op']] as StepSyntax<SessionStep>).parse(args, bad, num);
}

/** Render steps back to the one-line form stored in scenario files. */
export function formatSteps(steps: SessionStep[]): string {
  return steps.map(s => {
    const row = STEPS[s.op] as StepSyntax<SessionStep>;
    return row.format ? row.format(s) : s.op;
  }).join(' → ');
}

export interface RunSessionOptions {
  transport: HciTransport;
  /** Default: the transport's own clock (simulator, replay), else the system clock. */
  clock?: Clock;
  /** A fixed static random address for the host (LE Set Random Address at init). */
  randomAddress?: string;
  /** Per-operation timeout (ms, default 10 000). */
  timeoutMs?: number;
  /**
   * How long the peripheral steps wait for the peer (accept, subscribed, wait-disconnect; ms, default
   * 300 000: a central in an emulator may take a minute to scan, connect and discover).
   */
  peerTimeoutMs?: number;
  /** Where `serve` finds its database file (default the working directory). */
  baseDir?: string;
  /**
   * TESTS AND REPLAY ONLY: draw pairing's random values and key pairs from this seed
   * (src/tooling/entropy.ts), so a recorded pairing replays byte for byte.
   */
  pairingSeed?: string;
  /** Told each passkey we display after `pairing-io displayOnly` (a recorder hands it to the peer's user). */
  onPasskeyDisplay?: (passkey: string) => void;
  /** Told each Numeric Comparison value we accept after `pairing-io displayYesNo`. */
  onNumericComparison?: (value: string) => void;
  /**
   * RECORDING: a `pair … passkey=peer` step asks for the passkey the peer displays (the recorder reads it
   * off the peer's side); the digits typed are written into the step. A replay passes none.
   */
  onPasskeyRequest?: () => Promise<string | number>;
  /** RECORDING: the peer's side acts at a `peer <word>` step (resolve when done). A replay passes none. */
  onPeerAction?: (action: string) => Promise<void>;
  /**
   * Our own LE privacy (Adapter `privacy`, Vol 3, Part C, 10.7): we scan, initiate and advertise from
   * resolvable private addresses of our IRK, and bonding gives the peer our IRK and our identity
   * (`randomAddress`, which privacy needs). With `pairingSeed` the IRK (src/tooling/entropy.ts
   * seededIrk) and every RPA's prand come from the seed (tests and replay only), so the replay sends the
   * recorded LE Set Random Address commands. Our addresses are listed in the results (`rpas`).
   */
  privacy?: boolean;
  /** RECORDING: told each RPA of ours as it is taken (at open, then at each `rotate`), so the peer's side can reach us. */
  onAddress?: (rpa: string) => void;
  /** RECORDING: told each step as it starts (a recorder keeps the peer's side in step with ours). */
  onStep?: (step: SessionStep) => void;
}

/**
 * How often a `connect` step tries when the controller reports Connection Failed to be Established
 * (0x3E): btvirt gives that for a peer that is between two of its advertisements (BlueZ re-advertises
 * a moment after a disconnection). The tries are in the recording, so a replay makes the same ones.
 */
const CONNECT_TRIES = 5;
const CONNECT_RETRY_MS = 500;

/** The served database: the file's values (writes replace them) with every access listed. */
interface Served {
  server: GattServer<Connection>;
  services: Array<{ uuid: string; characteristics: Array<{ uuid: string; properties: string[] }> }>;
  subscriptions: SubscriptionChange<Connection>[];
  /** Woken at every subscription change. */
  changed: Set<() => void>;
}

/** The database file of a `serve` step: read synchronously and bounded (a replay must not wait on I/O). */
function readDatabase(path: string): ReturnType<typeof parseDatabase> {
  const text = readFileSync(path);
  if (text.length > MAX_DATABASE_FILE_BYTES) throw new ArgumentError(`session: ${path} is larger than ${MAX_DATABASE_FILE_BYTES} octets`);
  let root: unknown;
  try {
    root = JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new ArgumentError(`session: ${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parseDatabase(root, { file: path });
}

/** Short form of a UUID as steps name it: 2a37 for a SIG 16-bit UUID, else the full form. */
function shortUuid(uuid: string): string {
  return /^0000[0-9a-f]{4}-0000-1000-8000-00805f9b34fb$/.test(uuid) ? uuid.slice(4, 8) : uuid;
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise(resolve => clock.setTimeout(resolve, ms));
}

/** Run the steps on a fresh Adapter over `transport`, closing it at the end (also on failure). */
export async function runSession(steps: SessionStep[] | string, options: RunSessionOptions): Promise<SessionResult> {
  const list = typeof steps === 'string' ? parseSteps(steps) : steps;
  const clock = options.clock ?? options.transport.clock ?? systemClock;
  const timeout = options.timeoutMs ?? 10_000;
  let bonds: MemoryBondStore | false = false;
  if (options.privacy) {
    if (options.randomAddress === undefined) throw new ArgumentError('session: privacy needs randomAddress (our identity address)');
    bonds = new MemoryBondStore();
    if (options.pairingSeed !== undefined) await bonds.saveLocalIdentity({ irk: seededIrk(options.pairingSeed), staticAddress: options.randomAddress });
  }
  const adapter = await Adapter.open({
    transport: options.transport, clock,
    // Bonds in memory: a recorded session must not depend on (or write to) the user's bond directory,
    // whose reading is real I/O that a replay's virtual time does not wait for.
    bonds,
    ...(options.privacy ? { privacy: true } : {}),
    ...(options.randomAddress !== undefined ? { randomAddress: options.randomAddress } : {}),
    ...(options.pairingSeed !== undefined ? { pairingEntropy: seededPairingEntropy(options.pairingSeed) } : {}),
  });
  const info = adapter.controller;
  const result: SessionResult = {
    controller: { address: info.address ?? '', leAclBuffers: { length: info.acl.length, count: info.acl.count } },
  };
  if (adapter.privacy) {
    result.rpas = [adapter.privacy.address];
    options.onAddress?.(adapter.privacy.address);
  }
  let conn: Connection | undefined;
  let gatt: GattClient | undefined;
  let tree: GattService[] | undefined;
  /** The last peer connected (either role): whose bond `forget` removes. */
  let lastPeer: { address: string; type: 'public' | 'random' } | undefined;
  /** The pairing policy set by `pairing-io` (a `read … refused` turns the on-demand retry off for itself). */
  let policy: PairingPolicy = {};
  /** A `… refused` step: run it, it must fail with a refusal; list it. */
  const refusedBy = async (op: string, run: () => Promise<unknown>): Promise<void> => {
    const e = await run().then(() => undefined, (x: unknown) => x);
    const r: NonNullable<SessionResult['refusals']>[number] =
      e instanceof AttError ? { op, code: e.code, status: e.errorCode, name: e.errorName }
      : e instanceof SmpError ? { op, code: e.code, status: e.reason, name: e.reasonName, by: e.by }
      : e instanceof HciStatusError ? { op, code: e.code, status: e.status, name: e.statusName }
      : e === undefined ? ((): never => { throw new InvalidStateError(`session: "${op}" was to be refused and succeeded`); })()
      : ((): never => { throw e; })();
    (result.refusals ??= []).push(r);
  };
  const need = (what: string): { conn: Connection; gatt: GattClient } => {
    if (!conn || !gatt) throw new InvalidStateError(`session: "${what}" needs a connection first`);
    return { conn, gatt };
  };
  const peerTimeout = options.peerTimeoutMs ?? 300_000;
  let served: Served | undefined;
  const out = (): NonNullable<SessionResult['served']> => (result.served ??= { reads: [], writes: [], subscriptions: [], notified: [] });
  const serving = (what: string): Served => {
    if (!served) throw new InvalidStateError(`session: "${what}" needs a served database first (serve <file>)`);
    return served;
  };
  /** Resolve when `done()` holds, checked now and at each `wake`; bounded by the peer timeout on the session clock. */
  /** Cancellers of the waits in progress (their timers), run when the session ends. */
  const waits = new Set<() => void>();
  const until = (what: string, done: () => boolean, wake: Set<() => void>): Promise<void> => new Promise((res, rej) => {
    if (done()) { res(); return; }
    const check = (): void => {
      if (!done()) return;
      finish();
      res();
    };
    const timer = clock.setTimeout(() => { finish(); rej(new TimeoutError('gatt', what, peerTimeout)); }, peerTimeout);
    const finish = (): void => { clock.clearTimeout(timer); wake.delete(check); waits.delete(finish); };
    waits.add(finish);
    wake.add(check);
  });
  const incoming = adapter.accept();
  const disconnected = new Set<() => void>();
  /** Pairing outcomes of the accepted link not yet taken by a `paired` step (bounded: one per pairing the peer starts). */
  const outcomes: PairingProgress[] = [];
  const secured = new Set<() => void>();
  /** The channel the channel steps act on, and its entry in the results. */
  let channel: { ch: CreditChannel; out: NonNullable<SessionResult['channels']>[number] } | undefined;
  let listener: ChannelListener | undefined;
  /**
   * `write … signed counter=N / flip=B`: a Signed Write Command a correct peer drops, to test it. Our
   * CSRK from the bond; SignCounter N (a replay or a stale counter), else the bond's next one, which is
   * not used up; bit B of the signature (SignCounter ‖ MAC as sent, Vol 3, Part H, 2.4.5) inverted.
   */
  const signedToDrop = async (handle: number, value: Uint8Array, counter: number | undefined, flip: number | undefined): Promise<void> => {
    const { conn: c, gatt: g } = need('write');
    if (c.security.encrypted) throw new InvalidStateError('session: a signed write goes over an unencrypted link only (Vol 3, Part C, 10.4)');
    const peer = c.identity?.address ?? c.address;
    const bond = (await adapter.bonds()).find(b => b.identity.address === peer);
    if (!bond?.localCsrk) throw new InvalidStateError(`session: no bond with ${peer} holds a CSRK of ours (pair signing first)`);
    const signature = attSignature(bond.localCsrk, Uint8Array.of(0xd2, handle & 0xff, handle >> 8), value, counter ?? bond.localSignCounter ?? 0);
    if (flip !== undefined) signature[flip >> 3] = signature[flip >> 3]! ^ (1 << (flip & 7));
    await g.bearer.command({ kind: 'signedWriteCmd', handle, value, authenticationSignature: signature });
  };
  const needChannel = (what: string): NonNullable<typeof channel> => {
    if (!channel) throw new InvalidStateError(`session: "${what}" needs a channel first (open-channel or accept-channel)`);
    return channel;
  };
  const track = (ch: CreditChannel, psm: number, openedBy: 'us' | 'peer'): void => {
    const out = { psm, openedBy, peerMtu: ch.mtu, peerMps: ch.peerMps, peerCredits: ch.credits, sent: [] as number[], received: [] as string[] };
    (result.channels ??= []).push(out);
    channel = { ch, out };
  };
  let lastDisconnect: { code: number; name: string } | undefined;
  /** The device of the last `find` step. */
  let found: Advertisement | undefined;
  /** Follow a new link (accepted or made): its disconnection, its pairings' outcomes, its security. */
  const watch = (c: Connection): void => {
    c.on('disconnect', reason => {
      lastDisconnect = { code: reason.code, name: reason.name };
      for (const w of [...disconnected, ...secured]) w();
    });
    outcomes.length = 0;
    c.on('pairing', p => {
      if (p.stage !== 'paired' && p.stage !== 'failed') return;
      if (outcomes.length < 16) outcomes.push(p);
      for (const w of [...secured]) w();
    });
    c.on('security', () => { for (const w of [...secured]) w(); });
  };
  const characteristic = async (target: string): Promise<GattCharacteristic | number> => {
    if (/^0x[0-9a-f]{1,4}$/i.test(target)) return Number(target);
    const { gatt: g } = need(target);
    tree ??= await g.services({ timeout });
    const want = target.toLowerCase();
    for (const s of tree) {
      for (const c of s.characteristics) {
        if (c.uuid === want || c.uuid.startsWith(`0000${want}-`) || c.uuid.slice(4, 8) === want) return c;
      }
    }
    throw new ArgumentError(`session: no characteristic ${target} in the discovered database`);
  };
  // The transport may end under a step that waits on the session clock (a replay that diverged stops
  // its clock): every step races the adapter's closure, so a session never outlives its transport.
  let onClose: ((e: Error | undefined) => void) | undefined;
  const gone = new Promise<never>((_, reject) => {
    onClose = e => reject(e ?? new InvalidStateError('session: the adapter closed under the session'));
    adapter.on('close', onClose);
  });
  gone.catch(() => undefined);
  const runStep = async (step: SessionStep): Promise<void> => {
    switch (step.op) {
      case 'scan': {
        const seen = new Map<string, ScannedDevice>();
        const session = adapter.scan({ active: step.active, timeout: step.ms });
        for await (const ad of session) {
          const key = `${ad.address}/${ad.addressType}`;
          const d: ScannedDevice = {
            address: ad.address, addressType: ad.addressType, connectable: ad.connectable, data: toHex(ad.data),
            ...(ad.name !== undefined ? { name: ad.name } : {}),
            ...(ad.scanResponse ? { scanResponse: toHex(ad.scanResponse) } : {}),
          };
          seen.set(key, { ...seen.get(key), ...d });
        }
        result.scan = [...seen.values()];
        break;
      }
      case 'connect': {
        if (step.address === 'found' && !found) throw new InvalidStateError('session: "connect found" needs a find step first');
        const target = step.address === 'found' ? found! : { address: step.address, addressType: step.addressType };
        for (let attempt = 1; ; attempt++) {
          try {
            conn = await adapter.connect(target, { timeout });
            break;
          } catch (e) {
            if (!(e instanceof HciStatusError && e.status === 0x3e) || attempt >= CONNECT_TRIES) throw e;
            await sleep(clock, CONNECT_RETRY_MS);
          }
        }
        const c = conn;
        gatt = c.gatt;
        watch(c);
        result.connection = { address: c.address, addressType: c.addressType, role: c.role, intervalMs: c.parameters.interval };
        lastPeer = { address: c.address, type: c.addressType === 'public' ? 'public' : 'random' };
        break;
      }
      case 'forget': {
        if (!lastPeer) throw new InvalidStateError('session: "forget" needs a peer connected earlier');
        if (!(await adapter.removeBond(lastPeer))) throw new InvalidStateError(`session: no bond with ${lastPeer.address} to forget`);
        break;
      }
      case 'find': {
        const ad = await adapter.find({ ...step.target, timeout: step.ms });
        if (!ad) throw new TimeoutError('gap', `find ${'name' in step.target ? step.target.name : step.target.address}`, step.ms);
        found = ad;
        (result.found ??= []).push({ address: ad.address, addressType: ad.addressType,
          ...(ad.identity ? { identity: { address: ad.identity.address, addressType: ad.identity.addressType } } : {}), bonded: ad.bonded });
        break;
      }
      case 'pair': {
        const { conn: c } = need('pair');
        const shown: { passkey?: number; comparison?: number; typed?: string } = {};
        if (step.refused) {
          await refusedBy('pair', () => c.pair({ ...(step.io !== undefined ? { io: step.io } : {}), ...(step.mitm ? { mitm: true } : {}),
            ...(step.signing ? { signing: true } : {}), timeout: peerTimeout }));
          break;
        }
        await c.pair({
          ...(step.io !== undefined ? { io: step.io } : {}), ...(step.mitm ? { mitm: true } : {}), ...(step.signing ? { signing: true } : {}), timeout: peerTimeout,
          onPasskeyDisplay: n => { shown.passkey = n; options.onPasskeyDisplay?.(String(n).padStart(6, '0')); },
          onNumericComparison: v => { shown.comparison = v; return true; },
          onPasskeyRequest: async () => {
            if (step.passkey === undefined) throw new ArgumentError('session: the peer wants a passkey typed: give the pair step passkey=NNNNNN (or passkey=peer when recording)');
            if (step.passkey === 'peer') {
              if (!options.onPasskeyRequest) throw new ArgumentError('session: passkey=peer needs a recorder that reads the peer\'s display (onPasskeyRequest)');
              const typed = String(await options.onPasskeyRequest()).padStart(6, '0');
              if (!/^\d{6}$/.test(typed)) throw new ArgumentError(`session: the passkey read off the peer is not six digits: ${typed}`);
              step.passkey = typed; // stored with the steps: the replay types the same digits
            }
            shown.typed = step.passkey;
            return Number(step.passkey);
          },
        });
        await until('the pairing\'s outcome', () => outcomes.length > 0 || !c.connected, secured);
        const p = outcomes.shift();
        if (p?.stage !== 'paired') throw p?.stage === 'failed' ? p.error : new InvalidStateError('session: the link closed before the pairing ended');
        (result.pairings ??= []).push({ method: p.method, secureConnections: p.secureConnections, authenticated: p.authenticated, bonded: p.bonded,
          keySize: p.keySize, ...shown });
        break;
      }
      case 'encrypt': {
        const { conn: c } = need('encrypt');
        if (step.refused) {
          await refusedBy('encrypt', () => c.encrypt({ timeout: peerTimeout }));
          break;
        }
        const st = await c.encrypt({ timeout: peerTimeout });
        (result.security ??= []).push({ level: st.level, encrypted: st.encrypted, keySize: st.keySize, authenticated: st.authenticated,
          secureConnections: st.secureConnections, bonded: st.bonded });
        break;
      }
      case 'peer': {
        // The step takes exactly `ms` on the session clock, recorded or replayed: the recording's action
        // runs in real time inside it (and must end within it), the replay just waits.
        const started = clock.now();
        await options.onPeerAction?.(step.action);
        const left = step.ms - (clock.now() - started);
        if (left < 0) throw new TimeoutError('gap', `peer ${step.action}`, step.ms);
        await sleep(clock, left);
        break;
      }
      case 'rotate': {
        const p = adapter.privacy;
        if (!p) throw new InvalidStateError('session: "rotate" needs our privacy (the session option privacy)');
        const rpa = await p.rotate();
        (result.rpas ??= []).push(rpa);
        options.onAddress?.(rpa);
        break;
      }
      case 'mtu':
        result.mtu = await need('mtu').gatt.exchangeMtu({ timeout });
        break;
      case 'discover':
        tree = await need('discover').gatt.services({ timeout });
        result.services = tree.map(serviceResult);
        break;
      case 'read': {
        const c = await characteristic(step.target);
        if (step.refused) {
          // The refusal itself, not the pairing the ATT security errors start by default (Vol 3, Part C, 10.3.2).
          adapter.setPairingPolicy({ ...policy, retryOnSecurityError: false });
          try {
            await refusedBy('read', () => (typeof c === 'number' ? need('read').gatt.readValue(c, { timeout }) : c.read({ timeout })));
          } finally {
            adapter.setPairingPolicy(policy);
          }
          break;
        }
        const v = typeof c === 'number' ? await need('read').gatt.readValue(c, { timeout }) : await c.read({ timeout });
        (result.reads ??= []).push({ target: step.target, value: toHex(v) });
        break;
      }
      case 'write': {
        const c = await characteristic(step.target);
        const v = fromHex(step.value);
        const handle = typeof c === 'number' ? c : c.handle;
        if (step.signed && (step.counter !== undefined || step.flip !== undefined)) await signedToDrop(handle, v, step.counter, step.flip);
        else if (step.signed) await need('write').conn.signedWrite(handle, v);
        else if (typeof c === 'number') await need('write').gatt.writeValue(c, v, step.withResponse, { timeout });
        else await c.write(v, { withResponse: step.withResponse, timeout });
        (result.writes ??= []).push({ target: step.target, value: step.value, ...(step.signed ? { signed: true as const } : {}),
          ...(step.counter !== undefined ? { counter: step.counter } : {}), ...(step.flip !== undefined ? { flip: step.flip } : {}) });
        break;
      }
      case 'notify': {
        const c = await characteristic(step.target);
        if (typeof c === 'number') throw new ArgumentError('session: notify needs a characteristic UUID');
        const values: string[] = [];
        if (step.count > 0) {
          for await (const v of c.notifications({ timeout })) {
            values.push(toHex(v));
            if (values.length >= step.count) break;
          }
        }
        (result.notifications ??= []).push({ target: step.target, values });
        break;
      }
      case 'wait':
        await sleep(clock, step.ms);
        break;
      case 'disconnect': {
        const r = await need('disconnect').conn.disconnect();
        result.disconnect = { code: r.code, name: r.name };
        conn = undefined;
        gatt = undefined;
        tree = undefined;
        break;
      }
      case 'serve': {
        if (served) throw new InvalidStateError('session: one serve step per session');
        const db = readDatabase(resolve(options.baseDir ?? '.', step.file));
        const values = new Map<string, Uint8Array>();
        // The file's handles where it has them (a twin's captured layout), as `blewire serve` keeps them.
        const services: ServedService<Connection>[] = db.services.map(sv => ({
          ...servedServiceFields(sv),
          characteristics: sv.characteristics.map((c): ServedCharacteristic<Connection> => {
            const target = shortUuid(c.uuid);
            values.set(c.uuid, c.value);
            return {
              ...servedCharacteristicFields(c),
              ...(c.descriptors.length ? { descriptors: c.descriptors.map(servedDescriptorFields) } : {}),
              onRead: req => {
                const v = values.get(c.uuid) ?? new Uint8Array(0);
                out().reads.push({ target, offset: req.offset, value: toHex(v.subarray(req.offset)) });
                return v;
              },
              onWrite: (v, req) => {
                values.set(c.uuid, Uint8Array.from(v));
                out().writes.push({ target, value: toHex(v), command: req.command, ...(req.signed ? { signed: true as const } : {}) });
              },
            };
          }),
        }));
        const server = await adapter.serve(services, { ...(db.name !== undefined ? { name: db.name } : {}), ...(db.appearance !== undefined ? { appearance: db.appearance } : {}),
          ...(db.ownServices ? { ownServices: db.ownServices } : {}) });
        const s: Served = {
          server, subscriptions: [], changed: new Set(),
          services: db.services.map(sv => ({ uuid: sv.uuid, characteristics: sv.characteristics.map(c => ({ uuid: c.uuid, properties: [...c.properties] })) })),
        };
        server.onSubscription(change => {
          s.subscriptions.push(change);
          out().subscriptions.push({ target: shortUuid(change.uuid), notifications: change.notifications, indications: change.indications });
          for (const w of [...s.changed]) w();
        });
        served = s;
        out();
        break;
      }
      case 'advertise':
        await adapter.advertise({ name: step.name, ...(step.services.length ? { services: step.services } : {}), connectable: true });
        break;
      case 'accept': {
        serving('accept');
        const next = incoming.next();
        const timer = clock.setTimeout(() => { void incoming.return?.(); }, peerTimeout);
        const r = await next.finally(() => clock.clearTimeout(timer));
        if (r.done) throw new TimeoutError('gap', 'accept (no central connected)', peerTimeout);
        const c = r.value;
        conn = c;
        gatt = c.gatt;
        watch(c);
        result.connection = { address: c.address, addressType: c.addressType, role: c.role, intervalMs: c.parameters.interval };
        lastPeer = { address: c.address, type: c.addressType === 'public' ? 'public' : 'random' };
        break;
      }
      case 'subscribed': {
        const s = serving('subscribed');
        const uuid = resolveServed(s, step.target);
        await until(`subscription to ${step.target}`, () => {
          const last = s.subscriptions.filter(x => x.uuid === uuid).pop();
          return last !== undefined && (last.notifications || last.indications);
        }, s.changed);
        break;
      }
      case 'send-notification':
      case 'send-indication': {
        const s = serving(step.op);
        const { conn: c } = need(step.op);
        const uuid = resolveServed(s, step.target);
        const indication = step.op === 'send-indication';
        const v = fromHex(step.value);
        const n = indication ? await s.server.indicate(uuid, v, { connections: [c] }) : await s.server.notify(uuid, v, { connections: [c] });
        out().notified.push({ target: step.target, value: step.value, indication, delivered: n });
        break;
      }
      case 'paired': {
        const { conn: c } = need('paired');
        await until('a pairing on the link', () => outcomes.length > 0 || !c.connected, secured);
        const p = outcomes.shift();
        if (!p) throw new InvalidStateError('session: the link closed before a pairing ended');
        if (step.refused) {
          await refusedBy('paired', () => (p.stage === 'failed' ? Promise.reject(p.error) : Promise.resolve()));
          break;
        }
        if (p.stage === 'failed') throw p.error;
        if (p.stage === 'paired') {
          (result.pairings ??= []).push({ method: p.method, secureConnections: p.secureConnections, authenticated: p.authenticated, bonded: p.bonded, keySize: p.keySize });
        }
        break;
      }
      case 'pairing-io': {
        // Vol 3, Part H, 2.3.5.1: with the peer's IO capability this picks Passkey Entry (we display)
        // or Numeric Comparison (we accept the value both sides show).
        policy = {
          io: step.io,
          onPasskeyDisplay: n => {
            const passkey = String(n).padStart(6, '0');
            (result.passkeys ??= []).push(passkey);
            options.onPasskeyDisplay?.(passkey);
          },
          onNumericComparison: n => {
            const value = String(n).padStart(6, '0');
            (result.comparisons ??= []).push(value);
            options.onNumericComparison?.(value);
            return true;
          },
        };
        adapter.setPairingPolicy(policy);
        break;
      }
      case 'encrypted': {
        const { conn: c } = need('encrypted');
        await until('an encrypted link', () => c.security.encrypted || !c.connected, secured);
        if (!c.security.encrypted) throw new InvalidStateError('session: the link closed before it was encrypted');
        const st = c.security;
        (result.security ??= []).push({ level: st.level, encrypted: st.encrypted, keySize: st.keySize, authenticated: st.authenticated,
          secureConnections: st.secureConnections, bonded: st.bonded });
        break;
      }
      case 'open-channel': {
        const { conn: c } = need('open-channel');
        const ch = await c.openChannel(step.psm, { timeout: peerTimeout, ...(step.mtu !== undefined ? { mtu: step.mtu } : {}),
          ...(step.mps !== undefined ? { mps: step.mps } : {}), ...(step.credits !== undefined ? { initialCredits: step.credits } : {}) });
        track(ch, step.psm, 'us');
        break;
      }
      case 'listen':
        listener?.close();
        listener = adapter.listen(step.psm, { ...(step.security ? { [step.security]: true } : {}), ...(step.mtu !== undefined ? { mtu: step.mtu } : {}),
          ...(step.mps !== undefined ? { mps: step.mps } : {}), ...(step.credits !== undefined ? { initialCredits: step.credits } : {}) });
        break;
      case 'accept-channel': {
        if (!listener) throw new InvalidStateError('session: "accept-channel" needs a listen step first');
        const l = listener;
        const ch = await l.accept({ timeout: peerTimeout });
        if (!ch) throw new InvalidStateError('session: the listener closed before a channel came');
        track(ch, l.psm, 'peer');
        break;
      }
      case 'send-sdu': {
        const c = needChannel('send-sdu');
        const sdu = sduOf(step.value);
        await c.ch.send(sdu, { timeout: peerTimeout });
        c.out.sent.push(sdu.length);
        break;
      }
      case 'receive-sdu': {
        const c = needChannel('receive-sdu');
        for (let i = 0; i < step.count; i++) {
          const sdu = await c.ch.read({ timeout: peerTimeout });
          if (!sdu) throw new InvalidStateError(`session: the channel closed after ${i} of ${step.count} SDUs (${c.ch.closedError?.message ?? 'no reason'})`);
          c.out.received.push(toHex(sdu));
        }
        break;
      }
      case 'close-channel': {
        const c = needChannel('close-channel');
        await c.ch.close();
        c.out.closedBy = closedBy(c.ch) ?? 'local';
        channel = undefined;
        break;
      }
      case 'wait-channel-close': {
        const c = needChannel('wait-channel-close');
        const extra = await c.ch.read({ timeout: peerTimeout });
        if (extra) throw new InvalidStateError(`session: an SDU of ${extra.length} octets came where the peer was to close the channel`);
        c.out.closedBy = closedBy(c.ch) ?? 'peer';
        channel = undefined;
        break;
      }
      case 'wait-disconnect': {
        const { conn: c } = need('wait-disconnect');
        await until('the peer\'s disconnection', () => !c.connected, disconnected);
        if (lastDisconnect) result.disconnect = lastDisconnect;
        conn = undefined;
        gatt = undefined;
        tree = undefined;
        break;
      }
    }
  };
  try {
    for (const step of list) {
      options.onStep?.(step);
      await Promise.race([runStep(step), gone]);
    }
  } finally {
    if (onClose) adapter.off('close', onClose);
    for (const stop of [...waits]) stop();
    listener?.close();
    await incoming.return?.();
    await adapter.close();
  }
  return result;
}

/** The served characteristic a step names (2a37, a full UUID, or a prefix of one). */
function resolveServed(s: Served, target: string): string {
  const want = target.toLowerCase();
  for (const sv of s.services) {
    for (const c of sv.characteristics) {
      if (c.uuid === want || shortUuid(c.uuid) === want) return c.uuid;
    }
  }
  throw new ArgumentError(`session: no characteristic ${target} in the served database`);
}

function serviceResult(s: GattService): ServiceResult {
  return {
    uuid: s.uuid, primary: s.primary, start: s.start, end: s.end,
    characteristics: s.characteristics.map(c => ({
      uuid: c.uuid, declHandle: c.declHandle, handle: c.handle, properties: c.properties,
      descriptors: c.descriptors.map(d => ({ uuid: d.uuid, handle: d.handle })),
    })),
  };
}
