// `checkpoint` and `restore`: runc's contract for these verbs (as Podman and containerd call
// them), done by CRIU's command-line tool (`criu dump` / `criu restore`, run as a child
// process; no swrk/RPC). Modelled on runc's libcontainer/criu_linux.go and crun's
// src/libcrun/criu.c.
//
// checkpoint ID: `criu dump -t <init pid> -D <image-path> --root <rootfs>` with
//   - every bind mount tsrun made (config binds, and the container's cgroup directory bound at
//     the cgroup mount when there is no cgroup namespace) declared external
//     (`--ext-mount-map <dest>:<dest>`); tmpfs, proc, sysfs, devpts, mqueue, cgroup2 and the
//     masks (binds of the container's own /dev/null, read-only tmpfs) are inside the
//     container and dumped by CRIU itself (tmpfs contents through tar);
//   - namespaces joined by path: network and pid are external (`--external net[<ino>]:
//     extRootNetNS`, `pid[<ino>]:extRootPidNS`); a new network namespace is dumped empty
//     (`--empty-ns net`: runc does not manage network devices either);
//   - `--manage-cgroups=<mode>` (soft unless --manage-cgroups-mode), `--freeze-cgroup` on the
//     container's cgroup v2 directory;
//   - what fds 0-2 of the init are (readlink) in <image-path>/descriptors.json, as runc does;
//     those that are files on a mount the container cannot see (conmon's /dev/null) are
//     declared external (`--external file[<mnt_id>:<inode>]`, listed in
//     tsrun-external-files.json), which CRIU otherwise refuses ("Can't lookup mount");
//   - `--network-lock nftables` (crun's --network-lock-method picks iptables, criu's default,
//     which needs iptables-restore and the xt_mark match; Debian's criu needs nf_tables anyway);
//   - --leave-running, --tcp-established, --ext-unix-sk, --shell-job, --file-locks,
//     --auto-dedup, --pre-dump (`criu pre-dump --track-mem`), --parent-path (relative to the
//     image path: `--prev-images-dir`, with `--track-mem`), --work-path (`-W`, where
//     dump.log goes; the image path otherwise), --empty-ns network.
//   After a dump CRIU has killed the container: it is then `stopped` (its record stays, with a
//   `checkpoint.json` beside it, until `delete`, or until `restore` of the same id replaces it).
//
// restore ID: the bundle's config.json as `create` reads it; a new record and cgroup (limits and
//   device filter applied, as `create` does); the rootfs bound at <state root>/.criu-root-<id>
//   (CRIU wants a mount point whose parent is not overmounted); `criu restore
//   --restore-detached --restore-sibling --root <that> --pidfile` with
//   - the inverse mount map (`--ext-mount-map <dest>:<source>`; the cgroup bind maps to the
//     new container's cgroup directory), `--cgroup-root /<cgroup path>` and
//     `--manage-cgroups=<mode>`;
//   - `--inherit-fd fd[N]:pipe:[ino]` for each of fds 0-2 that was a pipe at checkpoint, and
//     `fd[N]:file[...]` for each external file, N being tsrun's own fd N (so a restored
//     container writes to the pipes its new caller, e.g. conmon, gave tsrun-oci);
//   - a network or pid namespace given by path in config.json passed as `--inherit-fd
//     fd[N]:extRootNetNS` / `extRootPidNS`; ipc, uts and time namespaces by path joined
//     (`--join-ns`); `--empty-ns net` as at dump;
//   - --tcp-established, --ext-unix-sk, --shell-job, --file-locks, --auto-dedup,
//     --lsm-profile, --lsm-mount-context, --work-path, --pid-file, --detach (without it
//     tsrun waits for the restored init, then deletes the container, as `run` does).
//
// Not covered (refused with a message, or documented here):
//   - terminals: runc gets the pty master back from CRIU's RPC ("orphan-pts-master") and sends
//     it to --console-socket; the CLI cannot, so a container with process.terminal is refused;
//   - --lazy-pages, --status-fd, --page-server (refused);
//   - stdio that is a unix socket from outside the container (what node's child_process gives
//     its children): CRIU cannot find its peer ("Unix socket N not found"); conmon and
//     containerd give pipes or fifos;
//   - hooks: runc runs prestart/createRuntime at CRIU's "setup-namespaces" notification (RPC
//     only); tsrun runs no hooks on restore;
//   - missing mount points are not recreated before restore (runc and crun create them): the
//     rootfs must still have the ones `create` made;
//   - user and cgroup namespaces joined by path (CRIU cannot join them; refused);
//   - --no-pivot is accepted and has no effect (CRIU sets up the root itself);
//   - on cgroup v1/hybrid hosts CRIU's --manage-cgroups also places the tasks in v1
//     hierarchies; the tests run on a pure v2 host (the VM of scripts/vm-run).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join, posix, resolve } from 'node:path';
import { deviceProgram, deviceRules } from '../cgroups/devices.js';
import { MS_BIND, MS_REC, parseMountOptions } from '../linux/mount-options.js';
import { native } from '../native/index.js';
import { loadSpec } from '../spec/load.js';
import type { Spec } from '../spec/types.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import { lazyRequire } from '../util/lazy-require.js';
import type { RuntimeContext } from './context.js';
import { deleteContainer, statusOf } from './lifecycle.js';
import { isAlive, procStartTime } from './proc.js';
import type { ContainerRecord } from './state-store.js';
import { Undo } from './undo.js';
import { creatingRecord, makeCgroup, planCgroup } from './container-setup.js';

