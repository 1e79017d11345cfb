/**
 * What the BlueZ-guest interop files share: our adapter on the bridged H4 socket, a connection attempt
 * that survives btvirt's 0x3E, bluetoothd driven over the guest's control line (btmgmt, D-Bus, its
 * simple-agent, its stored keys), and where a check starts in a capture.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Adapter, type AdapterOpenOptions } from '../../../src/api/adapter.js';
import type { Connection } from '../../../src/api/connection.js';
import { HciStatusError } from '../../../src/errors.js';
import type { Bond } from '../../../src/smp/bonds.js';
import { StreamTransport } from '../../../src/transport/stream.js';
import { syncH4, type BlueZGuestInfo } from './bluez-guest.js';
import type { GuestControl, GuestProgram } from './guest-control.js';
import { tshark, tsharkL2cap } from './tshark.js';

/** The examples folder in the guest (simple-agent, example-gatt-server, example-advertisement). */
export const EXAMPLES = '/opt/bluez-examples';

/** bluez-central-ops.py: bluetoothd as the central over D-Bus, one operation per run (BlueZPeer.centralOp). */
const CENTRAL_OPS = fs.readFileSync(fileURLToPath(new URL('./bluez-central-ops.py', import.meta.url)), 'utf8');

/** What one bluez-central-ops.py operation printed last: its JSON result. */
export interface CentralOpResult { ok?: boolean; error?: string; value?: string; paired?: boolean; ms?: number; [k: string]: unknown }

/**
 * What BlueZ writes as `Authenticated=` of a stored LTK: the key type of the management interface's
 * New Long Term Key event (BlueZ's doc/mgmt-api.txt): 0 unauthenticated legacy, 1 authenticated legacy,
 * 2 unauthenticated from P-256 (LE Secure Connections), 3 authenticated from P-256.
 */
export const LTK_TYPE = {
  legacyUnauthenticated: /Authenticated=0\n/, legacyAuthenticated: /Authenticated=1\n/,
  scUnauthenticated: /Authenticated=2\n/, scAuthenticated: /Authenticated=3\n/,
} as const;

/**
 * A python3 -c script for the guest: removes the LTK groups of the bluetoothd info file named by its
 * argument, keeps everything else (the signature keys), prints the result. A bluetoothd restarted on
 * that file holds CSRKs and no LTK for the peer, so it does not encrypt the next link (src/device.c
 * device_attach_att raises an ATT link's security only with an LTK): the signed-write tests need that.
 */
export const STRIP_LTK = `import re,sys
p=sys.argv[1]; s=open(p).read()
s=re.sub(r'\\[(LongTermKey|PeripheralLongTermKey|SlaveLongTermKey)\\]\\n[^\\[]*', '', s)
open(p,'w').write(s); print(s)`;

/** An Adapter on the guest's bridged H4 socket, its controller freshly reset. */
export async function openBridgedAdapter(guest: BlueZGuestInfo, opts: Omit<AdapterOpenOptions, 'transport'>): Promise<Adapter> {
  const sock = await syncH4(guest.h4Socket);
  const transport = new StreamTransport(sock, `unix:${guest.h4Socket}`);
  sock.resume(); // syncH4 paused it (and unshifted what followed Reset's Command Complete)
  return Adapter.open({ ...opts, transport });
}

/**
 * Runs `attempt` again (up to `tries` times, 500 ms apart) while it fails with HCI status 0x3E: btvirt
 * fails a connection to a device that is not advertising at that instant (BlueZ re-advertises after a
 * disconnect, but not at once) with Connection Failed to be Established.
 */
export async function retryOn0x3E<T>(attempt: () => Promise<T>, tries = 5): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof HciStatusError && e.status === 0x3e) || n >= tries) throw e;
      await new Promise(r => setTimeout(r, 500));
    }
  }
}

