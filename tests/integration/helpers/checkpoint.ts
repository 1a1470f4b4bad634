// Checkpoint/restore (CRIU) cases shared by tests/integration/checkpoint.test.ts (the host) and
// tests/vm/checkpoint.test.ts (the cgroup v2 VM of scripts/vm-run): `registerCheckpointCases`
// declares the describe blocks, each skipped with the reason CRIU cannot run where it is.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, removeScratch, show, tsrunOci, until, v2Mount } from './bundle.js';
import { describeResult, type PodmanEnv, podmanSkipReason, runtimePath, setupPodman, waitFor } from './clients.js';

/** `criu` on PATH (where Debian puts it), or null. */
export function criuPath(): string | null {
  for (const p of ['/usr/sbin/criu', '/usr/bin/criu', '/usr/local/sbin/criu']) if (existsSync(p)) return p;
  return null;
}

/**
 * Why CRIU cannot checkpoint here, or null: `criu check` runs criu's kernel feature detection,
 * which every dump and restore starts with; its error lines are the reason.
 */
export function criuSkipReason(): string | null {
  const criu = criuPath();
  if (!criu) return 'criu is not installed (apt-get install criu; scripts/setup installs it)';
  const r = spawnSync(criu, ['check'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return null;
  const errors = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /Error|error/.test(l));
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  let why = `\`criu check\` fails on this host (kernel ${kernel}): ${errors.slice(0, 4).join(' | ') || `exit status ${r.status}`}`;
  if (errors.some((e) => e.includes('vDSO area bounds'))) {
    why +=
      ' — criu 3.17 (Debian 12) predates the kernel 6.13+ split of the vvar mapping ([vvar_vclock], see /proc/self/maps), fixed in criu 4.1; run the cgroup v2 VM instead: npm run test:vm -- -t checkpoint';
  }
  return why;
}

// a counter that writes its progress into the rootfs (read from the host) and to stdout
const COUNTER = 'i=0; while true; do echo $i > /tmp/n; echo tick $i; i=$((i+1)); sleep 0.1; done';

function counterOf(rootfs: string): number {
  try {
    return Number(readFileSync(join(rootfs, 'tmp/n'), 'utf8').trim() || -1);
  } catch {
    return -1;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Test A: tsrun-oci checkpoint / restore, driven directly. `skip` is why it cannot run (or null).
 * `tag` names the containers (the host and the VM runs must not collide).
 */
export function registerDirectCases(tag: string, skip: string | null): void {
  describe.skipIf(skip !== null)('tsrun-oci checkpoint / restore (criu)', () => {
    let base: BaseBundle;
    let root: string;
    let scratch: string;
    const ids: string[] = [];
    const id = (n: string) => {
      const v = `${tag}-${n}`;
      ids.push(v);
      return v;
    };
    const state = async (c: string) => {
      const r = await oci(root, ['state', c]);
      expect(r.code, show(r)).toBe(0);
      return JSON.parse(r.stdout) as { status: string; pid: number };
    };

    beforeAll(() => {
      base = buildBaseBundle(`tsrun-cpt-${tag}`);
      root = mkdtempSync(join(tmpdir(), `tsrun-cpt-root-${tag}-`));
      scratch = mkdtempSync(join(tmpdir(), `tsrun-cpt-img-${tag}-`));
    });
    afterEach(async () => {
      // each test leaves nothing behind, also when it failed half-way
      const left = await cleanupAll(root, ids.splice(0), base.tmp);
      expect(left).toEqual([]);
    });
    afterAll(() => {
      rmSync(root, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
      if (base) removeScratch(base.tmp);
    });

    const counterBundle = () =>
      makeBundle(
        base,
        (s) => {
          s.process.terminal = false;
          s.process.args = ['/bin/sh', '-c', COUNTER];
          s.root.readonly = false;
        },
        { copyRootfs: true },
      );

    /**
     * `run -d` / `restore -d` with stdio as a caller such as conmon gives it: not node's
     * socketpairs (a unix socket from outside the container cannot be dumped), a file here.
     */
    const detached = (log: string) => ({ wrapper: ['sh', '-c', 'exec "$@" </dev/null >>"$0" 2>&1', log], timeoutMs: 120_000 });
    const logTicks = (log: string) =>
      (existsSync(log) ? readFileSync(log, 'utf8') : '')
        .split('\n')
        .filter((l) => l.startsWith('tick '))
        .map((l) => Number(l.slice(5)));

    it('checkpoint stops a running counter into criu images; restore resumes it where it was, in its cgroup', async () => {
      const c = id('counter');
      const b = counterBundle();
      const rootfs = join(b, 'rootfs');
      const img = join(scratch, 'a-img');
      const work = join(scratch, 'a-work');
      const log = join(scratch, 'a.log');
      const run = await oci(root, ['run', '-d', '--bundle', b, c], detached(log));
      expect(run.code, `${show(run)}\n${existsSync(log) ? readFileSync(log, 'utf8') : ''}`).toBe(0);
      expect(await until(() => counterOf(rootfs) >= 5, 20_000), 'the counter runs').toBe(true);

      const cp = await oci(root, ['checkpoint', '--image-path', img, '--work-path', work, c], { timeoutMs: 120_000 });
      expect(cp.code, show(cp)).toBe(0);
      expect((await state(c)).status).toBe('stopped');
      const files = readdirSync(img);
      for (const f of ['inventory.img', 'pstree.img', 'descriptors.json']) expect(files, `criu images in ${img}`).toContain(f);
      expect(
        files.some((f) => /^pages-\d+\.img$/.test(f)),
        `pages-*.img in ${files.join(' ')}`,
      ).toBe(true);
      expect(readdirSync(work)).toContain('dump.log');
      const frozen = counterOf(rootfs);
      expect(frozen).toBeGreaterThanOrEqual(5);
      await sleep(600); // ~6 ticks if anything still ran
      expect(counterOf(rootfs), 'nothing runs after the checkpoint').toBe(frozen);

      const ticksBefore = logTicks(log);
      const rs = await oci(root, ['restore', '-d', '--image-path', img, '--work-path', work, '--bundle', b, c], detached(log));
      expect(rs.code, `${show(rs)}\n${readFileSync(log, 'utf8').slice(-3000)}`).toBe(0);
      const st = await state(c);
      expect(st.status).toBe('running');
      expect(st.pid).toBeGreaterThan(0);
      // It continues from where it was: every value seen from now on is past the frozen one
      // (a restart from scratch would write 0, 1, 2 ...).
      const seen: number[] = [];
      expect(
        await until(
          () => {
            seen.push(counterOf(rootfs));
            return seen[seen.length - 1]! >= frozen + 5;
          },
          20_000,
          50,
        ),
        `the counter goes on after restore (seen ${seen.join(',')})`,
      ).toBe(true);
      expect(Math.min(...seen), `values after restore: ${seen.join(',')}`).toBeGreaterThanOrEqual(frozen);
      // its stdout is the restorer's (criu --inherit-fd): the ticks go on in the same log
      const ticks = logTicks(log);
      const last = ticksBefore[ticksBefore.length - 1]!;
      expect(ticks.slice(ticksBefore.length, ticksBefore.length + 3), `ticks: ${ticks.slice(-20).join(',')}`).toEqual([last + 1, last + 2, last + 3]);
      const v2 = v2Mount();
      if (v2) {
        const procs = readFileSync(join(v2, 'tsrun', c, 'cgroup.procs'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map(Number);
        expect(procs, 'the restored init is in the container cgroup').toContain(st.pid);
      }
      const del = await oci(root, ['delete', '--force', c]);
      expect(del.code, show(del)).toBe(0);
    });

    it('checkpoint --leave-running keeps the container running; its images restore under a new id, from the checkpointed point', async () => {
      const c = id('leave');
      const b = counterBundle();
      const rootfs = join(b, 'rootfs');
      const img = join(scratch, 'b-img');
      const run = await oci(root, ['run', '-d', '--bundle', b, c], detached(join(scratch, 'b.log')));
      expect(run.code, show(run)).toBe(0);
      expect(await until(() => counterOf(rootfs) >= 3, 20_000)).toBe(true);
      const cp = await oci(root, ['checkpoint', '--leave-running', '--image-path', img, c], { timeoutMs: 120_000 });
      expect(cp.code, show(cp)).toBe(0);
      expect((await state(c)).status).toBe('running');
      const after = counterOf(rootfs);
      expect(await until(() => counterOf(rootfs) > after + 3, 20_000), 'still counting').toBe(true);
      // restoring under an id that is still running is refused
      const dup = await oci(root, ['restore', '-d', '--image-path', img, '--bundle', b, c]);
      expect(dup.code, show(dup)).not.toBe(0);
      expect(dup.stderr).toMatch(/already exists/);
      expect((await oci(root, ['delete', '--force', c])).code).toBe(0);
      const at = JSON.parse(readFileSync(join(img, 'descriptors.json'), 'utf8')) as string[];
      expect(at).toHaveLength(3);
      // the original is gone; its checkpoint comes back as another container
      const c2 = id('leave2');
      const gone = counterOf(rootfs);
      const rs = await oci(root, ['restore', '-d', '--image-path', img, '--bundle', b, c2], detached(join(scratch, 'b.log')));
      expect(rs.code, `${show(rs)}\n${readFileSync(join(scratch, 'b.log'), 'utf8').slice(-3000)}`).toBe(0);
      expect((await state(c2)).status).toBe('running');
      // it counts again from the checkpointed value, which is below where the original stopped
      expect(await until(() => counterOf(rootfs) < gone, 20_000, 20), `restarted from the checkpoint (original reached ${gone})`).toBe(true);
      expect(counterOf(rootfs)).toBeGreaterThanOrEqual(3);
      expect((await oci(root, ['delete', '--force', c2])).code).toBe(0);
    });

    it('restore without --detach waits for the restored init and exits with its status, then deletes the container', async () => {
      const c = id('fg');
      const b = makeBundle(
        base,
        (s) => {
          s.process.terminal = false;
          s.process.args = ['/bin/sh', '-c', 'i=0; while [ $i -lt 40 ]; do echo $i > /tmp/n; i=$((i+1)); sleep 0.1; done; exit 7'];
          s.root.readonly = false;
        },
        { copyRootfs: true },
      );
      const rootfs = join(b, 'rootfs');
      const img = join(scratch, 'c-img');
      const log = join(scratch, 'c.log');
      expect((await oci(root, ['run', '-d', '--bundle', b, c], detached(log))).code).toBe(0);
      expect(await until(() => counterOf(rootfs) >= 3, 20_000)).toBe(true);
      const cp = await oci(root, ['checkpoint', '--image-path', img, c], { timeoutMs: 120_000 });
      expect(cp.code, show(cp)).toBe(0);
      expect(counterOf(rootfs)).toBeLessThan(39);
      const rs = await oci(root, ['restore', '--image-path', img, '--bundle', b, c], { ...detached(log), timeoutMs: 120_000 });
      expect(rs.code, `${show(rs)}\n${readFileSync(log, 'utf8').slice(-3000)}`).toBe(7);
      expect(counterOf(rootfs), 'it finished its loop').toBe(39);
      expect((await oci(root, ['state', c])).code, 'deleted after it exited').not.toBe(0);
    });
  });
}

/** Test B: `podman container checkpoint` / `podman container restore` with tsrun-oci as the runtime. */
export function registerPodmanCases(skip: string | null): void {
  const rt = runtimePath();
  describe.skipIf(skip !== null)(`podman --runtime ${rt}: container checkpoint / restore`, () => {
    let env: PodmanEnv | undefined;
    const pm = (): PodmanEnv => {
      if (!env) throw new Error('podman setup failed (see beforeAll)');
      return env;
    };
    const podman = (args: string[], opts?: { timeoutMs?: number }) => pm().run(['--runtime', rt, ...args], opts);
    const ticks = async (name: string) =>
      (await podman(['logs', name])).stdout
        .split('\n')
        .filter((l) => l.startsWith('tick '))
        .map((l) => Number(l.slice(5)));

    beforeAll(async () => {
      env = await setupPodman();
    }, 300_000);
    afterAll(async () => {
      await env?.cleanup();
    }, 300_000);

    it('run -d, container checkpoint (exited), container restore (running): the output goes on from where it was', async () => {
      const name = 'cpt';
      try {
        const r = await podman(['run', '-d', '--network', 'none', '--name', name, pm().image, 'sh', '-c', COUNTER], { timeoutMs: 120_000 });
        expect(r.code, describeResult(r)).toBe(0);
        expect(await waitFor(async () => (await ticks(name)).length >= 5, 30_000), 'ticks in podman logs').toBe(true);

        const cp = await podman(['container', 'checkpoint', name], { timeoutMs: 180_000 });
        expect(cp.code, describeResult(cp)).toBe(0);
        const st = await podman(['inspect', '--format', '{{.State.Status}} {{.State.Checkpointed}}', name]);
        expect(st.stdout.trim(), describeResult(st)).toBe('exited true');
        const before = await ticks(name);
        const last = before[before.length - 1]!;
        await sleep(600);
        expect((await ticks(name)).length, 'no output while checkpointed').toBe(before.length);

        const rs = await podman(['container', 'restore', name], { timeoutMs: 180_000 });
        expect(rs.code, describeResult(rs)).toBe(0);
        const st2 = await podman(['inspect', '--format', '{{.State.Status}}', name]);
        expect(st2.stdout.trim(), describeResult(st2)).toBe('running');
        expect(await waitFor(async () => (await ticks(name)).length >= before.length + 5, 30_000), 'output resumes').toBe(true);
        const all = await ticks(name);
        // one sequence: the restored process goes on counting (never restarts at 0)
        expect(all.slice(before.length, before.length + 3), `ticks after ${last}: ${all.slice(before.length - 3).join(',')}`).toEqual([
          last + 1,
          last + 2,
          last + 3,
        ]);
      } finally {
        await podman(['rm', '--force', '--time', '0', name], { timeoutMs: 60_000 });
      }
    });
  });
}

/** Why the podman case cannot run (podman, conmon, runtime, criu). */
export function podmanCheckpointSkipReason(criuSkip: string | null): string | null {
  return podmanSkipReason() ?? criuSkip;
}

/** Why the direct case cannot run: root, the built runtime, busybox-static, then CRIU. */
export function directCheckpointSkipReason(criuSkip: string | null): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync(tsrunOci)) return `${tsrunOci} is missing: run \`npm run build\``;
  if (!existsSync('/bin/busybox')) return '/bin/busybox is missing: apt-get install busybox-static';
  return criuSkip;
}
