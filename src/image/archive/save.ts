// `tsrun save`: images from the store as an oci-archive (a tar of an OCI image layout), an
// OCI layout directory, or a docker-archive (what `docker load` reads), laid out as skopeo
// and `podman save` write them. Output is deterministic: members sorted, mtime 0, owner 0:0,
// so saving the same images twice gives identical bytes. Blobs stream from the store.
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { TsrunError, wrap } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';
import { findImage, resolveRecord, type ResolvedImage } from '../inspect.js';
import { digestHex } from '../store/layout.js';
import type { ImageStore } from '../store/store.js';
import { MediaType } from '../manifest.js';
import { parseReference } from '../reference.js';

export type SaveFormat = 'oci-archive' | 'docker-archive' | 'oci-dir';

export interface SavedImage {
  /** The name written into the archive (none when the image was given by id). */
  ref?: string;
  /** Manifest digest (the platform manifest when the tag points at an index). */
  digest: string;
  /** Image id (config digest). */
  id: string;
}

export interface SaveResult {
  format: SaveFormat;
  images: SavedImage[];
}

const REF_NAME = 'org.opencontainers.image.ref.name';
const EPOCH = new Date(0);

interface Item {
  ref: string | undefined;
  image: ResolvedImage;
}

/** One member of the output, produced lazily so blobs stream. */
interface OutEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  size?: number;
  linkname?: string;
  bytes?: Buffer;
  stream?: () => AsyncIterable<Buffer>;
}

function resolveItems(store: ImageStore, refs: string[]): Item[] {
  if (!refs.length) throw new TsrunError('ERR_INVALID_ARGUMENT', 'save: name at least one image');
  const tags = store.tags();
  return refs.map((input) => {
    const m = findImage(store, input, tags);
    return { ref: m.byId ? undefined : m.ref, image: resolveRecord(store, m.record) };
  });
}

function isUncompressed(mediaType: string): boolean {
  return mediaType.endsWith('.tar') || mediaType === 'application/vnd.docker.image.rootfs.diff.tar';
}

// ---------------------------------------------------------------- OCI layout

