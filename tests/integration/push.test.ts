// `tsrun tag`, `tsrun push` and login's check against real registries: Debian's
// docker-registry (distribution 2.x) on 127.0.0.1 with free ports and storage in a temp dir,
// anonymous, with htpasswd (Basic), and with token auth (a token server written here: RS256
// JWTs with an x5c chain to a self-signed certificate the registry trusts, granting what was
// asked to alice and nothing to anyone else). The image is images/busybox's, loaded with
// `tsrun load`; the multi-arch one comes from `oci-layout.sh --multi-arch`.
//
// Requests are counted through a logging proxy in front of a registry (the registry builds
// its upload Locations from the Host header, so every request goes through it).
//
// Cases: push + a second push that writes nothing + pull by digest of what was pushed (same
// digest) + skopeo inspect; tag then push; cross-repository mount (POST ?mount= answered 201,
// nothing uploaded); chunked uploads; Basic and Bearer with login first (a wrong password and
// a port where nothing listens fail and save nothing); an index pulled for both platforms
// pushed whole, a loaded one (one platform stored) pushed as its platform's manifest with a
// warning, and one pushed within the registry it came from (the missing platform mounted from
// there); podman pull + podman run of what tsrun pushed.
//
// Skipped with the reason when docker-registry, skopeo, openssl or perl is missing, when not
// root (`tsrun load` unpacks layers as root), or when dist/bin/tsrun is not built. The podman
// part is skipped on its own when podman cannot run here (helpers/clients.ts podmanSkipReason).
import { createHash, randomBytes, sign } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage, type PushProgress } from '../../src/image/push.js';
import { ImageStore } from '../../src/image/store/store.js';
import { podmanSkipReason, REPO_ROOT, setupPodman } from './helpers/clients.js';
import { freePort, htpasswdLine, push as skopeoCopy, run, sh, startRegistry, stopRegistry, which, type Registry } from './helpers/registry.js';

const TSRUN = join(REPO_ROOT, 'dist/bin/tsrun');

function skipReason(): string | undefined {
  const missing = ['docker-registry', 'skopeo', 'openssl', 'perl', 'tar', 'gzip', 'sha256sum'].filter((c) => !which(c));
  if (missing.length) return `needs ${missing.join(', ')} (apt-get install docker-registry skopeo openssl)`;
  if (!existsSync('/bin/busybox')) return 'needs busybox-static (/bin/busybox) to build the test image';
  if (process.getuid?.() !== 0) return '`tsrun load` unpacks the image layers, which needs root';
  if (!existsSync(TSRUN)) return 'dist/bin/tsrun is not built (node scripts/bundle.mjs)';
  return undefined;
}
const skip = skipReason();
if (skip) console.warn(`push.test.ts skipped: ${skip}`);
const podmanSkip = skip ?? podmanSkipReason();

// ---------------------------------------------------------------- helpers

let WORK = '';
let HOME = '';
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Result {
  code: number;
  out: string;
  err: string;
}

