// A client for one repository of an OCI distribution (Docker Registry HTTP API v2) registry,
// on node:http/https (per-request TLS options, socket idle timeouts and plain Readable bodies,
// which global fetch does not give without undici's own Agent).
//
// - https by default. Plain http only for localhost, 127.0.0.1, [::1], or a registry the
//   caller marks insecure; for those, as Docker does, https is tried first (without
//   certificate verification) and plain http is the fallback.
// - Authentication follows the 401 challenges (auth.ts); the /v2/ ping learns them up front.
// - Transient failures (5xx, 429, connection resets, timeouts) are retried with exponential
//   backoff and jitter (Retry-After is honoured, bounded); 4xx never is.
// - Redirects (blob storage) are followed, at most 5, never downgrading to plain http for a
//   host that may not use it, and the Authorization header never goes to another host.
// - Manifests are bounded (4 MiB) and verified against the digest asked for, or the
//   Docker-Content-Digest header; blobs are streamed to the caller, who verifies them
//   (ImageStore.putBlob).
// - Uploads (push.ts drives them): upload sessions (POST), cross-repository mounts
//   (POST ?mount=&from=), monolithic (PUT ?digest=) and chunked (PATCH with Content-Range)
//   bodies streamed from a factory so that a retry can send them again, upload status (GET),
//   and manifests (PUT). A client made with `push: true` asks for `pull,push` tokens.
// - checkLogin(): what `tsrun login` asks before saving credentials (docker's login flow).
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { TsrunError, type TsrunErrorOptions } from '../../util/errors.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from '../manifest.js';
import { registryHostFor, validateDigest, type ImageReference } from '../reference.js';
import { errorCode, errorText, parseWwwAuthenticate, RegistryAuth, RegistryError, type Scopes } from './auth.js';
import { normalizeRegistryKey, type RegistryCredentials } from './credentials.js';

export { RegistryError } from './auth.js';

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_ERRNO = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'ERR_HTTP2_STREAM_ERROR',
]);

export interface RegistryClientOptions {
  /** Credentials for the registry (see credentials.ts lookupCredentials). */
  credentials?: RegistryCredentials | undefined;
  /** Said when a 401 cannot be fixed (e.g. a Docker credential helper tsrun does not run). */
  credentialNote?: string | undefined;
  /** The caller marks this registry insecure: https without verification, then plain http. */
  insecure?: boolean;
  /** Force plain http (refused unless the host is loopback or insecure). */
  plainHttp?: boolean;
  /** Retries after the first attempt for transient failures (default 4). */
  retries?: number;
  /** First backoff delay in ms (default 250; doubles each time, with jitter, capped at 10 s). */
  retryBaseMs?: number;
  /** Socket idle timeout in ms (default 60 s). */
  timeoutMs?: number;
  userAgent?: string;
  /** Extra CA certificates (PEM) to trust for https. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Ask for push access as well (tokens for `repository:NAME:pull,push`). */
  push?: boolean;
}

/** An upload in progress: where to send the next request (the registry's Location). */
export interface UploadSession {
  url: URL;
  /** OCI-Chunk-Min-Length: the smallest chunk (but the last) the registry takes. */
  minChunk?: number;
}

/** A body that can be sent again (a retry, a redirect): a fresh stream per call. */
export interface UploadBody {
  size: number;
  open: () => Readable;
}

export interface ManifestResponse {
  bytes: Buffer;
  digest: string;
  /** The Content-Type the registry sent (without parameters), or "" if none. */
  mediaType: string;
}

export interface ManifestHead {
  digest?: string;
  mediaType: string;
  size?: number;
}

export interface BlobResponse {
  stream: Readable;
  /** Content-Length, when the server sent one. */
  size?: number;
}

