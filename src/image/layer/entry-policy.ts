// What a layer tar entry is allowed to do, decided from its header alone. PURE: no I/O, no
// native calls, so the whole breakout table is unit-tested without a filesystem.
//
// tar-stream hands names, link targets, modes, ids and device numbers through raw
// (security-checklist §3.1): every policy is ours. The decision is either an InRootEntry
// for the native layer (native/fs_inroot.cc) to apply, a skip, or a rejection that names
// the entry. Names are normalised, never silently repaired: an absolute name, or a ".."
// that would climb above the layer root, rejects the whole layer.
import type { InRootEntry, InRootEntryType } from '../../native/fs-inroot-binding.js';

export interface LayerLimits {
  /** Tar entries per layer (headers that reach the policy; PAX/long-name headers excluded). */
  maxEntries: number;
  /** Uncompressed tar bytes per layer. */
  maxTotalBytes: number;
  /** Data bytes of one regular file. */
  maxFileBytes: number;
  /** Bytes of a normalised path, and of a symlink target. */
  maxPathBytes: number;
  /** Bytes of one path component (NAME_MAX). */
  maxComponentBytes: number;
  /** Path components. */
  maxDepth: number;
  /** Data bytes of one PAX (or GNU long name) header. tar-stream itself allows 4 MiB. */
  maxPaxHeaderBytes: number;
  /** Extended attributes on one entry. */
  maxXattrs: number;
  /** Bytes of one xattr value (XATTR_SIZE_MAX). */
  maxXattrValueBytes: number;
  /** Allow char and block device nodes (FIFOs are always allowed). */
  allowDevices: boolean;
  /** Largest zstd window a frame may ask for (the decoder allocates it). libzstd's default limit. */
  maxZstdWindowBytes: number;
}

export const DEFAULT_LAYER_LIMITS: Readonly<LayerLimits> = Object.freeze({
  maxEntries: 1_000_000,
  maxTotalBytes: 64 * 1024 ** 3,
  maxFileBytes: 64 * 1024 ** 3,
  maxPathBytes: 4096,
  maxComponentBytes: 255,
  maxDepth: 256,
  maxPaxHeaderBytes: 1024 * 1024,
  maxXattrs: 128,
  maxXattrValueBytes: 64 * 1024,
  allowDevices: true,
  maxZstdWindowBytes: 128 * 1024 * 1024,
});

/** Defaults overlaid with `partial`; every number must be a non-negative safe integer. */
export function resolveLimits(partial: Partial<LayerLimits> = {}): LayerLimits {
  const out: LayerLimits = { ...DEFAULT_LAYER_LIMITS };
  for (const [k, v] of Object.entries(partial) as Array<[keyof LayerLimits, unknown]>) {
    if (v === undefined) continue;
    if (!(k in DEFAULT_LAYER_LIMITS)) throw new TypeError(`unknown layer limit "${k}"`);
    if (k === 'allowDevices') {
      if (typeof v !== 'boolean') throw new TypeError(`layer limit "${k}" must be a boolean`);
      out.allowDevices = v;
    } else {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`layer limit "${k}" must be a non-negative integer`);
      out[k] = v;
    }
  }
  return out;
}

/** The header fields the policy reads (tar-stream's header plus the PAX records it saw). */
export interface TarHeader {
  name: string;
  /** tar-stream's type name; null/undefined for a typeflag it does not know. */
  type?: string | null | undefined;
  mode?: number | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  size?: number | undefined;
  mtime?: Date | number | undefined;
  linkname?: string | null | undefined;
  devmajor?: number | undefined;
  devminor?: number | undefined;
  /** The entry's own PAX records, raw (global headers are ignored by unpack). */
  paxRecords?: ReadonlyMap<string, Buffer> | undefined;
}

export interface ApplyAction {
  kind: 'apply';
  entry: InRootEntry;
  /** Data bytes that follow the header (file content; drained for other types). */
  size: number;
  /** Xattrs present in the header but not applied (outside the allowlist or the wrong entry type). */
  droppedXattrs: string[];
}

export interface SkipAction {
  kind: 'skip';
  path: string;
  size: number;
  reason: string;
}

