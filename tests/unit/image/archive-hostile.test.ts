// `tsrun load` against an archive that changes under it (security item 7). The loader plans a
// load (opening and checking every member) and then copies the blobs; a blob swapped for a FIFO
// in between used to be re-opened by path, and the open blocked forever waiting for a writer.
// Every member is now opened once (O_NOFOLLOW|O_NONBLOCK), checked by fstat and read only through
// that descriptor. The swap happens deterministically between plan and copy: loadArchive calls
// store.init() after planning and before copying, and the test's store swaps there.
//
// A blocked open cannot be timed out from inside (a synchronous one stops this process's timers),
// so a helper process stands in for the writer that never comes: after a delay it keeps opening
// the FIFO for writing (O_NONBLOCK: it succeeds only while someone is opening or reading it) and
// reports each success. The fixed loader never opens the FIFO, so the helper never succeeds.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadArchive, type LoadResult } from '../../../src/image/archive/load.js';
import type { ImageStore } from '../../../src/image/store/store.js';
import { hex, layoutEntries, makeImage, makeLayer, tmp, tmpStore, writeDir, writeTarFile, type BuiltImage } from './image-fixtures.js';

/** Temp dirs, FIFOs and helper processes made by the running test; afterEach removes them. */
const cleanups: Array<() => void | Promise<void>> = [];

afterEach(async () => {
  const errors: unknown[] = [];
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length) throw errors[0];
});

function tempDir(prefix: string): string {
  const d = tmp(prefix);
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function store(): ImageStore {
  const s = tmpStore(); // <tmp>/root
  cleanups.push(() => rmSync(dirname(s.layout.root), { recursive: true, force: true }));
  return s;
}

async function image(): Promise<BuiltImage> {
  const base = await makeLayer({ 'etc/os-release': 'NAME=test\n' });
  const top = await makeLayer({ 'app/data.txt': 'original layer\n' });
  return makeImage([base, top]);
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', ['-m', '0600', path]);
}

/** Let go of any reader blocked opening `fifo` (an O_NONBLOCK writer opens only if one is there). */
function releaseFifo(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    /* ENXIO: nobody is opening it; ENOENT: gone */
  }
}

interface Unblocker {
  /** How many times a reader had the FIFO open (0: the loader never touched it). */
  stop(): Promise<number>;
}

/** The helper process described at the top: from `afterMs` on, it frees readers of `fifo`. */
function unblocker(fifo: string, afterMs: number): Unblocker {
  const script = `
    const fs = require('node:fs');
    const [fifo, after] = process.argv.slice(1);
    const end = Date.now() + Number(after) + 20000;
    const tick = () => {
      let fd;
      try {
        fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      } catch {}
      if (fd !== undefined) {
        fs.writeSync(1, 'x'); // before the close that lets the reader see EOF and go on
        fs.closeSync(fd);
      }
      if (Date.now() < end) setTimeout(tick, 50);
    };
    setTimeout(tick, Number(after));`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script, fifo, String(afterMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve())); // after its stdout is read
  let stopped: Promise<number> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      return out.length;
    })());
  cleanups.push(async () => void (await stop()));
  return { stop };
}

/** Run `load`, calling `swap` once the loader has planned (store.init) and before it copies. */
async function loadWithSwap(s: ImageStore, path: string, swap: () => void): Promise<LoadResult> {
  const init = s.init.bind(s);
  let swapped = false;
  s.init = () => {
    if (!swapped) {
      swapped = true;
      swap();
    }
    init();
  };
  try {
    const res = await loadArchive(s, path);
    expect(swapped).toBe(true);
    return res;
  } finally {
    s.init = init;
  }
}

/** A planned blob replaced by a FIFO: the load must finish from what it opened, never opening the FIFO. */
async function expectFifoSwapHarmless(img: BuiltImage, path: string, blobFile: string): Promise<void> {
  const s = store();
  const fifo = `${blobFile}.fifo`;
  let helper: Unblocker | undefined;
  const load = loadWithSwap(s, path, () => {
    unlinkSync(blobFile);
    mkfifo(fifo);
    renameSync(fifo, blobFile);
    // if the loader now waits on the FIFO, free it after 1.5 s (and count it as a failure)
    helper = unblocker(blobFile, 1500);
    cleanups.push(() => releaseFifo(blobFile));
  });
  let res: LoadResult | undefined;
  let err: unknown;
  try {
    res = await load;
  } catch (e) {
    err = e;
  }
  const opened = helper ? await helper.stop() : 0;
  expect(opened, 'the loader opened the swapped-in FIFO (it re-opened the blob by path)').toBe(0);
  if (err) throw err;
  expect(res!.images.map((i) => i.manifestDigest)).toEqual([img.manifestDigest]);
  expect(readFileSync(join(s.layout.layerRoot(img.layers[1]!.diffId), 'app/data.txt'), 'utf8')).toBe('original layer\n');
}

