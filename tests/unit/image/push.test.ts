// push, tag and login's check, without a real registry: the pure parts (destination, chunk
// plan, Range headers, foreign layers), the token request for several scopes, and pushImage /
// checkLogin against a small in-memory registry on 127.0.0.1 (node:http) that speaks the
// distribution API for uploads (sessions, mounts, PATCH with Content-Range, PUT ?digest=,
// upload status, manifests) and can be told to fail in the ways that matter: a connection
// reset in the middle of a chunk, a 503 on a monolithic PUT, a mount it refuses.
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { PushProgressView } from '../../../src/cli/engine/push-progress.js';
import { chunkRanges, isForeign, mountSources, pushDestination, pushImage, uploadPlan, type PushOptions, type PushProgress } from '../../../src/image/push.js';
import { parseReference } from '../../../src/image/reference.js';
import { RegistryAuth, type TokenTransport } from '../../../src/image/registry/auth.js';
import { checkLogin, parseRangeEnd } from '../../../src/image/registry/client.js';
import type { ImageStore } from '../../../src/image/store/store.js';
import { tagImage } from '../../../src/image/tag.js';
import { TsrunError } from '../../../src/util/errors.js';
import { makeImage, makeLayer, sha256, tmpStore, type BuiltImage } from './image-fixtures.js';

// ---------------------------------------------------------------- the fake registry

interface Logged {
  method: string;
  url: string;
  status: number;
  range?: string;
  auth?: string;
}

