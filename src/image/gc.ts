// Removing images: `rmi` only untags (blobs and unpacked layers stay, shared with other
// images), `prune` collects what no tag reaches any more: mark from the tagged manifests (and
// indexes), sweep blobs, unpacked layers, dangling short links and stale temporaries.
//
// Concurrency: a pull or load writes blobs and layers first and the tag last, under the
// "repositories" lock. Prune holds that lock from marking to the end of sweeping, so a tag
// written meanwhile waits; what such a pull already wrote is younger than FRESH_MS and is
// left alone unless `all` is set.
import { lstatSync, readdirSync, readlinkSync, rmSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { isErrno, TsrunError } from '../util/errors.js';
import { findImage, parseStoredManifest, resolveRecord, updateTags } from './inspect.js';
import { parseImageConfig } from './manifest.js';
import type { ImageStore } from './store/store.js';

/** Blobs and layers modified this recently may belong to a pull that has not tagged yet. */
export const FRESH_MS = 10 * 60_000;
/** Entries in tmp/ older than this are leftovers of a crash (unless a live process holds them). */
export const TMP_STALE_MS = 60 * 60_000;

const MAX_JSON_BLOB = 8 * 1024 * 1024;

export interface RemoveImageOptions {
  /** Untag even when the image is in use, or when an id names several tags (all are removed). */
  force?: boolean;
  /** Whether a container uses these layers (the image's diff_ids, bottom to top). */
  inUse?: (diffIds: string[]) => boolean;
}

export interface RemoveResult {
  /** The tags removed. */
  untagged: string[];
  /** What they pointed at (manifest or index digest). */
  digest: string;
  /** True when no tag points at that image any more: `prune` will collect it. */
  dangling: boolean;
}

/**
 * Untag `ref` (a canonical or short ref, or an id/digest prefix: then every tag of that image,
 * which needs `force` when there are several). Refuses to untag the last name of an image a
 * container uses unless `force`. Blobs and layers stay until `pruneImages`.
 */
export async function removeImage(store: ImageStore, ref: string, opts: RemoveImageOptions = {}): Promise<RemoveResult> {
  return updateTags(store, (tags) => {
    const m = findImage(store, ref, tags);
    let targets = [m.ref];
    if (m.byId && m.refs.length > 1) {
      if (!opts.force) {
        throw new TsrunError('ERR_INVALID_STATE', `image ${ref} is tagged ${m.refs.join(', ')}: remove a tag by name, or force to remove them all`);
      }
      targets = m.refs;
    }
    const remaining = m.refs.filter((r) => !targets.includes(r));
    if (!remaining.length && opts.inUse && !opts.force) {
      let diffIds: string[] = [];
      try {
        diffIds = resolveRecord(store, m.record).config.rootfs.diff_ids;
      } catch {
        /* a broken image: nothing a container could be using */
      }
      if (diffIds.length && opts.inUse(diffIds)) {
        throw new TsrunError('ERR_INVALID_STATE', `image ${m.ref} is in use by a container`, {
          hint: 'remove the container first, or force to untag anyway (its layers stay while the container exists)',
        });
      }
    }
    for (const t of targets) delete tags[t];
    return { untagged: targets, digest: m.record.digest, dangling: !remaining.length };
  });
}

export interface PruneOptions {
  /** Also collect what was written in the last FRESH_MS (no pull or load may be running). */
  all?: boolean;
  /** diff_ids of layers under a live container's overlay: never removed. */
  inUseLayers?: Set<string>;
  /** Manifests of images containers were made from: kept with what they reach, tagged or not (commit needs them). */
  inUseManifests?: Iterable<string>;
}

export interface PruneResult {
  blobsRemoved: number;
  layersRemoved: number;
  /** Unreferenced blobs and layers kept because they are younger than FRESH_MS (not with `all`). */
  blobsKeptFresh: number;
  layersKeptFresh: number;
  bytesFreed: number;
  tmpRemoved: number;
  /** Tagged images that could not be read in full (what they reach was kept where known). */
  warnings: string[];
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

function listDir(p: string): string[] {
  try {
    return readdirSync(p).sort();
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
}

/** Bytes of regular files under p (hard links counted once). */
function diskBytes(p: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (q: string) => {
    const st = lstatOrUndefined(q);
    if (!st) return;
    if (st.isDirectory()) {
      for (const n of listDir(q)) walk(join(q, n));
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      if (!seen.has(key)) {
        seen.add(key);
        total += st.size;
      }
    }
  };
  walk(p);
  return total;
}

function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return !isErrno(e, 'ESRCH');
  }
}

/** Paths under `dir` that a live process has open (fds) or works in (cwd). */
function heldPaths(dir: string): string[] {
  const out: string[] = [];
  const prefix = `${dir}/`;
  for (const pid of listDir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const links = [join('/proc', pid, 'cwd')];
    try {
      for (const fd of readdirSync(join('/proc', pid, 'fd'))) links.push(join('/proc', pid, 'fd', fd));
    } catch {
      /* gone, or not ours to look at */
    }
    for (const l of links) {
      try {
        const t = readlinkSync(l);
        if (t.startsWith(prefix)) out.push(t);
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return out;
}

/** writeFileAtomic's temporaries: .<name>.<pid>.<ms>.tmp */
const ATOMIC_TMP = /^\..+\.(\d+)\.(\d+)\.tmp$/;
/** A tmp/ entry that records its owner: <prefix>-<pid>-<hex>. */
const OWNED_TMP = /^[a-z]+-(\d+)-[0-9a-f]+$/;

/**
 * Collect everything no tag reaches: blobs, unpacked layers (except `inUseLayers`), short
 * links to missing layers, and stale temporaries. Anything modified in the last FRESH_MS is
 * kept unless `all`.
 */
export async function pruneImages(store: ImageStore, opts: PruneOptions = {}): Promise<PruneResult> {
  const res: PruneResult = { blobsRemoved: 0, layersRemoved: 0, blobsKeptFresh: 0, layersKeptFresh: 0, bytesFreed: 0, tmpRemoved: 0, warnings: [] };
  const inUse = new Set<string>();
  for (const d of opts.inUseLayers ?? []) inUse.add(d.startsWith('sha256:') ? d : `sha256:${d}`);
  store.init();
  const l = store.layout;

  return store.withLock('repositories', async () => {
    const now = Date.now();
    const fresh = (st: Stats) => !opts.all && now - st.mtimeMs < FRESH_MS;

    // ---- mark
    const keepBlobs = new Set<string>();
    const keepLayers = new Set<string>(inUse);
    const mark = (digest: string, mediaType: string | undefined, what: string, depth: number): void => {
      keepBlobs.add(digest);
      if (!store.hasBlob(digest)) {
        res.warnings.push(`${what}: manifest ${digest} is missing`);
        return;
      }
      let parsed: ReturnType<typeof parseStoredManifest>;
      try {
        parsed = parseStoredManifest(store.readBlob(digest, MAX_JSON_BLOB), mediaType, `manifest ${digest}`);
      } catch (e) {
        res.warnings.push(`${what}: ${(e as Error).message}`);
        return;
      }
      if (parsed.kind === 'index') {
        // Every platform manifest of the index that is in the store stays with it.
        if (depth > 1) return;
        for (const c of parsed.index.manifests) if (store.hasBlob(c.digest)) mark(c.digest, c.mediaType, what, depth + 1);
        return;
      }
      const m = parsed.manifest;
      keepBlobs.add(m.config.digest);
      for (const layer of m.layers) keepBlobs.add(layer.digest);
      try {
        const cfg = parseImageConfig(store.readBlob(m.config.digest, MAX_JSON_BLOB), `config ${m.config.digest}`);
        for (const d of cfg.rootfs.diff_ids) keepLayers.add(d);
      } catch (e) {
        res.warnings.push(`${what}: ${(e as Error).message}`);
      }
    };
    const tags = store.tags();
    for (const ref of Object.keys(tags).sort()) mark(tags[ref]!.digest, undefined, ref, 0);
    for (const d of opts.inUseManifests ?? []) if (store.hasBlob(d)) mark(d, undefined, `a container's image ${d}`, 0);

    // ---- sweep blobs (and writeFileAtomic leftovers next to them)
    const blobDir = join(l.root, 'blobs', 'sha256');
    for (const name of listDir(blobDir)) {
      const p = join(blobDir, name);
      const st = lstatOrUndefined(p);
      if (!st) continue;
      if (/^[a-f0-9]{64}$/.test(name)) {
        if (keepBlobs.has(`sha256:${name}`)) continue;
        if (fresh(st)) {
          res.blobsKeptFresh++;
          continue;
        }
        rmSync(p, { force: true });
        res.blobsRemoved++;
        res.bytesFreed += st.size;
      } else {
        const t = ATOMIC_TMP.exec(name);
        if (t && (!pidAlive(Number(t[1])) || now - Number(t[2]) > TMP_STALE_MS)) {
          rmSync(p, { force: true });
          res.bytesFreed += st.size;
          res.tmpRemoved++;
        }
      }
    }

    // ---- sweep unpacked layers
    const layersDir = join(l.root, 'layers');
    for (const hex of listDir(layersDir)) {
      if (!/^[a-f0-9]{64}$/.test(hex)) continue;
      const diffId = `sha256:${hex}`;
      if (keepLayers.has(diffId)) continue;
      const dir = l.layerDir(diffId);
      const st = lstatOrUndefined(dir);
      if (!st) continue;
      const meta = lstatOrUndefined(l.layerMeta(diffId));
      if (fresh(st) || (meta && fresh(meta))) {
        res.layersKeptFresh++;
        continue;
      }
      await store.withLock(diffId, () => {
        // Again under the layer's lock: a pull may have reused it since the check above.
        const again = lstatOrUndefined(dir);
        const againMeta = lstatOrUndefined(l.layerMeta(diffId));
        if (!again || fresh(again) || (againMeta && fresh(againMeta))) return;
        const bytes = diskBytes(dir);
        store.removeLayer(diffId);
        res.layersRemoved++;
        res.bytesFreed += bytes;
      });
    }

    // ---- tmp/: crash leftovers
    const tmpDir = l.tmp();
    const held = heldPaths(tmpDir);
    for (const name of listDir(tmpDir)) {
      const p = join(tmpDir, name);
      const st = lstatOrUndefined(p);
      if (!st) continue;
      if (held.some((h) => h === p || h.startsWith(`${p}/`))) continue;
      const owner = OWNED_TMP.exec(name);
      const ownerGone = owner !== null && !pidAlive(Number(owner[1]));
      if (!ownerGone && now - st.mtimeMs <= TMP_STALE_MS) continue;
      const bytes = diskBytes(p);
      rmSync(p, { recursive: true, force: true });
      res.tmpRemoved++;
      res.bytesFreed += bytes;
    }

    // ---- repositories.json's own atomic-write leftovers
    for (const name of listDir(l.root)) {
      const t = ATOMIC_TMP.exec(name);
      if (!t || pidAlive(Number(t[1]))) continue;
      rmSync(join(l.root, name), { force: true });
      res.tmpRemoved++;
    }
    return res;
  });
}
