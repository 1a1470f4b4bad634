// `tsrun push`: send a stored image to a registry, byte for byte, so that its digests stay
// what they are in the store (what was pulled keeps the digests it was pulled by).
//
//   1. Plan: the image SRC names (found as `tsrun run` finds images), its manifest, or its
//      index and every platform manifest the index lists. A platform that is not in the store
//      (a pull keeps one platform) is fine when the destination already has its manifest, or
//      when another repository of the same registry holds the image (a tag in the store says
//      so): its manifest is then read from there and its blobs mounted. Otherwise only the
//      stored platform's manifest is pushed, with a warning: the index cannot be.
//   2. Blobs (configs and layers), a few at once: HEAD first (the registry has it: skipped);
//      else a cross-repository mount (POST ?mount=&from=) from a repository of the same
//      registry that holds it (the source's, or another tag's); else an upload: one PUT
//      (monolithic) up to a size threshold, PATCH chunks with Content-Range above it or when
//      asked. Transient failures (resets, timeouts, 5xx, 429: pull's rule, isTransient) are
//      retried: a chunk resumes where the registry says it stopped, anything else starts the
//      blob again.
//   3. Manifests: each platform manifest by digest, then the index (or the single manifest)
//      under the tag; one the registry already has under that name is not sent again, so a
//      second push of the same image writes nothing.
import { createReadStream, statSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { findLocalImage } from '../engine/image-lookup.js';
import { TsrunError, wrap } from '../util/errors.js';
import { parseStoredManifest } from './inspect.js';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  selectPlatform,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
} from './manifest.js';
import { parseReference, type ImageReference } from './reference.js';
import { isTransient, RegistryClient, RegistryError, type UploadSession } from './registry/client.js';
import { lookupCredentials, type CredentialOptions, type RegistryCredentials } from './registry/credentials.js';
import type { ImageStore, TagRecord } from './store/store.js';

export interface PushBlobInfo {
  /** Position among the image's distinct blobs (layers first, then configs). */
  index: number;
  digest: string;
  size: number;
  mediaType: string;
  kind: 'layer' | 'config';
}

export type PushProgress =
  | { type: 'resolved'; ref: string; digest: string; mediaType: string; platforms: string[]; blobs: PushBlobInfo[] }
  | { type: 'exists'; blob: PushBlobInfo }
  | { type: 'mounted'; blob: PushBlobInfo; from: string }
  | { type: 'started'; blob: PushBlobInfo; chunked: boolean }
  | { type: 'bytes'; blob: PushBlobInfo; bytes: number }
  | { type: 'done'; blob: PushBlobInfo }
  | { type: 'retrying'; blob: PushBlobInfo; attempt: number; error: string }
  | { type: 'manifest'; digest: string; mediaType: string; platform?: string; existed: boolean }
  | { type: 'warning'; message: string }
  | { type: 'pushed'; ref: string; digest: string; size: number };

export interface PushOptions {
  /** Registries (host[:port]) that may use plain http / unverified TLS; loopback always may. */
  insecureRegistries?: readonly string[];
  /** Credentials to use instead of looking them up (auth.json, ~/.docker/config.json). */
  credentials?: RegistryCredentials;
  /** Where to look credentials up (HOME, DOCKER_CONFIG); the image root is the store's. */
  credentialOptions?: Omit<CredentialOptions, 'imageRoot'>;
  onProgress?: (event: PushProgress) => void;
  /** Upload every blob in chunks of this many bytes (PATCH with Content-Range), whatever its size. */
  chunkSize?: number;
  /** Blobs larger than this are uploaded in chunks (default 64 MiB), smaller ones in one PUT. */
  chunkThreshold?: number;
  /** Blobs pushed at once (default 3). */
  concurrency?: number;
  /** Attempts per blob for transient failures (default 3). */
  blobAttempts?: number;
  /** Retries of single registry requests (default 4) and their first delay (default 250 ms). */
  retries?: number;
  retryBaseMs?: number;
  /** Try cross-repository mounts (default true). */
  mount?: boolean;
  signal?: AbortSignal;
}

export interface PushResult {
  /** The canonical destination. */
  ref: string;
  /** What the destination names now: the index, or the manifest. */
  digest: string;
  mediaType: string;
  /** Size of that manifest or index. */
  size: number;
  /** Every manifest the registry holds for it (platform manifests first, the root last). */
  manifests: string[];
  /** The platforms pushed, when the image has an index. */
  platforms?: string[];
  /** Blobs sent, found present, and mounted from another repository. */
  uploaded: string[];
  existing: string[];
  mounted: string[];
}

