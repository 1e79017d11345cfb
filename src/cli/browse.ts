/**
 * `blewire browse <page.html | URL> [--eval CODE] [--until REGEX] [--timeout MS] [--show] [--scan-time MS]
 * [--permissions] [--transport SPEC] [--capture FILE]`: open a Web Bluetooth page in Chromium with blewire
 * as its navigator.bluetooth (src/web-bluetooth/bridge.ts), print the page's console, and end when the
 * browser closes, on Ctrl-C, or (for scripted runs) when a console line matches --until (exit 0) or
 * --timeout passes first (exit 1). --eval runs page code once the page loaded, e.g. a button's handler.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkInteger, UsageError } from './args.js';
import { parseArgs } from './explore.js';

const USAGE = 'usage: blewire browse <page.html | URL> [--eval CODE] [--until REGEX] [--timeout MS] [--show] ' +
  '[--scan-time MS] [--permissions] [--transport SPEC] [--capture FILE]';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['eval', 'until', 'scan-time']);
  if (args.flags.has('help')) {
    console.log(`${USAGE}\n\nOpens the page in Chromium (headless unless --show) with blewire as navigator.bluetooth;` +
      '\nrequestDevice() picks the strongest matching device (there is no chooser window).');
    return 0;
  }
  const [where] = args.positional;
  if (!where || args.positional.length > 1) {
    console.error(USAGE);
    return 2;
  }
  const url = /^[a-z][a-z0-9+.-]*:/i.test(where) ? where : pathToFileURL(resolve(where)).href;
  if (url.startsWith('file:') && !existsSync(new URL(url))) throw new UsageError(`no such page: ${where}`);
  const str = (k: string): string | undefined => (typeof args.flags.get(k) === 'string' ? args.flags.get(k) as string : undefined);
  let until: RegExp | undefined;
  const u = str('until');
  if (args.flags.has('until') && u === undefined) throw new UsageError('--until takes a regular expression');
  if (u !== undefined) {
    try {
      until = new RegExp(u);
    } catch (e) {
      throw new UsageError(`--until: ${(e as Error).message}`);
    }
  }
  const code = str('eval');
  if (args.flags.has('eval') && code === undefined) throw new UsageError('--eval takes page code');
  const scanTime = checkInteger(str('scan-time'), '--scan-time', 3000, 100, 60_000);
  const limit = args.flags.has('timeout') ? args.open.timeout : undefined;

  const { Adapter } = await import('../api/adapter.js');
  const { createBluetooth } = await import('../web-bluetooth/index.js');
  const { openBrowserPage } = await import('../web-bluetooth/bridge.js');
  const o = args.open;
  const adapter = await Adapter.open({ ...(o.transport ? { transport: o.transport } : {}), ...(o.capture ? { capture: o.capture } : {}) });
  const bluetooth = createBluetooth({ adapter, scanTime, ...(args.flags.has('permissions') ? { permissions: true } : {}) });
  let matched: (() => void) | undefined;
  const done = new Promise<number>(resolveDone => {
    matched = () => resolveDone(0);
    process.once('SIGINT', () => resolveDone(130));
    process.once('SIGTERM', () => resolveDone(143));
    if (limit !== undefined) {
      setTimeout(() => {
        console.error(`blewire browse: ${until ? `no console line matched ${until} in` : 'stopped after'} ${limit} ms`);
        resolveDone(until ? 1 : 0);
      }, limit).unref();
    }
  });
  try {
    const page = await openBrowserPage(url, {
      bluetooth,
      chromium: { headless: !args.flags.has('show') },
      onConsole: line => {
        console.log(line);
        if (until?.test(line)) matched?.();
      },
    });
    try {
      if (code !== undefined) await page.evaluate(code).catch(e => console.error(`blewire browse: --eval: ${(e as Error).message}`));
      return await done;
    } finally {
      await page.close();
    }
  } finally {
    await bluetooth.close();
    await adapter.close();
  }
}
