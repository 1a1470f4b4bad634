// WWW-Authenticate parsing and the token cache.
import { describe, expect, it } from 'vitest';
import { basicAuthorization, parseWwwAuthenticate, RegistryAuth, type TokenTransport } from '../../../src/image/registry/auth.js';
import { TsrunError } from '../../../src/util/errors.js';

describe('parseWwwAuthenticate', () => {
  it('parses Docker Hub style Bearer challenges', () => {
    expect(
      parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"'),
    ).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' } },
    ]);
  });

  it('parses errors and escapes inside quoted strings', () => {
    const [c] = parseWwwAuthenticate(
      'Bearer realm="http://127.0.0.1:1/token",service="svc",scope="repository:a/b:pull",error="insufficient_scope",error_description="say \\"hi\\", ok"',
    );
    expect(c!.params.error).toBe('insufficient_scope');
    expect(c!.params.error_description).toBe('say "hi", ok');
    expect(c!.params.scope).toBe('repository:a/b:pull');
  });

  it('parses Basic and several challenges in one header', () => {
    expect(parseWwwAuthenticate('Basic realm="Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    const cs = parseWwwAuthenticate('Basic realm="a", Bearer realm="https://t/x", service=reg');
    expect(cs.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(cs[1]!.params).toEqual({ realm: 'https://t/x', service: 'reg' });
  });

  it('is case-insensitive for scheme and parameter names, tolerates spaces', () => {
    const [c] = parseWwwAuthenticate('BEARER  Realm = "https://x/t" ,  Service="s"');
    expect(c).toEqual({ scheme: 'bearer', params: { realm: 'https://x/t', service: 's' } });
  });

  it('keeps token68 credentials and bare schemes', () => {
    expect(parseWwwAuthenticate('Negotiate abc123==')).toEqual([{ scheme: 'negotiate', params: { token68: 'abc123==' } }]);
    expect(parseWwwAuthenticate('Negotiate')).toEqual([{ scheme: 'negotiate', params: {} }]);
  });

  it('drops malformed parameters rather than guessing', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    const [c] = parseWwwAuthenticate('Bearer realm="unterminated');
    expect(c!.params.realm).toBeUndefined();
  });
});

