// `create` and `run`: bundle → validated spec → resources opened in the parent → plan →
// forked init, driven to READY. Every acquired resource registers its undo; a failure at
// any point unwinds all of them, so a failed create leaves no state, cgroup or process.
import { closeSync, constants, existsSync, openSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { deviceProgram, deviceRules } from '../cgroups/devices.js';
import type { CgroupV1 } from '../cgroups/v1-membership.js';
import { readLastCap } from '../linux/capabilities.js';
import { ambientDropped, buildInitPlan, idMapText, type HookPoint, type NsJoin } from '../linux/plan.js';
import { compileSeccompCached, seccompCacheDir } from './seccomp-cache.js';
import { native } from '../native/index.js';
import { loadSpec } from '../spec/load.js';
import type { HookName, OciState, Spec } from '../spec/types.js';
import { TsrunError, wrap } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import type { RuntimeContext } from './context.js';
import { runHooksInContainer } from './container-hooks.js';
import { creatingRecord, makeCgroup, planCgroup } from './container-setup.js';
import { checkHostNamespaceWrites } from './host-namespace-writes.js';
import { checkMountLabel, lsmSupportFor } from '../linux/lsm.js';
import { runHooks } from './hooks.js';
import { procStartTime } from './proc.js';
import { SpawnSession, type Spawner, writeIdMaps } from './spawn-session.js';
import type { ContainerRecord } from './state-store.js';
import { Undo } from './undo.js';
import { mark } from '../util/timing.js';

export const OCI_VERSION = '1.2.0';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  preserveFds?: number | undefined;
  noPivot?: boolean | undefined;
  /** 'create' leaves the init blocked on exec.fifo; 'run' lets it exec at once. */
  mode: 'create' | 'run';
  /** The container must outlive this process (create, run --detach). */
  detach: boolean;
  /** The init's end of a console socket the caller made (the engine's monitor holds the other end). */
  consoleFd?: number | undefined;
  /** Starts the init: the addon's spawn by default; the engine's monitor spawns it as its own child. */
  spawner?: Spawner | undefined;
}

export interface Created {
  pid: number;
  record: ContainerRecord;
  /** The pty master, for run --tty without --console-socket. */
  consoleFd: number;
}

export function ociState(rec: ContainerRecord, status: OciState['status']): OciState {
  const s: OciState = {
    ociVersion: OCI_VERSION,
    id: rec.id,
    pid: status === 'stopped' ? 0 : rec.pid,
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
  };
  if (rec.config.annotations && Object.keys(rec.config.annotations).length) s.annotations = rec.config.annotations;
  return s;
}

function openNamespaceJoins(spec: Spec, undo: Undo): NsJoin[] {
  return (spec.linux?.namespaces ?? [])
    .filter((n) => n.path)
    .map((n) => {
      let fd: number;
      try {
        fd = openSync(n.path!, constants.O_RDONLY);
      } catch (e) {
        throw wrap(e, `open ${n.type} namespace "${n.path}"`);
      }
      undo.always(() => closeSync(fd));
      return { type: n.type, fd, path: n.path! };
    });
}

function bindKinds(spec: Spec, bundle: string): Record<string, 'dir' | 'file'> {
  const kinds: Record<string, 'dir' | 'file'> = {};
  for (const m of spec.mounts ?? []) {
    const bind = m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
    if (!bind || !m.source) continue;
    const src = resolve(bundle, m.source);
    try {
      kinds[src] = statSync(src).isDirectory() ? 'dir' : 'file';
    } catch (e) {
      throw wrap(e, `mount source "${src}" for "${m.destination}"`);
    }
  }
  return kinds;
}

function checkTerminal(spec: Spec, o: CreateOptions): void {
  const tty = spec.process?.terminal === true;
  if (tty && !o.consoleSocket && o.consoleFd === undefined && o.detach) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', 'cannot allocate tty if tsrun will detach without setting console socket');
  }
  if (!tty && (o.consoleSocket || o.consoleFd !== undefined)) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', 'cannot use console socket if tsrun will not detach or allocate tty');
  }
}

function writePidFile(path: string, pid: number): void {
  try {
    writeFileAtomic(resolve(path), String(pid), 0o644);
  } catch (e) {
    throw wrap(e, `write pid file "${path}"`);
  }
}

