// Unpack one OCI/Docker layer into an empty directory, safely and fast.
//
//   src (compressed) ─▶ gunzip | fzstd | as-is ─▶ sha256 (the diff_id) ─▶ tar-stream ─▶ decide() ─▶ native applyEntry
//
// Every filesystem change goes through the addon's fd-based in-root calls on ONE root fd
// (native/fs_inroot.cc); no path-string fs.* call ever touches the layer. File data is
// written with fs.writeSync on the fd the addon returns. The compressed digest is NOT
// computed here: the caller hashes the compressed stream where it tees it into the blob
// store. On any failure the source is destroyed, every stream is torn down, and the
// promise rejects once; the caller (ImageStore.ensureLayer) removes the directory.
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { extract as tarExtract, type ExtractEvents, type Header } from 'tar-stream';
import type { InRootEntry } from '../../native/fs-inroot-binding.js';
import { native } from '../../native/index.js';
import { TsrunError } from '../../util/errors.js';
import { decide, LayerBudget, parsePaxRecords, resolveLimits, type LayerLimits, type TarHeader } from './entry-policy.js';

export interface UnpackOptions {
  /** How errors name the layer, e.g. "docker.io/library/alpine:3.20 layer 1/3 (sha256:…)". */
  layerName: string;
  /** The config's rootfs.diff_ids entry: a mismatch fails with ERR_DIGEST_MISMATCH. */
  expectedDiffId?: string;
  limits?: Partial<LayerLimits>;
  /** Called with the running total of compressed bytes read from `src`. */
  onProgress?: (compressedBytes: number) => void;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream, "sha256:<hex>". */
  diffId: string;
  /** Uncompressed tar bytes. */
  size: number;
  /** Tar entries applied (skipped entries, such as the root "./", are not counted). */
  files: number;
}

export type LayerCompression = 'none' | 'gzip' | 'zstd';

const MEDIA_TYPES: Readonly<Record<string, LayerCompression>> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

/** The compression a layer media type implies, or ERR_UNSUPPORTED. */
export function layerCompression(mediaType: string, layerName = 'layer'): LayerCompression {
  const c = MEDIA_TYPES[mediaType];
  if (!c) throw new TsrunError('ERR_UNSUPPORTED', `layer ${layerName}: unsupported layer media type "${mediaType}"`);
  return c;
}

// Decompressed chunks: big enough that most files arrive in one piece (one write(2)).
const CHUNK = 1 << 20;
// Environmental failures are not the layer's fault: they stay ERR_SYSCALL.
const ENV_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'ENOMEM', 'EROFS', 'EFBIG']);
const RAW_PAX = Symbol('tsrun.paxRecords');

type EntrySource = ExtractEvents['entry'][1];
type EntryNext = ExtractEvents['entry'][2];

/**
 * Unpack `src` (a layer blob of `mediaType`) into the empty directory `root`, enforcing the
 * entry policy, and return its diff_id (sha256 of the uncompressed tar), size and entry
 * count. Rejections are ERR_LAYER_REJECTED `layer <name>: entry "<path>": <reason>`.
 */
export async function unpackLayer(src: Readable, mediaType: string, root: string, opts: UnpackOptions): Promise<UnpackResult> {
  let limits: LayerLimits;
  let compression: LayerCompression;
  let rootFd: number;
  try {
    limits = resolveLimits(opts.limits);
    compression = layerCompression(mediaType, opts.layerName);
    rootFd = native.openRoot(root);
  } catch (e) {
    src.destroy();
    if (e instanceof TsrunError) throw e;
    throw systemError(e, `unpack layer ${opts.layerName}: open ${root}`);
  }
  return new Promise<UnpackResult>((resolve, reject) => {
    const u = new LayerUnpacker(src, compression, rootFd, limits, opts, resolve, reject);
    try {
      u.start();
    } catch (e) {
      u.abort(e);
    }
  });
}

