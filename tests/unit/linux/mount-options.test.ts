import { describe, expect, it } from 'vitest';
import {
  MOUNT_ATTR__ATIME,
  MOUNT_ATTR_NOATIME,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NODIRATIME,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_RDONLY,
  MOUNT_ATTR_STRICTATIME,
  MS_BIND,
  MS_DIRSYNC,
  MS_LAZYTIME,
  MS_MANDLOCK,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
  parseMountOptions,
  propagationFlag,
} from '../../../src/linux/mount-options.js';
import { TsrunError } from '../../../src/util/errors.js';

describe('MS_* constants', () => {
  it('have the Linux values', () => {
    expect([MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC]).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
    expect([MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_SILENT]).toEqual([1024, 2048, 4096, 16384, 32768]);
    expect([MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_RELATIME]).toEqual([0x20000, 0x40000, 0x80000, 0x100000, 0x200000]);
    expect([MS_STRICTATIME, MS_LAZYTIME]).toEqual([0x1000000, 0x2000000]);
  });
});

describe('parseMountOptions', () => {
  it('parses a podman-like bind mount list', () => {
    const r = parseMountOptions(['nosuid', 'noexec', 'nodev', 'rbind', 'rprivate', 'ro', 'mode=755', 'size=65536k']);
    expect(r.flags).toBe(MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_BIND | MS_REC | MS_RDONLY);
    expect(r.flags).toBe(2 | 8 | 4 | 4096 | 16384 | 1);
    expect(r.clearFlags).toBe(0);
    expect(r.propagation).toEqual([MS_REC | MS_PRIVATE]);
    expect(r.data).toEqual(['mode=755', 'size=65536k']);
    expect(r.bind).toBe(true);
    expect(r.recursive).toBe(true);
    expect(r.ro).toBe(true);
    expect(r.extra).toEqual({ recAttrSet: 0, recAttrClear: 0 });
  });

  it('handles undefined and empty', () => {
    const empty = {
      flags: 0,
      clearFlags: 0,
      propagation: [],
      data: [],
      bind: false,
      recursive: false,
      ro: false,
      extra: { recAttrSet: 0, recAttrClear: 0 },
    };
    expect(parseMountOptions(undefined)).toEqual(empty);
    expect(parseMountOptions([])).toEqual(empty);
    expect(parseMountOptions(['', 'defaults'])).toEqual(empty);
  });

  it('keeps filesystem data verbatim and in order', () => {
    const r = parseMountOptions(['newinstance', 'nosuid', 'ptmxmode=0666', 'noexec', 'mode=0620', 'gid=5']);
    expect(r.data).toEqual(['newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
    expect(r.flags).toBe(MS_NOSUID | MS_NOEXEC);
    const o = parseMountOptions(['lowerdir=/a:/b,upperdir=/u', 'workdir=/w', 'RO']);
    expect(o.data).toEqual(['lowerdir=/a:/b,upperdir=/u', 'workdir=/w', 'RO']);
    expect(o.flags).toBe(0);
  });

  it('maps every set flag', () => {
    const cases: Array<[string, number]> = [
      ['ro', 1],
      ['nosuid', 2],
      ['nodev', 4],
      ['noexec', 8],
      ['sync', 16],
      ['remount', 32],
      ['mand', 64],
      ['dirsync', 128],
      ['noatime', 1024],
      ['nodiratime', 2048],
      ['bind', 4096],
      ['rbind', 4096 | 16384],
      ['silent', 32768],
      ['relatime', 1 << 21],
      ['strictatime', 1 << 24],
      ['lazytime', 1 << 25],
    ];
    for (const [opt, flag] of cases) {
      const r = parseMountOptions([opt]);
      expect({ opt, flags: r.flags, data: r.data }).toEqual({ opt, flags: flag, data: [] });
    }
  });

  it('clear options remove the flag and record it in clearFlags; last one wins', () => {
    const cases: Array<[string, string, number]> = [
      ['ro', 'rw', MS_RDONLY],
      ['nosuid', 'suid', MS_NOSUID],
      ['nodev', 'dev', MS_NODEV],
      ['noexec', 'exec', MS_NOEXEC],
      ['sync', 'async', MS_SYNCHRONOUS],
      ['mand', 'nomand', MS_MANDLOCK],
      ['noatime', 'atime', MS_NOATIME],
      ['nodiratime', 'diratime', MS_NODIRATIME],
      ['relatime', 'norelatime', MS_RELATIME],
      ['strictatime', 'nostrictatime', MS_STRICTATIME],
      ['silent', 'loud', MS_SILENT],
    ];
    for (const [on, off, flag] of cases) {
      const a = parseMountOptions([on, off]);
      expect({ on, off, has: (a.flags & flag) !== 0, cleared: (a.clearFlags & flag) !== 0 }).toEqual({
        on,
        off,
        has: false,
        cleared: true,
      });
      const b = parseMountOptions([off, on]);
      expect({ on, off, flags: b.flags, clear: b.clearFlags }).toEqual({ on, off, flags: flag, clear: 0 });
    }
    expect(parseMountOptions(['ro', 'rw']).ro).toBe(false);
    expect(parseMountOptions(['rw', 'ro']).ro).toBe(true);
  });

  it('collects propagation changes in order', () => {
    const r = parseMountOptions(['shared', 'rslave', 'private', 'runbindable', 'rshared', 'slave', 'rprivate', 'unbindable']);
    expect(r.propagation).toEqual([
      MS_SHARED,
      MS_REC | MS_SLAVE,
      MS_PRIVATE,
      MS_REC | MS_UNBINDABLE,
      MS_REC | MS_SHARED,
      MS_SLAVE,
      MS_REC | MS_PRIVATE,
      MS_UNBINDABLE,
    ]);
    expect(r.flags).toBe(0);
    expect(r.recursive).toBe(false);
  });

  it('bind without rbind is not recursive', () => {
    const r = parseMountOptions(['bind', 'rprivate']);
    expect(r.bind).toBe(true);
    expect(r.recursive).toBe(false);
    expect(r.flags).toBe(MS_BIND);
  });

  it('maps r* options to mount_setattr attributes', () => {
    const r = parseMountOptions(['rro', 'rnosuid', 'rnodev', 'rnoexec', 'rnodiratime']);
    expect(r.flags).toBe(0);
    expect(r.data).toEqual([]);
    expect(r.extra.recAttrSet).toBe(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODIRATIME);
    expect(r.extra.recAttrSet).toBe(1 | 2 | 4 | 8 | 0x80);
    expect(r.extra.recAttrClear).toBe(0);

    const c = parseMountOptions(['rrw', 'rsuid', 'rdev', 'rexec']);
    expect(c.extra.recAttrSet).toBe(0);
    expect(c.extra.recAttrClear).toBe(1 | 2 | 4 | 8);

    expect(parseMountOptions(['rro', 'rrw']).extra).toEqual({ recAttrSet: 0, recAttrClear: MOUNT_ATTR_RDONLY });
    expect(parseMountOptions(['rrw', 'rro']).extra).toEqual({ recAttrSet: MOUNT_ATTR_RDONLY, recAttrClear: 0 });
  });

  it('atime r* options set the mode and clear the whole atime field', () => {
    expect(parseMountOptions(['rnoatime']).extra).toEqual({ recAttrSet: 0x10, recAttrClear: MOUNT_ATTR__ATIME });
    expect(parseMountOptions(['rstrictatime']).extra).toEqual({ recAttrSet: 0x20, recAttrClear: 0x70 });
    expect(parseMountOptions(['rrelatime']).extra).toEqual({ recAttrSet: 0, recAttrClear: 0x70 });
    // The last atime mode wins instead of OR-ing two modes together.
    expect(parseMountOptions(['rstrictatime', 'rnoatime']).extra.recAttrSet).toBe(MOUNT_ATTR_NOATIME);
    expect(parseMountOptions(['rnoatime', 'rrelatime']).extra.recAttrSet).toBe(0);
    expect(parseMountOptions(['rnoatime', 'rnodiratime']).extra).toEqual({
      recAttrSet: MOUNT_ATTR_NOATIME | MOUNT_ATTR_NODIRATIME,
      recAttrClear: 0x70,
    });
    expect(MOUNT_ATTR_STRICTATIME).toBe(0x20);
  });

  it('recognises crun extensions without passing them as data', () => {
    expect(parseMountOptions(['tmpcopyup', 'mode=1777']).extra).toEqual({ tmpcopyup: true, recAttrSet: 0, recAttrClear: 0 });
    expect(parseMountOptions(['tmpcopyup', 'mode=1777']).data).toEqual(['mode=1777']);
    expect(parseMountOptions(['idmap']).extra).toEqual({ idmap: true, recAttrSet: 0, recAttrClear: 0 });
    expect(parseMountOptions(['ridmap']).extra).toEqual({
      idmap: true,
      idmapRecursive: true,
      recAttrSet: 0,
      recAttrClear: 0,
    });
    const r = parseMountOptions(['copy-symlink', 'nosymfollow', 'src-nofollow', 'dest-nofollow']);
    expect(r.data).toEqual([]);
    expect(r.flags).toBe(256);
    expect(r.extra).toMatchObject({ copySymlink: true, srcNofollow: true, destNofollow: true });
  });

  it('is case-sensitive (as the kernel is)', () => {
    const r = parseMountOptions(['RO', 'Bind']);
    expect(r.flags).toBe(0);
    expect(r.data).toEqual(['RO', 'Bind']);
  });
});

describe('propagationFlag', () => {
  it('is always recursive (runc semantics)', () => {
    expect(propagationFlag('shared')).toBe(MS_REC | MS_SHARED);
    expect(propagationFlag('rshared')).toBe(MS_REC | MS_SHARED);
    expect(propagationFlag('slave')).toBe(MS_REC | MS_SLAVE);
    expect(propagationFlag('rslave')).toBe(MS_REC | MS_SLAVE);
    expect(propagationFlag('private')).toBe(MS_REC | MS_PRIVATE);
    expect(propagationFlag('rprivate')).toBe(16384 | 262144);
    expect(propagationFlag('unbindable')).toBe(MS_REC | MS_UNBINDABLE);
    expect(propagationFlag('runbindable')).toBe(MS_REC | MS_UNBINDABLE);
  });
  it('rejects unknown values', () => {
    expect(() => propagationFlag('bogus')).toThrow(TsrunError);
    expect(() => propagationFlag('')).toThrow(/rootfsPropagation/);
    try {
      propagationFlag('Shared');
      expect.unreachable();
    } catch (e) {
      expect((e as TsrunError).code).toBe('ERR_INVALID_CONFIG');
    }
  });
});
