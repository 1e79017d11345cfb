// Issue 10: advertising, scanning and initiating at the same time on one adapter, under its GAP
// scheduler. One host ("hub") advertises as a connectable peripheral and scans continuously while it
// connects out to a sensor; a second host on the same air ("phone") connects in. Every role keeps
// working: reports keep arriving through both connections, the outgoing and the incoming link both
// carry ATT, and after the incoming link ends the hub can be found and connected to again (the legacy
// connectable set resumes advertising).
import { afterEach, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import type { HciTransport } from '../../src/transport/types.js';
import { createSimulator, HEART_RATE_SENSOR, SimAir, THERMOMETER } from '../../src/sim/index.js';

const open: Adapter[] = [];
afterEach(async () => { for (const a of open.splice(0)) await a.close(); });

test('advertise + scan + connect out + accept in, all at once on one adapter; advertising resumes after the incoming link ends', async () => {
  const air = new SimAir();
  const hubSim = createSimulator({ name: 'hub', peripherals: [{ ...HEART_RATE_SENSOR, notifications: [] }, THERMOMETER] }, { air });
  const phoneSim = createSimulator({ name: 'phone', peripherals: [] }, { air });
  const hub = await Adapter.open({ transport: hubSim.transport, clock: air.clock, bonds: false });
  const phone = await Adapter.open({ transport: phoneSim.transport, clock: air.clock, bonds: false });
  open.push(phone, hub);

  let served = 0;
  await hub.serve([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['read'], onRead: () => Uint8Array.of(++served) }] }], { name: 'hub' });
  const set = await hub.advertise({ name: 'hub', services: [0xfff0] });
  let reports = 0;
  const session = hub.scan({ duplicates: true, onAdvertisement: ad => { if (ad.name === 'Therm-1') reports++; } });
  await air.clock.delay(300);
  expect(reports).toBeGreaterThan(0);

  // Out: the hub connects to the sensor while it advertises and scans.
  const incoming: Connection[] = [];
  hub.on('connection', (c: Connection) => { if (c.role === 'peripheral') incoming.push(c); });
  const out = await hub.connect({ address: HEART_RATE_SENSOR.address, addressType: 'random' } as never, { timeout: 5000 });
  expect(out.role).toBe('central');
  expect((await (await out.characteristic(0x180f, 0x2a19)).read()).length).toBe(1);

  // In: the phone finds the hub (its advertising ran on through the outgoing connection) and connects.
  const hubAd = await phone.find({ name: 'hub', timeout: 5000 });
  expect(hubAd).toBeDefined();
  const inPhone = await phone.connect(hubAd!, { timeout: 5000 });
  while (incoming.length === 0) await air.clock.delay(10);
  expect(incoming[0]!.role).toBe('peripheral');
  expect(new TextDecoder().decode(await (await inPhone.characteristic(0x1800, 0x2a00)).read())).toBe('hub');
  expect([...await (await inPhone.characteristic(0xfff0, 0xfff1)).read()]).toEqual([1]);

  // Scanning goes on with both links up (the thermometer still advertises; the connected sensor does
  // not), and the outgoing link still answers.
  const before = reports;
  await air.clock.delay(500);
  expect(reports).toBeGreaterThan(before);
  expect((await (await out.characteristic(0x180f, 0x2a19)).read()).length).toBe(1);

  // The incoming link ends: the hub advertises again and takes a second connection.
  await inPhone.disconnect();
  const again = await phone.find({ name: 'hub', timeout: 5000 });
  const second = await phone.connect(again!, { timeout: 5000 });
  while (incoming.length < 2) await air.clock.delay(10);
  expect([...await (await second.characteristic(0xfff0, 0xfff1)).read()]).toEqual([2]);
  expect(out.connected).toBe(true);
  await second.disconnect();
  await out.disconnect();
  session.stop();
  await set.stop();
});

test('a central that disconnects in the middle of a long write: our server hands nothing partial to the app, and the next central writes whole', async () => {
  const air = new SimAir();
  const hubSim = createSimulator({ name: 'hub', peripherals: [] }, { air });
  const phoneSim = createSimulator({ name: 'phone', peripherals: [] }, { air });
  // The hub's incoming ACL, to count the Prepare Write Requests (ATT opcode 0x16) that reached it.
  let prepares = 0;
  const t = hubSim.transport;
  const hubTransport: HciTransport = {
    clock: t.clock, description: t.description, send: p => t.send(p), close: () => t.close(),
    setReceiver: r => t.setReceiver({
      packet: p => { if (p[0] === 0x02 && p.length > 9 && p[7] === 0x04 && p[8] === 0x00 && p[9] === 0x16) prepares++; r.packet(p); },
      closed: e => r.closed(e),
    }),
  };
  const hub = await Adapter.open({ transport: hubTransport, clock: air.clock, bonds: false });
  // The phone offers ATT_MTU 23, so a 400-octet value is a long write (Prepare Write Requests, then Execute).
  const phone = await Adapter.open({ transport: phoneSim.transport, clock: air.clock, bonds: false, mtu: 23 });
  open.push(phone, hub);
  const writes: Array<{ length: number; prepared: boolean }> = [];
  await hub.serve([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff2, properties: ['read', 'write'], maxLength: 512,
    onWrite: (value: Uint8Array, req: { prepared?: boolean }) => { writes.push({ length: value.length, prepared: req.prepared === true }); } }] }], { name: 'hub' });
  await hub.advertise({ name: 'hub', services: [0xfff0] });
  const long = Uint8Array.from({ length: 400 }, (_, i) => i & 0xff); // > ATT_MTU - 3: Prepare Write Requests
  const first = await phone.connect((await phone.find({ name: 'hub', timeout: 5000 }))!, { timeout: 5000 });
  const ch = await first.characteristic(0xfff0, 0xfff2);
  const pending = ch.write(long).then(() => 'written', (e: unknown) => e as Error);
  while (prepares < 3) await air.clock.delay(1); // some of the value queued on the server, not executed
  const queued = prepares;
  await first.disconnect();
  const outcome = await pending;
  expect(outcome).toBeInstanceOf(Error);
  expect(queued).toBeLessThan(Math.ceil(400 / 18)); // it was cut off before the last part (18 octets each at ATT_MTU 23)
  await air.clock.delay(100);
  expect(writes).toEqual([]);
  const second = await phone.connect((await phone.find({ name: 'hub', timeout: 5000 }))!, { timeout: 5000 });
  await (await second.characteristic(0xfff0, 0xfff2)).write(long);
  expect(writes).toEqual([{ length: 400, prepared: true }]);
  expect([...await (await second.characteristic(0xfff0, 0xfff2)).read()]).toEqual([...long]);
  await second.disconnect();
});