const MNT_DETACH = 2;
const DESCRIPTORS = 'descriptors.json';
/** tsrun's own: the external stdio files of the dump (StdioFile[]). */
const EXTERNAL_FILES = 'tsrun-external-files.json';
/** Beside state.json: this stopped container was checkpointed (runc keeps a "checkpoint" file). */
const MARKER = 'checkpoint.json';
const CG_MODES = ['soft', 'full', 'strict', 'ignore', 'none', 'props'] as const;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Options shared by checkpoint and restore (runc's flags of both verbs). */
export interface CriuCommonOptions {
  imagePath: string;
  workPath?: string | undefined;
  tcpEstablished?: boolean | undefined;
  extUnixSk?: boolean | undefined;
  shellJob?: boolean | undefined;
  fileLocks?: boolean | undefined;
  autoDedup?: boolean | undefined;
  manageCgroupsMode?: string | undefined;
  /** runc's --empty-ns: only "network" exists; a new network namespace is always dumped empty. */
  emptyNs?: string[] | undefined;
  /** The criu binary (global --criu); found on PATH otherwise. */
  criu?: string | undefined;
  /** crun's --network-lock-method: nftables (tsrun's default) or iptables (criu's). */
  networkLock?: string | undefined;
}

export interface CheckpointOptions extends CriuCommonOptions {
  id: string;
  parentPath?: string | undefined;
  leaveRunning?: boolean | undefined;
  preDump?: boolean | undefined;
}

export interface RestoreOptions extends CriuCommonOptions {
  id: string;
  bundle: string;
  detach: boolean;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  lsmProfile?: string | undefined;
  lsmMountContext?: string | undefined;
}

export interface Restored {
  pid: number;
  record: ContainerRecord;
}

/** One of fds 0-2 of the init that is a file on a mount the container cannot see. */
export interface StdioFile {
  fd: number;
  /** CRIU's external-file key: `file[<mnt_id hex>:<inode hex>]`. */
  key: string;
}

/** A mount that lives outside the container: its destination, and its source on the host. */
export interface ExternalMount {
  destination: string;
  source: string;
}

// ------------------------------------------------------------------------------------------
// pure parts (unit-tested)

function isBind(m: { type?: string | undefined; options?: string[] | undefined }): boolean {
  return m.type === 'bind' || parseMountOptions(m.options).bind;
}

/**
 * The mounts of `spec` whose source is on the host: config bind mounts and, without a cgroup
 * namespace, the container's cgroup directory bound at a "cgroup" mount (plan.ts cgroupMount).
 */
export function externalMounts(spec: Spec, bundle: string, cgroupDir: string | undefined): ExternalMount[] {
  const out: ExternalMount[] = [];
  const cgroupNs = (spec.linux?.namespaces ?? []).some((n) => n.type === 'cgroup' && !n.path);
  for (const m of spec.mounts ?? []) {
    const destination = posix.resolve('/', m.destination); // absolute, no trailing slash: criu's mountpoint names
    if (isBind(m)) {
      if (m.source) out.push({ destination, source: resolve(bundle, m.source) });
    } else if (m.type === 'cgroup' && !cgroupNs && cgroupDir) {
      out.push({ destination, source: cgroupDir });
    }
  }
  return out;
}

function cgMode(mode: string | undefined): string {
  if (mode === undefined || mode === '') return 'soft';
  if (!(CG_MODES as readonly string[]).includes(mode)) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid --manage-cgroups-mode "${mode}": use soft, full, strict or ignore`);
  }
  return mode;
}

function emptyNsArgs(emptyNs: string[] | undefined): string[] {
  for (const ns of emptyNs ?? []) {
    if (ns !== 'network') throw new TsrunError('ERR_INVALID_ARGUMENT', `namespace "${ns}" is not supported by --empty-ns (only "network")`);
  }
  // runc: "runc doesn't manage network devices and their configuration".
  return ['--empty-ns', 'net'];
}

function networkLock(method: string | undefined): string {
  const m = method || 'nftables';
  if (m !== 'nftables' && m !== 'iptables') throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid --network-lock-method "${m}": use nftables or iptables`);
  return m;
}