describe('RegistryAuth', () => {
  function transport(
    log: URL[],
    reply: (u: URL) => { status: number; body: unknown } = () => ({ status: 200, body: { token: 'T1', expires_in: 300 } }),
  ): TokenTransport {
    return async (url) => {
      log.push(url);
      const r = reply(url);
      return { status: r.status, headers: {}, body: Buffer.from(JSON.stringify(r.body)) };
    };
  }

  it('fetches a token per scope once, shares concurrent fetches and caches until expiry', async () => {
    const log: URL[] = [];
    let now = 1_000_000;
    const auth = new RegistryAuth({ registry: 'r', transport: transport(log), allowHttp: () => true, now: () => now });
    expect(await auth.authorization('repository:a:pull')).toBeUndefined(); // no challenge yet
    auth.learn(parseWwwAuthenticate('Bearer realm="http://127.0.0.1:1/token",service="svc"'));
    const [h1, h2] = await Promise.all([auth.authorization('repository:a:pull'), auth.authorization('repository:a:pull')]);
    expect(h1).toBe('Bearer T1');
    expect(h2).toBe('Bearer T1');
    expect(log).toHaveLength(1);
    expect(log[0]!.searchParams.get('scope')).toBe('repository:a:pull');
    expect(log[0]!.searchParams.get('service')).toBe('svc');
    await auth.authorization('repository:b:pull');
    expect(log).toHaveLength(2);
    now += 280_000; // within 300 s minus slack
    await auth.authorization('repository:a:pull');
    expect(log).toHaveLength(2);
    now += 20_000;
    await auth.authorization('repository:a:pull');
    expect(log).toHaveLength(3);
  });

  it('sends Basic credentials to the token server when it has them, never to a plain-http remote realm', async () => {
    const log: URL[] = [];
    const seen: Record<string, string>[] = [];
    const t: TokenTransport = async (url, init) => {
      log.push(url);
      seen.push(init.headers);
      return { status: 200, headers: {}, body: Buffer.from('{"access_token":"AT"}') };
    };
    const auth = new RegistryAuth({ registry: 'r', credentials: { username: 'u', password: 'p' }, transport: t, allowHttp: (_h, hn) => hn === '127.0.0.1' });
    auth.learn(parseWwwAuthenticate('Bearer realm="http://127.0.0.1:9/token"'));
    expect(await auth.authorization('s')).toBe('Bearer AT');
    expect(seen[0]!.Authorization).toBe(basicAuthorization({ username: 'u', password: 'p' }));
    expect(log[0]!.searchParams.get('account')).toBe('u');

    const remote = new RegistryAuth({ registry: 'r', credentials: { username: 'u', password: 'p' }, transport: t, allowHttp: (_h, hn) => hn === '127.0.0.1' });
    remote.learn(parseWwwAuthenticate('Bearer realm="http://auth.example.com/token"'));
    await expect(remote.authorization('s')).rejects.toThrow(/refusing to fetch a token .* over http/);
    expect(log).toHaveLength(1); // not contacted
  });

  it('uses an identity token with the OAuth2 refresh_token grant', async () => {
    let body = '';
    const t: TokenTransport = async (_url, init) => {
      body = init.body ?? '';
      expect(init.method).toBe('POST');
      return { status: 200, headers: {}, body: Buffer.from('{"access_token":"OA"}') };
    };
    const auth = new RegistryAuth({ registry: 'r', credentials: { username: '', password: '', identityToken: 'RT' }, transport: t, allowHttp: () => false });
    auth.learn(parseWwwAuthenticate('Bearer realm="https://auth.example/token",service="s"'));
    expect(await auth.authorization('repository:x:pull')).toBe('Bearer OA');
    expect(new URLSearchParams(body).get('grant_type')).toBe('refresh_token');
    expect(new URLSearchParams(body).get('refresh_token')).toBe('RT');
    expect(new URLSearchParams(body).get('scope')).toBe('repository:x:pull');
  });

  it('Basic challenge: the credentials, or a clear error without them', async () => {
    const t = transport([]);
    const withCreds = new RegistryAuth({ registry: 'reg:5000', credentials: { username: 'u', password: 'p:w' }, transport: t, allowHttp: () => true });
    withCreds.learn(parseWwwAuthenticate('Basic realm="x"'));
    expect(await withCreds.authorization('s')).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`);
    const without = new RegistryAuth({ registry: 'reg:5000', transport: t, allowHttp: () => true });
    without.learn(parseWwwAuthenticate('Basic realm="x"'));
    const e = await without.authorization('s').catch((x: unknown) => x as TsrunError);
    expect(e).toBeInstanceOf(TsrunError);
    expect((e as TsrunError).message).toMatch(/unauthorized: reg:5000: .*no credentials/);
    expect((e as TsrunError).hint).toMatch(/tsrun login reg:5000/);
  });

  it('a token server 401 is an unauthorized error, a 500 says so', async () => {
    const a = new RegistryAuth({
      registry: 'r',
      transport: transport([], () => ({ status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'bad creds' }] } })),
      allowHttp: () => true,
    });
    a.learn(parseWwwAuthenticate('Bearer realm="http://127.0.0.1/t"'));
    await expect(a.authorization('s')).rejects.toThrow(/unauthorized: r: the token server .* answered 401 \(UNAUTHORIZED: bad creds\)/);
    const b = new RegistryAuth({ registry: 'r', transport: transport([], () => ({ status: 500, body: 'x' })), allowHttp: () => true });
    b.learn(parseWwwAuthenticate('Bearer realm="http://127.0.0.1/t"'));
    await expect(b.authorization('s')).rejects.toThrow(/answered 500/);
    const c = new RegistryAuth({ registry: 'r', transport: transport([], () => ({ status: 200, body: { nothing: 1 } })), allowHttp: () => true });
    c.learn(parseWwwAuthenticate('Bearer realm="http://127.0.0.1/t"'));
    await expect(c.authorization('s')).rejects.toThrow(/no usable token/);
  });
});
