import { spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { type VolumeInfo, VolumeStore } from '../../../src/engine/volumes.js';
import { TsrunError } from '../../../src/util/errors.js';
import { tempDir } from '../../helpers/tmp-dir.js';

function store(): VolumeStore {
  return new VolumeStore(join(tempDir('tsrun-volumes-'), 'volumes'));
}

function thrown(f: () => unknown): TsrunError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TsrunError);
    return e as TsrunError;
  }
  throw new Error('expected an error');
}

const unused = () => [];

describe('VolumeStore', () => {
  it('create writes _data (0755) and volume.json, and nothing else', () => {
    const s = store();
    const v = s.create('data1', { labels: { app: 'web' } });
    expect(v).toEqual({
      Name: 'data1',
      Driver: 'local',
      Mountpoint: join(s.root, 'data1', '_data'),
      CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      Labels: { app: 'web' },
      Options: {},
      Scope: 'local',
    });
    expect(readdirSync(s.root)).toEqual(['data1']);
    expect(readdirSync(join(s.root, 'data1')).sort()).toEqual(['_data', 'volume.json']);
    expect(statSync(v.Mountpoint).mode & 0o7777).toBe(0o755);
    expect(statSync(join(s.root, 'data1')).mode & 0o7777).toBe(0o755);
    expect(statSync(s.root).mode & 0o7777).toBe(0o701);
    expect(readdirSync(v.Mountpoint)).toEqual([]);
    expect(JSON.parse(readFileSync(join(s.root, 'data1', 'volume.json'), 'utf8'))).toEqual(v);
    expect(statSync(join(s.root, 'data1', 'volume.json')).mode & 0o777).toBe(0o644);
  });

  it('no name: a random 64-hex anonymous volume', () => {
    const s = store();
    const a = s.create();
    const b = s.create(undefined, { labels: { x: '1' } });
    expect(a.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(a.Name).not.toBe(b.Name);
    expect(a.Anonymous).toBe(true);
    expect(b).toMatchObject({ Anonymous: true, Labels: { x: '1' } });
    expect(s.create('named', { anonymous: true }).Anonymous).toBe(true);
    expect(s.create('named2').Anonymous).toBeUndefined();
  });

  it('creating an existing name returns it unchanged', () => {
    const s = store();
    const first = s.create('keep', { labels: { a: '1' } });
    writeFileSync(join(first.Mountpoint, 'f'), 'x');
    const again = s.create('keep', { labels: { b: '2' }, anonymous: true });
    expect(again).toEqual(first);
    expect(readFileSync(join(first.Mountpoint, 'f'), 'utf8')).toBe('x');
  });

  it("docker's name rule", () => {
    const s = store();
    for (const bad of ['', 'a', '-x', '.x', '_x', '..', '../x', 'a/b', 'a b', 'ä1', 'x:y', '/abs/path']) {
      const e = thrown(() => s.create(bad));
      expect(e.code, bad).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toBe(`create ${bad}: "${bad}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
      expect(e.hint).toMatch(/absolute path/);
    }
    for (const good of ['ab', '0x', 'a_b.c-d', 'A..b']) expect(s.create(good).Name).toBe(good);
    expect(existsSync(join(s.root, '..', 'x'))).toBe(false);
  });

  it('get, inspect and list', () => {
    const s = store();
    expect(s.list()).toEqual([]);
    expect(s.get('nope')).toBeNull();
    expect(s.get('../etc')).toBeNull();
    const e = thrown(() => s.inspect('nope'));
    expect(e.message).toBe('get nope: no such volume');
    s.create('zz');
    s.create('aa');
    mkdirSync(join(s.root, 'stray'));
    mkdirSync(join(s.root, '.create-1-abc'));
    expect(s.list().map((v) => v.Name)).toEqual(['aa', 'zz']);
    expect(s.inspect('aa')).toEqual(s.get('aa'));
  });

  it('remove refuses a volume in use, naming the containers (force too)', () => {
    const s = store();
    const v = s.create('busy');
    writeFileSync(join(v.Mountpoint, 'keep'), 'data');
    const users = (n: string) => (n === 'busy' ? ['c0ffee', 'deadbeef'] : []);
    for (const force of [false, true]) {
      const e = thrown(() => s.remove('busy', { force, inUse: users }));
      expect(e.code).toBe('ERR_INVALID_STATE');
      expect(e.message).toBe('remove busy: volume is in use - [c0ffee, deadbeef]');
      expect(e.hint).toContain('c0ffee deadbeef');
    }
    expect(readFileSync(join(v.Mountpoint, 'keep'), 'utf8')).toBe('data');
    s.remove('busy', { inUse: unused });
    expect(existsSync(join(s.root, 'busy'))).toBe(false);
    expect(readdirSync(s.root)).toEqual([]);
    expect(thrown(() => s.remove('busy', { inUse: unused })).message).toBe('remove busy: no such volume');
    expect(() => s.remove('busy', { force: true, inUse: unused })).not.toThrow();
  });

  it('prune: anonymous unused volumes by default, every unused one with all', () => {
    const s = store();
    const anon = s.create();
    const anonBusy = s.create();
    const named = s.create('named');
    const namedBusy = s.create('named-busy');
    writeFileSync(join(anon.Mountpoint, 'a'), Buffer.alloc(1000));
    mkdirSync(join(anon.Mountpoint, 'sub'));
    writeFileSync(join(anon.Mountpoint, 'sub', 'b'), Buffer.alloc(24));
    linkSync(join(anon.Mountpoint, 'a'), join(anon.Mountpoint, 'a-link'));
    writeFileSync(join(named.Mountpoint, 'n'), Buffer.alloc(5));
    const busy = new Set([anonBusy.Name, namedBusy.Name]);
    const inUse = (n: string) => (busy.has(n) ? ['ctr1'] : []);

    expect(s.prune(inUse)).toEqual({ removed: [anon.Name], reclaimedBytes: 1024 });
    expect(s.list().map((v) => v.Name)).toEqual([anonBusy.Name, 'named', 'named-busy'].sort());

    expect(s.prune(inUse, { all: true, filter: (v) => v.Name !== 'named' })).toEqual({ removed: [], reclaimedBytes: 0 });
    expect(s.prune(inUse, { all: true })).toEqual({ removed: ['named'], reclaimedBytes: 5 });
    expect(s.list().map((v) => v.Name)).toEqual([anonBusy.Name, 'named-busy'].sort());
  });

  it('prune deletes what crashed creates and removes left behind, not live creates', () => {
    const s = store();
    s.create('x1');
    const dead = spawnSync('true').pid!;
    mkdirSync(join(s.root, '.remove-old-0123'));
    mkdirSync(join(s.root, `.create-${dead}-0123`));
    mkdirSync(join(s.root, `.create-${process.pid}-4567`));
    s.prune(unused);
    expect(readdirSync(s.root).sort()).toEqual([`.create-${process.pid}-4567`, 'x1']);
  });

  it('isEmpty and the seeded flag', () => {
    const s = store();
    const v = s.create('seed');
    expect(s.isEmpty('seed')).toBe(true);
    writeFileSync(join(v.Mountpoint, '.hidden'), '');
    expect(s.isEmpty('seed')).toBe(false);
    expect(s.isSeeded('seed')).toBe(false);
    s.markSeeded('seed');
    expect(s.isSeeded('seed')).toBe(true);
    expect(JSON.parse(readFileSync(join(s.root, 'seed', 'volume.json'), 'utf8'))).toMatchObject({ Name: 'seed', Seeded: true });
    expect(readdirSync(join(s.root, 'seed')).sort()).toEqual(['_data', 'volume.json']);
    expect(thrown(() => s.isEmpty('missing')).message).toBe('get missing: no such volume');
  });

  it('a create that loses the rename race returns the winner, leaving nothing behind', () => {
    const root = join(tempDir('tsrun-volumes-'), 'volumes');
    const winner = new VolumeStore(root).create('raced', { labels: { by: 'winner' } });
    // Sees no volume at first (as if the other create had not renamed its own in yet).
    class LateStore extends VolumeStore {
      calls = 0;
      override get(name: string): VolumeInfo | null {
        return this.calls++ === 0 ? null : super.get(name);
      }
    }
    const late = new LateStore(root);
    expect(late.create('raced', { labels: { by: 'loser' } })).toEqual(winner);
    expect(readdirSync(root)).toEqual(['raced']);
  });

  it('concurrent creates of the same names in several processes make one volume each', async () => {
    const dir = tempDir('tsrun-volumes-race-');
    const root = join(dir, 'volumes');
    const bundle = join(dir, 'volumes.mjs');
    buildSync({
      entryPoints: [join(import.meta.dirname, '../../../src/engine/volumes.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: bundle,
      logLevel: 'silent',
    });
    const names = Array.from({ length: 25 }, (_, i) => `vol${i}`);
    const startAt = Date.now() + 1500;
    const script = `
      const { VolumeStore } = await import(${JSON.stringify(bundle)});
      const s = new VolumeStore(${JSON.stringify(root)});
      while (Date.now() < ${startAt}) {}
      const out = {};
      for (const n of ${JSON.stringify(names)}) out[n] = s.create(n, { labels: { by: String(process.pid) } }).Labels.by;
      process.stdout.write(JSON.stringify(out));
    `;
    const run = () =>
      new Promise<Record<string, string>>((resolve, reject) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${err}`))));
      });
    const results = await Promise.all([run(), run(), run(), run()]);
    const s = new VolumeStore(root);
    expect(readdirSync(root).sort()).toEqual([...names].sort());
    for (const n of names) {
      const onDisk = s.inspect(n).Labels.by;
      // Every process got the one volume that exists: the winner's, whichever it was.
      for (const r of results) expect(r[n], n).toBe(onDisk);
      expect(readdirSync(join(root, n)).sort()).toEqual(['_data', 'volume.json']);
    }
  });
});
