// Reads and copies across the boundary of a root the container owns (its rootfs, an image
// layer tree): user lookup in the image's /etc/passwd and /etc/group, `tsrun cp` both ways,
// seeding a named volume from image content.
//
// Everything on the ROOT side goes through the addon's fd-based in-root calls
// (native/fs_inroot.cc): no path string inside the root is ever resolved from "/" by fs.*.
// - Reads resolve the user's path with openat2(RESOLVE_IN_ROOT): symlinks are followed but
//   never leave the root (docker/podman semantics), then work below O_PATH fds one
//   component at a time, never following anything inside a tree being copied.
// - Writes use the layer-unpack primitives (openRoot/applyEntry/finishFile/finishDirs),
//   relative to a destination directory resolved in-root, so a symlink planted anywhere in
//   the root cannot redirect a write outside it.
// The HOST side (the `cp` source or destination, the volume directory) is trusted and uses
// plain fs.* calls, but never follows a symlink that came from the container.
//
// Docker's `cp` rules (cli/command/container/cp.go, moby pkg/archive CopyTo) for both ways:
// - SRC ending in "/." (or the root itself): its CONTENTS are copied into DEST;
// - DEST an existing directory: SRC is copied into it under its own basename;
// - else DEST is created (its parent must exist); a DEST ending in "/" must be a directory;
// - a directory never replaces a non-directory, nor the reverse (docker's
//   NoOverwriteDirNonDir): that is an error; a non-directory replaces a non-directory.
// A failed copy may leave what it already copied in place (as docker and cp do).
import {
  chmodSync,
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  read,
  readdirSync,
  readlinkSync,
  readSync,
  type BigIntStats,
  type Stats,
  statSync,
  symlinkSync,
  unlinkSync,
  write,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_LAYER_LIMITS, normalisePath } from '../image/layer/entry-policy.js';
import type { InRootEntry, InRootStat } from '../native/fs-inroot-binding.js';
import { native } from '../native/index.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';

const readAsync = promisify(read);
const writeAsync = promisify(write);

const CHUNK = 1 << 20;
/** Directory levels a copy descends (one O_PATH fd stays open per level). */
const MAX_DEPTH = 256;
const SETID = 0o6000;

function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** A path inside a root, cleaned like Go's filepath.Clean on an absolute path: ".." stops at the root. */
interface InRootPath {
  parts: string[];
  /** "a/b" ("." for the root): what openInRoot is given. */
  rel: string;
  /** "/a/b": how messages name it. */
  shown: string;
  /** Ends in "/" or "/." (the last component must be a directory, and is followed). */
  dirSyntax: boolean;
  /** Ends in "/." or is "." / "": docker's "copy the contents" form. */
  dotForm: boolean;
}

function parseInRootPath(p: string, what: string): InRootPath {
  if (p.includes('\0')) throw new TsrunError('ERR_INVALID_ARGUMENT', `${what} "${p}" contains a NUL byte`);
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  const dotForm = p === '' || p === '.' || p.endsWith('/.');
  return { parts, rel: parts.length === 0 ? '.' : parts.join('/'), shown: `/${parts.join('/')}`, dirSyntax: p.endsWith('/') || dotForm, dotForm };
}

function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    native.closeFd(fd);
  } catch {
    /* cleanup only */
  }
}

function openRootFd(rootPath: string, context: string): number {
  try {
    return native.openRoot(rootPath);
  } catch (e) {
    throw wrap(e, `${context}: open the root ${rootPath}`);
  }
}

