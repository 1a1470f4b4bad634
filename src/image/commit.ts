// `tsrun commit`: a new image from a container: its base image plus one layer packed from the
// container's overlay upper dir (layer/pack.ts).
//
// Order of writes, as pull.ts: the layer blob (packed to tmp/, then stored through putBlob,
// which checks its digest), the unpacked layer (unpackLayer from that same blob, inside
// ensureLayer, checking the diff_id, so containers can use it at once), the config blob, the
// manifest blob, and last the tag (setTagIfComplete, under the lock prune sweeps under). A
// failure leaves no tag; blobs already stored are garbage for `tsrun image prune`.
//
// As docker does, a commit always adds a layer, even when nothing changed (the empty tar,
// diff_id sha256:5f70bf18…), and the history entry is not an empty_layer. The new image keeps
// the base's manifest format (Docker schema 2 stays Docker, anything else becomes OCI).
//
// The config is the base's, with: created (now, or `created`); author (`author`, else none:
// the base's author is not inherited); the container config with `changes` applied (docker's
// `commit --change` rules: Env, Labels, ExposedPorts and Volumes merge into the base's, the
// others replace, and an Entrypoint given without a Cmd clears the Cmd); diff_ids plus the new
// layer; history plus {created, created_by, author, comment}. "container" and
// "container_config" (the base's build container) are dropped.
//
// Without `ref` nothing is tagged: the store has no untagged images, so the new image is only
// reachable by the returned digests until prune collects it. Callers should always tag.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { TsrunError, wrap } from '../util/errors.js';
import { findImage, resolveRecord, type ResolvedImage } from './inspect.js';
import { packUpperDir, type PackOptions } from './layer/pack.js';
import { unpackLayer } from './layer/unpack.js';
import {
  checkImageManifest,
  MAX_CONFIG_BYTES,
  MediaType,
  parseImageConfig,
  parseJson,
  parseManifest,
  type Descriptor,
  type ImageConfig,
  type ImageConfigBody,
} from './manifest.js';
import { parseReference } from './reference.js';
import type { ImageStore } from './store/store.js';

/** Config changes, as `docker commit --change` makes them. */
export type ConfigChanges = Partial<
  Pick<ImageConfigBody, 'Cmd' | 'Entrypoint' | 'Env' | 'WorkingDir' | 'User' | 'Labels' | 'ExposedPorts' | 'Volumes' | 'StopSignal'>
>;

export interface CommitOptions {
  /**
   * The image the container was made from: its manifest digest ("sha256:<64 hex>", found even
   * when no tag points at it any more), or anything findImage accepts; or an image already
   * resolved. Its layers must be the container's lower layers.
   */
  base: string | ResolvedImage;
  /** The container's overlay upper directory. */
  upperDir: string;
  /** Tag for the new image ("name[:tag]", normalised as pull does: "app" is docker.io/library/app:latest). */
  ref?: string;
  author?: string;
  /** The history entry's comment. */
  message?: string;
  /** The history entry's created_by (docker: the container's command). */
  createdBy?: string;
  changes?: ConfigChanges;
  /** The image's creation time (default now). */
  created?: Date;
  /** Passed to packUpperDir: exclude mount point placeholders, fix mtimes, read xattrs. */
  pack?: PackOptions;
}

export interface CommitResult {
  /** The image id: the config digest. */
  id: string;
  manifestDigest: string;
  /** The new layer's diff_id and compressed blob. */
  diffId: string;
  layerDigest: string;
  layerSize: number;
  /** The canonical tag written, if any. */
  ref?: string;
  config: ImageConfig;
  /** What the layer left out (sockets). */
  skipped: string[];
}

const HEX_DIGEST = /^sha256:[a-f0-9]{64}$/;

function resolveBase(store: ImageStore, base: string | ResolvedImage): ResolvedImage {
  if (typeof base !== 'string') return base;
  if (HEX_DIGEST.test(base) && store.hasBlob(base)) {
    try {
      return resolveRecord(store, { digest: base });
    } catch {
      /* not a manifest (an image id, i.e. a config digest): look it up by its tags */
    }
  }
  return resolveRecord(store, findImage(store, base).record);
}

function mergeEnv(base: string[], add: string[]): string[] {
  const out = [...base];
  for (const kv of add) {
    const key = kv.split('=', 1)[0]!;
    const i = out.findIndex((e) => e.split('=', 1)[0] === key);
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

/** Apply `docker commit --change`-style changes to a container config (a copy is returned). */
export function applyConfigChanges(body: Record<string, unknown>, c: ConfigChanges): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body };
  const obj = (k: string) => (out[k] && typeof out[k] === 'object' && !Array.isArray(out[k]) ? (out[k] as Record<string, unknown>) : {});
  if (c.Env !== undefined) out.Env = mergeEnv(Array.isArray(out.Env) ? (out.Env as string[]) : [], c.Env);
  if (c.Labels !== undefined) out.Labels = { ...obj('Labels'), ...c.Labels };
  if (c.ExposedPorts !== undefined) out.ExposedPorts = { ...obj('ExposedPorts'), ...c.ExposedPorts };
  if (c.Volumes !== undefined) out.Volumes = { ...obj('Volumes'), ...c.Volumes };
  if (c.Entrypoint !== undefined) {
    out.Entrypoint = c.Entrypoint;
    if (c.Cmd === undefined) out.Cmd = null;
  }
  if (c.Cmd !== undefined) out.Cmd = c.Cmd;
  for (const k of ['WorkingDir', 'User', 'StopSignal'] as const) if (c[k] !== undefined) out[k] = c[k];
  return out;
}

export function canonicalTag(ref: string): string {
  const r = parseReference(ref);
  if (r.digest !== undefined) throw new TsrunError('ERR_INVALID_ARGUMENT', `cannot tag an image with the digest reference "${ref}"`);
  return r.canonical;
}

