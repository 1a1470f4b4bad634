// The entry policy as pure decisions: containerd's pkg/archive/tar_test.go TestBreakouts
// table, moby/go-archive's invalid-name cases, and the limits. What the filesystem then does
// with the decisions that pass (e.g. refusing to write through a symlink) is covered on a
// real filesystem by tests/native/unpack.test.ts.
import { describe, expect, it } from 'vitest';
import {
  decide,
  DEFAULT_LAYER_LIMITS,
  LayerBudget,
  normalisePath,
  parsePaxRecords,
  resolveLimits,
  type Decision,
  type TarHeader,
} from '../../../src/image/layer/entry-policy.js';
import { paxBody } from '../../fixtures/tar-builder.js';

const MTIME = new Date(1_700_000_000_000);

function H(name: string, type: string | null, extra: Partial<TarHeader> = {}): TarHeader {
  return { name, type, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: MTIME, linkname: null, devmajor: 0, devminor: 0, ...extra };
}
const F = (name: string, extra: Partial<TarHeader> = {}) => H(name, 'file', extra);
const D = (name: string, extra: Partial<TarHeader> = {}) => H(name.endsWith('/') ? name : `${name}/`, 'directory', { mode: 0o755, ...extra });
const S = (name: string, target: string) => H(name, 'symlink', { linkname: target, mode: 0o777 });
const L = (name: string, target: string) => H(name, 'link', { linkname: target });
const pax = (records: Record<string, string | Buffer>): Map<string, Buffer> => {
  const r = parsePaxRecords(paxBody(records));
  if (typeof r === 'string') throw new Error(r);
  return r;
};

/** "reject", "skip", or "<type> <path>[ -> <linkname>]". */
function summary(d: Decision): string {
  if (d.kind !== 'apply') return d.kind;
  const e = d.entry;
  return `${e.type} ${e.path}${e.linkname !== undefined ? ` -> ${e.linkname}` : ''}`;
}

function rejectReason(h: TarHeader, limits = DEFAULT_LAYER_LIMITS): string {
  const d = decide(h, limits);
  if (d.kind !== 'reject') throw new Error(`expected a rejection, got ${summary(d)}`);
  return d.reason;
}

function applied(h: TarHeader, limits = DEFAULT_LAYER_LIMITS) {
  const d = decide(h, limits);
  if (d.kind !== 'apply') throw new Error(`expected apply, got ${d.kind}: ${'reason' in d ? d.reason : ''}`);
  return d;
}

/** Strip leading "/" from names and hardlink targets: what tar and Go writers actually emit. */
function relativeForm(h: TarHeader): TarHeader {
  const strip = (s: string) => s.replace(/^\/+/, '');
  return { ...h, name: strip(h.name), ...(h.type === 'link' && h.linkname ? { linkname: strip(h.linkname) } : {}) };
}

interface BreakoutCase {
  name: string;
  entries: TarHeader[];
  /** Decisions for the entries exactly as containerd writes them (leading "/" kept). */
  verbatim: string[];
  /** Decisions with the leading "/" stripped from names and hardlink targets. */
  relative: string[];
  /** What the native layer does with the relative form (documented, tested in tests/native). */
  note?: string;
}

