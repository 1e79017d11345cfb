/**
 * `blewire relay [--listen [HOST:]PORT] --origin URL [--origin URL …] [--transport SPEC] [--json]`: hold a
 * controller here and let one web page at a time drive it with blewire's browser build running in the
 * page (`blewire/web-bluetooth/browser`, transport `ws://HOST:PORT/`). Prints the URL, then each page that
 * attaches or leaves; Ctrl-C ends it. See src/tooling/websocket-relay.ts for what it refuses.
 */
import { UsageError } from './args.js';
import { parseArgs } from './explore.js';

const USAGE = 'usage: blewire relay [--listen [HOST:]PORT] --origin URL [--origin URL ...] [--transport SPEC] [--json]';
const DEFAULT_PORT = 8790;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['listen', 'origin']);
  if (args.flags.has('help')) {
    console.log(`${USAGE}\n\nA page loads blewire/web-bluetooth/browser and opens createBluetooth({ transport: 'ws://HOST:PORT/' });` +
      '\nonly pages from the given origins may attach (any website can reach localhost), one at a time.' +
      `\n--listen defaults to 127.0.0.1:${DEFAULT_PORT}; --transport sim runs the simulator in real time.`);
    return 0;
  }
  if (args.positional.length > 0) throw new UsageError(`blewire relay takes no positional argument (got ${JSON.stringify(args.positional[0])})\n${USAGE}`);
  const origins = (args.lists.get('origin') ?? []).flatMap(o => o.split(',')).map(o => o.trim()).filter(Boolean);
  if (origins.length === 0) throw new UsageError(`--origin is needed: the origin of the page that will attach (e.g. http://localhost:5173), or '*' for any\n${USAGE}`);
  for (const o of origins) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o) && o !== 'null') throw new UsageError(`--origin ${JSON.stringify(o)} is not an origin (scheme://host[:port], no path)`);
  }
  const listen = typeof args.flags.get('listen') === 'string' ? args.flags.get('listen') as string : String(DEFAULT_PORT);
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen takes [HOST:]PORT, not ${JSON.stringify(listen)}`);
  const host = m[1]?.replace(/^\[|\]$/g, '') ?? '127.0.0.1';

  const { openTransport } = await import('../transport/open.js');
  const { startWebSocketRelay } = await import('../tooling/websocket-relay.js');
  // The simulator runs on its own virtual clock; the page's host runs on the wall clock: tie them.
  const transport = await openTransport(args.open.transport, { simSpeed: 1, ...(args.open.capture ? { capture: args.open.capture } : {}) });
  const say = (event: string, fields: Record<string, unknown>): void => {
    if (args.json) console.log(JSON.stringify({ event, ...fields }));
    else console.log(`${event}: ${Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  };
  const relay = await startWebSocketRelay({
    transport, host, port, origins,
    onSession: (event, origin, detail) => say(event === 'open' ? 'page attached' : 'page left', { origin, ...(detail ? { code: detail } : {}) }),
  }).catch(async (e: unknown) => {
    await transport.close();
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new UsageError(`cannot listen on ${listen}: ${(e as Error).message}`);
    throw e;
  });
  say('relay', { url: relay.url, controller: transport.description, origins: origins.join(' ') });
  const code = await new Promise<number>(resolve => {
    process.once('SIGINT', () => resolve(0));
    process.once('SIGTERM', () => resolve(0));
  });
  await relay.close();
  say('relay closed', { sessions: relay.stats.sessions, refused: relay.stats.refused });
  return code;
}
