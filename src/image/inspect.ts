// Looking images up in the store: the rows of `tsrun images`, `tsrun image inspect`, and the
// resolution of what a user typed (a canonical ref, a short ref, or an id/digest prefix).
// Also the small shared pieces gc and save build on: following a tag to its manifest and
// config, and rewriting repositories.json under the store lock.
import { writeFileAtomic } from '../util/fs-atomic.js';
import { TsrunError } from '../util/errors.js';
import {
  formatPlatform,
  hostPlatform,
  MediaType,
  normalizePlatform,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  selectPlatform,
  type ImageConfig,
  type ImageManifest,
  type ParsedManifest,
} from './manifest.js';
import { parseReference } from './reference.js';
import { digestHex } from './store/layout.js';
import type { ImageStore, TagRecord } from './store/store.js';

/** Manifests, indexes and configs are small: refuse to read anything bigger. */
const MAX_JSON_BLOB = 8 * 1024 * 1024;

/** A tag followed to the image it names. */
export interface ResolvedImage {
  /** What the tag points at: the manifest, or the index it was chosen from. */
  rootDigest: string;
  /** The index, when the tag points at one. */
  indexDigest?: string;
  /** The image manifest. */
  digest: string;
  manifestMediaType: string;
  manifestSize: number;
  manifest: ImageManifest;
  /** The image id: the config's digest. */
  configDigest: string;
  config: ImageConfig;
  platform: string;
}

/**
 * Parse a manifest or index read back from the store. The store keeps bytes only, so a
 * document without its own mediaType (optional in OCI) is typed by its shape.
 */
export function parseStoredManifest(bytes: Buffer, mediaType: string | undefined, what: string): ParsedManifest {
  let t = mediaType;
  if (t === undefined) {
    try {
      const o = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> | null;
      if (o && typeof o === 'object' && typeof o.mediaType !== 'string') t = Array.isArray(o.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
    } catch {
      /* parseManifest reports it */
    }
  }
  return parseManifest(bytes, t, what);
}

/** "linux/arm64/v8" for a config. */
export function configPlatform(c: ImageConfig): string {
  return formatPlatform(normalizePlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }));
}

/** Follow a tag record to its manifest (choosing the recorded platform in an index) and config. */
export function resolveRecord(store: ImageStore, rec: TagRecord): ResolvedImage {
  const rootBytes = store.readBlob(rec.digest, MAX_JSON_BLOB);
  let parsed = parseStoredManifest(rootBytes, undefined, `manifest ${rec.digest}`);
  let digest = rec.digest;
  let size = rootBytes.length;
  let indexDigest: string | undefined;
  if (parsed.kind === 'index') {
    indexDigest = rec.digest;
    const want = rec.platform ? parsePlatform(rec.platform) : hostPlatform();
    const desc = selectPlatform(parsed.index, want, `index ${rec.digest}`);
    const bytes = store.readBlob(desc.digest, MAX_JSON_BLOB);
    parsed = parseStoredManifest(bytes, desc.mediaType, `manifest ${desc.digest}`);
    if (parsed.kind !== 'manifest') throw new TsrunError('ERR_UNSUPPORTED', `index ${rec.digest}: nested indexes are not supported`);
    digest = desc.digest;
    size = bytes.length;
  }
  const manifest = parsed.manifest;
  const config = parseImageConfig(store.readBlob(manifest.config.digest, MAX_JSON_BLOB), `image config ${manifest.config.digest}`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new TsrunError(
      'ERR_INVALID_ARGUMENT',
      `image ${digest}: ${manifest.layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids in its config`,
    );
  }
  const r: ResolvedImage = {
    rootDigest: rec.digest,
    digest,
    manifestMediaType: parsed.mediaType,
    manifestSize: size,
    manifest,
    configDigest: manifest.config.digest,
    config,
    platform: configPlatform(config),
  };
  if (indexDigest) r.indexDigest = indexDigest;
  return r;
}

/** Rewrite repositories.json under the store-wide lock; `fn` edits the map in place. */
export async function updateTags<T>(store: ImageStore, fn: (tags: Record<string, TagRecord>) => T): Promise<T> {
  return store.withLock('repositories', () => {
    const tags = store.tags();
    const before = JSON.stringify(tags);
    const out = fn(tags);
    if (JSON.stringify(tags) !== before) writeFileAtomic(store.layout.repositories(), JSON.stringify(tags, null, 2), 0o600);
    return out;
  });
}

export interface ImageMatch {
  /** The ref the input named, or the first (sorted) tag of the image matched by id/digest. */
  ref: string;
  /** Every tag pointing at the same manifest (or index). */
  refs: string[];
  record: TagRecord;
  /** True when the input was an id or digest prefix rather than a name. */
  byId: boolean;
}

const HEX_PREFIX = /^(?:sha256:)?([a-f0-9]{4,64})$/;

function refsOf(tags: Record<string, TagRecord>, rootDigest: string): string[] {
  return Object.keys(tags)
    .filter((r) => tags[r]!.digest === rootDigest)
    .sort();
}

/**
 * Find the image `input` names: a canonical ref, a short ref (`busybox`), `name@digest`, or an
 * unambiguous prefix (at least 4 hex digits) of an image id (config digest) or manifest digest.
 */
