// rmi untags only; prune removes exactly what no tag reaches (blobs, unpacked layers, dangling
// short links, stale temporaries), never a layer in use or anything written in the last
// minutes (a pull that has not tagged yet), and sweeps holding the repositories lock.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pruneImages, removeImage } from '../../../src/image/gc.js';
import { hostPlatform } from '../../../src/image/manifest.js';
import type { ImageStore } from '../../../src/image/store/store.js';
import { addImage, hex, makeImage, makeLayer, tmpStore, type BuiltImage } from './image-fixtures.js';

const HOUR = 3600_000;

/** Make everything in blobs/ and layers/ look `ms` old. */
function age(store: ImageStore, ms: number): void {
  const t = new Date(Date.now() - ms);
  const blobs = join(store.layout.root, 'blobs', 'sha256');
  for (const n of readdirSync(blobs)) utimesSync(join(blobs, n), t, t);
  const layers = join(store.layout.root, 'layers');
  for (const n of readdirSync(layers)) {
    utimesSync(join(layers, n, 'layer.json'), t, t);
    utimesSync(join(layers, n), t, t);
  }
}

const blobsIn = (s: ImageStore) => readdirSync(join(s.layout.root, 'blobs', 'sha256')).sort();
const layersIn = (s: ImageStore) => readdirSync(join(s.layout.root, 'layers')).sort();
const blobHexes = (...imgs: BuiltImage[]) => [...new Set(imgs.flatMap((i) => [...i.blobs.keys()].map(hex)))].sort();
const layerHexes = (...imgs: BuiltImage[]) => [...new Set(imgs.flatMap((i) => i.layers.map((l) => hex(l.diffId))))].sort();

/** A and B share a base layer; each has a top layer of its own. */
async function twoImages(store: ImageStore): Promise<{ a: BuiltImage; b: BuiltImage }> {
  const base = await makeLayer({ 'etc/base': 'base' });
  const a = makeImage([base, await makeLayer({ a: 'a' })], { comment: 'a' });
  const b = makeImage([base, await makeLayer({ b: 'b' })], { comment: 'b' });
  await addImage(store, 'docker.io/library/a:1', a);
  await addImage(store, 'docker.io/library/b:1', b);
  return { a, b };
}

describe('removeImage', () => {
  it('untags a short ref only; blobs and layers stay', async () => {
    const store = tmpStore();
    const { a } = await twoImages(store);
    await store.setTag('docker.io/library/a:alias', { digest: a.manifestDigest });
    const before = { blobs: blobsIn(store), layers: layersIn(store) };
    expect(await removeImage(store, 'a:1')).toEqual({ untagged: ['docker.io/library/a:1'], digest: a.manifestDigest, dangling: false });
    expect(Object.keys(store.tags()).sort()).toEqual(['docker.io/library/a:alias', 'docker.io/library/b:1']);
    expect({ blobs: blobsIn(store), layers: layersIn(store) }).toEqual(before);
  });

  it('an id naming several tags needs force, which removes them all', async () => {
    const store = tmpStore();
    const { a } = await twoImages(store);
    await store.setTag('docker.io/library/a:alias', { digest: a.manifestDigest });
    const id = hex(a.configDigest).slice(0, 8);
    await expect(removeImage(store, id)).rejects.toThrow(/is tagged docker\.io\/library\/a:1, docker\.io\/library\/a:alias: remove a tag by name, or force/);
    expect(await removeImage(store, id, { force: true })).toEqual({
      untagged: ['docker.io/library/a:1', 'docker.io/library/a:alias'],
      digest: a.manifestDigest,
      dangling: true,
    });
    expect(Object.keys(store.tags())).toEqual(['docker.io/library/b:1']);
  });

  it('refuses to untag the last name of an image a container uses, unless forced', async () => {
    const store = tmpStore();
    const { a } = await twoImages(store);
    const asked: string[][] = [];
    const inUse = (d: string[]) => (asked.push(d), true);
    await store.setTag('docker.io/library/a:alias', { digest: a.manifestDigest });
    await removeImage(store, 'a:alias', { inUse }); // another tag remains: allowed, not even asked
    expect(asked).toEqual([]);
    await expect(removeImage(store, 'a:1', { inUse })).rejects.toMatchObject({
      code: 'ERR_INVALID_STATE',
      message: expect.stringMatching(/image docker\.io\/library\/a:1 is in use by a container/),
    });
    expect(asked).toEqual([a.layers.map((l) => l.diffId)]);
    expect(store.tags()['docker.io/library/a:1']).toBeDefined();
    await removeImage(store, 'a:1', { inUse, force: true });
    expect(store.tags()['docker.io/library/a:1']).toBeUndefined();
    await expect(removeImage(store, 'a:1')).rejects.toThrow(/no such image/);
  });
});

