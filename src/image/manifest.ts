// Image manifests, indexes and configs: media types, strict parsing and validation, and
// platform selection from an index.
//
// Every document is parsed from bytes whose digest the caller has already verified. Parsing
// drops "__proto__", "constructor" and "prototype" keys, and validation checks what later code
// relies on: the mediaType is present (in the document or from the transport) and consistent,
// so a manifest cannot be read as an index or the reverse (CVE-2021-41190); digests are
// well-formed sha256; sizes are non-negative safe integers; counts are bounded.
import { TsrunError } from '../util/errors.js';

// ---- media types ----

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerSchema1Manifest: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [MediaType.OciManifest, MediaType.DockerManifest];
export const INDEX_MEDIA_TYPES: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList];
export const CONFIG_MEDIA_TYPES: readonly string[] = [MediaType.OciConfig, MediaType.DockerConfig];
export const LAYER_MEDIA_TYPES: readonly string[] = [
  MediaType.OciLayer,
  MediaType.OciLayerGzip,
  MediaType.OciLayerZstd,
  MediaType.OciLayerNondistributable,
  MediaType.OciLayerNondistributableGzip,
  MediaType.OciLayerNondistributableZstd,
  MediaType.DockerLayerGzip,
  MediaType.DockerLayer,
  MediaType.DockerForeignLayerGzip,
];
const SCHEMA1_MEDIA_TYPES: readonly string[] = [MediaType.DockerSchema1Manifest, MediaType.DockerSchema1Signed, 'application/json'];

/** The Accept header for manifest requests: everything tsrun can pull, preferred first. */
export const MANIFEST_ACCEPT: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest];

// ---- limits ----

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
export const MAX_LAYERS = 256;
export const MAX_INDEX_ENTRIES = 1024;
const MAX_ANNOTATIONS = 1024;
const MAX_STRING = 64 * 1024;

// ---- types ----

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfigBody {
  User?: string;
  ExposedPorts?: Record<string, unknown>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, unknown>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  /** docker's extensions of the config, kept as the image has them (HEALTHCHECK, ONBUILD, SHELL). */
  Healthcheck?: Record<string, unknown>;
  OnBuild?: string[] | null;
  Shell?: string[];
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  created?: string;
  author?: string;
  config?: ImageConfigBody;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: unknown[];
}

export type ParsedManifest = { kind: 'manifest'; mediaType: string; manifest: ImageManifest } | { kind: 'index'; mediaType: string; index: ImageIndex };

export function isManifestMediaType(t: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(t);
}

export function isIndexMediaType(t: string): boolean {
  return INDEX_MEDIA_TYPES.includes(t);
}

// ---- helpers ----

function bad(what: string, why: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `invalid ${what}: ${why}`);
}

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;

/** A descriptor digest: tsrun's store is sha256 only. */
export function checkDigest(d: unknown, what: string): string {
  if (typeof d !== 'string') throw bad(what, 'digest is missing or not a string');
  if (!SHA256_RE.test(d)) {
    if (/^(sha384|sha512):/.test(d))
      throw new TsrunError('ERR_UNSUPPORTED', `${what}: digest algorithm of "${d}" is not supported (tsrun stores sha256 content only)`);
    throw bad(what, `malformed digest "${d.length > 100 ? `${d.slice(0, 100)}…` : d}" (expected sha256:<64 lowercase hex>)`);
  }
  return d;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkString(v: unknown, what: string, opts: { optional?: boolean } = {}): string | undefined {
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'string') throw bad(what, 'must be a string');
  if (v.length > MAX_STRING) throw bad(what, `longer than ${MAX_STRING} characters`);
  if (v.includes('\0')) throw bad(what, 'contains a NUL byte');
  return v;
}

function checkStringArray(v: unknown, what: string, max: number): string[] {
  if (!Array.isArray(v)) throw bad(what, 'must be an array of strings');
  if (v.length > max) throw bad(what, `has ${v.length} entries, more than the ${max} allowed`);
  return v.map((s, i) => checkString(s, `${what}[${i}]`)!);
}

function checkStringMap(v: unknown, what: string): Record<string, string> {
  if (!isObject(v)) throw bad(what, 'must be an object of strings');
  const keys = Object.keys(v);
  if (keys.length > MAX_ANNOTATIONS) throw bad(what, `has ${keys.length} entries, more than the ${MAX_ANNOTATIONS} allowed`);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const k of keys) out[k] = checkString(v[k], `${what}["${k}"]`)!;
  return out;
}

