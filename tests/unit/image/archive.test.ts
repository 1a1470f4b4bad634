// Loading and saving image archives: OCI layout directories, oci-archive tars, docker-save
// archives (plain, gzip, with gzip layers and symlinked duplicate layers); deterministic save;
// round trips; skopeo's acceptance of what save writes; malicious archives refused with
// nothing tagged.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadArchive } from '../../../src/image/archive/load.js';
import { saveImage } from '../../../src/image/archive/save.js';
import { inspectImage } from '../../../src/image/inspect.js';
import type { ImageStore } from '../../../src/image/store/store.js';
import {
  addImage,
  dockerSaveEntries,
  hex,
  layoutEntries,
  makeImage,
  makeLayer,
  makeTar,
  sha256,
  tmp,
  tmpStore,
  writeDir,
  writeTarFile,
  type BuiltImage,
} from './image-fixtures.js';

const skopeo = spawnSync('skopeo', ['--version']).status === 0 ? 'skopeo' : undefined;
if (!skopeo) console.log('archive: skopeo tests skipped: skopeo is not installed');

async function twoLayerImage(extra: Record<string, unknown> = {}): Promise<BuiltImage> {
  const base = await makeLayer({ 'etc/os-release': 'NAME=test\n', 'bin/hello': '#!/bin/sh\necho hi\n' });
  const top = await makeLayer({ 'app/data.txt': `top ${JSON.stringify(extra)}\n` });
  return makeImage([base, top], extra);
}

function layerFile(store: ImageStore, diffId: string, path: string): string {
  return readFileSync(join(store.layout.layerRoot(diffId), path), 'utf8');
}

function expectNothingTagged(store: ImageStore): void {
  expect(store.tags()).toEqual({});
}

