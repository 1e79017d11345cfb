/**
 * Staging blewire for the BlueZ guest's run mode (runInGuest): the guest runs the host's own `node`, so a
 * guest program is blewire's TypeScript bundled into one ES module (esbuild, which the dev toolchain
 * already carries through vite/tsx) plus the native HCI socket package copied from node_modules, built on
 * this host for this very node binary. Nothing is written into the repository: the bundle goes to a
 * temporary directory the caller removes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GuestFile, RunInGuestResult } from './bluez-guest.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

/** Native / optional packages blewire loads at run time; never bundled. */
const RUNTIME_PACKAGES = ['@abandonware/bluetooth-hci-socket', '@stoprocent/bluetooth-hci-socket', 'serialport', 'debug'];

/**
 * What every bundle needs beside it at run time: the user channel's native binding, and debug (with its
 * one dependency, ms), which src/platform/debug.ts loads with `createRequire(import.meta.url)('debug')`
 * rather than an import (see there why); esbuild does not follow that call, so the bundle resolves debug
 * from its own node_modules, as an application bundled the same way does.
 */
const DEFAULT_PACKAGES = ['@abandonware/bluetooth-hci-socket', 'debug', 'ms'];

export interface GuestStage {
  /** Files for runInGuest: the bundle at /blewire-run/<name>.mjs and /blewire-run/node_modules/<package>. */
  files: Record<string, GuestFile>;
  /** The guest command line that runs the bundle. */
  command: string;
  /** Bundle size in bytes. */
  bundleBytes: number;
  /** Removes the temporary directory. */
  cleanup(): void;
}

/**
 * Bundles `entry` (a TypeScript file importing blewire's src/) for node in the guest and lists the
 * packages to copy next to it (resolved in this repository's node_modules; a missing one throws).
 */
export async function stageForGuest(entry: string, packages: string[] = DEFAULT_PACKAGES): Promise<GuestStage> {
  const { build } = await import('esbuild');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blewire-guest-bundle-'));
  const name = path.basename(entry).replace(/\.[cm]?ts$/, '');
  const outfile = path.join(dir, `${name}.mjs`);
  try {
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: RUNTIME_PACKAGES,
      logLevel: 'silent',
      // CommonJS dependencies (debug) call require() for node built-ins; give the ES module one.
      banner: { js: "import { createRequire as __blewireCreateRequire } from 'node:module'; const require = __blewireCreateRequire(import.meta.url);" },
    });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const files: Record<string, GuestFile> = { [`/blewire-run/${name}.mjs`]: outfile };
  for (const p of packages) {
    const src = path.join(REPO, 'node_modules', p);
    if (!fs.existsSync(path.join(src, 'package.json'))) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`${p} is not installed in ${REPO}node_modules (an interop requirement, never skipped)`);
    }
    files[`/blewire-run/node_modules/${p}`] = src;
  }
  return {
    files,
    command: `node ${name}.mjs`,
    bundleBytes: fs.statSync(outfile).size,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** What the run-mode guest's READY console line says: BlueZ's address and name (`_` for spaces), vhci controllers. */
export interface GuestReady {
  peripheral: string;
  nameField: string;
  controllers: number;
}

/**
 * The run-mode guest's `BLEWIRE-GUEST-READY` console line and the JSON line its program printed last
 * (its result); throws, quoting the console's (and stdout's) end, when either is missing.
 */
export function guestOutcome<T>(res: RunInGuestResult): { ready: GuestReady; out: T } {
  const m = /^BLEWIRE-GUEST-READY peripheral=(\S+) name=(\S+) controllers=(\d+)$/m.exec(res.console);
  if (!m) throw new Error(`no READY line on the guest console:\n${res.console.slice(-4000)}`);
  const line = res.stdout.trim().split('\n').pop() ?? '';
  try {
    return { ready: { peripheral: m[1]!, nameField: m[2]!, controllers: Number(m[3]) }, out: JSON.parse(line) as T };
  } catch {
    throw new Error(`guest printed no JSON (exit ${res.exitCode}):\nstdout: ${res.stdout.slice(-4000)}\nconsole:\n${res.console.slice(-4000)}`);
  }
}
