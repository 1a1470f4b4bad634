// `tsrun diff` and `tsrun commit` building blocks (src/image/diff.ts, src/image/commit.ts) on a
// real overlay: a two-layer base image in a tmp store (the second layer deletes a file), a
// container root mounted from it (src/image/rootfs.ts), changes made through the merged dir as
// a container process would make them (new file, modified file, deleted file, a directory
// removed and made again, so the kernel marks it opaque, a file the image had deleted made
// again). Then: diff lists exactly the A/C/D docker would; commit writes a layer whose tar has
// the whiteout and opaque marker and no overlay metadata, whose digests check out, which is
// unpacked in the store, tagged and found by findImage, and which, mounted under a new
// container, shows the committed tree. Hand-made upper dirs check the finer diff rules (the
// image's own whiteouts and opaque dirs, directory metadata, exclusions).
//
// Needs root (overlay mounts, mknod, trusted.* xattrs) and python3 (to set xattrs); skipped
// with the reason otherwise. Mounts are removed in afterAll, tmp dirs by tempDir.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { applyConfigChanges, commitContainer } from '../../src/image/commit.js';
import { diffUpperDir } from '../../src/image/diff.js';
import { findImage, resolveRecord } from '../../src/image/inspect.js';
import { nativeXattrScanner } from '../../src/image/layer/pack.js';
import { mountRootfs, removeRootfs } from '../../src/image/rootfs.js';
import type { ImageStore } from '../../src/image/store/store.js';
import { tempDir } from '../helpers/tmp-dir.js';
import { addImage, makeImage, makeLayer, makeTar, sha256, tmpStore, type Layer } from '../unit/image/image-fixtures.js';
import { gzipSync } from 'node:zlib';

const IS_ROOT = process.getuid?.() === 0;
const HAS_PYTHON = spawnSync('python3', ['-c', 'import os; os.setxattr']).status === 0;
const skip = !IS_ROOT ? 'needs root (overlay mounts, mknod, trusted.* xattrs)' : !HAS_PYTHON ? 'needs python3 (to set xattrs)' : null;
if (skip) console.log(`commit-diff: skipped: ${skip}`);

const EMPTY_TAR_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
const T0 = 1_600_000_000;

function setXattr(p: string, name: string, value: string): void {
  execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)', p, name, value]);
}

function isWhiteout(p: string): boolean {
  const st = lstatSync(p);
  return st.isCharacterDevice() && st.rdev === 0;
}

async function tarNames(gz: Buffer): Promise<Array<{ name: string; type: string; pax: Record<string, string> }>> {
  const out: Array<{ name: string; type: string; pax: Record<string, string> }> = [];
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      out.push({ name: h.name, type: h.type ?? '?', pax: (h.pax ?? {}) as Record<string, string> });
      stream.on('end', next);
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  Readable.from([gunzipSync(gz)]).pipe(ex);
  await done;
  return out;
}

/** A layer from raw tar entries (whiteouts included). */
async function rawLayer(entries: Parameters<typeof makeTar>[0]): Promise<Layer> {
  const t = await makeTar(entries);
  const gz = gzipSync(t);
  return { tar: t, gz, diffId: sha256(t), gzDigest: sha256(gz) };
}

const lowersOf = (store: ImageStore, diffIds: string[]) => [...diffIds].reverse().map((d) => store.layout.layerRoot(d));

