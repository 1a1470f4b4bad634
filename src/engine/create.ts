// `tsrun create` (and the first half of `run`): image + flags -> a container record, its
// overlay rootfs and its OCI spec (config.json in the container's directory, which is the
// bundle). No process yet: `start` launches it (launch.ts). Each step registers its undo, so
// a failure leaves no record, mount or volume behind; the record is written first, so even a
// killed create leaves what `rm -f` needs.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:fs';
import { join, posix } from 'node:path';
import type { ImageConfigBody } from '../image/manifest.js';
import { mountRootfs, removeRootfs } from '../image/rootfs.js';
import { boundingSet } from '../linux/capabilities.js';
import { copyOut, readFileInRoot } from '../linux/in-root.js';
import { native } from '../native/index.js';
import { planCgroup } from '../runtime/container-setup.js';
import { compileSeccompCached, seccompCacheDir } from '../runtime/seccomp-cache.js';
import { Undo } from '../runtime/undo.js';
import type { Device, DeviceCgroup, Mount, Seccomp, Spec } from '../spec/types.js';
import { TsrunError, wrap } from '../util/errors.js';
import { type ContainerRecord, type MountRecord, randomName, validateName } from './container-store.js';
import type { EngineContext } from './context.js';
import { STOP_TIMEOUT } from './defaults.js';
import { addHostLine, writeEtcFiles } from './etc-files.js';
import { planPorts } from './network-setup.js';
import { validateDnsName } from '../network/conflist.js';
import { isIPv4 } from '../network/ipv4.js';
import { resolveExecUser } from './exec-user.js';
import { findLocalImage, type LocalImage } from './image-lookup.js';
import { type DeviceRequest, type MountRequest, parseDeviceFlag, parseMountFlag, parseTmpfsFlag, parseVolumeFlag } from './mount-flags.js';
import { defaultSeccompProfile } from './seccomp-profile.js';
import { buildSpec, capabilitySet, type CreateIntent, resourcesFromIntent } from './specgen.js';

const PASSWD_MAX = 4 * 1024 * 1024;
/** Where --init puts catatonit (podman's init) in the container. */
export const INIT_PATH = '/run/tsrun-init';
export const INIT_BINARY = '/usr/bin/catatonit';

export interface CreateRequest {
  image: string;
  intent: CreateIntent;
  name?: string;
  /** -u USER[:GROUP]; the image's User otherwise. */
  user?: string;
  groupAdd?: string[];
  labels?: Record<string, string>;
  volumes?: string[];
  mounts?: string[];
  tmpfs?: string[];
  devices?: string[];
  init?: boolean;
  autoRemove?: boolean;
  interactive?: boolean;
  /** --security-opt seccomp=: 'unconfined', a profile file, or the default. */
  seccomp?: string;
  logMaxSize?: number;
  logMaxFiles?: number;
  stopSignal?: string;
  stopTimeout?: number;
  /** Pull the image when it is missing (the CLI passes its pull with progress). */
  pull?: 'missing' | 'always' | 'never';
  pullImage?: (ref: string) => Promise<void>;
}

export async function resolveImage(ctx: EngineContext, r: CreateRequest): Promise<LocalImage> {
  const policy = r.pull ?? 'missing';
  let found = policy === 'always' ? undefined : findLocalImage(ctx.images, r.image);
  if (!found) {
    if (policy === 'never' || !r.pullImage) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `no such image: ${r.image}`, {
        hint: 'pull or load it first (`tsrun pull`, `tsrun load`), or drop --pull=never',
      });
    }
    await r.pullImage(r.image);
    found = findLocalImage(ctx.images, r.image);
    if (!found) throw new TsrunError('ERR_INVALID_ARGUMENT', `no such image after pulling: ${r.image}`);
  }
  return found;
}

function seccompFor(r: CreateRequest, caps: string[]): Seccomp | undefined {
  if (r.intent.privileged || r.seccomp === 'unconfined') return undefined;
  if (r.seccomp) {
    try {
      return JSON.parse(readFileSync(r.seccomp, 'utf8')) as Seccomp;
    } catch (e) {
      throw wrap(e, `--security-opt seccomp=${r.seccomp}`);
    }
  }
  return defaultSeccompProfile({ capabilities: caps });
}

