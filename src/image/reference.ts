// Image references, normalised exactly as Docker and Podman do it (distribution/reference
// ParseNormalizedNamed + TagNameOnly):
//
//   busybox                      -> docker.io/library/busybox:latest
//   user/app                     -> docker.io/user/app:latest
//   index.docker.io/debian       -> docker.io/library/debian:latest
//   ghcr.io/o/r:tag              -> ghcr.io/o/r:tag
//   localhost:5000/x             -> localhost:5000/x:latest
//   127.0.0.1:5000/x@sha256:…    -> 127.0.0.1:5000/x@sha256:…   (a digest alone adds no tag)
//   name:tag@sha256:…            -> docker.io/library/name:tag@sha256:… (the digest is what is pulled)
//
// The grammar (distribution/reference regexp.go):
//   reference   := name [ ":" tag ] [ "@" digest ]
//   name        := [domain '/'] remote-name
//   domain      := host [':' port-number]
//   host        := domain-name | IPv4address | \[ IPv6address \]
//   remote-name := path-component ['/' path-component]*
//   path-component := [a-z0-9]+ ( ( [._] | __ | [-]+ ) [a-z0-9]+ )*
//   tag         := [\w][\w.-]{0,127}
// The first component is a domain when it is "localhost", contains "." or ":", or has an
// uppercase letter; otherwise the name is on Docker Hub, and a single component gets "library/".
import { TsrunError } from '../util/errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
/** The host Docker Hub's registry API actually answers on. */
export const DOCKER_HUB_REGISTRY_HOST = 'registry-1.docker.io';
export const DEFAULT_TAG = 'latest';
const OFFICIAL_REPO_PREFIX = 'library/';
/** distribution's RepositoryNameTotalLengthMax (the path, without the domain). */
export const MAX_REPOSITORY_PATH_LENGTH = 255;
/** Longer input is refused before any regular expression runs on it. */
const MAX_REFERENCE_LENGTH = 4096;

// ---- the grammar, as in distribution/reference regexp.go ----
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const optionalPort = '(?::[0-9]+)?';
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = host + optionalPort;
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;

const REFERENCE_RE = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const ANCHORED_NAME_RE = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const ANCHORED_TAG_RE = new RegExp(`^${tagPat}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const DOMAIN_RE = new RegExp(`^${domainAndPort}$`);

/** Digest algorithms go-digest knows, with the length of their lowercase hex encoding. */
const DIGEST_ALGORITHMS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export interface ImageReference {
  /** The registry domain as normalised: "docker.io", "ghcr.io", "localhost:5000", "[::1]:5000". */
  readonly domain: string;
  /** The repository path inside the registry: "library/busybox", "o/r". */
  readonly path: string;
  /** domain + "/" + path. */
  readonly name: string;
  /** The tag: as given, or "latest" when neither a tag nor a digest was given. */
  readonly tag?: string;
  /** The digest (algorithm:hex), when one was given; it is what gets pulled. */
  readonly digest?: string;
  /** The full normalised form: name[:tag][@digest]. */
  readonly canonical: string;
  /** Docker's short form: "busybox:latest", "user/app:1", "ghcr.io/o/r:tag". */
  readonly familiar: string;
  /** host[:port] to talk to for the registry API (docker.io -> registry-1.docker.io). */
  readonly registryHost: string;
  /** What to ask the registry for in /v2/<path>/manifests/<ref>: the digest if any, else the tag. */
  readonly manifestRef: string;
}

function invalid(input: string, why: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `invalid reference "${input}": ${why}`);
}

/** What is wrong with a digest (go-digest rules: known algorithm, lowercase hex of its length). */
function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  const alg = colon > 0 ? digest.slice(0, colon) : '';
  const hex = colon > 0 ? digest.slice(colon + 1) : '';
  const len = DIGEST_ALGORITHMS[alg];
  if (len === undefined) return `unsupported digest algorithm "${alg}" (expected sha256, sha384 or sha512)`;
  if (hex.length !== len) return `${alg} needs ${len} hex digits, got ${hex.length}`;
  if (!/^[a-f0-9]+$/.test(hex)) return 'the hex part of a digest must be lowercase hexadecimal';
  return undefined;
}

/** Validate a digest as go-digest does; returns it. */
export function validateDigest(digest: string, context = 'digest'): string {
  const why = digestProblem(digest);
  if (why) throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid ${context} "${digest.length > 200 ? `${digest.slice(0, 200)}…` : digest}": ${why}`);
  return digest;
}

