/**
 * The simulator's declarative world: a scenario is controller options plus virtual peripherals. Every
 * type here is plain data (JSON-serialisable: bytes as `{ hex }`, UUIDs as numbers or strings), so a
 * scenario can be written by hand, stored next to a capture, or produced from one (device twins).
 * The only non-data escape hatch is `NotificationSource.next` (a function), for code-built scenarios.
 */
import type { CharacteristicPropertyName } from '../gatt/constants.js';

/** Bytes: `{ hex: '0a0b' }`, a Uint8Array, or a string (UTF-8, like GATT string values). */
export type SimBytes = { hex: string } | Uint8Array | string;

export type SimAddressType = 'public' | 'random';

/** Advertising Data as content (encoded with the AD table) or as raw bytes. */
export interface SimAdContent {
  flags?: number;
  name?: string;
  shortName?: boolean;
  txPower?: number;
  appearance?: number;
  /** 16-bit numbers or UUID strings. */
  serviceUuids?: Array<number | string>;
  serviceData?: Array<[uuid: number | string, data: SimBytes]>;
  manufacturerData?: Array<[companyId: number, data: SimBytes]>;
  uri?: string;
}
export type SimAdData = SimAdContent | { raw: SimBytes };

export interface SimAdvertising {
  /** Legacy PDUs (ADV_IND …, 31-byte data) or extended (ADV_EXT_IND + AUX, up to 1650 bytes). */
  type?: 'legacy' | 'extended';
  data?: SimAdData;
  scanResponse?: SimAdData;
  /** Advertising interval in ms (default 100); each event adds advDelay 0–10 ms (Vol 6, Part B, 4.4.2.2.1). */
  intervalMs?: number;
  /** Default: true when the peripheral has a GATT database. */
  connectable?: boolean;
  /** Default: true when there is a scan response. */
  scannable?: boolean;
  /** Mean RSSI at our scanner (dBm, default -60). */
  rssi?: number;
  /** RSSI random walk step (dB per advertising event, default 0). */
  rssiDrift?: number;
  /** TX power reported in extended reports (default 127 = not available). */
  txPower?: number;
  /** Advertising SID (extended, default 0). */
  sid?: number;
  /** Keep advertising while connected (a second, non-connectable set in a real device). Default false. */
  whileConnected?: boolean;
  /** Start advertising this many ms into the simulation (default 0). */
  startMs?: number;
}

export interface SimDescriptor {
  uuid: number | string;
  /** Its handle (default: the next free one); a device twin's captured handle. */
  handle?: number;
  value?: SimBytes;
  writable?: boolean;
}

export interface SimCharacteristic {
  uuid: number | string;
  /** Handle of its declaration (default: the next free one; the value follows); a device twin's captured handle. */
  handle?: number;
  properties: CharacteristicPropertyName[];
  value?: SimBytes;
  maxLength?: number;
  descriptors?: SimDescriptor[];
  /** false: no CCCD even though it notifies or indicates (a twin of a peer without one); see CharacteristicDef.cccd. */
  cccd?: boolean;
}

export interface SimService {
  uuid: number | string;
  primary?: boolean;
  handle?: number;
  endHandle?: number;
  id?: string;
  includes?: string[];
  characteristics?: SimCharacteristic[];
}

/** Built-in value generators for notification sources. */
export type SimGenerator =
  | { kind: 'heartRate'; bpm?: number; spread?: number }
  | { kind: 'temperature'; celsius?: number; spread?: number }
  | { kind: 'counter'; bytes?: 1 | 2 | 4 }
  | { kind: 'cycle'; values: SimBytes[] };

