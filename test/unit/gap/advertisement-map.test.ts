// The scanner keeps one Advertisement alive (Scanner.keepsAdvertisementMap) so that V8's map of
// advertisements survives a major GC that finds none alive; before, every such GC threw away the
// optimised report path and the getters ("weak objects" deoptimisation), and bench processes that
// saw it often ran the extended path at about twice their usual cost (issue 14, session 15). The
// probe needs V8 intrinsics, so it runs in a node of its own.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');

test('the report path stays optimised through full GCs with no advertisement alive', async () => {
  const { stdout } = await promisify(execFile)(process.execPath,
    ['--allow-natives-syntax', '--expose-gc', '--no-concurrent-recompilation', '--import', 'tsx',
      'test/fixtures/advertisement-map-probe.mjs', ROOT], { cwd: ROOT, timeout: 60_000 });
  expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({
    optimizedBefore: true, sameMapAsKept: true, optimizedAfterGc: true, sameMapAfterGc: true,
  });
});
