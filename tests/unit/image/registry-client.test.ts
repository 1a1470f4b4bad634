// The registry client against small node:http fakes on 127.0.0.1: scheme choice and the
// plain-http rule, manifest verification and bounds, retries, redirects and Authorization.
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaType } from '../../../src/image/manifest.js';
import { plainHttpAllowed, RegistryClient, RegistryError } from '../../../src/image/registry/client.js';
import { TsrunError } from '../../../src/util/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: http.Server[] = [];
const clients: RegistryClient[] = [];

async function serve(handler: Handler): Promise<{ port: number; log: { method: string; url: string; auth?: string }[] }> {
  const log: { method: string; url: string; auth?: string }[] = [];
  const srv = http.createServer((req, res) => {
    log.push({ method: req.method ?? '', url: req.url ?? '', ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    handler(req, res);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, log };
}

function client(host: string, path = 'test/img', opts: ConstructorParameters<typeof RegistryClient>[1] = {}): RegistryClient {
  const c = new RegistryClient({ registryHost: host, path }, { retryBaseMs: 5, ...opts });
  clients.push(c);
  return c;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: `sha256:${'a'.repeat(64)}`, size: 1 },
    layers: [],
  }),
);

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

describe('plain http', () => {
  it('is allowed only for loopback names and registries marked insecure', () => {
    expect(plainHttpAllowed('localhost:5000')).toBe(true);
    expect(plainHttpAllowed('127.0.0.1:5000')).toBe(true);
    expect(plainHttpAllowed('[::1]:5000')).toBe(true);
    expect(plainHttpAllowed('localhost')).toBe(true);
    expect(plainHttpAllowed('registry.example.com')).toBe(false);
    expect(plainHttpAllowed('127.0.0.2:5000')).toBe(false);
    expect(plainHttpAllowed('localhost.example.com:5000')).toBe(false);
    expect(plainHttpAllowed('registry.example.com:5000', ['registry.example.com:5000'])).toBe(true);
    expect(plainHttpAllowed('registry.example.com:5000', ['registry.example.com'])).toBe(true);
    expect(plainHttpAllowed('registry.example.com:5000', ['other.example.com'])).toBe(false);
  });

  it('is refused for a non-localhost host name without contacting it', () => {
    let err: unknown;
    try {
      client('registry.example.com', 'x', { plainHttp: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TsrunError);
    expect((err as TsrunError).message).toMatch(/refusing plain http to registry registry.example.com/);
    expect((err as TsrunError).hint).toMatch(/insecure/);
    expect(() => client('registry.example.com:5000', 'x', { plainHttp: true, insecure: true })).not.toThrow();
  });

  it('a redirect to plain http on another host is refused before connecting', async () => {
    const { port } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end('{}');
      res.writeHead(307, { Location: 'http://blobs.tsrun-test.invalid/data' }).end();
    });
    const e = await client(`127.0.0.1:${port}`)
      .blobStream(`sha256:${'b'.repeat(64)}`)
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as Error).message).toMatch(/refusing plain http to blobs.tsrun-test.invalid/);
  });

  it('loopback: https is tried first, then http', async () => {
    const { port, log } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end('{}');
      res.writeHead(200, { 'Content-Type': MediaType.OciManifest, 'Docker-Content-Digest': sha(manifest) }).end(manifest);
    });
    const got = await client(`127.0.0.1:${port}`).getManifest('latest');
    expect(got.digest).toBe(sha(manifest));
    expect(got.mediaType).toBe(MediaType.OciManifest);
    expect(log.map((l) => l.url)).toEqual(['/v2/', '/v2/test/img/manifests/latest']);
  });
});

