/**
 * scenario.json: what a recording in captures/<name>/ is (STYLE c.10 item 6). Written by record mode
 * (tools/record.ts), read by the replay tests:
 * - `steps`: the scripted session that was driven (src/tooling/session.ts syntax), re-run on replay;
 * - `host`: the options the host ran with (a fixed random address, or "fresh" when it made one up; the
 *   seed of pairing's randomness);
 * - `recordedWith`: the transport, the controller and the peer the recording was made against;
 * - `masks`: bytes that legitimately vary between runs (replay.ts ReplayMask);
 * - `replay`: player settings the recording needs (batching of rx records, slack);
 * - `expect`: the public results of the session (what the replay must reproduce);
 * - `source`: for copies of third-party captures, where they come from and their licence.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReplayMask, ReplayOptions } from '../replay/transport.js';
import type { SessionResult } from './session.js';

export interface ScenarioFile {
  name: string;
  description?: string;
  /** File name of the capture next to scenario.json. */
  capture: string;
  steps: string;
  /**
   * `pairingSeed`: pairing's random values and key pairs came from this seed (src/tooling/entropy.ts;
   * tests and replay only), so the replay draws the same ones and checks the SMP octets as recorded.
   * `timeoutMs`: the session's per-operation timeout when it was not the default (a slow peer).
   * `privacy`: our own privacy was on (RPAs of the IRK seeded from pairingSeed; session option `privacy`).
   */
  host?: { randomAddress?: string | 'fresh'; pairingSeed?: string; timeoutMs?: number; privacy?: boolean };
  recordedWith: {
    transport: string;
    controller: string;
    peer?: string;
    tool?: string;
    /** The command line that re-records this scenario. */
    command?: string;
    /** Only for recordings of hardware: the model and firmware. */
    hardware?: string;
  };
  masks: ReplayMask[];
  /**
   * Keys as the PEER's own store holds them, read out of band when recording (e.g. bluetoothd's info
   * file: `localSignatureKey`, its CSRK), hex as that store writes them: tests check the capture against them.
   */
  peerKeys?: Record<string, string>;
  replay?: Pick<ReplayOptions, 'batchUs' | 'slackMs' | 'earlyToleranceMs'>;
  expect: SessionResult;
  source?: { repository: string; commit: string; path: string; licence: string };
}

/** Read captures/<dir>/scenario.json (and resolve the capture's path). */
export async function loadScenario(dir: string): Promise<ScenarioFile & { capturePath: string }> {
  const text = await readFile(join(dir, 'scenario.json'), 'utf8');
  const s = JSON.parse(text) as ScenarioFile;
  return { ...s, capturePath: join(dir, s.capture) };
}