/** The real CLI; HOME without ~/.docker so the machine's credentials never interfere. */
function tsrun(root: string, args: string[], stdin = ''): Promise<Result> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME };
    delete env.DOCKER_CONFIG;
    const p = spawn(TSRUN, ['--root', root, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.stdin.end(stdin);
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

const show = (r: Result) => `exit ${r.code}\n--- stdout\n${r.out}\n--- stderr\n${r.err}`;

async function ok(root: string, args: string[], stdin = ''): Promise<Result> {
  const r = await tsrun(root, args, stdin);
  expect(r.code, `tsrun ${args.join(' ')}\n${show(r)}`).toBe(0);
  return r;
}

const registries: Registry[] = [];
async function registry(name: string, auth = ''): Promise<Registry> {
  const r = await startRegistry(join(WORK, `registry-${name}`), auth);
  registries.push(r);
  return r;
}

interface Logged {
  method: string;
  path: string;
  status: number;
  range?: string;
}

/** A logging proxy in front of a registry; the Host header passes through, so Locations point back here. */
interface Proxy {
  host: string;
  log: Logged[];
  writes(): Logged[];
  server: http.Server;
}

const servers: http.Server[] = [];
async function proxy(target: Registry, faults: { resetPatch?: number } = {}): Promise<Proxy> {
  const log: Logged[] = [];
  let patches = 0;
  const server = http.createServer((req, res) => {
    const entry: Logged = { method: req.method ?? '', path: req.url ?? '', status: 0 };
    if (req.headers['content-range']) entry.range = String(req.headers['content-range']);
    log.push(entry);
    if (req.method === 'PATCH' && ++patches === faults.resetPatch) {
      // A connection reset in the middle of a chunk: the registry gets part of it.
      entry.status = -1;
      const up = http.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers });
      up.on('error', () => {});
      let seen = 0;
      req.on('data', (c: Buffer) => {
        seen += c.length;
        up.write(c);
        if (seen >= 16 * 1024) {
          req.socket.destroy();
          setTimeout(() => up.destroy(), 50);
        }
      });
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      entry.status = ur.statusCode ?? 0;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => {
      entry.status = 502;
      res.writeHead(502).end(String(e));
    });
    req.pipe(up);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    writes: () => log.filter((l) => !['GET', 'HEAD'].includes(l.method)),
    server,
  };
}

// The token server: RS256 JWTs the registry trusts (x5c -> its rootcertbundle). alice with her
// password gets what she asks for; a wrong password is a 401; no credentials, no access.
interface TokenServer {
  port: number;
  requests: { scopes: string[]; account?: string }[];
  server: http.Server;
}

async function startTokenServer(keyPem: string, certPem: string, issuer: string, service: string, user: string, password: string): Promise<TokenServer> {
  const certDer = certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
  const requests: TokenServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname !== '/token') return res.writeHead(404).end();
    const scopes = u.searchParams.getAll('scope');
    let account: string | undefined;
    if (req.headers.authorization?.startsWith('Basic ')) {
      const [name, ...rest] = Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':');
      if (name !== user || rest.join(':') !== password) {
        requests.push({ scopes, account: `${name} (refused)` });
        return res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"wrong username or password"}');
      }
      account = name;
    }
    requests.push({ scopes, ...(account ? { account } : {}) });
    const access = account
      ? scopes.flatMap((s) => {
          const m = /^([a-z]+):(.+):([a-z*,]+)$/.exec(s);
          return m ? [{ type: m[1], name: m[2], actions: m[3]!.split(',') }] : [];
        })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const claims = { iss: issuer, sub: account ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign('sha256', Buffer.from(input), keyPem))}`;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, requests, server };
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; variant?: string };
}

/** `skopeo inspect --raw`: the bytes the registry serves, and their digest. */
async function rawManifest(ref: string, creds?: string): Promise<{ digest: string; doc: { mediaType?: string; manifests?: Desc[]; layers?: Desc[] } }> {
  const out = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : ['--no-creds']), `docker://${ref}`]);
  return { digest: sha256(out), doc: JSON.parse(out) as { manifests?: Desc[] } };
}

const layerLines = (out: string, what: string) => out.split('\n').filter((l) => new RegExp(`^layer [0-9a-f]{12}: ${what}`).test(l));
const digestLine = (out: string) => /digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(out)?.[1];

// ---------------------------------------------------------------- tests

