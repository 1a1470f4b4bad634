// The engine's generated spec (src/engine/specgen.ts) runs under the runtime as is: a busybox
// image config plus flags becomes a bundle, and the container sees docker's defaults from
// inside (capabilities, masks, /dev/shm, read-only /sys, the merged env and cwd).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec } from '../../src/engine/specgen.js';
import { capMask, readLastCap } from '../../src/linux/capabilities.js';
import { type BaseBundle, buildBaseBundle, cleanupAll, oci, ociSkipReason, removeScratch, show } from './helpers/bundle.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[engine-spec.test] SKIPPED: ${skipReason}`);

const PROBE =
  'grep -E "^CapEff" /proc/self/status; echo "CWD=$(pwd)"; echo "LANG=$LANG"; cat /proc/kcore 2>&1 | head -c 0; [ -s /proc/kcore ] && echo KCORE=visible || echo KCORE=masked; ' +
  'grep " /dev/shm " /proc/self/mountinfo | grep -q "size=65536k" && echo SHM=64M; touch /sys/x 2>/dev/null && echo SYS=rw || echo SYS=ro; echo "HOST=$(hostname)"';

describe.skipIf(!!skipReason)('the engine’s spec runs under tsrun-oci', () => {
  let base: BaseBundle;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();

  beforeAll(() => {
    base = buildBaseBundle('tsrun-engine-spec');
  });
  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('image config + flags -> a container with docker’s defaults', async () => {
    const spec = buildSpec({
      image: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['exit 9'], Env: ['LANG=C'], WorkingDir: '/tmp' },
      intent: { cmd: [PROBE], env: ['LANG=C.UTF-8'], network: 'none', hostname: 'eng1' },
      user: { uid: 0, gid: 0, additionalGids: [0], home: '/root' },
      hostname: 'eng1',
    });
    spec.root!.path = base.rootfs;
    spec.root!.readonly = true;
    const dir = path.join(base.tmp, 'bundle');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
    const id = `engine-spec-${process.pid}`;
    ids.add(id);
    const r = await oci(root(), ['run', '--bundle', dir, id]);
    expect(r.code, show(r)).toBe(0);
    const want = capMask(spec.process!.capabilities!.effective, readLastCap()).mask.toString(16).padStart(16, '0');
    expect(r.stdout).toContain(`CapEff:\t${want}`);
    expect(r.stdout).toContain('CWD=/tmp');
    expect(r.stdout).toContain('LANG=C.UTF-8');
    expect(r.stdout).toContain('KCORE=masked');
    expect(r.stdout).toContain('SHM=64M');
    expect(r.stdout).toContain('SYS=ro');
    expect(r.stdout).toContain('HOST=eng1');
  });
});
