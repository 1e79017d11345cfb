/**
 * Runs INSIDE the BlueZ guest (bundled by guest-stage.ts, started by serve-guest.test.ts through
 * runInGuest): the `blewire serve` command as a user runs it, the packaged CLI (pkg/src/cli/bin.mjs ->
 * pkg/dist/cli/blewire.cjs, its dependencies in /blewire-run/node_modules) in a child process, serving a
 * device twin on the kernel's HCI user channel (--transport hci<N>), while BlueZ's bluetoothd on hci0 is
 * the CENTRAL, driven over D-Bus one operation at a time by bluez-central-ops.py. This program only
 * orchestrates: it starts the command, waits for the events it prints (--json), runs BlueZ's operations,
 * then stops the command with SIGTERM. Prints ONE JSON line on stdout: the command's events, stderr, exit
 * code and recording (base64, for tshark on the host), and every BlueZ operation's result.
 *
 * Environment (set by the guest's init.sh in run mode): BLEWIRE_HCI_INDEX (a powered-off controller free
 * for the user channel), BLEWIRE_PERIPHERAL (BlueZ's adapter address, the central here).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { reportToHost } from './guest-main.js';

const TWIN = '/blewire-run/nova.json';
const CAPTURE = '/tmp/serve.btsnoop';
const FE00 = '02f00000-0000-0000-0000-00000000fe00';
const char = (n: string): string => FE00.replace(/fe00$/, n);

type Event = Record<string, unknown>;

function ops(...args: string[]): Promise<Record<string, unknown>> {
  return new Promise(resolve => {
    const child = spawn('python3', ['bluez-central-ops.py', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.once('close', code => {
      clearTimeout(timer);
      try {
        resolve({ args, ...(JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>) });
      } catch {
        resolve({ args, error: `no JSON (exit ${code}): ${stdout} ${stderr.slice(-2000)}` });
      }
    });
  });
}

async function main(): Promise<Record<string, unknown>> {
  const index = Number(process.env.BLEWIRE_HCI_INDEX);
  if (!Number.isInteger(index) || index < 0) throw new Error(`BLEWIRE_HCI_INDEX is not set (${process.env.BLEWIRE_HCI_INDEX})`);
  const events: Event[] = [];
  let stderr = '';
  const cli = spawn(process.execPath, ['pkg/src/cli/bin.mjs', 'serve', TWIN, '--transport', `hci${index}`, '--capture', CAPTURE, '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BLEWIRE_TRANSPORT: '', BLEWIRE_CAPTURE: '' } });
  const exited = new Promise<number | null>(resolve => cli.once('exit', code => resolve(code)));
  let wake: (() => void) | undefined;
  createInterface({ input: cli.stdout }).on('line', line => {
    try {
      events.push(JSON.parse(line) as Event);
    } catch {
      events.push({ event: 'text', line });
    }
    wake?.();
  });
  cli.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
  const count = (e: string): number => events.filter(x => x['event'] === e).length;
  const until = async (e: string, n: number, ms = 60_000): Promise<void> => {
    const end = Date.now() + ms;
    while (count(e) < n) {
      if (cli.exitCode !== null) throw new Error(`blewire serve exited ${cli.exitCode} before ${n}× ${e}: ${stderr}`);
      if (Date.now() > end) throw new Error(`blewire serve printed no ${n}× ${e} within ${ms} ms: ${JSON.stringify(events)} ${stderr}`);
      await new Promise<void>(r => { wake = r; setTimeout(r, 200); });
    }
  };

  const bluez: Array<Record<string, unknown>> = [];
  const op = async (...args: string[]): Promise<Record<string, unknown>> => {
    const r = await ops(...args);
    bluez.push(r);
    if (r['error']) throw new Error(`bluetoothd ${args.join(' ')}: ${String(r['error'])}`);
    return r;
  };
  let failure: string | undefined;
  try {
    await until('advertising', 1);
    const ours = String(events.find(e => e['event'] === 'advertising')!['address']);
    // 1. bluetoothd finds the twin's advertising, connects, discovers its database, reads, takes the
    //    captured notification stream and writes as the phone did; then disconnects.
    await op('connect', ours);
    await until('connected', 1);
    await op('info', ours);
    await op('read', ours, char('ff03'));
    await op('acquire-notify', ours, char('ff02'), '3');
    await op('write', ours, char('ff01'), '070000');
    await op('disconnect', ours);
    await until('disconnected', 1);
    // 2. The command advertises again: bluetoothd connects a second time and reads.
    await op('connect', ours);
    await until('connected', 2);
    await op('read', ours, char('ff00'));
    await op('disconnect', ours);
    await until('disconnected', 2);
  } catch (e) {
    failure = (e as Error).message;
  }
  cli.kill('SIGTERM');
  const timer = setTimeout(() => cli.kill('SIGKILL'), 30_000);
  const exitCode = await exited;
  clearTimeout(timer);
  let capture = '';
  try {
    capture = readFileSync(CAPTURE).toString('base64');
  } catch {
    capture = '';
  }
  return { ...(failure ? { error: failure } : {}), events, stderr: stderr.slice(-4000), exitCode, bluez, capture };
}

reportToHost(main);
