// Pins robustness of the HCI codec on hostile input: random bytes (free and structured around real
// opcodes and event codes) decode or throw DecodeError, never anything else, and whatever decodes
// re-encodes to something that decodes to the same value.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { DecodeError } from '../../../src/errors.js';
import { COMMAND_TABLE } from '../../../src/hci/commands.js';
import { HCI_EVENTS } from '../../../src/hci/events.js';
import { LE_META_EVENTS } from '../../../src/hci/le-events.js';
import { decodeHciPacket, describeHciPacket, encodeHciPacket, type HciPacket } from '../../../src/hci/packets.js';
import { ALL_FIXTURES } from './fixtures.js';
import { fromHex } from '../../../src/bytes/hex.js';
import { fuzzRuns } from '../../helpers/fuzz-runs.js';

function decodeOrDecodeError(bytes: Uint8Array): HciPacket | undefined {
  try {
    return decodeHciPacket(bytes);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return undefined;
  }
}

/** decode ∘ encode ∘ decode = decode, and describe() works, for anything that decodes. */
function checkStable(bytes: Uint8Array): void {
  const p = decodeOrDecodeError(bytes);
  if (!p) return;
  expect(describeHciPacket(p)).not.toMatch(/\n/);
  const again = decodeHciPacket(encodeHciPacket(p));
  expect(again).toEqual(p);
}

const opcodes = COMMAND_TABLE.kinds.map(k => COMMAND_TABLE.codeOf(k));
const eventCodes = Object.values(HCI_EVENTS).map(r => r.code);
const subevents = Object.values(LE_META_EVENTS).map(r => r.code);
const runs = fuzzRuns(3000, 0x5eed);

describe('HCI decode on random input', () => {
  test('free random bytes: DecodeError or a value, never another error', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), b => { checkStable(b); }), runs);
  });

  test('well-framed commands with random parameters', () => {
    fc.assert(fc.property(fc.constantFrom(...opcodes, 0xfc17, 0x0c99), fc.uint8Array({ maxLength: 255 }), (op, params) => {
      const b = Uint8Array.of(0x01, op & 0xff, op >> 8, params.length, ...params);
      checkStable(b);
    }), runs);
  });

  test('well-framed events with random parameters', () => {
    fc.assert(fc.property(fc.constantFrom(...eventCodes, 0xff, 0xfe), fc.uint8Array({ maxLength: 255 }), (code, params) => {
      checkStable(Uint8Array.of(0x04, code, params.length, ...params));
    }), runs);
  });

  test('Command Complete with a real opcode and random return parameters', () => {
    fc.assert(fc.property(fc.constantFrom(...opcodes), fc.uint8Array({ maxLength: 252 }), (op, ret) => {
      checkStable(Uint8Array.of(0x04, 0x0e, 3 + ret.length, 1, op & 0xff, op >> 8, ...ret));
    }), runs);
  });

  test('LE Meta sub-events with random parameters', () => {
    fc.assert(fc.property(fc.constantFrom(...subevents, 0x7f), fc.uint8Array({ maxLength: 254 }), (sub, params) => {
      checkStable(Uint8Array.of(0x04, 0x3e, params.length + 1, sub, ...params));
    }), runs);
  });

  test('fixtures with random byte flips', () => {
    const fixtures = ALL_FIXTURES.map(f => fromHex(f.hex));
    fc.assert(fc.property(fc.constantFrom(...fixtures), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), (fx, flips) => {
      const b = fx.slice();
      for (const [i, v] of flips) if (b.length > 1) b[1 + (i % (b.length - 1))] = v;
      checkStable(b);
    }), runs);
  });

  test('data packets: length must match, flags round-trip', () => {
    fc.assert(fc.property(fc.constantFrom(0x02, 0x03, 0x05), fc.uint8Array({ maxLength: 40 }), (ind, rest) => {
      checkStable(Uint8Array.of(ind, ...rest));
    }), runs);
  });
});
