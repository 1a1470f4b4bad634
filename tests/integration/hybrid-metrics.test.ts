// On a hybrid host (controllers in cgroup v1, cgroup2 at /sys/fs/cgroup/unified) what callers
// read about a tsrun container is the container's: its init is placed in every v1 hierarchy
// at its v2 path (membership only), so containerd's shim, which reads v1 here, reports the
// container's memory and not the host root's; `tsrun-oci events --stats` and `stats` read
// the same figures (one object); delete removes the v1 directories tsrun made, and only those.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show, until, type BaseBundle } from './helpers/bundle.js';
import { type ContainerdEnv, containerdSkipReason, describeResult, runtimePath, setupContainerd, waitFor } from './helpers/clients.js';

const MiB = 1024 * 1024;

/** The cgroup v1 hierarchies mounted here (mount point, controllers), read independently of tsrun. */
function v1Hierarchies(): { mount: string; opts: string[] }[] {
  const out: { mount: string; opts: string[] }[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , opts = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup') out.push({ mount: line.slice(0, sep).split(' ')[4]!, opts: opts.split(',') });
  }
  return out;
}
const memoryMount = () => v1Hierarchies().find((h) => h.opts.includes('memory'))?.mount;

function hybridSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  let fstype = '';
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] === '/sys/fs/cgroup') fstype = line.slice(line.indexOf(' - ') + 3).split(' ')[0] ?? '';
  }
  if (fstype === 'cgroup2') return 'a pure cgroup v2 host (/sys/fs/cgroup is cgroup2): readers use v2 there, nothing is placed in v1';
  if (!memoryMount()) return 'no cgroup v1 memory hierarchy mounted: not a hybrid host';
  if (!v1Hierarchies().length || !readFileSync('/proc/self/mountinfo', 'utf8').includes(' - cgroup2 '))
    return 'no cgroup2 mounted next to the v1 hierarchies: not a hybrid host';
  return null;
}

/** The v1 lines of /proc/<pid>/cgroup: hierarchy spec ("memory", "cpu,cpuacct", "name=systemd") → path. */
function v1Paths(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [num, ctrls, ...rest] = line.split(':');
    if (num !== '0') m.set(ctrls!, rest.join(':'));
  }
  return m;
}

const readNum = (p: string) => Number(readFileSync(p, 'utf8').trim());
/** Whatever exists at <every v1 mount>/<rel>. */
const v1DirsAt = (rel: string) =>
  v1Hierarchies()
    .map((h) => join(h.mount, rel))
    .filter((d) => existsSync(d));

const hybridSkip = hybridSkipReason();
const ctrSkip = hybridSkip ?? containerdSkipReason();
const ociSkip = hybridSkip ?? ociSkipReason();
if (ctrSkip) console.warn(`[hybrid-metrics.test] containerd part SKIPPED: ${ctrSkip}`);
if (ociSkip) console.warn(`[hybrid-metrics.test] tsrun-oci part SKIPPED: ${ociSkip}`);

// Waits for /dev/shm/go, then puts 20 MiB in a tmpfs file (shmem: charged to the writer's
// memory cgroup for as long as the file exists) and becomes a lone sleep (one process).
const FILL = `while [ ! -e /dev/shm/go ]; do sleep 0.05; done; head -c ${20 * MiB} /dev/zero > /dev/shm/fill; touch /dev/shm/done; exec sleep 1000`;

