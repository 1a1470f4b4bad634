import { describe, expect, it } from 'vitest';
import { etcFiles } from '../../../src/engine/etc-files.js';

const hostResolvConf = 'search example.org\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.2\n';

describe('/etc files of a container', () => {
  it('network none: its hostname and name on 127.0.1.1, localhost, the host resolvers minus loopback ones', () => {
    const f = etcFiles({ hostname: 'abc123', name: 'web', network: 'none', hostHosts: '1.2.3.4 hostonly\n', hostResolvConf });
    expect(f['/etc/hostname']).toBe('abc123\n');
    expect(f['/etc/hosts']).toContain('127.0.0.1\tlocalhost');
    expect(f['/etc/hosts']).toContain('127.0.1.1\tabc123 web');
    expect(f['/etc/hosts']).not.toContain('hostonly');
    expect(f['/etc/resolv.conf']).toContain('nameserver 10.0.0.2');
    expect(f['/etc/resolv.conf']).toContain('search example.org');
    expect(f['/etc/resolv.conf']).not.toMatch(/nameserver (127|::1)/);
  });
  it('network host: the host’s hosts and resolv.conf as they are', () => {
    const f = etcFiles({ hostname: 'h', name: 'h', network: 'host', hostHosts: '1.2.3.4 hostonly\n', hostResolvConf });
    expect(f['/etc/hosts']).toBe('1.2.3.4 hostonly\n');
    expect(f['/etc/resolv.conf']).toBe(hostResolvConf);
  });
  it('a hostname equal to the name is listed once', () => {
    expect(etcFiles({ hostname: 'x', name: 'x', network: 'none' })['/etc/hosts']).toContain('127.0.1.1\tx\n');
  });
});
