/** Help text more than one command prints (main's usage, scan --help, …). */

/** Every form --transport takes (src/transport/open.ts, src/transports.ts, src/sim/scenarios.ts). */
export const TRANSPORT_FORMS = [
  'Transports (--transport SPEC, or BLEWIRE_TRANSPORT):',
  '  hci0, hci:N, hci-user:N           Linux HCI user channel (adapter down, not held by bluetoothd)',
  '  unix:/path, tcp:host:port         H4 over a socket (btvirt, btproxy, Zephyr HCI over TCP)',
  '  serial:/dev/ttyACM0?baud=1000000  H4 over a UART (&rtscts=1 for flow control)',
  '  sim, sim:demo, sim:empty, sim:large  the simulated controller (no adapter needed)',
  '  replay:file.btsnoop, capture:file  a recording plays the controller',
].join('\n');