function relInRoot(p: string): string {
  return posix.normalize(p).replace(/^\/+/, '');
}

function readImageFile(rootfs: string, path: string): string | null {
  const b = readFileInRoot(rootfs, path, PASSWD_MAX);
  return b ? b.toString('utf8') : null;
}

/** docker's SetupWorkingDirectory: a missing working directory is made, owned by the user. */
export function ensureWorkdir(rootfs: string, cwd: string, uid: number, gid: number): void {
  const rel = relInRoot(cwd);
  if (!rel) return;
  const rootFd = native.openRoot(rootfs);
  try {
    try {
      native.closeFd(native.openInRoot(rootFd, rel, native.inRootFlags.O_PATH));
      return;
    } catch {
      /* missing: made below */
    }
    native.applyEntry(rootFd, { type: 'dir', path: rel, mode: 0o755, uid, gid, mtimeSec: Date.now() / 1000 });
  } catch (e) {
    throw wrap(e, `create the working directory ${cwd} in the container`);
  } finally {
    native.closeFd(rootFd);
  }
}

function deviceEntries(reqs: DeviceRequest[]): { devices: Device[]; rules: DeviceCgroup[] } {
  const devices: Device[] = [];
  const rules: DeviceCgroup[] = [];
  for (const d of reqs) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(d.host);
    } catch (e) {
      throw wrap(e, `--device ${d.host}`);
    }
    const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
    if (!type) throw new TsrunError('ERR_INVALID_ARGUMENT', `--device ${d.host}: not a character or block device`);
    const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
    const minor = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n));
    devices.push({ type, path: d.container, major, minor, fileMode: st.mode & 0o777, uid: 0, gid: 0 });
    rules.push({ allow: true, type, major, minor, access: d.permissions });
  }
  return { devices, rules };
}

