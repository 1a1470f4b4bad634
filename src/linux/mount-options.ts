// OCI mount `options` → mount(2) flags, propagation changes, mount_setattr(2)
// recursive attributes and the filesystem data string; modelled on crun's
// src/libcrun/mount_flags.perf table and runc's parseMountOptions.

import { invalidConfig } from '../util/errors.js';

// mount(2) flags (include/uapi/linux/mount.h).
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_SYNCHRONOUS = 16;
export const MS_REMOUNT = 32;
export const MS_MANDLOCK = 64;
export const MS_DIRSYNC = 128;
export const MS_NOSYMFOLLOW = 256;
export const MS_NOATIME = 1024;
export const MS_NODIRATIME = 2048;
export const MS_BIND = 4096;
export const MS_MOVE = 8192;
export const MS_REC = 16384;
export const MS_SILENT = 32768;
export const MS_POSIXACL = 1 << 16;
export const MS_UNBINDABLE = 1 << 17;
export const MS_PRIVATE = 1 << 18;
export const MS_SLAVE = 1 << 19;
export const MS_SHARED = 1 << 20;
export const MS_RELATIME = 1 << 21;
export const MS_I_VERSION = 1 << 23;
export const MS_STRICTATIME = 1 << 24;
export const MS_LAZYTIME = 1 << 25;

// mount_setattr(2) attributes.
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR__ATIME = 0x70;
export const MOUNT_ATTR_RELATIME = 0x0;
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR_NODIRATIME = 0x80;
export const MOUNT_ATTR_IDMAP = 0x100000;
export const MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

export interface MountOptionExtra {
  /** Copy the directory's existing content into the new tmpfs (crun/podman). */
  tmpcopyup?: boolean;
  /** Idmapped mount using the mount's (or the container's) mappings. */
  idmap?: boolean;
  /** `ridmap`: idmap applied recursively to every submount. */
  idmapRecursive?: boolean;
  /** `copy-symlink`: if the source is a symlink, create a symlink instead of mounting. */
  copySymlink?: boolean;
  /** `src-nofollow`: do not follow a symlink at the bind source. */
  srcNofollow?: boolean;
  /** `dest-nofollow`: do not follow a symlink at the destination. */
  destNofollow?: boolean;
  /** mount_setattr(2) attr_set for the `r*` options (applied with AT_RECURSIVE). */
  recAttrSet: number;
  /** mount_setattr(2) attr_clr for the `r*` options. */
  recAttrClear: number;
}

export interface ParsedMountOptions {
  /** mount(2) flags, including MS_BIND / MS_REC for bind / rbind. */
  flags: number;
  /** Flags explicitly turned off (rw, suid, dev, ...); needed when remounting a bind mount. */
  clearFlags: number;
  /** One mount(2) propagation change per entry, in order (e.g. MS_REC|MS_PRIVATE). */
  propagation: number[];
  /** Filesystem-specific options, verbatim and in order; join with "," for mount(2). */
  data: string[];
  bind: boolean;
  /** rbind was given. */
  recursive: boolean;
  /** MS_RDONLY is set after all options (the last of ro/rw wins). */
  ro: boolean;
  extra: MountOptionExtra;
}

type Entry =
  | { kind: 'flag'; clear: boolean; value: number }
  | { kind: 'propagation'; value: number }
  | { kind: 'recattr'; clear: boolean; value: number }
  | { kind: 'extra'; key: Exclude<keyof MountOptionExtra, 'recAttrSet' | 'recAttrClear'> }
  | { kind: 'ignore' };

const set = (value: number): Entry => ({ kind: 'flag', clear: false, value });
const clr = (value: number): Entry => ({ kind: 'flag', clear: true, value });
const prop = (value: number): Entry => ({ kind: 'propagation', value });
const rset = (value: number): Entry => ({ kind: 'recattr', clear: false, value });
const rclr = (value: number): Entry => ({ kind: 'recattr', clear: true, value });