/** Parse JSON dropping prototype-polluting keys; a clear error on bad input. */
export function parseJson(bytes: Buffer | string, what: string): unknown {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  try {
    return JSON.parse(text, (k, v: unknown) => (k === '__proto__' || k === 'constructor' || k === 'prototype' ? undefined : v));
  } catch (e) {
    throw bad(what, `not valid JSON (${(e as Error).message})`);
  }
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw bad(what, 'descriptor must be an object');
  const mediaType = checkString(v.mediaType, `${what} mediaType`)!;
  if (!/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/.test(mediaType)) {
    throw bad(what, `mediaType "${mediaType}" is not a valid media type`);
  }
  const digest = checkDigest(v.digest, what);
  const size = v.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(what, `size must be a non-negative integer, got ${JSON.stringify(size)}`);
  const d: Descriptor = { mediaType, digest, size };
  if (v.urls !== undefined) d.urls = checkStringArray(v.urls, `${what} urls`, 64);
  if (v.annotations !== undefined) d.annotations = checkStringMap(v.annotations, `${what} annotations`);
  if (v.artifactType !== undefined) d.artifactType = checkString(v.artifactType, `${what} artifactType`)!;
  if (v.platform !== undefined) d.platform = parsePlatformObject(v.platform, `${what} platform`);
  return d;
}

function parsePlatformObject(v: unknown, what: string): Platform {
  if (!isObject(v)) throw bad(what, 'must be an object');
  const p: Platform = { os: checkString(v.os, `${what} os`)!, architecture: checkString(v.architecture, `${what} architecture`)! };
  const variant = checkString(v.variant, `${what} variant`, { optional: true });
  if (variant !== undefined && variant !== '') p.variant = variant;
  const osVersion = checkString(v['os.version'], `${what} os.version`, { optional: true });
  if (osVersion !== undefined) p['os.version'] = osVersion;
  if (v['os.features'] !== undefined) p['os.features'] = checkStringArray(v['os.features'], `${what} os.features`, 64);
  return p;
}

function refuseSchema1(what: string): never {
  throw new TsrunError('ERR_UNSUPPORTED', `${what} is a Docker schema 1 manifest, which tsrun does not support (deprecated since 2017 and unsigned content)`, {
    hint: 'rebuild or re-push the image with a current tool (docker, podman, buildah or skopeo), which writes schema 2 or OCI manifests',
  });
}

/**
 * Parse a manifest or an index. `transportType` is the mediaType the bytes came with (the
 * Content-Type of the response, or the descriptor that pointed at them). The document's own
 * mediaType, when present, must agree with it; at least one of them must be present.
 */
export function parseManifest(bytes: Buffer, transportType: string | undefined, what = 'manifest'): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) throw bad(what, `${bytes.length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
  const doc = parseJson(bytes, what);
  if (!isObject(doc)) throw bad(what, 'not a JSON object');
  const transport = transportType?.split(';')[0]?.trim().toLowerCase() || undefined;
  if (doc.schemaVersion === 1 || (transport !== undefined && SCHEMA1_MEDIA_TYPES.includes(transport) && doc.schemaVersion !== 2)) refuseSchema1(what);
  if (doc.schemaVersion !== 2) throw bad(what, `schemaVersion must be 2, got ${JSON.stringify(doc.schemaVersion)}`);
  const own = checkString(doc.mediaType, `${what} mediaType`, { optional: true });
  const generic = transport === undefined || transport === 'application/json' || transport === 'application/octet-stream';
  if (own !== undefined && !generic && own !== transport) {
    throw bad(what, `its mediaType "${own}" disagrees with the type it was served or referenced as ("${transport}")`);
  }
  const mediaType = own ?? (generic ? undefined : transport);
  if (mediaType === undefined) throw bad(what, 'mediaType is missing (neither the document nor its descriptor says what it is)');

  if (INDEX_MEDIA_TYPES.includes(mediaType)) {
    if ('config' in doc || 'layers' in doc) throw bad(what, `a ${mediaType} must not have "config" or "layers" (ambiguous document)`);
    if (!Array.isArray(doc.manifests)) throw bad(what, '"manifests" must be an array');
    if (doc.manifests.length > MAX_INDEX_ENTRIES) throw bad(what, `${doc.manifests.length} manifests, more than the ${MAX_INDEX_ENTRIES} allowed`);
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType,
      manifests: doc.manifests.map((m, i) => parseDescriptor(m, `${what} manifests[${i}]`)),
    };
    if (doc.annotations !== undefined) index.annotations = checkStringMap(doc.annotations, `${what} annotations`);
    return { kind: 'index', mediaType, index };
  }
  if (MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    if ('manifests' in doc) throw bad(what, `a ${mediaType} must not have "manifests" (ambiguous document)`);
    const config = parseDescriptor(doc.config, `${what} config`);
    if (!Array.isArray(doc.layers)) throw bad(what, '"layers" must be an array');
    if (doc.layers.length > MAX_LAYERS) throw bad(what, `${doc.layers.length} layers, more than the ${MAX_LAYERS} allowed`);
    const layers = doc.layers.map((l, i) => parseDescriptor(l, `${what} layers[${i}]`));
    if (mediaType === MediaType.DockerManifest && config.mediaType !== MediaType.DockerConfig) {
      throw bad(what, `a Docker schema 2 manifest's config must be ${MediaType.DockerConfig}, got ${config.mediaType}`);
    }
    const manifest: ImageManifest = { schemaVersion: 2, mediaType, config, layers };
    if (doc.annotations !== undefined) manifest.annotations = checkStringMap(doc.annotations, `${what} annotations`);
    if (doc.subject !== undefined) manifest.subject = parseDescriptor(doc.subject, `${what} subject`);
    return { kind: 'manifest', mediaType, manifest };
  }
  if (SCHEMA1_MEDIA_TYPES.includes(mediaType)) refuseSchema1(what);
  throw new TsrunError('ERR_UNSUPPORTED', `${what} has media type "${mediaType}", which is not an image manifest or index tsrun can pull`);
}

