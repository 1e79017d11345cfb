/**
 * Registers the `sim` and `sim:<scenario>` transports with openTransport (src/transport/open.ts).
 * Importing this module (or src/sim/index.ts) is all it takes; src/transport never imports the
 * simulator. Options: `{ scenario }` (a Scenario object instead of a name), `{ simSpeed }`, and
 * `{ onSimulator(sim) }` to get hold of the Simulator behind the transport (tests, the demo).
 * The returned transport carries the simulator's virtual clock (`transport.clock`); the host must
 * use it (Adapter.open does when it is given no clock of its own).
 */
import { registerTransport, type TransportFactory } from '../transport/open.js';
import { createSimulator, type Simulator } from './simulator.js';
import type { Scenario } from './types.js';

/** The `sim[:scenario]` factory (src/transports.ts points the registry at it, loading this module on first use). */
export const openSimTransport: TransportFactory = (rest, options) => {
  const given = options['scenario'] as Scenario | undefined;
  const speed = options['simSpeed'] as number | undefined;
  const sim = createSimulator(given ?? (rest || 'demo'), speed !== undefined ? { speed } : {});
  const hook = options['onSimulator'] as ((s: Simulator) => void) | undefined;
  hook?.(sim);
  return sim.transport;
};

registerTransport('sim', openSimTransport, 'sim[:scenario]');
