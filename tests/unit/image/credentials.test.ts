// Credential lookup: tsrun's auth.json first, then ~/.docker/config.json (tmp HOME).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  dockerConfigPath,
  lookupCredentials,
  normalizeRegistryKey,
  removeCredentials,
  saveCredentials,
  tsrunAuthPath,
} from '../../../src/image/registry/credentials.js';
import { TsrunError } from '../../../src/util/errors.js';

let dir: string;
let home: string;
let root: string;
const env = {} as NodeJS.ProcessEnv;
const b64 = (s: string) => Buffer.from(s).toString('base64');

function dockerConfig(doc: unknown): void {
  mkdirSync(join(home, '.docker'), { recursive: true });
  writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify(doc));
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsrun-creds-'));
  home = join(dir, 'home');
  root = join(dir, 'images');
  mkdirSync(home);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('normalizeRegistryKey', () => {
  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['http://localhost:5000', 'localhost:5000'],
    ['https://ghcr.io/v2/', 'ghcr.io'],
    ['127.0.0.1:5000', '127.0.0.1:5000'],
    ['Registry.Example.COM', 'registry.example.com'],
  ])('%s -> %s', (k, want) => expect(normalizeRegistryKey(k)).toBe(want));
});

describe('lookupCredentials', () => {
  it('finds nothing without files', () => {
    expect(lookupCredentials('127.0.0.1:5000', { imageRoot: root, home, env })).toEqual({});
  });

  it("reads docker's base64 auth, under any spelling of the key", () => {
    dockerConfig({ auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pw') }, 'localhost:5000': { auth: b64('lu:lp') } } });
    const hub = lookupCredentials('docker.io', { imageRoot: root, home, env });
    expect(hub.credentials).toEqual({ username: 'hubuser', password: 'hub:pw' });
    expect(hub.source).toBe(join(home, '.docker', 'config.json'));
    expect(lookupCredentials('registry-1.docker.io', { imageRoot: root, home, env }).credentials?.username).toBe('hubuser');
    expect(lookupCredentials('localhost:5000', { imageRoot: root, home, env }).credentials).toEqual({ username: 'lu', password: 'lp' });
    expect(lookupCredentials('localhost:5001', { imageRoot: root, home, env }).credentials).toBeUndefined();
  });

  it('honours DOCKER_CONFIG', () => {
    const alt = join(dir, 'alt');
    mkdirSync(alt);
    writeFileSync(join(alt, 'config.json'), JSON.stringify({ auths: { 'r.example': { auth: b64('a:b') } } }));
    expect(dockerConfigPath({ home, env: { DOCKER_CONFIG: alt } })).toBe(join(alt, 'config.json'));
    expect(lookupCredentials('r.example', { imageRoot: root, home, env: { DOCKER_CONFIG: alt } }).credentials).toEqual({ username: 'a', password: 'b' });
  });

  it("prefers tsrun's auth.json over docker's", () => {
    dockerConfig({ auths: { 'r.example': { auth: b64('docker:one') } } });
    saveCredentials('r.example', { username: 'tsrun', password: 'two' }, { imageRoot: root });
    const got = lookupCredentials('r.example', { imageRoot: root, home, env });
    expect(got.credentials).toEqual({ username: 'tsrun', password: 'two' });
    expect(got.source).toBe(tsrunAuthPath(root));
  });

  it('reads identity tokens and username/password fields', () => {
    dockerConfig({ auths: { 'a.example': { username: 'x', password: 'y' }, 'b.example': { auth: b64('u:'), identitytoken: 'RT' } } });
    expect(lookupCredentials('a.example', { imageRoot: root, home, env }).credentials).toEqual({ username: 'x', password: 'y' });
    expect(lookupCredentials('b.example', { imageRoot: root, home, env }).credentials).toEqual({ username: 'u', password: '', identityToken: 'RT' });
  });

  it('does not run credential helpers, and says so', () => {
    dockerConfig({ auths: { 'r.example': {} }, credsStore: 'desktop' });
    const got = lookupCredentials('r.example', { imageRoot: root, home, env });
    expect(got.credentials).toBeUndefined();
    expect(got.note).toMatch(/docker-credential-desktop.*tsrun login r.example/);
    dockerConfig({ credHelpers: { 'gcr.io': 'gcloud' } });
    expect(lookupCredentials('gcr.io', { imageRoot: root, home, env }).note).toMatch(/docker-credential-gcloud/);
    expect(lookupCredentials('other.io', { imageRoot: root, home, env }).note).toBeUndefined();
  });

  it('reports a broken file clearly', () => {
    dockerConfig({});
    writeFileSync(join(home, '.docker', 'config.json'), '{not json');
    expect(() => lookupCredentials('x.io', { imageRoot: root, home, env })).toThrow(/not valid JSON/);
    dockerConfig({ auths: { 'x.io': { auth: b64('nocolon') } } });
    expect(() => lookupCredentials('x.io', { imageRoot: root, home, env })).toThrow(TsrunError);
  });
});

describe('login / logout', () => {
  it('writes auth.json 0600 (dir 0700), replaces and removes entries', () => {
    const path = saveCredentials('http://127.0.0.1:5000/', { username: 'u', password: 'p' }, { imageRoot: root });
    expect(path).toBe(join(root, 'auth.json'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(root).mode & 0o777).toBe(0o700);
    saveCredentials('127.0.0.1:5000', { username: 'u2', password: 'p2' }, { imageRoot: root });
    saveCredentials('other.example', { username: 'o', password: 'q' }, { imageRoot: root });
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Object.keys(doc.auths).sort()).toEqual(['127.0.0.1:5000', 'other.example']);
    expect(Buffer.from(doc.auths['127.0.0.1:5000']!.auth, 'base64').toString()).toBe('u2:p2');
    expect(removeCredentials('127.0.0.1:5000', { imageRoot: root })).toBe(true);
    expect(removeCredentials('127.0.0.1:5000', { imageRoot: root })).toBe(false);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(lookupCredentials('127.0.0.1:5000', { imageRoot: root, home, env }).credentials).toBeUndefined();
    expect(lookupCredentials('other.example', { imageRoot: root, home, env }).credentials?.username).toBe('o');
    expect(removeCredentials('other.example', { imageRoot: root })).toBe(true);
    expect(existsSync(path)).toBe(false); // nothing left: the file is gone
    expect(removeCredentials('other.example', { imageRoot: root })).toBe(false);
  });

  it('refuses a user name with a colon', () => {
    expect(() => saveCredentials('r', { username: 'a:b', password: 'c' }, { imageRoot: root })).toThrow(/cannot contain ":"/);
  });
});
