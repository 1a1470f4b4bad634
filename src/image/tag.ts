// `tsrun tag SRC DEST`: another name for a stored image. SRC is found as `tsrun run` finds
// images (engine/image-lookup.ts: a short name is a local image first, `busybox` is
// localhost/busybox, then the canonical name; an id or digest prefix works too); DEST is
// normalised as pull, load -t and commit name images (`app` -> docker.io/library/app:latest).
// The tag record is copied (an index keeps its chosen platform) under the store-wide lock that
// pull, load and prune use, and only while SRC still names the same image.
import { findLocalImage } from '../engine/image-lookup.js';
import { TsrunError } from '../util/errors.js';
import { updateTags } from './inspect.js';
import { parseReference } from './reference.js';
import type { ImageStore, TagRecord } from './store/store.js';

export interface TagResult {
  /** The canonical name written. */
  ref: string;
  /** The stored image SRC named (its tag). */
  source: string;
  /** What the new tag points at (manifest or index). */
  digest: string;
  /** What DEST pointed at before, when it named another image. */
  replaced?: string;
}

/** DEST as a tag: canonical, and no digest (a digest names content, it cannot be moved). */
export function tagName(dest: string): string {
  const r = parseReference(dest.replace(/^docker:\/\//, ''));
  if (r.digest !== undefined) throw new TsrunError('ERR_INVALID_ARGUMENT', `cannot tag an image with the digest reference "${dest}": give name[:tag]`);
  return r.canonical;
}

export async function tagImage(store: ImageStore, src: string, dest: string): Promise<TagResult> {
  const ref = tagName(dest);
  const found = findLocalImage(store, src);
  if (!found) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `no such image: ${src}`, { hint: 'list images with `tsrun images`; pull or load it first' });
  }
  const rec = store.tags()[found.ref];
  if (!rec) throw new TsrunError('ERR_INVALID_STATE', `${found.ref} was removed meanwhile`);
  return updateTags(store, (tags) => {
    const now = tags[found.ref];
    if (!now || now.digest !== rec.digest) throw new TsrunError('ERR_INVALID_STATE', `${found.ref} changed while tagging it: try again`);
    const before = tags[ref];
    const copy: TagRecord = { digest: now.digest, ...(now.platform ? { platform: now.platform } : {}) };
    tags[ref] = copy;
    const out: TagResult = { ref, source: found.ref, digest: copy.digest };
    if (before && before.digest !== copy.digest) out.replaced = before.digest;
    return out;
  });
}
