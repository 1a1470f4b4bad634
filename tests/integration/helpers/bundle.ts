// Helpers for the tsrun-oci integration tests that drive the runtime directly (no client):
// a busybox bundle built once per test file, per-test bundles with an edited config.json,
// a runner that can hand extra fds to tsrun-oci, and leftover checks (state dirs, cgroups,
// mounts, processes) so a runtime that leaks fails the test instead of polluting the host.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The runtime under test; TSRUN_OCI_RUNTIME overrides it (e.g. /usr/sbin/runc, to see which tests tell them apart). */
export const tsrunOci = process.env.TSRUN_OCI_RUNTIME ?? path.join(REPO_ROOT, 'dist/bin/tsrun-oci');
const BUILD_SH = path.join(REPO_ROOT, 'images/busybox/build.sh');

/** Why the direct-runtime tests cannot run here, or null when they can. */
export function ociSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync(tsrunOci)) return `${tsrunOci} is missing: run \`npm run build\``;
  if (!existsSync('/bin/busybox')) return '/bin/busybox is missing: apt-get install busybox-static';
  const runc = ['/usr/sbin/runc', '/usr/bin/runc'].find((p) => existsSync(p)) ?? spawnSync('sh', ['-c', 'command -v runc']).stdout?.toString().trim();
  if (!runc) return 'runc is missing (images/busybox/build.sh uses `runc spec`)';
  return null;
}

// ---------------------------------------------------------------------------------------------
// bundles

export interface BaseBundle {
  /** The per-file scratch dir (0755: a user-namespaced root must be able to traverse it). */
  tmp: string;
  /** The shared busybox rootfs (containers get it read-only). */
  rootfs: string;
  /** The pristine config.json from build.sh. */
  config: string;
}

/** mkdtemp + images/busybox/build.sh <tmp>/base. */
export function buildBaseBundle(prefix: string): BaseBundle {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  chmodSync(tmp, 0o755);
  const out = path.join(tmp, 'base');
  const r = spawnSync(BUILD_SH, [out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${BUILD_SH} ${out} failed (${r.status}): ${r.stderr}`);
  return { tmp, rootfs: path.join(out, 'rootfs'), config: path.join(out, 'config.json') };
}

export interface BundleOptions {
  /** Copy the rootfs into <bundle>/rootfs (cp -a) instead of sharing the base one. */
  copyRootfs?: boolean;
  /** Edit the rootfs copy before the config is written (implies copyRootfs). */
  prepareRootfs?: (rootfs: string) => void;
}

let bundleSeq = 0;

/**
 * A fresh bundle dir under base.tmp: a copy of the base config.json edited by `mutate`.
 * Without copyRootfs, root.path is the shared base rootfs (absolute) and stays read-only.
 */
export function makeBundle(base: BaseBundle, mutate: (spec: any) => void = () => {}, opts: BundleOptions = {}): string {
  const dir = path.join(base.tmp, 'bundles', `b${++bundleSeq}`);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const spec = JSON.parse(readFileSync(base.config, 'utf8'));
  if (opts.copyRootfs || opts.prepareRootfs) {
    const r = spawnSync('cp', ['-a', base.rootfs, path.join(dir, 'rootfs')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cp -a ${base.rootfs} failed: ${r.stderr}`);
    spec.root.path = 'rootfs';
    opts.prepareRootfs?.(path.join(dir, 'rootfs'));
  } else {
    spec.root.path = base.rootfs;
    spec.root.readonly = true;
  }
  mutate(spec);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2) + '\n');
  return dir;
}

// ---------------------------------------------------------------------------------------------
// running tsrun-oci

export interface OciResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cmd: string;
}

export interface OciRunOpts {
  /** Extra fds for the child: extraFds[i] becomes fd 3+i (inherited without CLOEXEC). */
  extraFds?: number[];
  timeoutMs?: number;
  /** Run tsrun-oci through this argv prefix (e.g. ['sh', '-c', '...', 'sh']). */
  wrapper?: string[];
}

