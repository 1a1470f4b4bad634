// `tsrun pull`: resolve a reference to an image manifest on its registry (choosing the
// platform from an index), then fetch every layer the store lacks ONCE, teeing the bytes in
// one pass into ImageStore.putBlob (compressed digest and size) and into unpackLayer inside
// ImageStore.ensureLayer (diff_id), so downloading and unpacking overlap. Layers run in
// parallel (3 by default) and are retried on transient errors.
//
// Order of writes, so that a failure leaves nothing half-done:
//   layers (each complete or absent: the store's guarantee), then the config blob, the
//   manifest blob, the index blob, and last the tag. A failed pull leaves no tag, and no blob
//   or layer dir of the layer that failed; layers that completed stay (shared, verified).
import { createReadStream } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { TsrunError, wrap } from '../util/errors.js';
import { unpackLayer } from './layer/unpack.js';
import {
  checkImageManifest,
  formatPlatform,
  hostPlatform,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  normalizePlatform,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  platformMatches,
  selectPlatform,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type Platform,
} from './manifest.js';
import { parseReference, type ImageReference } from './reference.js';
import { isTransient, RegistryClient, RegistryError } from './registry/client.js';
import { lookupCredentials, type CredentialOptions, type RegistryCredentials } from './registry/credentials.js';
import type { ImageStore, LayerMeta, TagRecord } from './store/store.js';

export interface PullLayerInfo {
  /** Position in the manifest (0-based). */
  index: number;
  /** Compressed digest (the blob). */
  digest: string;
  /** Uncompressed digest (the layer dir). */
  diffId: string;
  /** Compressed size from the descriptor. */
  size: number;
  mediaType: string;
}

export type PullProgress =
  | { type: 'resolved'; ref: string; digest: string; manifestDigest: string; platform?: string; layers: PullLayerInfo[] }
  | { type: 'started'; layer: PullLayerInfo }
  | { type: 'bytes'; layer: PullLayerInfo; bytes: number }
  | { type: 'done'; layer: PullLayerInfo; files: number; unpackedSize: number }
  | { type: 'skipped-exists'; layer: PullLayerInfo }
  | { type: 'retrying'; layer: PullLayerInfo; attempt: number; error: string }
  | { type: 'warning'; message: string }
  | { type: 'tagged'; ref: string; digest: string };

export interface PullOptions {
  /** "os/arch[/variant]" or a Platform; default: the host's. */
  platform?: string | Platform;
  /** Registries (host[:port] or domain) that may use plain http / unverified TLS. */
  insecureRegistries?: readonly string[];
  /** Layers fetched at once (default 3). */
  concurrency?: number;
  onProgress?: (event: PullProgress) => void;
  /** Credentials to use instead of looking them up (auth.json, ~/.docker/config.json). */
  credentials?: RegistryCredentials;
  /** Where to look credentials up (HOME, DOCKER_CONFIG); the image root is the store's. */
  credentialOptions?: Omit<CredentialOptions, 'imageRoot'>;
  /** Attempts per layer for transient failures (default 3). */
  layerAttempts?: number;
  /** Retries of single registry requests (default 4) and their first delay (default 250 ms). */
  retries?: number;
  retryBaseMs?: number;
  signal?: AbortSignal;
}

export interface PullResult {
  /** The canonical reference that was tagged. */
  ref: string;
  /** What the tag points at: the index, or the manifest when there is no index. */
  digest: string;
  manifestDigest: string;
  configDigest: string;
  /** The platform chosen from an index. */
  platform?: string;
  config: ImageConfig;
  layers: LayerMeta[];
}

const DEFAULT_CONCURRENCY = 3;
const DEFAULT_LAYER_ATTEMPTS = 3;
const BYTES_EVENT_STEP = 256 * 1024;

// ---- in-process de-duplication ----
// Two pulls in one process that need the same layer queue here, per store root and diff_id,
// so the second finds it present instead of downloading it again (the store's own lock only
// makes the unpack exclusive, not the download).
const queues = new Map<string, Promise<void>>();

async function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = prev.then(() => mine);
  queues.set(key, tail);
  await prev;
  try {
    return await fn();
  } finally {
    release();
    if (queues.get(key) === tail) queues.delete(key);
  }
}

// ---- one source, two consumers ----