// containerd pkg/archive/tar_test.go TestBreakouts, entries in order. containerd treats
// "/x" as root-relative; tsrun rejects absolute names outright (no silent sanitising), so
// the verbatim column rejects every leading-"/" name and the relative column shows the
// decisions for the names real writers produce.
const BREAKOUTS: BreakoutCase[] = [
  {
    name: 'SymlinkAbsolute',
    entries: [D('etc'), S('localetc', '/etc'), F('/localetc/unbroken')],
    verbatim: ['dir etc', 'symlink localetc -> /etc', 'reject'],
    relative: ['dir etc', 'symlink localetc -> /etc', 'file localetc/unbroken'],
    note: 'native: the write through symlink localetc is refused (ELOOP)',
  },
  {
    name: 'SymlinkUpAndOut',
    entries: [D('etc'), D('dummy'), S('localetc', '/dummy/../etc'), F('/localetc/unbroken')],
    verbatim: ['dir etc', 'dir dummy', 'symlink localetc -> /dummy/../etc', 'reject'],
    relative: ['dir etc', 'dir dummy', 'symlink localetc -> /dummy/../etc', 'file localetc/unbroken'],
    note: 'native: refused, parent is a symlink',
  },
  {
    name: 'SymlinkMultipleAbsolute',
    entries: [D('etc'), D('dummy'), S('/dummy/etc', '/etc'), S('localetc', '/dummy/etc'), F('/dummy/etc/unbroken')],
    verbatim: ['dir etc', 'dir dummy', 'reject', 'symlink localetc -> /dummy/etc', 'reject'],
    relative: ['dir etc', 'dir dummy', 'symlink dummy/etc -> /etc', 'symlink localetc -> /dummy/etc', 'file dummy/etc/unbroken'],
    note: 'native: refused, parent dummy/etc is a symlink',
  },
  {
    name: 'SymlinkMultipleRelative',
    entries: [D('etc'), D('dummy'), S('/dummy/etc', '/etc'), S('localetc', './dummy/etc'), F('/dummy/etc/unbroken')],
    verbatim: ['dir etc', 'dir dummy', 'reject', 'symlink localetc -> ./dummy/etc', 'reject'],
    relative: ['dir etc', 'dir dummy', 'symlink dummy/etc -> /etc', 'symlink localetc -> ./dummy/etc', 'file dummy/etc/unbroken'],
  },
  {
    name: 'SymlinkEmptyFile',
    entries: [D('etc'), F('etc/emptied', { size: 8 }), S('localetc', '/etc'), F('/localetc/emptied')],
    verbatim: ['dir etc', 'file etc/emptied', 'symlink localetc -> /etc', 'reject'],
    relative: ['dir etc', 'file etc/emptied', 'symlink localetc -> /etc', 'file localetc/emptied'],
  },
  {
    name: 'HardlinkRelative',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), D('breakouts'), S('breakouts/d1', '../../etc'), L('breakouts/mypasswd', '/breakouts/d1/passwd')],
    verbatim: ['dir etc', 'reject', 'dir breakouts', 'symlink breakouts/d1 -> ../../etc', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'dir breakouts', 'symlink breakouts/d1 -> ../../etc', 'hardlink breakouts/mypasswd -> breakouts/d1/passwd'],
    note: 'native: the hardlink target path goes through a symlink: refused',
  },
  {
    name: 'HardlinkDownAndOut',
    entries: [
      D('etc', { mode: 0o770 }),
      F('/etc/passwd'),
      D('breakouts'),
      D('downandout'),
      S('breakouts/d1', '../downandout/../../etc'),
      L('breakouts/mypasswd', '/breakouts/d1/passwd'),
    ],
    verbatim: ['dir etc', 'reject', 'dir breakouts', 'dir downandout', 'symlink breakouts/d1 -> ../downandout/../../etc', 'reject'],
    relative: [
      'dir etc',
      'file etc/passwd',
      'dir breakouts',
      'dir downandout',
      'symlink breakouts/d1 -> ../downandout/../../etc',
      'hardlink breakouts/mypasswd -> breakouts/d1/passwd',
    ],
  },
  {
    name: 'HardlinkAbsolute',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), S('localetc', '/etc'), L('localpasswd', '/localetc/passwd')],
    verbatim: ['dir etc', 'reject', 'symlink localetc -> /etc', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'symlink localetc -> /etc', 'hardlink localpasswd -> localetc/passwd'],
  },
  {
    name: 'HardlinkRelativeLong',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), S('localetc', '../../../../../../../etc'), L('localpasswd', '/localetc/passwd')],
    verbatim: ['dir etc', 'reject', 'symlink localetc -> ../../../../../../../etc', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'symlink localetc -> ../../../../../../../etc', 'hardlink localpasswd -> localetc/passwd'],
  },
  {
    name: 'HardlinkRelativeUpAndOut',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), S('localetc', 'upandout/../../../etc'), L('localpasswd', '/localetc/passwd')],
    verbatim: ['dir etc', 'reject', 'symlink localetc -> upandout/../../../etc', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'symlink localetc -> upandout/../../../etc', 'hardlink localpasswd -> localetc/passwd'],
  },
  {
    name: 'HardlinkDirectRelative',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), L('localpasswd', '../../../../../etc/passwd')],
    verbatim: ['dir etc', 'reject', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'reject'],
  },
  {
    name: 'HardlinkDirectAbsolute',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), L('localpasswd', '/etc/passwd')],
    verbatim: ['dir etc', 'reject', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'hardlink localpasswd -> etc/passwd'],
  },
  {
    name: 'SymlinkParentDirectory',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), S('..', '/etc/'), L('localpasswd', '/etc/passwd')],
    verbatim: ['dir etc', 'reject', 'reject', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'reject', 'hardlink localpasswd -> etc/passwd'],
  },
  {
    name: 'SymlinkEmptyFilename',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), S('', '/etc/'), L('localpasswd', '/etc/passwd')],
    verbatim: ['dir etc', 'reject', 'reject', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'reject', 'hardlink localpasswd -> etc/passwd'],
  },
  {
    name: 'SymlinkParentRelative',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), S('localetc/sub/..', '/etc/'), L('/localetc/localpasswd', '/etc/passwd')],
    verbatim: ['dir etc', 'reject', 'symlink localetc -> /etc/', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'symlink localetc -> /etc/', 'hardlink localetc/localpasswd -> etc/passwd'],
    note: 'native: localetc/localpasswd is refused, its parent is a symlink',
  },
  {
    name: 'SymlinkSlashEnded',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), D('localetc/', { mode: 0o770 }), L('/localetc/localpasswd', '/etc/passwd')],
    verbatim: ['dir etc', 'reject', 'dir localetc', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'dir localetc', 'hardlink localetc/localpasswd -> etc/passwd'],
  },
  {
    name: 'SymlinkOverrideDirectory',
    entries: [S('localetc', '/etc'), L('/localetc/localpasswd', '/etc/passwd')],
    verbatim: ['symlink localetc -> /etc', 'reject'],
    relative: ['symlink localetc -> /etc', 'hardlink localetc/localpasswd -> etc/passwd'],
  },
  {
    name: 'SymlinkOverrideDirectoryRelative',
    entries: [S('localetc', '../../etc'), L('/localetc/localpasswd', '/etc/passwd')],
    verbatim: ['symlink localetc -> ../../etc', 'reject'],
    relative: ['symlink localetc -> ../../etc', 'hardlink localetc/localpasswd -> etc/passwd'],
  },
  {
    name: 'DirectoryOverrideSymlink',
    entries: [D('/localetc/'), L('/localetc/localpasswd', '/etc/passwd')],
    verbatim: ['reject', 'reject'],
    relative: ['dir localetc', 'hardlink localetc/localpasswd -> etc/passwd'],
  },
  {
    name: 'DirectoryOverrideSymlinkAndHardlink',
    entries: [D('/localetc/'), F('/localetc/localpasswd', { size: 9 })],
    verbatim: ['reject', 'reject'],
    relative: ['dir localetc', 'file localetc/localpasswd'],
  },
  { name: 'WhiteoutRootParent', entries: [F('.wh...')], verbatim: ['reject'], relative: ['reject'] },
  { name: 'WhiteoutParent', entries: [F('etc/.wh...')], verbatim: ['reject'], relative: ['reject'] },
  { name: 'WhiteoutRoot', entries: [F('.wh..')], verbatim: ['reject'], relative: ['reject'] },
  { name: 'WhiteoutCurrentDirectory', entries: [F('etc/.wh..')], verbatim: ['reject'], relative: ['reject'] },
  { name: 'WhiteoutSymlink', entries: [F('.wh.localetc')], verbatim: ['whiteout localetc'], relative: ['whiteout localetc'] },
  {
    name: 'WhiteoutSymlinkPath',
    entries: [F('localetc/.wh.whitedout')],
    verbatim: ['whiteout localetc/whitedout'],
    relative: ['whiteout localetc/whitedout'],
    note: 'native: refused if localetc is a symlink of this layer',
  },
  { name: 'WhiteoutDirectoryName', entries: [F('.wh.etc/somefile', { size: 9 })], verbatim: ['file .wh.etc/somefile'], relative: ['file .wh.etc/somefile'] },
  { name: 'WhiteoutDeadSymlinkParent', entries: [F('localetc/.wh.etc')], verbatim: ['whiteout localetc/etc'], relative: ['whiteout localetc/etc'] },
  { name: 'WhiteoutRelativePath', entries: [F('dne/../.wh.etc')], verbatim: ['whiteout etc'], relative: ['whiteout etc'] },
  {
    name: 'HardlinkSymlinkBeforeCreateTarget',
    entries: [D('etc', { mode: 0o770 }), S('localpasswd', '/etc/passwd'), L('localpasswd-dup', 'localpasswd'), F('/etc/passwd', { size: 5 })],
    verbatim: ['dir etc', 'symlink localpasswd -> /etc/passwd', 'hardlink localpasswd-dup -> localpasswd', 'reject'],
    relative: ['dir etc', 'symlink localpasswd -> /etc/passwd', 'hardlink localpasswd-dup -> localpasswd', 'file etc/passwd'],
    note: 'native: a hardlink to a symlink is refused (not a regular file)',
  },
  {
    name: 'HardlinkSymlinkRelative',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), S('passwdlink', '../../../../../etc/passwd'), L('localpasswd', '/passwdlink')],
    verbatim: ['dir etc', 'reject', 'symlink passwdlink -> ../../../../../etc/passwd', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'symlink passwdlink -> ../../../../../etc/passwd', 'hardlink localpasswd -> passwdlink'],
  },
  {
    name: 'HardlinkSymlinkAbsolute',
    entries: [D('etc', { mode: 0o770 }), F('/etc/passwd'), S('passwdlink', '/etc/passwd'), L('localpasswd', '/passwdlink')],
    verbatim: ['dir etc', 'reject', 'symlink passwdlink -> /etc/passwd', 'reject'],
    relative: ['dir etc', 'file etc/passwd', 'symlink passwdlink -> /etc/passwd', 'hardlink localpasswd -> passwdlink'],
  },
  {
    name: 'HardlinkSymlinkChmod',
    entries: [S('/tmp/td/also-exists-outside-root', '/tmp/td/perm400'), L('sketchylink', '/tmp/td/also-exists-outside-root')],
    verbatim: ['reject', 'reject'],
    relative: ['symlink tmp/td/also-exists-outside-root -> /tmp/td/perm400', 'hardlink sketchylink -> tmp/td/also-exists-outside-root'],
  },
];