describe('pruneImages', () => {
  it('removes exactly the blobs and layers no tag reaches', async () => {
    const store = tmpStore();
    const { a, b } = await twoImages(store);
    await removeImage(store, 'a:1');
    age(store, HOUR);
    const res = await pruneImages(store);
    const aOnly = [a.manifestDigest, a.configDigest, a.layers[1]!.gzDigest];
    expect(res).toMatchObject({ blobsRemoved: 3, layersRemoved: 1, warnings: [] });
    expect(res.bytesFreed).toBeGreaterThanOrEqual(aOnly.reduce((s, d) => s + a.blobs.get(d)!.length, 0) + 1);
    expect(blobsIn(store)).toEqual(blobHexes(b));
    expect(layersIn(store)).toEqual(layerHexes(b));
    // nothing left to do
    expect(await pruneImages(store, { all: true })).toMatchObject({ blobsRemoved: 0, layersRemoved: 0, bytesFreed: 0 });
  });

  it('leaves anything written in the last 10 minutes unless all', async () => {
    const store = tmpStore();
    const { b } = await twoImages(store);
    await removeImage(store, 'a:1');
    const everything = { blobs: blobsIn(store), layers: layersIn(store) };
    const kept = await pruneImages(store);
    expect(kept).toMatchObject({ blobsRemoved: 0, layersRemoved: 0 });
    // and it says what it kept for being fresh: a:1's manifest, config and layer blob, its layer
    expect(kept.blobsKeptFresh).toBeGreaterThan(0);
    expect(kept.layersKeptFresh).toBeGreaterThan(0);
    expect({ blobs: blobsIn(store), layers: layersIn(store) }).toEqual(everything);
    await pruneImages(store, { all: true });
    expect(blobsIn(store)).toEqual(blobHexes(b));
    expect(layersIn(store)).toEqual(layerHexes(b));
  });

  it('never removes a layer in use by a container (its blob may go)', async () => {
    const store = tmpStore();
    const { a, b } = await twoImages(store);
    await removeImage(store, 'a:1');
    const inUseLayers = new Set([a.layers[1]!.diffId]);
    expect(await pruneImages(store, { all: true, inUseLayers })).toMatchObject({ blobsRemoved: 3, layersRemoved: 0 });
    expect(layersIn(store)).toEqual([...layerHexes(b), hex(a.layers[1]!.diffId)].sort());
    expect(store.hasLayer(a.layers[1]!.diffId)).toBe(true);
    expect(blobsIn(store)).toEqual(blobHexes(b));
  });

  it('keeps an index, all its platform manifests in the store, and what they reach', async () => {
    const store = tmpStore();
    const host = makeImage([await makeLayer({ h: 'h' })]);
    const other = makeImage([await makeLayer({ o: 'o' })], { architecture: 'mips64le' });
    await addImage(store, undefined, host);
    await addImage(store, undefined, other);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: host.manifestDigest, size: host.manifest.length, platform: hostPlatform() },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: other.manifestDigest,
            size: other.manifest.length,
            platform: { os: 'linux', architecture: 'mips64le' },
          },
        ],
      }),
    );
    const indexDigest = store.putBlobBytes(index);
    await store.setTag('docker.io/library/multi:1', { digest: indexDigest });
    age(store, HOUR);
    expect(await pruneImages(store)).toMatchObject({ blobsRemoved: 0, layersRemoved: 0, warnings: [] });
    expect(blobsIn(store)).toEqual([...blobHexes(host, other), hex(indexDigest)].sort());
    expect(layersIn(store)).toEqual(layerHexes(host, other));
  });

  it('removes stale or orphaned temporaries', async () => {
    const store = tmpStore();
    const { a, b } = await twoImages(store);

    const t = store.layout.tmp();
    const old = new Date(Date.now() - 2 * HOUR);
    writeFileSync(join(t, 'blob-old'), 'x'.repeat(100));
    utimesSync(join(t, 'blob-old'), old, old);
    mkdirSync(join(t, 'layer-fresh', 'root'), { recursive: true });
    writeFileSync(join(t, 'blob-held'), 'held');
    const fd = openSync(join(t, 'blob-held'), 'r'); // a live process still writes it
    utimesSync(join(t, 'blob-held'), old, old);
    const dead = spawnSync('true').pid!;
    mkdirSync(join(t, `layer-${dead}-abcdef`));
    const blobs = join(store.layout.root, 'blobs', 'sha256');
    writeFileSync(join(blobs, `.${'1'.repeat(64)}.${dead}.${Date.now()}.tmp`), 'partial');
    try {
      const res = await pruneImages(store);
      expect(res).toMatchObject({ blobsRemoved: 0, layersRemoved: 0, tmpRemoved: 3 });
      expect(readdirSync(t).sort()).toEqual(['blob-held', 'layer-fresh']);
      expect(blobsIn(store)).toEqual(blobHexes(a, b));
    } finally {
      closeSync(fd);
    }
  });

  it('sweeps while holding the repositories lock, so a concurrent tag waits', async () => {
    const store = tmpStore();
    const { a } = await twoImages(store);
    await removeImage(store, 'a:1');
    const held: string[] = [];
    const withLock = store.withLock.bind(store);
    store.withLock = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
      held.push(name);
      try {
        return await withLock(name, fn);
      } finally {
        held.pop();
      }
    };
    const removeLayer = store.removeLayer.bind(store);
    const seen: string[][] = [];
    store.removeLayer = (d: string) => {
      seen.push([...held]);
      removeLayer(d);
    };
    await pruneImages(store, { all: true });
    expect(seen).toEqual([['repositories', a.layers[1]!.diffId]]);
    expect(existsSync(store.layout.layerDir(a.layers[1]!.diffId))).toBe(false);
  });
});