class LayerUnpacker {
  private readonly hash = createHash('sha256');
  private readonly budget: LayerBudget;
  private readonly extract = tarExtract({ highWaterMark: 4 * CHUNK });
  private readonly decomp: Transform | undefined;
  /** What tar-stream reads from: the decompressor, or the source itself. */
  private readonly plain: Readable;
  private readonly dirTimes = new Map<string, number>();
  private settled = false;
  private srcEnded = false;
  private compressed = 0;
  private files = 0;
  private curFd = -1;
  private curName: string | undefined;

  constructor(
    private readonly src: Readable,
    compression: LayerCompression,
    private readonly rootFd: number,
    private readonly limits: LayerLimits,
    private readonly opts: UnpackOptions,
    private readonly resolve: (r: UnpackResult) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.budget = new LayerBudget(limits);
    this.decomp =
      compression === 'gzip' ? createGunzip({ chunkSize: CHUNK }) : compression === 'zstd' ? new ZstdDecompress(limits.maxZstdWindowBytes) : undefined;
    this.plain = this.decomp ?? src;
  }

  start(): void {
    const { src, decomp, plain, extract } = this;
    hookLongHeaders(extract, this.limits, (name, reason) => this.rejection(name, reason));
    extract.on('entry', (h, stream, next) => this.onEntry(h, stream, next));
    extract.on('error', (e: unknown) => this.fail(this.contentError(e, 'malformed tar')));
    extract.on('drain', () => plain.resume());
    extract.on('finish', () => this.finish());

    src.on('error', (e: unknown) => this.fail(e instanceof TsrunError ? e : systemError(e, `unpack layer ${this.opts.layerName}: read`)));
    src.on('end', () => {
      this.srcEnded = true;
    });
    src.on('close', () => {
      if (!this.srcEnded) this.fail(new TsrunError('ERR_LAYER_REJECTED', `layer ${this.opts.layerName}: the layer stream closed before its end`));
    });
    if (decomp) {
      const kind = decomp instanceof ZstdDecompress ? 'zstd' : 'gzip';
      decomp.on('error', (e: unknown) => this.fail(this.contentError(e, `corrupt ${kind} data`)));
      decomp.on('drain', () => src.resume());
      src.on('data', (c: Buffer) => {
        if (this.settled) return;
        this.progress(c.length);
        if (!this.settled && !decomp.write(c)) src.pause();
      });
      src.on('end', () => decomp.end());
    }
    plain.on('data', (c: Buffer) => this.onPlain(c));
    plain.on('end', () => {
      if (!this.settled) extract.end(undefined);
    });
  }

