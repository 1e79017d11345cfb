// A browser page for Web Bluetooth sample programs: a node:vm context (its own realm, like a page)
// whose globals are what a browser gives page code — navigator.bluetooth, BluetoothUUID, TextDecoder /
// TextEncoder, AbortController, setTimeout — plus the samples' `log()` and input fields read through
// document.querySelector('#id').value. Shared by the simulator and BlueZ tiers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContext, runInContext, type Context } from 'node:vm';
import { BluetoothUUID, type Bluetooth } from '../../src/web-bluetooth/index.js';

export const SAMPLES = join(import.meta.dirname, '../fixtures/web-bluetooth-samples');

export interface WebPage {
  readonly logs: string[];
  readonly ctx: Context;
  /** Press a button: call a page function (a click does not await what it returns). */
  click(handler: string): void;
  /** Run a line of page code (the user doing something the page offers). */
  eval(code: string): unknown;
}

export function loadPage(file: string, bluetooth: Bluetooth, opts: {
  inputs?: Record<string, string>;
  setTimeout?: (fn: () => void, ms: number) => unknown;
} = {}): WebPage {
  const logs: string[] = [];
  const inputs = opts.inputs ?? {};
  const ctx = createContext({
    navigator: { bluetooth },
    BluetoothUUID,
    TextDecoder,
    TextEncoder,
    AbortController,
    console,
    setTimeout: opts.setTimeout ?? setTimeout,
    log: (...parts: unknown[]) => { logs.push(parts.join(' ')); },
    document: { querySelector: (sel: string) => ({ value: inputs[sel.replace(/^#/, '')] ?? '' }) },
  });
  runInContext(readFileSync(join(SAMPLES, file), 'utf8'), ctx, { filename: file });
  return {
    logs, ctx,
    click: handler => { runInContext(`${handler}()`, ctx); },
    eval: code => runInContext(code, ctx),
  };
}
