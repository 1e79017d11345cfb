import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// Two tiers (ARCHITECTURE "Test tiers"): `unit` runs anywhere Node runs; `interop` needs the Debian
// peers (tshark, btvirt, the BlueZ guest) that `tools/interop/setup.sh` installs. A missing tool is a
// failure there, never a skip.
export default defineConfig({
  root,
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/replay/**/*.test.ts', 'test/sim/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'interop',
          include: ['test/interop/**/*.test.ts'],
          // One BlueZ guest boot (~20-60 s under TCG) serves every interop file.
          globalSetup: ['test/interop/helpers/bluez-guest.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
