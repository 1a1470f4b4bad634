// Reference normalisation, against tables ported from distribution/reference's
// normalize_test.go and reference_test.go (ParseNormalizedNamed semantics).
import { describe, expect, it } from 'vitest';
import { isValidDomain, parseReference, withDigest, withTag } from '../../../src/image/reference.js';
import { TsrunError } from '../../../src/util/errors.js';

const D = 'sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff';
const D2 = 'sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';

describe('parseReference: the brief examples', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest', 'registry-1.docker.io'],
    ['user/app', 'docker.io/user/app:latest', 'user/app:latest', 'registry-1.docker.io'],
    ['ghcr.io/o/r:tag', 'ghcr.io/o/r:tag', 'ghcr.io/o/r:tag', 'ghcr.io'],
    ['localhost:5000/x', 'localhost:5000/x:latest', 'localhost:5000/x:latest', 'localhost:5000'],
    [`127.0.0.1:5000/x@${D}`, `127.0.0.1:5000/x@${D}`, `127.0.0.1:5000/x@${D}`, '127.0.0.1:5000'],
    [`busybox:latest@${D2}`, `docker.io/library/busybox:latest@${D2}`, `busybox:latest@${D2}`, 'registry-1.docker.io'],
    ['localhost/x', 'localhost/x:latest', 'localhost/x:latest', 'localhost'],
    ['[::1]:5000/x:1', '[::1]:5000/x:1', '[::1]:5000/x:1', '[::1]:5000'],
  ])('%s', (input, canonical, familiar, host) => {
    const r = parseReference(input);
    expect(r.canonical).toBe(canonical);
    expect(r.familiar).toBe(familiar);
    expect(r.registryHost).toBe(host);
  });

  it('splits the parts, and asks for the digest when there is one', () => {
    const r = parseReference(`busybox:1.36@${D2}`);
    expect(r).toMatchObject({ domain: 'docker.io', path: 'library/busybox', name: 'docker.io/library/busybox', tag: '1.36', digest: D2, manifestRef: D2 });
    const t = parseReference('busybox');
    expect(t.tag).toBe('latest');
    expect(t.digest).toBeUndefined();
    expect(t.manifestRef).toBe('latest');
    const d = parseReference(`busybox@${D2}`);
    expect(d.tag).toBeUndefined();
    expect(d.manifestRef).toBe(D2);
  });
});

// normalize_test.go TestValidateReferenceName
describe('TestValidateReferenceName', () => {
  it.each([
    'docker/docker',
    'library/debian',
    'debian',
    'docker.io/docker/docker',
    'docker.io/library/debian',
    'docker.io/debian',
    'index.docker.io/docker/docker',
    'index.docker.io/library/debian',
    'index.docker.io/debian',
    '127.0.0.1:5000/docker/docker',
    '127.0.0.1:5000/library/debian',
    '127.0.0.1:5000/debian',
    '192.168.0.1',
    '192.168.0.1:80',
    '192.168.0.1:8/debian',
    '192.168.0.2:25000/debian',
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    '[fc00::1]:5000/docker',
    '[fc00::1]:5000/docker/docker',
    '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    'docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    'Docker/docker',
    'DOCKER/docker',
  ])('valid: %s', (name) => {
    expect(() => parseReference(name)).not.toThrow();
  });

  it.each([
    'https://github.com/docker/docker',
    'docker/Docker',
    '-docker',
    '-docker/docker',
    '-docker.io/docker/docker',
    'docker///docker',
    'docker.io/docker/Docker',
    'docker.io/docker///docker',
    '[fc00::1]',
    '[fc00::1]:5000',
    'fc00::1:5000/debian',
    '[fe80::1%eth0]:5000/debian',
    '[2001:db8:3:4::192.0.2.33]:5000/debian',
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
  ])('invalid: %s', (name) => {
    expect(() => parseReference(name)).toThrow(TsrunError);
  });
});