describe('symlink, hardlink and whiteout breakouts (§3.2): containerd TestBreakouts as entry decisions', () => {
  for (const c of BREAKOUTS) {
    it(`${c.name} (names as containerd writes them)`, () => {
      expect(c.entries.map((h) => summary(decide(h)))).toEqual(c.verbatim);
    });
    it(`${c.name} (root-relative names)`, () => {
      expect(c.entries.map((h) => summary(decide(relativeForm(h))))).toEqual(c.relative);
    });
  }
});

describe('path traversal and absolute paths (§3.2): moby/go-archive invalid names', () => {
  // TestUntarInvalidFilenames / TestUntarParentTraversalContained
  it.each(['../victim/dotdot', '../../victim/dotdot', 'a/../../victim', '..', '../', './..', 'a/b/../../..'])('%s climbs above the root: rejected', (name) => {
    expect(rejectReason(F(name))).toMatch(/climbs above the layer root/);
  });
  it.each(['/../victim/slash-dotdot', '/etc/passwd', '//x'])('%s is absolute: rejected', (name) => {
    expect(rejectReason(F(name))).toBe('absolute path');
  });
  it('a ".." that stays inside is resolved lexically', () => {
    expect(summary(decide(F('a/../b')))).toBe('file b');
    expect(summary(decide(F('./a/./b//c')))).toBe('file a/b/c');
  });
  // TestUntarInvalidHardlink / TestUntarAbsoluteHardlink
  it.each(['../victim/hello', '../../victim/hello', '/../victim/hello', '/etc/passwd'])('hardlink to %s: rejected', (target) => {
    expect(rejectReason(L('dotdot', target))).toMatch(/^hardlink target/);
  });
  it('hardlink to itself, to the root, or with an empty target: rejected', () => {
    expect(rejectReason(L('a', 'a'))).toMatch(/itself/);
    expect(rejectReason(L('a', './'))).toMatch(/root/);
    expect(rejectReason(L('a', ''))).toMatch(/empty/);
  });
  // TestUntarInvalidSymlink: the targets are stored verbatim; only writes through them are dangerous.
  it.each(['../victim', '../../victim', '/', '/../victim', 'loophole-victim/../../victim'])('symlink to %s is created verbatim', (target) => {
    expect(summary(decide(S('loophole', target)))).toBe(`symlink loophole -> ${target}`);
  });
  it('symlink with an empty or NUL target: rejected', () => {
    expect(rejectReason(S('l', ''))).toMatch(/empty target/);
    expect(rejectReason(S('l', 'a\0b'))).toMatch(/NUL/);
  });
  // TestOverlayUntarInvalidWhiteoutNames
  it.each(['.wh.', '.wh..', '.wh...', 'd/.wh.', 'd/.wh..', 'd/.wh...'])('whiteout %s: rejected', (name) => {
    expect(rejectReason(F(name))).toMatch(/invalid whiteout name/);
  });
  it('../.wh.x climbs above the root: rejected', () => {
    expect(rejectReason(F('../.wh.x'))).toMatch(/climbs/);
  });
});

