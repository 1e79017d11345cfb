import { AttBearer, type AttBearerOptions, type AttServerRole } from '../att/bearer.js';
import type { L2capChannel } from '../l2cap/channel.js';
import { GattDatabase, type GattServerLink, type ServiceDef } from './server-db.js';

/**
 * Our own small GAP/GATT database, served on every link's ATT bearer so a peer that discovers us
 * (BlueZ as a peripheral does) gets real answers (Core Vol 3, Part C, 12 and Part G, 7): Device
 * Name, Appearance, Service Changed (+CCCD), Client Supported Features and Database Hash.
 */
export function localGattDatabase(options: { name?: string; appearance?: number } = {}): GattDatabase {
  return new GattDatabase(localServiceDefs(options));
}

/** The GAP and GATT services of our database (the user's services of a GattServer follow them). */
export function localServiceDefs(options: { name?: string; appearance?: number } = {}): ServiceDef[] {
  const appearance = options.appearance ?? 0;
  return [
    { uuid: 0x1800, characteristics: [
      { uuid: 0x2a00, properties: ['read'], value: options.name ?? 'blewire' },
      { uuid: 0x2a01, properties: ['read'], value: Uint8Array.of(appearance & 0xff, appearance >> 8) },
    ] },
    { uuid: 0x1801, characteristics: [
      { uuid: 0x2a05, properties: ['indicate'] },
      { uuid: 0x2b29, properties: ['read', 'write'] },
      { uuid: 0x2b2a, properties: ['read'] },
    ] },
  ];
}

/** What `openAttBearer` takes: the bearer's options, with our server given as a role, a database session or none. */
export interface OpenAttBearerOptions extends Omit<AttBearerOptions, 'server'> {
  /**
   * Default: a session of `localGattDatabase()`; an AttServerRole; a function making this bearer's
   * GattServerLink (a GattServer's `attach`); false: Request Not Supported.
   */
  server?: AttServerRole | false | (() => GattServerLink);
}

/**
 * An ATT bearer on `channel` with our server on it: the one place that decides what a bearer answers
 * when nobody says otherwise (the link builds its bearer with it; a GattClient on a bare channel too).
 * Returns the bearer and our server session when it is one of our databases.
 */
export function openAttBearer(channel: L2capChannel, options: OpenAttBearerOptions): { bearer: AttBearer; session: GattServerLink | undefined } {
  const { server: serverOption, ...bearerOptions } = options;
  const session = serverOption === undefined ? localGattDatabase().createLink()
    : typeof serverOption === 'function' ? serverOption() : undefined;
  const server = session?.role ?? (serverOption === false || typeof serverOption === 'function' ? undefined : serverOption);
  const bearer = new AttBearer(channel, { ...bearerOptions, ...(server ? { server } : {}) });
  session?.bind(bearer);
  return { bearer, session };
}
