// `events` (runc's JSON lines: stats, and oom when the OOM killer strikes) and `stats`, a
// view for people of the limits in force and what they are doing. Both print one object:
// the runc stats `events --stats` prints is what `stats` shows, read from the container's
// v2 cgroup and, on hybrid hosts, its v1 directories (src/cgroups/v1-stats.ts).
import { runcStatsEventJson, toRuncStats, type CgroupStats, type RuncPsi, type RuncStats, type U64 } from '../../cgroups/controllers/stats.js';
import { readContainerStats } from '../../cgroups/v1-stats.js';
import type { RuntimeContext } from '../../runtime/context.js';
import { oomKills, statusOf } from '../../runtime/lifecycle.js';
import { TsrunError } from '../../util/errors.js';

/** What the container's cgroups say now (v2, completed from v1 on hybrid hosts). */
function readFor(ctx: RuntimeContext, id: string): () => CgroupStats {
  const rec = ctx.store.read(id);
  if (!ctx.cgroup || !rec.cgroupPath) throw new TsrunError('ERR_CGROUP', `container ${id} has no cgroup v2 directory`);
  const dir = ctx.cgroup.path(rec.cgroupPath);
  const v1 = (rec.cgroupV1 ?? []).map((p) => p.dir);
  return () => readContainerStats(dir, v1);
}

/** events --stats: one line; events: a line every interval, plus {"type":"oom"} on OOM kills. */
export async function events(ctx: RuntimeContext, id: string, once: boolean, intervalMs: number, write: (s: string) => void): Promise<void> {
  const read = readFor(ctx, id);
  const line = (): void => write(`${runcStatsEventJson(id, toRuncStats(read()))}\n`);
  if (once) {
    line();
    return;
  }
  let ooms = oomKills(ctx, id);
  const rec = ctx.store.read(id);
  while (statusOf(ctx, rec) !== 'stopped') {
    const now = oomKills(ctx, id);
    if (now > ooms) write(`${JSON.stringify({ type: 'oom', id })}\n`);
    ooms = now;
    line();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const MiB = 1024 * 1024;
const num = (v: U64 | undefined): number | undefined => (v === undefined ? undefined : Number(v));
const bytes = (v: U64 | undefined) => {
  const n = num(v);
  return n === undefined ? '-' : n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
};
const secs = (ns: U64 | undefined) => `${((num(ns) ?? 0) / 1e9).toFixed(2)} s`;
const psi = (p: RuncPsi | undefined) => (p ? `some avg10=${p.some.avg10}% avg60=${p.some.avg60}%, full avg10=${p.full.avg10}%` : '-');

/**
 * The `stats` view of `data`, the object `events --stats` prints (toRuncStats(s) unless given):
 * every figure that object carries is taken from it. `s`, what it was made from, adds only
 * what runc's format has no field for (OOM events, cpu quota and weight) and tells a limit
 * that is unknown ("-") from none ("unlimited"), where runc prints 0 for both.
 */
export function statsText(id: string, s: CgroupStats, data: RuncStats = toRuncStats(s)): string {
  const rows: Array<[string, string]> = [];
  const mu = data.memory.usage;
  const memLimit = s.memory?.max === undefined ? '-' : s.memory.max === 'max' ? 'unlimited' : bytes(mu.limit);
  rows.push(['memory', `${bytes(mu.usage)} now, ${bytes(mu.max)} peak, limit ${memLimit}`]);
  const ev = s.memory?.events ?? {};
  rows.push(['oom', `${ev['oom'] ?? 0} times at the limit, ${ev['oom_kill'] ?? 0} process(es) killed${(ev['oom_kill'] ?? 0) > 0 ? '  << OOM-KILLED' : ''}`]);
  const q = s.cpu?.max;
  const quota = q ? (q.quota === 'max' ? 'unlimited' : `${((q.quota / q.period) * 100).toFixed(0)}% of a CPU`) : '-';
  rows.push(['cpu', `${secs(data.cpu.usage.total)} used, limit ${quota}, weight ${s.cpu?.weight ?? '-'}`]);
  const t = data.cpu.throttling;
  rows.push(['throttled', `${num(t.throttledPeriods) ?? 0} of ${num(t.periods) ?? 0} periods, ${secs(t.throttledTime)}`]);
  const pidsLimit = data.pids.limit !== undefined ? String(data.pids.limit) : s.pids?.max === undefined ? '-' : 'unlimited';
  rows.push(['pids', `${data.pids.current ?? '-'} now, limit ${pidsLimit}`]);
  const devs = new Map<string, { read?: U64; write?: U64 }>();
  for (const e of data.blkio.ioServiceBytesRecursive ?? []) {
    const key = `${e.major ?? 0}:${e.minor ?? 0}`;
    const d = devs.get(key) ?? {};
    if (e.op === 'Read') d.read = e.value ?? 0;
    if (e.op === 'Write') d.write = e.value ?? 0;
    devs.set(key, d);
  }
  rows.push(['io', devs.size ? [...devs].map(([k, d]) => `${k} read ${bytes(d.read ?? 0)} write ${bytes(d.write ?? 0)}`).join('; ') : '-']);
  rows.push(['pressure', `cpu ${psi(data.cpu.psi)} | memory ${psi(data.memory.psi)} | io ${psi(data.blkio.psi)}`]);
  return [`container ${id}`, ...rows.map(([k, v]) => `  ${k.padEnd(10)} ${v}`)].join('\n') + '\n';
}

export function stats(ctx: RuntimeContext, id: string): string {
  return statsText(id, readFor(ctx, id)());
}