/**
 * Check that a manifest describes a runnable container image: a container config and
 * layers of a supported media type. (Artifacts such as signatures or SBOMs fail here.)
 */
export function checkImageManifest(m: ImageManifest, what = 'manifest'): void {
  if (!CONFIG_MEDIA_TYPES.includes(m.config.mediaType)) {
    throw new TsrunError('ERR_UNSUPPORTED', `${what} is not a container image: its config has media type "${m.config.mediaType}"`);
  }
  if (m.config.size > MAX_CONFIG_BYTES) throw bad(what, `config size ${m.config.size} is more than the ${MAX_CONFIG_BYTES} bytes allowed`);
  m.layers.forEach((l, i) => {
    if (!LAYER_MEDIA_TYPES.includes(l.mediaType)) {
      throw new TsrunError('ERR_UNSUPPORTED', `${what} layers[${i}] (${l.digest}) has media type "${l.mediaType}", which tsrun cannot unpack`);
    }
  });
}

/** Parse and validate an image config (the JSON the manifest's config descriptor points at). */
export function parseImageConfig(bytes: Buffer, what = 'image config'): ImageConfig {
  if (bytes.length > MAX_CONFIG_BYTES) throw bad(what, `${bytes.length} bytes, more than the ${MAX_CONFIG_BYTES} allowed`);
  const doc = parseJson(bytes, what);
  if (!isObject(doc)) throw bad(what, 'not a JSON object');
  const architecture = checkString(doc.architecture, `${what} architecture`)!;
  const os = checkString(doc.os, `${what} os`)!;
  if (!isObject(doc.rootfs)) throw bad(what, '"rootfs" must be an object');
  if (doc.rootfs.type !== 'layers') throw bad(what, `rootfs.type must be "layers", got ${JSON.stringify(doc.rootfs.type)}`);
  if (!Array.isArray(doc.rootfs.diff_ids)) throw bad(what, 'rootfs.diff_ids must be an array');
  if (doc.rootfs.diff_ids.length > MAX_LAYERS) throw bad(what, `${doc.rootfs.diff_ids.length} diff_ids, more than the ${MAX_LAYERS} allowed`);
  const diffIds = doc.rootfs.diff_ids.map((d, i) => checkDigest(d, `${what} rootfs.diff_ids[${i}]`));
  const cfg: ImageConfig = { architecture, os, rootfs: { type: 'layers', diff_ids: diffIds } };
  const variant = checkString(doc.variant, `${what} variant`, { optional: true });
  if (variant) cfg.variant = variant;
  const osVersion = checkString(doc['os.version'], `${what} os.version`, { optional: true });
  if (osVersion !== undefined) cfg['os.version'] = osVersion;
  const created = checkString(doc.created, `${what} created`, { optional: true });
  if (created !== undefined) cfg.created = created;
  const author = checkString(doc.author, `${what} author`, { optional: true });
  if (author !== undefined) cfg.author = author;
  if (Array.isArray(doc.history)) cfg.history = doc.history;
  if (doc.config !== undefined && doc.config !== null) cfg.config = parseConfigBody(doc.config, `${what} config`);
  return cfg;
}

