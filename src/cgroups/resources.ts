// Which cgroup v2 controllers a `linux.resources` block needs (pure). The manager refuses
// to start a container whose limits it cannot apply, rather than apply part of them.
import type { Resources } from '../spec/types.js';

/**
 * Values that ask for nothing: the kernel's defaults (cpu.shares 1024, the v1 default that
 * containerd always sends) and "unlimited" (-1, 0). They need no controller, so a container
 * carrying them still runs on a host that lacks the controller.
 */
function isNoop(field: string, v: number | boolean | undefined | null): boolean {
  if (v === undefined || v === null || v === false) return true;
  if (typeof v !== 'number') return false;
  switch (field) {
    case 'cpu.shares':
      return v === 0 || v === 1024;
    case 'cpu.quota':
    case 'memory.limit':
    case 'memory.swap':
    case 'memory.reservation':
    case 'memory.kernel':
    case 'memory.kernelTCP':
      return v <= 0;
    default:
      return false;
  }
}

export function requiredControllers(r: Resources | undefined): Map<string, string[]> {
  const need = new Map<string, string[]>();
  const add = (ctrl: string, field: string) => need.set(ctrl, [...(need.get(ctrl) ?? []), field]);
  if (!r) return need;
  const m = r.memory;
  if (m) {
    for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP', 'swappiness'] as const)
      if (!isNoop(`memory.${k}`, m[k])) add('memory', `memory.${k}`);
    if (m.disableOOMKiller) add('memory', 'memory.disableOOMKiller');
  }
  const c = r.cpu;
  if (c) {
    for (const k of ['shares', 'quota', 'burst', 'idle', 'realtimeRuntime', 'realtimePeriod'] as const) if (!isNoop(`cpu.${k}`, c[k])) add('cpu', `cpu.${k}`);
    // A period alone changes nothing until there is a quota.
    if (c.period !== undefined && !isNoop('cpu.quota', c.quota)) add('cpu', 'cpu.period');
    if (c.cpus) add('cpuset', 'cpu.cpus');
    if (c.mems) add('cpuset', 'cpu.mems');
  }
  if (r.pids && r.pids.limit > 0) add('pids', 'pids.limit');
  const b = r.blockIO;
  if (
    b &&
    (b.weight !== undefined ||
      b.weightDevice?.length ||
      b.throttleReadBpsDevice?.length ||
      b.throttleWriteBpsDevice?.length ||
      b.throttleReadIOPSDevice?.length ||
      b.throttleWriteIOPSDevice?.length)
  )
    add('io', 'blockIO');
  if (r.hugepageLimits?.length) add('hugetlb', 'hugepageLimits');
  if (r.rdma && Object.keys(r.rdma).length) add('rdma', 'rdma');
  for (const key of Object.keys(r.unified ?? {})) {
    const ctrl = key.split('.')[0]!;
    if (ctrl !== 'cgroup') add(ctrl, `unified["${key}"]`);
  }
  return need;
}