// normalize_test.go TestValidateRemoteName
describe('TestValidateRemoteName', () => {
  it.each([
    'docker/docker',
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    'docker-rules/docker',
    'docker---rules/docker',
    'doc/docker',
    'd/docker',
    'jess/t',
    'dock__er/docker',
  ])('valid: %s', (name) => expect(() => parseReference(name)).not.toThrow());
  it.each([
    'docker/Docker',
    'docker///docker',
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    '-docker/docker',
    'docker-/docker',
    '-docker-/docker',
    '____/____',
    '_docker/_docker',
    'dock..er/docker',
    'dock_.er/docker',
    'dock-.er/docker',
    'docker/',
    `${'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_'.repeat(4)}/docker`,
  ])('invalid: %s', (name) => expect(() => parseReference(name)).toThrow(TsrunError));
});

// normalize_test.go TestParseRepositoryInfo: [remote path, familiar, full name, ambiguous name, domain]
describe('TestParseRepositoryInfo', () => {
  const table: [string, string, string, string, string][] = [
    ['fooo/bar', 'fooo/bar', 'docker.io/fooo/bar', 'index.docker.io/fooo/bar', 'docker.io'],
    ['library/ubuntu', 'ubuntu', 'docker.io/library/ubuntu', 'library/ubuntu', 'docker.io'],
    ['nonlibrary/ubuntu', 'nonlibrary/ubuntu', 'docker.io/nonlibrary/ubuntu', '', 'docker.io'],
    ['other/library', 'other/library', 'docker.io/other/library', '', 'docker.io'],
    ['private/moonbase', '127.0.0.1:8000/private/moonbase', '127.0.0.1:8000/private/moonbase', '', '127.0.0.1:8000'],
    ['privatebase', '127.0.0.1:8000/privatebase', '127.0.0.1:8000/privatebase', '', '127.0.0.1:8000'],
    ['private/moonbase', 'example.com/private/moonbase', 'example.com/private/moonbase', '', 'example.com'],
    ['privatebase', 'example.com/privatebase', 'example.com/privatebase', '', 'example.com'],
    ['private/moonbase', 'example.com:8000/private/moonbase', 'example.com:8000/private/moonbase', '', 'example.com:8000'],
    ['privatebasee', 'example.com:8000/privatebasee', 'example.com:8000/privatebasee', '', 'example.com:8000'],
    ['library/ubuntu-12.04-base', 'ubuntu-12.04-base', 'docker.io/library/ubuntu-12.04-base', 'index.docker.io/library/ubuntu-12.04-base', 'docker.io'],
    ['library/foo', 'foo', 'docker.io/library/foo', 'docker.io/foo', 'docker.io'],
    ['library/foo/bar', 'library/foo/bar', 'docker.io/library/foo/bar', '', 'docker.io'],
    ['store/foo/bar', 'store/foo/bar', 'docker.io/store/foo/bar', '', 'docker.io'],
    ['bar', 'Foo/bar', 'Foo/bar', '', 'Foo'],
    ['bar', 'FOO/bar', 'FOO/bar', '', 'FOO'],
  ];
  for (const [remote, familiar, full, ambiguous, domain] of table) {
    for (const input of [familiar, full, ...(ambiguous ? [ambiguous] : [])]) {
      it(`${input}`, () => {
        const r = parseReference(input);
        expect(r.path).toBe(remote);
        expect(r.domain).toBe(domain);
        expect(r.name).toBe(full);
        expect(r.familiar).toBe(`${familiar}:latest`);
        expect(r.canonical).toBe(`${full}:latest`);
      });
    }
  }
});

