/**
 * Record a replay fixture against plain btvirt (no BlueZ daemon): start `btvirt -s` (tools/interop/btvirt.sh,
 * private /tmp), put a scripted raw-HCI peer on one emulated LE controller, and run tools/record.ts's
 * recorder for blewire on another, over `unix:<le socket>`. Stops the peer and btvirt (by PID) at the end.
 *
 *   npx tsx tools/interop/record-btvirt.ts btvirt-read [--steps "scan 1000 → connect PEER public → read 0x0003 → disconnect"]
 *
 * The peer (test/interop/helpers/peer.ts: our HCI codecs, none of blewire's host logic) connects
 * first, so btvirt gives it slot 00 (BD_ADDR 00:AA:01:00:00:42) and blewire slot 01; PEER in --steps
 * stands for its address. It advertises ADV_IND with a scan response, accepts the connection as
 * peripheral, and on the ATT channel answers, in hand-built bytes:
 *   - ATT_READ_REQ for handle 0x0003 with ATT_READ_RSP "btvirt peer" (no GATT server behind it: this is
 *     the one value it knows);
 *   - any other request with ATT_ERROR_RSP Request Not Supported (0x06) (Vol 3, Part F, 3.4.1.1), so a
 *     step it cannot serve fails visibly instead of waiting 30 s for a response.
 * It never sends anything on its own, so the recording is blewire's host alone against btvirt's LL.
 */
import { attMethodOf } from '../../src/att/pdus.js';
import { recordScenario } from '../../src/tooling/record.js';
import { parseRecordArgs } from '../record-args.js';
import { startBtvirt } from '../../test/interop/helpers/btvirt.js';
import { TestPeer } from '../../test/interop/helpers/peer.js';

/** Flags (LE General Discoverable, no BR/EDR), 16-bit services [Battery 0x180f], complete name. */
export const PEER_AD = Uint8Array.from([0x02, 0x01, 0x06, 0x03, 0x03, 0x0f, 0x18, 0x0c, 0x09, ...Buffer.from('btvirt peer')]);
/** Scan response: TX power level 0 dBm, shortened name. */
export const PEER_SCAN_RSP = Uint8Array.from([0x02, 0x0a, 0x00, 0x05, 0x08, ...Buffer.from('btvp')]);
export const PEER_READ_HANDLE = 0x0003;
export const PEER_READ_VALUE = Buffer.from('btvirt peer');

const ATT_CID = 0x0004;
const DEFAULT_STEPS = 'scan 1000 → connect PEER public → read 0x0003 → disconnect';

function usage(msg?: string): never {
  if (msg) console.error(`record-btvirt: ${msg}`);
  console.error('usage: tsx tools/interop/record-btvirt.ts <name> [--steps "…PEER…"] [--description "…"] [--dir captures] [--batch-us N]');
  process.exit(2);
}

/** Serve the peer's side of one link until it goes down; resolves with the disconnect reason. */
async function servePeer(peer: TestPeer, handle: number): Promise<number> {
  const down = peer.disconnection(600_000);
  let up = true;
  void down.then(() => { up = false; }, () => { up = false; });
  const serve = async (): Promise<void> => {
    while (up) {
      let pdu: Uint8Array;
      try {
        pdu = await peer.receiveL2cap(ATT_CID, 600_000);
      } catch {
        return; // the link or the socket went away
      }
      const opcode = pdu[0] ?? 0;
      // Commands (bit 6 set) and confirmations need no answer; unknown request opcodes get the error too.
      const method = attMethodOf(opcode);
      if (method !== 'request' && method !== 'unknown') continue;
      const reqHandle = pdu.length >= 3 ? pdu[1]! | (pdu[2]! << 8) : 0;
      if (opcode === 0x0a && reqHandle === PEER_READ_HANDLE) {
        await peer.sendL2cap(handle, ATT_CID, Uint8Array.from([0x0b, ...PEER_READ_VALUE]));
      } else {
        await peer.sendL2cap(handle, ATT_CID, Uint8Array.from([0x01, opcode, reqHandle & 0xff, reqHandle >> 8, 0x06]));
      }
    }
  };
  void serve();
  return (await down).reason;
}

async function main(): Promise<void> {
  const { name, opts } = parseRecordArgs(process.argv.slice(2), usage);
  const btvirt = await startBtvirt();
  let peer: TestPeer | undefined;
  try {
    peer = await TestPeer.open(btvirt.leSocket, 'peer');
    await peer.advertise(PEER_AD, PEER_SCAN_RSP);
    const p = peer;
    const served = p.connection(600_000).then(c => servePeer(p, c.handle));
    served.catch(() => undefined); // a session without a connection: nothing to report
    const steps = (opts['steps'] ?? DEFAULT_STEPS).replace(/\bPEER\b/g, peer.address);
    const quote = (a: string): string => (/^[\w:./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
    const scenario = await recordScenario({
      name, dir: opts['dir'] ?? 'captures', transport: `unix:${btvirt.leSocket}`, steps,
      transportLabel: 'unix:<private /tmp of tools/interop/btvirt.sh>/bt-server-le', tool: 'tools/interop/record-btvirt.ts (src/tooling/record.ts)',
      controller: 'BlueZ 5.66 btvirt -s (emulated LE controller, le socket), started by tools/interop/btvirt.sh with the AF_ALG shim',
      peer: `raw-HCI test peer on a second btvirt LE controller (${peer.address}): advertises, answers ATT_READ_REQ 0x0003 with "btvirt peer", ` +
        'every other request with Request Not Supported (tools/interop/record-btvirt.ts)',
      ...(opts['description'] ? { description: opts['description'] } : {}),
      ...(opts['batch-us'] ? { replay: { batchUs: Number(opts['batch-us']) } } : {}),
      command: ['npx tsx tools/interop/record-btvirt.ts', ...process.argv.slice(2).map(quote)].join(' '),
    });
    if (/\bdisconnect\b/.test(steps)) console.log(`peer saw the link end with reason 0x${(await served).toString(16).padStart(2, '0')}`);
    console.log(`recorded ${opts['dir'] ?? 'captures'}/${name}: ${scenario.steps}`);
    console.log(JSON.stringify(scenario.expect, null, 2));
  } finally {
    await peer?.close();
    await btvirt.stop();
  }
}

await main();