interface Fake {
  port: number;
  host: string;
  log: Logged[];
  /** repository -> digests it links (a blob is readable there). */
  repos: Map<string, Set<string>>;
  content: Map<string, Buffer>;
  /** repository -> reference (tag or digest) -> manifest. */
  manifests: Map<string, Map<string, { bytes: Buffer; type: string }>>;
  faults: {
    /** Reset the connection after this many bytes of the n-th PATCH (1-based), once. */
    resetPatch?: { n: number; after: number };
    /** Answer the first monolithic PUT with 503. */
    failPut?: boolean;
    /** Refuse mounts (202 and a session, as registries do when they cannot). */
    noMount?: boolean;
    /** OCI-Chunk-Min-Length to announce. */
    minChunk?: number;
    /** Upload status (GET) says the session is gone, as distribution does after a broken PATCH. */
    noResume?: boolean;
  };
  writes(): Logged[];
}

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    ),
  );
});

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function fakeRegistry(auth?: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<Fake> {
  const uploads = new Map<string, { repo: string; data: Buffer }>();
  let patches = 0;
  const fake: Fake = {
    port: 0,
    host: '',
    log: [],
    repos: new Map(),
    content: new Map(),
    manifests: new Map(),
    faults: {},
    writes: () => fake.log.filter((l) => !['GET', 'HEAD'].includes(l.method)),
  };
  const link = (repo: string, d: string) => {
    let s = fake.repos.get(repo);
    if (!s) fake.repos.set(repo, (s = new Set()));
    s.add(d);
  };
  const srv = http.createServer(async (req, res) => {
    const entry: Logged = { method: req.method ?? '', url: req.url ?? '', status: 0 };
    if (req.headers['content-range']) entry.range = String(req.headers['content-range']);
    if (req.headers.authorization) entry.auth = req.headers.authorization;
    fake.log.push(entry);
    const send = (status: number, headers: Record<string, string> = {}, body?: Buffer | string) => {
      entry.status = status;
      res.writeHead(status, headers).end(req.method === 'HEAD' ? undefined : body);
    };
    if (auth && !auth(req, res)) {
      entry.status = res.statusCode;
      return;
    }
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/v2/') return send(200, {}, '{}');
    let m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(u.pathname);
    if (m && (req.method === 'HEAD' || req.method === 'GET')) {
      const has = fake.repos.get(m[1]!)?.has(m[2]!);
      return has ? send(200, { 'Content-Length': String(fake.content.get(m[2]!)!.length) }, fake.content.get(m[2]!)) : send(404);
    }
    m = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(u.pathname);
    if (m && req.method === 'POST') {
      await readAll(req);
      const mount = u.searchParams.get('mount');
      const from = u.searchParams.get('from');
      if (mount && from && !fake.faults.noMount && fake.repos.get(from)?.has(mount)) {
        link(m[1]!, mount);
        return send(201, { Location: `/v2/${m[1]}/blobs/${mount}`, 'Docker-Content-Digest': mount });
      }
      const id = randomBytes(6).toString('hex');
      uploads.set(id, { repo: m[1]!, data: Buffer.alloc(0) });
      return send(202, {
        Location: `/v2/${m[1]}/blobs/uploads/${id}?_state=x`,
        Range: '0-0',
        ...(fake.faults.minChunk ? { 'OCI-Chunk-Min-Length': String(fake.faults.minChunk) } : {}),
      });
    }
    m = /^\/v2\/(.+)\/blobs\/uploads\/([a-f0-9]+)$/.exec(u.pathname);
    if (m) {
      const up = uploads.get(m[2]!);
      if (!up) return send(404, {}, '{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}');
      const loc = { Location: `/v2/${m[1]}/blobs/uploads/${m[2]}?_state=y` };
      if (req.method === 'GET') {
        if (fake.faults.noResume) {
          uploads.delete(m[2]!);
          return send(400, {}, '{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}');
        }
        return send(204, { ...loc, Range: `0-${Math.max(0, up.data.length - 1)}` });
      }
      if (req.method === 'DELETE') {
        uploads.delete(m[2]!);
        return send(204);
      }
      if (req.method === 'PATCH') {
        patches++;
        const start = Number(/^(\d+)-/.exec(String(req.headers['content-range'] ?? ''))?.[1] ?? up.data.length);
        if (start !== up.data.length) {
          await readAll(req).catch(() => {});
          return send(416);
        }
        const reset = fake.faults.resetPatch;
        if (reset && reset.n === patches) {
          delete fake.faults.resetPatch;
          let got = Buffer.alloc(0);
          req.on('data', (c: Buffer) => {
            if (got.length >= reset.after) return;
            got = Buffer.concat([got, c]).subarray(0, reset.after);
            if (got.length >= reset.after) {
              up.data = Buffer.concat([up.data, got]);
              entry.status = -1;
              req.socket.destroy();
            }
          });
          return;
        }
        up.data = Buffer.concat([up.data, await readAll(req)]);
        return send(202, { ...loc, Range: `0-${up.data.length - 1}` });
      }
      if (req.method === 'PUT') {
        const body = await readAll(req);
        if (fake.faults.failPut && body.length) {
          fake.faults.failPut = false;
          return send(503, {}, '{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
        }
        up.data = Buffer.concat([up.data, body]);
        const digest = u.searchParams.get('digest')!;
        if (sha256(up.data) !== digest) return send(400, {}, '{"errors":[{"code":"DIGEST_INVALID"}]}');
        uploads.delete(m[2]!);
        fake.content.set(digest, up.data);
        link(m[1]!, digest);
        return send(201, { Location: `/v2/${m[1]}/blobs/${digest}`, 'Docker-Content-Digest': digest });
      }
    }
    m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(u.pathname);
    if (m) {
      const repo = fake.manifests.get(m[1]!) ?? new Map<string, { bytes: Buffer; type: string }>();
      fake.manifests.set(m[1]!, repo);
      if (req.method === 'PUT') {
        const bytes = await readAll(req);
        const digest = sha256(bytes);
        if (m[2]!.startsWith('sha256:') && m[2] !== digest) return send(400);
        const doc = JSON.parse(bytes.toString()) as { manifests?: { digest: string }[]; layers?: { digest: string }[]; config?: { digest: string } };
        // like distribution: what a manifest references must be in the repository already
        for (const d of [...(doc.manifests ?? []).map((x) => x.digest)])
          if (!repo.has(d)) return send(400, {}, '{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN"}]}');
        for (const d of [...(doc.layers ?? []).map((x) => x.digest), ...(doc.config ? [doc.config.digest] : [])]) {
          if (!fake.repos.get(m[1]!)?.has(d)) return send(400, {}, '{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN"}]}');
        }
        const v = { bytes, type: String(req.headers['content-type']) };
        repo.set(m[2]!, v);
        repo.set(digest, v);
        return send(201, { 'Docker-Content-Digest': digest });
      }
      const v = repo.get(m[2]!);
      if (!v) return send(404, {}, '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      return send(200, { 'Content-Type': v.type, 'Docker-Content-Digest': sha256(v.bytes), 'Content-Length': String(v.bytes.length) }, v.bytes);
    }
    send(404);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  fake.port = (srv.address() as AddressInfo).port;
  fake.host = `127.0.0.1:${fake.port}`;
  return fake;
}

// ---------------------------------------------------------------- images in a store

/** Put an image's blobs in the store (push needs no unpacked layers) and tag it. */
async function storeImage(store: ImageStore, ref: string, img: BuiltImage): Promise<void> {
  for (const b of img.blobs.values()) store.putBlobBytes(b);
  await store.setTag(ref, { digest: img.manifestDigest });
}

/** Two platforms of one image under an index; only `keep` platforms' blobs go to the store. */
async function storeIndex(
  store: ImageStore,
  ref: string,
  keep: ('amd64' | 'arm64')[],
): Promise<{ index: Buffer; indexDigest: string; images: Record<string, BuiltImage> }> {
  const images: Record<string, BuiltImage> = {};
  const descs = [];
  for (const arch of ['amd64', 'arm64'] as const) {
    const img = makeImage([await makeLayer({ [`bin/${arch}`]: arch })], { architecture: arch, ...(arch === 'arm64' ? { variant: 'v8' } : {}) });
    images[arch] = img;
    descs.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: img.manifestDigest,
      size: img.manifest.length,
      platform: { os: 'linux', architecture: arch, ...(arch === 'arm64' ? { variant: 'v8' } : {}) },
    });
    if (keep.includes(arch)) for (const b of img.blobs.values()) store.putBlobBytes(b);
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: descs }));
  const indexDigest = store.putBlobBytes(index);
  await store.setTag(ref, { digest: indexDigest, platform: keep.includes('amd64') ? 'linux/amd64' : 'linux/arm64/v8' });
  return { index, indexDigest, images };
}

const NO_CREDS: PushOptions = { credentialOptions: { home: '/nonexistent', env: {} }, retryBaseMs: 1 };

function collect(): { events: PushProgress[]; onProgress: (e: PushProgress) => void } {
  const events: PushProgress[] = [];
  return { events, onProgress: (e) => events.push(e) };
}

// ---------------------------------------------------------------- pure parts

describe('pure parts', () => {
  it('pushDestination: DEST as given (docker:// allowed), else the stored name', () => {
    expect(pushDestination(undefined, 'localhost/busybox:latest').canonical).toBe('localhost/busybox:latest');
    expect(pushDestination('docker://127.0.0.1:5000/a/b:2', 'x').canonical).toBe('127.0.0.1:5000/a/b:2');
    expect(pushDestination('127.0.0.1:5000/a/b', 'x').tag).toBe('latest');
    expect(() => pushDestination('Bad::ref', 'x')).toThrow(/invalid reference/);
  });

  it('chunkRanges covers the blob exactly, in order', () => {
    expect(chunkRanges(10, 4)).toEqual([
      [0, 4],
      [4, 4],
      [8, 2],
    ]);
    expect(chunkRanges(8, 4)).toEqual([
      [0, 4],
      [4, 4],
    ]);
    expect(chunkRanges(0, 4)).toEqual([]);
    expect(chunkRanges(10, 4, 6)).toEqual([[6, 4]]);
    expect(() => chunkRanges(10, 0)).toThrow(/positive/);
  });

  it('uploadPlan: one PUT up to the threshold, chunks above it or when a chunk size is given, never below the registry minimum', () => {
    expect(uploadPlan(1000, {})).toEqual({ chunked: false, chunk: 16 * 1024 * 1024 });
    expect(uploadPlan(65 * 1024 * 1024, {}).chunked).toBe(true);
    expect(uploadPlan(100, { chunkThreshold: 50 }).chunked).toBe(true);
    expect(uploadPlan(100, { chunkSize: 10 })).toEqual({ chunked: true, chunk: 10 });
    expect(uploadPlan(100, { chunkSize: 10, minChunk: 64 })).toEqual({ chunked: true, chunk: 64 });
  });

  it('parseRangeEnd reads Range as registries send it', () => {
    expect(parseRangeEnd('0-1023')).toBe(1024);
    expect(parseRangeEnd('bytes=0-9')).toBe(10);
    expect(parseRangeEnd(undefined)).toBeUndefined();
    expect(parseRangeEnd('junk')).toBeUndefined();
  });

  it('isForeign: foreign and non-distributable layers with URLs are not pushed', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    expect(isForeign({ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d, size: 1, urls: ['https://x/y'] })).toBe(true);
    expect(isForeign({ mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: d, size: 1, urls: ['https://x/y'] })).toBe(true);
    expect(isForeign({ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d, size: 1 })).toBe(false);
    expect(isForeign({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d, size: 1, urls: ['https://x/y'] })).toBe(false);
  });

  it('mountSources: other repositories of the same registry that hold the content, from the tags', async () => {
    const store = tmpStore();
    const img = makeImage([await makeLayer({ a: 'a' })]);
    await storeImage(store, 'reg:5000/src/app:1', img);
    await storeImage(store, 'reg:5000/dest/app:1', img);
    await storeImage(store, 'other:5000/src/app:1', img);
    const m = mountSources(store, parseReference('reg:5000/dest/app:2'));
    expect(m.get(img.configDigest)).toEqual(['src/app']);
    expect(m.get(img.layers[0]!.gzDigest)).toEqual(['src/app']);
    expect(m.get(img.manifestDigest)).toEqual(['src/app']);
  });
});

