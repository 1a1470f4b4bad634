// Linux security modules: which of AppArmor and SELinux the host enforces, and the plan step
// that labels the container's program at its execve. A label the config asks for but the
// host cannot apply is an error, never a silent no-op (runc refuses both the same way).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Process } from '../spec/types.js';
import { TsrunError } from '../util/errors.js';
import { F, type PlanStep } from './plan-encode.js';

export interface LsmSupport {
  apparmor: boolean;
  selinux: boolean;
}

/** What this host enforces, read from sysfs (injectable for tests). */
export function lsmSupport(sysRoot = '/sys'): LsmSupport {
  let apparmor = false;
  try {
    apparmor = readFileSync(join(sysRoot, 'module/apparmor/parameters/enabled'), 'utf8').trim() === 'Y';
  } catch {
    /* not built in */
  }
  return { apparmor, selinux: existsSync(join(sysRoot, 'fs/selinux/enforce')) };
}

const NONE: LsmSupport = { apparmor: false, selinux: false };

/** What the host enforces, read only when `p` or the mount label asks for a label (most never do). */
export function lsmSupportFor(p: Process | undefined, mountLabel?: string): LsmSupport {
  return p?.apparmorProfile || p?.selinuxLabel || mountLabel ? lsmSupport() : NONE;
}

const LSM_APPARMOR = 1;
const LSM_SELINUX = 2;

/** Pure: the LSM_EXEC steps for `p`, or an error naming what the host lacks. */
export function lsmSteps(p: Process, support: LsmSupport): PlanStep[] {
  const out: PlanStep[] = [];
  if (p.apparmorProfile) {
    if (!support.apparmor) {
      throw new TsrunError('ERR_UNSUPPORTED', `unable to apply apparmor profile "${p.apparmorProfile}": AppArmor is not enabled on this host`, {
        hint: 'remove process.apparmorProfile, or boot with AppArmor enabled (apparmor=1 security=apparmor) and load the profile',
      });
    }
    out.push({
      op: 'LSM_EXEC',
      syscall: 'write(attr/apparmor/exec)',
      target: p.apparmorProfile,
      fields: [F.int(LSM_APPARMOR), F.str(`exec ${p.apparmorProfile}`)],
    });
  }
  if (p.selinuxLabel) {
    if (!support.selinux) {
      throw new TsrunError(
        'ERR_UNSUPPORTED',
        `selinux label "${p.selinuxLabel}" is specified in config, but SELinux is disabled or not supported on this host`,
        {
          hint: 'remove process.selinuxLabel, or run on a host with SELinux enabled',
        },
      );
    }
    out.push({ op: 'LSM_EXEC', syscall: 'write(attr/exec)', target: p.selinuxLabel, fields: [F.int(LSM_SELINUX), F.str(p.selinuxLabel)] });
  }
  return out;
}

/** linux.mountLabel: refused, since tsrun does not label mounts (and it needs SELinux). */
export function checkMountLabel(mountLabel: string | undefined, support: LsmSupport): void {
  if (!mountLabel) return;
  const why = support.selinux ? 'tsrun does not apply SELinux mount labels yet' : 'SELinux is disabled or not supported on this host';
  throw new TsrunError('ERR_UNSUPPORTED', `linux.mountLabel "${mountLabel}" is specified in config, but ${why}`, {
    hint: 'remove linux.mountLabel',
  });
}
