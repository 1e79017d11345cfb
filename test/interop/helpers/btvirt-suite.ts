/**
 * The prologue of the btvirt files that start controllers per test: one btvirt for the describe
 * block (started in beforeAll, stopped in afterAll) and the file's capture directory removed after it.
 * Kept apart from btvirt.ts, which the recording tools import without vitest.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { startBtvirt, type Btvirt, type StartBtvirtOptions } from './btvirt.js';

/** Call in a describe block; the returned function gives the running btvirt inside its tests. */
export function useBtvirt(dir: string, options: StartBtvirtOptions = {}): () => Btvirt {
  let btvirt: Btvirt | undefined;
  beforeAll(async () => { btvirt = await startBtvirt(options); }, 60_000);
  afterAll(async () => {
    await btvirt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (!btvirt) throw new Error('btvirt is not running (its beforeAll failed)');
    return btvirt;
  };
}
