/**
 * Pairing analysis of a capture (`blewire decode --pairing`): for every SMP pairing on every LE link,
 * the method, both IO capabilities, whether each confirm value and DHKey check verifies with the
 * toolbox (Core Vol 3, Part H, 2.2), the keys that can be derived (TK, STK, and the LTK when the
 * capture allows), compared with the LTK the host gave the controller (HCI LE Enable Encryption or
 * LE Long Term Key Request Reply), the SC passkey recovered from the confirm values, and the
 * weaknesses a reviewer should know.
 *
 * What a host-side capture can and cannot show: it holds every SMP PDU in the clear and the keys the
 * host hands the controller, but not the private P-256 keys; so for LE Secure Connections the DHKey,
 * MacKey and LTK are unknown (the checks that need them say so) unless a side used the debug key.
 * LE legacy pairing hides nothing: Just Works has TK 0 and a passkey is one of 10^6, tried here.
 */
import { toHex } from '../bytes/hex.js';
import type { DecodedLine } from './decode.js';
import {
  SC_DEBUG_PRIVATE_KEY, SC_DEBUG_PUBLIC_KEY_X, SC_DEBUG_PUBLIC_KEY_Y, c1, f4, f5, f6, g2, p256Ecdh, reversed, s1,
} from '../smp/crypto.js';
import { selectMethod, PAIRING_METHOD_NAMES, isPasskey, type PairingMethod } from '../smp/methods.js';
import { SMP_AUTH_REQ, SMP_IO_CAPABILITY_NAMES, SMP_PAIRING_FAILED_NAMES, authReqBonds } from '../smp/pdus.js';
import { fromHex } from '../bytes/hex.js';

export type Verdict = boolean | 'unknown';

export interface PairingReport {
  /** Frame of the Pairing Request. */
  frame: number;
  adapter?: number;
  handle: number;
  /** Our role on the link as the capture shows it (the host side of the capture). */
  localRole: 'central' | 'peripheral' | 'unknown';
  initiatorAddress?: string;
  responderAddress?: string;
  secureConnections: boolean;
  method: PairingMethod | 'unknown';
  methodName: string;
  initiatorIo: string;
  responderIo: string;
  initiatorAuthReq: number;
  responderAuthReq: number;
  keySize?: number;
  /** Absent where the method has no such value (the initiator of SC Just Works / Numeric Comparison commits nothing). */
  checks: {
    initiatorConfirm?: Verdict;
    responderConfirm?: Verdict;
    initiatorDhKeyCheck?: Verdict;
    responderDhKeyCheck?: Verdict;
  };
  /** Passkey (given with --passkey, or recovered). */
  passkey?: number;
  passkeyRecovered?: boolean;
  /** The six digits both sides showed (numeric comparison). */
  numericComparison?: number;
  /** Derived keys, hex in HCI order (least significant octet first). */
  keys: { tk?: string; stk?: string; ltk?: string };
  /** The keys the host gave the controller on this link after the pairing began. */
  hostKeys: string[];
  /** Whether the derived STK (legacy) or LTK (SC) is among them. */
  hostKeyMatches: Verdict;
  /** The LTKs distributed in Encryption Information, hex in HCI order. */
  distributedLtks: string[];
  outcome: 'complete' | 'failed' | 'incomplete';
  failure?: { reason: number; reasonName: string; by: 'initiator' | 'responder' };
  weaknesses: string[];
}

interface Link {
  role: 'central' | 'peripheral' | 'unknown';
  peer?: { type: number; address: string };
  local?: { type: number; address: string };
}

interface Smp {
  report: PairingReport;
  preq?: Uint8Array; pres?: Uint8Array; // wire order
  confirms: Array<{ fromInitiator: boolean; v: Uint8Array }>;
  randoms: Array<{ fromInitiator: boolean; v: Uint8Array }>;
  pk: { i?: { x: Uint8Array; y: Uint8Array }; r?: { x: Uint8Array; y: Uint8Array } };
  checks: { i?: Uint8Array; r?: Uint8Array };
  initiatorIsTx: boolean;
  link: Link;
}