describe.skipIf(ctrSkip !== null)('ctr task metrics of a tsrun container on a hybrid host', () => {
  const rt = runtimePath();
  let env: ContainerdEnv | undefined;
  const cd = (): ContainerdEnv => {
    if (!env) throw new Error('containerd setup failed (see beforeAll)');
    return env;
  };
  const ctr = (args: string[]) => cd().run(args);
  /** ctr task metrics --format json: containerd's v1 Metrics (the shim reads cgroup v1 here). */
  const metrics = async (id: string) => {
    const r = await ctr(['task', 'metrics', '--format', 'json', id]);
    expect(r.code, describeResult(r)).toBe(0);
    return JSON.parse(r.stdout) as { memory?: { usage?: { usage?: number } }; pids?: { current?: number }; cpu?: { usage?: { total?: number } } };
  };
  const taskPid = async (id: string): Promise<number> => {
    const r = await ctr(['task', 'ls']);
    for (const line of r.stdout.split('\n').slice(1)) {
      const [t, pid] = line.trim().split(/\s+/);
      if (t === id) return Number(pid);
    }
    throw new Error(`no task ${id}: ${describeResult(r)}`);
  };

  beforeAll(async () => {
    env = await setupContainerd();
  });
  afterAll(async () => {
    await env?.cleanup(); // fails on any container cgroup (v1 included) left under /<namespace>
  });

  it("reports the container's memory (small, and growing by what it allocates), not the host root's", async () => {
    const id = 'hymem1';
    const r = await ctr(['run', '-d', '--runc-binary', rt, cd().image, id, 'sh', '-c', FILL]);
    expect(r.code, describeResult(r)).toBe(0);
    const pid = await taskPid(id);
    const rel = `/${cd().namespace}/${id}`;
    // The shim finds the container's v1 cgroups from here: every hierarchy, at the v2 path.
    const paths = v1Paths(pid);
    expect(paths.size).toBeGreaterThan(0);
    for (const [h, p] of paths) expect(p, `hierarchy ${h}`).toBe(rel);
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`0::${rel}\n`);

    const root = readNum(join(memoryMount()!, 'memory.usage_in_bytes'));
    const before = await metrics(id);
    const small = before.memory?.usage?.usage ?? -1;
    expect(small).toBeGreaterThan(0);
    expect(small).toBeLessThan(16 * MiB);
    expect(small).toBeLessThan(root / 4);
    expect(before.pids?.current).toBeGreaterThanOrEqual(1);

    const go = await ctr(['task', 'exec', '--exec-id', 'go', id, 'touch', '/dev/shm/go']);
    expect(go.code, describeResult(go)).toBe(0);
    const done = await waitFor(
      async () => (await ctr(['task', 'exec', '--exec-id', `chk${Date.now()}`, id, 'test', '-e', '/dev/shm/done'])).code === 0,
      15_000,
      200,
    );
    expect(done).toBe(true);
    const after = (await metrics(id)).memory?.usage?.usage ?? -1;
    expect(after - small, `usage ${small} -> ${after}`).toBeGreaterThanOrEqual(19 * MiB);
    expect(after).toBeLessThan(small + 40 * MiB);

    // tsrun-oci's own view of the same container (the shim's --root): the same memory, one pids figure.
    const ociRoot = `/run/containerd/runc/${cd().namespace}`;
    const ev = await oci(ociRoot, ['events', '--stats', id]);
    expect(ev.code, show(ev)).toBe(0);
    const data = JSON.parse(ev.stdout).data;
    expect(data.memory.usage.usage).toBeGreaterThanOrEqual(after - 4 * MiB);
    expect(data.memory.usage.usage).toBeLessThan(after + 8 * MiB);
    const st = await oci(ociRoot, ['stats', id]);
    expect(st.code, show(st)).toBe(0);
    expect(st.stdout).toMatch(new RegExp(`pids +${data.pids.current} now`));
    expect(st.stdout).toMatch(/memory +\d+\.\d MiB now/);

    const k = await ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    expect(k.code, describeResult(k)).toBe(0);
    await waitFor(async () => (await ctr(['task', 'ls'])).stdout.includes('STOPPED'), 10_000);
    const rm = await ctr(['task', 'rm', id]);
    expect(rm.code, describeResult(rm)).toBe(0);
    expect(v1DirsAt(rel), 'v1 cgroups tsrun made for the container').toEqual([]);
    expect((await ctr(['containers', 'rm', id])).code).toBe(0);
  });
});