describe('whiteouts and the root entry', () => {
  it('.wh.<name> becomes a whiteout of <name> in the same directory', () => {
    const d = applied(F('usr/lib/.wh.libfoo.so', { uid: 0, gid: 0 }));
    expect(d.entry).toMatchObject({ type: 'whiteout', path: 'usr/lib/libfoo.so' });
  });
  it('.wh..wh..opq marks its directory (or the root) opaque', () => {
    expect(applied(F('var/cache/.wh..wh..opq')).entry).toMatchObject({ type: 'opaque', path: 'var/cache' });
    expect(applied(F('.wh..wh..opq')).entry).toMatchObject({ type: 'opaque', path: '.' });
  });
  it('other .wh..wh. names (aufs metadata) are skipped', () => {
    expect(decide(D('.wh..wh.plnk')).kind).toBe('skip');
    expect(decide(F('.wh..wh.aufs')).kind).toBe('skip');
  });
  it('the root entry "./" is skipped; a non-directory root is rejected', () => {
    expect(decide(D('./')).kind).toBe('skip');
    expect(decide(D('.')).kind).toBe('skip');
    expect(rejectReason(F('./'))).toMatch(/layer root/);
    expect(rejectReason(S('.', '/etc'))).toMatch(/layer root/);
  });
});

