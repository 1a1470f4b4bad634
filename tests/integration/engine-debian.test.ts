// "Install packages in a running container and keep them", as a docker user does it, with no
// network: the Debian 12 image of images/debian/build.sh (its debootstrap tree is cached under
// .cache/images/, so no mirror is needed once filled), a local apt repository made here (one
// tiny .deb built with dpkg-deb, a Packages index) bound at /repo, apt-get update/install by
// `exec` in a running container with --network none, then diff, commit and a new container
// from the committed image.
//
// Skipped with the reason when the engine cannot run, dpkg-deb is missing, or the image cannot
// be built (e.g. no cache and no mirror). Scratch dirs come from tempDir (removed at the end).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp-dir.js';
import { type Engine, engineSkipReason, makeEngine, REPO_ROOT, type Result, show } from './helpers/engine.js';

const BUILD_SH = path.join(REPO_ROOT, 'images/debian/build.sh');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = engineSkipReason() ?? (has('dpkg-deb') ? null : 'dpkg-deb is missing (apt-get install dpkg)');
if (skip) console.warn(`[engine-debian.test] SKIPPED: ${skip}`);

const APT_TIMEOUT = 180_000;

/** A one-package apt repository in `dir`: tsrun-hello_1.0_all.deb and its Packages index. */
function makeRepo(work: string, dir: string): void {
  const pkg = path.join(work, 'tsrun-hello');
  mkdirSync(path.join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(path.join(pkg, 'usr/bin'), { recursive: true });
  writeFileSync(
    path.join(pkg, 'DEBIAN/control'),
    'Package: tsrun-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: tsrun tests <tests@tsrun.invalid>\nDescription: prints hello\n',
  );
  writeFileSync(path.join(pkg, 'usr/bin/tsrun-hello'), '#!/bin/sh\necho hello\n');
  chmodSync(path.join(pkg, 'usr/bin/tsrun-hello'), 0o755);
  mkdirSync(dir, { recursive: true });
  const deb = 'tsrun-hello_1.0_all.deb';
  const b = spawnSync('dpkg-deb', ['--root-owner-group', '--build', pkg, path.join(dir, deb)], { encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`dpkg-deb --build failed (${b.status}): ${b.stderr}`);
  let packages: string;
  const scan = has('dpkg-scanpackages') ? spawnSync('dpkg-scanpackages', ['.', '/dev/null'], { cwd: dir, encoding: 'utf8' }) : undefined;
  if (scan?.status === 0 && scan.stdout.includes('Package: tsrun-hello')) {
    packages = scan.stdout;
  } else {
    // dpkg-dev is not installed: the stanza dpkg-scanpackages would write.
    const data = readFileSync(path.join(dir, deb));
    const sum = (alg: string) => createHash(alg).update(data).digest('hex');
    packages = [
      'Package: tsrun-hello',
      'Version: 1.0',
      'Architecture: all',
      'Maintainer: tsrun tests <tests@tsrun.invalid>',
      `Filename: ./${deb}`,
      `Size: ${data.length}`,
      `MD5sum: ${sum('md5')}`,
      `SHA256: ${sum('sha256')}`,
      'Description: prints hello',
      '',
    ].join('\n');
  }
  writeFileSync(path.join(dir, 'Packages'), packages);
}

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
    const out = tempDir('tsrun-engine-debian-image-');
    const b = spawnSync(BUILD_SH, [out], { encoding: 'utf8', timeout: 600_000 });
    if (b.status !== 0 || !existsSync(path.join(out, 'debian-oci.tar'))) {
      buildSkip = `images/debian/build.sh could not build the image (exit ${b.status ?? b.signal}): ${b.stderr.trim().split('\n').slice(-3).join(' | ')}`;
      console.warn(`[engine-debian.test] SKIPPED: ${buildSkip}`);
      return;
    }
    await ok(['load', '-i', path.join(out, 'debian-oci.tar'), '-t', 'localhost/debian:12'], 300_000);
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
