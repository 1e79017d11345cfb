/**
 * Pairing on a terminal: the policy the CLI's commands pair with (prompts for passkeys and comparisons
 * on stderr / stdin) and the `--io` option. Its own module so the GATT commands' shared code
 * (explore.ts) and `blewire pair` (pair.ts) both use it without importing each other.
 */
import { createInterface } from 'node:readline/promises';
import { IO_CAPABILITY_NAMES, type IoCapabilityName, type PairingPolicy } from '../link/pairing.js';
import { UsageError } from './args.js';

/** Prompts still waiting for a line; closePrompts() abandons them. */
const pending = new Set<AbortController>();

/**
 * Ask one line on stderr / stdin. Resolves undefined when stdin ends (Ctrl-D, a closed pipe) or the
 * prompt is abandoned (closePrompts): never left waiting, so a pending prompt cannot hold the process.
 */
async function ask(question: string): Promise<string | undefined> {
  const ac = new AbortController();
  pending.add(ac);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // readline/promises leaves question() pending for ever when the input ends: race it with 'close'.
  const closed = new Promise<undefined>(resolve => rl.once('close', () => resolve(undefined)));
  try {
    return await Promise.race([rl.question(question, { signal: ac.signal }), closed]);
  } catch (e) {
    if (ac.signal.aborted) return undefined;
    throw e;
  } finally {
    pending.delete(ac);
    rl.close();
  }
}

/**
 * Abandon every prompt still waiting for the user (the pairing it was for has ended: the peer failed
 * it, the link dropped, the command is done), so that stdin is released and the process can exit.
 */
export function closePrompts(): void {
  for (const ac of pending) ac.abort();
}

/** A mistyped answer is asked again this many times in all before the prompt gives up. */
const TRIES = 3;

/**
 * A pairing policy that prompts on the terminal: shows our passkey, asks for the peer's, asks to
 * confirm six digits. `io` defaults to keyboardDisplay on a terminal, noInputNoOutput without one.
 * A passkey that is not 1-6 digits, or a comparison answer that is not y/yes/n/no/empty, is asked
 * again (at most TRIES times in all); stdin ending cancels (passkey) or declines (comparison).
 */
export function terminalPairing(io?: IoCapabilityName, extra: PairingPolicy = {}): PairingPolicy {
  const tty = process.stdin.isTTY === true;
  const chosen = io ?? (tty ? 'keyboardDisplay' : 'noInputNoOutput');
  const say = (line: string): void => { process.stderr.write(`${line}\n`); };
  return {
    ...extra,
    io: chosen,
    onPasskeyDisplay: (n, peer) => { say(`pairing with ${peer.address}: type ${String(n).padStart(6, '0')} on the device`); },
    onPasskeyRequest: async peer => {
      if (!tty) {
        // Said here, not only thrown: the pairing layer turns a throw into Passkey Entry Failed.
        const why = 'the device shows a passkey to type, but stdin is not a terminal';
        say(`pairing with ${peer.address}: ${why}`);
        throw new UsageError(why);
      }
      for (let n = 1; ; n++) {
        const text = await ask(`pairing with ${peer.address}: passkey shown on the device: `);
        if (text === undefined) {
          say('no passkey typed (stdin closed): pairing cancelled');
          throw new UsageError('no passkey typed: stdin closed');
        }
        const t = text.trim();
        if (/^\d{1,6}$/.test(t)) return Number(t);
        if (n >= TRIES) {
          say('no valid passkey: pairing cancelled');
          throw new UsageError('a passkey is six digits, 000000-999999');
        }
        say('a passkey is six digits, 000000-999999; try again');
      }
    },
    onNumericComparison: async (v, peer) => {
      if (!tty) return false;
      for (let n = 1; ; n++) {
        const a = await ask(`pairing with ${peer.address}: does the device show ${String(v).padStart(6, '0')}? [y/N] `);
        if (a === undefined) return false;
        const t = a.trim();
        if (/^y(es)?$/i.test(t)) return true;
        if (/^(no?)?$/i.test(t) || n >= TRIES) return false;
        say('answer y or n');
      }
    },
  };
}

export function ioOption(v: string | true | undefined): IoCapabilityName | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(IO_CAPABILITY_NAMES as readonly string[]).includes(v)) {
    throw new UsageError(`--io is one of ${IO_CAPABILITY_NAMES.join(', ')}`);
  }
  return v as IoCapabilityName;
}