/**
 * Feed one Readable to two PassThroughs with backpressure from both. `detachB()` lets A go
 * on alone (B's consumer failed); `abort(err)` stops everything (A's consumer failed).
 */
class Tee {
  readonly a = new PassThrough({ highWaterMark: 1 << 20 });
  readonly b = new PassThrough({ highWaterMark: 1 << 20 });
  private bDetached = false;
  private aborted = false;
  private readonly wakers = new Set<() => void>();
  readonly done: Promise<void>;

  constructor(
    private readonly src: Readable,
    onBytes: (total: number) => void,
  ) {
    // Consumers may fail before reading: never let an 'error' on a branch go unhandled.
    this.a.on('error', () => {});
    this.b.on('error', () => {});
    this.done = this.pump(onBytes);
  }

  detachB(): void {
    this.bDetached = true;
    for (const w of [...this.wakers]) w();
  }

  abort(err: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.src.destroy();
    this.a.destroy(err);
    this.b.destroy(err);
    for (const w of [...this.wakers]) w();
  }

  private bLive(): boolean {
    return !this.bDetached && !this.b.destroyed;
  }

  private wait(s: PassThrough): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        s.off('drain', done);
        s.off('close', done);
        this.wakers.delete(done);
        resolve();
      };
      s.on('drain', done);
      s.on('close', done);
      this.wakers.add(done);
    });
  }

  private async pump(onBytes: (total: number) => void): Promise<void> {
    let total = 0;
    try {
      for await (const chunk of this.src as AsyncIterable<Buffer>) {
        if (this.aborted || this.a.destroyed) break; // A's consumer gave up: abort() follows
        total += chunk.length;
        onBytes(total);
        const okA = this.a.write(chunk);
        const okB = this.bLive() ? this.b.write(chunk) : true;
        const waits: Promise<void>[] = [];
        if (!okA && !this.a.destroyed) waits.push(this.wait(this.a));
        if (!okB && this.bLive()) waits.push(this.wait(this.b));
        if (waits.length) await Promise.all(waits);
      }
      if (!this.aborted && !this.a.destroyed) {
        this.a.end();
        if (this.bLive()) this.b.end();
      }
    } catch (e) {
      this.a.destroy(e as Error);
      this.b.destroy(e as Error);
    }
  }
}

