// A container's cgroup is not always the container's alone: two containers can be given the
// same linux.cgroupsPath (the second is created into it once the first has exited and left it
// empty), a cgroup can exist before the container (made by someone else, with children of its
// own), and a host process can be moved into it. `delete` and `kill --all` of one container
// must never signal another's processes, and tsrun must never remove a cgroup it did not make.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBaseBundle, makeBundle, oci, ociSkipReason, removeScratch, show, until, v2Mount, type BaseBundle } from './helpers/bundle.js';

function skipReason(): string | null {
  const base = ociSkipReason();
  if (base) return base;
  if (!v2Mount()) return 'no cgroup v2 hierarchy mounted';
  return null;
}
const skip = skipReason();
if (skip) console.warn(`[cgroup-ownership.test] SKIPPED: ${skip}`);

const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** rmdir a cgroup tree bottom-up (the test's own cgroups; they must be empty by then). */
function rmCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) rmCgroupTree(join(dir, d.name));
  for (let i = 0; ; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (i > 200) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

/**
 * The cgroup v1 mounts (hybrid hosts). tsrun mirrors a container's cgroup there (membership
 * only) and, like in v2, removes only what it made: the v1 mirrors of cgroups these tests
 * share between containers stay, and the tests sweep them as they do their v2 cgroups.
 */
const v1Mounts = (): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(' - cgroup '))
    .map((l) => l.split(' ')[4]!);

