/** `blewire read <address> <uuid> [--service UUID] [--json]`: read one characteristic (long values whole). */
import { findCharacteristic, jsonValue, parseArgs, presentationOf, showValue, USAGE_COMMON, withSession } from './explore.js';
import { checkAddress, checkUuid } from './args.js';

const USAGE = `usage: blewire read <address> <characteristic-uuid> [--service UUID] [--json] ${USAGE_COMMON}`;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const [address, charUuid] = args.positional;
  if (args.flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  if (!address || !charUuid) {
    console.error(USAGE);
    return 2;
  }
  const service = args.flags.get('service');
  // Checked before anything is opened: a typo is a usage error, not a connection and then a failure.
  checkAddress(address);
  checkUuid(charUuid, 'characteristic UUID');
  if (typeof service === 'string') checkUuid(service, 'service UUID');
  return withSession(address, args.open, async ({ gatt }) => {
    const c = await findCharacteristic(gatt, charUuid, typeof service === 'string' ? service : undefined);
    const v = await c.read();
    const format = await presentationOf(c);
    console.log(args.json ? JSON.stringify({ uuid: c.uuid, name: c.name, handle: c.handle, ...jsonValue(c.uuid, v, format) })
      : showValue(c.uuid, v, format));
    return 0;
  });
}