function commonFlags(o: CriuCommonOptions): string[] {
  const a: string[] = [];
  if (o.tcpEstablished) a.push('--tcp-established');
  if (o.extUnixSk) a.push('--ext-unix-sk');
  if (o.shellJob) a.push('--shell-job');
  if (o.fileLocks) a.push('--file-locks');
  if (o.autoDedup) a.push('--auto-dedup');
  return a;
}

export interface DumpInputs {
  pid: number;
  rootfs: string;
  /** <cgroup v2 mount>/<cgroup path>, for --freeze-cgroup; undefined without one. */
  cgroupDir: string | undefined;
  external: ExternalMount[];
  /** `net[<inode>]:extRootNetNS`-style entries for namespaces joined by path. */
  externalNs: string[];
  /** `file[<mnt_id>:<inode>]` keys of stdio files on host mounts (see externalStdio). */
  externalFiles: string[];
}

/** argv for `criu dump` (or `criu pre-dump`). */
export function criuDumpArgs(o: CheckpointOptions, d: DumpInputs, logFile: string): string[] {
  const a = [o.preDump ? 'pre-dump' : 'dump', '-t', String(d.pid), '-D', o.imagePath, '-o', logFile, '-v4', '--root', d.rootfs];
  if (o.workPath) a.push('-W', o.workPath);
  a.push(`--manage-cgroups=${cgMode(o.manageCgroupsMode)}`, '--network-lock', networkLock(o.networkLock));
  if (d.cgroupDir) a.push('--freeze-cgroup', d.cgroupDir);
  for (const e of d.externalNs) a.push('--external', e);
  a.push(...emptyNsArgs(o.emptyNs));
  for (const f of new Set(d.externalFiles)) a.push('--external', f);
  if (o.parentPath) a.push('--prev-images-dir', o.parentPath, '--track-mem');
  if (o.preDump) {
    if (!o.parentPath) a.push('--track-mem');
    return a;
  }
  if (o.leaveRunning) a.push('--leave-running');
  a.push(...commonFlags(o));
  for (const m of d.external) a.push('--ext-mount-map', `${m.destination}:${m.destination}`);
  return a;
}