const ZERO16 = new Uint8Array(16);
const eq = (a?: Uint8Array, b?: Uint8Array): boolean => !!a && !!b && toHex(a) === toHex(b);
const maskMso = (k: Uint8Array, n: number) => { const o = k.slice(); o.fill(0, 0, 16 - n); return o; };
const u128 = (n: number) => { const v = new Uint8Array(16); v[12] = n >>> 24; v[13] = (n >>> 16) & 255; v[14] = (n >>> 8) & 255; v[15] = n & 255; return v; };
const addr = (a: { type: number; address: string }) => `${a.address} (${a.type === 0 ? 'public' : 'random'})`;

/** Options of the analysis. */
export interface PairingAnalysisOptions {
  /** The passkey, when known (legacy: skips the brute force; SC: checked against the rounds). */
  passkey?: number;
  /** Try all 10^6 passkeys on a legacy Passkey Entry pairing (default true; about a second or two). */
  bruteForceLegacy?: boolean;
}

/** Analyse every pairing in a stream of decoded lines (decodeRecords output). */
export function analysePairings(lines: Iterable<DecodedLine>, options: PairingAnalysisOptions = {}): PairingReport[] {
  const a = new PairingAnalyser(options);
  for (const l of lines) a.push(l);
  return a.finish();
}

export class PairingAnalyser {
  private readonly links = new Map<string, Link>();
  private readonly smp = new Map<string, Smp>();
  private readonly done: Smp[] = [];
  private readonly publicAddr = new Map<number, string>();
  private readonly randomAddr = new Map<number, string>();
  private readonly ownType = new Map<number, number>();
  private readonly advOwnType = new Map<number, number>();

  constructor(private readonly options: PairingAnalysisOptions = {}) {}