/** Count bytes through a stream (local blobs feeding unpackLayer). */
function counting(src: Readable, onBytes: (total: number) => void): Readable {
  let total = 0;
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  src.on('data', (c: Buffer) => {
    total += c.length;
    onBytes(total);
    if (!out.write(c)) src.pause();
  });
  out.on('drain', () => src.resume());
  src.on('end', () => out.end());
  src.on('error', (e) => out.destroy(e));
  out.on('close', () => src.destroy());
  return out;
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

interface FetchedDoc {
  bytes: Buffer;
  digest: string;
  mediaType: string | undefined;
}

interface Ctx {
  store: ImageStore;
  client: RegistryClient;
  ref: ImageReference;
  emit: (e: PullProgress) => void;
  signal: AbortSignal;
  layerAttempts: number;
  layerCount: number;
}

/**
 * Pull `ref` into `store` and tag it (the canonical reference). Resolves to what was pulled;
 * rejects with a TsrunError naming the blob or layer that failed and why.
 */
export async function pullImage(store: ImageStore, ref: string | ImageReference, opts: PullOptions = {}): Promise<PullResult> {
  const r = typeof ref === 'string' ? parseReference(ref) : ref;
  const want =
    opts.platform === undefined ? hostPlatform() : typeof opts.platform === 'string' ? parsePlatform(opts.platform) : normalizePlatform(opts.platform);
  if (r.digest !== undefined && !r.digest.startsWith('sha256:')) {
    throw new TsrunError('ERR_UNSUPPORTED', `cannot pull ${r.canonical}: tsrun's store holds sha256 content only`);
  }
  store.init();
  const creds = opts.credentials ? { credentials: opts.credentials } : lookupCredentials(r.domain, { ...opts.credentialOptions, imageRoot: store.layout.root });
  const insecure = (opts.insecureRegistries ?? []).some((h) => {
    const k = h
      .trim()
      .toLowerCase()
      .replace(/^[a-z]+:\/\//, '')
      .replace(/\/.*$/, '');
    return k === r.domain.toLowerCase() || k === r.registryHost.toLowerCase();
  });
  const client = new RegistryClient(r, {
    credentials: creds.credentials,
    credentialNote: creds.note,
    insecure,
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
  });
  const controller = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  const emit = (e: PullProgress) => {
    try {
      opts.onProgress?.(e);
    } catch {
      /* a progress display must not break the pull */
    }
  };
  try {
    return await pull(
      { store, client, ref: r, emit, signal, layerAttempts: opts.layerAttempts ?? DEFAULT_LAYER_ATTEMPTS, layerCount: 0 },
      want,
      opts.platform !== undefined,
      opts.concurrency ?? DEFAULT_CONCURRENCY,
      () => controller.abort(new TsrunError('ERR_INVALID_STATE', 'cancelled: another layer failed')),
    );
  } catch (e) {
    throw wrap(e, `pull ${r.canonical}`);
  } finally {
    client.close();
  }
}

async function fetchDoc(ctx: Ctx, tagOrDigest: string, desc: Descriptor | undefined): Promise<FetchedDoc> {
  const { store, client, signal } = ctx;
  let digest = desc?.digest ?? (tagOrDigest.startsWith('sha256:') ? tagOrDigest : undefined);
  let headType: string | undefined;
  if (!digest) {
    // A tag: HEAD tells the digest without the body; a stored manifest is then not fetched.
    try {
      const h = await client.headManifest(tagOrDigest, { signal });
      digest = h.digest;
      headType = h.mediaType || undefined;
    } catch (e) {
      // Some registries answer HEAD badly (405, 400): GET will tell. Anything else is real.
      const s = e instanceof RegistryError ? e.status : 0;
      if (s === 0 || s === 401 || s === 403 || s === 404 || s === 429 || s >= 500) throw e;
    }
  }
  if (digest && store.hasBlob(digest)) {
    const bytes = store.readBlob(digest, MAX_MANIFEST_BYTES);
    return { bytes, digest, mediaType: desc?.mediaType ?? headType };
  }
  const got = await client.getManifest(digest ?? tagOrDigest, { signal });
  return { bytes: got.bytes, digest: got.digest, mediaType: desc?.mediaType ?? (got.mediaType || undefined) };
}

async function pull(ctx: Ctx, want: Platform, explicitPlatform: boolean, concurrency: number, abort: () => void): Promise<PullResult> {
  const { store, client, ref, emit, signal } = ctx;
  const toStore: FetchedDoc[] = [];

  // ---- 1. the manifest (through the index, if there is one) ----
  const top = await fetchDoc(ctx, ref.manifestRef, undefined);
  const topParsed = parseManifest(top.bytes, top.mediaType, `manifest ${ref.canonical}`);
  let manifest: ImageManifest;
  let manifestDoc: FetchedDoc;
  let platform: string | undefined;
  if (topParsed.kind === 'index') {
    const desc = selectPlatform(topParsed.index, want, `image index ${ref.canonical} (${top.digest})`);
    platform = formatPlatform(normalizePlatform(desc.platform!));
    manifestDoc = await fetchDoc(ctx, desc.digest, desc);
    if (manifestDoc.bytes.length !== desc.size) {
      throw new TsrunError('ERR_DIGEST_MISMATCH', `manifest ${desc.digest} is ${manifestDoc.bytes.length} bytes, the index says ${desc.size}`);
    }
    const p = parseManifest(manifestDoc.bytes, desc.mediaType, `manifest ${desc.digest} (${platform})`);
    if (p.kind !== 'manifest')
      throw new TsrunError('ERR_UNSUPPORTED', `manifest ${desc.digest} for ${platform} is itself an index: nested indexes are not supported`);
    manifest = p.manifest;
    toStore.push(manifestDoc, top);
  } else {
    manifest = topParsed.manifest;
    manifestDoc = top;
    toStore.push(top);
  }
  checkImageManifest(manifest, `manifest ${manifestDoc.digest}`);

  // ---- 2. the config ----
  const cd = manifest.config;
  const configBytes = store.hasBlob(cd.digest)
    ? store.readBlob(cd.digest, MAX_CONFIG_BYTES)
    : await client.getBlobBytes(cd.digest, { size: cd.size, maxSize: MAX_CONFIG_BYTES, signal }).catch((e: unknown) => {
        throw wrap(e, `config blob ${cd.digest}`);
      });
  if (configBytes.length !== cd.size)
    throw new TsrunError('ERR_DIGEST_MISMATCH', `config blob ${cd.digest} is ${configBytes.length} bytes, the manifest says ${cd.size}`);
  const config = parseImageConfig(configBytes, `image config ${cd.digest}`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new TsrunError(
      'ERR_INVALID_ARGUMENT',
      `image config ${cd.digest} lists ${config.rootfs.diff_ids.length} diff_ids for the manifest's ${manifest.layers.length} layers`,
    );
  }
  const cfgPlatform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  if (!platformMatches(want, cfgPlatform)) {
    const msg = `the image is for ${formatPlatform(normalizePlatform(cfgPlatform))}, not ${formatPlatform(want)}`;
    if (explicitPlatform && topParsed.kind === 'manifest') {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `${ref.canonical}: ${msg} (it is a single-platform image)`);
    }
    emit({ type: 'warning', message: `${ref.canonical}: ${msg}` });
  }

  // ---- 3. the layers ----
  const layers: PullLayerInfo[] = manifest.layers.map((l, index) => ({
    index,
    digest: l.digest,
    diffId: config.rootfs.diff_ids[index]!,
    size: l.size,
    mediaType: l.mediaType,
  }));
  ctx.layerCount = layers.length;
  emit({ type: 'resolved', ref: ref.canonical, digest: top.digest, manifestDigest: manifestDoc.digest, ...(platform ? { platform } : {}), layers });
  const unique = new Map<string, PullLayerInfo>();
  for (const l of layers) if (!unique.has(`${l.digest} ${l.diffId}`)) unique.set(`${l.digest} ${l.diffId}`, l);
  const metas = await pool([...unique.values()], Math.max(1, concurrency), signal, abort, (l) => pullLayer(ctx, l));
  const byKey = new Map([...unique.keys()].map((k, i) => [k, metas[i]!]));

  // ---- 4. config, manifest, index blobs; then the tag ----
  await storeBytes(store, cd.digest, configBytes);
  for (const d of toStore) await storeBytes(store, d.digest, d.bytes);
  const rec: TagRecord = { digest: top.digest, ...(platform ? { platform } : {}) };
  await store.setTagIfComplete(ref.canonical, rec, {
    blobs: [cd.digest, ...toStore.map((d) => d.digest), ...layers.map((l) => l.digest)],
    layers: layers.map((l) => l.diffId),
  });
  emit({ type: 'tagged', ref: ref.canonical, digest: top.digest });
  return {
    ref: ref.canonical,
    digest: top.digest,
    manifestDigest: manifestDoc.digest,
    configDigest: cd.digest,
    ...(platform ? { platform } : {}),
    config,
    layers: layers.map((l) => byKey.get(`${l.digest} ${l.diffId}`)!),
  };
}

async function storeBytes(store: ImageStore, digest: string, bytes: Buffer): Promise<void> {
  await store.putBlob(Readable.from([bytes]), { digest, size: bytes.length });
}

/** "1/3 (sha256:…)": unpackLayer says "layer <name>: …", and so does pull. */
function layerName(ctx: Ctx, l: PullLayerInfo): string {
  return `${l.index + 1}/${ctx.layerCount} (${l.digest})`;
}

/** Name the layer in an error, unless unpackLayer already did. */
function layerError(ctx: Ctx, l: PullLayerInfo, e: unknown): TsrunError {
  const name = `layer ${layerName(ctx, l)}`;
  if (e instanceof TsrunError && e.message.includes(name)) return e;
  return wrap(e, name);
}

async function pullLayer(ctx: Ctx, l: PullLayerInfo): Promise<LayerMeta> {
  const { store, emit, signal } = ctx;
  return serialized(`${store.layout.root}\0${l.diffId}`, async () => {
    if (store.hasLayer(l.diffId) && store.hasBlob(l.digest)) {
      store.markUsed([l.digest], [l.diffId]);
      emit({ type: 'skipped-exists', layer: l });
      return store.layerMeta(l.diffId);
    }
    emit({ type: 'started', layer: l });
    for (let attempt = 1; ; attempt++) {
      try {
        const meta = await layerOnce(ctx, l);
        emit({ type: 'done', layer: l, files: meta.files, unpackedSize: meta.size });
        return meta;
      } catch (e) {
        if (signal.aborted) throw e; // another layer failed first: its error is the one reported
        if (attempt >= ctx.layerAttempts || !isTransient(e)) throw layerError(ctx, l, e);
        emit({ type: 'retrying', layer: l, attempt, error: (e as Error).message });
        await sleep(Math.min(8000, 500 * 2 ** (attempt - 1)), signal);
      }
    }
  });
}

async function layerOnce(ctx: Ctx, l: PullLayerInfo): Promise<LayerMeta> {
  const { store } = ctx;
  if (store.hasLayer(l.diffId)) {
    await fetchBlobOnly(ctx, l);
    return store.layerMeta(l.diffId);
  }
  let ran = false;
  const meta = await store.ensureLayer(l.diffId, async (root) => {
    ran = true;
    return fetchAndUnpack(ctx, l, root);
  });
  if (!ran && !store.hasBlob(l.digest)) await fetchBlobOnly(ctx, l);
  return meta;
}

function bytesReporter(ctx: Ctx, l: PullLayerInfo): (total: number) => void {
  let last = 0;
  return (total) => {
    if (total - last >= BYTES_EVENT_STEP || total === l.size) {
      last = total;
      ctx.emit({ type: 'bytes', layer: l, bytes: total });
    }
  };
}

async function openBlob(ctx: Ctx, l: PullLayerInfo): Promise<Readable> {
  const { stream, size } = await ctx.client.blobStream(l.digest, { signal: ctx.signal });
  if (size !== undefined && size !== l.size) {
    stream.destroy();
    throw new TsrunError('ERR_DIGEST_MISMATCH', `the registry sends ${size} bytes for blob ${l.digest}, its descriptor says ${l.size}`);
  }
  const onAbort = () => stream.destroy(ctx.signal.reason as Error);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  stream.once('close', () => ctx.signal.removeEventListener('abort', onAbort));
  return stream;
}

/** The layer is unpacked but its compressed blob is missing: fetch and verify it alone. */
async function fetchBlobOnly(ctx: Ctx, l: PullLayerInfo): Promise<void> {
  const src = await openBlob(ctx, l);
  const report = bytesReporter(ctx, l);
  await ctx.store.putBlob(src, { digest: l.digest, size: l.size, onProgress: report });
}

async function fetchAndUnpack(ctx: Ctx, l: PullLayerInfo, root: string): Promise<LayerMeta> {
  const { store } = ctx;
  const report = bytesReporter(ctx, l);
  const name = layerName(ctx, l);

  if (store.hasBlob(l.digest)) {
    // The blob is here already (e.g. an earlier unpack failed): unpack from it.
    const file = createReadStream(store.blobPath(l.digest));
    try {
      const res = await unpackLayer(counting(file, report), l.mediaType, root, { layerName: name, expectedDiffId: l.diffId });
      return { diffId: res.diffId, compressedDigest: l.digest, size: res.size, files: res.files };
    } finally {
      file.destroy();
    }
  }

  const src = await openBlob(ctx, l);
  const tee = new Tee(src, report);
  const put = store.putBlob(tee.a, { digest: l.digest, size: l.size }).catch((e: unknown) => {
    tee.abort(e as Error);
    throw e;
  });
  const unpack = unpackLayer(tee.b, l.mediaType, root, { layerName: name, expectedDiffId: l.diffId }).then(
    (v: { diffId: string; size: number; files: number }) => {
      tee.detachB(); // whatever it did not read (trailing padding) still goes to the blob
      return v;
    },
    (e: unknown) => {
      // Keep feeding the blob writer: its digest check tells corruption in transit (the
      // real cause) from a layer that is intact but refused.
      tee.detachB();
      throw e;
    },
  );
  const [p, u] = await Promise.allSettled([put, unpack]);
  await tee.done;
  if (p.status === 'rejected') {
    throw p.reason;
  }
  if (u.status === 'rejected') {
    // The compressed blob verified but the layer did not unpack: do not keep it either.
    store.removeBlob(l.digest);
    throw u.reason;
  }
  return { diffId: u.value.diffId, compressedDigest: l.digest, size: u.value.size, files: u.value.files };
}