describe('loadArchive: hostile OCI layout opened once (FIFO/symlink swap, the CVE-2024-9676 pattern): a layout directory changing under the loader', () => {
  it('a layer blob swapped for a FIFO after planning: no hang, the blob opened at plan time is loaded', { timeout: 30_000 }, async () => {
    const img = await image();
    const dir = writeDir(join(tempDir('hostile'), 'layout'), layoutEntries([{ image: img, refName: 'v1' }]));
    await expectFifoSwapHarmless(img, dir, join(dir, 'blobs', 'sha256', hex(img.layers[1]!.gzDigest)));
  });

  it('a layer blob swapped for a symlink to /dev/zero after planning: /dev/zero is never read', { timeout: 30_000 }, async () => {
    const img = await image();
    const dir = writeDir(join(tempDir('hostile'), 'layout'), layoutEntries([{ image: img, refName: 'v1' }]));
    const blob = join(dir, 'blobs', 'sha256', hex(img.layers[1]!.gzDigest));
    const s = store();
    const res = await loadWithSwap(s, dir, () => {
      unlinkSync(blob);
      symlinkSync('/dev/zero', blob);
    });
    expect(res.images[0]!.manifestDigest).toBe(img.manifestDigest);
    expect(readFileSync(join(s.layout.layerRoot(img.layers[1]!.diffId), 'app/data.txt'), 'utf8')).toBe('original layer\n');
  });

  it('refuses a blob that is a FIFO or a symlink (to /dev/zero, to /etc/passwd) when planned, naming it; nothing tagged', { timeout: 30_000 }, async () => {
    const img = await image();
    const layer = img.layers[1]!.gzDigest;
    const cases: Array<[string, (p: string) => void, RegExp]> = [
      ['fifo', (p) => mkfifo(p), /is a FIFO, not a regular file/],
      ['zero', (p) => symlinkSync('/dev/zero', p), /is a symbolic link, not a regular file/],
      ['passwd', (p) => symlinkSync('/etc/passwd', p), /is a symbolic link, not a regular file/],
    ];
    for (const [name, make, kind] of cases) {
      const dir = writeDir(join(tempDir('hostile'), name), layoutEntries([{ image: img, refName: 'v1' }]));
      const blob = join(dir, 'blobs', 'sha256', hex(layer));
      unlinkSync(blob);
      make(blob);
      if (name === 'fifo') cleanups.push(() => releaseFifo(blob));
      const s = store();
      const err = await loadArchive(s, dir).then(
        () => undefined,
        (e: unknown) => e as Error & { path?: string; hint?: string },
      );
      expect(err, name).toBeDefined();
      expect(err!.message).toMatch(new RegExp(`^archive ${dir}: blob ${layer} \\(blobs/sha256/${hex(layer)}\\) ${kind.source}`));
      expect(err!.path).toBe(blob);
      expect(err!.hint).toMatch(/regular files/);
      expect(s.tags()).toEqual({});
    }
  });

  it('refuses oci-layout or index.json that is a FIFO or a symlink, without blocking', { timeout: 30_000 }, async () => {
    const img = await image();
    for (const file of ['oci-layout', 'index.json']) {
      for (const kind of ['fifo', 'symlink'] as const) {
        const dir = writeDir(join(tempDir('hostile'), 'layout'), layoutEntries([{ image: img, refName: 'v1' }]));
        const p = join(dir, file);
        unlinkSync(p);
        if (kind === 'fifo') {
          mkfifo(p);
          cleanups.push(() => releaseFifo(p));
        } else symlinkSync('/etc/passwd', p);
        const helper = kind === 'fifo' ? unblocker(p, 1500) : undefined;
        const err = await loadArchive(store(), dir).then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        expect(await helper?.stop(), `${file} as a FIFO was opened`).toBeFalsy();
        expect(err?.message).toBe(`archive ${dir}: ${file} is ${kind === 'fifo' ? 'a FIFO' : 'a symbolic link'}, not a regular file`);
      }
    }
  });
});

describe('loadArchive: hostile archive opened once (FIFO swap): an archive file changing under the loader', () => {
  it('an oci-archive swapped for a FIFO between its scan and its copy pass: no hang, the opened archive is loaded', { timeout: 30_000 }, async () => {
    const img = await image();
    const d = tempDir('hostile');
    const file = await writeTarFile(join(d, 'img.tar'), layoutEntries([{ image: img, refName: 'v1' }]));
    await expectFifoSwapHarmless(img, file, file);
  });

  it('refuses an archive path that is a FIFO, without blocking', { timeout: 30_000 }, async () => {
    const d = tempDir('hostile');
    const p = join(d, 'pipe.tar');
    mkfifo(p);
    cleanups.push(() => releaseFifo(p));
    const helper = unblocker(p, 1500);
    const err = await loadArchive(store(), p).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(await helper.stop(), 'the archive FIFO was opened in blocking mode').toBe(0);
    expect(err?.message).toBe(`archive ${p}: it is a FIFO, not a file or directory`);
  });
});