  push(l: DecodedLine): void {
    const ad = l.adapter ?? 0;
    if (l.line === 'record') {
      const f = l.fields as Record<string, unknown>;
      const kind = f['kind'];
      if (l.type === 'command') {
        if (kind === 'leSetRandomAddress') this.randomAddr.set(ad, f['randomAddress'] as string);
        if (kind === 'leCreateConnection' || kind === 'leExtendedCreateConnection') this.ownType.set(ad, (f['ownAddressType'] as number) & 1);
        if (kind === 'leSetAdvertisingParameters') this.advOwnType.set(ad, (f['ownAddressType'] as number) & 1);
        if (kind === 'leEnableEncryption' || kind === 'leLongTermKeyRequestReply') {
          const s = this.smp.get(`${ad}:${f['connectionHandle'] as number}`);
          if (s) s.report.hostKeys.push(toHex(f['longTermKey'] as Uint8Array));
        }
      } else if (l.type === 'event') {
        if (kind === 'commandComplete') {
          const rp = f['returnParameters'] as Record<string, unknown> | undefined;
          if (rp?.['kind'] === 'readBdAddr' && rp['status'] === 0) this.publicAddr.set(ad, rp['bdAddr'] as string);
        }
        if ((kind === 'leConnectionComplete' || kind === 'leEnhancedConnectionComplete' || kind === 'leEnhancedConnectionCompleteV2') && f['status'] === 0) {
          const role = f['role'] === 0 ? 'central' : 'peripheral';
          const ownType = role === 'central' ? this.ownType.get(ad) : this.advOwnType.get(ad);
          const rpa = f['localResolvablePrivateAddress'] as string | undefined;
          let local: Link['local'];
          if (rpa && rpa !== '00:00:00:00:00:00') local = { type: 1, address: rpa };
          else if (ownType === 0 && this.publicAddr.has(ad)) local = { type: 0, address: this.publicAddr.get(ad)! };
          else if (ownType === 1 && this.randomAddr.has(ad)) local = { type: 1, address: this.randomAddr.get(ad)! };
          const prpa = f['peerResolvablePrivateAddress'] as string | undefined;
          const peer = prpa && prpa !== '00:00:00:00:00:00'
            ? { type: 1, address: prpa } : { type: (f['peerAddressType'] as number) & 1, address: f['peerAddress'] as string };
          this.links.set(`${ad}:${f['connectionHandle'] as number}`, { role, peer, ...(local ? { local } : {}) });
        }
        if (kind === 'disconnectionComplete' && f['status'] === 0) {
          const key = `${ad}:${f['connectionHandle'] as number}`;
          this.close(key);
          this.links.delete(key);
        }
      }
      return;
    }
    if (l.cid !== 0x0006) return;
    const pdu = l.pdu as Record<string, unknown> & { kind: string };
    const key = `${ad}:${l.handle}`;
    const tx = l.dir === 'tx';
    if (pdu.kind === 'pairingRequest') {
      this.close(key);
      const link = this.links.get(key) ?? { role: 'unknown' as const };
      this.smp.set(key, {
        report: {
          frame: l.frame, ...(l.adapter !== undefined ? { adapter: l.adapter } : {}), handle: l.handle,
          localRole: link.role, secureConnections: false, method: 'unknown', methodName: 'unknown',
          initiatorIo: SMP_IO_CAPABILITY_NAMES[pdu['ioCapability'] as number] ?? 'reserved', responderIo: 'unknown',
          initiatorAuthReq: pdu['authReq'] as number, responderAuthReq: 0,
          checks: { initiatorConfirm: 'unknown', responderConfirm: 'unknown' },
          keys: {}, hostKeys: [], hostKeyMatches: 'unknown', distributedLtks: [], outcome: 'incomplete', weaknesses: [],
        },
        preq: l.payload.slice(), confirms: [], randoms: [], pk: {}, checks: {}, initiatorIsTx: tx, link,
      });
      return;
    }
    const s = this.smp.get(key);
    if (!s) return;
    const fromInitiator = tx === s.initiatorIsTx;
    switch (pdu.kind) {
      case 'pairingResponse':
        s.pres = l.payload.slice();
        s.report.responderIo = SMP_IO_CAPABILITY_NAMES[pdu['ioCapability'] as number] ?? 'reserved';
        s.report.responderAuthReq = pdu['authReq'] as number;
        break;
      case 'pairingConfirm': s.confirms.push({ fromInitiator, v: reversed(pdu['confirmValue'] as Uint8Array) }); break;
      case 'pairingRandom': s.randoms.push({ fromInitiator, v: reversed(pdu['randomValue'] as Uint8Array) }); break;
      case 'pairingPublicKey':
        s.pk[fromInitiator ? 'i' : 'r'] = { x: reversed(pdu['publicKeyX'] as Uint8Array), y: reversed(pdu['publicKeyY'] as Uint8Array) };
        break;
      case 'pairingDhKeyCheck': s.checks[fromInitiator ? 'i' : 'r'] = reversed(pdu['dhKeyCheck'] as Uint8Array); break;
      case 'encryptionInformation': s.report.distributedLtks.push(toHex(pdu['longTermKey'] as Uint8Array)); s.report.outcome = 'complete'; break;
      case 'identityInformation': case 'identityAddressInformation': case 'signingInformation': case 'centralIdentification':
        s.report.outcome = 'complete';
        break;
      case 'pairingFailed':
        s.report.outcome = 'failed';
        s.report.failure = {
          reason: pdu['reason'] as number, reasonName: SMP_PAIRING_FAILED_NAMES[pdu['reason'] as number] ?? 'reserved',
          by: fromInitiator ? 'initiator' : 'responder',
        };
        break;
    }
  }

  private close(key: string): void {
    const s = this.smp.get(key);
    if (!s) return;
    this.smp.delete(key);
    this.done.push(s);
  }

  finish(): PairingReport[] {
    for (const k of [...this.smp.keys()]) this.close(k);
    const out = this.done.map(s => this.analyse(s));
    out.sort((x, y) => x.frame - y.frame);
    return out;
  }

