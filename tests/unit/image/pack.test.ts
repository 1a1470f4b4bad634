// Packing an overlay upper dir into an OCI layer (src/image/layer/pack.ts), checked from the
// outside: the tar's entries as tar-stream and GNU tar read them, the digests recomputed from
// the blob, byte-for-byte reproducibility, and a round trip through the real unpacker.
// Whiteouts (0:0 char devices), trusted.* xattrs, foreign owners and device nodes need root:
// those tests are skipped otherwise. Hostile upper dirs: symlinks are never followed (even a
// directory swapped for a symlink in the middle of the walk), and what a layer cannot carry
// is refused.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chownSync,
  createWriteStream,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { packUpperDir, nativeXattrScanner, walkTree, type PackOptions, type PackedLayer } from '../../../src/image/layer/pack.js';
import { unpackLayer } from '../../../src/image/layer/unpack.js';
import { tempDir } from '../../helpers/tmp-dir.js';

const IS_ROOT = process.getuid?.() === 0;
const HAS_PYTHON = spawnSync('python3', ['-c', 'import os; os.setxattr']).status === 0;
const HAS_GNU_TAR = spawnSync('tar', ['--version']).stdout?.toString().includes('GNU tar') ?? false;
const ROOT_SKIP = !IS_ROOT ? 'needs root (0:0 char devices, trusted.* xattrs, chown)' : !HAS_PYTHON ? 'needs python3 (to set xattrs)' : null;
if (ROOT_SKIP) console.log(`pack: overlay-form tests skipped: ${ROOT_SKIP}`);

const EMPTY_TAR_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
const T0 = 1_600_000_000;
// A vfs_cap_data revision 2 value (cap_net_raw permitted, and more) with bytes >= 0x80 and NULs: carried as bytes.
const CAP = Buffer.from('01000002002000008000000000000000ff000000', 'hex');
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function setXattr(p: string, name: string, value: Buffer): void {
  execFileSync('python3', [
    '-c',
    'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)',
    p,
    name,
    value.toString('hex'),
  ]);
}

function getXattrs(p: string): Record<string, string> {
  const py =
    'import os,sys,json; p=sys.argv[1]; print(json.dumps({k: os.getxattr(p,k,follow_symlinks=False).hex() for k in os.listxattr(p,follow_symlinks=False)}))';
  return JSON.parse(execFileSync('python3', ['-c', py, p]).toString()) as Record<string, string>;
}

interface Packed extends PackedLayer {
  blob: Buffer;
  tar: Buffer;
}

async function pack(upper: string, opts: PackOptions = {}): Promise<Packed> {
  const file = join(tempDir('tsrun-pack-out-'), 'layer.tar.gz');
  const res = await packUpperDir(upper, createWriteStream(file), opts);
  const blob = readFileSync(file);
  return { ...res, blob, tar: gunzipSync(blob) };
}

interface Listed {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  pax: Record<string, string>;
  data: string;
}

/** Every entry of a tar, as tar-stream reads it. */
async function list(t: Buffer): Promise<Listed[]> {
  const out: Listed[] = [];
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push({
          name: h.name,
          type: h.type ?? '?',
          mode: h.mode ?? 0,
          uid: h.uid ?? 0,
          gid: h.gid ?? 0,
          size: h.size ?? 0,
          mtime: (h.mtime?.getTime() ?? 0) / 1000,
          linkname: h.linkname ?? null,
          devmajor: h.devmajor ?? 0,
          devminor: h.devminor ?? 0,
          pax: (h.pax ?? {}) as Record<string, string>,
          data: Buffer.concat(chunks).toString('utf8'),
        });
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  Readable.from([t]).pipe(ex);
  await done;
  return out;
}

function gnuTarList(blob: Buffer): string[] {
  const f = join(tempDir('tsrun-pack-gnu-'), 'l.tgz');
  writeFileSync(f, blob);
  return execFileSync('tar', ['-tzf', f]).toString().split('\n').filter(Boolean);
}

