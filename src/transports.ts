/**
 * The transport registry's wiring, at the top of the tree: the package entry (index.ts) and the CLI
 * (cli/main.ts) import this module, and it points the registry of src/transport/open.ts at the
 * transports that live above the transport layer: the simulator (`sim[:scenario]`) and capture replay
 * (`replay:file`). Each is loaded on first use, so an application on hci0 never loads either. Nothing
 * below this file imports sim/ or replay/: `Adapter.open({ transport: 'sim' })` works because the
 * caller came in through the package entry, which wired the registry first.
 */
import { registerTransport } from './transport/open.js';

registerTransport('sim', async (rest, options, spec) =>
  (await import('./sim/register.js')).openSimTransport(rest, options, spec), 'sim[:scenario]');
registerTransport('replay', async (rest, options, spec) =>
  (await import('./replay/transport.js')).openReplayTransport(rest, options, spec), 'replay:file');
