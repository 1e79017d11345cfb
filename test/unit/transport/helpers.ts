import type { HciTransport } from '../../../src/transport/types.js';

/** A receiver that collects packets and resolves when a count is reached or the transport closes. */
export function collect(t: HciTransport) {
  const packets: Uint8Array[] = [];
  let closedWith: { error?: Error } | undefined;
  const waiters: (() => void)[] = [];
  const poke = () => waiters.splice(0).forEach(w => w());
  t.setReceiver({
    packet: p => { packets.push(p); poke(); },
    closed: error => { closedWith = error ? { error } : {}; poke(); },
  });
  const until = (cond: () => boolean) => new Promise<void>(resolve => {
    const check = () => (cond() ? resolve() : waiters.push(check));
    check();
  });
  return {
    packets,
    get closed() { return closedWith; },
    packetsReach: (n: number) => until(() => packets.length >= n || closedWith !== undefined),
    whenClosed: () => until(() => closedWith !== undefined).then(() => closedWith!),
  };
}