describe.skipIf(ociSkip !== null)('tsrun-oci on a hybrid host: v1 membership, one stats object', () => {
  let base: BaseBundle;
  let root: string;
  const ids: string[] = [];
  const id = (n: string) => {
    const v = `hm-${process.pid}-${n}`;
    ids.push(v);
    return v;
  };
  const pidOf = async (c: string) => JSON.parse((await oci(root, ['state', c])).stdout).pid as number;
  beforeAll(() => {
    base = buildBaseBundle('tsrun-hybrid-metrics');
    root = mkdtempSync(join(tmpdir(), 'tsrun-hybrid-metrics-root-'));
  });
  afterAll(async () => {
    const left = await cleanupAll(root, ids, base.tmp);
    rmSync(root, { recursive: true, force: true });
    removeScratch(base.tmp);
    expect(left).toEqual([]);
    for (const c of ids) expect(v1DirsAt(`tsrun/${c}`), `v1 cgroups of ${c}`).toEqual([]);
  });

  it('places init and exec in every v1 hierarchy; stats and events --stats agree; delete removes what it made', async () => {
    const c = id('run');
    const b = makeBundle(base, (s) => (s.process.args = ['/bin/sh', '-c', 'sleep 1000 & sleep 1000 & wait']));
    const r = await oci(root, ['run', '-d', '--bundle', b, c]);
    expect(r.code, show(r)).toBe(0);
    const pid = await pidOf(c);
    for (const [h, p] of v1Paths(pid)) expect(p, `hierarchy ${h}`).toBe(`/tsrun/${c}`);
    const made = v1DirsAt(`tsrun/${c}`);
    expect(made.length).toBe(v1Hierarchies().length);
    // The recorded dirs are the ones it made; pause (v2 cgroup.freeze) is untouched by v1.
    const rec = JSON.parse(readFileSync(join(root, c, 'state.json'), 'utf8'));
    expect(rec.cgroupV1.map((p: { dir: string }) => p.dir).sort()).toEqual([...made].sort());
    expect(rec.cgroupV1.every((p: { created: boolean }) => p.created)).toBe(true);

    // Inside, with its own cgroup namespace, the container sees itself at the root of every hierarchy.
    const ex = await oci(root, ['exec', c, 'cat', '/proc/self/cgroup']);
    expect(ex.code, show(ex)).toBe(0);
    for (const line of ex.stdout.trim().split('\n')) expect(line).toMatch(/:\/$/);

    await until(
      () =>
        readFileSync(join(memoryMount()!, 'tsrun', c, 'cgroup.procs'), 'utf8')
          .trim()
          .split('\n').length === 3 || null,
      3000,
    );
    const ev = await oci(root, ['events', '--stats', c]);
    expect(ev.code, show(ev)).toBe(0);
    const data = JSON.parse(ev.stdout).data;
    expect(data.pids.current).toBe(3);
    expect(data.memory.usage.usage).toBeGreaterThan(0);
    // v1's usage_in_bytes is not exact (per-cpu charge batches move it by up to 64 pages per
    // cpu between two reads: memory.txt §5.5), so it is compared within that slack.
    const fileNow = readNum(join(memoryMount()!, 'tsrun', c, 'memory.usage_in_bytes'));
    expect(Math.abs(data.memory.usage.usage - fileNow)).toBeLessThanOrEqual(64 * 4096 * os.cpus().length);
    const st = await oci(root, ['stats', c]);
    expect(st.code, show(st)).toBe(0);
    expect(st.stdout).toMatch(/pids +3 now, limit unlimited/);
    expect(st.stdout).not.toMatch(/memory +- now/);

    expect((await oci(root, ['pause', c])).code).toBe(0);
    expect(JSON.parse((await oci(root, ['state', c])).stdout).status).toBe('paused');
    expect((await oci(root, ['resume', c])).code).toBe(0);

    const d = await oci(root, ['delete', '--force', c]);
    expect(d.code, show(d)).toBe(0);
    expect(v1DirsAt(`tsrun/${c}`)).toEqual([]);
  });

  it('a v1 directory that existed before the container is joined but survives its delete', async () => {
    const c = id('pre');
    const pre = join(memoryMount()!, 'tsrun', c);
    mkdirSync(pre, { recursive: true });
    try {
      const r = await oci(root, ['run', '-d', '--bundle', makeBundle(base, (s) => (s.process.args = ['sleep', '1000'])), c]);
      expect(r.code, show(r)).toBe(0);
      const pid = await pidOf(c);
      expect(readFileSync(join(pre, 'cgroup.procs'), 'utf8').trim()).toBe(String(pid));
      const d = await oci(root, ['delete', '--force', c]);
      expect(d.code, show(d)).toBe(0);
      expect(existsSync(pre), 'the pre-existing memory cgroup').toBe(true);
      expect(v1DirsAt(`tsrun/${c}`)).toEqual([pre]);
    } finally {
      if (existsSync(pre)) rmdirSync(pre);
    }
  });
});
