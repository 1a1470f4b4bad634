// Layer unpacking on a real filesystem: src/image/layer/unpack.ts through the addon's
// fd-based in-root calls (native/fs_inroot.cc). Runs unprivileged; ownership, device nodes,
// whiteouts, the opaque xattr and file capabilities are checked only as root.
//
// Every hostile layer must be rejected with an error naming the layer and the entry, and a
// marker directory OUTSIDE the unpack root (a sibling with a canary file, the target of the
// evil symlinks) must be byte-for-byte untouched afterwards, with nothing new anywhere
// outside the root.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  linkSync,
  writeFileSync,
  utimesSync,
  chmodSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackLayer, type UnpackOptions, type UnpackResult } from '../../src/image/layer/unpack.js';
import { TsrunError } from '../../src/util/errors.js';
import { blockdev, buildTar, chardev, dir, fifo, file, hardlink, paxBody, symlink, zstdStored, type TarEntrySpec } from '../fixtures/tar-builder.js';

const IS_ROOT = process.getuid?.() === 0;
const MY_UID = process.getuid?.() ?? 0;
const MY_GID = process.getgid?.() ?? 0;
// Owners written into the test layers: foreign ids as root, our own otherwise.
const UID = IS_ROOT ? 1000 : MY_UID;
const GID = IS_ROOT ? 1001 : MY_GID;
const ROOT_UID = IS_ROOT ? 0 : MY_UID;
const ROOT_GID = IS_ROOT ? 0 : MY_GID;
const HAS_PYTHON = spawnSync('python3', ['-c', 'import os; os.getxattr']).status === 0;
const HAS_ZSTD = spawnSync('zstd', ['--version']).status === 0;
const HAS_SHA256SUM = spawnSync('sha256sum', ['--version']).status === 0;

const TAR = 'application/vnd.oci.image.layer.v1.tar';
const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const DOCKER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const LAYER = 'evil-layer';
const T0 = 1_600_000_000;
// vfs_cap_data revision 2 granting cap_net_raw (13) permitted+effective: what ping carries.
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');

// <tmp>/tsrun-unpack-XXXX: outside/ (the marker), roots/<n>/ (unpack roots). Known when the
// tests are collected: the hostile layers' symlinks point at the marker by absolute path.
const base = mkdtempSync(join(tmpdir(), 'tsrun-unpack-'));
const outside = join(base, 'outside');
let rootSeq = 0;
const EVIL = `tsrun-evil-${randomBytes(4).toString('hex')}`;

beforeAll(() => {
  mkdirSync(join(outside, 'sub'), { recursive: true });
  writeFileSync(join(outside, 'canary'), 'do not touch\n', { mode: 0o644 });
  writeFileSync(join(outside, 'sub', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n', { mode: 0o600 });
  symlinkSync('canary', join(outside, 'link-to-canary'));
  mkdirSync(join(base, 'roots'));
});

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

/** A fresh, empty unpack root, as ImageStore.ensureLayer creates it. */
function newRoot(): string {
  const r = join(base, 'roots', String(++rootSeq));
  mkdirSync(r, { mode: 0o755 });
  return r;
}

/** Split a buffer into odd-sized chunks so headers straddle chunk boundaries. */
function chunked(buf: Buffer, size = 7919): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

function source(buf: Buffer, size?: number): Readable {
  return Readable.from(chunked(buf, size));
}

function unpack(buf: Buffer, mediaType: string, root: string, opts: Partial<UnpackOptions> = {}, size?: number): Promise<UnpackResult> {
  return unpackLayer(source(buf, size), mediaType, root, { layerName: LAYER, ...opts });
}

// ---- the "nothing changed outside" oracle ----

function describeNode(p: string): string {
  const st = lstatSync(p, { bigint: true });
  const kind = st.isSymbolicLink()
    ? `l:${readlinkSync(p)}`
    : st.isFile()
      ? `f:${createHash('sha256').update(readFileSync(p)).digest('hex')}`
      : st.isDirectory()
        ? 'd'
        : `o:${st.rdev}`;
  return `${kind} mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid} size=${st.size} nlink=${st.nlink} ino=${st.ino} mtime=${st.mtimeNs}`;
}

/** Every path under `base` except inside `skip` (the current unpack root), with its state. */
function snapshot(skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (p === skip) continue;
      out.set(relative(base, p), describeNode(p));
      if (lstatSync(p).isDirectory()) walk(p);
    }
  };
  walk(base);
  out.set('<base>', describeNode(base));
  return out;
}

const readable = (p: string) => {
  try {
    accessSync(p, constants.R_OK);
    return true;
  } catch {
    return false;
  }
};
const HOST_FILES = ['/etc/passwd', '/etc/shadow', '/etc/hostname'].filter(readable);
function hostState(): string[] {
  return HOST_FILES.map((p) => `${p} ${describeNode(p)}`);
}

