// The per-id lock file goes with the container (no <id>.lock piles up for ids that are gone or
// never existed), and CgroupV2.create says whether it made the cgroup (only those are removed).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CgroupV2 } from '../../../src/cgroups/v2.js';
import { StateStore } from '../../../src/runtime/state-store.js';
import { tempDir } from '../../helpers/tmp-dir.js';

describe('lock files', () => {
  it('are removed on release when the id has no state dir, kept while it has one', () => {
    const root = tempDir('st-');
    const s = new StateStore(root);
    const release = s.lock('ghost');
    expect(existsSync(join(root, 'ghost.lock'))).toBe(true);
    release();
    expect(existsSync(join(root, 'ghost.lock'))).toBe(false);

    const r2 = s.lock('c1');
    s.reserve('c1');
    r2();
    expect(existsSync(join(root, 'c1.lock'))).toBe(true);
    const r3 = s.lock('c1');
    s.remove('c1');
    r3();
    expect(existsSync(join(root, 'c1.lock'))).toBe(false);
    s.lock('c1')(); // and the id can be locked again
  });
});

describe('CgroupV2.create', () => {
  it('returns true only when it made the leaf, false for one that existed (empty)', () => {
    const d = tempDir('cg-');
    const cg = new CgroupV2(d);
    expect(cg.create('a/b/c')).toBe(true);
    writeFileSync(join(cg.path('a/b/c'), 'cgroup.procs'), '');
    expect(cg.create('a/b/c')).toBe(false);
    writeFileSync(join(cg.path('a/b/c'), 'cgroup.procs'), '42\n');
    expect(() => cg.create('a/b/c')).toThrow(/not empty: 1 process/);
  });
});