export interface RestoreInputs {
  root: string;
  pidFile: string;
  /** The container's cgroup path relative to the v2 mount, or null. */
  cgroupPath: string | null;
  external: ExternalMount[];
  /** descriptors.json: what fds 0, 1, 2 of the init were. */
  descriptors: string[];
  /** `fd[N]:extRootNetNS`-style entries for namespaces passed as inherited fds. */
  inheritNs: string[];
  /** `ipc:/path`-style entries for --join-ns. */
  joinNs: string[];
  /** Stdio files that were external at dump: restored from tsrun's own fd N. */
  externalFiles: StdioFile[];
}

/** argv for `criu restore`. */
export function criuRestoreArgs(o: RestoreOptions, r: RestoreInputs, logFile: string): string[] {
  const a = ['restore', '-D', o.imagePath, '-o', logFile, '-v4', '--root', r.root, '--restore-detached', '--restore-sibling', '--pidfile', r.pidFile];
  if (o.workPath) a.push('-W', o.workPath);
  a.push('--evasive-devices', `--manage-cgroups=${cgMode(o.manageCgroupsMode)}`, '--network-lock', networkLock(o.networkLock));
  if (r.cgroupPath) a.push('--cgroup-root', `/${r.cgroupPath}`);
  a.push(...commonFlags(o));
  if (o.lsmProfile) a.push('--lsm-profile', o.lsmProfile);
  if (o.lsmMountContext) a.push('--lsm-mount-context', o.lsmMountContext);
  a.push(...emptyNsArgs(o.emptyNs));
  for (const m of r.external) a.push('--ext-mount-map', `${m.destination}:${m.source}`);
  r.descriptors.forEach((d, i) => {
    if (i <= 2 && /^pipe:\[\d+\]$/.test(d)) a.push('--inherit-fd', `fd[${i}]:${d}`);
  });
  for (const f of r.externalFiles) if (f.fd >= 0 && f.fd <= 2) a.push('--inherit-fd', `fd[${f.fd}]:${f.key}`);
  for (const e of r.inheritNs) a.push('--inherit-fd', e);
  for (const j of r.joinNs) a.push('--join-ns', j);
  return a;
}

/** The lines of a CRIU log that say what failed (runc's logCriuErrors: each Error with context). */
export function criuLogErrors(text: string, max = 12): string[] {
  const lines = text.split('\n');
  const picked = new Set<number>();
  lines.forEach((l, i) => {
    if (/Error|error \(/.test(l)) for (let j = Math.max(0, i - 1); j <= i; j++) picked.add(j);
  });
  return [...picked]
    .sort((x, y) => x - y)
    .slice(-max)
    .map((i) => lines[i]!.trim())
    .filter(Boolean);
}

// ------------------------------------------------------------------------------------------
// criu as a child process

/** The criu binary: --criu, else the first `criu` on PATH (Podman may give no PATH at all). */
export function findCriu(explicit: string | undefined): string {
  if (explicit) {
    if (!existsSync(explicit))
      throw new TsrunError('ERR_UNSUPPORTED', `criu binary "${explicit}" (--criu) does not exist`, {
        hint: 'install criu (Debian: apt-get install criu) or fix --criu',
      });
    return explicit;
  }
  for (const dir of `${process.env.PATH || DEFAULT_PATH}${delimiter}${DEFAULT_PATH}`.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, 'criu');
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  throw new TsrunError('ERR_UNSUPPORTED', 'checkpoint/restore needs CRIU, and no `criu` binary was found on PATH', {
    hint: 'install it (Debian: apt-get install criu), or name it with tsrun-oci --criu PATH',
  });
}

/** stdio for criu: 'inherit' keeps tsrun's own fd N at N (restore's --inherit-fd fd[N]). */
type Stdio = Array<'inherit' | 'ignore' | 'pipe' | number>;

async function runCriu(bin: string, args: string[], stdio: Stdio, logPath: string, what: string): Promise<void> {
  const { spawn } = lazyRequire<typeof import('node:child_process')>('node:child_process');
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; error?: Error }>((done) => {
    let out = '';
    let child: import('node:child_process').ChildProcess;
    try {
      child = spawn(bin, args, { stdio: stdio as import('node:child_process').StdioOptions });
    } catch (e) {
      done({ code: null, signal: null, out, error: e as Error });
      return;
    }
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', (e) => done({ code: null, signal: null, out, error: e }));
    child.on('close', (code, signal) => done({ code, signal, out }));
  });
  if (result.error) throw wrap(result.error, `run ${bin} (${what})`);
  if (result.code === 0) return;
  let log = '';
  try {
    log = readFileSync(logPath, 'utf8');
  } catch {
    /* no log: criu failed before opening it */
  }
  const errors = criuLogErrors(log);
  const detail = [...errors, ...result.out.trim().split('\n').filter(Boolean).slice(-5)];
  const how = result.signal ? `killed by ${result.signal}` : `exit status ${result.code}`;
  throw new TsrunError('ERR_CHILD_FAILED', `${what} failed: criu ${how}${detail.length ? `:\n  ${detail.join('\n  ')}` : ''}`, {
    hint: `criu's log: ${logPath}; \`criu check\` lists the kernel features it lacks`,
  });
}

