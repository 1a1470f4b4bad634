#!/usr/bin/env bash
# Wall time of pulling + unpacking the Debian 12 minbase image from a local registry:
#   (a) tsrun: pullImage into a fresh ImageStore (a node process per pull), or `tsrun pull`
#   (b) skopeo copy docker://… oci:… + umoci unpack (the usual OCI toolchain)
#   (c) tar -xzf of the layer blob (the floor: no network, no digests, no metadata)
# all into the same tmpfs, interleaved, N rounds, fresh targets every time.
#
#   scripts/bench-pull.sh [--rounds N] [--warmup N] [--mode auto|node|cli] [--image-dir DIR] [--keep]
#
#   --rounds N       timed rounds (default 5)
#   --warmup N       untimed rounds first (default 1)
#   --mode           node: a bundled node script calls pullImage(store, ref) (plain http: loopback);
#                    cli: `dist/bin/tsrun --root STORE pull [--quiet] REF` (plain http: loopback);
#                    auto (default): cli if `dist/bin/tsrun pull --help` works, else node
#   --image-dir DIR  use an existing images/debian/build.sh OUTDIR instead of building one
#   --keep           keep the work directory (logs, samples)
#
# Needs root, debootstrap (first build only; cached in .cache/images), docker-registry, skopeo,
# umoci, tar, node, and tsrun's src/image/pull.ts (node mode bundles it with the repo's esbuild).
# TSRUN_PULL_MODULE=/abs/pull.ts swaps the module in node mode (harness debugging).
#
# Method: the image is built once (images/debian/build.sh) and pushed with skopeo
# (--preserve-digests) to a docker-registry on 127.0.0.1:<free port> whose storage is on the
# tmpfs too. Each round runs (a), (b), (c) in turn, each into a new directory on a private tmpfs
# that is emptied after the round (not timed). Times are wall times of the child processes
# (process.hrtime around spawnSync), so node's start-up is part of tsrun's time, as skopeo's and
# umoci's are of theirs. NODE_EXTRA_CA_CERTS is unset for node runs. MB = 10^6 bytes; MB/s is
# given over the compressed (blob) and the uncompressed (tar) layer size. No assertions: numbers
# only. The goal (issue): tsrun >= 3x faster than skopeo+umoci, and close to tar.
set -euo pipefail

die() { echo "bench-pull: $*" >&2; exit 1; }

ROUNDS=5 WARMUP=1 MODE=auto IMAGE_DIR= KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds|-n) [ $# -ge 2 ] || die "$1 needs a value"; ROUNDS=$2; shift 2 ;;
    --rounds=*) ROUNDS=${1#--rounds=}; shift ;;
    --warmup) [ $# -ge 2 ] || die "--warmup needs a value"; WARMUP=$2; shift 2 ;;
    --warmup=*) WARMUP=${1#--warmup=}; shift ;;
    --mode) [ $# -ge 2 ] || die "--mode needs a value"; MODE=$2; shift 2 ;;
    --mode=*) MODE=${1#--mode=}; shift ;;
    --image-dir) [ $# -ge 2 ] || die "--image-dir needs a value"; IMAGE_DIR=$2; shift 2 ;;
    --image-dir=*) IMAGE_DIR=${1#--image-dir=}; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got '$ROUNDS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer, got '$WARMUP'"
case $MODE in auto|node|cli) ;; *) die "--mode must be auto, node or cli" ;; esac
[ "$(id -u)" = 0 ] || die "must run as root (umoci unpack and tsrun's unpack keep owners and device nodes)"
for t in docker-registry skopeo umoci tar gzip node curl mount; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is required (apt-get install docker-registry skopeo umoci curl)"
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE=$(command -v node)
TSRUN_CLI=$REPO/dist/bin/tsrun
PULL_MODULE=${TSRUN_PULL_MODULE:-$REPO/src/image/pull.ts}
if [ "$MODE" = auto ]; then
  if [ -x "$TSRUN_CLI" ] && env -u NODE_EXTRA_CA_CERTS "$TSRUN_CLI" pull --help >/dev/null 2>&1; then MODE=cli; else MODE=node; fi