describe('loadArchive: formats', () => {
  it('loads an OCI layout directory; a bare ref.name becomes localhost/<dir name>:<tag>', async () => {
    const img = await twoLayerImage();
    const dir = writeDir(join(tmp('oci'), 'my_app'), layoutEntries([{ image: img, refName: 'v1' }]));
    const store = tmpStore();
    const res = await loadArchive(store, dir);
    expect(res.format).toBe('oci-dir');
    expect(res.images).toEqual([
      { refs: ['localhost/my_app:v1'], digest: img.manifestDigest, manifestDigest: img.manifestDigest, id: img.configDigest, layers: 2 },
    ]);
    expect(store.tags()).toEqual({ 'localhost/my_app:v1': { digest: img.manifestDigest } });
    expect(layerFile(store, img.layers[0]!.diffId, 'etc/os-release')).toBe('NAME=test\n');
    expect(layerFile(store, img.layers[1]!.diffId, 'app/data.txt')).toMatch(/^top/);
    expect(store.layerMeta(img.layers[0]!.diffId).compressedDigest).toBe(img.layers[0]!.gzDigest);
  });

  it('re-loading reuses what the store has and marks it fresh (a concurrent prune keeps it)', async () => {
    const img = await twoLayerImage();
    const dir = writeDir(join(tmp('oci'), 'app'), layoutEntries([{ image: img, refName: 'v1' }]));
    const store = tmpStore();
    await loadArchive(store, dir);
    const old = new Date(Date.now() - 3600_000);
    for (const d of img.blobs.keys()) utimesSync(store.blobPath(d), old, old);
    for (const l of img.layers) utimesSync(store.layout.layerDir(l.diffId), old, old);
    const res = await loadArchive(store, dir);
    expect(res.images[0]!.refs).toEqual(['localhost/app:v1']);
    for (const d of img.blobs.keys()) expect(Date.now() - statSync(store.blobPath(d)).mtimeMs).toBeLessThan(60_000);
    for (const l of img.layers) expect(Date.now() - statSync(store.layout.layerDir(l.diffId)).mtimeMs).toBeLessThan(60_000);
  });

  it('loads an oci-archive (plain and gzip); a full ref.name is normalised', async () => {
    const img = await twoLayerImage();
    for (const gzip of [false, true]) {
      const file = await writeTarFile(join(tmp('oa'), 'x.tar'), layoutEntries([{ image: img, refName: 'busybox:1.36' }]), { gzip });
      const store = tmpStore();
      const res = await loadArchive(store, file);
      expect(res.format).toBe('oci-archive');
      expect(store.tags()).toEqual({ 'docker.io/library/busybox:1.36': { digest: img.manifestDigest } });
      expect(store.hasLayer(img.layers[1]!.diffId)).toBe(true);
    }
  });

  it('names an unnamed image localhost/<archive basename>:latest, or opts.tag', async () => {
    const img = await twoLayerImage();
    const file = await writeTarFile(join(tmp('oa'), 'Some Image.oci.tar'), layoutEntries([{ image: img }]));
    const s1 = tmpStore();
    await loadArchive(s1, file);
    expect(Object.keys(s1.tags())).toEqual(['localhost/some-image:latest']);
    const s2 = tmpStore();
    await loadArchive(s2, file, { tag: 'example.com/team/app:2' });
    expect(Object.keys(s2.tags())).toEqual(['example.com/team/app:2']);
  });

  it('picks the host platform from an index in the layout and records it', async () => {
    const img = await twoLayerImage();
    const other = makeImage([await makeLayer({ other: 'x' })], { architecture: 'mips64le' });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: other.manifestDigest,
            size: other.manifest.length,
            platform: { os: 'linux', architecture: 'mips64le' },
          },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: img.manifestDigest,
            size: img.manifest.length,
            platform: { os: 'linux', architecture: JSON.parse(img.config.toString()).architecture },
          },
        ],
      }),
    );
    const entries = layoutEntries(
      [
        {
          image: img,
          refName: 'quay.io/x/multi:1',
          descriptor: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(index), size: index.length },
        },
      ],
      new Map([[sha256(index), index]]),
    );
    const store = tmpStore();
    const res = await loadArchive(store, await writeTarFile(join(tmp('oa'), 'm.tar'), entries));
    expect(res.images[0]).toMatchObject({ digest: sha256(index), manifestDigest: img.manifestDigest, platform: expect.stringMatching(/^linux\//) });
    expect(store.tags()['quay.io/x/multi:1']).toMatchObject({ digest: sha256(index) });
    expect(inspectImage(store, 'quay.io/x/multi:1').digest).toBe(img.manifestDigest);
    expect(store.hasBlob(other.manifestDigest)).toBe(false); // only the host's manifest is copied
  });

  it('loads a docker save archive: RepoTags normalised, layers stored uncompressed as their diff_ids, symlinked duplicates resolved', async () => {
    const a = await twoLayerImage({ comment: 'a' });
    const b = makeImage([a.layers[0]!, await makeLayer({ 'b.txt': 'b' })], { comment: 'b' });
    const file = await writeTarFile(
      join(tmp('ds'), 'save.tar'),
      dockerSaveEntries([
        { image: a, repoTags: ['busybox:latest', 'ghcr.io/o/a:1'] },
        { image: b, repoTags: ['b:2'] },
      ]),
    );
    const store = tmpStore();
    const res = await loadArchive(store, file);
    expect(res.format).toBe('docker-archive');
    const tags = store.tags();
    expect(Object.keys(tags).sort()).toEqual(['docker.io/library/b:2', 'docker.io/library/busybox:latest', 'ghcr.io/o/a:1']);
    expect(tags['ghcr.io/o/a:1']).toEqual(tags['docker.io/library/busybox:latest']);
    const info = inspectImage(store, 'busybox');
    expect(info.id).toBe(a.configDigest);
    expect(info.layers.map((l) => [l.digest, l.diffId, l.mediaType, l.unpacked])).toEqual(
      a.layers.map((l) => [l.diffId, l.diffId, 'application/vnd.oci.image.layer.v1.tar', true]),
    );
    expect(layerFile(store, a.layers[0]!.diffId, 'bin/hello')).toContain('echo hi');
    // the synthesised manifest is deterministic: a second load gives the same digest
    const again = tmpStore();
    expect((await loadArchive(again, file)).images.map((i) => i.manifestDigest)).toEqual(res.images.map((i) => i.manifestDigest));
  });

  it('loads a gzip-compressed docker archive, and one with gzip layer members', async () => {
    const img = await twoLayerImage();
    const plain = dockerSaveEntries([{ image: img, repoTags: ['busybox:latest'] }]);
    const s1 = tmpStore();
    await loadArchive(s1, await writeTarFile(join(tmp('ds'), 'a.tar.gz'), plain, { gzip: true }));
    expect(inspectImage(s1, 'busybox').id).toBe(img.configDigest);
    const s2 = tmpStore();
    await loadArchive(
      s2,
      await writeTarFile(join(tmp('ds'), 'b.tar'), dockerSaveEntries([{ image: img, repoTags: ['busybox:latest'] }], { gzipLayers: true })),
    );
    const info = inspectImage(s2, 'busybox');
    expect(info.layers.map((l) => [l.digest, l.mediaType])).toEqual(img.layers.map((l) => [l.gzDigest, 'application/vnd.oci.image.layer.v1.tar+gzip']));
    expect(info.layers.every((l) => l.unpacked)).toBe(true);
  });
});

