// Reading image archives without extracting them: an OCI layout directory, or a tar (possibly
// gzip-compressed) holding an OCI layout or a `docker save` archive. A tar is read twice:
// a scan that validates every member (names, types, sizes, duplicates), keeps the small JSON
// members in memory and hashes compressed members whose digest is not in their name; then,
// once the caller knows which blobs it needs, a copy pass that streams exactly those into the
// store (verified by putBlob). Nothing touches the store until the whole archive has passed
// the scan.
//
// The archive is hostile and may change under us: every file is opened exactly once
// (O_NOFOLLOW|O_NONBLOCK for a layout's members, so a symlink is refused and a FIFO cannot
// block the open), must be a regular file by fstat, and is read only through that descriptor,
// at explicit offsets, never by path again. A file swapped after it was opened changes nothing.
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, read as fsRead, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { isErrno, TsrunError, wrap } from '../../util/errors.js';
import { digestHex } from '../store/layout.js';
import type { ImageStore } from '../store/store.js';

export type ArchiveFormat = 'oci-dir' | 'oci-archive' | 'docker-archive';

/** Largest JSON member (index.json, manifest.json, manifests, configs) held in memory. */
export const MAX_METADATA_SIZE = 4 * 1024 * 1024;
/** All JSON members of one archive together. */
export const MAX_METADATA_TOTAL = 64 * 1024 * 1024;
/** Largest member of any kind, unless the caller says otherwise. */
export const DEFAULT_MAX_MEMBER_SIZE = 64 * 1024 * 1024 * 1024;

/** The metadata files of both formats: always held in memory, so always size-limited. */
const METADATA_NAMES = new Set(['oci-layout', 'index.json', 'manifest.json', 'repositories']);

export type Magic = 'gzip' | 'zstd' | 'json' | 'other';

export interface MemberInfo {
  /** The regular member this name resolves to (through symlinks and hard links). */
  name: string;
  size: number;
  magic: Magic;
  /** sha256 of the member's bytes, when the scan computed it. */
  digest?: string;
  /** The bytes of a small JSON member. */
  data?: Buffer;
}

export interface BlobWant {
  digest: string;
  size: number;
}

export interface ArchiveReader {
  readonly format: ArchiveFormat;
  readonly path: string;
  /** The regular member `name` resolves to, or undefined when the archive has no such member. */
  member(name: string): MemberInfo | undefined;
  /** A small member's bytes (at most MAX_METADATA_SIZE), or undefined when absent. */
  small(name: string, what: string): Buffer | undefined;
  /** Store the members named in `wants` (member name -> digest), each verified by putBlob. */
  copy(store: ImageStore, wants: Map<string, BlobWant>): Promise<void>;
  /** Close every descriptor the reader holds (idempotent). */
  close(): void;
}

export interface OpenArchiveOptions {
  maxMemberSize?: number;
}

function rejected(path: string, why: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `archive ${path}: ${why}`);
}

function sniff(b: Buffer): Magic {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  for (const c of b) {
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    return c === 0x7b /* { */ || c === 0x5b /* [ */ ? 'json' : 'other';
  }
  return 'other';
}

/** A member name in canonical form ("" for the archive root), or an error when it could escape. */
export function memberName(path: string, raw: string): string {
  if (raw.includes('\0')) throw rejected(path, `member name ${JSON.stringify(raw)} contains a NUL byte`);
  if (raw.startsWith('/')) throw rejected(path, `member "${raw}" has an absolute path`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw rejected(path, `member "${raw}" escapes the archive (contains "..")`);
  return parts.join('/');
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Blob member names carry their digest: blobs/sha256/<hex>. */
export function blobMemberDigest(name: string): string | undefined {
  const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
  return m ? `sha256:${m[1]}` : undefined;
}

async function* fromBuffer(b: Buffer): AsyncIterable<Buffer> {
  yield b;
}

// Node does not export O_CLOEXEC; libuv adds it to every open() anyway.
const O_CLOEXEC = (constants as { O_CLOEXEC?: number }).O_CLOEXEC ?? 0;
/** A layout's member: never through a symlink, never waiting for a FIFO's writer, never a controlling tty. */
const OPEN_MEMBER = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY | O_CLOEXEC;
/** The archive or layout directory the user named: a symlink to it is fine, a FIFO must not block. */
const OPEN_ARCHIVE = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | O_CLOEXEC;

const NOT_REGULAR_HINT =
  'an OCI layout holds its blobs and metadata as regular files, not symlinks, FIFOs or devices: export the image again (`tsrun save --format oci-dir`, `skopeo copy ... oci:DIR`) and load that';

/** What a non-regular file is, for messages. */
function fileKind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'an unknown kind of file';
}

function safeClose(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

/**
 * The first `size` bytes of `fd` (pread: the file offset is never used), and whether the file
 * still holds exactly that many: it may have been truncated or grown since its fstat.
 */
function readAll(fd: number, size: number): { data: Buffer; exact: boolean } {
  const buf = Buffer.alloc(size + 1); // one byte more, to notice a file that grew
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, got);
    if (n === 0) break;
    got += n;
  }
  return { data: buf.subarray(0, Math.min(got, size)), exact: got === size };
}

