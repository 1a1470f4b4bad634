// What create and restore both do before anything exists: decide the container's cgroup and
// refuse limits this host cannot apply, and the first state record (written before anything
// it names is made, so `delete --force` can always finish the job).
import { CgroupManager } from '../cgroups/manager.js';
import { resolveCgroupPath } from '../cgroups/paths.js';
import { requiredControllers } from '../cgroups/resources.js';
import type { CgroupV2 } from '../cgroups/v2.js';
import type { Resources, Spec } from '../spec/types.js';
import { TsrunError } from '../util/errors.js';
import type { RuntimeContext } from './context.js';
import { procStartTime } from './proc.js';
import type { ContainerRecord } from './state-store.js';
import type { Undo } from './undo.js';

export interface CgroupPlan {
  cgroupPath: string | null;
  resources: Resources | undefined;
  manager: CgroupManager | null;
}

/** The cgroup path and manager; throws (before anything exists) for limits that cannot apply. */
export function planCgroup(ctx: RuntimeContext, spec: Spec, id: string): CgroupPlan {
  const cgroupPath = ctx.cgroup ? resolveCgroupPath(spec.linux?.cgroupsPath, id, ctx.systemdCgroup) : null;
  const resources = spec.linux?.resources;
  const manager = ctx.cgroup ? new CgroupManager(ctx.cgroup) : null;
  if (manager) manager.check(resources);
  else if (requiredControllers(resources).size) {
    throw new TsrunError('ERR_CGROUP', 'cannot apply linux.resources: no cgroup v2 hierarchy is mounted', {
      hint: 'mount cgroup2 (for example at /sys/fs/cgroup), or run without resource limits',
    });
  }
  return { cgroupPath, resources, manager };
}

/** The record of a container being created by this process. */
export function creatingRecord(id: string, bundle: string, rootfs: string, spec: Spec, cgroupPath: string | null): ContainerRecord {
  return {
    id,
    phase: 'creating',
    pid: 0,
    startTime: '',
    bundle,
    rootfs,
    created: new Date().toISOString(),
    owner: '',
    cgroupPath,
    config: spec,
    creatorPid: process.pid,
    creatorStartTime: procStartTime(process.pid) ?? '',
  };
}

/**
 * Make the container's cgroup and apply its limits. The record says "about to make it" before
 * the mkdir (corrected if the mkdir finds it there), so a process killed in between leaves
 * `delete --force` what it needs. Only a cgroup made here is removed on failure, and never by
 * killing: the caller's abort (registered later, so undone first) has reaped the init by then.
 * `crashPoint` is create's test hook (TSRUN_TEST_CRASH_AT).
 */
export function makeCgroup(
  ctx: RuntimeContext,
  cg: CgroupV2,
  cgroupPath: string,
  plan: CgroupPlan,
  record: ContainerRecord,
  undo: Undo,
  crashPoint: (step: string) => void = () => {},
): void {
  record.cgroupCreated = !cg.exists(cgroupPath);
  ctx.store.write(record);
  crashPoint('recorded');
  const made = cg.create(cgroupPath);
  if (made !== record.cgroupCreated) {
    record.cgroupCreated = made;
    ctx.store.write(record);
  }
  if (made) {
    undo.onFail(() => {
      const left = cg.removeIfUnused(cgroupPath, 2000);
      if (left) throw new TsrunError('ERR_CGROUP', `cgroup ${cg.path(cgroupPath)} left in place: ${left} process(es) still in it`);
    });
  }
  crashPoint('cgroup');
  for (const w of plan.manager!.apply(cgroupPath, plan.resources).warnings) ctx.log.warn(w);
}
