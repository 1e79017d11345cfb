/**
 * terminal for a browser build: there is none, so the Web Bluetooth facade never offers the terminal
 * chooser (its default is the strongest connectable match, or the caller's deviceChooser). Same
 * exports as ../terminal.ts.
 */
import { BrowserError } from '../../errors.js';

export interface TerminalStreams { input: unknown; output: unknown }

export function processStreams(): TerminalStreams {
  throw new BrowserError('a browser page has no terminal: pass a deviceChooser to createBluetooth()');
}
export function interactiveTerminal(): TerminalStreams | undefined { return undefined; }
export async function askLine(_streams: TerminalStreams, _text: string, _question: string, _signal?: AbortSignal): Promise<string | undefined> {
  throw new BrowserError('a browser page has no terminal: pass a deviceChooser to createBluetooth()');
}