  private progress(n: number): void {
    this.compressed += n;
    if (!this.opts.onProgress) return;
    try {
      this.opts.onProgress(this.compressed);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Uncompressed bytes: hashed (diff_id), counted, handed to tar-stream. */
  private onPlain(c: Buffer): void {
    if (this.settled) return;
    if (!this.decomp) {
      this.progress(c.length);
      if (this.settled) return;
    }
    this.hash.update(c);
    const over = this.budget.admitBytes(c.length);
    if (over) return this.fail(new TsrunError('ERR_LAYER_REJECTED', `layer ${this.opts.layerName}: ${over}`));
    if (!this.extract.write(c)) this.plain.pause();
  }

  private onEntry(h: Header, stream: EntrySource, next: EntryNext): void {
    // Never let an entry stream's 'error' go unhandled; failures arrive through extract too.
    stream.on('error', () => {});
    if (this.settled) return;
    const name = typeof h.name === 'string' ? h.name : '';
    this.curName = name;
    const advance = () => {
      if (this.settled) return;
      try {
        next();
      } catch (e) {
        this.fail(this.contentError(e, 'malformed tar'));
      }
    };
    // tar-stream unlocks the next header synchronously when called back synchronously,
    // which recurses once per entry; a microtask keeps the stack flat.
    const proceed = () => queueMicrotask(advance);
    try {
      const full = this.budget.admitEntry(name);
      if (full) return this.fail(this.rejection(full.path, full.reason));
      const header: TarHeader = { ...(h as TarHeader), paxRecords: (h as { pax?: { [RAW_PAX]?: Map<string, Buffer> } | null }).pax?.[RAW_PAX] };
      const d = decide(header, this.limits);
      if (d.kind === 'reject') return this.fail(this.rejection(d.path, d.reason));
      if (d.kind === 'skip' || d.entry.type !== 'file') {
        if (d.kind === 'apply') {
          native.applyEntry(this.rootFd, d.entry);
          this.files++;
          if (d.entry.type === 'dir') this.dirTimes.set(d.entry.path, d.entry.mtimeSec);
        }
        if (d.size === 0) return proceed();
        stream.on('end', advance);
        stream.resume();
        return;
      }
      const entry = d.entry;
      const fd = native.applyEntry(this.rootFd, entry);
      this.curFd = fd;
      if (d.size === 0) {
        this.finishFile(fd, entry);
        return proceed();
      }
      stream.on('data', (data: unknown) => {
        if (this.settled) return;
        const chunk = data as Buffer;
        try {
          let off = 0;
          while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        } catch (e) {
          this.fail(this.entryError(e, name));
        }
      });
      stream.on('end', () => {
        if (this.settled) return;
        try {
          this.finishFile(fd, entry);
        } catch (e) {
          return this.fail(this.entryError(e, name));
        }
        advance();
      });
    } catch (e) {
      this.fail(this.entryError(e, name));
    }
  }

  private finishFile(fd: number, entry: InRootEntry): void {
    this.curFd = -1; // finishFile closes it, success or not
    native.finishFile(fd, entry);
    this.files++;
  }

  private finish(): void {
    if (this.settled) return;
    try {
      if (this.dirTimes.size > 0) native.finishDirs(this.rootFd, [...this.dirTimes.keys()], [...this.dirTimes.values()]);
    } catch (e) {
      return this.fail(systemError(e, `unpack layer ${this.opts.layerName}: set directory times`));
    }
    const diffId = `sha256:${this.hash.digest('hex')}`;
    const expected = this.opts.expectedDiffId;
    if (expected !== undefined && expected !== diffId) {
      return this.fail(
        new TsrunError('ERR_DIGEST_MISMATCH', `layer ${this.opts.layerName}: diff_id mismatch: expected ${expected}, the content hashes to ${diffId}`),
      );
    }
    this.settled = true;
    this.closeFds();
    this.resolve({ diffId, size: this.budget.bytes, files: this.files });
  }

  abort(err: unknown): void {
    this.fail(err);
  }

  private fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.closeFds();
    this.src.destroy();
    this.decomp?.destroy();
    this.extract.destroy();
    this.reject(err);
  }

  private closeFds(): void {
    for (const fd of [this.curFd, this.rootFd]) {
      if (fd < 0) continue;
      try {
        native.closeFd(fd);
      } catch {
        /* already closed */
      }
    }
    this.curFd = -1;
  }

  private rejection(name: string, reason: string): TsrunError {
    return new TsrunError('ERR_LAYER_REJECTED', `layer ${this.opts.layerName}: entry "${name}": ${reason}`);
  }

  /** A decompressor or tar-stream failure: the layer's bytes are at fault. */
  private contentError(e: unknown, what: string): TsrunError {
    if (e instanceof TsrunError) return e;
    const msg = (e as Error | undefined)?.message ?? String(e);
    const at = this.curName === undefined ? '' : ` (after entry "${this.curName}")`;
    return new TsrunError('ERR_LAYER_REJECTED', `layer ${this.opts.layerName}: ${what}${at}: ${msg}`, { cause: e });
  }

  /** A native or fs failure while applying an entry. */
  private entryError(e: unknown, name: string): TsrunError {
    if (e instanceof TsrunError) return e;
    const se = e as NodeJS.ErrnoException;
    const msg = se?.message ?? String(e);
    const fields = {
      cause: e,
      ...(typeof se?.errno === 'number' ? { errno: Math.abs(se.errno) } : {}),
      ...(se?.syscall ? { syscall: se.syscall } : {}),
      ...(se?.path ? { path: se.path } : {}),
    };
    if (se?.code && ENV_ERRNOS.has(se.code)) return new TsrunError('ERR_SYSCALL', `unpack layer ${this.opts.layerName}: entry "${name}": ${msg}`, fields);
    return new TsrunError('ERR_LAYER_REJECTED', `layer ${this.opts.layerName}: entry "${name}": ${msg}`, fields);
  }
}

function systemError(e: unknown, context: string): TsrunError {
  if (e instanceof TsrunError) return e;
  const se = e as NodeJS.ErrnoException;
  return new TsrunError('ERR_SYSCALL', `${context}: ${se?.message ?? String(e)}`, {
    cause: e,
    ...(typeof se?.errno === 'number' ? { errno: Math.abs(se.errno) } : {}),
    ...(se?.syscall ? { syscall: se.syscall } : {}),
    ...(se?.path ? { path: se.path } : {}),
  });
}

// tar-stream 3.2.2 internals this module relies on (the version is pinned exactly).
interface ExtractInternals {
  _decodeLongHeader: (this: ExtractInternals, buf: Buffer) => void;
  _header: { name: string; type: string | null } | null;
  _pax: (Record<string, string> & { [RAW_PAX]?: Map<string, Buffer> }) | null;
}

/**
 * Wrap tar-stream's long-header decoder (PAX, PAX global, GNU long name/link):
 * - cap the header at limits.maxPaxHeaderBytes (tar-stream allows 4 MiB);
 * - parse PAX records strictly, keeping values as bytes (binary xattrs) for the policy;
 * - ignore PAX global headers entirely (as moby/go-archive does), so a global `path`,
 *   `linkpath` or `size` can never rewrite later entries.
 * A throw here becomes tar-stream's stream error, which carries our TsrunError through.
 */
function hookLongHeaders(ex: unknown, limits: LayerLimits, rejection: (name: string, reason: string) => TsrunError): void {
  const x = ex as ExtractInternals;
  const orig = x._decodeLongHeader;
  if (typeof orig !== 'function' || !('_header' in x) || !('_pax' in x)) {
    throw new TsrunError('ERR_UNSUPPORTED', 'tar-stream internals changed (expected 3.2.x): layer unpacking must be re-checked');
  }
  x._decodeLongHeader = function (this: ExtractInternals, buf: Buffer): void {
    const h = this._header;
    const name = h?.name ?? '';
    if (buf.length > limits.maxPaxHeaderBytes)
      throw rejection(name, `${h?.type ?? 'long'} header of ${buf.length} bytes exceeds the ${limits.maxPaxHeaderBytes}-byte limit`);
    if (h?.type === 'pax-global-header') return;
    if (h?.type !== 'pax-header') return orig.call(this, buf);
    const recs = parsePaxRecords(buf);
    if (typeof recs === 'string') throw rejection(name, recs);
    orig.call(this, buf);
    if (this._pax) this._pax[RAW_PAX] = recs;
  };
}

// ---- zstd ----

/** fzstd's streaming decoder as a Transform, behind a frame scanner that bounds the window. */
class ZstdDecompress extends Transform {
  private readonly scanner: ZstdFrameScanner;
  private readonly dec: Decompress;