describe('RegistryAuth with several scopes', () => {
  it('asks the token server for each scope and caches the set separately', async () => {
    const log: URL[] = [];
    const transport: TokenTransport = async (url) => {
      log.push(url);
      return { status: 200, headers: {}, body: Buffer.from(JSON.stringify({ token: `T${log.length}`, expires_in: 300 })) };
    };
    const auth = new RegistryAuth({ registry: 'r', transport, allowHttp: () => true, verb: 'push' });
    auth.learn([{ scheme: 'bearer', params: { realm: 'http://127.0.0.1:1/token', service: 's' } }]);
    expect(await auth.authorization('repository:b:pull,push')).toBe('Bearer T1');
    expect(await auth.authorization(['repository:b:pull,push', 'repository:a:pull'])).toBe('Bearer T2');
    expect(await auth.authorization(['repository:b:pull,push', 'repository:a:pull'])).toBe('Bearer T2');
    expect(await auth.authorization([])).toBe('Bearer T3');
    expect(log[1]!.searchParams.getAll('scope')).toEqual(['repository:b:pull,push', 'repository:a:pull']);
    expect(log[2]!.searchParams.getAll('scope')).toEqual([]);
    expect(auth.unauthorized('x').hint).toMatch(/then push again/);
  });
});

// ---------------------------------------------------------------- pushImage

