// cgroup v2 statistics: the reader (the only I/O in this directory, against a directory it
// is given) and the conversion to what `runc events --stats` prints. Parsers are pure.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno, TsrunError, wrap } from '../../util/errors.js';

/** A limit file's value: bytes/counts, or "max" for none. */
export type Limit = number | 'max';
/** A flat-keyed file ("key value" per line), e.g. memory.stat, cpu.stat, memory.events. */
export type FlatKeyed = Record<string, number>;

export interface PsiData {
  avg10: number;
  avg60: number;
  avg300: number;
  total: number;
}
export interface Psi {
  some?: PsiData;
  full?: PsiData;
}

export interface IoDeviceStat {
  major: number;
  minor: number;
  rbytes: number;
  wbytes: number;
  rios: number;
  wios: number;
  dbytes: number;
  dios: number;
}

export interface MemoryStats {
  current?: number;
  peak?: number;
  max?: Limit;
  /**
   * memory.stat: anon, file, kernel, kernel_stack, pagetables, sock, shmem, file_mapped, … (bytes
   * and event counts). From cgroup v1 (v1-stats.ts) its keys (cache, rss, …) and, past 2^53
   * (hierarchical_memory_limit when unlimited), exact bigints.
   */
  stat?: Record<string, number | bigint>;
  /** memory.events: low, high, max, oom, oom_kill, oom_group_kill. */
  events?: FlatKeyed;
  swapCurrent?: number;
  swapMax?: Limit;
  swapPeak?: number;
  pressure?: Psi;
}
export interface CpuStats {
  /** cpu.stat: usage_usec, user_usec, system_usec, nr_periods, nr_throttled, throttled_usec, … */
  stat?: FlatKeyed;
  max?: { quota: Limit; period: number };
  weight?: number;
  pressure?: Psi;
}
export interface PidsStats {
  current?: number;
  max?: Limit;
  /** Lines of cgroup.procs, read only when pids.current is missing (no pids controller), as runc. */
  procs?: number;
}
export interface IoStats {
  stat?: IoDeviceStat[];
  pressure?: Psi;
}
export interface HugetlbStats {
  current?: number;
  max?: Limit;
  /** hugetlb.<size>.events: max (allocations that failed on the limit). */
  events?: FlatKeyed;
}

/** Whatever the cgroup exposes; a file that does not exist leaves its field (or section) out. */
export interface CgroupStats {
  memory?: MemoryStats;
  cpu?: CpuStats;
  pids?: PidsStats;
  io?: IoStats;
  /** By page size as in the file names: "2MB", "1GB". */
  hugetlb?: Record<string, HugetlbStats>;
}

