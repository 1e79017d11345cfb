// The gateway's systemd unit (tools/gateway/blewire-gateway@.service), checked by systemd's own tools
// rather than by reading it: `systemd-analyze verify` (the unit parses, every key is known, the
// executables exist) and `systemd-analyze security --offline=yes` (the hardening systemd itself
// scores). This container has no systemd as PID 1, so the unit is not started here: what runs is the
// offline analysis, on an instance copy (blewire-gateway@hci0.service) in a private temporary folder.
// A missing systemd-analyze is a failure, not a skip (Debian's `systemd` package provides it).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
});
