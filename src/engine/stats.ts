// `stats`: docker's columns from the container's cgroup, plus what docker leaves out (CPU
// throttling, OOM kills, pressure). CPU % is the usage between two samples over the wall time,
// as docker computes it (100% = one CPU).
import type { CgroupStats } from '../cgroups/controllers/stats.js';
import type { ContainerRecord } from './container-store.js';
import type { EngineContext } from './context.js';
import { cgroupStats } from './inspect.js';

export interface StatsSample {
  at: number;
  stats: CgroupStats | undefined;
}

export interface StatsRow {
  ID: string;
  Name: string;
  CPUPerc: number;
  MemUsage: number;
  MemLimit: number | null;
  MemPerc: number | null;
  PIDs: number;
  PidsLimit: number | null;
  BlockRead: number;
  BlockWrite: number;
  ThrottledPeriods: number;
  ThrottledUsec: number;
  OOMKills: number;
  CPUPressureSome10: number | null;
  MemPressureSome10: number | null;
  IOPressureSome10: number | null;
}

export function sample(ctx: EngineContext, rec: ContainerRecord): StatsSample {
  return { at: performance.now(), stats: cgroupStats(ctx, rec) };
}

const usageUsec = (s: CgroupStats | undefined) => s?.cpu?.stat?.['usage_usec'] ?? 0;

export function statsRow(rec: ContainerRecord, a: StatsSample, b: StatsSample): StatsRow {
  const s = b.stats;
  const wallUsec = Math.max(1, (b.at - a.at) * 1000);
  const cpu = Math.max(0, ((usageUsec(s) - usageUsec(a.stats)) / wallUsec) * 100);
  const mem = s?.memory?.current ?? Number(s?.memory?.stat?.['rss'] ?? 0);
  const max = s?.memory?.max;
  const limit = typeof max === 'number' ? max : null;
  let read = 0;
  let write = 0;
  for (const d of s?.io?.stat ?? []) {
    read += d.rbytes ?? 0;
    write += d.wbytes ?? 0;
  }
  const pidsMax = s?.pids?.max;
  return {
    ID: rec.id.slice(0, 12),
    Name: rec.name,
    CPUPerc: Math.round(cpu * 100) / 100,
    MemUsage: mem,
    MemLimit: limit,
    MemPerc: limit ? Math.round((mem / limit) * 10000) / 100 : null,
    PIDs: s?.pids?.current ?? s?.pids?.procs ?? 0,
    PidsLimit: typeof pidsMax === 'number' ? pidsMax : null,
    BlockRead: read,
    BlockWrite: write,
    ThrottledPeriods: s?.cpu?.stat?.['nr_throttled'] ?? 0,
    ThrottledUsec: s?.cpu?.stat?.['throttled_usec'] ?? 0,
    OOMKills: s?.memory?.events?.['oom_kill'] ?? 0,
    CPUPressureSome10: s?.cpu?.pressure?.some?.avg10 ?? null,
    MemPressureSome10: s?.memory?.pressure?.some?.avg10 ?? null,
    IOPressureSome10: s?.io?.pressure?.some?.avg10 ?? null,
  };
}
