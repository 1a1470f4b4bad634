// pullImage against real registries: Debian's docker-registry (distribution/registry 2.x) on
// 127.0.0.1 with a free port and a tmp storage dir, images pushed with skopeo from the OCI
// layout that images/busybox/oci-layout.sh builds. Root is not required.
//
// Cases: anonymous pull (+ progress events, a second pull skipping the layer); htpasswd
// Basic auth (no credentials -> a clear 401; tsrun's auth.json -> works); the Bearer token
// flow through a token server written here (RS256 JWT, x5c chain to a self-signed cert);
// a manifest list (linux/amd64 + linux/arm64/v8) resolved for the host, for --platform, and
// an unknown platform listing what is available; a tampered blob in the registry's storage
// (rejected by digest, leaving no tag, blob or layer); three concurrent pulls of one image into
// one store; plain http refused for a non-localhost name.
//
// Skipped, with the reason, when docker-registry, skopeo, openssl or busybox-static are
// missing, or while src/image/layer/unpack.ts does not exist yet.
import { createHash, randomBytes, sign } from 'node:crypto';
import {
  closeSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPlatform, formatPlatform } from '../../src/image/manifest.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient, RegistryError } from '../../src/image/registry/client.js';
import { saveCredentials } from '../../src/image/registry/credentials.js';
import { ImageStore } from '../../src/image/store/store.js';
import { TsrunError } from '../../src/util/errors.js';
import { REPO_ROOT } from './helpers/clients.js';
import { htpasswdLine, push, sh, startRegistry as startRegistryIn, stopRegistry, which, type Registry } from './helpers/registry.js';

type PullModule = typeof import('../../src/image/pull.js');

// ---------------------------------------------------------------- prerequisites

async function prerequisites(): Promise<{ skip?: string; pull?: PullModule }> {
  const missing = ['docker-registry', 'skopeo', 'openssl', 'perl', 'tar', 'gzip', 'sha256sum'].filter((c) => !which(c));
  if (missing.length) return { skip: `needs ${missing.join(', ')} (apt-get install docker-registry skopeo openssl)` };
  if (!existsSync('/bin/busybox')) return { skip: 'needs busybox-static (/bin/busybox) to build the test image' };
  try {
    return { pull: await import('../../src/image/pull.js') };
  } catch (e) {
    if (/layer\/unpack/.test(String((e as Error)?.message ?? e))) return { skip: 'pending: src/image/layer/unpack.ts (unpackLayer) does not exist yet' };
    throw e;
  }
}

const pre = await prerequisites();
if (pre.skip) console.warn(`registry.test.ts skipped: ${pre.skip}`);

// ---------------------------------------------------------------- helpers

// Made in beforeAll (nothing is left behind when the suite is skipped).
let WORK = '';
/** A HOME without ~/.docker/config.json, so the machine's credentials never interfere. */
const CRED_OPTS = { home: '', env: {} as NodeJS.ProcessEnv };
const CACHE_DIR = '/var/lib/containers/cache'; // skopeo (c/image) as root writes its blob-info cache here
const cacheExisted = existsSync(CACHE_DIR);

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

const registries: Registry[] = [];
async function startRegistry(name: string, auth = ''): Promise<Registry> {
  const reg = await startRegistryIn(join(WORK, `registry-${name}`), auth);
  registries.push(reg);
  return reg;
}

let storeN = 0;
function newStore(): ImageStore {
  const s = new ImageStore(join(WORK, `store-${++storeN}`));
  s.init();
  return s;
}

// The busybox layout, and a two-platform copy of it.
interface Layout {
  dir: string;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  diffId: string;
}
interface MultiLayout {
  dir: string;
  indexDigest: string;
  amd64: string;
  arm64: string;
}

function writeBlob(dir: string, obj: unknown): { digest: string; size: number } {
  const buf = Buffer.from(JSON.stringify(obj));
  const hex = sha256(buf);
  writeFileSync(join(dir, 'blobs', 'sha256', hex), buf);
  return { digest: `sha256:${hex}`, size: buf.length };
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
}