describe('manifests', () => {
  it('asks with Accept for every supported type', async () => {
    let accept = '';
    const { port } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      accept = String(req.headers.accept);
      res.writeHead(200, { 'Content-Type': MediaType.OciManifest }).end(manifest);
    });
    await client(`127.0.0.1:${port}`).getManifest('latest');
    for (const t of [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList]) expect(accept).toContain(t);
  });

  it('verifies the Docker-Content-Digest header and the digest asked for', async () => {
    const other = `sha256:${'c'.repeat(64)}`;
    const { port } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      res.writeHead(200, { 'Content-Type': MediaType.OciManifest, 'Docker-Content-Digest': other }).end(manifest);
    });
    const c = client(`127.0.0.1:${port}`);
    const e1 = await c.getManifest('latest').catch((x: unknown) => x as TsrunError);
    expect(e1).toBeInstanceOf(TsrunError);
    expect((e1 as TsrunError).code).toBe('ERR_DIGEST_MISMATCH');
    expect((e1 as Error).message).toMatch(/Docker-Content-Digest/);
    const e2 = await c.getManifest(other).catch((x: unknown) => x as TsrunError);
    expect((e2 as TsrunError).code).toBe('ERR_DIGEST_MISMATCH');
  });

  it('refuses more than 4 MiB, declared or streamed', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 10, 0x20);
    const { port } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      if (req.url?.endsWith('/declared')) return res.writeHead(200, { 'Content-Length': String(big.length) }).end(big);
      res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
      res.write(big.subarray(0, 1024 * 1024));
      res.write(big.subarray(1024 * 1024));
      res.end();
    });
    const c = client(`127.0.0.1:${port}`);
    await expect(c.getManifest('declared')).rejects.toThrow(/more than the 4194304 (bytes )?allowed/);
    await expect(c.getManifest('chunked')).rejects.toThrow(/more than the 4194304 (bytes )?allowed/);
  });

  it('a 404 is a clear "not found", not retried', async () => {
    const { port, log } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    });
    const e = await client(`127.0.0.1:${port}`)
      .getManifest('nope')
      .catch((x: unknown) => x as RegistryError);
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as RegistryError).status).toBe(404);
    expect((e as RegistryError).registryCode).toBe('MANIFEST_UNKNOWN');
    expect((e as Error).message).toMatch(/manifest 127.0.0.1:\d+\/test\/img:nope: not found .*MANIFEST_UNKNOWN: manifest unknown/);
    expect(log.filter((l) => l.url.includes('manifests'))).toHaveLength(1);
  });
});

describe('retries', () => {
  it('retries 5xx and 429 (with Retry-After), then succeeds', async () => {
    let n = 0;
    const { port, log } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      n++;
      if (n === 1) return res.writeHead(503).end('busy');
      if (n === 2) return res.writeHead(429, { 'Retry-After': '0' }).end();
      res.writeHead(200, { 'Content-Type': MediaType.OciManifest }).end(manifest);
    });
    const got = await client(`127.0.0.1:${port}`).getManifest('latest');
    expect(got.digest).toBe(sha(manifest));
    expect(log.filter((l) => l.url.includes('manifests'))).toHaveLength(3);
  });

  it('retries a connection reset', async () => {
    let n = 0;
    const { port } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      if (++n === 1) return req.socket.destroy();
      res.writeHead(200, { 'Content-Type': MediaType.OciManifest }).end(manifest);
    });
    expect((await client(`127.0.0.1:${port}`).getManifest('latest')).digest).toBe(sha(manifest));
    expect(n).toBe(2);
  });

  it('gives up after the configured retries with the last status', async () => {
    const { port, log } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      res.writeHead(502).end();
    });
    await expect(client(`127.0.0.1:${port}`, 'test/img', { retries: 2 }).getManifest('latest')).rejects.toThrow(/answered 502/);
    expect(log.filter((l) => l.url.includes('manifests'))).toHaveLength(3);
  });

  it('does not retry 4xx', async () => {
    const { port, log } = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      res.writeHead(400).end();
    });
    await expect(client(`127.0.0.1:${port}`).getManifest('latest')).rejects.toThrow(/answered 400/);
    expect(log.filter((l) => l.url.includes('manifests'))).toHaveLength(1);
  });
});