const DEFAULT_CONCURRENCY = 3;
const DEFAULT_BLOB_ATTEMPTS = 3;
export const DEFAULT_CHUNK_THRESHOLD = 64 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;
const MAX_MOUNT_SOURCES = 3;
const BYTES_EVENT_STEP = 256 * 1024;
const MAX_JSON_BLOB = 8 * 1024 * 1024;

// ---- pure parts (unit-tested) ----

/**
 * Where to push: DEST as given (`docker://` allowed, as skopeo and podman write it), else the
 * name the image is stored under. A digest in DEST must be the digest pushed.
 */
export function pushDestination(dest: string | undefined, storedRef: string): ImageReference {
  const raw = (dest ?? storedRef).trim().replace(/^docker:\/\//, '');
  return parseReference(raw);
}

/** The blob's chunks: [start, length] pairs of at most `chunk` bytes (none for an empty blob). */
export function chunkRanges(size: number, chunk: number, from = 0): [number, number][] {
  if (!(chunk > 0)) throw new TsrunError('ERR_INVALID_ARGUMENT', `chunk size must be positive, not ${chunk}`);
  const out: [number, number][] = [];
  for (let at = from; at < size; at += chunk) out.push([at, Math.min(chunk, size - at)]);
  return out;
}

/** Chunked or one PUT, and the chunk size (at least the registry's minimum). */
export function uploadPlan(size: number, o: { chunkSize?: number; chunkThreshold?: number; minChunk?: number }): { chunked: boolean; chunk: number } {
  const chunked = o.chunkSize !== undefined || size > (o.chunkThreshold ?? DEFAULT_CHUNK_THRESHOLD);
  return { chunked, chunk: Math.max(o.chunkSize ?? DEFAULT_CHUNK_SIZE, o.minChunk ?? 0) };
}

/** Descriptors that are not to be pushed: foreign / non-distributable layers that name their own URLs. */
export function isForeign(d: Descriptor): boolean {
  return /\.foreign\.|\.nondistributable\./.test(d.mediaType) && (d.urls?.length ?? 0) > 0;
}

/**
 * Repositories of the same registry that hold content the push needs, from the store's tags:
 * digest (blob, manifest or index) -> repository paths, in tag order. A tag says that a pull
 * came from there, or a push went there; a guess that turns out wrong costs one request.
 */
export function mountSources(store: ImageStore, dest: ImageReference, tags: Record<string, TagRecord> = store.tags()): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (d: string, repo: string) => {
    const l = out.get(d);
    if (!l) out.set(d, [repo]);
    else if (!l.includes(repo)) l.push(repo);
  };
  for (const ref of Object.keys(tags).sort()) {
    let r: ImageReference;
    try {
      r = parseReference(ref);
    } catch {
      continue;
    }
    if (r.registryHost.toLowerCase() !== dest.registryHost.toLowerCase() || r.path === dest.path) continue;
    try {
      for (const d of contentOf(store, tags[ref]!.digest)) add(d, r.path);
    } catch {
      /* a broken image offers nothing */
    }
  }
  return out;
}

/** The digests an image consists of: root, the manifests an index lists, and the blobs of those stored. */
function contentOf(store: ImageStore, root: string): string[] {
  const out = [root];
  const p = parseStoredManifest(store.readBlob(root, MAX_JSON_BLOB), undefined, `manifest ${root}`);
  const manifests: ImageManifest[] = [];
  if (p.kind === 'manifest') manifests.push(p.manifest);
  else {
    for (const d of p.index.manifests) {
      out.push(d.digest);
      if (!store.hasBlob(d.digest)) continue;
      const m = parseStoredManifest(store.readBlob(d.digest, MAX_JSON_BLOB), d.mediaType, `manifest ${d.digest}`);
      if (m.kind === 'manifest') manifests.push(m.manifest);
    }
  }
  for (const m of manifests) out.push(m.config.digest, ...m.layers.map((l) => l.digest));
  return out;
}

// ---- the push ----

interface PlanManifest {
  digest: string;
  mediaType: string;
  platform?: string;
  /** The bytes, from the store or from a repository of the same registry. */
  bytes?: Buffer;
  manifest?: ImageManifest;
  /** The destination has it already (HEAD by digest). */
  atDest?: boolean;
  /** Read from this repository of the destination registry: its blobs are mounted from there. */
  from?: string;
}