  private analyse(s: Smp): PairingReport {
    const r = s.report;
    if (!s.preq || !s.pres || s.preq.length !== 7 || s.pres.length !== 7) return r;
    const req = { ioCapability: s.preq[1]!, oobDataFlag: s.preq[2]!, authReq: s.preq[3]! };
    const res = { ioCapability: s.pres[1]!, oobDataFlag: s.pres[2]!, authReq: s.pres[3]! };
    r.secureConnections = SMP_AUTH_REQ.has(req.authReq & res.authReq, 'sc');
    r.keySize = Math.min(s.preq[4]!, s.pres[4]!);
    if (req.ioCapability <= 4 && res.ioCapability <= 4) {
      r.method = selectMethod(r.secureConnections, req, res);
      r.methodName = PAIRING_METHOD_NAMES[r.method];
    }
    // Addresses: initiator = the central.
    const { local, peer, role } = s.link;
    const [ia, ra] = role === 'central' ? [local, peer] : role === 'peripheral' ? [peer, local] : [undefined, undefined];
    if (ia) r.initiatorAddress = addr(ia);
    if (ra) r.responderAddress = addr(ra);
    if (r.failure && r.outcome !== 'complete') r.outcome = 'failed';
    if (r.secureConnections) this.analyseSc(s, r, ia, ra, req, res);
    else this.analyseLegacy(s, r, ia, ra);
    this.weaknesses(s, r);
    return r;
  }

  private analyseLegacy(s: Smp, r: PairingReport, ia?: Link['peer'], ra?: Link['peer']): void {
    const mconf = s.confirms.find(c => c.fromInitiator)?.v, sconf = s.confirms.find(c => !c.fromInitiator)?.v;
    const mrand = s.randoms.find(c => c.fromInitiator)?.v, srand = s.randoms.find(c => !c.fromInitiator)?.v;
    const preq = reversed(s.preq!), pres = reversed(s.pres!);
    const conf = (tk: Uint8Array, rand: Uint8Array) => c1(tk, rand, preq, pres, ia!.type, ra!.type, fromHex(ia!.address), fromHex(ra!.address));
    let tk: Uint8Array | undefined;
    if (r.method === 'justWorks') tk = ZERO16;
    else if (isPasskey(r.method as PairingMethod) && this.options.passkey !== undefined) { tk = u128(this.options.passkey); r.passkey = this.options.passkey; }
    if (!ia || !ra) return; // c1 needs both addresses
    if (!tk && isPasskey(r.method as PairingMethod) && mconf && mrand && (this.options.bruteForceLegacy ?? true)) {
      for (let n = 0; n < 1_000_000; n++) {
        const t = u128(n);
        if (eq(conf(t, mrand), mconf)) { tk = t; r.passkey = n; r.passkeyRecovered = true; break; }
      }
    }
    if (!tk) return;
    r.keys.tk = toHex(reversed(tk));
    if (mconf && mrand) r.checks.initiatorConfirm = eq(conf(tk, mrand), mconf);
    if (sconf && srand) r.checks.responderConfirm = eq(conf(tk, srand), sconf);
    if (mrand && srand) {
      const stk = toHex(reversed(maskMso(s1(tk, srand, mrand), r.keySize ?? 16)));
      r.keys.stk = stk;
      r.hostKeyMatches = r.hostKeys.length ? r.hostKeys.includes(stk) : 'unknown';
    }
  }