/**
 * A stream of the first `size` bytes of `fd`, read at explicit offsets. It owns `fd`: destroying
 * it (or reading it to the end) closes it, once no read is in flight.
 */
function streamFd(path: string, fd: number, size: number): Readable {
  if (size === 0) {
    safeClose(fd);
    return Readable.from([]);
  }
  return createReadStream(path, { fd, start: 0, end: size - 1, autoClose: true });
}

// ---------------------------------------------------------------- OCI layout directory

class DirReader implements ArchiveReader {
  readonly format = 'oci-dir' as const;
  private readonly cache = new Map<string, MemberInfo | undefined>();
  /** Open descriptors of members whose bytes are not in memory yet. */
  private readonly fds = new Map<string, number>();

  constructor(
    readonly path: string,
    private readonly maxMemberSize: number,
  ) {}

  private file(name: string): string {
    // Only constant names and blobs/sha256/<validated hex> reach here.
    const d = blobMemberDigest(name);
    if (d) return join(this.path, 'blobs', 'sha256', digestHex(d));
    if (!METADATA_NAMES.has(name)) throw rejected(this.path, `unexpected member "${name}"`);
    return join(this.path, name);
  }

  private label(name: string): string {
    const d = blobMemberDigest(name);
    return d ? `blob ${d} (${name})` : name;
  }

  private notRegular(name: string, p: string, kind: string): TsrunError {
    return new TsrunError('ERR_INVALID_ARGUMENT', `archive ${this.path}: ${this.label(name)} is ${kind}, not a regular file`, {
      path: p,
      hint: NOT_REGULAR_HINT,
    });
  }

  /** The member opened once (no symlinks, no blocking) and checked by fstat; its fd is kept. */
  member(name: string): MemberInfo | undefined {
    if (this.cache.has(name)) return this.cache.get(name);
    const p = this.file(name);
    let fd: number;
    try {
      fd = openSync(p, OPEN_MEMBER);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) {
        this.cache.set(name, undefined);
        return undefined;
      }
      if (isErrno(e, 'ELOOP') || isErrno(e, 'ENXIO')) {
        // a symlink (O_NOFOLLOW), or a socket / a device without a driver: say which
        let kind = isErrno(e, 'ELOOP') ? 'a symbolic link' : 'a socket or an unavailable device';
        try {
          kind = fileKind(lstatSync(p));
        } catch {
          /* keep the errno's reading */
        }
        throw this.notRegular(name, p, kind);
      }
      throw wrap(e, `archive ${this.path}: open ${this.label(name)}`);
    }
    let info: MemberInfo;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw this.notRegular(name, p, fileKind(st));
      if (st.size > this.maxMemberSize) throw rejected(this.path, `${this.label(name)} is ${st.size} bytes, more than the ${this.maxMemberSize} allowed`);
      const head = Buffer.alloc(4);
      const n = readSync(fd, head, 0, 4, 0);
      info = { name, size: st.size, magic: sniff(head.subarray(0, n)) };
    } catch (e) {
      safeClose(fd);
      throw e instanceof TsrunError ? e : wrap(e, `archive ${this.path}: read ${this.label(name)}`);
    }
    this.fds.set(name, fd);
    this.cache.set(name, info);
    return info;
  }

  /** Take over the member's descriptor (undefined when its bytes are already in memory). */
  private takeFd(name: string): number | undefined {
    const fd = this.fds.get(name);
    this.fds.delete(name);
    return fd;
  }

  small(name: string, what: string): Buffer | undefined {
    const m = this.member(name);
    if (!m) return undefined;
    if (m.data) return m.data;
    if (m.size > MAX_METADATA_SIZE) throw rejected(this.path, `${what} ${this.label(name)} is ${m.size} bytes, more than the ${MAX_METADATA_SIZE} allowed`);
    const fd = this.takeFd(name);
    if (fd === undefined) throw rejected(this.path, `${this.label(name)} was already read`);
    let r: ReturnType<typeof readAll>;
    try {
      r = readAll(fd, m.size);
    } catch (e) {
      throw wrap(e, `archive ${this.path}: read ${what} ${this.label(name)}`);
    } finally {
      safeClose(fd);
    }
    if (!r.exact)
      throw rejected(this.path, `${what} ${this.label(name)} changed while it was read (it was ${m.size} bytes when opened): load it again, unchanged`);
    m.data = r.data;
    return m.data;
  }

  async copy(store: ImageStore, wants: Map<string, BlobWant>): Promise<void> {
    for (const [name, w] of wants) {
      const m = this.member(name);
      if (!m) throw rejected(this.path, `${name} is missing`);
      let src: AsyncIterable<Buffer> | Readable;
      if (m.data) src = fromBuffer(m.data);
      else {
        const fd = this.takeFd(name);
        if (fd === undefined) throw rejected(this.path, `${this.label(name)} was already read`);
        src = streamFd(this.file(name), fd, m.size);
      }
      try {
        await store.putBlob(src, { digest: w.digest, size: w.size });
      } catch (e) {
        throw wrap(e, `archive ${this.path}: store ${name}`);
      } finally {
        if (src instanceof Readable) src.destroy(); // closes the fd (a no-op once it has ended)
      }
    }
  }

  close(): void {
    for (const fd of this.fds.values()) safeClose(fd);
    this.fds.clear();
  }
}

