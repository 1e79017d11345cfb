/**
 * A Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
 * JSON messages each ended by a NUL octet, the browser reading fd 3 and writing fd 4), so no port is
 * opened and nothing else on the machine can attach. Used by the Web Bluetooth bridge to run real
 * pages with blewire as their radio.
 *
 * Bounds: a message from the browser larger than MAX_CDP_MESSAGE ends the session (the bridge sends
 * small messages; a page cannot make the browser send us unbounded ones without that), and calls still
 * unanswered when the browser exits are rejected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BrowserError } from '../errors.js';

export const MAX_CDP_MESSAGE = 16 * 1024 * 1024;

export interface CdpEvent { method: string; params: Record<string, unknown>; sessionId?: string }

export interface ChromiumOptions {
  /** The browser binary (default: $BLEWIRE_CHROMIUM, else `chromium`). */
  executable?: string;
  /** Headless (default true). */
  headless?: boolean;
  /** More command-line switches. */
  args?: string[];
}


/**
 * Remove a browser's profile once the browser process has exited. Its helper processes (renderer,
 * utility, crash handler) can still be writing in it for a moment after that, which makes a recursive
 * remove fail with ENOTEMPTY (seen in CI: an unhandled rejection after the browser tests). fs.rm's own
 * retry takes ENOTEMPTY, EBUSY and EPERM: 10 more tries, each 50 ms later than the one before (2.75 s
 * in all). A profile that still cannot be removed stays in the temp directory: never a failure of the
 * caller, and never a rejection nobody awaits.
 */
async function removeProfile(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  } catch {
    // left behind, as said above
  }
}

export class Chromium {
  #proc: ChildProcess;
  #out: Writable;
  #next = 1;
  readonly #calls = new Map<number, { resolve(v: Record<string, unknown>): void; reject(e: Error): void; method: string }>();
  readonly #listeners = new Set<(e: CdpEvent) => void>();
  #buf: Buffer[] = [];
  #bufLen = 0;
  #closed: Error | undefined;
  readonly exited: Promise<void>;
  readonly #profile: string;

  private constructor(proc: ChildProcess, profile: string) {
    this.#proc = proc;
    this.#profile = profile;
    this.#out = proc.stdio[3] as Writable;
    const input = proc.stdio[4] as Readable;
    input.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#out.on('error', () => undefined);
    this.exited = new Promise(resolve => {
      proc.once('exit', (code, signal) => {
        this.#fail(new BrowserError(`chromium exited (${signal ?? `code ${code}`})`));
        void removeProfile(this.#profile).then(resolve);
      });
    });
  }

  /** Start the browser with a fresh private profile. */
  static async launch(options: ChromiumOptions = {}): Promise<Chromium> {
    const exe = options.executable ?? process.env['BLEWIRE_CHROMIUM'] ?? 'chromium';
    const profile = await mkdtemp(join(tmpdir(), 'blewire-chromium-'));
    const args = [
      ...(options.headless ?? true ? ['--headless=new'] : []),
      '--remote-debugging-pipe', `--user-data-dir=${profile}`,
      '--no-first-run', '--no-default-browser-check', '--disable-gpu', '--disable-extensions',
      '--disable-background-networking', '--disable-sync', '--mute-audio',
      // Root cannot use the sandbox (the CI and gateway machines run as root).
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      ...(options.args ?? []),
      'about:blank',
    ];
    const proc = spawn(exe, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', () => resolve());
      proc.once('error', e => reject(new BrowserError(`cannot start ${exe}: ${e.message}. Install Debian's chromium (apt-get install chromium) or set BLEWIRE_CHROMIUM.`)));
    });
    const c = new Chromium(proc, profile);
    try {
      await c.send('Browser.getVersion');
    } catch (e) {
      c.close();
      throw new BrowserError(`${exe} did not answer on the DevTools pipe: ${(e as Error).message}${stderr ? `\n${stderr.trim()}` : ''}`);
    }
    return c;
  }

  /** A DevTools call (on a target's session when `sessionId` is given). */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject, method });
      this.#out.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  onEvent(fn: (e: CdpEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #onData(chunk: Buffer): void {
    let start = 0;
    for (let i = chunk.indexOf(0); i !== -1; i = chunk.indexOf(0, start)) {
      const part = chunk.subarray(start, i);
      const whole = this.#bufLen ? Buffer.concat([...this.#buf, part]) : part;
      this.#buf = [];
      this.#bufLen = 0;
      this.#onMessage(whole.toString('utf8'));
      start = i + 1;
    }
    if (start < chunk.length) {
      this.#buf.push(chunk.subarray(start));
      this.#bufLen += chunk.length - start;
      if (this.#bufLen > MAX_CDP_MESSAGE) {
        this.#fail(new BrowserError(`a DevTools message over ${MAX_CDP_MESSAGE} octets`));
        this.close();
      }
    }
  }

  #onMessage(text: string): void {
    let msg: { id?: number; result?: Record<string, unknown>; error?: { message?: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof msg.id === 'number') {
      const call = this.#calls.get(msg.id);
      if (!call) return;
      this.#calls.delete(msg.id);
      if (msg.error) call.reject(new BrowserError(`${call.method}: ${msg.error.message ?? 'failed'}`));
      else call.resolve(msg.result ?? {});
    } else if (typeof msg.method === 'string') {
      const e: CdpEvent = { method: msg.method, params: msg.params ?? {}, ...(msg.sessionId ? { sessionId: msg.sessionId } : {}) };
      for (const fn of [...this.#listeners]) fn(e);
    }
  }

  #fail(e: Error): void {
    if (this.#closed) return;
    this.#closed = e;
    for (const c of this.#calls.values()) c.reject(e);
    this.#calls.clear();
  }

  /** End the browser (SIGKILL after 2 s if it does not leave on its own). */
  close(): Promise<void> {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) {
      this.#out.end();
      this.#proc.kill('SIGTERM');
      const t = setTimeout(() => this.#proc.kill('SIGKILL'), 2000);
      void this.exited.then(() => clearTimeout(t));
    }
    return this.exited;
  }
}
