// Registry credentials. Two sources, looked up in this order:
//   1. tsrun's own store `<imageRoot>/auth.json` (mode 0600), written by `tsrun login` and
//      edited by `tsrun logout`; the same shape as Docker's and Podman's auth files:
//        {"auths": {"127.0.0.1:5000": {"auth": "<base64 user:password>"}}}
//   2. Docker's `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): the inline
//      `auths.<host>.auth` (base64 user:password) or `identitytoken`. Credential helpers
//      (`credsStore`, `credHelpers`) are never executed: an entry that lives only in a helper
//      is reported as unavailable, with a hint.
// Keys are normalised like Docker's ConvertToHostname: "https://host/v1/" -> "host", and the
// Docker Hub aliases (index.docker.io, registry-1.docker.io, docker.io) are one registry.
import { lstatSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isErrno, TsrunError, wrap } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';
import { DEFAULT_IMAGE_ROOT } from '../store/layout.js';

export interface RegistryCredentials {
  username: string;
  password: string;
  /** An OAuth2 refresh token (Docker's `identitytoken`), used instead of the password. */
  identityToken?: string;
}

export interface CredentialLookup {
  credentials?: RegistryCredentials;
  /** Where they came from ("/var/lib/tsrun/auth.json", "/root/.docker/config.json"). */
  source?: string;
  /** Why none were found although a source mentions the registry (a credential helper). */
  note?: string;
}

