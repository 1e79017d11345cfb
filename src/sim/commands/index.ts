/**
 * Every HCI command the simulated controller implements, one handler each, gathered from the family
 * modules. The type makes the set complete: a command in SIM_COMMANDS without a handler, or a handler
 * for one the catalogue does not list, fails to compile.
 */
import { ADVERTISING } from './advertising.js';
import { CONNECTIONS } from './connections.js';
import { INFO } from './info.js';
import { LINK_LAYER } from './link-layer.js';
import { SCANNING } from './scanning.js';
import { SECURITY } from './security.js';
import type { HandlerMap } from './table.js';

export const HANDLERS: HandlerMap = { ...INFO, ...ADVERTISING, ...SCANNING, ...CONNECTIONS, ...LINK_LAYER, ...SECURITY };

export { S, SIM_COMMAND_BITS, EXTENDED_ONLY, LEGACY_FAMILY, DATA_LENGTH_COMMANDS, type Handler, type SimCommandKind } from './table.js';
export { leEncrypt } from './security.js';
