// Manifest/index/config validation and platform selection.
import { describe, expect, it } from 'vitest';
import {
  checkImageManifest,
  formatPlatform,
  hostPlatform,
  MediaType,
  normalizePlatform,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  platformMatches,
  selectPlatform,
  type ImageIndex,
} from '../../../src/image/manifest.js';
import { TsrunError } from '../../../src/util/errors.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const buf = (o: unknown) => Buffer.from(JSON.stringify(o));

function ociManifest(extra: Record<string, unknown> = {}) {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: d('a'), size: 100 },
    layers: [{ mediaType: MediaType.OciLayerGzip, digest: d('b'), size: 1000 }],
    ...extra,
  };
}

function errOf(fn: () => unknown): TsrunError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TsrunError);
    return e as TsrunError;
  }
  throw new Error('expected an error');
}

describe('parseManifest', () => {
  it('parses an OCI manifest served with its own type', () => {
    const p = parseManifest(buf(ociManifest()), MediaType.OciManifest);
    expect(p.kind).toBe('manifest');
    if (p.kind === 'manifest') expect(p.manifest.layers[0]!.digest).toBe(d('b'));
  });

  it('takes the type from the transport when the document has none, and the reverse', () => {
    const m = ociManifest();
    delete (m as Record<string, unknown>).mediaType;
    expect(parseManifest(buf(m), MediaType.OciManifest).kind).toBe('manifest');
    expect(parseManifest(buf(ociManifest()), undefined).kind).toBe('manifest');
    expect(parseManifest(buf(ociManifest()), 'application/json').kind).toBe('manifest');
  });

  it('refuses a document whose mediaType is nowhere', () => {
    const m = ociManifest();
    delete (m as Record<string, unknown>).mediaType;
    expect(errOf(() => parseManifest(buf(m), undefined)).message).toMatch(/mediaType is missing/);
  });

  it('refuses a mediaType that disagrees with the transport (CVE-2021-41190)', () => {
    expect(errOf(() => parseManifest(buf(ociManifest()), MediaType.OciIndex)).message).toMatch(/disagrees/);
  });

  it('CVE-2021-41190 (manifest/index ambiguity): refuses ambiguous documents', () => {
    expect(errOf(() => parseManifest(buf(ociManifest({ manifests: [] })), MediaType.OciManifest)).message).toMatch(/ambiguous/);
    const idx = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], layers: [] };
    expect(errOf(() => parseManifest(buf(idx), MediaType.OciIndex)).message).toMatch(/ambiguous/);
  });

  it('refuses schema 1 clearly', () => {
    const s1 = { schemaVersion: 1, name: 'x', tag: 'latest', fsLayers: [], history: [] };
    const e = errOf(() => parseManifest(buf(s1), MediaType.DockerSchema1Signed));
    expect(e.code).toBe('ERR_UNSUPPORTED');
    expect(e.message).toMatch(/schema 1/);
    expect(e.hint).toMatch(/re-push/);
    expect(errOf(() => parseManifest(buf(s1), undefined)).message).toMatch(/schema 1/);
  });

  it.each([
    ['a malformed digest', { config: { mediaType: MediaType.OciConfig, digest: 'sha256:xyz', size: 1 } }, /malformed digest/],
    ['an uppercase digest', { config: { mediaType: MediaType.OciConfig, digest: `sha256:${'A'.repeat(64)}`, size: 1 } }, /malformed digest/],
    ['a negative size', { config: { mediaType: MediaType.OciConfig, digest: d('a'), size: -1 } }, /non-negative/],
    ['a fractional size', { config: { mediaType: MediaType.OciConfig, digest: d('a'), size: 1.5 } }, /non-negative integer/],
    ['a string size', { config: { mediaType: MediaType.OciConfig, digest: d('a'), size: '1' } }, /non-negative integer/],
    ['no layers array', { layers: {} }, /"layers" must be an array/],
    ['too many layers', { layers: Array.from({ length: 257 }, () => ({ mediaType: MediaType.OciLayerGzip, digest: d('b'), size: 1 })) }, /more than the 256/],
    ['a bad media type', { config: { mediaType: 'not a type', digest: d('a'), size: 1 } }, /not a valid media type/],
    ['schemaVersion 3', { schemaVersion: 3 }, /schemaVersion must be 2/],
  ])('refuses %s', (_name, extra, msg) => {
    expect(errOf(() => parseManifest(buf(ociManifest(extra)), MediaType.OciManifest)).message).toMatch(msg);
  });

  it('refuses sha512 descriptors as unsupported (the store is sha256)', () => {
    const e = errOf(() =>
      parseManifest(buf(ociManifest({ config: { mediaType: MediaType.OciConfig, digest: `sha512:${'a'.repeat(128)}`, size: 1 } })), MediaType.OciManifest),
    );
    expect(e.code).toBe('ERR_UNSUPPORTED');
  });

  it('drops prototype-polluting keys', () => {
    const text = `{"schemaVersion":2,"mediaType":"${MediaType.OciManifest}","__proto__":{"polluted":true},"config":{"mediaType":"${MediaType.OciConfig}","digest":"${d('a')}","size":1},"layers":[]}`;
    const p = parseManifest(Buffer.from(text), undefined);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
  });

  it('CVE-2023-25153 (importer memory exhaustion): refuses oversize and non-JSON documents', () => {
    expect(errOf(() => parseManifest(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20), MediaType.OciManifest)).message).toMatch(/more than/);
    expect(errOf(() => parseManifest(Buffer.from('{nope'), MediaType.OciManifest)).message).toMatch(/not valid JSON/);
  });

  it('parses a Docker manifest list and an OCI index', () => {
    for (const mt of [MediaType.DockerManifestList, MediaType.OciIndex]) {
      const idx = {
        schemaVersion: 2,
        mediaType: mt,
        manifests: [{ mediaType: MediaType.DockerManifest, digest: d('c'), size: 5, platform: { os: 'linux', architecture: 'amd64' } }],
      };
      const p = parseManifest(buf(idx), mt);
      expect(p.kind).toBe('index');
    }
  });

  it('checkImageManifest refuses artifacts and unknown layer types', () => {
    const art = parseManifest(buf(ociManifest({ config: { mediaType: 'application/vnd.example.sbom+json', digest: d('a'), size: 1 } })), MediaType.OciManifest);
    if (art.kind === 'manifest') expect(errOf(() => checkImageManifest(art.manifest)).message).toMatch(/not a container image/);
    const odd = parseManifest(buf(ociManifest({ layers: [{ mediaType: 'application/x-foo', digest: d('b'), size: 1 }] })), MediaType.OciManifest);
    if (odd.kind === 'manifest') expect(errOf(() => checkImageManifest(odd.manifest)).message).toMatch(/cannot unpack/);
    const zstd = parseManifest(buf(ociManifest({ layers: [{ mediaType: MediaType.OciLayerZstd, digest: d('b'), size: 1 }] })), MediaType.OciManifest);
    if (zstd.kind === 'manifest') expect(() => checkImageManifest(zstd.manifest)).not.toThrow();
  });
});

