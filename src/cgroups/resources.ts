// Which cgroup v2 controllers a `linux.resources` block needs (pure). The manager refuses
// to start a container whose limits it cannot apply, rather than apply part of them.
import type { Resources } from '../spec/types.js';

export function requiredControllers(r: Resources | undefined): Map<string, string[]> {
  const need = new Map<string, string[]>();
  const add = (ctrl: string, field: string) => need.set(ctrl, [...(need.get(ctrl) ?? []), field]);
  if (!r) return need;
  const m = r.memory;
  if (m) for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP', 'swappiness'] as const) if (m[k] !== undefined && m[k] !== null) add('memory', `memory.${k}`);
  if (m?.disableOOMKiller) add('memory', 'memory.disableOOMKiller');
  const c = r.cpu;
  if (c) {
    for (const k of ['shares', 'quota', 'period', 'burst', 'idle', 'realtimeRuntime', 'realtimePeriod'] as const) if (c[k] !== undefined) add('cpu', `cpu.${k}`);
    if (c.cpus) add('cpuset', 'cpu.cpus');
    if (c.mems) add('cpuset', 'cpu.mems');
  }
  if (r.pids && r.pids.limit > 0) add('pids', 'pids.limit');
  const b = r.blockIO;
  if (b && (b.weight !== undefined || b.weightDevice?.length || b.throttleReadBpsDevice?.length || b.throttleWriteBpsDevice?.length || b.throttleReadIOPSDevice?.length || b.throttleWriteIOPSDevice?.length)) add('io', 'blockIO');
  if (r.hugepageLimits?.length) add('hugetlb', 'hugepageLimits');
  if (r.rdma && Object.keys(r.rdma).length) add('rdma', 'rdma');
  for (const key of Object.keys(r.unified ?? {})) {
    const ctrl = key.split('.')[0]!;
    if (ctrl !== 'cgroup') add(ctrl, `unified["${key}"]`);
  }
  return need;
}