describe.skipIf(!!skip)("cgroup ownership: delete and kill --all touch only what is the container's", () => {
  let base: BaseBundle;
  let root: string;
  let v2: string;
  /** The test's own cgroup parent: /<v2>/tsrun-it-own-<pid>; everything the tests make is under it. */
  let parentRel: string;
  const ids = new Set<string>();
  const hostProcs: ChildProcess[] = [];
  let seq = 0;
  const newId = (tag: string) => {
    const id = `own-${process.pid}-${++seq}-${tag}`;
    ids.add(id);
    return id;
  };
  const cgDir = (rel: string) => join(v2, rel);
  const procsOf = (rel: string): number[] => {
    try {
      return readFileSync(join(cgDir(rel), 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  /** A bundle whose init is `sh` (+ a `sleep` child) in cgroupsPath `/<rel>`; `exit` makes it exit at once. */
  const bundleIn = (rel: string, mode: 'sleep' | 'exit') =>
    makeBundle(base, (s) => {
      s.linux.cgroupsPath = `/${rel}`;
      s.process.args = mode === 'sleep' ? ['/bin/sh', '-c', 'sleep 600; echo tsrun-own-marker'] : ['/bin/sh', '-c', 'exit 0'];
    });
  const state = async (id: string) => {
    const r = await oci(root, ['state', id]);
    expect(r.code, show(r)).toBe(0);
    return JSON.parse(r.stdout) as { status: string; pid: number };
  };
  async function runDetached(id: string, bundle: string): Promise<number> {
    const r = await oci(root, ['run', '-d', '--bundle', bundle, id]);
    expect(r.code, show(r)).toBe(0);
    return (await state(id)).pid;
  }
  async function untilStopped(id: string): Promise<void> {
    let status = '';
    for (let i = 0; i < 200 && status !== 'stopped'; i++) {
      status = (await state(id)).status;
      if (status !== 'stopped') await new Promise((res) => setTimeout(res, 25));
    }
    expect(status, `${id} did not stop`).toBe('stopped');
  }

  beforeAll(() => {
    v2 = v2Mount()!;
    base = buildBaseBundle('tsrun-cg-own');
    root = mkdtempSync(join(tmpdir(), 'tsrun-cg-own-root-'));
    parentRel = `tsrun-it-own-${process.pid}`;
  });

  afterEach(async () => {
    const problems: string[] = [];
    for (const id of ids) {
      const r = await oci(root, ['delete', '--force', id]);
      if (r.code !== 0) problems.push(show(r));
    }
    ids.clear();
    for (const p of hostProcs.splice(0)) p.kill('SIGKILL');
    await until(() => !existsSync(cgDir(parentRel)) || procsOfTree(cgDir(parentRel)) === 0, 5000);
    rmCgroupTree(cgDir(parentRel));
    for (const m of v1Mounts()) rmCgroupTree(join(m, parentRel));
    expect(problems).toEqual([]);
  });

  afterAll(() => {
    if (!base) return;
    try {
      rmCgroupTree(cgDir(parentRel));
      for (const m of v1Mounts()) rmCgroupTree(join(m, parentRel));
    } finally {
      // Also when a cgroup is still busy (a failed test): the dirs in /tmp go regardless.
      rmSync(root, { recursive: true, force: true });
      removeScratch(base.tmp);
    }
  });

  function procsOfTree(dir: string): number {
    let n = 0;
    try {
      n += readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).length;
      for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) n += procsOfTree(join(dir, d.name));
    } catch {
      /* gone */
    }
    return n;
  }

  /** The first container (already exited) and the second one running, both in cgroup `rel`. */
  async function sharedPair(rel: string): Promise<{ first: string; second: string; secondPid: number; secondProcs: number[] }> {
    const first = newId('first');
    await runDetached(first, bundleIn(rel, 'exit'));
    await untilStopped(first);
    await until(() => procsOf(rel).length === 0, 3000);
    const second = newId('second');
    const secondPid = await runDetached(second, bundleIn(rel, 'sleep'));
    await until(() => procsOf(rel).length >= 2, 3000); // sh and its sleep
    const secondProcs = procsOf(rel);
    expect(secondProcs).toContain(secondPid);
    expect(secondProcs.length).toBe(2);
    return { first, second, secondPid, secondProcs };
  }

  async function expectStillRunning(id: string, pid: number, procs: number[], rel: string): Promise<void> {
    await new Promise((res) => setTimeout(res, 300)); // a kill would have landed by now
    const st = await state(id);
    expect([st.status, st.pid], `${id} must still run`).toEqual(['running', pid]);
    for (const p of procs) expect(alive(p), `process ${p} of ${id}`).toBe(true);
    expect(existsSync(cgDir(rel)), `cgroup ${cgDir(rel)} of the running ${id}`).toBe(true);
    expect(procsOf(rel).sort()).toEqual([...procs].sort());
  }

  it('delete of an exited container leaves the running one that shares its (pre-created) cgroup, and the cgroup', async () => {
    const rel = `${parentRel}/shared`;
    mkdirSync(cgDir(rel), { recursive: true });
    const { first, second, secondPid, secondProcs } = await sharedPair(rel);
    const d = await oci(root, ['delete', first]);
    expect(d.code, show(d)).toBe(0);
    ids.delete(first);
    await expectStillRunning(second, secondPid, secondProcs, rel);
    expect(existsSync(join(root, first)), 'state of the deleted container').toBe(false);
  });

  it('the same when the first container made the cgroup: its delete neither kills nor removes it while another lives there', async () => {
    const rel = `${parentRel}/made-by-first`;
    mkdirSync(cgDir(parentRel), { recursive: true });
    const { first, second, secondPid, secondProcs } = await sharedPair(rel);
    const d = await oci(root, ['delete', first]);
    expect(d.code, show(d)).toBe(0);
    ids.delete(first);
    await expectStillRunning(second, secondPid, secondProcs, rel);
  });

  it('kill --all of the exited container signals nothing of the running one', async () => {
    const rel = `${parentRel}/kill-all`;
    mkdirSync(cgDir(rel), { recursive: true });
    const { first, second, secondPid, secondProcs } = await sharedPair(rel);
    const k = await oci(root, ['kill', '--all', first, 'KILL']);
    expect(k.code, show(k)).toBe(0);
    await expectStillRunning(second, secondPid, secondProcs, rel);
  });

  it('kill --all signals the processes of the container, not a host process moved into its cgroup', async () => {
    const rel = `${parentRel}/intruder`;
    mkdirSync(cgDir(parentRel), { recursive: true });
    const id = newId('victim');
    const pid = await runDetached(id, bundleIn(rel, 'sleep'));
    await until(() => procsOf(rel).length >= 2, 3000);
    const mine = procsOf(rel);
    const host = spawn('sleep', ['600'], { stdio: 'ignore' });
    hostProcs.push(host);
    await until(() => host.pid !== undefined && alive(host.pid), 3000);
    writeFileSync(join(cgDir(rel), 'cgroup.procs'), String(host.pid));
    expect(procsOf(rel)).toContain(host.pid);

    const t = await oci(root, ['kill', '--all', id, 'TERM']);
    expect(t.code, show(t)).toBe(0);
    const k = await oci(root, ['kill', '--all', id, 'KILL']);
    expect(k.code, show(k)).toBe(0);
    await until(() => mine.every((p) => !alive(p)), 3000);
    for (const p of mine) expect(alive(p), `container process ${p}`).toBe(false);
    expect(alive(host.pid!), 'the host process in the same cgroup').toBe(true);
    await untilStopped(id);
    expect(mine).toContain(pid);

    // delete neither kills the host process nor removes the cgroup it lives in
    const d = await oci(root, ['delete', id]);
    expect(d.code, show(d)).toBe(0);
    ids.delete(id);
    expect(alive(host.pid!)).toBe(true);
    expect(existsSync(cgDir(rel))).toBe(true);
  });

  it('a pre-existing cgroup (with a child cgroup) survives delete of a container that used it', async () => {
    const rel = `${parentRel}/pre`;
    mkdirSync(cgDir(`${rel}/child`), { recursive: true });
    const id = newId('pre');
    const b = makeBundle(base, (s) => {
      s.linux.cgroupsPath = `/${rel}`;
      s.process.args = ['/bin/sh', '-c', 'exit 0'];
    });
    // foreground run: create, start, wait, delete --force
    const r = await oci(root, ['run', '--bundle', b, id]);
    expect(r.code, show(r)).toBe(0);
    ids.delete(id);
    expect(existsSync(join(root, id))).toBe(false);
    expect(existsSync(cgDir(rel)), 'the pre-existing cgroup').toBe(true);
    expect(existsSync(cgDir(`${rel}/child`)), 'its child').toBe(true);

    // and delete --force of a running one too
    const id2 = newId('pre-force');
    await runDetached(id2, bundleIn(rel, 'sleep'));
    const d = await oci(root, ['delete', '--force', id2]);
    expect(d.code, show(d)).toBe(0);
    ids.delete(id2);
    expect(existsSync(cgDir(rel)), 'the pre-existing cgroup').toBe(true);
    expect(existsSync(cgDir(`${rel}/child`)), 'its child').toBe(true);
    expect(procsOf(rel)).toEqual([]);
  });

  describe('a container without a pid namespace of its own', () => {
    const noPidNs = (rel: string, script: string) =>
      makeBundle(base, (s) => {
        s.linux.cgroupsPath = `/${rel}`;
        s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => n.type !== 'pid');
        s.process.args = ['/bin/sh', '-c', script];
      });

    it('delete kills what it left behind in the cgroup tsrun made for it, and removes the cgroup', async () => {
      const rel = `${parentRel}/nopidns-own`;
      mkdirSync(cgDir(parentRel), { recursive: true });
      const id = newId('nopid');
      await runDetached(id, noPidNs(rel, 'sleep 600 & exit 0'));
      await untilStopped(id);
      await until(() => procsOf(rel).length === 1, 3000);
      const [orphan] = procsOf(rel);
      expect(alive(orphan!)).toBe(true);
      const d = await oci(root, ['delete', id]);
      expect(d.code, show(d)).toBe(0);
      ids.delete(id);
      await until(() => !alive(orphan!), 3000);
      expect(alive(orphan!), 'the orphan the container left').toBe(false);
      expect(existsSync(cgDir(rel))).toBe(false);
    });

    it('in a pre-existing cgroup, delete --force kills its init and descendants, not a host process there', async () => {
      const rel = `${parentRel}/nopidns-pre`;
      mkdirSync(cgDir(rel), { recursive: true });
      const id = newId('nopid-pre');
      const pid = await runDetached(id, noPidNs(rel, 'sleep 600 & wait'));
      await until(() => procsOf(rel).length >= 2, 3000);
      const mine = procsOf(rel);
      expect(mine).toContain(pid);
      const host = spawn('sleep', ['600'], { stdio: 'ignore' });
      hostProcs.push(host);
      await until(() => host.pid !== undefined && alive(host.pid), 3000);
      writeFileSync(join(cgDir(rel), 'cgroup.procs'), String(host.pid));
      const d = await oci(root, ['delete', '--force', id]);
      expect(d.code, show(d)).toBe(0);
      ids.delete(id);
      await until(() => mine.every((p) => !alive(p)), 3000);
      for (const p of mine) expect(alive(p), `container process ${p}`).toBe(false);
      expect(alive(host.pid!), 'the host process in the same cgroup').toBe(true);
      expect(existsSync(cgDir(rel)), 'the pre-existing cgroup').toBe(true);
    });
  });

  it('control: a cgroup tsrun made for a container is removed by its delete', async () => {
    const rel = `${parentRel}/own`;
    mkdirSync(cgDir(parentRel), { recursive: true });
    const id = newId('ctl');
    await runDetached(id, bundleIn(rel, 'sleep'));
    expect(existsSync(cgDir(rel))).toBe(true);
    const d = await oci(root, ['delete', '--force', id]);
    expect(d.code, show(d)).toBe(0);
    ids.delete(id);
    expect(existsSync(cgDir(rel))).toBe(false);
  });
});
