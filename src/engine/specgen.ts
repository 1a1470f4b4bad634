// Image config + the user's create intent -> an OCI runtime spec (podman's specgen, docker's
// merge + DefaultLinuxSpec). Pure: what needs the rootfs (the user's ids from the image's
// passwd/group) is resolved by the caller and passed in. Every intent field is optional, so
// "not given" differs from "false" or empty, as the merge rules need.
import { CAPABILITIES } from '../linux/capabilities.js';
import type { ImageConfigBody } from '../image/manifest.js';
import type { Namespace, NamespaceType, Resources, Rlimit, Seccomp, Spec } from '../spec/types.js';
import { TsrunError } from '../util/errors.js';
import { DEFAULT_CAPABILITIES, DEFAULT_PATH, defaultMounts, MASKED_PATHS, READONLY_PATHS } from './defaults.js';
import type { ExecUser } from './exec-user.js';

export interface CreateIntent {
  /** Args after the image name: replace the image Cmd. */
  cmd?: string[];
  /** --entrypoint: replaces the image Entrypoint and drops its Cmd; "" means none. */
  entrypoint?: string;
  env?: string[];
  workdir?: string;
  hostname?: string;
  tty?: boolean;
  readOnly?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** --security-opt no-new-privileges (docker's default is off). */
  noNewPrivileges?: boolean;
  /** --ulimit name=soft[:hard] */
  ulimits?: string[];
  /** --network: none (an empty namespace of its own), host (the host's), or bridge (networks below). */
  network?: 'none' | 'host' | 'bridge';
  /** bridge: the networks joined, in order (eth0 on the first); aliases are --network-alias. */
  networks?: { name: string; aliases: string[] }[];
  /** -p values, as given. */
  publish?: string[];
  /** -P: publish the image's ExposedPorts on free host ports. */
  publishAll?: boolean;
  /** --dns, --dns-search, --dns-option: the container's resolv.conf instead of the network's. */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** --add-host NAME:IP lines for /etc/hosts. */
  addHosts?: string[];
  memoryBytes?: number;
  /** --memory-swap: the memory+swap total, -1 unlimited. */
  memorySwapBytes?: number;
  memoryReservationBytes?: number;
  cpus?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  pidsLimit?: number;
  shmSizeBytes?: number;
}

export interface SpecInputs {
  image: ImageConfigBody;
  intent: CreateIntent;
  /** The user, resolved in the rootfs (exec-user.ts). */
  user: ExecUser;
  /** The container's hostname (its short id unless --hostname). */
  hostname: string;
  /** The seccomp profile to apply; undefined = none (--privileged or seccomp=unconfined). */
  seccomp?: Seccomp;
  /** What "all capabilities" means here (the engine's bounding set); default: every known one. */
  availableCaps?: readonly string[];
  /** none and bridge: the network namespace the engine makes at start (lo up), joined by path. */
  netnsPath?: string;
}

const CPU_PERIOD = 100_000;

function invalid(what: string, why: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `${what}: ${why}`);
}

/** argv = Entrypoint + Cmd, with docker's override rules. */
export function commandLine(image: ImageConfigBody, intent: CreateIntent): string[] {
  let entrypoint = image.Entrypoint ?? [];
  let cmd = image.Cmd ?? [];
  if (intent.entrypoint !== undefined) {
    entrypoint = intent.entrypoint === '' ? [] : [intent.entrypoint];
    cmd = [];
  }
  if (intent.cmd?.length) cmd = intent.cmd;
  const argv = [...entrypoint, ...cmd];
  if (!argv.length) throw invalid('no command specified', 'the image has no Entrypoint or Cmd: give a command after the image name');
  return argv;
}

/** defaults <- image <- -e, by key, the later winning (docker's replace-or-append). */
export function mergeEnv(layers: (readonly string[] | undefined)[]): string[] {
  const byKey = new Map<string, string>();
  for (const layer of layers) {
    for (const e of layer ?? []) {
      const i = e.indexOf('=');
      const key = i < 0 ? e : e.slice(0, i);
      if (!key) throw invalid(`environment "${e}"`, 'has no name');
      byKey.delete(key); // re-inserted last, so the order says who set it last
      byKey.set(key, i < 0 ? `${e}=` : e);
    }
  }
  return [...byKey.values()];
}

function capName(c: string): string {
  const up = c.toUpperCase();
  return up === 'ALL' ? 'ALL' : up.startsWith('CAP_') ? up : `CAP_${up}`;
}

/**
 * docker's rules: start from the defaults (or all, privileged), drop, then add; ALL works both
 * ways. "All" is what the engine can give (`available`, its own bounding set), as podman and
 * containerd do: a runner without CAP_SYS_RESOURCE cannot hand it out.
 */
