// What a CLI command printed, captured in-process: console.log / console.error lines and raw
// process.stdout.write chunks (scan --json writes there directly). Restored by vi.restoreAllMocks().
import { vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseCapture } from '../../../src/capture/index.js';
import { decodeRecords, type DecodedLine } from '../../../src/inspect/decode.js';

export interface Output {
  /** console.log lines and process.stdout.write text, in order, split into lines. */
  stdout(): string[];
  /** console.error lines. */
  stderr(): string[];
}

export function captureOutput(): Output {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.map(String).join(' ') + '\n'); });
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.map(String).join(' ') + '\n'); });
  vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array) => {
    out.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write);
  const lines = (parts: string[]): string[] => parts.join('').split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  return { stdout: () => lines(out), stderr: () => lines(err) };
}

/** Every decoded record and L2CAP PDU of a capture file the command wrote. */
export function decodedCapture(path: string): DecodedLine[] {
  return [...decodeRecords(parseCapture(new Uint8Array(readFileSync(path))))]; // a plain Uint8Array, not a Buffer, so values compare with toEqual
}