  constructor(maxWindow: number) {
    super({ readableHighWaterMark: CHUNK });
    this.scanner = new ZstdFrameScanner(maxWindow);
    this.dec = new Decompress((chunk) => {
      if (chunk.length > 0) this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.scanner.feed(chunk);
      this.dec.push(chunk);
    } catch (e) {
      return cb(e as Error);
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.scanner.end();
      this.dec.push(new Uint8Array(0), true);
    } catch (e) {
      return cb(e as Error);
    }
    cb();
  }
}

/**
 * Walks zstd frame and block headers (RFC 8878) ahead of the decoder, refusing a frame whose
 * window (the buffer fzstd allocates, up to 2 GiB, and memmoves per block) exceeds the
 * limit, and reserved block types. Data is skipped, never copied.
 */
class ZstdFrameScanner {
  private hdr: number[] = [];
  /** What the next bytes are. */
  private state: 'magic' | 'skipsize' | 'skip' | 'fhd' | 'fheader' | 'bheader' | 'bdata' | 'checksum' = 'magic';
  private need = 4;
  private skip = 0;
  private lastBlock = false;
  private checksum = false;

  constructor(private readonly maxWindow: number) {}

  feed(buf: Buffer): void {
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'skip' || this.state === 'bdata') {
        const n = Math.min(this.skip, buf.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0) this.afterData();
        continue;
      }
      this.hdr.push(buf[i++]!);
      if (this.hdr.length === this.need) this.onHeader();
    }
  }