interface PlanBlob {
  info: PushBlobInfo;
  /** In the store (else it must be mounted). */
  local: boolean;
  mountFrom: string[];
}

interface Ctx {
  store: ImageStore;
  client: RegistryClient;
  dest: ImageReference;
  emit: (e: PushProgress) => void;
  signal: AbortSignal;
  opts: PushOptions;
  blobAttempts: number;
  mount: boolean;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** pull's backoff between attempts of one layer: 0.5 s, 1 s, 2 s … (at most 8 s). */
function backoff(attempt: number): number {
  return Math.min(8000, 500 * 2 ** (attempt - 1));
}

/** Run fn over items with at most `limit` at once; the first failure aborts the rest. */
async function pool<T, R>(items: T[], limit: number, signal: AbortSignal, abort: () => void, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let firstError: { e: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !firstError && !signal.aborted) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (e) {
        if (!firstError) {
          firstError = { e };
          abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (firstError) throw firstError.e;
  if (signal.aborted) throw signal.reason;
  return results;
}

function platformOf(d: Descriptor): string {
  return d.platform ? formatPlatform(normalizePlatform(d.platform)) : 'unknown';
}

function insecureFor(ref: ImageReference, list: readonly string[] | undefined): boolean {
  return (list ?? []).some((h) => {
    const k = h
      .trim()
      .toLowerCase()
      .replace(/^[a-z]+:\/\//, '')
      .replace(/\/.*$/, '');
    return k === ref.domain.toLowerCase() || k === ref.registryHost.toLowerCase();
  });
}

/**
 * Push the stored image `src` to `dest` (default: the name it is stored under). Resolves to
 * what the registry holds now; rejects with a TsrunError naming what failed.
 */
export async function pushImage(store: ImageStore, src: string, dest?: string, opts: PushOptions = {}): Promise<PushResult> {
  const found = findLocalImage(store, src);
  if (!found) throw new TsrunError('ERR_INVALID_ARGUMENT', `no such image: ${src}`, { hint: 'list images with `tsrun images`; pull, load or tag it first' });
  const record = store.tags()[found.ref];
  if (!record) throw new TsrunError('ERR_INVALID_STATE', `${found.ref} was removed meanwhile`);
  const d = pushDestination(dest, found.ref);
  if (opts.chunkSize !== undefined && !(Number.isSafeInteger(opts.chunkSize) && opts.chunkSize > 0)) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `chunk size must be a positive number of bytes, not ${opts.chunkSize}`);
  }
  const creds = opts.credentials ? { credentials: opts.credentials } : lookupCredentials(d.domain, { ...opts.credentialOptions, imageRoot: store.layout.root });
  const clientOpts = {
    credentials: creds.credentials,
    credentialNote: creds.note,
    insecure: insecureFor(d, opts.insecureRegistries),
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
  };
  const client = new RegistryClient(d, { ...clientOpts, push: true });
  const sources = new Map<string, RegistryClient>();
  const sourceClient = (repo: string) => {
    let c = sources.get(repo);
    if (!c) {
      c = new RegistryClient({ registryHost: d.registryHost, domain: d.domain, path: repo }, clientOpts);
      sources.set(repo, c);
    }
    return c;
  };
  const controller = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  const emit = (e: PushProgress) => {
    try {
      opts.onProgress?.(e);
    } catch {
      /* a progress display must not break the push */
    }
  };
  const ctx: Ctx = {
    store,
    client,
    dest: d,
    emit,
    signal,
    opts,
    blobAttempts: opts.blobAttempts ?? DEFAULT_BLOB_ATTEMPTS,
    mount: opts.mount ?? true,
  };
  try {
    return await push(ctx, record, sourceClient, () => controller.abort(new TsrunError('ERR_INVALID_STATE', 'cancelled: another blob failed')));
  } catch (e) {
    throw wrap(e, `push ${d.canonical}`);
  } finally {
    client.close();
    for (const c of sources.values()) c.close();
  }
}

async function push(ctx: Ctx, record: TagRecord, sourceClient: (repo: string) => RegistryClient, abort: () => void): Promise<PushResult> {
  const { store, client, dest, emit, signal } = ctx;
  const sources = ctx.mount ? mountSources(store, dest) : new Map<string, string[]>();

  // ---- 1. what to push ----
  const rootBytes = store.readBlob(record.digest, MAX_JSON_BLOB);
  const root = parseStoredManifest(rootBytes, undefined, `manifest ${record.digest}`);
  let top: PlanManifest = { digest: record.digest, mediaType: root.mediaType, bytes: rootBytes };
  let manifests: PlanManifest[];
  let platforms: string[] | undefined;
  if (root.kind === 'manifest') {
    top.manifest = root.manifest;
    manifests = [];
  } else {
    manifests = await planIndex(ctx, root.index, record.digest, sources, sourceClient);
    const missing = manifests.filter((m) => !m.bytes && !m.atDest);
    if (missing.length) {
      // The index cannot be pushed: push the stored platform's manifest alone.
      const want = record.platform ? parsePlatform(record.platform) : hostPlatform();
      const desc = selectPlatform(root.index, want, `index ${record.digest}`);
      const chosen = manifests.find((m) => m.digest === desc.digest);
      if (!chosen?.bytes || !chosen.manifest) {
        throw new TsrunError('ERR_INVALID_STATE', `manifest ${desc.digest} (${platformOf(desc)}) of index ${record.digest} is not in the store`);
      }
      emit({
        type: 'warning',
        message: `index ${record.digest} lists ${missing.map((m) => m.platform).join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} not in the store and not in ${dest.registryHost}: pushing only the ${chosen.platform} manifest ${chosen.digest} (pull the others with --platform to push the whole index)`,
      });
      top = { ...chosen };
      manifests = [];
    } else platforms = manifests.map((m) => m.platform ?? 'unknown');
  }
  if (dest.digest !== undefined && dest.digest !== top.digest) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `${dest.canonical} names digest ${dest.digest}, but the image is ${top.digest}`, {
      hint: 'push under a tag, or under the digest the image has',
    });
  }

