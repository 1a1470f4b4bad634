import { describe, expect, it } from 'vitest';
import { resolveExecUser } from '../../../src/engine/exec-user.js';

const PASSWD =
  'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n1000:x:2000:2000:digits:/home/d:/bin/sh\nbroken line\nalice:x:1001:1001::/home/alice:/bin/sh\n';
const GROUP = 'root:x:0:\nwww:x:33:\nstaff:x:50:alice,www\naudio:x:29:alice\n';

describe('resolveExecUser (docker/podman USER semantics)', () => {
  it('names, ids and both parts', () => {
    expect(resolveExecUser('', PASSWD, GROUP)).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: '/root' });
    expect(resolveExecUser('alice', PASSWD, GROUP)).toEqual({ uid: 1001, gid: 1001, additionalGids: [1001, 50, 29], home: '/home/alice' });
    expect(resolveExecUser('www:staff', PASSWD, GROUP)).toEqual({ uid: 33, gid: 50, additionalGids: [50], home: '/var/www' });
    expect(resolveExecUser('33:7', PASSWD, GROUP)).toEqual({ uid: 33, gid: 7, additionalGids: [7], home: '/var/www' });
    expect(resolveExecUser('4242', PASSWD, GROUP)).toEqual({ uid: 4242, gid: 0, additionalGids: [0], home: '/' });
    expect(resolveExecUser('alice', PASSWD, GROUP, ['www', '99'])).toMatchObject({ additionalGids: [1001, 50, 29, 33, 99] });
  });

  it('CVE-2026-46680: an all-digit user is an id, never the passwd name "1000"', () => {
    expect(resolveExecUser('1000', PASSWD, GROUP)).toMatchObject({ uid: 1000, gid: 0 });
  });

  it('CVE-2024-40635: ids out of uint32 range (or (uid_t)-1) are refused, not wrapped to 0', () => {
    expect(() => resolveExecUser('4294967295', PASSWD, GROUP)).toThrow(/out of range/);
    expect(() => resolveExecUser('0:99999999999', PASSWD, GROUP)).toThrow(/out of range/);
    expect(resolveExecUser('4294967294', PASSWD, GROUP).uid).toBe(4294967294);
  });

  it('a missing name, file or empty group is an error naming it', () => {
    expect(() => resolveExecUser('bob', PASSWD, GROUP)).toThrow('no user "bob" in the image\'s /etc/passwd');
    expect(() => resolveExecUser('bob', null, null)).toThrow('no /etc/passwd in the image');
    expect(() => resolveExecUser('www:nogroup', PASSWD, GROUP)).toThrow('no group "nogroup"');
    expect(() => resolveExecUser('www:', PASSWD, GROUP)).toThrow('empty');
    expect(() => resolveExecUser('a:b:c', PASSWD, GROUP)).toThrow('more than one');
    expect(resolveExecUser('0', null, null)).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: '/' });
  });
});