export interface NotificationSource {
  /** Characteristic UUID (first match) or value handle. */
  characteristic: number | string;
  /** Interval between values (ms); the first comes this long after the client enables the source. */
  everyMs: number;
  /**
   * Per-value delays (ms), instead of everyMs when given and not empty: value i is sent
   * `intervalsMs[i % length]` after value i − 1 (value 0: after the client enables the source in its
   * CCCD), so a stream can follow recorded relative times (device twins). 0 sends at the same instant;
   * the link still carries each value at the next connection event. Negative or non-finite entries
   * count as 0.
   */
  intervalsMs?: number[];
  /** notify (default) or indicate; the client must have enabled it in the CCCD. */
  mode?: 'notify' | 'indicate';
  generator?: SimGenerator;
  /** Code-built scenarios only: the i-th value. */
  next?: (i: number, nowMs: number) => Uint8Array;
}

/** Which ATT requests a behaviour applies to: any field given must match. */
export interface AttMatch {
  /** ATT opcode of the request (e.g. 0x0a Read Request). */
  opcode?: number;
  /** Attribute handle of the request (handle or starting handle). */
  handle?: number;
  /** Only the n-th matching request (1-based); default every one. */
  nth?: number;
}

export interface PeerBehaviour {
  /** Extra time before every ATT response (ms), on top of the connection events it costs. */
  responseDelayMs?: number;
  delays?: Array<AttMatch & { ms: number }>;
  /** Answer matching requests with this ATT error code. */
  errors?: Array<AttMatch & { error: number }>;
  /** Never answer matching requests (a silent peer: the client's 30 s ATT timeout). */
  ignore?: AttMatch[];
  /** Answer matching requests with these raw ATT bytes instead (protocol-breaking peers). */
  raw?: Array<AttMatch & { respond: SimBytes }>;
  /** Terminate the link when a matching request arrives (before answering it). */
  disconnectOn?: Array<AttMatch & { reason?: number }>;
  /** Terminate the link after answering this many ATT requests. */
  disconnectAfterRequests?: number;
  /** Terminate the link this many ms after it is established. */
  disconnectAfterMs?: number;
  /** Reason sent with peer-initiated terminations (default 0x13 Remote User Terminated Connection). */
  disconnectReason?: number;
  /** The link never gets established: LE Connection Complete 0x3E. */
  failToEstablish?: boolean;
  /** Reject LE connection parameter updates (Unacceptable Connection Parameters 0x3B). */
  rejectParameterUpdates?: boolean;
  /** Ask the central for new parameters (LL Connection Parameters Request) this long after connecting. */
  requestParameters?: { afterMs: number; intervalMinMs: number; intervalMaxMs: number; latency?: number; timeoutMs?: number };
}

/**
 * An L2CAP credit-based channel of a virtual peer (Core Vol 3, Part A, 4.22): it listens on `psm`
 * (our `conn.openChannel`) or opens it to our `adapter.listen` `openAfterMs` after the link is up.
 * Behaviours: `echo` sends every SDU back, `sink` reads and counts, `source` sends `source.sdus`
 * SDUs of `source.size` octets (default 10 of its peer's MTU). Faults break the mode on purpose.
 */
export interface SimChannel {
  psm: number;
  /** Default 'listen'. */
  role?: 'listen' | 'open';
  openAfterMs?: number;
  /** Default 'echo'. */
  behaviour?: 'echo' | 'sink' | 'source';
  source?: { sdus?: number; size?: number };
  /** What the peer announces (defaults: the engine's). */
  mtu?: number;
  mps?: number;
  initialCredits?: number;
  faults?: {
    /** Never send Flow Control Credit Indications: our sender stalls once the initial credits are used. */
    withholdCredits?: boolean;
    /** Right after opening, give us 65535 more credits (the count overflows: we must disconnect, 10.1). */
    overflowCredits?: boolean;
    /** Right after opening, send an SDU Length one above our MTU (we must disconnect, 3.4.3). */
    oversizedSdu?: boolean;
    /** Send the first K-frame of a two-frame SDU, then disconnect the channel. */
    disconnectMidSdu?: boolean;
  };
}

