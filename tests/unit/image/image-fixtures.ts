// Small images built in the test: layer tars made with tar-stream, configs, manifests, OCI
// layouts, oci-archives, docker-save archives, and images put straight into a store.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { unpackLayer } from '../../../src/image/layer/unpack.js';
import { hostPlatform } from '../../../src/image/manifest.js';
import { ImageStore } from '../../../src/image/store/store.js';
import { Readable } from 'node:stream';
import { tempDir } from '../../helpers/tmp-dir.js';

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const hex = (d: string) => d.slice('sha256:'.length);

/** A scratch dir in os.tmpdir(), removed when the test file ends (tmpStore's too). */
export function tmp(prefix: string): string {
  return tempDir(`tsrun-${prefix}-`);
}

export function tmpStore(): ImageStore {
  const s = new ImageStore(join(tmp('store'), 'root'));
  s.init();
  return s;
}

export interface TarEntrySpec {
  name: string;
  data?: Buffer | string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device';
  linkname?: string;
  mode?: number;
  /** Declared size, when it should differ from the data (for malformed archives). */
  size?: number;
}

/** A tar (uncompressed) of exactly these entries, in order. */
export async function makeTar(entries: TarEntrySpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        {
          name: e.name,
          type,
          mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
          mtime: new Date(0),
          uid: 0,
          gid: 0,
          ...(e.linkname ? { linkname: e.linkname } : {}),
          size: type === 'file' ? data.length : 0,
        },
        type === 'file' ? data : Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface Layer {
  tar: Buffer;
  gz: Buffer;
  diffId: string;
  gzDigest: string;
}

export async function makeLayer(files: Record<string, string>): Promise<Layer> {
  const entries: TarEntrySpec[] = [];
  const dirs = new Set<string>();
  for (const name of Object.keys(files).sort()) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = `${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(d)) {
        dirs.add(d);
        entries.push({ name: d, type: 'directory' });
      }
    }
    entries.push({ name, data: files[name]! });
  }
  const t = await makeTar(entries);
  const gz = gzipSync(t);
  return { tar: t, gz, diffId: sha256(t), gzDigest: sha256(gz) };
}

export interface BuiltImage {
  layers: Layer[];
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  /** digest -> bytes, everything the manifest reaches (and itself). */
  blobs: Map<string, Buffer>;
}

/** An OCI image (gzip layers) for the host platform; `extra` goes into the config. */
export function makeImage(layers: Layer[], extra: Record<string, unknown> = {}, opts: { gzip?: boolean } = {}): BuiltImage {
  const gzip = opts.gzip ?? true;
  const p = hostPlatform();
  const config = Buffer.from(
    JSON.stringify({
      architecture: p.architecture,
      os: p.os,
      created: '2024-01-02T03:04:05Z',
      config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      ...extra,
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layers.map((l) =>
        gzip
          ? { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.gzDigest, size: l.gz.length }
          : { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.diffId, size: l.tar.length },
      ),
    }),
  );
  const manifestDigest = sha256(manifest);
  const blobs = new Map<string, Buffer>([
    [manifestDigest, manifest],
    [configDigest, config],
  ]);
  for (const l of layers) blobs.set(gzip ? l.gzDigest : l.diffId, gzip ? l.gz : l.tar);
  return { layers, config, configDigest, manifest, manifestDigest, blobs };
}

export interface LayoutEntry {
  image: BuiltImage;
  refName?: string;
  /** Use this digest/mediaType in index.json instead (e.g. an index). */
  descriptor?: Record<string, unknown>;
}

/** index.json, oci-layout and blobs as tar entry specs (sorted like a tar of the directory). */
export function layoutEntries(entries: LayoutEntry[], extraBlobs: Map<string, Buffer> = new Map()): TarEntrySpec[] {
  const blobs = new Map<string, Buffer>(extraBlobs);
  for (const e of entries) for (const [d, b] of e.image.blobs) blobs.set(d, b);
  const index = {
    schemaVersion: 2,
    manifests: entries.map((e) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: e.image.manifestDigest,
      size: e.image.manifest.length,
      ...(e.refName ? { annotations: { 'org.opencontainers.image.ref.name': e.refName } } : {}),
      ...(e.descriptor ?? {}),
    })),
  };
  return [
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
    ...[...blobs.keys()].sort().map((d): TarEntrySpec => ({ name: `blobs/sha256/${hex(d)}`, data: blobs.get(d)! })),
    { name: 'index.json', data: JSON.stringify(index) },
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
  ];
}

/** Materialise tar entry specs as a directory (an OCI layout directory). */
export function writeDir(dir: string, entries: TarEntrySpec[]): string {
  mkdirSync(dir, { recursive: true });
  for (const e of entries) {
    if (e.type === 'directory') mkdirSync(join(dir, e.name), { recursive: true });
    else writeFileSync(join(dir, e.name), e.data ?? '');
  }
  return dir;
}

/** A `docker save` (docker < 25) archive: <id>/layer.tar, <config-hex>.json, manifest.json, repositories. */
export function dockerSaveEntries(images: Array<{ image: BuiltImage; repoTags: string[] }>, opts: { gzipLayers?: boolean } = {}): TarEntrySpec[] {
  const out = new Map<string, TarEntrySpec>();
  const manifest: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, repoTags } of images) {
    const layerPaths: string[] = [];
    let parent = '';
    for (const l of image.layers) {
      const id = hex(sha256(`${parent}/${l.diffId}`));
      const path = `${id}/layer.tar`;
      layerPaths.push(path);
      // docker writes a layer shared with an earlier image as a symlink to the first copy
      const first = [...out.values()].find(
        (e) => e.name.endsWith('/layer.tar') && e.data && sha256(Buffer.from(e.data)) === (opts.gzipLayers ? sha256(l.gz) : l.diffId),
      );
      out.set(`${id}/`, { name: `${id}/`, type: 'directory' });
      out.set(`${id}/VERSION`, { name: `${id}/VERSION`, data: '1.0' });
      out.set(`${id}/json`, { name: `${id}/json`, data: JSON.stringify({ id, ...(parent ? { parent } : {}) }) });
      if (!out.has(path)) {
        out.set(path, first ? { name: path, type: 'symlink', linkname: `../${first.name}` } : { name: path, data: opts.gzipLayers ? l.gz : l.tar });
      }
      parent = id;
    }
    out.set(`${hex(image.configDigest)}.json`, { name: `${hex(image.configDigest)}.json`, data: image.config });
    manifest.push({ Config: `${hex(image.configDigest)}.json`, RepoTags: repoTags, Layers: layerPaths });
    for (const t of repoTags) {
      const [n, tag] = t.split(':') as [string, string];
      (repositories[n] ??= {})[tag] = parent;
    }
  }
  return [...out.values(), { name: 'manifest.json', data: JSON.stringify(manifest) }, { name: 'repositories', data: JSON.stringify(repositories) }];
}

export async function writeTarFile(path: string, entries: TarEntrySpec[], opts: { gzip?: boolean } = {}): Promise<string> {
  const t = await makeTar(entries);
  writeFileSync(path, opts.gzip ? gzipSync(t) : t);
  return path;
}

/** Put an image straight into a store (blobs, unpacked layers) and tag it. */
export async function addImage(store: ImageStore, ref: string | undefined, image: BuiltImage): Promise<void> {
  for (const b of image.blobs.values()) store.putBlobBytes(b);
  const m = JSON.parse(image.manifest.toString()) as { layers: Array<{ digest: string; mediaType: string }> };
  for (const [i, l] of image.layers.entries()) {
    const desc = m.layers[i]!;
    await store.ensureLayer(l.diffId, async (root) => ({
      ...(await unpackLayer(Readable.from([image.blobs.get(desc.digest)!]), desc.mediaType, root, { layerName: `layer ${i}`, expectedDiffId: l.diffId })),
      compressedDigest: desc.digest,
    }));
  }
  if (ref) await store.setTag(ref, { digest: image.manifestDigest });
}
