// tsrun pull vs umoci unpack, on the same Debian image, tree by tree.
//
// The Debian 12 minbase image is built offline by images/debian/build.sh (debootstrap output
// cached under .cache/images/), pushed with skopeo (digests preserved) to a docker-registry this
// test starts on 127.0.0.1 (a tmp storage dir, a free port; killed by pid afterwards), pulled
// with tsrun's pullImage into a tmp ImageStore, and unpacked from the same OCI layout with
// `umoci unpack`. The unpacked trees are compared entry by entry: the file list, type, mode
// (with setuid/setgid/sticky), uid/gid, symlink targets, hardlink groups (same inode in one tree
// <=> same group in the other), contents (sha256) and device numbers. Directory mtimes are not
// compared (an unpacker may touch a directory after it set its mtime); differing ones are
// reported on the console, as are differing mtimes of other entries.
//
// The comparator proves it can fail: on synthetic trees (every kind of difference), and on the
// real trees after one file's content and one setuid bit are changed on the umoci side.
//
// Needs root, debootstrap, umoci, skopeo, docker-registry, and src/image/pull.ts; skipped with the
// reason otherwise. TSRUN_PULL_MODULE=/abs/path.ts swaps in another pullImage (for debugging the
// harness); TSRUN_PULL_OPTS='{"…":…}' replaces the options passed to it; TSRUN_IT_KEEP=1 keeps the
// tmp dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore } from '../../src/image/store/store.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KEEP = process.env.TSRUN_IT_KEEP === '1';
const TAG = 'bookworm';
const REPO_NAME = 'tsrun/debian';
const PULL_MODULE = process.env.TSRUN_PULL_MODULE ?? path.join(REPO, 'src/image/pull.ts');
// PullOptions: none needed (plain http is allowed to 127.0.0.1). Override with TSRUN_PULL_OPTS.
const PULL_OPTS: Record<string, unknown> = process.env.TSRUN_PULL_OPTS ? (JSON.parse(process.env.TSRUN_PULL_OPTS) as Record<string, unknown>) : {};
const UNPACK_MODULE = path.join(REPO, 'src/image/layer/unpack.ts');

const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

function skipReason(): string | null {
  if (!isRoot) return 'not root (debootstrap, umoci unpack and the layer unpack need it)';
  for (const t of ['debootstrap', 'umoci', 'skopeo', 'docker-registry']) {
    if (!has(t)) return `${t} is not installed (apt-get install ${t})`;
  }
  if (!fs.existsSync(PULL_MODULE)) return `${path.relative(REPO, PULL_MODULE)} does not exist yet (tsrun pull is not implemented)`;
  if (!process.env.TSRUN_PULL_MODULE && !fs.existsSync(UNPACK_MODULE)) return `${path.relative(REPO, UNPACK_MODULE)} does not exist yet (pull.ts needs it)`;
  return null;
}
const SKIP = skipReason();
if (SKIP) console.warn(`[umoci-compare.test] SKIPPED: ${SKIP}`);

// ---------------------------------------------------------------------------------------------
// the comparator

type Kind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

interface Entry {
  kind: Kind;
  /** permission bits with setuid/setgid/sticky (mode & 0o7777) */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  target?: string;
  /** "major:minor" for char and block devices */
  rdev?: string;
  ino: bigint;
  mtimeNs: bigint;
}

interface Tree {
  root: string;
  entries: Map<string, Entry>;
  /** path -> the sorted paths of its hardlink group (only for groups of two or more) */
  links: Map<string, string>;
}