// ------------------------------------------------------------------------------------------
// helpers

function mkdirOk(dir: string, what: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw wrap(e, `create ${what} "${dir}"`);
  }
}

/** What fds 0-2 of a process are ("pipe:[123]", "/dev/null", ...), as runc saves them. */
function descriptorsOf(pid: number): string[] {
  return [0, 1, 2].map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

/**
 * Fds 0-2 of the init that are files on a mount outside the container's mount namespace (the
 * /dev/null a caller such as conmon gives as stdin): CRIU cannot dump those ("Can't lookup
 * mount"), so they are declared external at dump and handed back from tsrun's own fd at restore,
 * as pipes are.
 */
function externalStdio(pid: number): StdioFile[] {
  let mountIds: Set<string>;
  try {
    mountIds = new Set(
      readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[0]!),
    );
  } catch (e) {
    throw wrap(e, `read /proc/${pid}/mountinfo`);
  }
  const out: StdioFile[] = [];
  for (const fd of [0, 1, 2]) {
    try {
      if (!readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('/')) continue; // pipe:, socket:, anon_inode:
      const mnt = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
      if (!mnt || mountIds.has(mnt)) continue;
      const ino = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true }).ino;
      out.push({ fd, key: `file[${Number(mnt).toString(16)}:${ino.toString(16)}]` });
    } catch {
      /* closed fd */
    }
  }
  return out;
}

function nsInode(path: string, type: string): number {
  try {
    return statSync(path).ino;
  } catch (e) {
    throw wrap(e, `stat ${type} namespace "${path}"`);
  }
}