// normalize_test.go TestParseReferenceWithTagAndDigest + TestParseAnyReference (named cases)
describe('tags and digests', () => {
  it('keeps both a tag and a digest', () => {
    const short = 'busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa';
    const r = parseReference(short);
    expect(r.canonical).toBe(`docker.io/library/${short}`);
    expect(r.familiar).toBe(short);
  });
  it.each([
    ['redis', 'docker.io/library/redis:latest'],
    ['redis:latest', 'docker.io/library/redis:latest'],
    ['docker.io/library/redis:latest', 'docker.io/library/redis:latest'],
    [`redis@${D2}`, `docker.io/library/redis@${D2}`],
    [`docker.io/library/redis@${D2}`, `docker.io/library/redis@${D2}`],
    ['dmcgowan/myapp', 'docker.io/dmcgowan/myapp:latest'],
    ['dmcgowan/myapp:latest', 'docker.io/dmcgowan/myapp:latest'],
    ['docker.io/mcgowan/myapp:latest', 'docker.io/mcgowan/myapp:latest'],
    [`dmcgowan/myapp@${D2}`, `docker.io/dmcgowan/myapp@${D2}`],
    [
      'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9',
      'docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest',
    ],
    ['dbcc1', 'docker.io/library/dbcc1:latest'],
  ])('%s -> %s', (input, canonical) => {
    expect(parseReference(input).canonical).toBe(canonical);
  });
});

// normalize_test.go TestNormalizedSplitHostname
describe('TestNormalizedSplitHostname', () => {
  it.each([
    ['test.com/foo', 'test.com', 'foo'],
    ['test_com/foo', 'docker.io', 'test_com/foo'],
    ['docker/migrator', 'docker.io', 'docker/migrator'],
    ['test.com:8080/foo', 'test.com:8080', 'foo'],
    ['test-com:8080/foo', 'test-com:8080', 'foo'],
    ['foo', 'docker.io', 'library/foo'],
    ['xn--n3h.com/foo', 'xn--n3h.com', 'foo'],
    ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'],
    ['docker.io/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo/bar', 'docker.io', 'library/foo/bar'],
  ])('%s', (input, domain, path) => {
    const r = parseReference(input);
    expect(r.domain).toBe(domain);
    expect(r.path).toBe(path);
  });
});

