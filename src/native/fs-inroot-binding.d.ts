// The addon's fd-based in-root filesystem operations (native/fs_inroot.cc): the writes
// below are for layer unpacking and `cp` into a root; the reads (openInRoot and friends, at
// the end) for user lookup, `cp` out of a root and volume seeding (src/linux/in-root.ts).
//
// Every write call takes a root directory fd from openRoot() and a path relative to it that the
// entry policy (src/image/layer/entry-policy.ts) has already normalised: no leading "/",
// no "", "." or ".." components. Parents are resolved with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS): an entry whose parent path goes through a
// symlink is refused (ELOOP); the last component is only touched with *at() calls that do
// not follow it. Failures throw Errors shaped like Node's SystemError: { code, errno,
// syscall, path } with `path` the entry path.

export type InRootEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'whiteout' | 'opaque';

export interface InRootEntry {
  type: InRootEntryType;
  /** Normalised path relative to the root; "." only for an 'opaque' marker on the root. */
  path: string;
  /** Permission bits incl. setuid/setgid/sticky (& 0o7777); ignored for symlinks, hardlinks, whiteouts, opaque. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, fractions allowed; atime is set to the same value. */
  mtimeSec: number;
  /** symlink: the target, stored verbatim. hardlink: a normalised root-relative path of a regular file of this layer. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Only `user.*` and `security.capability` are accepted; applied to files (in finishFile) and directories. */
  xattrs?: Record<string, Buffer>;
}

/** File types as the in-root read calls report them (from st_mode / d_type). */
export type InRootFileType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket' | 'unknown';

export interface InRootDirEntry {
  /** One path component, valid UTF-8 (a name that is not fails the whole listing with EILSEQ). */
  name: string;
  type: InRootFileType;
}

/** lstat(2) of one entry, as statAt returns it. */
export interface InRootStat {
  type: InRootFileType;
  /** Permission bits incl. setuid/setgid/sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** st_mtim in seconds, fractions included (sub-microsecond precision is lost to the double). */
  mtimeSec: number;
  nlink: number;
  /** st_rdev of char/block devices (0 otherwise). */
  rdevMajor: number;
  rdevMinor: number;
}

/** The only open flags openInRoot accepts (the addon's values: O_PATH differs by arch and is not in fs.constants). */
export interface InRootOpenFlags {
  readonly O_RDONLY: number;
  readonly O_PATH: number;
  readonly O_DIRECTORY: number;
  readonly O_NOFOLLOW: number;
}

export interface FsInRootBinding {
  /** Every xattr under a host directory, never following a symlink: [rel ('' = the root), name, value]. */
  xattrTree(root: string, dirsOnly?: boolean, name?: string): Array<[string, string, Buffer]>;
  /** open(path, O_PATH|O_DIRECTORY|O_CLOEXEC) of a trusted directory; also checks that openat2 works. */
  openRoot(path: string): number;
  closeFd(fd: number): void;
  /**
   * Create one entry, making missing parents (0755, 0:0). An existing non-directory at the
   * path is replaced (an existing directory is removed recursively unless the entry is a
   * directory, which merges: it keeps its contents and takes the new owner/mode/xattrs).
   *
   * - file: returns an fd (O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC) whose owner and mode
   *   are already set; write the data to it, then call finishFile(fd, entry).
   * - dir: owner, mode and xattrs now; the mtime is left to finishDirs.
   * - symlink / char / block / fifo: created with owner, mode (not for symlinks) and mtime.
   * - hardlink: linkname resolved in-root without symlinks, must be a regular file.
   * - whiteout: a 0:0 char device at path, unless the layer already put something there.
   * - opaque: trusted.overlay.opaque=y on the directory at path (created if missing).
   *
   * Returns the write fd for 'file', -1 otherwise.
   */
  applyEntry(rootFd: number, entry: InRootEntry): number;
  /** After a file's data: re-assert setuid/setgid, set xattrs, set mtime, close. Always closes fd. */
  finishFile(fd: number, entry: InRootEntry): void;
  /** Set directory mtimes (after all children exist); missing or non-directory paths are skipped. */
  finishDirs(rootFd: number, paths: string[], mtimes: number[]): void;

  // ---- reads (src/linux/in-root.ts) ----

  /** Values for openInRoot's `flags`. */
  readonly inRootFlags: InRootOpenFlags;
  /**
   * openat2(rootFd, relPath, { resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS }): symlinks
   * ARE followed, but confined to rootFd (an absolute target or ".." never leaves it). Any
   * directory fd may serve as the root. `flags` may only combine O_RDONLY, O_PATH,
   * O_DIRECTORY and O_NOFOLLOW (else EINVAL); O_CLOEXEC is always added. relPath "" means
   * rootFd itself (reopen an O_PATH fd for reading, or duplicate it).
   *
   * Without O_PATH the object is first opened O_PATH and fstat()ed; only a regular file
   * (reopened through /proc/self/fd: the very same inode) or a directory (openat ".") is
   * then opened O_RDONLY|O_NOCTTY. A FIFO, device or socket is refused with ENXIO without
   * ever being opened for I/O (no blocking open, no device side effects), and a symlink
   * under O_NOFOLLOW with ELOOP. With O_PATH, whatever is there is returned (a symlink's
   * own fd under O_NOFOLLOW). Errors are SystemError-shaped, `path` = relPath.
   */
  openInRoot(rootFd: number, relPath: string, flags: number): number;
  /** The entries of a directory fd (O_PATH is fine), without "." and "..", in readdir order. */
  listDirFd(dirFd: number): InRootDirEntry[];
  /** lstat of `name` below dirFd: a single component (not ".."), never followed; "" = dirFd itself (fstat). */
  statAt(dirFd: number, name: string): InRootStat;
  /** readlink of the symlink `name` below dirFd ("" = dirFd itself, an O_PATH|O_NOFOLLOW symlink fd); EILSEQ if not UTF-8. */
  readlinkAt(dirFd: number, name: string): string;
}
