// `inspect` and `ps` data for a container, docker-shaped (so `--format '{{.State.ExitCode}}'`
// reads as docker users expect), with the limits in force read back from the cgroup.
import { networkSettings, portsObject, portsText } from './networks.js';
import { join } from 'node:path';
import type { CgroupStats } from '../cgroups/controllers/stats.js';
import { readContainerStats } from '../cgroups/v1-stats.js';
import { MONITOR_FILES } from '../native/monitor-protocol.js';
import type { ContainerRecord } from './container-store.js';
import { type ContainerState, containerState, runtimeRecord } from './container-state.js';
import type { EngineContext } from './context.js';

/** The container's cgroup figures now, or undefined when it has no cgroup (not running). */
export function cgroupStats(ctx: EngineContext, rec: ContainerRecord): CgroupStats | undefined {
  const rt = runtimeRecord(ctx, rec.id);
  if (!rt || !ctx.runtime.cgroup || !rt.cgroupPath || !ctx.runtime.cgroup.exists(rt.cgroupPath)) return undefined;
  return readContainerStats(
    ctx.runtime.cgroup.path(rt.cgroupPath),
    (rt.cgroupV1 ?? []).map((p) => p.dir),
  );
}

const limit = (v: number | 'max' | undefined) => (v === undefined ? null : v === 'max' ? 'max' : v);

/** What the kernel enforces, read from the cgroup files (null: not readable here). */
export function limitsInForce(s: CgroupStats | undefined) {
  if (!s) return null;
  return {
    MemoryMax: limit(s.memory?.max),
    MemorySwapMax: limit(s.memory?.swapMax),
    CpuMax: s.cpu?.max ? `${s.cpu.max.quota} ${s.cpu.max.period}` : null,
    CpuWeight: s.cpu?.weight ?? null,
    PidsMax: limit(s.pids?.max),
  };
}

export function inspectContainer(ctx: EngineContext, rec: ContainerRecord) {
  const st = containerState(ctx, rec);
  const dir = ctx.containers.dir(rec.id);
  const i = rec.intent;
  const [path, ...args] = rec.args;
  return {
    Id: rec.id,
    Created: rec.created,
    Path: path ?? '',
    Args: args,
    State: {
      Status: st.status,
      Running: st.running,
      Paused: st.paused,
      Restarting: false,
      OOMKilled: st.oomKilled,
      Dead: st.status === 'dead',
      Pid: st.pid,
      ExitCode: st.exitCode,
      Error: st.error,
      StartedAt: st.startedAt,
      FinishedAt: st.finishedAt,
      MonitorPid: st.monitorPid,
      MonitorAlive: st.monitorAlive,
    },
    Image: rec.imageId,
    ImageName: rec.imageRef,
    Name: `/${rec.name}`,
    RestartCount: rec.restartCount,
    LogPath: join(dir, MONITOR_FILES.log),
    Mounts: rec.mounts.map((m) => ({
      Type: m.type,
      ...(m.name ? { Name: m.name } : {}),
      Source: m.source,
      Destination: m.destination,
      RW: !m.readOnly,
    })),
    Config: {
      Hostname: i.hostname ?? rec.id.slice(0, 12),
      User: rec.user,
      Env: rec.env,
      Cmd: rec.args,
      Image: rec.image,
      WorkingDir: rec.workdir,
      Labels: rec.labels,
      Tty: rec.tty,
      OpenStdin: rec.interactive,
      StopSignal: rec.stopSignal,
      StopTimeout: rec.stopTimeout,
    },
    HostConfig: {
      Memory: i.memoryBytes ?? 0,
      MemorySwap: i.memorySwapBytes ?? 0,
      MemoryReservation: i.memoryReservationBytes ?? 0,
      NanoCpus: i.cpus ? Math.round(i.cpus * 1e9) : 0,
      CpuShares: i.cpuShares ?? 0,
      CpusetCpus: i.cpusetCpus ?? '',
      PidsLimit: i.pidsLimit ?? 0,
      Privileged: i.privileged === true,
      ReadonlyRootfs: i.readOnly === true,
      CapAdd: i.capAdd ?? [],
      CapDrop: i.capDrop ?? [],
      SecurityOpt: i.noNewPrivileges ? ['no-new-privileges'] : [],
      AutoRemove: rec.autoRemove,
      NetworkMode: i.network === 'bridge' ? (i.networks ?? []).map((n) => n.name).join(',') || 'bridge' : (i.network ?? 'none'),
      PortBindings: portsObject(rec.ports ?? []),
      LogConfig: { Type: 'k8s-file', Config: { 'max-size': String(rec.logMaxSize || ''), 'max-file': String(rec.logMaxFiles) } },
    },
    /** The limits the kernel enforces now, read back from the cgroup (null when not running). */
    Limits: st.running ? limitsInForce(cgroupStats(ctx, rec)) : null,
    GraphDriver: {
      Name: 'overlay',
      Data: {
        LowerDir: rec.diffIds
          .map((d) => ctx.images.layout.layerRoot(d))
          .reverse()
          .join(':'),
        UpperDir: join(dir, 'upper'),
        WorkDir: join(dir, 'work'),
        MergedDir: join(dir, 'merged'),
      },
    },
    RootFS: { Type: 'layers', Layers: rec.diffIds },
    NetworkSettings: networkSettings(ctx, rec),
  };
}

function ago(iso: string, now: number): string {
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return '';
  if (s < 1) return 'Less than a second';
  if (s < 60) return `${Math.floor(s)} second${Math.floor(s) === 1 ? '' : 's'}`;
  if (s < 3600) return `${Math.floor(s / 60)} minute${Math.floor(s / 60) === 1 ? '' : 's'}`;
  if (s < 86400) return `${Math.floor(s / 3600)} hour${Math.floor(s / 3600) === 1 ? '' : 's'}`;
  return `${Math.floor(s / 86400)} day${Math.floor(s / 86400) === 1 ? '' : 's'}`;
}

/** docker ps's STATUS column. */
export function statusText(st: ContainerState, now = Date.now()): string {
  switch (st.status) {
    case 'running':
      return `Up ${ago(st.startedAt, now)}`;
    case 'paused':
      return `Up ${ago(st.startedAt, now)} (Paused)`;
    case 'exited':
      // A lost monitor recorded no finish time: say so rather than guess one.
      return st.finishedAt ? `Exited (${st.exitCode}) ${ago(st.finishedAt, now)} ago` : `Exited (${st.exitCode}) (monitor lost)`;
    case 'unknown':
      return 'Unknown (monitor lost)';
    case 'dead':
      return 'Dead';
    default:
      return st.status.charAt(0).toUpperCase() + st.status.slice(1);
  }
}

export function psEntry(ctx: EngineContext, rec: ContainerRecord, now = Date.now()) {
  const st = containerState(ctx, rec);
  return {
    ID: rec.id.slice(0, 12),
    Id: rec.id,
    Image: rec.image,
    Command: rec.args.join(' '),
    CreatedAt: rec.created,
    RunningFor: `${ago(rec.created, now)} ago`,
    Status: statusText(st, now),
    State: st.status,
    ExitCode: st.exitCode,
    Names: rec.name,
    Ports: st.running || st.paused ? portsText(rec.ports) : '', // docker: a stopped container publishes nothing
    Networks: (rec.intent.networks ?? []).map((n) => n.name).join(','),
    Labels: rec.labels,
    Mounts: rec.mounts.map((m) => m.name ?? m.source),
  };
}
