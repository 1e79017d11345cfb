/**
 * The simulated controller (see simulator.ts for the overview). Importing this module registers the
 * `sim[:scenario]` transport scheme.
 *
 * Differences from real controllers and from BlueZ's btvirt that are deliberate or known (the
 * differential test test/interop/sim-vs-btvirt.test.ts keeps the btvirt column honest):
 *
 * | behaviour                         | simulator                       | btvirt 5.66                      |
 * |-----------------------------------|---------------------------------|----------------------------------|
 * | unknown opcode                    | Command Complete 0x01           | Command Status 0x01 (both valid) |
 * | event masks                       | honoured                        | ignored                          |
 * | connection complete flavour       | by LE mask: Enhanced v2/v1/v1.0 | LE Connection Complete (legacy)  |
 * | advertising reports               | every advertising event         | one-shot at scan enable          |
 * | RSSI                              | scenario value with drift       | always 127                       |
 * | connection establishment          | at the target's next adv event  | instant                          |
 * | LE Create Connection Cancel       | 0x00, then Complete 0x02        | 0x0C (nothing pending, instant)  |
 * | ACL buffers                       | 251 × 8 (configurable)          | 192 × 1                          |
 * | Number Of Completed Packets       | at the connection event         | at once                          |
 * | local disconnect reason           | 0x16 (as real controllers)      | the reason the host sent         |
 * | data length / PHY commands        | implemented                     | Unknown HCI Command              |
 */
import './register.js';

export { SimClock, type SimEvent, type SimClockOptions } from './clock.js';
export { SimController, SIM_COMMAND_BITS, leEncrypt, type ControllerStats } from './controller.js';
export { SimLink, type LinkStats } from './link.js';
export { VirtualPeripheral, PeerSession, generate, type PeerLinkApi, type PeripheralStats } from './peripheral.js';
export { PeerPairing, type PeerBond, type PeerPairingStats } from './pairing.js';
export { Simulator, SimTransport, createSimulator, type PacketFault, type SimulatorOptions } from './simulator.js';
export { SCENARIOS, scenarioNamed, crowd, largeDatabase, HEART_RATE_SENSOR, THERMOMETER, LARGE_PERIPHERAL } from './scenarios.js';
export type * from './types.js';
export { bytesOf, adBytes, Rng } from './util.js';
export { SimAir, HostAdvertiser, type SimAirOptions, type AirConnectRequest } from './air.js';
