// `tsrun load`: images from an OCI layout directory, an oci-archive tar or a `docker save`
// archive (gzip-compressed or not) into the content store. The archive is validated and
// planned in full before anything is written; blobs stream into the store verified by digest;
// every layer is unpacked; the tags are written last, all at once, so a failed load tags
// nothing (its stored blobs are garbage for `prune`).
import { createHash } from 'node:crypto';
import { createReadStream, utimesSync } from 'node:fs';
import { isErrno, TsrunError, wrap } from '../../util/errors.js';
import { updateTags } from '../inspect.js';
import { digestHex } from '../store/layout.js';
import type { ImageStore, TagRecord } from '../store/store.js';
import {
  checkImageManifest,
  formatPlatform,
  hostPlatform,
  MediaType,
  normalizePlatform,
  parseImageConfig,
  parseJson,
  parseManifest,
  platformMatches,
  selectPlatform,
  type Descriptor,
} from '../manifest.js';
import { parseReference } from '../reference.js';
import { unpackLayer } from '../layer/unpack.js';
import { archiveBaseName, blobMemberDigest, memberName, openArchive, type ArchiveFormat, type ArchiveReader, type BlobWant } from './reader.js';

export interface LoadOptions {
  /**
   * Name for the loaded image (the archive must hold exactly one): replaces a bare tag or a
   * missing name, and is added next to a full name the archive gives.
   */
  tag?: string;
  /** Refuse members larger than this (default 64 GiB). */
  maxMemberSize?: number;
}

export interface LoadedImage {
  /** The tags written, canonical. */
  refs: string[];
  /** What the tags point at: the manifest, or the index it was chosen from. */
  digest: string;
  manifestDigest: string;
  /** Image id (config digest). */
  id: string;
  /** The platform chosen from an index. */
  platform?: string;
  layers: number;
}

export interface LoadResult {
  format: ArchiveFormat;
  images: LoadedImage[];
}

/** A name as the archive gives it. */
type NameHint = { kind: 'full'; ref: string } | { kind: 'bare'; tag: string };

interface PlannedLayer {
  digest: string;
  mediaType: string;
  diffId: string;
}

interface PlannedImage {
  /** Where in the archive it was described, for messages. */
  where: string;
  hints: NameHint[];
  record: TagRecord;
  manifestDigest: string;
  configDigest: string;
  layers: PlannedLayer[];
}

interface Plan {
  images: PlannedImage[];
  /** Archive member -> the blob it must store as. */
  wants: Map<string, BlobWant>;
  /** Manifests made up for docker archives: stored after the blobs they reference. */
  synthesized: Buffer[];
}

const TAG = /^[\w][\w.-]{0,127}$/;

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function touch(path: string): void {
  const now = new Date();
  try {
    utimesSync(path, now, now);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw wrap(e, `touch ${path}`);
  }
}

function bad(reader: ArchiveReader, why: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `archive ${reader.path}: ${why}`);
}

function parseJsonMember(reader: ArchiveReader, name: string, bytes: Buffer): unknown {
  try {
    return parseJson(bytes, name);
  } catch (e) {
    throw wrap(e, `archive ${reader.path}`);
  }
}

/** A ref name from an archive: a full reference, or a bare tag ("latest"). */
function nameHint(reader: ArchiveReader, raw: string, where: string): NameHint {
  if (!/[/:@]/.test(raw) && TAG.test(raw)) return { kind: 'bare', tag: raw };
  let ref: string;
  try {
    ref = parseReference(raw).canonical;
  } catch (e) {
    throw bad(reader, `${where}: ${(e as Error).message}`);
  }
  if (ref.includes('@')) throw bad(reader, `${where}: "${raw}" is a digest reference, which cannot be a tag`);
  return { kind: 'full', ref };
}

/** Small JSON blob `desc` from the archive, present, of the descriptor's size and digest. */
function blobBytes(reader: ArchiveReader, desc: Descriptor, what: string, wants: Map<string, BlobWant>): Buffer {
  const name = `blobs/sha256/${digestHex(desc.digest)}`;
  const info = reader.member(name);
  if (!info) throw bad(reader, `${what} ${desc.digest} is not in the archive`);
  if (info.size !== desc.size) throw bad(reader, `${what} ${desc.digest} is ${info.size} bytes, its descriptor says ${desc.size}`);
  const bytes = reader.small(name, what)!;
  const got = sha256(bytes);
  if (got !== desc.digest) throw bad(reader, `${what} ${desc.digest} does not match its digest (it hashes to ${got})`);
  wants.set(name, { digest: desc.digest, size: desc.size });
  return bytes;
}