fi
CLI_QUIET=0
if [ "$MODE" = cli ]; then
  help=$(env -u NODE_EXTRA_CA_CERTS "$TSRUN_CLI" pull --help 2>&1) || die "$TSRUN_CLI has no working 'pull' (build it: npm run build)"
  case $help in *--quiet*) CLI_QUIET=1 ;; esac   # skopeo runs with --quiet too
else
  [ -f "$PULL_MODULE" ] || die "$PULL_MODULE does not exist yet: tsrun pull is not implemented (nothing to benchmark)"
  [ -f "$REPO/node_modules/esbuild/package.json" ] || die "esbuild not found in $REPO/node_modules (npm ci)"
  [ -f "$REPO/build/Release/tsrun.node" ] || die "native addon $REPO/build/Release/tsrun.node not found (npm run build)"
fi

WORK=$(mktemp -d /tmp/tsrun-bench-pull.XXXXXX)
T=$WORK/tmpfs
REG_PID=
MOUNTED=0
cleanup() {
  set +e
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  if [ "$MOUNTED" = 1 ]; then umount "$T" || umount -l "$T"; fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$T"
if mount -t tmpfs -o size=6g,mode=0755 tsrun-bench-pull "$T" 2>/dev/null; then
  MOUNTED=1
else
  # no mount privilege (e.g. a restricted container): /dev/shm is a tmpfs too
  [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] || die "cannot mount a tmpfs on $T and /dev/shm is not a tmpfs"
  rm -rf "$T"; T=$(mktemp -d /dev/shm/tsrun-bench-pull.XXXXXX)
  trap 'cleanup; rm -rf "$T"' EXIT
fi

# ---- the image ----
if [ -z "$IMAGE_DIR" ]; then
  IMAGE_DIR=$WORK/image
  echo "bench-pull: building the image (images/debian/build.sh; debootstrap is cached in .cache/images)" >&2
  "$REPO/images/debian/build.sh" "$IMAGE_DIR" >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; die "image build failed"; }
