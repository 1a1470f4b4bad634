// Statistics on a hybrid host: v2 completed from v1 (v1-stats.ts), and the `stats` view
// derived from the object `events --stats` prints (no second reading of the same figure).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runcStatsJson, toRuncStats, UINT64_MAX, type CgroupStats } from '../../../src/cgroups/controllers/stats.js';
import { mergeStats, parseBlkioRecursive, parseV1Limit, readContainerStats, readV1Stats } from '../../../src/cgroups/v1-stats.js';
import { statsText } from '../../../src/cli/oci/stats.js';
import { tempDir } from '../../helpers/tmp-dir.js';

const PSI = 'some avg10=0.50 avg60=0.10 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';

function dir(files: Record<string, string>): string {
  const d = tempDir('v1stats-');
  mkdirSync(d, { recursive: true });
  for (const [k, v] of Object.entries(files)) writeFileSync(join(d, k), v);
  return d;
}

/** A hybrid container: v2 has core files only (cpu.stat usage, PSI, cgroup.procs). */
const v2 = () =>
  dir({
    'cpu.stat': 'usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\n',
    'cpu.pressure': PSI,
    'memory.pressure': PSI,
    'io.pressure': PSI,
    'cgroup.procs': '10\n11\n',
  });
const memory = () =>
  dir({
    'memory.usage_in_bytes': '872448\n',
    'memory.max_usage_in_bytes': '1200128\n',
    'memory.limit_in_bytes': '9223372036854771712\n',
    'memory.stat': 'cache 4096\nrss 700000\nhierarchical_memory_limit 9223372036854771712\n',
    'memory.failcnt': '0\n',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    'memory.memsw.usage_in_bytes': '900000\n',
    'memory.memsw.limit_in_bytes': '9223372036854771712\n',
  });
const cpu = () =>
  dir({
    'cpu.stat': 'nr_periods 7\nnr_throttled 2\nthrottled_time 3000000\nnr_bursts 0\nburst_time 0\n',
    'cpu.cfs_quota_us': '-1\n',
    'cpu.cfs_period_us': '100000\n',
    'cpu.shares': '1024\n',
  });
const cpuacct = () => dir({ 'cpuacct.usage': '9000000\n', 'cpuacct.usage_user': '6000000\n', 'cpuacct.usage_sys': '3000000\n' });
const pids = () => dir({ 'pids.current': '3\n', 'pids.max': 'max\n' });
const blkio = () =>
  dir({
    'blkio.throttle.io_service_bytes_recursive': '8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n',
    'blkio.throttle.io_serviced_recursive': '8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n',
  });

describe('v1 parsers', () => {
  it('reads the v1 "no limit" (PAGE_COUNTER_MAX pages) as max', () => {
    expect(parseV1Limit('9223372036854771712\n')).toBe('max');
    expect(parseV1Limit('33554432\n')).toBe(33554432);
    expect(() => parseV1Limit('-1')).toThrow(/not an unsigned integer/);
  });
  it('parses blkio recursive tables per device', () => {
    expect([...parseBlkioRecursive('8:0 Read 1\n8:0 Write 2\n8:16 Read 5\nTotal 8\n')]).toEqual([
      ['8:0', { Read: 1, Write: 2, Discard: 0 }],
      ['8:16', { Read: 5, Write: 0, Discard: 0 }],
    ]);
    expect(() => parseBlkioRecursive('sda Read 1\n')).toThrow(/bad line/);
  });
});

