// The Debian image of images/debian/build.sh and a one-package apt repository, for the tests
// that install packages without a network (a file: source, or HTTP on 127.0.0.1).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './engine.js';

const BUILD_SH = path.join(REPO_ROOT, 'images/debian/build.sh');
export const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
/** A one-package apt repository in `dir`: tsrun-hello_1.0_all.deb and its Packages index. */
export function makeRepo(work: string, dir: string): void {
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

/** Why the Debian tests cannot run here (tools), or null; the image build itself may still fail. */
export function debianSkipReason(): string | null {
  return has('dpkg-deb') ? null : 'dpkg-deb is missing (apt-get install dpkg)';
}

/** images/debian/build.sh OUT: the oci-archive, or why it could not be built (e.g. no cache and no mirror). */
export function buildDebianImage(out: string): { archive: string } | { skip: string } {
  const b = spawnSync(BUILD_SH, [out], { encoding: 'utf8', timeout: 600_000 });
  const archive = path.join(out, 'debian-oci.tar');
  if (b.status !== 0 || !existsSync(archive)) {
    return { skip: `images/debian/build.sh could not build the image (exit ${b.status ?? b.signal}): ${b.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  }
  return { archive };
}
