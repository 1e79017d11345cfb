/**
 * Pairing on a terminal: the policy the CLI's commands pair with (prompts for passkeys and comparisons
 * on stderr / stdin) and the `--io` option. Its own module so the GATT commands' shared code
 * (explore.ts) and `blewire pair` (pair.ts) both use it without importing each other.
 */
import { createInterface } from 'node:readline/promises';
import { IO_CAPABILITY_NAMES, type IoCapabilityName, type PairingPolicy } from '../link/pairing.js';
import { UsageError } from './args.js';

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

/**
 * A pairing policy that prompts on the terminal: shows our passkey, asks for the peer's, asks to
 * confirm six digits. `io` defaults to keyboardDisplay on a terminal, noInputNoOutput without one.
 */
export function terminalPairing(io?: IoCapabilityName, extra: PairingPolicy = {}): PairingPolicy {
  const tty = process.stdin.isTTY === true;
  const chosen = io ?? (tty ? 'keyboardDisplay' : 'noInputNoOutput');
  return {
    ...extra,
    io: chosen,
    onPasskeyDisplay: (n, peer) => { process.stderr.write(`pairing with ${peer.address}: type ${String(n).padStart(6, '0')} on the device\n`); },
    onPasskeyRequest: async peer => {
      if (!tty) throw new UsageError('the device shows a passkey to type, but stdin is not a terminal');
      const text = (await ask(`pairing with ${peer.address}: passkey shown on the device: `)).trim();
      if (!/^\d{1,6}$/.test(text)) throw new UsageError('a passkey is six digits');
      return Number(text);
    },
    onNumericComparison: async (v, peer) => {
      if (!tty) return false;
      const a = (await ask(`pairing with ${peer.address}: does the device show ${String(v).padStart(6, '0')}? [y/N] `)).trim();
      return /^y(es)?$/i.test(a);
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