export async function createContainer(ctx: RuntimeContext, o: CreateOptions): Promise<Created> {
  mark('rt-enter');
  const bundle = resolve(o.bundle);
  const { spec, warnings } = loadSpec(bundle);
  for (const w of warnings) ctx.log.warn(w);
  checkTerminal(spec, o);
  checkHostNamespaceWrites(spec);
  const lsm = lsmSupportFor(spec.process, spec.linux?.mountLabel);
  checkMountLabel(spec.linux?.mountLabel, lsm);
  const dropped = ambientDropped(spec.process!);
  // For uid 0 ambient caps change nothing (exec grants root the bounding set): no noise.
  if (dropped.length && spec.process!.user.uid !== 0)
    ctx.log.warn(`ambient capabilities ${dropped.join(', ')} are not also permitted and inheritable: not raised`);
  mark('rt-loaded');
  const release = ctx.store.lock(o.id);
  const undo = new Undo();
  let session: SpawnSession | undefined;
  let hooksRan = false;
  try {
    ctx.store.reserve(o.id);
    undo.onFail(() => ctx.store.remove(o.id));
    crashPoint('reserved');

    const rootfs = resolve(bundle, spec.root!.path);
    if (!existsSync(rootfs) || !statSync(rootfs).isDirectory()) {
      throw new TsrunError('ERR_INVALID_CONFIG', `"root.path" ${rootfs} is not a directory`, { path: rootfs });
    }

    // cgroup: refuse limits we cannot apply (before anything exists); place the init with
    // CLONE_INTO_CGROUP so it is limited from its first instruction.
    const cgroupPlan = planCgroup(ctx, spec, o.id);
    const { cgroupPath } = cgroupPlan;
    // The record exists before anything it names: a create killed at any later point leaves
    // `delete --force` what it needs to finish the job (cgroup, init, state).
    const record = creatingRecord(o.id, bundle, rootfs, spec, cgroupPath);
    let cgroupFd = -1;
    const cgroupDir = ctx.cgroup && cgroupPath ? ctx.cgroup.path(cgroupPath) : undefined;
    if (ctx.cgroup && cgroupPath) {
      const cg = ctx.cgroup;
      makeCgroup(ctx, cg, cgroupPath, cgroupPlan, record, undo, crashPoint);
      cgroupFd = cg.openDir(cgroupPath);
      undo.always(() => closeSync(cgroupFd));
      if (ctx.cgroupV1) prepareV1(ctx, ctx.cgroupV1, cgroupPath, record, undo);
    } else {
      ctx.store.write(record);
      ctx.log.warn('no cgroup v2 hierarchy is mounted: the container is not placed in a cgroup (pause, resume and kill --all are unavailable)');
    }
    mark('rt-cgroup');
    const rules = deviceRules(spec.linux?.resources?.devices, spec.linux?.devices);
    if (rules) {
      if (cgroupFd < 0) {
        throw new TsrunError('ERR_CGROUP', 'cannot apply linux.resources.devices: no cgroup v2 hierarchy to attach the device filter to', {
          hint: 'mount cgroup2, or remove the device rules',
        });
      }
      try {
        native.attachDeviceFilter(cgroupFd, deviceProgram(rules));
      } catch (e) {
        throw wrap(e, 'apply linux.resources.devices (eBPF device filter)');
      }
    }

    let fifoFd = -1;
    if (o.mode === 'create') {
      const fifo = ctx.store.fifoPath(o.id);
      native.mkfifo(fifo, 0o622);
      // Read and write in one fd (Linux allows O_RDWR on a FIFO): the write end the init holds
      // itself keeps its read() blocking until `start` writes.
      fifoFd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
      undo.always(() => closeSync(fifoFd));
    }
    let consoleFd = -1;
    if (o.consoleSocket) {
      try {
        consoleFd = native.connectUnix(resolve(o.consoleSocket));
      } catch (e) {
        throw wrap(e, `connect to console socket "${o.consoleSocket}"`);
      }
      const fd = consoleFd;
      undo.always(() => native.close(fd));
    } else if (o.consoleFd !== undefined) {
      consoleFd = o.consoleFd;
    }
    const joins = openNamespaceJoins(spec, undo);
    const seccomp = spec.linux?.seccomp ? compileSeccompCached(spec.linux.seccomp, seccompCacheDir(ctx)) : undefined;
    if (seccomp?.skipped.length) ctx.log.debug(`seccomp: syscalls unknown to libseccomp skipped: ${seccomp.skipped.join(' ')}`);
    const hooks = spec.hooks ?? {};
    const hookPoints: HookPoint[] = [];
    if (hooks.prestart?.length || hooks.createRuntime?.length) hookPoints.push('createRuntime');
    if (hooks.createContainer?.length) hookPoints.push('createContainer');

    mark('rt-seccomp');
    const steps = buildInitPlan(spec, {
      rootfs,
      bundle,
      lastCap: readLastCap(),
      joins,
      fifoFd,
      consoleFd,
      preserveFds: o.preserveFds ?? 0,
      ...(seccomp ? { seccomp: { bpf: seccomp.bpf, flags: seccomp.flags } } : {}),
      bindKinds: { ...bindKinds(spec, bundle), ...(cgroupDir ? { [cgroupDir]: 'dir' as const } : {}) },
      cgroupDir,
      hookPoints,
      detach: o.detach,
      noPivot: o.noPivot ?? false,
      lsm,
    });

    mark('rt-plan');
    session = SpawnSession.start(steps, cgroupFd, o.spawner);
    mark('rt-spawned');
    const s = session;
    undo.onFail(() => s.abort());
    crashPoint('spawned');
    let ptyMaster = -1;
    const runHook = async (kind: HookName, pid: number) =>
      runHooks(kind, hooks[kind], ociState({ ...record, pid }, 'creating'), { cwd: bundle, onWarning: (m) => ctx.log.warn(m) });
    const hookTarget = { namespaces: (spec.linux?.namespaces ?? []).map((n) => n.type), capabilities: spec.process?.capabilities, cgroupFd };
    await session.untilReady({
      onMapRequest: (pid) => writeSpecIdMaps(spec, pid),
      // Hybrid hosts: in its v1 cgroups too before it runs anything (its children inherit them).
      onPid: (pid) => {
        if (ctx.cgroupV1 && record.cgroupV1?.length) ctx.cgroupV1.join(record.cgroupV1, pid);
      },
      onHook: async (point, pid) => {
        hooksRan = true;
        if (point === 'createRuntime') {
          await runHook('prestart', pid);
          await runHook('createRuntime', pid);
        } else {
          await runHooksInContainer('createContainer', hooks.createContainer, ociState({ ...record, pid }, 'creating'), hookTarget);
        }
      },
      onConsole: (fd) => {
        ptyMaster = fd;
      },
    });

    mark('rt-ready');
    crashPoint('ready');
    record.pid = session.initPid;
    record.startTime = procStartTime(record.pid) ?? '';
    record.phase = 'created';
    ctx.store.write(record);
    if (o.pidFile) writePidFile(o.pidFile, record.pid);
    if (o.mode === 'run') await runHooksInContainer('startContainer', hooks.startContainer, ociState(record, 'created'), hookTarget);
    session.go();
    if (o.mode === 'run') session.waitExec();
    session.close();
    if (o.mode === 'run') {
      await runHooks('poststart', hooks.poststart, ociState(record, 'running'), { cwd: bundle, onWarning: (m) => ctx.log.warn(m) });
    }
    for (const err of undo.commit()) ctx.log.warn(`create: ${err.message}`);
    return { pid: record.pid, record, consoleFd: ptyMaster };
  } catch (e) {
    const err = e instanceof TsrunError ? e : wrap(e, `create container "${o.id}"`);
    err.cleanupErrors.push(...undo.rollback());
    // runtime-spec lifecycle step 12: once creation hooks have run, poststop runs on failure too.
    if (hooksRan && spec.hooks?.poststop?.length) {
      await runHooks(
        'poststop',
        spec.hooks.poststop,
        { ociVersion: OCI_VERSION, id: o.id, status: 'stopped', pid: 0, bundle },
        { cwd: bundle, onWarning: (m) => ctx.log.warn(m) },
      );
    }
    throw err;
  } finally {
    release();
  }
}

