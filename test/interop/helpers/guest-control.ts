/**
 * The host side of the guest's control line (tools/interop/guest/guest-ctl.py on ttyS3, the host's
 * <run>/ctl.sock): run a program in the BlueZ guest to completion (`run`), or start a long-lived one
 * (`spawn`: BlueZ's simple-agent) and talk to it — its output as it comes, prompts included, and
 * writes to its stdin. One JSON object per line each way.
 *
 * The line outlives a host connection (qemu drops what the guest writes while no host is connected,
 * possibly mid-line), so lines that do not parse are ignored and `open()` pings until an answer comes.
 * Every request has a deadline; close() rejects what is pending and leaves the guest's programs to
 * the caller (kill them first).
 */
import * as net from 'node:net';

/** BlueZ's example programs in the guest (simple-agent, example-gatt-server, example-advertisement). */
const EXAMPLES = '/opt/bluez-examples';

interface Pending {
  resolve(v: Record<string, unknown>): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut?: boolean;
}

/** A program started with spawn(): what it has written so far (stdout and stderr), and its exit. */
export class GuestProgram {
  /** Everything it wrote, both streams in arrival order. */
  output = '';
  /** Where the next expect() starts looking. */
  private mark = 0;
  exitCode: number | undefined;
  private waiters: Array<{ test: () => boolean; resolve: () => void }> = [];
  /** Standing answers: every time the output matches `re` (scanned on their own cursor), `reply` is written. */
  private responders: Array<{ re: RegExp; reply: string; from: number; count: number }> = [];

  constructor(readonly name: string, private readonly ctl: GuestControl) {}

  /** @internal */
  feed(data: string): void {
    this.output += data;
    for (const r of this.responders) {
      for (;;) {
        const m = this.output.slice(r.from).match(r.re);
        if (!m) break;
        r.from += (m.index ?? 0) + m[0].length;
        r.count++;
        this.write(r.reply).catch(() => undefined);
      }
    }
    this.wake();
  }

  /**
   * Answers every prompt matching `re` with `reply` from now on (a user who always says yes); returns
   * a function giving how many times it answered.
   */
  respond(re: RegExp, reply: string): () => number {
    const r = { re, reply, from: this.output.length, count: 0 };
    this.responders.push(r);
    return () => r.count;
  }

