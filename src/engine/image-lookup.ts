// Which stored image a user's image argument names: a short name finds a local image first,
// as podman does (`busybox` finds `localhost/busybox`), then the registry's canonical name.
import { findImage, type ResolvedImage, resolveRecord } from '../image/inspect.js';
import type { ImageStore } from '../image/store/store.js';
import { TsrunError } from '../util/errors.js';

export interface LocalImage {
  ref: string;
  resolved: ResolvedImage;
}

/** A name without a registry part: no "/" before the first component with "." or ":", not localhost. */
export function isShortName(input: string): boolean {
  if (input.includes('@') || /^[a-f0-9]{12,64}$/.test(input)) return false;
  const first = input.split('/')[0]!;
  return !(input.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost'));
}

export function findLocalImage(store: ImageStore, input: string): LocalImage | undefined {
  const tags = store.tags();
  const candidates = isShortName(input) ? [`localhost/${input.includes(':') ? input : `${input}:latest`}`, input] : [input];
  for (const c of candidates) {
    try {
      const m = findImage(store, c, tags);
      return { ref: m.ref, resolved: resolveRecord(store, m.record) };
    } catch (e) {
      if (e instanceof TsrunError && /ambiguous/.test(e.message)) throw e;
    }
  }
  return undefined;
}
