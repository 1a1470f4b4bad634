// `tsrun diff`: what a container changed, from its overlay upper directory and the image's
// layers below it, as `docker diff` prints it:
//
//   A /path   added: not in the image
//   C /path   changed: in the image, and copied up (content or metadata); a directory that
//             contains a change is C too (unless it is itself A)
//   D /path   deleted: a whiteout (char device 0/0) over something in the image, or, under an
//             opaque directory (removed and made again), each of its former children in the
//             image that is not there any more
//
// "In the image" is the merged view of the lower layers (top first), honouring their own
// whiteouts and opaque directories: a file that an image layer already deleted and the
// container made again is A, not C. (Docker's OverlayChanges only asks whether any layer has
// the path, and reports an opaque directory itself as D; this reports what a naive comparison
// of the two trees would, which is what `docker diff` means.) A whiteout over nothing in the
// image is not a change. A directory is C when its mode or owner differ from the image's, or
// when something under it changed; its mtime alone is not a change (moby's changes.go: "Don't
// look at size or modification time for dirs", moby#9874): a mount point made inside it, left
// out of the diff, must not make it C.
//
// Nothing is followed: the upper dir is walked as layer/pack.ts walks it, and lower paths are
// only ever looked up below directories already lstat'ed as directories in that layer.
import { type BigIntStats, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno, wrap } from '../util/errors.js';
import { checkOverlayFeatures, isOpaque, isWhiteout, OVERLAY_OPAQUE, nativeXattrScanner, walkTree, type XattrScanner } from './layer/pack.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** Absolute in the container: "/etc/hosts". */
  path: string;
}

export interface DiffOptions {
  /** Leave this path ("/etc/hosts") and everything under it out (mount point placeholders). */
  exclude?: (path: string) => boolean;
  /** How xattrs are read (default: nativeXattrScanner). */
  xattrs?: XattrScanner;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** The image's view of a path: the lower layers stacked as overlayfs stacks them. */
class LowerView {
  /** rel -> the layers (indices, top first) whose directory at rel shows through. */
  private readonly dirs = new Map<string, number[]>();
  private readonly opaque: Array<Set<string> | undefined> = [];

  constructor(
    private readonly roots: string[],
    private readonly scan: XattrScanner,
  ) {}

  private lstat(i: number, rel: string): BigIntStats | undefined {
    try {
      return lstatSync(rel ? join(this.roots[i]!, rel) : this.roots[i]!, { bigint: true });
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
      throw wrap(e, `lstat ${join(this.roots[i]!, rel)}`);
    }
  }

  private isOpaque(i: number, rel: string): boolean {
    let set = this.opaque[i];
    if (!set) {
      set = new Set();
      for (const [p, x] of this.scan(this.roots[i]!, { dirsOnly: true, name: OVERLAY_OPAQUE })) if (isOpaque(x)) set.add(p);
      this.opaque[i] = set;
    }
    return set.has(rel);
  }

  dirLayers(rel: string): number[] {
    const hit = this.dirs.get(rel);
    if (hit) return hit;
    const out: number[] = [];
    const candidates = rel === '' ? this.roots.map((_, i) => i) : this.dirLayers(parentOf(rel));
    for (const i of candidates) {
      if (rel !== '') {
        const st = this.lstat(i, rel);
        if (!st) continue;
        if (!st.isDirectory()) break; // a whiteout or a non-directory hides the layers below
      }
      out.push(i);
      if (this.isOpaque(i, rel)) break;
    }
    this.dirs.set(rel, out);
    return out;
  }

  lookup(rel: string): BigIntStats | undefined {
    for (const i of this.dirLayers(parentOf(rel))) {
      const st = this.lstat(i, rel);
      if (!st) continue;
      return isWhiteout(st) ? undefined : st;
    }
    return undefined;
  }

  /** The names a directory shows in the image. */
  children(rel: string): string[] {
    const seen = new Map<string, boolean>();
    for (const i of this.dirLayers(rel)) {
      for (const name of readdirSync(rel ? join(this.roots[i]!, rel) : this.roots[i]!)) {
        if (seen.has(name)) continue;
        const st = this.lstat(i, rel ? `${rel}/${name}` : name);
        seen.set(name, st !== undefined && !isWhiteout(st));
      }
    }
    return [...seen].filter(([, shown]) => shown).map(([n]) => n);
  }
}

function dirMetaDiffers(up: BigIntStats, low: BigIntStats): boolean {
  return up.mode !== low.mode || up.uid !== low.uid || up.gid !== low.gid;
}

/**
 * The changes in the overlay upper dir `upperDir` relative to the image layers `lowerRoots`
 * (unpacked layer roots, top layer first), sorted by path.
 */
export function diffUpperDir(upperDir: string, lowerRoots: string[], opts: DiffOptions = {}): Change[] {
  const scan = opts.xattrs ?? nativeXattrScanner;
  const upperX = scan(upperDir);
  const lower = new LowerView(lowerRoots, scan);
  const kinds = new Map<string, ChangeKind>();
  /** Opaque dirs that hid a directory of the image -> the names the upper has in them. */
  const opaque = new Map<string, Set<string>>();
  const exclude = opts.exclude;
  for (const e of walkTree(upperDir, exclude ? { prune: (rel) => exclude(`/${rel}`) } : {})) {
    const { rel, st } = e;
    const x = upperX.get(rel);
    checkOverlayFeatures(x, rel);
    const low = lower.lookup(rel);
    if (isWhiteout(st)) {
      if (low) kinds.set(rel, 'D');
      continue;
    }
    opaque.get(parentOf(rel))?.add(e.name);
    if (!low) {
      kinds.set(rel, 'A');
    } else if (st.isDirectory() && low.isDirectory()) {
      if (isOpaque(x)) {
        kinds.set(rel, 'C');
        opaque.set(rel, new Set());
      } else if (dirMetaDiffers(st, low)) {
        kinds.set(rel, 'C');
      }
    } else {
      kinds.set(rel, 'C');
    }
  }
  for (const [dir, names] of opaque) {
    for (const name of lower.children(dir)) {
      const rel = dir ? `${dir}/${name}` : name;
      if (!names.has(name) && !exclude?.(`/${rel}`)) kinds.set(rel, 'D');
    }
  }
  for (const rel of [...kinds.keys()]) {
    for (let p = parentOf(rel); p !== ''; p = parentOf(p)) {
      if (kinds.has(p)) break; // its own ancestors were done when it was
      kinds.set(p, 'C');
    }
  }
  return [...kinds].map(([rel, kind]) => ({ kind, path: `/${rel}` })).sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}