describe('auth and redirects', () => {
  it('follows the Bearer challenge, caches the token, and never sends Authorization to the blob host', async () => {
    const blob = Buffer.from('hello blob');
    const storage = await serve((req, res) => res.writeHead(200, { 'Content-Length': String(blob.length) }).end(blob));
    const tokenScopes: string[] = [];
    let reg!: { port: number; log: { method: string; url: string; auth?: string }[] };
    reg = await serve((req, res) => {
      const u = new URL(req.url!, 'http://x');
      if (u.pathname === '/token') {
        tokenScopes.push(u.searchParams.get('scope') ?? '');
        return res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: 'secret-token', expires_in: 300 }));
      }
      if (req.headers.authorization !== 'Bearer secret-token') {
        return res
          .writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://127.0.0.1:${reg.port}/token",service="fake",scope="repository:test/img:pull"` })
          .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      }
      if (u.pathname === '/v2/') return res.writeHead(200).end();
      // "localhost" is another host than "127.0.0.1" for the Authorization rule
      res.writeHead(307, { Location: `http://localhost:${storage.port}/data/${u.pathname.split('/').pop()}` }).end();
    });
    const c = client(`127.0.0.1:${reg.port}`);
    const digest = sha(blob);
    for (let i = 0; i < 2; i++) {
      const { stream, size } = await c.blobStream(digest);
      const chunks: Buffer[] = [];
      for await (const ch of stream) chunks.push(ch as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('hello blob');
      expect(size).toBe(blob.length);
    }
    expect(tokenScopes).toEqual(['repository:test/img:pull']); // fetched once, cached
    expect(storage.log).toHaveLength(2);
    expect(storage.log.every((l) => l.auth === undefined)).toBe(true);
    expect(reg.log.filter((l) => l.url.startsWith('/v2/test')).every((l) => l.auth === 'Bearer secret-token')).toBe(true);
    expect(c.auth.scheme).toBe('bearer');
  });

  it("never sends credentials to a realm named by a storage host's 401 (only the registry may challenge)", async () => {
    const evil = await serve((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"token":"x"}'));
    const storage = await serve((_req, res) =>
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://localhost:${evil.port}/token",service="x"` }).end(),
    );
    const reg = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      res.writeHead(307, { Location: `http://localhost:${storage.port}/data/blob` }).end();
    });
    const c = client(`127.0.0.1:${reg.port}`, 'test/img', { credentials: { username: 'alice', password: 's3cret' } });
    await expect(c.blobStream(sha(Buffer.from('x')))).rejects.toThrow(/storage host localhost:\d+ .*refused the request \(401\)/);
    expect(evil.log).toEqual([]);
  });

  it('a 401 with no credentials is a clear unauthorized error', async () => {
    const { port } = await serve((_req, res) => res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="Registry Realm"' }).end());
    const e = await client(`127.0.0.1:${port}`, 'test/img', { credentialNote: 'a note' })
      .getManifest('latest')
      .catch((x: unknown) => x as RegistryError);
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as RegistryError).status).toBe(401);
    expect((e as Error).message).toMatch(/unauthorized: 127.0.0.1:\d+: .*no credentials are stored for it; a note/);
  });

  it('Basic credentials that the registry refuses', async () => {
    const { port, log } = await serve((req, res) => {
      if (req.headers.authorization === `Basic ${Buffer.from('u:right').toString('base64')}`) {
        return res.writeHead(200, { 'Content-Type': MediaType.OciManifest }).end(manifest);
      }
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="r"' }).end();
    });
    await expect(client(`127.0.0.1:${port}`, 'test/img', { credentials: { username: 'u', password: 'wrong' } }).getManifest('latest')).rejects.toThrow(
      /stored credentials were refused/,
    );
    const n = log.length;
    expect((await client(`127.0.0.1:${port}`, 'test/img', { credentials: { username: 'u', password: 'right' } }).getManifest('latest')).digest).toBe(
      sha(manifest),
    );
    expect(log.length - n).toBe(2); // ping (learns Basic) + one authorised GET
  });
});
