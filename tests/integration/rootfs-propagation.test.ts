// linux.rootfsPropagation (issue 10 item 3): all four values start a container and mean
// what the spec says. The container's root mount carries the propagation (mountinfo's
// optional fields), and with "shared" a mount made later under the root shows through a
// peer (a bind of "/" made first), where with "private" it does not.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show } from './helpers/bundle.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[rootfs-propagation.test] SKIPPED: ${skipReason}`);

const PROBE = [
  'awk \'$5=="/" {print "ROOT=" $0}\' /proc/self/mountinfo',
  // A peer of "/" first, then a new mount under "/": does it show through the peer?
  'mkdir -p /peer /late && mount -o bind / /peer 2>/dev/null && mount -t tmpfs late /late && touch /late/marker',
  'if [ -e /peer/late/marker ]; then echo PROPAGATED=yes; else echo PROPAGATED=no; fi',
].join('; ');

describe.skipIf(!!skipReason)('linux.rootfsPropagation', () => {
  let base: BaseBundle;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();

  beforeAll(() => {
    base = buildBaseBundle('tsrun-rootprop');
  });
  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  async function probe(propagation: string) {
    const dir = makeBundle(
      base,
      (s) => {
        s.root.readonly = false;
        s.linux.rootfsPropagation = propagation;
        s.process.args = ['/bin/sh', '-c', PROBE];
        for (const set of ['bounding', 'effective', 'permitted']) s.process.capabilities[set].push('CAP_SYS_ADMIN');
      },
      { copyRootfs: true },
    );
    const id = `rootprop-${propagation}-${process.pid}`;
    ids.add(id);
    const r = await oci(root(), ['run', '--bundle', dir, id]);
    expect(r.code, show(r)).toBe(0);
    const rootLine = /^ROOT=(.*)$/m.exec(r.stdout)?.[1] ?? '';
    const optional = rootLine.split(' - ')[0]!.split(' ').slice(6).join(' ');
    return { optional, propagated: /^PROPAGATED=(\w+)$/m.exec(r.stdout)?.[1], r };
  }

  it('shared: the root is shared and a later mount shows through its peer', async () => {
    const p = await probe('shared');
    expect(p.optional, show(p.r)).toMatch(/shared:\d+/);
    expect(p.propagated, show(p.r)).toBe('yes');
  });

  it('private: neither shared nor unbindable, and a later mount stays put', async () => {
    const p = await probe('private');
    expect(p.optional, show(p.r)).not.toMatch(/shared:|unbindable/);
    expect(p.propagated, show(p.r)).toBe('no');
  });

  it('slave: not shared (receives only), a later mount stays put', async () => {
    const p = await probe('rslave');
    expect(p.optional, show(p.r)).not.toMatch(/shared:|unbindable/);
    expect(p.propagated, show(p.r)).toBe('no');
  });

  it('unbindable: the root cannot be bind-mounted', async () => {
    const p = await probe('unbindable');
    expect(p.optional, show(p.r)).toMatch(/unbindable/);
    expect(p.propagated, show(p.r)).toBe('no');
  });
});
