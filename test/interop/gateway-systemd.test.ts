// The gateway's systemd unit (tools/gateway/blewire-gateway@.service), checked by systemd's own tools
// rather than by reading it: `systemd-analyze verify` (the unit parses, every key is known, the
// executables exist) and `systemd-analyze security --offline=yes` (the hardening systemd itself
// scores), on an instance copy (blewire-gateway@hci0.service) in a private temporary folder. And the
// unit run for real: this machine has no systemd as PID 1, so the last test boots the installed
// systemd (Debian's 252) as PID 1 of its own PID, mount, network, UTS and IPC namespaces, on an
// overlay of / whose writes go to a tmpfs that dies with it, installs the unit unchanged, and starts
// the instance `sim` (so `--transport sim`: no Bluetooth in this kernel) against a mosquitto in the
// same network namespace. That broker takes no anonymous client: the gateway gets in only with the
// password the unit's root-only environment file gives it (EnvironmentFile=, read by systemd before it
// starts the dynamic user), which never shows on its command line. A missing systemd-analyze or
// unshare is a failure, not a skip.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

const UNIT = new URL('../../tools/gateway/blewire-gateway@.service', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'blewire-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function analyze(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`systemd-analyze cannot run (apt-get install systemd): ${r.error.message}`);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The [Service] section's settings (a key may repeat). */
function serviceKeys(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) { section = s[1]!; continue; }
    if (section !== 'Service') continue;
    const i = line.indexOf('=');
    m.set(line.slice(0, i), [...(m.get(line.slice(0, i)) ?? []), line.slice(i + 1)]);
  }
  return m;
}

