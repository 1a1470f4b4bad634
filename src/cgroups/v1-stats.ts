import { join } from 'node:path';
import { convertSharesToWeight } from './controllers/cpu.js';
import {
  parseFlatKeyed,
  parseLimit,
  parseUintFile,
  readStats,
  type CgroupStats,
  type CpuStats,
  type FlatKeyed,
  type IoDeviceStat,
  type Limit,
  type MemoryStats,
  type PidsStats,
  put,
  readText,
} from './controllers/stats.js';
import { TsrunError } from '../util/errors.js';

/**
 * A v1 byte limit. "No limit" is PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages,
 * past 2^53): anything from 2^62 up is "max".
 */
export function parseV1Limit(text: string, file = 'file'): Limit {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new TsrunError('ERR_CGROUP', `parse ${file}: not an unsigned integer: ${JSON.stringify(t)}`, { path: file });
  return BigInt(t) >= 1n << 62n ? 'max' : Number(t);
}

/** A flat-keyed file whose values may pass 2^53 (v1 memory.stat): those stay exact, as bigints. */
export function parseFlatKeyedExact(text: string, file = 'file'): Record<string, number | bigint> {
  const out: Record<string, number | bigint> = {};
  for (const line of text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    const m = /^(\S+)\s+(\d+)$/.exec(line);
    if (!m) throw new TsrunError('ERR_CGROUP', `parse ${file}: not "key value": ${JSON.stringify(line)}`, { path: file });
    const n = Number(m[2]);
    out[m[1]!] = Number.isSafeInteger(n) ? n : BigInt(m[2]!);
  }
  return out;
}

/** blkio.*_recursive: "MAJ:MIN Read|Write|Sync|Async|Discard|Total N" lines, then "Total N". */
export function parseBlkioRecursive(text: string, file = 'file'): Map<string, { Read: number; Write: number; Discard: number }> {
  const out = new Map<string, { Read: number; Write: number; Discard: number }>();
  for (const line of text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    const f = line.split(/\s+/);
    if (f.length === 2 && f[0] === 'Total') continue;
    const m = f.length === 3 ? /^(\d+):(\d+)$/.exec(f[0]!) : null;
    if (!m || !/^\d+$/.test(f[2]!)) throw new TsrunError('ERR_CGROUP', `parse ${file}: bad line ${JSON.stringify(line)}`, { path: file });
    const op = f[1]!;
    if (op !== 'Read' && op !== 'Write' && op !== 'Discard') continue;
    const key = `${m[1]}:${m[2]}`;
    const d = out.get(key) ?? { Read: 0, Write: 0, Discard: 0 };
    d[op] = Number(f[2]);
    out.set(key, d);
  }
  return out;
}