describe.skipIf(!!skip)('commit and diff on a real overlay', () => {
  const store = tmpStore();
  afterAll(() => {
    const dir = join(store.layout.root, 'containers');
    for (const id of existsSync(dir) ? readdirSync(dir) : []) removeRootfs(store, id);
  });

  let baseDigest = '';
  let baseDiffIds: string[] = [];

  it('builds the base image and a container that changes it', async () => {
    const l1 = await makeLayer({
      'etc/os-release': 'NAME=base\n',
      'bin/hello': '#!/bin/sh\necho hello\n',
      'data/a': 'a',
      'data/b': 'b',
      'keep/k': 'k',
      old: 'old',
    });
    const l2 = await rawLayer([
      { name: '.wh.old', data: '' },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/motd', data: 'hi\n' },
    ]);
    const img = makeImage([l1, l2]);
    await addImage(store, 'localhost/base:1', img);
    baseDigest = img.manifestDigest;
    baseDiffIds = [l1.diffId, l2.diffId];

    const fs = mountRootfs(store, 'c1', baseDiffIds);
    const m = fs.merged;
    expect(existsSync(join(m, 'old'))).toBe(false);
    mkdirSync(join(m, 'app'));
    writeFileSync(join(m, 'app/new.txt'), 'new\n');
    writeFileSync(join(m, 'etc/os-release'), 'NAME=changed\n');
    rmSync(join(m, 'bin/hello'));
    rmSync(join(m, 'data'), { recursive: true });
    mkdirSync(join(m, 'data'));
    writeFileSync(join(m, 'data/c'), 'c');
    writeFileSync(join(m, 'old'), 'back\n');
    // what the kernel wrote: a whiteout, an opaque dir
    expect(isWhiteout(join(fs.upper, 'bin/hello'))).toBe(true);
    expect(nativeXattrScanner(fs.upper).get('data')?.get('trusted.overlay.opaque')?.toString()).toBe('y');
  });

  it('diff lists what the container added, changed and deleted', () => {
    const upper = join(store.layout.container('c1'), 'upper');
    const changes = diffUpperDir(upper, lowersOf(store, baseDiffIds));
    expect(changes.map((c) => `${c.kind} ${c.path}`)).toEqual([
      'A /app',
      'A /app/new.txt',
      'C /bin',
      'D /bin/hello',
      'C /data',
      'D /data/a',
      'D /data/b',
      'A /data/c',
      'C /etc',
      'C /etc/os-release',
      'A /old', // the image deleted it (layer 2): made again, it is new
    ]);
    expect(diffUpperDir(upper, lowersOf(store, baseDiffIds), { exclude: (p) => p === '/data' || p === '/old' }).map((c) => c.path)).toEqual([
      '/app',
      '/app/new.txt',
      '/bin',
      '/bin/hello',
      '/etc',
      '/etc/os-release',
    ]);
  });

  let committed = { id: '', manifestDigest: '', diffId: '', layerDigest: '' };

  it('commit makes a tagged image with one more layer, in OCI form, unpacked in the store', async () => {
    const upper = join(store.layout.container('c1'), 'upper');
    const created = new Date('2025-01-02T03:04:05Z');
    const res = await commitContainer(store, {
      base: baseDigest,
      upperDir: upper,
      ref: 'localhost/committed:v1',
      author: 'Tess <tess@example.com>',
      message: 'add the app',
      createdBy: '/bin/sh -c make',
      created,
      changes: { Env: ['FOO=bar', 'PATH=/usr/bin:/bin'], Entrypoint: ['/app/run'], Labels: { a: '1' } },
    });
    committed = res;
    expect(res.ref).toBe('localhost/committed:v1');

    // the tag, found as users name it (and by id prefix)
    const match = findImage(store, 'localhost/committed:v1');
    expect(match.record).toEqual({ digest: res.manifestDigest });
    expect(findImage(store, res.id.slice(7, 19)).ref).toBe('localhost/committed:v1');
    const img = resolveRecord(store, match.record);
    expect(img.configDigest).toBe(res.id);
    expect(img.config.rootfs.diff_ids).toEqual([...baseDiffIds, res.diffId]);
    expect(img.manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(img.manifest.layers[2]).toEqual({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: res.layerDigest, size: res.layerSize });
    expect(img.config.created).toBe(created.toISOString());
    expect(img.config.author).toBe('Tess <tess@example.com>');
    expect(img.config.history?.at(-1)).toEqual({
      created: created.toISOString(),
      created_by: '/bin/sh -c make',
      author: 'Tess <tess@example.com>',
      comment: 'add the app',
    });
    // docker's --change rules: Env merged by key, an Entrypoint alone clears the Cmd
    expect(img.config.config).toMatchObject({ Env: ['PATH=/usr/bin:/bin', 'FOO=bar'], Entrypoint: ['/app/run'], Cmd: null, Labels: { a: '1' } });

    // the blob: digests recomputed from its bytes; the tar in OCI form
    const blob = readFileSync(store.blobPath(res.layerDigest));
    expect(sha256(blob)).toBe(res.layerDigest);
    expect(sha256(gunzipSync(blob))).toBe(res.diffId);
    const entries = await tarNames(blob);
    expect(entries.map((e) => e.name)).toEqual([
      'app/',
      'app/new.txt',
      'bin/',
      'bin/.wh.hello',
      'data/',
      'data/.wh..wh..opq',
      'data/c',
      'etc/',
      'etc/os-release',
      'old',
    ]);
    expect(entries.find((e) => e.name === 'bin/.wh.hello')!.type).toBe('file');
    expect(entries.flatMap((e) => Object.keys(e.pax)).filter((k) => k.includes('overlay'))).toEqual([]);

    // the layer, unpacked in overlay form
    expect(store.hasLayer(res.diffId)).toBe(true);
    expect(store.layerMeta(res.diffId).compressedDigest).toBe(res.layerDigest);
    const root = store.layout.layerRoot(res.diffId);
    expect(readFileSync(join(root, 'app/new.txt'), 'utf8')).toBe('new\n');
    expect(isWhiteout(join(root, 'bin/hello'))).toBe(true);
    expect(nativeXattrScanner(root, { dirsOnly: true, name: 'trusted.overlay.opaque' }).has('data')).toBe(true);
  });

  it('a container of the committed image sees the committed tree, and has no changes of its own', () => {
    const img = resolveRecord(store, findImage(store, 'localhost/committed:v1').record);
    const fs = mountRootfs(store, 'c2', img.config.rootfs.diff_ids);
    const m = fs.merged;
    expect(readFileSync(join(m, 'app/new.txt'), 'utf8')).toBe('new\n');
    expect(readFileSync(join(m, 'etc/os-release'), 'utf8')).toBe('NAME=changed\n');
    expect(readFileSync(join(m, 'etc/motd'), 'utf8')).toBe('hi\n');
    expect(existsSync(join(m, 'bin/hello'))).toBe(false);
    expect(readdirSync(join(m, 'bin'))).toEqual([]);
    expect(readdirSync(join(m, 'data'))).toEqual(['c']);
    expect(readFileSync(join(m, 'old'), 'utf8')).toBe('back\n');
    expect(readFileSync(join(m, 'keep/k'), 'utf8')).toBe('k');
    expect(diffUpperDir(fs.upper, lowersOf(store, img.config.rootfs.diff_ids))).toEqual([]);
  });

  it('committing an unchanged container still adds a layer: the empty one, as docker does', async () => {
    const upper = join(store.layout.container('c2'), 'upper');
    const res = await commitContainer(store, { base: 'localhost/committed:v1', upperDir: upper });
    expect(res.diffId).toBe(EMPTY_TAR_DIFF_ID);
    expect(res.ref).toBeUndefined();
    expect(res.config.rootfs.diff_ids).toEqual([...baseDiffIds, committed.diffId, EMPTY_TAR_DIFF_ID]);
    expect(store.hasLayer(EMPTY_TAR_DIFF_ID)).toBe(true);
    expect(Object.values(store.tags()).map((t) => t.digest)).not.toContain(res.manifestDigest); // untagged
    expect(resolveRecord(store, { digest: res.manifestDigest }).configDigest).toBe(res.id);
  });

  it('a failed commit tags nothing', async () => {
    const upper = tempDir('tsrun-commit-bad-');
    writeFileSync(join(upper, '.wh.sneaky'), '');
    const before = store.tags();
    await expect(commitContainer(store, { base: baseDigest, upperDir: upper, ref: 'localhost/bad:1' })).rejects.toThrow(
      /commit .* as localhost\/bad:1: .*would be read as a whiteout/,
    );
    expect(store.tags()).toEqual(before);
    expect(readdirSync(store.layout.tmp())).toEqual([]);
  });
});

describe.skipIf(!!skip)('diff rules on hand-made layers', () => {
  /** lower (bottom), lower (top, with a whiteout and an opaque dir), and an upper. */
  function tree() {
    const base = tempDir('tsrun-diff-');
    const [bottom, top, upper] = ['bottom', 'top', 'upper'].map((d) => join(base, d)) as [string, string, string];
    for (const d of [bottom, top, upper]) mkdirSync(d);
    mkdirSync(join(bottom, 'x'));
    writeFileSync(join(bottom, 'x/f'), 'f');
    writeFileSync(join(bottom, 'y'), 'y');
    mkdirSync(join(bottom, 'z/deep'), { recursive: true });
    writeFileSync(join(bottom, 'z/deep/g'), 'g');
    writeFileSync(join(bottom, 'z/keep'), 'k');
    mkdirSync(join(bottom, 'same'));
    mkdirSync(join(bottom, 'meta'));
    writeFileSync(join(bottom, 'file-to-dir'), '');
    // the top layer deletes y and makes x opaque
    execFileSync('mknod', [join(top, 'y'), 'c', '0', '0']);
    mkdirSync(join(top, 'x'));
    writeFileSync(join(top, 'x/h'), 'h');
    setXattr(join(top, 'x'), 'trusted.overlay.opaque', 'y');
    for (const d of [join(bottom, 'same'), join(bottom, 'meta')]) utimesSync(d, T0, T0);
    return { bottom, top, upper };
  }

  it('the image view honours its own whiteouts and opaque dirs; dirs compare by metadata', () => {
    const { bottom, top, upper } = tree();
    writeFileSync(join(upper, 'y'), 'again'); // deleted by the image: A
    mkdirSync(join(upper, 'x'));
    utimesSync(join(upper, 'x'), lstatSync(join(top, 'x')).atime, lstatSync(join(top, 'x')).mtime);
    writeFileSync(join(upper, 'x/f'), 'f'); // hidden by the image's opaque x: A
    writeFileSync(join(upper, 'x/h'), 'h2'); // C
    mkdirSync(join(upper, 'z'));
    setXattr(join(upper, 'z'), 'trusted.overlay.opaque', 'y'); // removed and made again
    writeFileSync(join(upper, 'z/new'), 'n');
    writeFileSync(join(upper, 'z/keep'), 'k2');
    execFileSync('mknod', [join(upper, 'never-there'), 'c', '0', '0']); // deletes nothing
    mkdirSync(join(upper, 'same'));
    utimesSync(join(upper, 'same'), T0, T0); // a copied-up dir, unchanged: not listed
    mkdirSync(join(upper, 'meta'));
    chmodSync(join(upper, 'meta'), 0o700);
    utimesSync(join(upper, 'meta'), T0, T0); // mode changed: C
    mkdirSync(join(upper, 'file-to-dir'));
    writeFileSync(join(upper, 'file-to-dir/inner'), '');
    const changes = diffUpperDir(upper, [top, bottom]);
    expect(changes.map((c) => `${c.kind} ${c.path}`)).toEqual([
      'C /file-to-dir',
      'A /file-to-dir/inner',
      'C /meta',
      'C /x',
      'A /x/f',
      'C /x/h',
      'A /y',
      'C /z',
      'D /z/deep',
      'C /z/keep',
      'A /z/new',
    ]);
  });

  it('a whiteout over something in the image is D, and its directory C', () => {
    const { bottom, top, upper } = tree();
    mkdirSync(join(upper, 'z'));
    execFileSync('mknod', [join(upper, 'z/keep'), 'c', '0', '0']);
    mkdirSync(join(upper, 'z/deep'));
    execFileSync('mknod', [join(upper, 'z/deep/g'), 'c', '0', '0']);
    utimesSync(join(upper, 'z/deep'), lstatSync(join(bottom, 'z/deep')).atime, lstatSync(join(bottom, 'z/deep')).mtime);
    expect(diffUpperDir(upper, [top, bottom]).map((c) => `${c.kind} ${c.path}`)).toEqual(['C /z', 'C /z/deep', 'D /z/deep/g', 'D /z/keep']);
  });
});

describe('applyConfigChanges (docker commit --change rules)', () => {
  it('merges Env, Labels, ExposedPorts and Volumes; replaces the rest; an Entrypoint alone clears the Cmd', () => {
    const base = { Env: ['PATH=/bin', 'A=1'], Cmd: ['sh'], Labels: { x: '1' }, ExposedPorts: { '80/tcp': {} }, User: 'root', Healthcheck: { Test: ['NONE'] } };
    expect(
      applyConfigChanges(base, { Env: ['A=2', 'B=3'], Labels: { y: '2' }, ExposedPorts: { '443/tcp': {} }, User: '1000', Volumes: { '/data': {} } }),
    ).toEqual({
      Env: ['PATH=/bin', 'A=2', 'B=3'],
      Cmd: ['sh'],
      Labels: { x: '1', y: '2' },
      ExposedPorts: { '80/tcp': {}, '443/tcp': {} },
      Volumes: { '/data': {} },
      User: '1000',
      Healthcheck: { Test: ['NONE'] },
    });
    expect(applyConfigChanges(base, { Entrypoint: ['/init'] })).toMatchObject({ Entrypoint: ['/init'], Cmd: null });
    expect(applyConfigChanges(base, { Entrypoint: ['/init'], Cmd: ['x'] })).toMatchObject({ Entrypoint: ['/init'], Cmd: ['x'] });
    expect(base.Env).toEqual(['PATH=/bin', 'A=1']); // not modified in place
  });
});
