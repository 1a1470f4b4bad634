// The two kinds of build step that make a layer. RUN: a container of the engine's runtime core
// over the stage's layers (overlay, no copy), with the image's env, user and workdir and the
// build's network; its upper directory becomes the layer. COPY/ADD: the same overlay, written
// only through the fd-based in-root operations (a symlink in the image or the context can never
// make a write land outside the step's root).
import { closeSync, createReadStream, openSync, readSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { type StoredLayer, storeLayerFromUpper } from '../image/commit.js';
import { MediaType } from '../image/manifest.js';
import { unpackLayer } from '../image/layer/unpack.js';
import { boundingSet } from '../linux/capabilities.js';
import { copyIn, readFileInRoot } from '../linux/in-root.js';
import { native } from '../native/index.js';
import { createContainer as runtimeCreate } from '../runtime/create.js';
import { deleteContainer as runtimeDelete } from '../runtime/lifecycle.js';
import type { ImageConfigBody } from '../image/manifest.js';
import { TsrunError, wrap } from '../util/errors.js';
import type { EngineContext } from '../engine/context.js';
import { ensureWorkdir } from '../engine/create.js';
import { writeEtcFiles } from '../engine/etc-files.js';
import { etcNetwork } from '../engine/network-setup.js';
import { resolveExecUser } from '../engine/exec-user.js';
import { DEFAULT_CAPABILITIES } from '../engine/defaults.js';
import { defaultSeccompProfile } from '../engine/seccomp-profile.js';
import { buildSpec } from '../engine/specgen.js';
import type { Source } from './context.js';
import { mountStepRootfs } from './step-rootfs.js';

export interface StepOutput {
  /** fds the RUN process writes to (the CLI's stdout and stderr). */
  out: number;
  err: number;
}

export interface LayerOptions {
  /** SOURCE_DATE_EPOCH: every entry's mtime in the layer. */
  mtime?: number;
}

const PASSWD_MAX = 4 * 1024 * 1024;

function imageFile(root: string, rel: string): string | null {
  const b = readFileInRoot(root, rel, PASSWD_MAX);
  return b ? b.toString('utf8') : null;
}

function randomId(): string {
  return `build-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}`;
}

/** Mount points are the runtime's, not the step's: left out of the layer (docker's init layer). */
function mountPoints(dests: string[]): (p: string) => boolean {
  const set = new Set(dests);
  return (p) => set.has(p);
}

/** RUN's network: none, host, or a network's name (the default network for "bridge"). */
export type BuildNetwork = string;

export async function runStep(
  ctx: EngineContext,
  o: { diffIds: string[]; config: ImageConfigBody; argv: string[]; env: string[]; network: BuildNetwork; output: StepOutput; layer: LayerOptions },
): Promise<StoredLayer> {
  const fs = mountStepRootfs(ctx.images, o.diffIds);
  const id = randomId();
  let created = false;
  const nullFd = openSync('/dev/null', 'r');
  const bridged = o.network !== 'none' && o.network !== 'host';
  const ownNs = o.network !== 'host';
  try {
    // A RUN is a container with a namespace of its own (lo up) for the step's life, on the
    // network when bridged (docker build's default).
    const atts = ownNs ? await ctx.networks.setUp({ id, name: id, networks: bridged ? [{ name: o.network, aliases: [] }] : [], ports: [] }) : [];
    const attached = bridged ? etcNetwork(atts) : undefined;
    const mode = bridged ? 'bridge' : (o.network as 'none' | 'host');
    const user = resolveExecUser(o.config.User ?? '', imageFile(fs.merged, 'etc/passwd'), imageFile(fs.merged, 'etc/group'));
    const availableCaps = boundingSet();
    const spec = buildSpec({
      image: { ...o.config, Entrypoint: [], Cmd: o.argv },
      intent: { entrypoint: '', cmd: o.argv, env: o.env, network: mode },
      user,
      hostname: 'tsrun-build',
      availableCaps,
      ...(ownNs ? { netnsPath: ctx.networks.netnsPath(id) } : {}),
      // RUN gets docker's default capabilities, and the default profile rendered for them.
      seccomp: defaultSeccompProfile({ capabilities: [...DEFAULT_CAPABILITIES] }),
    });
    spec.root = { path: fs.merged, readonly: false };
    spec.mounts = [
      ...(spec.mounts ?? []),
      ...writeEtcFiles(fs.dir, { hostname: 'tsrun-build', name: 'tsrun-build', network: mode, ...(attached ? { attached } : {}) }, false),
    ];
    ensureWorkdir(fs.merged, spec.process!.cwd, user.uid, user.gid);
    writeFileSync(join(fs.dir, 'config.json'), JSON.stringify(spec), { mode: 0o600 });
    const stdio: [number, number, number] = [nullFd, o.output.out, o.output.err];
    const r = await runtimeCreate(ctx.runtime, {
      id,
      bundle: fs.dir,
      mode: 'run',
      detach: false,
      spawner: (plan, cg, keep) => native.spawn(plan, cg, keep, stdio),
    });
    created = true;
    // ^C or a stop of the build ends the step's container; the finally below then cleans up
    // (no mount, cgroup or state left behind by an interrupted build).
    let interrupted: NodeJS.Signals | undefined;
    const stop = (sig: NodeJS.Signals) => {
      interrupted = sig;
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        /* exited */
      }
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const sig of signals) process.on(sig, stop);
    let st: Awaited<ReturnType<typeof native.waitPidAsync>>;
    try {
      st = await native.waitPidAsync(r.pid);
    } finally {
      for (const sig of signals) process.off(sig, stop);
    }
    if (interrupted) throw Object.assign(new TsrunError('ERR_CHILD_FAILED', `interrupted (${interrupted})`), { exitCode: 130 });
    if (st.code !== 0) {
      throw new TsrunError('ERR_CHILD_FAILED', `the command exited with status ${st.code}${st.signal ? ` (signal ${st.signal})` : ''}`);
    }
    return await storeLayerFromUpper(ctx.images, fs.upper, MediaType.OciLayerGzip, {
      exclude: mountPoints((spec.mounts ?? []).map((m) => m.destination)),
      ...(o.layer.mtime !== undefined ? { mtime: o.layer.mtime } : {}),
    });
  } finally {
    closeSync(nullFd);
    if (created || ctx.runtime.store.ids().includes(id)) await runtimeDelete(ctx.runtime, id, true).catch(() => undefined);
    try {
      if (ownNs) await ctx.networks.tearDown(id);
    } finally {
      fs.remove();
    }
  }
}

