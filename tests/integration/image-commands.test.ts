// The image commands as a docker user expects them (issue 12): save to stdout, load naming an
// archive from its own annotations, one image loaded from two archive formats is one image,
// images shows the unpacked size, and prune says what it kept and why.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Engine, engineSkipReason, makeEngine, type Result, show, TSRUN } from './helpers/engine.js';

const skip = engineSkipReason();
if (skip) console.warn(`[image-commands.test] SKIPPED: ${skip}`);

describe.skipIf(!!skip)('image commands as docker users expect them', () => {
  let e: Engine;
  const ok = async (args: string[]): Promise<Result> => {
    const r = await e.tsrun(args);
    expect(r.code, `tsrun ${args.join(' ')}\n${show(r)}`).toBe(0);
    return r;
  };
  beforeAll(() => {
    e = makeEngine('tsrun-image-commands');
  });
  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('save writes to stdout without -o; a terminal is refused', async () => {
    const out = path.join(e.tmp, 'stdout.tar');
    const r = spawnSync('sh', ['-c', `"$@" > ${out}`, 'sh', ...e.argv(['save', 'busybox'])], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const list = spawnSync('tar', ['-tf', out], { encoding: 'utf8' });
    expect(list.stdout).toMatch(/^index\.json$/m);
    expect(list.stdout).toMatch(/^oci-layout$/m);
    // Under a pty (script), stdout is a terminal: refused with a hint, nothing written there.
    const tty = spawnSync('script', ['-qec', [TSRUN, '--root', e.root, '--runroot', e.runRoot, 'save', 'busybox'].join(' '), '/dev/null'], {
      encoding: 'utf8',
    });
    expect(tty.status).not.toBe(0);
    expect(tty.stdout).toMatch(/refusing to write an image archive to a terminal/);
  });

  it('load names an archive from its own annotations (the busybox recipe says localhost/busybox)', async () => {
    const second = makeEngine('tsrun-image-commands-2');
    try {
      const archive = path.join(e.tmp, 'busybox-image', 'busybox-oci.tar');
      const r = await second.tsrun(['load', '-i', archive]);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toMatch(/^loaded localhost\/busybox:latest /m);
      expect(r.stdout).not.toMatch(/busybox-oci/);
    } finally {
      expect(await second.teardown()).toEqual([]);
    }
  });

  it('one image loaded from an OCI and a docker archive is one image: inspect by its full id works', async () => {
    const docker = path.join(e.tmp, 'docker.tar');
    await ok(['save', '--format', 'docker-archive', '-o', docker, 'busybox']);
    await ok(['tag', 'busybox', 'localhost/other:1']);
    await ok(['rmi', 'localhost/other:1']);
    await ok(['load', '-i', docker, '-t', 'localhost/from-docker:1']);
    const id = JSON.parse((await ok(['image', 'inspect', 'localhost/busybox'])).stdout)[0].id as string;
    const byId = await ok(['image', 'inspect', id]);
    const refs = JSON.parse(byId.stdout)[0].refs as string[];
    expect(refs).toEqual(expect.arrayContaining(['localhost/busybox:latest', 'localhost/from-docker:1']));
    await ok(['rmi', 'localhost/from-docker:1']);
  });

  it('images shows the unpacked size, as docker and podman do', async () => {
    const rows = JSON.parse((await ok(['images', '--format', 'json'])).stdout) as Array<{ ref: string; size: number; compressedSize: number }>;
    const bb = rows.find((r) => r.ref === 'localhost/busybox:latest')!;
    const diffId = JSON.parse((await ok(['image', 'inspect', 'busybox'])).stdout)[0].config.rootfs.diff_ids[0] as string;
    const meta = JSON.parse(readFileSync(path.join(e.root, 'layers', diffId.slice(7), 'layer.json'), 'utf8')) as { size: number };
    expect(bb.size).toBe(meta.size);
    expect((await ok(['images'])).stdout).toMatch(/localhost\/busybox:latest .* 2\.\d MB/);
  });

  it('rmi then image prune says what it kept for being fresh, and --all removes it', async () => {
    await ok(['load', '-i', path.join(e.tmp, 'docker.tar'), '-t', 'localhost/to-prune:1']);
    await ok(['tag', 'busybox', 'localhost/keep:1']);
    await ok(['rmi', 'localhost/to-prune:1']);
    const p = await ok(['image', 'prune']);
    expect(p.stdout).toMatch(/kept \d+ unused blob\(s\) and \d+ layer\(s\) changed in the last 10 minutes .*image prune --all/);
    const all = await ok(['image', 'prune', '--all']);
    expect(all.stdout).toMatch(/removed [1-9]\d* blob\(s\)/);
    await ok(['rmi', 'localhost/keep:1']);
  });
});
