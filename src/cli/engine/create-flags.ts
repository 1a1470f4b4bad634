// `run`/`create` flags (docker's names) -> the engine's CreateRequest. Parsing and checks only.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CreateRequest } from '../../engine/create.js';
import { parseBytes } from '../../engine/mount-flags.js';
import type { CreateIntent } from '../../engine/specgen.js';
import { DEFAULT_NETWORK_NAME, validateNetworkName } from '../../network/conflist.js';
import { TsrunError } from '../../util/errors.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export interface CreateFlags {
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  name?: string;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  groupAdd: string[];
  entrypoint?: string;
  hostname?: string;
  volume: string[];
  mount: string[];
  tmpfs: string[];
  readOnly?: boolean;
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  cpus?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  pidsLimit?: string;
  device: string[];
  capAdd: string[];
  capDrop: string[];
  privileged?: boolean;
  securityOpt: string[];
  ulimit: string[];
  init?: boolean;
  network: string[];
  net: string[];
  networkAlias: string[];
  publish: string[];
  publishAll?: boolean;
  dns: string[];
  dnsSearch: string[];
  dnsOption: string[];
  addHost: string[];
  platform?: string;
  pull?: string;
  label: string[];
  logOpt: string[];
  stopSignal?: string;
  stopTimeout?: string;
  shmSize?: string;
}

export function addCreateFlags(cmd: Command, withDetach: boolean): Command {
  if (withDetach) cmd.option('-d, --detach', 'run in the background and print the container id');
  return cmd
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('--rm', 'remove the container when it exits')
    .option('--name <name>', 'name the container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid, and group')
    .option('--group-add <group>', 'add a supplementary group (repeatable)', collect, [])
    .option('--entrypoint <cmd>', 'override the image entrypoint ("" for none)')
    .option('-h, --hostname <name>', 'container hostname')
    .option('-v, --volume <[src:]dst[:ro]>', 'bind a host path or a named volume (repeatable)', collect, [])
    .option('--mount <spec>', 'type=bind|volume|tmpfs,source=,target=,readonly (repeatable)', collect, [])
    .option('--tmpfs <dst[:opts]>', 'mount a tmpfs (repeatable)', collect, [])
    .option('--read-only', 'mount the root filesystem read-only')
    .option('-m, --memory <bytes>', 'memory limit (64m, 1g)')
    .option('--memory-swap <bytes>', 'memory+swap limit (-1: unlimited swap)')
    .option('--memory-reservation <bytes>', 'memory soft limit')
    .option('--cpus <n>', 'CPU quota in CPUs (0.5 = half a CPU)')
    .option('-c, --cpu-shares <n>', 'relative CPU weight (1024 = default)')
    .option('--cpuset-cpus <list>', 'CPUs to run on (0-3, 0,1)')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--device <host[:container][:rwm]>', 'add a host device (repeatable)', collect, [])
    .option('--cap-add <cap>', 'add a capability (repeatable)', collect, [])
    .option('--cap-drop <cap>', 'drop a capability (repeatable)', collect, [])
    .option('--privileged', 'all capabilities, no seccomp or masks, all devices visible in /sys')
    .option('--security-opt <opt>', 'no-new-privileges | seccomp=unconfined | seccomp=FILE (repeatable)', collect, [])
    .option('--ulimit <name=soft[:hard]>', 'set a resource limit (repeatable)', collect, [])
    .option('--init', 'run an init (catatonit) as pid 1 that reaps zombies and forwards signals')
    .option('--network <net>', 'bridge (default: the default network), a network name (repeatable), none or host', collect, [])
    .option('--net <net>', 'alias of --network', collect, [])
    .option('--network-alias <name>', 'another name on user-defined networks (repeatable)', collect, [])
    .option('-p, --publish <[ip:][hostPort:]port[/proto]>', 'publish a container port on the host (repeatable)', collect, [])
    .option('-P, --publish-all', 'publish the image’s exposed ports on free host ports')
    .option('--dns <ip>', 'a name server for the container (repeatable)', collect, [])
    .option('--dns-search <domain>', 'a search domain (repeatable)', collect, [])
    .option('--dns-option <opt>', 'a resolv.conf option (repeatable)', collect, [])
    .option('--add-host <name:ip>', 'an /etc/hosts line (ip "host-gateway": the host) (repeatable)', collect, [])
    .option('--platform <os/arch>', 'pick this platform when pulling')
    .option('--pull <policy>', 'missing (default), always, never')
    .option('-l, --label <k=v>', 'set a label (repeatable)', collect, [])
    .option('--log-opt <k=v>', 'max-size=10m, max-file=3 (repeatable)', collect, [])
    .option('--stop-signal <signal>', 'signal to stop the container (default: the image’s, else SIGTERM)')
    .option('--stop-timeout <seconds>', 'seconds to wait after the stop signal before SIGKILL')
    .option('--shm-size <bytes>', 'size of /dev/shm (default 64m)');
}

function bad(msg: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', msg);
}

function num(flag: string, v: string | undefined, integer = true): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!v.trim() || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw bad(`${flag} ${v}: not a number`);
  return n;
}

function bytes(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v === '-1') return -1;
  return parseBytes(flag, v);
}

function envFileLines(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw bad(`--env-file ${file}: ${(e as Error).message}`);
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .flatMap((l) => envFlag(l));
}

