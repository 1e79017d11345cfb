/**
 * blewire's L2CAP credit-based channels against the Linux kernel's L2CAP (6.1, in the qemu guest),
 * driven by BlueZ 5.66's `l2test`: LE Credit Based Flow Control Mode (Core Vol 3, Part A, 4.22–4.24,
 * 3.4.2–3.4.3, 10.1) in both directions and both ways of opening, on a link where we are the central
 * and on one where we are the PERIPHERAL (bluetoothd connects to our advertising, then l2test opens a
 * channel to our listener and we open one to its), and Enhanced Credit Based Flow Control Mode (4.25–4.26).
 * blewire runs on the host and talks H4 over the bridged socket to a btvirt
 * controller in the guest; BlueZ's adapter (hci0) shares btvirt's air, and l2test opens and accepts
 * channels on it through the kernel's L2CAP sockets. The test drives l2test over the guest's control
 * line (helpers/guest-control.ts).
 *
 * What is compared, each side against the other and against tshark:
 * - what blewire sends: l2test in dump mode (-d, -y) prints each SDU it read as a hexdump (written to a
 *   file in the guest); the octets must be ours, SDU for SDU;
 * - what blewire receives: l2test's own data format (-w, -s, -y: a 32-bit sequence number, the SDU
 *   length, then 0x7f), checked octet for octet;
 * - the recording: tshark's framing of every K-frame must carry exactly the SDU Length and octets of
 *   every SDU each side sent, its own reassembly (from the signalling it saw) the same SDUs where it
 *   makes one; no frame is malformed.
 * Credits: the kernel gives (its MTU / its MPS) + 1 credits and tops them up as it consumes frames,
 * so our SDUs larger than its MPS stall on credits and resume with its Flow Control Credit
 * Indications; towards us we give 1–2 credits with a small MPS, so the kernel stalls on ours.
 *
 * What l2test 5.66 cannot do: set initial credits (the kernel derives them from its MTU and MPS: seen
 * here, MTU 1000 / MPS 188 gives 6); enhanced credit-based mode on LE: `-X ext-flowctl` makes it read
 * the BR/EDR socket options (L2CAP_OPTIONS), which the kernel refuses on an LE socket ("Can't get
 * default L2CAP options: Invalid argument (22)"). So the enhanced case drives the kernel's EXT_FLOWCTL
 * sockets with helpers/ecred-peer.py (python3 in the guest, enable_ecred=Y: Linux 6.1 has the mode off
 * by default): two channels in one Credit Based Connection Request of ours, one of the kernel's to our
 * listener. tshark 4.0 reassembles the SDUs of a channel in both directions when we opened it, but
 * does not recognise the K-frames coming towards the side that answered the request, nor any channel
 * but the first of an enhanced request: for those SDUs the check is tshark's framing of the K-frames
 * (SDU Length + SDU, in order).
 *
 * A listener's security requirement met by pairing (peripheral link): `adapter.listen(psm, { encrypted:
 * true })`, l2test -y with no security option gets 0x0008; the kernel raises the channel's level, pairs
 * (it is the initiator; bluetoothd has its agent confirm the Just Works pairing) and asks again as the link
 * is encrypted. Without an agent bluetoothd declines, the pairing fails (0x0C) and no channel opens.
 *
 * One boot (the interop suite's shared guest), cases in order on one link where they can share it.
 * afterAll leaves BlueZ as it found it: no l2test running, our link gone, enable_ecred as it was.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { ChannelClosedError, ChannelRefusedError } from '../../src/errors.js';
import type { CreditChannel } from '../../src/l2cap/coc.js';
import type { AdvertisingSet } from '../../src/gap/advertiser.js';
import { connectWhenAdvertising, lastFrame, openBridgedAdapter } from './helpers/bluez-peer.js';
import { useBlueZSession } from './helpers/bluez-session.js';
import type { GuestProgram } from './helpers/guest-control.js';
import { tshark, tsharkCreditSdus, tsharkL2cap, tsharkMalformed } from './helpers/tshark.js';

/** Our static random address (Vol 6, Part B, 1.3.2.1): l2test connects to it with -V le_random. */
const OURS = 'C2:5A:11:22:33:55';
/** The guest is qemu TCG on a shared host: the kernel and l2test take seconds. */
const SLOW = 60_000;
const ECRED_PEER = fileURLToPath(new URL('./helpers/ecred-peer.py', import.meta.url));

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** A recognisable SDU: octet i is (i * 7 + seed) & 0xff. */
const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

/** What l2test sends (tools/l2test.c do_send): sequence number (LE 32), SDU length (LE 16), then 0x7f. */
function l2testSdu(seq: number, size: number): Uint8Array {
  const b = new Uint8Array(size).fill(0x7f);
  new DataView(b.buffer).setUint32(0, seq, true);
  new DataView(b.buffer).setUint16(4, size, true);
  return b;
}