function planOci(reader: ArchiveReader): Plan {
  const wants = new Map<string, BlobWant>();
  const layoutRaw = parseJsonMember(reader, 'oci-layout', reader.small('oci-layout', 'oci-layout')!) as { imageLayoutVersion?: unknown };
  if (typeof layoutRaw?.imageLayoutVersion !== 'string' || !layoutRaw.imageLayoutVersion.startsWith('1.')) {
    throw bad(reader, `oci-layout: unsupported imageLayoutVersion ${JSON.stringify(layoutRaw?.imageLayoutVersion)}`);
  }
  let top: ReturnType<typeof parseManifest>;
  try {
    top = parseManifest(reader.small('index.json', 'index.json')!, MediaType.OciIndex, 'index.json');
  } catch (e) {
    throw wrap(e, `archive ${reader.path}`);
  }
  if (top.kind !== 'index') throw bad(reader, 'index.json is not an image index');
  if (!top.index.manifests.length) throw bad(reader, 'index.json lists no images');

  // Entries sharing a name for several platforms (containerd exports): keep the host's.
  const host = hostPlatform();
  const entries = top.index.manifests.map((desc, i) => ({
    desc,
    i,
    name: desc.annotations?.['io.containerd.image.name'] ?? desc.annotations?.['org.opencontainers.image.ref.name'],
  }));
  const byName = new Map<string, typeof entries>();
  for (const e of entries) if (e.name !== undefined) byName.set(e.name, [...(byName.get(e.name) ?? []), e]);
  const skip = new Set<number>();
  for (const [name, group] of byName) {
    if (new Set(group.map((g) => g.desc.digest)).size < 2) continue;
    const matching = group.filter((g) => g.desc.platform && platformMatches(host, g.desc.platform));
    const chosen = matching.length === 1 ? matching[0]!.desc : undefined;
    if (!chosen || group.some((g) => !g.desc.platform)) {
      throw bad(
        reader,
        `index.json names "${name}" for ${group.length} different manifests${matching.length ? '' : ` and none is for ${formatPlatform(host)}`}`,
      );
    }
    for (const g of group) if (g.desc !== chosen) skip.add(g.i);
  }

  const images: PlannedImage[] = [];
  for (const { desc, i, name } of entries) {
    if (skip.has(i)) continue;
    const where = `index.json manifests[${i}]`;
    let record: TagRecord = { digest: desc.digest };
    let mdesc = desc;
    try {
      let parsed = parseManifest(blobBytes(reader, desc, 'manifest', wants), desc.mediaType, `${where} (${desc.digest})`);
      if (parsed.kind === 'index') {
        const chosen = selectPlatform(parsed.index, host, `${where}: index ${desc.digest}`);
        record = { digest: desc.digest, platform: formatPlatform(normalizePlatform(chosen.platform!)) };
        mdesc = chosen;
        parsed = parseManifest(blobBytes(reader, chosen, 'manifest', wants), chosen.mediaType, `manifest ${chosen.digest}`);
        if (parsed.kind !== 'manifest') throw new TsrunError('ERR_UNSUPPORTED', `${where}: nested indexes are not supported`);
      }
      const m = parsed.manifest;
      checkImageManifest(m, `manifest ${mdesc.digest}`);
      const config = parseImageConfig(blobBytes(reader, m.config, 'config', wants), `config ${m.config.digest}`);
      if (config.rootfs.diff_ids.length !== m.layers.length) {
        throw bad(reader, `manifest ${mdesc.digest} has ${m.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff_ids`);
      }
      const layers = m.layers.map((l, j): PlannedLayer => {
        const member = `blobs/sha256/${digestHex(l.digest)}`;
        const info = reader.member(member);
        if (!info) throw bad(reader, `manifest ${mdesc.digest} references layer ${l.digest}, which is not in the archive`);
        if (info.size !== l.size) throw bad(reader, `layer ${l.digest} is ${info.size} bytes, its descriptor says ${l.size}`);
        wants.set(member, { digest: l.digest, size: l.size });
        return { digest: l.digest, mediaType: l.mediaType, diffId: config.rootfs.diff_ids[j]! };
      });
      images.push({
        where,
        hints: name === undefined ? [] : [nameHint(reader, name, `${where} name`)],
        record,
        manifestDigest: mdesc.digest,
        configDigest: m.config.digest,
        layers,
      });
    } catch (e) {
      throw e instanceof TsrunError && e.message.startsWith(`archive ${reader.path}`) ? e : wrap(e, `archive ${reader.path}`);
    }
  }
  return { images, wants, synthesized: [] };
}