function parseConfigBody(v: unknown, what: string): ImageConfigBody {
  if (!isObject(v)) throw bad(what, 'must be an object');
  const out: ImageConfigBody = {};
  const str = (k: 'User' | 'WorkingDir' | 'StopSignal') => {
    const s = checkString(v[k], `${what}.${k}`, { optional: true });
    if (s !== undefined) out[k] = s;
  };
  str('User');
  str('WorkingDir');
  str('StopSignal');
  if (v.Env !== undefined && v.Env !== null) out.Env = checkStringArray(v.Env, `${what}.Env`, 65536);
  for (const k of ['Entrypoint', 'Cmd'] as const) {
    if (v[k] === null) out[k] = null;
    else if (v[k] !== undefined) out[k] = checkStringArray(v[k], `${what}.${k}`, 65536);
  }
  for (const k of ['ExposedPorts', 'Volumes'] as const) {
    if (v[k] === undefined || v[k] === null) continue;
    if (!isObject(v[k])) throw bad(`${what}.${k}`, 'must be an object');
    if (Object.keys(v[k]).length > MAX_ANNOTATIONS) throw bad(`${what}.${k}`, `more than ${MAX_ANNOTATIONS} entries`);
    out[k] = v[k];
  }
  if (v.Labels !== undefined && v.Labels !== null) out.Labels = checkStringMap(v.Labels, `${what}.Labels`);
  if (isObject(v.Healthcheck)) out.Healthcheck = v.Healthcheck;
  if (v.OnBuild !== undefined && v.OnBuild !== null) out.OnBuild = checkStringArray(v.OnBuild, `${what}.OnBuild`, 1024);
  if (v.Shell !== undefined && v.Shell !== null) out.Shell = checkStringArray(v.Shell, `${what}.Shell`, 64);
  return out;
}

// ---- platforms ----

const NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips64el: 'mips64le',
};

/** Normalise as containerd's platforms.Normalize, except that arm64 keeps an explicit "v8". */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  switch (arch) {
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === undefined || variant === '8' || variant === 'v8' || variant === 'v8.0') variant = 'v8';
      else if (/^\d+(\.\d+)?$/.test(variant)) variant = `v${variant.replace(/\.0$/, '')}`;
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (/^\d+$/.test(variant)) variant = `v${variant}`;
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'i386':
    case 'i686':
    case 'x86':
      arch = '386';
      variant = undefined;
      break;
  }
  const out: Platform = { os, architecture: arch };
  if (variant !== undefined) out.variant = variant;
  return out;
}

/** "linux/arm64/v8". */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The platform this process runs on, as an image platform (linux only). */
export function hostPlatform(nodeArch: string = process.arch, nodePlatform: string = process.platform): Platform {
  if (nodePlatform !== 'linux') throw new TsrunError('ERR_UNSUPPORTED', `tsrun runs Linux images on Linux only (this is ${nodePlatform})`);
  const arch = NODE_ARCH[nodeArch];
  if (!arch) throw new TsrunError('ERR_UNSUPPORTED', `no image architecture is known for Node's process.arch "${nodeArch}"`);
  return normalizePlatform({ os: 'linux', architecture: arch });
}

/** Parse `--platform os/arch[/variant]`. Only linux images can run. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[A-Za-z0-9_.-]+$/.test(x))) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid platform "${s}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2] !== undefined) p.variant = parts[2];
  const n = normalizePlatform(p);
  if (n.os !== 'linux') throw new TsrunError('ERR_UNSUPPORTED', `invalid platform "${s}": tsrun runs linux images only`);
  return n;
}

/** Does an image of platform `have` satisfy a request for `want`? (Both normalised here.) */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  return (w.variant ?? '') === (h.variant ?? '');
}

function isAttestation(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || (d.platform?.os === 'unknown' && d.platform.architecture === 'unknown');
}

/**
 * Pick the image manifest for `want` from an index. Entries that are not image manifests
 * (attestations, nested indexes) are never chosen. The error lists what is available.
 */
export function selectPlatform(index: ImageIndex, want: Platform, what = 'image index'): Descriptor {
  const candidates = index.manifests.filter((d) => MANIFEST_MEDIA_TYPES.includes(d.mediaType) && d.platform && !isAttestation(d));
  const match = candidates.find((d) => platformMatches(want, d.platform!));
  if (match) return match;
  const available = [...new Set(candidates.map((d) => formatPlatform(normalizePlatform(d.platform!))))];
  const nested = index.manifests.some((d) => INDEX_MEDIA_TYPES.includes(d.mediaType));
  throw new TsrunError(
    'ERR_INVALID_ARGUMENT',
    `${what} has no image for platform ${formatPlatform(normalizePlatform(want))}; available: ${available.length ? available.join(', ') : 'none'}${nested ? ' (nested indexes are not searched)' : ''}`,
    available.length ? { hint: `choose one with --platform, e.g. --platform ${available[0]}` } : {},
  );
}
