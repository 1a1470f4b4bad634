// Listing and inspecting images; resolving canonical refs, short refs, name@digest and
// id/digest prefixes (ambiguity reported with the candidates).
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findImage, inspectImage, listImages } from '../../../src/image/inspect.js';
import { hostPlatform } from '../../../src/image/manifest.js';
import { addImage, hex, makeImage, makeLayer, sha256, tmpStore, type BuiltImage, type Layer } from './image-fixtures.js';

const host = hostPlatform();
const hostString = `linux/${host.architecture}${host.variant ? `/${host.variant}` : ''}`;

async function layers(): Promise<Layer[]> {
  return [await makeLayer({ 'etc/a': 'a' }), await makeLayer({ 'etc/b': 'b' })];
}

/** Two images whose ids (config digests) share their first 4 hex digits. */
function collidingPair(ls: Layer[]): [BuiltImage, BuiltImage] {
  const seen = new Map<string, BuiltImage>();
  for (let i = 0; i < 100_000; i++) {
    const img = makeImage(ls, { comment: `try ${i}` });
    const p = hex(img.configDigest).slice(0, 4);
    const other = seen.get(p);
    if (other) return [other, img];
    seen.set(p, img);
  }
  throw new Error('no collision');
}

describe('listImages', () => {
  it('one row per tag: manifest digest, id, created, sizes, platform', async () => {
    const store = tmpStore();
    const ls = await layers();
    const img = makeImage(ls);
    await addImage(store, 'docker.io/library/busybox:latest', img);
    await addImage(store, 'ghcr.io/o/app:1', img);
    const compressedSize = ls.reduce((s, l) => s + l.gz.length, img.config.length);
    // addImage unpacks the layers: the size is their tars'.
    const size = ls.reduce((s, l) => s + l.tar.length, 0);
    const row = { digest: img.manifestDigest, id: img.configDigest, created: '2024-01-02T03:04:05Z', size, compressedSize, platform: hostString };
    expect(listImages(store)).toEqual([
      { ref: 'docker.io/library/busybox:latest', ...row },
      { ref: 'ghcr.io/o/app:1', ...row },
    ]);
  });

  it('shows the unpacked size, as docker and podman do, once the layers are unpacked', async () => {
    const store = tmpStore();
    const ls = await layers();
    const img = makeImage(ls);
    await addImage(store, 'docker.io/library/busybox:latest', img);
    for (const [i, l] of ls.entries()) {
      mkdirSync(store.layout.layerRoot(l.diffId), { recursive: true });
      writeFileSync(store.layout.layerMeta(l.diffId), JSON.stringify({ diffId: l.diffId, size: 1000 * (i + 1), files: 1 }));
    }
    const [row] = listImages(store);
    expect(row!.size).toBe(ls.reduce((s, _l, i) => s + 1000 * (i + 1), 0));
    expect(row!.compressedSize).toBe(ls.reduce((s, l) => s + l.gz.length, img.config.length));
  });

  it('reports an unreadable image in its row instead of failing the list', async () => {
    const store = tmpStore();
    await store.setTag('docker.io/library/broken:1', { digest: sha256('missing') });
    const [row] = listImages(store);
    expect(row).toMatchObject({ ref: 'docker.io/library/broken:1', digest: sha256('missing'), error: expect.stringMatching(/is not in the store/) });
  });
});

