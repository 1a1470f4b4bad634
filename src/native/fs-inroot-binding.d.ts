// The addon's fd-based in-root filesystem operations (native/fs_inroot.cc).
//
// Every call takes a root directory fd from openRoot() and a path relative to it that the
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

export interface FsInRootBinding {
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
}
