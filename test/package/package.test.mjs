// The path every user takes: `npm pack` (which builds dist/ through `prepare`), install the tarball
// into a fresh project, then import it from ESM and CommonJS, typecheck user files under the configs
// people actually have (a default `tsc --init`, NodeNext in a CommonJS package, bundler resolution),
// compile and run the README's examples exactly as written with plain `tsc` / `node` (no vitest
// transform, no tsx), and run the installed `blewire` command.
//
// Plain node:test so that nothing here goes through a TypeScript loader. Run: `npm run test:package`.
// The examples talk to the simulated controller through BLEWIRE_TRANSPORT=sim, which they read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const KEEP = process.env.BLEWIRE_KEEP_PACKAGE_TEST === '1'; // leave the temporary projects for a look

let work; // temporary folder: the tarball and the user projects
let tarball;
let packed; // npm pack --json's file list
let esmApp; // a fresh "type": "module" project with the tarball installed
let cjsApp; // a fresh CommonJS project with the tarball installed

/** The README's fenced block marked `<!-- run by test/package as NAME -->`, as written. */
function readmeBlock(name) {
  const blocks = [...README.matchAll(/^<!-- run by test\/package as (\S+) -->\n```\w+\n([\s\S]*?)```/gm)]
    .filter(m => m[1] === name).map(m => m[2]);
  assert.equal(blocks.length, 1, `README has exactly one block marked as ${name}`);
  return blocks[0];
}

/** Runs a command; returns { code, stdout, stderr } (never throws on a non-zero exit). */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20, ...opts,
    // The bin's code cache goes under the temporary folder, never into the user's home.
    env: { ...process.env, BLEWIRE_TRANSPORT: 'sim', BLEWIRE_CAPTURE: '', NODE_OPTIONS: '', XDG_CACHE_HOME: join(work, 'cache-home'), ...opts.env },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r, what) {
  assert.equal(r.code, 0, `${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

/** A project with only the tarball installed (npm ci filled the cache with its few dependencies). */
function makeApp(name, pkg) {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, ...pkg }, null, 2));
  // --omit=optional: the native user-channel module and serialport are for real adapters; compiling
  // them here would only time node-gyp. Nothing below needs them (the simulator is built in).
  ok(run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--omit=optional', tarball], { cwd: dir }), 'npm install');
  return dir;
}

/** A folder of a user project holding one source file; returns the folder. */
function userFile(app, folder, file, text) {
  const dir = join(app, folder);
  mkdirSync(dir);
  writeFileSync(join(dir, file), Array.isArray(text) ? text.join('\n') : text);
  return dir;
}

function tsconfig(dir, compilerOptions) {
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.ts', '*.cts', '*.mts'] }, null, 2));
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'blewire-package-'));
  // The real `npm pack`: it runs `prepare`, so this also proves the build works from the sources.
  const r = ok(run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT }), 'npm pack');
  const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')))[0];
  tarball = join(work, info.filename);
  packed = info.files.map(f => f.path).sort();
  esmApp = makeApp('esm-app', { type: 'module' });
  cjsApp = makeApp('cjs-app', { type: 'commonjs' });
}, { timeout: 600_000 });

after(() => {
  if (work && !KEEP) rmSync(work, { recursive: true, force: true });
  else if (work) console.log(`# left in ${work}`);
});

