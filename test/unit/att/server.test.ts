// Pins the ATT server's answers (Core Vol 3, Part F, 3.4) over the BlueZ replica: range checks,
// one UUID format per Find Information response, same-length lists cut at ATT_MTU, permissions,
// prepare/execute reassembly, and the error codes a client relies on.
import { describe, expect, test } from 'vitest';
import type { AttPdu } from '../../../src/att/pdus.js';
import { uuid } from '../../../src/codec/uuid.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { PREPARE_QUEUE_LIMIT } from '../../../src/att/server.js';
import { bluezExampleServices } from '../../helpers/fake-peripheral.js';

function server(mtu = 23) {
  const db = new GattDatabase(bluezExampleServices());
  const session = {};
  return (pdu: AttPdu, m = mtu) => db.server.handle(pdu, { mtu: m, session });
}
const err = (requestOpcode: number, handle: number, errorCode: number) => ({ kind: 'errorRsp', requestOpcode, handle, errorCode });

describe('discovery requests', () => {
  test('start 0 or start > end is Invalid Handle', () => {
    const ask = server();
    expect(ask({ kind: 'findInformationReq', startingHandle: 0, endingHandle: 5 })).toEqual(err(0x04, 0, 0x01));
    expect(ask({ kind: 'readByTypeReq', startingHandle: 9, endingHandle: 5, attributeType: uuid(0x2803) })).toEqual(err(0x08, 9, 0x01));
    expect(ask({ kind: 'readByGroupTypeReq', startingHandle: 9, endingHandle: 5, attributeGroupType: uuid(0x2800) })).toEqual(err(0x10, 9, 0x01));
  });

  test('Find Information stops where the UUID format changes', () => {
    const ask = server(517);
    expect(ask({ kind: 'findInformationReq', startingHandle: 0x24, endingHandle: 0x26 })).toEqual({ kind: 'findInformationRsp', informationData: [{ handle: 0x24, uuid: uuid(0x2900) }] });
    expect(ask({ kind: 'findInformationReq', startingHandle: 0x25, endingHandle: 0x26 })).toMatchObject({ informationData: [{ handle: 0x25 }] });
    expect(ask({ kind: 'findInformationReq', startingHandle: 0x2f, endingHandle: 0xffff })).toEqual(err(0x04, 0x2f, 0x0a));
  });

  test('Read By Group Type: same-length entries only, cut at ATT_MTU; only service types', () => {
    const ask = server(23);
    const r = ask({ kind: 'readByGroupTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeGroupType: uuid(0x2800) }) as Extract<AttPdu, { kind: 'readByGroupTypeRsp' }>;
    expect(r.attributeDataList.map(e => [e.handle, e.endGroupHandle])).toEqual([[1, 7], [8, 0x11], [0x12, 0x14]]); // 2 + 3×6 = 20 ≤ 23
    const big = server(517)({ kind: 'readByGroupTypeReq', startingHandle: 0x1d, endingHandle: 0xffff, attributeGroupType: uuid(0x2800) }) as Extract<AttPdu, { kind: 'readByGroupTypeRsp' }>;
    expect(big.attributeDataList.map(e => e.handle)).toEqual([0x1d]); // the 128-bit service waits for the next request
    expect(ask({ kind: 'readByGroupTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeGroupType: uuid(0x2803) })).toEqual(err(0x10, 1, 0x10));
  });

  test('Find By Type Value returns the service group', () => {
    expect(server()({ kind: 'findByTypeValueReq', startingHandle: 1, endingHandle: 0xffff, attributeType: uuid(0x2800), attributeValue: Uint8Array.of(0x0d, 0x18) }))
      .toEqual({ kind: 'findByTypeValueRsp', handlesInformationList: [{ foundAttributeHandle: 0x15, groupEndHandle: 0x1c }] });
  });
});

describe('reads and writes', () => {
  test('permissions and handles', () => {
    const ask = server();
    expect(ask({ kind: 'readReq', handle: 0x17 })).toEqual(err(0x0a, 0x17, 0x02));    // HRM is notify-only
    expect(ask({ kind: 'readReq', handle: 0x99 })).toEqual(err(0x0a, 0x99, 0x01));
    expect(ask({ kind: 'writeReq', handle: 0x03, value: Uint8Array.of(1) })).toEqual(err(0x12, 0x03, 0x03));
    expect(ask({ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeType: uuid(0x2a37) })).toEqual(err(0x08, 0x17, 0x02));
    expect(ask({ kind: 'writeReq', handle: 0x18, value: Uint8Array.of(2, 0) })).toEqual(err(0x12, 0x18, 0xfd)); // indicate bit on a notify-only char
  });

  test('Read Blob past the end is Invalid Offset; at the end it is empty', () => {
    const ask = server();
    expect(ask({ kind: 'readBlobReq', handle: 0x23, valueOffset: 10 })).toEqual({ kind: 'readBlobRsp', value: new Uint8Array(0) });
    expect(ask({ kind: 'readBlobReq', handle: 0x23, valueOffset: 11 })).toEqual(err(0x0c, 0x23, 0x07));
  });

  test('prepared writes are reassembled at execute; a gap in offsets is Invalid Offset', () => {
    const ask = server();
    ask({ kind: 'prepareWriteReq', handle: 0x23, valueOffset: 0, value: Uint8Array.of(1, 2) });
    ask({ kind: 'prepareWriteReq', handle: 0x23, valueOffset: 2, value: Uint8Array.of(3) });
    expect(ask({ kind: 'executeWriteReq', flags: 1 })).toEqual({ kind: 'executeWriteRsp' });
    expect(ask({ kind: 'readReq', handle: 0x23 })).toEqual({ kind: 'readRsp', value: Uint8Array.of(1, 2, 3) });
    ask({ kind: 'prepareWriteReq', handle: 0x23, valueOffset: 5, value: Uint8Array.of(9) });
    expect(ask({ kind: 'executeWriteReq', flags: 1 })).toEqual(err(0x18, 0x23, 0x07));
    ask({ kind: 'prepareWriteReq', handle: 0x23, valueOffset: 0, value: Uint8Array.of(7) });
    expect(ask({ kind: 'executeWriteReq', flags: 0 })).toEqual({ kind: 'executeWriteRsp' });
    expect(ask({ kind: 'readReq', handle: 0x23 })).toEqual({ kind: 'readRsp', value: Uint8Array.of(1, 2, 3) });
  });

  test(`a peer's prepared writes are bounded: ${PREPARE_QUEUE_LIMIT} per connection, then Prepare Queue Full; execute or cancel empties the queue`, () => {
    const ask = server(517);
    const value = new Uint8Array(512 - 5).fill(0xab); // the largest a Prepare Write Request carries at ATT_MTU 517
    for (let i = 0; i < PREPARE_QUEUE_LIMIT; i++) {
      expect(ask({ kind: 'prepareWriteReq', handle: 0x23, valueOffset: 0, value })).toMatchObject({ kind: 'prepareWriteRsp' });
    }
    // Prepare Queue Full, 0x09 (Vol 3, Part F, 3.4.1.1 / 3.4.6.1); nothing more is kept.
    expect(ask({ kind: 'prepareWriteReq', handle: 0x23, valueOffset: 0, value })).toEqual(err(0x16, 0x23, 0x09));
    expect(ask({ kind: 'executeWriteReq', flags: 0 })).toEqual({ kind: 'executeWriteRsp' });
    expect(ask({ kind: 'prepareWriteReq', handle: 0x23, valueOffset: 0, value: Uint8Array.of(5) })).toMatchObject({ kind: 'prepareWriteRsp' });
  });

  test('Read Multiple Variable cuts the list at ATT_MTU - 1', () => {
    const r = server(23)({ kind: 'readMultipleVariableReq', setOfHandles: [0x03, 0x23] });
    // "BlueZ 5.66" (10) fits whole; "test value" (10) is cut to the 8 octets left.
    expect(r).toEqual({ kind: 'readMultipleVariableRsp', lengthValueTupleList: [
      { length: 10, value: new TextEncoder().encode('BlueZ 5.66') },
      { length: 10, value: new TextEncoder().encode('test val') },
    ] });
  });
});
