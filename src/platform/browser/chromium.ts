/**
 * chromium for a browser build: a page cannot start a browser. Same exports as ../chromium.ts.
 */
import { BrowserError } from '../../errors.js';

export const MAX_CDP_MESSAGE = 16 * 1024 * 1024;
export interface CdpEvent { method: string; params: Record<string, unknown>; sessionId?: string }
export interface ChromiumOptions { executable?: string; headless?: boolean; args?: string[] }

export class Chromium {
  private constructor() { /* never made in a browser */ }
  static async launch(_options: ChromiumOptions = {}): Promise<Chromium> {
    throw new BrowserError('openBrowserPage() runs in Node: a browser page cannot start Chromium');
  }
}