function buildLayouts(): { single: Layout; multi: MultiLayout } {
  const out = join(WORK, 'busybox');
  sh(join(REPO_ROOT, 'images/busybox/oci-layout.sh'), [out]);
  const dir = join(out, 'oci');
  const blob = (d: string) => join(dir, 'blobs', 'sha256', d.slice(7));
  const index = readJson<{ manifests: Desc[] }>(join(dir, 'index.json'));
  const mdesc = index.manifests[0]!;
  const manifest = readJson<{ config: Desc; layers: Desc[] }>(blob(mdesc.digest));
  const config = readJson<{ architecture: string; variant?: string; rootfs: { diff_ids: string[] } }>(blob(manifest.config.digest));
  const single: Layout = {
    dir,
    manifestDigest: mdesc.digest,
    configDigest: manifest.config.digest,
    layerDigest: manifest.layers[0]!.digest,
    diffId: config.rootfs.diff_ids[0]!,
  };

  const mdir = join(WORK, 'busybox-multi');
  cpSync(dir, mdir, { recursive: true });
  const entries = (['amd64', 'arm64'] as const).map((arch) => {
    const cfg = { ...config, architecture: arch } as Record<string, unknown>;
    delete cfg.variant;
    if (arch === 'arm64') cfg.variant = 'v8';
    const c = writeBlob(mdir, cfg);
    const m = writeBlob(mdir, { ...manifest, config: { ...manifest.config, ...c } });
    return {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...m,
      platform: { os: 'linux', architecture: arch, ...(arch === 'arm64' ? { variant: 'v8' } : {}) },
    };
  });
  const idx = writeBlob(mdir, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries });
  writeFileSync(
    join(mdir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', ...idx, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  return { single, multi: { dir: mdir, indexDigest: idx.digest, amd64: entries[0]!.digest, arm64: entries[1]!.digest } };
}

// The token server: signs RS256 JWTs the registry trusts (x5c -> its rootcertbundle).
interface TokenServer {
  port: number;
  requests: { scopes: string[]; account?: string; authorization?: string }[];
  server: http.Server;
}

async function startTokenServer(keyPem: string, certPem: string, issuer: string, service: string): Promise<TokenServer> {
  const certDer = certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
  const requests: TokenServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname !== '/token') return res.writeHead(404).end();
    const scopes = u.searchParams.getAll('scope');
    let account: string | undefined;
    if (req.headers.authorization?.startsWith('Basic ')) account = Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':')[0];
    requests.push({ scopes, ...(account ? { account } : {}), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const access = scopes.flatMap((s) => {
      const m = /^([a-z]+):(.+):([a-z*,]+)$/.exec(s);
      return m ? [{ type: m[1], name: m[2], actions: m[3]!.split(',') }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const claims = { iss: issuer, sub: account ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign('sha256', Buffer.from(input), keyPem))}`;
    res
      .writeHead(200, { 'Content-Type': 'application/json' })
      .end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, requests, server };
}

function assertLayer(store: ImageStore, diffId: string): void {
  expect(store.hasLayer(diffId)).toBe(true);
  const root = store.layout.layerRoot(diffId);
  const bb = lstatSync(join(root, 'bin', 'busybox'));
  expect(bb.isFile()).toBe(true);
  expect(bb.mode & 0o7777).toBe(0o755);
  expect(lstatSync(join(root, 'bin', 'sh')).isSymbolicLink()).toBe(true);
  expect(readFileSync(join(root, 'etc', 'passwd'), 'utf8')).toMatch(/^root:x:0:0:/);
}

function assertNoLeftovers(store: ImageStore): void {
  expect(readdirSync(store.layout.tmp())).toEqual([]);
}

// ---------------------------------------------------------------- tests

describe.skipIf(!!pre.skip)(`pull from a local registry${pre.skip ? ` (skipped: ${pre.skip})` : ''}`, () => {
  const pullImage = pre.pull?.pullImage as PullModule['pullImage'];
  let single: Layout;
  let multi: MultiLayout;
  let anon: Registry;

  beforeAll(async () => {
    WORK = mkdtempSync(join(tmpdir(), 'tsrun-registry-it-'));
    CRED_OPTS.home = join(WORK, 'home');
    mkdirSync(CRED_OPTS.home, { recursive: true });
    ({ single, multi } = buildLayouts());
    anon = await startRegistry('anon');
    await push(single.dir, 'latest', `${anon.host}/busybox:latest`);
    await push(multi.dir, 'latest', `${anon.host}/multi:latest`, { all: true });
  });

  afterAll(async () => {
    await Promise.all(registries.map(stopRegistry));
    if (!cacheExisted && existsSync(CACHE_DIR)) rmSync(CACHE_DIR, { recursive: true, force: true });
    if (WORK && process.env.TSRUN_IT_KEEP !== '1') rmSync(WORK, { recursive: true, force: true });
  });

  it('anonymous pull: tag, manifest, config, layer dir, progress; a second pull skips the layer', async () => {
    const store = newStore();
    const events: { type: string; digest?: string }[] = [];
    const ref = `${anon.host}/busybox:latest`;
    const res = await pullImage(store, ref, {
      credentialOptions: CRED_OPTS,
      onProgress: (e) => events.push({ type: e.type, ...('layer' in e ? { digest: e.layer.digest } : {}) }),
    });

    expect(res.ref).toBe(ref);
    expect(res.configDigest).toBe(single.configDigest);
    expect(store.resolveTag(ref)).toEqual({ digest: res.digest });
    expect(res.digest).toBe(res.manifestDigest);
    const manifest = store.readBlobJson<{ config: { digest: string }; layers: { digest: string }[] }>(res.digest);
    expect(manifest.config.digest).toBe(single.configDigest);
    expect(manifest.layers.map((l) => l.digest)).toEqual([single.layerDigest]);
    expect(store.readBlobJson<{ rootfs: { diff_ids: string[] } }>(single.configDigest).rootfs.diff_ids).toEqual([single.diffId]);
    // the compressed blob is kept (save / push) and verified
    expect(sha256(readFileSync(store.blobPath(single.layerDigest)))).toBe(single.layerDigest.slice(7));
    assertLayer(store, single.diffId);
    expect(store.layerMeta(single.diffId)).toMatchObject({ diffId: single.diffId, compressedDigest: single.layerDigest });
    expect(res.layers.map((l) => l.diffId)).toEqual([single.diffId]);
    assertNoLeftovers(store);

    const types = events.map((e) => e.type);
    expect(types[0]).toBe('resolved');
    expect(types).toContain('started');
    expect(types).toContain('bytes');
    expect(types.at(-2)).toBe('done');
    expect(types.at(-1)).toBe('tagged');
    expect(events.filter((e) => e.type === 'done')[0]!.digest).toBe(single.layerDigest);

    const again: string[] = [];
    await pullImage(store, ref, { credentialOptions: CRED_OPTS, onProgress: (e) => again.push(e.type) });
    expect(again).toEqual(['resolved', 'skipped-exists', 'tagged']);
  });

  it('pull by digest tags name@digest', async () => {
    const store = newStore();
    const first = await pullImage(newStore(), `${anon.host}/busybox:latest`, { credentialOptions: CRED_OPTS });
    const ref = `${anon.host}/busybox@${first.digest}`;
    const res = await pullImage(store, ref, { credentialOptions: CRED_OPTS });
    expect(store.resolveTag(ref)).toEqual({ digest: first.digest });
    expect(res.manifestDigest).toBe(first.digest);
  });

  it('a missing tag is a clear "not found" and leaves nothing', async () => {
    const store = newStore();
    const e = await pullImage(store, `${anon.host}/busybox:nope`, { credentialOptions: CRED_OPTS }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as RegistryError).status).toBe(404);
    expect((e as Error).message).toMatch(/pull 127\.0\.0\.1:\d+\/busybox:nope: manifest .*: not found/);
    expect(store.tags()).toEqual({});
  });

  describe('htpasswd (Basic)', () => {
    let reg: Registry;
    beforeAll(async () => {
      const pw = join(WORK, 'htpasswd');
      writeFileSync(pw, `${htpasswdLine('alice', 's3cret-pw')}\n`);
      reg = await startRegistry('basic', `auth:\n  htpasswd:\n    realm: tsrun-test\n    path: ${pw}\n`);
      await push(single.dir, 'latest', `${reg.host}/private/busybox:latest`, { creds: 'alice:s3cret-pw' });
    });

    it('without credentials: a clear 401, nothing stored', async () => {
      const store = newStore();
      const e = await pullImage(store, `${reg.host}/private/busybox:latest`, { credentialOptions: CRED_OPTS }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RegistryError);
      expect((e as RegistryError).status).toBe(401);
      expect((e as Error).message).toMatch(/unauthorized: 127\.0\.0\.1:\d+: .*no credentials are stored for it/);
      expect((e as TsrunError).hint).toContain(`tsrun login ${reg.host}`);
      expect(store.tags()).toEqual({});
      expect(readdirSync(join(store.layout.root, 'blobs', 'sha256'))).toEqual([]);
    });

    it("with tsrun's auth.json: works; wrong password: 401", async () => {
      const store = newStore();
      saveCredentials(reg.host, { username: 'alice', password: 'wrong' }, { imageRoot: store.layout.root });
      const e = await pullImage(store, `${reg.host}/private/busybox:latest`, { credentialOptions: CRED_OPTS }).catch((x: unknown) => x);
      expect((e as RegistryError).status).toBe(401);
      expect((e as Error).message).toMatch(/stored credentials were refused/);

      saveCredentials(reg.host, { username: 'alice', password: 's3cret-pw' }, { imageRoot: store.layout.root });
      const res = await pullImage(store, `${reg.host}/private/busybox:latest`, { credentialOptions: CRED_OPTS });
      expect(store.resolveTag(`${reg.host}/private/busybox:latest`)?.digest).toBe(res.digest);
      assertLayer(store, single.diffId);
    });

    it("with docker's config.json in HOME: works", async () => {
      const store = newStore();
      const home = join(WORK, 'home-docker');
      mkdirSync(join(home, '.docker'), { recursive: true });
      writeFileSync(
        join(home, '.docker', 'config.json'),
        JSON.stringify({ auths: { [`http://${reg.host}`]: { auth: Buffer.from('alice:s3cret-pw').toString('base64') } } }),
      );
      await pullImage(store, `${reg.host}/private/busybox:latest`, { credentialOptions: { home, env: {} } });
      assertLayer(store, single.diffId);
    });
  });

  describe('Bearer token flow', () => {
    let reg: Registry;
    let tokens: TokenServer;
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
        '/CN=tsrun test token issuer',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ]);
      const issuer = 'tsrun-test-issuer';
      const service = 'tsrun-test-registry';
      tokens = await startTokenServer(readFileSync(join(dir, 'key.pem'), 'utf8'), readFileSync(join(dir, 'cert.pem'), 'utf8'), issuer, service);
      reg = await startRegistry(
        'token',
        `auth:\n  token:\n    realm: http://127.0.0.1:${tokens.port}/token\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${join(dir, 'cert.pem')}\n`,
      );
      await push(single.dir, 'latest', `${reg.host}/tokened/busybox:latest`);
    });
    afterAll(() => new Promise<void>((r) => (tokens ? tokens.server.close(() => r()) : r())));

    it('follows WWW-Authenticate to the token server with the pull scope', async () => {
      const store = newStore();
      tokens.requests.length = 0;
      const res = await pullImage(store, `${reg.host}/tokened/busybox:latest`, { credentialOptions: CRED_OPTS });
      expect(store.resolveTag(`${reg.host}/tokened/busybox:latest`)?.digest).toBe(res.digest);
      assertLayer(store, single.diffId);
      expect(tokens.requests.length).toBeGreaterThanOrEqual(1);
      expect(tokens.requests.every((r) => r.scopes.length === 1 && r.scopes[0] === 'repository:tokened/busybox:pull')).toBe(true);
      expect(tokens.requests.length).toBe(1); // one token for the whole pull (cached per scope)
      expect(tokens.requests[0]!.authorization).toBeUndefined(); // anonymous: no credentials known
    });

    it('sends stored credentials to the token server as Basic', async () => {
      const store = newStore();
      saveCredentials(reg.host, { username: 'bob', password: 'pw' }, { imageRoot: store.layout.root });
      tokens.requests.length = 0;
      await pullImage(store, `${reg.host}/tokened/busybox:latest`, { credentialOptions: CRED_OPTS });
      expect(tokens.requests[0]).toMatchObject({ scopes: ['repository:tokened/busybox:pull'], account: 'bob' });
    });
  });

  describe('manifest list', () => {
    it('resolves to the host platform', async () => {
      const store = newStore();
      const host = hostPlatform();
      const res = await pullImage(store, `${anon.host}/multi:latest`, { credentialOptions: CRED_OPTS });
      expect(res.digest).toBe(multi.indexDigest);
      expect(res.platform).toBe(formatPlatform(host));
      expect(res.manifestDigest).toBe(host.architecture === 'arm64' ? multi.arm64 : multi.amd64);
      expect(store.resolveTag(`${anon.host}/multi:latest`)).toEqual({ digest: multi.indexDigest, platform: formatPlatform(host) });
      expect(store.hasBlob(multi.indexDigest)).toBe(true);
      expect(store.hasBlob(res.manifestDigest)).toBe(true);
      assertLayer(store, single.diffId);
    });

    it('--platform linux/arm64 picks the arm64/v8 entry, linux/amd64 the other', async () => {
      const store = newStore();
      const arm = await pullImage(store, `${anon.host}/multi:latest`, { platform: 'linux/arm64', credentialOptions: CRED_OPTS });
      expect(arm.manifestDigest).toBe(multi.arm64);
      expect(arm.platform).toBe('linux/arm64/v8');
      expect(arm.config.architecture).toBe('arm64');
      expect(store.resolveTag(`${anon.host}/multi:latest`)).toEqual({ digest: multi.indexDigest, platform: 'linux/arm64/v8' });
      const amd = await pullImage(store, `${anon.host}/multi:latest`, { platform: 'linux/amd64', credentialOptions: CRED_OPTS });
      expect(amd.manifestDigest).toBe(multi.amd64);
    });

    it('an unknown platform errors listing the available ones, and leaves no tag', async () => {
      const store = newStore();
      const e = await pullImage(store, `${anon.host}/multi:latest`, { platform: 'linux/s390x', credentialOptions: CRED_OPTS }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TsrunError);
      expect((e as Error).message).toMatch(/no image for platform linux\/s390x; available: linux\/amd64, linux\/arm64\/v8/);
      expect(store.tags()).toEqual({});
    });

    it('--platform on a single-platform image of another arch is an error', async () => {
      const store = newStore();
      const other = hostPlatform().architecture === 'amd64' ? 'linux/arm64' : 'linux/amd64';
      await expect(pullImage(store, `${anon.host}/busybox:latest`, { platform: other, credentialOptions: CRED_OPTS })).rejects.toThrow(/single-platform image/);
    });
  });

  it('a tampered blob is rejected by digest and leaves no tag, blob or layer', async () => {
    const reg = await startRegistry('tamper');
    await push(single.dir, 'latest', `${reg.host}/busybox:latest`);
    const hex = single.layerDigest.slice(7);
    const data = join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const size = statSync(data).size;
    const fd = openSync(data, 'r+');
    writeSync(fd, Buffer.from('tampered!'), 0, 9, Math.floor(size / 2)); // same size, other bytes
    closeSync(fd);

    const store = newStore();
    const e = await pullImage(store, `${reg.host}/busybox:latest`, { credentialOptions: CRED_OPTS }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TsrunError);
    expect((e as TsrunError).code).toBe('ERR_DIGEST_MISMATCH');
    expect((e as Error).message).toContain(`layer 1/1 (${single.layerDigest})`);
    expect((e as Error).message).toMatch(/digest mismatch/);
    expect(store.tags()).toEqual({});
    expect(store.hasBlob(single.layerDigest)).toBe(false);
    expect(store.hasLayer(single.diffId)).toBe(false);
    expect(readdirSync(join(store.layout.root, 'blobs', 'sha256'))).toEqual([]);
    expect(readdirSync(join(store.layout.root, 'layers'))).toEqual([]);
    assertNoLeftovers(store);
  });

  it('three concurrent pulls of one image leave a consistent store', async () => {
    const store = newStore();
    const ref = `${anon.host}/busybox:latest`;
    const results = await Promise.all([1, 2, 3].map(() => pullImage(store, ref, { credentialOptions: CRED_OPTS })));
    expect(new Set(results.map((r) => r.digest)).size).toBe(1);
    expect(store.resolveTag(ref)).toEqual({ digest: results[0]!.digest });
    expect(readdirSync(join(store.layout.root, 'layers'))).toEqual([single.diffId.slice(7)]);
    assertLayer(store, single.diffId);
    for (const d of readdirSync(join(store.layout.root, 'blobs', 'sha256'))) {
      expect(sha256(readFileSync(join(store.layout.root, 'blobs', 'sha256', d)))).toBe(d);
    }
    expect(readdirSync(join(store.layout.root, 'blobs', 'sha256')).sort()).toEqual(
      [single.configDigest, single.layerDigest, results[0]!.digest].map((d) => d.slice(7)).sort(),
    );
    assertNoLeftovers(store);
  });

  it('a connection reset in the middle of a layer is retried (layer-level), once', async () => {
    // A fake registry serving the busybox layout; the first GET of the layer blob sends half
    // of it and then drops the connection.
    const blobs = join(single.dir, 'blobs', 'sha256');
    const manifest = readFileSync(join(blobs, single.manifestDigest.slice(7)));
    let layerGets = 0;
    const server = http.createServer((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return res.writeHead(200).end('{}');
      if (/^\/v2\/flaky\/manifests\//.test(u)) {
        res.writeHead(200, {
          'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
          'Docker-Content-Digest': single.manifestDigest,
          'Content-Length': String(manifest.length),
        });
        return res.end(req.method === 'HEAD' ? undefined : manifest);
      }
      const m = /^\/v2\/flaky\/blobs\/sha256:([a-f0-9]{64})$/.exec(u);
      if (!m || !existsSync(join(blobs, m[1]!))) return res.writeHead(404).end();
      const data = readFileSync(join(blobs, m[1]!));
      res.writeHead(200, { 'Content-Length': String(data.length), 'Content-Type': 'application/octet-stream' });
      if (`sha256:${m[1]}` === single.layerDigest && ++layerGets === 1) {
        res.write(data.subarray(0, data.length >> 1), () => setTimeout(() => req.socket.destroy(), 20));
        return;
      }
      res.end(data);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const store = newStore();
      const events: string[] = [];
      await pullImage(store, `127.0.0.1:${port}/flaky:latest`, {
        credentialOptions: CRED_OPTS,
        onProgress: (e) => events.push(e.type === 'retrying' ? `retrying:${e.attempt}` : e.type),
      });
      expect(layerGets).toBe(2);
      expect(events.filter((e) => e.startsWith('retrying'))).toEqual(['retrying:1']);
      assertLayer(store, single.diffId);
      expect(sha256(readFileSync(store.blobPath(single.layerDigest)))).toBe(single.layerDigest.slice(7));
      assertNoLeftovers(store);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('plain http to a non-localhost host name is refused without contacting it', () => {
    expect(() => new RegistryClient(parseReference('registry.tsrun-test.invalid:5000/x'), { plainHttp: true })).toThrow(/refusing plain http/);
  });
});