test('the tarball holds the build, the bin, the README and nothing else', () => {
  // dist/browser/web-bluetooth.js: the browser build (tools/web/bundle.mjs), one ES module.
  // dist/cli/blewire.cjs: the CLI as one file (tools/package/bundle-cli.mjs), which the bin runs through
  // src/cli/launch.mjs and src/cli/run-bundle.mjs with a V8 code cache; dist/cli/gateway.cjs: the gateway
  // alone, which blewire-gateway (src/cli/gateway.mjs) runs the same way.
  const expected = ['LICENSE', 'README.md', 'package.json', 'src/cli/bin.mjs', 'src/cli/launch.mjs', 'src/cli/run-bundle.mjs',
    'src/cli/gateway.mjs', 'dist/browser/web-bluetooth.js', 'dist/cli/blewire.cjs', 'dist/cli/gateway.cjs'];
  const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap(e =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]);
  for (const f of walk(join(ROOT, 'src'))) {
    const rel = relative(join(ROOT, 'src'), f).split('\\').join('/');
    if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue;
    expected.push(`dist/${rel.replace(/\.ts$/, '.js')}`, `dist/${rel.replace(/\.ts$/, '.d.ts')}`);
  }
  // dist/chunks/: the library's entries (index, navigator, navigator-dom) import these shared chunks
  // (tools/package/bundle-lib.mjs), named by content hash.
  const chunks = packed.filter(f => f.startsWith('dist/chunks/'));
  assert.ok(chunks.length > 0 && chunks.every(f => /^dist\/chunks\/[\w-]+\.js$/.test(f)), chunks.join(' '));
  expected.push(...chunks);
  assert.deepEqual(packed, expected.sort());
  // The same list without building (what a reviewer sees with --dry-run).
  const dry = ok(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT }), 'npm pack --dry-run');
  assert.deepEqual(JSON.parse(dry.stdout.slice(dry.stdout.indexOf('[')))[0].files.map(f => f.path).sort(), packed);
});

test('the installed package imports from ESM', () => {
  const r = ok(run(process.execPath, ['--input-type=module', '-e',
    "import { Adapter, uuid, decodeAd } from 'blewire'; console.log(typeof Adapter.open, uuid('heart_rate'), decodeAd(Uint8Array.of(2, 1, 6)).length)"],
  { cwd: esmApp }), 'import');
  assert.equal(r.stdout.trim(), 'function 0000180d-0000-1000-8000-00805f9b34fb 1');
  assert.equal(r.stderr, '');
});

test('the installed package requires from CommonJS, with no warning', () => {
  const r = ok(run(process.execPath, ['-e',
    "const b = require('blewire'); const p = require('blewire/package.json'); console.log(typeof b.Adapter.open, b.uuid(0x2a37), p.name)"],
  { cwd: cjsApp }), 'require');
  assert.equal(r.stdout.trim(), 'function 00002a37-0000-1000-8000-00805f9b34fb blewire');
  assert.equal(r.stderr, '');
});

test("the blewire/web-bluetooth subpath: README's example runs on the simulator, CommonJS requires it, types resolve", () => {
  // The README's example, as written: page code on the simulator through BLEWIRE_TRANSPORT=sim.
  writeFileSync(join(esmApp, 'web-bluetooth.mjs'), readmeBlock('web-bluetooth.mjs'));
  const esm = ok(run(process.execPath, ['web-bluetooth.mjs'], { cwd: esmApp }), 'node web-bluetooth.mjs');
  const lines = esm.stdout.trim().split('\n');
  assert.equal(lines[0], 'Pulse HR: battery 87 %');
  assert.deepEqual(lines.slice(1).map(l => l.replace(/\d+ bpm$/, 'N bpm')), ['heart rate N bpm', 'heart rate N bpm', 'heart rate N bpm', 'disconnected']);
  assert.equal(esm.stderr, '');
  const cjs = ok(run(process.execPath, ['-e',
    "const w = require('blewire/web-bluetooth'); console.log(typeof w.createBluetooth, typeof w.bluetooth.requestDevice, w.BluetoothUUID.canonicalUUID(0x2a19))"],
  { cwd: cjsApp }), 'require blewire/web-bluetooth');
  assert.equal(cjs.stdout.trim(), 'function function 00002a19-0000-1000-8000-00805f9b34fb');
  assert.equal(cjs.stderr, '');
  const dir = userFile(esmApp, 'ts-web-bluetooth', 'page.ts', [
    "import { bluetooth, createBluetooth, type BluetoothRemoteGATTCharacteristic } from 'blewire/web-bluetooth';",
    "const b = createBluetooth({ transport: 'sim', scanTime: 500, deviceChooser: c => c[0] });",
    'export async function level(): Promise<number> {',
    "  const d = await b.requestDevice({ filters: [{ name: 'Pulse HR' }], optionalServices: [0x180f] });",
    "  const c: BluetoothRemoteGATTCharacteristic = await (await d.gatt!.connect()).getPrimaryService('battery_service').then(s => s.getCharacteristic('battery_level'));",
    '  c.oncharacteristicvaluechanged = ev => console.log(ev.type);',
    '  return (await c.readValue()).getUint8(0);',
    '}',
    'export const same: typeof bluetooth = b;',
    "// @ts-expect-error writeValue takes a BufferSource, not a number[]",
    'export const bad = (c: BluetoothRemoteGATTCharacteristic) => c.writeValue([1, 2]);',
  ]);
  tsconfig(dir, { module: 'nodenext', target: 'es2022', strict: true, skipLibCheck: true, types: [] });
  ok(run(process.execPath, [TSC, '--noEmit', '-p', dir]), 'tsc (blewire/web-bluetooth types)');
});