  private analyseSc(
    s: Smp, r: PairingReport, ia: Link['peer'] | undefined, ra: Link['peer'] | undefined,
    req: { ioCapability: number; oobDataFlag: number; authReq: number }, res: { ioCapability: number; oobDataFlag: number; authReq: number },
  ): void {
    const pka = s.pk.i?.x, pkb = s.pk.r?.x;
    if (!pka || !pkb) return;
    const rI = s.randoms.filter(c => c.fromInitiator).map(c => c.v), rR = s.randoms.filter(c => !c.fromInitiator).map(c => c.v);
    const cI = s.confirms.filter(c => c.fromInitiator).map(c => c.v), cR = s.confirms.filter(c => !c.fromInitiator).map(c => c.v);
    let na: Uint8Array | undefined, nb: Uint8Array | undefined;
    let ra_: Uint8Array = ZERO16, rb_: Uint8Array = ZERO16;
    if (r.method === 'justWorks' || r.method === 'numericComparison') {
      na = rI[0]; nb = rR[0];
      if (cR[0] && nb) r.checks.responderConfirm = eq(f4(pkb, pka, nb, 0), cR[0]);
      delete r.checks.initiatorConfirm; // the initiator commits to nothing in these methods (2.3.5.6.2)
      if (na && nb) r.numericComparison = g2(pka, pkb, na, nb) % 1_000_000;
    } else if (isPasskey(r.method as PairingMethod)) {
      // Each round commits to one passkey bit with f4(.., 0x80 | bit): try both values of each bit.
      let passkey = 0, okI = true, okR = true, rounds = 0;
      for (let i = 0; i < 20 && cI[i] && rI[i]; i++) {
        const bit = eq(f4(pka, pkb, rI[i]!, 0x81), cI[i]) ? 1 : eq(f4(pka, pkb, rI[i]!, 0x80), cI[i]) ? 0 : -1;
        if (bit < 0) { okI = false; break; }
        passkey |= bit << i;
        if (cR[i] && rR[i]) okR &&= eq(f4(pkb, pka, rR[i]!, 0x80 | bit), cR[i]);
        rounds++;
      }
      if (rounds > 0) {
        r.checks.initiatorConfirm = okI;
        r.checks.responderConfirm = rounds === 20 ? okR : okR && cR.length >= rounds ? okR : 'unknown';
      }
      if (this.options.passkey !== undefined) {
        r.passkey = this.options.passkey;
        if (rounds === 20 && okI && passkey !== this.options.passkey) r.checks.initiatorConfirm = false;
      } else if (rounds === 20 && okI) {
        r.passkey = passkey;
        r.passkeyRecovered = true;
      } else if (rounds > 0 && okI) {
        r.passkeyRecovered = false; // only some bits: the pairing stopped early
      }
      na = rI[19]; nb = rR[19];
      if (r.passkey !== undefined) ra_ = rb_ = u128(r.passkey);
    } else if (r.method === 'oob') {
      na = rI[0]; nb = rR[0];
      r.checks.initiatorConfirm = 'unknown'; // the OOB commitments travel out of band
      r.checks.responderConfirm = 'unknown';
    }
    // DHKey: only when a side used the debug key, whose private key is public (2.3.5.6.1).
    const debugI = eq(pka, SC_DEBUG_PUBLIC_KEY_X) && eq(s.pk.i!.y, SC_DEBUG_PUBLIC_KEY_Y);
    const debugR = eq(pkb, SC_DEBUG_PUBLIC_KEY_X) && eq(s.pk.r!.y, SC_DEBUG_PUBLIC_KEY_Y);
    let dh: Uint8Array | undefined;
    try {
      if (debugI) dh = p256Ecdh(SC_DEBUG_PRIVATE_KEY, pkb, s.pk.r!.y);
      else if (debugR) dh = p256Ecdh(SC_DEBUG_PRIVATE_KEY, pka, s.pk.i!.y);
    } catch { dh = undefined; }
    r.checks.initiatorDhKeyCheck = 'unknown';
    r.checks.responderDhKeyCheck = 'unknown';
    if (dh && na && nb && ia && ra && r.method !== 'oob') {
      const A = Uint8Array.of(ia.type, ...fromHex(ia.address)), B = Uint8Array.of(ra.type, ...fromHex(ra.address));
      const { macKey, ltk } = f5(dh, na, nb, A, B);
      const ioA = Uint8Array.of(req.authReq, req.oobDataFlag, req.ioCapability), ioB = Uint8Array.of(res.authReq, res.oobDataFlag, res.ioCapability);
      if (s.checks.i) r.checks.initiatorDhKeyCheck = eq(f6(macKey, na, nb, rb_, ioA, A, B), s.checks.i);
      if (s.checks.r) r.checks.responderDhKeyCheck = eq(f6(macKey, nb, na, ra_, ioB, B, A), s.checks.r);
      const l = toHex(reversed(maskMso(ltk, r.keySize ?? 16)));
      r.keys.ltk = l;
      r.hostKeyMatches = r.hostKeys.length ? r.hostKeys.includes(l) : 'unknown';
    }
  }