const TABLE: ReadonlyMap<string, Entry> = new Map<string, Entry>([
  ['defaults', { kind: 'ignore' }],
  ['ro', set(MS_RDONLY)],
  ['rw', clr(MS_RDONLY)],
  ['nosuid', set(MS_NOSUID)],
  ['suid', clr(MS_NOSUID)],
  ['nodev', set(MS_NODEV)],
  ['dev', clr(MS_NODEV)],
  ['noexec', set(MS_NOEXEC)],
  ['exec', clr(MS_NOEXEC)],
  ['sync', set(MS_SYNCHRONOUS)],
  ['async', clr(MS_SYNCHRONOUS)],
  ['remount', set(MS_REMOUNT)],
  ['mand', set(MS_MANDLOCK)],
  ['nomand', clr(MS_MANDLOCK)],
  ['dirsync', set(MS_DIRSYNC)],
  ['nosymfollow', set(MS_NOSYMFOLLOW)],
  ['symfollow', clr(MS_NOSYMFOLLOW)],
  ['noatime', set(MS_NOATIME)],
  ['atime', clr(MS_NOATIME)],
  ['nodiratime', set(MS_NODIRATIME)],
  ['diratime', clr(MS_NODIRATIME)],
  ['bind', set(MS_BIND)],
  ['rbind', set(MS_BIND | MS_REC)],
  ['silent', set(MS_SILENT)],
  ['loud', clr(MS_SILENT)],
  ['relatime', set(MS_RELATIME)],
  ['norelatime', clr(MS_RELATIME)],
  ['iversion', set(MS_I_VERSION)],
  ['noiversion', clr(MS_I_VERSION)],
  ['strictatime', set(MS_STRICTATIME)],
  ['nostrictatime', clr(MS_STRICTATIME)],
  ['lazytime', set(MS_LAZYTIME)],
  ['nolazytime', clr(MS_LAZYTIME)],

  ['shared', prop(MS_SHARED)],
  ['rshared', prop(MS_REC | MS_SHARED)],
  ['slave', prop(MS_SLAVE)],
  ['rslave', prop(MS_REC | MS_SLAVE)],
  ['private', prop(MS_PRIVATE)],
  ['rprivate', prop(MS_REC | MS_PRIVATE)],
  ['unbindable', prop(MS_UNBINDABLE)],
  ['runbindable', prop(MS_REC | MS_UNBINDABLE)],

  ['rro', rset(MOUNT_ATTR_RDONLY)],
  ['rrw', rclr(MOUNT_ATTR_RDONLY)],
  ['rnosuid', rset(MOUNT_ATTR_NOSUID)],
  ['rsuid', rclr(MOUNT_ATTR_NOSUID)],
  ['rnodev', rset(MOUNT_ATTR_NODEV)],
  ['rdev', rclr(MOUNT_ATTR_NODEV)],
  ['rnoexec', rset(MOUNT_ATTR_NOEXEC)],
  ['rexec', rclr(MOUNT_ATTR_NOEXEC)],
  ['rnodiratime', rset(MOUNT_ATTR_NODIRATIME)],
  ['rdiratime', rclr(MOUNT_ATTR_NODIRATIME)],
  ['rrelatime', rset(MOUNT_ATTR_RELATIME)],
  ['rnorelatime', rclr(MOUNT_ATTR_RELATIME)],
  ['rnoatime', rset(MOUNT_ATTR_NOATIME)],
  ['ratime', rclr(MOUNT_ATTR_NOATIME)],
  ['rstrictatime', rset(MOUNT_ATTR_STRICTATIME)],
  ['rnostrictatime', rclr(MOUNT_ATTR_STRICTATIME)],
  ['rnosymfollow', rset(MOUNT_ATTR_NOSYMFOLLOW)],
  ['rsymfollow', rclr(MOUNT_ATTR_NOSYMFOLLOW)],

  ['tmpcopyup', { kind: 'extra', key: 'tmpcopyup' }],
  ['idmap', { kind: 'extra', key: 'idmap' }],
  ['ridmap', { kind: 'extra', key: 'idmapRecursive' }],
  ['copy-symlink', { kind: 'extra', key: 'copySymlink' }],
  ['src-nofollow', { kind: 'extra', key: 'srcNofollow' }],
  ['dest-nofollow', { kind: 'extra', key: 'destNofollow' }],
]);

/** True if `name` is an option this table handles (anything else is filesystem data). */
export function isKnownMountOption(name: string): boolean {
  return TABLE.has(name);
}

/**
 * Parse OCI mount options. Later options override earlier ones (`ro,rw` is rw);
 * unknown options are filesystem data, kept verbatim and in order. Empty strings
 * are dropped.
 */
export function parseMountOptions(options: string[] | undefined): ParsedMountOptions {
  let flags = 0;
  let clearFlags = 0;
  let recAttrSet = 0;
  let recAttrClear = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  const extra: MountOptionExtra = { recAttrSet: 0, recAttrClear: 0 };

  for (const opt of options ?? []) {
    if (opt === '') continue;
    const e = TABLE.get(opt);
    if (e === undefined) {
      data.push(opt);
      continue;
    }
    switch (e.kind) {
      case 'ignore':
        break;
      case 'flag':
        if (e.clear) {
          flags &= ~e.value;
          clearFlags |= e.value;
        } else {
          flags |= e.value;
          clearFlags &= ~e.value;
        }
        break;
      case 'propagation':
        propagation.push(e.value);
        break;
      case 'recattr':
        if (e.clear) {
          recAttrSet &= ~e.value;
          recAttrClear |= e.value;
        } else if ((e.value & MOUNT_ATTR__ATIME) === e.value) {
          // The atime mode is a 3-bit field: mount_setattr(2) wants the new mode in
          // attr_set and the whole MOUNT_ATTR__ATIME mask in attr_clr.
          recAttrSet = (recAttrSet & ~MOUNT_ATTR__ATIME) | e.value;
          recAttrClear |= MOUNT_ATTR__ATIME;
        } else {
          recAttrSet |= e.value;
          recAttrClear &= ~e.value;
        }
        break;
      case 'extra':
        extra[e.key] = true;
        if (e.key === 'idmapRecursive') extra.idmap = true;
        break;
    }
  }
  extra.recAttrSet = recAttrSet;
  extra.recAttrClear = recAttrClear;
  return {
    flags,
    clearFlags,
    propagation,
    data,
    bind: (flags & MS_BIND) !== 0,
    recursive: (flags & MS_REC) !== 0,
    ro: (flags & MS_RDONLY) !== 0,
    extra,
  };
}

const ROOTFS_PROPAGATION: ReadonlyMap<string, number> = new Map([
  ['shared', MS_REC | MS_SHARED],
  ['rshared', MS_REC | MS_SHARED],
  ['slave', MS_REC | MS_SLAVE],
  ['rslave', MS_REC | MS_SLAVE],
  ['private', MS_REC | MS_PRIVATE],
  ['rprivate', MS_REC | MS_PRIVATE],
  ['unbindable', MS_REC | MS_UNBINDABLE],
  ['runbindable', MS_REC | MS_UNBINDABLE],
]);

/**
 * The mount(2) flags for `linux.rootfsPropagation` (runc semantics: always
 * recursive). Throws ERR_INVALID_CONFIG for anything else; callers treat an
 * absent or empty field as "use the default" before calling this.
 */
export function propagationFlag(name: string): number {
  const f = ROOTFS_PROPAGATION.get(name);
  if (f === undefined) throw invalidConfig('linux.rootfsPropagation', `has unknown value "${name}"`);
  return f;
}