function mountRequests(r: CreateRequest, image: ImageConfigBody): MountRequest[] {
  const reqs = [...(r.volumes ?? []).map(parseVolumeFlag), ...(r.mounts ?? []).map(parseMountFlag), ...(r.tmpfs ?? []).map(parseTmpfsFlag)];
  const seen = new Set<string>();
  for (const m of reqs) {
    if (seen.has(m.destination)) throw new TsrunError('ERR_INVALID_ARGUMENT', `duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
  }
  // The image's VOLUMEs not covered by a user mount: anonymous volumes (docker's default).
  for (const v of Object.keys(image.Volumes ?? {}).sort()) {
    const dest = posix.normalize(v).replace(/\/+$/, '') || '/';
    if (dest === '/' || seen.has(dest)) continue;
    seen.add(dest);
    reqs.push({ type: 'volume', destination: dest, readOnly: false, noCopy: false });
  }
  return reqs;
}

/** Named and anonymous volumes are made (and seeded from the image when empty) here. */
async function materializeMounts(
  ctx: EngineContext,
  reqs: MountRequest[],
  rootfs: string,
  undo: Undo,
  anonymous: string[],
): Promise<{ mounts: Mount[]; records: MountRecord[] }> {
  const mounts: Mount[] = [];
  const records: MountRecord[] = [];
  for (const m of reqs) {
    if (m.type === 'tmpfs') {
      mounts.push({ destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: m.options });
      records.push({ type: 'tmpfs', source: 'tmpfs', destination: m.destination, readOnly: m.options.includes('ro') });
      continue;
    }
    let source: string;
    let name: string | undefined;
    if (m.type === 'bind') {
      try {
        statSync(m.source);
      } catch (e) {
        throw wrap(e, `bind mount source ${m.source}`);
      }
      source = m.source;
    } else {
      const existed = m.name ? ctx.volumes.get(m.name) !== null : false;
      const v = ctx.volumes.create(m.name, m.name ? {} : { anonymous: true });
      name = v.Name;
      if (!m.name) anonymous.push(v.Name);
      if (!existed) {
        const n = v.Name;
        undo.onFail(() => ctx.volumes.remove(n, { inUse: () => [] }));
      }
      source = v.Mountpoint;
      // docker's copyExistingContents: only into an empty volume, only when the image has it.
      if (!m.noCopy && ctx.volumes.isEmpty(v.Name) && !ctx.volumes.isSeeded(v.Name)) {
        await seedVolume(rootfs, m.destination, source);
        ctx.volumes.markSeeded(v.Name);
      }
    }
    const opts = ['rbind', m.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'];
    mounts.push({ destination: m.destination, type: 'bind', source, options: opts });
    records.push({ type: m.type, source, destination: m.destination, readOnly: m.readOnly, ...(name ? { name } : {}) });
  }
  return { mounts, records };
}

async function seedVolume(rootfs: string, destination: string, data: string): Promise<void> {
  const rootFd = native.openRoot(rootfs);
  let exists = false;
  try {
    native.closeFd(native.openInRoot(rootFd, relInRoot(destination), constants.O_DIRECTORY));
    exists = true;
  } catch {
    /* nothing in the image there */
  } finally {
    native.closeFd(rootFd);
  }
  if (!exists) return;
  try {
    await copyOut(rootfs, `${relInRoot(destination)}/.`, data, { keepSetid: true });
  } catch (e) {
    throw wrap(e, `copy the image's ${destination} into its volume`);
  }
}

function userString(r: CreateRequest, image: ImageConfigBody): string {
  return r.user ?? image.User ?? '';
}

/** Everything but the process: the record, the rootfs, volumes, config.json. */
/** Bad input changes nothing: limits this host cannot apply and a bad seccomp profile are refused before anything exists. */
function checkBeforeCreate(ctx: EngineContext, r: CreateRequest): Seccomp | undefined {
  for (const n of r.intent.networks ?? []) {
    ctx.networks.store.need(n.name);
    for (const a of n.aliases) validateDnsName(a);
  }
  for (const h of r.intent.addHosts ?? []) addHostLine(h, '0.0.0.0');
  checkResolvFlags(r.intent);
  const resources = resourcesFromIntent(r.intent);
  if (resources) planCgroup(ctx.runtime, { ociVersion: '1.2.0', linux: { resources } }, 'check');
  const seccomp = seccompFor(r, capabilitySet(r.intent, boundingSet()));
  if (seccomp) compileSeccompCached(seccomp, seccompCacheDir(ctx.runtime));
  return seccomp;
}

/** --dns must be addresses, --dns-search and --dns-option single words: each is one resolv.conf token. */
function checkResolvFlags(i: CreateRequest['intent']): void {
  for (const d of i.dns ?? []) {
    if (!isIPv4(d) && !/^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$/.test(d)) throw new TsrunError('ERR_INVALID_ARGUMENT', `--dns ${JSON.stringify(d)}: not an IP address`);
  }
  for (const [flag, list] of [
    ['--dns-search', i.dnsSearch],
    ['--dns-option', i.dnsOptions],
  ] as const) {
    for (const v of list ?? []) if (!/^\S+$/.test(v)) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${JSON.stringify(v)}: one word, no spaces`);
  }
}

export async function createContainer(ctx: EngineContext, r: CreateRequest): Promise<ContainerRecord> {
  const seccomp = checkBeforeCreate(ctx, r);
  const img = await resolveImage(ctx, r);
  const image = img.resolved.config.config ?? {};
  const diffIds = img.resolved.config.rootfs.diff_ids;
  const id = ctx.containers.newId();
  const undo = new Undo();
  const unlockNames = ctx.containers.lockNames();
  let rec: ContainerRecord;
  try {
    const name = r.name ?? uniqueRandomName(ctx);
    validateName(name);
    const clash = ctx.containers.all().find((c) => c.name === name);
    if (clash) {
      throw new TsrunError('ERR_CONTAINER_EXISTS', `the container name "${name}" is already in use by ${clash.id.slice(0, 12)}`, {
        hint: 'remove that container (`tsrun rm`) or pick another --name',
      });
    }
    rec = {
      id,
      name,
      created: new Date().toISOString(),
      image: r.image,
      imageRef: img.ref,
      imageId: img.resolved.configDigest,
      manifestDigest: img.resolved.digest,
      diffIds,
      intent: r.intent,
      args: [],
      user: userString(r, image),
      env: [],
      workdir: '/',
      labels: { ...(image.Labels ?? {}), ...(r.labels ?? {}) },
      stopSignal: r.stopSignal ?? image.StopSignal ?? 'SIGTERM',
      stopTimeout: r.stopTimeout ?? STOP_TIMEOUT,
      autoRemove: r.autoRemove === true,
      interactive: r.interactive === true,
      tty: r.intent.tty === true,
      logMaxSize: r.logMaxSize ?? 0,
      logMaxFiles: r.logMaxFiles ?? 1,
      mounts: [],
      anonymousVolumes: [],
      restartCount: 0,
      phase: 'creating',
    };
    ctx.containers.write(rec);
    undo.onFail(() => ctx.containers.removeDir(id));
  } finally {
    unlockNames();
  }
  const unlock = ctx.containers.lock(id);
  try {
    const rootfs = mountRootfs(ctx.images, id, diffIds, { existingDir: true });
    undo.onFail(() => removeRootfs(ctx.images, id));
    const user = resolveExecUser(rec.user, readImageFile(rootfs.merged, 'etc/passwd'), readImageFile(rootfs.merged, 'etc/group'), r.groupAdd ?? []);
    const spec: Spec = buildSpec({
      image,
      intent: r.intent,
      user,
      hostname: r.intent.hostname ?? id.slice(0, 12),
      availableCaps: boundingSet(),
      ...(seccomp ? { seccomp } : {}),
      ...(r.intent.network !== 'host' ? { netnsPath: ctx.networks.netnsPath(id) } : {}),
    });
    spec.root = { path: 'merged', readonly: r.intent.readOnly === true };
    const { mounts, records } = await materializeMounts(ctx, mountRequests(r, image), rootfs.merged, undo, rec.anonymousVolumes);
    spec.mounts = [...(spec.mounts ?? []), ...mounts];
    if (r.devices?.length) {
      const { devices, rules } = deviceEntries(r.devices.map(parseDeviceFlag));
      spec.linux!.devices = devices;
      spec.linux!.resources = { ...(spec.linux!.resources ?? {}), devices: [{ allow: false, access: 'rwm' }, ...rules] };
    }
    if (r.init) {
      spec.mounts.push({ destination: INIT_PATH, type: 'bind', source: INIT_BINARY, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
      spec.process!.args = [INIT_PATH, '--', ...spec.process!.args!];
    }
    spec.annotations = { 'io.tsrun.container.name': rec.name, 'io.tsrun.image': img.ref };
    const published = planPorts(ctx, r.intent, image.ExposedPorts);
    rec.ports = published.ports;
    if (published.chosen.length) rec.chosenPorts = published.chosen;
    const i = r.intent;
    const etc = {
      hostname: spec.hostname!,
      name: rec.name,
      network: i.network ?? 'none',
      aliases: [...new Set((i.networks ?? []).flatMap((n) => n.aliases))],
      ...(i.dns ? { dns: i.dns } : {}),
      ...(i.dnsSearch ? { dnsSearch: i.dnsSearch } : {}),
      ...(i.dnsOptions ? { dnsOptions: i.dnsOptions } : {}),
      ...(i.addHosts ? { addHosts: i.addHosts } : {}),
    };
    spec.mounts.push(...writeEtcFiles(ctx.containers.dir(id), etc, i.readOnly === true));
    ensureWorkdir(rootfs.merged, spec.process!.cwd, user.uid, user.gid);
    writeFileSync(join(ctx.containers.dir(id), 'config.json'), JSON.stringify(spec), { mode: 0o600 });
    rec.args = spec.process!.args ?? [];
    rec.env = spec.process!.env ?? [];
    rec.workdir = spec.process!.cwd;
    rec.mounts = records;
    rec.phase = 'created';
    ctx.containers.write(rec);
    undo.commit();
    return rec;
  } catch (e) {
    const err = e instanceof TsrunError ? e : wrap(e, 'create the container');
    err.cleanupErrors.push(...undo.rollback());
    throw err;
  } finally {
    unlock();
    if (!ctx.containers.ids().includes(id)) ctx.containers.unlinkLock(id);
  }
}

function uniqueRandomName(ctx: EngineContext): string {
  const taken = new Set(ctx.containers.all().map((c) => c.name));
  for (let i = 0; i < 50; i++) {
    const n = randomName();
    if (!taken.has(n)) return n;
  }
  return `tsrun_${ctx.containers.newId().slice(0, 12)}`;
}