describe('inspectImage / findImage', () => {
  it('one image with two manifests (an OCI and a docker archive of it) is one match by its id', async () => {
    const store = tmpStore();
    const ls = await layers();
    const gz = makeImage(ls);
    const plain = makeImage(ls, {}, { gzip: false });
    expect(plain.configDigest).toBe(gz.configDigest);
    expect(plain.manifestDigest).not.toBe(gz.manifestDigest);
    await addImage(store, 'localhost/a:1', gz);
    await addImage(store, 'localhost/b:1', plain);
    expect(findImage(store, gz.configDigest).refs).toEqual(['localhost/a:1', 'localhost/b:1']);
    expect(findImage(store, hex(gz.configDigest).slice(0, 12)).refs).toEqual(['localhost/a:1', 'localhost/b:1']);
  });

  it('resolves canonical refs, short refs, name@digest, and id or digest prefixes', async () => {
    const store = tmpStore();
    const ls = await layers();
    const img = makeImage(ls);
    await addImage(store, 'docker.io/library/busybox:latest', img);
    const want = {
      ref: 'docker.io/library/busybox:latest',
      refs: ['docker.io/library/busybox:latest'],
      digest: img.manifestDigest,
      id: img.configDigest,
      platform: hostString,
    };
    for (const input of [
      'docker.io/library/busybox:latest',
      'busybox',
      'busybox:latest',
      'docker.io/busybox',
      'library/busybox',
      `busybox@${img.manifestDigest}`,
      hex(img.configDigest).slice(0, 4),
      hex(img.configDigest).slice(0, 12),
      img.configDigest,
      `sha256:${hex(img.manifestDigest).slice(0, 10)}`,
    ]) {
      expect(inspectImage(store, input), input).toMatchObject(want);
    }
    const info = inspectImage(store, 'busybox');
    expect(info.config.rootfs.diff_ids).toEqual(ls.map((l) => l.diffId));
    expect(info.manifest.layers.map((l) => l.digest)).toEqual(ls.map((l) => l.gzDigest));
    expect(info.layers).toEqual(
      ls.map((l) => ({ digest: l.gzDigest, diffId: l.diffId, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: l.gz.length, unpacked: true })),
    );
    store.removeLayer(ls[1]!.diffId);
    expect(inspectImage(store, 'busybox').layers.map((l) => l.unpacked)).toEqual([true, false]);
  });

  it('refuses prefixes shorter than 4 hex digits and unknown names', async () => {
    const store = tmpStore();
    const img = makeImage(await layers());
    await addImage(store, 'docker.io/library/busybox:latest', img);
    expect(() => inspectImage(store, hex(img.configDigest).slice(0, 3))).toThrow(/no such image/);
    expect(() => inspectImage(store, 'alpine')).toThrow(/no such image: alpine \(docker\.io\/library\/alpine:latest\)/);
    expect(() => inspectImage(store, `busybox@${sha256('other')}`)).toThrow(/no such image/);
  });

  it('an id prefix naming one image with several tags is not ambiguous; one naming two images is, with the candidates listed', async () => {
    const store = tmpStore();
    const ls = await layers();
    const [a, b] = collidingPair(ls);
    await addImage(store, 'docker.io/library/a:1', a);
    await addImage(store, 'docker.io/library/a:2', a);
    await addImage(store, 'docker.io/library/b:1', b);
    const prefix = hex(a.configDigest).slice(0, 4);
    expect(findImage(store, hex(a.configDigest).slice(0, 16))).toMatchObject({
      ref: 'docker.io/library/a:1',
      refs: ['docker.io/library/a:1', 'docker.io/library/a:2'],
      byId: true,
    });
    let err: Error | undefined;
    try {
      inspectImage(store, prefix);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(new RegExp(`"${prefix}" is ambiguous: it matches 2 images`));
    expect(err?.message).toContain(`${hex(a.configDigest).slice(0, 12)} (docker.io/library/a:1, docker.io/library/a:2)`);
    expect(err?.message).toContain(`${hex(b.configDigest).slice(0, 12)} (docker.io/library/b:1)`);
  });

  it('follows a tag on an index to the recorded platform', async () => {
    const store = tmpStore();
    const img = makeImage(await layers());
    await addImage(store, undefined, img);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.manifestDigest, size: img.manifest.length, platform: host }],
      }),
    );
    const indexDigest = store.putBlobBytes(index);
    await store.setTag('docker.io/library/multi:1', { digest: indexDigest, platform: hostString });
    expect(inspectImage(store, 'multi:1')).toMatchObject({ digest: img.manifestDigest, indexDigest, id: img.configDigest });
    expect(inspectImage(store, hex(indexDigest).slice(0, 8)).ref).toBe('docker.io/library/multi:1');
  });
});
