/**
 * Record mode: run a scripted session against any transport under the recorder and write
 * captures/<name>/capture.btsnoop plus captures/<name>/scenario.json (the steps, the public results,
 * the controller and peer, and the masks). tools/record.ts is the command line around this.
 *
 * Timestamps: a transport with its own clock (the simulator) is recorded on that virtual clock from a
 * fixed epoch, so recording the same scenario twice gives the same bytes; anything else is recorded
 * on the wall clock.
 */
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCapture } from '../capture/read.js';
import { openCaptureFile } from '../capture/writer.js';
import { decodeHciPacket } from '../hci/packets.js';
import { staticRandomAddress } from '../api/adapter.js';
import { openTransport, type OpenTransportOptions } from '../transport/open.js';
import { recordTransport } from '../transport/record.js';
import type { ReplayMask } from '../replay/transport.js';
import type { HciTransport } from '../transport/types.js';
import { formatSteps, parseSteps, runSession, type RunSessionOptions, type SessionResult } from './session.js';
import type { ScenarioFile } from './scenario.js';

/** 2025-01-01T00:00:00Z in µs: the epoch of recordings made on a virtual clock. */
export const VIRTUAL_EPOCH_US = Date.UTC(2025, 0, 1) * 1000;

export interface RecordScenarioOptions {
  name: string;
  /** captures/ (the scenario goes to <dir>/<name>/). */
  dir: string;
  /** A transport spec for openTransport, or an open transport. */
  transport: string | HciTransport;
  transportOptions?: OpenTransportOptions;
  steps: string;
  /** A fixed static random address, or 'fresh' (a new one per run, masked in the scenario). */
  randomAddress?: string | 'fresh';
  description?: string;
  controller: string;
  peer?: string;
  hardware?: string;
  /** The command line that made the recording (stored so the fixture can be re-recorded). */
  command?: string;
  /** The tool that drove the recording (default tools/record.ts). */
  tool?: string;
  /** What to store as the transport when the spec names a throw-away path (e.g. btvirt's private /tmp). */
  transportLabel?: string;
  /** Player settings to store with the scenario. */
  replay?: ScenarioFile['replay'];
  /** Seed pairing's randomness (tests and replay only, src/tooling/entropy.ts); stored as `host.pairingSeed`. */
  pairingSeed?: string;
  /** Passed to the session: told each passkey we display / Numeric Comparison value we accept. */
  onPasskeyDisplay?: (passkey: string) => void;
  onNumericComparison?: (value: string) => void;
  /** Passed to the session: the passkey the peer displays, for a `pair … passkey=peer` step. */
  onPasskeyRequest?: RunSessionOptions['onPasskeyRequest'];
  /** Per-operation timeout of the session (ms); stored as `host.timeoutMs` so the replay runs with it. */
  timeoutMs?: number;
  onPeerAction?: RunSessionOptions['onPeerAction'];
  /** Our own privacy (the session's `privacy`); stored as `host.privacy`. */
  privacy?: boolean;
  onAddress?: RunSessionOptions['onAddress'];
  onStep?: RunSessionOptions['onStep'];
  /** Asked once the session ended: keys the peer's own store reported (stored as `peerKeys`). */
  peerKeys?: () => Record<string, string> | undefined;
}

/**
 * Fields that vary between runs for reasons outside the host's control, by command kind (what the
 * host sends depends on them), with why.
 */
const VARYING: Record<string, Array<{ field: string; why: string }>> = {
  leEncrypt: [
    { field: 'key', why: 'derived from keys or random values of this run (Vol 4, Part E, 7.8.22)' },
    { field: 'plaintextData', why: 'derived from random values of this run (e.g. an RPA hash input)' },
  ],
};

