// `tsrun run IMAGE` resource limits at work, inside the VM of scripts/vm-run (pure cgroup v2,
// every controller): the flags reach the cgroup files (inspect .Limits reads them back, stats
// shows them), and each limit has its effect: a memory hog is OOM-killed and reported, a fork
// loop stops at the pids limit, a busy loop under --cpus is throttled.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupDirOf, type Engine, engineSkipReason, makeEngine, show, until } from '../integration/helpers/engine.js';

const inVm = process.env.TSRUN_VM === '1';
if (!inVm) console.log('tests/vm/engine-limits: skipped: run it with `npm run test:vm` (it needs the cgroup v2 VM)');
const skip = inVm ? engineSkipReason() : null;
if (skip) console.warn(`[engine-limits.test] SKIPPED: ${skip}`);

const MiB = 1024 * 1024;

/**
 * The engine helper's teardown looks for monitors with `pgrep -f`, which the VM's busybox does
 * not have (spawnSync then returns no stdout and the teardown throws). Where pgrep is missing,
 * put a minimal `pgrep -f PATTERN` (over /proc/PID/cmdline) first in PATH; returns its dir.
 */
function pgrepShim(): string | undefined {
  if (spawnSync('pgrep', ['-f', '^$'], { encoding: 'utf8' }).error === undefined) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'tsrun-pgrep-shim-'));
  const script = `#!/bin/sh
# pgrep -f PATTERN (extended regexp over the command line), as tsrun's test helpers use it
[ "$1" = -f ] && shift
rc=1
for d in /proc/[0-9]*; do
  p=\${d#/proc/}; [ "$p" = $$ ] && continue
  cmd=$({ tr '\\0' ' ' < "$d/cmdline"; } 2>/dev/null) || continue
  [ -n "$cmd" ] || continue
  if printf '%s\\n' "\${cmd% }" | grep -Eq -- "$1"; then echo "$p"; rc=0; fi
done
exit $rc
`;
  writeFileSync(path.join(dir, 'pgrep'), script, { mode: 0o755 });
  process.env.PATH = `${dir}:${process.env.PATH ?? ''}`;
  return dir;
}

interface StatsRow {
  ID: string;
  Name: string;
  CPUPerc: number;
  MemUsage: number;
  MemLimit: number | null;
  PIDs: number;
  PidsLimit: number | null;
  ThrottledPeriods: number;
  ThrottledUsec: number;
  OOMKills: number;
}