describe('types, modes, ids, times', () => {
  it('type allowlist', () => {
    expect(summary(decide(H('a', 'contiguous-file')))).toBe('file a');
    expect(summary(decide(H('f', 'fifo')))).toBe('fifo f');
    expect(summary(decide(H('c', 'character-device', { devmajor: 1, devminor: 3 })))).toBe('char c');
    expect(summary(decide(H('b', 'block-device', { devmajor: 8, devminor: 0 })))).toBe('block b');
    expect(rejectReason(H('x', null))).toMatch(/unsupported entry type/);
    expect(rejectReason(H('x', 'gnu-long-path'))).toMatch(/unsupported entry type/);
    expect(rejectReason(H('x', 'pax-header'))).toMatch(/unsupported entry type/);
  });
  it('devices: numbers kept, 0:0 char (an overlay whiteout) rejected, optional refusal', () => {
    expect(applied(H('null', 'character-device', { devmajor: 1, devminor: 3 })).entry).toMatchObject({ devmajor: 1, devminor: 3 });
    expect(rejectReason(H('wh', 'character-device', { devmajor: 0, devminor: 0 }))).toMatch(/whiteout/);
    expect(rejectReason(H('mem', 'character-device', { devmajor: 1, devminor: 1 }), resolveLimits({ allowDevices: false }))).toMatch(/not allowed/);
    expect(rejectReason(H('b', 'block-device', { devmajor: -1, devminor: 0 }))).toMatch(/device number/);
    expect(summary(decide(H('f', 'fifo'), resolveLimits({ allowDevices: false })))).toBe('fifo f');
  });
  it('modes keep setuid/setgid/sticky and the permission bits only', () => {
    expect(applied(F('suid', { mode: 0o104755 })).entry.mode).toBe(0o4755);
    expect(applied(D('tmp', { mode: 0o41777 })).entry.mode).toBe(0o1777);
    expect(applied(F('sgid', { mode: 0o2711 })).entry.mode).toBe(0o2711);
    expect(rejectReason(F('x', { mode: Number.NaN }))).toMatch(/mode/);
  });
  it('ownership: uid/gid: 0..2^32-2, PAX overrides the header, garbage rejected', () => {
    expect(applied(F('a', { uid: 1000, gid: 1001 })).entry).toMatchObject({ uid: 1000, gid: 1001 });
    expect(applied(F('a', { paxRecords: pax({ uid: '4294967294', gid: '3000000' }) })).entry).toMatchObject({ uid: 4294967294, gid: 3000000 });
    expect(rejectReason(F('a', { uid: 4294967295 }))).toMatch(/uid 4294967295 is out of range/);
    expect(rejectReason(F('a', { paxRecords: pax({ uid: '4294967295' }) }))).toMatch(/out of range/);
    expect(rejectReason(F('a', { paxRecords: pax({ gid: '99999999999' }) }))).toMatch(/gid/);
    expect(rejectReason(F('a', { paxRecords: pax({ uid: '-1' }) }))).toMatch(/not a decimal/);
    expect(rejectReason(F('a', { uid: Number.NaN }))).toMatch(/uid/);
    expect(rejectReason(F('a', { gid: -5 }))).toMatch(/gid/);
  });
  it('mtime from the header, or from PAX with a fraction', () => {
    expect(applied(F('a')).entry.mtimeSec).toBe(1_700_000_000);
    expect(applied(F('a', { paxRecords: pax({ mtime: '1700000000.25' }) })).entry.mtimeSec).toBe(1_700_000_000.25);
    expect(applied(F('a', { paxRecords: pax({ mtime: '-10.5' }) })).entry.mtimeSec).toBe(-10.5);
    expect(rejectReason(F('a', { paxRecords: pax({ mtime: 'soon' }) }))).toMatch(/mtime/);
    expect(rejectReason(F('a', { mtime: 1e13 }))).toMatch(/mtime/);
  });
});