/** distribution's splitDockerDomain: pick the domain out of a not-yet-validated name. */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  if (slash < 0) return { domain: DEFAULT_DOMAIN, remainder: OFFICIAL_REPO_PREFIX + name };
  const maybeDomain = name.slice(0, slash);
  const maybeRemote = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (maybeDomain === 'localhost') {
    [domain, remainder] = [maybeDomain, maybeRemote];
  } else if (maybeDomain === LEGACY_DEFAULT_DOMAIN) {
    [domain, remainder] = [DEFAULT_DOMAIN, maybeRemote];
  } else if (/[.:]/.test(maybeDomain)) {
    [domain, remainder] = [maybeDomain, maybeRemote];
  } else if (maybeDomain.toLowerCase() !== maybeDomain) {
    [domain, remainder] = [maybeDomain, maybeRemote];
  } else {
    [domain, remainder] = [DEFAULT_DOMAIN, name];
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

function familiarName(domain: string, path: string): string {
  if (domain !== DEFAULT_DOMAIN) return `${domain}/${path}`;
  if (path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return path;
}

/** The host[:port] serving the registry API for a reference domain. */
export function registryHostFor(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN ? DOCKER_HUB_REGISTRY_HOST : domain;
}

/**
 * Parse a reference the way `docker pull` / `podman pull` read it (ParseNormalizedNamed),
 * adding the "latest" tag when neither a tag nor a digest is given (TagNameOnly).
 */
export function parseReference(input: string): ImageReference {
  if (typeof input !== 'string' || input === '') throw invalid(String(input ?? ''), 'repository name must have at least one component');
  if (input.length > MAX_REFERENCE_LENGTH) throw invalid(`${input.slice(0, 64)}…`, `longer than ${MAX_REFERENCE_LENGTH} characters`);
  if (IDENTIFIER_RE.test(input)) {
    throw invalid(input, 'cannot specify 64-byte hexadecimal strings as a repository name (an image id is not a reference)');
  }
  const { domain: d0, remainder } = splitDockerDomain(input);
  const tagSep = remainder.indexOf(':');
  const remote = tagSep >= 0 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) throw invalid(input, `repository name (${remote}) must be lowercase`);

  const full = `${d0}/${remainder}`;
  const m = REFERENCE_RE.exec(full);
  if (!m) {
    const lower = full.toLowerCase();
    if (lower !== full && REFERENCE_RE.test(lower)) throw invalid(input, 'repository name must be lowercase');
    throw invalid(input, 'invalid reference format (expected [registry/]name[:tag][@digest])');
  }
  const nameMatch = ANCHORED_NAME_RE.exec(m[1]!);
  const domain = nameMatch?.[1] ?? '';
  const path = nameMatch?.[2] ?? m[1]!;
  if (path.length > MAX_REPOSITORY_PATH_LENGTH) {
    throw invalid(input, `repository name must not be more than ${MAX_REPOSITORY_PATH_LENGTH} characters`);
  }
  const givenTag = m[2] || undefined;
  const digestWhy = m[3] ? digestProblem(m[3]) : undefined;
  if (digestWhy) throw invalid(input, digestWhy);
  const digest = m[3] || undefined;
  return build(domain, path, givenTag ?? (digest ? undefined : DEFAULT_TAG), digest);
}

function build(domain: string, path: string, tag: string | undefined, digest: string | undefined): ImageReference {
  const name = `${domain}/${path}`;
  const suffix = `${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  const ref: ImageReference = {
    domain,
    path,
    name,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    canonical: name + suffix,
    familiar: familiarName(domain, path) + suffix,
    registryHost: registryHostFor(domain),
    manifestRef: digest ?? tag ?? DEFAULT_TAG,
  };
  return Object.freeze(ref);
}

/** The same repository with another tag (and no digest). */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  if (!ANCHORED_TAG_RE.test(tag)) throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid tag "${tag}": expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  return build(ref.domain, ref.path, tag, undefined);
}

/** The same repository pinned to a digest (and no tag), as `docker pull name@digest` records it. */
export function withDigest(ref: ImageReference, digest: string): ImageReference {
  return build(ref.domain, ref.path, undefined, validateDigest(digest));
}

/** Is `s` a valid registry domain (host[:port]) as references spell it? Used by login/logout. */
export function isValidDomain(s: string): boolean {
  return s.length <= 255 && DOMAIN_RE.test(s);
}
