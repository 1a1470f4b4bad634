// In-root reads and copies (src/linux/in-root.ts over native/fs_inroot.cc), checked from
// outside on a real filesystem: a hostile root's symlinks (absolute, relative, at the top,
// in the middle, at the destination) must resolve inside the root or be refused, a FIFO or
// a device node must never be opened (no hang), nothing may be written outside the root,
// and mode, ownership and mtime must survive the copy both ways.
//
// Runs unprivileged too: ownership (chown to foreign ids), device nodes (mknod) and
// read-only directories (removal of a 0555 tree) are only checked as root.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  chownSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyIn, copyOut, readFileInRoot } from '../../src/linux/in-root.js';
import { native } from '../../src/native/index.js';
import { TsrunError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/tmp-dir.js';

const IS_ROOT = process.getuid?.() === 0;
const UID = IS_ROOT ? 1234 : (process.getuid?.() ?? 0);
const GID = IS_ROOT ? 2345 : (process.getgid?.() ?? 0);
const T0 = 1_600_000_000;
const T1 = 1_500_000_000;
const HAS_PYTHON = spawnSync('python3', ['-c', 'import socket']).status === 0;
const ADDON = resolve('build/Release/tsrun.node');

/** Scratch for this file: roots, host sources and destinations (removed after the file, pass or fail). */
const base = tempDir('tsrun-inroot-');
/** A host directory OUTSIDE every root that hostile symlinks point at: it must stay empty. */
const outside = tempDir('tsrun-inroot-outside-');
let seq = 0;

function fresh(prefix: string): string {
  const d = join(base, `${prefix}-${++seq}`);
  mkdirSync(d);
  return d;
}

function put(path: string, data: string, mode = 0o644, mtime = T0): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, data);
  if (IS_ROOT) chownSync(path, UID, GID); // before chmod: chown clears setuid/setgid
  chmodSync(path, mode);
  utimesSync(path, mtime, mtime);
}

function link(target: string, path: string, mtime = T0): void {
  mkdirSync(join(path, '..'), { recursive: true });
  symlinkSync(target, path);
  if (IS_ROOT) lchownSync(path, UID, GID);
  lutimesSync(path, mtime, mtime);
}

function dirMeta(path: string, mode: number, mtime = T1): void {
  if (IS_ROOT) chownSync(path, UID, GID);
  chmodSync(path, mode);
  utimesSync(path, mtime, mtime);
}

function expectMeta(path: string, mode: number | undefined, mtime = T0): void {
  const st = lstatSync(path);
  if (mode !== undefined) expect((st.mode & 0o7777).toString(8), path).toBe(mode.toString(8));
  expect(Math.abs(st.mtimeMs - mtime * 1000), `${path} mtime`).toBeLessThan(2);
  if (IS_ROOT) expect([st.uid, st.gid], path).toEqual([UID, GID]);
}

/** The host's /etc/shadow when this process may read it (to prove it was NOT what came back). */
function hostShadow(): Buffer | undefined {
  try {
    return readFileSync('/etc/shadow');
  } catch {
    return undefined;
  }
}

function expectOutsideUntouched(): void {
  expect(readdirSync(outside)).toEqual([]);
}

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<TsrunError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(TsrunError);
    return e as TsrunError;
  }
  throw new Error('expected a rejection');
}

/** Every path below `dir` (relative), for "nothing else was copied" checks. */
function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir).sort()) {
    const rel = prefix ? `${prefix}/${n}` : n;
    out.push(rel);
    if (lstatSync(join(dir, n)).isDirectory()) out.push(...walk(join(dir, n), rel));
  }
  return out;
}

/**
 * Run openInRoot(O_RDONLY) on `rel` in a child node process with a hard timeout: a native
 * open that blocked (a FIFO) would hang the test worker itself, so the "no hang" proof runs
 * where it can be killed.
 */
function openInChild(root: string, rel: string): { code: string; timedOut: boolean } {
  const script = `
    const b = require(${JSON.stringify(ADDON)});
    const r = b.openRoot(process.argv[1]);
    try { const fd = b.openInRoot(r, process.argv[2], b.inRootFlags.O_RDONLY); b.closeFd(fd); console.log('OPENED'); }
    catch (e) { console.log(e.code + ' ' + e.message); }`;
  const res = spawnSync(process.execPath, ['-e', script, root, rel], { timeout: 10_000, encoding: 'utf8' });
  return { code: (res.stdout ?? '').trim(), timedOut: res.error !== undefined || res.signal !== null };
}

