// tsrun builds a Containerfile that podman builds, with the same files in the result: the same
// busybox image (images/busybox/oci-layout.sh, the same image id in both stores) and the same
// context go through `tsrun build` and `podman build`; each result's root filesystem is taken
// out as a user would (tsrun: `create` + `cp -a C:/. DIR`; podman: `create` + `export` | tar -x)
// and the two trees are compared: paths, types, modes, owners, sizes, symlink targets and file
// content hashes. Then the image configs' runtime fields are compared too.
//
// Podman runs isolated (tests/integration/helpers/clients.ts: its own graphroot/runroot/tmpdir,
// cgroupfs, a file events log, file locks; its leftovers are checked at cleanup). `podman build`
// uses --isolation oci with runc as the reference runtime: --isolation chroot refuses
// --network none ("cannot set --network other than host with --isolation chroot"). tsrun uses a
// private engine (makeEngine). Skipped with the reason when not root, or podman/runc is missing.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp-dir.js';
import { describeResult, type PodmanEnv, podmanSkipReason, setupPodman } from './helpers/clients.js';
import { type Engine, engineSkipReason, makeEngine, REPO_ROOT, show } from './helpers/engine.js';

function which(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const RUNC = which('runc');
const skip = engineSkipReason() ?? podmanSkipReason() ?? (RUNC ? null : "'runc' not on PATH (podman build's reference runtime)");
if (skip) console.warn(`[build-podman.test] SKIPPED: ${skip}`);

const BUSYBOX = 'localhost/busybox:latest';

// Built with both. Every instruction that makes a layer, ownership and modes from several
// sources (RUN as root and as a user, COPY --chown/--chmod, a tar's own modes), a deletion of
// a base image file (a whiteout), symlinks and a hard link.
const CONTAINERFILE = `FROM localhost/busybox
ENV APP_HOME=/app GREETING="hello there"
RUN mkdir -p /data/made /data/empty && echo made > /data/made/file && chmod 0640 /data/made/file \\
 && ln -s made/file /data/link && ln /data/made/file /data/hard && chown 1000:1000 /data/made \\
 && rm /bin/vi && echo "$GREETING" > /data/greeting
COPY dir /copied/
COPY --chown=1000:1000 dir/sub /owned/
COPY --chmod=0700 run.sh /usr/local/bin/run.sh
COPY a.txt b.txt /multi/
ADD files.tar /extracted/
ADD files.tar.gz /extracted-gz
WORKDIR $APP_HOME
RUN echo in-app > here.txt && mkdir -p /home/user && chown 1000:1000 /home/user
COPY a.txt relative/
USER 1000:1000
RUN echo "as $(id -u):$(id -g)" > /home/user/who.txt && touch /tmp/user-file
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /home/user/who.txt"]
`;

interface Node {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
}

/**
 * What is left out of the comparison, and why:
 *  - etc/hostname, etc/hosts, etc/resolv.conf: per-container files a runtime writes and
 *    bind-mounts (podman leaves empty placeholders in the container's rootfs at create; tsrun
 *    keeps them out of the rootfs and out of `cp`); no build step writes them.
 *  - run: podman creates /run in every container's rootfs at create (for /run/.containerenv);
 *    the busybox image has no /run.
 *  - the contents of dev, proc, sys: mount points that runtimes fill (a fresh /dev, procfs,
 *    sysfs); the directories themselves are compared.
 * Also ignored for every entry: mtimes/atimes/ctimes (when each build ran), the link count and
 * a directory's size (filesystem bookkeeping, not content).
 */
const EXCLUDED = new Set(['etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'run']);
const MOUNT_POINTS = ['dev', 'proc', 'sys'];

function excluded(rel: string): boolean {
  if (EXCLUDED.has(rel) || [...EXCLUDED].some((x) => rel.startsWith(`${x}/`))) return true;
  return MOUNT_POINTS.some((m) => rel.startsWith(`${m}/`));
}

/** A file tree as path -> what is compared (lstat: links are never followed). */
function fileTree(root: string): Map<string, Node> {
  const out = new Map<string, Node>();
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const rel = prefix ? `${prefix}/${name}` : name;
      if (excluded(rel)) continue;
      const p = join(dir, name);
      const st = lstatSync(p);
      const type = st.isDirectory()
        ? 'dir'
        : st.isFile()
          ? 'file'
          : st.isSymbolicLink()
            ? 'symlink'
            : st.isCharacterDevice()
              ? 'char'
              : st.isFIFO()
                ? 'fifo'
                : 'other';
      const node: Node = { type, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid, gid: st.gid };
      if (type === 'file') {
        node.size = st.size;
        node.sha256 = createHash('sha256').update(readFileSync(p)).digest('hex');
      } else if (type === 'symlink') node.link = readlinkSync(p);
      else if (type === 'char') node.size = Number(st.rdev);
      out.set(rel, node);
      if (type === 'dir') walk(p, rel);
    }
  };
  walk(root, '');
  return out;
}

describe.skipIf(skip !== null)('tsrun build vs podman build', () => {
  let e: Engine | undefined;
  let pm: PodmanEnv | undefined;
  let ctx = '';
  let work = '';
  const TSRUN_REF = 'localhost/build-cmp-tsrun:latest';
  const PODMAN_REF = 'localhost/build-cmp-podman:latest';
  let tsrunTree: Map<string, Node> | undefined;
  let podmanTree: Map<string, Node> | undefined;

  const eng = () => {
    if (!e) throw new Error('engine setup failed (see beforeAll)');
    return e;
  };
  const podman = (args: string[], timeoutMs = 120_000) => {
    if (!pm) throw new Error('podman setup failed (see beforeAll)');
    return pm.run(args, { timeoutMs });
  };

  beforeAll(async () => {
    e = makeEngine('tsrun-build-podman');
    pm = await setupPodman();
    work = tempDir('tsrun-build-podman-');
    // the same busybox image in podman: its OCI archive, loaded, named localhost/busybox
    const layout = join(work, 'busybox');
    const sh = spawnSync(join(REPO_ROOT, 'images/busybox/oci-layout.sh'), [layout], { encoding: 'utf8' });
    if (sh.status !== 0) throw new Error(`oci-layout.sh failed: ${sh.stderr}`);
    const load = await podman(['load', '-i', join(layout, 'busybox-oci.tar')]);
    if (load.code !== 0) throw new Error(`podman load: ${describeResult(load)}`);
    // podman names the loaded image after its ref.name annotation (localhost/latest on some
    // versions, localhost/busybox:latest on others): tag it as tsrun has it
    const loaded = /Loaded image(?:\(s\))?:\s*(\S+)/.exec(load.stdout)?.[1];
    if (!loaded) throw new Error(`podman load named nothing: ${describeResult(load)}`);
    if (loaded !== BUSYBOX) {
      const t = await podman(['tag', loaded, BUSYBOX]);
      if (t.code !== 0) throw new Error(`podman tag: ${describeResult(t)}`);
    }

    ctx = join(work, 'ctx');
    const files: Record<string, string> = {
      'a.txt': 'a\n',
      'b.txt': 'b\n',
      'dir/x': 'x\n',
      'dir/sub/y': 'y\n',
      'dir/sub/deeper/z': 'z\n',
      'run.sh': '#!/bin/sh\necho script\n',
      'tsrc/t.txt': 'from the tar\n',
      'tsrc/tdir/u.txt': 'u\n',
    };
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(dirname(join(ctx, rel)), { recursive: true });
      writeFileSync(join(ctx, rel), content);
    }
    symlinkSync('x', join(ctx, 'dir/lnk'));
    chmodSync(join(ctx, 'dir/sub/y'), 0o600);
    chmodSync(join(ctx, 'tsrc/tdir/u.txt'), 0o751);
    // the tars: made by GNU tar with fixed owners, as a user would
    for (const [out, z] of [
      ['files.tar', []],
      ['files.tar.gz', ['-z']],
    ] as const) {
      const t = spawnSync('tar', ['-C', join(ctx, 'tsrc'), '--owner=0', '--group=0', '--numeric-owner', ...z, '-cf', join(ctx, out), '.'], {
        encoding: 'utf8',
      });
      if (t.status !== 0) throw new Error(`tar: ${t.stderr}`);
    }
    writeFileSync(join(ctx, 'Containerfile'), CONTAINERFILE);
  }, 300_000);

  afterAll(async () => {
    const problems: string[] = [];
    if (e) problems.push(...(await e.teardown()));
    if (pm) {
      await podman(['rmi', '-f', PODMAN_REF, BUSYBOX]).catch(() => undefined);
      try {
        await pm.cleanup();
      } catch (err) {
        problems.push(String(err));
      }
    }
    expect(problems).toEqual([]);
  }, 300_000);

  it('tsrun builds a Containerfile that podman builds, with the same files in the result (compare the two rootfs trees)', async () => {
    // the same base image in both stores
    const ours = await eng().tsrun(['image', 'inspect', BUSYBOX]);
    expect(ours.code, show(ours)).toBe(0);
    const theirs = await podman(['image', 'inspect', '--format', '{{.Id}}', BUSYBOX]);
    expect(theirs.code, describeResult(theirs)).toBe(0);
    expect(JSON.parse(ours.stdout)[0].id).toBe(`sha256:${theirs.stdout.trim()}`);

    const pb = await podman(['build', '--network', 'none', '--isolation', 'oci', '--runtime', RUNC!, '-t', PODMAN_REF, '-f', join(ctx, 'Containerfile'), ctx]);
    expect(pb.code, describeResult(pb)).toBe(0);
    const tb = await eng().tsrun(['build', '--network', 'none', '-t', TSRUN_REF, '-f', join(ctx, 'Containerfile'), ctx], { timeoutMs: 120_000 });
    expect(tb.code, show(tb)).toBe(0);

    // podman: create + export, unpacked as root with the owners and modes in the tar
    const pc = await podman(['create', PODMAN_REF]);
    expect(pc.code, describeResult(pc)).toBe(0);
    const pid = pc.stdout.trim().split('\n').pop()!;
    const ptar = join(work, 'podman-export.tar');
    const pe = await podman(['export', '-o', ptar, pid]);
    expect(pe.code, describeResult(pe)).toBe(0);
    expect((await podman(['rm', pid])).code).toBe(0);
    const pdir = join(work, 'podman-root');
    mkdirSync(pdir);
    const x = spawnSync('tar', ['-C', pdir, '--numeric-owner', '--same-permissions', '-xf', ptar], { encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);

    // tsrun: create + cp -a (owners kept) of the whole root
    const tc = await eng().tsrun(['create', TSRUN_REF]);
    expect(tc.code, show(tc)).toBe(0);
    const tid = tc.stdout.trim();
    const tdir = join(work, 'tsrun-root');
    const cp = await eng().tsrun(['cp', '-a', `${tid}:/.`, tdir]);
    expect(cp.code, show(cp)).toBe(0);
    expect((await eng().tsrun(['rm', tid])).code).toBe(0);

    podmanTree = fileTree(pdir);
    tsrunTree = fileTree(tdir);
    // sanity: the trees hold what the Containerfile made
    for (const p of [
      'data/made/file',
      'data/link',
      'copied/sub/deeper/z',
      'owned/y',
      'extracted/tdir/u.txt',
      'extracted-gz/t.txt',
      'app/here.txt',
      'app/relative/a.txt',
      'home/user/who.txt',
      'tmp/user-file',
    ])
      expect(podmanTree.has(p), `podman's image has ${p}`).toBe(true);
    expect(podmanTree.has('bin/vi'), "podman's image lost /bin/vi").toBe(false);
    expect(podmanTree.size, 'the busybox tree and more').toBeGreaterThan(250);
    expect(podmanTree.get('owned/y')).toMatchObject({ type: 'file', mode: '0600', uid: 1000, gid: 1000 });
    expect(podmanTree.get('usr/local/bin/run.sh')).toMatchObject({ type: 'file', mode: '0700', uid: 0 });
    expect(podmanTree.get('data/link')).toMatchObject({ type: 'symlink', link: 'made/file' });
    expect(podmanTree.get('tmp/user-file')).toMatchObject({ type: 'file', uid: 1000, gid: 1000 });

    const diffs: string[] = [];
    for (const k of [...new Set([...podmanTree.keys(), ...tsrunTree.keys()])].sort()) {
      const a = tsrunTree.get(k);
      const b = podmanTree.get(k);
      if (JSON.stringify(a) !== JSON.stringify(b))
        diffs.push(`${k}\n    tsrun:  ${JSON.stringify(a) ?? 'missing'}\n    podman: ${JSON.stringify(b) ?? 'missing'}`);
    }
    expect(diffs, `${diffs.length} differences`).toEqual([]);
  }, 300_000);

  it('the two image configs agree on what a container starts with (Env, User, WorkingDir, Entrypoint, Cmd)', async () => {
    expect(tsrunTree && podmanTree, 'the build test ran first').toBeTruthy();
    const ours = await eng().tsrun(['image', 'inspect', TSRUN_REF]);
    expect(ours.code, show(ours)).toBe(0);
    const theirs = await podman(['image', 'inspect', PODMAN_REF]);
    expect(theirs.code, describeResult(theirs)).toBe(0);
    const t = JSON.parse(ours.stdout)[0].config.config as Record<string, unknown>;
    const p = JSON.parse(theirs.stdout)[0].Config as Record<string, unknown>;
    for (const k of ['Env', 'User', 'WorkingDir', 'Entrypoint', 'Cmd']) expect(t[k], k).toEqual(p[k]);
    // and both run it the same way
    const run = await eng().tsrun(['run', '--rm', TSRUN_REF]);
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout).toBe('as 1000:1000\n');
  });
});
