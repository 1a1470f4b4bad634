// checkpoint / restore (CRIU) on this host: runc's contract as Podman calls it. The cases that
// need a working CRIU (helpers/checkpoint.ts) are skipped with `criu check`'s own reason where
// it cannot run (on kernels >= 6.13 Debian 12's criu 3.17 fails in its vDSO detection); the
// same cases run in the cgroup v2 VM (tests/vm/checkpoint.test.ts, `npm run test:vm -- -t
// checkpoint`). The refusals below need no working CRIU and run everywhere.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show } from './helpers/bundle.js';
import { criuSkipReason, directCheckpointSkipReason, podmanCheckpointSkipReason, registerDirectCases, registerPodmanCases } from './helpers/checkpoint.js';

const criuSkip = criuSkipReason();
const directSkip = directCheckpointSkipReason(criuSkip);
const podmanSkip = podmanCheckpointSkipReason(criuSkip);
if (directSkip) console.warn(`[checkpoint.test] tsrun-oci checkpoint/restore SKIPPED: ${directSkip}`);
if (podmanSkip) console.warn(`[checkpoint.test] podman checkpoint/restore SKIPPED: ${podmanSkip}`);

registerDirectCases('host', directSkip);
registerPodmanCases(podmanSkip);

const skip = ociSkipReason();
describe.skipIf(skip !== null)('checkpoint / restore refusals (no working criu needed)', () => {
  let base: BaseBundle;
  let root: string;
  const ids: string[] = [];
  const id = (n: string) => {
    const v = `cpt-ref-${n}`;
    ids.push(v);
    return v;
  };
  beforeAll(() => {
    base = buildBaseBundle('tsrun-cpt-ref');
    root = mkdtempSync(join(tmpdir(), 'tsrun-cpt-ref-root-'));
  });
  afterEach(async () => {
    expect(await cleanupAll(root, ids.splice(0), base.tmp)).toEqual([]);
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    if (base) removeScratch(base.tmp);
  });
  const sleeper = () =>
    makeBundle(base, (s) => {
      s.process.terminal = false;
      s.process.args = ['/bin/sleep', '300'];
    });

  it("a checkpoint criu cannot make fails with criu's reason, and the container keeps running", async () => {
    const c = id('fail');
    expect((await oci(root, ['run', '-d', '--bundle', sleeper(), c])).code).toBe(0);
    const img = join(base.tmp, 'img-fail');
    // a criu that always fails, with a log line as criu writes them
    const fake = join(base.tmp, 'fake-criu');
    (await import('node:fs')).writeFileSync(
      fake,
      `#!/bin/sh\nfor a; do case "$p" in -o) log="$a";; -D) dir="$a";; esac; p="$a"; done\necho "(00.000001) Error (criu/cr-dump.c:1): fake criu refuses" > "$dir/$log"\nexit 1\n`,
      { mode: 0o755 },
    );
    const r = await oci(root, ['--criu', fake, 'checkpoint', '--image-path', img, c]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain(`checkpoint of container ${c} failed: criu exit status 1`);
    expect(r.stderr).toContain('fake criu refuses');
    expect(r.stderr).toContain(join(img, 'dump.log'));
    const st = await oci(root, ['state', c]);
    expect(JSON.parse(st.stdout).status).toBe('running');
  });

  it('names a missing criu binary and the fix', async () => {
    const c = id('nocriu');
    expect((await oci(root, ['run', '-d', '--bundle', sleeper(), c])).code).toBe(0);
    const r = await oci(root, ['--criu', '/nonexistent/criu', 'checkpoint', '--image-path', join(base.tmp, 'x'), c]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('criu binary "/nonexistent/criu" (--criu) does not exist');
    expect(r.stderr).toMatch(/apt-get install criu/);
  });

  it('refuses to checkpoint a created or stopped container, and a bad --manage-cgroups-mode', async () => {
    const created = id('created');
    expect((await oci(root, ['create', '--bundle', sleeper(), created])).code).toBe(0);
    const r1 = await oci(root, ['checkpoint', '--image-path', join(base.tmp, 'y'), created]);
    expect(r1.code, show(r1)).toBe(1);
    expect(r1.stderr).toContain(`container ${created} cannot be checkpointed in created state`);
    const stopped = id('stopped');
    const b = makeBundle(base, (s) => {
      s.process.terminal = false;
      s.process.args = ['/bin/true'];
    });
    expect((await oci(root, ['run', '--keep', '--bundle', b, stopped])).code).toBe(0);
    const r2 = await oci(root, ['checkpoint', '--image-path', join(base.tmp, 'z'), stopped]);
    expect(r2.stderr).toContain('cannot be checkpointed in stopped state');
    const running = id('mode');
    expect((await oci(root, ['run', '-d', '--bundle', sleeper(), running])).code).toBe(0);
    const r3 = await oci(root, ['checkpoint', '--manage-cgroups-mode', 'bogus', '--image-path', join(base.tmp, 'w'), running]);
    expect(r3.code, show(r3)).toBe(1);
    expect(r3.stderr).toContain('invalid --manage-cgroups-mode "bogus"');
  });

  it('restore without a checkpoint says so and leaves nothing behind', async () => {
    const c = id('noimg');
    const r = await oci(root, ['restore', '-d', '--image-path', join(base.tmp, 'empty'), '--bundle', sleeper(), c]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('inventory.img is missing');
    expect((await oci(root, ['state', c])).code).not.toBe(0);
  });

  it('checkpoint --help exits 0 (Podman probes checkpoint support with it)', async () => {
    const r = await oci(root, ['checkpoint', '--help']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('--image-path');
  });
});
