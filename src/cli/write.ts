/**
 * `blewire write <address> <uuid> <hex> [--without-response] [--service UUID]`: write one
 * characteristic (long values with prepare/execute; without response: a Write Command).
 */
import { fromHex } from '../bytes/hex.js';
import { findCharacteristic, parseArgs, USAGE_COMMON, withSession } from './explore.js';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const [address, charUuid, hex] = args.positional;
  if (!address || !charUuid || hex === undefined) {
    console.error(`usage: blewire write <address> <characteristic-uuid> <hex> [--without-response] [--service UUID] ${USAGE_COMMON}`);
    return 2;
  }
  let value: Uint8Array;
  try {
    value = fromHex(hex);
  } catch {
    console.error(`blewire write: not hex: ${hex}`);
    return 2;
  }
  const service = args.flags.get('service');
  return withSession(address, args.open, async ({ gatt }) => {
    const c = await findCharacteristic(gatt, charUuid, typeof service === 'string' ? service : undefined);
    await c.write(value, { withResponse: !args.flags.has('without-response') });
    console.log(`wrote ${value.length} octet(s) to ${c.name ?? c.uuid} (0x${c.handle.toString(16).padStart(4, '0')})`);
    return 0;
  });
}