/** A link to the device advertising at `address` (BlueZ), found by a passive scan and retried on 0x3E. */
export function connectWhenAdvertising(adapter: Adapter, address: string): Promise<Connection> {
  return retryOn0x3E(async () => {
    const ad = await adapter.find({ address, active: false, timeout: 30_000 });
    if (!ad) throw new Error(`${address} did not advertise within 30 s`);
    return adapter.connect(ad, { timeout: 20_000 });
  });
}

/** The number of the capture's last frame so far: later checks look at what came after it. */
export async function lastFrame(capture: string): Promise<number> {
  const out = await tshark('-r', capture, '-T', 'fields', '-e', 'frame.number');
  return Number(out.trim().split('\n').pop() || 0);
}

/** The L2CAP PDUs on channel `cid` after frame `after`, as tshark reassembled them (hex). */
export async function l2capFrom(capture: string, after: number, cid: number): Promise<Array<{ dir: 'tx' | 'rx'; pdu: string }>> {
  return (await tsharkL2cap(capture)).filter(r => r.cid === cid && r.frame > after).map(r => ({ dir: r.dir, pdu: r.payload }));
}

/**
 * The LTKs of the HCI commands with this opcode after frame `after`, hex as they travel: LE Enable
 * Encryption 0x2019 (Vol 4, Part E, 7.8.24) or LE Long Term Key Request Reply 0x201A (7.8.25).
 */
export async function ltksSentSince(capture: string, after: number, opcode: 0x2019 | 0x201a): Promise<string[]> {
  const out = await tshark('-r', capture, '-Y', `frame.number > ${after} && bthci_cmd.opcode == 0x${opcode.toString(16)}`,
    '-T', 'fields', '-e', 'bthci_cmd.le_long_term_key');
  return out.split('\n').filter(Boolean).map(s => s.replace(/:/g, ''));
}

/** Our bond with the peer whose identity address is `identity`; rejects when there is none. */
export async function ourBondWith(adapter: Adapter, identity: string): Promise<Bond> {
  const bond = (await adapter.bonds()).find(b => b.identity.address === identity);
  if (!bond) throw new Error(`no bond with ${identity}`);
  return bond;
}

/** bluetoothd in the guest, as seen by a peer at address `ours`. */
export class BlueZPeer {
  /** The D-Bus object bluetoothd keeps for us. */
  readonly device: string;
  private agent: GuestProgram | undefined;
  private agents = 0;

  constructor(private readonly ctl: GuestControl, private readonly guest: BlueZGuestInfo, readonly ours: string,
    private readonly slow = 60_000) {
    this.device = `/org/bluez/hci0/dev_${ours.replace(/:/g, '_')}`;
  }

  /** btmgmt on BlueZ's controller; rejects when it fails. */
  btmgmt(...args: string[]): Promise<string> {
    return this.ctl.ok(['btmgmt', '--index', '0', ...args], this.slow);
  }

  /** Power-cycles BlueZ's adapter, running these btmgmt commands while it is off (privacy on gives a new RPA). */
  async powerCycle(...between: string[][]): Promise<void> {
    await this.btmgmt('power', 'off');
    for (const args of between) await this.btmgmt(...args);
    await this.btmgmt('power', 'on');
  }