/** The masks a recording needs: the host's made-up random address and every value derived from randomness. */
export function masksFor(capture: Uint8Array, freshRandomAddress: boolean): ReplayMask[] {
  const masks: ReplayMask[] = [];
  const kinds = new Set<string>();
  for (const rec of parseCapture(capture)) {
    if (rec.dir !== 'tx' || !rec.packet || rec.packet[0] !== 0x01) continue;
    try {
      const p = decodeHciPacket(rec.packet);
      if (p.type === 'command') kinds.add(p.kind);
    } catch {
      // an undecodable command is compared byte for byte
    }
  }
  if (freshRandomAddress && kinds.has('leSetRandomAddress')) {
    masks.push({ kind: 'leSetRandomAddress', field: 'randomAddress', why: 'a fresh static random address per run (Vol 6, Part B, 1.3.2.1)' });
  }
  for (const [kind, fields] of Object.entries(VARYING)) {
    if (kinds.has(kind)) for (const f of fields) masks.push({ kind, field: f.field, why: f.why });
  }
  return masks;
}

/** Record one scenario; returns the scenario file as written. */
export async function recordScenario(o: RecordScenarioOptions): Promise<ScenarioFile> {
  const steps = parseSteps(o.steps);
  const out = join(o.dir, o.name);
  mkdirSync(out, { recursive: true });
  const capturePath = join(out, 'capture.btsnoop');
  const inner = typeof o.transport === 'string' ? await openTransport(o.transport, o.transportOptions ?? {}) : o.transport;
  const clock = inner.clock;
  const writer = openCaptureFile(capturePath, { format: 'btsnoop' });
  const recorder = recordTransport(inner, writer, clock ? { nowUs: () => VIRTUAL_EPOCH_US + Math.round(clock.now() * 1000) } : {});
  const fresh = o.randomAddress === 'fresh';
  const randomAddress = fresh ? staticRandomAddress() : o.randomAddress;
  let result: SessionResult;
  try {
    // `serve` steps name files in the scenario's folder (the replay resolves them there too).
    result = await runSession(steps, { transport: recorder, baseDir: out, ...(clock ? { clock } : {}), ...(randomAddress ? { randomAddress } : {}),
      ...(o.pairingSeed !== undefined ? { pairingSeed: o.pairingSeed } : {}), ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.onPeerAction ? { onPeerAction: o.onPeerAction } : {}),
      ...(o.privacy ? { privacy: true } : {}), ...(o.onAddress ? { onAddress: o.onAddress } : {}), ...(o.onStep ? { onStep: o.onStep } : {}),
      ...(o.onPasskeyDisplay ? { onPasskeyDisplay: o.onPasskeyDisplay } : {}),
      ...(o.onPasskeyRequest ? { onPasskeyRequest: o.onPasskeyRequest } : {}),
      ...(o.onNumericComparison ? { onNumericComparison: o.onNumericComparison } : {}) });
  } finally {
    writer.close();
  }
  const capture = readFileSync(capturePath);
  const scenario: ScenarioFile = {
    name: o.name,
    ...(o.description ? { description: o.description } : {}),
    capture: 'capture.btsnoop',
    steps: formatSteps(steps),
    ...(o.randomAddress || o.pairingSeed !== undefined || o.timeoutMs !== undefined || o.privacy ? { host: {
      ...(o.randomAddress ? { randomAddress: o.randomAddress } : {}),
      ...(o.privacy ? { privacy: true } : {}),
      ...(o.pairingSeed !== undefined ? { pairingSeed: o.pairingSeed } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    } } : {}),
    recordedWith: {
      transport: o.transportLabel ?? (typeof o.transport === 'string' ? o.transport : o.transport.description),
      controller: o.controller,
      ...(o.peer ? { peer: o.peer } : {}),
      tool: o.tool ?? 'tools/record.ts',
      ...(o.command ? { command: o.command } : {}),
      ...(o.hardware ? { hardware: o.hardware } : {}),
    },
    masks: masksFor(capture, fresh),
    ...(o.peerKeys?.() ? { peerKeys: o.peerKeys()! } : {}),
    ...(o.replay ? { replay: o.replay } : {}),
    expect: result,
  };
  writeFileSync(join(out, 'scenario.json'), `${JSON.stringify(scenario, null, 2)}\n`);
  return scenario;
}