describe('saveImage', () => {
  it('oci-archive and oci-dir round-trip to the same manifest digest, and saving is deterministic', async () => {
    const img = await twoLayerImage();
    const store = tmpStore();
    await addImage(store, 'docker.io/library/busybox:latest', img);
    const d = tmp('save');
    const r1 = await saveImage(store, ['busybox'], join(d, 'a.tar'), 'oci-archive');
    expect(r1.images).toEqual([{ ref: 'docker.io/library/busybox:latest', digest: img.manifestDigest, id: img.configDigest }]);
    await saveImage(store, ['busybox'], join(d, 'b.tar'), 'oci-archive');
    expect(readFileSync(join(d, 'a.tar')).equals(readFileSync(join(d, 'b.tar')))).toBe(true);
    expect(readdirSync(d).sort()).toEqual(['a.tar', 'b.tar']); // no temporaries left

    const fresh = tmpStore();
    const loaded = await loadArchive(fresh, join(d, 'a.tar'));
    expect(loaded.images[0]).toMatchObject({ refs: ['docker.io/library/busybox:latest'], manifestDigest: img.manifestDigest });

    await saveImage(store, ['busybox'], join(d, 'layout'), 'oci-dir');
    expect(readdirSync(join(d, 'layout')).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
    expect(readdirSync(join(d, 'layout', 'blobs', 'sha256')).sort()).toEqual([...img.blobs.keys()].map(hex).sort());
    const fresh2 = tmpStore();
    expect((await loadArchive(fresh2, join(d, 'layout'))).images[0]!.manifestDigest).toBe(img.manifestDigest);
  });

  it('writes members sorted with mtime 0 and owner 0:0, to a path or a stream', async () => {
    const img = await twoLayerImage();
    const store = tmpStore();
    await addImage(store, 'docker.io/library/busybox:latest', img);
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await saveImage(store, ['busybox'], sink, 'oci-archive');
    const file = join(tmp('save'), 'x.tar');
    writeFileSync(file, Buffer.concat(chunks));
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8' }).trim().split('\n');
    const names = listing.map((l) => l.split(/\s+/).pop()!);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(['blobs/', 'blobs/sha256/', ...[...img.blobs.keys()].map((k) => `blobs/sha256/${hex(k)}`).sort(), 'index.json', 'oci-layout']);
    for (const l of listing) expect(l).toMatch(/ 0\/0 .* 1970-01-01 00:00:00 /);
  });

  it('docker-archive round trip keeps the image id and the loaded layers; gzip layers are written uncompressed', async () => {
    const img = await twoLayerImage();
    const store = tmpStore();
    await addImage(store, 'ghcr.io/o/app:1', img);
    store.removeLayer(img.layers[0]!.diffId); // its uncompressed size is then counted, not read from layer.json
    const file = join(tmp('save'), 'd.tar');
    await saveImage(store, ['ghcr.io/o/app:1'], file, 'docker-archive');
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' })) as unknown;
    expect(manifest).toEqual([
      { Config: `${hex(img.configDigest)}.json`, RepoTags: ['ghcr.io/o/app:1'], Layers: img.layers.map((l) => `${hex(l.diffId)}.tar`) },
    ]);
    const fresh = tmpStore();
    const res = await loadArchive(fresh, file);
    expect(res.images[0]).toMatchObject({ refs: ['ghcr.io/o/app:1'], id: img.configDigest });
    expect(inspectImage(fresh, 'ghcr.io/o/app:1').layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.diffId));
    // and docker-archive -> load -> docker-archive is a fixed point
    const file2 = join(tmp('save'), 'd2.tar');
    await saveImage(fresh, ['ghcr.io/o/app:1'], file2, 'docker-archive');
    expect(readFileSync(file2).equals(readFileSync(file))).toBe(true);
  });

  it('refuses an unknown image, an oci-dir into a non-empty directory or a stream, and leaves no partial file', async () => {
    const store = tmpStore();
    await addImage(store, 'docker.io/library/busybox:latest', await twoLayerImage());
    const d = tmp('s');
    await expect(saveImage(store, ['busybox', 'nope'], join(d, 'x.tar'), 'oci-archive')).rejects.toThrow(/no such image: nope/);
    mkdirSync(join(d, 'full'));
    writeFileSync(join(d, 'full', 'file'), 'x');
    await expect(saveImage(store, ['busybox'], join(d, 'full'), 'oci-dir')).rejects.toThrow(/exists and is neither empty nor an OCI image layout/);
    await expect(saveImage(store, ['busybox'], new PassThrough(), 'oci-dir')).rejects.toThrow(/oci-dir output must be a directory path/);
    // a blob that went missing from the store fails the save; no output is left behind
    const img = inspectImage(store, 'busybox');
    rmSync(store.blobPath(img.layers[1]!.digest));
    await expect(saveImage(store, ['busybox'], join(d, 'y.tar'), 'oci-archive')).rejects.toThrow(/ENOENT/);
    expect(readdirSync(d).sort()).toEqual(['full']);
  });
});