export function findImage(store: ImageStore, input: string, tags: Record<string, TagRecord> = store.tags()): ImageMatch {
  const direct = tags[input];
  if (direct) return { ref: input, refs: refsOf(tags, direct.digest), record: direct, byId: false };
  let canonical: string | undefined;
  try {
    canonical = parseReference(input).canonical;
  } catch {
    /* not a reference: maybe an id */
  }
  if (canonical !== undefined) {
    const rec = tags[canonical];
    if (rec) return { ref: canonical, refs: refsOf(tags, rec.digest), record: rec, byId: false };
    const at = canonical.indexOf('@');
    if (at >= 0) {
      // name[:tag]@digest: any tag of that repository whose manifest (or index) is that digest
      const repo = canonical.slice(0, at).replace(/:[\w][\w.-]*$/, '');
      const digest = canonical.slice(at + 1);
      for (const ref of Object.keys(tags).sort()) {
        if (ref.replace(/:[\w][\w.-]*$/, '') !== repo) continue;
        const rec2 = tags[ref]!;
        let hit = rec2.digest === digest;
        if (!hit) {
          try {
            hit = resolveRecord(store, rec2).digest === digest;
          } catch {
            /* broken image: no match */
          }
        }
        if (hit) return { ref, refs: refsOf(tags, rec2.digest), record: rec2, byId: true };
      }
    }
  }
  const m = HEX_PREFIX.exec(input);
  if (m) {
    const prefix = m[1]!;
    const hits = new Map<string, { refs: string[]; record: TagRecord; id: string }>();
    for (const ref of Object.keys(tags).sort()) {
      const rec = tags[ref]!;
      const ids = [rec.digest];
      let id = rec.digest;
      try {
        const r = resolveRecord(store, rec);
        ids.push(r.digest, r.configDigest);
        id = r.configDigest;
      } catch {
        /* broken image: matched by its tag's digest only */
      }
      if (!ids.some((d) => digestHex(d).startsWith(prefix))) continue;
      // One image is one config: the same image loaded from an OCI and a docker archive has two
      // manifests (two digests) but one id, and is one match.
      const hit = hits.get(id);
      if (hit) hit.refs.push(ref);
      else hits.set(id, { refs: [ref], record: rec, id });
    }
    if (hits.size === 1) {
      const [h] = [...hits.values()];
      return { ref: h!.refs[0]!, refs: h!.refs, record: h!.record, byId: true };
    }
    if (hits.size > 1) {
      const list = [...hits.values()].map((h) => `${digestHex(h.id).slice(0, 12)} (${h.refs.join(', ')})`);
      throw new TsrunError('ERR_INVALID_ARGUMENT', `"${input}" is ambiguous: it matches ${hits.size} images: ${list.join('; ')}`, {
        hint: 'give more digits of the id, or a name',
      });
    }
  }
  throw new TsrunError('ERR_INVALID_ARGUMENT', `no such image: ${input}${canonical && canonical !== input ? ` (${canonical})` : ''}`, {
    hint: 'list images with `tsrun images`; pull or load it first',
  });
}

export interface ImageRow {
  ref: string;
  /** Manifest digest. */
  digest: string;
  /** Image id: the config digest. */
  id: string;
  created: string | undefined;
  /**
   * What the image takes unpacked (its layers' tar sizes), as `docker images` and `podman
   * images` show it; the compressed size for a layer not unpacked here.
   */
  size: number;
  /** Compressed layers plus config, as a registry would transfer them. */
  compressedSize: number;
  platform: string;
  /** Why the image could not be read, when it could not (the other fields are then partial). */
  error?: string;
}

export function listImages(store: ImageStore): ImageRow[] {
  const tags = store.tags();
  return Object.keys(tags)
    .sort()
    .map((ref): ImageRow => {
      const rec = tags[ref]!;
      try {
        const r = resolveRecord(store, rec);
        const compressedSize = r.manifest.layers.reduce((s, l) => s + l.size, r.manifest.config.size);
        const diffIds = r.config.rootfs.diff_ids;
        const size = r.manifest.layers.reduce((s, l, i) => {
          const d = diffIds[i];
          return s + (d && store.hasLayer(d) ? store.layerMeta(d).size : l.size);
        }, 0);
        return { ref, digest: r.digest, id: r.configDigest, created: r.config.created, size, compressedSize, platform: r.platform };
      } catch (e) {
        return { ref, digest: rec.digest, id: '', created: undefined, size: 0, compressedSize: 0, platform: rec.platform ?? '', error: (e as Error).message };
      }
    });
}

export interface LayerInfo {
  /** The (usually compressed) blob's digest. */
  digest: string;
  diffId: string;
  mediaType: string;
  size: number;
  /** Unpacked in the store's layers/. */
  unpacked: boolean;
}

export interface ImageDetails {
  ref: string;
  refs: string[];
  /** Manifest digest. */
  digest: string;
  /** Image id (config digest). */
  id: string;
  indexDigest?: string;
  manifest: ImageManifest;
  config: ImageConfig;
  layers: LayerInfo[];
  platform: string;
}

export function inspectImage(store: ImageStore, input: string): ImageDetails {
  const match = findImage(store, input);
  const r = resolveRecord(store, match.record);
  const layers = r.manifest.layers.map((l, i): LayerInfo => {
    const diffId = r.config.rootfs.diff_ids[i]!;
    return { digest: l.digest, diffId, mediaType: l.mediaType, size: l.size, unpacked: store.hasLayer(diffId) };
  });
  const d: ImageDetails = {
    ref: match.ref,
    refs: match.refs,
    digest: r.digest,
    id: r.configDigest,
    manifest: r.manifest,
    config: r.config,
    layers,
    platform: r.platform,
  };
  if (r.indexDigest) d.indexDigest = r.indexDigest;
  return d;
}
