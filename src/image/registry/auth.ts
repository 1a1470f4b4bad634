// Registry authentication (distribution's token spec and HTTP Basic):
//
//   1. A request answered 401 carries `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`
//      (or `Basic realm="…"`).
//   2. Bearer: GET <realm>?service=<service>&scope=<scope> — with HTTP Basic credentials when
//      tsrun knows some for the registry, anonymously otherwise; or, with a Docker identity
//      token, POST grant_type=refresh_token (OAuth2). The answer is {"token"|"access_token",
//      "expires_in"?, "issued_at"?}; tokens are cached per (realm, service, scope) until shortly
//      before they expire, and concurrent requests for one scope share a single fetch.
//   3. Basic: the credentials go on every request to the registry host.
// A request may need several scopes at once (a push that mounts a blob from another
// repository: "repository:b:pull,push" and "repository:a:pull"): each goes as its own `scope`
// parameter, and the token is cached for that set.
// Credentials and tokens are only ever sent over https, or plain http to a host the caller
// allows plain http for (loopback or marked insecure).
import { TsrunError, type TsrunCode, type TsrunErrorOptions } from '../../util/errors.js';
import type { RegistryCredentials } from './credentials.js';

/** An HTTP error from a registry or its token server. `status` is 0 for transport errors. */
export class RegistryError extends TsrunError {
  readonly status: number;
  /** The registry's error code (MANIFEST_UNKNOWN, UNAUTHORIZED, DENIED, …) when it sent one. */
  readonly registryCode: string | undefined;

  constructor(code: TsrunCode, message: string, status: number, opts: TsrunErrorOptions & { registryCode?: string } = {}) {
    super(code, message, opts);
    this.status = status;
    this.registryCode = opts.registryCode;
  }
}

export interface Challenge {
  /** Lower-cased: "bearer", "basic". */
  scheme: string;
  /** Lower-cased parameter names: realm, service, scope, error, … */
  params: Record<string, string>;
}

const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const SCHEME_REST_RE = new RegExp(`^(${TOKEN})[ \\t]+([^]*)$`);
const PARAM_RE = new RegExp(`^(${TOKEN})[ \\t]*=[ \\t]*([^]*)$`);
const BARE_TOKEN_RE = new RegExp(`^${TOKEN}$`);
const TOKEN68_RE = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Split at commas outside quoted strings. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      cur += c;
      if (c === '\\' && i + 1 < s.length) cur += s[++i];
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      cur += c;
    } else if (c === ',') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function paramValue(raw: string): string | undefined {
  const v = raw.trim();
  if (!v.startsWith('"')) return BARE_TOKEN_RE.test(v) || v === '' ? v : undefined;
  if (v.length < 2 || !v.endsWith('"')) return undefined;
  let out = '';
  for (let i = 1; i < v.length - 1; i++) {
    const c = v[i]!;
    if (c === '\\' && i + 1 < v.length - 1) out += v[++i];
    else if (c === '"') return undefined;
    else out += c;
  }
  return out;
}

/**
 * Parse a WWW-Authenticate header value (RFC 7235): one or more challenges, each a scheme
 * followed by a token68 or comma-separated auth-params (name=token or name="quoted string"
 * with \\-escapes). Scheme and parameter names are lower-cased. Malformed parameters are
 * dropped rather than guessed at.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let current: Challenge | undefined;
  const addParam = (item: string) => {
    const m = PARAM_RE.exec(item);
    if (!m || !current) return;
    const v = paramValue(m[2]!);
    if (v !== undefined) current.params[m[1]!.toLowerCase()] = v;
  };
  for (const item of splitTopLevel(header)) {
    const sr = SCHEME_REST_RE.exec(item);
    if (sr && !sr[2]!.startsWith('=')) {
      // "<scheme> <rest>": rest is an auth-param or a token68
      current = { scheme: sr[1]!.toLowerCase(), params: {} };
      out.push(current);
      const rest = sr[2]!.trim();
      if (TOKEN68_RE.test(rest) && !/^[^=]+=[^=]/.test(rest)) current.params.token68 = rest;
      else addParam(rest);
    } else if (PARAM_RE.test(item)) {
      addParam(item);
    } else if (BARE_TOKEN_RE.test(item)) {
      current = { scheme: item.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** The value of an Authorization header for HTTP Basic. */