export interface Reject {
  kind: 'reject';
  /** The entry as named in the tar (raw), for the error message. */
  path: string;
  reason: string;
}

export type Decision = ApplyAction | SkipAction | Reject;

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const MAX_ID = 0xffff_fffe; // (uid_t)-1 is "no change" to chown: never a real owner
const MAX_DEV = 0xffff_ffff;
const MAX_ABS_MTIME = 1e12;

const TYPE_MAP: Record<string, InRootEntryType> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'dir',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};

type Normalised = { ok: true; path: string; parts: string[] } | { ok: false; reason: string };

/**
 * Lexically normalise a tar name (or hardlink target): drop "." and empty components (so
 * "./a//b/" is "a/b"), resolve ".." against earlier components. Refuses NUL, absolute
 * names and any ".." that would climb above the root. The root itself is ".".
 */
export function normalisePath(name: string, limits: Pick<LayerLimits, 'maxPathBytes' | 'maxComponentBytes' | 'maxDepth'>): Normalised {
  if (name.length === 0) return { ok: false, reason: 'empty name' };
  if (name.includes('\0')) return { ok: false, reason: 'name contains a NUL byte' };
  if (name.startsWith('/')) return { ok: false, reason: 'absolute path' };
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) return { ok: false, reason: '".." climbs above the layer root' };
      parts.pop();
      continue;
    }
    if (Buffer.byteLength(c) > limits.maxComponentBytes) return { ok: false, reason: `a path component is longer than ${limits.maxComponentBytes} bytes` };
    parts.push(c);
  }
  if (parts.length > limits.maxDepth) return { ok: false, reason: `path is deeper than ${limits.maxDepth} components` };
  const path = parts.length === 0 ? '.' : parts.join('/');
  if (Buffer.byteLength(path) > limits.maxPathBytes) return { ok: false, reason: `path is longer than ${limits.maxPathBytes} bytes` };
  return { ok: true, path, parts };
}

function reject(path: string, reason: string): Reject {
  return { kind: 'reject', path, reason };
}

function paxString(rec: ReadonlyMap<string, Buffer> | undefined, key: string): string | undefined {
  return rec?.get(key)?.toString('utf8');
}

function checkId(v: number | undefined, pax: string | undefined, what: 'uid' | 'gid'): number | string {
  let id = v ?? 0;
  if (pax !== undefined) {
    if (!/^\d{1,10}$/.test(pax)) return `PAX ${what} "${pax.slice(0, 32)}" is not a decimal number`;
    id = Number(pax);
  }
  if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) return `${what} ${String(id)} is out of range (0..${MAX_ID})`;
  return id;
}

function mtimeOf(h: TarHeader): number | string {
  const pax = paxString(h.paxRecords, 'mtime');
  let t: number;
  if (pax !== undefined) {
    if (!/^-?\d{1,15}(\.\d{1,9}\d*)?$/.test(pax)) return `PAX mtime "${pax.slice(0, 32)}" is not a number`;
    t = Number(pax);
  } else if (h.mtime instanceof Date) {
    t = h.mtime.getTime() / 1000;
  } else {
    t = h.mtime ?? 0;
  }
  if (!Number.isFinite(t) || Math.abs(t) > MAX_ABS_MTIME) return `mtime ${String(t)} is out of range`;
  return t;
}

interface XattrResult {
  xattrs: Record<string, Buffer>;
  count: number;
  dropped: string[];
}

/**
 * Xattrs from `SCHILY.xattr.*` PAX records. Kept: `user.*` (files and directories) and
 * `security.capability` (regular files: file capabilities, e.g. ping). Rejected:
 * `trusted.overlay.*` (only tsrun writes overlay metadata: an image must not forge
 * opaque/redirect/metacopy). Dropped: everything else (`security.selinux` and other LSM
 * labels, other `trusted.*`, `system.*` ACLs), and any xattr on other entry types.
 */
