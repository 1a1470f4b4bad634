import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkMountLabel, lsmSteps, lsmSupport } from '../../../src/linux/lsm.js';
import type { Process } from '../../../src/spec/types.js';

const proc = (extra: Partial<Process>): Process => ({ cwd: '/', args: ['/bin/true'], user: { uid: 0, gid: 0 }, ...extra });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('LSM support and labels', () => {
  it('reads AppArmor and SELinux support from an injected sysfs', () => {
    const sys = mkdtempSync(path.join(os.tmpdir(), 'lsm-sys-'));
    dirs.push(sys);
    expect(lsmSupport(sys)).toEqual({ apparmor: false, selinux: false });
    mkdirSync(path.join(sys, 'module/apparmor/parameters'), { recursive: true });
    writeFileSync(path.join(sys, 'module/apparmor/parameters/enabled'), 'N\n');
    expect(lsmSupport(sys).apparmor).toBe(false);
    writeFileSync(path.join(sys, 'module/apparmor/parameters/enabled'), 'Y\n');
    mkdirSync(path.join(sys, 'fs/selinux'), { recursive: true });
    writeFileSync(path.join(sys, 'fs/selinux/enforce'), '1');
    expect(lsmSupport(sys)).toEqual({ apparmor: true, selinux: true });
  });

  it('refuses a label the host cannot apply, naming it', () => {
    const none = { apparmor: false, selinux: false };
    expect(() => lsmSteps(proc({ apparmorProfile: 'p1' }), none)).toThrow('unable to apply apparmor profile "p1": AppArmor is not enabled on this host');
    expect(() => lsmSteps(proc({ selinuxLabel: 'l:r:t:s0' }), none)).toThrow('selinux label "l:r:t:s0" is specified in config, but SELinux is disabled');
    expect(() => checkMountLabel('x', none)).toThrow('SELinux is disabled');
    expect(() => checkMountLabel('x', { apparmor: false, selinux: true })).toThrow('does not apply SELinux mount labels');
    expect(lsmSteps(proc({}), none)).toEqual([]);
    expect(() => checkMountLabel(undefined, none)).not.toThrow();
  });

  it('labels the next execve where the LSM is enabled', () => {
    const steps = lsmSteps(proc({ apparmorProfile: 'p1', selinuxLabel: 'l:r:t:s0' }), { apparmor: true, selinux: true });
    expect(steps.map((s) => [s.op, s.fields])).toEqual([
      ['LSM_EXEC', [{ int: 1 }, { str: 'exec p1' }]],
      ['LSM_EXEC', [{ int: 2 }, { str: 'l:r:t:s0' }]],
    ]);
  });
});
