// cgroup v2 limits seen at work, inside the VM of scripts/vm-run (pure cgroup v2, every
// controller, a virtio disk at /dev/vda). Each test checks an effect, not just a file.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBaseBundle, cleanupAll, makeBundle, oci, show, until, type BaseBundle } from '../integration/helpers/bundle.js';

const inVm = process.env.TSRUN_VM === '1';
if (!inVm) console.log('tests/vm: skipped: run them with `npm run test:vm` (they need the cgroup v2 VM)');

const CG = '/sys/fs/cgroup';
const MiB = 1024 * 1024;

describe.skipIf(!inVm)('cgroup v2 limits in effect', () => {
  let base: BaseBundle;
  let root: string;
  const ids: string[] = [];
  const id = (n: string) => {
    const v = `vm-${n}`;
    ids.push(v);
    return v;
  };
  const cgFile = (c: string, f: string) => readFileSync(join(CG, 'tsrun', c, f), 'utf8').trim();
  const state = async (c: string) => JSON.parse((await oci(root, ['state', c])).stdout);

  beforeAll(() => {
    base = buildBaseBundle('tsrun-vm');
    root = mkdtempSync(join(tmpdir(), 'tsrun-vm-root-'));
  });
  afterAll(async () => {
    const left = await cleanupAll(root, ids, base.tmp);
    rmSync(root, { recursive: true, force: true });
    expect(left).toEqual([]);
    expect(existsSync(join(CG, 'tsrun')) ? readFileSync(join(CG, 'tsrun', 'cgroup.procs'), 'utf8') : '').toBe('');
  });

  it('memory 32M: a container allocating 100M is OOM-killed and reported as such', async () => {
    const c = id('oom');
    const b = makeBundle(base, (s) => {
      s.process.args = ['/bin/sh', '-c', 'x=$(head -c 104857600 /dev/zero | tr "\\0" a); echo survived ${#x}'];
      s.linux.resources = { memory: { limit: 32 * MiB, swap: 32 * MiB } };
    });
    const r = await oci(root, ['run', '--keep', '--bundle', b, c], { timeoutMs: 60_000 });
    expect(r.stdout).not.toContain('survived');
    expect(r.code, show(r)).toBe(137);
    expect(r.stderr).toContain(`container ${c} was OOM-killed`);
    expect(cgFile(c, 'memory.max')).toBe(String(32 * MiB));
    expect(cgFile(c, 'memory.swap.max')).toBe('0');
    expect(Number(/oom_kill (\d+)/.exec(cgFile(c, 'memory.events'))![1])).toBeGreaterThan(0);
    const st = await oci(root, ['stats', c]);
    expect(st.stdout).toMatch(/limit 32\.0 MiB/);
    expect(st.stdout).toContain('OOM-KILLED');
    expect((await oci(root, ['delete', c])).code).toBe(0);
  });

  it('pids.limit 10: fork fails inside the container', async () => {
    const c = id('pids');
    const b = makeBundle(base, (s) => {
      s.process.args = ['/bin/sh', '-c', 'for i in $(seq 1 30); do sleep 3 & done 2>&1; echo started; kill $(jobs -p) 2>/dev/null; true'];
      s.linux.resources = { pids: { limit: 10 } };
    });
    const r = await oci(root, ['run', '--bundle', b, c], { timeoutMs: 60_000 });
    expect(r.stdout + r.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
  });

  it('cpu quota 10%: a busy loop is throttled (cpu.stat) and gets about a tenth of a CPU', async () => {
    const c = id('cpu');
    const b = makeBundle(base, (s) => {
      s.process.args = ['/bin/sh', '-c', 'timeout 2 sh -c "while :; do :; done"; cat /sys/fs/cgroup/cpu.stat'];
      s.linux.resources = { cpu: { quota: 10_000, period: 100_000 } };
    });
    const r = await oci(root, ['run', '--bundle', b, c], { timeoutMs: 60_000 });
    expect(r.code, show(r)).toBe(0);
    const stat = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k, Number(v)]),
    );
    expect(stat.nr_throttled).toBeGreaterThan(0);
    expect(stat.usage_usec).toBeLessThan(700_000); // 2 s wall at 10% ≈ 0.2 s (+ slack for TCG)
  });

  it('cpuset pins the process to the CPUs given', async () => {
    const c = id('cpuset');
    const b = makeBundle(base, (s) => {
      s.process.args = ['/bin/sh', '-c', 'grep Cpus_allowed_list /proc/self/status'];
      s.linux.resources = { cpu: { cpus: '1' } };
    });
    const r = await oci(root, ['run', '--bundle', b, c]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/Cpus_allowed_list:\s+1\s*$/);
  });

  it('io.max throttles writes to a real block device', async () => {
    const dev = statSync('/dev/vda');
    const major = Math.floor(dev.rdev / 256);
    const minor = dev.rdev % 256;
    const c = id('io');
    const b = makeBundle(base, (s) => {
      s.process.args = [
        '/bin/sh',
        '-c',
        'a=$(date +%s); dd if=/dev/zero of=/dev/vda bs=64k count=48 oflag=direct 2>/dev/null; b=$(date +%s); echo elapsed $((b-a))',
      ];
      s.linux.devices = [{ path: '/dev/vda', type: 'b', major, minor, fileMode: 0o660 }];
      s.linux.resources.devices = [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'b', major, minor, access: 'rw' },
      ];
      s.linux.resources.blockIO = { throttleWriteBpsDevice: [{ major, minor, rate: MiB }] };
      s.process.capabilities.bounding.push('CAP_SYS_RAWIO');
    });
    const r = await oci(root, ['run', '--keep', '--bundle', b, c], { timeoutMs: 60_000 });
    expect(r.code, show(r)).toBe(0);
    expect(cgFile(c, 'io.max')).toContain(`${major}:${minor} rbps=max wbps=${MiB}`);
    const elapsed = Number(/elapsed (\d+)/.exec(r.stdout)![1]);
    expect(elapsed).toBeGreaterThanOrEqual(2); // 3 MiB at 1 MiB/s
    expect((await oci(root, ['delete', c])).code).toBe(0);
  });

  it('pause freezes (state paused, no progress) and resume continues; update changes the memory limit live', async () => {
    const c = id('life');
    const b = makeBundle(
      base,
      (s) => {
        s.process.args = ['/bin/sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done'];
        s.root.readonly = false;
        s.linux.resources = { memory: { limit: 128 * MiB } };
      },
      { copyRootfs: true },
    );
    expect((await oci(root, ['run', '-d', '--bundle', b, c])).code).toBe(0);
    const count = () => Number(readFileSync(join(b, 'rootfs/tmp/count'), 'utf8') || 0);
    await until(() => count() > 2 || null, 20_000);
    expect((await oci(root, ['pause', c])).code).toBe(0);
    expect((await state(c)).status).toBe('paused');
    expect(cgFile(c, 'cgroup.freeze')).toBe('1');
    const at = count();
    await new Promise((res) => setTimeout(res, 1000));
    expect(count()).toBe(at);
    expect((await oci(root, ['resume', c])).code).toBe(0);
    await until(() => count() > at || null, 20_000);

    const res = join(base.tmp, 'update.json');
    writeFileSync(res, JSON.stringify({ memory: { limit: 64 * MiB } }));
    const u = await oci(root, ['update', '--resources', res, c]);
    expect(u.code, show(u)).toBe(0);
    expect(cgFile(c, 'memory.max')).toBe(String(64 * MiB));
    // runc's flag alone: the swap total is checked against the memory limit in force (64M).
    const sw = await oci(root, ['update', '--memory-swap', '96m', c]);
    expect(sw.code, show(sw)).toBe(0);
    expect(cgFile(c, 'memory.swap.max')).toBe(String(32 * MiB));
    const ev = JSON.parse((await oci(root, ['events', '--stats', c])).stdout);
    expect(ev).toMatchObject({ type: 'stats', id: c });
    expect(ev.data.memory.usage.limit).toBe(64 * MiB);
    expect(ev.data.memory.usage.usage).toBeGreaterThan(0);
    expect(ev.data.pids.current).toBeGreaterThanOrEqual(1);
    expect(ev.data.cpu.usage.total).toBeGreaterThan(0);

    expect((await oci(root, ['kill', '--all', c, 'KILL'])).code).toBe(0);
    let st = '';
    for (let i = 0; i < 100 && st !== 'stopped'; i++) {
      st = (await state(c)).status;
      if (st !== 'stopped') await new Promise((r2) => setTimeout(r2, 50));
    }
    expect(st).toBe('stopped');
    expect((await oci(root, ['delete', c])).code).toBe(0);
    expect(existsSync(join(CG, 'tsrun', c))).toBe(false);
  });

  it('respects the no-internal-process rule: processes of a busy parent cgroup move to a leaf', async () => {
    // A parent cgroup holding a process, as when tsrun itself runs inside a container.
    const parent = join(CG, 'busy-parent');
    mkdirSync(parent, { recursive: true });
    const sleeper = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(join(parent, 'cgroup.procs'), String(sleeper.pid));
      const c = id('nip');
      const b = makeBundle(base, (s) => {
        s.process.args = ['/bin/true'];
        s.linux.cgroupsPath = `/busy-parent/${c}`;
        s.linux.resources = { memory: { limit: 64 * MiB } };
      });
      const r = await oci(root, ['run', '--bundle', b, c]);
      expect(r.code, show(r)).toBe(0);
      expect(readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8')).toContain('memory');
      expect(readFileSync(join(parent, 'tsrun-leaf', 'cgroup.procs'), 'utf8').trim()).toBe(String(sleeper.pid));
      expect(existsSync(join(parent, c))).toBe(false);
    } finally {
      sleeper.kill('SIGKILL');
      await new Promise((res) => sleeper.once('exit', res));
      await until(() => readFileSync(join(parent, 'tsrun-leaf', 'cgroup.procs'), 'utf8').trim() === '' || null);
      rmdirSync(join(parent, 'tsrun-leaf'));
      rmdirSync(parent);
    }
  });

  it('reports the smallest memory limit under which `run` of busybox true succeeds', async () => {
    const KiB = 1024;
    const sizes = [256, 384, 512, 768, 1024, 2048, 4096].map((k) => k * KiB);
    const ok: number[] = [];
    for (const limit of sizes) {
      const c = id(`min-${limit / KiB}k`);
      const b = makeBundle(base, (s) => {
        s.process.args = ['/bin/true'];
        s.linux.resources = { memory: { limit, swap: limit } };
      });
      const r = await oci(root, ['run', '--bundle', b, c], { timeoutMs: 60_000 });
      if (r.code === 0) ok.push(limit);
      await oci(root, ['delete', '--force', c]);
    }
    console.log(`minimum memory limit for run of busybox true: ${ok.length ? `${ok[0]! / KiB}k` : 'none of ' + sizes.map((s) => `${s / KiB}k`).join(', ')}`);
    expect(ok.length).toBeGreaterThan(0);
  });
});