describe('pushImage', () => {
  it('pushes blobs and the manifest byte for byte; a second push writes nothing', async () => {
    const reg = await fakeRegistry();
    const store = tmpStore();
    const img = makeImage([await makeLayer({ 'etc/a': 'a' }), await makeLayer({ 'etc/b': 'b' })]);
    await storeImage(store, 'localhost/app:latest', img);
    const p = collect();
    const r = await pushImage(store, 'app', `${reg.host}/team/app:1`, { ...NO_CREDS, onProgress: p.onProgress });
    expect(r.digest).toBe(img.manifestDigest);
    expect(r.ref).toBe(`${reg.host}/team/app:1`);
    expect(r.uploaded.sort()).toEqual([img.configDigest, ...img.layers.map((l) => l.gzDigest)].sort());
    expect(reg.manifests.get('team/app')!.get('1')!.bytes.equals(img.manifest)).toBe(true);
    expect(reg.manifests.get('team/app')!.get('1')!.type).toBe('application/vnd.oci.image.manifest.v1+json');
    for (const [d, b] of img.blobs) if (d !== img.manifestDigest) expect(reg.content.get(d)!.equals(b)).toBe(true);
    const types = p.events.map((e) => e.type);
    expect(types[0]).toBe('resolved');
    expect(types.filter((t) => t === 'done')).toHaveLength(3);
    expect(types.at(-1)).toBe('pushed');
    const resolved = p.events[0] as Extract<PushProgress, { type: 'resolved' }>;
    expect(resolved.blobs.map((b) => b.kind)).toEqual(['layer', 'layer', 'config']);

    reg.log.length = 0;
    const again = collect();
    const r2 = await pushImage(store, 'app', `${reg.host}/team/app:1`, { ...NO_CREDS, onProgress: again.onProgress });
    expect(r2.existing).toHaveLength(3);
    expect(reg.writes()).toEqual([]);
    expect(again.events.filter((e) => e.type === 'exists')).toHaveLength(3);
    expect(again.events.find((e) => e.type === 'manifest')).toMatchObject({ existed: true });
  });

  it('uploads in chunks (Content-Range, contiguous), honouring the registry minimum', async () => {
    const reg = await fakeRegistry();
    reg.faults.minChunk = 50_000;
    const store = tmpStore();
    const img = makeImage([await makeLayer({ big: randomBytes(150_000).toString('base64') })]);
    await storeImage(store, 'localhost/big:latest', img);
    const size = img.layers[0]!.gz.length;
    await pushImage(store, 'big', `${reg.host}/big:1`, { ...NO_CREDS, chunkSize: 10_000 });
    const bySession = new Map<string, string[]>();
    for (const l of reg.log.filter((x) => x.method === 'PATCH')) {
      const id = /uploads\/([a-f0-9]+)/.exec(l.url)![1]!;
      bySession.set(id, [...(bySession.get(id) ?? []), l.range!]);
    }
    expect(bySession.size).toBe(2); // the config (one small chunk) and the layer
    const layerRanges = [...bySession.values()].find((r) => r.length > 1)!;
    expect(layerRanges).toHaveLength(Math.ceil(size / 50_000));
    let at = 0;
    for (const r of layerRanges) {
      const [s, e] = r.split('-').map(Number) as [number, number];
      expect(s).toBe(at);
      expect(e - s + 1).toBe(Math.min(50_000, size - at));
      at = e + 1;
    }
    expect(at).toBe(size);
    expect(reg.content.get(img.layers[0]!.gzDigest)!.equals(img.layers[0]!.gz)).toBe(true);
    // a chunked upload ends with a PUT without a body
    expect(reg.log.filter((l) => l.method === 'PUT' && l.url.includes('/blobs/uploads/')).length).toBe(2);
  });

  it('resumes a chunked upload where the registry stopped after a connection reset', async () => {
    const reg = await fakeRegistry();
    const store = tmpStore();
    const img = makeImage([await makeLayer({ big: randomBytes(120_000).toString('base64') })]);
    await storeImage(store, 'localhost/big:latest', img);
    reg.faults.resetPatch = { n: 2, after: 10_000 };
    const p = collect();
    await pushImage(store, 'big', `${reg.host}/big:1`, { ...NO_CREDS, chunkSize: 40_000, concurrency: 1, onProgress: p.onProgress });
    expect(reg.content.get(img.layers[0]!.gzDigest)!.equals(img.layers[0]!.gz)).toBe(true);
    expect(p.events.filter((e) => e.type === 'retrying')).toHaveLength(1);
    // after the reset: an upload status GET, then the next PATCH starts where the registry stopped
    const i = reg.log.findIndex((l) => l.status === -1);
    expect(reg.log[i + 1]!.method).toBe('GET');
    expect(reg.log[i + 2]!.method).toBe('PATCH');
    const start = Number(reg.log[i]!.range!.split('-')[0]);
    expect(reg.log[i + 2]!.range!.startsWith(`${start + 10_000}-`)).toBe(true);
  });

  it('starts the blob again in a new session when the registry cannot resume it', async () => {
    const reg = await fakeRegistry();
    const store = tmpStore();
    const img = makeImage([await makeLayer({ big: randomBytes(120_000).toString('base64') })]);
    await storeImage(store, 'localhost/big:latest', img);
    reg.faults.resetPatch = { n: 2, after: 10_000 };
    reg.faults.noResume = true;
    const p = collect();
    const r = await pushImage(store, 'big', `${reg.host}/big:1`, { ...NO_CREDS, chunkSize: 40_000, concurrency: 1, onProgress: p.onProgress });
    expect(r.uploaded).toContain(img.layers[0]!.gzDigest);
    expect(reg.content.get(img.layers[0]!.gzDigest)!.equals(img.layers[0]!.gz)).toBe(true);
    expect(p.events.filter((e) => e.type === 'retrying')).toHaveLength(2); // the chunk, then the blob
    expect(reg.log.filter((l) => l.method === 'POST')).toHaveLength(3); // config, layer, layer again
  });

  it('retries a blob whose monolithic PUT failed transiently, from a new session', async () => {
    const reg = await fakeRegistry();
    reg.faults.failPut = true;
    const store = tmpStore();
    const img = makeImage([await makeLayer({ a: 'a' })]);
    await storeImage(store, 'localhost/app:latest', img);
    const p = collect();
    const r = await pushImage(store, 'app', `${reg.host}/app:1`, { ...NO_CREDS, concurrency: 1, onProgress: p.onProgress });
    expect(r.digest).toBe(img.manifestDigest);
    expect(p.events.filter((e) => e.type === 'retrying')).toHaveLength(1);
    expect(reg.log.filter((l) => l.status === 503)).toHaveLength(1);
  });

  it('mounts blobs from another repository of the registry that a tag says holds them', async () => {
    const reg = await fakeRegistry();
    const store = tmpStore();
    const img = makeImage([await makeLayer({ a: 'a' })]);
    await storeImage(store, `${reg.host}/src/app:1`, img);
    await pushImage(store, `${reg.host}/src/app:1`, undefined, NO_CREDS);
    reg.log.length = 0;
    const p = collect();
    const r = await pushImage(store, `${reg.host}/src/app:1`, `${reg.host}/dst/app:1`, { ...NO_CREDS, onProgress: p.onProgress });
    expect(r.mounted.sort()).toEqual([img.configDigest, img.layers[0]!.gzDigest].sort());
    const mounts = reg.log.filter((l) => l.method === 'POST');
    expect(mounts.every((l) => /mount=sha256%3A[a-f0-9]{64}&from=src%2Fapp/.test(l.url) && l.status === 201)).toBe(true);
    expect(reg.log.filter((l) => l.method === 'PATCH' || (l.method === 'PUT' && l.url.includes('/uploads/')))).toEqual([]);
    expect(p.events.filter((e) => e.type === 'mounted').map((e) => (e as { from: string }).from)).toEqual(['src/app', 'src/app']);

    // a registry that will not mount opens a session instead: the blob is uploaded in it
    reg.faults.noMount = true;
    reg.log.length = 0;
    const r2 = await pushImage(store, `${reg.host}/src/app:1`, `${reg.host}/third/app:1`, NO_CREDS);
    expect(r2.uploaded).toHaveLength(2);
    expect(reg.log.filter((l) => l.method === 'POST')).toHaveLength(2); // no second POST: the mount's session was used
  });

  it('pushes an index with every platform manifest first; the digests are the stored ones', async () => {
    const reg = await fakeRegistry();
    const store = tmpStore();
    const { index, indexDigest, images } = await storeIndex(store, 'localhost/multi:latest', ['amd64', 'arm64']);
    const r = await pushImage(store, 'multi', `${reg.host}/multi:1`, NO_CREDS);
    expect(r.digest).toBe(indexDigest);
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(r.manifests).toEqual([images.amd64!.manifestDigest, images.arm64!.manifestDigest, indexDigest]);
    expect(reg.manifests.get('multi')!.get('1')!.bytes.equals(index)).toBe(true);
    const puts = reg.log.filter((l) => l.method === 'PUT' && l.url.includes('/manifests/')).map((l) => l.url.split('/manifests/')[1]);
    expect(puts).toEqual([images.amd64!.manifestDigest, images.arm64!.manifestDigest, '1']);
  });

  it('an index with a platform not stored: its manifest alone, with a warning (or all of it when the registry has the rest)', async () => {
    const reg = await fakeRegistry();
    const store = tmpStore();
    const { indexDigest, images } = await storeIndex(store, 'localhost/multi:latest', ['amd64']);
    const p = collect();
    const r = await pushImage(store, 'multi', `${reg.host}/one:1`, { ...NO_CREDS, onProgress: p.onProgress });
    expect(r.digest).toBe(images.amd64!.manifestDigest);
    expect(r.platforms).toBeUndefined();
    const w = p.events.find((e) => e.type === 'warning') as { message: string };
    expect(w.message).toMatch(/lists linux\/arm64\/v8, which is not in the store .* pushing only the linux\/amd64 manifest/);

    // The same registry holds the whole image in another repository (a tag says so): the
    // missing manifest is read from there and its blobs mounted.
    const full = tmpStore();
    await storeIndex(full, `${reg.host}/src/multi:1`, ['amd64', 'arm64']);
    await pushImage(full, `${reg.host}/src/multi:1`, undefined, NO_CREDS);
    await store.setTag(`${reg.host}/src/multi:1`, { digest: indexDigest, platform: 'linux/amd64' });
    reg.log.length = 0;
    const r2 = await pushImage(store, `${reg.host}/src/multi:1`, `${reg.host}/dst/multi:1`, NO_CREDS);
    expect(r2.digest).toBe(indexDigest);
    expect(r2.mounted).toContain(images.arm64!.layers[0]!.gzDigest);
    expect(reg.log.some((l) => l.method === 'GET' && l.url === `/v2/src/multi/manifests/${images.arm64!.manifestDigest}`)).toBe(true);
  });

  it('refuses a DEST digest that is not the image, a blob neither stored nor mountable, an unknown image', async () => {
    const reg = await fakeRegistry();
    const store = tmpStore();
    const img = makeImage([await makeLayer({ a: 'a' })]);
    await storeImage(store, 'localhost/app:latest', img);
    await expect(pushImage(store, 'app', `${reg.host}/app@sha256:${'b'.repeat(64)}`, NO_CREDS)).rejects.toThrow(/names digest sha256:b+, but the image is/);
    const byDigest = await pushImage(store, 'app', `${reg.host}/app@${img.manifestDigest}`, NO_CREDS);
    expect(byDigest.digest).toBe(img.manifestDigest);
    store.removeBlob(img.layers[0]!.gzDigest);
    const e = (await pushImage(store, 'app', `${reg.host}/other:1`, NO_CREDS).catch((x: unknown) => x)) as TsrunError;
    expect(e).toBeInstanceOf(TsrunError);
    expect(e.message).toMatch(new RegExp(`push ${reg.host}/other:1: layer ${img.layers[0]!.gzDigest}: it is not in the store`));
    expect(reg.manifests.get('other')?.get('1')).toBeUndefined();
    await expect(pushImage(store, 'nosuch', `${reg.host}/x:1`, NO_CREDS)).rejects.toThrow(/no such image: nosuch/);
  });

  it('sends the credentials it finds as Basic; a 401 says to log in', async () => {
    const want = `Basic ${Buffer.from('u:p').toString('base64')}`;
    const reg = await fakeRegistry((req, res) => {
      if (req.headers.authorization === want) return true;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return false;
    });
    const store = tmpStore();
    const img = makeImage([await makeLayer({ a: 'a' })]);
    await storeImage(store, 'localhost/app:latest', img);
    const e = (await pushImage(store, 'app', `${reg.host}/app:1`, NO_CREDS).catch((x: unknown) => x)) as TsrunError;
    expect(e.message).toMatch(/unauthorized: .*no credentials are stored/);
    expect(e.hint).toMatch(/then push again/);
    const r = await pushImage(store, 'app', `${reg.host}/app:1`, { ...NO_CREDS, credentials: { username: 'u', password: 'p' } });
    expect(r.digest).toBe(img.manifestDigest);
  });
});

