#!/usr/bin/env node
// Throughput of src/image/layer/unpack.ts against GNU `tar -xzf` on the same gzip layer,
// both into tmpfs. Prints MB/s (uncompressed tar bytes per second) and the ratio; no
// assertions. Usage:
//   node scripts/bench-unpack.mjs [layer.tar.gz] [--runs N] [--dir /dev/shm/tsrun-bench]
// Without a layer, one of ~100 MB is built once from directories under /usr/lib and cached
// in the bench dir. Run as root for a like-for-like comparison (both then chown).
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const runs = Number(opt('--runs', '3'));
const benchDir = opt('--dir', existsSync('/dev/shm') ? '/dev/shm/tsrun-bench' : '/run/tsrun-bench');
mkdirSync(benchDir, { recursive: true });

let layer = args[0];
if (!layer) {
  layer = join(benchDir, 'layer.tar.gz');
  if (!existsSync(layer)) {
    // A realistic mix: many small Python/JS files, some large shared objects, symlinks.
    const candidates = [
      'python3.11',
      'python3',
      'node_modules',
      'git-core',
      'systemd',
      'postgresql',
      'gcc',
      'x86_64-linux-gnu/perl',
      'x86_64-linux-gnu/gconv',
      'apt',
      'locale',
    ];
    const dirs = candidates.map((d) => `usr/lib/${d}`).filter((d) => existsSync(`/${d}`));
    console.log(`building ${layer} from /${dirs.join(' /')} …`);
    execFileSync('tar', ['-C', '/', '-czf', layer, ...dirs], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
}
const compressedBytes = statSync(layer).size;
const tarBytes = Number(execFileSync('sh', ['-c', 'gzip -dc "$1" | wc -c', 'sh', layer]).toString().trim());

// Bundle the TS module (its npm imports stay external, resolved from the repo's node_modules).
const cache = join(repo, 'node_modules', '.cache', 'tsrun-bench');
mkdirSync(cache, { recursive: true });
const bundle = join(cache, 'unpack.mjs');
await build({
  entryPoints: [join(repo, 'src/image/layer/unpack.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  outfile: bundle,
  logLevel: 'warning',
});
process.env.TSRUN_NATIVE ??= join(repo, 'build/Release/tsrun.node');
const { unpackLayer } = await import(pathToFileURL(bundle).href);

const fresh = (name) => {
  const d = join(benchDir, name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  return d;
};

async function timeTsrun(file = layer, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip') {
  const root = fresh('out-tsrun');
  const t0 = process.hrtime.bigint();
  const res = await unpackLayer(createReadStream(file, { highWaterMark: 1 << 20 }), mediaType, root, { layerName: 'bench' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { s, res };
}

function timeTar(file = layer, flags = '-xzf') {
  const root = fresh('out-tar');
  const t0 = process.hrtime.bigint();
  const r = spawnSync('tar', [flags, file, '-C', root], { stdio: ['ignore', 'ignore', 'inherit'] });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`tar exited with ${r.status}`);
  return { s };
}

const MB = 1e6;
const tsrunTimes = [];
const tarTimes = [];
let last;
for (let i = 0; i < runs; i++) {
  tarTimes.push(timeTar().s);
  const t = await timeTsrun();
  tsrunTimes.push(t.s);
  last = t.res;
}
const best = (xs) => Math.min(...xs);
const tsrunS = best(tsrunTimes);
const tarS = best(tarTimes);
console.log(`layer: ${layer}`);
console.log(`  ${(compressedBytes / MB).toFixed(1)} MB gzip, ${(tarBytes / MB).toFixed(1)} MB tar, ${last.files} entries, ${last.diffId}`);
console.log(`  into ${benchDir} (best of ${runs})`);
console.log(`tar -xzf : ${tarS.toFixed(3)} s  ${(tarBytes / MB / tarS).toFixed(1)} MB/s  (${(compressedBytes / MB / tarS).toFixed(1)} MB/s compressed)`);
console.log(`tsrun    : ${tsrunS.toFixed(3)} s  ${(tarBytes / MB / tsrunS).toFixed(1)} MB/s  (${(compressedBytes / MB / tsrunS).toFixed(1)} MB/s compressed)`);
console.log(`ratio    : tsrun speed = ${(tarS / tsrunS).toFixed(2)} x tar`);

// For reference: the same layer uncompressed (tar -xf vs tsrun on a plain tar), which shows
// the per-entry cost without decompression. tsrun also hashes every byte (the diff_id), tar does not.
const plain = join(benchDir, 'layer.bench.tar');
execFileSync('sh', ['-c', 'gzip -dc "$1" > "$2"', 'sh', layer, plain]);
const ptar = [];
const pts = [];
for (let i = 0; i < runs; i++) {
  ptar.push(timeTar(plain, '-xf').s);
  pts.push((await timeTsrun(plain, 'application/vnd.oci.image.layer.v1.tar')).s);
}
rmSync(plain, { force: true });
console.log(
  `plain tar: tar -xf ${best(ptar).toFixed(3)} s (${(tarBytes / MB / best(ptar)).toFixed(1)} MB/s), tsrun ${best(pts).toFixed(3)} s (${(tarBytes / MB / best(pts)).toFixed(1)} MB/s), ratio ${(best(ptar) / best(pts)).toFixed(2)} x tar`,
);
rmSync(join(benchDir, 'out-tsrun'), { recursive: true, force: true });
rmSync(join(benchDir, 'out-tar'), { recursive: true, force: true });
