// Pins the advertising-data codec: every AD type row decodes and encodes its annotated fixture both
// ways, the tolerant parser keeps every good structure before a malformed one and never throws (also
// on the real capture with 120 malformed reports), and the view (name, UUIDs, service and
// manufacturer data, …) is what a scanner needs.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { AdTooLongError, DecodeError, EncodeError } from '../../../src/errors.js';
import { fromShort } from '../../../src/codec/uuid.js';
import {
  AD_TABLE, AD_TYPES, LEGACY_AD_MAX, buildAd, decodeAd, decodeAdStructure, decodeUri, describeAd, encodeAd, encodeUri, parseAd, parseAdIn, parseAdvertisingData,
  type AdPdu,
} from '../../../src/gap/ad.js';
import { parseCapture } from '../../../src/capture/index.js';
import { decodeHciPacket } from '../../../src/hci/packets.js';
import { fuzzRuns } from '../../helpers/fuzz-runs.js';

const b = fromHex;
const U = fromShort;
const NUS = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
const NUS_LE = '9ecadc240ee5a9e093f3a3b50100406e';
const K16 = '00112233445566778899aabbccddeeff';

const FIXTURES: Array<[AdPdu, string]> = [
  [{ kind: 'flags', flags: 0x06 }, '02 01 06'],                    // len 2, Flags: LE General | no BR/EDR
  [{ kind: 'incompleteUuids16', uuids: [U(0x180d)] }, '03 02 0d18'], // len 3, incomplete 16-bit list: heart rate
  [{ kind: 'completeUuids16', uuids: [U(0x180d), U(0x180f)] }, '05 03 0d18 0f18'], // complete 16-bit list
  [{ kind: 'incompleteUuids32', uuids: [U(0x12345678)] }, '05 04 78563412'], // incomplete 32-bit list
  [{ kind: 'completeUuids32', uuids: [U(0x12345678)] }, '05 05 78563412'],   // complete 32-bit list
  [{ kind: 'incompleteUuids128', uuids: [NUS] }, '11 06' + NUS_LE],  // len 17, incomplete 128-bit list
  [{ kind: 'completeUuids128', uuids: [NUS] }, '11 07' + NUS_LE],    // complete 128-bit list
  [{ kind: 'shortenedLocalName', name: 'Pol' }, '04 08 506f6c'],     // shortened name "Pol"
  [{ kind: 'completeLocalName', name: 'Polar H10 é' }, '0d 09 506f6c617220483130 20 c3a9'], // "Polar H10 é" (UTF-8, é = c3 a9)
  [{ kind: 'txPowerLevel', txPower: -8 }, '02 0a f8'],               // TX power -8 dBm
  [{ kind: 'classOfDevice', classOfDevice: 0x240404 }, '04 0d 040424'], // class of device (LE)
  [{ kind: 'simplePairingHashC192', hash: b(K16) }, '11 0e' + K16],  // hash C-192
  [{ kind: 'simplePairingRandomizerR192', randomizer: b(K16) }, '11 0f' + K16], // randomizer R-192
  [{ kind: 'deviceIdOrTkValue', value: b('0200 6b1d 4602 0501') }, '09 10 0200 6b1d 4602 0501'], // Device ID: source USB, vendor, product, version
  [{ kind: 'securityManagerOobFlags', oobFlags: 0x03 }, '02 11 03'],  // OOB data present, LE supported
  [{ kind: 'peripheralConnectionIntervalRange', intervalMin: 0x0006, intervalMax: 0x0c80 }, '05 12 0600 800c'], // 7.5 ms … 4 s
  [{ kind: 'solicitationUuids16', uuids: [U(0x1812)] }, '03 14 1218'], // solicits HID
  [{ kind: 'solicitationUuids128', uuids: [NUS] }, '11 15' + NUS_LE],  // solicits NUS
  [{ kind: 'serviceData16', uuid: U(0xfeaa), data: b('10 f8 03') }, '06 16 aafe 10f803'], // service data: Eddystone URL frame
  [{ kind: 'publicTargetAddress', addresses: ['C0:11:22:33:44:55'] }, '07 17 5544332211c0'], // public target address (LE)
  [{ kind: 'randomTargetAddress', addresses: ['C0:11:22:33:44:55', 'D0:00:00:00:00:01'] }, '0d 18 5544332211c0 0100000000d0'],
  [{ kind: 'appearance', appearance: 0x0341 }, '03 19 4103'],        // appearance: heart rate belt
  [{ kind: 'advertisingInterval', interval: 160 }, '03 1a a000'],    // 100 ms
  [{ kind: 'leBluetoothDeviceAddress', address: 'C0:11:22:33:44:55', addressType: 1 }, '08 1b 5544332211c0 01'], // random
  [{ kind: 'leRole', role: 0x02 }, '02 1c 02'],                      // peripheral preferred
  [{ kind: 'simplePairingHashC256', hash: b(K16) }, '11 1d' + K16],
  [{ kind: 'simplePairingRandomizerR256', randomizer: b(K16) }, '11 1e' + K16],
  [{ kind: 'solicitationUuids32', uuids: [U(0x12345678)] }, '05 1f 78563412'],
  [{ kind: 'serviceData32', uuid: U(0x12345678), data: b('01') }, '06 20 78563412 01'],
  [{ kind: 'serviceData128', uuid: NUS, data: b('0102') }, '13 21' + NUS_LE + '0102'],
  [{ kind: 'leSecureConnectionsConfirmationValue', confirmationValue: b(K16) }, '11 22' + K16],
  [{ kind: 'leSecureConnectionsRandomValue', randomValue: b(K16) }, '11 23' + K16],
  [{ kind: 'uri', uri: 'https://blewire.dev' }, '0f 24 17 2f2f626c65776972652e646576'], // U+0017 "https:" + "//blewire.dev"
  [{ kind: 'indoorPositioning', data: b('00') }, '02 25 00'],
  [{ kind: 'transportDiscoveryData', data: b('01 02 03') }, '04 26 010203'],
  [{ kind: 'leSupportedFeatures', features: b('ff79') }, '03 27 ff79'],
  [{ kind: 'channelMapUpdateIndication', channelMap: b('ffffffff1f'), instant: 0x0123 }, '08 28 ffffffff1f 2301'],
  [{ kind: 'pbAdv', data: b('0102') }, '03 29 0102'],
  [{ kind: 'meshMessage', data: b('0102') }, '03 2a 0102'],
  [{ kind: 'meshBeacon', data: b('00') }, '02 2b 00'],
  [{ kind: 'bigInfo', data: b('0102') }, '03 2c 0102'],
  [{ kind: 'broadcastCode', data: b(K16) }, '11 2d' + K16],
  [{ kind: 'resolvableSetIdentifier', rsi: b('010203040506') }, '07 2e 010203040506'],
  [{ kind: 'advertisingIntervalLong', interval: 0x123456 }, '04 2f 563412'], // 3-octet long interval
  [{ kind: 'broadcastName', name: 'Gate 1' }, '07 30 476174652031'],
  [{ kind: 'encryptedAdvertisingData', data: b('0102') }, '03 31 0102'],
  [{ kind: 'periodicAdvertisingResponseTimingInformation', data: b('0102') }, '03 32 0102'],
  [{ kind: 'electronicShelfLabel', data: b('01') }, '02 34 01'],
  [{ kind: 'threeDInformationData', data: b('0200') }, '03 3d 0200'],
  [{ kind: 'manufacturerSpecificData', companyId: 0x004c, data: b('0215') }, '05 ff 4c00 0215'], // Apple, iBeacon prefix
];