describe.skipIf(!!skip)(`tsrun push${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let store = ''; // the root the busybox image is loaded into
  let manifestDigest = '';
  let layerDigest = '';
  let anon: Registry;
  let anonProxy: Proxy;

  beforeAll(async () => {
    WORK = mkdtempSync(join(tmpdir(), 'tsrun-push-it-'));
    HOME = join(WORK, 'home');
    mkdirSync(HOME);
    sh(join(REPO_ROOT, 'images/busybox/oci-layout.sh'), [join(WORK, 'bb')]);
    const layout = join(WORK, 'bb', 'oci');
    const index = readJson<{ manifests: Desc[] }>(join(layout, 'index.json'));
    manifestDigest = index.manifests[0]!.digest;
    layerDigest = readJson<{ layers: Desc[] }>(join(layout, 'blobs', 'sha256', manifestDigest.slice(7))).layers[0]!.digest;
    store = join(WORK, 'store');
    await ok(store, ['load', '-i', join(WORK, 'bb', 'busybox-oci.tar')]);
    anon = await registry('anon');
    anonProxy = await proxy(anon);
  }, 180_000);

  afterAll(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    for (const r of registries.splice(0)) await stopRegistry(r);
    if (WORK) rmSync(WORK, { recursive: true, force: true });
  });

  it('pushes the loaded image with its digest; a second push writes nothing; a pull by digest gets the same manifest', async () => {
    const ref = `${anonProxy.host}/tools/busybox:1`;
    const first = await ok(store, ['push', 'busybox', ref]);
    expect(layerLines(first.out, 'pushing')).toHaveLength(1);
    expect(layerLines(first.out, 'pushed')).toHaveLength(1);
    expect(digestLine(first.out)).toBe(manifestDigest);
    expect(anonProxy.writes().some((l) => l.method === 'PUT' && l.path.startsWith('/v2/tools/busybox/blobs/uploads/'))).toBe(true);

    anonProxy.log.length = 0;
    const second = await ok(store, ['push', 'busybox', ref]);
    expect(layerLines(second.out, 'exists')).toHaveLength(1);
    expect(layerLines(second.out, 'push')).toEqual([]);
    expect(second.out).toContain('already exists');
    expect(anonProxy.writes()).toEqual([]); // no POST, PATCH, PUT or DELETE at all

    const other = join(WORK, 'store-pull');
    const pulled = await ok(other, ['pull', '-q', `${anon.host}/tools/busybox@${manifestDigest}`]);
    expect(pulled.out.trim()).toBe(manifestDigest);
    const info = JSON.parse((await ok(other, ['image', 'inspect', `${anon.host}/tools/busybox@${manifestDigest}`])).out) as { digest: string }[];
    expect(info[0]!.digest).toBe(manifestDigest);

    // skopeo sees the same image
    const inspected = JSON.parse(await run('skopeo', ['inspect', '--tls-verify=false', '--no-creds', `docker://${anon.host}/tools/busybox:1`])) as {
      Digest: string;
      Layers: string[];
    };
    expect(inspected.Digest).toBe(manifestDigest);
    expect(inspected.Layers).toEqual([layerDigest]);
    expect((await rawManifest(`${anon.host}/tools/busybox:1`)).digest).toBe(manifestDigest);
  });

  it('tag names the image for the registry; pushing it to another repository mounts the blobs instead of uploading them', async () => {
    await ok(store, ['tag', 'busybox', `${anonProxy.host}/team/a:1`]);
    const images = (await ok(store, ['images'])).out;
    expect(images).toContain(`${anonProxy.host}/team/a:1`);
    await ok(store, ['push', `${anonProxy.host}/team/a:1`]);

    await ok(store, ['tag', `${anonProxy.host}/team/a:1`, `${anonProxy.host}/team/b:1`]);
    anonProxy.log.length = 0;
    const r = await ok(store, ['push', `${anonProxy.host}/team/b:1`]);
    expect(layerLines(r.out, 'mounted from team/a')).toHaveLength(1);
    const posts = anonProxy.log.filter((l) => l.method === 'POST');
    expect(posts.length).toBe(2); // the layer and the config
    for (const p of posts) {
      expect(p.path).toMatch(/^\/v2\/team\/b\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=team%2Fa$/);
      expect(p.status).toBe(201);
    }
    expect(anonProxy.log.filter((l) => l.method === 'PATCH' || (l.method === 'PUT' && l.path.includes('/blobs/')))).toEqual([]);
    expect((await rawManifest(`${anon.host}/team/b:1`)).digest).toBe(manifestDigest);
  });

  it('uploads in chunks when asked (PATCH with Content-Range, then PUT)', async () => {
    const events: PushProgress[] = [];
    anonProxy.log.length = 0;
    const chunk = 128 * 1024;
    const res = await pushImage(new ImageStore(store), 'busybox', `${anonProxy.host}/chunked/busybox:1`, {
      chunkSize: chunk,
      mount: false,
      credentialOptions: { home: HOME, env: {} },
      onProgress: (e) => events.push(e),
    });
    expect(res.digest).toBe(manifestDigest);
    expect(res.uploaded).toContain(layerDigest);
    const layerSize = (events.find((e) => e.type === 'resolved') as Extract<PushProgress, { type: 'resolved' }>).blobs.find((b) => b.kind === 'layer')!.size;
    const patches = anonProxy.log.filter((l) => l.method === 'PATCH');
    expect(patches.every((p) => p.status === 202)).toBe(true);
    const ranges = patches.map((p) => p.range!.split('-').map(Number) as [number, number]);
    const layerRanges = ranges.filter(([s, e]) => s > 0 || e + 1 === Math.min(chunk, layerSize));
    expect(layerRanges.length).toBe(Math.ceil(layerSize / chunk));
    expect(events.find((e) => e.type === 'started' && e.blob.kind === 'layer')).toMatchObject({ chunked: true });
    const pulled = await ok(join(WORK, 'store-chunked'), ['pull', '-q', `${anon.host}/chunked/busybox@${manifestDigest}`]);
    expect(pulled.out.trim()).toBe(manifestDigest);

    // A connection reset in the middle of the second chunk: retried (resumed, or started again
    // when the registry cannot resume), and the image arrives intact.
    const flaky = await proxy(anon, { resetPatch: 3 });
    const retried: PushProgress[] = [];
    const again = await pushImage(new ImageStore(store), 'busybox', `${flaky.host}/flaky/busybox:1`, {
      chunkSize: chunk,
      mount: false,
      concurrency: 1,
      credentialOptions: { home: HOME, env: {} },
      onProgress: (e) => retried.push(e),
    });
    expect(again.digest).toBe(manifestDigest);
    expect(flaky.log.some((l) => l.status === -1)).toBe(true);
    expect(retried.some((e) => e.type === 'retrying' && e.blob.kind === 'layer')).toBe(true);
    expect((await ok(join(WORK, 'store-flaky'), ['pull', '-q', `${anon.host}/flaky/busybox@${manifestDigest}`])).out.trim()).toBe(manifestDigest);
  });

  describe('Basic auth (htpasswd)', () => {
    let reg: Registry;
    const root = () => join(WORK, 'store-basic');
    beforeAll(async () => {
      const pw = join(WORK, 'htpasswd');
      writeFileSync(pw, `${htpasswdLine('alice', 's3cret-pw')}\n`);
      reg = await registry('basic', `auth:\n  htpasswd:\n    realm: tsrun-test\n    path: ${pw}\n`);
      await ok(root(), ['load', '-i', join(WORK, 'bb', 'busybox-oci.tar')]);
    });

    it('login checks the password first: wrong, or nothing listening, saves nothing', async () => {
      const wrong = await tsrun(root(), ['login', '-u', 'alice', '--password-stdin', reg.host], 'nope\n');
      expect(wrong.code, show(wrong)).toBe(1);
      expect(wrong.err).toContain('unauthorized: wrong username or password');
      expect(existsSync(join(root(), 'auth.json'))).toBe(false);

      const port = await freePort();
      const nobody = await tsrun(root(), ['login', '-u', 'alice', '--password-stdin', `127.0.0.1:${port}`], 's3cret-pw\n');
      expect(nobody.code, show(nobody)).toBe(1);
      expect(nobody.err).toContain(`cannot reach registry 127.0.0.1:${port}`);
      expect(existsSync(join(root(), 'auth.json'))).toBe(false);

      const denied = await tsrun(root(), ['push', 'busybox', `${reg.host}/private/busybox:1`]);
      expect(denied.code).toBe(1);
      expect(denied.err).toMatch(/unauthorized: 127\.0\.0\.1:\d+: .*no credentials are stored/);
      expect(denied.err).toContain(`hint: log in with \`tsrun login ${reg.host}\``);
    });

    it('after login, push works and a second push uploads nothing', async () => {
      const login = await ok(root(), ['login', '-u', 'alice', '--password-stdin', reg.host], 's3cret-pw\n');
      expect(login.out).toContain('Login Succeeded');
      expect(existsSync(join(root(), 'auth.json'))).toBe(true);
      const r = await ok(root(), ['push', 'busybox', `${reg.host}/private/busybox:1`]);
      expect(digestLine(r.out)).toBe(manifestDigest);
      const again = await ok(root(), ['push', 'busybox', `${reg.host}/private/busybox:1`]);
      expect(layerLines(again.out, 'exists')).toHaveLength(1);
      expect(layerLines(again.out, 'push')).toEqual([]);
      expect((await rawManifest(`${reg.host}/private/busybox:1`, 'alice:s3cret-pw')).digest).toBe(manifestDigest);
    });
  });

  describe('token server (Bearer)', () => {
    let reg: Registry;
    let tokens: TokenServer;
    const root = () => join(WORK, 'store-token');
    beforeAll(async () => {
      const dir = join(WORK, 'token');
      mkdirSync(dir);
      sh('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        '2',
        '-subj',
        '/CN=tsrun push test issuer',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ]);
      const issuer = 'tsrun-push-issuer';
      const service = 'tsrun-push-registry';
      tokens = await startTokenServer(
        readFileSync(join(dir, 'key.pem'), 'utf8'),
        readFileSync(join(dir, 'cert.pem'), 'utf8'),
        issuer,
        service,
        'alice',
        'tok-pw',
      );
      reg = await registry(
        'token',
        `auth:\n  token:\n    realm: http://127.0.0.1:${tokens.port}/token\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${join(dir, 'cert.pem')}\n`,
      );
      await ok(root(), ['load', '-i', join(WORK, 'bb', 'busybox-oci.tar')]);
    });

    it('login asks the token server with the credentials and no scope; a wrong password saves nothing', async () => {
      tokens.requests.length = 0;
      const wrong = await tsrun(root(), ['login', '-u', 'alice', '--password-stdin', reg.host], 'nope\n');
      expect(wrong.code, show(wrong)).toBe(1);
      expect(wrong.err).toContain('unauthorized: wrong username or password');
      expect(existsSync(join(root(), 'auth.json'))).toBe(false);
      const good = await ok(root(), ['login', '-u', 'alice', '--password-stdin', reg.host], 'tok-pw\n');
      expect(good.out).toContain('Login Succeeded');
      expect(tokens.requests).toEqual([
        { scopes: [], account: 'alice (refused)' },
        { scopes: [], account: 'alice' },
      ]);
    });

    it('push asks for pull,push; a second push uploads nothing; a mount asks for the source too', async () => {
      tokens.requests.length = 0;
      const r = await ok(root(), ['push', 'busybox', `${reg.host}/tok/a:1`]);
      expect(digestLine(r.out)).toBe(manifestDigest);
      expect(tokens.requests.length).toBeGreaterThanOrEqual(1);
      expect(tokens.requests.every((t) => t.account === 'alice' && t.scopes.length === 1 && t.scopes[0] === 'repository:tok/a:pull,push')).toBe(true);

      const again = await ok(root(), ['push', 'busybox', `${reg.host}/tok/a:1`]);
      expect(layerLines(again.out, 'exists')).toHaveLength(1);

      await ok(root(), ['tag', 'busybox', `${reg.host}/tok/a:1`]);
      tokens.requests.length = 0;
      const mounted = await ok(root(), ['push', 'busybox', `${reg.host}/tok/b:1`]);
      expect(layerLines(mounted.out, 'mounted from tok/a')).toHaveLength(1);
      expect(tokens.requests.some((t) => t.scopes.join(' ') === 'repository:tok/b:pull,push repository:tok/a:pull')).toBe(true);
      expect((await rawManifest(`${reg.host}/tok/b:1`, 'alice:tok-pw')).digest).toBe(manifestDigest);
    });
  });

  describe('multi-arch', () => {
    let indexDigest = '';
    let platformDigests: string[] = [];
    let amd64 = '';
    let other: Registry;
    beforeAll(async () => {
      sh(join(REPO_ROOT, 'images/busybox/oci-layout.sh'), [join(WORK, 'multi'), '--multi-arch']);
      const layout = join(WORK, 'multi', 'oci');
      indexDigest = readJson<{ manifests: Desc[] }>(join(layout, 'index.json')).manifests[0]!.digest;
      const idx = readJson<{ manifests: Desc[] }>(join(layout, 'blobs', 'sha256', indexDigest.slice(7)));
      platformDigests = idx.manifests.map((m) => m.digest);
      amd64 = idx.manifests.find((m) => m.platform?.architecture === 'amd64')!.digest;
      await skopeoCopy(layout, 'latest', `${anon.host}/src/multi:1`, { all: true });
      other = await registry('other');
    }, 300_000);

    it('an index pulled for both platforms goes to another registry whole, digests unchanged', async () => {
      const root = join(WORK, 'store-multi');
      await ok(root, ['pull', '--platform', 'linux/arm64', `${anon.host}/src/multi:1`]);
      await ok(root, ['pull', '--platform', 'linux/amd64', `${anon.host}/src/multi:1`]);
      const r = await ok(root, ['push', `${anon.host}/src/multi:1`, `${other.host}/copy/multi:1`]);
      expect(r.out).toContain(`pushing index ${indexDigest} (linux/amd64, linux/arm64/v8)`);
      expect(digestLine(r.out)).toBe(indexDigest);
      const raw = await rawManifest(`${other.host}/copy/multi:1`);
      expect(raw.digest).toBe(indexDigest);
      expect(raw.doc.manifests!.map((m) => m.digest)).toEqual(platformDigests);
      for (const d of platformDigests) expect((await rawManifest(`${other.host}/copy/multi@${d}`)).digest).toBe(d);
    });

    it('a loaded multi-arch image (one platform stored) goes as its platform manifest, with a warning', async () => {
      const root = join(WORK, 'store-multi-load');
      await ok(root, ['load', '-i', join(WORK, 'multi', 'busybox-oci.tar')]);
      const r = await ok(root, ['push', 'busybox', `${other.host}/single/multi:1`]);
      expect(r.err).toMatch(/warning: index sha256:[0-9a-f]{64} lists linux\/arm64\/v8, which is not in the store .* pushing only the linux\/amd64 manifest/);
      expect(digestLine(r.out)).toBe(amd64);
      const raw = await rawManifest(`${other.host}/single/multi:1`);
      expect(raw.digest).toBe(amd64);
      expect(raw.doc.manifests).toBeUndefined();
    });

    it('within the registry it came from, the platform not stored is read and mounted from there', async () => {
      const root = join(WORK, 'store-multi-one');
      await ok(root, ['pull', `${anonProxy.host}/src/multi:1`]); // the host's platform only
      anonProxy.log.length = 0;
      const r = await ok(root, ['push', `${anonProxy.host}/src/multi:1`, `${anonProxy.host}/dst/multi:1`]);
      expect(digestLine(r.out)).toBe(indexDigest);
      expect(anonProxy.log.filter((l) => l.method === 'PATCH')).toEqual([]);
      expect(anonProxy.log.filter((l) => l.method === 'POST').every((l) => l.path.includes('mount=') && l.status === 201)).toBe(true);
      const raw = await rawManifest(`${anon.host}/dst/multi:1`);
      expect(raw.digest).toBe(indexDigest);
      expect(raw.doc.manifests!.map((m) => m.digest)).toEqual(platformDigests);
    });
  });

  describe.skipIf(!!podmanSkip)(`podman pulls and runs what tsrun pushed${podmanSkip ? ` (skipped: ${podmanSkip})` : ''}`, () => {
    it('podman pull + podman run --rm', async () => {
      const pm = await setupPodman();
      try {
        const ref = `${anon.host}/tools/busybox:1`;
        const pulled = await pm.run(['pull', '--tls-verify=false', ref], { timeoutMs: 120_000 });
        expect(pulled.code, pulled.stderr).toBe(0);
        const images = await pm.run(['images', '--digests', '--format', '{{.Digest}}', ref]);
        expect(images.stdout.trim()).toBe(manifestDigest);
        const ran = await pm.run(['--runtime', pm.runtime, 'run', '--rm', '--network', 'none', ref, 'echo', 'pushed by tsrun'], { timeoutMs: 60_000 });
        expect(ran.code, ran.stderr).toBe(0);
        expect(ran.stdout).toContain('pushed by tsrun');
      } finally {
        await pm.cleanup();
      }
    }, 240_000);
  });
});