/**
 * TEST ONLY (tests/integration/crash-recovery.test.ts): TSRUN_TEST_CRASH_AT=<step> makes
 * `create` SIGKILL itself at that step, so the tests can stop it exactly where a crash would.
 * Steps: reserved, recorded, cgroup, spawned, ready.
 */
function crashPoint(step: string): void {
  if (process.env.TSRUN_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}

/**
 * Hybrid hosts: record, then make, the v1 directories at the container's cgroup path (the
 * init joins them when its pid is known). Membership only, for accounting: no v1 limits.
 */
function prepareV1(ctx: RuntimeContext, v1: CgroupV1, rel: string, record: ContainerRecord, undo: Undo): void {
  const placements = v1.plan(rel);
  record.cgroupV1 = placements;
  ctx.store.write(record);
  // Registered before the init exists, so undone after abort() has killed and reaped it.
  undo.onFail(() => {
    const left = v1.remove(placements, 2000);
    if (left.length) throw new TsrunError('ERR_CGROUP', `cgroup v1 left in place: ${left.map((l) => `${l.dir} (${l.reason})`).join('; ')}`);
  });
  const planned = JSON.stringify(placements);
  v1.create(rel, placements);
  if (JSON.stringify(placements) !== planned) ctx.store.write(record);
}

function writeSpecIdMaps(spec: Spec, pid: number): void {
  writeIdMaps(pid, idMapText(spec.linux?.uidMappings), idMapText(spec.linux?.gidMappings));
}
