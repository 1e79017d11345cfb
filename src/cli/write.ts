/**
 * `blewire write <address> <uuid> <hex> [--without-response] [--service UUID]`: write one
 * characteristic (long values with prepare/execute; without response: a Write Command).
 */
import { findCharacteristic, parseArgs, USAGE_COMMON, withSession } from './explore.js';
import { checkAddress, checkHex, checkUuid } from './args.js';

const USAGE = `usage: blewire write <address> <characteristic-uuid> <hex> [--without-response] [--service UUID] ${USAGE_COMMON}`;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const [address, charUuid, hex] = args.positional;
  if (args.flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  if (!address || !charUuid || hex === undefined) {
    console.error(USAGE);
    return 2;
  }
  const value = checkHex(hex);
  const service = args.flags.get('service');
  checkAddress(address);
  checkUuid(charUuid, 'characteristic UUID');
  if (typeof service === 'string') checkUuid(service, 'service UUID');
  return withSession(address, args.open, async ({ gatt }) => {
    const c = await findCharacteristic(gatt, charUuid, typeof service === 'string' ? service : undefined);
    await c.write(value, { withResponse: !args.flags.has('without-response') });
    console.log(`wrote ${value.length} octet(s) to ${c.name ?? c.uuid} (0x${c.handle.toString(16).padStart(4, '0')})`);
    return 0;
  });
}