interface DockerItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

function parseDockerManifest(reader: ArchiveReader): DockerItem[] {
  const raw = parseJsonMember(reader, 'manifest.json', reader.small('manifest.json', 'manifest.json')!);
  if (!Array.isArray(raw) || !raw.length) throw bad(reader, 'manifest.json is not a non-empty array');
  return raw.map((it: unknown, i): DockerItem => {
    const o = it as Record<string, unknown> | null;
    const where = `manifest.json[${i}]`;
    if (typeof o !== 'object' || o === null) throw bad(reader, `${where} is not an object`);
    if (typeof o.Config !== 'string') throw bad(reader, `${where} has no Config`);
    if (!Array.isArray(o.Layers) || o.Layers.some((l) => typeof l !== 'string')) throw bad(reader, `${where}: Layers is not a list of paths`);
    const tags = o.RepoTags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw bad(reader, `${where}: RepoTags is not a list of names`);
    return { Config: o.Config, RepoTags: tags as string[], Layers: o.Layers as string[] };
  });
}

function planDocker(reader: ArchiveReader): Plan {
  const wants = new Map<string, BlobWant>();
  const synthesized: Buffer[] = [];
  const images: PlannedImage[] = [];
  parseDockerManifest(reader).forEach((item, i) => {
    const where = `manifest.json[${i}]`;
    const cfgName = memberName(reader.path, item.Config);
    const cfgInfo = reader.member(cfgName);
    if (!cfgInfo) throw bad(reader, `${where}: config ${item.Config} is not in the archive`);
    const cfgBytes = reader.small(cfgName, 'config')!;
    const configDigest = sha256(cfgBytes);
    const hexJson = /(?:^|\/)([a-f0-9]{64})\.json$/.exec(cfgInfo.name)?.[1];
    const named = blobMemberDigest(cfgInfo.name) ?? (hexJson ? `sha256:${hexJson}` : undefined);
    if (named && named !== configDigest) throw bad(reader, `${where}: config ${item.Config} does not match its digest (it hashes to ${configDigest})`);
    let config: ReturnType<typeof parseImageConfig>;
    try {
      config = parseImageConfig(cfgBytes, `config ${item.Config}`);
    } catch (e) {
      throw wrap(e, `archive ${reader.path}: ${where}`);
    }
    if (config.rootfs.diff_ids.length !== item.Layers.length) {
      throw bad(reader, `${where} lists ${item.Layers.length} layers but its config has ${config.rootfs.diff_ids.length} diff_ids`);
    }
    wants.set(cfgInfo.name, { digest: configDigest, size: cfgInfo.size });
    const layerDescs: Descriptor[] = [];
    const layers = item.Layers.map((p, j): PlannedLayer => {
      const diffId = config.rootfs.diff_ids[j]!;
      const info = reader.member(memberName(reader.path, p));
      if (!info) throw bad(reader, `${where}: layer ${p} is not in the archive`);
      const inName = blobMemberDigest(info.name);
      let digest: string;
      let mediaType: string;
      if (info.magic === 'gzip' || info.magic === 'zstd') {
        digest = inName ?? info.digest!;
        mediaType = info.magic === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayerZstd;
      } else {
        // An uncompressed layer: its sha256 is its diff_id (putBlob verifies it).
        if (inName && inName !== diffId) throw bad(reader, `${where}: layer ${p} is uncompressed but its digest is not the config's diff_id ${diffId}`);
        digest = diffId;
        mediaType = MediaType.OciLayer;
      }
      const prev = wants.get(info.name);
      if (prev && prev.digest !== digest) throw bad(reader, `member ${info.name} is used as two different blobs`);
      wants.set(info.name, { digest, size: info.size });
      layerDescs.push({ mediaType, digest, size: info.size });
      return { digest, mediaType, diffId };
    });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: configDigest, size: cfgInfo.size },
        layers: layerDescs,
      }),
    );
    synthesized.push(manifest);
    const manifestDigest = sha256(manifest);
    images.push({
      where,
      hints: item.RepoTags.map((t, k) => nameHint(reader, t, `${where} RepoTags[${k}]`)),
      record: { digest: manifestDigest },
      manifestDigest,
      configDigest,
      layers,
    });
  });
  return { images, wants, synthesized };
}

