/**
 * `blewire <command>`: dispatches to one module per command. Each command module exports
 * `run(argv): Promise<number>` (the exit code) and is loaded on demand, so `blewire decode` does not
 * pay for the host stack and a missing optional native module only matters to the commands that use it.
 * `blewire --help` loads nothing but this file, report.ts and help.ts: start-up is Node's own.
 */
import { report } from './report.js';
import { watchStdout } from './stdout.js';
import { TRANSPORT_FORMS } from './help.js';

const COMMANDS: Record<string, { load: () => Promise<{ run(argv: string[]): Promise<number> }>; help: string }> = {
  demo: { load: () => import('./demo.js'), help: 'scan, connect, discover and stream on the simulated controller (no adapter needed)' },
  scan: { load: () => import('./scan.js'), help: 'scan for advertisers: live table, or JSON Lines with --json' },
  explore: { load: () => import('./explore.js'), help: 'connect to a device and print its GATT tree with values' },
  read: { load: () => import('./read.js'), help: 'read a characteristic: blewire read <address> <uuid>' },
  write: { load: () => import('./write.js'), help: 'write a characteristic: blewire write <address> <uuid> <hex>' },
  notify: { load: () => import('./notify.js'), help: 'subscribe and print notifications: blewire notify <address> <uuid>' },
  advertise: { load: () => import('./advertise.js'), help: 'advertise until Ctrl-C, printing connections: blewire advertise --name N --service UUID ...' },
  serve: { load: () => import('./serve.js'), help: 'serve a GATT database from JSON (virtual peripheral, world, device twin) and advertise it' },
  twin: { load: () => import('./twin.js'), help: 'extract a device twin (database, values, notifications) from a capture: blewire twin <capture>' },
  pair: { load: () => import('./pair.js'), help: 'pair and bond with a device (prompts for passkeys): blewire pair <address> [--io ...]' },
  bonds: { load: async () => ({ run: (await import('./pair.js')).runBonds }), help: 'list the stored bonds, or forget one: blewire bonds [--remove ADDRESS]' },
  browse: { load: () => import('./browse.js'), help: 'open a Web Bluetooth page in Chromium with blewire as its navigator.bluetooth' },
  relay: { load: () => import('./relay.js'), help: 'let a web page running blewire\'s browser build drive this controller over a WebSocket' },
  decode: { load: () => import('./decode.js'), help: 'decode a btsnoop / pcap / pcapng capture like btmon -r (--json for JSON Lines)' },
  doctor: { load: () => import('./doctor.js'), help: 'check a transport and describe the controller behind it' },
  gateway: { load: async () => ({ run: (await import('../apps/gateway/cli.js')).runGateway }), help: 'scan and publish every device to an MQTT broker (needs the mqtt package)' },
  'gateway-merge': { load: async () => ({ run: (await import('../apps/gateway/cli.js')).runMerge }), help: "merge several gateways' views: nearest gateway per device" },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map(k => k.length));
  return [
    'usage: blewire <command> [options]',
    '',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.help}`),
    '',
    TRANSPORT_FORMS,
    'Record any run with --capture file.btsnoop (or BLEWIRE_CAPTURE).',
    'Run `blewire <command> --help` for the options of one command.',
    'Exit codes: 0 done, 1 failed, 2 usage mistake.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`blewire: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    await import('../transports.js'); // --transport sim / replay:file, for every command
    const mod = await cmd.load();
    return await mod.run(rest);
  } catch (err) {
    return report(name, err);
  }
}

watchStdout();
main(process.argv.slice(2)).then(
  code => { process.exitCode = code; },
  err => { process.exitCode = report(process.argv[2] ?? '', err); },
);