/**
 * The SDUs in l2test's dump output (tools/l2test.c hexdump(): "OOOOOOOO: xx xx … " lines of 16 octets;
 * each SDU starts again at offset 00000000).
 */
function parseDump(text: string): string[] {
  const sdus: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{8}): ((?:[0-9a-f]{2} | {3}){16})/.exec(line);
    if (!m) continue;
    const octets = m[2]!.match(/[0-9a-f]{2}/g) ?? [];
    if (parseInt(m[1]!, 16) === 0) sdus.push('');
    sdus[sdus.length - 1] += octets.join('');
  }
  return sdus;
}

/**
 * What each channel carried, in order: SDUs we sent (K-frames towards the peer travel on its CID) and
 * SDUs we read (on our CID), and whether the peer opened the channel. tshark must find the same.
 */
interface Carried { dir: 'tx' | 'rx'; handle: number; cid: number; peerOpened: boolean; laterOfRequest: boolean; hex: string }
const carried: Carried[] = [];
/** Channels the peer opened (accepted by our listener). */
const accepted = new WeakSet<CreditChannel>();
/** Channels after the first of one enhanced request of ours (4.25). */
const laterOfRequest = new WeakSet<CreditChannel>();
/** Sends and notes one SDU. */
async function send(ch: CreditChannel, sdu: Uint8Array): Promise<void> {
  await ch.send(sdu, { timeout: SLOW });
  carried.push({ dir: 'tx', handle: ch.handle, cid: ch.peerCid, peerOpened: accepted.has(ch), laterOfRequest: laterOfRequest.has(ch), hex: hex(sdu) });
}
/** Reads and notes one SDU. */
async function read(ch: CreditChannel): Promise<Uint8Array> {
  const sdu = await ch.read({ timeout: SLOW });
  if (!sdu) throw new Error(`channel 0x${ch.cid.toString(16)} ended before an SDU came (${ch.closedError?.message})`);
  carried.push({ dir: 'rx', handle: ch.handle, cid: ch.cid, peerOpened: accepted.has(ch), laterOfRequest: laterOfRequest.has(ch), hex: hex(sdu) });
  return sdu;
}
const groupBy = <T>(xs: T[], key: (x: T) => string, val: (x: T) => string): Record<string, string[]> => {
  const out: Record<string, string[]> = {};
  for (const x of xs) (out[key(x)] ??= []).push(val(x));
  return out;
};
/** An SDU as its K-frames carry it: the 2-octet SDU Length, then the SDU (Vol 3, Part A, 3.4.2). */
const withLength = (h: string): string => {
  const n = h.length / 2;
  return (n & 0xff).toString(16).padStart(2, '0') + (n >> 8).toString(16).padStart(2, '0') + h;
};

const figures: string[] = [];