// ---------------------------------------------------------------- tar

/** A tar-stream entry (a streamx Readable of Buffers). */
type TarEntry = AsyncIterable<Buffer> & { header: tar.Header };

interface TarMember {
  type: 'file' | 'directory' | 'symlink' | 'link';
  size: number;
  link?: string;
  magic: Magic;
  digest?: string;
  data?: Buffer;
}

/**
 * A stream of `fd` from offset 0 that never closes it (the reader owns it and reads it twice).
 * It reports 'close' only once no read of `fd` is in flight, so `fd` may then be closed.
 */
function borrowFd(fd: number): Readable {
  let pos = 0;
  let reading = false;
  let afterRead: (() => void) | undefined;
  return new Readable({
    highWaterMark: 64 * 1024,
    read(n) {
      const buf = Buffer.allocUnsafe(Math.max(n, 64 * 1024));
      reading = true;
      fsRead(fd, buf, 0, buf.length, pos, (err, got) => {
        reading = false;
        if (afterRead) return afterRead();
        if (err) return this.destroy(err);
        if (!got) return this.push(null);
        pos += got;
        this.push(buf.subarray(0, got));
      });
    },
    destroy(err, cb) {
      if (reading) afterRead = () => cb(err);
      else cb(err);
    },
  });
}

/**
 * The tar's members in order, decompressing a gzip-compressed archive on the fly. Read from
 * `fd` (the archive opened once) at offsets from 0, so both passes see the same file.
 */
async function* tarEntries(path: string, fd: number): AsyncGenerator<TarEntry> {
  const head = Buffer.alloc(4);
  let n: number;
  try {
    n = readSync(fd, head, 0, 4, 0);
  } catch (e) {
    throw wrap(e, `archive ${path}: read`);
  }
  const magic = sniff(head.subarray(0, n));
  if (magic === 'zstd') throw new TsrunError('ERR_UNSUPPORTED', `archive ${path}: zstd-compressed archives are not supported; decompress it first`);
  const ex = tar.extract();
  const src = borrowFd(fd);
  const fail = (e: Error) => ex.destroy(e);
  src.on('error', fail);
  let input: Readable = src;
  if (magic === 'gzip') {
    const gunzip = createGunzip();
    gunzip.on('error', fail);
    input = src.pipe(gunzip);
  }
  input.pipe(ex);
  try {
    for await (const entry of ex) yield entry as unknown as TarEntry;
  } catch (e) {
    throw e instanceof TsrunError ? e : rejected(path, `not a valid tar: ${(e as Error).message}`);
  } finally {
    src.destroy();
    input.destroy();
    if (!src.closed) await new Promise((resolve) => src.once('close', resolve)); // no read of fd in flight after this
  }
}

async function drain(entry: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of entry) void _;
}

class TarReader implements ArchiveReader {
  private closed = false;

  private constructor(
    readonly format: ArchiveFormat,
    readonly path: string,
    private readonly fd: number,
    private readonly members: Map<string, TarMember>,
  ) {}