describe.skipIf(!skopeo)('skopeo accepts what save writes', () => {
  const insp = (ref: string) =>
    JSON.parse(execFileSync('skopeo', ['inspect', ref], { encoding: 'utf8' })) as { Digest: string; Layers: string[]; Architecture: string };

  it('oci-archive and docker-archive', async () => {
    const img = await twoLayerImage();
    const store = tmpStore();
    await addImage(store, 'docker.io/library/busybox:latest', img);
    const d = tmp('skopeo');
    await saveImage(store, ['busybox'], join(d, 'o.tar'), 'oci-archive');
    await saveImage(store, ['busybox'], join(d, 'd.tar'), 'docker-archive');
    await saveImage(store, ['busybox'], join(d, 'dir'), 'oci-dir');
    const o = insp(`oci-archive:${join(d, 'o.tar')}`);
    expect(o.Digest).toBe(img.manifestDigest);
    expect(o.Layers).toEqual(img.layers.map((l) => l.gzDigest));
    expect(insp(`oci:${join(d, 'dir')}:docker.io/library/busybox:latest`).Digest).toBe(img.manifestDigest);
    const dk = insp(`docker-archive:${join(d, 'd.tar')}`);
    expect(dk.Layers).toEqual(img.layers.map((l) => l.diffId));
    // a full copy reads (and verifies) every blob
    for (const src of [`oci-archive:${join(d, 'o.tar')}`, `docker-archive:${join(d, 'd.tar')}`]) {
      execFileSync('skopeo', ['copy', '--insecure-policy', '-q', src, `dir:${tmp('skopeo-copy')}`]);
    }
  });

  it('load reads what skopeo writes (docker-archive and oci-archive)', async () => {
    const img = await twoLayerImage();
    const d = tmp('skopeo');
    const layout = writeDir(join(d, 'layout'), layoutEntries([{ image: img, refName: 'v1' }]));
    execFileSync('skopeo', ['copy', '--insecure-policy', '-q', `oci:${layout}:v1`, `docker-archive:${join(d, 'd.tar')}:example.com/app:v1`]);
    execFileSync('skopeo', ['copy', '--insecure-policy', '-q', `oci:${layout}:v1`, `oci-archive:${join(d, 'o.tar')}:example.com/app:v2`]);
    const store = tmpStore();
    const rd = await loadArchive(store, join(d, 'd.tar'));
    expect(rd.images[0]).toMatchObject({ refs: ['example.com/app:v1'], id: img.configDigest });
    const ro = await loadArchive(store, join(d, 'o.tar'));
    expect(ro.images[0]).toMatchObject({ refs: ['example.com/app:v2'], manifestDigest: img.manifestDigest });
    expect(layerFile(store, img.layers[0]!.diffId, 'etc/os-release')).toBe('NAME=test\n');
  });
});