describe('readContainerStats on a hybrid host', () => {
  const v1 = () => [memory(), cpu(), cpuacct(), pids(), blkio()];

  it('takes memory, pids, io and throttling from v1, cpu time and pressure from v2', () => {
    const s = readContainerStats(v2(), v1());
    expect(s.memory).toMatchObject({
      current: 872448,
      peak: 1200128,
      max: 'max',
      events: { max: 0, oom_kill: 2 },
      swapCurrent: 900000 - 872448,
      swapMax: 'max',
    });
    expect(s.memory?.stat?.['hierarchical_memory_limit']).toBe(9223372036854771712n);
    expect(s.memory?.pressure?.some?.avg10).toBe(0.5);
    // cpu.stat key by key: v2's usage (core, always there) wins over cpuacct.
    expect(s.cpu?.stat).toEqual({ usage_usec: 5000, user_usec: 3000, system_usec: 2000, nr_periods: 7, nr_throttled: 2, throttled_usec: 3000 });
    expect(s.cpu?.max).toEqual({ quota: 'max', period: 100000 });
    expect(s.cpu?.weight).toBe(100);
    expect(s.pids).toEqual({ current: 3, max: 'max', procs: 2 });
    expect(s.io?.stat).toEqual([{ major: 8, minor: 0, rbytes: 4096, wbytes: 8192, rios: 1, wios: 2, dbytes: 0, dios: 0 }]);
    expect(s.io?.pressure).toBeDefined();
  });

  it('prints what runc prints on v1: usage, memory+swap, cache, exact raw values past 2^53', () => {
    const r = toRuncStats(readContainerStats(v2(), v1()));
    expect(r.memory.usage).toEqual({ limit: UINT64_MAX, usage: 872448, max: 1200128, failcnt: 0 });
    expect(r.memory.swap).toEqual({ limit: UINT64_MAX, usage: 900000, failcnt: 0 });
    expect(r.memory.cache).toBe(4096);
    expect(runcStatsJson(r)).toContain('"hierarchical_memory_limit":9223372036854771712');
    expect(r.pids).toEqual({ current: 3 });
    expect(r.cpu.throttling).toEqual({ periods: 7, throttledPeriods: 2, throttledTime: 3000000 });
  });

  it('v2 wins where it has the controller; without v1 dirs nothing changes', () => {
    const withMem: CgroupStats = { memory: { current: 5, max: 100 } };
    expect(mergeStats(withMem, readV1Stats([memory()])).memory).toMatchObject({ current: 5, max: 100 });
    const d = v2();
    expect(readContainerStats(d, [])).toEqual(readContainerStats(d));
  });
});

describe('stats view = the events --stats object', () => {
  /** The rows of the view, by name. */
  const rows = (text: string) =>
    Object.fromEntries(
      text
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => [l.trim().split(/\s+/)[0]!, l.trim().replace(/^\S+\s+/, '')]),
    );

  it('shows the pids the JSON shows, also without a pids controller (cgroup.procs counted)', () => {
    // The bug: the view read pids.current (absent in a hybrid v2 cgroup) and said "-", while
    // events --stats counted cgroup.procs and said 1.
    const s = readContainerStats(dir({ 'cgroup.procs': '42\n' }));
    expect(toRuncStats(s).pids.current).toBe(1);
    expect(rows(statsText('c', s))['pids']).toBe('1 now, limit -');
  });

  it('every figure of the view is the one in the JSON', () => {
    const s = readContainerStats(v2(), [memory(), cpu(), cpuacct(), pids(), blkio()]);
    const r = toRuncStats(s);
    const v = rows(statsText('c', s, r));
    expect(v['memory']).toBe('852.0 KiB now, 1.1 MiB peak, limit unlimited');
    expect(Number(r.memory.usage.usage) / 1024).toBe(852);
    expect(v['pids']).toBe(`${r.pids.current} now, limit unlimited`);
    expect(v['cpu']).toBe(`${(Number(r.cpu.usage.total) / 1e9).toFixed(2)} s used, limit unlimited, weight 100`);
    expect(v['throttled']).toBe('2 of 7 periods, 0.00 s');
    expect(v['io']).toBe('8:0 read 4.0 KiB write 8.0 KiB');
    expect(v['oom']).toBe('0 times at the limit, 2 process(es) killed  << OOM-KILLED');
  });

  it('keeps the v2 view: limits, OOM kills', () => {
    const s: CgroupStats = { memory: { current: 2 * 1048576, max: 32 * 1048576, events: { oom: 1, oom_kill: 1 } }, pids: { current: 4, max: 10 } };
    const v = rows(statsText('c', s));
    expect(v['memory']).toBe('2.0 MiB now, - peak, limit 32.0 MiB');
    expect(v['pids']).toBe('4 now, limit 10');
    expect(v['oom']).toContain('OOM-KILLED');
  });
});
