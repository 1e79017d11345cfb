/**
 * `blewire write <address> <uuid> <hex> [--without-response] [--service UUID]`: write one
 * characteristic (long values with prepare/execute; without response: a Write Command).
 */
import { characteristicCommandArgs, checkCharacteristicTarget, findCharacteristic, parseArgs, USAGE_COMMON, withSession } from './explore.js';
import { checkHex } from './args.js';

const USAGE = `usage: blewire write <address> <characteristic-uuid> <hex> [--without-response] [--service UUID] ${USAGE_COMMON}`;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const positional = characteristicCommandArgs(args, USAGE, 3);
  if (typeof positional === 'number') return positional;
  const [address, charUuid, hex] = positional as [string, string, string];
  const value = checkHex(hex);
  const service = checkCharacteristicTarget(address, charUuid, args);
  return withSession(address, args.open, async ({ gatt }) => {
    const c = await findCharacteristic(gatt, charUuid, service);
    await c.write(value, { withResponse: !args.flags.has('without-response') });
    console.log(`wrote ${value.length} octet(s) to ${c.name ?? c.uuid} (0x${c.handle.toString(16).padStart(4, '0')})`);
    return 0;
  });
}
