// LE data length on a link between two blewire hosts on one simulated air: the LL_LENGTH_REQ / RSP
// exchange (Vol 6, Part B, 5.1.9) changes both ends of the link, so after one side's LE Set Data Length
// (Vol 4, Part E, 7.8.33) its controller reports the new maximum TX and the other side's controller
// reports the same figure as its maximum RX, each with LE Data Length Change (7.7.65.7). Either side
// may start the procedure.
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';

/** Until `done()` holds, on the adapter's clock, at most `tries` steps (the assertion after it says what failed). */
async function settle(adapter: Adapter, done: () => boolean, tries = 200): Promise<void> {
  for (let i = 0; i < tries && !done(); i++) await new Promise<void>(r => adapter.clock.setTimeout(() => r(), 10));
}

describe.each([['extended', {}], ['legacy', { extended: false }]] as const)('data length across the air (%s controllers)', (_name, controller) => {
  test('one side\'s LE Set Data Length changes the other side\'s maximum RX to match', async () => {
    const air = new SimAir();
    const ps = createSimulator({ name: 'peripheral', peripherals: [], controller }, { air });
    const cs = createSimulator({ name: 'central', peripherals: [], controller }, { air });
    const peripheral = await Adapter.open({ transport: ps.transport, bonds: false });
    const central = await Adapter.open({ transport: cs.transport, bonds: false });
    try {
      await peripheral.advertise({ name: 'dle' });
      const accepted = peripheral.accept();
      const ad = await central.find({ name: 'dle', timeout: 5000 });
      const conn = await central.connect(ad!);
      const incoming = (await accepted.next()).value as Connection;
      await accepted.return!();

      // The central asks for 200 octets: its TX and the peripheral's RX become 200.
      await conn.setDataLength(200, 200 * 8 + 112);
      await settle(central, () => conn.dataLength?.maxTxOctets === 200 && incoming.dataLength?.maxRxOctets === 200);
      expect(conn.dataLength).toMatchObject({ maxTxOctets: 200, maxTxTime: 1712 });
      expect(incoming.dataLength).toMatchObject({ maxRxOctets: 200, maxRxTime: 1712 });

      // The peripheral asks for 120: its TX and the central's RX become 120; the other direction stays.
      await incoming.setDataLength(120, 120 * 8 + 112);
      await settle(central, () => incoming.dataLength?.maxTxOctets === 120 && conn.dataLength?.maxRxOctets === 120);
      expect(incoming.dataLength).toMatchObject({ maxTxOctets: 120, maxTxTime: 1072, maxRxOctets: 200 });
      expect(conn.dataLength).toMatchObject({ maxTxOctets: 200, maxRxOctets: 120, maxRxTime: 1072 });

      // The link still carries ATT at the new lengths.
      const name = await (await conn.characteristic(0x1800, 0x2a00)).read();
      expect(new TextDecoder().decode(name)).toBe('blewire');
      await conn.disconnect();
    } finally {
      await central.close();
      await peripheral.close();
    }
  });
});
