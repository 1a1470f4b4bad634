// `events` (runc's JSON lines: stats, and oom when the OOM killer strikes) and `stats`, a
// view for people of the limits in force and what they are doing.
import { CgroupManager } from '../../cgroups/manager.js';
import { runcStatsEventJson, toRuncStats, type CgroupStats, type Limit, type Psi } from '../../cgroups/controllers/stats.js';
import type { RuntimeContext } from '../../runtime/context.js';
import { oomKills, statusOf } from '../../runtime/lifecycle.js';
import { TsrunError } from '../../util/errors.js';

function managerFor(ctx: RuntimeContext, id: string): { m: CgroupManager; rel: string } {
  const rec = ctx.store.read(id);
  if (!ctx.cgroup || !rec.cgroupPath) throw new TsrunError('ERR_CGROUP', `container ${id} has no cgroup v2 directory`);
  return { m: new CgroupManager(ctx.cgroup), rel: rec.cgroupPath };
}

/** events --stats: one line; events: a line every interval, plus {"type":"oom"} on OOM kills. */
export async function events(ctx: RuntimeContext, id: string, once: boolean, intervalMs: number, write: (s: string) => void): Promise<void> {
  const { m, rel } = managerFor(ctx, id);
  const line = (): void => write(`${runcStatsEventJson(id, toRuncStats(m.stats(rel)))}\n`);
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
const bytes = (n: number | undefined) => (n === undefined ? '-' : n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const limit = (l: Limit | undefined, fmt: (n: number) => string) => (l === undefined ? '-' : l === 'max' ? 'unlimited' : fmt(l));
const psi = (p: Psi | undefined) => (p?.some ? `some avg10=${p.some.avg10}% avg60=${p.some.avg60}%${p.full ? `, full avg10=${p.full.avg10}%` : ''}` : '-');

export function statsText(id: string, s: CgroupStats): string {
  const rows: Array<[string, string]> = [];
  const mem = s.memory;
  rows.push(['memory', `${bytes(mem?.current)} now, ${bytes(mem?.peak)} peak, limit ${limit(mem?.max, bytes)}`]);
  const ev = mem?.events ?? {};
  rows.push(['oom', `${ev.oom ?? 0} times at the limit, ${ev.oom_kill ?? 0} process(es) killed${(ev.oom_kill ?? 0) > 0 ? '  << OOM-KILLED' : ''}`]);
  const cs = s.cpu?.stat ?? {};
  const q = s.cpu?.max;
  const quota = q ? (q.quota === 'max' ? 'unlimited' : `${((q.quota / q.period) * 100).toFixed(0)}% of a CPU`) : '-';
  rows.push(['cpu', `${((cs.usage_usec ?? 0) / 1e6).toFixed(2)} s used, limit ${quota}, weight ${s.cpu?.weight ?? '-'}`]);
  rows.push(['throttled', `${cs.nr_throttled ?? 0} of ${cs.nr_periods ?? 0} periods, ${((cs.throttled_usec ?? 0) / 1e6).toFixed(2)} s`]);
  rows.push(['pids', `${s.pids?.current ?? '-'} now, limit ${limit(s.pids?.max, String)}`]);
  const io = s.io?.stat ?? [];
  rows.push(['io', io.length ? io.map((d) => `${d.major}:${d.minor} read ${bytes(d.rbytes)} write ${bytes(d.wbytes)}`).join('; ') : '-']);
  rows.push(['pressure', `cpu ${psi(s.cpu?.pressure)} | memory ${psi(mem?.pressure)} | io ${psi(s.io?.pressure)}`]);
  return [`container ${id}`, ...rows.map(([k, v]) => `  ${k.padEnd(10)} ${v}`)].join('\n') + '\n';
}

export function stats(ctx: RuntimeContext, id: string): string {
  const { m, rel } = managerFor(ctx, id);
  return statsText(id, m.stats(rel));
}