  /** @internal */
  exited(code: number): void {
    this.exitCode = code;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      if (w.test()) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /**
   * Waits until the output after the previous match matches `re`; returns the match and moves past
   * it. Rejects after `timeoutMs` (with the output seen) or when the program exits first.
   */
  expect(re: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const find = (): RegExpMatchArray | null => {
      const m = this.output.slice(this.mark).match(re);
      if (m) this.mark += (m.index ?? 0) + m[0].length;
      return m;
    };
    const now = find();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      let found: RegExpMatchArray | null = null;
      const w = {
        test: () => (found = find()) !== null || this.exitCode !== undefined,
        resolve: () => {
          clearTimeout(timer);
          if (found) resolve(found);
          else reject(new Error(`${this.name} exited (${this.exitCode}) before printing ${re}; it printed:\n${this.output}`));
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name} did not print ${re} within ${timeoutMs} ms; it printed:\n${this.output}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Output since the last expect() match (and marks it read). */
  drain(): string {
    const s = this.output.slice(this.mark);
    this.mark = this.output.length;
    return s;
  }

  write(data: string): Promise<void> {
    return this.ctl.request({ op: 'write', name: this.name, data }).then(() => undefined);
  }

  async kill(): Promise<void> {
    if (this.exitCode !== undefined) return;
    const gone = new Promise<void>(resolve => this.waiters.push({ test: () => this.exitCode !== undefined, resolve }));
    await this.ctl.request({ op: 'kill', name: this.name });
    await Promise.race([gone, new Promise(r => setTimeout(r, 10_000))]);
  }
}

export class GuestControl {
  private rx = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly programs = new Map<string, GuestProgram>();
  private closed: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('close', () => this.fail(new Error('guest control line closed')));
    sock.on('error', err => this.fail(err));
  }

  /** Connects to ctl.sock and waits until guest-ctl.py answers a ping. */
  static async open(socketPath: string, timeoutMs = 30_000): Promise<GuestControl> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const ctl = new GuestControl(sock);
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        await ctl.request({ op: 'ping' }, 3_000);
        return ctl;
      } catch (e) {
        if (Date.now() > end) {
          ctl.close();
          throw new Error(`guest-ctl.py did not answer on ${socketPath} within ${timeoutMs} ms`, { cause: e });
        }
      }
    }
  }

  /** Runs argv in the guest to completion (the guest kills it after timeoutMs). */
  async run(argv: string[], timeoutMs = 60_000, cwd?: string): Promise<RunResult> {
    const r = await this.request({ op: 'run', argv, timeout: timeoutMs / 1000, ...(cwd ? { cwd } : {}) }, timeoutMs + 30_000);
    return r as unknown as RunResult;
  }

  /** Runs argv and insists on exit code 0; returns its stdout. */
  async ok(argv: string[], timeoutMs = 60_000, cwd?: string): Promise<string> {
    const r = await this.run(argv, timeoutMs, cwd);
    if (r.code !== 0) throw new Error(`guest: ${argv.join(' ')} exited ${r.code}${r.timedOut ? ' (timed out)' : ''}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** Starts a long-lived program under a name; its output streams into the returned GuestProgram. */
  async spawn(name: string, argv: string[], cwd?: string): Promise<GuestProgram> {
    const p = new GuestProgram(name, this);
    this.programs.set(name, p);
    try {
      await this.request({ op: 'spawn', name, argv, ...(cwd ? { cwd } : {}) });
    } catch (e) {
      this.programs.delete(name);
      throw e;
    }
    return p;
  }

  /**
   * bluetoothd started again as the guest's init.sh starts it, and with `withExamples` BlueZ's example
   * GATT server and advertisement (which register with it) too; resolves once the adapter is powered
   * (and the examples registered).
   */
  async restartBluetoothd(withExamples: boolean): Promise<void> {
    await this.ok(['sh', '-c', 'for p in $(pidof bluetoothd); do kill $p; done; for i in $(seq 50); do pidof bluetoothd >/dev/null || exit 0; sleep 0.1; done; exit 1'], 60_000);
    await this.ok(['sh', '-c', '/usr/libexec/bluetooth/bluetoothd -n >>/tmp/bluetoothd.log 2>&1 & for i in $(seq 300); do btmgmt --index 0 info 2>/dev/null | grep -q "current settings:.*powered" && exit 0; sleep 0.2; done; exit 1'], 90_000);
    if (withExamples) {
      await this.ok(['sh', '-c', `for p in $(pgrep -f '^python3 [.]/example-(gatt-server|advertisement)'); do kill $p; done; cd ${EXAMPLES};
        python3 ./example-gatt-server >/tmp/gatt-server.log 2>&1 & python3 ./example-advertisement >/tmp/advertisement.log 2>&1 &
        for i in $(seq 600); do grep -q 'GATT application registered' /tmp/gatt-server.log && grep -q 'Advertisement registered' /tmp/advertisement.log && exit 0; sleep 0.2; done; exit 1`], 150_000);
    }
  }

  /**
   * For test files that share one guest: when bluetoothd is gone, returns an account of why (the guest
   * kernel's last BUG / Oops lines) after starting it and the examples again; undefined when it runs.
   * (Linux 6.1 in the guest has a list corruption BUG in hci_chan_del when bluetoothd closes an L2CAP
   * socket whose link the kernel is tearing down, e.g. its reverse service discovery's connect to a
   * peer that just went away, cancelled by a power-off: that kills bluetoothd, and without this every
   * later file failed on a peer with no GATT server, the kernel dropping each link 4 s in as unused.)
   */
  async reviveBluetoothd(): Promise<string | undefined> {
    if ((await this.run(['pidof', 'bluetoothd'], 30_000)).code === 0) return undefined;
    const why = (await this.run(['sh', '-c', "dmesg | grep -E 'BUG|Oops|RIP:|Call Trace|list_del|hci_chan_del|l2cap' | tail -n 12"], 30_000)).stdout;
    await this.restartBluetoothd(true);
    return `bluetoothd was not running in the shared guest: started it and BlueZ's examples again. The guest kernel said:\n${why}`;
  }

  /** @internal */
  request(body: Record<string, unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`guest control: no answer to ${JSON.stringify(body).slice(0, 200)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: v => { clearTimeout(timer); resolve(v); },
        reject: e => { clearTimeout(timer); reject(e); },
        timer,
      });
      this.sock.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  close(): void {
    this.fail(new Error('guest control line closed by the host'));
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    this.rx += chunk;
    for (;;) {
      const nl = this.rx.indexOf('\n');
      if (nl < 0) break;
      const line = this.rx.slice(0, nl).trim();
      this.rx = this.rx.slice(nl + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // the tail of a line written while no host was connected
      }
      if (typeof msg.ev === 'string') {
        const p = this.programs.get(String(msg.name));
        if (!p) continue;
        if (msg.ev === 'out') p.feed(String(msg.data));
        else if (msg.ev === 'exit') {
          this.programs.delete(p.name);
          p.exited(Number(msg.code));
        }
        continue;
      }
      const waiter = this.pending.get(Number(msg.id));
      if (!waiter) continue;
      this.pending.delete(Number(msg.id));
      if (typeof msg.error === 'string') waiter.reject(new Error(`guest control: ${msg.error}`));
      else waiter.resolve(msg);
    }
    if (this.rx.length > 1 << 20) this.rx = '';
  }

  private fail(err: Error): void {
    this.closed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
