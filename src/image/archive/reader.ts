// Reading image archives without extracting them: an OCI layout directory, or a tar (possibly
// gzip-compressed) holding an OCI layout or a `docker save` archive. A tar is read twice:
// a scan that validates every member (names, types, sizes, duplicates), keeps the small JSON
// members in memory and hashes compressed members whose digest is not in their name; then,
// once the caller knows which blobs it needs, a copy pass that streams exactly those into the
// store (verified by putBlob). Nothing touches the store until the whole archive has passed
// the scan.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, lstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
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

// ---------------------------------------------------------------- OCI layout directory

class DirReader implements ArchiveReader {
  readonly format = 'oci-dir' as const;
  private readonly cache = new Map<string, MemberInfo | undefined>();

  constructor(readonly path: string, private readonly maxMemberSize: number) {}

  private file(name: string): string {
    // Only constant names and blobs/sha256/<validated hex> reach here.
    const d = blobMemberDigest(name);
    if (d) return join(this.path, 'blobs', 'sha256', digestHex(d));
    if (!METADATA_NAMES.has(name)) throw rejected(this.path, `unexpected member "${name}"`);
    return join(this.path, name);
  }

  member(name: string): MemberInfo | undefined {
    if (this.cache.has(name)) return this.cache.get(name);
    const p = this.file(name);
    let info: MemberInfo | undefined;
    try {
      const st = lstatSync(p);
      if (!st.isFile()) throw rejected(this.path, `${name} is not a regular file`);
      if (st.size > this.maxMemberSize) throw rejected(this.path, `${name} is ${st.size} bytes, more than the ${this.maxMemberSize} allowed`);
      const head = Buffer.alloc(4);
      const fd = openSync(p, 'r');
      try {
        const n = readSync(fd, head, 0, 4, 0);
        info = { name, size: st.size, magic: sniff(head.subarray(0, n)) };
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e instanceof TsrunError ? e : wrap(e, `read ${p}`);
    }
    this.cache.set(name, info);
    return info;
  }

  small(name: string, what: string): Buffer | undefined {
    const m = this.member(name);
    if (!m) return undefined;
    if (m.size > MAX_METADATA_SIZE) throw rejected(this.path, `${what} ${name} is ${m.size} bytes, more than the ${MAX_METADATA_SIZE} allowed`);
    m.data ??= readFileSync(this.file(name));
    return m.data;
  }

  async copy(store: ImageStore, wants: Map<string, BlobWant>): Promise<void> {
    for (const [name, w] of wants) {
      const m = this.member(name);
      if (!m) throw rejected(this.path, `${name} is missing`);
      try {
        await store.putBlob(m.data ? fromBuffer(m.data) : createReadStream(this.file(name)), { digest: w.digest, size: w.size });
      } catch (e) {
        throw wrap(e, `archive ${this.path}: store ${name}`);
      }
    }
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

/** The tar's members in order, decompressing a gzip-compressed archive on the fly. */
async function* tarEntries(path: string): AsyncGenerator<TarEntry> {
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  const magic = sniff(head.subarray(0, n));
  if (magic === 'zstd') throw new TsrunError('ERR_UNSUPPORTED', `archive ${path}: zstd-compressed archives are not supported; decompress it first`);
  const ex = tar.extract();
  const src = createReadStream(path);
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
  }
}

async function drain(entry: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of entry) void _;
}

class TarReader implements ArchiveReader {
  private constructor(
    readonly format: ArchiveFormat,
    readonly path: string,
    private readonly members: Map<string, TarMember>,
  ) {}

  static async scan(path: string, maxMemberSize: number): Promise<TarReader> {
    try {
      return await TarReader.scanUnwrapped(path, maxMemberSize);
    } catch (e) {
      // tar-stream's own errors ("Unexpected end of data") surface from an entry's stream too
      throw e instanceof TsrunError ? e : rejected(path, `not a valid tar: ${(e as Error).message}`);
    }
  }

  private static async scanUnwrapped(path: string, maxMemberSize: number): Promise<TarReader> {
    const members = new Map<string, TarMember>();
    let metadataTotal = 0;
    for await (const entry of tarEntries(path)) {
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
        if (isMeta && size > MAX_METADATA_SIZE) throw rejected(path, `member "${name}" is ${size} bytes, more than the ${MAX_METADATA_SIZE} allowed for metadata`);
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
    const reader = new TarReader(format, path, members);
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
    for await (const entry of tarEntries(this.path)) {
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
}

/** Open `path`: an OCI layout directory, or a tar (or tar.gz) of one or of a docker save. */
export async function openArchive(path: string, opts: OpenArchiveOptions = {}): Promise<ArchiveReader> {
  const max = opts.maxMemberSize ?? DEFAULT_MAX_MEMBER_SIZE;
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw wrap(e, `open archive ${path}`);
  }
  if (st.isDirectory()) {
    const r = new DirReader(path, max);
    if (!r.member('oci-layout') || !r.member('index.json')) {
      throw rejected(path, `a directory must be an OCI image layout (oci-layout and index.json)${r.member('manifest.json') ? '; for an unpacked docker save, load the tar itself' : ''}`);
    }
    return r;
  }
  if (!st.isFile()) throw rejected(path, 'not a file or directory');
  return TarReader.scan(path, max);
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