function kindOf(st: fs.BigIntStats): Kind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function devString(rdev: bigint): string {
  // glibc's gnu_dev_major/minor
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function scanTree(root: string): Tree {
  const entries = new Map<string, Entry>();
  const byIno = new Map<bigint, string[]>();
  const walk = (rel: string) => {
    const abs = rel === '.' ? root : path.join(root, rel);
    const st = fs.lstatSync(abs, { bigint: true });
    const kind = kindOf(st);
    const e: Entry = {
      kind,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: kind === 'file' ? Number(st.size) : 0,
      ino: st.ino,
      mtimeNs: st.mtimeNs,
    };
    if (kind === 'file') e.sha256 = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    if (kind === 'symlink') e.target = fs.readlinkSync(abs);
    if (kind === 'char' || kind === 'block') e.rdev = devString(st.rdev);
    entries.set(rel, e);
    if (kind === 'dir') {
      for (const name of fs.readdirSync(abs).sort()) walk(rel === '.' ? name : `${rel}/${name}`);
    } else {
      const g = byIno.get(st.ino);
      if (g) g.push(rel);
      else byIno.set(st.ino, [rel]);
    }
  };
  walk('.');
  const links = new Map<string, string>();
  for (const g of byIno.values()) {
    if (g.length < 2) continue;
    const key = [...g].sort().join(' = ');
    for (const p of g) links.set(p, key);
  }
  return { root, entries, links };
}

interface Diff {
  path: string;
  what: 'only-in-a' | 'only-in-b' | 'type' | 'mode' | 'owner' | 'content' | 'symlink' | 'rdev' | 'hardlink';
  a?: string;
  b?: string;
}

interface Comparison {
  diffs: Diff[];
  /** directories whose mtimes differ (not a failure) */
  dirMtimes: string[];
  /** other entries whose mtimes differ (not compared either; reported) */
  otherMtimes: string[];
}

const oct = (m: number) => `0${m.toString(8).padStart(4, '0')}`;

function compareTrees(a: Tree, b: Tree): Comparison {
  const diffs: Diff[] = [];
  const dirMtimes: string[] = [];
  const otherMtimes: string[] = [];
  const paths = [...new Set([...a.entries.keys(), ...b.entries.keys()])].sort();
  for (const p of paths) {
    const x = a.entries.get(p);
    const y = b.entries.get(p);
    if (!x) {
      diffs.push({ path: p, what: 'only-in-b', b: y!.kind });
      continue;
    }
    if (!y) {
      diffs.push({ path: p, what: 'only-in-a', a: x.kind });
      continue;
    }
    if (x.kind !== y.kind) {
      diffs.push({ path: p, what: 'type', a: x.kind, b: y.kind });
      continue;
    }
    if (x.mode !== y.mode) diffs.push({ path: p, what: 'mode', a: oct(x.mode), b: oct(y.mode) });
    if (x.uid !== y.uid || x.gid !== y.gid) diffs.push({ path: p, what: 'owner', a: `${x.uid}:${x.gid}`, b: `${y.uid}:${y.gid}` });
    if (x.kind === 'file' && (x.sha256 !== y.sha256 || x.size !== y.size)) {
      diffs.push({ path: p, what: 'content', a: `${x.size} bytes sha256:${x.sha256}`, b: `${y.size} bytes sha256:${y.sha256}` });
    }
    if (x.kind === 'symlink' && x.target !== y.target) diffs.push({ path: p, what: 'symlink', a: x.target!, b: y.target! });
    if (x.rdev !== y.rdev) diffs.push({ path: p, what: 'rdev', a: x.rdev ?? '-', b: y.rdev ?? '-' });
    if (x.kind !== 'dir') {
      const la = a.links.get(p) ?? '(no other link)';
      const lb = b.links.get(p) ?? '(no other link)';
      if (la !== lb) diffs.push({ path: p, what: 'hardlink', a: la, b: lb });
    }
    if (x.mtimeNs !== y.mtimeNs) (x.kind === 'dir' ? dirMtimes : otherMtimes).push(p);
  }
  return { diffs, dirMtimes, otherMtimes };
}

function formatDiffs(c: Comparison, aName: string, bName: string, max = 40): string {
  const lines = c.diffs
    .slice(0, max)
    .map(
      (d) =>
        `  ${d.what.padEnd(9)} /${d.path === '.' ? '' : d.path}${d.a !== undefined ? `  ${aName}: ${d.a}` : ''}${d.b !== undefined ? `  ${bName}: ${d.b}` : ''}`,
    );
  if (c.diffs.length > max) lines.push(`  … and ${c.diffs.length - max} more`);
  return `${c.diffs.length} difference(s) between ${aName} and ${bName}:\n${lines.join('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// helpers

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 << 20 });
  const out = `${cmd} ${args.join(' ')}\n  -> status ${r.status}${r.signal ? ` signal ${r.signal}` : ''}${r.error ? ` error ${r.error.message}` : ''}\n  stdout: ${(r.stdout ?? '').slice(-2000)}\n  stderr: ${(r.stderr ?? '').slice(-3000)}`;
  if (r.status !== 0) throw new Error(out);
  return r.stdout;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// the comparator on its own (no registry, no pull): it must see each kind of difference

describe('tree comparator self-check', () => {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-cmp-'));
  });
  afterAll(() => {
    if (dir && !KEEP) fs.rmSync(dir, { recursive: true, force: true });
  });

  const build = (root: string) => {
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(root, 'bin'));
    fs.writeFileSync(path.join(root, 'etc/hostname'), 'a\n');
    fs.writeFileSync(path.join(root, 'bin/tool'), 'x'.repeat(100));
    fs.chmodSync(path.join(root, 'bin/tool'), 0o4755);
    fs.linkSync(path.join(root, 'bin/tool'), path.join(root, 'bin/tool2'));
    fs.writeFileSync(path.join(root, 'bin/other'), 'x'.repeat(100));
    fs.symlinkSync('tool', path.join(root, 'bin/link'));
    spawnSync('mkfifo', [path.join(root, 'fifo')]);
    if (isRoot) {
      fs.chownSync(path.join(root, 'etc/hostname'), 0, 42);
      spawnSync('mknod', [path.join(root, 'null'), 'c', '1', '3']);
    }
  };

  it('finds no difference between two identical trees', () => {
    build(path.join(dir, 'a'));
    build(path.join(dir, 'b'));
    const c = compareTrees(scanTree(path.join(dir, 'a')), scanTree(path.join(dir, 'b')));
    expect(c.diffs, formatDiffs(c, 'a', 'b')).toEqual([]);
  });

  it('finds a changed file, mode, setuid bit, owner, symlink target, hardlink, device, type and a missing file', () => {
    const b = path.join(dir, 'b');
    fs.writeFileSync(path.join(b, 'etc/hostname'), 'b\n'); // same size, other content
    fs.chmodSync(path.join(b, 'bin/tool'), 0o755); // setuid dropped (tool2 is the same inode)
    fs.unlinkSync(path.join(b, 'bin/link'));
    fs.symlinkSync('other', path.join(b, 'bin/link'));
    // tool2 becomes a copy: same content and mode, but no longer the same inode as tool
    fs.unlinkSync(path.join(b, 'bin/tool2'));
    fs.writeFileSync(path.join(b, 'bin/tool2'), 'x'.repeat(100));
    fs.chmodSync(path.join(b, 'bin/tool2'), 0o755);
    fs.rmSync(path.join(b, 'fifo'));
    fs.writeFileSync(path.join(b, 'fifo'), '');
    fs.writeFileSync(path.join(b, 'extra'), '');
    if (isRoot) {
      fs.chownSync(path.join(b, 'bin/other'), 1, 1);
      fs.rmSync(path.join(b, 'null'));
      spawnSync('mknod', [path.join(b, 'null'), 'c', '1', '5']);
    }
    const c = compareTrees(scanTree(path.join(dir, 'a')), scanTree(b));
    const got = c.diffs.map((d) => `${d.what} ${d.path}`).sort();
    const want = [
      'content etc/hostname',
      'mode bin/tool',
      'mode bin/tool2',
      'symlink bin/link',
      'hardlink bin/tool',
      'hardlink bin/tool2',
      'type fifo',
      'only-in-b extra',
      ...(isRoot ? ['owner bin/other', 'rdev null'] : []),
    ].sort();
    expect(got, formatDiffs(c, 'a', 'b')).toEqual(want);
  });
});

// ---------------------------------------------------------------------------------------------
// tsrun pull vs umoci unpack

describe.skipIf(SKIP !== null)('tsrun pull vs umoci unpack (Debian 12 minbase)', () => {
  let tmp = '';
  let registry: ChildProcess | undefined;
  let registryLog = '';
  let image: Record<string, string> = {};
  let tsrunTree: Tree | undefined;
  let umociTree: Tree | undefined;
  let umociRoot = '';

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-umoci-'));
    // 1. the image (debootstrap cached under .cache/images; packing takes seconds)
    const out = path.join(tmp, 'image');
    const t0 = Date.now();
    run('bash', [path.join(REPO, 'images/debian/build.sh'), out, '--tag', TAG], { timeoutMs: 900_000 });
    image = readEnvFile(path.join(out, 'image.env'));
    console.info(
      `[umoci-compare] image built in ${Date.now() - t0} ms: manifest ${image.IMAGE_MANIFEST}, layer ${image.IMAGE_LAYER} (${image.IMAGE_LAYER_SIZE} B gz, ${image.IMAGE_TAR_SIZE} B tar, ${image.IMAGE_FILES} entries)`,
    );

    // 2. a private registry on a free loopback port
    const port = await freePort();
    const storage = path.join(tmp, 'registry');
    fs.mkdirSync(storage);
    const cfg = path.join(tmp, 'registry.yml');
    fs.writeFileSync(
      cfg,
      `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`,
    );
    registryLog = path.join(tmp, 'registry.log');
    const logFd = fs.openSync(registryLog, 'w');
    registry = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', logFd, logFd] });
    fs.closeSync(logFd);
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (registry.exitCode !== null) throw new Error(`docker-registry exited ${registry.exitCode}: ${fs.readFileSync(registryLog, 'utf8')}`);
      try {
        if ((await fetch(`${base}/v2/`)).status === 200) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${base}: ${fs.readFileSync(registryLog, 'utf8')}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // 3. push the layout, digests preserved
    const ref = `127.0.0.1:${port}/${REPO_NAME}:${TAG}`;
    run('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${path.join(out, 'oci')}:${TAG}`,
      `docker://${ref}`,
    ]);
    const head = await fetch(`${base}/v2/${REPO_NAME}/manifests/${TAG}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(head.headers.get('docker-content-digest'), 'the registry serves the manifest that was built').toBe(image.IMAGE_MANIFEST);

    // 4. tsrun: pullImage into a fresh store; the layer is then at layers/<diff_id hex>/root
    const mod = (await import(pathToFileURL(PULL_MODULE).href)) as { pullImage?: (...args: unknown[]) => Promise<unknown> };
    if (typeof mod.pullImage !== 'function') throw new Error(`${PULL_MODULE} does not export pullImage`);
    const store = new ImageStore(path.join(tmp, 'store'));
    const t1 = Date.now();
    const res = await mod.pullImage(store, ref, PULL_OPTS);
    console.info(`[umoci-compare] pullImage(${ref}) took ${Date.now() - t1} ms; returned ${JSON.stringify(res)?.slice(0, 300)}`);
    const diffId = image.IMAGE_DIFF_ID!;
    if (!store.hasLayer(diffId)) {
      throw new Error(`after pullImage the store has no unpacked layer ${diffId} (expected ${store.layout.layerRoot(diffId)} and layer.json)`);
    }
    tsrunTree = scanTree(store.layout.layerRoot(diffId));

    // 5. umoci from the same layout
    const bundle = path.join(tmp, 'umoci-bundle');
    const t2 = Date.now();
    run('umoci', ['unpack', '--image', `${path.join(out, 'oci')}:${TAG}`, bundle]);
    console.info(`[umoci-compare] umoci unpack took ${Date.now() - t2} ms`);
    umociRoot = path.join(bundle, 'rootfs');
    umociTree = scanTree(umociRoot);
  }, 1_200_000);

  afterAll(() => {
    if (registry?.pid !== undefined && registry.exitCode === null) {
      try {
        process.kill(registry.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (tmp && !KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    else if (tmp) console.info(`[umoci-compare] kept ${tmp}`);
  });

  it('unpacks the same tree as umoci (list, types, modes, owners, links, contents, devices)', () => {
    const a = tsrunTree!;
    const b = umociTree!;
    const c = compareTrees(a, b);
    if (c.dirMtimes.length)
      console.info(
        `[umoci-compare] ${c.dirMtimes.length} directory mtime(s) differ (not compared), e.g. ${c.dirMtimes
          .slice(0, 5)
          .map((p) => `/${p}`)
          .join(', ')}`,
      );
    if (c.otherMtimes.length)
      console.info(
        `[umoci-compare] ${c.otherMtimes.length} non-directory mtime(s) differ (not compared), e.g. ${c.otherMtimes
          .slice(0, 5)
          .map((p) => `/${p}`)
          .join(', ')}`,
      );
    console.info(`[umoci-compare] compared ${a.entries.size} entries (tsrun) with ${b.entries.size} (umoci); ${a.links.size} hardlinked paths in tsrun's tree`);
    expect(c.diffs, formatDiffs(c, 'tsrun', 'umoci')).toEqual([]);
    // the image really has what the comparison is meant to cover
    expect(a.entries.size).toBe(Number(image.IMAGE_FILES) + 1); // + the root itself
    expect(a.entries.get('usr/bin/passwd')?.mode).toBe(0o4755);
    expect(a.entries.get('usr/bin/chage')?.gid).toBe(42);
    expect(a.links.size).toBeGreaterThanOrEqual(2);
  });

  it('self-check: a changed file and a dropped setuid bit in the umoci tree are detected', () => {
    fs.appendFileSync(path.join(umociRoot, 'etc/debian_version'), 'x');
    fs.chmodSync(path.join(umociRoot, 'usr/bin/passwd'), 0o755);
    const before = compareTrees(tsrunTree!, umociTree!).diffs.map((d) => `${d.what} ${d.path}`);
    const c = compareTrees(tsrunTree!, scanTree(umociRoot));
    const added = c.diffs.map((d) => `${d.what} ${d.path}`).filter((d) => !before.includes(d));
    expect(added.sort(), formatDiffs(c, 'tsrun', 'umoci (changed)')).toEqual(['content etc/debian_version', 'mode usr/bin/passwd']);
  });
});