  /** The keys bluetoothd stored for us (its info file), or undefined when it has no bond. */
  async info(): Promise<string | undefined> {
    const r = await this.ctl.run(['cat', `/var/lib/bluetooth/${this.guest.peripheral}/${this.ours}/info`], this.slow);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** STRIP_LTK on BlueZ's info file for us; returns the file as it is now. */
  stripLtks(): Promise<string> {
    return this.ctl.ok(['python3', '-c', STRIP_LTK, `/var/lib/bluetooth/${this.guest.peripheral}/${this.ours}/info`], this.slow);
  }

  /**
   * BlueZ's info file for us, which must hold the LTK of our bond with it (hex, as on the wire: BlueZ
   * writes the octets in that order); rejects otherwise.
   */
  async storesOurKey(adapter: Adapter): Promise<string> {
    const info = await this.info();
    if (info === undefined) throw new Error('BlueZ has no bond with us');
    const ltk = (await ourBondWith(adapter, this.guest.peripheral)).ltk;
    const key = Buffer.from(ltk?.key ?? []).toString('hex').toUpperCase();
    if (!ltk || !info.toUpperCase().includes(`KEY=${key}`)) throw new Error(`BlueZ's info file lacks our LTK ${key}:\n${info}`);
    return info;
  }

  /** org.bluez.Adapter1.RemoveDevice for us (its bond goes with it); fine when BlueZ does not know us. */
  removeDevice(): Promise<unknown> {
    return this.ctl.run(['dbus-send', '--system', '--print-reply', '--dest=org.bluez', '/org/bluez/hci0',
      'org.bluez.Adapter1.RemoveDevice', `objpath:${this.device}`], this.slow);
  }

  /**
   * Resolves once bluetoothd has seen our link go (Device1.Connected not true) and had a moment more to
   * close its ATT socket and file what the link changed; rejects if it still shows us connected after 30 s.
   */
  async disconnected(): Promise<void> {
    const settled = await this.ctl.run(['sh', '-c', `for i in $(seq 1 150); do
      dbus-send --system --print-reply --dest=org.bluez ${this.device} org.freedesktop.DBus.Properties.Get \
        string:org.bluez.Device1 string:Connected 2>/dev/null | grep -q 'boolean true' || { sleep 1; exit 0; }
      sleep 0.2; done; exit 1`], this.slow);
    if (settled.code !== 0) throw new Error('bluetoothd still shows us connected after 30 s');
  }

  /**
   * Resolves once bluetoothd's own GATT client has discovered our database on the current link
   * (Device1.ServicesResolved true); rejects after 60 s, saying what bluetoothd showed.
   *
   * Wait for this before pairing on a link BlueZ did not open. bluetoothd 5.66 arms a 1 s "reverse
   * service discovery" timer when a pairing it did not start completes while it has not yet resolved the
   * peer's services (src/device.c device_bonding_complete). When that timer fires after the link is gone,
   * bluetoothd connects back to us; cancelling that connect (a power-off, RemoveDevice) hit the guest's
   * Linux 6.1 hci_chan_del list corruption and killed bluetoothd. Once the services are resolved, the timer
   * is never armed for this device (the flag outlives the link until RemoveDevice).
   */
  async servicesResolved(): Promise<void> {
    const get = (prop: string): string => `dbus-send --system --print-reply --dest=org.bluez ${this.device} ` +
      `org.freedesktop.DBus.Properties.Get string:org.bluez.Device1 string:${prop} 2>&1 | tail -n 1`;
    const r = await this.ctl.run(['sh', '-c', `end=$(( $(cut -d. -f1 /proc/uptime) + 60 ))
      while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
        ${get('ServicesResolved')} | grep -q 'boolean true' && exit 0
        sleep 0.2
      done
      echo "Connected: $(${get('Connected')}); ServicesResolved: $(${get('ServicesResolved')})"; exit 1`], this.slow + 30_000);
    if (r.code !== 0) throw new Error(`bluetoothd did not resolve our services within 60 s (${r.stdout.trim().replace(/\s+/g, ' ')})`);
  }

  /**
   * Makes BlueZ forget us, once bluetoothd has seen our link go (Device1.Connected false) and had a
   * moment to close its ATT socket: removing a device whose socket the kernel is still tearing down hit a
   * list corruption BUG in the guest's Linux 6.1 (hci_chan_del from l2cap_sock_release) that kills
   * bluetoothd. Rejects if BlueZ still shows us connected after 30 s or still holds a bond afterwards.
   */
  async forget(): Promise<void> {
    await this.disconnected();
    await this.removeDevice();
    if (await this.info() !== undefined) throw new Error('BlueZ kept its bond with us after RemoveDevice');
  }

  /**
   * Replaces BlueZ's agent with the examples' simple-agent at this IO capability (or none). It says yes
   * when bluetoothd asks it to authorise an incoming Just Works pairing (RequestAuthorization); the
   * returned function counts those answers.
   */
  async useAgent(io: string | undefined): Promise<{ program: GuestProgram | undefined; authorized: () => number }> {
    await this.agent?.kill();
    this.agent = undefined;
    if (!io) return { program: undefined, authorized: () => 0 };
    const program = await this.ctl.spawn(`agent-${this.agents++}`, ['python3', './simple-agent', '-c', io], EXAMPLES);
    await program.expect(/Agent registered/, this.slow);
    this.agent = program;
    return { program, authorized: program.respond(/Authorize\? \(yes\/no\): /, 'yes\n') };
  }

  private currentAgent(): GuestProgram {
    if (!this.agent) throw new Error('BlueZ has no agent of ours (BlueZPeer.useAgent first)');
    return this.agent;
  }

  /** The passkey BlueZ's agent displays for the pairing under way (simple-agent's DisplayPasskey line). */
  async displayedPasskey(): Promise<number> {
    return Number((await this.currentAgent().expect(/DisplayPasskey \(\S+, (\d{6}) entered \d+\)/, this.slow))[1]);
  }

  /** BlueZ's agent types `passkey` once bluetoothd asks it for one (simple-agent's "Enter passkey: "). */
  async typePasskey(passkey: number): Promise<void> {
    const a = this.currentAgent();
    await a.expect(/Enter passkey: /, this.slow);
    await a.write(`${String(passkey).padStart(6, '0')}\n`);
  }

  /**
   * Numeric Comparison on BlueZ's side: its agent's number (RequestConfirmation), answered yes when it is
   * `ours` and no otherwise; resolves to its number.
   */
  async compareNumbers(ours: number): Promise<number> {
    const a = this.currentAgent();
    const theirs = Number((await a.expect(/RequestConfirmation \(\S+, (\d{6})\)/, this.slow))[1]);
    await a.expect(/Confirm passkey \(yes\/no\): /, this.slow);
    await a.write(theirs === ours ? 'yes\n' : 'no\n');
    return theirs;
  }

  /**
   * One bluetoothd operation as the central, on us, through bluez-central-ops.py (connect, read,
   * write, write-command, disconnect, ...): its JSON result, which may carry an `error`; rejects when the
   * script printed none.
   */
  async centralOp(op: string, ...args: string[]): Promise<CentralOpResult> {
    const r = await this.ctl.run(['python3', '-c', CENTRAL_OPS, op, this.ours, ...args], 150_000);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as CentralOpResult;
    } catch {
      throw new Error(`bluez-central-ops ${[op, ...args].join(' ')}: no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
  }

  /** centralOp, rejecting when bluetoothd reported an error. */
  async centralOpOk(op: string, ...args: string[]): Promise<CentralOpResult> {
    const r = await this.centralOp(op, ...args);
    if (r.error) throw new Error(`bluetoothd ${[op, ...args].join(' ')}: ${r.error}`);
    return r;
  }

  /**
   * Leaves BlueZ as the next file expects it (as the guest's init.sh started it): no agent of ours,
   * Secure Connections on, not bondable, and no device object or bond for us (forget: once bluetoothd
   * has seen our link go). For an afterAll: every step is tried even when one before it failed, and it
   * never rejects. Close our side of the link first.
   */
  async restore(): Promise<void> {
    await this.useAgent(undefined).catch(() => undefined);
    await this.btmgmt('sc', 'on').catch(() => undefined);
    await this.btmgmt('bondable', 'off').catch(() => undefined);
    await this.forget().catch(() => undefined);
  }
}
