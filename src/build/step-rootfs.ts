// The root filesystem of one build step: an overlay of the stage's layers (read-only, shared
// with every image and container) under a fresh upper directory that becomes the step's layer.
// Made in the store's tmp/ (garbage after a crash, swept by `image prune`), removed after.
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { overlayOptions, uniqueLayers } from '../image/rootfs.js';
import type { ImageStore } from '../image/store/store.js';
import { native } from '../native/index.js';
import { isErrno, wrap } from '../util/errors.js';

const MNT_DETACH = 2;
const MS_NODEV = 4;

export interface StepRootfs {
  dir: string;
  merged: string;
  upper: string;
  /** Unmount and remove everything; safe to call twice. */
  remove(): void;
}

export function mountStepRootfs(store: ImageStore, diffIds: string[]): StepRootfs {
  store.init();
  const dir = mkdtempSync(join(store.layout.tmp(), 'build-'));
  const merged = join(dir, 'merged');
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  const empty = join(dir, 'empty'); // FROM scratch: overlayfs needs a lower
  for (const d of [merged, upper, work, empty]) mkdirSync(d, { mode: 0o755 });
  let mounted = false;
  const remove = () => {
    if (mounted && readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${merged} `)) {
      try {
        native.umount2(merged, MNT_DETACH);
      } catch (e) {
        if (!isErrno(e, 'EINVAL')) throw wrap(e, `unmount ${merged}`);
      }
    }
    mounted = false;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Layers named by held fds (as rootfs.ts does): ~230 fit in the one page of mount options.
    const fds = (diffIds.length ? uniqueLayers(diffIds).map((d) => store.layout.layerRoot(d)) : [empty]).map((p) =>
      openSync(p, constants.O_RDONLY | constants.O_DIRECTORY),
    );
    try {
      native.mount(
        'overlay',
        merged,
        'overlay',
        MS_NODEV,
        overlayOptions(
          fds.map((fd) => `/proc/self/fd/${fd}`),
          upper,
          work,
        ),
      );
      mounted = true;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  } catch (e) {
    remove();
    throw wrap(e, 'mount the build step’s root filesystem');
  }
  return { dir, merged, upper, remove };
}
