// `npm run build` starts from an empty dist/: tsc never deletes the output of a source that was
// removed or renamed, and such a stale file would otherwise be packed and shipped.
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

rmSync(fileURLToPath(new URL('../../dist', import.meta.url)), { recursive: true, force: true });