/** `join` for entry paths relative to an in-root base ("" is the base itself). */
function sub(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

// ---------------------------------------------------------------------------------------
// readFileInRoot

/**
 * Read a small regular file inside a root (the image's /etc/passwd, /etc/group), resolving
 * `relPath` in-root: symlinks are followed but stay inside `rootPath`, so an
 * `etc/passwd -> /etc/shadow` link reads `<root>/etc/shadow`, never the host's.
 *
 * Returns undefined when the file is missing (ENOENT, or a parent that is not a directory).
 * Anything else than a regular file (a FIFO, a device such as /dev/zero, a socket, a
 * directory) is an ERR_UNSUPPORTED naming the path, decided from an O_PATH fd before the
 * file is ever opened for reading (CVE-2024-9676: no blocking open, no endless read); so is
 * a file larger than `maxBytes` (checked on the size and again while reading).
 */
export function readFileInRoot(rootPath: string, relPath: string, maxBytes: number): Buffer | undefined {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new TypeError('maxBytes must be a non-negative integer');
  const p = parseInRootPath(relPath, 'path');
  const context = `read \`${p.shown}\` in ${rootPath}`;
  const { O_PATH, O_RDONLY } = native.inRootFlags;
  const rootFd = openRootFd(rootPath, context);
  let pathFd = -1;
  let fd = -1;
  try {
    try {
      pathFd = native.openInRoot(rootFd, p.rel, O_PATH);
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
      throw e;
    }
    const st = native.statAt(pathFd, '');
    if (st.type !== 'file') {
      throw new TsrunError('ERR_UNSUPPORTED', `${context}: it is a ${describeType(st.type)}, not a regular file`, { path: p.shown });
    }
    if (st.size > maxBytes) {
      throw new TsrunError('ERR_UNSUPPORTED', `${context}: the file is ${st.size} bytes, larger than the ${maxBytes}-byte limit`, { path: p.shown });
    }
    fd = native.openInRoot(pathFd, '', O_RDONLY); // the same inode, reopened
    const buf = Buffer.allocUnsafe(st.size + 1);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        // It grew since the fstat: read one byte past the cap to know whether it is over.
        throw new TsrunError('ERR_UNSUPPORTED', `${context}: the file grew past ${st.size} bytes while it was read`, { path: p.shown });
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    return buf.subarray(0, len);
  } catch (e) {
    if (e instanceof TsrunError) throw e;
    throw wrap(e, context);
  } finally {
    closeQuietly(fd);
    closeQuietly(pathFd);
    closeQuietly(rootFd);
  }
}

function describeType(t: string): string {
  switch (t) {
    case 'dir':
      return 'directory';
    case 'char':
      return 'character device';
    case 'block':
      return 'block device';
    case 'fifo':
      return 'FIFO';
    default:
      return t;
  }
}

// ---------------------------------------------------------------------------------------
// copyOut

export interface CopyOutOptions {
  /**
   * Follow `relPath` itself when it is a symlink (in-root), as `docker cp -L` does. Default:
   * the link is copied as a link. A path ending in "/" or "/." is always followed, and so is
   * every intermediate component (in-root); nothing inside a copied tree ever is.
   */
  followLink?: boolean;
  /**
   * Keep setuid/setgid bits on copied regular files. Default false: they are stripped, so a
   * container cannot plant a setuid-root program on the host through `cp`. Volume seeding,
   * whose destination only containers see, may pass true.
   */
  keepSetid?: boolean;
  /** Told about each entry inside the tree that is not copied (sockets), with its in-root path. */
  onSkip?: (path: string, reason: string) => void;
}

/**
 * Copy a file or directory tree from inside a root to the host, `docker cp CONTAINER:SRC
 * DEST` style (see the header for the DEST rules). Copied: directories, regular files (at
 * most the size they had when opened), symlinks (as symlinks, their targets verbatim, never
 * followed), FIFOs (made anew); with their mode, mtime and, as root, owner. Setuid/setgid
 * bits are stripped unless `keepSetid`. Hard links become separate files; xattrs, ACLs and
 * atimes are not copied.
 *
 * Device nodes are REFUSED (ERR_UNSUPPORTED naming the entry; the copy stops there): a
 * device node the container made (say the host's disk, mode 0666) must not appear on the
 * host, and skipping it silently would be a wrong copy. Sockets inside the tree are skipped
 * and reported through `onSkip` (docker skips them with a warning); a socket as SRC itself is
 * an error.
 *
 * Every object is read through an O_PATH fd opened in-root (O_NOFOLLOW below the top), its
 * type taken from that fd, and only regular files and directories are opened for reading.
 */
export async function copyOut(rootPath: string, relPath: string, destPath: string, opts: CopyOutOptions = {}): Promise<void> {
  const p = parseInRootPath(relPath, 'source path');
  const context = `copy \`${p.shown}\` out of ${rootPath} to ${destPath}`;
  const { O_PATH, O_NOFOLLOW } = native.inRootFlags;
  const rootFd = openRootFd(rootPath, context);
  let topFd = -1;
  try {
    const follow = opts.followLink === true || p.dirSyntax || p.parts.length === 0;
    try {
      topFd = native.openInRoot(rootFd, p.rel, O_PATH | (follow ? 0 : O_NOFOLLOW));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new TsrunError('ERR_INVALID_ARGUMENT', 'no such file or directory in the root', { errno: 2, path: p.shown });
      throw e;
    }
    const st = native.statAt(topFd, '');
    const isDir = st.type === 'dir';
    if (p.dirSyntax && !isDir) throw new TsrunError('ERR_INVALID_ARGUMENT', 'the source is not a directory', { path: p.shown });
    if (st.type === 'socket') throw new TsrunError('ERR_UNSUPPORTED', 'the source is a socket, which cannot be copied', { path: p.shown });

    const dst = statOrUndefined(destPath);
    let target: string;
    if (p.dotForm || p.parts.length === 0) {
      if (dst && !dst.isDirectory()) throw conflict(destPath, 'a directory', 'a non-directory');
      target = destPath; // the contents go into DEST, which takes the source directory's metadata
    } else if (dst?.isDirectory()) {
      target = join(destPath, p.parts[p.parts.length - 1]!);
    } else {
      if (dst && isDir) throw conflict(destPath, 'a directory', 'a non-directory');
      if (!dst && destPath.endsWith('/') && !isDir)
        throw new TsrunError('ERR_INVALID_ARGUMENT', 'the destination directory does not exist', { path: destPath });
      target = destPath;
    }
    await new OutCopier(opts).copy(topFd, st, p.shown, target, 0);
  } catch (e) {
    throw wrap(e, context);
  } finally {
    closeQuietly(topFd);
    closeQuietly(rootFd);
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

function conflict(path: string, what: string, over: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `cannot overwrite ${over} \`${path}\` with ${what}`, { path });
}

class OutCopier {
  private readonly root = isRoot();
  constructor(private readonly opts: CopyOutOptions) {}

  /** Copy the object `fd` (an O_PATH fd, stat `st`) found at in-root `inPath` to host `dest`. */
  async copy(fd: number, st: InRootStat, inPath: string, dest: string, depth: number): Promise<void> {
    const context = `copy \`${inPath}\``;
    try {
      switch (st.type) {
        case 'dir':
          return await this.dir(fd, st, inPath, dest, depth);
        case 'file':
          return await this.file(fd, st, dest);
        case 'symlink': {
          const target = native.readlinkAt(fd, '');
          this.clearForNonDir(dest);
          symlinkSync(target, dest);
          if (this.root) lchownSync(dest, st.uid, st.gid);
          lutimesSync(dest, st.mtimeSec, st.mtimeSec);
          return;
        }
        case 'fifo':
          this.clearForNonDir(dest);
          native.mkfifo(dest, 0o600);
          if (this.root) lchownSync(dest, st.uid, st.gid);
          chmodSync(dest, st.mode & ~SETID);
          lutimesSync(dest, st.mtimeSec, st.mtimeSec);
          return;
        case 'socket':
          this.opts.onSkip?.(inPath, 'a socket cannot be copied');
          return;
        case 'char':
        case 'block':
          throw new TsrunError(
            'ERR_UNSUPPORTED',
            `${context}: it is a ${describeType(st.type)} (${st.rdevMajor}:${st.rdevMinor}); device nodes are not copied out of a container`,
            { path: inPath },
          );
        default:
          throw new TsrunError('ERR_UNSUPPORTED', `${context}: unknown file type`, { path: inPath });
      }
    } catch (e) {
      if (e instanceof TsrunError) throw e;
      throw wrap(e, context);
    }
  }

  private async dir(fd: number, st: InRootStat, inPath: string, dest: string, depth: number): Promise<void> {
    if (depth >= MAX_DEPTH) throw new TsrunError('ERR_UNSUPPORTED', `copy \`${inPath}\`: more than ${MAX_DEPTH} directory levels`, { path: inPath });
    const existing = lstatOrUndefined(dest);
    if (!existing) mkdirSync(dest, { mode: 0o700 });
    else if (!existing.isDirectory()) throw conflict(dest, 'a directory', 'a non-directory');
    const { O_PATH, O_NOFOLLOW } = native.inRootFlags;
    for (const e of native.listDirFd(fd)) {
      const child = native.openInRoot(fd, e.name, O_PATH | O_NOFOLLOW);
      try {
        const cst = native.statAt(child, '');
        await this.copy(child, cst, inPath === '/' ? `/${e.name}` : `${inPath}/${e.name}`, join(dest, e.name), depth + 1);
      } finally {
        closeQuietly(child);
      }
    }
    // After the children: a read-only directory must stay writable while it is filled.
    if (this.root) lchownSync(dest, st.uid, st.gid);
    chmodSync(dest, st.mode);
    lutimesSync(dest, st.mtimeSec, st.mtimeSec);
  }

  private async file(fd: number, st: InRootStat, dest: string): Promise<void> {
    const rfd = native.openInRoot(fd, '', native.inRootFlags.O_RDONLY); // this inode, for reading
    try {
      this.clearForNonDir(dest);
      const wfd = openSync(dest, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
      try {
        await pump(rfd, wfd, st.size);
        if (this.root) fchownSync(wfd, st.uid, st.gid);
        fchmodSync(wfd, this.opts.keepSetid ? st.mode : st.mode & ~SETID);
        futimesSync(wfd, st.mtimeSec, st.mtimeSec);
      } finally {
        closeSync(wfd);
      }
    } finally {
      closeQuietly(rfd);
    }
  }

  /** Make room for a non-directory at host `dest`: an existing non-directory is unlinked (never followed), a directory is an error. */
  private clearForNonDir(dest: string): void {
    const existing = lstatOrUndefined(dest);
    if (!existing) return;
    if (existing.isDirectory()) throw conflict(dest, 'a non-directory', 'a directory');
    unlinkSync(dest);
  }
}

/** Copy up to `max` bytes from fd `src` to fd `dst` (stops early at EOF). */
async function pump(src: number, dst: number, max: number): Promise<void> {
  if (max <= 0) return;
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, max));
  let left = max;
  while (left > 0) {
    const { bytesRead } = await readAsync(src, buf, 0, Math.min(buf.length, left), null);
    if (bytesRead === 0) break;
    let off = 0;
    while (off < bytesRead) off += (await writeAsync(dst, buf, off, bytesRead - off)).bytesWritten;
    left -= bytesRead;
  }
}

// ---------------------------------------------------------------------------------------
// copyIn

export interface CopyInOptions {
  /** Follow `srcPath` itself when it is a symlink (`docker cp -L`). Default: copy the link. Nothing inside a tree is followed. */
  followLink?: boolean;
  /** Owner for every copied entry (docker cp without -a: 0:0). Default: the source's own (as root; otherwise applyEntry keeps ours). */
  owner?: { uid: number; gid: number };
  /** Told about each host entry that is not copied (sockets), with its host path. */
  onSkip?: (path: string, reason: string) => void;
  /** Leave out host entries (and what is under them) for which this returns false (.dockerignore). */
  filter?: (hostPath: string) => boolean;
  /** Permission bits for every copied file and directory (COPY --chmod). */
  chmod?: number;
  /** mtime for every copied entry, seconds (reproducible builds: SOURCE_DATE_EPOCH). */
  mtimeSec?: number;
}

/**
 * Copy a host file or tree into a root, `docker cp SRC CONTAINER:DEST` style (see the header
 * for the DEST rules), through the layer-unpack write primitives.
 *
 * DEST is resolved in-root (symlinks followed, confined to the root) only to find the
 * directory the copy goes into: the existing DEST directory, or DEST's parent. That
 * directory's O_PATH fd then serves as the root for applyEntry, so:
 * - a symlink at DEST or at any of its parents can only lead somewhere inside the root;
 * - when DEST itself is a symlink that does not resolve to a directory, the link is
 *   REPLACED by the copied file (never written through); a directory over it is an error;
 * - below that directory, applyEntry refuses any path through a symlink (ELOOP: e.g. a
 *   container symlink `DEST/sub -> /etc` where the host tree has `sub/…` is an error, as
 *   the directory-over-non-directory rule says too) and never follows the last component.
 *
 * Copied: directories (merged into existing ones, which take the source's owner and mode),
 * regular files, symlinks (verbatim), FIFOs and device nodes (the host side is trusted),
 * with mode, mtime and owner (`owner`, else the source's; only as root). Sockets are skipped
 * and reported through `onSkip`. Hard links become separate files; xattrs are not copied.
 * In the "SRC/." form into an existing directory, that directory keeps its own metadata.
 */
export async function copyIn(srcPath: string, rootPath: string, relDest: string, opts: CopyInOptions = {}): Promise<void> {
  const d = parseInRootPath(relDest, 'destination path');
  const context = `copy ${srcPath} into ${rootPath} at \`${d.shown}\``;
  const { O_PATH, O_DIRECTORY } = native.inRootFlags;
  let rootFd = -1;
  let baseFd = -1;
  try {
    const st = opts.followLink ? statSync(srcPath, { bigint: true }) : lstatSync(srcPath, { bigint: true });
    const isDir = st.isDirectory();
    const name = basename(resolve(srcPath));
    const contents = basename(srcPath) === '.' || name === '';
    if (contents && !isDir) throw new TsrunError('ERR_INVALID_ARGUMENT', 'the source is not a directory', { path: srcPath });

    rootFd = openRootFd(rootPath, context);
    const destType = inRootType(rootFd, d.rel); // following symlinks, in-root
    let top: string; // SRC's entry path below baseFd; "" = SRC's contents go straight into baseFd
    if (destType === 'dir') {
      baseFd = native.openInRoot(rootFd, d.rel, O_PATH | O_DIRECTORY);
      top = contents ? '' : name;
    } else {
      if (destType !== undefined && isDir) throw conflict(d.shown, 'a directory', 'a non-directory');
      if (d.dirSyntax && (destType !== undefined || !isDir)) {
        throw new TsrunError('ERR_INVALID_ARGUMENT', `the destination directory ${destType === undefined ? 'does not exist' : 'is not a directory'}`, {
          path: d.shown,
        });
      }
      try {
        baseFd = native.openInRoot(rootFd, d.parts.slice(0, -1).join('/') || '.', O_PATH | O_DIRECTORY);
      } catch (e) {
        if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) {
          throw new TsrunError('ERR_INVALID_ARGUMENT', "the destination's parent directory does not exist", { path: d.shown });
        }
        throw e;
      }
      top = d.parts[d.parts.length - 1]!; // may exist: a non-directory, or a link that does not resolve
    }
    const copier = new InCopier(baseFd, opts);
    if (top === '') {
      for (const child of readdirSync(srcPath)) await copier.put(join(srcPath, child), undefined, child, true, 1);
    } else {
      await copier.put(srcPath, st, top, true, 0);
    }
    copier.finish();
  } catch (e) {
    throw wrap(e, context);
  } finally {
    closeQuietly(baseFd);
    closeQuietly(rootFd);
  }
}

