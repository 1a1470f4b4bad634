// The network façade (src/network/manager.ts) on the real kernel with stand-in plugins: the
// namespace it makes (a bind mount under the run root, lo up), and what it keeps when a
// plugin's DEL fails (the namespace and the attachment, so a retry can still undo everything)
// and removes once the DEL goes through. The plugins are small scripts in a temp dir: they
// print a result on ADD, and a DEL fails while a flag file exists. No interface, route or
// rule is made on the host.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Networking } from '../../src/network/manager.js';
import { NetworkStore } from '../../src/network/store.js';
import { tempDir } from '../helpers/tmp-dir.js';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces, mounts)' : !existsSync('/bin/bash') ? '/bin/bash is missing' : null;
if (skip) console.warn(`[network-manager.test] SKIPPED: ${skip}`);

const PLUGINS = ['bridge', 'portmap', 'firewall', 'tuning', 'dnsname'];

function plugin(failFlag: string): string {
  return `#!/bin/bash
cat >/dev/null
case "$CNI_COMMAND" in
  ADD) echo '{"cniVersion":"1.0.0","interfaces":[{"name":"'"$CNI_IFNAME"'","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"10.250.0.2/24","gateway":"10.250.0.1","interface":0}]}' ;;
  DEL) if [ -e ${failFlag} ]; then echo '{"code":11,"msg":"stand-in DEL fails"}'; exit 1; fi ;;
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
`;
}

const isMounted = (p: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === p);

describe.skipIf(!!skip)('the network façade with stand-in plugins', () => {
  let dir: string;
  let nets: Networking;
  const failFlag = () => path.join(dir, 'fail-del');
  const id = 'a'.repeat(64);

  beforeAll(() => {
    dir = tempDir('tsrun-netmgr-');
    const plugins = path.join(dir, 'plugins');
    mkdirSync(plugins);
    for (const p of PLUGINS) {
      writeFileSync(path.join(plugins, p), plugin(path.join(dir, 'fail-del')));
      chmodSync(path.join(plugins, p), 0o755);
    }
    const store = new NetworkStore(path.join(dir, 'root'), path.join(dir, 'run'), path.join(dir, 'ipam'));
    nets = new Networking(store, path.join(dir, 'run'), [plugins]);
    store.create({ name: `mgr${process.pid}`, subnet: '10.250.0.0/24', bridge: `tsmgr${process.pid.toString(36)}`.slice(0, 15) }, []);
  });
  afterAll(() => {
    if (!dir) return;
    rmSync(failFlag(), { force: true });
    const ns = nets.netnsPath(id);
    if (isMounted(ns)) spawnSync('umount', ['-l', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('setUp makes a bind-mounted namespace with lo up; a failed DEL keeps it and the attachment; the retry removes both', async () => {
    const net = `mgr${process.pid}`;
    const atts = await nets.setUp({ id, name: 'c1', networks: [{ name: net, aliases: [] }], ports: [] });
    expect(atts.map((a) => [a.network, a.ifName, a.result.ips?.[0]?.address])).toEqual([[net, 'eth0', '10.250.0.2/24']]);
    const ns = nets.netnsPath(id);
    expect(isMounted(ns)).toBe(true);
    const lo = spawnSync('nsenter', [`--net=${ns}`, 'ip', '-o', 'link', 'show', 'lo'], { encoding: 'utf8' });
    expect(lo.stdout).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    expect(nets.users(net)).toEqual([id]);

    writeFileSync(failFlag(), '');
    await expect(nets.tearDown(id)).rejects.toThrow(/stand-in DEL fails/);
    expect(isMounted(ns)).toBe(true);
    expect(nets.attachments(id)).toHaveLength(1);
    await expect(nets.removeNetwork(net)).rejects.toThrow(/in use by container\(s\) aaaaaaaaaaaa/);

    rmSync(failFlag());
    await nets.tearDown(id);
    expect(existsSync(ns)).toBe(false);
    expect(nets.attachments(id)).toEqual([]);
    expect(readdirSync(nets.store.cacheDir)).toEqual([]);
    await nets.tearDown(id); // idempotent: nothing left to undo
    await nets.removeNetwork(net);
    expect(nets.store.get(net)).toBeUndefined();
  });

  it('a failing ADD is undone at once: no namespace, no attachment', async () => {
    rmSync(failFlag(), { force: true });
    const bad = path.join(dir, 'plugins', 'tuning');
    writeFileSync(bad, '#!/bin/bash\ncat >/dev/null\n[ "$CNI_COMMAND" = ADD ] && { echo \'{"code":7,"msg":"stand-in ADD fails"}\'; exit 1; }\nexit 0\n');
    chmodSync(bad, 0o755);
    const net = `mgrb${process.pid}`;
    nets.store.create({ name: net, subnet: '10.250.1.0/24', bridge: `tsmgb${process.pid.toString(36)}`.slice(0, 15) }, []);
    const other = 'b'.repeat(64);
    await expect(nets.setUp({ id: other, name: 'c2', networks: [{ name: net, aliases: [] }], ports: [] })).rejects.toThrow(/stand-in ADD fails/);
    expect(existsSync(nets.netnsPath(other))).toBe(false);
    expect(nets.attachments(other)).toEqual([]);
    expect(nets.users(net)).toEqual([]);
    await nets.removeNetwork(net);
  });
});
