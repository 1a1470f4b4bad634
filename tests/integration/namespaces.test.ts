// Namespaces as the runtime-spec says (issue 10 item 2): an omitted type is inherited from
// the runtime, one with a path is joined, for every type. The container reports the inode
// of each of its namespaces (readlink /proc/self/ns/*) and the test compares them with the
// ones it expects. Only a config with no mount namespace at all is refused, with the reason.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show } from './helpers/bundle.js';

const skipReason = ociSkipReason() ?? (spawnSync('unshare', ['--version']).status === 0 ? null : 'util-linux unshare is missing');
if (skipReason) console.warn(`[namespaces.test] SKIPPED: ${skipReason}`);

const FILES = { pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', cgroup: 'cgroup', time: 'time', mount: 'mnt', user: 'user' } as const;
type NsType = keyof typeof FILES;
const PROBE = `for n in ${Object.values(FILES).join(' ')}; do echo "$n=$(readlink /proc/self/ns/$n)"; done`;

/** "net:[4026531840]" -> 4026531840 */
const inode = (link: string | undefined) => Number(/\[(\d+)\]/.exec(link ?? '')?.[1] ?? NaN);

function parse(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = inode(m[2]);
  }
  return out;
}

describe.skipIf(!!skipReason)('namespaces: inherited when omitted, joined when given a path', () => {
  let base: BaseBundle;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();
  let nsDir = '';
  let seq = 0;
  const newId = (what: string) => {
    const id = `ns-${what}-${process.pid}-${++seq}`;
    ids.add(id);
    return id;
  };

  beforeAll(() => {
    base = buildBaseBundle('tsrun-ns');
    // A private tmpfs to pin a mount namespace on (a persistent mount ns needs a non-shared parent).
    nsDir = path.join(base.tmp, 'pinned');
    mkdirSync(nsDir);
    const m = spawnSync('sh', ['-c', `mount -t tmpfs pinned ${nsDir} && mount --make-private ${nsDir} && touch ${nsDir}/mnt`], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`pin dir: ${m.stderr}`);
  });

  afterAll(async () => {
    if (!base) return;
    spawnSync('sh', ['-c', `umount ${nsDir}/mnt 2>/dev/null; umount ${nsDir}`]);
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  /** A detached holder container with new namespaces of the given types; its init pid and id. */
  async function holderWithId(types: NsType[], mutate: (s: any) => void = () => {}): Promise<{ pid: number; id: string }> {
    const dir = makeBundle(base, (s) => {
      s.process.args = ['/bin/sleep', '600'];
      s.linux.namespaces = types.map((type) => ({ type }));
      mutate(s);
    });
    const id = newId('holder');
    const r = await oci(root(), ['run', '-d', '--bundle', dir, id]);
    expect(r.code, show(r)).toBe(0);
    return { pid: JSON.parse((await oci(root(), ['state', id])).stdout).pid, id };
  }
  const holder = async (types: NsType[], mutate: (s: any) => void = () => {}) => (await holderWithId(types, mutate)).pid;

  async function probe(namespaces: { type: NsType; path?: string }[], mutate: (s: any) => void = () => {}) {
    const dir = makeBundle(base, (s) => {
      s.process.args = ['/bin/sh', '-c', PROBE];
      s.linux.namespaces = namespaces;
      if (!namespaces.some((n) => n.type === 'uts')) delete s.hostname;
      mutate(s);
    });
    const r = await oci(root(), ['run', '--bundle', dir, newId('probe')]);
    expect(r.code, show(r)).toBe(0);
    return parse(r.stdout);
  }

  const ownNs = (file: string) => inode(readlinkSync(`/proc/self/ns/${file}`));

  it('every omitted type (all but mount) is the runtime’s own', async () => {
    const ns = await probe([{ type: 'mount' }]);
    for (const file of ['pid', 'net', 'ipc', 'uts', 'cgroup', 'time', 'user']) expect(ns[file], file).toBe(ownNs(file));
    expect(ns.mnt, 'a new mount namespace').not.toBe(ownNs('mnt'));
  });

  it('every type joined by path: pid, network, ipc, uts, cgroup, time (another container’s) and mount (a pinned one)', async () => {
    const h = await holder(['pid', 'network', 'ipc', 'uts', 'cgroup', 'time', 'mount']);
    const pin = spawnSync('unshare', [`--mount=${nsDir}/mnt`, '--propagation', 'private', 'true'], { encoding: 'utf8' });
    expect(pin.status, pin.stderr).toBe(0);
    const joined: { type: NsType; path: string }[] = (['pid', 'network', 'ipc', 'uts', 'cgroup', 'time'] as NsType[]).map((type) => ({
      type,
      path: `/proc/${h}/ns/${FILES[type]}`,
    }));
    joined.push({ type: 'mount', path: `${nsDir}/mnt` });
    const ns = await probe(joined);
    for (const j of joined.filter((x) => x.type !== 'mount')) expect(ns[FILES[j.type]], j.type).toBe(inode(readlinkSync(j.path)));
    expect(ns.mnt, 'the pinned mount namespace').toBe(statSync(`${nsDir}/mnt`).ino);
  });

  it('a user namespace joined by path is the holder’s (and the container is its root)', async () => {
    const userns = (s: any) => {
      s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    };
    const h = await holder(['user', 'pid', 'mount', 'network', 'ipc', 'uts', 'cgroup'], userns);
    const ns = await probe(
      [
        { type: 'user', path: `/proc/${h}/ns/user` },
        { type: 'pid' },
        { type: 'mount' },
        { type: 'network' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'cgroup' },
      ],
      (s) => (s.process.args = ['/bin/sh', '-c', `${PROBE}; echo "map=$(cat /proc/self/uid_map)"`]),
    );
    expect(ns.user).toBe(inode(readlinkSync(`/proc/${h}/ns/user`)));
    expect(ns.user).not.toBe(ownNs('user'));
  });

  it('no mount namespace at all is refused with the reason, and nothing is left', async () => {
    const dir = makeBundle(base, (s) => {
      s.process.args = ['/bin/true'];
      s.linux.namespaces = [{ type: 'pid' }];
      delete s.hostname;
    });
    const id = newId('nomnt');
    const r = await oci(root(), ['run', '--bundle', dir, id]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('must include a mount namespace (new, or joined by path)');
  });

  it('hostname in a uts namespace joined by path is set there', async () => {
    const { pid: h, id: holderId } = await holderWithId(['pid', 'uts', 'mount']);
    const dir = makeBundle(base, (s) => {
      s.hostname = 'joined-uts-name';
      s.process.args = ['/bin/hostname'];
      s.linux.namespaces = [{ type: 'mount' }, { type: 'uts', path: `/proc/${h}/ns/uts` }];
    });
    const r = await oci(root(), ['run', '--bundle', dir, newId('hostname')]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim()).toBe('joined-uts-name');
    // The holder shares it.
    const e = await oci(root(), ['exec', holderId, '/bin/hostname']);
    expect(e.stdout.trim(), show(e)).toBe('joined-uts-name');
  });
});