/** The type of what `rel` resolves to in-root (symlinks followed), or undefined if nothing. */
function inRootType(rootFd: number, rel: string): string | undefined {
  let fd = -1;
  try {
    fd = native.openInRoot(rootFd, rel, native.inRootFlags.O_PATH);
    return native.statAt(fd, '').type;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  } finally {
    closeQuietly(fd);
  }
}

class InCopier {
  private readonly dirs = new Map<string, number>();
  constructor(
    private readonly baseFd: number,
    private readonly opts: CopyInOptions,
  ) {}

  /**
   * Copy host `src` (lstat `st`, or undefined to lstat it here) to `path` below baseFd.
   * `check`: the parent existed before the copy, so `path` may too (the dir/non-dir rule).
   */
  async put(src: string, st: BigIntStats | undefined, path: string, check: boolean, depth: number): Promise<void> {
    if (depth > 0 && this.opts.filter && !this.opts.filter(src)) return;
    const s = st ?? lstatSync(src, { bigint: true });
    const norm = normalisePath(path, DEFAULT_LAYER_LIMITS);
    if (!norm.ok || norm.path !== path)
      throw new TsrunError('ERR_INVALID_ARGUMENT', `entry "${path}": ${norm.ok ? 'not normalised' : norm.reason}`, { path: src });
    const existing = check ? this.existing(path) : undefined;
    const entry: InRootEntry = {
      type: 'file',
      path,
      mode: this.opts.chmod !== undefined && !s.isSymbolicLink() ? this.opts.chmod & 0o7777 : Number(s.mode & 0o7777n),
      uid: this.opts.owner?.uid ?? Number(s.uid),
      gid: this.opts.owner?.gid ?? Number(s.gid),
      mtimeSec: this.opts.mtimeSec ?? Number(s.mtimeNs / 1_000_000_000n) + Number(s.mtimeNs % 1_000_000_000n) / 1e9,
    };
    const isDir = s.isDirectory();
    if (existing !== undefined && (existing === 'dir') !== isDir) {
      throw conflict(path, isDir ? 'a directory' : 'a non-directory', existing === 'dir' ? 'a directory' : 'a non-directory');
    }
    try {
      if (isDir) {
        if (depth >= MAX_DEPTH) throw new TsrunError('ERR_UNSUPPORTED', `${src}: more than ${MAX_DEPTH} directory levels`, { path: src });
        native.applyEntry(this.baseFd, { ...entry, type: 'dir' });
        this.dirs.set(path, entry.mtimeSec);
        const merge = existing === 'dir';
        for (const child of readdirSync(src)) await this.put(join(src, child), undefined, sub(path, child), merge, depth + 1);
      } else if (s.isFile()) {
        await this.file(src, entry, s.size, depth === 0 && this.opts.followLink === true);
      } else if (s.isSymbolicLink()) {
        native.applyEntry(this.baseFd, { ...entry, type: 'symlink', linkname: readlinkSync(src) });
      } else if (s.isFIFO()) {
        native.applyEntry(this.baseFd, { ...entry, type: 'fifo' });
      } else if (s.isCharacterDevice() || s.isBlockDevice()) {
        const { major, minor } = splitDev(s.rdev);
        native.applyEntry(this.baseFd, { ...entry, type: s.isCharacterDevice() ? 'char' : 'block', devmajor: major, devminor: minor });
      } else if (s.isSocket()) {
        this.opts.onSkip?.(src, 'a socket cannot be copied');
      } else {
        throw new TsrunError('ERR_UNSUPPORTED', `${src}: unknown file type`, { path: src });
      }
    } catch (e) {
      if (e instanceof TsrunError) throw e;
      throw wrap(e, `entry "${path}"`);
    }
  }