/** Wait until the (non-child) process is gone or a zombie. */
async function waitExited(pid: number, startTime: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (isAlive(pid, startTime)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

function refuseTerminal(spec: Spec, verb: string): void {
  if (spec.process?.terminal) {
    throw new TsrunError('ERR_UNSUPPORTED', `${verb} of a container with a terminal (process.terminal) is not supported`, {
      hint: "tsrun drives the criu CLI, which cannot hand the pty master back (runc gets it over criu's RPC); run the container without a tty",
    });
  }
}

// ------------------------------------------------------------------------------------------
// checkpoint

export async function checkpointContainer(ctx: RuntimeContext, o: CheckpointOptions): Promise<void> {
  const criu = findCriu(o.criu);
  const release = ctx.store.lock(o.id);
  try {
    const rec = ctx.store.read(o.id);
    const status = statusOf(ctx, rec);
    if (status !== 'running' && status !== 'paused') {
      throw new TsrunError('ERR_INVALID_STATE', `container ${o.id} cannot be checkpointed in ${status} state`);
    }
    refuseTerminal(rec.config, 'checkpoint');
    const imagePath = resolve(o.imagePath);
    mkdirOk(imagePath, 'checkpoint image directory');
    const workPath = o.workPath ? resolve(o.workPath) : undefined;
    if (workPath) mkdirOk(workPath, 'checkpoint work directory');
    if (o.parentPath) {
      if (isAbsolute(o.parentPath)) throw new TsrunError('ERR_INVALID_ARGUMENT', '--parent-path must be relative (to --image-path)');
      const parent = resolve(imagePath, o.parentPath);
      if (!existsSync(parent) || !statSync(parent).isDirectory()) {
        throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid --parent-path: ${parent} is not a directory`);
      }
    }
    const cgroupDir = ctx.cgroup && rec.cgroupPath && ctx.cgroup.exists(rec.cgroupPath) ? ctx.cgroup.path(rec.cgroupPath) : undefined;
    const externalNs: string[] = [];
    for (const n of rec.config.linux?.namespaces ?? []) {
      if (!n.path) continue;
      if (n.type === 'network') externalNs.push(`net[${nsInode(n.path, n.type)}]:extRootNetNS`);
      if (n.type === 'pid') externalNs.push(`pid[${nsInode(n.path, n.type)}]:extRootPidNS`);
    }
    const logFile = 'dump.log';
    const externalFiles = externalStdio(rec.pid);
    const args = criuDumpArgs(
      { ...o, imagePath, workPath },
      {
        pid: rec.pid,
        rootfs: rec.rootfs,
        cgroupDir,
        external: externalMounts(rec.config, rec.bundle, cgroupDir),
        externalNs,
        externalFiles: externalFiles.map((f) => f.key),
      },
      logFile,
    );
    if (!o.preDump) {
      for (const [name, data] of [
        [DESCRIPTORS, descriptorsOf(rec.pid)],
        [EXTERNAL_FILES, externalFiles],
      ] as const) {
        try {
          writeFileSync(join(imagePath, name), JSON.stringify(data), { mode: 0o600 });
        } catch (e) {
          throw wrap(e, `write ${join(imagePath, name)}`);
        }
      }
    }
    ctx.log.debug(`checkpoint: ${criu} ${args.join(' ')}`);
    await runCriu(
      criu,
      args,
      ['ignore', 'pipe', 'pipe'],
      join(workPath ?? imagePath, logFile),
      `checkpoint of container ${o.id}${o.preDump ? ' (pre-dump)' : ''}`,
    );
    if (o.preDump || o.leaveRunning) return;
    // criu killed the tree after dumping it; the container is now stopped, its record kept
    // (and marked) until delete, or a restore of the same id.
    if (!(await waitExited(rec.pid, rec.startTime, 10_000))) {
      ctx.log.warn(`checkpoint: container ${o.id} init ${rec.pid} is still alive after criu dump`);
    }
    writeFileAtomic(join(ctx.store.dir(o.id), MARKER), JSON.stringify({ imagePath, at: new Date().toISOString() }));
  } finally {
    release();
  }
}

// ------------------------------------------------------------------------------------------
// restore

/** The record of a container that is stopped after a checkpoint, or null. */
function checkpointedAndStopped(ctx: RuntimeContext, id: string): boolean {
  if (!ctx.store.exists(id)) return false;
  const rec = ctx.store.read(id);
  return statusOf(ctx, rec) === 'stopped' && existsSync(join(ctx.store.dir(id), MARKER));
}

function readJsonArray(imagePath: string, name: string): unknown[] {
  const p = join(imagePath, name);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return []; // a checkpoint made by another tool: nothing to reconnect
    throw wrap(e, `read ${p}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v : [];
  } catch (e) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `${p} is not valid JSON: ${(e as Error).message}`);
  }
}

function readDescriptors(imagePath: string): string[] {
  return readJsonArray(imagePath, DESCRIPTORS).map((x) => (typeof x === 'string' ? x : ''));
}

function readExternalFiles(imagePath: string): StdioFile[] {
  return readJsonArray(imagePath, EXTERNAL_FILES).filter(
    (x): x is StdioFile =>
      typeof (x as StdioFile)?.fd === 'number' && typeof (x as StdioFile)?.key === 'string' && /^file\[[0-9a-f]+:[0-9a-f]+\]$/.test((x as StdioFile).key),
  );
}

function inCgroup(pid: number, rel: string): boolean {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    const path = line?.slice(3) ?? '';
    return path === `/${rel}` || path.startsWith(`/${rel}/`);
  } catch {
    return false;
  }
}

export async function restoreContainer(ctx: RuntimeContext, o: RestoreOptions): Promise<Restored> {
  const criu = findCriu(o.criu);
  const imagePath = resolve(o.imagePath);
  if (!existsSync(join(imagePath, 'inventory.img'))) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `no checkpoint in "${imagePath}": inventory.img is missing`, {
      hint: 'pass the --image-path that `checkpoint` wrote',
    });
  }
  const workPath = o.workPath ? resolve(o.workPath) : undefined;
  if (workPath) mkdirOk(workPath, 'restore work directory');
  // A container stopped by its own checkpoint is replaced (runc destroys it at checkpoint).
  if (checkpointedAndStopped(ctx, o.id)) await deleteContainer(ctx, o.id, false);

  const bundle = resolve(o.bundle);
  const { spec, warnings } = loadSpec(bundle);
  for (const w of warnings) ctx.log.warn(w);
  refuseTerminal(spec, 'restore');
  if (o.consoleSocket) throw new TsrunError('ERR_INVALID_ARGUMENT', 'cannot use console socket if tsrun will not detach or allocate tty');
  const rootfs = resolve(bundle, spec.root!.path);
  if (!existsSync(rootfs) || !statSync(rootfs).isDirectory()) {
    throw new TsrunError('ERR_INVALID_CONFIG', `"root.path" ${rootfs} is not a directory`, { path: rootfs });
  }
  const inheritFds: number[] = [];
  const inheritNs: string[] = [];
  const joinNs: string[] = [];
  const undo = new Undo();
  const release = ctx.store.lock(o.id);
  try {
    for (const n of spec.linux?.namespaces ?? []) {
      if (!n.path) continue;
      if (n.type === 'network' || n.type === 'pid') {
        let fd: number;
        try {
          fd = openSync(n.path, 'r');
        } catch (e) {
          throw wrap(e, `open ${n.type} namespace "${n.path}"`);
        }
        undo.always(() => closeSync(fd));
        inheritNs.push(`fd[${3 + inheritFds.length}]:${n.type === 'network' ? 'extRootNetNS' : 'extRootPidNS'}`);
        inheritFds.push(fd);
      } else if (n.type === 'ipc' || n.type === 'uts' || n.type === 'time') {
        joinNs.push(`${n.type}:${n.path}`);
      } else if (n.type !== 'mount') {
        throw new TsrunError('ERR_UNSUPPORTED', `restore into a ${n.type} namespace joined by path ("${n.path}") is not supported by criu`);
      }
    }

    ctx.store.reserve(o.id);
    undo.onFail(() => ctx.store.remove(o.id));
    // cgroup, limits and device filter exactly as create makes them.
    const cgroupPlan = planCgroup(ctx, spec, o.id);
    const { cgroupPath, resources } = cgroupPlan;
    const record: ContainerRecord = creatingRecord(o.id, bundle, rootfs, spec, cgroupPath);
    let cgroupDir: string | undefined;
    if (ctx.cgroup && cgroupPath) {
      const cg = ctx.cgroup;
      makeCgroup(ctx, cg, cgroupPath, cgroupPlan, record, undo);
      const rules = deviceRules(resources?.devices, spec.linux?.devices);
      if (rules) {
        const fd = cg.openDir(cgroupPath);
        try {
          native.attachDeviceFilter(fd, deviceProgram(rules));
        } catch (e) {
          throw wrap(e, 'apply linux.resources.devices (eBPF device filter)');
        } finally {
          closeSync(fd);
        }
      }
      cgroupDir = cg.path(cgroupPath);
    } else {
      ctx.store.write(record);
      if (deviceRules(resources?.devices, spec.linux?.devices)) {
        throw new TsrunError('ERR_CGROUP', 'cannot apply linux.resources.devices: no cgroup v2 hierarchy to attach the device filter to', {
          hint: 'mount cgroup2, or remove the device rules',
        });
      }
    }

    // The root CRIU restores into: a bind of the rootfs, outside the state dir (whose removal
    // on failure must never reach into a mount) and named so no id can match it.
    const criuRoot = join(ctx.store.root, `.criu-root-${o.id}`);
    try {
      native.umount2(criuRoot, MNT_DETACH); // left by a restore killed before its cleanup
    } catch {
      /* not mounted, the usual case */
    }
    mkdirOk(criuRoot, 'criu root directory');
    let mounted = false;
    undo.always(() => {
      if (mounted) native.umount2(criuRoot, MNT_DETACH);
      rmdirSync(criuRoot);
    });
    try {
      native.mount(rootfs, criuRoot, '', MS_BIND | MS_REC, '');
      mounted = true;
    } catch (e) {
      throw wrap(e, `bind ${rootfs} on ${criuRoot}`);
    }

    const pidFile = join(ctx.store.dir(o.id), 'criu.pid');
    const logFile = 'restore.log';
    const args = criuRestoreArgs(
      { ...o, imagePath, workPath },
      {
        root: criuRoot,
        pidFile,
        cgroupPath,
        external: externalMounts(spec, bundle, cgroupDir),
        descriptors: readDescriptors(imagePath),
        inheritNs,
        joinNs,
        externalFiles: readExternalFiles(imagePath),
      },
      logFile,
    );
    ctx.log.debug(`restore: ${criu} ${args.join(' ')}`);
    await runCriu(criu, args, ['inherit', 'inherit', 'inherit', ...inheritFds], join(workPath ?? imagePath, logFile), `restore of container ${o.id}`);

    let pid: number;
    try {
      pid = Number(readFileSync(pidFile, 'utf8').trim());
    } catch (e) {
      throw wrap(e, `read the restored init's pid from ${pidFile}`);
    }
    const startTime = procStartTime(pid);
    if (!pid || !startTime)
      throw new TsrunError('ERR_CHILD_FAILED', `restore of container ${o.id}: the restored init (pid ${pid}) is not running`, {
        hint: `see ${join(workPath ?? imagePath, logFile)}`,
      });
    undo.onFail(() => {
      if (ctx.cgroup && cgroupPath && record.cgroupCreated) ctx.cgroup.killAll(cgroupPath, 9);
      else if (isAlive(pid, startTime)) process.kill(pid, 'SIGKILL');
    });
    // CRIU places the tasks in the cgroups it dumped, under --cgroup-root; make sure of the init.
    if (ctx.cgroup && cgroupPath && !inCgroup(pid, cgroupPath)) {
      ctx.log.warn(`restore: criu left init ${pid} outside ${cgroupDir}; moving it`);
      try {
        writeFileSync(join(cgroupDir!, 'cgroup.procs'), String(pid));
      } catch (e) {
        throw wrap(e, `move restored init ${pid} into ${cgroupDir}`);
      }
    }
    record.pid = pid;
    record.startTime = startTime;
    record.phase = 'created';
    ctx.store.write(record);
    if (o.pidFile) {
      try {
        writeFileAtomic(resolve(o.pidFile), String(pid), 0o644);
      } catch (e) {
        throw wrap(e, `write pid file "${o.pidFile}"`);
      }
    }
    for (const err of undo.commit()) ctx.log.warn(`restore: ${err.message}`);
    return { pid, record };
  } catch (e) {
    const err = e instanceof TsrunError ? e : wrap(e, `restore container "${o.id}"`);
    err.cleanupErrors.push(...undo.rollback());
    throw err;
  } finally {
    release();
  }
}
