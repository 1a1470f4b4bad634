// The layer cache: a step whose parent (the layers and config before it), instruction and
// inputs (build args in scope, the content digest of what COPY/ADD read) were seen before
// reuses the layer it made then. Entries are small JSON files under <root>/build-cache/,
// named by the key; an entry whose blob or unpacked layer has been pruned is a miss.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StoredLayer } from '../image/commit.js';
import type { ImageStore } from '../image/store/store.js';
import { writeFileAtomic } from '../util/fs-atomic.js';

export function cacheKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export class LayerCache {
  private readonly dir: string;
  constructor(private readonly store: ImageStore) {
    this.dir = join(store.layout.root, 'build-cache');
  }

  get(key: string): StoredLayer | undefined {
    try {
      const e = JSON.parse(readFileSync(join(this.dir, `${key}.json`), 'utf8')) as StoredLayer;
      if (this.store.hasBlob(e.digest) && this.store.hasLayer(e.diffId)) return e;
    } catch {
      /* no entry */
    }
    return undefined;
  }

  /** A small text value under a key (the created time of a built image). */
  getText(key: string): string | undefined {
    try {
      return readFileSync(join(this.dir, `${key}.txt`), 'utf8');
    } catch {
      return undefined;
    }
  }

  putText(key: string, value: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.dir, `${key}.txt`), value, 0o600, false);
  }

  put(key: string, layer: StoredLayer): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.dir, `${key}.json`), JSON.stringify(layer), 0o600, false);
  }
}
