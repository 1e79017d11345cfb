// Pins the layer direction of ARCHITECTURE.md: every import in src/ (static, side-effect only, and
// dynamic `import()`) goes to the same folder or to one the importing folder may depend on (api →
// gatt → att → l2cap → hci → transport → capture → codec → bytes; gap on hci; sim and inspect on the
// codecs and the stack, never on api). A change that points an arrow upward fails here with the file
// and the import. The top files (index.ts, the package entry, transports.ts, the transport
// registry's wiring, and navigator.ts, the blewire/web-bluetooth entry) may import any layer; nothing imports them but the CLI.
//
// It also pins the platform seam (README "Architecture"): Node built-ins (`node:*`, or their bare
// names) and Node-only globals (process, Buffer, setImmediate, require) appear only in platform/ and
// in the Node-only edges: transport/ (sockets, serial, the user channel), capture/ (capture files),
// replay/ (the replay transport reads its capture), tooling/ (recording and twins on files), cli/
// and apps/ (Node programs on the public API). Every other folder, present or future, is a protocol
// layer that must run in a browser or Deno: it gets those services from platform/.
import { builtinModules } from 'node:module';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect, test } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');
/** Files at the top of src/ that every layer may use (they import nothing of the stack). */
const BASE = new Set(['errors', 'clock', 'log', 'operation']);
/** Files at the top of src/ that wire the layers together; they may import any layer. */
const TOP = new Set(['index', 'transports', 'navigator', 'navigator-dom', 'navigator-browser']);
/** The platform seam: every layer may import it; it imports nothing of the stack but BASE. */
const SEAM = 'platform';
/** Folders that may use Node built-ins directly (the seam, and the edges that only run on Node). */
// apps/ holds Node programs on the public API (the MQTT gateway daemon: files, signals, MQTT.js).
const NODE_OK = new Set([SEAM, 'transport', 'capture', 'replay', 'tooling', 'cli', 'apps']);
const NODE_BUILTINS = new Set(builtinModules.map(m => m.replace(/^node:/, '')));

