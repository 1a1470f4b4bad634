import { describe, expect, it } from 'vitest';
import { parseBytes, parseDeviceFlag, parseMountFlag, parseTmpfsFlag, parseVolumeFlag } from '../../../src/engine/mount-flags.js';

describe('-v', () => {
  it('tells binds, named and anonymous volumes apart', () => {
    expect(parseVolumeFlag('/host/dir:/data')).toEqual({ type: 'bind', source: '/host/dir', destination: '/data', readOnly: false });
    expect(parseVolumeFlag('/h:/d:ro')).toMatchObject({ type: 'bind', readOnly: true });
    expect(parseVolumeFlag('vol1:/data')).toEqual({ type: 'volume', name: 'vol1', destination: '/data', readOnly: false, noCopy: false });
    expect(parseVolumeFlag('/data')).toEqual({ type: 'volume', destination: '/data', readOnly: false, noCopy: false });
    expect(parseVolumeFlag('/data:ro')).toMatchObject({ type: 'volume', destination: '/data', readOnly: true });
    expect(parseVolumeFlag('vol:/d:nocopy,ro')).toMatchObject({ noCopy: true, readOnly: true });
  });
  it('normalises and refuses what docker refuses', () => {
    expect(parseVolumeFlag('/a/../b:/x/./y/').destination).toBe('/x/y');
    expect(() => parseVolumeFlag('rel/path:/d')).toThrow(/neither an absolute host path nor a volume name/);
    expect(() => parseVolumeFlag('/h:relative')).toThrow(/unknown option "relative"/);
    expect(() => parseVolumeFlag('vol:relative:ro')).toThrow(/must be an absolute path/);
    // docker's volume names have at least two characters
    expect(() => parseVolumeFlag('v:/d')).toThrow(/volume name/);
    expect(() => parseVolumeFlag('/h:/')).toThrow(/root/);
    expect(() => parseVolumeFlag('/h:/d:rx')).toThrow(/unknown option "rx"/);
    expect(() => parseVolumeFlag('')).toThrow();
    expect(() => parseVolumeFlag('a:b:c:d')).toThrow();
  });
});

describe('--mount', () => {
  it('parses the three types with docker’s field names and aliases', () => {
    expect(parseMountFlag('type=bind,source=/h,target=/d,readonly')).toEqual({ type: 'bind', source: '/h', destination: '/d', readOnly: true });
    expect(parseMountFlag('type=bind,src=/h,dst=/d')).toMatchObject({ readOnly: false });
    expect(parseMountFlag('type=volume,source=v2,target=/v')).toMatchObject({ type: 'volume', name: 'v2', destination: '/v' });
    expect(parseMountFlag('target=/anon')).toMatchObject({ type: 'volume', destination: '/anon' });
    expect(parseMountFlag('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777')).toEqual({
      type: 'tmpfs',
      destination: '/t',
      options: ['nosuid', 'nodev', 'size=1048576', 'mode=1777'],
    });
  });
  it('refuses unknown fields, types and missing parts', () => {
    expect(() => parseMountFlag('type=bind,target=/d')).toThrow(/absolute source/);
    expect(() => parseMountFlag('type=nfs,target=/d')).toThrow(/unknown type/);
    expect(() => parseMountFlag('type=volume,target=/d,colour=red')).toThrow(/unknown field "colour"/);
    expect(() => parseMountFlag('type=tmpfs,source=x,target=/d')).toThrow(/no source/);
    expect(() => parseMountFlag('type=tmpfs,target=/d,tmpfs-mode=999')).toThrow(/octal/);
  });
});

describe('--tmpfs, --device, sizes', () => {
  it('--tmpfs keeps docker’s defaults and adds options', () => {
    expect(parseTmpfsFlag('/run:size=2m')).toEqual({ type: 'tmpfs', destination: '/run', options: ['noexec', 'nosuid', 'nodev', 'size=2m'] });
    expect(() => parseTmpfsFlag('/run:size=2m,x;y')).toThrow(/bad option/);
  });
  it('--device forms', () => {
    expect(parseDeviceFlag('/dev/null')).toEqual({ host: '/dev/null', container: '/dev/null', permissions: 'rwm' });
    expect(parseDeviceFlag('/dev/null:/dev/n')).toEqual({ host: '/dev/null', container: '/dev/n', permissions: 'rwm' });
    expect(parseDeviceFlag('/dev/null:r')).toEqual({ host: '/dev/null', container: '/dev/null', permissions: 'r' });
    expect(parseDeviceFlag('/dev/null:/dev/n:rw')).toMatchObject({ permissions: 'rw' });
    expect(() => parseDeviceFlag('null')).toThrow(/absolute/);
    expect(() => parseDeviceFlag('/dev/null:/dev/n:rx')).toThrow(/r, w, m/);
  });
  it('sizes as docker reads them', () => {
    expect(parseBytes('-m', '64m')).toBe(64 * 1024 * 1024);
    expect(parseBytes('-m', '1g')).toBe(1024 ** 3);
    expect(parseBytes('-m', '512k')).toBe(524288);
    expect(parseBytes('-m', '100')).toBe(100);
    expect(parseBytes('-m', '1.5m')).toBe(1572864);
    expect(parseBytes('-m', '64MB')).toBe(64 * 1024 * 1024);
    expect(() => parseBytes('-m', 'lots')).toThrow(/64m/);
    expect(() => parseBytes('-m', '-5m')).toThrow();
  });
});
