// Harness for the client-compatibility tests: isolated Podman and containerd instances that
// drive an OCI runtime given by path (runc today, tsrun-oci later).
//
// Everything a client writes goes under one per-run directory (mkdtemp in os.tmpdir()):
// podman's graphroot/runroot/tmp_dir/lock files/network config, containerd's root/state/
// sockets/opt dir. The host's default stores (/var/lib/containers/storage, /var/lib/containerd,
// /run/containers, /run/libpod, /dev/shm/libpod_lock) are never used. A few paths are
// hard-wired in the clients and cannot be redirected on these versions. They are recorded
// before setup, and cleanup() puts them back when this run created them:
//   /var/lib/containers/cache   (c/image blob-info cache, written by `podman import` as root)
//   /run/runc                   (runc's default --root; podman passes no --root)
//   /run/containerd/{s,fifo,runc/<ns>}  (shim sockets, ctr fifos, the runtime's --root)
//   cgroup parents /libpod_parent{,/conmon} and /<containerd namespace> in every hierarchy
//
// cleanup() tries every step and only throws at the end. After the clients' own teardown
// (podman rm -af; ctr task rm -f / c rm; containerd stopped) it looks for leftovers that the
// clients or the runtime should have removed: processes, mounts under the run dir, runtime state
// dirs, container cgroups. It removes them and then throws an Error that lists them. A leaking
// runtime therefore fails the file's afterAll instead of polluting the machine.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The OCI runtime under test: the built tsrun-oci; TSRUN_OCI_RUNTIME overrides it (e.g. /usr/sbin/runc). */
export function runtimePath(): string {
  return process.env.TSRUN_OCI_RUNTIME ?? path.join(REPO_ROOT, 'dist/bin/tsrun-oci');
}

/** Set TSRUN_IT_KEEP=1 to keep the per-run directory (configs, logs) for debugging. */
const KEEP = process.env.TSRUN_IT_KEEP === '1';

export const IMAGE = 'localhost/busybox:latest';

// ---------------------------------------------------------------------------------------------
// running commands

export interface RunOpts {
  /** written to the child's stdin; without it stdin is /dev/null */
  input?: string;
  /**
   * stdin is a pipe that stays open (never EOF) until the child exits. For `script`, which
   * otherwise sees EOF on /dev/null at once and can tear the session down before the
   * program's output has been relayed.
   */
  holdStdin?: boolean;
  /** default 30 s; the child is SIGKILLed (by pid) on expiry and timedOut is set */
  timeoutMs?: number;
  /** extra environment on top of the client's isolated environment */
  env?: Record<string, string>;
  cwd?: string;
}

export interface RunResult {
  /** exit code; 128+signo when the child died of a signal */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
  /** the command line, for assertion messages */
  cmd: string;
}

/** Human-readable summary of a result (command, code, output tails), for expect(..., msg). */
export function describeResult(r: RunResult): string {
  const tail = (s: string) => (s.length > 1500 ? '…' + s.slice(-1500) : s);
  return `${r.cmd}\n  -> code=${r.code}${r.signal ? ` signal=${r.signal}` : ''}${r.timedOut ? ' TIMED OUT' : ''} (${r.ms} ms)\n  stdout: ${tail(r.stdout).trimEnd()}\n  stderr: ${tail(r.stderr).trimEnd()}`;
}

