// A container's root filesystem: an overlay of the image's unpacked layers (read-only,
// shared) under a writable upper directory of its own, mounted in the host namespace so the
// runtime can bind it as `root.path`. Removed with the container.
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/index.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import { validateId } from '../runtime/state-store.js';
import type { ImageStore } from './store/store.js';

const MNT_DETACH = 2;
const MS_NODEV = 4;
/** mount(2) copies at most one page of options. */
export const MOUNT_DATA_MAX = 4095;

export interface ContainerRootfs {
  dir: string;
  merged: string;
  upper: string;
  work: string;
}

/** overlayfs option values escape ':' ',' and '\' with a backslash (runc's escapeOverlayLowerDir). */
export function escapeOverlayPath(p: string): string {
  return p.replace(/[\\:,]/g, (c) => `\\${c}`);
}

/**
 * The overlay mount data for layers given bottom to top (the image config's order).
 * lowerdir lists the top layer first. The caller names layers by fds it holds
 * (/proc/self/fd/N, at most 18 bytes whatever the store's path), so about 230 fit in a page.
 */
export function overlayOptions(lowers: string[], upper: string, work: string): string {
  if (!lowers.length) throw new TsrunError('ERR_INVALID_ARGUMENT', 'an image needs at least one layer');
  const lowerdir = [...lowers].reverse().map(escapeOverlayPath).join(':');
  const data = `lowerdir=${lowerdir},upperdir=${escapeOverlayPath(upper)},workdir=${escapeOverlayPath(work)}`;
  if (data.length > MOUNT_DATA_MAX) {
    throw new TsrunError(
      'ERR_UNSUPPORTED',
      `the image has ${lowers.length} layers: their overlay mount options (${data.length} bytes) exceed the kernel's ${MOUNT_DATA_MAX}-byte limit`,
      {
        hint: 'squash the image into fewer layers (about 230 fit)',
      },
    );
  }
  return data;
}

function isMounted(path: string): boolean {
  const mi = readFileSync('/proc/self/mountinfo', 'utf8');
  return mi.split('\n').some((l) => l.split(' ')[4] === path);
}

/**
 * Layers bottom to top with repeats dropped but the topmost: overlayfs refuses one directory
 * twice among its lowers (two RUN steps that changed nothing share the empty layer), and the
 * topmost copy of an identical layer shows exactly what both would.
 */
export function uniqueLayers(diffIds: string[]): string[] {
  return diffIds.filter((d, i) => diffIds.indexOf(d, i + 1) < 0);
}

export function rootfsPaths(store: ImageStore, id: string): ContainerRootfs {
  validateId(id);
  const dir = store.layout.container(id);
  return { dir, merged: join(dir, 'merged'), upper: join(dir, 'upper'), work: join(dir, 'work') };
}

export function isRootfsMounted(store: ImageStore, id: string): boolean {
  return isMounted(rootfsPaths(store, id).merged);
}

/**
 * Mount the overlay for container `id` from layers (diff_ids, bottom to top). `existingDir`:
 * the container's directory is the engine's and exists already; an upper dir left there (a
 * container mounted again after a reboot or an unmount) is kept.
 */
export function mountRootfs(store: ImageStore, id: string, diffIds: string[], o: { existingDir?: boolean } = {}): ContainerRootfs {
  for (const d of diffIds) {
    if (!store.hasLayer(d)) throw new TsrunError('ERR_INVALID_ARGUMENT', `layer ${d} is not unpacked in the store: pull the image again`);
  }
  validateId(id);
  const dir = store.layout.container(id);
  const r: ContainerRootfs = { dir, merged: join(dir, 'merged'), upper: join(dir, 'upper'), work: join(dir, 'work') };
  if (!o.existingDir && existsSync(dir)) {
    throw new TsrunError('ERR_CONTAINER_EXISTS', `a root filesystem for container ${id} already exists at ${dir}`, { hint: 'remove the old container first' });
  }
  // The kernel resolves these magic links while mounting, in this process: fds suffice.
  const fds = uniqueLayers(diffIds).map((d) => openSync(store.layout.layerRoot(d), constants.O_RDONLY | constants.O_DIRECTORY));
  try {
    const data = overlayOptions(
      fds.map((fd) => `/proc/self/fd/${fd}`),
      r.upper,
      r.work,
    );
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const d of [r.upper, r.work, r.merged]) mkdirSync(d, { recursive: true, mode: 0o755 });
    try {
      // nodev: device nodes an image carries stay inert (the container's /dev is its own tmpfs).
      native.mount('overlay', r.merged, 'overlay', MS_NODEV, data);
    } catch (e) {
      if (!o.existingDir) rmSync(dir, { recursive: true, force: true });
      else rmSync(r.work, { recursive: true, force: true });
      throw wrap(e, `mount the overlay rootfs of ${id}`);
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  return r;
}

/** Unmount a container's overlay, keeping its upper dir (a stopped container); fine if not mounted. */
export function unmountRootfs(store: ImageStore, id: string): void {
  const { merged } = rootfsPaths(store, id);
  if (!existsSync(merged) || !isMounted(merged)) return;
  try {
    native.umount2(merged, MNT_DETACH);
  } catch (e) {
    if (!isErrno(e, 'EINVAL') && !isErrno(e, 'ENOENT')) throw wrap(e, `unmount ${merged}`);
  }
}

/**
 * Unmount and remove a container's overlay; fine if it is already gone. Call it only once the
 * container's processes are dead: its upper dir is theirs to change until then.
 */
export function removeRootfs(store: ImageStore, id: string): void {
  validateId(id);
  const dir = store.layout.container(id);
  const merged = join(dir, 'merged');
  if (existsSync(merged) && isMounted(merged)) {
    try {
      native.umount2(merged, MNT_DETACH);
    } catch (e) {
      if (!isErrno(e, 'EINVAL') && !isErrno(e, 'ENOENT')) throw wrap(e, `unmount ${merged}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