  /** Scan the archive open at `fd`; the reader then owns `fd` (closed by close()). */
  static async scan(path: string, fd: number, maxMemberSize: number): Promise<TarReader> {
    try {
      return await TarReader.scanUnwrapped(path, fd, maxMemberSize);
    } catch (e) {
      // tar-stream's own errors ("Unexpected end of data") surface from an entry's stream too
      throw e instanceof TsrunError ? e : rejected(path, `not a valid tar: ${(e as Error).message}`);
    }
  }

  private static async scanUnwrapped(path: string, fd: number, maxMemberSize: number): Promise<TarReader> {
    const members = new Map<string, TarMember>();
    let metadataTotal = 0;
    for await (const entry of tarEntries(path, fd)) {
      const h = entry.header;
      const name = memberName(path, h.name);
      const type = h.type === 'contiguous-file' ? 'file' : h.type;
      if (type !== 'file' && type !== 'directory' && type !== 'symlink' && type !== 'link') {
        throw rejected(path, `member "${h.name}" is a ${String(h.type)}: image archives hold only files, directories and links`);
      }
      if (name === '') {
        if (type !== 'directory') throw rejected(path, `member "${h.name}" names the archive root`);
        await drain(entry);
        continue;
      }
      const prev = members.get(name);
      if (prev && !(prev.type === 'directory' && type === 'directory')) throw rejected(path, `duplicate member "${name}"`);
      const size = h.size ?? 0;
      const m: TarMember = { type, size, magic: 'other' };
      if (type === 'symlink' || type === 'link') {
        if (!h.linkname) throw rejected(path, `link member "${name}" has no target`);
        m.link = h.linkname;
        m.size = 0;
      }
      if (type === 'file') {
        if (size > maxMemberSize) throw rejected(path, `member "${name}" is ${size} bytes, more than the ${maxMemberSize} allowed`);
        const isMeta = METADATA_NAMES.has(name);
        if (isMeta && size > MAX_METADATA_SIZE)
          throw rejected(path, `member "${name}" is ${size} bytes, more than the ${MAX_METADATA_SIZE} allowed for metadata`);
        const named = blobMemberDigest(name);
        let chunks: Buffer[] | undefined;
        let hash: ReturnType<typeof createHash> | undefined;
        let first = true;
        let got = 0;
        const keep = () => {
          metadataTotal += size;
          if (metadataTotal > MAX_METADATA_TOTAL) throw rejected(path, `more than ${MAX_METADATA_TOTAL} bytes of JSON metadata`);
          chunks = [];
        };
        if (isMeta) {
          m.magic = 'json';
          keep();
        }
        for await (const c of entry) {
          if (first && !isMeta) {
            m.magic = sniff(c);
            if (m.magic === 'json' && size <= MAX_METADATA_SIZE) keep();
            else if (!named && (m.magic === 'gzip' || m.magic === 'zstd')) hash = createHash('sha256'); // a compressed docker layer: no digest in its name
          }
          first = false;
          got += c.length;
          chunks?.push(c);
          hash?.update(c);
        }
        if (got !== size) throw rejected(path, `member "${name}" is truncated (${got} of ${size} bytes)`);
        if (chunks) {
          m.data = Buffer.concat(chunks);
          m.digest = sha256(m.data);
          if (named && m.digest !== named) throw rejected(path, `blob ${name} does not match its digest (it hashes to ${m.digest})`);
        }
        if (hash) m.digest = `sha256:${hash.digest('hex')}`;
      } else {
        await drain(entry);
      }
      if (!prev) members.set(name, m);
    }
    const has = (n: string) => members.get(n)?.type === 'file';
    let format: ArchiveFormat;
    if (has('oci-layout') && has('index.json')) format = 'oci-archive';
    else if (has('manifest.json')) format = 'docker-archive';
    else throw rejected(path, 'neither an OCI image layout (oci-layout and index.json) nor a docker save archive (manifest.json)');
    const reader = new TarReader(format, path, fd, members);
    for (const n of members.keys()) reader.member(n); // every link must resolve inside the archive
    return reader;
  }

