// The content store: blobs by digest (verified while they stream in, renamed into place),
// tags, and unpacked layers shared by every image that uses them. Writers of the same digest
// serialise on a per-digest lock, so concurrent pulls of one image cannot corrupt it.
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { lazyRequire } from '../../util/lazy-require.js';

// node:crypto costs every CLI start a few milliseconds: loaded when a digest is first needed.
const crypto = () => lazyRequire<typeof import('node:crypto')>('node:crypto');
import { native } from '../../native/index.js';
import { isErrno, TsrunError, wrap } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';
import { digestHex, StoreLayout } from './layout.js';

const LOCK_TIMEOUT_MS = 10 * 60_000;

/**
 * Take the file lock without blocking the event loop: another process may hold it for a
 * whole layer unpack, and this one's other downloads must keep reading their sockets.
 */
async function lockAsync(path: string, name: string): Promise<number> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
    try {
      return native.lockFile(path, 0);
    } catch (e) {
      if (!isErrno(e, 'ETIMEDOUT') || Date.now() > deadline) {
        throw isErrno(e, 'ETIMEDOUT')
          ? new TsrunError('ERR_LOCK_TIMEOUT', `${name} in the image store is still locked by another tsrun after ${LOCK_TIMEOUT_MS / 60000} minutes`)
          : wrap(e, `lock ${name} in the image store`);
      }
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Per lock file: the tail of the queue of callers in this process. */
const inProcess = new Map<string, Promise<void>>();

export interface LayerMeta {
  diffId: string;
  compressedDigest?: string;
  /** Uncompressed tar size in bytes. */
  size: number;
  files: number;
}

export interface TagRecord {
  /** Digest of the manifest (or index) the tag points at. */
  digest: string;
  /** The platform chosen when the tag points at an index, e.g. "linux/amd64". */
  platform?: string;
}

export interface PutBlobOptions {
  digest: string;
  /** Expected size, when the descriptor gives it: a mismatch is an error. */
  size?: number;
  /** Refuse to store more than this many bytes (manifests and configs are small). */
  maxSize?: number;
  /** Called with the bytes written so far (progress bars). */
  onProgress?: (bytes: number) => void;
}

export class ImageStore {
  readonly layout: StoreLayout;

  constructor(root?: string) {
    this.layout = new StoreLayout(root);
  }

  /** Create the directories (0700 root: image contents may be private). */
  init(): void {
    if (this.initialised) return;
    const l = this.layout;
    for (const d of [l.root, join(l.root, 'blobs', 'sha256'), join(l.root, 'layers'), l.tmp(), l.locks(), join(l.root, 'containers')]) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
    }
    // Layers hold image files as they are (setuid binaries, device nodes): only root may reach
    // them, even when --root names a directory that already existed with a wider mode.
    chmodSync(l.root, 0o700);
    this.initialised = true;
  }
  private initialised = false;

  /**
   * Run fn holding the lock named `name` (a digest or "repositories"): a file lock against
   * other processes, behind an in-process queue (record locks never block callers in the same
   * process, and closing any fd of the file would drop the lock for all of them).
   */
  async withLock<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    this.init();
    const key = name.startsWith('sha256:') ? digestHex(name) : name.replace(/[^a-z0-9_-]/gi, '_');
    const path = join(this.layout.locks(), `${key}.lock`);
    const previous = inProcess.get(path) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    inProcess.set(path, tail);
    await previous;
    let fd: number | undefined;
    try {
      fd = await lockAsync(path, name);
      return await fn();
    } finally {
      if (fd !== undefined) native.close(fd);
      release();
      if (inProcess.get(path) === tail) inProcess.delete(path);
    }
  }

  /** tmp/<prefix>-<pid>-<random>: the pid lets prune tell a crashed writer's leftovers. */
  tmpPath(prefix: string): string {
    this.init();
    return join(this.layout.tmp(), `${prefix}-${process.pid}-${crypto().randomBytes(8).toString('hex')}`);
  }

  /** Mark a reused blob or layer as fresh, so a concurrent prune (10-minute rule) keeps it. */
  private touch(path: string): void {
    const now = new Date();
    try {
      utimesSync(path, now, now);
    } catch {
      /* removed meanwhile: the caller's next step notices */
    }
  }

  hasBlob(digest: string): boolean {
    return existsSync(this.layout.blob(digest));
  }

  blobPath(digest: string): string {
    return this.layout.blob(digest);
  }

  blobSize(digest: string): number {
    return statSync(this.layout.blob(digest)).size;
  }

  /**
   * Stream a blob in, hashing as it goes; only a blob whose digest (and size) match is
   * renamed into place. A blob already present is not written again.
   */
  async putBlob(src: AsyncIterable<Buffer> | Readable, o: PutBlobOptions): Promise<void> {
    const dest = this.layout.blob(o.digest);
    if (existsSync(dest)) {
      this.touch(dest);
      for await (const _ of src) void _; // drain: the caller may be sharing the stream
      return;
    }
    const tmp = this.tmpPath('blob');
    const fd = openSync(tmp, 'wx', 0o600);
    const hash = crypto().createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of src) {
        size += chunk.length;
        if (o.maxSize !== undefined && size > o.maxSize) {
          throw new TsrunError('ERR_DIGEST_MISMATCH', `blob ${o.digest} is larger than the ${o.maxSize} bytes allowed`);
        }
        if (o.size !== undefined && size > o.size) {
          throw new TsrunError('ERR_DIGEST_MISMATCH', `blob ${o.digest} is larger than its descriptor's ${o.size} bytes`);
        }
        hash.update(chunk);
        writeSync(fd, chunk);
        o.onProgress?.(size);
      }
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== o.digest) throw new TsrunError('ERR_DIGEST_MISMATCH', `blob digest mismatch: expected ${o.digest}, got ${got}`);
      if (o.size !== undefined && size !== o.size) {
        throw new TsrunError('ERR_DIGEST_MISMATCH', `blob ${o.digest} is ${size} bytes, its descriptor says ${o.size}`);
      }
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, dest);
    } catch (e) {
      try {
        closeSync(fd);
      } catch {
        /* closed */
      }
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Store bytes already in memory (manifests written by `load`, tests). */
  putBlobBytes(bytes: Buffer): string {
    const digest = `sha256:${crypto().createHash('sha256').update(bytes).digest('hex')}`;
    const dest = this.layout.blob(digest);
    if (!existsSync(dest)) {
      this.init();
      writeFileAtomic(dest, bytes, 0o600);
    } else this.touch(dest);
    return digest;
  }

  /** Read a stored blob, re-checking its digest (small blobs: manifests, configs). */
  readBlob(digest: string, maxSize = 4 * 1024 * 1024): Buffer {
    const path = this.layout.blob(digest);
    let buf: Buffer;
    try {
      if (statSync(path).size > maxSize) throw new TsrunError('ERR_INVALID_ARGUMENT', `blob ${digest} is larger than ${maxSize} bytes`);
      buf = readFileSync(path);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new TsrunError('ERR_INVALID_ARGUMENT', `blob ${digest} is not in the store`);
      throw e;
    }
    const got = `sha256:${crypto().createHash('sha256').update(buf).digest('hex')}`;
    if (got !== digest)
      throw new TsrunError('ERR_DIGEST_MISMATCH', `stored blob ${digest} is corrupt (hashes to ${got}): remove it with \`tsrun image prune\``);
    return buf;
  }

  readBlobJson<T>(digest: string, maxSize?: number): T {
    const buf = this.readBlob(digest, maxSize);
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (e) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `blob ${digest} is not valid JSON: ${(e as Error).message}`);
    }
  }

  removeBlob(digest: string): void {
    rmSync(this.layout.blob(digest), { force: true });
  }

  // ---- tags ----

  tags(): Record<string, TagRecord> {
    try {
      return JSON.parse(readFileSync(this.layout.repositories(), 'utf8')) as Record<string, TagRecord>;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return {};
      throw wrap(e, `read ${this.layout.repositories()}`);
    }
  }

  resolveTag(ref: string): TagRecord | undefined {
    return this.tags()[ref];
  }

  async setTag(ref: string, rec: TagRecord): Promise<void> {
    await this.withLock('repositories', () => {
      const all = this.tags();
      all[ref] = rec;
      writeFileAtomic(this.layout.repositories(), JSON.stringify(all, null, 2), 0o600);
    });
  }

  /**
   * Tag an image only if every blob and layer it needs is still here, checked under the lock
   * prune sweeps under: a concurrent prune cannot leave a tag pointing at removed content.
   */
  async setTagIfComplete(ref: string, rec: TagRecord, need: { blobs: string[]; layers: string[] }): Promise<void> {
    await this.withLock('repositories', () => {
      const gone = [...need.blobs.filter((d) => !this.hasBlob(d)), ...need.layers.filter((d) => !this.hasLayer(d))];
      if (gone.length)
        throw new TsrunError('ERR_INVALID_STATE', `${gone.join(', ')} disappeared before ${ref} was tagged (a concurrent image prune?): pull again`);
      const all = this.tags();
      all[ref] = rec;
      writeFileAtomic(this.layout.repositories(), JSON.stringify(all, null, 2), 0o600);
    });
  }

  /** A reused blob or layer counts as fresh for prune's 10-minute rule. */
  markUsed(blobs: string[], layers: string[]): void {
    for (const d of blobs) this.touch(this.layout.blob(d));
    for (const d of layers) this.touch(this.layout.layerDir(d));
  }

  async removeTag(ref: string): Promise<boolean> {
    return this.withLock('repositories', () => {
      const all = this.tags();
      if (!(ref in all)) return false;
      delete all[ref];
      writeFileAtomic(this.layout.repositories(), JSON.stringify(all, null, 2), 0o600);
      return true;
    });
  }

  // ---- layers ----

  hasLayer(diffId: string): boolean {
    return existsSync(this.layout.layerMeta(diffId));
  }

  layerMeta(diffId: string): LayerMeta {
    return JSON.parse(readFileSync(this.layout.layerMeta(diffId), 'utf8')) as LayerMeta;
  }

  /**
   * Make sure the layer `diffId` is unpacked, exactly once. `unpack` fills an empty directory
   * and returns what it verified; on any failure the directory is removed, so a layer is
   * either complete (layer.json present) or absent.
   */
  async ensureLayer(diffId: string, unpack: (root: string) => Promise<Omit<LayerMeta, 'diffId'> & { diffId: string }>): Promise<LayerMeta> {
    digestHex(diffId);
    return this.withLock(diffId, async () => {
      if (this.hasLayer(diffId)) {
        this.touch(this.layout.layerDir(diffId));
        return this.layerMeta(diffId);
      }
      const tmp = this.tmpPath('layer');
      const root = join(tmp, 'root');
      mkdirSync(root, { recursive: true, mode: 0o755 });
      try {
        const got = await unpack(root);
        if (got.diffId !== diffId)
          throw new TsrunError('ERR_DIGEST_MISMATCH', `layer diff_id mismatch: the config says ${diffId}, the content hashes to ${got.diffId}`);
        const meta: LayerMeta = { ...got, diffId };
        writeFileAtomic(join(tmp, 'layer.json'), JSON.stringify(meta), 0o644);
        const dest = this.layout.layerDir(diffId);
        rmSync(dest, { recursive: true, force: true }); // an incomplete leftover (no layer.json)
        renameSync(tmp, dest);
        return meta;
      } catch (e) {
        rmSync(tmp, { recursive: true, force: true });
        throw e;
      }
    });
  }

  removeLayer(diffId: string): void {
    rmSync(this.layout.layerDir(diffId), { recursive: true, force: true });
  }
}
