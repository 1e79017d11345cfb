// Pins the host's ACL receive path (the header read in place): packets routed by handle with their
// PB flag and data, broadcast bits ignored for routing, and mis-framed packets (short header, length
// not matching the bytes that follow) counted as decode errors and routed nowhere; the receiver
// the host remembers for the last handle (no map lookup per packet) forgotten when links change.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { HciHost } from '../../../src/hci/host.js';
import { FakeController } from './host-fake-controller.js';

async function setup() {
  const ctl = new FakeController();
  const host = new HciHost(ctl, { clock: new FakeClock() });
  await host.init();
  const got: Array<[number, string]> = [];
  host.attachLink(0x0041, { acl: (pb, data) => got.push([pb, Buffer.from(data).toString('hex')]) });
  /** A command round trip: every packet delivered before its answer has been handled. */
  const settle = () => host.command({ kind: 'leSetScanEnable', enable: 0, filterDuplicates: 0 });
  return { ctl, host, got, settle };
}

describe('host ACL receive', () => {
  test('routed by handle with PB flag and data', async () => {
    const { ctl, host, got, settle } = await setup();
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x03, 0x00, 0xaa, 0xbb, 0xcc)); // PB 0b10
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x10, 0x01, 0x00, 0xdd));             // PB 0b01
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x60, 0x00, 0x00));                   // PB 0b10, BC 0b01, empty
    ctl.deliver(Uint8Array.of(0x02, 0x42, 0x20, 0x01, 0x00, 0xee));             // nobody attached
    await settle();
    expect(got).toEqual([[2, 'aabbcc'], [1, 'dd'], [2, '']]);
    expect(host.stats).toEqual({ aclUnknownHandle: 1, decodeErrors: 0, unknownPackets: 0 });
  });

  test('mis-framed packets are decode errors and reach no link', async () => {
    const { ctl, host, got, settle } = await setup();
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x04, 0x00, 0xaa, 0xbb, 0xcc)); // says 4, has 3
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x01, 0x00, 0xaa, 0xbb));       // says 1, has 2
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x00));                         // header cut short
    ctl.deliver(Uint8Array.of(0x02));
    await settle();
    expect(got).toEqual([]);
    expect(host.stats).toEqual({ aclUnknownHandle: 0, decodeErrors: 4, unknownPackets: 0 });
  });

  test('a detached handle routes nowhere and a handle attached again reaches its new receiver, between two packets', async () => {
    const { ctl, host, got, settle } = await setup();
    const other: string[] = [];
    const later: string[] = [];
    host.attachLink(0x0042, { acl: (_pb, data) => other.push(Buffer.from(data).toString('hex')) });
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x01, 0x00, 0x01));
    ctl.deliver(Uint8Array.of(0x02, 0x42, 0x20, 0x01, 0x00, 0x02)); // the other link between two of 0x41's
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x01, 0x00, 0x03));
    await settle();
    host.detachLink(0x0041, new Error('gone'));
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x01, 0x00, 0x04)); // the last handle routed, now detached
    await settle();
    host.attachLink(0x0041, { acl: (_pb, data) => later.push(Buffer.from(data).toString('hex')) });
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x01, 0x00, 0x05));
    await settle();
    host.attachLink(0x0041, { acl: (_pb, data) => other.push(`replaced ${Buffer.from(data).toString('hex')}`) });
    ctl.deliver(Uint8Array.of(0x02, 0x41, 0x20, 0x01, 0x00, 0x06));
    await settle();
    expect(got).toEqual([[2, '01'], [2, '03']]);
    expect(other).toEqual(['02', 'replaced 06']);
    expect(later).toEqual(['05']);
    expect(host.stats.aclUnknownHandle).toBe(1);
  });
});