function parseError(file: string, detail: string): TsrunError {
  return new TsrunError('ERR_CGROUP', `parse ${file}: ${detail}`, { path: file });
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function uint(text: string, file: string): number {
  if (!/^\d+$/.test(text)) throw parseError(file, `not an unsigned integer: ${JSON.stringify(text)}`);
  return Number(text);
}

export function parseUintFile(text: string, file = 'file'): number {
  return uint(text.trim(), file);
}

export function parseLimit(text: string, file = 'file'): Limit {
  const t = text.trim();
  return t === 'max' ? 'max' : uint(t, file);
}

export function parseFlatKeyed(text: string, file = 'file'): FlatKeyed {
  const out: FlatKeyed = {};
  for (const line of lines(text)) {
    const m = /^(\S+)\s+(\d+)$/.exec(line);
    if (!m) throw parseError(file, `not "key value": ${JSON.stringify(line)}`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** cpu.pressure, memory.pressure, io.pressure: "some|full avg10=… avg60=… avg300=… total=…". */
export function parsePsi(text: string, file = 'file'): Psi {
  const out: Psi = {};
  for (const line of lines(text)) {
    const [kind, ...fields] = line.split(/\s+/);
    if (kind !== 'some' && kind !== 'full') throw parseError(file, `unknown line ${JSON.stringify(line)}`);
    const d: PsiData = { avg10: 0, avg60: 0, avg300: 0, total: 0 };
    for (const f of fields) {
      const m = /^(avg10|avg60|avg300|total)=(\d+(?:\.\d+)?)$/.exec(f);
      if (!m) throw parseError(file, `bad field ${JSON.stringify(f)}`);
      d[m[1] as keyof PsiData] = Number(m[2]);
    }
    out[kind] = d;
  }
  return out;
}

/** io.stat: "MAJ:MIN rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…" (other keys ignored). */
export function parseIoStat(text: string, file = 'file'): IoDeviceStat[] {
  const out: IoDeviceStat[] = [];
  for (const line of lines(text)) {
    const [dev, ...fields] = line.split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) throw parseError(file, `no device in ${JSON.stringify(line)}`);
    const d: IoDeviceStat = { major: Number(m[1]), minor: Number(m[2]), rbytes: 0, wbytes: 0, rios: 0, wios: 0, dbytes: 0, dios: 0 };
    for (const f of fields) {
      const kv = /^([a-z_.]+)=(\S+)$/.exec(f);
      if (!kv) throw parseError(file, `bad field ${JSON.stringify(f)}`);
      const key = kv[1]!;
      if (key === 'rbytes' || key === 'wbytes' || key === 'rios' || key === 'wios' || key === 'dbytes' || key === 'dios') d[key] = uint(kv[2]!, file);
    }
    out.push(d);
  }
  return out;
}

export function parseCpuMaxStat(text: string, file = 'file'): { quota: Limit; period: number } {
  const m = /^(max|\d+)\s+(\d+)$/.exec(text.trim());
  if (!m) throw parseError(file, `not "QUOTA PERIOD": ${JSON.stringify(text.trim())}`);
  return { quota: m[1] === 'max' ? 'max' : Number(m[1]), period: Number(m[2]) };
}

/** A file's text, or undefined when it does not exist (or the kernel will not read it). */
export function readText(dir: string, file: string): string | undefined {
  const path = join(dir, file);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTSUP') || isErrno(e, 'EOPNOTSUPP') || isErrno(e, 'ENODEV')) return undefined;
    throw wrap(e, `read ${path}`);
  }
}

/** Set o[k] only when there is a value (stats objects omit what could not be read). */
export function put<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

function nonEmpty<T extends object>(o: T): T | undefined {
  return Object.keys(o).length ? o : undefined;
}

/** Read a cgroup v2 directory's statistics. Only reads files inside `dir`. */
export function readStats(dir: string): CgroupStats {
  const read = <V>(file: string, parse: (text: string, file: string) => V): V | undefined => {
    const t = readText(dir, file);
    return t === undefined ? undefined : parse(t, join(dir, file));
  };

  const memory: MemoryStats = {};
  put(memory, 'current', read('memory.current', parseUintFile));
  put(memory, 'peak', read('memory.peak', parseUintFile));
  put(memory, 'max', read('memory.max', parseLimit));
  put(memory, 'stat', read('memory.stat', parseFlatKeyed));
  put(memory, 'events', read('memory.events', parseFlatKeyed));
  put(memory, 'swapCurrent', read('memory.swap.current', parseUintFile));
  put(memory, 'swapMax', read('memory.swap.max', parseLimit));
  put(memory, 'swapPeak', read('memory.swap.peak', parseUintFile));
  put(memory, 'pressure', read('memory.pressure', parsePsi));

  const cpu: CpuStats = {};
  put(cpu, 'stat', read('cpu.stat', parseFlatKeyed));
  put(cpu, 'max', read('cpu.max', parseCpuMaxStat));
  put(cpu, 'weight', read('cpu.weight', parseUintFile));
  put(cpu, 'pressure', read('cpu.pressure', parsePsi));

  const pids: PidsStats = {};
  put(pids, 'current', read('pids.current', parseUintFile));
  put(pids, 'max', read('pids.max', parseLimit));
  if (pids.current === undefined)
    put(
      pids,
      'procs',
      read('cgroup.procs', (t) => lines(t).length),
    );

  const io: IoStats = {};
  put(io, 'stat', read('io.stat', parseIoStat));
  put(io, 'pressure', read('io.pressure', parsePsi));

  const hugetlb: Record<string, HugetlbStats> = {};
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw wrap(e, `read ${dir}`);
  }
  for (const name of names.sort()) {
    const m = /^hugetlb\.(\d+[KMG]B)\.(current|max|events)$/.exec(name);
    if (!m) continue;
    const h = (hugetlb[m[1]!] ??= {});
    if (m[2] === 'current') put(h, 'current', read(name, parseUintFile));
    else if (m[2] === 'max') put(h, 'max', read(name, parseLimit));
    else put(h, 'events', read(name, parseFlatKeyed));
  }

  const out: CgroupStats = {};
  put(out, 'memory', nonEmpty(memory));
  put(out, 'cpu', nonEmpty(cpu));
  put(out, 'pids', nonEmpty(pids));
  put(out, 'io', nonEmpty(io));
  put(out, 'hugetlb', nonEmpty(hugetlb));
  return out;
}

// ---------------------------------------------------------------------------------------
// runc events --stats: the `data` of {"type":"stats","id":…,"data":…}, runc's types.Stats
// (types/events.go) as runc fills it on cgroup v2 (libcontainer/cgroups/fs2 + events.go's
// convertLibcontainerStats), with Go's encoding/json rules: `omitempty` fields are left out
// when zero, map keys are sorted, nil slices are null.

/** Go's uint64. A bigint where a number would lose digits (runc's "max" is 2^64-1). */
export type U64 = number | bigint;
export const UINT64_MAX = 18446744073709551615n;

export interface RuncPsiData {
  avg10: number;
  avg60: number;
  avg300: number;
  total: U64;
}
export interface RuncPsi {
  some: RuncPsiData;
  full: RuncPsiData;
}
export interface RuncMemoryEntry {
  limit: U64;
  usage?: U64;
  max?: U64;
  failcnt: U64;
}
export interface RuncBlkioEntry {
  major?: U64;
  minor?: U64;
  op?: string;
  value?: U64;
}
export interface RuncStats {
  cpu: {
    usage: { total?: U64; percpu?: U64[]; percpu_kernel?: U64[]; percpu_user?: U64[]; kernel: U64; user: U64 };
    throttling: { periods?: U64; throttledPeriods?: U64; throttledTime?: U64 };
    psi?: RuncPsi;
  };
  cpuset: {
    cpus?: number[];
    cpu_exclusive: U64;
    mems?: number[];
    mem_hardwall: U64;
    mem_exclusive: U64;
    memory_migrate: U64;
    memory_spread_page: U64;
    memory_spread_slab: U64;
    memory_pressure: U64;
    sched_load_balance: U64;
    sched_relax_domain_level: number;
  };
  memory: {
    cache?: U64;
    usage: RuncMemoryEntry;
    swap: RuncMemoryEntry;
    kernel: RuncMemoryEntry;
    kernelTCP: RuncMemoryEntry;
    raw?: Record<string, U64>;
    psi?: RuncPsi;
  };
  pids: { current?: U64; limit?: U64 };
  blkio: {
    ioServiceBytesRecursive?: RuncBlkioEntry[];
    ioServicedRecursive?: RuncBlkioEntry[];
    psi?: RuncPsi;
  };
  hugetlb: Record<string, { usage?: U64; max?: U64; failcnt: U64 }>;
  intel_rdt: Record<string, never>;
  network_interfaces: null;
}

function big(v: U64): bigint {
  return typeof v === 'bigint' ? v : BigInt(v);
}
function norm(v: bigint): U64 {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
/** usec → nsec, runc's `v * 1000`. */
function ns(usec: number | undefined): U64 {
  return usec === undefined ? 0 : norm(big(usec) * 1000n);
}
/** A limit as runc reads it: "max" is MaxUint64. */
function lim(v: Limit | undefined): U64 {
  return v === undefined ? 0 : v === 'max' ? UINT64_MAX : v;
}
/** Saturating add (runc wraps around when memory.max is "max" and swap is limited; we do not). */
function add(a: U64, b: U64): U64 {
  const s = big(a) + big(b);
  return norm(s > UINT64_MAX ? UINT64_MAX : s);
}
const isZero = (v: U64 | undefined): boolean => v === undefined || v === 0 || v === 0n;
/** The object with its `omitempty` keys that are zero removed. */
function omit<T extends object>(o: T, keys: ReadonlyArray<keyof T>): T {
  for (const k of keys) if (isZero(o[k] as U64 | undefined)) delete o[k];
  return o;
}
function psi(p: Psi | undefined): RuncPsi | undefined {
  if (!p) return undefined;
  const z: PsiData = { avg10: 0, avg60: 0, avg300: 0, total: 0 };
  return { some: { ...(p.some ?? z) }, full: { ...(p.full ?? z) } };
}
function sortedRecord<V, W>(o: Record<string, V>, f: (v: V) => W): Record<string, W> {
  const out: Record<string, W> = {};
  for (const k of Object.keys(o).sort()) out[k] = f(o[k]!);
  return out;
}
function entry(limit: U64, usage: U64, max: U64): RuncMemoryEntry {
  return omit({ limit, usage, max, failcnt: 0 }, ['usage', 'max']);
}

export function toRuncStats(s: CgroupStats): RuncStats {
  const cs = s.cpu?.stat ?? {};
  const cpu: RuncStats['cpu'] = {
    usage: omit({ total: ns(cs['usage_usec']), kernel: ns(cs['system_usec']), user: ns(cs['user_usec']) }, ['total']),
    throttling: omit({ periods: cs['nr_periods'] ?? 0, throttledPeriods: cs['nr_throttled'] ?? 0, throttledTime: ns(cs['throttled_usec']) }, [
      'periods',
      'throttledPeriods',
      'throttledTime',
    ]),
  };
  put(cpu, 'psi', psi(s.cpu?.pressure));

  const m = s.memory ?? {};
  const memUsage = m.current ?? 0;
  const memLimit = lim(m.max);
  // runc reports swap the v1 way, memory+swap; without swap accounting (no memory.swap.*)
  // that is just the memory figures. "max" plus anything stays MaxUint64 (saturating add).
  const swapLimit = add(lim(m.swapMax), memLimit);
  const memory: RuncStats['memory'] = omit(
    {
      cache: m.stat?.['file'] ?? m.stat?.['cache'] ?? 0, // v2 "file"; v1 (hybrid hosts, v1-stats.ts) "cache", as runc reads it there
      usage: entry(memLimit, memUsage, m.peak ?? 0),
      swap: entry(swapLimit, add(m.swapCurrent ?? 0, memUsage), m.swapPeak ?? 0),
      kernel: entry(0, 0, 0),
      kernelTCP: entry(0, 0, 0),
    },
    ['cache'],
  );
  if (m.stat && Object.keys(m.stat).length) memory.raw = sortedRecord(m.stat, (v) => v);
  put(memory, 'psi', psi(m.pressure));

  const p = s.pids ?? {};
  const pids = omit({ current: p.current ?? p.procs ?? 0, limit: p.max === 'max' || p.max === undefined ? 0 : p.max }, ['current', 'limit']);

  const blkio: RuncStats['blkio'] = {};
  const bytes: RuncBlkioEntry[] = [];
  const ios: RuncBlkioEntry[] = [];
  const be = (d: IoDeviceStat, op: string, value: number) => omit<RuncBlkioEntry>({ major: d.major, minor: d.minor, op, value }, ['major', 'minor', 'value']);
  for (const d of s.io?.stat ?? []) {
    bytes.push(be(d, 'Read', d.rbytes), be(d, 'Write', d.wbytes));
    ios.push(be(d, 'Read', d.rios), be(d, 'Write', d.wios));
  }
  if (bytes.length) blkio.ioServiceBytesRecursive = bytes;
  if (ios.length) blkio.ioServicedRecursive = ios;
  put(blkio, 'psi', psi(s.io?.pressure));

  const hugetlb = sortedRecord(s.hugetlb ?? {}, (h) => omit({ usage: h.current ?? 0, failcnt: h.events?.['max'] ?? 0 }, ['usage']));

  return {
    cpu,
    // runc has no cpuset statistics on cgroup v2; the struct's non-omitempty zeros remain.
    cpuset: {
      cpu_exclusive: 0,
      mem_hardwall: 0,
      mem_exclusive: 0,
      memory_migrate: 0,
      memory_spread_page: 0,
      memory_spread_slab: 0,
      memory_pressure: 0,
      sched_load_balance: 0,
      sched_relax_domain_level: 0,
    },
    memory,
    pids,
    blkio,
    hugetlb,
    intel_rdt: {},
    network_interfaces: null,
  };
}

/** JSON as Go would print it: bigints (values past 2^53, MaxUint64) as plain digits. */
export function runcStatsJson(data: RuncStats): string {
  return JSON.stringify(data, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000u64:${v}` : v)).replace(/"\\u0000u64:(\d+)"/g, '$1');
}

/** One `runc events --stats` line (without the newline). */
export function runcStatsEventJson(id: string, data: RuncStats): string {
  return `{"type":"stats","id":${JSON.stringify(id)},"data":${runcStatsJson(data)}}`;
}