// ---------------------------------------------------------------- tag

describe('tagImage', () => {
  it('finds SRC as run does (busybox is localhost/busybox), writes DEST canonical, refuses digests', async () => {
    const store = tmpStore();
    const img = makeImage([await makeLayer({ a: 'a' })]);
    await storeImage(store, 'localhost/busybox:latest', img);
    const r = await tagImage(store, 'busybox', '127.0.0.1:5000/x/bb:2');
    expect(r).toEqual({ ref: '127.0.0.1:5000/x/bb:2', source: 'localhost/busybox:latest', digest: img.manifestDigest });
    expect(store.resolveTag('127.0.0.1:5000/x/bb:2')).toEqual({ digest: img.manifestDigest });
    expect((await tagImage(store, '127.0.0.1:5000/x/bb:2', 'app')).ref).toBe('docker.io/library/app:latest');
    await expect(tagImage(store, 'busybox', `x@${img.manifestDigest}`)).rejects.toThrow(/cannot tag an image with the digest reference/);
    await expect(tagImage(store, 'nosuch', 'x')).rejects.toThrow(/no such image: nosuch/);
    const other = makeImage([await makeLayer({ b: 'b' })]);
    await storeImage(store, 'localhost/other:latest', other);
    expect((await tagImage(store, 'other', 'app')).replaced).toBe(img.manifestDigest);
  });
});

