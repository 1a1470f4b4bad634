// Pack a container's overlay upper directory into an OCI layer (a gzip'd tar): the reverse of
// layer/unpack.ts, and the native diff of `tsrun commit` (moby's overlayWhiteoutConverter):
//
//   char device 0/0 <name>              ->  empty regular file .wh.<name> (mode 0600, size 0, the device's owner and mtime)
//   dir with trusted.overlay.opaque=y   ->  the dir entry, then <dir>/.wh..wh..opq (the dir's permissions, owner, mtime)
//   trusted.overlay.* / user.overlay.*  ->  dropped (overlay metadata never goes into a layer)
//   security.capability (regular files) and user.* (files, dirs)  ->  PAX SCHILY.xattr.<name>, bytes as they are
//   regular files, dirs, symlinks, devices, fifos  ->  as they are (uid, gid, mode incl. setuid, mtime in whole seconds)
//   a regular file seen again (same inode)  ->  a hardlink to the first path; sockets are skipped
//
// Entries come in a fixed order (pre-order, names sorted bytewise, a directory's opaque marker
// right after it, no "./" root entry), and headers carry no user/group names, atime or ctime:
// the same upper dir always gives the same bytes. An empty upper dir gives the 1024-zero-byte
// tar docker also commits (diff_id sha256:5f70bf18…).
//
// The upper dir was written by the container: nothing in it is followed. Every entry is
// reached as /proc/self/fd/<fd of its parent>/<name> with lstat/readlink, so a symlink (or a
// directory swapped for one) never redirects the walk; directories are opened O_NOFOLLOW and
// checked to be the inode lstat saw. File data is read through the addon's openInRoot: an
// O_PATH|O_NOFOLLOW fd below the parent's fd, checked to be the inode lstat saw, then reopened
// for reading only if it is a regular file (a FIFO or device swapped in is never opened for
// I/O). A file that changes size while it is read fails the pack: stop or pause the container
// first.
//
// Node cannot read xattrs: the addon's xattrTree walks the tree once with the same discipline
// (*at() calls, O_NOFOLLOW, llistxattr/lgetxattr through /proc/self/fd). Pass `xattrs` to use
// something else.
//
// tar-stream's packer is not used: it writes PAX values as UTF-8 strings (a binary
// security.capability would be mangled) and overflows uid/gid fields above 2097151. The
// writer below emits ustar headers plus a PAX header when a value does not fit (long or
// non-ASCII names and link targets, big ids, sizes, mtimes, any xattr), as Go's archive/tar does.
import { createHash } from 'node:crypto';
import { type BigIntStats, closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { native } from '../../native/index.js';
import { isErrno, TsrunError, wrap } from '../../util/errors.js';

// ---------------------------------------------------------------- xattrs

/** Extended attributes under a tree: relative path ("etc/hosts"; "" is the root) -> name -> value. */
export type XattrTable = Map<string, Map<string, Buffer>>;

export interface XattrScanOptions {
  /** Directories only (opaque markers in lower layers). */
  dirsOnly?: boolean;
  /** Read only this attribute (no listing). */
  name?: string;
}

/** Reads the xattrs of everything under `root` (the root included) without following symlinks. */
export type XattrScanner = (root: string, opts?: XattrScanOptions) => XattrTable;

export const OVERLAY_OPAQUE = 'trusted.overlay.opaque';
const OVERLAY_REDIRECT = 'trusted.overlay.redirect';
const OVERLAY_METACOPY = 'trusted.overlay.metacopy';

/** The default scanner: the addon's xattrTree (llistxattr/lgetxattr, *at() walk, no symlink followed). */
export const nativeXattrScanner: XattrScanner = (root, opts = {}) => {
  let rows: Array<[string, string, Buffer]>;
  try {
    rows = native.xattrTree(root, opts.dirsOnly === true, opts.name);
  } catch (e) {
    throw wrap(e, `read the extended attributes under ${root}`);
  }
  const table: XattrTable = new Map();
  for (const [rel, name, value] of rows) {
    let m = table.get(rel);
    if (!m) table.set(rel, (m = new Map()));
    m.set(name, value);
  }
  return table;
};

/** Refuse upper dirs a plain tar of the upper cannot represent (redirect_dir, metacopy). */
export function checkOverlayFeatures(x: Map<string, Buffer> | undefined, rel: string): void {
  if (!x) return;
  if (x.has(OVERLAY_REDIRECT) || x.has(OVERLAY_METACOPY)) {
    const what = x.has(OVERLAY_REDIRECT) ? 'a renamed directory (overlay redirect_dir)' : 'a metadata-only copy (overlay metacopy)';
    throw new TsrunError('ERR_UNSUPPORTED', `/${rel} in the upper directory is ${what}: its content is not in the upper directory`, {
      hint: 'mount overlays with redirect_dir=off and metacopy=off (the kernel defaults)',
    });
  }
}

export function isOpaque(x: Map<string, Buffer> | undefined): boolean {
  const v = x?.get(OVERLAY_OPAQUE);
  return v !== undefined && v.length === 1 && v[0] === 0x79; // 'y'
}

/** An overlayfs whiteout: a character device 0/0. */
export function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

// ---------------------------------------------------------------- walking

const PROC_FD = '/proc/self/fd';
const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

export interface TreeEntry {
  /** Path relative to the root, "/"-separated, no leading "/": "etc/hosts". */
  rel: string;
  name: string;
  /** /proc/self/fd/<parent dir fd>/<name>: valid until the walk moves on; use with lstat, readlink, O_NOFOLLOW. */
  at: string;
  /** The parent directory's fd (O_RDONLY|O_DIRECTORY), open until the walk moves on. */
  dirFd: number;
  st: BigIntStats;
}

export interface WalkOptions {
  /** Leave this entry (and, for a directory, everything under it) out. */
  prune?: (rel: string) => boolean;
}

function changed(rel: string): TsrunError {
  return new TsrunError('ERR_INVALID_STATE', `/${rel} changed while it was being read`, { hint: 'stop or pause the container first' });
}

function openDir(path: string, st: BigIntStats | undefined, rel: string): number {
  let fd: number;
  try {
    fd = openSync(path, O_DIR);
  } catch (e) {
    if (st && (isErrno(e, 'ELOOP') || isErrno(e, 'ENOTDIR') || isErrno(e, 'ENOENT'))) throw changed(rel);
    throw wrap(e, `open /${rel}`);
  }
  if (st) {
    const now = fstatSync(fd, { bigint: true });
    if (now.ino !== st.ino || now.dev !== st.dev) {
      closeSync(fd);
      throw changed(rel);
    }
  }
  return fd;
}

/** Printable ASCII as it is, every other byte as \xNN. */
function escapeBytes(b: Buffer): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}