/** Quote for /bin/sh. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function runCommand(file: string, args: string[], opts: RunOpts = {}, baseEnv: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  const started = Date.now();
  const cmd = [file, ...args].map(shq).join(' ');
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      env: { ...baseEnv, ...opts.env },
      cwd: opts.cwd ?? os.tmpdir(),
      stdio: [opts.input === undefined && !opts.holdStdin ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const stdout = child.stdout!;
    const stderr = child.stderr!;
    stdout.on('data', (b: Buffer) => out.push(b));
    stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    let settled = false;
    let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    const finish = (spawnError?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      const signal = exitInfo?.signal ?? null;
      const code = exitInfo?.code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 255);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (spawnError ? `\n[spawn error] ${spawnError.message}` : ''),
        timedOut,
        ms: Date.now() - started,
        cmd,
      });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) safeKill(child.pid, 'SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    let graceTimer: NodeJS.Timeout | undefined;
    child.on('error', (e) => finish(e));
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      child.stdin?.destroy();
      // A process that leaked our stdout/stderr pipe (e.g. a runtime helper that did not
      // close it) would keep 'close' from firing; do not hang on it.
      graceTimer = setTimeout(() => {
        stdout.destroy();
        stderr.destroy();
        finish();
      }, 3000);
    });
    child.on('close', () => finish());
    if (child.stdin) {
      child.stdin.on('error', () => {});
      if (opts.input !== undefined) child.stdin.end(opts.input);
    }
  });
}

function safeKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll fn until it returns a truthy value or the timeout expires; returns the last value. */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await fn();
  while (!v && Date.now() < deadline) {
    await sleep(intervalMs);
    v = await fn();
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// requirements

function which(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir || '.', bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function assertRuntime(rt: string): void {
  if (!isExecutable(rt)) throw new Error(`OCI runtime under test ${rt} (TSRUN_OCI_RUNTIME) is not an executable file`);
}

function commonMissing(): string[] {
  const why: string[] = [];
  if (process.platform !== 'linux') why.push('not Linux');
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) why.push('must run as root');
  // A missing default runtime skips (e.g. tsrun-oci not built yet); an explicit
  // TSRUN_OCI_RUNTIME that is not executable is a configuration error and fails in setup.
  if (process.env.TSRUN_OCI_RUNTIME === undefined && !isExecutable(runtimePath())) {
    why.push(`OCI runtime ${runtimePath()} is not an executable file (build it, or set TSRUN_OCI_RUNTIME)`);
  }
  if (!fs.existsSync('/bin/busybox')) why.push('/bin/busybox missing (apt-get install busybox-static)');
  for (const b of ['tar', 'gzip', 'sha256sum', 'runc']) if (!which(b)) why.push(`'${b}' not on PATH`);
  return why;
}

/** Why the podman tests cannot run here, or null. */
export function podmanSkipReason(): string | null {
  const why = commonMissing();
  for (const b of ['podman', 'conmon']) if (!which(b)) why.push(`'${b}' not on PATH`);
  return why.length ? why.join('; ') : null;
}

/** Why the containerd tests cannot run here, or null. */
export function containerdSkipReason(): string | null {
  const why = commonMissing();
  for (const b of ['containerd', 'ctr', 'containerd-shim-runc-v2']) if (!which(b)) why.push(`'${b}' not on PATH`);
  return why.length ? why.join('; ') : null;
}

/** Why a tty can not be driven here (util-linux `script`), or null. */
export function ttySkipReason(): string | null {
  return which('script') ? null : "util-linux 'script' not on PATH (needed to give the client a real tty)";
}

interface CgroupMount {
  root: string; // mount point of the hierarchy
  controllers: string[];
  v2: boolean;
}

function cgroupMounts(): CgroupMount[] {
  const res: CgroupMount[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const [fstype, , superOpts] = post.split(' ');
    const mp = f[4];
    if (!mp || (fstype !== 'cgroup' && fstype !== 'cgroup2')) continue;
    const opts = (superOpts ?? '').split(',');
    res.push({
      root: unescapeMount(mp),
      controllers: fstype === 'cgroup2' ? ['unified'] : opts.filter((o) => o !== 'rw' && o !== 'ro' && o !== 'relatime'),
      v2: fstype === 'cgroup2',
    });
  }
  return res;
}

/**
 * Why a container cannot be frozen on this host, or null. The runtime needs either the
 * cgroup v1 freezer controller (hybrid/legacy hosts, like these machines) or a pure
 * cgroup v2 host (cgroup.freeze). A hybrid host's empty unified tree has no controllers.
 */
export function freezerSkipReason(): string | null {
  const mounts = cgroupMounts();
  if (mounts.some((m) => !m.v2 && m.controllers.includes('freezer'))) return null;
  if (mounts.some((m) => m.v2 && m.root === '/sys/fs/cgroup')) return null;
  return 'no cgroup v1 freezer hierarchy and no cgroup v2 at /sys/fs/cgroup: the runtime cannot pause containers on this host';
}

// ---------------------------------------------------------------------------------------------
// image

export interface BusyboxImage {
  dir: string;
  /** OCI bundle rootfs (bin/busybox + applet symlinks, etc/passwd, ...) */
  rootfs: string;
  /** tar of the rootfs, for `podman import` */
  rootfsTar: string;
  /** OCI image layout as a tar (oci-archive), for `ctr image import` / `podman load` */
  ociArchive: string;
}

/** Build the busybox rootfs (images/busybox/build.sh) and, optionally, its OCI archive. */
export async function buildBusybox(dir: string, what: { rootfsTar?: boolean; ociArchive?: boolean }): Promise<BusyboxImage> {
  const img: BusyboxImage = { dir, rootfs: path.join(dir, 'rootfs'), rootfsTar: path.join(dir, 'rootfs.tar'), ociArchive: path.join(dir, 'busybox-oci.tar') };
  const step = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`image build failed:\n${describeResult(r)}`);
  };
  await step('bash', [path.join(REPO_ROOT, 'images/busybox/build.sh'), dir]);
  if (what.ociArchive) await step('bash', [path.join(REPO_ROOT, 'images/busybox/oci-layout.sh'), dir]);
  if (what.rootfsTar) await step('tar', ['-C', img.rootfs, '--numeric-owner', '-cf', img.rootfsTar, '.']);
  return img;
}

