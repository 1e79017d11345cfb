// Starts one of blewire's commands. An installed package runs the command's bundle (dist/cli/*.cjs,
// tools/package/bundle-cli.mjs), compiled with a V8 code cache (run-bundle.mjs), and nothing else: no
// TypeScript loader, no file-system walk, no module graph to resolve. Only in a git checkout, whose
// tools/ folder is not in the package, does it run the TypeScript sources through tsx, and only when
// there is no build or a source file is newer than the build, so a contributor never runs stale code.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

/** The newest modification time under a folder (the checkout's src/, a few hundred files). */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Runs `bundle` (a file of dist/cli/), or in a checkout whose build is missing or stale the TypeScript
 * entry `source` (a file of src/cli/) through tsx. `cacheName` names the bundle's code-cache file
 * (run-bundle.mjs); by default the command word of the command line.
 */
export async function launch(bundle, source, cacheName) {
  const built = here(`../../dist/cli/${bundle}`);
  const entry = here(`./${source}`);
  const checkout = existsSync(here('../../tools/tsconfig.build.json')) && existsSync(entry);
  const runBuilt = async () => {
    const { runBundle } = await import('./run-bundle.mjs');
    const { version } = JSON.parse(readFileSync(here('../../package.json'), 'utf8'));
    runBundle(built, String(version), cacheName === undefined ? process.argv.slice(2) : [cacheName]);
  };
  const stale = () => {
    try {
      return statSync(built).mtimeMs < newest(here('..'));
    } catch {
      return true; // no build
    }
  };
  if (checkout && stale()) {
    let tsx;
    try {
      tsx = await import('tsx/esm/api');
    } catch {
      tsx = undefined; // dev dependencies not installed
    }
    if (tsx) {
      tsx.register();
      await import(pathToFileURL(entry).href);
    } else if (existsSync(built)) {
      console.error('blewire: the build in dist/ is older than src/ and tsx is not installed; running the build (npm run build refreshes it)');
      await runBuilt();
    } else {
      console.error('blewire: no build in dist/ and no tsx to run the sources: run `npm install` (it builds), or `npm run build`');
      process.exitCode = 1;
    }
  } else if (existsSync(built)) {
    await runBuilt();
  } else {
    console.error('blewire: this package has no dist/ (it was packed without building): reinstall it from a tarball made by `npm pack`');
    process.exitCode = 1;
  }
}