export interface CopyItem {
  /** A host path to copy (the context, or a staging dir of another stage's files). */
  source: Source;
  /** Keep this entry (.dockerignore), by host path. */
  keep?: (hostPath: string) => boolean;
  /** ADD: false for a file fetched from a URL (never extracted). */
  extract?: boolean;
}

/** Make `rel` (and its parents) a directory in the root when missing, never changing an existing one. */
function ensureDir(root: string, rel: string, owner?: { uid: number; gid: number }): void {
  if (!rel) return;
  const rootFd = native.openRoot(root);
  try {
    try {
      native.closeFd(native.openInRoot(rootFd, rel, native.inRootFlags.O_PATH | native.inRootFlags.O_DIRECTORY));
      return;
    } catch {
      /* missing: made below */
    }
    native.applyEntry(rootFd, { type: 'dir', path: rel, mode: 0o755, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtimeSec: Date.now() / 1000 });
  } finally {
    native.closeFd(rootFd);
  }
}

/** COPY/ADD destination rules: a trailing "/", several sources or a directory source make DEST a directory. */
export function copyDestination(dest: string, workdir: string): { rel: string; isDir: boolean } {
  const abs = dest.startsWith('/') ? dest : posix.join(workdir || '/', dest);
  const isDir = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  return { rel: posix.normalize(abs).replace(/^\/+/, '').replace(/\/+$/, ''), isDir };
}