  // ---- 2. the blobs ----
  const blobs = new Map<string, PlanBlob>();
  const withBlobs = [...manifests.filter((m) => !m.atDest), ...(top.manifest ? [top] : [])];
  const addBlob = (desc: Descriptor, kind: 'layer' | 'config', from: string | undefined) => {
    if (isForeign(desc)) return;
    let b = blobs.get(desc.digest);
    if (!b) {
      b = {
        info: { index: 0, digest: desc.digest, size: desc.size, mediaType: desc.mediaType, kind },
        local: store.hasBlob(desc.digest),
        mountFrom: [],
      };
      blobs.set(desc.digest, b);
    }
    for (const r of [...(from ? [from] : []), ...(sources.get(desc.digest) ?? [])]) if (!b.mountFrom.includes(r)) b.mountFrom.push(r);
  };
  for (const m of withBlobs) for (const l of m.manifest!.layers) addBlob(l, 'layer', m.from);
  for (const m of withBlobs) addBlob(m.manifest!.config, 'config', m.from);
  const list = [...blobs.values()];
  list.forEach((b, i) => {
    b.info.index = i;
    b.mountFrom = b.mountFrom.slice(0, MAX_MOUNT_SOURCES);
  });
  emit({
    type: 'resolved',
    ref: dest.canonical,
    digest: top.digest,
    mediaType: top.mediaType,
    platforms: platforms ?? [],
    blobs: list.map((b) => b.info),
  });
  const outcome = await pool(list, Math.max(1, ctx.opts.concurrency ?? DEFAULT_CONCURRENCY), signal, abort, (b) => pushBlob(ctx, b));

  // ---- 3. the manifests, then the index (or the manifest) under the tag ----
  const pushed: string[] = [];
  for (const m of manifests) {
    let existed = m.atDest === true;
    if (!existed) existed = await manifestAt(client, m.digest, m.digest, signal);
    if (!existed) await client.putManifest(m.digest, m.bytes!, m.mediaType, { signal });
    emit({ type: 'manifest', digest: m.digest, mediaType: m.mediaType, ...(m.platform ? { platform: m.platform } : {}), existed });
    pushed.push(m.digest);
  }
  const reference = dest.tag ?? top.digest;
  const existed = await manifestAt(client, reference, top.digest, signal);
  if (!existed) await client.putManifest(reference, top.bytes!, top.mediaType, { signal });
  emit({ type: 'manifest', digest: top.digest, mediaType: top.mediaType, ...(top.platform ? { platform: top.platform } : {}), existed });
  pushed.push(top.digest);
  emit({ type: 'pushed', ref: dest.canonical, digest: top.digest, size: top.bytes!.length });
  const by = (k: string) => list.filter((_, i) => outcome[i] === k).map((b) => b.info.digest);
  return {
    ref: dest.canonical,
    digest: top.digest,
    mediaType: top.mediaType,
    size: top.bytes!.length,
    manifests: pushed,
    ...(platforms ? { platforms } : {}),
    uploaded: by('uploaded'),
    existing: by('exists'),
    mounted: by('mounted'),
  };
}