describe('AD table fixtures', () => {
  for (const [pdu, h] of FIXTURES) {
    test(`${pdu.kind} round-trips`, () => {
      const bytes = b(h);
      expect(decodeAd(bytes)).toEqual([pdu]);
      expect(toHex(encodeAd([pdu]))).toBe(toHex(bytes));
      expect(parseAd(bytes).structures).toEqual([{ type: bytes[1], data: bytes.subarray(2) }]);
      expect(parseAd(bytes).malformed).toEqual([]);
      expect(decodeAdStructure({ type: bytes[1]!, data: bytes.subarray(2) })).toEqual(pdu);
    });
  }
  test('every row has a fixture', () => {
    const covered = new Set(FIXTURES.map(([p]) => p.kind));
    expect(AD_TABLE.kinds.filter(k => !covered.has(k))).toEqual([]);
  });
  test('strict decode of every truncation throws DecodeError or decodes; the tolerant parse never throws', () => {
    for (const [, h] of FIXTURES) {
      const bytes = b(h);
      for (let i = 0; i < bytes.length; i++) {
        const cut = bytes.subarray(0, i);
        try {
          decodeAd(cut);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
        const p = parseAd(cut);
        if (i > 0) expect(p.malformed).toHaveLength(1); // Length runs past the end
      }
    }
  });
  test('encoding data that cannot fit one structure is an EncodeError', () => {
    expect(() => encodeAd([{ kind: 'manufacturerSpecificData', companyId: 1, data: new Uint8Array(253) }])).toThrow(EncodeError);
    expect(encodeAd([{ kind: 'manufacturerSpecificData', companyId: 1, data: new Uint8Array(252) }])).toHaveLength(256);
  });
});

describe('parseAd view', () => {
  const ADV = b(
    '02 01 06' +                 // flags
    '05 03 0d18 0f18' +          // complete 16-bit UUIDs: heart rate, battery
    '11 07' + NUS_LE +           // complete 128-bit UUIDs: NUS
    '0a 09 506f6c617220483130' + // complete name "Polar H10" (len 10 = type + 9)
    '02 0a 04' +                 // TX power +4 dBm
    '03 19 4103' +               // appearance 0x0341
    '05 16 0f18 64 00' +         // service data battery: 0x64 0x00
    '07 ff 6b00 010203 04' +     // manufacturer 0x006b: 01020304
    '03 1a 2003');               // advertising interval 0x0320
  test('collects the common fields', () => {
    const p = parseAd(ADV);
    expect(p.malformed).toEqual([]);
    expect(p.flags).toBe(6);
    expect(p.name).toBe('Polar H10');
    expect(p.nameComplete).toBe(true);
    expect(p.serviceUuids).toEqual([U(0x180d), U(0x180f), NUS]);
    expect(p.txPower).toBe(4);
    expect(p.appearance).toBe(0x0341);
    expect([...p.serviceData]).toEqual([[U(0x180f), b('6400')]]);
    expect([...p.manufacturerData]).toEqual([[0x006b, b('01020304')]]);
    expect(p.advertisingInterval).toBe(0x0320);
    expect(p.structures).toHaveLength(9);
    expect(parseAdvertisingData).toBe(parseAd);
  });
  test('values are views into the report', () => {
    const p = parseAd(ADV);
    expect(p.manufacturerData.get(0x006b)!.buffer).toBe(ADV.buffer);
  });
  test('a complete name wins over a shortened one; NUL padding is stripped; invalid UTF-8 is replaced', () => {
    expect(parseAd(b('04 09 414243' + '03 08 4142')).name).toBe('ABC');
    expect(parseAd(b('03 08 4142' + '04 09 414243')).name).toBe('ABC');
    expect(parseAd(b('03 08 4142')).nameComplete).toBe(false);
    // Of two names of one kind the last one counts (the name is decoded once, after the loop).
    expect(parseAd(b('03 09 4142' + '03 09 4344' + '02 08 45')).name).toBe('CD');
    expect(parseAd(b('03 08 4142' + '03 08 4344')).name).toBe('CD');
    expect(parseAd(b('01 09')).name).toBe('');
    expect(parseAd(b('21 09' + '41'.repeat(32))).name).toBe('A'.repeat(32));
    expect(parseAd(b('05 09 41420000')).name).toBe('AB');
    expect(parseAd(b('04 09 41ff42')).name).toBe('A\ufffdB');
    const long = 'x'.repeat(40) + 'é';
    expect(parseAd(encodeAd([{ kind: 'completeLocalName', name: long }])).name).toBe(long);
  });
  test('names of one length, one after another, each keep their own text; a non-ASCII octet anywhere decodes as UTF-8', () => {
    // The ASCII path fills one array per length (issue 14): each string must be made from its own octets.
    const names = ['Sensor-0a', 'Sensor-0b', 'Thermo-01'].map(n => parseAd(encodeAd([{ kind: 'completeLocalName', name: n }])).name);
    expect(names).toEqual(['Sensor-0a', 'Sensor-0b', 'Thermo-01']);
    expect(parseAd(b('04 09 c3a941')).name).toBe('éA'); // first octet ≥ 0x80
    expect(parseAd(b('04 09 41c3a9')).name).toBe('Aé'); // last octets ≥ 0x80
    expect(parseAd(b('03 09 4180')).name).toBe('A\ufffd'); // a lone continuation octet last
    // A name of 32 octets is the longest the ASCII path takes; 33 goes through the decoder.
    expect(parseAd(b('21 09' + '42'.repeat(31) + 'c3')).name).toBe('B'.repeat(31) + '\ufffd');
    expect(parseAd(b('22 09' + '43'.repeat(33))).name).toBe('C'.repeat(33));
  });
  test('every field reads back from the packed result, with and without the rarely carried ones; structures are made once', () => {
    // flags 0 (present), TX power -128, Appearance, a complete name; then the rare ones: solicited
    // UUIDs, an interval, a URI, and a malformed (odd-length) UUID list.
    const common = parseAd(b('02 01 00' + '02 0a 80' + '03 19 4103' + '03 09 4142'));
    expect([common.flags, common.txPower, common.appearance, common.name, common.nameComplete]).toEqual([0, -128, 0x0341, 'AB', true]);
    expect([common.malformed, common.solicitedServiceUuids, common.advertisingInterval, common.uri]).toEqual([[], [], undefined, undefined]);
    const first = common.structures;
    expect(first.map(s => s.type)).toEqual([0x01, 0x0a, 0x19, 0x09]);
    expect(common.structures).toBe(first);
    expect(common.malformed).toEqual([]);
    const rare = parseAd(b('02 0a 7f' + '03 08 4344' + '03 14 1218' + '03 1a a000' + '05 24 172f2f78' + '04 03 0d180f'));
    expect([rare.flags, rare.txPower, rare.appearance, rare.name, rare.nameComplete]).toEqual([undefined, 127, undefined, 'CD', false]);
    expect([rare.solicitedServiceUuids, rare.advertisingInterval, rare.uri]).toEqual([[fromShort(0x1812)], 160, 'https://x']);
    expect(rare.malformed.map(m => m.type)).toEqual([0x03]);
    const list = rare.structures;
    expect(list).toHaveLength(6);
    expect(rare.structures).toBe(list);
    // Asking for the structures leaves the rest as it was.
    expect([rare.solicitedServiceUuids, rare.advertisingInterval, rare.uri, rare.malformed.length]).toEqual([[fromShort(0x1812)], 160, 'https://x', 1]);
    expect(parseAd(new Uint8Array(0)).structures).toEqual([]);
  });
  test('a Length past the end keeps every structure before it and records the malformation', () => {
    const p = parseAd(b('02 01 06' + '03 02 0d18' + '1e ff 4c00 01'));
    expect(p.flags).toBe(6);
    expect(p.serviceUuids).toEqual([U(0x180d)]);
    expect(p.manufacturerData.size).toBe(0);
    expect(p.malformed).toEqual([{ offset: 7, type: 0xff, reason: 'Length 30 runs 26 octet(s) past the end of the data' }]);
    expect(() => decodeAd(b('02 01 06' + '1e ff 4c00 01'))).toThrow(DecodeError);
  });
  test('zero length terminates; the padding after it is ignored', () => {
    const p = parseAd(b('02 01 06 00 00 00 05 ff 01'));
    expect(p.structures).toHaveLength(1);
    expect(p.malformed).toEqual([]);
    expect(decodeAd(b('02 01 06 00 ff ff'))).toEqual([{ kind: 'flags', flags: 6 }]);
  });
  test('bad contents of one structure are recorded and skipped, the rest still parsed', () => {
    const p = parseAd(b('04 03 0d18 0f' + '02 0a f8f8'.slice(0, 8) + '02 19 01' + '02 ff 4c' + '02 16 0d' + '01 01' + '04 09 414243'));
    expect(p.serviceUuids).toEqual([U(0x180d)]);
    expect(p.txPower).toBe(-8);
    expect(p.appearance).toBeUndefined();
    expect(p.manufacturerData.size).toBe(0);
    expect(p.serviceData.size).toBe(0);
    expect(p.flags).toBeUndefined();
    expect(p.name).toBe('ABC');
    expect(p.malformed.map(m => m.type)).toEqual([0x03, 0x19, 0xff, 0x16, 0x01]);
  });
  test('parseAdIn reads a range of a larger array in place: the same result as parseAd of the range alone', () => {
    const data = '02 01 06' + '05 ff 4c00 0102' + '04 09 414243' + '03 16 aafe' + '02 0a f8' + '09 ff 01';
    const around = b('09 ff ee ee' + data + '05 08 5a5a5a5a');
    const start = 4, end = around.length - 6;
    const inPlace = parseAdIn(around, start, end);
    const alone = parseAd(b(data));
    expect(JSON.stringify(inPlace)).toBe(JSON.stringify(alone)); // every field, through toJSON
    // Offsets count from the range's start; the overrunning Length reads no octet past the range.
    expect(inPlace.malformed).toEqual([{ offset: 21, type: 0xff, reason: 'Length 9 runs 7 octet(s) past the end of the data' }]);
    expect(parseAdIn(b('02 01 06 05'), 0, 4).malformed).toEqual([{ offset: 3, reason: 'Length 5 runs 5 octet(s) past the end of the data' }]);
    expect(parseAdIn(b('02 01 06 05 ff'), 0, 4).malformed).toEqual([{ offset: 3, reason: 'Length 5 runs 5 octet(s) past the end of the data' }]);
    expect(inPlace.manufacturerData.get(0x004c)!.buffer).toBe(around.buffer);
    expect(parseAdIn(around, 3, 3).structures).toEqual([]);
  });
  test('parseAdIn given the array\'s buffer makes its value views from it: the same octets at the same places', () => {
    const around = b('09 ff ee ee' + '05 ff 4c00 0102' + '05 16 aafe 1020' + '04 09 414243');
    const viaSubarray = parseAdIn(around, 4, around.length);
    const viaBuffer = parseAdIn(around, 4, around.length, undefined, around.buffer as ArrayBuffer);
    expect(JSON.stringify(viaBuffer)).toBe(JSON.stringify(viaSubarray));
    for (const [a, x] of [[viaBuffer.manufacturerData.get(0x004c)!, viaSubarray.manufacturerData.get(0x004c)!],
      [[...viaBuffer.serviceData.values()][0]!, [...viaSubarray.serviceData.values()][0]!]] as const) {
      expect(a).toBeInstanceOf(Uint8Array);
      expect(a.buffer).toBe(around.buffer);
      expect([a.byteOffset, a.byteLength]).toEqual([x.byteOffset, x.byteLength]);
    }
    expect([...viaBuffer.manufacturerData.get(0x004c)!]).toEqual([1, 2]);
    expect([...viaBuffer.serviceData.get('0000feaa-0000-1000-8000-00805f9b34fb')!]).toEqual([0x10, 0x20]);
  });
  test('an empty payload', () => {
    const p = parseAd(new Uint8Array(0));
    expect(p.structures).toEqual([]);
    expect(p.serviceUuids).toEqual([]);
    expect(p.serviceData.size).toBe(0);
  });
  test('describeAd is tolerant and one line per structure', () => {
    expect(describeAd(b('02 01 06' + '02 03 0d' + '04 ee 010203' + '05 ff 4c00'))).toEqual([
      'flags flags=0x06(LE General|no BR/EDR)',
      'completeUuids16 malformed 0d',
      'type 0xee 010203',
      'malformed at 3: 1 octet(s) are not a whole number of 2-octet UUIDs',
      'malformed at 11: Length 5 runs 2 octet(s) past the end of the data',
    ]);
  });
});

describe('URI scheme mapping', () => {
  test('known schemes are one code point, others use U+0001', () => {
    expect(toHex(encodeUri('http://x'))).toBe('162f2f78');
    expect(toHex(encodeUri('https://x'))).toBe('172f2f78');
    expect(toHex(encodeUri('xmlrpc.beeps:x'))).toBe('5578');
    expect(toHex(encodeUri('nosuch://x'))).toBe('01' + toHex(new TextEncoder().encode('nosuch://x')));
    expect(decodeUri(b('16 2f2f78'))).toBe('http://x');
    expect(decodeUri(b('01 2f2f78'))).toBe('//x');
    expect(decodeUri(b(''))).toBe('');
    expect(parseAd(b('05 24 172f2f78')).uri).toBe('https://x');
  });
});

describe('builder', () => {
  test('buildAd writes the customary structures, shortest UUID forms', () => {
    const bytes = buildAd({
      flags: 6, name: 'Sim', serviceUuids: [U(0x180d), NUS, U(0x12345678)], txPower: 0,
      serviceData: [[U(0x180f), b('64')]], manufacturerData: new Map([[0xffff, b('01')]]),
    });
    expect(toHex(bytes)).toBe(
      '020106' + '03030d18' + '050578563412' + '1107' + NUS_LE + '040953696d' + '020a00' + '0416 0f18 64'.replace(/ /g, '') + '04ffffff01');
    const p = parseAd(bytes);
    expect(p.serviceUuids).toEqual([U(0x180d), U(0x12345678), NUS]);
    expect(p.name).toBe('Sim');
  });
});

describe('builder, driven by the table', () => {
  test('incomplete and solicitation lists, every UUID width', () => {
    expect(toHex(buildAd({ serviceUuids: [U(0x180d), U(0x12345678), NUS], serviceUuidsIncomplete: true }))).toBe(
      '03020d18' + '050478563412' + '1106' + NUS_LE);
    expect(toHex(buildAd({ solicitedServiceUuids: [U(0x1812), U(0x12345678), NUS] }))).toBe(
      '03141218' + '051f78563412' + '1115' + NUS_LE);
    expect(toHex(buildAd({ serviceData: [[U(0x12345678), b('01')], [NUS, b('02')]] }))).toBe(
      '06207856341201' + '1221' + NUS_LE + '02');
    expect(toHex(buildAd({ name: 'AB', shortName: true, appearance: 0x0341, uri: 'https://x' }))).toBe(
      '03084142' + '03194103' + '0524172f2f78');
  });
  test('a name that does not fit 31 octets is shortened to the octets left, never inside a character', () => {
    // flags (3) + 16-bit list (4) + name structure (2 + 22 = 24): 31 exactly, complete
    const fits = buildAd({ flags: 6, serviceUuids: [U(0x180d)], name: 'x'.repeat(22) }, { maxLength: LEGACY_AD_MAX });
    expect(toHex(fits.subarray(7, 9))).toBe('1709');
    expect(fits).toHaveLength(31);
    // one more character: written as a Shortened Local Name (type 0x08) of the 22 octets left
    const cut = buildAd({ flags: 6, serviceUuids: [U(0x180d)], name: 'x'.repeat(23) }, { maxLength: LEGACY_AD_MAX });
    expect(toHex(cut)).toBe('020106' + '03030d18' + '1708' + '78'.repeat(22));
    expect(parseAd(cut).nameComplete).toBe(false);
    // 'é' is two octets: with 22 octets left, 21 'a' + 'é' would be 23, so the name stops before it
    const utf = buildAd({ flags: 6, serviceUuids: [U(0x180d)], name: 'a'.repeat(21) + 'éé' }, { maxLength: 31 });
    expect(toHex(utf)).toBe('020106' + '03030d18' + '1608' + '61'.repeat(21));
  });
  test('data that cannot fit is an AdTooLongError saying by how many octets', () => {
    const mfr = new Uint8Array(27); // 2 + 2 + 27 = 31 octets: fits alone
    expect(buildAd({ manufacturerData: [[0x004c, mfr]] }, { maxLength: 31 })).toHaveLength(31);
    let err: unknown;
    try {
      buildAd({ flags: 6, manufacturerData: [[0x004c, mfr]] }, { maxLength: 31 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AdTooLongError);
    expect((err as AdTooLongError).code).toBe('EADTOOLONG');
    expect([(err as AdTooLongError).size, (err as AdTooLongError).limit, (err as AdTooLongError).excess]).toEqual([34, 31, 3]);
    expect((err as Error).message).toMatch(/34 octets, 3 more than the 31 available/);
    // with a name: the overflow counts the shortest name (one character, 3 octets)
    expect(() => buildAd({ flags: 6, manufacturerData: [[0x004c, mfr.subarray(0, 24)]], name: 'Polar' }, { maxLength: 31 }))
      .toThrow(/34 octets, 3 more/);
    // extended advertising: the same rule at the controller's limit
    const big = new Uint8Array(250);
    expect(buildAd({ manufacturerData: [[1, big], [2, big]] }, { maxLength: 1650 })).toHaveLength(508);
    expect(() => buildAd({ manufacturerData: [[1, big], [2, big]] }, { maxLength: 500 })).toThrow(/508 octets, 8 more than the 500/);
  });
  test('every row with a view role feeds parseAd (the view is generated from the table)', () => {
    const viewed = Object.entries(AD_TYPES).filter(([, r]) => 'view' in r).map(([k]) => k);
    expect(viewed.length).toBeGreaterThanOrEqual(20);
    for (const [pdu, h] of FIXTURES) {
      if (!viewed.includes(pdu.kind)) continue;
      const p = parseAd(b(h));
      const before = parseAd(new Uint8Array(0));
      // something in the view changed from the empty view
      expect(JSON.stringify({ ...(p as unknown as { toJSON(): object }).toJSON(), structures: [] }), pdu.kind).not.toBe(JSON.stringify({ ...(before as unknown as { toJSON(): object }).toJSON(), structures: [] }));
    }
  });
  test('property: build then parse gives the content back', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff }).map(n => U(n));
    const u32 = fc.integer({ min: 0x10000, max: 0xffffffff }).map(n => U(n));
    const u128 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(x => toHex(x))
      .map(h => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`)
      .filter(u => !u.endsWith('-0000-1000-8000-00805f9b34fb'));
    const anyUuid = fc.oneof(u16, u32, u128);
    const content = fc.record({
      flags: fc.integer({ min: 0, max: 0xff }),
      name: fc.string({ minLength: 1, maxLength: 20 }).filter(n => !n.includes('\0') && !/[\ud800-\udfff]/.test(n)),
      txPower: fc.integer({ min: -128, max: 127 }),
      appearance: fc.integer({ min: 0, max: 0xffff }),
      serviceUuids: fc.uniqueArray(anyUuid, { maxLength: 4 }),
      serviceData: fc.uniqueArray(fc.tuple(anyUuid, fc.uint8Array({ maxLength: 8 })), { selector: t => t[0], maxLength: 3 }),
      manufacturerData: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 8 })),
        { selector: t => t[0], maxLength: 3 }),
      uri: fc.constantFrom('https://blewire.dev', 'http://x/y', 'nosuch:z'),
    }, { requiredKeys: [] });
    fc.assert(fc.property(content, c => {
      const p = parseAd(buildAd(c));
      expect(p.malformed).toEqual([]);
      expect(p.flags).toBe(c.flags);
      expect(p.name).toBe(c.name);
      expect(p.txPower).toBe(c.txPower);
      expect(p.appearance).toBe(c.appearance);
      expect(p.uri).toBe(c.uri);
      // lists come out grouped by width (16, 32, then 128 bits), each in the given order
      const w = (u: string) => (u.endsWith('-0000-1000-8000-00805f9b34fb') ? (parseInt(u.slice(0, 8), 16) <= 0xffff ? 0 : 1) : 2);
      expect(p.serviceUuids).toEqual([...(c.serviceUuids ?? [])].sort((x, y) => w(x) - w(y)));
      expect([...p.serviceData].map(([u, d]) => [u, toHex(d)])).toEqual((c.serviceData ?? []).map(([u, d]) => [u, toHex(d)]));
      expect([...p.manufacturerData].map(([k, d]) => [k, toHex(d)])).toEqual((c.manufacturerData ?? []).map(([k, d]) => [k, toHex(d)]));
    }), fuzzRuns(2000));
  });
});

describe('random input', () => {
  test('the tolerant parser never throws; strict decode throws only DecodeError and re-encodes stably', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), d => {
      const p = parseAd(d);
      expect(p.structures.length).toBeGreaterThanOrEqual(0);
      let decoded;
      try {
        decoded = decodeAd(d);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        return;
      }
      expect(decodeAd(encodeAd(decoded))).toEqual(decoded);
    }), fuzzRuns(10_000));
  });
  test('random sequences of well-formed structures parse with no malformation', () => {
    const structure = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 30 }))
      .map(([type, data]) => ({ type, data }));
    fc.assert(fc.property(fc.array(structure, { maxLength: 8 }), ss => {
      const p = parseAd(encodeAd(ss));
      expect(p.structures.map(s => [s.type, toHex(s.data)])).toEqual(ss.map(s => [s.type, toHex(s.data)]));
    }));
  });
});

describe('real captures', () => {
  test('tql130: 465 advertising reports, exactly 120 with a Length past the end, none throws', () => {
    const file = fileURLToPath(new URL('../../../captures/real/tql130-reads-writes.btsnoop', import.meta.url));
    let reports = 0, malformed = 0;
    for (const rec of parseCapture(new Uint8Array(readFileSync(file)))) {
      if (rec.packet?.[0] !== 0x04) continue;
      const p = decodeHciPacket(rec.packet) as { kind?: string; reports?: Array<{ data: Uint8Array }> };
      if (p.kind !== 'leAdvertisingReport' && p.kind !== 'leExtendedAdvertisingReport') continue;
      for (const r of p.reports!) {
        reports++;
        const ad = parseAd(r.data);
        if (ad.malformed.length) {
          malformed++;
          expect(ad.malformed[0]!.reason).toMatch(/runs \d+ octet\(s\) past the end/);
        }
      }
    }
    expect([reports, malformed]).toEqual([465, 120]);
  });
  test('every well-formed AD in the captures re-encodes byte-identically (up to the zero-Length terminator)', () => {
    const root = fileURLToPath(new URL('../../../captures/', import.meta.url));
    let checked = 0, malformed = 0;
    for (const dir of ['real', 'emulated']) {
      for (const f of readdirSync(root + dir).filter(x => x.endsWith('.btsnoop'))) {
        for (const rec of parseCapture(new Uint8Array(readFileSync(root + dir + '/' + f)))) {
          if (rec.packet?.[0] !== 0x04) continue;
          const p = decodeHciPacket(rec.packet) as { reports?: Array<{ data?: Uint8Array }> };
          for (const r of p.reports ?? []) {
            if (!r.data) continue;
            if (parseAd(r.data).malformed.length) { malformed++; continue; }
            let end = 0;
            while (end < r.data.length && r.data[end] !== 0) end += 1 + r.data[end]!; // AD proper, padding after
            expect(toHex(encodeAd(decodeAd(r.data))), `${f}`).toBe(toHex(r.data.subarray(0, end)));
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(800);
    expect(malformed).toBe(120);
  });
});