// reference_test.go TestReferenceParse, read through the normalising parser: inputs without a
// domain land on docker.io, the rest must keep their domain, tag and digest.
describe('TestReferenceParse (normalised)', () => {
  it.each([
    ['test_com', 'docker.io', 'library/test_com', 'latest', undefined],
    ['test.com:tag', 'docker.io', 'library/test.com', 'tag', undefined],
    ['test.com:5000', 'docker.io', 'library/test.com', '5000', undefined],
    ['test.com/repo:tag', 'test.com', 'repo', 'tag', undefined],
    ['test:5000/repo', 'test:5000', 'repo', 'latest', undefined],
    ['test:5000/repo:tag', 'test:5000', 'repo', 'tag', undefined],
    [`test:5000/repo@${D}`, 'test:5000', 'repo', undefined, D],
    [`test:5000/repo:tag@${D}`, 'test:5000', 'repo', 'tag', D],
    ['lowercase:Uppercase', 'docker.io', 'library/lowercase', 'Uppercase', undefined],
    [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, 'docker.io', `${'a/'.repeat(127)}a`, 'tag-puts-this-over-max', undefined],
    ['sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com', 'bar/baz/quux', 'latest', undefined],
    ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com', 'bar/baz/quux', 'some-long-tag', undefined],
    ['b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io', 'test.example.com/my-app', 'test.example.com', undefined],
    ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com', 'myimage', 'xn--n3h.com', undefined],
    ['foo_bar.com:8080', 'docker.io', 'library/foo_bar.com', '8080', undefined],
    ['foo/foo_bar.com:8080', 'docker.io', 'foo/foo_bar.com', '8080', undefined],
    ['192.168.1.1', 'docker.io', 'library/192.168.1.1', 'latest', undefined],
    ['192.168.1.1:tag', 'docker.io', 'library/192.168.1.1', 'tag', undefined],
    ['192.168.1.1:5000', 'docker.io', 'library/192.168.1.1', '5000', undefined],
    ['192.168.1.1/repo', '192.168.1.1', 'repo', 'latest', undefined],
    ['192.168.1.1:5000/repo', '192.168.1.1:5000', 'repo', 'latest', undefined],
    ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000', 'repo', '5050', undefined],
    ['[2001:db8::1]/repo', '[2001:db8::1]', 'repo', 'latest', undefined],
    ['[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]', 'repo', 'tag', undefined],
    ['[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', 'repo', 'latest', undefined],
    ['[2001:db8::1]:5000/repo:tag', '[2001:db8::1]:5000', 'repo', 'tag', undefined],
    [`[2001:db8::1]:5000/repo@${D}`, '[2001:db8::1]:5000', 'repo', undefined, D],
    [`[2001:db8::1]:5000/repo:tag@${D}`, '[2001:db8::1]:5000', 'repo', 'tag', D],
    ['[2001:db8::]:5000/repo', '[2001:db8::]:5000', 'repo', 'latest', undefined],
    ['[::1]:5000/repo', '[::1]:5000', 'repo', 'latest', undefined],
  ] as const)('%s', (input, domain, path, tag, digest) => {
    const r = parseReference(input);
    expect(r.domain).toBe(domain);
    expect(r.path).toBe(path);
    expect(r.tag).toBe(tag);
    expect(r.digest).toBe(digest);
  });

  it.each([
    ['', /at least one component/],
    [':justtag', /invalid reference format/],
    [`@${D}`, /invalid reference format/],
    ['repo@sha256:ffffffffffffffffffffffffffffffffff', /sha256 needs 64 hex digits/],
    [`validname@invaliddigest:${D.slice(7)}`, /unsupported digest algorithm "invaliddigest"/],
    ['Uppercase:tag', /must be lowercase/],
    ['test:5000/Uppercase/lowercase:tag', /must be lowercase/],
    [`${'a/'.repeat(128)}a:tag`, /not be more than 255 characters/],
    ['aa/asdf$$^/aa', /invalid reference format/],
    ['[2001:db8::1]', /invalid reference format/],
    ['[2001:db8::1]:5000', /invalid reference format/],
    ['[2001:db8::1]:tag', /invalid reference format/],
    ['[fe80::1%eth0]:5000/repo', /invalid reference format/],
    ['[fe80::1%@invalidzone]:5000/repo', /invalid reference format/],
    [D.slice(7), /64-byte hexadecimal/],
    [`repo@sha256:${'F'.repeat(64)}`, /lowercase hexadecimal/],
  ])('rejects %j', (input, msg) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TsrunError);
    expect((err as TsrunError).code).toBe('ERR_INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).toContain('invalid reference');
  });

  it('accepts sha512 digests in references, as go-digest does', () => {
    const d = `sha512:${'f'.repeat(128)}`;
    expect(parseReference(`xn--7o8h.com/myimage:xn--7o8h.com@${d}`)).toMatchObject({ domain: 'xn--7o8h.com', path: 'myimage', tag: 'xn--7o8h.com', digest: d });
  });

  it('refuses huge input quickly (no regex blow-up)', () => {
    const t0 = Date.now();
    expect(() => parseReference(`${'a'.repeat(4000)}!`)).toThrow(TsrunError);
    expect(() => parseReference(`${'a-'.repeat(2000)}.com/x!`)).toThrow(TsrunError);
    expect(() => parseReference('a'.repeat(5000))).toThrow(/longer than/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

describe('helpers', () => {
  it('withTag / withDigest', () => {
    const r = parseReference(`busybox@${D2}`);
    expect(withTag(r, 'v1').canonical).toBe('docker.io/library/busybox:v1');
    expect(withDigest(parseReference('busybox'), D2).canonical).toBe(`docker.io/library/busybox@${D2}`);
    expect(() => withTag(r, '-bad')).toThrow(/invalid tag/);
  });
  it('isValidDomain', () => {
    expect(isValidDomain('127.0.0.1:5000')).toBe(true);
    expect(isValidDomain('[::1]:5000')).toBe(true);
    expect(isValidDomain('registry.example.com')).toBe(true);
    expect(isValidDomain('https://x')).toBe(false);
    expect(isValidDomain('a/b')).toBe(false);
  });
  it('the result is frozen', () => {
    const r = parseReference('busybox');
    expect(Object.isFrozen(r)).toBe(true);
  });
});