describe('the gateway systemd unit', () => {
  test('systemd-analyze verify: no warning on the unit; the same check does warn on a copy with a misspelt key', () => {
    const unit = join(dir, 'blewire-gateway@hci0.service');
    copyFileSync(UNIT, unit);
    const good = analyze(['verify', '--man=no', unit]);
    expect({ code: good.code, err: good.err.trim() }).toEqual({ code: 0, err: '' });
    // The control: verify really parses the file here (a typo is reported, with its line).
    const bad = join(dir, 'blewire-gateway-bad@hci0.service');
    writeFileSync(bad, readFileSync(unit, 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
    expect(analyze(['verify', '--man=no', bad]).err).toMatch(/Unknown key '?NoNewPrivilege'? in section \[Service\]/);
  });

  test('hardening: no new privileges, read-only system, and CAP_NET_RAW + CAP_NET_ADMIN only, as ambient capabilities of a non-root user', () => {
    const k = serviceKeys(readFileSync(UNIT, 'utf8'));
    expect(k.get('NoNewPrivileges')).toEqual(['yes']);
    expect(k.get('ProtectSystem')).toEqual(['strict']);
    expect(k.get('ProtectHome')).toEqual(['yes']);
    expect(k.get('DynamicUser')).toEqual(['yes']);
    expect(k.get('User')).toBeUndefined();
    const caps = (key: string) => (k.get(key) ?? []).join(' ').split(/\s+/).filter(Boolean).sort();
    expect(caps('AmbientCapabilities')).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    expect(caps('CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    // The command with the V8 memory flags (src/cli/gateway.mjs), not plain `blewire gateway`.
    expect(k.get('ExecStart')?.[0]).toMatch(/^\/usr\/bin\/env blewire-gateway /);
  });

  test('systemd-analyze security --offline: systemd scores the exposure at most 4.5 (it was 6.2 with the first unit)', () => {
    const unit = join(dir, 'blewire-gateway@hci0.service');
    copyFileSync(UNIT, unit);
    const r = analyze(['security', '--offline=yes', '--no-pager', unit]);
    const m = /Overall exposure level for blewire-gateway@hci0\.service: (\d+\.\d)/.exec(r.out);
    expect(m, r.out + r.err).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(4.5);
    for (const line of ['NoNewPrivileges=', 'ProtectSystem=', 'ProtectKernelModules=', 'RestrictNamespaces=~user', 'UMask=']) {
      const row = r.out.split('\n').find(l => l.includes(line));
      expect(row, `${line} in ${r.out}`).toBeDefined();
      expect(row!.trimStart().startsWith('✓'), row).toBe(true);
    }
  });

  test('run by systemd 252 as PID 1 (private namespaces): a dynamic user with CAP_NET_ADMIN + CAP_NET_RAW only, no new privileges, seccomp, read-only /; the MQTT password from the root-only environment file, never on the command line, into a broker that refuses anonymous clients; online and documents in mosquitto; systemctl stop publishes offline, result success', async () => {
    expect(process.getuid?.(), 'booting systemd in namespaces needs root').toBe(0);
    const repo = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
    const r = mkdtempSync(join(tmpdir(), 'blewire-systemd-'));
    mkdirSync(join(r, 't'));
    mkdirSync(join(r, 'root'));
    const root = join(r, 'root');
    // The gateway's credentials and a reader's, fresh each run; the broker knows only these two.
    const password = randomBytes(12).toString('hex');
    const readerPassword = randomBytes(12).toString('hex');
    // The whole set-up inside the new namespaces; the last line makes systemd PID 1 there.
    writeFileSync(join(r, 'boot.sh'), [
      '#!/bin/sh', 'set -e',
      `mount -t tmpfs tmpfs ${r}/t`, `mkdir ${r}/t/u ${r}/t/w`,
      `mount -t overlay overlay -o lowerdir=/,upperdir=${r}/t/u,workdir=${r}/t/w ${root}`,
      // The checkout at a fixed place outside /tmp and /home: the unit's PrivateTmp= and ProtectHome= hide
      // those from the service (a clone under /tmp made env say 'blewire-gateway: No such file').
      `mkdir -p ${root}/opt/blewire && mount --bind ${repo} ${root}/opt/blewire`,
      `mount --rbind /dev ${root}/dev`, `mount -t proc proc ${root}/proc`, `mount --rbind /sys ${root}/sys`,
      `mount -t tmpfs tmpfs ${root}/run`, `mount -t tmpfs tmpfs ${root}/tmp`,
      `mkdir -p ${root}/etc/systemd/system ${root}/etc/blewire ${root}/usr/local/bin`,
      `cp ${fileURLToPath(UNIT)} ${root}/etc/systemd/system/blewire-gateway@.service`,
      `printf '[Unit]\\nDescription=nothing else\\nDefaultDependencies=no\\n' > ${root}/etc/systemd/system/blewire-idle.target`,
      `ln -sf /opt/blewire/src/cli/gateway.mjs ${root}/usr/local/bin/blewire-gateway`,
      // The unit's credentials file as the README says to write it: root's, mode 0600.
      `printf 'BLEWIRE_MQTT_URL=mqtt://127.0.0.1:1883\\nBLEWIRE_MQTT_USERNAME=gw-sim\\nBLEWIRE_MQTT_PASSWORD=${password}\\n' > ${root}/etc/blewire/gateway-sim.env`,
      `chown root:root ${root}/etc/blewire/gateway-sim.env`, `chmod 600 ${root}/etc/blewire/gateway-sim.env`,
      `printf '{ "summaryIntervalMs": 2000 }\\n' > ${root}/etc/blewire/gateway-sim.json`,
      `mosquitto_passwd -c -b ${root}/etc/blewire/mosquitto.passwd gw-sim ${password}`,
      `mosquitto_passwd -b ${root}/etc/blewire/mosquitto.passwd reader ${readerPassword}`,
      `chmod 644 ${root}/etc/blewire/mosquitto.passwd`,
      `printf 'listener 1883 127.0.0.1\\nallow_anonymous false\\npassword_file /etc/blewire/mosquitto.passwd\\n' > ${root}/etc/blewire/mosquitto.conf`,
      `echo blewire-test > ${root}/etc/hostname`,
      `exec env -i container=blewire-test PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot ${root} /lib/systemd/systemd --system --unit=blewire-idle.target`,
    ].join('\n') + '\n');
    chmodSync(join(r, 'boot.sh'), 0o700);
    const boot = spawn('unshare', ['--mount', '--pid', '--fork', '--net', '--uts', '--ipc', '--propagation', 'private', join(r, 'boot.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let bootOut = '';
    boot.stdout!.on('data', (c: Buffer) => { bootOut += c.toString(); });
    boot.stderr!.on('data', (c: Buffer) => { bootOut += c.toString(); });
    let sd: number | undefined;
    const wait = (ms: number) => new Promise(res => setTimeout(res, ms));
    // A command in the container (its namespaces and root), synchronously, bounded.
    const inside = (args: string[], timeout = 30_000) => {
      const x = spawnSync('nsenter', ['-t', String(sd), '-m', '-p', '-n', '-u', '-i', '-r', '-w', ...args], { encoding: 'utf8', timeout });
      if (x.error) throw new Error(`nsenter ${args.join(' ')}: ${x.error.message}`);
      return { code: x.status, out: x.stdout.trim(), err: x.stderr.trim() };
    };
    const show = (unit: string, ...props: string[]) => Object.fromEntries(inside(['systemctl', 'show', unit, ...props.map(p => `-p${p}`)]).out.split('\n').map(l => l.split(/=(.*)/s).slice(0, 2)));
    try {
      for (let i = 0; i < 100 && sd === undefined; i++) {
        await wait(100);
        const kids = spawnSync('cat', [`/proc/${boot.pid}/task/${boot.pid}/children`], { encoding: 'utf8' }).stdout.trim();
        const pid = Number(kids.split(/\s+/)[0]);
        if (pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') sd = pid;
      }
      expect(sd, `systemd did not start: ${bootOut}`).toBeDefined();
      let state = '';
      for (let i = 0; i < 300 && !['running', 'degraded'].includes(state); i++) { await wait(100); state = inside(['systemctl', 'is-system-running']).out; }
      expect(['running', 'degraded'], `system state ${state}`).toContain(state);
      expect(inside(['cat', '/proc/1/comm']).out).toBe('systemd');
      expect(inside(['systemctl', '--version']).out).toMatch(/^systemd 25\d/);
      inside(['ip', 'link', 'set', 'lo', 'up']);
      expect(inside(['systemctl', 'start', 'systemd-journald.socket', 'systemd-journald.service']).code).toBe(0);
      expect(inside(['systemd-run', '--unit=mosquitto-test', 'mosquitto', '-c', '/etc/blewire/mosquitto.conf']).code).toBe(0);

      const start = inside(['systemctl', 'start', 'blewire-gateway@sim.service'], 60_000);
      expect(start.code, start.err).toBe(0);
      // The broker's retained status, read by mosquitto_sub in the same network namespace.
      const reader = ['-u', 'reader', '-P', readerPassword];
      const status = (want: string) => inside(['mosquitto_sub', '-h', '127.0.0.1', ...reader, '-t', 'blewire/blewire-test-sim/status', '-C', '1', '-W', '60'], 70_000).out === want;
      expect(status('online'), inside(['journalctl', '-u', 'blewire-gateway@sim.service', '--no-pager', '-o', 'cat']).out).toBe(true);
      const doc = inside(['mosquitto_sub', '-h', '127.0.0.1', ...reader, '-t', 'blewire/blewire-test-sim/devices/+', '-C', '1', '-W', '60'], 70_000).out;
      // The control: this broker refuses a client without the password (CONNACK "not authorised").
      const anonymous = inside(['mosquitto_sub', '-h', '127.0.0.1', '-t', 'blewire/#', '-C', '1', '-W', '10'], 20_000);
      expect(anonymous.code).not.toBe(0);
      expect(anonymous.out + anonymous.err).toMatch(/not authori[sz]ed/i);
      expect(JSON.parse(doc)).toMatchObject({ gateway: 'blewire-test-sim' });

      const unit = show('blewire-gateway@sim.service', 'MainPID', 'ActiveState', 'User', 'DynamicUser');
      expect(unit).toMatchObject({ ActiveState: 'active', User: 'blewire-gateway', DynamicUser: 'yes' });
      const pid = unit['MainPID']!;
      const st = inside(['cat', `/proc/${pid}/status`]).out;
      const field = (n: string) => new RegExp(`^${n}:\\s+(.*)$`, 'm').exec(st)?.[1]?.trim();
      const uid = Number(field('Uid')!.split(/\s+/)[0]);
      // A dynamic user (systemd's range 61184-65519), named after the unit, in the bluetooth group.
      expect(uid).toBeGreaterThanOrEqual(61184);
      expect(uid).toBeLessThanOrEqual(65519);
      expect(inside(['getent', 'passwd', String(uid)]).out).toMatch(/^blewire-gateway:x:/);
      const btGid = inside(['getent', 'group', 'bluetooth']).out.split(':')[2];
      expect(field('Groups')!.split(/\s+/)).toContain(btGid);
      // CAP_NET_ADMIN (bit 12) and CAP_NET_RAW (bit 13) and nothing else, in every set, ambient included.
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect([set, field(set)]).toEqual([set, '0000000000003000']);
      expect(field('NoNewPrivs')).toBe('1');
      expect(field('Seccomp')).toBe('2');
      const mounts = inside(['cat', `/proc/${pid}/mountinfo`]).out.split('\n').map(l => l.split(' '));
      expect(mounts.find(m => m[4] === '/')?.[5]).toMatch(/^ro,/);
      // The command with its V8 flags, as the unit's ExecStart gives it, and no password in it.
      const cmdline = inside(['cat', `/proc/${pid}/cmdline`]).out;
      expect(cmdline.split('\0')).toEqual(expect.arrayContaining(['--max-semi-space-size=1', '--single-threaded', '--optimize-for-size', '--incremental-marking-hard-trigger=30', '--transport', 'sim', '--id', 'blewire-test-sim']));
      expect(cmdline).not.toContain(password);
      // The password came through the environment systemd built from the root-only file.
      expect(inside(['cat', `/proc/${pid}/environ`]).out.split('\0')).toEqual(expect.arrayContaining([`BLEWIRE_MQTT_USERNAME=gw-sim`, `BLEWIRE_MQTT_PASSWORD=${password}`]));
      expect(inside(['stat', '-c', '%U:%G %a', '/etc/blewire/gateway-sim.env']).out).toBe('root:root 600');
      // ... which the service's own user cannot read (it is not root; the file is not its).
      expect(inside(['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'cat', '/etc/blewire/gateway-sim.env']).code).not.toBe(0);
      expect(inside(['journalctl', '-u', 'blewire-gateway@sim.service', '--no-pager', '-o', 'cat']).out).not.toContain(password);

      const stop = inside(['systemctl', 'stop', 'blewire-gateway@sim.service'], 60_000);
      expect(stop.code, stop.err).toBe(0);
      expect(show('blewire-gateway@sim.service', 'ActiveState', 'Result', 'ExecMainStatus')).toMatchObject({ ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' });
      expect(status('offline')).toBe(true);
      expect(inside(['journalctl', '-u', 'blewire-gateway@sim.service', '--no-pager', '-o', 'cat']).out).toMatch(/"msg":"gateway stopped"/);
    } finally {
      // PID 1 of the namespace gone, the kernel ends every process in it; its mounts go with it.
      if (sd !== undefined) try { process.kill(sd, 'SIGKILL'); } catch { /* already gone */ }
      if (boot.exitCode === null) await new Promise(res => boot.once('exit', res));
      rmSync(r, { recursive: true, force: true });
    }
  }, 240_000);
});
