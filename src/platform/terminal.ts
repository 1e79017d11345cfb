/**
 * Questions on the terminal for code above the platform seam (the Web Bluetooth device chooser): whether
 * both ends are a terminal, and one answered line, with the input released afterwards so the process can
 * end.
 */
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';

export interface TerminalStreams { input: Readable; output: Writable }

/** This process's stdin and stdout, terminals or not. */
export function processStreams(): TerminalStreams {
  return { input: process.stdin, output: process.stdout };
}

/** stdin and stdout, when both are terminals (a person can answer). */
export function interactiveTerminal(): TerminalStreams | undefined {
  return process.stdin.isTTY === true && process.stdout.isTTY === true ? { input: process.stdin, output: process.stdout } : undefined;
}

/** Write `text`, then ask `question` and resolve with the line typed (undefined when the input ended). */
export async function askLine(streams: TerminalStreams, text: string, question: string, signal?: AbortSignal): Promise<string | undefined> {
  streams.output.write(text);
  const rl = createInterface({ input: streams.input, output: streams.output, terminal: false });
  try {
    return await new Promise<string | undefined>((resolve, reject) => {
      rl.once('close', () => resolve(undefined)); // the input ended: no answer will come
      rl.question(question, signal ? { signal } : {}).then(resolve, reject);
    });
  } finally {
    rl.close();
  }
}