describe('loadArchive: malicious and broken archives are refused, nothing tagged', () => {
  async function refuse(entries: Parameters<typeof writeTarFile>[1], msg: RegExp, opts: { gzip?: boolean; maxMemberSize?: number } = {}): Promise<ImageStore> {
    const file = await writeTarFile(join(tmp('bad'), 'bad.tar'), entries, opts.gzip ? { gzip: true } : {});
    const store = tmpStore();
    await expect(loadArchive(store, file, opts.maxMemberSize ? { maxMemberSize: opts.maxMemberSize } : {})).rejects.toThrow(msg);
    expectNothingTagged(store);
    return store;
  }

  it('members escaping the archive', async () => {
    const img = await twoLayerImage();
    const good = layoutEntries([{ image: img, refName: 'x:1' }]);
    const s = await refuse([{ name: '../evil', data: 'x' }, ...good], /member "\.\.\/evil" escapes the archive/);
    expect(existsSync(join(s.layout.root, '..', 'evil'))).toBe(false);
    await refuse([{ name: 'blobs/../../evil', data: 'x' }, ...good], /escapes the archive/);
    await refuse([{ name: '/etc/evil', data: 'x' }, ...good], /absolute path/);
    // a link whose target leaves the archive
    const docker = dockerSaveEntries([{ image: img, repoTags: ['x:1'] }]).map((e) =>
      e.name.endsWith('/layer.tar') ? { name: e.name, type: 'symlink' as const, linkname: '../../../etc/passwd' } : e,
    );
    await refuse(docker, /links to "\.\.\/\.\.\/\.\.\/etc\/passwd", outside the archive/);
    await refuse([{ name: 'dev', type: 'character-device' }, ...good], /is a character-device/);
  });

  it('duplicate members', async () => {
    const img = await twoLayerImage();
    const good = layoutEntries([{ image: img, refName: 'x:1' }]);
    await refuse([...good, { name: './index.json', data: '{}' }], /duplicate member "index.json"/);
  });

  it('CVE-2023-25153 (importer memory exhaustion): oversized members', async () => {
    const img = await twoLayerImage();
    const good = layoutEntries([{ image: img, refName: 'x:1' }]);
    const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
    await refuse(
      [...good.filter((e) => e.name !== 'index.json'), { name: 'index.json', data: big }],
      /member "index.json" is 5242880 bytes, more than the 4194304 allowed for metadata/,
    );
    await refuse(good, /more than the 100 allowed/, { maxMemberSize: 100 });
  });

  it('blobs that do not match their digest', async () => {
    const img = await twoLayerImage();
    const layerName = `blobs/sha256/${hex(img.layers[1]!.gzDigest)}`;
    const tampered = layoutEntries([{ image: img, refName: 'x:1' }]).map((e) => (e.name === layerName ? { ...e, data: Buffer.from(img.layers[0]!.gz) } : e));
    // sizes differ first; make them equal to reach the digest check
    const sameSize = Buffer.from(img.layers[1]!.gz);
    sameSize.writeUInt8(sameSize.readUInt8(sameSize.length - 1) ^ 0xff, sameSize.length - 1);
    await refuse(tampered, /is \d+ bytes, its descriptor says \d+/);
    await refuse(
      layoutEntries([{ image: img, refName: 'x:1' }]).map((e) => (e.name === layerName ? { ...e, data: sameSize } : e)),
      /blob digest mismatch: expected sha256:[a-f0-9]{64}, got sha256:/,
    );
    const cfgName = `blobs/sha256/${hex(img.configDigest)}`;
    const badCfg = Buffer.from(img.config.toString().replace('/bin/sh', '/bin/xx'));
    await refuse(
      layoutEntries([{ image: img, refName: 'x:1' }]).map((e) => (e.name === cfgName ? { ...e, data: badCfg } : e)),
      /blob blobs\/sha256\/[a-f0-9]{64} does not match its digest/,
    );
    // docker archive: an uncompressed layer that is not its diff_id, a config that is not its name
    const docker = dockerSaveEntries([{ image: img, repoTags: ['x:1'] }]);
    await refuse(
      docker.map((e) => (e.name.endsWith('/layer.tar') && e.data ? { ...e, data: Buffer.concat([Buffer.from(e.data), Buffer.alloc(512)]) } : e)),
      /blob digest mismatch: expected sha256:/,
    );
    await refuse(
      docker.map((e) => (e.name === `${hex(img.configDigest)}.json` ? { ...e, data: badCfg } : e)),
      /config [a-f0-9]{64}\.json does not match its digest/,
    );
  });

  it('a layer whose content is not its diff_id fails at unpack, and nothing is tagged', async () => {
    const l = await makeLayer({ a: 'a' });
    const img = makeImage([{ ...l, diffId: sha256('not this') }]);
    const store = await refuse(
      layoutEntries([{ image: img, refName: 'x:1' }]),
      /unpack layer 1\/1 \(sha256:[a-f0-9]{64}\): .*diff_id mismatch: expected sha256:[a-f0-9]{64}, the content hashes to sha256:/,
    );
    expect(store.hasLayer(sha256('not this'))).toBe(false);
  });

  it('manifests pointing at missing blobs', async () => {
    const img = await twoLayerImage();
    const layerName = `blobs/sha256/${hex(img.layers[0]!.gzDigest)}`;
    const s = await refuse(
      layoutEntries([{ image: img, refName: 'x:1' }]).filter((e) => e.name !== layerName),
      new RegExp(`references layer ${img.layers[0]!.gzDigest}, which is not in the archive`),
    );
    expect(s.hasBlob(img.manifestDigest)).toBe(false); // validated before anything was stored
    await refuse(
      layoutEntries([{ image: img, refName: 'x:1' }]).filter((e) => e.name !== `blobs/sha256/${hex(img.configDigest)}`),
      /config sha256:[a-f0-9]{64} is not in the archive/,
    );
    await refuse(
      dockerSaveEntries([{ image: img, repoTags: ['x:1'] }]).filter((e) => !e.name.endsWith('/layer.tar')),
      /layer [a-f0-9]{64}\/layer\.tar is not in the archive/,
    );
  });

  it('things that are not image archives', async () => {
    await refuse([{ name: 'hello.txt', data: 'hi' }], /neither an OCI image layout .* nor a docker save archive/);
    const file = join(tmp('bad'), 'junk.tar');
    writeFileSync(file, Buffer.alloc(2048, 0x41));
    await expect(loadArchive(tmpStore(), file)).rejects.toThrow(/not a valid tar/);
    const t = await makeTar([{ name: 'x', data: 'y'.repeat(100_000) }]);
    writeFileSync(file, t.subarray(0, 50_000));
    await expect(loadArchive(tmpStore(), file)).rejects.toThrow(/archive .*junk\.tar: not a valid tar: Unexpected end of data/);
    await expect(loadArchive(tmpStore(), tmp('empty'))).rejects.toThrow(/must be an OCI image layout/);
  });

  it('two images claiming one name', async () => {
    const a = await twoLayerImage({ comment: 'a' });
    const b = await twoLayerImage({ comment: 'b' });
    await refuse(
      dockerSaveEntries([
        { image: a, repoTags: ['x:1'] },
        { image: b, repoTags: ['docker.io/library/x:1'] },
      ]),
      /names docker\.io\/library\/x:1 for two different images/,
    );
  });
});