  member(name: string): MemberInfo | undefined {
    let n = name;
    for (let hops = 0; hops < 16; hops++) {
      const m = this.members.get(n);
      if (!m) return undefined;
      if (m.type === 'directory') return undefined;
      if (m.type === 'file') {
        const info: MemberInfo = { name: n, size: m.size, magic: m.magic };
        if (m.digest) info.digest = m.digest;
        if (m.data) info.data = m.data;
        return info;
      }
      const link = m.link!;
      const target = posix.normalize(m.type === 'symlink' ? posix.join(posix.dirname(n), link) : link);
      if (posix.isAbsolute(link) || target === '..' || target.startsWith('../')) {
        throw rejected(this.path, `member "${n}" links to "${link}", outside the archive`);
      }
      n = memberName(this.path, target);
    }
    throw rejected(this.path, `member "${name}": too many levels of links`);
  }

  small(name: string, what: string): Buffer | undefined {
    const m = this.member(name);
    if (!m) return undefined;
    if (!m.data) {
      if (m.size > MAX_METADATA_SIZE) throw rejected(this.path, `${what} ${name} is ${m.size} bytes, more than the ${MAX_METADATA_SIZE} allowed`);
      throw rejected(this.path, `${what} ${name} is not JSON`);
    }
    return m.data;
  }

  async copy(store: ImageStore, wants: Map<string, BlobWant>): Promise<void> {
    const stream = new Map<string, BlobWant>();
    for (const [n, w] of wants) {
      const m = this.member(n);
      if (!m) throw rejected(this.path, `${n} is missing`);
      if (store.hasBlob(w.digest)) continue;
      if (m.data) {
        await store.putBlob(fromBuffer(m.data), { digest: w.digest, size: w.size }).catch((e: unknown) => {
          throw wrap(e, `archive ${this.path}: store ${n}`);
        });
      } else {
        stream.set(m.name, w);
      }
    }
    if (!stream.size) return;
    if (this.closed) throw rejected(this.path, 'the archive was closed');
    for await (const entry of tarEntries(this.path, this.fd)) {
      const n = memberName(this.path, entry.header.name);
      const w = stream.get(n);
      const t = entry.header.type;
      if (!w || (t !== 'file' && t !== 'contiguous-file')) {
        await drain(entry);
        continue;
      }
      stream.delete(n);
      try {
        await store.putBlob(entry, { digest: w.digest, size: w.size });
      } catch (e) {
        throw wrap(e, `archive ${this.path}: store ${n}`);
      }
      if (!stream.size) break; // the rest of the archive is not needed
    }
    if (stream.size) throw rejected(this.path, `members changed while loading: ${[...stream.keys()].join(', ')} not found on the second read`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    safeClose(this.fd);
  }
}

/**
 * Open `path`: an OCI layout directory, or a tar (or tar.gz) of one or of a docker save. The
 * caller must close() the reader (it holds descriptors until then).
 */
export async function openArchive(path: string, opts: OpenArchiveOptions = {}): Promise<ArchiveReader> {
  const max = opts.maxMemberSize ?? DEFAULT_MAX_MEMBER_SIZE;
  let fd: number;
  try {
    fd = openSync(path, OPEN_ARCHIVE);
  } catch (e) {
    throw wrap(e, `open archive ${path}`);
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (e) {
    safeClose(fd);
    throw wrap(e, `open archive ${path}`);
  }
  if (st.isDirectory()) {
    safeClose(fd); // a layout's members are each opened once, by DirReader
    const r = new DirReader(path, max);
    try {
      if (!r.member('oci-layout') || !r.member('index.json')) {
        throw rejected(
          path,
          `a directory must be an OCI image layout (oci-layout and index.json)${r.member('manifest.json') ? '; for an unpacked docker save, load the tar itself' : ''}`,
        );
      }
    } catch (e) {
      r.close();
      throw e;
    }
    return r;
  }
  if (!st.isFile()) {
    safeClose(fd);
    throw new TsrunError('ERR_INVALID_ARGUMENT', `archive ${path}: it is ${fileKind(st)}, not a file or directory`, {
      path,
      hint: 'save the archive to a regular file first and load that',
    });
  }
  try {
    return await TarReader.scan(path, fd, max);
  } catch (e) {
    safeClose(fd);
    throw e;
  }
}

/** A repository name made from an archive's file name: "busybox_1.36.tar.gz" -> "busybox_1.36". */
export function archiveBaseName(path: string): string {
  let b = basename(path.replace(/\/+$/, '')).toLowerCase();
  for (;;) {
    const s = b.replace(/\.(tar|tgz|gz|oci|docker|archive)$/, '');
    if (s === b) break;
    b = s;
  }
  b = b.replace(/[^a-z0-9]+/g, (m) => (m === '.' || m === '_' || m === '__' || /^-+$/.test(m) ? m : '-'));
  b = b.replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return b || 'image';
}
