import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  parseFlatKeyed,
  parseIoStat,
  parsePsi,
  readStats,
  runcStatsEventJson,
  runcStatsJson,
  toRuncStats,
  UINT64_MAX,
  type CgroupStats,
} from '../../../../src/cgroups/controllers/stats.js';
import { TsrunError } from '../../../../src/util/errors.js';
import { tempDir } from '../../../helpers/tmp-dir.js';

// memory.stat of a small container on Linux 6.8 (abridged only in the event counters).
const MEMORY_STAT = `anon 4218880
file 12288000
kernel 1306624
kernel_stack 114688
pagetables 253952
sec_pagetables 0
percpu 0
sock 0
vmalloc 0
shmem 0
zswap 0
zswapped 0
file_mapped 6189056
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 4206592
active_anon 12288
inactive_file 7057408
active_file 5230592
unevictable 0
slab_reclaimable 507552
slab_unreclaimable 333288
slab 840840
workingset_refault_anon 0
workingset_refault_file 0
pgfault 5217
pgmajfault 104
`;
const CPU_STAT = `usage_usec 1843210
user_usec 1203344
system_usec 639866
core_sched.force_idle_usec 0
nr_periods 412
nr_throttled 37
throttled_usec 2912045
nr_bursts 0
burst_usec 0
`;
const IO_STAT = `8:0 rbytes=1519616 wbytes=4096 rios=73 wios=1 dbytes=0 dios=0
253:1 rbytes=204800 wbytes=0 rios=12 wios=0 dbytes=0 dios=0
`;
const PSI_IDLE = 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';
const PSI_CPU = 'some avg10=1.52 avg60=0.48 avg300=0.11 total=2049183\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';

