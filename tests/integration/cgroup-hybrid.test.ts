// On a host whose resource controllers are in cgroup v1 (hybrid, like ours), tsrun refuses
// a limit it cannot apply, with a message naming the controller and the fix, and still runs
// unlimited containers in the v2 hierarchy, where freeze and kill need no controller.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBaseBundle,
  cleanupAll,
  leftoversFor,
  makeBundle,
  oci,
  ociSkipReason,
  removeScratch,
  show,
  until,
  v2Mount,
  type BaseBundle,
} from './helpers/bundle.js';

function hybridSkipReason(): string | null {
  const base = ociSkipReason();
  if (base) return base;
  const m = v2Mount();
  if (!m) return 'no cgroup v2 hierarchy mounted';
  const ctrls = readFileSync(join(m, 'cgroup.controllers'), 'utf8');
  if (/\bmemory\b/.test(ctrls)) return 'the memory controller is in cgroup v2 here (not a hybrid host): the VM suite covers this';
  return null;
}
const skip = hybridSkipReason();
if (skip) console.log(`cgroup-hybrid: skipped: ${skip}`);

describe.skipIf(!!skip)('cgroups on a hybrid host', () => {
  let base: BaseBundle;
  let root: string;
  const ids: string[] = [];
  const id = (n: string) => {
    const v = `hy-${process.pid}-${n}`;
    ids.push(v);
    return v;
  };
  beforeAll(() => {
    base = buildBaseBundle('tsrun-hybrid');
    root = mkdtempSync(join(tmpdir(), 'tsrun-hybrid-root-'));
  });
  afterAll(async () => {
    const left = await cleanupAll(root, ids, base.tmp);
    rmSync(root, { recursive: true, force: true });
    removeScratch(base.tmp);
    expect(left).toEqual([]);
  });

  it('refuses a memory limit with a message naming the controller and the fix, leaving nothing', async () => {
    const c = id('mem');
    const b = makeBundle(base, (s) => (s.linux.resources = { memory: { limit: 32 * 1024 * 1024 } }));
    const r = await oci(root, ['run', '--bundle', b, c]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('cannot apply linux.resources (memory.limit): cgroup v2 controller(s) memory not available');
    expect(r.stderr).toContain('systemd.unified_cgroup_hierarchy=1');
    expect(leftoversFor(root, c, base.tmp)).toEqual([]);
    expect(existsSync(join(v2Mount()!, 'tsrun', c))).toBe(false);
  });

  it('refuses every kind of limit whose controller is missing, before creating anything', async () => {
    for (const [name, res] of [
      ['cpu', { cpu: { quota: 10000, period: 100000 } }],
      ['pids', { pids: { limit: 10 } }],
      ['cpuset', { cpu: { cpus: '0' } }],
      ['io', { blockIO: { weight: 100 } }],
    ] as const) {
      const c = id(`lim-${name}`);
      const r = await oci(root, ['run', '--bundle', makeBundle(base, (s) => (s.linux.resources = res)), c]);
      expect(r.code, show(r)).toBe(1);
      expect(r.stderr).toContain(`controller(s) ${name} not available`);
      expect(leftoversFor(root, c, base.tmp)).toEqual([]);
    }
  });

  it('runs a container without limits in a v2 cgroup: pause, resume and kill --all work', async () => {
    const c = id('free');
    const b = makeBundle(
      base,
      (s) => {
        s.process.args = ['/bin/sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done'];
        s.root.readonly = false;
      },
      { copyRootfs: true },
    );
    const r = await oci(root, ['run', '-d', '--bundle', b, c]);
    expect(r.code, show(r)).toBe(0);
    const st = JSON.parse((await oci(root, ['state', c])).stdout);
    expect(readFileSync(`/proc/${st.pid}/cgroup`, 'utf8')).toContain(`0::/tsrun/${c}`);
    const count = () => Number(readFileSync(join(b, 'rootfs/tmp/count'), 'utf8') || 0);
    await until(() => count() > 2 || null);
    expect((await oci(root, ['pause', c])).code).toBe(0);
    expect(JSON.parse((await oci(root, ['state', c])).stdout).status).toBe('paused');
    const frozenAt = count();
    await new Promise((res) => setTimeout(res, 400));
    expect(count()).toBe(frozenAt);
    expect((await oci(root, ['resume', c])).code).toBe(0);
    await until(() => count() > frozenAt || null);
    expect((await oci(root, ['kill', '--all', c, 'KILL'])).code).toBe(0);
    let status = '';
    for (let i = 0; i < 100 && status !== 'stopped'; i++) {
      status = JSON.parse((await oci(root, ['state', c])).stdout).status;
      if (status !== 'stopped') await new Promise((res) => setTimeout(res, 50));
    }
    expect(status).toBe('stopped');
    expect((await oci(root, ['delete', c])).code).toBe(0);
    expect(existsSync(join(v2Mount()!, 'tsrun', c))).toBe(false);
  });
});