  private async file(src: string, entry: InRootEntry, size: bigint, follow: boolean): Promise<void> {
    const hfd = openSync(src, fsc.O_RDONLY | fsc.O_NONBLOCK | (follow ? 0 : fsc.O_NOFOLLOW));
    try {
      const hst = fstatSync(hfd, { bigint: true });
      if (!hst.isFile()) throw new TsrunError('ERR_INVALID_ARGUMENT', `${src} changed while it was copied`, { path: src });
      const fd = native.applyEntry(this.baseFd, entry);
      try {
        await pump(hfd, fd, Number(size));
      } catch (e) {
        closeQuietly(fd);
        throw e;
      }
      native.finishFile(fd, entry); // closes fd
    } finally {
      closeSync(hfd);
    }
  }

  /** The type of what is at `path` below baseFd now ('dir' or another), or undefined if nothing. */
  private existing(path: string): 'dir' | 'other' | undefined {
    const { O_PATH, O_NOFOLLOW } = native.inRootFlags;
    let fd = -1;
    try {
      fd = native.openInRoot(this.baseFd, path, O_PATH | O_NOFOLLOW);
      return native.statAt(fd, '').type === 'dir' ? 'dir' : 'other';
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    } finally {
      closeQuietly(fd);
    }
  }

  /** Directory mtimes, once every child is in place. */
  finish(): void {
    if (this.dirs.size > 0) native.finishDirs(this.baseFd, [...this.dirs.keys()], [...this.dirs.values()]);
  }
}

/** glibc's gnu_dev_major/minor on a 64-bit dev_t. */
function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}