// ---------------------------------------------------------------------------------------------
// leftovers: processes, mounts, cgroups, host paths

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points at or below dir, deepest first. */
function mountsUnder(dir: string): string[] {
  const res: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = unescapeMount(mp);
    if (p === dir || p.startsWith(dir + '/')) res.push(p);
  }
  return res.reverse();
}

function unmountAll(dir: string): string[] {
  const found = mountsUnder(dir);
  for (const mp of found) {
    const r = spawnSync('umount', [mp], { stdio: 'ignore' });
    if (r.status !== 0) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
  }
  return found;
}

/**
 * Processes (other than us) whose command line or environment mentions needle: conmon and
 * shims name our dir in their args; podman processes carry CONTAINERS_CONF=<dir>/… .
 */
function procsMentioning(needle: string): { pid: number; cmd: string }[] {
  const res: { pid: number; cmd: string }[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (!cmd) continue; // kernel thread or zombie
      if (cmd.includes(needle) || fs.readFileSync(`/proc/${e}/environ`, 'utf8').includes(needle)) res.push({ pid, cmd });
    } catch {
      /* exited */
    }
  }
  return res;
}

/**
 * Wait (grace) for processes mentioning needle to go away on their own (podman's
 * `container cleanup`, conmon, shims); SIGKILL the rest by pid. Returns what had to be killed.
 */
async function reapMentioning(needle: string, graceMs: number): Promise<string[]> {
  const left = await waitFor(() => procsMentioning(needle).length === 0, graceMs, 100);
  if (left) return [];
  const procs = procsMentioning(needle);
  for (const p of procs) safeKill(p.pid, 'SIGKILL');
  await waitFor(() => procs.every((p) => !fs.existsSync(`/proc/${p.pid}`)), 3000, 50);
  return procs.map((p) => `pid ${p.pid}: ${p.cmd.slice(0, 200)}`);
}

/**
 * Tracks the cgroup v1/v2 directories `<hierarchy>/<rel>` the clients create. At setup it notes
 * whether <rel> exists. At cleanup, the children of <rel> that `isOurs` accepts are this run's
 * container cgroups: processes left in them are thawed and killed (by pid) and reported, the
 * dirs are reported (the runtime removes a container's cgroups on delete) and removed.
 * `housekeeping` children (podman's shared /libpod_parent/conmon) and <rel> itself are only
 * rmdir'ed, silently, and only when this run created <rel>; nothing else is touched, so
 * concurrent users of the same parent are safe.
 */
class CgroupWatch {
  private readonly before: { hier: string; dir: string; existed: boolean }[] = [];
  constructor(
    private readonly rel: string,
    private readonly isOurs: (child: string) => boolean,
    private readonly housekeeping: string[] = [],
  ) {
    for (const m of cgroupMounts()) {
      const dir = path.join(m.root, rel);
      this.before.push({ hier: path.basename(m.root), dir, existed: fs.existsSync(dir) });
    }
  }

