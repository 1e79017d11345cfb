/**
 * `blewire pair <address> [--io CAPABILITY] [--mitm] [--sc-only] [--no-bond] [--min-key-size N]`:
 * connect, pair (and bond), print the link's security. Passkeys and numeric comparisons are asked
 * on the terminal (`terminalPairing`, also used by the GATT commands when a peer asks for security);
 * without a terminal only Just Works can succeed, and the prompt says so.
 *
 * `blewire bonds [--remove ADDRESS] [--json]`: list the bond store, or forget one peer.
 */
import { IO_CAPABILITY_NAMES } from '../link/pairing.js';
import { checkAddress, checkInteger, UsageError } from './args.js';
import { parseArgs, USAGE_COMMON } from './explore.js';
import { closePrompts, ioOption, terminalPairing } from './prompt.js';

const USAGE = `usage: blewire pair <address> [--io ${IO_CAPABILITY_NAMES.join('|')}] [--mitm] [--sc-only] [--no-bond] ` +
  `[--min-key-size N] [--json] ${USAGE_COMMON}`;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['io', 'min-key-size']);
  if (args.flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const [address] = args.positional;
  if (!address) {
    console.error(USAGE);
    return 2;
  }
  checkAddress(address);
  const io = ioOption(args.flags.get('io'));
  const mk = args.flags.get('min-key-size');
  const minKeySize = checkInteger(typeof mk === 'string' ? mk : undefined, '--min-key-size', 16, 7, 16);
  await import('../transports.js');
  const { Adapter } = await import('../api/adapter.js');
  const o = args.open;
  const adapter = await Adapter.open({
    ...(o.transport ? { transport: o.transport } : {}),
    ...(o.capture ? { capture: o.capture } : {}),
    pairing: terminalPairing(io),
  });
  try {
    const learnt = o.addressType ?? (await adapter.find({ address, timeout: Math.min(o.timeout, 5_000) }))?.addressType;
    const conn = await adapter.connect({ address, addressType: learnt === 'random' ? 'random' : 'public' }, { timeout: o.timeout });
    conn.on('pairing', p => { if (!args.json && p.stage === 'securityRequest') process.stderr.write('the device asks for security\n'); });
    const state = await conn.pair({
      ...(args.flags.has('mitm') ? { mitm: true } : {}),
      ...(args.flags.has('sc-only') ? { secureConnectionsOnly: true } : {}),
      ...(args.flags.has('no-bond') ? { bond: false } : {}),
      minKeySize,
    });
    if (args.json) console.log(JSON.stringify({ address, ...state }));
    else {
      console.log(`paired with ${address}: security level ${state.level}, ${state.secureConnections ? 'LE Secure Connections' : 'LE legacy'}, ` +
        `${state.authenticated ? 'authenticated' : 'unauthenticated (Just Works)'}, ${state.keySize}-octet key, ` +
        `${state.bonded ? 'bonded' : 'not bonded'}`);
    }
    await conn.disconnect().catch(() => undefined);
    return 0;
  } finally {
    closePrompts(); // a prompt the peer's failure left open must not hold stdin (and the process)
    await adapter.close();
  }
}

/** `blewire bonds [--remove ADDRESS] [--json]`. */
export async function runBonds(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['remove', 'dir']);
  if (args.flags.has('help')) {
    console.log('usage: blewire bonds [--remove ADDRESS] [--dir DIRECTORY] [--json]');
    return 0;
  }
  const { FileBondStore, defaultBondDir } = await import('../smp/bonds.js');
  const dir = args.flags.get('dir');
  const problems: string[] = [];
  const store = new FileBondStore(typeof dir === 'string' ? dir : defaultBondDir(), { onError: (p, e) => problems.push(`${p}: ${e.message}`) });
  const remove = args.flags.get('remove');
  if (remove !== undefined) {
    if (typeof remove !== 'string') throw new UsageError('--remove takes an address');
    const address = checkAddress(remove).toUpperCase();
    let removed = 0;
    for (const type of [0, 1] as const) {
      if (await store.load({ type, address })) {
        await store.remove({ type, address });
        removed++;
      }
    }
    if (!removed) {
      console.error(`blewire bonds: no bond with ${address} in ${store.dir}`);
      return 1;
    }
    console.log(`removed the bond with ${address}`);
    return 0;
  }
  const bonds = await store.list();
  for (const p of problems) console.error(`blewire bonds: ignored ${p}`);
  for (const b of bonds) {
    const row = {
      address: b.identity.address, type: b.identity.type === 0 ? 'public' : 'random',
      secureConnections: b.secureConnections, authenticated: b.authenticated, keySize: b.keySize,
      keys: [b.ltk && 'LTK', b.localLtk && 'local LTK', b.peerIrk && 'IRK', b.peerCsrk && 'CSRK', b.linkKey && 'link key'].filter(Boolean),
    };
    if (args.json) console.log(JSON.stringify(row));
    else {
      console.log(`${row.address} (${row.type})  ${row.secureConnections ? 'SC' : 'legacy'}  ${row.authenticated ? 'authenticated' : 'unauthenticated'}  ` +
        `${row.keySize}-octet key  ${row.keys.join(', ')}`);
    }
  }
  if (!args.json && bonds.length === 0) console.log(`no bonds in ${store.dir}`);
  return 0;
}