export function basicAuthorization(creds: Pick<RegistryCredentials, 'username' | 'password'>): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
}

/** What the auth layer needs from an HTTP stack (the registry client provides it). */
export interface TokenTransport {
  (
    url: URL,
    init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>;
}

export interface RegistryAuthOptions {
  /** The registry host[:port] the credentials belong to (for messages). */
  registry: string;
  credentials?: RegistryCredentials | undefined;
  /** Appended to "no credentials" errors (e.g. a credential helper tsrun does not run). */
  credentialNote?: string | undefined;
  transport: TokenTransport;
  /** May plain http carry credentials/tokens to this host[:port]? */
  allowHttp: (host: string, hostname: string) => boolean;
  now?: () => number;
  clientId?: string;
  /** What the caller is doing, for the hint of an "unauthorized" error (default "pull"). */
  verb?: string;
}

/** One scope or several ("repository:a:pull,push", "repository:b:pull"). */
export type Scopes = string | readonly string[];

function scopeList(s: Scopes): string[] {
  return (typeof s === 'string' ? [s] : [...s]).filter((x) => x !== '');
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

const MIN_TOKEN_LIFETIME_S = 60; // distribution's token spec: "if omitted, assume 60 seconds"
const TOKEN_SLACK_MS = 10_000;

export class RegistryAuth {
  private readonly opts: RegistryAuthOptions;
  private bearer: { realm: string; service: string | undefined } | undefined;
  private basic = false;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;

  constructor(opts: RegistryAuthOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  /** Which scheme the registry asked for so far (tests, diagnostics). */
  get scheme(): 'bearer' | 'basic' | undefined {
    return this.bearer ? 'bearer' : this.basic ? 'basic' : undefined;
  }

  /** Record the challenges of a 401 (or of the /v2/ ping). Returns true if one is usable. */
  learn(challenges: Challenge[]): boolean {
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      const next = { realm: bearer.params.realm!, service: bearer.params.service };
      if (!this.bearer || this.bearer.realm !== next.realm || this.bearer.service !== next.service) this.bearer = next;
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.basic = true;
      return true;
    }
    return false;
  }

  /** Forget a token that the registry refused (expired or revoked). */
  invalidate(scope: Scopes): void {
    if (this.bearer) this.tokens.delete(this.key(scope));
  }

  /**
   * The Authorization header to send for a request needing `scope`
   * ("repository:library/busybox:pull"), or undefined when no challenge has been seen yet.
   * Fetches (and caches) a bearer token when needed.
   */
  async authorization(scope: Scopes): Promise<string | undefined> {
    if (this.bearer) return (await this.token(scope)).header;
    if (this.basic) {
      if (!this.opts.credentials) throw this.unauthorized('the registry requires a login (HTTP Basic) and tsrun has no credentials for it');
      return basicAuthorization(this.opts.credentials);
    }
    return undefined;
  }

  /** The error for a 401 that credentials could not fix. */
  unauthorized(why: string, registryMessage?: string): RegistryError {
    const have = this.opts.credentials ? 'the stored credentials were refused' : 'no credentials are stored for it';
    const note = this.opts.credentialNote ? `; ${this.opts.credentialNote}` : '';
    return new RegistryError(
      'ERR_INVALID_ARGUMENT',
      `unauthorized: ${this.opts.registry}: ${why}${registryMessage ? ` (${registryMessage})` : ''} — ${have}${note}`,
      401,
      { hint: `log in with \`tsrun login ${this.opts.registry}\` (or \`docker login\`), then ${this.opts.verb ?? 'pull'} again`, registryCode: 'UNAUTHORIZED' },
    );
  }

  private key(scope: Scopes): string {
    return `${this.bearer?.realm ?? ''}\n${this.bearer?.service ?? ''}\n${scopeList(scope).join(' ')}`;
  }

  private async token(scope: Scopes): Promise<CachedToken> {
    const key = this.key(scope);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.now()) return cached;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(scope).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const t = await p;
    this.tokens.set(key, t);
    return t;
  }

  private async fetchToken(scope: Scopes): Promise<CachedToken> {
    const scopes = scopeList(scope);
    const { realm, service } = this.bearer!;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError('ERR_INVALID_ARGUMENT', `${this.opts.registry}: the token realm "${realm}" is not a URL`, 0);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.opts.allowHttp(url.host, url.hostname))) {
      throw new RegistryError(
        'ERR_INVALID_ARGUMENT',
        `${this.opts.registry}: refusing to fetch a token from "${url.origin}" over ${url.protocol.replace(':', '')} (only https, or plain http to localhost/127.0.0.1/[::1] or a registry marked insecure)`,
        0,
      );
    }
    if (url.username || url.password) throw new RegistryError('ERR_INVALID_ARGUMENT', `${this.opts.registry}: the token realm must not carry credentials`, 0);
    const creds = this.opts.credentials;
    const headers: Record<string, string> = { Accept: 'application/json' };
    let res: Awaited<ReturnType<TokenTransport>>;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: this.opts.clientId ?? 'tsrun' });
      if (service) form.set('service', service);
      // RFC 6749: one space-separated list
      if (scopes.length) form.set('scope', scopes.join(' '));
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      res = await this.opts.transport(url, { method: 'POST', headers, body: form.toString() });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (creds && (creds.username || creds.password)) {
        headers.Authorization = basicAuthorization(creds);
        url.searchParams.set('account', creds.username);
      }
      res = await this.opts.transport(url, { method: 'GET', headers });
    }
    if (res.status === 401 || res.status === 403) {
      throw this.unauthorized(`the token server ${url.origin} answered ${res.status}`, errorText(res.body));
    }
    if (res.status !== 200) {
      throw new RegistryError(
        'ERR_INVALID_STATE',
        `${this.opts.registry}: the token server ${url.origin} answered ${res.status}${errorText(res.body) ? `: ${errorText(res.body)}` : ''}`,
        res.status,
      );
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      doc = JSON.parse(res.body.toString('utf8')) as typeof doc;
    } catch {
      throw new RegistryError('ERR_INVALID_STATE', `${this.opts.registry}: the token server ${url.origin} sent invalid JSON`, res.status);
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!token || /[\r\n]/.test(token))
      throw new RegistryError('ERR_INVALID_STATE', `${this.opts.registry}: the token server ${url.origin} sent no usable token`, res.status);
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in >= MIN_TOKEN_LIFETIME_S ? doc.expires_in : MIN_TOKEN_LIFETIME_S;
    return { header: `Bearer ${token}`, expiresAt: this.now() + lifetime * 1000 - TOKEN_SLACK_MS };
  }
}

/** The message of a registry error body ({"errors":[{"code","message","detail"}]}), if any. */
export function errorText(body: Buffer): string {
  if (!body.length) return '';
  const text = body.subarray(0, 64 * 1024).toString('utf8');
  try {
    const doc = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[]; error?: unknown; details?: unknown };
    if (Array.isArray(doc.errors) && doc.errors.length) {
      return doc.errors
        .slice(0, 5)
        .map((e) => [typeof e.code === 'string' ? e.code : '', typeof e.message === 'string' ? e.message : ''].filter(Boolean).join(': '))
        .filter(Boolean)
        .join('; ');
    }
    if (typeof doc.error === 'string') return doc.error;
    if (typeof doc.details === 'string') return doc.details;
  } catch {
    /* not JSON */
  }
  const line = text.split('\n')[0]!.trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** The registry's error code (MANIFEST_UNKNOWN, …) from an error body. */
export function errorCode(body: Buffer): string | undefined {
  try {
    const doc = JSON.parse(body.subarray(0, 64 * 1024).toString('utf8')) as { errors?: { code?: unknown }[] };
    const c = doc.errors?.[0]?.code;
    return typeof c === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}