describe('parseImageConfig', () => {
  const cfg = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['sh'], Labels: { a: 'b' } },
    rootfs: { type: 'layers', diff_ids: [d('e')] },
  };
  it('parses a config', () => {
    const c = parseImageConfig(buf(cfg));
    expect(c.rootfs.diff_ids).toEqual([d('e')]);
    expect(c.config?.Cmd).toEqual(['sh']);
  });
  it.each([
    ['rootfs.type', { rootfs: { type: 'x', diff_ids: [] } }, /rootfs.type/],
    ['a bad diff_id', { rootfs: { type: 'layers', diff_ids: ['sha256:1'] } }, /malformed digest/],
    ['a non-string Env', { config: { Env: [1] } }, /must be a string/],
    ['a NUL in Cmd', { config: { Cmd: ['a\0b'] } }, /NUL/],
    ['no os', { os: undefined }, /os: must be a string/],
  ])('refuses %s', (_n, extra, msg) => {
    expect(errOf(() => parseImageConfig(buf({ ...cfg, ...extra }))).message).toMatch(msg);
  });
});

describe('platforms', () => {
  it('hostPlatform maps Node arches; linux only', () => {
    expect(hostPlatform('x64', 'linux')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(hostPlatform('arm64', 'linux')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(hostPlatform('arm', 'linux')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(() => hostPlatform('x64', 'darwin')).toThrow(/Linux only/);
    expect(() => hostPlatform('weird', 'linux')).toThrow(/no image architecture/);
  });

  it('normalises aliases and the arm64 default variant', () => {
    expect(normalizePlatform({ os: 'linux', architecture: 'aarch64' })).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: '8' })).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(normalizePlatform({ os: 'linux', architecture: 'x86_64' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'amd64', variant: 'v1' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'armhf' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(normalizePlatform({ os: 'Linux', architecture: 'i386' })).toEqual({ os: 'linux', architecture: '386' });
  });

  it('parsePlatform', () => {
    expect(parsePlatform('linux/arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/aarch64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(formatPlatform(parsePlatform('linux/arm/v6'))).toBe('linux/arm/v6');
    expect(() => parsePlatform('linux')).toThrow(/expected os\/arch/);
    expect(() => parsePlatform('linux/amd64/v2/x')).toThrow(/expected os\/arch/);
    expect(() => parsePlatform('windows/amd64')).toThrow(/linux images only/);
  });

  it('platformMatches treats arm64 and arm64/v8 alike', () => {
    expect(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'amd64' })).toBe(false);
    expect(platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(false);
    expect(platformMatches(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64', variant: 'v3' })).toBe(false);
  });

  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      { mediaType: MediaType.OciManifest, digest: d('1'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaType.OciManifest, digest: d('2'), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: MediaType.OciManifest, digest: d('3'), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      {
        mediaType: MediaType.OciManifest,
        digest: d('4'),
        size: 1,
        platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
      },
      { mediaType: MediaType.OciManifest, digest: d('5'), size: 1, platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' } },
    ],
  };

  it('selectPlatform picks the host and --platform entries', () => {
    expect(selectPlatform(index, hostPlatform('x64', 'linux')).digest).toBe(d('1'));
    expect(selectPlatform(index, hostPlatform('arm64', 'linux')).digest).toBe(d('2'));
    expect(selectPlatform(index, parsePlatform('linux/arm64')).digest).toBe(d('2'));
    expect(selectPlatform(index, parsePlatform('linux/aarch64')).digest).toBe(d('2'));
    expect(selectPlatform(index, parsePlatform('linux/arm')).digest).toBe(d('3'));
  });

  it('an unknown platform lists what is available (no attestations)', () => {
    const e = errOf(() => selectPlatform(index, parsePlatform('linux/s390x')));
    expect(e.message).toMatch(/no image for platform linux\/s390x/);
    expect(e.message).toContain('available: linux/amd64, linux/arm64/v8, linux/arm/v7, windows/amd64');
    expect(e.message).not.toContain('unknown');
    expect(e.hint).toMatch(/--platform linux\/amd64/);
  });

  it('a bare linux/arm64 entry satisfies linux/arm64/v8', () => {
    const idx: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.DockerManifest, digest: d('9'), size: 1, platform: { os: 'linux', architecture: 'arm64' } }],
    };
    expect(selectPlatform(idx, parsePlatform('linux/arm64/v8')).digest).toBe(d('9'));
  });
});
