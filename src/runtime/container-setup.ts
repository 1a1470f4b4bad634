// What create and restore both do before anything exists: decide the container's cgroup and
// refuse limits this host cannot apply, and the first state record (written before anything
// it names is made, so `delete --force` can always finish the job).
import { CgroupManager } from '../cgroups/manager.js';
import { resolveCgroupPath } from '../cgroups/paths.js';
import { requiredControllers } from '../cgroups/resources.js';
import type { Resources, Spec } from '../spec/types.js';
import { TsrunError } from '../util/errors.js';
import type { RuntimeContext } from './context.js';
import { procStartTime } from './proc.js';
import type { ContainerRecord } from './state-store.js';

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
