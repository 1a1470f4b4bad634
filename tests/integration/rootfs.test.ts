// The overlay rootfs of a container: layers stacked in the right order, whiteouts and opaque
// directories honoured, writes landing in the container's upper dir, many layers fitting in
// one mount, and nothing left after removal.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { mountRootfs, overlayOptions, removeRootfs } from '../../src/image/rootfs.js';
import { ImageStore } from '../../src/image/store/store.js';

const skip = process.getuid?.() !== 0 ? 'needs root (overlay mounts)' : null;
if (skip) console.log(`rootfs: skipped: ${skip}`);

const fakeDiffId = (n: string) => `sha256:${createHash('sha256').update(n).digest('hex')}`;

/** A layer made by hand (the unpacker has its own tests): files, a whiteout, an opaque dir. */
async function layer(store: ImageStore, name: string, fill: (root: string) => void): Promise<string> {
  const diffId = fakeDiffId(name);
  await store.ensureLayer(diffId, async (root) => {
    fill(root);
    return { diffId, size: 0, files: 0 };
  });
  return diffId;
}

const mounted = (p: string) => readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${p} `);

describe.skipIf(!!skip)('overlay rootfs', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tsrun-rootfs-'));
  const store = new ImageStore(join(tmp, 'store'));
  afterAll(() => {
    for (const id of readdirSync(join(tmp, 'store', 'containers'))) removeRootfs(store, id);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('stacks layers bottom to top, honours whiteouts and opaque dirs, writes go to upper', async () => {
    const l1 = await layer(store, 'base', (r) => {
      mkdirSync(join(r, 'etc'));
      writeFileSync(join(r, 'etc/os'), 'base\n');
      writeFileSync(join(r, 'gone'), 'x');
      mkdirSync(join(r, 'opq'));
      writeFileSync(join(r, 'opq/old'), 'old');
    });
    const l2 = await layer(store, 'top', (r) => {
      mkdirSync(join(r, 'etc'));
      writeFileSync(join(r, 'etc/os'), 'top\n');
      execFileSync('mknod', [join(r, 'gone'), 'c', '0', '0']); // whiteout
      mkdirSync(join(r, 'opq'));
      writeFileSync(join(r, 'opq/new'), 'new');
      execFileSync('python3', ['-c', `import os; os.setxattr(${JSON.stringify(join(r, 'opq'))}, 'trusted.overlay.opaque', b'y')`]);
    });
    const fs = mountRootfs(store, 'c1', [l1, l2]);
    expect(mounted(fs.merged)).toBe(true);
    expect(readFileSync(join(fs.merged, 'etc/os'), 'utf8')).toBe('top\n');
    expect(existsSync(join(fs.merged, 'gone'))).toBe(false);
    expect(readdirSync(join(fs.merged, 'opq'))).toEqual(['new']);
    writeFileSync(join(fs.merged, 'etc/os'), 'changed\n');
    expect(readFileSync(join(fs.upper, 'etc/os'), 'utf8')).toBe('changed\n');
    expect(readFileSync(join(store.layout.layerRoot(l2), 'etc/os'), 'utf8')).toBe('top\n'); // layers stay read-only
    removeRootfs(store, 'c1');
    expect(mounted(fs.merged)).toBe(false);
    expect(existsSync(fs.dir)).toBe(false);
    removeRootfs(store, 'c1'); // idempotent
  });

  it('mounts 200 layers within one page of options, and refuses too many with a clear error', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push(await layer(store, `many-${i}`, (r) => writeFileSync(join(r, `f${i}`), String(i))));
    const fs = mountRootfs(store, 'many', ids);
    expect(readdirSync(fs.merged).length).toBe(200);
    removeRootfs(store, 'many');
    expect(() =>
      overlayOptions(
        Array.from({ length: 300 }, (_, i) => `/proc/self/fd/${1000 + i}`),
        '/u',
        '/w',
      ),
    ).toThrow(/exceed the kernel's 4095-byte limit/);
  });

  it('refuses a layer that is not unpacked, leaving nothing', () => {
    expect(() => mountRootfs(store, 'bad', [fakeDiffId('missing')])).toThrow(/not unpacked/);
    expect(existsSync(store.layout.container('bad'))).toBe(false);
  });

  it('escapes overlay option separators', () => {
    expect(overlayOptions(['/a:b', '/c,d'], '/u\\x', '/w')).toBe('lowerdir=/c\\,d:/a\\:b,upperdir=/u\\\\x,workdir=/w');
  });
});