export interface CredentialOptions {
  /** The image store root, where tsrun's auth.json lives. */
  imageRoot?: string;
  /** Home directory for ~/.docker/config.json (default os.homedir(), i.e. $HOME). */
  home?: string;
  /** Environment for DOCKER_CONFIG (default process.env). */
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

const MAX_AUTH_FILE = 1024 * 1024;
const HUB_KEYS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** Normalise an auth key or a registry name to the host[:port] it designates. */
export function normalizeRegistryKey(key: string): string {
  let k = key.trim();
  k = k.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  k = k.toLowerCase();
  return HUB_KEYS.has(k) ? 'docker.io' : k;
}

export function tsrunAuthPath(imageRoot: string = DEFAULT_IMAGE_ROOT): string {
  return join(imageRoot, 'auth.json');
}

export function dockerConfigPath(opts: CredentialOptions = {}): string {
  const env = opts.env ?? process.env;
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json');
  return join(opts.home ?? homedir(), '.docker', 'config.json');
}

function readAuthFile(path: string): AuthFile | undefined {
  let buf: Buffer;
  try {
    const st = lstatSync(path);
    if (!st.isFile()) throw new TsrunError('ERR_INVALID_CONFIG', `${path} is not a regular file`);
    if (st.size > MAX_AUTH_FILE) throw new TsrunError('ERR_INVALID_CONFIG', `${path} is larger than ${MAX_AUTH_FILE} bytes`);
    buf = readFileSync(path);
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
    if (e instanceof TsrunError) throw e;
    throw wrap(e, `read credentials ${path}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString('utf8'), (k, v: unknown) => (k === '__proto__' || k === 'constructor' || k === 'prototype' ? undefined : v));
  } catch (e) {
    throw new TsrunError('ERR_INVALID_CONFIG', `credentials file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new TsrunError('ERR_INVALID_CONFIG', `credentials file ${path} is not a JSON object`);
  return doc as AuthFile;
}

function decodeEntry(e: AuthEntry, where: string): RegistryCredentials | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  let username = typeof e.username === 'string' ? e.username : '';
  let password = typeof e.password === 'string' ? e.password : '';
  if (typeof e.auth === 'string' && e.auth !== '') {
    const raw = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = raw.indexOf(':');
    if (colon < 0) throw new TsrunError('ERR_INVALID_CONFIG', `the "auth" of ${where} is not base64 of "user:password"`);
    username = raw.slice(0, colon);
    password = raw.slice(colon + 1).replace(/\0+$/, '');
  }
  const identityToken = typeof e.identitytoken === 'string' && e.identitytoken !== '' ? e.identitytoken : undefined;
  if (!username && !password && !identityToken) return undefined;
  return { username, password, ...(identityToken ? { identityToken } : {}) };
}

function findEntry(file: AuthFile, host: string): [string, AuthEntry] | undefined {
  const auths = file.auths;
  if (!auths || typeof auths !== 'object') return undefined;
  const want = normalizeRegistryKey(host);
  for (const [key, entry] of Object.entries(auths)) {
    if (normalizeRegistryKey(key) === want) return [key, entry];
  }
  return undefined;
}

/** Credentials for a registry host ("127.0.0.1:5000", "docker.io", "ghcr.io"): tsrun's, then Docker's. */
export function lookupCredentials(host: string, opts: CredentialOptions = {}): CredentialLookup {
  const want = normalizeRegistryKey(host);
  const own = tsrunAuthPath(opts.imageRoot);
  const ownFile = readAuthFile(own);
  if (ownFile) {
    const hit = findEntry(ownFile, want);
    const creds = hit && decodeEntry(hit[1], `"${hit[0]}" in ${own}`);
    if (creds) return { credentials: creds, source: own };
  }
  const docker = dockerConfigPath(opts);
  const dockerFile = readAuthFile(docker);
  if (dockerFile) {
    const hit = findEntry(dockerFile, want);
    const creds = hit && decodeEntry(hit[1], `"${hit[0]}" in ${docker}`);
    if (creds) return { credentials: creds, source: docker };
    const helper =
      (dockerFile.credHelpers && typeof dockerFile.credHelpers === 'object'
        ? Object.entries(dockerFile.credHelpers).find(([k]) => normalizeRegistryKey(k) === want)?.[1]
        : undefined) ?? (typeof dockerFile.credsStore === 'string' ? dockerFile.credsStore : undefined);
    if (helper) {
      return {
        note: `${docker} keeps credentials in the credential helper "docker-credential-${helper}", which tsrun does not run; use \`tsrun login ${want}\``,
      };
    }
  }
  return {};
}

/** `tsrun login`: store credentials for `host` in <imageRoot>/auth.json (0600, atomic). */
export function saveCredentials(host: string, creds: RegistryCredentials, opts: { imageRoot?: string } = {}): string {
  const key = normalizeRegistryKey(host);
  if (!key) throw new TsrunError('ERR_INVALID_ARGUMENT', 'login needs a registry host');
  if (creds.username.includes(':')) throw new TsrunError('ERR_INVALID_ARGUMENT', 'a registry user name cannot contain ":"');
  const root = opts.imageRoot ?? DEFAULT_IMAGE_ROOT;
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const path = tsrunAuthPath(root);
  const file = readAuthFile(path) ?? {};
  const auths: Record<string, AuthEntry> = {};
  for (const [k, v] of Object.entries(file.auths ?? {})) if (normalizeRegistryKey(k) !== key) auths[k] = v;
  const entry: AuthEntry = { auth: Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64') };
  if (creds.identityToken) entry.identitytoken = creds.identityToken;
  auths[key] = entry;
  writeFileAtomic(path, `${JSON.stringify({ ...file, auths }, null, 2)}\n`, 0o600);
  return path;
}

/** `tsrun logout`: remove the entry for `host` (the file too when nothing else is left); false if there was none. */
export function removeCredentials(host: string, opts: { imageRoot?: string } = {}): boolean {
  const key = normalizeRegistryKey(host);
  const path = tsrunAuthPath(opts.imageRoot);
  const file = readAuthFile(path);
  if (!file?.auths) return false;
  const auths: Record<string, AuthEntry> = {};
  let removed = false;
  for (const [k, v] of Object.entries(file.auths)) {
    if (normalizeRegistryKey(k) === key) removed = true;
    else auths[k] = v;
  }
  if (!removed) return false;
  const { auths: _old, ...rest } = file;
  void _old;
  if (Object.keys(auths).length === 0 && Object.keys(rest).length === 0) rmSync(path, { force: true });
  else writeFileAtomic(path, `${JSON.stringify({ ...rest, auths }, null, 2)}\n`, 0o600);
  return true;
}