/** Does the destination name `reference` (a tag or digest) as `digest` already? */
async function manifestAt(client: RegistryClient, reference: string, digest: string, signal: AbortSignal): Promise<boolean> {
  try {
    const h = await client.headManifest(reference, { signal });
    return h.digest === digest;
  } catch (e) {
    if (e instanceof RegistryError && (e.status === 401 || e.status === 403)) throw e;
    if (e instanceof RegistryError && e.status === 0) throw e;
    return false; // 404, or a registry that answers HEAD badly: PUT will tell
  }
}

/** The index's manifests: from the store; else already at the destination; else from a repository of the same registry. */
async function planIndex(
  ctx: Ctx,
  index: ImageIndex,
  indexDigest: string,
  sources: Map<string, string[]>,
  sourceClient: (repo: string) => RegistryClient,
): Promise<PlanManifest[]> {
  const { store, client, signal } = ctx;
  const out: PlanManifest[] = [];
  for (const desc of index.manifests) {
    const m: PlanManifest = { digest: desc.digest, mediaType: desc.mediaType, platform: platformOf(desc) };
    if (store.hasBlob(desc.digest)) {
      m.bytes = store.readBlob(desc.digest, MAX_JSON_BLOB);
    } else if (await manifestAt(client, desc.digest, desc.digest, signal)) {
      m.atDest = true;
    } else {
      for (const repo of [...(sources.get(desc.digest) ?? []), ...(sources.get(indexDigest) ?? [])].slice(0, MAX_MOUNT_SOURCES)) {
        try {
          const got = await sourceClient(repo).getManifest(desc.digest, { signal });
          m.bytes = got.bytes;
          m.from = repo;
          break;
        } catch (e) {
          if (signal.aborted) throw e;
          /* not there after all: the next candidate */
        }
      }
    }
    if (m.bytes) {
      if (m.bytes.length !== desc.size)
        throw new TsrunError('ERR_DIGEST_MISMATCH', `manifest ${desc.digest} is ${m.bytes.length} bytes, index ${indexDigest} says ${desc.size}`);
      const p = parseStoredManifest(m.bytes, desc.mediaType, `manifest ${desc.digest} (${m.platform})`);
      if (p.kind !== 'manifest')
        throw new TsrunError('ERR_UNSUPPORTED', `manifest ${desc.digest} of index ${indexDigest} is itself an index: nested indexes are not supported`);
      m.manifest = p.manifest;
    }
    out.push(m);
  }
  return out;
}

// ---- one blob ----

function blobName(b: PlanBlob): string {
  return `${b.info.kind} ${b.info.digest}`;
}

async function pushBlob(ctx: Ctx, b: PlanBlob): Promise<'exists' | 'mounted' | 'uploaded'> {
  const { signal, emit } = ctx;
  for (let attempt = 1; ; attempt++) {
    try {
      return await blobOnce(ctx, b);
    } catch (e) {
      if (signal.aborted) throw e; // another blob failed first: its error is the one reported
      if (attempt >= ctx.blobAttempts || !isTransient(e)) throw wrap(e, blobName(b));
      emit({ type: 'retrying', blob: b.info, attempt, error: (e as Error).message });
      await sleep(backoff(attempt), signal);
    }
  }
}

function bytesReporter(ctx: Ctx, b: PlanBlob): (total: number) => void {
  let last = -1;
  return (total) => {
    if (last < 0 || total - last >= BYTES_EVENT_STEP || total === b.info.size) {
      last = total;
      ctx.emit({ type: 'bytes', blob: b.info, bytes: total });
    }
  };
}

/** A stored blob's bytes [start, start+length), counted as they are read. */
function openRange(path: string, start: number, length: number, onBytes: (n: number) => void): Readable {
  const file = length > 0 ? createReadStream(path, { start, end: start + length - 1, highWaterMark: 1 << 20 }) : undefined;
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  if (!file) {
    out.end();
    return out;
  }
  let n = 0;
  file.on('data', (c: Buffer | string) => {
    n += c.length;
    onBytes(n);
    if (!out.write(c)) file.pause();
  });
  out.on('drain', () => file.resume());
  file.on('end', () => out.end());
  file.on('error', (e) => out.destroy(e));
  out.on('close', () => file.destroy());
  return out;
}