function xattrsOf(h: TarHeader, type: InRootEntryType, limits: LayerLimits): XattrResult | string {
  const out: XattrResult = { xattrs: {}, count: 0, dropped: [] };
  if (!h.paxRecords) return out;
  let seen = 0;
  for (const [key, value] of h.paxRecords) {
    if (!key.startsWith('SCHILY.xattr.')) continue;
    const name = key.slice('SCHILY.xattr.'.length);
    if (++seen > limits.maxXattrs) return `more than ${limits.maxXattrs} xattrs`;
    if (name.length === 0 || name.includes('\0') || Buffer.byteLength(name) > 255) return `invalid xattr name "${name.slice(0, 64)}"`;
    if (value.length > limits.maxXattrValueBytes) return `xattr ${name} is larger than ${limits.maxXattrValueBytes} bytes`;
    if (name.startsWith('trusted.overlay.')) return `xattr ${name} is overlayfs metadata, which layers may not carry`;
    const user = name.startsWith('user.') && name.length > 5;
    const cap = name === 'security.capability';
    if ((user && (type === 'file' || type === 'dir')) || (cap && type === 'file')) {
      out.xattrs[name] = value;
      out.count++;
    } else {
      out.dropped.push(name);
    }
  }
  return out;
}

/** Decide what one tar entry may do. Pure: the same header always gets the same answer. */
export function decide(h: TarHeader, limits: LayerLimits = DEFAULT_LAYER_LIMITS): Decision {
  const raw = typeof h.name === 'string' ? h.name : '';
  const rec = h.paxRecords;

  for (const key of rec?.keys() ?? []) {
    if (key.startsWith('GNU.sparse.')) return reject(raw, 'GNU sparse files are not supported');
  }
  const paxSize = paxString(rec, 'size');
  const size = h.size ?? 0;
  if (paxSize !== undefined && (!/^\d{1,20}$/.test(paxSize) || Number(paxSize) !== size)) return reject(raw, `malformed PAX size "${paxSize.slice(0, 32)}"`);
  if (!Number.isSafeInteger(size) || size < 0) return reject(raw, `size ${String(size)} is not a valid size`);

  const type = h.type ? TYPE_MAP[h.type] : undefined;
  if (!type) return reject(raw, `unsupported entry type ${h.type ?? '(unknown typeflag)'}`);
  if (type === 'file') {
    if (size > limits.maxFileBytes) return reject(raw, `file size ${size} exceeds the ${limits.maxFileBytes}-byte limit`);
  } else if (size !== 0) {
    // POSIX: links, devices, FIFOs and directories carry no data. Readers disagree on how
    // to skip one that claims some (tar-stream even ignores a directory's size), so a
    // nonzero size is a parser-differential trick, not a layer.
    return reject(raw, `a ${type} entry must have size 0, not ${size}`);
  }

  const norm = normalisePath(raw, limits);
  if (!norm.ok) return reject(raw, norm.reason);
  const { path, parts } = norm;

  const mode = (h.mode ?? 0) & 0o7777;
  if (!Number.isInteger(h.mode ?? 0)) return reject(raw, 'invalid mode');
  const uid = checkId(h.uid, paxString(rec, 'uid'), 'uid');
  if (typeof uid === 'string') return reject(raw, uid);
  const gid = checkId(h.gid, paxString(rec, 'gid'), 'gid');
  if (typeof gid === 'string') return reject(raw, gid);
  const mtimeSec = mtimeOf(h);
  if (typeof mtimeSec === 'string') return reject(raw, mtimeSec);

  // The layer root itself ("./"): its directory belongs to the store, like containerd and
  // moby, which also ignore it. Anything but a directory there is nonsense.
  if (path === '.') {
    if (type === 'dir') return { kind: 'skip', path, size, reason: 'the layer root entry is not applied' };
    return reject(raw, `a ${type} cannot replace the layer root`);
  }

  // Whiteouts (image-spec layer.md): `.wh..wh..opq` makes its directory opaque, `.wh.<name>`
  // hides <name> in the same directory. Other `.wh..wh.` names are aufs metadata: skipped.
  const base = parts[parts.length - 1]!;
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const dir = parts.length > 1 ? parts.slice(0, -1).join('/') : '.';
    const common = { mode: 0, uid, gid, mtimeSec };
    if (base === WHITEOUT_OPAQUE) return { kind: 'apply', size, droppedXattrs: [], entry: { type: 'opaque', path: dir, ...common } };
    if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'skip', path, size, reason: 'aufs whiteout metadata is ignored' };
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target === '' || target === '.' || target === '..') return reject(raw, `invalid whiteout name "${base}"`);
    const tpath = dir === '.' ? target : `${dir}/${target}`;
    return { kind: 'apply', size, droppedXattrs: [], entry: { type: 'whiteout', path: tpath, ...common } };
  }

  const entry: InRootEntry = { type, path, mode, uid, gid, mtimeSec };

  if (type === 'symlink') {
    const target = h.linkname ?? '';
    if (target.length === 0) return reject(raw, 'symlink with an empty target');
    if (target.includes('\0')) return reject(raw, 'symlink target contains a NUL byte');
    if (Buffer.byteLength(target) > limits.maxPathBytes) return reject(raw, `symlink target is longer than ${limits.maxPathBytes} bytes`);
    // The target is stored verbatim: it is only ever interpreted inside the container.
    entry.linkname = target;
  } else if (type === 'hardlink') {
    const t = normalisePath(h.linkname ?? '', limits);
    if (!t.ok) return reject(raw, `hardlink target "${h.linkname ?? ''}": ${t.reason}`);
    if (t.path === '.') return reject(raw, 'hardlink to the layer root');
    if (t.path === path) return reject(raw, 'hardlink to itself');
    entry.linkname = t.path;
  } else if (type === 'char' || type === 'block') {
    if (!limits.allowDevices) return reject(raw, `${type} device nodes are not allowed`);
    const major = h.devmajor ?? 0;
    const minor = h.devminor ?? 0;
    if (!Number.isInteger(major) || !Number.isInteger(minor) || major < 0 || minor < 0 || major > MAX_DEV || minor > MAX_DEV) {
      return reject(raw, `invalid device number ${String(major)}:${String(minor)}`);
    }
    if (type === 'char' && major === 0 && minor === 0) return reject(raw, 'a 0:0 character device is an overlayfs whiteout; layers must use .wh. files');
    entry.devmajor = major;
    entry.devminor = minor;
  }

  const x = xattrsOf(h, type, limits);
  if (typeof x === 'string') return reject(raw, x);
  if (x.count > 0) entry.xattrs = x.xattrs;
  return { kind: 'apply', entry, size, droppedXattrs: x.dropped };
}

