/**
 * Record a replay fixture of blewire as the PERIPHERAL with BlueZ 5.66 as the central (issue 10's
 * "replay fixtures of the BlueZ sessions"): boot the qemu BlueZ guest in bridge mode, run the session's
 * peripheral steps (serve the scenario's database.json, advertise, accept, wait for subscriptions,
 * notify, indicate, wait for the disconnection) on the host over the bridged H4 socket under the
 * recorder, while bluetoothd (hci0 in the guest), driven over D-Bus through the control line
 * (test/interop/helpers/bluez-central-ops.py, one operation per call), scans, connects, discovers our
 * database by itself, reads, writes, reads back, subscribes and disconnects. Stops the guest at the end.
 *
 *   flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts bluez-central-gatt
 *
 * Our address is a fixed static random one (no mask needed); the session has no pairing, so nothing
 * else on our side is random. BlueZ's own operations and their results are printed; the scenario keeps
 * what our side saw (the `served` results) and what BlueZ did in `recordedWith.peer`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordScenario } from '../../src/tooling/record.js';
import { StreamTransport } from '../../src/transport/stream.js';
import { startBlueZGuest, syncH4 } from '../../test/interop/helpers/bluez-guest.js';
import { GuestControl } from '../../test/interop/helpers/guest-control.js';
import { parseRecordArgs } from '../record-args.js';

const OPS = fs.readFileSync(fileURLToPath(new URL('../../test/interop/helpers/bluez-central-ops.py', import.meta.url)), 'utf8');
/** Our static random address (Vol 6, Part B, 1.3.2.1): fixed, so the recording needs no mask for it. */
export const OURS = 'C3:5A:11:22:33:66';
const SVC = 'b1e0c000-5c1e-4d6a-9f3b-2a7e5d8c1b00';
const U = (n: number): string => SVC.replace('b1e0c000', `b1e0c00${n}`);

/** The database served (the list-of-services shape of src/tooling/database-file.ts). */
export const DATABASE = [{
  uuid: SVC,
  characteristics: [
    { uuid: U(1), properties: ['read'], value: 'hello BlueZ' },
    { uuid: U(2), properties: ['read', 'write'], value: { hex: '00' } },
    { uuid: U(3), properties: ['notify'], value: { hex: '00' } },
    { uuid: U(4), properties: ['indicate'], value: { hex: '00' } },
  ],
}];

/** Our side. The waits between notifications let bluetoothd's D-Bus Value see each one (it polls). */
const STEPS = [
  'serve database.json', `advertise bwr ${SVC}`, 'accept',
  `subscribed ${U(3)}`, `send-notification ${U(3)} 0101`, 'wait 1000', `send-notification ${U(3)} 0202`,
  `subscribed ${U(4)}`, `send-indication ${U(4)} 0303`,
  'wait-disconnect',
].join(' → ');

/** BlueZ's side, in order (bluez-central-ops.py operations). */
const BLUEZ_OPS: string[][] = [
  ['connect'], ['read', U(1)], ['write', U(2), 'c0ffee'], ['read', U(2)], ['notify', U(3), '2'], ['notify', U(4), '1'], ['disconnect'],
];

function usage(msg?: string): never {
  if (msg) console.error(`record-bluez-central: ${msg}`);
  console.error('usage: flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts <name> [--dir captures] [--batch-us N]');
  process.exit(2);
}

async function main(): Promise<void> {
  const { name, opts } = parseRecordArgs(process.argv.slice(2), usage);
  const dir = opts['dir'] ?? 'captures';
  const out = path.join(dir, name);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'database.json'), `${JSON.stringify(DATABASE, null, 2)}\n`);
  const guest = await startBlueZGuest();
  let ctl: GuestControl | undefined;
  try {
    ctl = await GuestControl.open(guest.ctlSocket);
    const c = ctl;
    const bluez = async (op: string[]): Promise<Record<string, unknown>> => {
      const r = await c.run(['python3', '-c', OPS, op[0]!, OURS, ...op.slice(1)], 150_000);
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
    const sock = await syncH4(guest.h4Socket);
    const transport = new StreamTransport(sock, `unix:${guest.h4Socket}`);
    sock.resume();
    const central = (async () => {
      const results: Array<Record<string, unknown>> = [];
      for (const op of BLUEZ_OPS) results.push(await bluez(op));
      return results;
    })();
    central.catch(() => undefined);
    const batch = opts['batch-us'] ?? '1000';
    const scenario = await recordScenario({
      name, dir, transport, steps: STEPS, randomAddress: OURS,
      transportLabel: 'unix:<guest run dir>/h4.sock (the guest\'s bridged H4 socket)',
      controller: 'BlueZ 5.66 btvirt -s -L -l1 (emulated LE controller) in the qemu BlueZ guest, over its bridged H4 socket',
      peer: `BlueZ 5.66 bluetoothd (hci0 in the guest) as the central, driven over D-Bus by test/interop/helpers/bluez-central-ops.py: ${BLUEZ_OPS.map(o => o.join(' ')).join(', ')}`,
      tool: 'tools/interop/record-bluez-central.ts',
      description: 'blewire as the peripheral, BlueZ as the central: BlueZ scans and connects to our advertiser, discovers our database by itself (GAP, GATT and the served service), reads a value, writes one and reads it back, enables notifications (two sent) and indications (one sent, confirmed), disconnects.',
      command: `flock /tmp/blewire-guest.lock npx tsx tools/interop/record-bluez-central.ts ${name}`,
      replay: { batchUs: Number(batch) },
    });
    const ops = await central;
    console.log(`recorded ${out}: ${scenario.steps}`);
    console.log(JSON.stringify({ bluez: ops, expect: scenario.expect }, null, 2));
  } finally {
    ctl?.close();
    await guest.stop();
  }
}

await main();
