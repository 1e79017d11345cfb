// The one range iterator (issue 8, section 2): every looping GATT procedure is a record run by
// iterateRange, which alone owns Attribute Not Found and the progress / hostile-ordering rules.
// A scripted bearer answers each request from a list, so every rule is checked on exact responses.
import { expect, test } from 'vitest';
import type { AttBearer } from '../../../src/att/bearer.js';
import { AttError, ProtocolError } from '../../../src/errors.js';
import { discoverDescriptors, discoverPrimaryServices, readByTypeAll, readDatabaseHash } from '../../../src/gatt/procedures.js';
import { fromShort } from '../../../src/codec/uuid.js';

/** A bearer that answers request i with answers[i] (an Error Response when it is a number). */
function scripted(answers: Array<object | number>): { bearer: AttBearer; sent: Array<Record<string, unknown>> } {
  const sent: Array<Record<string, unknown>> = [];
  const bearer = {
    mtu: 23,
    request: async (pdu: Record<string, unknown>) => {
      sent.push(pdu);
      const a = answers.shift();
      if (a === undefined) throw new Error('no more answers scripted');
      if (typeof a === 'number') throw new AttError(a, `error 0x${a.toString(16)}`, (pdu.startingHandle as number) ?? 0, pdu.kind as string, 0);
      return a;
    },
  } as unknown as AttBearer;
  return { bearer, sent };
}

const svc = (handle: number, endGroupHandle: number, u16: number) => ({ handle, endGroupHandle, value: Uint8Array.of(u16 & 0xff, u16 >> 8) });

test('Attribute Not Found ends the run; the next request starts after the last group', async () => {
  const { bearer, sent } = scripted([
    { kind: 'readByGroupTypeRsp', attributeDataList: [svc(1, 5, 0x1800), svc(6, 9, 0x1801)] },
    0x0a,
  ]);
  const out = await discoverPrimaryServices(bearer, undefined);
  expect(out.map(s => [s.start, s.end])).toEqual([[1, 5], [6, 9]]);
  expect(sent.map(p => p.startingHandle)).toEqual([1, 10]);
});

test('a group ending at 0xFFFF or at the end of the range stops without another request', async () => {
  const { bearer, sent } = scripted([{ kind: 'readByGroupTypeRsp', attributeDataList: [svc(1, 0xffff, 0x1800)] }]);
  expect(await discoverPrimaryServices(bearer, undefined)).toHaveLength(1);
  expect(sent).toHaveLength(1);
});

test('hostile ordering across responses is a ProtocolError, never a loop', async () => {
  // The second response repeats a service inside the first one's group.
  const overlap = scripted([
    { kind: 'readByGroupTypeRsp', attributeDataList: [svc(1, 5, 0x1800)] },
    { kind: 'readByGroupTypeRsp', attributeDataList: [svc(6, 9, 0x1801), svc(8, 12, 0x180f)] },
  ]);
  await expect(discoverPrimaryServices(overlap.bearer, undefined)).rejects.toThrow(/service at 0x0008 overlaps the previous one ending 0x0009/);
  // A Read By Type answer before the requested start.
  const back = scripted([
    { kind: 'readByTypeRsp', attributeDataList: [{ handle: 3, value: Uint8Array.of(1) }] },
    { kind: 'readByTypeRsp', attributeDataList: [{ handle: 2, value: Uint8Array.of(1) }] },
  ]);
  const err = await readByTypeAll(back.bearer, fromShort(0x2a19), 1, 10, undefined).catch(e => e);
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as Error).message).toMatch(/attribute at 0x0002 is outside the requested 0x0004–0x000a/);
  // A descriptor beyond the range.
  const far = scripted([{ kind: 'findInformationRsp', informationData: [{ handle: 20, uuid: fromShort(0x2902) }] }]);
  await expect(discoverDescriptors(far.bearer, 5, 10, undefined)).rejects.toThrow(/descriptor at 0x0014 is outside/);
  // A group that ends before it starts.
  const inverted = scripted([{ kind: 'readByGroupTypeRsp', attributeDataList: [svc(6, 4, 0x1800)] }]);
  await expect(discoverPrimaryServices(inverted.bearer, undefined)).rejects.toThrow(/ends before it starts/);
});

test('other ATT errors pass through; the Database Hash read stops after the first hit', async () => {
  const denied = scripted([0x02]);
  expect(await readDatabaseHash(denied.bearer, undefined)).toBeUndefined(); // Read Not Permitted: no hash
  const other = scripted([0x05]);
  await expect(readDatabaseHash(other.bearer, undefined)).rejects.toBeInstanceOf(AttError);
  const hash = new Uint8Array(16).fill(7);
  const one = scripted([{ kind: 'readByTypeRsp', attributeDataList: [{ handle: 0x10, value: hash }] }]);
  expect(await readDatabaseHash(one.bearer, undefined)).toEqual(hash);
  expect(one.sent).toHaveLength(1);
});