// ---------------------------------------------------------------- login's check

describe('checkLogin', () => {
  it('Basic: 200 is good, 401 is a wrong username or password', async () => {
    const want = `Basic ${Buffer.from('alice:pw').toString('base64')}`;
    const reg = await fakeRegistry((req, res) => {
      if (req.headers.authorization === want) return true;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"' }).end();
      return false;
    });
    expect(await checkLogin(reg.host, { username: 'alice', password: 'pw' })).toBe('basic');
    await expect(checkLogin(reg.host, { username: 'alice', password: 'nope' })).rejects.toThrow(/^unauthorized: wrong username or password/);
  });

  it('Bearer: the token server is asked with the credentials and no scope', async () => {
    const tokenLog: URL[] = [];
    const tokens = http.createServer((req, res) => {
      tokenLog.push(new URL(req.url ?? '/', 'http://x'));
      if (req.headers.authorization !== `Basic ${Buffer.from('bob:pw').toString('base64')}`) return res.writeHead(401).end('{"details":"bad"}');
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"token":"TOK"}');
    });
    servers.push(tokens);
    await new Promise<void>((r) => tokens.listen(0, '127.0.0.1', r));
    const realm = `http://127.0.0.1:${(tokens.address() as AddressInfo).port}/token`;
    const reg = await fakeRegistry((req, res) => {
      if (req.headers.authorization === 'Bearer TOK') return true;
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${realm}",service="svc"` }).end();
      return false;
    });
    expect(await checkLogin(reg.host, { username: 'bob', password: 'pw' })).toBe('bearer');
    expect(tokenLog[0]!.searchParams.getAll('scope')).toEqual([]);
    expect(tokenLog[0]!.searchParams.get('service')).toBe('svc');
    expect(tokenLog[0]!.searchParams.get('account')).toBe('bob');
    await expect(checkLogin(reg.host, { username: 'bob', password: 'bad' })).rejects.toThrow(/^unauthorized: wrong username or password/);
  });

  it('a registry without auth is fine; nothing listening cannot be reached', async () => {
    const reg = await fakeRegistry();
    expect(await checkLogin(`http://${reg.host}/`, { username: 'a', password: 'b' })).toBe('none');
    const srv = http.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    await expect(checkLogin(`127.0.0.1:${port}`, { username: 'a', password: 'b' })).rejects.toThrow(
      /^cannot reach registry 127\.0\.0\.1:\d+ \(https: .*ECONNREFUSED/,
    );
  });
});