async function blobOnce(ctx: Ctx, b: PlanBlob): Promise<'exists' | 'mounted' | 'uploaded'> {
  const { client, store, emit, signal } = ctx;
  const { digest, size } = b.info;
  if (await client.hasBlob(digest, { signal })) {
    emit({ type: 'exists', blob: b.info });
    return 'exists';
  }
  let session: UploadSession | undefined;
  if (ctx.mount) {
    for (const from of b.mountFrom) {
      try {
        const r = await client.mountBlob(digest, from, { signal });
        if (r.mounted) {
          if (session) void client.cancelUpload(session);
          emit({ type: 'mounted', blob: b.info, from });
          return 'mounted';
        }
        if (session) void client.cancelUpload(session);
        session = r.session;
      } catch (e) {
        // Not allowed to read `from` (a token without its pull scope), or no such repository:
        // upload instead.
        if (!(e instanceof RegistryError) || ![401, 403, 404, 405].includes(e.status)) throw e;
      }
    }
  }
  if (!b.local) {
    if (session) void client.cancelUpload(session);
    throw new TsrunError(
      'ERR_INVALID_STATE',
      `it is not in the store, and ${b.mountFrom.length ? `could not be mounted from ${b.mountFrom.join(', ')}` : 'no repository of the registry is known to hold it'}`,
    );
  }
  const path = store.blobPath(digest);
  const stored = statSync(path).size;
  if (stored !== size) throw new TsrunError('ERR_DIGEST_MISMATCH', `the stored blob is ${stored} bytes, its descriptor says ${size}`);
  try {
    session ??= await client.startUpload({ signal });
    const plan = uploadPlan(size, {
      ...(ctx.opts.chunkSize !== undefined ? { chunkSize: ctx.opts.chunkSize } : {}),
      ...(ctx.opts.chunkThreshold !== undefined ? { chunkThreshold: ctx.opts.chunkThreshold } : {}),
      ...(session.minChunk !== undefined ? { minChunk: session.minChunk } : {}),
    });
    emit({ type: 'started', blob: b.info, chunked: plan.chunked });
    const report = bytesReporter(ctx, b);
    if (!plan.chunked) {
      await client.finishUpload(session, digest, { size, open: () => openRange(path, 0, size, report) }, { signal });
    } else {
      session = await uploadChunks(ctx, b, session, path, plan.chunk, report);
      await client.finishUpload(session, digest, undefined, { signal });
    }
    session = undefined;
  } finally {
    if (session) void client.cancelUpload(session);
  }
  emit({ type: 'done', blob: b.info });
  return 'uploaded';
}

/** PATCH the blob in chunks; a transient failure resumes where the registry says it is. */
async function uploadChunks(ctx: Ctx, b: PlanBlob, first: UploadSession, path: string, chunk: number, report: (n: number) => void): Promise<UploadSession> {
  const { client, signal, emit } = ctx;
  const size = b.info.size;
  let session = first;
  let offset = 0;
  let resumes = 0;
  while (offset < size) {
    const start = offset;
    const length = Math.min(chunk, size - start);
    try {
      const r = await client.patchUpload(session, start, { size: length, open: () => openRange(path, start, length, (n) => report(start + n)) }, { signal });
      session = r.session;
      if (r.offset > start + length || r.offset <= start) {
        throw new RegistryError('ERR_INVALID_STATE', `after bytes ${start}-${start + length - 1} the registry says it holds ${r.offset}`, 0);
      }
      offset = r.offset;
    } catch (e) {
      if (signal.aborted || !isTransient(e) || ++resumes >= ctx.blobAttempts) throw e;
      emit({ type: 'retrying', blob: b.info, attempt: resumes, error: (e as Error).message });
      await sleep(backoff(resumes), signal);
      let st: { session: UploadSession; offset: number };
      try {
        st = await client.uploadStatus(session, { signal });
      } catch {
        // The session did not survive (distribution cancels one whose size no longer matches
        // its state): the blob starts again, in a new session.
        throw e;
      }
      session = st.session;
      offset = Math.min(st.offset, size);
    }
  }
  return session;
}
