// runtime-spec lifecycle rules tsrun-oci used to bend (issue 10 items 4 and 5): `delete` of a
// created (not stopped) container fails and changes nothing unless forced, and a config that
// refers to a cgroup controller that does not exist (net_cls/net_prio) fails.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseBundle, buildBaseBundle, cleanupAll, leftoversFor, makeBundle, oci, ociSkipReason, removeScratch, show } from './helpers/bundle.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[spec-lifecycle.test] SKIPPED: ${skipReason}`);

describe.skipIf(!!skipReason)('runtime-spec lifecycle', () => {
  let base: BaseBundle;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();
  let seq = 0;
  const newId = (what: string) => {
    const id = `speclc-${what}-${process.pid}-${++seq}`;
    ids.add(id);
    return id;
  };

  beforeAll(() => {
    base = buildBaseBundle('tsrun-speclc');
  });
  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('delete of a created container fails and changes nothing; delete --force removes it', async () => {
    const dir = makeBundle(base, (s) => (s.process.args = ['/bin/echo', 'started']));
    const id = newId('created');
    const c = await oci(root(), ['create', '--bundle', dir, id]);
    expect(c.code, show(c)).toBe(0);
    const d = await oci(root(), ['delete', id]);
    expect(d.code, show(d)).toBe(1);
    expect(d.stderr).toContain(`cannot delete container ${id} that is not stopped: created`);
    const st = await oci(root(), ['state', id]);
    expect(JSON.parse(st.stdout).status, show(st)).toBe('created');
    // Still startable: nothing was taken away.
    const s = await oci(root(), ['start', id]);
    expect(s.code, show(s)).toBe(0);
    const id2 = newId('forced');
    expect((await oci(root(), ['create', '--bundle', dir, id2])).code).toBe(0);
    const f = await oci(root(), ['delete', '--force', id2]);
    expect(f.code, show(f)).toBe(0);
    expect(leftoversFor(root(), id2, base.tmp)).toEqual([]);
  });

  it('linux.resources.network is refused before anything is created', async () => {
    const dir = makeBundle(base, (s) => {
      s.process.args = ['/bin/true'];
      s.linux.resources = { network: { classID: 1048577 } };
    });
    const id = newId('netcls');
    const r = await oci(root(), ['run', '--bundle', dir, id]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('cannot apply linux.resources.network: cgroup v2 has no net_cls/net_prio controllers');
    expect(leftoversFor(root(), id, base.tmp)).toEqual([]);
  });
});