const BELOW: Record<string, string[]> = {
  bytes: [],
  // platform/ wraps Node built-ins (crypto, fs, ...) and depends on nothing of the stack.
  platform: [],
  codec: ['bytes'],
  capture: ['codec', 'bytes'],
  transport: ['capture', 'codec', 'bytes'],
  hci: ['transport', 'capture', 'codec', 'bytes'],
  l2cap: ['hci', 'transport', 'codec', 'bytes'],
  att: ['l2cap', 'codec', 'bytes'],
  smp: ['platform', 'l2cap', 'codec', 'bytes'],
  gatt: ['att', 'l2cap', 'codec', 'bytes', 'platform'],
  // gap/privacy.ts resolves RPAs with bonded IRKs (ah on the platform's AES; the identity and key types of smp).
  gap: ['smp', 'l2cap', 'hci', 'transport', 'codec', 'bytes', 'platform'],
  // The per-connection link and the GAP scheduler that builds it: on everything a link owns.
  link: ['gap', 'gatt', 'att', 'smp', 'l2cap', 'hci', 'transport', 'codec', 'bytes', 'platform'],
  inspect: ['att', 'smp', 'l2cap', 'hci', 'gap', 'capture', 'codec', 'bytes'],
  sim: ['gatt', 'att', 'smp', 'l2cap', 'gap', 'hci', 'transport', 'capture', 'codec', 'bytes', 'platform'],
  api: ['link', 'gatt', 'att', 'smp', 'l2cap', 'gap', 'hci', 'transport', 'capture', 'inspect', 'codec', 'bytes', 'platform'],
  // replay/ is the replay transport only: it plays a capture as the controller.
  replay: ['inspect', 'hci', 'transport', 'capture', 'codec', 'bytes', 'platform'],
  // tooling/: recording fixtures, scenario files, scripted sessions and device twins, on api and sim.
  tooling: ['api', 'link', 'replay', 'sim', 'inspect', 'gatt', 'att', 'smp', 'l2cap', 'gap', 'hci', 'transport', 'capture', 'codec', 'bytes', 'platform'],
  // The Web Bluetooth facade stands on the application API alone (and the platform seam): no GATT
  // client, link or codec of its own. Its package subpath (src/navigator.ts) is a top file.
  'web-bluetooth': ['api', 'platform'],
  // Applications (the MQTT gateway) use the public surface only: the package entry src/index.ts.
  apps: ['index'],
  // The CLI reaches the Web Bluetooth facade only for `blewire browse` (its browser bridge).
  cli: ['apps', 'transports', 'web-bluetooth', 'tooling', 'api', 'link', 'replay', 'sim', 'inspect', 'gatt', 'att', 'smp', 'l2cap', 'gap', 'hci', 'transport', 'capture', 'codec', 'bytes', 'platform'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The folder (layer) of a path under src/, or the base file's name for errors/clock/log/index. */
function layerOf(path: string): string {
  const rel = relative(SRC, path).replace(/\\/g, '/');
  const parts = rel.split('/');
  return parts.length === 1 ? parts[0]!.replace(/\.(ts|js)$/, '') : parts[0]!;
}

/** Source text without comments (a doc comment may show an import() it does not make). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** Every module specifier `text` imports: static, side-effect only, re-exports and import(). */
function importsOf(text: string): { spec: string; dynamic: boolean }[] {
  const body = code(text);
  const out: { spec: string; dynamic: boolean }[] = [];
  for (const m of body.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/gms)) out.push({ spec: m[1]!, dynamic: false });
  for (const m of body.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push({ spec: m[1]!, dynamic: false });
  for (const m of body.matchAll(/\bimport\s*\(\s*([^)]*?)\s*\)/g)) {
    const lit = /^(['"`])([^'"`$]+)\1$/.exec(m[1]!);
    out.push({ spec: lit ? lit[2]! : `<computed: ${m[1]}>`, dynamic: true });
  }
  return out;
}

test('the import scanner sees static, side-effect, re-export and dynamic imports, not comments', () => {
  const found = importsOf([
    "import { a } from '../x/a.js';",
    "import type {\n  B,\n} from '../y/b.js';",
    "import '../z/side.js';",
    "export { c } from './c.js';",
    "const m = await import('../sim/register.js');",
    'const n = await import(name);',
    "// await import('../commented/out.js');",
    "/** `import('../doc/only.js')` */",
  ].join('\n')).map(i => i.spec);
  expect(found).toEqual(['../x/a.js', '../y/b.js', './c.js', '../z/side.js', '../sim/register.js', '<computed: name>']);
});

test('every import in src/, dynamic import() included, respects the layer direction', () => {
  const wrong: string[] = [];
  for (const file of files(SRC)) {
    const from = layerOf(file);
    if (TOP.has(from)) continue; // the public surface and the wiring reach every layer
    for (const { spec, dynamic } of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue; // packages and built-ins: the next test
      const to = layerOf(resolve(dirname(file), spec));
      const how = dynamic ? 'import()s' : 'imports';
      if (to === from || BASE.has(to)) continue;
      if (to === SEAM && from !== SEAM) continue;
      if (BASE.has(from) || from === SEAM || !(BELOW[from] ?? []).includes(to)) {
        wrong.push(`${relative(SRC, file)} (${from}) ${how} ${spec} (${to})`);
      }
    }
  }
  expect(wrong).toEqual([]);
});

test('Node built-ins reach the protocol layers only through src/platform/', () => {
  const wrong: string[] = [];
  for (const file of files(SRC)) {
    const from = layerOf(file);
    if (NODE_OK.has(from)) continue;
    const text = readFileSync(file, 'utf8');
    const where = `${relative(SRC, file)} (${from})`;
    for (const { spec, dynamic } of importsOf(text)) {
      const bare = spec.replace(/^node:/, '').split('/')[0]!;
      if (spec.startsWith('node:') || NODE_BUILTINS.has(bare)) wrong.push(`${where} imports ${spec}`);
      else if (spec.startsWith('<computed') && !TOP.has(from)) wrong.push(`${where} ${dynamic ? 'import()s' : 'imports'} a computed specifier`);
    }
    for (const m of code(text).matchAll(/\b(process\.|Buffer\.|setImmediate\(|require\(|__dirname\b)/g)) {
      wrong.push(`${where} uses the Node global ${m[1]}`);
    }
  }
  expect(wrong).toEqual([]);
});

test('the layer table names every folder of src/', () => {
  const folders = readdirSync(SRC).filter(n => statSync(join(SRC, n)).isDirectory());
  expect(folders.filter(f => !(f in BELOW))).toEqual([]);
});