describe('openInRoot and friends (native)', () => {
  it('rejects flags other than O_RDONLY|O_PATH|O_DIRECTORY|O_NOFOLLOW with EINVAL', () => {
    const root = fresh('root');
    const fd = native.openRoot(root);
    try {
      for (const bad of [1 /* O_WRONLY */, 2 /* O_RDWR */, 0o100 /* O_CREAT */, 0o1000 /* O_TRUNC */]) {
        expect(() => native.openInRoot(fd, '.', bad)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      }
    } finally {
      native.closeFd(fd);
    }
  });

  it('never opens a FIFO for reading (ENXIO, no blocking open), directly or through a symlink', () => {
    const root = fresh('root');
    mkdirSync(join(root, 'etc'));
    native.mkfifo(join(root, 'etc/fifo'), 0o644);
    symlinkSync('/etc/fifo', join(root, 'etc/passwd'));
    for (const rel of ['etc/fifo', 'etc/passwd', '/etc/passwd']) {
      const r = openInChild(root, rel);
      expect(r.timedOut, rel).toBe(false);
      expect(r.code, rel).toMatch(/^ENXIO .*fifo is never opened/);
    }
  });

  it.skipIf(!IS_ROOT)('never opens a device node (a /dev/zero in the root) for reading [root only: mknod]', () => {
    const root = fresh('root');
    mkdirSync(join(root, 'dev'));
    execFileSync('mknod', ['-m', '666', join(root, 'dev/zero'), 'c', '1', '5']);
    symlinkSync('/dev/zero', join(root, 'passwd'));
    for (const rel of ['dev/zero', 'passwd']) {
      const r = openInChild(root, rel);
      expect(r.timedOut, rel).toBe(false);
      expect(r.code, rel).toMatch(/^ENXIO .*char device is never opened/);
    }
  });

  it('follows symlinks only inside the root; O_NOFOLLOW refuses a final symlink', () => {
    const root = fresh('root');
    put(join(root, 'etc/hostname'), 'in-root\n');
    symlinkSync('/etc', join(root, 'abs'));
    symlinkSync('../../../../../../etc', join(root, 'rel'));
    const { O_RDONLY, O_PATH, O_NOFOLLOW } = native.inRootFlags;
    const rootFd = native.openRoot(root);
    try {
      for (const p of ['abs/hostname', 'rel/hostname', '../../../etc/hostname', '/etc/hostname']) {
        const fd = native.openInRoot(rootFd, p, O_RDONLY);
        try {
          const buf = Buffer.alloc(64);
          const n = readSync(fd, buf, 0, buf.length, null);
          expect(buf.subarray(0, n).toString(), p).toBe('in-root\n');
        } finally {
          native.closeFd(fd);
        }
      }
      expect(() => native.openInRoot(rootFd, 'abs', O_RDONLY | O_NOFOLLOW)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
      const lfd = native.openInRoot(rootFd, 'abs', O_PATH | O_NOFOLLOW);
      try {
        expect(native.statAt(lfd, '').type).toBe('symlink');
        expect(native.readlinkAt(lfd, '')).toBe('/etc');
      } finally {
        native.closeFd(lfd);
      }
    } finally {
      native.closeFd(rootFd);
    }
  });

  it('listDirFd lists a directory fd repeatedly; statAt/readlinkAt take one component, never ".."', () => {
    const root = fresh('root');
    put(join(root, 'd/f'), 'x');
    mkdirSync(join(root, 'd/sub'));
    symlinkSync('/nowhere', join(root, 'd/l'));
    native.mkfifo(join(root, 'd/p'), 0o600);
    const { O_PATH, O_DIRECTORY } = native.inRootFlags;
    const rootFd = native.openRoot(root);
    const dfd = native.openInRoot(rootFd, 'd', O_PATH | O_DIRECTORY);
    try {
      const want = [
        { name: 'f', type: 'file' },
        { name: 'l', type: 'symlink' },
        { name: 'p', type: 'fifo' },
        { name: 'sub', type: 'dir' },
      ];
      const sorted = (a: Array<{ name: string }>) => [...a].sort((x, y) => x.name.localeCompare(y.name));
      expect(sorted(native.listDirFd(dfd))).toEqual(want);
      expect(sorted(native.listDirFd(dfd))).toEqual(want); // its own file description each time
      expect(native.statAt(dfd, 'f')).toMatchObject({ type: 'file', size: 1, mode: 0o644, uid: UID, gid: GID });
      expect(native.statAt(dfd, 'l').type).toBe('symlink');
      expect(native.readlinkAt(dfd, 'l')).toBe('/nowhere');
      expect(() => native.statAt(dfd, '..')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(() => native.statAt(dfd, 'sub/x')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(() => native.readlinkAt(rootFd, '..')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    } finally {
      native.closeFd(dfd);
      native.closeFd(rootFd);
    }
  });
});

describe('readFileInRoot', () => {
  it('reads a regular file; missing (or under a non-directory) is undefined', () => {
    const root = fresh('root');
    put(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    put(join(root, 'etc/notdir'), 'x');
    expect(readFileInRoot(root, '/etc/passwd', 1 << 20)?.toString()).toBe('root:x:0:0:root:/root:/bin/sh\n');
    expect(readFileInRoot(root, 'etc/passwd', 1 << 20)?.toString()).toContain('root:x');
    expect(readFileInRoot(root, '/etc/group', 1 << 20)).toBeUndefined();
    expect(readFileInRoot(root, '/etc/notdir/passwd', 1 << 20)).toBeUndefined();
  });

  it('`etc/passwd -> /etc/shadow` resolves inside the root, never to the host /etc/shadow', () => {
    const host = hostShadow();
    const without = fresh('root');
    link('/etc/shadow', join(without, 'etc/passwd'));
    expect(readFileInRoot(without, '/etc/passwd', 1 << 20)).toBeUndefined();

    const withShadow = fresh('root');
    link('/etc/shadow', join(withShadow, 'etc/passwd'));
    put(join(withShadow, 'etc/shadow'), 'in-root-shadow:x:0:0::/:/bin/false\n');
    const got = readFileInRoot(withShadow, '/etc/passwd', 1 << 20);
    expect(got?.toString()).toBe('in-root-shadow:x:0:0::/:/bin/false\n');
    if (host) expect(got?.equals(host)).toBe(false);

    // Relative escapes and ".." in the asked path stop at the root as well.
    const rel = fresh('root');
    link('../../../../../../../../etc/shadow', join(rel, 'etc/passwd'));
    expect(readFileInRoot(rel, '/etc/passwd', 1 << 20)).toBeUndefined();
    put(join(rel, 'etc/shadow'), 'rel-shadow\n');
    expect(readFileInRoot(rel, '/etc/passwd', 1 << 20)?.toString()).toBe('rel-shadow\n');
    expect(readFileInRoot(rel, '../../../../etc/shadow', 1 << 20)?.toString()).toBe('rel-shadow\n');
  });

  it('a FIFO as /etc/passwd (or a link to one) is a clear error, not a hang', async () => {
    const root = fresh('root');
    mkdirSync(join(root, 'etc'));
    native.mkfifo(join(root, 'etc/passwd'), 0o644);
    native.mkfifo(join(root, 'fifo'), 0o644);
    symlinkSync('/fifo', join(root, 'etc/group'));
    for (const p of ['/etc/passwd', '/etc/group']) {
      const e = await rejection(() => readFileInRoot(root, p, 1 << 20));
      expect(e.code).toBe('ERR_UNSUPPORTED');
      expect(e.message).toContain(`\`${p}\``);
      expect(e.message).toContain('it is a FIFO, not a regular file');
    }
  });

  it('a link to /dev/zero is missing unless the root has one; a device node there is a clear error', async () => {
    const root = fresh('root');
    link('/dev/zero', join(root, 'etc/passwd'));
    expect(readFileInRoot(root, '/etc/passwd', 1 << 20)).toBeUndefined();
    if (!IS_ROOT) return; // mknod needs CAP_MKNOD
    mkdirSync(join(root, 'dev'));
    execFileSync('mknod', ['-m', '666', join(root, 'dev/zero'), 'c', '1', '5']);
    const e = await rejection(() => readFileInRoot(root, '/etc/passwd', 1 << 20));
    expect(e.code).toBe('ERR_UNSUPPORTED');
    expect(e.message).toContain('it is a character device, not a regular file');
  });

  it('a directory, a symlink loop: errors naming the path', async () => {
    const root = fresh('root');
    mkdirSync(join(root, 'etc/passwd'), { recursive: true });
    symlinkSync('loop2', join(root, 'etc/loop1'));
    symlinkSync('loop1', join(root, 'etc/loop2'));
    const dir = await rejection(() => readFileInRoot(root, '/etc/passwd', 1 << 20));
    expect(dir.message).toContain('it is a directory, not a regular file');
    const loop = await rejection(() => readFileInRoot(root, '/etc/loop1', 1 << 20));
    expect(loop.errno).toBe(40); // ELOOP
    expect(loop.message).toContain('/etc/loop1');
  });

  it('refuses a file larger than maxBytes', async () => {
    const root = fresh('root');
    put(join(root, 'etc/passwd'), 'x'.repeat(100));
    expect(readFileInRoot(root, '/etc/passwd', 100)?.length).toBe(100);
    const e = await rejection(() => readFileInRoot(root, '/etc/passwd', 99));
    expect(e.code).toBe('ERR_UNSUPPORTED');
    expect(e.message).toMatch(/100 bytes, larger than the 99-byte limit/);
  });
});

describe('copyOut (root -> host)', () => {
  it('copies a file with its mode, owner and mtime; into an existing directory under its basename', async () => {
    const root = fresh('root');
    put(join(root, 'data/report.txt'), 'hello\n', 0o640);
    const dest = fresh('dest');
    await copyOut(root, '/data/report.txt', join(dest, 'renamed'));
    expect(readFileSync(join(dest, 'renamed'), 'utf8')).toBe('hello\n');
    expectMeta(join(dest, 'renamed'), 0o640);
    await copyOut(root, 'data/report.txt', dest);
    expectMeta(join(dest, 'report.txt'), 0o640);
    // an existing file is replaced
    writeFileSync(join(dest, 'renamed'), 'old');
    await copyOut(root, '/data/report.txt', join(dest, 'renamed'));
    expect(readFileSync(join(dest, 'renamed'), 'utf8')).toBe('hello\n');
  });

  it('copies a tree: symlinks stay symlinks (a link to /etc copies no host /etc content), FIFOs, modes, owners, mtimes', async () => {
    const root = fresh('root');
    const t = join(root, 'srv/tree');
    put(join(t, 'a.txt'), 'A', 0o600);
    put(join(t, 'bin/tool'), '#!/bin/sh\n', 0o4755); // setuid: stripped on the host
    put(join(t, 'sub/deep/x'), 'X', 0o644);
    link('/etc', join(t, 'etc-link'));
    link('../../../../../../etc/passwd', join(t, 'sub/passwd-link'));
    native.mkfifo(join(t, 'pipe'), 0o640);
    if (IS_ROOT) chownSync(join(t, 'pipe'), UID, GID);
    utimesSync(join(t, 'pipe'), T0, T0);
    dirMeta(join(t, 'sub/deep'), 0o750);
    dirMeta(join(t, 'sub'), IS_ROOT ? 0o555 : 0o755); // read-only: still filled on the host
    dirMeta(join(t, 'bin'), 0o711);
    dirMeta(t, 0o755);
    expect(lstatSync(join(t, 'bin/tool')).mode & 0o7777).toBe(0o4755);

    const dest = fresh('dest');
    await copyOut(root, '/srv/tree', dest);
    const out = join(dest, 'tree');
    expect(walk(out)).toEqual(['a.txt', 'bin', 'bin/tool', 'etc-link', 'pipe', 'sub', 'sub/deep', 'sub/deep/x', 'sub/passwd-link']);
    expect(readlinkSync(join(out, 'etc-link'))).toBe('/etc');
    expect(lstatSync(join(out, 'etc-link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(out, 'sub/passwd-link'))).toBe('../../../../../../etc/passwd');
    expect(readFileSync(join(out, 'sub/deep/x'), 'utf8')).toBe('X');
    expect(lstatSync(join(out, 'pipe')).isFIFO()).toBe(true);
    expectMeta(join(out, 'a.txt'), 0o600);
    expectMeta(join(out, 'bin/tool'), 0o755);
    expectMeta(join(out, 'etc-link'), undefined);
    expectMeta(join(out, 'pipe'), 0o640);
    expectMeta(join(out, 'sub/deep'), 0o750, T1);
    expectMeta(join(out, 'sub'), IS_ROOT ? 0o555 : 0o755, T1);
    expectMeta(join(out, 'bin'), 0o711, T1);
    expectMeta(out, 0o755, T1);

    // keepSetid (volume seeding) keeps it
    const dest2 = fresh('dest');
    await copyOut(root, '/srv/tree/bin/tool', join(dest2, 'tool'), { keepSetid: true });
    expectMeta(join(dest2, 'tool'), 0o4755);
  });

  it('a symlink SRC: copied as a link; followed in-root with followLink or a trailing "/" (never to the host)', async () => {
    const root = fresh('root');
    put(join(root, 'etc/hostname'), 'container\n');
    link('/etc', join(root, 'link'));
    const dest = fresh('dest');
    await copyOut(root, '/link', join(dest, 'as-link'));
    expect(readlinkSync(join(dest, 'as-link'))).toBe('/etc');
    await copyOut(root, '/link', join(dest, 'followed'), { followLink: true });
    expect(walk(join(dest, 'followed'))).toEqual(['hostname']);
    expect(readFileSync(join(dest, 'followed/hostname'), 'utf8')).toBe('container\n');
    await copyOut(root, '/link/', join(dest, 'slash'));
    expect(walk(join(dest, 'slash'))).toEqual(['hostname']);
    // an intermediate absolute link resolves in the root too
    await copyOut(root, '/link/hostname', join(dest, 'via-link'));
    expect(readFileSync(join(dest, 'via-link'), 'utf8')).toBe('container\n');
    // and a missing in-root target is an error, not the host's file
    const e = await rejection(copyOut(root, '/link/passwd', join(dest, 'passwd')));
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(existsSync(join(dest, 'passwd'))).toBe(false);
  });

  it('"SRC/." copies the contents into DEST (created or merged), which takes the source directory metadata', async () => {
    const root = fresh('root');
    put(join(root, 'vol/a'), 'a');
    put(join(root, 'vol/b/c'), 'c');
    dirMeta(join(root, 'vol/b'), 0o700);
    dirMeta(join(root, 'vol'), 0o770);
    const volume = fresh('volume'); // exists, empty: volume seeding
    await copyOut(root, '/vol/.', volume);
    expect(walk(volume)).toEqual(['a', 'b', 'b/c']);
    expectMeta(volume, 0o770, T1);
    expectMeta(join(volume, 'b'), 0o700, T1);
    const created = join(fresh('dest'), 'new');
    await copyOut(root, '/vol/.', created);
    expect(walk(created)).toEqual(['a', 'b', 'b/c']);
  });

  it.skipIf(!HAS_PYTHON)('skips sockets inside a tree and reports them; a socket as SRC is an error [needs python3 to bind a unix socket]', async () => {
    const root = fresh('root');
    put(join(root, 't/f'), 'f');
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(root, 't/sock')]);
    const dest = fresh('dest');
    const skipped: string[] = [];
    await copyOut(root, '/t', join(dest, 's'), { onSkip: (p, why) => skipped.push(`${p}: ${why}`) });
    expect(skipped).toEqual(['/t/sock: a socket cannot be copied']);
    expect(walk(join(dest, 's'))).toEqual(['f']);
    const top = await rejection(copyOut(root, '/t/sock', join(dest, 'sock')));
    expect(top.code).toBe('ERR_UNSUPPORTED');
    expect(existsSync(join(dest, 'sock'))).toBe(false);
  });

  it('type conflicts are errors', async () => {
    const root = fresh('root');
    put(join(root, 't/f'), 'f');
    put(join(root, 'd/f/inner'), 'i');
    const dest = fresh('dest');
    mkdirSync(join(dest, 'f')); // a directory where the source has a file
    const c1 = await rejection(copyOut(root, '/t/.', dest));
    expect(c1.message).toContain('cannot overwrite a directory');
    writeFileSync(join(dest, 'file'), 'x');
    const c2 = await rejection(copyOut(root, '/d', join(dest, 'file')));
    expect(c2.message).toContain('cannot overwrite a non-directory');
    const c3 = await rejection(copyOut(root, '/t/f', join(dest, 'missing/')));
    expect(c3.message).toContain('the destination directory does not exist');
  });

  it.skipIf(!IS_ROOT)('refuses to copy a device node out of the root [root only: mknod]', async () => {
    const root = fresh('root');
    mkdirSync(join(root, 'dev'));
    execFileSync('mknod', ['-m', '666', join(root, 'dev/sda'), 'b', '8', '0']);
    const dest = fresh('dest');
    const e = await rejection(copyOut(root, '/dev', join(dest, 'dev')));
    expect(e.code).toBe('ERR_UNSUPPORTED');
    expect(e.message).toContain('`/dev/sda`: it is a block device (8:0)');
    expect(existsSync(join(dest, 'dev/sda'))).toBe(false);
  });
});

describe('copyIn (host -> root)', () => {
  it('copies a file to a new path and into an existing directory, with mode, owner and mtime', async () => {
    const root = fresh('root');
    mkdirSync(join(root, 'data'));
    const src = join(fresh('src'), 'conf.ini');
    put(src, 'k=v\n', 0o640);
    await copyIn(src, root, '/data/new.ini');
    expect(readFileSync(join(root, 'data/new.ini'), 'utf8')).toBe('k=v\n');
    expectMeta(join(root, 'data/new.ini'), 0o640);
    await copyIn(src, root, 'data');
    expectMeta(join(root, 'data/conf.ini'), 0o640);
    await copyIn(src, root, '/data/new.ini', { owner: { uid: 0, gid: 0 } }); // replaces
    if (IS_ROOT) expect(lstatSync(join(root, 'data/new.ini')).uid).toBe(0);
    const e = await rejection(copyIn(src, root, '/missing/x'));
    expect(e.message).toContain("the destination's parent directory does not exist");
  });

  it('copies a tree (symlinks verbatim, FIFOs, read-only dirs), and "SRC/." merges the contents', async () => {
    const root = fresh('root');
    mkdirSync(join(root, 'data'));
    const src = join(fresh('src'), 'tree');
    put(join(src, 'a.txt'), 'A', 0o600);
    put(join(src, 'sub/deep/x'), 'X', 0o755);
    link('/etc', join(src, 'etc-link'));
    native.mkfifo(join(src, 'pipe'), 0o640);
    if (IS_ROOT) chownSync(join(src, 'pipe'), UID, GID);
    utimesSync(join(src, 'pipe'), T0, T0);
    dirMeta(join(src, 'sub/deep'), 0o750);
    dirMeta(join(src, 'sub'), IS_ROOT ? 0o555 : 0o755);
    dirMeta(src, 0o751);

    await copyIn(src, root, '/data');
    const out = join(root, 'data/tree');
    expect(walk(out)).toEqual(['a.txt', 'etc-link', 'pipe', 'sub', 'sub/deep', 'sub/deep/x']);
    expect(readlinkSync(join(out, 'etc-link'))).toBe('/etc');
    expect(lstatSync(join(out, 'pipe')).isFIFO()).toBe(true);
    expectMeta(join(out, 'a.txt'), 0o600);
    expectMeta(join(out, 'sub/deep/x'), 0o755);
    expectMeta(join(out, 'etc-link'), undefined);
    expectMeta(join(out, 'pipe'), 0o640);
    expectMeta(join(out, 'sub/deep'), 0o750, T1);
    expectMeta(join(out, 'sub'), IS_ROOT ? 0o555 : 0o755, T1);
    expectMeta(out, 0o751, T1);

    await copyIn(`${src}/.`, root, '/merged');
    expect(walk(join(root, 'merged'))).toEqual(['a.txt', 'etc-link', 'pipe', 'sub', 'sub/deep', 'sub/deep/x']);
    mkdirSync(join(root, 'existing'));
    put(join(root, 'existing/keep'), 'k');
    await copyIn(`${src}/.`, root, '/existing');
    expect(walk(join(root, 'existing'))).toEqual(['a.txt', 'etc-link', 'keep', 'pipe', 'sub', 'sub/deep', 'sub/deep/x']);
  });

  it('a DEST symlink to a host directory never redirects the write outside the root', async () => {
    const srcDir = fresh('src');
    const file = join(srcDir, 'payload');
    put(file, 'evil\n');
    const tree = join(srcDir, 'payload-dir');
    put(join(tree, 'inner'), 'evil\n');

    // DEST -> /tmp/<outside> with nothing at that path in the root: the link is replaced in-root.
    const r1 = fresh('root');
    symlinkSync(outside, join(r1, 'dest'));
    await copyIn(file, r1, '/dest');
    expect(lstatSync(join(r1, 'dest')).isFile()).toBe(true);
    expect(readFileSync(join(r1, 'dest'), 'utf8')).toBe('evil\n');
    expectOutsideUntouched();

    // a directory over that link: an error, nothing anywhere
    const r2 = fresh('root');
    symlinkSync(outside, join(r2, 'dest'));
    const e2 = await rejection(copyIn(tree, r2, '/dest'));
    expect(e2.message).toContain('cannot overwrite a non-directory');
    expect(readlinkSync(join(r2, 'dest'))).toBe(outside);
    expectOutsideUntouched();

    // a path THROUGH the link: its parent resolves in-root, where it does not exist
    const e3 = await rejection(copyIn(file, r2, '/dest/x'));
    expect(e3.message).toContain("the destination's parent directory does not exist");
    const e3b = await rejection(copyIn(file, r2, '/dest/'));
    expect(e3b.code).toBe('ERR_INVALID_ARGUMENT');
    expectOutsideUntouched();

    // when the link's target exists IN the root, the copy lands there (docker semantics)
    const r4 = fresh('root');
    symlinkSync(outside, join(r4, 'dest'));
    symlinkSync(`../../../../../../../..${outside}`, join(r4, 'rel-dest'));
    mkdirSync(join(r4, outside), { recursive: true });
    await copyIn(file, r4, '/dest');
    await copyIn(tree, r4, '/rel-dest/');
    await copyIn(file, r4, `/dest/sub/../renamed`);
    expect(walk(join(r4, outside))).toEqual(['payload', 'payload-dir', 'payload-dir/inner', 'renamed']);
    expectOutsideUntouched();

    // ".." in DEST stops at the root
    const r5 = fresh('root');
    await copyIn(file, r5, '../../../../x');
    expect(readFileSync(join(r5, 'x'), 'utf8')).toBe('evil\n');
    expectOutsideUntouched();
  });

  it('a symlink planted inside an existing DEST directory cannot redirect the tree', async () => {
    const root = fresh('root');
    mkdirSync(join(root, 'data'));
    symlinkSync(outside, join(root, 'data/sub')); // the host tree has sub/ as a directory
    symlinkSync(outside, join(root, 'data/f')); // and f as a file
    const src = fresh('src');
    put(join(src, 'sub/inner'), 'evil\n');
    put(join(src, 'f'), 'evil\n');
    const e = await rejection(copyIn(`${src}/.`, root, '/data'));
    expect(e.message).toMatch(/cannot overwrite a non-directory `sub` with a directory|cannot overwrite/);
    expectOutsideUntouched();
    // the file alone replaces the link (in-root), never writes through it
    await copyIn(join(src, 'f'), root, '/data');
    expect(lstatSync(join(root, 'data/f')).isFile()).toBe(true);
    expect(readlinkSync(join(root, 'data/sub'))).toBe(outside);
    expectOutsideUntouched();
  });

  it.skipIf(!IS_ROOT)('round trip: copyIn then copyOut keeps owners, modes and mtimes [root only: chown to foreign ids]', async () => {
    const src = join(fresh('src'), 'rt');
    put(join(src, 'f'), 'f', 0o604);
    link('f', join(src, 'l'));
    dirMeta(src, 0o705);
    const root = fresh('root');
    await copyIn(src, root, '/');
    const back = join(fresh('dest'), 'rt');
    await copyOut(root, '/rt', back);
    expect(walk(back)).toEqual(['f', 'l']);
    expectMeta(join(back, 'f'), 0o604);
    expectMeta(join(back, 'l'), undefined);
    expectMeta(back, 0o705, T1);
  });
});