export function capabilitySet(intent: CreateIntent, available: readonly string[] = CAPABILITIES): string[] {
  const known = new Set(CAPABILITIES);
  const adds = (intent.capAdd ?? []).map(capName);
  const drops = (intent.capDrop ?? []).map(capName);
  for (const c of [...adds, ...drops]) if (c !== 'ALL' && !known.has(c)) throw invalid(`capability "${c}"`, 'is not a Linux capability');
  let caps = new Set<string>(intent.privileged ? available : DEFAULT_CAPABILITIES);
  if (drops.includes('ALL')) caps = new Set();
  else for (const c of drops) caps.delete(c);
  if (adds.includes('ALL')) caps = new Set(available);
  else for (const c of adds) caps.add(c);
  return CAPABILITIES.filter((c) => caps.has(c));
}

export function rlimitsFromUlimits(ulimits: string[] = []): Rlimit[] {
  return ulimits.map((u) => {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(u);
    if (!m) throw invalid(`--ulimit ${u}`, 'must be NAME=SOFT[:HARD], e.g. nofile=1024:2048');
    const value = (s: string) => (s === '-1' ? 2 ** 64 - 1 : Number(s));
    const soft = value(m[2]!);
    const hard = m[3] === undefined ? soft : value(m[3]);
    if (soft > hard) throw invalid(`--ulimit ${u}`, 'the soft limit is above the hard one');
    return { type: `RLIMIT_${m[1]!.toUpperCase()}`, soft, hard };
  });
}

export function resourcesFromIntent(i: CreateIntent): Resources | undefined {
  const r: Resources = {};
  if (i.memoryBytes !== undefined || i.memorySwapBytes !== undefined || i.memoryReservationBytes !== undefined) {
    if (i.memorySwapBytes !== undefined && i.memorySwapBytes !== -1 && i.memoryBytes === undefined) {
      throw invalid('--memory-swap', 'needs --memory: it is the memory+swap total');
    }
    r.memory = {
      ...(i.memoryBytes !== undefined ? { limit: i.memoryBytes } : {}),
      ...(i.memorySwapBytes !== undefined ? { swap: i.memorySwapBytes } : {}),
      ...(i.memoryReservationBytes !== undefined ? { reservation: i.memoryReservationBytes } : {}),
    };
  }
  if (i.cpus !== undefined || i.cpuShares !== undefined || i.cpusetCpus !== undefined) {
    if (i.cpus !== undefined && !(i.cpus > 0)) throw invalid(`--cpus ${i.cpus}`, 'must be more than 0');
    r.cpu = {
      ...(i.cpus !== undefined ? { quota: Math.round(i.cpus * CPU_PERIOD), period: CPU_PERIOD } : {}),
      ...(i.cpuShares !== undefined ? { shares: i.cpuShares } : {}),
      ...(i.cpusetCpus !== undefined ? { cpus: i.cpusetCpus } : {}),
    };
  }
  if (i.pidsLimit !== undefined) r.pids = { limit: i.pidsLimit };
  return Object.keys(r).length ? r : undefined;
}

export function buildSpec(x: SpecInputs): Spec {
  const { image, intent } = x;
  const privileged = intent.privileged === true;
  const caps = capabilitySet(intent, x.availableCaps);
  const cwd = intent.workdir || image.WorkingDir || '/';
  if (!cwd.startsWith('/')) throw invalid(`working directory "${cwd}"`, 'must be absolute');
  const env = mergeEnv([
    [DEFAULT_PATH, `HOSTNAME=${x.hostname}`],
    intent.tty ? ['TERM=xterm'] : [],
    image.Env,
    intent.env,
    [`HOME=${x.user.home}`].filter(() => !hasKey(image.Env, 'HOME') && !hasKey(intent.env, 'HOME')),
  ]);
  const types: NamespaceType[] = ['pid', 'ipc', 'uts', 'mount', 'cgroup', ...(intent.network === 'host' ? [] : (['network'] as const))];
  const namespaces: Namespace[] = types.map((type) => (type === 'network' && x.netnsPath ? { type, path: x.netnsPath } : { type }));
  const resources = resourcesFromIntent(intent);
  return {
    ociVersion: '1.2.0',
    root: { path: 'rootfs', readonly: intent.readOnly === true },
    hostname: x.hostname,
    process: {
      terminal: intent.tty === true,
      user: { uid: x.user.uid, gid: x.user.gid, additionalGids: x.user.additionalGids },
      args: commandLine(image, intent),
      env,
      cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: intent.noNewPrivileges === true,
      rlimits: rlimitsFromUlimits(intent.ulimits),
    },
    mounts: defaultMounts({ shmSizeBytes: intent.shmSizeBytes ?? 64 * 1024 * 1024, privileged }),
    linux: {
      namespaces,
      ...(privileged ? {} : { maskedPaths: MASKED_PATHS, readonlyPaths: READONLY_PATHS }),
      ...(resources ? { resources } : {}),
      ...(x.seccomp && !privileged ? { seccomp: x.seccomp } : {}),
    },
  };
}

function hasKey(env: readonly string[] | undefined, key: string): boolean {
  return (env ?? []).some((e) => e === key || e.startsWith(`${key}=`));
}