function probesAbsent(): void {
  for (const p of [join(tmpdir(), EVIL), `/${EVIL}`, join('/etc', EVIL), join(base, EVIL), join(outside, EVIL), join(outside, 'sub', EVIL)]) {
    expect(existsSync(p), `${p} must not exist`).toBe(false);
  }
}

interface Hostile {
  name: string;
  tar: Buffer;
  mediaType?: string;
  /** The entry name the error must cite (`entry "<name>"`), or a RegExp for the message. */
  entry: string | RegExp;
  reason?: RegExp;
  limits?: UnpackOptions['limits'];
  /** Run only as root (device nodes etc.). */
  root?: boolean;
}

async function expectRejected(c: Hostile): Promise<TsrunError> {
  const root = newRoot();
  const before = snapshot(root);
  const host = hostState();
  const src = source(c.tar);
  const err = await unpackLayer(src, c.mediaType ?? TAR, root, { layerName: LAYER, ...(c.limits ? { limits: c.limits } : {}) }).then(
    (r) => new Error(`unpacked: ${JSON.stringify(r)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TsrunError);
  const te = err as TsrunError;
  expect(te.code, te.message).toBe('ERR_LAYER_REJECTED');
  expect(te.message).toContain(`layer ${LAYER}`);
  if (typeof c.entry === 'string') expect(te.message).toContain(`entry "${c.entry}"`);
  else expect(te.message).toMatch(c.entry);
  if (c.reason) expect(te.message).toMatch(c.reason);
  expect(src.destroyed, 'the source is destroyed on failure').toBe(true);
  expect(snapshot(root)).toEqual(before);
  expect(hostState()).toEqual(host);
  probesAbsent();
  return te;
}

// ---- metadata assertions ----

interface Meta {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  content?: Buffer | string;
  link?: string;
  rdev?: [number, number];
  nlink?: number;
}

function expectMeta(root: string, path: string, m: Meta): void {
  const p = join(root, path);
  const st = lstatSync(p, { bigint: true });
  const type = st.isFile()
    ? 'file'
    : st.isDirectory()
      ? 'dir'
      : st.isSymbolicLink()
        ? 'symlink'
        : st.isFIFO()
          ? 'fifo'
          : st.isCharacterDevice()
            ? 'char'
            : st.isBlockDevice()
              ? 'block'
              : 'other';
  expect(type, path).toBe(m.type);
  if (m.mode !== undefined) expect((Number(st.mode) & 0o7777).toString(8), `${path} mode`).toBe(m.mode.toString(8));
  if (IS_ROOT && m.uid !== undefined) expect(Number(st.uid), `${path} uid`).toBe(m.uid);
  if (IS_ROOT && m.gid !== undefined) expect(Number(st.gid), `${path} gid`).toBe(m.gid);
  if (m.mtime !== undefined)
    expect(st.mtimeNs, `${path} mtime`).toBe(BigInt(Math.floor(m.mtime)) * 1_000_000_000n + BigInt(Math.round((m.mtime - Math.floor(m.mtime)) * 1e9)));
  if (m.content !== undefined) expect(readFileSync(p).equals(Buffer.from(m.content)), `${path} content`).toBe(true);
  if (m.link !== undefined) expect(readlinkSync(p), `${path} target`).toBe(m.link);
  if (m.nlink !== undefined) expect(Number(st.nlink), `${path} nlink`).toBe(m.nlink);
  if (m.rdev !== undefined) {
    const rdev = Number(st.rdev);
    const major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfff);
    const minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff);
    expect([major, minor], `${path} rdev`).toEqual(m.rdev);
  }
}

function xattrs(p: string): Record<string, Buffer> {
  const py =
    'import os,sys,json; p=sys.argv[1]; print(json.dumps({k: os.getxattr(p,k,follow_symlinks=False).hex() for k in os.listxattr(p,follow_symlinks=False)}))';
  const out = JSON.parse(execFileSync('python3', ['-c', py, p]).toString()) as Record<string, string>;
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Buffer.from(v, 'hex')]));
}

// ---- the normal layer ----

const BIG = randomBytes(3 * 1024 * 1024 + 123);
const LONG_NAME = `long/${'n'.repeat(120)}/${'m'.repeat(90)}.txt`;

function normalLayer(): TarEntrySpec[] {
  const e: TarEntrySpec[] = [
    dir('./', { mode: 0o700, mtime: T0 }), // the root entry: not applied
    dir('etc', { mode: 0o755, uid: UID, gid: GID, mtime: T0 + 1 }),
    file('etc/hosts', '127.0.0.1 localhost\n', { mode: 0o644, uid: UID, gid: GID, mtime: T0 + 2 }),
    hardlink('etc/hosts.allow', 'etc/hosts', { uid: UID, gid: GID }),
    dir('bin', { mode: 0o755, mtime: T0 + 3 }),
    file('bin/su', '#!/bin/sh\necho su\n', { mode: 0o4755, uid: ROOT_UID, gid: ROOT_GID, mtime: T0 + 4 }),
    file('bin/wall', 'wall', { mode: 0o2755, uid: ROOT_UID, gid: ROOT_GID, mtime: T0 + 4 }),
    file('bin/notes', 'x', { mode: 0o640, uid: UID, gid: GID, mtime: T0 + 4, xattrs: { 'user.comment': 'hello', 'user.bin': Buffer.from([0, 1, 2, 255]) } }),
    file('bin/big', BIG, { mode: 0o755, mtime: T0 + 5 }),
    dir('tmp', { mode: 0o1777, mtime: T0 + 6 }),
    dir('home/user/deep', { mode: 0o700, uid: UID, gid: GID, mtime: T0 + 7 }), // home, home/user implied
    symlink('lib', 'usr/lib', { uid: UID, gid: GID, mtime: T0 + 8 }),
    symlink('etc/localtime', '/usr/share/zoneinfo/UTC', { mtime: T0 + 9 }),
    symlink('broken', '../../../nowhere', { mtime: T0 + 9 }),
    fifo('run/initctl', { mode: 0o600, uid: UID, gid: GID, mtime: T0 + 10 }),
    dir('var', { mode: 0o755, mtime: T0 + 11, xattrs: { 'user.dir': 'yes' } }),
    file('var/log.txt', 'log', { mtime: T0 + 12 }),
    dir('var/empty', { mode: 0o711, mtime: T0 + 13 }),
    file('frac', 'fraction', { mtime: T0 + 0.25 }),
    file(LONG_NAME, 'long', { mtime: T0 + 14 }),
    file('empty', '', { mode: 0o600, mtime: T0 + 15 }),
    file('dup', 'first', { mtime: T0 + 16 }),
    file('dup', 'second', { mode: 0o600, mtime: T0 + 17 }),
    symlink('swap', 'somewhere'),
    file('swap', 'now a file', { mtime: T0 + 18 }),
    file('was-a-dir/child', 'c'),
    file('was-a-dir', 'replaced a directory', { mtime: T0 + 19 }),
    dir('etc', { mode: 0o750, uid: UID, gid: GID, mtime: T0 + 20 }), // merges: keeps children
    file('./dotted/./name', 'n', { mtime: T0 + 21 }),
  ];
  if (IS_ROOT) {
    e.push(
      chardev('dev/null', 1, 3, { mode: 0o666, mtime: T0 + 22 }),
      blockdev('dev/sda', 8, 0, { mode: 0o660, gid: 6, mtime: T0 + 22 }),
      file('bin/ping', 'ELF', { mode: 0o755, mtime: T0 + 23, xattrs: { 'security.capability': CAP_NET_RAW } }),
      file('biguid', 'b', { uid: 3_000_000, gid: 3_000_001, mtime: T0 + 24 }),
      file('security-label', 's', { mtime: T0 + 25, xattrs: { 'security.selinux': 'system_u:object_r:bin_t:s0' } }),
    );
  }
  return e;
}

function checkNormalLayer(root: string, res: UnpackResult, tar: Buffer): void {
  expect(res.diffId).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
  expect(res.size).toBe(tar.length);
  expect(res.files).toBe(normalLayer().length - 1); // all but "./"
  // the root entry is not applied: the store's 0755 root stays
  expect(statSync(root).mode & 0o7777).toBe(0o755);
  expectMeta(root, 'etc', { type: 'dir', mode: 0o750, uid: UID, gid: GID, mtime: T0 + 20 });
  expectMeta(root, 'etc/hosts', { type: 'file', mode: 0o644, uid: UID, gid: GID, mtime: T0 + 2, content: '127.0.0.1 localhost\n', nlink: 2 });
  expect(lstatSync(join(root, 'etc/hosts.allow')).ino).toBe(lstatSync(join(root, 'etc/hosts')).ino);
  expectMeta(root, 'bin', { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: T0 + 3 });
  expectMeta(root, 'bin/su', { type: 'file', mode: 0o4755, uid: ROOT_UID, gid: ROOT_GID, mtime: T0 + 4, content: '#!/bin/sh\necho su\n' });
  expectMeta(root, 'bin/wall', { type: 'file', mode: 0o2755, uid: ROOT_UID, gid: ROOT_GID, mtime: T0 + 4 });
  expectMeta(root, 'bin/notes', { type: 'file', mode: 0o640, uid: UID, gid: GID, mtime: T0 + 4, content: 'x' });
  expectMeta(root, 'bin/big', { type: 'file', mode: 0o755, mtime: T0 + 5, content: BIG, nlink: 1 });
  expectMeta(root, 'tmp', { type: 'dir', mode: 0o1777, mtime: T0 + 6 });
  expectMeta(root, 'home', { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
  expectMeta(root, 'home/user', { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
  expectMeta(root, 'home/user/deep', { type: 'dir', mode: 0o700, uid: UID, gid: GID, mtime: T0 + 7 });
  expectMeta(root, 'lib', { type: 'symlink', link: 'usr/lib', uid: UID, gid: GID, mtime: T0 + 8 });
  expectMeta(root, 'etc/localtime', { type: 'symlink', link: '/usr/share/zoneinfo/UTC', mtime: T0 + 9 });
  expectMeta(root, 'broken', { type: 'symlink', link: '../../../nowhere', mtime: T0 + 9 });
  expectMeta(root, 'run/initctl', { type: 'fifo', mode: 0o600, uid: UID, gid: GID, mtime: T0 + 10 });
  expectMeta(root, 'var', { type: 'dir', mode: 0o755, mtime: T0 + 11 });
  expectMeta(root, 'var/log.txt', { type: 'file', mode: 0o644, mtime: T0 + 12, content: 'log' });
  expectMeta(root, 'var/empty', { type: 'dir', mode: 0o711, mtime: T0 + 13 });
  expectMeta(root, 'frac', { type: 'file', mtime: T0 + 0.25, content: 'fraction' });
  expectMeta(root, LONG_NAME, { type: 'file', mtime: T0 + 14, content: 'long' });
  expectMeta(root, 'empty', { type: 'file', mode: 0o600, mtime: T0 + 15, content: '' });
  expectMeta(root, 'dup', { type: 'file', mode: 0o600, mtime: T0 + 17, content: 'second' });
  expectMeta(root, 'swap', { type: 'file', mtime: T0 + 18, content: 'now a file' });
  expectMeta(root, 'was-a-dir', { type: 'file', mtime: T0 + 19, content: 'replaced a directory' });
  expectMeta(root, 'dotted/name', { type: 'file', mtime: T0 + 21, content: 'n' });
  if (HAS_PYTHON) {
    expect(xattrs(join(root, 'bin/notes'))).toEqual({ 'user.comment': Buffer.from('hello'), 'user.bin': Buffer.from([0, 1, 2, 255]) });
    expect(xattrs(join(root, 'var'))).toEqual({ 'user.dir': Buffer.from('yes') });
    expect(xattrs(join(root, 'etc/hosts'))).toEqual({});
  }
  if (IS_ROOT) {
    expectMeta(root, 'dev/null', { type: 'char', mode: 0o666, rdev: [1, 3], mtime: T0 + 22 });
    expectMeta(root, 'dev/sda', { type: 'block', mode: 0o660, gid: 6, rdev: [8, 0], mtime: T0 + 22 });
    expectMeta(root, 'biguid', { type: 'file', uid: 3_000_000, gid: 3_000_001 });
    expectMeta(root, 'bin/ping', { type: 'file', mode: 0o755, mtime: T0 + 23, content: 'ELF' });
    if (HAS_PYTHON) {
      // written after the data: a write to the file would have dropped it
      expect(xattrs(join(root, 'bin/ping'))['security.capability']).toEqual(CAP_NET_RAW);
      expect(Object.keys(xattrs(join(root, 'security-label')))).not.toContain('security.selinux');
    }
  }
}

describe('a normal layer', () => {
  const tar = buildTar(normalLayer());

  it('ownership, setuid modes, xattr allowlist, duplicates and type changes: unpacks from a plain tar with exactly the metadata of its headers', async () => {
    const root = newRoot();
    const before = snapshot(root);
    checkNormalLayer(root, await unpack(tar, TAR, root), tar);
    expect(snapshot(root)).toEqual(before);
    rmSync(root, { recursive: true });
  });

  it('unpacks gzip (OCI and Docker media types), reporting compressed progress', async () => {
    const gz = gzipSync(tar);
    const root = newRoot();
    const seen: number[] = [];
    checkNormalLayer(root, await unpack(gz, GZIP, root, { onProgress: (n) => seen.push(n) }), tar);
    expect(seen.at(-1)).toBe(gz.length);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const root2 = newRoot();
    checkNormalLayer(root2, await unpack(gz, DOCKER_GZIP, root2, {}, 1 << 20), tar);
    rmSync(root, { recursive: true });
    rmSync(root2, { recursive: true });
  });

  it('unpacks zstd (raw-block frames, several frames and a skippable frame)', async () => {
    const root = newRoot();
    checkNormalLayer(root, await unpack(zstdStored(tar), ZSTD, root), tar);
    const half = Math.floor(tar.length / 2);
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from('abc')]);
    const multi = Buffer.concat([zstdStored(tar.subarray(0, half)), skippable, zstdStored(tar.subarray(half), 17)]);
    const root2 = newRoot();
    checkNormalLayer(root2, await unpack(multi, ZSTD, root2, {}, 4099), tar);
    rmSync(root, { recursive: true });
    rmSync(root2, { recursive: true });
  });

  it.runIf(HAS_ZSTD)('unpacks zstd made by the zstd CLI (compressed blocks, checksum)', async () => {
    const zst = execFileSync('zstd', ['-q', '-c', '-19', '--check'], { input: tar, maxBuffer: 64 << 20 });
    const root = newRoot();
    checkNormalLayer(root, await unpack(zst, ZSTD, root), tar);
    rmSync(root, { recursive: true });
  });

  it.runIf(HAS_SHA256SUM)('diff_id is the sha256sum of the tar, and expectedDiffId is checked', async () => {
    const tarFile = join(base, 'layer.tar');
    writeFileSync(tarFile, tar);
    const sum = execFileSync('sha256sum', [tarFile]).toString().split(' ')[0];
    rmSync(tarFile);
    const root = newRoot();
    const res = await unpack(gzipSync(tar), GZIP, root, { expectedDiffId: `sha256:${sum}` });
    expect(res.diffId).toBe(`sha256:${sum}`);
    rmSync(root, { recursive: true });

    const wrong = `sha256:${'0'.repeat(64)}`;
    const src = source(gzipSync(tar));
    const err = (await unpackLayer(src, GZIP, newRoot(), { layerName: LAYER, expectedDiffId: wrong }).catch((e: unknown) => e)) as TsrunError;
    expect(err).toBeInstanceOf(TsrunError);
    expect(err.code).toBe('ERR_DIGEST_MISMATCH');
    expect(err.message).toContain(wrong);
    expect(err.message).toContain(`sha256:${sum}`);
    expect(err.message).toContain(`layer ${LAYER}`);
  });

  it('matches what GNU tar packed (GNU long names, hardlinks, symlinks)', async () => {
    const tree = join(base, 'tree');
    mkdirSync(join(tree, 'd'.repeat(60), 'e'.repeat(60)), { recursive: true });
    const longFile = join(tree, 'd'.repeat(60), 'e'.repeat(60), 'f'.repeat(80));
    writeFileSync(longFile, 'deep');
    writeFileSync(join(tree, 'exe'), 'x');
    chmodSync(join(tree, 'exe'), 0o751);
    linkSync(join(tree, 'exe'), join(tree, 'exe-link'));
    symlinkSync('d'.repeat(60) + '/' + 'x'.repeat(120), join(tree, 'sym'));
    utimesSync(join(tree, 'exe'), T0, T0 + 5);
    const gnu = execFileSync('tar', ['-C', tree, '--format=gnu', '-cf', '-', '.']);
    rmSync(join(base, 'tree'), { recursive: true, force: true });
    const root = newRoot();
    await unpack(gnu, TAR, root);
    expectMeta(root, `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(80)}`, { type: 'file', content: 'deep' });
    expectMeta(root, 'exe', { type: 'file', mode: 0o751, mtime: T0 + 5, nlink: 2 });
    expect(lstatSync(join(root, 'exe-link')).ino).toBe(lstatSync(join(root, 'exe')).ino);
    expectMeta(root, 'sym', { type: 'symlink', link: `${'d'.repeat(60)}/${'x'.repeat(120)}` });
  });

  it('ignores PAX global headers (a global path cannot rename later entries)', async () => {
    const tar2 = buildTar([file('a', 'A', { pax: { comment: 'local' } }), file('b', 'B')], { globalPax: { path: `../${EVIL}`, size: '999', comment: 'git' } });
    const root = newRoot();
    const before = snapshot(root);
    await unpack(tar2, TAR, root);
    expect(readdirSync(root).sort()).toEqual(['a', 'b']);
    expectMeta(root, 'a', { type: 'file', content: 'A' });
    expect(snapshot(root)).toEqual(before);
    probesAbsent();
  });

  it('handles a 1,000-entry layer in small chunks without deep recursion', async () => {
    const many = buildTar(Array.from({ length: 1000 }, (_, i) => (i % 2 ? dir(`d${i}`) : file(`f${i}`))));
    const root = newRoot();
    const res = await unpack(many, TAR, root, {}, 512);
    expect(res.files).toBe(1000);
    expect(readdirSync(root)).toHaveLength(1000);
  });
});

describe.runIf(IS_ROOT)('whiteouts and opaque directories (root)', () => {
  it('become 0:0 char devices and trusted.overlay.opaque=y', async () => {
    const tar = buildTar([
      dir('a'),
      file('a/.wh.gone', '', { mtime: T0 }),
      file('.wh.topgone'),
      file('a/present', 'stays'),
      file('a/.wh.present'), // same-layer content is not hidden by its own whiteout
      file('new/.wh.implied'), // parent created on the way
      dir('o', { mode: 0o750 }),
      file('o/.wh..wh..opq'),
      file('o/keep', 'k'),
      file('implied/opq/.wh..wh..opq'),
      file('.wh..wh..opq'),
      dir('.wh..wh.plnk'), // aufs metadata: skipped
    ]);
    const root = newRoot();
    await unpack(tar, TAR, root);
    expectMeta(root, 'a/gone', { type: 'char', rdev: [0, 0], uid: 0, gid: 0, mtime: T0 });
    expectMeta(root, 'topgone', { type: 'char', rdev: [0, 0] });
    expectMeta(root, 'a/present', { type: 'file', content: 'stays' });
    expectMeta(root, 'new/implied', { type: 'char', rdev: [0, 0] });
    expectMeta(root, 'new', { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
    expectMeta(root, 'o', { type: 'dir', mode: 0o750 });
    expectMeta(root, 'o/keep', { type: 'file', content: 'k' });
    expect(existsSync(join(root, '.wh..wh.plnk'))).toBe(false);
    expect(existsSync(join(root, 'a/.wh.gone'))).toBe(false);
    if (HAS_PYTHON) {
      expect(xattrs(join(root, 'o'))).toEqual({ 'trusted.overlay.opaque': Buffer.from('y') });
      expect(xattrs(join(root, 'implied/opq'))).toEqual({ 'trusted.overlay.opaque': Buffer.from('y') });
      expect(xattrs(root)['trusted.overlay.opaque']).toEqual(Buffer.from('y'));
      expect(xattrs(join(root, 'a'))).toEqual({});
    }
  });
});

// ---- the hostile corpus ----

const abs = (p: string) => join(base, p);
const HOSTILE: Hostile[] = [
  { name: '../ traversal', tar: buildTar([file(`../${EVIL}`, 'x')]), entry: `../${EVIL}`, reason: /climbs above the layer root/ },
  { name: 'deep ../ traversal', tar: buildTar([file(`../../../../../../../../tmp/${EVIL}`, 'x')]), entry: `../../../../../../../../tmp/${EVIL}` },
  { name: 'a/../../ traversal', tar: buildTar([dir('a'), file(`a/../../${EVIL}`, 'x')]), entry: `a/../../${EVIL}` },
  { name: 'PAX path traversal', tar: buildTar([file('innocent', 'x', { pax: { path: `a/../../../${EVIL}` } })]), entry: `a/../../../${EVIL}` },
  { name: 'absolute name', tar: buildTar([file(`/tmp/${EVIL}`, 'x')]), entry: `/tmp/${EVIL}`, reason: /absolute path/ },
  {
    name: 'absolute name into the marker',
    tar: buildTar([file(`${'/'}${relative('/', abs('outside'))}/${EVIL}`, 'x')]),
    entry: /entry ".*outside\/tsrun-evil-/,
  },
  {
    name: 'symlink escape, then a write through it (absolute)',
    tar: buildTar([symlink('a', abs('outside')), file(`a/${EVIL}`, 'x'), file('a/canary', 'overwritten')]),
    entry: `a/${EVIL}`,
    reason: /symlink/,
  },
  {
    name: 'symlink escape, then a write through it (relative)',
    tar: buildTar([symlink('a', '../../outside'), file('a/canary', 'overwritten')]),
    entry: 'a/canary',
  },
  {
    name: 'symlink to a .. chain, then a write through it',
    tar: buildTar([symlink('up', '../../../../../../..'), file(`up/tmp/${EVIL}`, 'x')]),
    entry: `up/tmp/${EVIL}`,
  },
  {
    name: 'chained symlinks to ..',
    tar: buildTar([symlink('u1', '..'), symlink('u2', 'u1/..'), file('u2/outside/canary', 'overwritten')]),
    entry: 'u2/outside/canary',
  },
  { name: 'hardlink to /etc/passwd', tar: buildTar([hardlink(EVIL, '/etc/passwd')]), entry: EVIL, reason: /absolute path/ },
  { name: 'hardlink up to /etc/passwd', tar: buildTar([hardlink(EVIL, '../../../../../../../../etc/passwd')]), entry: EVIL, reason: /climbs/ },
  {
    name: 'hardlink through a symlink to /etc',
    tar: buildTar([symlink('etc', '/etc'), hardlink(EVIL, 'etc/passwd')]),
    entry: EVIL,
    reason: /goes through a symlink/,
  },
  {
    name: 'hardlink through a symlink to the marker',
    tar: buildTar([symlink('o', abs('outside')), hardlink(EVIL, 'o/canary'), file(EVIL, 'overwritten')]),
    entry: EVIL,
  },
  { name: 'hardlink to a symlink', tar: buildTar([symlink('p', '/etc/passwd'), hardlink(EVIL, 'p')]), entry: EVIL, reason: /not a regular file/ },
  { name: 'hardlink to a directory', tar: buildTar([dir('d'), hardlink(EVIL, 'd')]), entry: EVIL, reason: /not a regular file/ },
  { name: 'hardlink to a missing file', tar: buildTar([hardlink(EVIL, 'nothing')]), entry: EVIL, reason: /does not exist/ },
  { name: 'whiteout of ../x', tar: buildTar([file(`../.wh.${EVIL}`)]), entry: `../.wh.${EVIL}` },
  { name: 'whiteout of ..', tar: buildTar([dir('a'), file('a/.wh...')]), entry: 'a/.wh...', reason: /invalid whiteout name/ },
  { name: 'whiteout of .', tar: buildTar([file('.wh..')]), entry: '.wh..', reason: /invalid whiteout name/ },
  { name: 'whiteout through a symlink', tar: buildTar([symlink('o', abs('outside')), file('o/.wh.canary')]), entry: 'o/.wh.canary' },
  { name: 'opaque marker through a symlink', tar: buildTar([symlink('o', abs('outside')), file('o/.wh..wh..opq')]), entry: 'o/.wh..wh..opq' },
  { name: 'fifo named through a symlink', tar: buildTar([symlink('d', abs('outside')), fifo(`d/${EVIL}`)]), entry: `d/${EVIL}` },
  { name: 'device node named through a symlink', tar: buildTar([symlink('d', abs('outside')), chardev(`d/${EVIL}`, 1, 1)]), entry: `d/${EVIL}` },
  { name: 'directory named through a symlink', tar: buildTar([symlink('d', abs('outside')), dir(`d/${EVIL}`)]), entry: `d/${EVIL}/` },
  { name: 'symlink named through a symlink', tar: buildTar([symlink('d', abs('outside')), symlink(`d/${EVIL}`, '/')]), entry: `d/${EVIL}` },
  {
    name: 'CVE-2025-47290 (unpack TOCTOU) race: a directory replaced by a symlink mid-stream',
    tar: buildTar([dir('d'), file('d/first', '1'), symlink('d', abs('outside')), file(`d/${EVIL}`, 'x')]),
    entry: `d/${EVIL}`,
  },
  {
    name: 'CVE-2025-47290 (unpack TOCTOU) race: a parent directory replaced by a symlink mid-stream',
    tar: buildTar([dir('d/e'), symlink('d', abs('outside')), file('d/e/f', 'x'), file('d/sub/passwd', 'x')]),
    entry: 'd/e/f',
  },
  {
    name: 'huge PAX header (2 MiB)',
    tar: buildTar([file('p', 'x', { rawPax: paxBody({ comment: 'x'.repeat(2 * 1024 * 1024) }) })]),
    entry: 'PaxHeaders/p',
    reason: /exceeds the 1048576-byte limit/,
  },
  {
    name: 'huge PAX header (5 MiB, beyond tar-stream)',
    tar: buildTar([file('p', 'x', { rawPax: paxBody({ comment: 'x'.repeat(5 * 1024 * 1024) }) })]),
    entry: /malformed tar/,
  },
  {
    name: 'malformed PAX record',
    tar: buildTar([file('p', 'x', { rawPax: Buffer.from('99 path=a\n') })]),
    entry: 'PaxHeaders/p',
    reason: /malformed PAX record/,
  },
  { name: 'PAX size 1e20', tar: buildTar([file('p', 'x', { pax: { size: '99999999999999999999' } })]), entry: 'p', reason: /not a valid size/ },
  {
    name: 'size field larger than the data',
    tar: buildTar([file('ok', 'fine'), file('short', 'tiny', { sizeField: 100_000 })]),
    entry: /after entry "short"/,
    reason: /Unexpected end of data/,
  },
  {
    name: 'entry count bomb',
    tar: buildTar(Array.from({ length: 1000 }, (_, i) => file(`f${i}`))),
    limits: { maxEntries: 100 },
    entry: 'f100',
    reason: /more than 100 entries/,
  },
  {
    name: 'total size bomb',
    tar: buildTar([file('a', Buffer.alloc(64 * 1024)), file('b', Buffer.alloc(64 * 1024))]),
    limits: { maxTotalBytes: 100_000 },
    entry: /uncompressed size exceeds/,
  },
  {
    name: 'file size limit',
    tar: buildTar([file('big', Buffer.alloc(5000))]),
    limits: { maxFileBytes: 4096 },
    entry: 'big',
    reason: /exceeds the 4096-byte limit/,
  },
  {
    name: 'CVE-2024-28863 (deep nesting): depth bomb',
    tar: buildTar([file(`${Array.from({ length: 300 }, () => 'd').join('/')}/f`)]),
    entry: /deeper than 256/,
  },
  {
    name: 'overlay xattr forged by the image',
    tar: buildTar([dir('d', { xattrs: { 'trusted.overlay.opaque': 'y' } })]),
    entry: 'd/',
    reason: /overlayfs metadata/,
  },
  { name: 'image-supplied 0:0 char device', tar: buildTar([chardev('wh', 0, 0)]), entry: 'wh', reason: /whiteout/ },
  {
    name: 'directory with data (parser differential)',
    tar: buildTar([{ name: 'd/', type: 'dir', data: Buffer.from(buildTar([file(`../${EVIL}`)], { endBlocks: false })) }]),
    entry: 'd/',
    reason: /size 0/,
  },
  { name: 'unknown typeflag', tar: buildTar([{ name: 'vol', typeflag: 'V' }]), entry: 'vol', reason: /unsupported entry type/ },
  { name: 'a throwing entry (parent is a file)', tar: buildTar([file('a', 'x'), file('a/b', 'y')]), entry: 'a/b', reason: /ENOTDIR/ },
  { name: 'not a tar at all', tar: randomBytes(4096), entry: /malformed tar/ },
  { name: 'truncated gzip', tar: gzipSync(buildTar([file('a', randomBytes(100_000))])).subarray(0, 30_000), mediaType: GZIP, entry: /corrupt gzip data/ },
  { name: 'gzip of garbage', tar: randomBytes(1000), mediaType: GZIP, entry: /corrupt gzip data/ },
  { name: 'truncated zstd', tar: zstdStored(buildTar([file('a', randomBytes(300_000))])).subarray(0, 200_000), mediaType: ZSTD, entry: /corrupt zstd data/ },
  {
    name: 'zstd window bomb',
    tar: zstdStored(buildTar([file('a', 'x')]), 31),
    mediaType: ZSTD,
    entry: /corrupt zstd data/,
    reason: /window of 2147483648 bytes exceeds/,
  },
  { name: 'zstd with bad magic', tar: randomBytes(100), mediaType: ZSTD, entry: /corrupt zstd data/ },
];

describe('layer breakouts (§3.2; CVE-2025-47290, node-tar CVE-2021-32803/32804/37701/37712/37713): hostile layers are rejected and nothing outside the root changes', () => {
  for (const c of HOSTILE) {
    it.runIf(!c.root || IS_ROOT)(c.name, async () => {
      await expectRejected(c);
    });
  }

  it('the marker and host files are intact after the whole corpus', () => {
    expect(readFileSync(join(outside, 'canary'), 'utf8')).toBe('do not touch\n');
    expect(lstatSync(join(outside, 'canary')).nlink).toBe(1);
    expect(readdirSync(outside).sort()).toEqual(['canary', 'link-to-canary', 'sub']);
    expect(readdirSync(join(outside, 'sub'))).toEqual(['passwd']);
    probesAbsent();
  });
});

describe('stream failures', () => {
  it('a source that errors mid-stream rejects with that error and nothing leaks', async () => {
    const tar = gzipSync(buildTar([file('a', randomBytes(200_000)), file('b', 'x')]));
    const boom = new Error('connection reset');
    const src = new Readable({
      read() {
        this.push(tar.subarray(0, 10_000));
        this.destroy(boom);
      },
    });
    const err = (await unpackLayer(src, GZIP, newRoot(), { layerName: LAYER }).catch((e: unknown) => e)) as TsrunError;
    expect(err).toBeInstanceOf(TsrunError);
    expect(err.message).toContain('connection reset');
    expect(err.message).toContain(`layer ${LAYER}`);
    expect(err.cause).toBe(boom);
  });

  it('a source destroyed without an error rejects instead of hanging', async () => {
    const tar = buildTar([file('a', randomBytes(200_000))]);
    let sent = false;
    const src = new Readable({
      read() {
        if (sent) return;
        sent = true;
        this.push(tar.subarray(0, 5000));
        setTimeout(() => this.destroy(), 10);
      },
    });
    const err = (await unpackLayer(src, TAR, newRoot(), { layerName: LAYER }).catch((e: unknown) => e)) as TsrunError;
    expect(err.code).toBe('ERR_LAYER_REJECTED');
    expect(err.message).toMatch(/closed before its end/);
  });

  it('an unsupported media type is refused and the source destroyed', async () => {
    const src = source(buildTar([file('a')]));
    const err = (await unpackLayer(src, 'application/vnd.oci.image.layer.v1.tar+bzip2', newRoot(), { layerName: LAYER }).catch(
      (e: unknown) => e,
    )) as TsrunError;
    expect(err.code).toBe('ERR_UNSUPPORTED');
    expect(err.message).toContain('tar+bzip2');
    expect(src.destroyed).toBe(true);
  });

  it('a missing root is an ERR_SYSCALL naming it', async () => {
    const src = source(buildTar([file('a')]));
    const err = (await unpackLayer(src, TAR, join(base, 'no-such-root'), { layerName: LAYER }).catch((e: unknown) => e)) as TsrunError;
    expect(err.code).toBe('ERR_SYSCALL');
    expect(err.message).toContain('no-such-root');
    expect(src.destroyed).toBe(true);
  });
});