fi
[ -f "$IMAGE_DIR/image.env" ] && [ -d "$IMAGE_DIR/oci" ] || die "$IMAGE_DIR is not an images/debian/build.sh output (no image.env / oci)"
# shellcheck disable=SC1091
. "$IMAGE_DIR/image.env"
LAYER_BLOB=$IMAGE_DIR/oci/blobs/sha256/${IMAGE_LAYER#sha256:}
[ -f "$LAYER_BLOB" ] || die "layer blob $LAYER_BLOB missing"

# ---- the registry, on the tmpfs ----
PORT=$("$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
mkdir -p "$T/registry"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 150); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v2/" 2>/dev/null && break
  kill -0 "$REG_PID" 2>/dev/null || { cat "$WORK/registry.log" >&2; die "docker-registry exited"; }
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v2/" || die "docker-registry does not answer on 127.0.0.1:$PORT"
REF=127.0.0.1:$PORT/tsrun/debian:$IMAGE_TAG
skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
  "oci:$IMAGE_DIR/oci:$IMAGE_TAG" "docker://$REF" >"$WORK/push.log" 2>&1 || { cat "$WORK/push.log" >&2; die "skopeo push failed"; }

# ---- tsrun in node mode: pullImage bundled once (not timed) ----
if [ "$MODE" = node ]; then
  cat >"$WORK/pull-entry.ts" <<EOF
import { pullImage } from '$PULL_MODULE';
import { ImageStore } from '$REPO/src/image/store/store.ts';
async function main() {
  const [ref, root, diffId] = process.argv.slice(2) as [string, string, string];
  const t0 = process.hrtime.bigint();
  const store = new ImageStore(root);
  await pullImage(store, ref, {});
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!store.hasLayer(diffId)) throw new Error('pullImage returned but the store has no unpacked layer ' + diffId);
  console.log(JSON.stringify({ inProcessMs: ms }));
}
main().catch((e) => { console.error(e); process.exit(1); });
EOF
  # the same esbuild settings as scripts/bundle.mjs (CommonJS, import.meta.url shimmed)
  (cd "$REPO" && "$NODE" -e '
    const [entry, out] = process.argv.slice(1);
    require("esbuild").build({
      entryPoints: [entry], outfile: out, bundle: true, platform: "node", format: "cjs", target: "node20",
      external: ["pino"], logLevel: "warning",
      define: { "import.meta.url": "__import_meta_url" },
      banner: { js: "var __import_meta_url = require(\"node:url\").pathToFileURL(__filename).href;" },
    }).catch((e) => { console.error(e.message); process.exit(1); });
  ' "$WORK/pull-entry.ts" "$WORK/pull.cjs") >"$WORK/esbuild.log" 2>&1 || { cat "$WORK/esbuild.log" >&2; die "cannot bundle $PULL_MODULE"; }
fi

# ---- the interleaved rounds ----
BENCH_CFG=$(MODE=$MODE WORK=$WORK T=$T REF=$REF OCI=$IMAGE_DIR/oci TAG=$IMAGE_TAG BLOB=$LAYER_BLOB \
  DIFF_ID=$IMAGE_DIFF_ID GZ=$IMAGE_LAYER_SIZE TAR=$IMAGE_TAR_SIZE FILES=$IMAGE_FILES ROUNDS=$ROUNDS WARMUP=$WARMUP \
  NODE=$NODE CLI=$TSRUN_CLI CLI_QUIET=$CLI_QUIET REPO=$REPO "$NODE" -e '
  const e = process.env;
  console.log(JSON.stringify({ mode: e.MODE, work: e.WORK, t: e.T, ref: e.REF, oci: e.OCI, tag: e.TAG, blob: e.BLOB,
    diffId: e.DIFF_ID, gz: Number(e.GZ), tar: Number(e.TAR), files: Number(e.FILES), rounds: Number(e.ROUNDS),
    warmup: Number(e.WARMUP), node: e.NODE, cli: e.CLI, cliQuiet: e.CLI_QUIET === "1", addon: e.REPO + "/build/Release/tsrun.node",
    nodePath: e.REPO + "/node_modules" }));
')
export BENCH_CFG
cat >"$WORK/bench.cjs" <<'JS'
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const cfg = JSON.parse(process.env.BENCH_CFG);
const baseEnv = { ...process.env };
delete baseEnv.BENCH_CFG;
const nodeEnv = { ...baseEnv, NODE_PATH: cfg.nodePath, TSRUN_NATIVE: cfg.addon };
delete nodeEnv.NODE_EXTRA_CA_CERTS; // tens of ms per node start on this host: not tsrun's cost

function run(file, args, env = baseEnv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000, maxBuffer: 16 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error || r.status !== 0) {
    const how = r.error ? `error ${r.error.message}` : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
    process.stderr.write(`bench-pull: FAILED: ${file} ${args.join(' ')}: ${how}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}\n`);
    process.exit(1);
  }
  return { ms, stdout: r.stdout.toString() };
}

let seq = 0;
const fresh = (name) => path.join(cfg.t, `${name}-${++seq}`);
const clean = () => {
  for (const f of fs.readdirSync(cfg.t)) if (f !== 'registry') fs.rmSync(path.join(cfg.t, f), { recursive: true, force: true });
};

const hex = cfg.diffId.replace(/^sha256:/, '');
function tsrun() {
  const root = fresh('store');
  const r = cfg.mode === 'cli'
    ? run(cfg.cli, ['--root', root, 'pull', ...(cfg.cliQuiet ? ['--quiet'] : []), cfg.ref], nodeEnv)
    : run(cfg.node, [path.join(cfg.work, 'pull.cjs'), cfg.ref, root, cfg.diffId], nodeEnv);
  if (!fs.existsSync(path.join(root, 'layers', hex, 'layer.json'))) {
    process.stderr.write(`bench-pull: tsrun (${cfg.mode}) left no unpacked layer at ${root}/layers/${hex}\n`);
    process.exit(1);
  }
  let inProc;
  try { inProc = JSON.parse(r.stdout.trim().split('\n').pop()).inProcessMs; } catch { /* cli */ }
  return { ms: r.ms, inProc };
}
function skopeoUmoci() {
  const layout = fresh('oci');
  const bundle = fresh('bundle');
  const a = run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${cfg.ref}`, `oci:${layout}:${cfg.tag}`]);
  const b = run('umoci', ['unpack', '--image', `${layout}:${cfg.tag}`, bundle]);
  return { ms: a.ms + b.ms, skopeo: a.ms, umoci: b.ms };
}
function tarFloor() {
  const dir = fresh('tar');
  fs.mkdirSync(dir);
  return { ms: run('tar', ['--numeric-owner', '-xzpf', cfg.blob, '-C', dir]).ms };
}

const samples = { ts: [], su: [], sk: [], um: [], tar: [], tsIn: [] };
const total = cfg.warmup + cfg.rounds;
const fmt = (n) => (n === undefined ? '-' : n.toFixed(0)).padStart(9);
process.stdout.write(`tsrun mode: ${cfg.mode}; image ${cfg.ref}: ${(cfg.gz / 1e6).toFixed(1)} MB gzip, ${(cfg.tar / 1e6).toFixed(1)} MB tar, ${cfg.files} entries\n`);
process.stdout.write(`round    tsrun(ms)  (in-proc) skopeo+umoci  (skopeo)   (umoci)   tar -xzf\n`);
for (let i = 0; i < total; i++) {
  const a = tsrun(); clean();
  const b = skopeoUmoci(); clean();
  const c = tarFloor(); clean();
  const warm = i < cfg.warmup;
  process.stdout.write(`${(warm ? `warm${i + 1}` : `${i - cfg.warmup + 1}`).padEnd(6)}${fmt(a.ms)}  ${fmt(a.inProc)}   ${fmt(b.ms)} ${fmt(b.skopeo)} ${fmt(b.umoci)}  ${fmt(c.ms)}\n`);
  if (warm) continue;
  samples.ts.push(a.ms); if (a.inProc !== undefined) samples.tsIn.push(a.inProc);
  samples.su.push(b.ms); samples.sk.push(b.skopeo); samples.um.push(b.umoci); samples.tar.push(c.ms);
}

const median = (xs) => { const s = [...xs].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const min = (xs) => Math.min(...xs);
const mbs = (bytes, ms, w) => (bytes / 1e6 / (ms / 1000)).toFixed(1).padStart(w);
process.stdout.write(`\n${`${cfg.rounds} rounds`.padEnd(26)}${'median'.padStart(7)}${'min'.padStart(9)}${'MB/s gz'.padStart(9)}${'MB/s tar'.padStart(10)}   (ms; MB/s at the median)\n`);
const row = (name, xs) => process.stdout.write(`${name.padEnd(26)}${median(xs).toFixed(0).padStart(7)}${min(xs).toFixed(0).padStart(9)}${mbs(cfg.gz, median(xs), 9)}${mbs(cfg.tar, median(xs), 10)}\n`);
row(`tsrun pull+unpack (${cfg.mode})`, samples.ts);
if (samples.tsIn.length) row('  of which in-process', samples.tsIn);
row('skopeo copy + umoci', samples.su);
row('  skopeo copy', samples.sk);
row('  umoci unpack', samples.um);
row('tar -xzf (floor)', samples.tar);
const r1 = median(samples.su) / median(samples.ts);
const r2 = median(samples.ts) / median(samples.tar);
process.stdout.write(`\nratios (medians; mins in brackets):\n`);
process.stdout.write(`  skopeo+umoci / tsrun = ${r1.toFixed(2)}x  [${(min(samples.su) / min(samples.ts)).toFixed(2)}x]   goal >= 3x: ${r1 >= 3 ? 'met' : 'not met'}\n`);
process.stdout.write(`  tsrun / tar          = ${r2.toFixed(2)}x  [${(min(samples.ts) / min(samples.tar)).toFixed(2)}x]   (1.0 = as fast as the floor)\n`);
fs.writeFileSync(path.join(cfg.work, 'samples.json'), JSON.stringify(samples, null, 2));
JS
"$NODE" "$WORK/bench.cjs"
