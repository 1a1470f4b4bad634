// The pure half of the cgroup v2 resource manager: linux.resources → the interface files to
// write, in a safe order, and the controllers they need. No I/O: what is on the host comes
// in through `opts.current`. The order follows runc's fs2 Manager.Set: pids, memory, io,
// cpu, cpuset, hugetlb, rdma, then `unified` last so that it wins.
import { TsrunError } from '../../util/errors.js';
import type { Resources } from '../../spec/types.js';
import { cpuWrites } from './cpu.js';
import { cpusetWrites } from './cpuset.js';
import { hugetlbWrites } from './hugetlb.js';
import { ioWrites } from './io.js';
import { memoryWrites } from './memory.js';
import { pidsWrites } from './pids.js';
import { makeContext, R, type PlanOptions, type ResourceWrite } from './plan.js';
import { rdmaWrites } from './rdma.js';
import { unifiedWrites } from './unified.js';

export type { PlanOptions, ResourceWrite, SharesConversion } from './plan.js';
export { convertMemorySwapToV2 } from './memory.js';
export { convertSharesToWeight, parseCpuMax, DEFAULT_CPU_PERIOD } from './cpu.js';
export { convertBlkioWeightToIoWeight } from './io.js';
export { isCpuList } from './cpuset.js';
export { validateUnifiedKey } from './unified.js';

export interface ResourcePlan {
  writes: ResourceWrite[];
  /** Fields cgroup v2 cannot honour and that are ignored (runc ignores them silently). */
  warnings: string[];
}

/**
 * Keyed files: each write sets one key (a device, "default", an RDMA device) and leaves the
 * others, so a `unified` line does not make the mapped lines for other keys redundant.
 */
const KEYED_FILES = new Set(['io.max', 'io.weight', 'io.bfq.weight', 'io.latency', 'rdma.max', 'misc.max']);

export function planResources(r: Resources, opts?: PlanOptions): ResourcePlan {
  const warnings: string[] = [];
  const ctx = makeContext(opts, warnings);
  const mapped = [
    ...pidsWrites(r),
    ...memoryWrites(r, ctx),
    ...ioWrites(r, ctx),
    ...cpuWrites(r, ctx),
    ...cpusetWrites(r),
    ...hugetlbWrites(r),
    ...rdmaWrites(r),
  ];
  const unified = unifiedWrites(r);
  // runc writes both and the later write wins; dropping the earlier one gives the same end
  // state without passing through the mapped value.
  const overridden = new Set(unified.filter((w) => !KEYED_FILES.has(w.file)).map((w) => w.file));
  const net = r.network as { classID?: unknown; priorities?: unknown[] } | undefined;
  if (net && (net.classID !== undefined || (net.priorities?.length ?? 0) > 0)) {
    // The spec: a config that refers to a controller that is not there MUST fail.
    throw new TsrunError('ERR_CGROUP', `cannot apply ${R}.network: cgroup v2 has no net_cls/net_prio controllers`, {
      hint: `remove ${R}.network (classID, priorities); mark or prioritise the traffic with tc or nftables instead`,
    });
  }
  return { writes: [...mapped.filter((w) => !overridden.has(w.file)), ...unified], warnings };
}

export function resourceWrites(r: Resources, opts?: PlanOptions): ResourceWrite[] {
  return planResources(r, opts).writes;
}

/** The controllers the writes need, to enable in every ancestor's cgroup.subtree_control. */
export function controllersFor(writes: readonly ResourceWrite[]): Set<string> {
  return new Set(writes.map((w) => w.controller));
}

/**
 * Throws the TsrunError that applying `r` would (invalid values, swap below memory,
 * real-time CPU, bad unified keys…) without touching the host; returns the warnings.
 */
export function validateResources(r: Resources): string[] {
  return planResources(r).warnings;
}