/** Run a program; resolves with code/stdout/stderr. The child is SIGKILLed on timeout. */
export function runProgram(file: string, args: string[], opts: OciRunOpts = {}): Promise<OciResult> {
  const cmd = [file, ...args].join(' ');
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe', ...(opts.extraFds ?? [])], cwd: os.tmpdir() });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }, opts.timeoutMs ?? 30_000);
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    const done = (code: number | null, signal: NodeJS.Signals | null, spawnErr?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      // A detached container (create, run -d) keeps our stdout/stderr pipes open: stop reading.
      child.stdout!.destroy();
      child.stderr!.destroy();
      resolve({
        code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 255),
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (spawnErr ? `\n[spawn error] ${spawnErr.message}` : ''),
        timedOut,
        cmd,
      });
    };
    child.on('error', (e) => done(null, null, e));
    child.on('close', (code, signal) => done(code, signal));
    // 'close' waits for every holder of the pipes; after 'exit' give the output 300 ms to drain.
    child.on('exit', (code, signal) => {
      grace = setTimeout(() => done(code, signal), 300);
    });
  });
}

/** `tsrun-oci --root <root> <args>` */
export function oci(root: string, args: string[], opts: OciRunOpts = {}): Promise<OciResult> {
  const argv = ['--root', root, ...args];
  if (opts.wrapper?.length) return runProgram(opts.wrapper[0]!, [...opts.wrapper.slice(1), tsrunOci, ...argv], opts);
  return runProgram(tsrunOci, argv, opts);
}

/** For expect(..., msg). */
export function show(r: OciResult): string {
  const tail = (s: string) => (s.length > 3000 ? '…' + s.slice(-3000) : s);
  return `${r.cmd}\n  -> code=${r.code}${r.signal ? ` signal=${r.signal}` : ''}${r.timedOut ? ' TIMED OUT' : ''}\n  stdout: ${tail(r.stdout).trimEnd()}\n  stderr: ${tail(r.stderr).trimEnd()}`;
}

// ---------------------------------------------------------------------------------------------
// leftovers

/** Where cgroup2 is mounted (found independently of the runtime's own code). */
export function v2Mount(): string | null {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep >= 0 && line.slice(sep + 3).split(' ')[0] === 'cgroup2') return line.slice(0, sep).split(' ')[4] ?? null;
  }
  return null;
}

export function mountLines(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean);
}

/** Mount lines (of this process's namespace) that mention any of `needles`. */
export function mountsMentioning(...needles: string[]): string[] {
  return mountLines().filter((l) => needles.some((n) => l.includes(n)));
}

/** Pids (not ours) whose command line contains `needle`. */
export function processesMentioning(needle: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(needle)) out.push(`${p}: ${cmd}`);
    } catch {
      /* exited */
    }
  }
  return out;
}

/** Everything the runtime may have left for `id`: a list of human-readable problems. */
export function leftoversFor(root: string, id: string, scratch: string): string[] {
  const problems: string[] = [];
  if (existsSync(path.join(root, id))) problems.push(`state dir ${path.join(root, id)} exists`);
  const v2 = v2Mount();
  if (v2 && existsSync(path.join(v2, 'tsrun', id))) problems.push(`cgroup ${path.join(v2, 'tsrun', id)} exists`);
  for (const l of mountsMentioning(scratch, id)) problems.push(`mount: ${l}`);
  for (const p of processesMentioning(id)) problems.push(`process: ${p}`);
  return problems;
}

/** `delete --force` each id, then report whatever is left (state, cgroups, mounts, processes). */
export async function cleanupAll(root: string, ids: Iterable<string>, scratch: string): Promise<string[]> {
  const problems: string[] = [];
  for (const id of ids) {
    const r = await oci(root, ['delete', '--force', id]);
    if (r.code !== 0) problems.push(`delete --force ${id}: ${show(r)}`);
  }
  for (const id of ids) problems.push(...leftoversFor(root, id, scratch));
  if (existsSync(root)) {
    // The compiled-seccomp cache is a cache, not a container's state.
    const entries = readdirSync(root).filter((e) => e !== '.seccomp-cache');
    if (entries.length) problems.push(`${root} still holds: ${entries.join(', ')}`);
  }
  return problems;
}

/** Remove the scratch dir, unless a mount is still on it (then leave it for a human). */
export function removeScratch(tmp: string): void {
  if (mountsMentioning(tmp).length) return;
  if (process.env.TSRUN_IT_KEEP === '1') return;
  rmSync(tmp, { recursive: true, force: true });
}

/** readlink that returns null instead of throwing. */
export function readlinkOrNull(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch {
    return null;
  }
}

/** Poll until fn() is truthy or the timeout passes; returns the last value. */
export async function until<T>(fn: () => T, timeoutMs = 5000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = fn();
  while (!v && Date.now() < end) {
    await new Promise((r) => setTimeout(r, stepMs));
    v = fn();
  }
  return v;
}