  /** Returns leftovers: processes still inside and container cgroups the runtime did not remove. */
  async sweep(): Promise<string[]> {
    const leftovers: string[] = [];
    const ours: string[] = [];
    const seen = new Map<string, string[]>(); // child name -> hierarchies holding it
    for (const { hier, dir } of this.before) {
      if (!isDir(dir)) continue;
      for (const c of fs.readdirSync(dir)) {
        if (this.housekeeping.includes(c) || !isDir(path.join(dir, c)) || !this.isOurs(c)) continue;
        ours.push(path.join(dir, c));
        seen.set(c, [...(seen.get(c) ?? []), hier]);
      }
    }
    const dirs = ours.flatMap((t) => walkDirs(t));
    const pids = new Set(dirs.flatMap((d) => readPids(d)));
    if (pids.size) {
      for (const d of dirs) writeIfExists(path.join(d, 'freezer.state'), 'THAWED');
      for (const p of pids) {
        leftovers.push(`process ${p} (${procCmd(p)}) still in a container cgroup under /${this.rel}`);
        safeKill(p, 'SIGKILL');
      }
      await waitFor(() => [...pids].every((p) => !fs.existsSync(`/proc/${p}`)), 3000, 50);
    }
    for (const [name, hiers] of seen) leftovers.push(`cgroup /${this.rel}/${name} left behind (in ${hiers.join(', ')})`);
    for (const d of dirs.reverse()) tryRmdir(d);
    for (const { dir, existed } of this.before) {
      if (existed) continue;
      for (const h of this.housekeeping) tryRmdir(path.join(dir, h));
      tryRmdir(dir);
    }
    return leftovers;
  }
}