  private weaknesses(s: Smp, r: PairingReport): void {
    const w = r.weaknesses;
    if (!r.secureConnections && r.method !== 'unknown') {
      w.push(r.method === 'oob'
        ? 'LE legacy pairing: the keys are as secret as the OOB channel that carried the TK'
        : 'LE legacy pairing: anyone who captured the pairing over the air can compute the STK and then every key distributed under it (TK ' +
          (r.method === 'justWorks' ? 'is 0' : 'is one of 10^6 passkeys, found by trying them all') + ')');
    }
    if (r.method === 'justWorks') w.push('Just Works: no protection against a man in the middle (the key is unauthenticated)');
    if (r.secureConnections && isPasskey(r.method as PairingMethod) && r.passkeyRecovered) {
      w.push(`SC Passkey Entry: the passkey (${String(r.passkey).padStart(6, '0')}) is recoverable from the confirm values of one pairing, so a fixed or reused passkey is no protection`);
    }
    if (r.keySize !== undefined && r.keySize < 16) w.push(`encryption key size ${r.keySize} octets (< 16): weaker against brute force`);
    const debug = (s.pk.i && eq(s.pk.i.x, SC_DEBUG_PUBLIC_KEY_X)) || (s.pk.r && eq(s.pk.r.x, SC_DEBUG_PUBLIC_KEY_X));
    if (debug) w.push('a side used the LE Secure Connections debug key: anyone can decrypt this link');
    if (s.pk.i && s.pk.r && eq(s.pk.i.x, s.pk.r.x)) w.push('both public keys are the same: a reflection attack (CVE-2020-26558)');
    if (!authReqBonds(r.initiatorAuthReq) && !authReqBonds(r.responderAuthReq)) w.push('no bonding: the keys are not kept, the next connection pairs again');
    if (r.hostKeyMatches === false) w.push('the key the host gave the controller is not the key this pairing derives');
  }
}

/** A short human-readable report. */
export function formatPairingReport(r: PairingReport): string {
  const v = (x: Verdict | undefined) => (x === undefined ? '-' : x === 'unknown' ? 'unknown' : x ? 'ok' : 'FAILED');
  const lines = [
    `pairing on handle 0x${r.handle.toString(16).padStart(4, '0')} (frame ${r.frame}, we are ${r.localRole}): ` +
      `${r.secureConnections ? 'LE Secure Connections' : 'LE legacy'}, ${r.methodName}, ${r.outcome}` +
      (r.failure ? ` (${r.failure.reasonName} from the ${r.failure.by})` : ''),
    `  initiator ${r.initiatorAddress ?? 'address unknown'}: ${r.initiatorIo}; responder ${r.responderAddress ?? 'address unknown'}: ${r.responderIo}; key size ${r.keySize ?? '?'}`,
    `  confirm: initiator ${v(r.checks.initiatorConfirm)}, responder ${v(r.checks.responderConfirm)}` +
      (r.secureConnections ? `; DHKey check: initiator ${v(r.checks.initiatorDhKeyCheck)}, responder ${v(r.checks.responderDhKeyCheck)}` : ''),
  ];
  if (r.passkey !== undefined) lines.push(`  passkey ${String(r.passkey).padStart(6, '0')}${r.passkeyRecovered ? ' (recovered from the capture)' : ''}`);
  if (r.numericComparison !== undefined) lines.push(`  numeric comparison value ${String(r.numericComparison).padStart(6, '0')}`);
  for (const [k, val] of Object.entries(r.keys)) lines.push(`  ${k.toUpperCase()} ${val}`);
  if (r.hostKeys.length) lines.push(`  host gave the controller ${r.hostKeys.join(', ')}: ${r.hostKeyMatches === true ? 'matches' : r.hostKeyMatches === false ? 'DOES NOT match' : 'cannot tell'}`);
  for (const w of r.weaknesses) lines.push(`  weakness: ${w}`);
  return lines.join('\n');
}