/** Is plain http allowed for host[:port] given the caller's insecure list? */
export function plainHttpAllowed(host: string, insecureRegistries: readonly string[] = []): boolean {
  const hostname = hostnameOf(host);
  if (LOOPBACK_HOSTNAMES.has(hostname)) return true;
  return insecureRegistries.some((r) => {
    const k = r
      .trim()
      .toLowerCase()
      .replace(/^[a-z]+:\/\//, '')
      .replace(/\/.*$/, '');
    return k === host.toLowerCase() || k === hostname.toLowerCase();
  });
}

function hostnameOf(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const colon = host.lastIndexOf(':');
  return colon >= 0 ? host.slice(0, colon) : host;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Is this error worth retrying (a reset, a timeout, a 5xx or 429)? */
export function isTransient(e: unknown): boolean {
  if (e instanceof RegistryError) return e.status === 0 ? RETRYABLE_ERRNO.has(e.registryCode ?? '') : RETRYABLE_STATUS.has(e.status);
  if (e instanceof TsrunError) return false;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && RETRYABLE_ERRNO.has(code);
}

async function readBody(res: IncomingMessage, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    res.destroy();
    throw new TsrunError('ERR_INVALID_ARGUMENT', `${what} is ${declared} bytes, more than the ${max} allowed`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      res.destroy();
      throw new TsrunError('ERR_INVALID_ARGUMENT', `${what} is more than the ${max} bytes allowed`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function drain(res: IncomingMessage): Promise<Buffer> {
  try {
    return await readBody(res, MAX_ERROR_BODY, 'error body');
  } catch {
    return Buffer.alloc(0);
  }
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function netError(e: unknown, what: string): RegistryError {
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const opts: TsrunErrorOptions & { registryCode?: string } = { cause: e };
  if (typeof err?.errno === 'number') opts.errno = Math.abs(err.errno);
  if (err?.syscall) opts.syscall = err.syscall;
  if (code) opts.registryCode = code;
  return new RegistryError('ERR_SYSCALL', `${what}: ${err?.message ?? String(e)}`, 0, opts);
}

interface SendOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers: Record<string, string>;
  /** A string or buffer, or a stream factory (uploads) whose length is `contentLength`. */
  body?: string | Buffer | (() => Readable);
  contentLength?: number;
  signal?: AbortSignal | undefined;
}

interface Ping {
  base: URL;
}

export class RegistryClient {
  /** host[:port] of the registry API. */
  readonly host: string;
  /** The repository path ("library/busybox"). */
  readonly repository: string;
  /** What goes in "unauthorized"/"not found" messages ("127.0.0.1:5000/x"). */
  readonly displayName: string;
  readonly auth: RegistryAuth;
  private readonly opts: RegistryClientOptions;
  private readonly allowHttp: boolean;
  private readonly insecureHosts: string[];
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly insecureHttpsAgent: https.Agent;
  private ping: Promise<Ping> | undefined;
  /** The scope every request of this client needs. */
  readonly scope: string;

  constructor(ref: Pick<ImageReference, 'registryHost' | 'path'> & Partial<Pick<ImageReference, 'domain'>>, opts: RegistryClientOptions = {}) {
    this.host = ref.registryHost;
    this.repository = ref.path;
    this.displayName = `${ref.domain ?? ref.registryHost}/${ref.path}`;
    this.opts = opts;
    this.insecureHosts = opts.insecure ? [this.host] : [];
    this.allowHttp = plainHttpAllowed(this.host, this.insecureHosts);
    if (opts.plainHttp && !this.allowHttp) {
      throw new TsrunError(
        'ERR_INVALID_ARGUMENT',
        `refusing plain http to registry ${this.host}: only localhost, 127.0.0.1 and [::1] may be used without TLS unless the registry is marked insecure`,
        { hint: `mark it insecure (--insecure-registry ${this.host}) if you really mean to send images and credentials unencrypted` },
      );
    }
    this.scope = `repository:${ref.path}:${opts.push ? 'pull,push' : 'pull'}`;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, ...(opts.ca ? { ca: opts.ca } : {}) });
    this.insecureHttpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
    this.auth = new RegistryAuth({
      registry: ref.domain ?? ref.registryHost,
      credentials: opts.credentials,
      credentialNote: opts.credentialNote,
      transport: (url, init) => this.tokenRequest(url, init),
      allowHttp: (host) => plainHttpAllowed(host, this.insecureHosts),
      ...(opts.push ? { verb: 'push' } : {}),
    });
  }

  /** Close idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.insecureHttpsAgent.destroy();
  }

  // ---- transport ----

  private hostAllowsHttp(u: URL): boolean {
    return plainHttpAllowed(u.host, this.insecureHosts);
  }

  private send(url: URL, o: SendOptions): Promise<IncomingMessage> {
    if (url.protocol === 'http:' && !this.hostAllowsHttp(url)) {
      return Promise.reject(
        new RegistryError('ERR_INVALID_ARGUMENT', `refusing plain http to ${url.host} (only localhost, 127.0.0.1, [::1] or a registry marked insecure)`, 0),
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.reject(new RegistryError('ERR_INVALID_ARGUMENT', `refusing to follow a ${url.protocol} URL from registry ${this.host}`, 0));
    }
    const isHttps = url.protocol === 'https:';
    const agent = isHttps ? (this.hostAllowsHttp(url) ? this.insecureHttpsAgent : this.httpsAgent) : this.httpAgent;
    const mod = isHttps ? https : http;
    const headers: Record<string, string> = { 'User-Agent': this.opts.userAgent ?? 'tsrun', ...o.headers };
    if (typeof o.body === 'function') headers['Content-Length'] = String(o.contentLength ?? 0);
    else if (o.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(o.body));
    else if (o.method === 'PUT' || o.method === 'PATCH' || o.method === 'POST') headers['Content-Length'] = '0';
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method: o.method, headers, agent, ...(o.signal ? { signal: o.signal } : {}) }, resolve);
      req.setTimeout(this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, () => {
        const e = Object.assign(new Error(`no data from ${url.host} for ${Math.round((this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)} s`), {
          code: 'ETIMEDOUT',
        });
        req.destroy(e);
      });
      req.on('error', reject);
      if (typeof o.body === 'function') {
        let src: Readable;
        try {
          src = o.body();
        } catch (e) {
          req.destroy(e as Error);
          return;
        }
        // The registry may answer (an error) before reading the whole body: stop reading then.
        req.once('close', () => src.destroy());
        src.once('error', (e) => req.destroy(e));
        src.pipe(req);
      } else req.end(o.body);
    });
  }

  /**
   * Send, following redirects (blob storage, token servers). An Authorization header, the
   * `authorization` given or one in `o.headers`, only ever goes to the first URL's host.
   */
  private async sendFollowing(url: URL, o: SendOptions, authorization: string | undefined): Promise<{ res: IncomingMessage; url: URL }> {
    let current = url;
    let req = o;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (current.host === url.host || k.toLowerCase() !== 'authorization') headers[k] = v;
      if (authorization && current.host === url.host) headers.Authorization = authorization;
      const res = await this.send(current, { ...req, headers });
      const status = res.statusCode ?? 0;
      const location = header(res.headers, 'location');
      if (![301, 302, 303, 307, 308].includes(status) || !location) return { res, url: current };
      await drain(res);
      if (hop >= MAX_REDIRECTS) throw new RegistryError('ERR_INVALID_STATE', `${this.displayName}: more than ${MAX_REDIRECTS} redirects`, status);
      const next = new URL(location, current);
      if (next.protocol === 'http:' && current.protocol === 'https:' && !this.hostAllowsHttp(next)) {
        throw new RegistryError('ERR_INVALID_ARGUMENT', `${this.displayName}: refusing a redirect from https to plain http (${next.host})`, status);
      }
      // A request with a body (a token POST carrying a refresh token) never follows to another host.
      if (req.body !== undefined && next.host !== current.host) {
        throw new RegistryError('ERR_INVALID_ARGUMENT', `${this.displayName}: refusing to send a request body to ${next.host} after a redirect`, status);
      }
      if (status === 303 || (req.method === 'POST' && (status === 301 || status === 302))) {
        const { body: _drop, ...rest } = req;
        void _drop;
        req = { ...rest, method: 'GET' };
      }
      current = next;
    }
  }

  private async tokenRequest(url: URL, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }) {
    return this.withRetry(async () => {
      const { res } = await this.sendFollowing(
        url,
        { method: init.method, headers: init.headers, ...(init.body !== undefined ? { body: init.body } : {}) },
        undefined,
      ).catch((e: unknown) => {
        throw e instanceof RegistryError ? e : netError(e, `fetch a token from ${url.origin}`);
      });
      const status = res.statusCode ?? 0;
      if (RETRYABLE_STATUS.has(status)) {
        const body = await drain(res);
        throw new RegistryError(
          'ERR_INVALID_STATE',
          `the token server ${url.origin} answered ${status}${errorText(body) ? `: ${errorText(body)}` : ''}`,
          status,
        );
      }
      const body = await readBody(res, 1024 * 1024, `the token server's answer`);
      return { status, headers: res.headers as Record<string, string | string[] | undefined>, body };
    });
  }

  private async withRetry<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const retries = this.opts.retries ?? 4;
    const base = this.opts.retryBaseMs ?? 250;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (signal?.aborted || attempt >= retries || !isTransient(e)) throw e;
        const retryAfter = (e as { retryAfterMs?: number }).retryAfterMs;
        const delay = retryAfter ?? Math.min(10_000, base * 2 ** attempt) * (0.5 + Math.random() / 2);
        await sleep(delay, signal);
      }
    }
  }

  /** GET /v2/ once: picks https or (where allowed) http, and learns the auth challenge. */
  private pingOnce(): Promise<Ping> {
    this.ping ??= this.doPing().catch((e: unknown) => {
      this.ping = undefined;
      throw e;
    });
    return this.ping;
  }

  private async doPing(): Promise<Ping> {
    const schemes = this.opts.plainHttp ? ['http:'] : this.allowHttp ? ['https:', 'http:'] : ['https:'];
    const errors: string[] = [];
    for (const [i, scheme] of schemes.entries()) {
      const base = new URL(`${scheme}//${this.host}/v2/`);
      const last = i === schemes.length - 1;
      try {
        return await (last ? this.withRetry(() => this.pingAt(base)) : this.pingAt(base));
      } catch (e) {
        if (e instanceof RegistryError && e.status !== 0) throw e;
        errors.push(`${scheme.replace(':', '')}: ${(e as Error).message}`);
        if (last) {
          const code = (e as NodeJS.ErrnoException).code;
          throw new RegistryError('ERR_SYSCALL', `cannot reach registry ${this.host} (${errors.join('; ')})`, 0, {
            cause: e,
            ...(code ? { registryCode: code } : {}),
          });
        }
      }
    }
    throw new RegistryError('ERR_SYSCALL', `cannot reach registry ${this.host}`, 0);
  }

  private async pingAt(base: URL): Promise<Ping> {
    const res = await this.send(base, { method: 'GET', headers: {} });
    const status = res.statusCode ?? 0;
    const body = await drain(res);
    if (status === 401) {
      this.auth.learn(parseWwwAuthenticate(String(header(res.headers, 'www-authenticate') ?? '')));
    } else if (status === 404) {
      throw new RegistryError('ERR_INVALID_ARGUMENT', `${base.origin} does not serve the registry API v2 (/v2/ answered 404)`, 404);
    } else if (RETRYABLE_STATUS.has(status)) {
      throw new RegistryError('ERR_INVALID_STATE', `${base.origin}/v2/ answered ${status}${errorText(body) ? `: ${errorText(body)}` : ''}`, status);
    }
    // 200 (no auth needed so far) or anything else: the API is there; requests will tell more.
    return { base };
  }

  /**
   * One API request with auth (one attempt; callers wrap it in withRetry): sends the known
   * Authorization (fetching a token when the registry uses tokens); on 401 learns the
   * challenge and tries once more with fresh credentials. A retryable status is thrown as a
   * transient RegistryError.
   */
  private async request(path: string | URL, o: SendOptions, scopes: Scopes = this.scope): Promise<IncomingMessage> {
    const { base } = await this.pingOnce();
    const url = new URL(path, base);
    // An upload's Location may name another host: the registry's credentials never go there.
    const ownHost = url.host === base.host;
    const sendOnce = (authorization: string | undefined) =>
      this.sendFollowing(url, o, ownHost ? authorization : undefined).catch((e: unknown) => {
        throw e instanceof RegistryError ? e : netError(e, `${o.method} ${url.origin}${url.pathname}`);
      });
    let authorization = await this.auth.authorization(scopes);
    let { res, url: answered } = await sendOnce(authorization);
    if (res.statusCode === 401) {
      const body = await drain(res);
      // Only the registry itself may say where to authenticate: a 401 from a host it
      // redirected to (blob storage) must never send our credentials to that host's realm.
      if (answered.host !== url.host) {
        throw new RegistryError(
          'ERR_INVALID_ARGUMENT',
          `${this.displayName}: the storage host ${answered.host} it redirected to refused the request (401)`,
          401,
        );
      }
      const challenges = parseWwwAuthenticate(String(header(res.headers, 'www-authenticate') ?? ''));
      const sentBasic = authorization?.startsWith('Basic ') ?? false;
      this.auth.invalidate(scopes);
      if (!this.auth.learn(challenges)) throw this.auth.unauthorized('access denied (no usable WWW-Authenticate challenge)', errorText(body));
      if (sentBasic && this.auth.scheme === 'basic') throw this.auth.unauthorized('authentication failed', errorText(body));
      authorization = await this.auth.authorization(scopes);
      if (authorization === undefined) throw this.auth.unauthorized('authentication required', errorText(body));
      ({ res } = await sendOnce(authorization));
      if (res.statusCode === 401) {
        const body2 = await drain(res);
        this.auth.invalidate(scopes);
        throw this.auth.unauthorized('authentication failed', errorText(body2));
      }
    }
    const status = res.statusCode ?? 0;
    if (RETRYABLE_STATUS.has(status)) {
      const body = await drain(res);
      const e = new RegistryError(
        'ERR_INVALID_STATE',
        `${this.displayName}: ${o.method} ${typeof path === 'string' ? path : path.pathname} answered ${status}${errorText(body) ? `: ${errorText(body)}` : ''}`,
        status,
      );
      const ra = header(res.headers, 'retry-after');
      if (ra !== undefined && /^\d+$/.test(ra)) Object.assign(e, { retryAfterMs: Math.min(30, Number(ra)) * 1000 });
      throw e;
    }
    return res;
  }

  private async failure(res: IncomingMessage, what: string): Promise<RegistryError> {
    const status = res.statusCode ?? 0;
    const body = await drain(res);
    const text = errorText(body);
    const code = errorCode(body);
    if (status === 404) {
      return new RegistryError(
        'ERR_INVALID_ARGUMENT',
        `${what}: not found in ${this.displayName}${text ? ` (${text})` : ''}`,
        status,
        code ? { registryCode: code } : {},
      );
    }
    if (status === 403) {
      return new RegistryError('ERR_INVALID_ARGUMENT', `${what}: access denied by ${this.host}${text ? ` (${text})` : ''}`, status, {
        hint: `check that your account may ${this.opts.push ? 'push to' : 'pull'} ${this.displayName} (\`tsrun login ${this.host}\`)`,
        ...(code ? { registryCode: code } : {}),
      });
    }
    return new RegistryError(
      status >= 500 ? 'ERR_INVALID_STATE' : 'ERR_INVALID_ARGUMENT',
      `${what}: ${this.host} answered ${status}${text ? ` (${text})` : ''}`,
      status,
      code ? { registryCode: code } : {},
    );
  }

  // ---- API ----

  /**
   * GET a manifest or index by tag or digest, with Accept for every type tsrun supports.
   * The bytes are verified against the digest asked for, or else the Docker-Content-Digest
   * header; at most 4 MiB is read.
   */
  async getManifest(tagOrDigest: string, opts: { signal?: AbortSignal } = {}): Promise<ManifestResponse> {
    const byDigest = tagOrDigest.includes(':');
    if (byDigest) validateDigest(tagOrDigest);
    const what = `manifest ${this.displayName}${byDigest ? '@' : ':'}${tagOrDigest}`;
    return this.withRetry(async () => {
      const res = await this.request(`/v2/${this.repository}/manifests/${tagOrDigest}`, {
        method: 'GET',
        headers: { Accept: MANIFEST_ACCEPT.join(', ') },
        signal: opts.signal,
      });
      if (res.statusCode !== 200) throw await this.failure(res, what);
      const bytes = await readBody(res, MAX_MANIFEST_BYTES, what).catch((e: unknown) => {
        throw e instanceof TsrunError ? e : netError(e, `read ${what}`);
      });
      const mediaType = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
      const expected = byDigest ? tagOrDigest : header(res.headers, 'docker-content-digest')?.trim();
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      if (expected) {
        validateDigest(expected, `digest of ${what}`);
        const [alg] = expected.split(':');
        const got = alg === 'sha256' ? digest : `${alg}:${createHash(alg!).update(bytes).digest('hex')}`;
        if (got !== expected) {
          throw new RegistryError(
            'ERR_DIGEST_MISMATCH',
            `${what}: digest mismatch: expected ${expected}${byDigest ? '' : ' (Docker-Content-Digest)'}, the content hashes to ${got}`,
            200,
          );
        }
      }
      return { bytes, digest, mediaType };
    }, opts.signal);
  }

  /** HEAD a manifest: its digest (Docker-Content-Digest), type and size, without the body. */
  async headManifest(tagOrDigest: string, opts: { signal?: AbortSignal } = {}): Promise<ManifestHead> {
    const what = `manifest ${this.displayName}:${tagOrDigest}`;
    const res = await this.withRetry(
      () =>
        this.request(`/v2/${this.repository}/manifests/${tagOrDigest}`, {
          method: 'HEAD',
          headers: { Accept: MANIFEST_ACCEPT.join(', ') },
          signal: opts.signal,
        }),
      opts.signal,
    );
    res.resume();
    if (res.statusCode !== 200) throw await this.failure(res, what);
    const digest = header(res.headers, 'docker-content-digest')?.trim();
    const size = Number(header(res.headers, 'content-length'));
    const head: ManifestHead = { mediaType: (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim() };
    if (digest && /^sha256:[a-f0-9]{64}$/.test(digest)) head.digest = digest;
    if (Number.isSafeInteger(size) && size >= 0) head.size = size;
    return head;
  }

  /** Does the registry have this blob? (HEAD /v2/<name>/blobs/<digest>) */
  async hasBlob(digest: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    validateDigest(digest);
    const res = await this.withRetry(
      () => this.request(`/v2/${this.repository}/blobs/${digest}`, { method: 'HEAD', headers: {}, signal: opts.signal }),
      opts.signal,
    );
    res.resume();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw await this.failure(res, `blob ${digest}`);
  }

  /**
   * GET a blob. The stream is the raw body: the caller verifies digest and size while
   * storing it (ImageStore.putBlob). Failures before the body starts are retried here; a
   * stream that breaks later errors, and the caller retries the whole blob.
   */
  async blobStream(digest: string, opts: { signal?: AbortSignal } = {}): Promise<BlobResponse> {
    validateDigest(digest);
    return this.withRetry(() => this.blobStreamOnce(digest, opts.signal), opts.signal);
  }

  private async blobStreamOnce(digest: string, signal: AbortSignal | undefined): Promise<BlobResponse> {
    const res = await this.request(`/v2/${this.repository}/blobs/${digest}`, { method: 'GET', headers: { Accept: '*/*' }, signal });
    if (res.statusCode !== 200) throw await this.failure(res, `blob ${digest}`);
    const len = header(res.headers, 'content-length');
    const out: BlobResponse = { stream: res };
    if (len !== undefined && /^\d+$/.test(len) && Number.isSafeInteger(Number(len))) out.size = Number(len);
    return out;
  }

  /** GET a small blob (a config) into memory, verified against its digest and size. */
  async getBlobBytes(digest: string, opts: { size?: number; maxSize: number; signal?: AbortSignal }): Promise<Buffer> {
    const what = `blob ${digest}`;
    return this.withRetry(async () => {
      validateDigest(digest);
      const { stream } = await this.blobStreamOnce(digest, opts.signal);
      const bytes = await readBody(stream as IncomingMessage, opts.maxSize, what).catch((e: unknown) => {
        throw e instanceof TsrunError ? e : netError(e, `read ${what}`);
      });
      const got = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      if (got !== digest) throw new RegistryError('ERR_DIGEST_MISMATCH', `${what}: digest mismatch: the content hashes to ${got}`, 200);
      if (opts.size !== undefined && bytes.length !== opts.size) {
        throw new RegistryError('ERR_DIGEST_MISMATCH', `${what}: ${bytes.length} bytes, its descriptor says ${opts.size}`, 200);
      }
      return bytes;
    }, opts.signal);
  }
  // ---- uploads (push) ----

  /** Where an upload goes next: the Location of a 202 (relative to the registry), and its minimum chunk. */
  private async sessionFrom(res: IncomingMessage, what: string): Promise<UploadSession> {
    const loc = header(res.headers, 'location');
    await drain(res);
    if (!loc) throw new RegistryError('ERR_INVALID_STATE', `${what}: ${this.host} answered ${res.statusCode} without a Location`, res.statusCode ?? 0);
    const { base } = await this.pingOnce();
    const session: UploadSession = { url: new URL(loc, base) };
    const min = Number(header(res.headers, 'oci-chunk-min-length'));
    if (Number.isSafeInteger(min) && min > 0) session.minChunk = min;
    return session;
  }

  /** The session after a PATCH or status: its new Location, or the same one. */
  private async nextSession(res: IncomingMessage, session: UploadSession, what: string): Promise<UploadSession> {
    if (!header(res.headers, 'location')) {
      await drain(res);
      return session;
    }
    const next = await this.sessionFrom(res, what);
    if (session.minChunk !== undefined && next.minChunk === undefined) next.minChunk = session.minChunk;
    return next;
  }

  /** POST /v2/<name>/blobs/uploads/: open an upload session. */
  async startUpload(opts: { signal?: AbortSignal } = {}): Promise<UploadSession> {
    const what = `start an upload to ${this.displayName}`;
    return this.withRetry(async () => {
      const res = await this.request(`/v2/${this.repository}/blobs/uploads/`, { method: 'POST', headers: {}, signal: opts.signal });
      if (res.statusCode !== 202) throw await this.failure(res, what);
      return this.sessionFrom(res, what);
    }, opts.signal);
  }

  /**
   * Cross-repository mount: POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>, with a
   * token that may also pull `from`. 201: the registry linked the blob; 202: it would not (or
   * cannot), and opened an upload session instead, which the caller uses.
   */
  async mountBlob(digest: string, from: string, opts: { signal?: AbortSignal } = {}): Promise<{ mounted: true } | { mounted: false; session: UploadSession }> {
    validateDigest(digest);
    const what = `mount blob ${digest} from ${from} into ${this.displayName}`;
    const path = `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    return this.withRetry(async () => {
      const res = await this.request(path, { method: 'POST', headers: {}, signal: opts.signal }, [this.scope, `repository:${from}:pull`]);
      if (res.statusCode === 201) {
        await drain(res);
        return { mounted: true as const };
      }
      if (res.statusCode === 202) return { mounted: false as const, session: await this.sessionFrom(res, what) };
      throw await this.failure(res, what);
    }, opts.signal);
  }

  /**
   * Finish an upload: PUT <session>?digest=<digest>, with the whole blob (a monolithic upload)
   * or with no body after chunks. Not retried here: a broken body leaves the session in an
   * unknown state, so the caller starts the blob again. Returns the digest the registry says.
   */
  async finishUpload(session: UploadSession, digest: string, body: UploadBody | undefined, opts: { signal?: AbortSignal } = {}): Promise<string> {
    validateDigest(digest);
    const url = new URL(session.url);
    url.searchParams.set('digest', digest);
    const res = await this.request(url, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      ...(body ? { body: body.open, contentLength: body.size } : {}),
      signal: opts.signal,
    });
    if (res.statusCode !== 201 && res.statusCode !== 204) throw await this.failure(res, `upload blob ${digest} to ${this.displayName}`);
    await drain(res);
    const said = header(res.headers, 'docker-content-digest')?.trim();
    if (said && said !== digest) {
      throw new RegistryError('ERR_DIGEST_MISMATCH', `upload blob ${digest} to ${this.displayName}: the registry stored it as ${said}`, res.statusCode ?? 0);
    }
    return said ?? digest;
  }

  /**
   * One chunk of a chunked upload: PATCH <session> with Content-Range start-end. Returns the
   * next session and the registry's offset (its Range header + 1). Not retried here (see
   * uploadStatus for resuming).
   */
  async patchUpload(
    session: UploadSession,
    start: number,
    body: UploadBody,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ session: UploadSession; offset: number }> {
    const what = `upload bytes ${start}-${start + body.size - 1} to ${this.displayName}`;
    const res = await this.request(session.url, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${start + body.size - 1}` },
      body: body.open,
      contentLength: body.size,
      signal: opts.signal,
    });
    if (res.statusCode !== 202 && res.statusCode !== 204) throw await this.failure(res, what);
    const offset = parseRangeEnd(header(res.headers, 'range')) ?? start + body.size;
    const next = await this.nextSession(res, session, what);
    return { session: next, offset };
  }

  /** GET <session>: how many bytes the registry holds of an upload (to resume after a failure). */
  async uploadStatus(session: UploadSession, opts: { signal?: AbortSignal } = {}): Promise<{ session: UploadSession; offset: number }> {
    const what = `upload status at ${this.displayName}`;
    return this.withRetry(async () => {
      const res = await this.request(session.url, { method: 'GET', headers: {}, signal: opts.signal });
      if (res.statusCode !== 204 && res.statusCode !== 200) throw await this.failure(res, what);
      const offset = parseRangeEnd(header(res.headers, 'range')) ?? 0;
      return { session: await this.nextSession(res, session, what), offset };
    }, opts.signal);
  }

  /** DELETE <session>: abandon an upload (best effort). */
  async cancelUpload(session: UploadSession): Promise<void> {
    try {
      const res = await this.request(session.url, { method: 'DELETE', headers: {} });
      await drain(res);
    } catch {
      /* the registry expires abandoned uploads itself */
    }
  }

  /**
   * PUT a manifest or index, byte for byte, under a tag or its digest. Returns the digest the
   * registry computed (Docker-Content-Digest), which must be the bytes' own.
   */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (reference.includes(':')) {
      validateDigest(reference);
      if (reference !== digest) throw new TsrunError('ERR_DIGEST_MISMATCH', `manifest ${digest} cannot be pushed as ${reference}`);
    }
    const what = `manifest ${this.displayName}${reference.includes(':') ? '@' : ':'}${reference}`;
    return this.withRetry(async () => {
      const res = await this.request(`/v2/${this.repository}/manifests/${reference}`, {
        method: 'PUT',
        headers: { 'Content-Type': mediaType },
        body: bytes,
        signal: opts.signal,
      });
      if (res.statusCode !== 201 && res.statusCode !== 200 && res.statusCode !== 202) throw await this.failure(res, `push ${what}`);
      await drain(res);
      const said = header(res.headers, 'docker-content-digest')?.trim();
      if (said && said !== digest) {
        throw new RegistryError('ERR_DIGEST_MISMATCH', `push ${what}: the registry stored it as ${said}, not ${digest}`, res.statusCode ?? 0);
      }
      return digest;
    }, opts.signal);
  }

  // ---- login ----

  /**
   * Are the credentials good? docker's login flow: GET /v2/; when it asks for Basic, GET it
   * again with them; when it asks for a Bearer token, fetch one from its token server with
   * them and no scope, and GET /v2/ with the token. Resolves to the scheme the registry uses
   * ("none" when /v2/ needs no login); a refusal is "unauthorized: wrong username or password".
   */
  async checkLogin(opts: { signal?: AbortSignal } = {}): Promise<'none' | 'basic' | 'bearer'> {
    await this.pingOnce();
    try {
      const res = await this.withRetry(() => this.request('/v2/', { method: 'GET', headers: {}, signal: opts.signal }, []), opts.signal);
      if (res.statusCode !== 200) throw await this.failure(res, `log in to ${this.host}`);
      await drain(res);
    } catch (e) {
      if (e instanceof RegistryError && e.status === 401) {
        const where = this.displayName.replace(/\/$/, '');
        throw new RegistryError('ERR_INVALID_ARGUMENT', `unauthorized: wrong username or password (${where} refused them)`, 401, {
          cause: e,
          registryCode: 'UNAUTHORIZED',
        });
      }
      throw e;
    }
    return this.auth.scheme ?? 'none';
  }
}