export async function copyStep(
  ctx: EngineContext,
  o: {
    diffIds: string[];
    config: ImageConfigBody;
    items: CopyItem[];
    dest: string;
    chown?: string;
    chmod?: number;
    /** ADD: a local tar source is extracted into DEST. */
    extractTars?: boolean;
    layer: LayerOptions;
  },
): Promise<StoredLayer> {
  const fs = mountStepRootfs(ctx.images, o.diffIds);
  try {
    const d = copyDestination(o.dest, o.config.WorkingDir ?? '/');
    const owner = o.chown ? resolveExecUser(o.chown, imageFile(fs.merged, 'etc/passwd'), imageFile(fs.merged, 'etc/group')) : undefined;
    const own = owner ? { uid: owner.uid, gid: owner.gid } : { uid: 0, gid: 0 };
    const intoDir = d.isDir || o.items.length > 1 || o.items.some((i) => i.source.isDir);
    if (o.items.length > 1 && !d.isDir)
      throw new TsrunError('ERR_INVALID_ARGUMENT', `with several sources the destination must be a directory ending in "/" (got "${o.dest}")`);
    if (intoDir) ensureDir(fs.merged, d.rel, owner ? own : undefined);
    else ensureDir(fs.merged, posix.dirname(d.rel) === '.' ? '' : posix.dirname(d.rel));
    for (const item of o.items) {
      const s = item.source;
      if (o.extractTars && item.extract !== false && !s.isDir && isTar(s.hostPath)) {
        await extractTar(fs.merged, d.rel, s.hostPath);
        continue;
      }
      const opts = {
        followLink: true,
        owner: own,
        ...(o.chmod !== undefined ? { chmod: o.chmod } : {}),
        ...(o.layer.mtime !== undefined ? { mtimeSec: o.layer.mtime } : {}),
        ...(item.keep ? { filter: item.keep } : {}),
      };
      // A directory source copies its contents (docker's rule), a file goes into DEST/ or becomes DEST.
      if (s.isDir) await copyIn(`${s.hostPath}/.`, fs.merged, d.rel || '.', opts);
      else await copyIn(s.hostPath, fs.merged, intoDir ? `${d.rel || '.'}/` : d.rel, opts);
    }
    return await storeLayerFromUpper(ctx.images, fs.upper, MediaType.OciLayerGzip, o.layer.mtime !== undefined ? { mtime: o.layer.mtime } : {});
  } finally {
    fs.remove();
  }
}

function isTar(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(512);
    const n = readSync(fd, b, 0, 512, 0);
    if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true; // gzip: ADD extracts compressed tars too
    if (n >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return true; // zstd
    return n >= 262 && b.toString('latin1', 257, 262) === 'ustar';
  } finally {
    closeSync(fd);
  }
}

/** ADD of a local tar: extracted in-root at DEST with the layer unpacker's rules (a hostile tar cannot escape). */
async function extractTar(root: string, destRel: string, tarPath: string): Promise<void> {
  ensureDir(root, destRel);
  const rootFd = native.openRoot(root);
  let destFd = -1;
  try {
    destFd = native.openInRoot(rootFd, destRel, native.inRootFlags.O_PATH | native.inRootFlags.O_DIRECTORY);
    const head = Buffer.alloc(4);
    const fd = openSync(tarPath, 'r');
    readSync(fd, head, 0, 4, 0);
    closeSync(fd);
    const type =
      head[0] === 0x1f && head[1] === 0x8b ? MediaType.OciLayerGzip : head.readUInt32LE(0) === 0xfd2fb528 ? MediaType.OciLayerZstd : MediaType.OciLayer;
    await unpackLayer(createReadStream(tarPath), type, `/proc/self/fd/${destFd}`, { layerName: `ADD ${tarPath}` });
  } catch (e) {
    throw wrap(e, `ADD ${tarPath}: extract into /${destRel}`);
  } finally {
    if (destFd >= 0) native.closeFd(destFd);
    native.closeFd(rootFd);
  }
}

/** Whether `path` is a directory in the stage's root (resolved in-root). */
export function workdirExists(ctx: EngineContext, diffIds: string[], path: string): boolean {
  if (path === '/' || !diffIds.length) return path === '/';
  const fs = mountStepRootfs(ctx.images, diffIds);
  try {
    const rootFd = native.openRoot(fs.merged);
    try {
      native.closeFd(native.openInRoot(rootFd, path.replace(/^\/+/, ''), native.inRootFlags.O_PATH | native.inRootFlags.O_DIRECTORY));
      return true;
    } catch {
      return false;
    } finally {
      native.closeFd(rootFd);
    }
  } finally {
    fs.remove();
  }
}

/** WORKDIR of a missing directory: a layer that makes it (root-owned, 0755, as docker). */
export async function mkdirStep(ctx: EngineContext, o: { diffIds: string[]; path: string; layer: LayerOptions }): Promise<StoredLayer> {
  const fs = mountStepRootfs(ctx.images, o.diffIds);
  try {
    ensureDir(fs.merged, o.path.replace(/^\/+/, ''));
    return await storeLayerFromUpper(ctx.images, fs.upper, MediaType.OciLayerGzip, o.layer.mtime !== undefined ? { mtime: o.layer.mtime } : {});
  } finally {
    fs.remove();
  }
}