describe('sizes and limits', () => {
  it('file size: safe integer within maxFileBytes; PAX size must agree and be canonical', () => {
    expect(applied(F('a', { size: 10 })).size).toBe(10);
    expect(rejectReason(F('a', { size: 1e20 }))).toMatch(/not a valid size/);
    expect(rejectReason(F('a', { size: 101 }), resolveLimits({ maxFileBytes: 100 }))).toMatch(/exceeds the 100-byte limit/);
    expect(rejectReason(F('a', { size: 1e20, paxRecords: pax({ size: '99999999999999999999' }) }))).toMatch(/size/);
    expect(rejectReason(F('a', { size: 12, paxRecords: pax({ size: '12abc' }) }))).toMatch(/malformed PAX size/);
  });
  it('non-file entries must not carry data (parser-differential trick)', () => {
    expect(rejectReason(D('d', { size: 512 }))).toMatch(/must have size 0/);
    expect(rejectReason(H('l', 'symlink', { linkname: 'x', size: 1 }))).toMatch(/must have size 0/);
    expect(rejectReason({ ...L('h', 'x'), size: 10 })).toMatch(/must have size 0/);
  });
  it('path length, component length, depth', () => {
    const l = DEFAULT_LAYER_LIMITS;
    expect(summary(decide(F('a'.repeat(255))))).toBe(`file ${'a'.repeat(255)}`);
    expect(rejectReason(F('a'.repeat(256)))).toMatch(/component is longer than 255/);
    const deep = Array.from({ length: l.maxDepth }, () => 'd').join('/');
    expect(decide(F(deep)).kind).toBe('apply');
    expect(rejectReason(F(`${deep}/d`))).toMatch(/deeper than 256/);
    const long = Array.from({ length: 17 }, () => 'x'.repeat(250)).join('/');
    expect(rejectReason(F(long))).toMatch(/longer than 4096 bytes/);
    expect(rejectReason(S('l', 'x'.repeat(4097)))).toMatch(/target is longer/);
    expect(rejectReason(F('a\0b'))).toMatch(/NUL/);
    expect(rejectReason(F(''))).toMatch(/empty name/);
  });
  it('GNU sparse files are refused', () => {
    expect(rejectReason(F('sparse', { paxRecords: pax({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' }) }))).toMatch(/sparse/);
  });
  it('entry count and total bytes (LayerBudget)', () => {
    const b = new LayerBudget(resolveLimits({ maxEntries: 2, maxTotalBytes: 1000 }));
    expect(b.admitEntry('a')).toBeUndefined();
    expect(b.admitEntry('b')).toBeUndefined();
    expect(b.admitEntry('c')).toMatchObject({ kind: 'reject', path: 'c', reason: 'more than 2 entries in the layer' });
    expect(b.admitBytes(1000)).toBeUndefined();
    expect(b.admitBytes(1)).toMatch(/exceeds the 1000-byte limit/);
  });
  it('resolveLimits validates', () => {
    expect(resolveLimits({ maxEntries: 5 }).maxEntries).toBe(5);
    expect(resolveLimits({}).maxTotalBytes).toBe(64 * 1024 ** 3);
    expect(() => resolveLimits({ maxEntries: -1 })).toThrow(/non-negative integer/);
    expect(() => resolveLimits({ maxEntries: 1.5 })).toThrow();
    expect(() => resolveLimits({ bogus: 1 } as never)).toThrow(/unknown layer limit/);
  });
});

describe('xattrs', () => {
  const x = (records: Record<string, string | Buffer>, type: 'file' | 'dir' | 'symlink' = 'file') => {
    const paxRecords = pax(Object.fromEntries(Object.entries(records).map(([k, v]) => [`SCHILY.xattr.${k}`, v])));
    return type === 'dir' ? D('d', { paxRecords }) : type === 'symlink' ? { ...S('l', 't'), paxRecords } : F('f', { paxRecords });
  };
  const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // vfs_cap_data v2, cap_net_raw

  it('user.* and security.capability (as bytes) are kept on files', () => {
    const d = applied(x({ 'user.a': 'b', 'security.capability': CAP }));
    expect(d.entry.xattrs).toEqual({ 'user.a': Buffer.from('b'), 'security.capability': CAP });
    expect(d.droppedXattrs).toEqual([]);
  });
  it('LSM labels, other trusted.* and system.* are dropped; trusted.overlay.* rejects the layer', () => {
    const d = applied(x({ 'security.selinux': 'system_u:object_r:bin_t:s0', 'trusted.foo': 'x', 'system.posix_acl_access': 'x', 'user.ok': '1' }));
    expect(d.entry.xattrs).toEqual({ 'user.ok': Buffer.from('1') });
    expect(d.droppedXattrs.sort()).toEqual(['security.selinux', 'system.posix_acl_access', 'trusted.foo']);
    expect(rejectReason(x({ 'trusted.overlay.opaque': 'y' }))).toMatch(/overlayfs metadata/);
    expect(rejectReason(x({ 'trusted.overlay.redirect': '/etc' }, 'dir'))).toMatch(/overlayfs metadata/);
  });
  it('directories keep user.* only; symlinks keep none', () => {
    const d = applied(x({ 'user.a': 'b', 'security.capability': CAP }, 'dir'));
    expect(d.entry.xattrs).toEqual({ 'user.a': Buffer.from('b') });
    expect(d.droppedXattrs).toEqual(['security.capability']);
    const s = applied(x({ 'user.a': 'b' }, 'symlink'));
    expect(s.entry.xattrs).toBeUndefined();
    expect(s.droppedXattrs).toEqual(['user.a']);
  });
  it('count, name and value size limits', () => {
    const many = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`user.k${i}`, 'v']));
    expect(rejectReason(x(many))).toMatch(/more than 128 xattrs/);
    expect(rejectReason(x({ 'user.big': Buffer.alloc(64 * 1024 + 1) }))).toMatch(/larger than 65536/);
    expect(rejectReason(x({ [`user.${'n'.repeat(260)}`]: 'v' }))).toMatch(/invalid xattr name/);
    expect(rejectReason(x({ '': 'v' }))).toMatch(/invalid xattr name/);
  });
});

describe('PAX records', () => {
  it('parses records with binary values, the later duplicate winning', () => {
    const body = Buffer.concat([paxBody({ path: 'a/b', 'SCHILY.xattr.user.bin': Buffer.from([0, 255, 10, 61]) }), paxBody({ path: 'c' })]);
    const r = parsePaxRecords(body);
    expect(r).toBeInstanceOf(Map);
    const m = r as Map<string, Buffer>;
    expect(m.get('path')?.toString()).toBe('c');
    expect(m.get('SCHILY.xattr.user.bin')).toEqual(Buffer.from([0, 255, 10, 61]));
  });
  it.each([
    ['no length', 'path=a\n'],
    ['length too long', '99 path=a\n'],
    ['length too short', '5 path=a\n'],
    ['no newline', '11 path=abc'],
    ['no key', '7 =abc\n'],
    ['no equals', '9 pathab\n'],
    ['trailing NULs', `${paxBody({ path: 'a' }).toString()}\0\0\0`],
    ['negative length', '-1 a=b\n'],
  ])('rejects a malformed record (%s)', (_why, body) => {
    expect(parsePaxRecords(Buffer.from(body))).toMatch(/malformed PAX record/);
  });
  it('an empty body has no records', () => {
    expect(parsePaxRecords(Buffer.alloc(0))).toEqual(new Map());
  });
});

describe('normalisePath', () => {
  it('is the lexical clean of tar names', () => {
    const n = (s: string) => normalisePath(s, DEFAULT_LAYER_LIMITS);
    expect(n('./')).toEqual({ ok: true, path: '.', parts: [] });
    expect(n('a//b/./c/')).toEqual({ ok: true, path: 'a/b/c', parts: ['a', 'b', 'c'] });
    expect(n('a/b/..')).toEqual({ ok: true, path: 'a', parts: ['a'] });
    expect(n('a/../..')).toEqual({ ok: false, reason: '".." climbs above the layer root' });
  });
});