function fixture(files: Record<string, string>): string {
  const d = tempDir('cgstats-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

const FULL = {
  'memory.current': '17547264\n',
  'memory.peak': '29110272\n',
  'memory.max': '536870912\n',
  'memory.stat': MEMORY_STAT,
  'memory.events': 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n',
  'memory.swap.current': '0\n',
  'memory.swap.max': 'max\n',
  'memory.swap.peak': '0\n',
  'memory.pressure': PSI_IDLE,
  'cpu.stat': CPU_STAT,
  'cpu.max': '50000 100000\n',
  'cpu.weight': '100\n',
  'cpu.pressure': PSI_CPU,
  'pids.current': '3\n',
  'pids.max': 'max\n',
  'io.stat': IO_STAT,
  'io.pressure': PSI_IDLE,
  'hugetlb.2MB.current': '0\n',
  'hugetlb.2MB.max': 'max\n',
  'hugetlb.2MB.events': 'max 0\n',
  'hugetlb.1GB.current': '1073741824\n',
  'hugetlb.1GB.max': '2147483648\n',
  'hugetlb.1GB.events': 'max 3\n',
  'cgroup.procs': '1\n7\n9\n',
};

describe('parsers', () => {
  it('parses flat-keyed files and refuses malformed lines', () => {
    expect(parseFlatKeyed('low 0\nhigh 3\n\n')).toEqual({ low: 0, high: 3 });
    expect(() => parseFlatKeyed('low zero\n', '/x/memory.events')).toThrow(/parse \/x\/memory\.events: not "key value": "low zero"/);
  });
  it('parses PSI lines', () => {
    expect(parsePsi(PSI_CPU)).toEqual({
      some: { avg10: 1.52, avg60: 0.48, avg300: 0.11, total: 2049183 },
      full: { avg10: 0, avg60: 0, avg300: 0, total: 0 },
    });
    expect(parsePsi('some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n')).toEqual({ some: { avg10: 0, avg60: 0, avg300: 0, total: 5 } });
    expect(() => parsePsi('most avg10=0.00\n')).toThrow(TsrunError);
  });
  it('parses io.stat per device, ignoring keys it does not know', () => {
    expect(parseIoStat('8:16 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=3 dios=4 cost.vrate=100.00\n')).toEqual([
      { major: 8, minor: 16, rbytes: 10, wbytes: 20, rios: 1, wios: 2, dbytes: 3, dios: 4 },
    ]);
    expect(() => parseIoStat('sda rbytes=1\n')).toThrow(/no device/);
  });
});

describe('readStats', () => {
  it('reads every known file of a cgroup directory', () => {
    const s = readStats(fixture(FULL));
    expect(s.memory).toEqual({
      current: 17547264,
      peak: 29110272,
      max: 536870912,
      stat: parseFlatKeyed(MEMORY_STAT),
      events: { low: 0, high: 0, max: 12, oom: 1, oom_kill: 1, oom_group_kill: 0 },
      swapCurrent: 0,
      swapMax: 'max',
      swapPeak: 0,
      pressure: parsePsi(PSI_IDLE),
    });
    expect(s.memory?.stat?.['anon']).toBe(4218880);
    expect(s.cpu).toEqual({ stat: parseFlatKeyed(CPU_STAT), max: { quota: 50000, period: 100000 }, weight: 100, pressure: parsePsi(PSI_CPU) });
    expect(s.cpu?.stat?.['throttled_usec']).toBe(2912045);
    expect(s.pids).toEqual({ current: 3, max: 'max' });
    expect(s.io?.stat).toEqual([
      { major: 8, minor: 0, rbytes: 1519616, wbytes: 4096, rios: 73, wios: 1, dbytes: 0, dios: 0 },
      { major: 253, minor: 1, rbytes: 204800, wbytes: 0, rios: 12, wios: 0, dbytes: 0, dios: 0 },
    ]);
    expect(s.hugetlb).toEqual({
      '1GB': { current: 1073741824, max: 2147483648, events: { max: 3 } },
      '2MB': { current: 0, max: 'max', events: { max: 0 } },
    });
  });
  it('leaves out what is missing, down to whole sections', () => {
    expect(readStats(fixture({}))).toEqual({});
    expect(readStats(join(tmpdir(), 'no-such-cgroup-dir-tsrun'))).toEqual({});
    expect(readStats(fixture({ 'cpu.stat': CPU_STAT, 'memory.max': 'max\n' }))).toEqual({ cpu: { stat: parseFlatKeyed(CPU_STAT) }, memory: { max: 'max' } });
  });
  it('counts cgroup.procs when there is no pids controller, as runc does', () => {
    expect(readStats(fixture({ 'cgroup.procs': '1\n42\n' })).pids).toEqual({ procs: 2 });
  });
  it('throws ERR_CGROUP on a file it cannot parse', () => {
    const d = fixture({ 'memory.current': 'lots\n' });
    expect(() => readStats(d)).toThrow(/parse .*memory\.current: not an unsigned integer: "lots"/);
  });
});

describe('toRuncStats', () => {
  const data = () => toRuncStats(readStats(fixture(FULL)));

  it('reports cpu time in nanoseconds and throttling as runc does', () => {
    expect(data().cpu).toEqual({
      usage: { total: 1843210000, kernel: 639866000, user: 1203344000 },
      throttling: { periods: 412, throttledPeriods: 37, throttledTime: 2912045000 },
      psi: parsePsi(PSI_CPU),
    });
  });
  it('reports memory v1-style: swap as memory+swap, "max" as MaxUint64, raw memory.stat', () => {
    const m = data().memory;
    expect(m.cache).toBe(12288000);
    expect(m.usage).toEqual({ limit: 536870912, usage: 17547264, max: 29110272, failcnt: 0 });
    expect(m.swap).toEqual({ limit: UINT64_MAX, usage: 17547264, failcnt: 0 });
    expect(m.kernel).toEqual({ limit: 0, failcnt: 0 });
    expect(m.kernelTCP).toEqual({ limit: 0, failcnt: 0 });
    expect(m.raw?.['file_mapped']).toBe(6189056);
    expect(Object.keys(m.raw ?? {})).toEqual(Object.keys(parseFlatKeyed(MEMORY_STAT)).sort());
    expect(m.psi).toEqual({ some: { avg10: 0, avg60: 0, avg300: 0, total: 0 }, full: { avg10: 0, avg60: 0, avg300: 0, total: 0 } });
  });
  it('adds a finite swap limit to the memory limit', () => {
    const m = toRuncStats({ memory: { current: 100, max: 1000, swapCurrent: 10, swapMax: 500 } }).memory;
    expect(m.swap).toEqual({ limit: 1500, usage: 110, failcnt: 0 });
    // No swap accounting: swap is memory alone.
    expect(toRuncStats({ memory: { current: 100, max: 1000 } }).memory.swap).toEqual({ limit: 1000, usage: 100, failcnt: 0 });
    // Unlimited memory, limited swap: saturates instead of wrapping around like runc.
    expect(toRuncStats({ memory: { max: 'max', swapMax: 5 } }).memory.swap.limit).toBe(UINT64_MAX);
  });
  it('maps io.stat to blkio Read/Write tables, leaving out zero fields (omitempty)', () => {
    const b = data().blkio;
    expect(b.ioServiceBytesRecursive).toEqual([
      { major: 8, op: 'Read', value: 1519616 },
      { major: 8, op: 'Write', value: 4096 },
      { major: 253, minor: 1, op: 'Read', value: 204800 },
      { major: 253, minor: 1, op: 'Write' },
    ]);
    expect(b.ioServicedRecursive).toEqual([
      { major: 8, op: 'Read', value: 73 },
      { major: 8, op: 'Write', value: 1 },
      { major: 253, minor: 1, op: 'Read', value: 12 },
      { major: 253, minor: 1, op: 'Write' },
    ]);
  });
  it('reports pids (limit 0 for "max"), hugetlb failcnt from events', () => {
    const d = data();
    expect(d.pids).toEqual({ current: 3 });
    expect(toRuncStats({ pids: { current: 5, max: 100 } }).pids).toEqual({ current: 5, limit: 100 });
    expect(toRuncStats({ pids: { procs: 2 } }).pids).toEqual({ current: 2 });
    expect(d.hugetlb).toEqual({ '1GB': { usage: 1073741824, failcnt: 3 }, '2MB': { failcnt: 0 } });
  });
  it('gives the zero shape for an empty cgroup', () => {
    expect(toRuncStats({})).toEqual({
      cpu: { usage: { kernel: 0, user: 0 }, throttling: {} },
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
      memory: { usage: { limit: 0, failcnt: 0 }, swap: { limit: 0, failcnt: 0 }, kernel: { limit: 0, failcnt: 0 }, kernelTCP: { limit: 0, failcnt: 0 } },
      pids: {},
      blkio: {},
      hugetlb: {},
      intel_rdt: {},
      network_interfaces: null,
    });
  });
  it('keeps nanoseconds past 2^53 exact as bigint', () => {
    const s: CgroupStats = { cpu: { stat: { usage_usec: 10_000_000_000_000, user_usec: 1 } } };
    const cpu = toRuncStats(s).cpu;
    expect(cpu.usage.total).toBe(10_000_000_000_000_000n);
    expect(cpu.usage.user).toBe(1000);
  });
});

describe('runc JSON', () => {
  it('prints bigints as plain digits, keys in Go struct order', () => {
    const json = runcStatsJson(toRuncStats(readStats(fixture(FULL))));
    expect(json).toContain('"swap":{"limit":18446744073709551615,"usage":17547264,"failcnt":0}');
    expect(json).toContain('"throttling":{"periods":412,"throttledPeriods":37,"throttledTime":2912045000}');
    expect(json).toContain('"hugetlb":{"1GB":{"usage":1073741824,"failcnt":3},"2MB":{"failcnt":0}}');
    expect(json.endsWith(',"intel_rdt":{},"network_interfaces":null}')).toBe(true);
    expect(Object.keys(JSON.parse(json) as object)).toEqual(['cpu', 'cpuset', 'memory', 'pids', 'blkio', 'hugetlb', 'intel_rdt', 'network_interfaces']);
    expect(runcStatsJson(toRuncStats({ cpu: { stat: { usage_usec: 10_000_000_000_000 } } }))).toContain(
      '"usage":{"total":10000000000000000,"kernel":0,"user":0}',
    );
  });
  it('wraps the data in a stats event', () => {
    const line = runcStatsEventJson('c"1', toRuncStats({}));
    expect(line.startsWith('{"type":"stats","id":"c\\"1","data":{"cpu":')).toBe(true);
    expect((JSON.parse(line) as { data: { pids: object } }).data.pids).toEqual({});
  });
});