function ociLayoutEntries(store: ImageStore, items: Item[]): { entries: OutEntry[]; index: Buffer } {
  const blobs = new Map<string, number>();
  const manifests: unknown[] = [];
  const seen = new Set<string>();
  for (const { ref, image } of items) {
    blobs.set(image.digest, image.manifestSize);
    blobs.set(image.configDigest, image.manifest.config.size);
    for (const l of image.manifest.layers) blobs.set(l.digest, l.size);
    const key = `${image.digest} ${ref ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    manifests.push({
      mediaType: image.manifestMediaType,
      digest: image.digest,
      size: image.manifestSize,
      ...(ref ? { annotations: { [REF_NAME]: ref } } : {}),
    });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
  const entries: OutEntry[] = [
    { name: 'blobs/', type: 'directory', mode: 0o755 },
    { name: 'blobs/sha256/', type: 'directory', mode: 0o755 },
    { name: 'index.json', type: 'file', mode: 0o644, bytes: index },
    { name: 'oci-layout', type: 'file', mode: 0o644, bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
  ];
  for (const [digest, size] of blobs) {
    const path = store.blobPath(digest);
    const actual = statSync(path).size;
    if (actual !== size) throw new TsrunError('ERR_DIGEST_MISMATCH', `stored blob ${digest} is ${actual} bytes, its descriptor says ${size}`);
    entries.push({ name: `blobs/sha256/${digestHex(digest)}`, type: 'file', mode: 0o644, size, stream: () => createReadStream(path) });
  }
  return { entries, index };
}

// ---------------------------------------------------------------- docker-archive

/** encoding/json's output for our values: sorted keys at the top, HTML characters escaped. */
function goJson(v: Record<string, unknown>): string {
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) sorted[k] = v[k];
  return JSON.stringify(sorted).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const sha256hex = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** The uncompressed bytes of a layer, verified against its diff_id as they stream. */
async function* uncompressedLayer(store: ImageStore, digest: string, mediaType: string, diffId: string): AsyncIterable<Buffer> {
  const hash = createHash('sha256');
  const src = createReadStream(store.blobPath(digest));
  let body: AsyncIterable<Buffer> = src;
  if (!isUncompressed(mediaType)) {
    const gunzip = createGunzip();
    src.on('error', (e) => gunzip.destroy(e));
    body = src.pipe(gunzip);
  }
  try {
    for await (const c of body) {
      hash.update(c);
      yield c;
    }
  } finally {
    src.destroy();
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== diffId) throw new TsrunError('ERR_DIGEST_MISMATCH', `layer ${digest} decompresses to ${got}, its config says ${diffId}`);
}

async function uncompressedSize(store: ImageStore, digest: string, mediaType: string, diffId: string): Promise<number> {
  if (isUncompressed(mediaType)) return store.blobSize(digest);
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) {
    throw new TsrunError(
      'ERR_UNSUPPORTED',
      `layer ${digest} is zstd-compressed: docker-archive needs uncompressed layers, and zstd decompression is not available`,
      {
        hint: 'save it as oci-archive instead',
      },
    );
  }
  if (store.hasLayer(diffId)) return store.layerMeta(diffId).size;
  let n = 0;
  for await (const c of uncompressedLayer(store, digest, mediaType, diffId)) n += c.length;
  return n;
}

async function dockerEntries(store: ImageStore, items: Item[]): Promise<OutEntry[]> {
  const entries = new Map<string, OutEntry>();
  const add = (e: OutEntry) => {
    if (!entries.has(e.name)) entries.set(e.name, e);
  };
  interface ManifestItem {
    Config: string;
    RepoTags: string[];
    Layers: string[];
  }
  const manifest: ManifestItem[] = [];
  const byConfig = new Map<string, ManifestItem>();
  const topLayerIds = new Map<string, string>();
  const repositories: Record<string, Record<string, string>> = {};
  for (const { ref, image } of items) {
    const cfgHex = digestHex(image.configDigest);
    let item = byConfig.get(image.configDigest);
    if (!item) {
      const cfgBytes = store.readBlob(image.configDigest);
      const cfgRaw = JSON.parse(cfgBytes.toString('utf8')) as Record<string, unknown>;
      add({ name: `${cfgHex}.json`, type: 'file', mode: 0o444, bytes: cfgBytes });
      const layerPaths: string[] = [];
      let chainId = '';
      let lastId = '';
      const diffIds = image.config.rootfs.diff_ids;
      for (const [i, l] of image.manifest.layers.entries()) {
        const diffId = diffIds[i]!;
        const file = `${digestHex(diffId)}.tar`;
        layerPaths.push(file);
        if (!entries.has(file)) {
          const size = await uncompressedSize(store, l.digest, l.mediaType, diffId);
          add({ name: file, type: 'file', mode: 0o444, size, stream: () => uncompressedLayer(store, l.digest, l.mediaType, diffId) });
        }
        // The legacy per-layer directories, exactly as containers/image's writer makes them
        // (no directory members; layer.tar a mode-0 symlink to the layer at the top level).
        const legacy: Record<string, unknown> = {};
        if (lastId) legacy.parent = lastId;
        if (i === diffIds.length - 1) {
          for (const a of ['architecture', 'config', 'container', 'container_config', 'created', 'docker_version', 'os']) legacy[a] = cfgRaw[a] ?? null;
        }
        chainId = chainId ? `sha256:${sha256hex(`${chainId} ${diffId}`)}` : diffId;
        const id = sha256hex(goJson({ ...legacy, layer_id: chainId }));
        legacy.id = id;
        add({ name: `${id}/VERSION`, type: 'file', mode: 0o444, bytes: Buffer.from('1.0') });
        add({ name: `${id}/json`, type: 'file', mode: 0o444, bytes: Buffer.from(goJson(legacy)) });
        add({ name: `${id}/layer.tar`, type: 'symlink', mode: 0, linkname: `../${file}` });
        lastId = id;
      }
      item = { Config: `${cfgHex}.json`, RepoTags: [], Layers: layerPaths };
      byConfig.set(image.configDigest, item);
      manifest.push(item);
      topLayerIds.set(image.configDigest, lastId);
    }
    if (ref) {
      const parsed = parseReference(ref);
      const canonical = parsed.canonical;
      const name = parsed.name;
      const tag = parsed.tag ?? 'latest';
      if (!item.RepoTags.includes(canonical)) item.RepoTags.push(canonical);
      const lastId = topLayerIds.get(image.configDigest);
      if (lastId) (repositories[name] ??= {})[tag] = lastId;
    }
  }
  const manifestJson = JSON.stringify(manifest.map((m) => ({ Config: m.Config, RepoTags: m.RepoTags, Layers: m.Layers })));
  add({ name: 'manifest.json', type: 'file', mode: 0o444, bytes: Buffer.from(manifestJson) });
  const repos: Record<string, Record<string, string>> = {};
  for (const k of Object.keys(repositories).sort()) repos[k] = repositories[k]!;
  add({ name: 'repositories', type: 'file', mode: 0o444, bytes: Buffer.from(JSON.stringify(repos)) });
  return [...entries.values()];
}

// ---------------------------------------------------------------- output

type Sink = { write(c: Buffer): boolean; end(): void; once(ev: 'drain', fn: () => void): void; destroy(e?: Error): void };

async function writeEntry(pack: tar.Pack, e: OutEntry): Promise<void> {
  const header: tar.Header = {
    name: e.name,
    type: e.type,
    mode: e.mode,
    size: e.type === 'file' ? (e.bytes?.length ?? e.size ?? 0) : 0,
    mtime: EPOCH,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    linkname: e.linkname ?? '',
    devmajor: 0,
    devminor: 0,
  };
  await new Promise<void>((resolve, reject) => {
    if (e.type !== 'file' || e.bytes) {
      pack.entry(header, e.bytes ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      return;
    }
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve())) as unknown as Sink;
    (async () => {
      for await (const c of e.stream!()) {
        if (!sink.write(c)) await new Promise<void>((r) => sink.once('drain', r));
      }
      sink.end();
    })().catch((err: unknown) => {
      sink.destroy(err as Error);
      reject(err as Error);
    });
  });
}

async function writeTar(entries: OutEntry[], out: string | Writable): Promise<void> {
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pack = tar.pack();
  const tmp = typeof out === 'string' ? join(dirname(out), `.${randomBytes(6).toString('hex')}.tmp-save`) : undefined;
  const dest = typeof out === 'string' ? createWriteStream(tmp!, { mode: 0o644 }) : out;
  const piped = pipeline(pack as unknown as AsyncIterable<Buffer>, dest);
  try {
    for (const e of entries) await writeEntry(pack, e);
    pack.finalize();
    await piped;
    if (tmp) renameSync(tmp, out as string);
  } catch (e) {
    pack.destroy(e as Error);
    await piped.catch(() => undefined);
    if (tmp) rmSync(tmp, { force: true });
    throw e;
  }
}

async function writeOciDir(store: ImageStore, items: Item[], out: string): Promise<void> {
  const layout = existsSync(join(out, 'oci-layout'));
  if (existsSync(out) && !layout && readdirSync(out).length) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `save: ${out} exists and is neither empty nor an OCI image layout`);
  }
  const { entries, index } = ociLayoutEntries(store, items);
  mkdirSync(join(out, 'blobs', 'sha256'), { recursive: true, mode: 0o755 });
  for (const e of entries) {
    if (!e.stream) continue;
    const dest = join(out, e.name);
    if (existsSync(dest) && statSync(dest).size === e.size) continue;
    const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
    copyFileSync(store.blobPath(`sha256:${e.name.slice('blobs/sha256/'.length)}`), tmp);
    renameSync(tmp, dest);
  }
  let manifests = (JSON.parse(index.toString('utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> }).manifests;
  if (layout) {
    // Add to an existing layout as skopeo does: an entry of the same name is replaced.
    const old = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests?: Array<{ annotations?: Record<string, string> }> };
    const names = new Set(manifests.map((m) => m.annotations?.[REF_NAME]));
    names.delete(undefined);
    manifests = [...(old.manifests ?? []).filter((m) => !names.has(m.annotations?.[REF_NAME])), ...manifests];
  }
  writeFileAtomic(join(out, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}', 0o644);
  writeFileAtomic(join(out, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }), 0o644);
}

/**
 * Write the images `refs` name (canonical or short refs, or id/digest prefixes) to `out` (a
 * path, or a stream for the tar formats) as `format`.
 */
export async function saveImage(store: ImageStore, refs: string[], out: string | Writable, format: SaveFormat): Promise<SaveResult> {
  const items = resolveItems(store, refs);
  try {
    if (format === 'oci-dir') {
      if (typeof out !== 'string') throw new TsrunError('ERR_INVALID_ARGUMENT', 'save: oci-dir output must be a directory path');
      await writeOciDir(store, items, out);
    } else if (format === 'oci-archive') {
      await writeTar(ociLayoutEntries(store, items).entries, out);
    } else if (format === 'docker-archive') {
      await writeTar(await dockerEntries(store, items), out);
    } else {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `save: unknown format "${String(format)}": expected oci-archive, docker-archive or oci-dir`);
    }
  } catch (e) {
    throw wrap(e, `save ${refs.join(' ')} as ${format}`);
  }
  return {
    format,
    images: items.map(
      ({ ref, image }): SavedImage => (ref ? { ref, digest: image.digest, id: image.configDigest } : { digest: image.digest, id: image.configDigest }),
    ),
  };
}
