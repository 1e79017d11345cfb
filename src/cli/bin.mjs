#!/usr/bin/env node
// The `blewire` command. In a checkout (the TypeScript sources are beside this file) it runs them
// through tsx, so what runs is always what is in src/; an installed package runs the compiled dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const source = fileURLToPath(new URL('./main.ts', import.meta.url));
const built = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
let tsx;
if (existsSync(source)) {
  try {
    tsx = await import('tsx/esm/api');
  } catch {
    tsx = undefined; // no dev dependencies: fall back to the build
  }
}
if (tsx) {
  tsx.register();
  await import(pathToFileURL(source).href);
} else if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  console.error('blewire: neither the sources with tsx nor a build (npm run build) were found');
  process.exitCode = 1;
}
