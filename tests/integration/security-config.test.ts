// Config settings that must never fail open (issue 9, items 3 and 4): sysctls are checked
// against the namespaces actually in force (a namespace joined by path may be the runtime's
// own, i.e. the host's), and an LSM label the host cannot apply is an error, as with runc.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lsmSupport } from '../../src/linux/lsm.js';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show } from './helpers/bundle.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[security-config.test] SKIPPED: ${skipReason}`);

describe.skipIf(!!skipReason)('sysctls and LSM labels never fail open', () => {
  let base: BaseBundle;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();
  let seq = 0;
  const newId = (what: string) => {
    const id = `seccfg-${what}-${process.pid}-${++seq}`;
    ids.add(id);
    return id;
  };

  beforeAll(() => {
    base = buildBaseBundle('tsrun-seccfg');
  });

  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  /** Joins `type` by path to the runtime's own namespace (tsrun-oci runs in ours). */
  const joinOwn = (spec: any, type: string, file: string) => {
    spec.linux.namespaces = spec.linux.namespaces.filter((n: any) => n.type !== type);
    spec.linux.namespaces.push({ type, path: `/proc/self/ns/${file}` });
  };

  it('sysctl in the host namespace (issue 9 item 3): a net.* sysctl is refused in the host network namespace joined by path, and the host value is unchanged', async () => {
    const file = '/proc/sys/net/ipv4/ip_local_reserved_ports';
    const before = readFileSync(file, 'utf8');
    const dir = makeBundle(base, (s) => {
      joinOwn(s, 'network', 'net');
      s.linux.sysctl = { 'net.ipv4.ip_local_reserved_ports': '40000' };
      s.process.args = ['/bin/true'];
    });
    const r = await oci(root(), ['run', '--bundle', dir, newId('net')]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('sysctl "net.ipv4.ip_local_reserved_ports" not allowed in host network namespace');
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('sysctl in the host namespace (issue 9 item 3): a uts sysctl is refused in the host uts namespace joined by path', async () => {
    const before = readFileSync('/proc/sys/kernel/domainname', 'utf8');
    const dir = makeBundle(base, (s) => {
      joinOwn(s, 'uts', 'uts');
      delete s.hostname; // a hostname needs a uts namespace of its own
      s.linux.sysctl = { 'kernel.domainname': 'pwned.example' };
      s.process.args = ['/bin/true'];
    });
    const r = await oci(root(), ['run', '--bundle', dir, newId('uts')]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('sysctl "kernel.domainname" not allowed in host uts namespace');
    expect(readFileSync('/proc/sys/kernel/domainname', 'utf8')).toBe(before);
  });

  it('kernel.hostname is refused: it conflicts with the OCI "hostname" field', async () => {
    const dir = makeBundle(base, (s) => {
      s.linux.sysctl = { 'kernel.hostname': 'other' };
      s.process.args = ['/bin/true'];
    });
    const r = await oci(root(), ['run', '--bundle', dir, newId('hostname')]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field');
  });

  it('control: the same net.* sysctl is written in a network namespace of its own', async () => {
    const dir = makeBundle(base, (s) => {
      s.linux.sysctl = { 'net.ipv4.ip_local_reserved_ports': '40000' };
      s.process.args = ['/bin/cat', '/proc/sys/net/ipv4/ip_local_reserved_ports'];
    });
    const r = await oci(root(), ['run', '--bundle', dir, newId('ownnet')]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim()).toBe('40000');
  });

  const lsm = lsmSupport();

  it.skipIf(lsm.apparmor)(
    'CVE-2019-16884 (LSM label silently not applied): process.apparmorProfile is refused where AppArmor is not enabled (create and exec)',
    async () => {
      const dir = makeBundle(base, (s) => {
        s.process.apparmorProfile = 'tsrun-test-profile';
        s.process.args = ['/bin/true'];
      });
      const r = await oci(root(), ['run', '--bundle', dir, newId('aa')]);
      expect(r.code, show(r)).toBe(1);
      expect(r.stderr).toContain('unable to apply apparmor profile "tsrun-test-profile": AppArmor is not enabled on this host');

      const plain = makeBundle(base, (s) => (s.process.args = ['/bin/sleep', '60']));
      const id = newId('aaexec');
      const c = await oci(root(), ['run', '-d', '--bundle', plain, id]);
      expect(c.code, show(c)).toBe(0);
      const proc = path.join(base.tmp, 'process-aa.json');
      writeFileSync(
        proc,
        JSON.stringify({ args: ['/bin/true'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'], apparmorProfile: 'tsrun-test-profile' }),
      );
      const e = await oci(root(), ['exec', '--process', proc, id]);
      expect(e.code, show(e)).not.toBe(0);
      expect(e.stderr).toContain('AppArmor is not enabled on this host');
    },
  );

  it.skipIf(lsm.selinux)(
    'CVE-2019-16884 (LSM label silently not applied): process.selinuxLabel and linux.mountLabel are refused where SELinux is off',
    async () => {
      const label = 'system_u:system_r:container_t:s0:c1,c2';
      const dir = makeBundle(base, (s) => {
        s.process.selinuxLabel = label;
        s.process.args = ['/bin/true'];
      });
      const r = await oci(root(), ['run', '--bundle', dir, newId('se')]);
      expect(r.code, show(r)).toBe(1);
      expect(r.stderr).toContain(`selinux label "${label}" is specified in config, but SELinux is disabled or not supported on this host`);

      const dir2 = makeBundle(base, (s) => {
        s.linux.mountLabel = 'system_u:object_r:container_file_t:s0:c1,c2';
        s.process.args = ['/bin/true'];
      });
      const r2 = await oci(root(), ['run', '--bundle', dir2, newId('semount')]);
      expect(r2.code, show(r2)).toBe(1);
      expect(r2.stderr).toContain('linux.mountLabel');
    },
  );
});