/** The statistics of a container's v1 directories (each file is looked for in every one). */
export function readV1Stats(dirs: string[]): CgroupStats {
  const read = <V>(file: string, parse: (text: string, file: string) => V): V | undefined => {
    for (const d of dirs) {
      const t = readText(d, file);
      if (t !== undefined) return parse(t, join(d, file));
    }
    return undefined;
  };

  const memory: MemoryStats = {};
  put(memory, 'current', read('memory.usage_in_bytes', parseUintFile));
  put(memory, 'peak', read('memory.max_usage_in_bytes', parseUintFile));
  put(memory, 'max', read('memory.limit_in_bytes', parseV1Limit));
  put(memory, 'stat', read('memory.stat', parseFlatKeyedExact));
  const events: FlatKeyed = {};
  put(events, 'max', read('memory.failcnt', parseUintFile));
  put(events, 'oom_kill', read('memory.oom_control', parseFlatKeyed)?.['oom_kill']);
  if (Object.keys(events).length) memory.events = events;
  // memsw is memory+swap; CgroupStats holds swap alone, as v2 does.
  const memsw = read('memory.memsw.usage_in_bytes', parseUintFile);
  if (memsw !== undefined && memory.current !== undefined) memory.swapCurrent = Math.max(0, memsw - memory.current);
  const memswMax = read('memory.memsw.limit_in_bytes', parseV1Limit);
  if (memswMax !== undefined && memory.max !== undefined) {
    memory.swapMax = memswMax === 'max' || memory.max === 'max' ? 'max' : Math.max(0, memswMax - memory.max);
  }

  const cpu: CpuStats = {};
  const stat: FlatKeyed = {};
  const usage = read('cpuacct.usage', parseUintFile);
  if (usage !== undefined) stat['usage_usec'] = Math.floor(usage / 1000);
  put(stat, 'user_usec', ((v) => (v === undefined ? undefined : Math.floor(v / 1000)))(read('cpuacct.usage_user', parseUintFile)));
  put(stat, 'system_usec', ((v) => (v === undefined ? undefined : Math.floor(v / 1000)))(read('cpuacct.usage_sys', parseUintFile)));
  const cs = read('cpu.stat', parseFlatKeyed);
  if (cs && 'throttled_time' in cs) {
    put(stat, 'nr_periods', cs['nr_periods']);
    put(stat, 'nr_throttled', cs['nr_throttled']);
    stat['throttled_usec'] = Math.floor(cs['throttled_time']! / 1000);
  }
  if (Object.keys(stat).length) cpu.stat = stat;
  const quota = read('cpu.cfs_quota_us', (t) => Number(t.trim()));
  const period = read('cpu.cfs_period_us', parseUintFile);
  if (quota !== undefined && period !== undefined && Number.isFinite(quota)) cpu.max = { quota: quota < 0 ? 'max' : quota, period };
  const shares = read('cpu.shares', parseUintFile);
  if (shares !== undefined) cpu.weight = convertSharesToWeight(shares);

  const pids: PidsStats = {};
  put(pids, 'current', read('pids.current', parseUintFile));
  put(pids, 'max', read('pids.max', parseLimit));

  const bytes = read('blkio.throttle.io_service_bytes_recursive', parseBlkioRecursive) ?? read('blkio.io_service_bytes_recursive', parseBlkioRecursive);
  const ios = read('blkio.throttle.io_serviced_recursive', parseBlkioRecursive) ?? read('blkio.io_serviced_recursive', parseBlkioRecursive);
  const io: IoDeviceStat[] = [];
  for (const key of [...new Set([...(bytes?.keys() ?? []), ...(ios?.keys() ?? [])])].sort()) {
    const [major, minor] = key.split(':').map(Number) as [number, number];
    const b = bytes?.get(key);
    const n = ios?.get(key);
    io.push({
      major,
      minor,
      rbytes: b?.Read ?? 0,
      wbytes: b?.Write ?? 0,
      rios: n?.Read ?? 0,
      wios: n?.Write ?? 0,
      dbytes: b?.Discard ?? 0,
      dios: n?.Discard ?? 0,
    });
  }

  const out: CgroupStats = {};
  if (Object.keys(memory).length) out.memory = memory;
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (Object.keys(pids).length) out.pids = pids;
  if (bytes || ios) out.io = { stat: io };
  return out;
}

/** v2 statistics with their gaps filled from v1: field by field, v2 first (flat files key by key). */
export function mergeStats(v2: CgroupStats, v1: CgroupStats): CgroupStats {
  const out: CgroupStats = { ...v2 };
  if (v1.memory) {
    const m = { ...v1.memory, ...v2.memory };
    if (v1.memory.events || v2.memory?.events) m.events = { ...v1.memory.events, ...v2.memory?.events };
    out.memory = m;
  }
  if (v1.cpu) {
    const c = { ...v1.cpu, ...v2.cpu };
    if (v1.cpu.stat || v2.cpu?.stat) c.stat = { ...v1.cpu.stat, ...v2.cpu?.stat };
    out.cpu = c;
  }
  if (v1.pids) out.pids = { ...v1.pids, ...v2.pids };
  if (v1.io) out.io = { ...v1.io, ...v2.io };
  return out;
}

/** A container's statistics: its v2 cgroup directory, completed from its v1 directories. */
export function readContainerStats(v2Dir: string, v1Dirs: string[] = []): CgroupStats {
  const v2 = readStats(v2Dir);
  return v1Dirs.length ? mergeStats(v2, readV1Stats(v1Dirs)) : v2;
}