/** The end of a Range header ("0-1023", "bytes=0-1023") + 1: the bytes a registry holds. */
export function parseRangeEnd(range: string | undefined): number | undefined {
  const m = /^(?:bytes=)?(\d+)-(\d+)$/.exec(range?.trim() ?? '');
  if (!m) return undefined;
  const end = Number(m[2]);
  return Number.isSafeInteger(end) ? end + 1 : undefined;
}

export interface LoginCheckOptions {
  /** Registries (host[:port]) that may use plain http / unverified TLS; loopback always may. */
  insecureRegistries?: readonly string[];
  retries?: number;
  retryBaseMs?: number;
  timeoutMs?: number;
  ca?: string | Buffer | (string | Buffer)[];
  signal?: AbortSignal;
}

/**
 * `tsrun login`'s check, before anything is saved (RegistryClient.checkLogin): resolves to the
 * registry's auth scheme; rejects with "unauthorized: wrong username or password" or
 * "cannot reach registry …".
 */
export async function checkLogin(registry: string, credentials: RegistryCredentials, opts: LoginCheckOptions = {}): Promise<'none' | 'basic' | 'bearer'> {
  const key = normalizeRegistryKey(registry);
  if (!key) throw new TsrunError('ERR_INVALID_ARGUMENT', 'login needs a registry host');
  const host = registryHostFor(key);
  const client = new RegistryClient(
    { registryHost: host, path: '', domain: key },
    {
      credentials,
      insecure: plainHttpAllowed(host, opts.insecureRegistries) || plainHttpAllowed(key, opts.insecureRegistries),
      ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
      ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    },
  );
  try {
    return await client.checkLogin(opts.signal ? { signal: opts.signal } : {});
  } finally {
    client.close();
  }
}
