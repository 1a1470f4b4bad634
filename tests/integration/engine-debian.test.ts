// "Install packages in a running container and keep them", as a docker user does it, with no
// network: the Debian 12 image of images/debian/build.sh (its debootstrap tree is cached under
// .cache/images/, so no mirror is needed once filled), a local apt repository made here (one
// tiny .deb built with dpkg-deb, a Packages index) bound at /repo, apt-get update/install by
// `exec` in a running container with --network none, then diff, commit and a new container
// from the committed image.
//
// Skipped with the reason when the engine cannot run, dpkg-deb is missing, or the image cannot
// be built (e.g. no cache and no mirror). Scratch dirs come from tempDir (removed at the end).
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp-dir.js';
import { buildDebianImage, debianSkipReason, makeRepo } from './helpers/debian.js';
import { type Engine, engineSkipReason, makeEngine, type Result, show } from './helpers/engine.js';

const skip = engineSkipReason() ?? debianSkipReason();
if (skip) console.warn(`[engine-debian.test] SKIPPED: ${skip}`);

const APT_TIMEOUT = 180_000;

describe.skipIf(!!skip)('tsrun: install packages in a running Debian container and keep them', () => {
  let e: Engine;
  let buildSkip: string | null = null;
  let repo: string;

  const ok = async (args: string[], timeoutMs = 60_000): Promise<Result> => {
    const r = await e.tsrun(args, { timeoutMs });
    expect(r.code, `tsrun ${args.join(' ')}\n${show(r)}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    e = makeEngine('tsrun-engine-debian');
    const img = buildDebianImage(tempDir('tsrun-engine-debian-image-'));
    if ('skip' in img) {
      buildSkip = img.skip;
      console.warn(`[engine-debian.test] SKIPPED: ${buildSkip}`);
      return;
    }
    await ok(['load', '-i', img.archive, '-t', 'localhost/debian:12'], 300_000);
    const work = tempDir('tsrun-engine-debian-repo-');
    repo = path.join(work, 'repo');
    makeRepo(work, repo);
  }, 900_000);
  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('installs a package from a local file: repository with apt-get, in a container without network', async (ctx) => {
    ctx.skip(!!buildSkip, buildSkip ?? '');
    await ok(['run', '-d', '--name', 'deb', '--network', 'none', '-v', `${repo}:/repo:ro`, 'localhost/debian:12', 'sleep', 'infinity']);
    const net = await ok(['inspect', '-f', '{{.HostConfig.NetworkMode}}', 'deb']);
    expect(net.stdout).toBe('none\n');
    // Only the loopback interface: apt can reach nothing but the file: repository.
    const ifaces = await ok(['exec', 'deb', 'sh', '-c', "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"]);
    expect(ifaces.stdout).toBe('lo\n');

    await ok([
      'exec',
      'deb',
      'sh',
      '-c',
      'echo "deb [trusted=yes] file:/repo ./" > /etc/apt/sources.list.d/local.list; rm -f /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list',
    ]);
    const update = await ok(['exec', 'deb', 'apt-get', 'update'], APT_TIMEOUT);
    expect(update.stdout).toMatch(/file:\/repo/);
    const install = await ok(['exec', '-e', 'DEBIAN_FRONTEND=noninteractive', 'deb', 'apt-get', 'install', '-y', 'tsrun-hello'], APT_TIMEOUT);
    expect(install.stdout).toMatch(/Setting up tsrun-hello \(1\.0\)/);
    expect((await ok(['exec', 'deb', 'tsrun-hello'])).stdout).toBe('hello\n');
  }, 400_000);

  it('diff shows the installed file, not the repository mount', async (ctx) => {
    ctx.skip(!!buildSkip, buildSkip ?? '');
    const lines = (await ok(['diff', 'deb'])).stdout.split('\n');
    expect(lines).toContain('A /usr/bin/tsrun-hello');
    expect(lines).toContain('A /etc/apt/sources.list.d/local.list');
    expect(lines).toContain('D /etc/apt/sources.list.d/debian.sources');
    expect(lines.filter((l) => l === 'A /repo' || l.startsWith('A /repo/') || l.startsWith('C /repo'))).toEqual([]);
  });

  it('commit keeps the package: a new container from the image runs it', async (ctx) => {
    ctx.skip(!!buildSkip, buildSkip ?? '');
    await ok(['commit', 'deb', 'localhost/debian-hello:1'], 300_000);
    expect((await ok(['images'])).stdout).toMatch(/^localhost\/debian-hello:1\s/m);
    const r = await ok(['run', '--rm', '--network', 'none', 'localhost/debian-hello:1', 'tsrun-hello']);
    expect(r.stdout).toBe('hello\n');
    const status = await ok(['run', '--rm', '--network', 'none', 'localhost/debian-hello:1', 'dpkg', '-s', 'tsrun-hello']);
    expect(status.stdout).toMatch(/^Status: install ok installed$/m);
    expect(status.stdout).toMatch(/^Version: 1\.0$/m);
    await ok(['rm', '-f', 'deb']);
  }, 400_000);
});