function* walkDir(fd: number, prefix: string, o: WalkOptions): Generator<TreeEntry> {
  const dir = `${PROC_FD}/${fd}`;
  const names = (readdirSync(dir, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare);
  for (const raw of names) {
    const name = raw.toString('utf8');
    const rel = prefix ? `${prefix}/${name}` : name;
    if (!Buffer.from(name, 'utf8').equals(raw)) {
      throw new TsrunError('ERR_UNSUPPORTED', `/${prefix ? `${prefix}/` : ''}${escapeBytes(raw)} is not a UTF-8 name`, {
        hint: 'rename or remove it: layers carry UTF-8 names only',
      });
    }
    if (o.prune?.(rel)) continue;
    const at = `${dir}/${name}`;
    let st: BigIntStats;
    try {
      st = lstatSync(at, { bigint: true });
    } catch (e) {
      if (isErrno(e, 'ENOENT')) continue; // removed meanwhile
      throw wrap(e, `lstat /${rel}`);
    }
    yield { rel, name, at, dirFd: fd, st };
    if (st.isDirectory()) {
      const child = openDir(at, st, rel);
      try {
        yield* walkDir(child, rel, o);
      } finally {
        closeSync(child);
      }
    }
  }
}

/**
 * Every entry under `root` (not the root itself), pre-order, names sorted bytewise, without
 * following any symlink. Non-UTF-8 names are an error.
 */
export function* walkTree(root: string, o: WalkOptions = {}): Generator<TreeEntry> {
  if (!existsSync(PROC_FD)) throw new TsrunError('ERR_UNSUPPORTED', `${PROC_FD} is not available: /proc must be mounted`);
  const fd = openDir(root, undefined, '');
  try {
    yield* walkDir(fd, '', o);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------- tar headers

const BLOCK = 512;
const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

type TypeFlag = '0' | '1' | '2' | '3' | '4' | '5' | '6';

interface Header {
  name: string;
  type: TypeFlag;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Array<[string, Buffer]>;
}

/** One PAX record, "%d %s=%s\n", where the length counts itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function octal(buf: Buffer, off: number, width: number, value: number): boolean {
  const s = value.toString(8);
  if (value < 0 || !Number.isInteger(value) || s.length > width - 1) return false;
  buf.write(s.padStart(width - 1, '0'), off, 'ascii');
  buf[off + width - 1] = 0;
  return true;
}

/** ustar's name/prefix split, or undefined when the name needs a PAX path. */
function splitName(name: string): [prefix: string, name: string] | undefined {
  if (!PRINTABLE_ASCII.test(name)) return undefined;
  if (name.length <= 100) return ['', name];
  for (let i = name.lastIndexOf('/'); i > 0; i = name.lastIndexOf('/', i - 1)) {
    const rest = name.slice(i + 1);
    if (rest.length > 100) break;
    if (rest.length > 0 && i <= 155) return [name.slice(0, i), rest];
  }
  return undefined;
}

function ustar(h: Omit<Header, 'xattrs' | 'type'> & { type: TypeFlag | 'x'; prefix?: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  if (!octal(b, 124, 12, h.size)) {
    // GNU base-256 (the PAX size record is authoritative anyway)
    b[124] = 0x80;
    let v = BigInt(h.size);
    for (let i = 135; i > 124; i--) {
      b[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  octal(b, 136, 12, h.mtime);
  b.write(h.type, 156, 'ascii');
  if (h.linkname) b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 'binary');
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  if (h.prefix) b.write(h.prefix, 345, 155, 'ascii');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return b;
}

/** The header block(s) of one entry: a PAX header first when something does not fit ustar. */
function encodeHeader(h: Header): Buffer[] {
  const pax: Array<[string, Buffer]> = [];
  const split = splitName(h.name);
  if (!split) pax.push(['path', Buffer.from(h.name)]);
  const link = h.linkname ?? '';
  if (link && (!PRINTABLE_ASCII.test(link) || link.length > 100)) pax.push(['linkpath', Buffer.from(link)]);
  if (h.size > MAX_OCTAL_11) pax.push(['size', Buffer.from(String(h.size))]);
  if (h.uid > MAX_OCTAL_7) pax.push(['uid', Buffer.from(String(h.uid))]);
  if (h.gid > MAX_OCTAL_7) pax.push(['gid', Buffer.from(String(h.gid))]);
  const mtimeOk = h.mtime >= 0 && h.mtime <= MAX_OCTAL_11;
  if (!mtimeOk) pax.push(['mtime', Buffer.from(String(h.mtime))]);
  for (const [k, v] of h.xattrs ?? []) pax.push([`SCHILY.xattr.${k}`, v]);

  const base = {
    ...h,
    name: split ? split[1] : asciiName(h.name),
    uid: h.uid > MAX_OCTAL_7 ? 0 : h.uid,
    gid: h.gid > MAX_OCTAL_7 ? 0 : h.gid,
    mtime: mtimeOk ? h.mtime : 0,
    linkname: link && PRINTABLE_ASCII.test(link) && link.length <= 100 ? link : asciiName(link),
    ...(split?.[0] ? { prefix: split[0] } : {}),
  };
  if (!pax.length) return [ustar(base)];
  pax.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); // as Go's archive/tar
  const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
  const leaf = h.name.replace(/\/$/, '').split('/').pop() ?? '';
  const paxName = asciiName(`PaxHeaders.0/${leaf}`);
  const head = ustar({ name: paxName, type: 'x', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 });
  return [head, body, padding(body.length), ustar(base)].filter((b) => b.length > 0);
}

function asciiName(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, 100);
}

function padding(size: number): Buffer {
  const r = size % BLOCK;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - r);
}

// ---------------------------------------------------------------- packing

export interface PackOptions {
  /** Give every entry this mtime (seconds since the epoch) instead of its own. */
  mtime?: number;
  /** Leave this path ("/etc/hosts") out, and everything under it (mount point placeholders). */
  exclude?: (path: string) => boolean;
  /** How xattrs are read (default: nativeXattrScanner). */
  xattrs?: XattrScanner;
  /** gzip level (default 6). */
  gzipLevel?: number;
}

export interface PackedLayer {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** sha256 of the gzip'd blob. */
  digest: string;
  /** Bytes of the gzip'd blob. */
  size: number;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  /** Tar entries written (PAX headers not counted). */
  entries: number;
  /** Paths left out because a tar cannot carry them (sockets): "/run/app.sock". */
  skipped: string[];
}

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const READ_CHUNK = 1 << 20;
const FLUSH_AT = 1 << 16;

/** Xattrs that go into the layer, sorted: what unpack's policy keeps. */
function layerXattrs(x: Map<string, Buffer> | undefined, kind: 'file' | 'dir'): Array<[string, Buffer]> | undefined {
  if (!x) return undefined;
  const out: Array<[string, Buffer]> = [];
  for (const [k, v] of x) {
    const user = k.startsWith('user.') && k.length > 5 && !k.startsWith('user.overlay.');
    if (user || (k === 'security.capability' && kind === 'file')) out.push([k, v]);
  }
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return out.length ? out : undefined;
}

/** glibc's gnu_dev_major / gnu_dev_minor. */
function devNumbers(rdev: bigint): { devmajor: number; devminor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn & 0xffffffffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn & 0xffffffffn);
  return { devmajor: Number(major), devminor: Number(minor) };
}

/** Whole seconds, rounded down (also before 1970). */
export function mtimeSeconds(st: BigIntStats): number {
  const ns = st.mtimeNs;
  const s = ns / 1_000_000_000n;
  return Number(ns < 0n && s * 1_000_000_000n !== ns ? s - 1n : s);
}

/** Open a regular file of the walk for reading: never a symlink, FIFO or device, only the inode lstat saw. */
function openData(e: TreeEntry): number {
  const { O_PATH, O_NOFOLLOW, O_RDONLY } = native.inRootFlags;
  let pathFd: number;
  try {
    pathFd = native.openInRoot(e.dirFd, e.name, O_PATH | O_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw changed(e.rel);
    throw wrap(err, `open /${e.rel}`);
  }
  try {
    const now = fstatSync(pathFd, { bigint: true });
    if (!now.isFile() || now.ino !== e.st.ino || now.dev !== e.st.dev) throw changed(e.rel);
    return native.openInRoot(pathFd, '', O_RDONLY); // the same inode, reopened for reading
  } catch (err) {
    if (err instanceof TsrunError) throw err;
    if (isErrno(err, 'ENXIO') || isErrno(err, 'ENOENT')) throw changed(e.rel);
    throw wrap(err, `open /${e.rel}`);
  } finally {
    closeSync(pathFd);
  }
}

interface PackState {
  hash: ReturnType<typeof createHash>;
  tarSize: number;
  entries: number;
  skipped: string[];
}

async function* tarEntries(upperDir: string, o: PackOptions, s: PackState): AsyncGenerator<Buffer> {
  const xattrs = (o.xattrs ?? nativeXattrScanner)(upperDir);
  const links = new Map<string, string>();
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const push = (...bufs: Buffer[]) => {
    for (const b of bufs) {
      if (!b.length) continue;
      pending.push(b);
      pendingLen += b.length;
    }
  };
  const take = (): Buffer => {
    const b = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
    pending = [];
    pendingLen = 0;
    s.hash.update(b);
    s.tarSize += b.length;
    return b;
  };
  const header = (h: Header) => {
    push(...encodeHeader(h));
    s.entries++;
  };
  const exclude = o.exclude;
  const walk = walkTree(upperDir, exclude ? { prune: (rel) => exclude(`/${rel}`) } : {});
  for (const e of walk) {
    const { rel, st } = e;
    const x = xattrs.get(rel);
    checkOverlayFeatures(x, rel);
    if (e.name.startsWith(WHITEOUT_PREFIX)) {
      throw new TsrunError('ERR_UNSUPPORTED', `/${rel}: a name starting with "${WHITEOUT_PREFIX}" would be read as a whiteout in a layer`, {
        hint: 'rename or remove it before committing',
      });
    }
    const common = {
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: o.mtime !== undefined ? Math.floor(o.mtime) : mtimeSeconds(st),
      size: 0,
    };
    if (st.isDirectory()) {
      const xs = layerXattrs(x, 'dir');
      header({ ...common, name: `${rel}/`, type: '5', ...(xs ? { xattrs: xs } : {}) });
      if (isOpaque(x)) header({ ...common, mode: common.mode & 0o777, name: `${rel}/${WHITEOUT_OPAQUE}`, type: '0' });
    } else if (isWhiteout(st)) {
      const dir = rel.slice(0, rel.length - e.name.length);
      header({ ...common, mode: 0o600, name: `${dir}${WHITEOUT_PREFIX}${e.name}`, type: '0' });
    } else if (st.isSymbolicLink()) {
      const target = readlinkSync(e.at, { encoding: 'buffer' });
      const t = target.toString('utf8');
      if (!Buffer.from(t, 'utf8').equals(target)) throw new TsrunError('ERR_UNSUPPORTED', `/${rel}: the symlink's target is not UTF-8`);
      header({ ...common, name: rel, type: '2', linkname: t });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      header({ ...common, name: rel, type: st.isCharacterDevice() ? '3' : '4', ...devNumbers(st.rdev) });
    } else if (st.isFIFO()) {
      header({ ...common, name: rel, type: '6' });
    } else if (st.isSocket()) {
      s.skipped.push(`/${rel}`);
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? links.get(key) : undefined;
      if (first !== undefined) {
        header({ ...common, name: rel, type: '1', linkname: first });
      } else {
        if (st.nlink > 1n) links.set(key, rel);
        const fd = openData(e);
        try {
          const size = Number(fstatSync(fd, { bigint: true }).size);
          const xs = layerXattrs(x, 'file');
          header({ ...common, name: rel, type: '0', size, ...(xs ? { xattrs: xs } : {}) });
          let left = size;
          while (left > 0) {
            const chunk = Buffer.allocUnsafe(Math.min(left, READ_CHUNK));
            const n = readSync(fd, chunk, 0, chunk.length, null);
            if (n === 0) throw changed(rel);
            push(n === chunk.length ? chunk : chunk.subarray(0, n));
            left -= n;
            if (pendingLen >= FLUSH_AT) yield take();
          }
          if (readSync(fd, Buffer.alloc(1), 0, 1, null) > 0) throw changed(rel);
          push(padding(size));
        } finally {
          closeSync(fd);
        }
      }
    }
    if (pendingLen >= FLUSH_AT) yield take();
  }
  push(END_OF_ARCHIVE);
  yield take();
}

/**
 * Write the OCI layer (gzip'd tar) for the overlay upper dir `upperDir` to `out` (which is
 * ended), converting overlay whiteouts and opaque dirs to OCI form. Resolves to its diff_id,
 * digest and size once `out` has finished.
 */
export async function packUpperDir(upperDir: string, out: Writable, opts: PackOptions = {}): Promise<PackedLayer> {
  const s: PackState = { hash: createHash('sha256'), tarSize: 0, entries: 0, skipped: [] };
  const gzHash = createHash('sha256');
  let gzSize = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      gzHash.update(chunk);
      gzSize += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.from(tarEntries(upperDir, opts, s), { objectMode: false }), createGzip({ level: opts.gzipLevel ?? 6 }), tap, out);
  } catch (e) {
    throw wrap(e, `pack ${upperDir}`);
  }
  return {
    diffId: `sha256:${s.hash.digest('hex')}`,
    digest: `sha256:${gzHash.digest('hex')}`,
    size: gzSize,
    tarSize: s.tarSize,
    entries: s.entries,
    skipped: s.skipped,
  };
}