describe('L2CAP credit-based channels with the Linux kernel (BlueZ 5.66 l2test in the qemu guest)', () => {
  const bz = useBlueZSession('coc-bluez', { ours: OURS, slow: SLOW });
  let adapter: Adapter;
  let conn: Connection | undefined;
  const programs: GuestProgram[] = [];
  let programCount = 0;
  let ecredBefore: string | undefined;

  /**
   * Starts l2test with these arguments, its standard output (the dumps) to a file in the guest, its
   * syslog lines (stderr) streamed to us; resolves with the program and the dump file's path.
   */
  const l2test = async (args: string[]): Promise<{ p: GuestProgram; dump: string }> => {
    const name = `l2test-${programCount++}`;
    const dump = `/tmp/coc-${name}.dump`;
    const p = await bz.ctl.spawn(name, ['sh', '-c', `exec stdbuf -oL l2test ${args.join(' ')} > ${dump}`]);
    programs.push(p);
    return { p, dump };
  };
  const listening = (p: GuestProgram): Promise<RegExpMatchArray> => p.expect(/Waiting for connection on psm \d+/, SLOW);
  const dumped = async (dump: string): Promise<string[]> => parseDump(await bz.ctl.ok(['cat', dump], SLOW));

  /** The link to BlueZ (it re-advertises after a disconnect, not at once: btvirt then fails with 0x3E). */
  const connect = async (): Promise<Connection> => {
    if (!conn?.connected) conn = await connectWhenAdvertising(adapter, bz.guest.peripheral);
    return conn;
  };

  beforeAll(async () => {
    adapter = await openBridgedAdapter(bz.guest, { capture: bz.capture, randomAddress: OURS, bonds: false });
    const ecred = await bz.ctl.run(['cat', '/sys/module/bluetooth/parameters/enable_ecred'], SLOW);
    ecredBefore = ecred.code === 0 ? ecred.stdout.trim() : undefined;
  }, 900_000);

  afterAll(async () => {
    for (const p of programs) await p.kill().catch(() => undefined);
    if (conn?.connected) await conn.disconnect().catch(() => undefined);
    await adapter?.close().catch(() => undefined);
    if (bz.ready) {
      // l2test's listeners fork a child per channel; a child ends with its channel, and our link is gone.
      if (ecredBefore !== undefined) {
        await bz.ctl.run(['sh', '-c', `echo ${ecredBefore} > /sys/module/bluetooth/parameters/enable_ecred`], SLOW).catch(() => undefined);
      }
      await bz.ctl.run(['sh', '-c', 'rm -f /tmp/coc-l2test-*.dump /tmp/coc-ecred-peer.py'], SLOW).catch(() => undefined);
    }
    console.log(['coc-bluez figures:', ...figures.map(f => `  ${f}`)].join('\n'));
  });

  /**
   * Sends `sdus` on `ch` to an l2test that dumps what it reads (`l2`): more K-frames than the
   * `kernelCredits` it gave us, so we wait for its Flow Control Credit Indications (4.24). l2test prints
   * "Received N bytes" per SDU it read (its dump of an empty SDU: nothing, so none is sent). We close the
   * channel; l2test logs the end (`end`) and its dump holds exactly these SDUs. Resolves with the
   * number of K-frames sent.
   */
  const sendPastTheCredits = async (ch: CreditChannel, sdus: Uint8Array[], kernelCredits: number,
    l2: { p: GuestProgram; dump: string }, end: RegExp): Promise<number> => {
    for (const sdu of sdus) await send(ch, sdu);
    for (const sdu of sdus) await l2.p.expect(new RegExp(`Received ${sdu.length} bytes`), SLOW);
    const frames = sdus.reduce((k, sdu) => k + Math.ceil((sdu.length + 2) / ch.peerMps), 0);
    expect(ch.stats.framesSent).toBe(frames);
    expect(frames).toBeGreaterThan(kernelCredits);
    expect(ch.stats.creditsReceived).toBeGreaterThanOrEqual(frames - kernelCredits);
    expect(ch.stats.creditStalls).toBeGreaterThan(0);
    await ch.close();
    expect(ch.closedError).toMatchObject({ by: 'local' });
    await l2.p.expect(end, SLOW);
    expect(await dumped(l2.dump)).toEqual(sdus.map(hex));
    return frames;
  };

  it('blewire opens a channel to l2test -d: SDUs up to 1000 octets, larger than the kernel\'s MPS, arrive octet for octet; the kernel\'s credits run out and come back; we disconnect', async () => {
    const c = await connect();
    const { p, dump } = await l2test(['-d', '-V', 'le_public', '-P', '129', '-I', '1000']);
    await listening(p);
    const ch = await c.openChannel(0x81, { mtu: 1000, mps: 100, initialCredits: 4, timeout: SLOW });
    // The kernel's answer (4.23): its MTU is l2test's -I; its MPS is its ACL data length less the basic
    // header (so a K-frame is one ACL packet) when that is smaller than the MTU; credits (MTU / MPS) + 1.
    expect(ch.mtu).toBe(1000);
    expect(ch.peerMps).toBeLessThan(1000);
    const kernelCredits = ch.credits;
    expect(kernelCredits).toBe(Math.floor(1000 / ch.peerMps) + 1);
    figures.push(`kernel as receiver: MTU ${ch.mtu}, MPS ${ch.peerMps}, initial credits ${kernelCredits}`);
    const mps = ch.peerMps;
    // (No empty SDU: l2test's dump loop takes a read of 0 octets for the end of the stream.)
    const sizes = [1, 23, mps - 2, mps - 1, mps, 2 * mps + 5, 1000, 777, 1000, 1000, 1000];
    const sdus = sizes.map((n, i) => pattern(n, i));
    // l2test's child reads end of stream once we close: it logs the disconnection and exits.
    const frames = await sendPastTheCredits(ch, sdus, kernelCredits, { p, dump }, /Disconnect/);
    figures.push(`blewire -> l2test -d: ${sdus.length} SDUs, ${frames} K-frames, ${ch.stats.creditsReceived} credits given back by the kernel, ${ch.stats.creditStalls} stalls`);
  });

  it('l2test -w sends to blewire, which gives 1 credit at a time with MPS 23: SDUs of 300 octets reassembled from 14 K-frames each; l2test disconnects', async () => {
    const c = await connect();
    // -g: l2test waits before it shuts the socket down, so the frames the kernel still holds for our
    // credits are sent first (the kernel drops a channel's queued frames when it is disconnected).
    const { p } = await l2test(['-w', '-V', 'le_public', '-P', '131', '-N', '6', '-b', '300', '-g', '8000']);
    await listening(p);
    const ch = await c.openChannel(0x83, { mtu: 512, mps: 23, initialCredits: 1, timeout: SLOW });
    expect(ch.peerCreditCount).toBe(1);
    for (let seq = 0; seq < 6; seq++) expect(hex(await read(ch))).toBe(hex(l2testSdu(seq, 300)));
    // 302 octets (SDU Length + 300) in K-frames of at most 23: 14 frames each, every one on a credit we gave back.
    expect(ch.stats.framesReceived).toBe(6 * 14);
    expect(ch.stats.creditsGranted).toBeGreaterThanOrEqual(6 * 14 - 1);
    // l2test shuts its socket down: the kernel's Disconnection Request ends the channel in order.
    expect(await ch.read({ timeout: SLOW })).toBeUndefined();
    expect(ch.closedError).toBeInstanceOf(ChannelClosedError);
    expect(ch.closedError).toMatchObject({ by: 'peer' });
    await p.expect(/Disconnect/, SLOW);
  });

  /**
   * l2test -y on the kernel's side opens a channel to our listener at `psm` over `link` and sends 4 SDUs
   * of 600 octets: we give 2 credits with MPS 50, so it stalls on ours (13 K-frames each) and goes on as
   * we read. `then` gets the channel (the kernel's MTU 900) once we have read all four and l2test waits
   * for ours, with the credits the kernel gave us at the start; the listener is closed after it.
   */
  const fromL2testToUs = async (link: Connection, psm: number,
    then: (ch: CreditChannel, l2: { p: GuestProgram; dump: string; kernelCredits: number }) => Promise<void>): Promise<void> => {
    const listener = adapter.listen(psm, { mtu: 700, mps: 50, initialCredits: 2 });
    try {
      const { p, dump } = await l2test(['-y', '-V', 'le_random', '-P', String(psm), '-N', '4', '-b', '600', '-I', '900', OURS]);
      const ch = await listener.accept({ timeout: SLOW });
      if (!ch) throw new Error('the listener closed');
      accepted.add(ch);
      expect(ch.handle).toBe(link.handle);
      expect(ch.mtu).toBe(900);
      const kernelCredits = ch.credits;
      for (let seq = 0; seq < 4; seq++) expect(hex(await read(ch))).toBe(hex(l2testSdu(seq, 600)));
      expect(ch.stats.framesReceived).toBe(4 * Math.ceil(602 / 50));
      await p.expect(/Receiving/, SLOW);
      await then(ch, { p, dump, kernelCredits });
    } finally {
      listener.close();
    }
  };

  it('l2test connects to blewire\'s listener on the same link (-y): we read its SDUs with 2 credits and MPS 50, answer with ours, and disconnect', async () => {
    const c = await connect();
    await fromL2testToUs(c, 0x85, async (ch, { p, dump, kernelCredits }) => {
      figures.push(`kernel as sender: its MTU ${ch.mtu}, MPS ${ch.peerMps}, credits ${kernelCredits}`);
      const back = [pattern(600, 0x55), pattern(1, 0x66), pattern(ch.peerMps + 1, 0x77)];
      for (const sdu of back) await send(ch, sdu);
      for (const sdu of back) await p.expect(new RegExp(`Received ${sdu.length} bytes`), SLOW);
      await ch.close();
      await p.expect(/Disconnect|Read error|Exit/, SLOW);
      expect(await dumped(dump)).toEqual(back.map(hex));
    });
  });

  it('refusals come back typed: nothing on the PSM is 0x0002, a listener that wants encryption (-E) 0x0008 or authentication (-S) 0x0005 on our plain link; ours reach l2test as ECONNREFUSED', async () => {
    const c = await connect();
    const none = await c.openChannel(0x91, { timeout: SLOW }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(ChannelRefusedError);
    expect(none).toMatchObject({ code: 'ECHANNELREFUSED', psm: 0x91, result: 0x0002, resultName: 'SPSM not supported' });

    // l2test -E asks for an encrypted link (BT_SECURITY_MEDIUM), -S for Secure Connections with MITM
    // (BT_SECURITY_HIGH): on our plain link the kernel answers Insufficient Encryption and Insufficient
    // Authentication respectively (4.23).
    for (const [flag, psm, result, resultName] of [['-E', 0x93, 0x0008, 'Insufficient encryption'], ['-S', 0x97, 0x0005, 'Insufficient authentication']] as const) {
      const { p } = await l2test(['-d', flag, '-V', 'le_public', '-P', String(psm)]);
      await listening(p);
      const sec = await c.openChannel(psm, { timeout: SLOW }).catch((e: unknown) => e);
      expect(sec).toBeInstanceOf(ChannelRefusedError);
      expect(sec).toMatchObject({ psm, result, resultName });
      await p.kill();
    }
    expect(c.security.encrypted).toBe(false);

    // Nothing listens on 0x95 on our side: our answer is SPSM not supported; l2test reports the refusal.
    const r = await bz.ctl.run(['l2test', '-n', '-V', 'le_random', '-P', '149', OURS], SLOW);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Can't connect: Connection refused \(111\)/);
    const answers = (await tsharkL2cap(bz.capture)).filter(x => x.cid === 0x0005 && x.dir === 'tx' && x.payload.startsWith('15'));
    // LE Credit Based Connection Response: DCID 0, MTU 0, MPS 0, credits 0, result 0x0002.
    expect(answers.at(-1)!.payload.slice(8)).toBe('0000' + '0000' + '0000' + '0000' + '0200');
  });

  it('enhanced credit-based mode (Core 5.2, 4.25-4.26) with the kernel\'s EXT_FLOWCTL sockets: two channels in one request from us, one request from the kernel to our listener', async () => {
    const c = await connect();
    // Linux 6.1 has the mode behind a module parameter (off by default); afterAll puts it back. l2test
    // 5.66 cannot open an LE socket in this mode, so helpers/ecred-peer.py drives the kernel's sockets.
    expect(ecredBefore, 'this kernel has no enable_ecred parameter').toBeDefined();
    await bz.ctl.ok(['sh', '-c', 'echo Y > /sys/module/bluetooth/parameters/enable_ecred'], SLOW);
    const script = fs.readFileSync(ECRED_PEER).toString('base64');
    await bz.ctl.ok(['sh', '-c', 'echo "$0" | base64 -d > /tmp/coc-ecred-peer.py', script], SLOW);
    const py = async (args: string[]): Promise<GuestProgram> => {
      const p = await bz.ctl.spawn(`ecred-${programCount++}`, ['python3', '-u', '/tmp/coc-ecred-peer.py', ...args]);
      programs.push(p);
      return p;
    };
    // Python starts slowly under TCG.
    const PY = 180_000;

    const p = await py(['listen', '0x87', '1000']);
    await p.expect(/listening 135/, PY);
    const chans = await c.openChannels(0x87, 2, { mtu: 1000, mps: 100, initialCredits: 3, timeout: SLOW });
    expect(chans.map(ch => [ch.mode, ch.mtu])).toEqual([['enhanced', 1000], ['enhanced', 1000]]);
    for (const ch of chans.slice(1)) laterOfRequest.add(ch);
    figures.push(`kernel as enhanced receiver: MTU ${chans[0]!.mtu}, MPS ${chans[0]!.peerMps}, credits ${chans[0]!.credits}`);
    await p.expect(/accepted 0/, SLOW);
    await p.expect(/accepted 1/, SLOW);
    for (const [i, ch] of chans.entries()) {
      for (const n of [600, ch.peerMps + 3, 1000]) {
        const sdu = pattern(n, 0x10 * (i + 1) + n);
        await send(ch, sdu);
        // The kernel's channel i is the i-th it accepted (one request, CIDs in order, 4.25).
        await p.expect(new RegExp(`sdu ${i} ${hex(sdu)}\\n`), SLOW);
      }
    }
    expect(chans.every(ch => ch.stats.creditsReceived > 0)).toBe(true);
    for (const ch of chans) await ch.close();
    await p.expect(/closed 0/, SLOW);
    await p.expect(/closed 1/, SLOW);
    await p.kill();

    // The kernel opens one enhanced channel to our listener (Credit Based Connection Request, 4.25).
    const listener = adapter.listen(0x89, { mtu: 700, mps: 80, initialCredits: 2 });
    try {
      const q = await py(['connect', OURS, '0x89', '900', '3', '500']);
      const ch = await listener.accept({ timeout: PY });
      if (!ch) throw new Error('the listener closed');
      accepted.add(ch);
      expect([ch.mode, ch.mtu]).toEqual(['enhanced', 900]);
      for (let k = 0; k < 3; k++) expect(hex(await read(ch))).toBe(hex(Uint8Array.from({ length: 500 }, (_, i) => (i * 7 + k) & 0xff)));
      await q.expect(/sent 3/, SLOW);
      const back = pattern(850, 0x99);
      await send(ch, back);
      await q.expect(new RegExp(`sdu 0 ${hex(back)}\\n`), SLOW);
      await ch.close();
      await q.expect(/closed 0/, SLOW);
    } finally {
      listener.close();
    }
  });

  /**
   * The PERIPHERAL cases' opening: our central link goes first (the cases above shared it), and BlueZ,
   * which knows us from that link, forgets us, so that it finds us anew by our advertising. Yields the
   * links it then opens to us.
   */
  const bluezWillConnect = async (): Promise<AsyncIterableIterator<Connection>> => {
    if (conn?.connected) await conn.disconnect();
    conn = undefined;
    await bz.bluez.forget();
    return adapter.accept();
  };
  /** Their end: no more accepting, our advertising off, BlueZ's link to us gone and us forgotten (best effort). */
  const bluezDone = async (incoming: AsyncIterableIterator<Connection>, set: AdvertisingSet | undefined, link: Connection | undefined): Promise<void> => {
    await incoming.return!();
    await set?.stop().catch(() => undefined);
    if (link?.connected) await link.disconnect().catch(() => undefined);
    await bz.bluez.forget().catch(() => undefined);
  };

  it('blewire as the PERIPHERAL: bluetoothd connects to our advertising; l2test opens a channel to our listener and we open one to its; credits run out and come back both ways', async () => {
    const peer = bz.bluez;
    const incoming = await bluezWillConnect();
    let set: AdvertisingSet | undefined;
    let link: Connection | undefined;
    try {
      set = await adapter.advertise({ name: 'bw-coc' });
      // bluetoothd finds our advertising, connects (the kernel is the central) and discovers our GATT
      // database (bluez-central-ops.py connect waits for ServicesResolved).
      await bz.bluez.centralOpOk('connect');
      link = (await incoming.next()).value as Connection;
      expect(link.role).toBe('peripheral');
      expect(link.address).toBe(bz.guest.peripheral);

      // 1. l2test -y on the kernel's side opens a channel to our listener over that link (the kernel
      //    finds its LE link to us by address and type).
      await fromL2testToUs(link, 0x8b, async (ch, { p, dump, kernelCredits }) => {
        expect(kernelCredits).toBe(Math.floor(900 / ch.peerMps) + 1);
        // Every K-frame but the first two came on a credit we gave back as we read.
        expect(ch.stats.creditsGranted).toBeGreaterThanOrEqual(4 * Math.ceil(602 / 50) - 2);
        // Back to l2test: more K-frames than the kernel's credits, so we wait for its Flow Control
        // Credit Indications. (l2test reads into a buffer of -b octets: an SDU longer than 600 would
        // reach it cut short.)
        const back = [pattern(600, 0x21), pattern(1, 0x22), pattern(ch.peerMps + 1, 0x23), pattern(600, 0x24), pattern(599, 0x25), pattern(577, 0x26)];
        const frames = await sendPastTheCredits(ch, back, kernelCredits, { p, dump }, /Disconnect|Read error|Exit/);
        figures.push(`peripheral link, l2test -> our listener: kernel MTU ${ch.mtu}, MPS ${ch.peerMps}, credits ${kernelCredits}; ` +
          `we granted ${ch.stats.creditsGranted}; back to it ${frames} K-frames, ${ch.stats.creditsReceived} credits from the kernel, ${ch.stats.creditStalls} stalls`);
      });

      // 2. We open a channel from the peripheral side to l2test -d (the kernel's listener) on the same
      //    link, and send it more than its credits cover; then l2test -w's SDUs come to us on 1 credit.
      const d = await l2test(['-d', '-V', 'le_public', '-P', '141', '-I', '1000']);
      await listening(d.p);
      const out = await link.openChannel(0x8d, { mtu: 1000, mps: 100, initialCredits: 4, timeout: SLOW });
      expect(out.handle).toBe(link.handle);
      const kernelCredits = out.credits;
      expect(kernelCredits).toBe(Math.floor(1000 / out.peerMps) + 1);
      const sizes = [1000, 5, out.peerMps, 1000, 999, 1000, 333];
      const sdus = sizes.map((n, i) => pattern(n, 0x40 + i));
      const frames = await sendPastTheCredits(out, sdus, kernelCredits, d, /Disconnect/);
      figures.push(`peripheral link, blewire -> l2test -d: ${sdus.length} SDUs, ${frames} K-frames on ${kernelCredits} initial credits, ` +
        `${out.stats.creditsReceived} given back, ${out.stats.creditStalls} stalls`);

      const w = await l2test(['-w', '-V', 'le_public', '-P', '143', '-N', '5', '-b', '250', '-g', '8000']);
      await listening(w.p);
      const inn = await link.openChannel(0x8f, { mtu: 512, mps: 23, initialCredits: 1, timeout: SLOW });
      for (let seq = 0; seq < 5; seq++) expect(hex(await read(inn))).toBe(hex(l2testSdu(seq, 250)));
      // 252 octets in K-frames of at most 23: 11 each, every one after the first on a credit we gave back.
      expect(inn.stats.framesReceived).toBe(5 * 11);
      expect(inn.stats.creditsGranted).toBeGreaterThanOrEqual(5 * 11 - 1);
      expect(await inn.read({ timeout: SLOW })).toBeUndefined();
      expect(inn.closedError).toMatchObject({ by: 'peer' });
      await w.p.expect(/Disconnect/, SLOW);
      // The link carried all of it and is still ours.
      expect(link.connected).toBe(true);
      expect(link.role).toBe('peripheral');
    } finally {
      await bluezDone(incoming, set, link);
    }
  });

  it('a listener that wants encryption (listen(psm, { encrypted: true })) on the PERIPHERAL link: l2test\'s request on the plain link gets 0x0008 Insufficient Encryption; the kernel pairs and asks again; with no agent bluetoothd refuses the pairing and no channel opens, with one the channel opens only once the link is encrypted', async () => {
    const peer = bz.bluez;
    const incoming = await bluezWillConnect();
    let set: AdvertisingSet | undefined;
    let link: Connection | undefined;
    const listener = adapter.listen(0x99, { mtu: 700, mps: 60, initialCredits: 3, encrypted: true });
    /** bluetoothd connects to our advertising; resolves with the link (the kernel is the central). */
    const bluezConnects = async (): Promise<Connection> => {
      set = await adapter.advertise({ name: 'bw-coc-enc' });
      await bz.bluez.centralOpOk('connect');
      const c = (await incoming.next()).value as Connection;
      await set.stop().catch(() => undefined);
      expect(c.role).toBe('peripheral');
      expect(c.security.encrypted).toBe(false);
      return c;
    };
    /** Our signalling (CID 5) and SMP (CID 6) PDUs after `after`, and the Encryption Change events. */
    const since = async (after: number): Promise<{ pdus: Array<{ frame: number; dir: string; cid: number; payload: string }>; encrypted: number[] }> => {
      const pdus = (await tsharkL2cap(bz.capture)).filter(x => x.frame > after && (x.cid === 0x0005 || x.cid === 0x0006));
      const enc = await tshark('-r', bz.capture, '-Y', `frame.number > ${after} && bthci_evt.code == 0x08`, '-T', 'fields', '-e', 'frame.number');
      return { pdus, encrypted: enc.split('\n').filter(Boolean).map(Number) };
    };
    // LE Credit Based Connection Response with DCID 0, MTU 0, MPS 0, credits 0 and this result (4.23).
    const refusal = (result: string): RegExp => new RegExp(`^15..0a000000000000000000${result}$`);
    try {
      // 1. No agent in BlueZ: l2test -y (no security option: BT_SECURITY_LOW) asks on the plain link, we
      //    answer 0x0008; the kernel raises the channel's level to MEDIUM and pairs (it is the initiator,
      //    SC Just Works: we respond). bluetoothd asks its agent to confirm the Just Works pairing; with
      //    none it answers no, and the kernel fails the pairing with 0x0C (Numeric Comparison Failed).
      //    The channel stays pending until the kernel drops the link (30 s, its SMP timeout): l2test's
      //    blocking connect() then ends in ECONNRESET. (When that wait outlasts the socket's 40 s send
      //    timeout, connect() returns EINPROGRESS instead: "Operation now in progress (115)".)
      link = await bluezConnects();
      const gone = new Promise<number>(res => link!.once('disconnect', r => res(r.code)));
      const stages1: string[] = [];
      link.on('pairing', p => stages1.push(p.stage === 'failed' ? `failed(${p.error.message})` : p.stage));
      const before1 = await lastFrame(bz.capture);
      const first = await l2test(['-y', '-V', 'le_random', '-P', '153', '-N', '2', '-b', '200', '-I', '800', OURS]);
      const err = await first.p.expect(/Can't connect: .*/, 120_000);
      expect(err[0]).toMatch(/Connection reset by peer \(104\)|Operation now in progress \(115\)/);
      expect(await gone).toBe(0x13);
      const s1 = await since(before1);
      const sig1 = s1.pdus.filter(x => x.cid === 0x0005).map(x => `${x.dir} ${x.payload}`);
      expect(sig1[0]).toMatch(/^rx 14..0a009900/); // LE Credit Based Connection Request, SPSM 0x0099
      expect(sig1[1]!.slice(3)).toMatch(refusal('0800'));
      expect(sig1).toHaveLength(2);
      const smp1 = s1.pdus.filter(x => x.cid === 0x0006);
      expect(smp1[0]).toMatchObject({ dir: 'rx' });
      expect(smp1[0]!.payload.slice(0, 2)).toBe('01'); // the kernel's Pairing Request
      expect(smp1.at(-1)).toMatchObject({ dir: 'rx', payload: '050c' }); // Pairing Failed, Numeric Comparison Failed
      expect(s1.encrypted).toEqual([]);
      expect(stages1[0]).toBe('started');
      expect(stages1.at(-1)).toMatch(/^failed/);
      figures.push(`encrypted listener, no agent: ${err[0]}; our pairing stages ${stages1.join(', ')}`);
      await peer.forget();

      // 2. simple-agent NoInputNoOutput says yes: the same request, the same 0x0008; the kernel pairs,
      //    the link is encrypted, the kernel sends its request again and we accept it.
      await peer.useAgent('NoInputNoOutput');
      link = await bluezConnects();
      const stages: string[] = [];
      link.on('pairing', p => stages.push(p.stage));
      const before = await lastFrame(bz.capture);
      const { p, dump } = await l2test(['-y', '-V', 'le_random', '-P', '153', '-N', '2', '-b', '200', '-I', '800', OURS]);
      const ch = await Promise.race([listener.accept({ timeout: 120_000 }),
        p.expect(/Can't connect.*/, 120_000).then(m => { throw new Error(`l2test: ${m[0]}`); })]);
      if (!ch) throw new Error('the listener closed');
      accepted.add(ch);
      expect(ch.handle).toBe(link.handle);
      expect(link.security).toMatchObject({ encrypted: true, secureConnections: true, authenticated: false });
      expect(stages[0]).toBe('started');
      expect(stages.at(-1)).toBe('paired');
      for (let seq = 0; seq < 2; seq++) expect(hex(await read(ch))).toBe(hex(l2testSdu(seq, 200)));
      const back = pattern(150, 0x31);
      await send(ch, back);
      await p.expect(/Received 150 bytes/, SLOW);
      await ch.close();
      await p.expect(/Disconnect|Read error|Exit/, SLOW);
      expect(await dumped(dump)).toEqual([hex(back)]);
      const s2 = await since(before);
      const sig = s2.pdus.filter(x => x.cid === 0x0005);
      // Request, refusal 0x0008, pairing, Encryption Change, the same request again, accepted (result 0).
      expect(sig.slice(0, 4).map(x => `${x.dir} ${x.payload.slice(0, 2)}`)).toEqual(['rx 14', 'tx 15', 'rx 14', 'tx 15']);
      expect(sig[1]!.payload).toMatch(refusal('0800'));
      expect(sig[3]!.payload.slice(-4)).toBe('0000');
      // The same channel asks again (its SPSM, source CID, MTU, MPS and credits; a new identifier).
      expect(sig[2]!.payload.slice(4)).toBe(sig[0]!.payload.slice(4));
      const smp = s2.pdus.filter(x => x.cid === 0x0006);
      expect(smp[0]!.payload.slice(0, 2)).toBe('01');
      expect(s2.encrypted).toHaveLength(1);
      expect(sig[1]!.frame).toBeLessThan(smp[0]!.frame);
      expect(smp.at(-1)!.frame).toBeLessThan(sig[2]!.frame);
      expect(s2.encrypted[0]!).toBeLessThan(sig[2]!.frame);
      figures.push(`encrypted listener, agent NoInputNoOutput: refused at frame ${sig[1]!.frame}, ${smp.length} SMP PDUs, ` +
        `Encryption Change at frame ${s2.encrypted[0]}, accepted at frame ${sig[3]!.frame}`);
    } finally {
      listener.close();
      await peer.useAgent(undefined).catch(() => undefined);
      await bluezDone(incoming, set, link);
    }
  });

  it('the recording: tshark frames exactly the K-frames each side sent and reassembles the same SDUs; no frame is malformed', async () => {
    // Let the recorder flush what it holds.
    await new Promise(r => setTimeout(r, 200));
    // Every K-frame on a dynamic CID as tshark cut it out of the ACL stream: per direction and CID, the
    // payloads in order are the SDU Length and the SDU of every SDU that went that way.
    const frames = (await tsharkL2cap(bz.capture)).filter(r => r.cid >= 0x0040);
    const joined = (g: Record<string, string[]>): Record<string, string> => Object.fromEntries(Object.entries(g).map(([k, v]) => [k, v.join('')]));
    // Keyed by link too: the kernel numbers its CIDs per link, so the peripheral link's repeat the first's.
    expect(joined(groupBy(frames, r => `${r.dir}/${r.handle}/${r.cid}`, r => r.payload)), 'K-frames on the wire')
      .toEqual(joined(groupBy(carried, r => `${r.dir}/${r.handle}/${r.cid}`, r => withLength(r.hex))));
    // tshark's own reassembly (from the credit-based signalling it saw) must give back our SDUs. tshark 4.0
    // does not recognise the K-frames coming towards the side that answered a connection request, nor
    // any channel but the first of an enhanced request: those SDUs are in the framing check above only.
    const rows = await tsharkCreditSdus(bz.capture);
    const decoded = groupBy(rows, r => `${r.dir}/${r.handle}/${r.cid}`, r => r.hex);
    const ours = groupBy(carried.filter(r => !(r.dir === 'rx' && r.peerOpened) && !r.laterOfRequest), r => `${r.dir}/${r.handle}/${r.cid}`, r => r.hex);
    expect(decoded).toEqual(ours);
    expect(await tsharkMalformed(bz.capture)).toEqual([]);
    figures.push(`tshark: ${frames.length} K-frames, ${rows.length} SDUs reassembled by tshark, ${carried.length} SDUs carried`);
  });
});