// ---------------------------------------------------------------- the progress view

describe('PushProgressView', () => {
  it('prints one line per layer event when not on a terminal; configs stay silent; warnings go to stderr', () => {
    const out = new PassThrough();
    const err = new PassThrough();
    let text = '';
    let errText = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    err.on('data', (c: Buffer) => (errText += c.toString()));
    const v = new PushProgressView(out, false, err);
    const layer = { index: 0, digest: `sha256:${'1'.repeat(64)}`, size: 2_000_000, mediaType: 'x', kind: 'layer' as const };
    const layer2 = { index: 1, digest: `sha256:${'2'.repeat(64)}`, size: 10, mediaType: 'x', kind: 'layer' as const };
    const config = { index: 2, digest: `sha256:${'3'.repeat(64)}`, size: 10, mediaType: 'x', kind: 'config' as const };
    const digest = `sha256:${'4'.repeat(64)}`;
    v.handle({ type: 'resolved', ref: 'r/x:1', digest, mediaType: 'm', platforms: [], blobs: [layer, layer2, config] });
    v.handle({ type: 'started', blob: layer, chunked: true });
    v.handle({ type: 'bytes', blob: layer, bytes: 100 });
    v.handle({ type: 'done', blob: layer });
    v.handle({ type: 'mounted', blob: layer2, from: 'a/b' });
    v.handle({ type: 'exists', blob: config });
    v.handle({ type: 'warning', message: 'careful' });
    v.handle({ type: 'manifest', digest, mediaType: 'm', existed: false });
    v.handle({ type: 'pushed', ref: 'r/x:1', digest, size: 405 });
    expect(text.split('\n')).toEqual([
      `pushing ${digest} to r/x:1, 2 layer(s)`,
      'layer 111111111111: pushing 2.0 MB in chunks',
      'layer 111111111111: pushed',
      'layer 222222222222: mounted from a/b',
      'manifest 444444444444: pushed',
      `r/x:1: digest: ${digest} size: 405`,
      '',
    ]);
    expect(errText).toBe('warning: careful\n');
  });
});