function keyValues(flag: string, list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw bad(`${flag} ${kv}: expected KEY=VALUE`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** -e NAME without "=": the value comes from our environment, and an unset NAME is not set (docker's rule). */
function envFlag(e: string): string[] {
  if (e.includes('=')) return [e];
  const v = process.env[e];
  return v === undefined ? [] : [`${e}=${v}`];
}

/**
 * --network values (repeatable, or comma-separated as podman takes them): none, host, or
 * networks; "bridge" (docker's word) and no flag mean the default network. Aliases are for
 * user-defined networks only (docker's rule: the default network resolves no names).
 */
export function networkFlags(values: string[], aliases: string[]): Pick<CreateIntent, 'network' | 'networks'> {
  const names = values.flatMap((v) => v.split(',')).map((v) => v.trim());
  if (names.some((n) => n === '')) throw bad('--network: an empty network name');
  for (const mode of ['none', 'host'] as const) {
    if (names.includes(mode)) {
      if (names.length > 1) throw bad(`--network ${mode} cannot be combined with other networks`);
      if (aliases.length) throw bad(`--network-alias needs a user-defined network, not --network ${mode}`);
      return { network: mode };
    }
  }
  const nets = [...new Set(names.length ? names.map((n) => (n === 'bridge' || n === 'default' ? DEFAULT_NETWORK_NAME : n)) : [DEFAULT_NETWORK_NAME])];
  for (const n of nets) validateNetworkName(n);
  if (aliases.length && nets.every((n) => n === DEFAULT_NETWORK_NAME)) {
    throw bad('--network-alias needs a user-defined network: the default network resolves no names (`tsrun network create NAME`)');
  }
  return { network: 'bridge', networks: nets.map((name) => ({ name, aliases: name === DEFAULT_NETWORK_NAME ? [] : aliases })) };
}

export function createRequest(image: string, cmd: string[], o: CreateFlags): CreateRequest {
  const net = networkFlags([...o.network, ...o.net], o.networkAlias);
  let noNewPrivileges: boolean | undefined;
  let seccomp: string | undefined;
  for (const s of o.securityOpt) {
    if (s === 'no-new-privileges' || s === 'no-new-privileges:true' || s === 'no-new-privileges=true') noNewPrivileges = true;
    else if (s.startsWith('seccomp=') || s.startsWith('seccomp:')) seccomp = s.slice(8);
    else throw bad(`--security-opt ${s}: supported are no-new-privileges, seccomp=unconfined, seccomp=FILE`);
  }
  const logOpts = keyValues('--log-opt', o.logOpt);
  for (const k of Object.keys(logOpts)) if (k !== 'max-size' && k !== 'max-file') throw bad(`--log-opt ${k}: supported are max-size and max-file`);
  const pull = o.pull ?? 'missing';
  if (pull !== 'missing' && pull !== 'always' && pull !== 'never') throw bad(`--pull ${pull}: missing, always or never`);
  const intent: CreateIntent = {
    ...(cmd.length ? { cmd } : {}),
    ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint } : {}),
    env: [...o.envFile.flatMap(envFileLines), ...o.env.flatMap(envFlag)],
    ...(o.workdir ? { workdir: o.workdir } : {}),
    ...(o.hostname ? { hostname: o.hostname } : {}),
    tty: o.tty === true,
    readOnly: o.readOnly === true,
    privileged: o.privileged === true,
    capAdd: o.capAdd,
    capDrop: o.capDrop,
    ...(noNewPrivileges ? { noNewPrivileges } : {}),
    ulimits: o.ulimit,
    ...net,
    ...(o.publish.length ? { publish: o.publish } : {}),
    ...(o.publishAll ? { publishAll: true } : {}),
    ...(o.dns.length ? { dns: o.dns } : {}),
    ...(o.dnsSearch.length ? { dnsSearch: o.dnsSearch } : {}),
    ...(o.dnsOption.length ? { dnsOptions: o.dnsOption } : {}),
    ...(o.addHost.length ? { addHosts: o.addHost } : {}),
  };
  const set = <K extends keyof CreateIntent>(k: K, v: CreateIntent[K] | undefined) => {
    if (v !== undefined) intent[k] = v;
  };
  set('memoryBytes', bytes('--memory', o.memory));
  set('memorySwapBytes', bytes('--memory-swap', o.memorySwap));
  set('memoryReservationBytes', bytes('--memory-reservation', o.memoryReservation));
  set('cpus', num('--cpus', o.cpus, false));
  set('cpuShares', num('--cpu-shares', o.cpuShares));
  set('cpusetCpus', o.cpusetCpus);
  set('pidsLimit', num('--pids-limit', o.pidsLimit));
  set('shmSizeBytes', bytes('--shm-size', o.shmSize));
  return {
    image,
    intent,
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    groupAdd: o.groupAdd,
    labels: keyValues('--label', o.label),
    volumes: o.volume,
    mounts: o.mount,
    tmpfs: o.tmpfs,
    devices: o.device,
    init: o.init === true,
    autoRemove: o.rm === true,
    interactive: o.interactive === true,
    ...(seccomp ? { seccomp } : {}),
    ...(logOpts['max-size'] ? { logMaxSize: parseBytes('--log-opt max-size', logOpts['max-size']) } : {}),
    ...(logOpts['max-file'] ? { logMaxFiles: num('--log-opt max-file', logOpts['max-file'])! } : {}),
    ...(o.stopSignal ? { stopSignal: o.stopSignal } : {}),
    ...(o.stopTimeout !== undefined ? { stopTimeout: num('--stop-timeout', o.stopTimeout)! } : {}),
    pull,
  };
}