/** A plain upper dir any user can make: files, dirs, a symlink, hardlinks, a fifo (and a listening socket). */
async function plainUpper(o: { socket?: boolean } = {}): Promise<{ u: string; close: () => Promise<void> }> {
  const u = tempDir('tsrun-pack-upper-');
  mkdirSync(join(u, 'etc/conf.d'), { recursive: true });
  writeFileSync(join(u, 'etc/hosts'), '127.0.0.1 localhost\n', { mode: 0o644 });
  writeFileSync(join(u, 'etc/conf.d/b'), 'b');
  writeFileSync(join(u, 'etc/conf.d/a'), 'a');
  writeFileSync(join(u, 'bin'), '#!/bin/sh\n', { mode: 0o4755 });
  linkSync(join(u, 'bin'), join(u, 'bin-again'));
  symlinkSync('/etc/passwd', join(u, 'passwd-link'));
  symlinkSync('/etc', join(u, 'etc-link'));
  execFileSync('mkfifo', [join(u, 'fifo')]);
  writeFileSync(join(u, 'empty'), '');
  const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(120)}`;
  mkdirSync(join(u, long, '..'), { recursive: true });
  writeFileSync(join(u, long), 'deep');
  writeFileSync(join(u, 'ünïcode'), 'u');
  // a socket (a tar cannot carry it): Node removes it when the server closes
  const srv = createServer();
  if (o.socket) await new Promise<void>((r) => srv.listen(join(u, 'sock'), r));
  const close = () => new Promise<void>((r) => (o.socket ? srv.close(() => r()) : r()));
  const walk = (p: string) => {
    for (const n of readdirSync(p)) {
      const c = join(p, n);
      if (lstatSync(c).isDirectory()) walk(c);
      if (!lstatSync(c).isSymbolicLink()) utimesSync(c, T0, T0);
    }
  };
  walk(u);
  return { u, close };
}

describe('packUpperDir: plain entries', () => {
  it('writes every kind of entry, sorted, owners/modes/mtimes kept, hardlinks as links, sockets skipped', async () => {
    const { u, close } = await plainUpper({ socket: true });
    const p = await pack(u).finally(close);
    const entries = await list(p.tar);
    const names = entries.map((e) => e.name);
    const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(120)}`;
    expect(names).toEqual([
      'bin',
      'bin-again',
      `${'d'.repeat(90)}/`,
      `${'d'.repeat(90)}/${'e'.repeat(90)}/`,
      long,
      'empty',
      'etc/',
      'etc/conf.d/',
      'etc/conf.d/a',
      'etc/conf.d/b',
      'etc/hosts',
      'etc-link',
      'fifo',
      'passwd-link',
      'ünïcode',
    ]);
    const by = new Map(entries.map((e) => [e.name, e]));
    expect(by.get('bin')).toMatchObject({ type: 'file', mode: 0o4755, size: 10, mtime: T0, data: '#!/bin/sh\n' });
    expect(by.get('bin-again')).toMatchObject({ type: 'link', linkname: 'bin', size: 0 });
    expect(by.get('etc/')).toMatchObject({ type: 'directory', mode: 0o755, mtime: T0 });
    expect(by.get('etc/hosts')).toMatchObject({ type: 'file', data: '127.0.0.1 localhost\n', uid: process.getuid!(), gid: process.getgid!() });
    expect(by.get('passwd-link')).toMatchObject({ type: 'symlink', linkname: '/etc/passwd', size: 0 });
    expect(by.get('etc-link')).toMatchObject({ type: 'symlink', linkname: '/etc' });
    expect(by.get('fifo')).toMatchObject({ type: 'fifo', size: 0 });
    expect(by.get(long)).toMatchObject({ data: 'deep', pax: { path: long } });
    expect(by.get('ünïcode')).toMatchObject({ data: 'u', pax: { path: 'ünïcode' } });
    expect(p.skipped).toEqual(['/sock']);
    expect(p.entries).toBe(entries.length);
    // nothing of the host came through the symlinks
    expect(p.tar.includes(Buffer.from('root:x:0:0'))).toBe(false);
    if (HAS_GNU_TAR) expect(gnuTarList(p.blob)).toEqual(names);
  });

  it('returns the diff_id of the tar and the digest and size of the blob; the same dir packs to the same bytes', async () => {
    const { u } = await plainUpper();
    const a = await pack(u);
    expect(a.diffId).toBe(sha256(a.tar));
    expect(a.digest).toBe(sha256(a.blob));
    expect(a.size).toBe(a.blob.length);
    expect(a.tarSize).toBe(a.tar.length);
    expect(a.tar.length % 512).toBe(0);
    expect(a.tar.subarray(-1024).equals(Buffer.alloc(1024))).toBe(true);
    const b = await pack(u);
    expect(b.blob.equals(a.blob)).toBe(true);
    // the mtime option rewrites every entry (reproducible builds)
    const c = await pack(u, { mtime: 42 });
    expect(new Set((await list(c.tar)).map((e) => e.mtime))).toEqual(new Set([42]));
  });

  it('an empty upper dir is the empty tar docker commits (diff_id sha256:5f70bf18…)', async () => {
    const p = await pack(tempDir('tsrun-pack-empty-'));
    expect(p.tar.equals(Buffer.alloc(1024))).toBe(true);
    expect(p.diffId).toBe(EMPTY_TAR_DIFF_ID);
    expect(p.entries).toBe(0);
  });

  it('exclude leaves paths and whole subtrees out', async () => {
    const { u } = await plainUpper();
    const p = await pack(u, { exclude: (path) => path === '/etc' || path === '/fifo' });
    const names = (await list(p.tar)).map((e) => e.name);
    expect(names.some((n) => n.startsWith('etc/') || n === 'fifo')).toBe(false);
    expect(names).toContain('etc-link');
  });

  it('unpacks with the real unpacker to the same tree', async () => {
    const { u } = await plainUpper();
    const p = await pack(u);
    const root = tempDir('tsrun-pack-rt-');
    const r = await unpackLayer(Readable.from([p.blob]), 'application/vnd.oci.image.layer.v1.tar+gzip', root, {
      layerName: 'rt',
      expectedDiffId: p.diffId,
    });
    expect(r.diffId).toBe(p.diffId);
    const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(120)}`;
    expect(readFileSync(join(root, long), 'utf8')).toBe('deep');
    expect(lstatSync(join(root, 'bin')).ino).toBe(lstatSync(join(root, 'bin-again')).ino);
    expect(lstatSync(join(root, 'bin')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(root, 'etc-link')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(root, 'fifo')).isFIFO()).toBe(true);
    expect(lstatSync(join(root, 'etc/hosts')).mtimeMs).toBe(T0 * 1000);
  });
});

describe('packUpperDir: hostile upper dirs', () => {
  it('never follows a directory swapped for a symlink in the middle of the walk', async () => {
    const u = tempDir('tsrun-pack-swap-');
    const decoy = tempDir('tsrun-pack-decoy-');
    mkdirSync(join(decoy, 'a'));
    writeFileSync(join(decoy, 'a', 'z-secret'), 'host secret');
    mkdirSync(join(u, 'a'));
    writeFileSync(join(u, 'a', 'm'), 'mine');
    writeFileSync(join(u, 'a', 'z'), 'mine too');
    let swapped = false;
    const p = await pack(u, {
      // called as the walk reaches a/m, with a/ already open: swap a/ for a symlink to the decoy
      exclude: (path) => {
        if (path === '/a/m' && !swapped) {
          swapped = true;
          renameSync(join(u, 'a'), join(u, 'a-moved'));
          symlinkSync(join(decoy, 'a'), join(u, 'a'));
        }
        return false;
      },
    });
    expect(swapped).toBe(true);
    const entries = await list(p.tar);
    expect(entries.map((e) => e.name)).toEqual(['a/', 'a/m', 'a/z']);
    expect(entries.find((e) => e.name === 'a/z')!.data).toBe('mine too');
    expect(p.tar.includes(Buffer.from('host secret'))).toBe(false);
  });

  it('refuses names a layer would read as whiteouts, and names that are not UTF-8', async () => {
    const u = tempDir('tsrun-pack-wh-');
    writeFileSync(join(u, '.wh.passwd'), '');
    await expect(pack(u)).rejects.toThrow(/\.wh\.passwd: a name starting with "\.wh\." would be read as a whiteout/);
    const v = tempDir('tsrun-pack-latin1-');
    writeFileSync(Buffer.from(`${v}/caf\xe9`, 'latin1'), '');
    await expect(pack(v)).rejects.toThrow(/\/caf\\xe9 is not a UTF-8 name/);
  });

  it('walkTree reports entries relative to the root, parents first, and never crosses a symlink', () => {
    const u = tempDir('tsrun-pack-walk-');
    mkdirSync(join(u, 'b/c'), { recursive: true });
    writeFileSync(join(u, 'b/c/f'), '');
    symlinkSync('/', join(u, 'a'));
    expect([...walkTree(u)].map((e) => e.rel)).toEqual(['a', 'b', 'b/c', 'b/c/f']);
  });
});

describe.skipIf(!!ROOT_SKIP)('packUpperDir: overlay form to OCI form (root)', () => {
  function overlayUpper(): string {
    const u = tempDir('tsrun-pack-ovl-');
    mkdirSync(join(u, 'etc'));
    execFileSync('mknod', [join(u, 'etc/gone'), 'c', '0', '0']); // a whiteout
    chownSync(join(u, 'etc/gone'), 0, 0);
    linkSync(join(u, 'etc/gone'), join(u, 'etc/gone2')); // overlayfs shares one whiteout inode
    mkdirSync(join(u, 'opq/sub'), { recursive: true });
    writeFileSync(join(u, 'opq/new'), 'new');
    setXattr(join(u, 'opq'), 'trusted.overlay.opaque', Buffer.from('y'));
    setXattr(join(u, 'opq'), 'user.note', Buffer.from('kept'));
    setXattr(join(u, 'opq'), 'trusted.overlay.impure', Buffer.from('y'));
    writeFileSync(join(u, 'ping'), 'ELF', { mode: 0o755 });
    setXattr(join(u, 'ping'), 'security.capability', CAP);
    setXattr(join(u, 'ping'), 'trusted.overlay.origin', Buffer.from('00fb', 'hex'));
    setXattr(join(u, 'ping'), 'user.overlay.opaque', Buffer.from('y'));
    writeFileSync(join(u, 'owned'), 'x');
    chownSync(join(u, 'owned'), 3_000_000, 4_000_000);
    execFileSync('mknod', ['-m', '0620', join(u, 'tty9'), 'c', '4', '9']);
    execFileSync('mknod', [join(u, 'loop9'), 'b', '7', '9']);
    for (const p of ['etc/gone', 'etc', 'opq/sub', 'opq/new', 'opq', 'ping', 'owned', 'tty9', 'loop9']) utimesSync(join(u, p), T0, T0);
    return u;
  }

  it('whiteouts become .wh. files, opaque dirs get .wh..wh..opq, overlay xattrs are dropped, the rest kept', async () => {
    const u = overlayUpper();
    const p = await pack(u);
    const entries = await list(p.tar);
    expect(entries.map((e) => e.name)).toEqual([
      'etc/',
      'etc/.wh.gone',
      'etc/.wh.gone2',
      'loop9',
      'opq/',
      'opq/.wh..wh..opq',
      'opq/new',
      'opq/sub/',
      'owned',
      'ping',
      'tty9',
    ]);
    const by = new Map(entries.map((e) => [e.name, e]));
    // moby's converter: a regular file, mode 0600, size 0, the device's owner and mtime; never a hardlink
    expect(by.get('etc/.wh.gone')).toMatchObject({ type: 'file', mode: 0o600, size: 0, uid: 0, gid: 0, mtime: T0 });
    expect(by.get('etc/.wh.gone2')).toMatchObject({ type: 'file', mode: 0o600, size: 0 });
    expect(by.get('opq/.wh..wh..opq')).toMatchObject({ type: 'file', size: 0, mode: 0o755 });
    expect(by.get('opq/')!.pax).toEqual({ 'SCHILY.xattr.user.note': 'kept' });
    expect(Object.keys(by.get('ping')!.pax)).toEqual(['SCHILY.xattr.security.capability']);
    expect(by.get('owned')!.pax).toEqual({ uid: '3000000', gid: '4000000' }); // too big for the ustar fields
    expect(by.get('tty9')).toMatchObject({ type: 'character-device', devmajor: 4, devminor: 9, mode: 0o620 });
    expect(by.get('loop9')).toMatchObject({ type: 'block-device', devmajor: 7, devminor: 9 });
    // the capability's bytes go into the PAX record as they are
    expect(p.tar.includes(Buffer.concat([Buffer.from(' SCHILY.xattr.security.capability='), CAP, Buffer.from('\n')]))).toBe(true);
    expect(p.tar.includes(Buffer.from('trusted.overlay'))).toBe(false);
    expect(p.tar.includes(Buffer.from('user.overlay'))).toBe(false);
    if (HAS_GNU_TAR) {
      expect(gnuTarList(p.blob)).toEqual(entries.map((e) => e.name));
      const x = tempDir('tsrun-pack-gnux-');
      const f = join(x, 'l.tgz');
      writeFileSync(f, p.blob);
      mkdirSync(join(x, 'out'));
      execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xzf', f, '-C', join(x, 'out')]);
      expect(getXattrs(join(x, 'out/ping'))).toEqual({ 'security.capability': CAP.toString('hex') });
    }
  });

  it('round trip: unpacking the layer gives back the overlay form', async () => {
    const u = overlayUpper();
    const p = await pack(u);
    const root = tempDir('tsrun-pack-ovlrt-');
    await unpackLayer(Readable.from([p.blob]), 'application/vnd.oci.image.layer.v1.tar+gzip', root, { layerName: 'rt', expectedDiffId: p.diffId });
    for (const w of ['etc/gone', 'etc/gone2']) {
      const st = lstatSync(join(root, w));
      expect(st.isCharacterDevice() && st.rdev === 0, w).toBe(true);
    }
    expect(getXattrs(join(root, 'opq'))).toEqual({ 'trusted.overlay.opaque': '79', 'user.note': Buffer.from('kept').toString('hex') });
    expect(getXattrs(join(root, 'ping'))).toEqual({ 'security.capability': CAP.toString('hex') });
    expect(lstatSync(join(root, 'owned'))).toMatchObject({ uid: 3_000_000, gid: 4_000_000 });
    expect(readFileSync(join(root, 'opq/new'), 'utf8')).toBe('new');
    // and packing that again gives the same layer
    expect((await pack(root)).diffId).toBe(p.diffId);
  });

  it('refuses an upper dir with a redirected directory or a metacopy file', async () => {
    const u = tempDir('tsrun-pack-redirect-');
    mkdirSync(join(u, 'moved'));
    setXattr(join(u, 'moved'), 'trusted.overlay.redirect', Buffer.from('/orig'));
    await expect(pack(u)).rejects.toThrow(/\/moved in the upper directory is a renamed directory \(overlay redirect_dir\)/);
    const v = tempDir('tsrun-pack-metacopy-');
    writeFileSync(join(v, 'f'), '');
    setXattr(join(v, 'f'), 'trusted.overlay.metacopy', Buffer.alloc(0));
    await expect(pack(v)).rejects.toThrow(/metadata-only copy/);
  });

  it('nativeXattrScanner: exact bytes, the root included, symlinks not followed, filters', () => {
    const u = overlayUpper();
    symlinkSync(join(u, 'ping'), join(u, 'ping-link'));
    setXattr(u, 'user.root', Buffer.from('r'));
    const all = nativeXattrScanner(u);
    expect(all.get('ping')!.get('security.capability')!.equals(CAP)).toBe(true);
    expect(all.get('')!.get('user.root')!.toString()).toBe('r');
    expect(all.has('ping-link')).toBe(false);
    const opaque = nativeXattrScanner(u, { dirsOnly: true, name: 'trusted.overlay.opaque' });
    expect([...opaque.keys()]).toEqual(['opq']);
  });
});