describe.skipIf(!inVm || !!skip)('engine limits in the cgroup v2 VM', () => {
  let e: Engine;

  const inspect = async (ref: string) => {
    const r = await e.tsrun(['inspect', ref]);
    expect(r.code, show(r)).toBe(0);
    return (JSON.parse(r.stdout) as any[])[0];
  };
  const stats = async (ref: string): Promise<StatsRow> => {
    const r = await e.tsrun(['stats', '--no-stream', '--format', 'json', ref]);
    expect(r.code, show(r)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    return JSON.parse(lines[0]!) as StatsRow;
  };
  const cgFile = (id: string, f: string) => {
    const dir = cgroupDirOf(e, id);
    expect(dir, `no cgroup dir for ${id}`).toBeDefined();
    return readFileSync(path.join(dir!, f), 'utf8').trim();
  };

  let shimDir: string | undefined;
  beforeAll(() => {
    shimDir = pgrepShim();
    e = makeEngine('tsrun-engine-limits');
  });
  afterAll(async () => {
    try {
      if (!e) return;
      const problems = await e.teardown();
      expect(problems, problems.join('\n')).toEqual([]);
    } finally {
      if (shimDir) {
        process.env.PATH = process.env
          .PATH!.split(':')
          .filter((p) => p !== shimDir)
          .join(':');
        rmSync(shimDir, { recursive: true, force: true });
      }
    }
  });

  it('--memory 64m --cpus 0.5 --pids-limit 50: in the cgroup files, in inspect .Limits and .HostConfig, in stats', async () => {
    // --network none: this suite is about cgroup v2 limits; the VM's kernel loads no bridge/veth/netfilter modules.
    const d = await e.tsrun([
      'run',
      '--network',
      'none',
      '-d',
      '--name',
      'lim',
      '--memory',
      '64m',
      '--cpus',
      '0.5',
      '--pids-limit',
      '50',
      'busybox',
      'sleep',
      '30',
    ]);
    expect(d.code, show(d)).toBe(0);
    const id = d.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);

    expect(cgFile(id, 'memory.max')).toBe(String(64 * MiB));
    expect(cgFile(id, 'cpu.max')).toBe('50000 100000');
    expect(cgFile(id, 'pids.max')).toBe('50');

    const i = await inspect('lim');
    expect(i.State.Running).toBe(true);
    expect(i.Limits).toMatchObject({ MemoryMax: 64 * MiB, CpuMax: '50000 100000', PidsMax: 50 });
    expect(i.HostConfig).toMatchObject({ Memory: 64 * MiB, NanoCpus: 500_000_000, PidsLimit: 50 });

    const s = await stats('lim');
    expect(s.ID).toBe(id.slice(0, 12));
    expect(s.Name).toBe('lim');
    expect(s.MemLimit).toBe(64 * MiB);
    expect(s.PidsLimit).toBe(50);
    expect(s.PIDs).toBeGreaterThanOrEqual(1);
    expect(s.MemUsage).toBeGreaterThan(0);
    expect(s.OOMKills).toBe(0);

    // the container sees its own limits through its cgroup namespace
    const x = await e.tsrun(['exec', 'lim', 'sh', '-c', 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max']);
    expect(x.code, show(x)).toBe(0);
    expect(x.stdout).toBe(`${64 * MiB}\n50000 100000\n50\n`);

    expect((await e.tsrun(['rm', '-f', 'lim'])).code).toBe(0);
  });

  it('--memory 32m: a memory hog is OOM-killed: exit 137, inspect .State.OOMKilled true', async () => {
    // pid 1 itself holds the memory (busybox `tail /dev/zero` seeks to the end of /dev/zero and
    // returns at once, and a hog in a child would leave pid 1 alive to exit by itself).
    const hog = 'x=$(head -c 104857600 /dev/zero | tr "\\0" a); echo survived';
    const r = await e.tsrun(['run', '--network', 'none', '--name', 'hog', '--memory', '32m', 'busybox', 'sh', '-c', hog], { timeoutMs: 180_000 });
    expect(r.stdout).not.toContain('survived');
    expect(r.code, show(r)).toBe(137);
    const i = await inspect('hog');
    expect(i.State.Status).toBe('exited');
    expect(i.State.ExitCode).toBe(137);
    expect(i.State.OOMKilled).toBe(true);
    expect(i.HostConfig.Memory).toBe(32 * MiB);
    expect((await e.tsrun(['rm', 'hog'])).code).toBe(0);

    // docker's rule: an OOM kill anywhere in the container counts, even when pid 1 survives it
    const child = await e.tsrun(
      [
        'run',
        '--network',
        'none',
        '--name',
        'hogchild',
        '--memory',
        '32m',
        'busybox',
        'sh',
        '-c',
        '(x=$(head -c 104857600 /dev/zero | tr "\\0" a)); echo "after=$?"',
      ],
      { timeoutMs: 180_000 },
    );
    expect(child.code, show(child)).toBe(0);
    expect(child.stdout).toBe('after=137\n');
    expect((await inspect('hogchild')).State.OOMKilled).toBe(true);
    expect((await e.tsrun(['rm', 'hogchild'])).code).toBe(0);

    // a container that exits by itself is not reported as OOM-killed
    const ok = await e.tsrun(['run', '--network', 'none', '--name', 'fine', '--memory', '32m', 'busybox', 'sh', '-c', 'exit 3']);
    expect(ok.code, show(ok)).toBe(3);
    expect((await inspect('fine')).State.OOMKilled).toBe(false);
    expect((await e.tsrun(['rm', 'fine'])).code).toBe(0);
  });

  it('--pids-limit 20: a fork loop stops at the limit ("can\'t fork"), pids.current stays <= 20', async () => {
    // The loop runs in a subshell: ash gives up a script at the first failed fork. After it only
    // builtins run (a fork would fail): read/echo print the cgroup's counters.
    const script =
      '(for i in $(seq 40); do sleep 30 & done); ' +
      'read cur < /sys/fs/cgroup/pids.current; read max < /sys/fs/cgroup/pids.max; read ev < /sys/fs/cgroup/pids.events; ' +
      'echo "current=$cur max=$max events=$ev"; kill -9 -1';
    const r = await e.tsrun(['run', '--network', 'none', '--rm', '--pids-limit', '20', 'busybox', 'sh', '-c', script], { timeoutMs: 120_000 });
    expect(r.stderr, show(r)).toMatch(/can't fork|Resource temporarily unavailable/);
    const m = /current=(\d+) max=(\d+) events=max (\d+)/.exec(r.stdout);
    expect(m, show(r)).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(20);
    expect(Number(m![1])).toBeGreaterThan(10);
    expect(m![2]).toBe('20');
    expect(Number(m![3])).toBeGreaterThan(0);
    expect(r.code, show(r)).toBe(0);
    expect(e.tsrunSync(['ps', '-a', '-q']).stdout).toBe('');
  });

  it('--cpus 0.2: a busy loop is throttled (stats ThrottledPeriods > 0) and gets about a fifth of a CPU', async () => {
    const d = await e.tsrun(['run', '--network', 'none', '-d', '--name', 'busy', '--cpus', '0.2', 'busybox', 'sh', '-c', 'while :; do :; done']);
    expect(d.code, show(d)).toBe(0);
    const id = d.stdout.trim();
    expect(cgFile(id, 'cpu.max')).toBe('20000 100000');
    expect((await inspect('busy')).Limits.CpuMax).toBe('20000 100000');
    const t0 = Date.now();
    // at least 2 s of running, and throttled by then
    const s = await until(
      async () => {
        const row = await stats('busy');
        return Date.now() - t0 >= 2000 && row.ThrottledPeriods > 0 ? row : null;
      },
      30_000,
      200,
    );
    expect(s, 'stats never showed throttling').toBeTruthy();
    expect(s!.ThrottledPeriods).toBeGreaterThan(0);
    expect(s!.ThrottledUsec).toBeGreaterThan(0);
    expect(s!.CPUPerc).toBeLessThan(60); // 20% quota; generous for TCG and the 0.5 s sample
    const stat = Object.fromEntries(
      cgFile(id, 'cpu.stat')
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k, Number(v)]),
    );
    expect(stat['nr_throttled']).toBeGreaterThan(0);
    expect((await e.tsrun(['rm', '-f', 'busy'])).code).toBe(0);
  });
});