/**
 * Per-layer counters (entries, bytes), kept apart from `decide` so that stays pure.
 * `admitEntry` is called once per tar entry, `admitBytes` with every uncompressed chunk.
 */
export class LayerBudget {
  entries = 0;
  bytes = 0;
  constructor(private readonly limits: LayerLimits) {}

  admitEntry(name: string): Reject | undefined {
    if (++this.entries > this.limits.maxEntries) return reject(name, `more than ${this.limits.maxEntries} entries in the layer`);
    return undefined;
  }

  admitBytes(n: number): string | undefined {
    this.bytes += n;
    if (this.bytes > this.limits.maxTotalBytes) return `uncompressed size exceeds the ${this.limits.maxTotalBytes}-byte limit`;
    return undefined;
  }
}

/**
 * Strict PAX record parser ("%d %s=%s\n" records, POSIX pax(1)). tar-stream's own parser
 * stops silently at the first malformed record and decodes values as UTF-8 (mangling
 * binary xattrs such as security.capability); this one keeps values as bytes and turns
 * malformed input into an error, so both parsers always agree on what they accept.
 */
export function parsePaxRecords(buf: Buffer): Map<string, Buffer> | string {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    let sp = off;
    while (sp < buf.length && sp - off < 20 && buf[sp]! >= 0x30 && buf[sp]! <= 0x39) sp++;
    if (sp === off || sp >= buf.length || buf[sp] !== 0x20) return `malformed PAX record at offset ${off}`;
    const len = Number(buf.toString('latin1', off, sp));
    const end = off + len;
    if (!Number.isSafeInteger(len) || len <= sp - off + 1 || end > buf.length || buf[end - 1] !== 0x0a) return `malformed PAX record at offset ${off}`;
    const kv = buf.subarray(sp + 1, end - 1);
    const eq = kv.indexOf(0x3d);
    if (eq <= 0) return `malformed PAX record at offset ${off}`;
    out.set(kv.toString('utf8', 0, eq), kv.subarray(eq + 1));
    off = end;
  }
  return out;
}
