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

// Advertisement and its report time assign their fields once, in the constructor (`declare` fields):
// a class field or parameter property is first defined as undefined under ES2022's define semantics,
// which cost the fields their number representation and constness in V8 (legacy reports 1.05-1.14x
// slower, issue 14, session 16). Checked on the code that runs here (the TypeScript as transformed for
// the tests, with the project's tsconfig), the same class text the build emits.
test('Advertisement and the report time define no class fields (each field assigned once)', async () => {
  const { Advertisement, Scanner } = await import('../../../src/gap/scanner.js');
  const time = (Scanner.keepsAdvertisementMap as unknown as { time: object }).time;
  for (const cls of [Advertisement, time.constructor]) {
    const body = cls.toString();
    expect(body).toMatch(/constructor\s*\(/);
    // A field definition is a line of the class body that names a field and ends, or initialises it.
    expect(body).not.toMatch(/^\s*(shared|time|bits|ms)\s*(;|=)/m);
    expect(body).not.toMatch(/__publicField|__defNormalProp/);
  }
});