test('blewire/web-bluetooth/dom: page code typed with @types/web-bluetooth compiles with tsc and runs', () => {
  // A browser project's typing: the DOM declarations of @types/web-bluetooth (filled into npm's cache by
  // npm ci, as our devDependency), not blewire's own. The spec entry's null attributes do not fit them;
  // the /dom entry does, and it is the same object at run time (null where the spec says null).
  ok(run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-save', '@types/web-bluetooth@0.0.22'], { cwd: esmApp }), 'npm install @types/web-bluetooth');
  const dir = userFile(esmApp, 'ts-web-bluetooth-dom', 'page.ts', [
    '/// <reference types="web-bluetooth" />',
    "import { bluetooth, createBluetooth, BluetoothUUID } from 'blewire/web-bluetooth/dom';",
    "import { bluetooth as specBluetooth } from 'blewire/web-bluetooth';",
    "const b = createBluetooth({ transport: 'sim', scanTime: 500, deviceChooser: c => c[0] });",
    'const nav: { bluetooth: Bluetooth } = { bluetooth };',
    'const asDom: Bluetooth = b;',
    "// @ts-expect-error the spec entry's nullable attributes read null, which @types/web-bluetooth spells undefined",
    'export const spec: Bluetooth = specBluetooth;',
    "const device: BluetoothDevice = await b.requestDevice({ filters: [{ name: 'Pulse HR' }], optionalServices: ['battery_service'] });",
    'const server: BluetoothRemoteGATTServer = await device.gatt!.connect();',
    "const c: BluetoothRemoteGATTCharacteristic = await (await server.getPrimaryService('battery_service')).getCharacteristic(BluetoothUUID.getCharacteristic('battery_level'));",
    "console.log('before read', c.value === null ? 'null' : String(c.value));",
    "c.addEventListener('characteristicvaluechanged', (ev: Event) => console.log(ev.type));",
    "console.log('battery', (await c.readValue()).getUint8(0), BluetoothUUID.canonicalUUID('6159'), nav.bluetooth === (specBluetooth as unknown), asDom === b);",
    'server.disconnect();',
    'await b.close();',
  ]);
  tsconfig(dir, { module: 'nodenext', target: 'es2022', strict: true, skipLibCheck: false, types: [] });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  ok(run(process.execPath, [TSC, '-p', dir]), 'tsc (blewire/web-bluetooth/dom with @types/web-bluetooth)');
  const r = ok(run(process.execPath, ['page.js'], { cwd: dir }), 'node page.js');
  assert.deepEqual(r.stdout.trim().split('\n'), ['before read null', 'characteristicvaluechanged', 'battery 87 0000180f-0000-1000-8000-00805f9b34fb true true']);
});

test('blewire/web-bluetooth/browser: the browser build imports as one ES module with its types', () => {
  // One file, no imports of its own (a page loads it as is), and nothing of Node reached at load.
  const bundle = readFileSync(join(esmApp, 'node_modules/blewire/dist/browser/web-bluetooth.js'), 'utf8');
  assert.equal(/^\s*import\s|\brequire\(/m.test(bundle), false, 'the bundle imports nothing');
  const r = ok(run(process.execPath, ['--input-type=module', '-e',
    "const m = await import('blewire/web-bluetooth/browser'); console.log(typeof m.createBluetooth, typeof m.WebSocketTransport, m.BluetoothUUID.getService('heart_rate'))"],
  { cwd: esmApp }), 'import blewire/web-bluetooth/browser');
  assert.equal(r.stdout.trim(), 'function function 0000180d-0000-1000-8000-00805f9b34fb');
  const dir = userFile(esmApp, 'ts-browser', 'page.ts', [
    "import { createBluetooth, type BluetoothDevice } from 'blewire/web-bluetooth/browser';",
    "export const b = createBluetooth({ transport: 'ws://localhost:8790/' });",
    "export const pick = (d: BluetoothDevice): string | undefined => d.name;",
  ]);
  tsconfig(dir, { module: 'esnext', moduleResolution: 'bundler', target: 'es2022', strict: true, skipLibCheck: true, types: [], lib: ['es2022', 'dom'] });
  ok(run(process.execPath, [TSC, '--noEmit', '-p', dir]), 'tsc (blewire/web-bluetooth/browser, bundler resolution)');
});

test("README's TypeScript example compiles with tsc and runs with node", () => {
  const dir = userFile(esmApp, 'ts-example', 'example.ts', readmeBlock('example.ts'));
  // What the README says for Node 20 and 22: target ES2022 makes tsc rewrite `await using`.
  tsconfig(dir, { module: 'nodenext', target: 'es2022', strict: true, skipLibCheck: true, types: [] });
  ok(run(process.execPath, [TSC, '-p', dir]), 'tsc');
  const r = ok(run(process.execPath, ['example.js'], { cwd: dir }), 'node example.js');
  assert.match(r.stdout, /Pulse HR/);
  assert.match(r.stdout, /^gone: /m);
  assert.equal(readFileSync(join(dir, 'trace.btsnoop')).subarray(0, 8).toString('latin1'), 'btsnoop\0');
});

test('the TypeScript example typechecks under an untouched `tsc --init` config', () => {
  const dir = userFile(esmApp, 'ts-init', 'example.ts', readmeBlock('example.ts'));
  ok(run(process.execPath, [TSC, '--init'], { cwd: dir }), 'tsc --init');
  ok(run(process.execPath, [TSC, '--noEmit', '-p', dir]), 'tsc --noEmit (tsc --init config)');
});

test('the TypeScript example typechecks with bundler resolution', () => {
  const dir = userFile(esmApp, 'ts-bundler', 'example.ts', readmeBlock('example.ts'));
  tsconfig(dir, { module: 'preserve', moduleResolution: 'bundler', target: 'es2022', strict: true, noEmit: true, types: [] });
  ok(run(process.execPath, [TSC, '-p', dir]), 'tsc (bundler)');
});

test('a CommonJS TypeScript project (NodeNext) compiles against the types and runs through require', () => {
  const dir = userFile(cjsApp, 'ts-cjs', 'main.ts', [
    "import { Adapter, type Advertisement } from 'blewire';",
    'async function main(): Promise<void> {',
    "  const adapter = await Adapter.open({ transport: 'sim' });",
    "  const ad: Advertisement | undefined = await adapter.find({ services: ['heart_rate'], timeout: 5_000 });",
    "  const conn = await adapter.connect(ad!, { timeout: 5_000 });",
    "  conn.on('disconnect', reason => console.log('gone:', reason.name));",
    "  const level = await conn.characteristic('battery_service', 'battery_level');",
    "  console.log('battery', (await level.read())[0]);",
    '  await conn.disconnect();',
    '  await adapter.close();',
    '}',
    'void main();',
  ]);
  tsconfig(dir, { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, types: [] });
  ok(run(process.execPath, [TSC, '-p', dir]), 'tsc (NodeNext, CommonJS)');
  assert.match(readFileSync(join(dir, 'main.js'), 'utf8'), /require\("blewire"\)/);
  const r = ok(run(process.execPath, ['main.js'], { cwd: dir }), 'node main.js');
  assert.match(r.stdout, /^battery \d+$/m);
  assert.match(r.stdout, /^gone: /m);
});

test('the types are real: a misuse fails to typecheck', () => {
  const dir = userFile(esmApp, 'ts-wrong', 'wrong.ts', [
    "import { Adapter } from 'blewire';",
    "const adapter = await Adapter.open({ transport: 'sim' });",
    "const conn = await adapter.connect({ address: 'C0:11:22:33:44:55', type: 'random' });",
    'const n: number = conn.mtu;',
    "conn.on('disconnect', reason => console.log(reason.name));",
    'const s: string = await (await conn.characteristic(0x180f, 0x2a19)).read();', // a Uint8Array, not a string
    'export { n, s };',
  ]);
  ok(run(process.execPath, [TSC, '--init'], { cwd: dir }), 'tsc --init');
  const r = run(process.execPath, [TSC, '--noEmit', '-p', dir]);
  assert.notEqual(r.code, 0);
  const errors = r.stdout.split('\n').filter(l => l.includes('error TS'));
  assert.equal(errors.length, 1, r.stdout);
  assert.match(errors[0], /wrong\.ts\(6,7\).*Uint8Array.*string/);
});

test("README's JavaScript example runs on plain node", () => {
  writeFileSync(join(esmApp, 'example.mjs'), readmeBlock('example.mjs'));
  const r = ok(run(process.execPath, ['example.mjs'], { cwd: esmApp }), 'node example.mjs');
  assert.match(r.stdout, /^Pulse HR: battery \d+ %$/m);
  assert.equal(r.stdout.split('\n').filter(l => /^heart rate \d+ bpm$/.test(l)).length, 3);
});

test("README's CommonJS example runs on plain node", () => {
  writeFileSync(join(cjsApp, 'example.cjs'), readmeBlock('example.cjs'));
  const r = ok(run(process.execPath, ['example.cjs'], { cwd: cjsApp }), 'node example.cjs');
  assert.match(r.stdout, /^found Pulse HR at [0-9A-F:]{17}$/m);
});

test('the installed blewire-gateway bin runs the gateway with its V8 memory flags (the systemd unit runs it)', async () => {
  // MQTT.js is the gateway's optional peer dependency: install it next to blewire, as the README says.
  ok(run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', 'mqtt@5'], { cwd: esmApp }), 'npm install mqtt');
  const bin = join(esmApp, 'node_modules/.bin/blewire-gateway');
  assert.ok(existsSync(bin));
  // Its own bundle (dist/cli/gateway.cjs), not the CLI's: the code cache it writes a second into the run
  // is named by the hash of the file it compiled.
  const bundle = readFileSync(join(esmApp, 'node_modules/blewire/dist/cli/gateway.cjs'), 'utf8');
  const hash = createHash('sha256').update(bundle).digest('hex');
  const xdg = join(work, 'xdg-gateway');
  // A broker that is not there: the gateway starts, logs, and keeps reconnecting until the signal.
  const p = spawn(bin, ['--mqtt', 'mqtt://127.0.0.1:1', '--transport', 'sim:demo', '--id', 'pkg'],
    { cwd: esmApp, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', XDG_CACHE_HOME: xdg, BLEWIRE_CODE_CACHE: '' } });
  let err = '';
  const started = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no 'gateway starting' log within 60 s: ${err}`)), 60_000);
    p.stderr.on('data', c => {
      err += c.toString();
      const line = err.split('\n').find(l => l.includes('"gateway starting"'));
      if (line) { clearTimeout(t); resolve(JSON.parse(line)); }
    });
    p.once('exit', code => { clearTimeout(t); reject(new Error(`exited ${code}: ${err}`)); });
  });
  try {
    const line = await started;
    assert.deepEqual(line.execArgv, ['--max-semi-space-size=1', '--single-threaded', '--optimize-for-size', '--incremental-marking-hard-trigger=30']);
    const dir = join(xdg, 'blewire');
    const want = new RegExp(`^blewire-gateway\\.[0-9a-f]{8}${hash.slice(0, 24)}\\.v8cache$`);
    const seen = () => (existsSync(dir) ? readdirSync(dir) : []);
    for (const until = Date.now() + 30_000; !seen().some(f => want.test(f)) && Date.now() < until;) await new Promise(r => setTimeout(r, 100));
    assert.ok(seen().some(f => want.test(f)), `no code cache of dist/cli/gateway.cjs within 30 s; the folder holds: ${seen().join(' ') || '(nothing)'}`);
  } finally {
    const exited = new Promise(resolve => p.once('exit', (code, signal) => resolve({ code, signal })));
    p.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, signal: null });
  }
});

test('the installed bin runs the compiled CLI: --help, demo, and a usage error', () => {
  const bin = join(esmApp, 'node_modules/.bin/blewire');
  assert.ok(existsSync(bin));
  assert.ok(!existsSync(join(esmApp, 'node_modules/tsx')), 'tsx is a dev dependency only');
  const help = ok(run(bin, ['--help'], { cwd: esmApp }), 'blewire --help');
  assert.match(help.stdout, /^usage: blewire <command>/);
  for (const c of ['demo', 'scan', 'explore', 'read', 'write', 'notify', 'decode', 'doctor']) assert.match(help.stdout, new RegExp(`^  ${c} `, 'm'));
  const demo = ok(run(bin, ['demo', '--notifications', '3'], { cwd: esmApp }), 'blewire demo');
  assert.match(demo.stdout, /Connected to Pulse HR/);
  assert.match(demo.stdout, /ATT round trips \d+/);
  const bad = run(bin, ['no-such-command'], { cwd: esmApp });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command 'no-such-command'/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /); // no stack trace
});

test('the installed bundles are ASCII, so V8 keeps their source as a one-byte string (half the heap of a two-byte one)', () => {
  for (const name of ['blewire.cjs', 'gateway.cjs']) {
    const text = readFileSync(join(esmApp, 'node_modules/blewire/dist/cli', name), 'utf8');
    assert.ok(text.length > 100_000, name);
    const at = text.search(/[^\x00-\x7f]/);
    assert.equal(at, -1, `${name}: non-ASCII at ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 10))}`);
  }
  // Escaped where esbuild left them (comments): the text is still there, as \uXXXX.
  assert.match(readFileSync(join(esmApp, 'node_modules/blewire/dist/cli/blewire.cjs'), 'utf8'), /host \\u2192 controller/);
});

test('the installed bin runs the bundle with a private code cache; a damaged or unusable cache changes nothing', () => {
  const bin = join(esmApp, 'node_modules/.bin/blewire');
  const installed = join(esmApp, 'node_modules/blewire/dist/cli/blewire.cjs');
  const hash = createHash('sha256').update(readFileSync(installed, 'utf8')).digest('hex');
  const xdg = join(work, 'xdg-cache');
  const env = { XDG_CACHE_HOME: xdg, BLEWIRE_CODE_CACHE: '' };
  const help = (extra = {}) => {
    const r = ok(run(bin, ['--help'], { cwd: esmApp, env: { ...env, ...extra } }), 'blewire --help');
    assert.match(r.stdout, /^usage: blewire <command>/);
    assert.equal(r.stderr, '');
    return r;
  };
  help();
  const dir = join(xdg, 'blewire');
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const files = readdirSync(dir);
  assert.equal(files.length, 1, files.join(' '));
  // The file's key ends with the installed bundle's SHA-256: the bin compiled that file, nothing else.
  assert.match(files[0], new RegExp(`^help\\.[0-9a-f]{8}${hash.slice(0, 24)}\\.v8cache$`));
  const file = join(dir, files[0]);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const good = readFileSync(file);
  // A damaged file (one payload byte flipped): ignored, the command works, and a good file replaces it.
  const bad = Buffer.from(good);
  bad[bad.length - 1] ^= 0xff;
  writeFileSync(file, bad, { mode: 0o600 });
  help();
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.notDeepEqual(readFileSync(file), bad);
  // A scan writes its own cache (a second into the run, or at its end); the first line comes either way.
  const scan = ok(run(bin, ['scan', '--transport', 'sim', '--json', '--duration', '1.5'], { cwd: esmApp, env }), 'blewire scan');
  assert.match(scan.stdout.split('\n')[0], /^\{"address":"[0-9A-F:]{17}"/);
  assert.ok(readdirSync(dir).some(f => f.startsWith('scan.')), readdirSync(dir).join(' '));
  // A folder open to others is not used (nothing read, nothing written); a folder that is a file, the same.
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) rmSync(join(dir, f));
  help();
  assert.deepEqual(readdirSync(dir), []);
  const notDir = join(work, 'xdg-file');
  writeFileSync(notDir, 'x');
  help({ XDG_CACHE_HOME: notDir });
});
