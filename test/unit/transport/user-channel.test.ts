import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { TransportError } from '../../../src/errors.js';
import { openTransport } from '../../../src/transport/open.js';
import {
  loadHciSocketModule, openUserChannel, USER_CHANNEL_ERROR, type HciSocketModule,
} from '../../../src/transport/user-channel.js';
import { collect } from './helpers.js';

const errno = (code: string) => Object.assign(new Error(`${code}, something`), { code });

/** A fake HCI socket module whose bindUser fails with `bindError` (or succeeds). */
function fakeModule(bindError?: string, name = 'fake-hci-socket') {
  const sockets: (EventEmitter & { written: Buffer[]; started: boolean; stopped: boolean })[] = [];
  const mod: HciSocketModule = {
    name,
    create: () => {
      const s = Object.assign(new EventEmitter(), {
        written: [] as Buffer[], started: false, stopped: false,
        bindUser(_i: number) { if (bindError) throw errno(bindError); return 0; },
        start() { s.started = true; },
        stop() { s.stopped = true; },
        write(b: Buffer) { s.written.push(Buffer.from(b)); },
      });
      sockets.push(s);
      return s;
    },
  };
  return { mod, sockets, loadModule: async () => mod };
}

describe('HCI user channel', () => {
  it('on this machine (no AF_BLUETOOTH) the real module fails, and the error says the kernel lacks Bluetooth', async () => {
    // The installed @abandonware/bluetooth-hci-socket throws EAFNOSUPPORT from its constructor here.
    const mod = await loadHciSocketModule();
    expect(mod.name).toMatch(/bluetooth-hci-socket$/);
    const err = await openUserChannel(0).catch(e => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err.code).toBe(USER_CHANNEL_ERROR.noBluetooth);
    expect(err.message).toMatch(/^hci0 \(user channel\): this kernel has no Bluetooth support .*EAFNOSUPPORT/);
    expect((err.cause as Error).message).toMatch(/Address family not supported/);
    // The same through the spec-string factory, in each spelling.
    for (const spec of ['hci0', 'hci:0', 'hci-user:0']) {
      await expect(openTransport(spec, { env: {} })).rejects.toMatchObject({ code: USER_CHANNEL_ERROR.noBluetooth });
    }
  });

  it('EPERM and EACCES: needs root or CAP_NET_ADMIN, with the setcap command', async () => {
    for (const code of ['EPERM', 'EACCES']) {
      const { loadModule } = fakeModule(code);
      await expect(openUserChannel(1, { loadModule })).rejects.toMatchObject({
        code: USER_CHANNEL_ERROR.permission,
        message: expect.stringContaining('sudo setcap cap_net_admin,cap_net_raw+eip $(readlink -f $(which node))'),
      });
    }
  });

  it('maps errors that carry only the strerror text (as the native module throws them under some loaders)', async () => {
    const cases: [string, string][] = [
      ['Operation not permitted', USER_CHANNEL_ERROR.permission],
      ['Device or resource busy', USER_CHANNEL_ERROR.busy],
      ['No such device', USER_CHANNEL_ERROR.noAdapter],
      ['Address family not supported by protocol', USER_CHANNEL_ERROR.noBluetooth],
      ['Something else', USER_CHANNEL_ERROR.other],
    ];
    for (const [message, code] of cases) {
      const loadModule = async (): Promise<HciSocketModule> => ({ name: 'x', create: () => { throw new Error(message); } });
      await expect(openUserChannel(0, { loadModule, procRoot: '/nonexistent', sysClassBluetooth: '/nonexistent' })).rejects.toMatchObject({ code });
    }
  });

  it('EBUSY: names the bluetoothd process holding the adapter and the commands that release it', async () => {
    const proc = mkdtempSync(join(tmpdir(), 'blewire-proc-'));
    try {
      for (const [pid, comm] of [['1', 'init'], ['412', 'bluetoothd'], ['9000', 'node'], ['self', 'x']] as const) {
        mkdirSync(join(proc, pid));
        writeFileSync(join(proc, pid, 'comm'), comm + '\n');
      }
      const { loadModule } = fakeModule('EBUSY');
      const err = await openUserChannel(2, { loadModule, procRoot: proc }).catch(e => e);
      expect(err.code).toBe(USER_CHANNEL_ERROR.busy);
      expect(err.message).toBe(
        'hci2 (user channel): the adapter is busy: it is up and held by bluetoothd (pid 412), which powers on every free adapter. ' +
        'The user channel needs it down and unowned: `sudo btmgmt --index 2 power off` (keeps bluetoothd for other adapters) or ' +
        '`sudo systemctl stop bluetooth`, then `sudo hciconfig hci2 down`');
      const none = mkdtempSync(join(tmpdir(), 'blewire-proc-'));
      const err2 = await openUserChannel(0, { loadModule, procRoot: none }).catch(e => e);
      rmSync(none, { recursive: true });
      expect(err2.message).toMatch(/busy: it is up \(in use by the kernel or another program\)/);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it('ENODEV: lists the adapters that exist', async () => {
    const sys = mkdtempSync(join(tmpdir(), 'blewire-sys-'));
    try {
      const { loadModule } = fakeModule('ENODEV');
      await expect(openUserChannel(5, { loadModule, sysClassBluetooth: sys })).rejects.toMatchObject({
        code: USER_CHANNEL_ERROR.noAdapter, message: expect.stringMatching(/no Bluetooth adapters/),
      });
      mkdirSync(join(sys, 'hci1'));
      mkdirSync(join(sys, 'hci0'));
      await expect(openUserChannel(5, { loadModule, sysClassBluetooth: sys })).rejects.toMatchObject({
        message: 'hci5 (user channel): no such adapter; adapters present: hci0, hci1',
      });
    } finally {
      rmSync(sys, { recursive: true, force: true });
    }
  });

  it('a missing module: a TransportError saying how to install one', async () => {
    const err = await openUserChannel(0, {
      loadModule: () => loadHciSocketModule(['blewire-test-no-such-package']),
    }).catch(e => e);
    expect(err.code).toBe(USER_CHANNEL_ERROR.moduleMissing);
    expect(err.message).toMatch(/blewire-test-no-such-package: not installed/);
    expect(err.message).toMatch(/npm install @stoprocent\/bluetooth-hci-socket/);
  });

  it('carries packets both ways; copies reads from modules not known to copy; a socket error closes it', async () => {
    const { loadModule, sockets } = fakeModule();
    const t = await openUserChannel(3, { loadModule });
    expect(t.description).toBe('hci3 (user channel)');
    const rx = collect(t);
    const s = sockets[0]!;
    expect(s.started).toBe(true);
    t.send(fromHex('01 03 0c 00'));
    expect(s.written.map(b => toHex(b))).toEqual(['01030c00']);
    const read = Buffer.from(fromHex('04 0e 04 01 03 0c 00'));
    s.emit('data', read);
    read.fill(0); // a module that reuses its read buffer
    expect(toHex(rx.packets[0]!)).toBe('040e0401030c00');
    s.emit('error', errno('ENETDOWN'));
    const closed = await rx.whenClosed();
    expect(closed.error).toMatchObject({ code: USER_CHANNEL_ERROR.other, message: expect.stringMatching(/^hci3 \(user channel\): ENETDOWN/) });
    expect(s.stopped).toBe(true);
  });

  it('passes the packets of the modules read to emit a fresh buffer per read (@abandonware, @stoprocent) up as they are', async () => {
    for (const name of ['@abandonware/bluetooth-hci-socket', '@stoprocent/bluetooth-hci-socket']) {
      const { loadModule, sockets } = fakeModule(undefined, name);
      const t = await openUserChannel(1, { loadModule });
      const rx = collect(t);
      const read = Buffer.from(fromHex('02 40 20 05 00 01 00 04 00 1b'));
      sockets[0]!.emit('data', read);
      expect(rx.packets[0]).toBe(read);
      await t.close();
    }
    const { loadModule, sockets } = fakeModule(undefined, '@someone-else/bluetooth-hci-socket');
    const t = await openUserChannel(1, { loadModule });
    const rx = collect(t);
    const read = Buffer.from(fromHex('04 0e 04 01 03 0c 00'));
    sockets[0]!.emit('data', read);
    expect(rx.packets[0]).not.toBe(read);
    expect(toHex(rx.packets[0]!)).toBe('040e0401030c00');
    await t.close();
  });

  it('close() stops the socket and tells the receiver without an error', async () => {
    const { loadModule, sockets } = fakeModule();
    const t = await openUserChannel(0, { loadModule });
    const rx = collect(t);
    await t.close();
    expect(sockets[0]!.stopped).toBe(true);
    expect(rx.closed).toEqual({});
    expect(() => t.send(fromHex('01 03 0c 00'))).toThrow(/closed/);
  });
});