/**
 * LE privacy of a virtual peripheral (Core Vol 3, Part C, 10.7): it advertises and connects under a
 * resolvable private address made from its IRK (Vol 6, Part B, 1.3.2.2), a new one every `rotateMs`
 * of virtual time (never while connected), and distributes the IRK with its identity address
 * (`address` / `addressType` of the peripheral) when it bonds (Vol 3, Part H, 3.6.4 / 3.6.5).
 */
export interface SimPrivacy {
  /** The peer's IRK, 16 octets, most significant first (as the spec prints keys). */
  irk: SimBytes;
  /** RPA lifetime in ms of virtual time (default 15 min, T_GAP(private_addr_int)). */
  rotateMs?: number;
}

export interface SimPeripheral {
  /** A label for logs and the demo. */
  name?: string;
  /** Its address; with `privacy`, its identity address (public, or static random). */
  address: string;
  addressType?: SimAddressType;
  /** Advertise under rotating resolvable private addresses and distribute the IRK when bonding. */
  privacy?: SimPrivacy;
  advertising?: SimAdvertising;
  gatt?: SimService[];
  notifications?: NotificationSource[];
  behaviour?: PeerBehaviour;
  /** The peer's ATT receive MTU (default 247). */
  mtu?: number;
  /**
   * The peer's Security Manager (Vol 3, Part H) as a responder: without it the peer answers a
   * Pairing Request with Pairing Not Supported.
   */
  pairing?: SimPairing;
  /** A bonded key: LE Start Encryption with this EDIV/Rand/LTK succeeds (Vol 6, Part B, 5.1.3). */
  ltk?: { key: SimBytes; ediv: number; rand: SimBytes };
  /** LE features of the peer (for LE Read Remote Features); default encryption, DLE, 2M PHY, conn param req. */
  leFeatures?: number;
  /** Largest LL payload the peer supports (default 251). */
  maxDataLength?: number;
  /** PHYs the peer supports (bit mask: 1 = 1M, 2 = 2M, 4 = Coded; default 3). */
  phys?: number;
  /** L2CAP credit-based channels the peer listens on or opens. */
  channels?: SimChannel[];
}

/** A virtual peripheral's pairing (responder; the same SmpSession the host uses). */
export interface SimPairing {
  /** IO capability (default 'noInputNoOutput'). */
  io?: 'displayOnly' | 'displayYesNo' | 'keyboardOnly' | 'noInputNoOutput' | 'keyboardDisplay';
  /** Bonding (default true): the peer keeps the keys and re-encrypts a later link from them. */
  bond?: boolean;
  /** Ask for MITM protection (default false). */
  mitm?: boolean;
  /** Offer LE Secure Connections (default true; false: LE legacy pairing only). */
  secureConnections?: boolean;
  /** Refuse legacy pairing. */
  secureConnectionsOnly?: boolean;
  /** Largest key size the peer offers, 7..16 (default 16): a short one tests the minimum key size. */
  maxKeySize?: number;
  /** What the peer's user types when asked for a passkey (default: the one the peer was shown, if known). */
  passkey?: number;
  /** The peer's user's answer to numeric comparison (default true). */
  confirm?: boolean;
  /** Called with the six digits the peer displays (passkey entry where the peer displays). */
  onPasskeyDisplay?: (passkey: number) => void;
  /** Legacy OOB TK (16 octets, MSO first) the peer holds. */
  oobTk?: SimBytes;
  /**
   * LE Secure Connections OOB (Vol 3, Part H, 2.3.5.6.4): the peer makes its OOB data for each link as
   * the link comes up — a random r and c = f4(PKx, PKx, r, 0) over its public key — and publishes it
   * in `pairingStats.oob` (MSO first), which a test hands to the central as an NFC tag would. The peer
   * holds no OOB data of the central (its flag is 0); the central's flag decides the method.
   */
  scOob?: boolean;
  /** Send a Security Request this long after the link is up. */
  securityRequestAfterMs?: number;
  /**
   * Attribute handles that need security: an ATT request naming one on a link that is not encrypted
   * (or not authenticated, with `authenticated`) is answered with Insufficient Authentication (0x05,
   * or `error`), as BlueZ's encrypted characteristics are. With `minKeySize`, a link encrypted with a
   * shorter key is answered the same way (use `error: 0x0c`, Insufficient Encryption Key Size).
   */
  protect?: Array<AttMatch & { authenticated?: boolean; minKeySize?: number; error?: number }>;
  /** Faults: drop the peer's SMP PDUs of these codes; never answer SMP at all (the 30 s timeout). */
  dropPdus?: number[];
  silent?: boolean;
  /** The peer answers every Pairing Request with Pairing Not Supported (0x05), as BlueZ does when not bondable. */
  notSupported?: boolean;
  /** Fault: flip a bit of the peer's Pairing Confirm (Confirm Value Failed on our side). */
  corruptConfirm?: boolean;
  /** Fault: the peer forgets its bonds before each link (a reconnect's encryption fails with 0x06). */
  forgetBonds?: boolean;
  /**
   * Fault: the peer's host answers its controller's LTK request negatively even for the pairing it is
   * running (its STK / LTK lost, say its key storage failed): the central's encryption ends with PIN
   * or Key Missing (0x06, Vol 6, Part B, 5.1.3.1) in the middle of pairing.
   */
  withholdKey?: boolean;
  /**
   * Fault: the peer sends these octets instead of its first SMP PDU with this code (a Pairing Failed
   * half-way, a malformed or an unexpected PDU); later PDUs of the code go out as they are.
   */
  replacePdu?: { code: number; with: SimBytes };
}