function tryRmdir(d: string): void {
  try {
    fs.rmdirSync(d);
  } catch {
    /* busy (still used), not empty or gone */
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** d and all subdirectories, parents before children. */
function walkDirs(d: string): string[] {
  const res = [d];
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(d, { withFileTypes: true });
  } catch {
    return res;
  }
  for (const e of entries) if (e.isDirectory()) res.push(...walkDirs(path.join(d, e.name)));
  return res;
}

function readPids(d: string): number[] {
  try {
    return fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function writeIfExists(p: string, v: string): void {
  try {
    fs.writeFileSync(p, v);
  } catch {
    /* not there */
  }
}

function procCmd(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 200);
  } catch {
    return '?';
  }
}

/**
 * Host paths the clients create outside our dir, put back at cleanup when this run created them.
 * `rmTree` paths (pure caches) are deleted; `prune` paths only lose their empty directories,
 * deepest first, so anything another user of the host put there meanwhile survives. Entries
 * are handled in the order given.
 */
class HostPaths {
  private readonly absent: { path: string; how: 'rmTree' | 'prune' }[];
  constructor(entries: { path: string; how: 'rmTree' | 'prune' }[]) {
    this.absent = entries.filter((e) => !fs.existsSync(e.path));
  }
  restore(): void {
    for (const e of this.absent) {
      if (e.how === 'rmTree') fs.rmSync(e.path, { recursive: true, force: true });
      else for (const d of walkDirs(e.path).reverse()) tryRmdir(d);
    }
  }
}

/** Runs cleanup steps, never stopping at the first failure; collects problems. */
class Cleaner {
  readonly problems: string[] = [];
  readonly leftovers: string[] = [];
  async step(name: string, fn: () => Promise<unknown> | unknown): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.problems.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  finish(what: string, dir: string): void {
    const msgs: string[] = [];
    if (this.leftovers.length)
      msgs.push(`leftovers that the client/runtime should have removed (now removed by the harness):\n  - ${this.leftovers.join('\n  - ')}`);
    if (this.problems.length) msgs.push(`cleanup problems:\n  - ${this.problems.join('\n  - ')}`);
    if (msgs.length) throw new Error(`${what} cleanup (${dir}):\n${msgs.join('\n')}`);
  }
}

function listDir(dir: string): Set<string> {
  try {
    return new Set(fs.readdirSync(dir));
  } catch {
    return new Set();
  }
}

function hardLimit(name: string): number {
  const line = fs
    .readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  const hard = line?.slice(26).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? Infinity : Number(hard);
}

function makeRunDir(kind: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tsrun-it-${kind}-`));
}

// ---------------------------------------------------------------------------------------------
// podman

export interface PodmanEnv {
  /** per-run directory holding everything podman writes */
  dir: string;
  runtime: string;
  image: string;
  /** the isolated environment (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, TMPDIR) */
  env: NodeJS.ProcessEnv;
  /** `podman <args>` in the isolated environment; pass ['--runtime', runtime, ...] yourself */
  run(args: string[], opts?: RunOpts): Promise<RunResult>;
  /** any command in the isolated environment (e.g. `script -qec 'podman …' /dev/null`) */
  runRaw(file: string, args: string[], opts?: RunOpts): Promise<RunResult>;
  cleanup(): Promise<void>;
}

export async function setupPodman(): Promise<PodmanEnv> {
  const runtime = runtimePath();
  assertRuntime(runtime);
  const dir = makeRunDir('podman');
  const host = new HostPaths([
    { path: '/var/lib/containers/cache', how: 'rmTree' },
    { path: '/var/lib/containers', how: 'prune' },
    { path: '/run/runc', how: 'prune' },
    { path: '/run/tsrun', how: 'prune' },
  ]);
  // our containers' ids, from podman's own event log (covers --rm containers too)
  const ourIds = (): Set<string> => {
    const ids = new Set<string>();
    let text = '';
    try {
      text = fs.readFileSync(path.join(dir, 'tmp', 'events.log'), 'utf8');
    } catch {
      return ids;
    }
    for (const line of text.split('\n')) {
      try {
        const ev = JSON.parse(line) as { Type?: string; ID?: string };
        if (ev.Type === 'container' && ev.ID) ids.add(ev.ID);
      } catch {
        /* partial line */
      }
    }
    return ids;
  };
  const cg = new CgroupWatch('libpod_parent', (c) => c.startsWith('libpod-') && ourIds().has(c.slice('libpod-'.length)), ['conmon']);
  const d = (...p: string[]) => path.join(dir, ...p);
  for (const sub of ['graphroot', 'runroot', 'tmp', 'networks', 'image']) fs.mkdirSync(d(sub), { recursive: true });

  // No CAP_SYS_RESOURCE in this sandbox: podman's default rlimits (nofile/nproc 1048576 for
  // root) cannot be set. Stay at or below the current hard limits.
  const nofile = Math.min(1024, hardLimit('Max open files'));
  const nproc = Math.min(4096, hardLimit('Max processes'));
  const jsonNames = [...new Set(['tsrun', 'tsrun-oci', 'runc', 'crun', path.basename(runtime)])];
  const toml = (s: string) => JSON.stringify(s);
  fs.writeFileSync(
    d('containers.conf'),
    `# generated by tests/integration/helpers/clients.ts
[containers]
pids_limit = 0
default_ulimits = [${toml(`nofile=${nofile}:${nofile}`)}, ${toml(`nproc=${nproc}:${nproc}`)}]
log_driver = "k8s-file"

[network]
# tests use --network none; the CNI backend with a private config dir writes nothing on the
# host (netavark would create /run/containers/networks for root)
network_backend = "cni"
network_config_dir = ${toml(d('networks'))}

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = ${toml(d('tmp', 'events.log'))}
tmp_dir = ${toml(d('tmp'))}
image_copy_tmp_dir = ${toml(d('tmp'))}
# file locks under tmp_dir instead of the host-wide /dev/shm/libpod_lock
lock_type = "file"
runtime = "tsrun"
# conmon passes --log-format=json --log FILE only to runtimes whose basename is listed
runtime_supports_json = [${jsonNames.map(toml).join(', ')}]

[engine.runtimes]
tsrun = [${toml(runtime)}]
`,
  );
  fs.writeFileSync(
    d('storage.conf'),
    `[storage]
driver = "overlay"
runroot = ${toml(d('runroot'))}
graphroot = ${toml(d('graphroot'))}
`,
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONTAINERS_CONF: d('containers.conf'),
    CONTAINERS_STORAGE_CONF: d('storage.conf'),
    TMPDIR: d('tmp'),
  };
  const run = (args: string[], opts?: RunOpts) => runCommand('podman', args, opts, env);
  const runRaw = (file: string, args: string[], opts?: RunOpts) => runCommand(file, args, opts, env);

  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    const c = new Cleaner();
    await c.step('podman rm -af', async () => {
      const r = await run(['rm', '--all', '--force', '--time', '0'], { timeoutMs: 60_000 });
      if (r.code !== 0) c.problems.push(`podman rm -af failed: ${describeResult(r)}`);
    });
    // conmon and `podman container cleanup` (conmon's exit command) finish on their own
    await c.step('processes', async () => {
      for (const p of await reapMentioning(dir, 5000)) c.leftovers.push(`process still running: ${p}`);
    });
    await c.step('cgroups', async () => c.leftovers.push(...(await cg.sweep())));
    await c.step('runtime state', async () => {
      // podman passes no --root: runc's default state dir (a drop-in must use the same default)
      const ids = ourIds();
      for (const id of [...listDir('/run/runc')].filter((e) => ids.has(e))) {
        c.leftovers.push(`runtime state /run/runc/${id} left behind`);
        spawnSync(runtime, ['delete', '--force', id], { stdio: 'ignore', timeout: 10_000 });
        fs.rmSync(path.join('/run/runc', id), { recursive: true, force: true });
      }
    });
    await c.step('mounts', async () => {
      for (const m of unmountAll(dir)) c.leftovers.push(`mount ${m}`);
    });
    await c.step('host paths', () => host.restore());
    await c.step('rm dir', () => {
      if (!KEEP) fs.rmSync(dir, { recursive: true, force: true });
    });
    c.finish('podman', dir);
  };

  try {
    const img = await buildBusybox(d('image'), { rootfsTar: true });
    const r = await run(['import', '--change', 'CMD ["sh"]', img.rootfsTar, IMAGE], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`podman import failed:\n${describeResult(r)}`);
  } catch (e) {
    await cleanup().catch(() => {});
    throw e;
  }
  return { dir, runtime, image: IMAGE, env, run, runRaw, cleanup };
}

// ---------------------------------------------------------------------------------------------
// containerd

export interface ContainerdEnv {
  dir: string;
  runtime: string;
  image: string;
  /** the gRPC socket of our private containerd */
  address: string;
  /** containerd namespace used by run() (unique per run; also the cgroup parent /<ns>) */
  namespace: string;
  /** `ctr --address <ours> -n <ns> <args>` */
  run(args: string[], opts?: RunOpts): Promise<RunResult>;
  /** any command, e.g. `script -qec 'ctr …' /dev/null` */
  runRaw(file: string, args: string[], opts?: RunOpts): Promise<RunResult>;
  /** `ctr … <args>` as one shell-quoted string, for use inside `script -c` */
  ctrCommandLine(args: string[]): string;
  cleanup(): Promise<void>;
}

export async function setupContainerd(): Promise<ContainerdEnv> {
  const runtime = runtimePath();
  assertRuntime(runtime);
  const dir = makeRunDir('containerd');
  const namespace = `tsrun-it-${path
    .basename(dir)
    .split('-')
    .pop()!
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')}`;
  const d = (...p: string[]) => path.join(dir, ...p);
  const address = d('containerd.sock');
  // shim sockets (/run/containerd/s), ctr fifos (/run/containerd/fifo) and the runtime's
  // --root (/run/containerd/runc/<ns>) are not configurable through containerd's config
  const host = new HostPaths([{ path: '/run/containerd', how: 'prune' }]);
  const runtimeRoot = path.join('/run/containerd/runc', namespace);
  const cg = new CgroupWatch(namespace, () => true);
  fs.mkdirSync(d('image'), { recursive: true });
  const toml = (s: string) => JSON.stringify(s);
  fs.writeFileSync(
    d('config.toml'),
    `# generated by tests/integration/helpers/clients.ts
version = 2
root = ${toml(d('root'))}
state = ${toml(d('state'))}
# no CRI: nothing here needs it, and it would want CNI and oom_score_adj (no CAP_SYS_RESOURCE)
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = ${toml(address)}
[ttrpc]
  address = ${toml(address + '.ttrpc')}
[debug]
  address = ""
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = ${toml(d('opt'))}
`,
  );

  const ctrArgs = (args: string[]) => ['--address', address, '-n', namespace, ...args];
  const run = (args: string[], opts?: RunOpts) => runCommand('ctr', ctrArgs(args), opts);
  const runRaw = (file: string, args: string[], opts?: RunOpts) => runCommand(file, args, opts);
  const ctrCommandLine = (args: string[]) => ['ctr', ...ctrArgs(args)].map(shq).join(' ');

  const logFd = fs.openSync(d('containerd.log'), 'a');
  const daemon = spawn('containerd', ['--config', d('config.toml')], { stdio: ['ignore', logFd, logFd], cwd: dir });
  fs.closeSync(logFd);
  let daemonExited = false;
  const daemonGone = new Promise<void>((r) => daemon.once('exit', () => ((daemonExited = true), r())));
  daemon.once('error', () => {
    daemonExited = true;
  });

  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    const c = new Cleaner();
    if (!daemonExited) {
      await c.step('tasks', async () => {
        const ls = await run(['task', 'ls', '-q'], { timeoutMs: 10_000 });
        for (const id of ls.stdout.split('\n').filter(Boolean)) {
          // a task left by a failed test: not a leak of the runtime, just stop it
          await run(['task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 10_000 });
          const rm = await run(['task', 'rm', '-f', id], { timeoutMs: 20_000 });
          if (rm.code !== 0) c.problems.push(`ctr task rm -f ${id}: ${describeResult(rm)}`);
        }
      });
      await c.step('containers', async () => {
        const ls = await run(['containers', 'ls', '-q'], { timeoutMs: 10_000 });
        for (const id of ls.stdout.split('\n').filter(Boolean)) await run(['containers', 'rm', id], { timeoutMs: 10_000 });
      });
      await c.step('stop containerd', async () => {
        safeKill(daemon.pid!, 'SIGTERM');
        const t = await Promise.race([daemonGone.then(() => true), sleep(10_000).then(() => false)]);
        if (!t) {
          c.problems.push('containerd did not exit on SIGTERM within 10 s; SIGKILLed');
          safeKill(daemon.pid!, 'SIGKILL');
          await Promise.race([daemonGone, sleep(3000)]);
        }
      });
    }
    // shims (`containerd-shim-runc-v2 -namespace <ns> -id <id> -address <sock>`) exit once
    // their tasks are deleted
    await c.step('processes', async () => {
      for (const p of await reapMentioning(dir, 3000)) c.leftovers.push(`process still running: ${p}`);
    });
    await c.step('cgroups', async () => c.leftovers.push(...(await cg.sweep())));
    await c.step('runtime state', async () => {
      for (const id of listDir(runtimeRoot)) {
        c.leftovers.push(`runtime state ${runtimeRoot}/${id} left behind`);
        spawnSync(runtime, ['--root', runtimeRoot, 'delete', '--force', id], { stdio: 'ignore', timeout: 10_000 });
      }
      fs.rmSync(runtimeRoot, { recursive: true, force: true });
    });
    await c.step('mounts', async () => {
      for (const m of unmountAll(dir)) c.leftovers.push(`mount ${m}`);
    });
    await c.step('host paths', () => host.restore());
    await c.step('rm dir', () => {
      if (!KEEP) fs.rmSync(dir, { recursive: true, force: true });
    });
    c.finish('containerd', dir);
  };

  try {
    const imgP = buildBusybox(d('image'), { ociArchive: true });
    const up = await waitFor(
      async () => {
        if (daemonExited) return 'exited';
        if (!fs.existsSync(address)) return false;
        return (await runCommand('ctr', ['--address', address, 'version'], { timeoutMs: 5000 })).code === 0 && 'up';
      },
      20_000,
      50,
    );
    if (up !== 'up') {
      let log = '';
      try {
        log = fs.readFileSync(d('containerd.log'), 'utf8').slice(-3000);
      } catch {
        /* none */
      }
      throw new Error(`containerd did not come up (${up || 'timeout'}); log tail:\n${log}`);
    }
    const img = await imgP;
    const r = await run(['image', 'import', '--base-name', 'localhost/busybox', img.ociArchive], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`ctr image import failed:\n${describeResult(r)}`);
    const ls = await run(['image', 'ls', '-q']);
    if (!ls.stdout.split('\n').includes(IMAGE)) throw new Error(`image ${IMAGE} missing after import:\n${describeResult(ls)}`);
  } catch (e) {
    await cleanup().catch(() => {});
    throw e;
  }
  return { dir, runtime, image: IMAGE, address, namespace, run, runRaw, ctrCommandLine, cleanup };
}
