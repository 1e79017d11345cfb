import { FakeClock } from '../../src/clock.js';
import { DisconnectedError } from '../../src/errors.js';
import { decodeAcl } from '../../src/hci/acl.js';
import { CocRegistry, type LinkSecurityState } from '../../src/l2cap/coc.js';
import { decodeL2capFrame } from '../../src/l2cap/frames.js';
import { L2capLink } from '../../src/l2cap/link.js';

/**
 * Two L2capLinks joined back to back as the two ends of one LE link (central and peripheral), each
 * with its own CocRegistry. Every ACL packet a side sends is recorded as a whole L2CAP frame
 * (`wire`, hex with its direction) and handed to the other side in a microtask, in order, like a
 * real link. `hold` stops delivery in one direction (a peer whose controller sits on our data);
 * `inject` hands the other side raw L2CAP frames (a peer that breaks the rules).
 */
export function l2capPair(options: {
  aclDataLength?: number;
  /** The link's security as both sides see it (read at each request: a test may change it). */
  security?: LinkSecurityState;
  /** What the links report as their security settling (CocLinkHost.settling). */
  settling?: () => Promise<void> | undefined;
} = {}) {
  const clock = new FakeClock();
  const aclDataLength = options.aclDataLength ?? 251;
  const wire: Array<{ from: 'central' | 'peripheral'; cid: number; hex: string }> = [];
  let up = true;
  let toPeripheral = true;
  const links: L2capLink[] = [];
  const registries = [new CocRegistry(clock), new CocRegistry(clock)] as const;
  const names = ['central', 'peripheral'] as const;
  for (const side of [0, 1] as const) {
    links.push(new L2capLink({
      aclDataLength,
      sendAcl: (_h, packets) => {
        if (!up) return Promise.reject(new DisconnectedError('send'));
        const datas = packets.map(p => decodeAcl(p));
        const frame = new Uint8Array(datas.reduce((n, d) => n + d.data.length, 0));
        let o = 0;
        for (const d of datas) { frame.set(d.data, o); o += d.data.length; }
        const f = decodeL2capFrame(frame);
        wire.push({ from: names[side], cid: f.cid, hex: Buffer.from(f.payload).toString('hex') });
        return new Promise<void>(resolve => queueMicrotask(() => {
          if (up && (side === 1 || toPeripheral)) for (const d of datas) links[1 - side]!.acl(d.pb === 0 ? 2 : d.pb, d.data);
          resolve();
        }));
      },
    }, 0x40, { clock, role: names[side], channels: registries[side], security: () => options.security ?? { encrypted: false, keySize: 0, authenticated: false },
      ...(options.settling ? { settling: options.settling } : {}) }));
  }
  const [central, peripheral] = links as [L2capLink, L2capLink];
  return {
    clock, wire, central, peripheral, registries,
    /** Raw L2CAP frame (payload after the basic header) into `to` as if the other side sent it. */
    inject(to: L2capLink, cid: number, payload: Uint8Array): void {
      const f = new Uint8Array(4 + payload.length);
      f[0] = payload.length & 0xff; f[1] = payload.length >> 8; f[2] = cid & 0xff; f[3] = cid >> 8;
      f.set(payload, 4);
      to.acl(2, f);
    },
    /** From now on nothing the central sends reaches the peripheral (a peer that went deaf). */
    cut(): void {
      toPeripheral = false;
    },
    /** Drop the ACL link: both sides close with DisconnectedError. */
    drop(reason = 0x08): void {
      up = false;
      for (const l of links) l.close(new DisconnectedError(`link 0x40`, reason, 'Connection Timeout'));
    },
    /** Let microtasks run (the other side handles what was sent). */
    async settle(): Promise<void> {
      for (let i = 0; i < 20; i++) await Promise.resolve();
      await new Promise(r => setTimeout(r, 0));
    },
  };
}
