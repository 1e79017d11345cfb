/**
 * Waiting for one side of a link to reach a pairing stage, for tests where the two sides finish on
 * their own time: the peripheral completes on its own Encryption Change or on the central's last key
 * PDU, which can come before or after the central's pair() / encrypt() resolves on a busy machine.
 * Call stage() BEFORE the action that leads to the stage (its 'pairing' events are not replayed), and
 * await it after; on timeout it says which stages that side did see.
 */
import type { Connection } from '../../../src/api/connection.js';
import type { PairingProgress } from '../../../src/link/pairing.js';

/** Resolves with the first 'pairing' progress of `conn` that matches (a stage name or a predicate). */
export function stage(conn: Connection, match: PairingProgress['stage'] | ((p: PairingProgress) => boolean), timeoutMs = 10_000): Promise<PairingProgress> {
  const ok = typeof match === 'string' ? (p: PairingProgress) => p.stage === match : match;
  return new Promise((resolve, reject) => {
    const seen: string[] = [];
    const timer = setTimeout(() => {
      conn.off('pairing', on);
      reject(new Error(`no matching pairing progress within ${timeoutMs} ms (${conn.role} saw: ${seen.join(', ') || 'nothing'})`));
    }, timeoutMs);
    const on = (p: PairingProgress): void => {
      seen.push(p.stage);
      if (!ok(p)) return;
      clearTimeout(timer);
      conn.off('pairing', on);
      resolve(p);
    };
    conn.on('pairing', on);
  });
}

/**
 * Reads recorded state (a file in the guest, a list the test keeps) every `everyMs` until `done` says
 * it is there, for at most `ms`, and resolves with the last value read either way: the caller's
 * assertions on it judge, and say what was there on timeout. For a peer that records something on its
 * own time (bluetoothd writing its info file after the kernel's key events), instead of a fixed sleep.
 */
export async function eventually<T>(read: () => Promise<T> | T, done: (value: T) => boolean, ms = 30_000, everyMs = 200): Promise<T> {
  const until = performance.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || performance.now() >= until) return value;
    await new Promise(r => setTimeout(r, everyMs));
  }
}
