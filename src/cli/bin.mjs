#!/usr/bin/env node
// The `blewire` command: the bundled CLI, dist/cli/blewire.cjs (src/cli/main.ts and every command, one
// file: tools/package/bundle-cli.mjs), run by launch.mjs with a V8 code cache, or the sources through
// tsx in a checkout whose build is stale.
import { launch } from './launch.mjs';

await launch('blewire.cjs', 'main.ts');