/** Commit the container whose upper dir is `o.upperDir` as a new image on top of `o.base`. */
export async function commitContainer(store: ImageStore, o: CommitOptions): Promise<CommitResult> {
  const ref = o.ref === undefined ? undefined : canonicalTag(o.ref);
  try {
    if (!lstatSync(o.upperDir).isDirectory()) throw new TsrunError('ERR_INVALID_ARGUMENT', `${o.upperDir} is not a directory`);
    store.init();
    const base = resolveBase(store, o.base);
    const baseDiffIds = base.config.rootfs.diff_ids;
    const missing = [...base.manifest.layers.map((l) => l.digest).filter((d) => !store.hasBlob(d)), ...baseDiffIds.filter((d) => !store.hasLayer(d))];
    if (missing.length) throw new TsrunError('ERR_INVALID_STATE', `the base image ${base.digest} is incomplete in the store: ${missing.join(', ')} missing`);
    const docker = base.manifestMediaType === MediaType.DockerManifest;
    const layerType = docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip;

    const layer = await storeLayerFromUpper(store, o.upperDir, layerType, o.pack);

    // the config
    const created = (o.created ?? new Date()).toISOString();
    const raw = parseJson(store.readBlob(base.configDigest, MAX_CONFIG_BYTES), `image config ${base.configDigest}`) as Record<string, unknown>;
    const cfg: Record<string, unknown> = { ...raw, created };
    delete cfg.container;
    delete cfg.container_config;
    delete cfg.author;
    if (o.author !== undefined) cfg.author = o.author;
    const body = raw.config && typeof raw.config === 'object' ? (raw.config as Record<string, unknown>) : {};
    cfg.config = o.changes ? applyConfigChanges(body, o.changes) : body;
    cfg.rootfs = { type: 'layers', diff_ids: [...baseDiffIds, layer.diffId] };
    const entry: Record<string, string> = { created };
    if (o.createdBy !== undefined) entry.created_by = o.createdBy;
    if (o.author !== undefined) entry.author = o.author;
    if (o.message !== undefined) entry.comment = o.message;
    cfg.history = [...(Array.isArray(raw.history) ? raw.history : []), entry];
    const configBytes = Buffer.from(JSON.stringify(cfg));
    const config = parseImageConfig(configBytes, 'the new image config');
    const configDigest = await storeBytes(store, configBytes);

    const layers: Descriptor[] = [...base.manifest.layers, { mediaType: layerType, digest: layer.digest, size: layer.size }];
    const manifestDigest = await writeManifest(store, {
      configDigest,
      configSize: configBytes.length,
      layers,
      docker,
      ...(ref ? { ref } : {}),
      diffIds: config.rootfs.diff_ids,
    });

    return {
      id: configDigest,
      manifestDigest,
      diffId: layer.diffId,
      layerDigest: layer.digest,
      layerSize: layer.size,
      ...(ref ? { ref } : {}),
      config,
      skipped: layer.skipped,
    };
  } catch (e) {
    throw wrap(e, `commit ${o.upperDir}${ref ? ` as ${ref}` : ''}`);
  }
}

export interface StoredLayer {
  diffId: string;
  digest: string;
  size: number;
  /** What the layer left out (sockets). */
  skipped: string[];
}

/**
 * Pack an overlay upper dir as a gzip'd layer blob into the store and unpack that same blob
 * as a store layer (so containers and builds can use it at once); shared by commit and build.
 */
export async function storeLayerFromUpper(store: ImageStore, upperDir: string, layerType: string, pack?: PackOptions): Promise<StoredLayer> {
  const tmp = store.tmpPath('commit');
  let packed: Awaited<ReturnType<typeof packUpperDir>>;
  try {
    packed = await packUpperDir(upperDir, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }), pack);
    await store.putBlob(createReadStream(tmp), { digest: packed.digest, size: packed.size });
  } finally {
    rmSync(tmp, { force: true });
  }
  const layerName = `committed layer (${packed.digest})`;
  await store.ensureLayer(packed.diffId, async (root) => {
    const r = await unpackLayer(createReadStream(store.blobPath(packed.digest)), layerType, root, { layerName, expectedDiffId: packed.diffId });
    return { ...r, compressedDigest: packed.digest };
  });
  return { diffId: packed.diffId, digest: packed.digest, size: packed.size, skipped: packed.skipped };
}

/** The manifest of a config and its layers, stored; tagged last (under prune's lock) when `ref` is given. */
export async function writeManifest(
  store: ImageStore,
  o: { configDigest: string; configSize: number; layers: Descriptor[]; docker: boolean; ref?: string; diffIds: string[] },
): Promise<string> {
  const manifestType = o.docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: o.docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: o.configDigest, size: o.configSize },
      layers: o.layers.map((l) => ({
        mediaType: l.mediaType,
        digest: l.digest,
        size: l.size,
        ...(l.urls ? { urls: l.urls } : {}),
        ...(l.annotations ? { annotations: l.annotations } : {}),
      })),
    }),
  );
  const parsed = parseManifest(manifestBytes, manifestType, 'the new manifest');
  if (parsed.kind === 'manifest') checkImageManifest(parsed.manifest, 'the new manifest');
  const manifestDigest = await storeBytes(store, manifestBytes);
  if (o.ref) {
    await store.setTagIfComplete(
      o.ref,
      { digest: manifestDigest },
      { blobs: [o.configDigest, manifestDigest, ...o.layers.map((l) => l.digest)], layers: o.diffIds },
    );
  }
  return manifestDigest;
}

export async function storeBytes(store: ImageStore, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await store.putBlob(Readable.from([bytes]), { digest, size: bytes.length });
  return digest;
}