export interface SimControllerOptions {
  /** Public BD_ADDR (default 00:1B:DC:5E:00:01). */
  address?: string;
  /** LE ACL buffers: payload length and count (default 251 × 8). */
  aclBuffers?: { length: number; count: number };
  /** Offer LE Read Buffer Size [v2] (default true). */
  bufferSizeV2?: boolean;
  /** Support extended advertising / scanning / create connection (default true). */
  extended?: boolean;
  /** LE Data Length Extension (default true). */
  dataLength?: boolean;
  /** 2M PHY (default true) and Coded PHY (default false). */
  phy2m?: boolean;
  phyCoded?: boolean;
  /** Connection interval the controller picks inside the host's [min, max] (ms; default: min). */
  preferredIntervalMs?: number;
  /** Virtual time a command takes before its Command Complete / Status (µs, default 50). */
  commandLatencyUs?: number;
  filterAcceptListSize?: number;
  resolvingListSize?: number;
  /**
   * LL Privacy (LE feature bit 6; default on when the resolving list has entries): the controller
   * resolves listed peers' RPAs and makes ours from a local IRK. Off: it keeps the list and resolves
   * nothing, as btvirt does.
   */
  llPrivacy?: boolean;
  numAdvertisingSets?: number;
  /**
   * A Core 5.3 controller with Encryption Change [v2] (Vol 4, Part E, 7.7.8; default true): reports
   * HCI version 5.3 and sends [v2], with the key size, once the host sets bit 25 of Set Event Mask
   * Page 2. False: version 5.2 and only [v1].
   */
  encryptionChangeV2?: boolean;
  /** Fault injection: the key size the controller reports after encryption starts (a KNOB-style downgrade). */
  encryptionKeySize?: number;
  /** Fault injection: answer these commands (by kind) with a status, or not at all ('silent'). */
  commandErrors?: Record<string, number | 'silent'>;
}

export interface Scenario {
  name?: string;
  /** Seed of the simulator's PRNG (advertising delays, RSSI drift, LE Rand); default 1. */
  seed?: number;
  controller?: SimControllerOptions;
  peripherals: SimPeripheral[];
}
