/**
 * `blewire advertise [--name NAME] [--service UUID]... [--manufacturer ID:HEX]... [--service-data UUID:HEX]...
 * [--connectable|--non-connectable] [--interval MS] [--tx-power] [--json] [--transport SPEC]`:
 * advertise until Ctrl-C / SIGTERM, printing the advertising data and every connection (a central
 * that connects finds blewire's GAP and GATT services). Data that does not fit fails before anything
 * is advertised, saying by how many octets (AdTooLongError).
 */
import type { AdvertiseOptions } from '../gap/advertiser.js';
import { UsageError } from './args.js';
import { parseArgs } from './explore.js';
import { ADVERTISING_USAGE, advertiseUntilStopped, advertisingArgs, eventPrinter, openAdapter } from './peripheral.js';

const USAGE = `usage: blewire advertise ${ADVERTISING_USAGE} [--json] [--transport SPEC] [--capture FILE]`;

const HELP = `${USAGE}

Advertises until Ctrl-C, printing the data sent and every connection and disconnection (JSON Lines
with --json). Connectable advertising (the default) starts again after each connection; a central
that connects finds blewire's GAP service (Device Name = --name) and GATT service.
  --name NAME               the local name (shortened in the data if it does not fit)
  --service UUID            a service UUID to list (repeat, or comma-separate): 180d, heart_rate, 128-bit
  --manufacturer ID:HEX     manufacturer data: company identifier (decimal or 0x hex) and octets
  --service-data UUID:HEX   service data: UUID and octets
  --connectable             accept connections (default)
  --non-connectable         broadcast only
  --interval MS             advertising interval, 20 to 10240 ms (default 100-150)
  --tx-power                include the TX power the controller selected
Legacy advertising carries 31 octets; when the data needs more, an extended-advertising controller
gets extended PDUs, and any other fails with how many octets are too many.
Serve a GATT database while advertising with \`blewire serve\`.`;

export async function run(argv: string[], options: { signal?: AbortSignal } = {}): Promise<number> {
  const args = parseArgs(argv, ['name', 'interval', 'manufacturer', 'service-data']);
  if (args.flags.has('help')) {
    console.log(HELP);
    return 0;
  }
  if (args.positional.length) throw new UsageError(`advertise takes options only, not ${JSON.stringify(args.positional[0])} (see --help)`);
  const a = advertisingArgs(args);
  const advertise: AdvertiseOptions = {
    ...(a.name !== undefined ? { name: a.name } : {}),
    ...(a.services ? { services: a.services } : {}),
    ...(a.manufacturerData ? { manufacturerData: a.manufacturerData } : {}),
    ...(a.serviceData ? { serviceData: a.serviceData } : {}),
    ...(a.connectable !== undefined ? { connectable: a.connectable } : {}),
    ...(a.interval !== undefined ? { interval: a.interval } : {}),
    ...(a.includeTxPower ? { includeTxPower: true } : {}),
  };
  const adapter = await openAdapter(args);
  try {
    if (a.name !== undefined) await adapter.serve([], { name: a.name });
    return await advertiseUntilStopped(adapter, advertise, eventPrinter(args.json), {
      ...(options.signal ? { signal: options.signal } : {}), ...(a.name !== undefined ? { name: a.name } : {}),
    });
  } finally {
    await adapter.close().catch(() => undefined);
  }
}