/** The tags each planned image gets (see LoadOptions.tag); conflicts are errors. */
function nameImages(reader: ArchiveReader, images: PlannedImage[], tag: string | undefined): string[][] {
  const base = archiveBaseName(reader.path);
  let extra: string | undefined;
  if (tag !== undefined) {
    const distinct = new Set(images.map((im) => im.record.digest));
    if (distinct.size !== 1) throw bad(reader, `a tag can name only an archive holding one image; this one holds ${distinct.size}`);
    extra = parseReference(tag).canonical;
    if (extra.includes('@')) throw new TsrunError('ERR_INVALID_ARGUMENT', `cannot tag an image with the digest reference "${tag}"`);
  }
  const unnamed = images.filter((im) => !im.hints.length).length;
  const names = images.map((im) => {
    const refs = new Set<string>();
    for (const h of im.hints) {
      if (h.kind === 'full') refs.add(h.ref);
      else if (extra === undefined) refs.add(`localhost/${base}:${h.tag}`);
    }
    if (extra !== undefined) refs.add(extra);
    else if (!im.hints.length) refs.add(`localhost/${base}:${unnamed === 1 ? 'latest' : digestHex(im.manifestDigest).slice(0, 12)}`);
    return [...refs].sort();
  });
  const owner = new Map<string, string>();
  images.forEach((im, i) => {
    for (const r of names[i]!) {
      const prev = owner.get(r);
      if (prev !== undefined && prev !== im.record.digest) throw bad(reader, `the archive names ${r} for two different images`);
      owner.set(r, im.record.digest);
    }
  });
  return names;
}

/** Load every image in the archive or layout at `path` into `store`, and tag them. */
export async function loadArchive(store: ImageStore, path: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const reader = await openArchive(path, opts.maxMemberSize === undefined ? {} : { maxMemberSize: opts.maxMemberSize });
  try {
    return await loadFrom(store, reader, opts);
  } finally {
    reader.close();
  }
}

async function loadFrom(store: ImageStore, reader: ArchiveReader, opts: LoadOptions): Promise<LoadResult> {
  // Planning opens each member once and keeps it open: copy() reads those descriptors, never
  // the paths again, so files swapped in between (a FIFO, a symlink) are never seen.
  const plan = reader.format === 'docker-archive' ? planDocker(reader) : planOci(reader);
  if (!plan.images.length) throw bad(reader, 'it holds no image for this platform');
  const names = nameImages(reader, plan.images, opts.tag);

  store.init();
  await reader.copy(store, plan.wants);
  reader.close(); // every member is in the store now
  for (const m of plan.synthesized) store.putBlobBytes(m);
  const blobsOf = (im: PlannedImage) => [im.record.digest, im.manifestDigest, im.configDigest, ...im.layers.map((l) => l.digest)];
  // Blobs and layers the store already had are reused: mark them fresh, so a concurrent
  // prune leaves them alone until the tags below are written.
  for (const im of plan.images) for (const d of blobsOf(im)) touch(store.blobPath(d));

  const done = new Set<string>();
  for (const im of plan.images) {
    for (const [j, l] of im.layers.entries()) {
      if (done.has(l.diffId)) continue;
      done.add(l.diffId);
      const layerName = `${j + 1}/${im.layers.length} (${l.digest})`;
      try {
        await store.ensureLayer(l.diffId, async (root) => {
          const r = await unpackLayer(createReadStream(store.blobPath(l.digest)), l.mediaType, root, { layerName, expectedDiffId: l.diffId });
          return { ...r, compressedDigest: l.digest };
        });
      } catch (e) {
        throw wrap(e, `archive ${reader.path}: unpack layer ${layerName}`);
      }
      touch(store.layout.layerDir(l.diffId));
      touch(store.layout.layerMeta(l.diffId));
    }
  }

  await updateTags(store, (tags) => {
    // Prune sweeps under this same lock: what is here now stays until these tags exist.
    for (const im of plan.images) {
      for (const d of blobsOf(im))
        if (!store.hasBlob(d)) throw bad(reader, `${im.where}: blob ${d} disappeared while loading (a concurrent prune?): load again`);
      for (const l of im.layers)
        if (!store.hasLayer(l.diffId)) throw bad(reader, `${im.where}: layer ${l.diffId} disappeared while loading (a concurrent prune?): load again`);
    }
    plan.images.forEach((im, i) => {
      for (const r of names[i]!) tags[r] = { ...im.record };
    });
  });
  return {
    format: reader.format,
    images: plan.images.map((im, i): LoadedImage => {
      const out: LoadedImage = { refs: names[i]!, digest: im.record.digest, manifestDigest: im.manifestDigest, id: im.configDigest, layers: im.layers.length };
      if (im.record.platform) out.platform = im.record.platform;
      return out;
    }),
  };
}
