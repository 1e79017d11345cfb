/** `blewire read <address> <uuid> [--service UUID] [--json]`: read one characteristic (long values whole). */
import {
  characteristicCommandArgs, checkCharacteristicTarget, findCharacteristic, jsonValue, parseArgs, presentationOf, showValue, USAGE_COMMON,
  withSession,
} from './explore.js';

const USAGE = `usage: blewire read <address> <characteristic-uuid> [--service UUID] [--json] ${USAGE_COMMON}`;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const positional = characteristicCommandArgs(args, USAGE);
  if (typeof positional === 'number') return positional;
  const [address, charUuid] = positional as [string, string];
  const service = checkCharacteristicTarget(address, charUuid, args);
  return withSession(address, args.open, async ({ gatt }) => {
    const c = await findCharacteristic(gatt, charUuid, service);
    const v = await c.read();
    const format = await presentationOf(c);
    console.log(args.json ? JSON.stringify({ uuid: c.uuid, name: c.name, handle: c.handle, ...jsonValue(c.uuid, v, format) })
      : showValue(c.uuid, v, format));
    return 0;
  });
}