  end(): void {
    if (!(this.state === 'magic' && this.hdr.length === 0)) throw new Error('zstd: unexpected end of data');
  }

  private expect(state: ZstdFrameScanner['state'], need: number): void {
    this.state = state;
    this.need = need;
    this.hdr = [];
  }

  private afterData(): void {
    if (this.state === 'skip') return this.expect('magic', 4);
    if (!this.lastBlock) return this.expect('bheader', 3);
    return this.checksum ? this.expect('checksum', 4) : this.expect('magic', 4);
  }

  private onHeader(): void {
    const b = this.hdr;
    switch (this.state) {
      case 'magic': {
        const magic = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
        if (magic === 0xfd2fb528) return this.expect('fhd', 1);
        if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) return this.expect('skipsize', 4);
        throw new Error('zstd: bad frame magic');
      }
      case 'skipsize': {
        this.skip = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
        this.state = 'skip';
        this.hdr = [];
        if (this.skip === 0) this.afterData();
        return;
      }
      case 'fhd': {
        const fhd = b[0]!;
        if (fhd & 0x08) throw new Error('zstd: reserved frame header bit set');
        const single = (fhd >> 5) & 1;
        const fcsFlag = fhd >> 6;
        const didBytes = [0, 1, 2, 4][fhd & 3]!;
        const fcsBytes = fcsFlag === 0 ? single : 1 << fcsFlag;
        this.checksum = ((fhd >> 2) & 1) === 1;
        this.need = 1 + (single ? 0 : 1) + didBytes + fcsBytes;
        this.state = 'fheader';
        return;
      }
      case 'fheader': {
        const fhd = b[0]!;
        const single = (fhd >> 5) & 1;
        const didBytes = [0, 1, 2, 4][fhd & 3]!;
        let window: number;
        if (single) {
          const off = 1 + didBytes;
          let fcs = 0;
          for (let k = b.length - 1; k >= off; k--) fcs = fcs * 256 + b[k]!;
          if (b.length - off === 2) fcs += 256;
          window = fcs;
        } else {
          const wd = b[1]!;
          const base = 2 ** (10 + (wd >> 3));
          window = base + (base / 8) * (wd & 7);
        }
        if (window > this.maxWindow) throw new Error(`zstd: frame window of ${window} bytes exceeds the ${this.maxWindow}-byte limit`);
        this.lastBlock = false;
        return this.expect('bheader', 3);
      }
      case 'bheader': {
        const v = b[0]! | (b[1]! << 8) | (b[2]! << 16);
        this.lastBlock = (v & 1) === 1;
        const type = (v >> 1) & 3;
        const size = v >>> 3;
        if (type === 3) throw new Error('zstd: reserved block type');
        this.skip = type === 1 ? 1 : size;
        this.state = 'bdata';
        this.hdr = [];
        if (this.skip === 0) this.afterData();
        return;
      }
      case 'checksum':
        return this.expect('magic', 4);
      default:
        return;
    }
  }
}
