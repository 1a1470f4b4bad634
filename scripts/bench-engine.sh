#!/usr/bin/env bash
# The engine (dist/bin/tsrun) side by side with its peers, in one interleaved run: podman
# (runtime runc) for single containers, runc for 50 detached containers at once, conmon for the
# memory of the process that watches a detached container.
#
#   scripts/bench-engine.sh [--runs N] [--bulk-runs N] [--warmup N] [--no-podman] [--keep] [--quick]
#   npm run bench:engine -- --runs 30
#
#   --runs N       timed rounds of sections 1 and 2 (default 20, at least 3)
#   --bulk-runs N  timed rounds of section 3 (default 3)
#   --warmup N     untimed rounds first, of sections 1 and 2 (default 3); section 3 warms up
#                  with one untimed batch of 5 containers per side
#   --no-podman    skip podman (sections 1 and 2, and conmon's half of section 4)
#   --keep         keep the work directory (image, bundles, stores, raw samples); containers
#                  are removed all the same
#   --quick        --runs 5 --bulk-runs 1 (a smoke run: the numbers are rough)
#
# Needs root, a built tree (`npm run build`), runc, busybox-static; podman and conmon unless
# --no-podman. TSRUN=/path/to/dist/bin/tsrun and RUNC=/path/to/runc override the binaries.
#
# Sections (rounds alternate the order: odd rounds tsrun first, even rounds the peer first):
#   1. `tsrun run --rm busybox true` vs `podman --runtime runc run --rm --network none
#      localhost/busybox:latest true`. Goal: tsrun/podman <= 0.33.
#   2. `run -d … sleep 60` then `rm -f` of that container, timed as one pair: tsrun vs podman
#      (podman's `rm -f` gets `--time 0`: busybox sleep as pid 1 ignores SIGTERM, and podman's
#      rm -f would wait its 10 s stop timeout where tsrun's, like docker's, sends SIGKILL).
#      Goal: <= 0.33.
#   3. 50 detached containers started at once (background children, timed from the first spawn
#      until all 50 returned): `tsrun run -d busybox sleep 60` x50 vs `runc --root R run -d
#      --bundle B_i ID_i` x50 (50 bundles sharing one read-only busybox rootfs, args
#      ["sleep","60"], terminal false, stdio /dev/null). Then, untimed, `tsrun rm -f` of
#      `tsrun ps -aq` and `runc kill KILL` + `runc delete --force`. Goal: tsrun/runc <= 1.5.
#   4. Memory per detached container: 10 `tsrun run -d busybox sleep 60`, the RSS and PSS of
#      each monitor (`tsrun inspect -f '{{.State.MonitorPid}}'`) from /proc/PID/smaps_rollup;
#      the same for the conmon of 10 `podman run -d` (`podman inspect -f
#      '{{.State.ConmonPid}}'`). Goal: tsrun's monitor <= conmon.
#
# Where things go: one work directory on a tmpfs (/run when it is one, else /dev/shm): tsrun's
# private store (--root) and run root (--runroot), runc's --root, podman's private graphroot,
# runroot and tmp dir (private containers.conf/storage.conf from scripts/lib/bench-common.sh, as
# for scripts/bench-verbs.sh and bench-network.sh: cgroupfs, file locks and events, CNI with a
# private config dir), the image (images/busybox/build.sh and oci-layout.sh, loaded into both
# stores), the bundles, the runs' output files. Podman passes no
# --root to runc, so its containers' runc state is in runc's default /run/runc.
# tsrun runs from a private copy of dist/bin and build/Release (a rebuild during the benchmark
# cannot mix two builds in one sample). NODE_EXTRA_CA_CERTS is unset for every command. Wall
# time is process.hrtime.bigint() around child_process.spawnSync (sections 1, 2, 4) or from the
# first spawn to the last exit (section 3); stdin /dev/null, stdout/stderr to files on the tmpfs.
# After each timed sample, and after each untimed removal, the script waits (untimed) until no
# helper of ours runs (conmon, `podman container cleanup`, tsrun monitors); the median of those
# waits in sections 1 and 2 is printed. Any failed command stops the benchmark with its stderr. At the end the
# script looks for leftovers (tsrun containers, mounts, monitors and other processes, cgroups,
# runc and podman containers) and reports them (exit status 1), then removes everything it made,
# also when interrupted. It reports numbers only; it asserts nothing about them.
set -euo pipefail

die() { echo "bench-engine: $*" >&2; exit 1; }

RUNS=20
BULK_RUNS=3
WARMUP=3
PODMAN=1
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    --bulk-runs) [ $# -ge 2 ] || die "--bulk-runs needs a value"; BULK_RUNS=$2; shift 2 ;;
    --bulk-runs=*) BULK_RUNS=${1#--bulk-runs=}; shift ;;
    --warmup) [ $# -ge 2 ] || die "--warmup needs a value"; WARMUP=$2; shift 2 ;;
    --warmup=*) WARMUP=${1#--warmup=}; shift ;;
    --no-podman) PODMAN=0; shift ;;
    --keep) KEEP=1; shift ;;
    --quick) RUNS=5; BULK_RUNS=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
{ [[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 3 ]; } || die "--runs must be an integer >= 3, got '$RUNS'"
{ [[ $BULK_RUNS =~ ^[0-9]+$ ]] && [ "$BULK_RUNS" -ge 1 ]; } || die "--bulk-runs must be an integer >= 1, got '$BULK_RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer, got '$WARMUP'"
[ "$(id -u)" = 0 ] || die "must run as root (rootful containers)"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAUNCHER=${TSRUN:-$REPO/dist/bin/tsrun}
{ [ -x "$LAUNCHER" ] && [ -f "${LAUNCHER}.cjs" ]; } || die "$LAUNCHER (and ${LAUNCHER}.cjs) not found: build first with 'cd $REPO && npm run build'"
NODE=$(sed -n '1s/^#![[:space:]]*//p' "$LAUNCHER")
{ [ -n "$NODE" ] && [ -x "${NODE%% *}" ]; } || die "cannot find the node of the #! line of $LAUNCHER (got '$NODE')"
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
[ -x "$RUNC" ] || die "runc not found (apt-get install runc)"
ADDON=$(cd "$(dirname "$LAUNCHER")/../.." && pwd)/build/Release/tsrun.node
[ -n "${TSRUN_NATIVE:-}" ] && ADDON=$TSRUN_NATIVE
[ -f "$ADDON" ] || die "native addon $ADDON not found: build first with 'cd $REPO && npm run build'"
[ -f "$(dirname "$ADDON")/tsrun-init" ] || die "$(dirname "$ADDON")/tsrun-init not found: build first with 'cd $REPO && npm run build'"
PODMAN_BIN=
if [ "$PODMAN" = 1 ]; then
  PODMAN_BIN=$(command -v podman) || die "podman not found (apt-get install podman, or pass --no-podman)"
  command -v conmon >/dev/null || die "conmon not found (apt-get install conmon, or pass --no-podman)"
fi

# ---- the work directory, on a tmpfs (as /run is on a real host) ----
# shellcheck source=scripts/lib/bench-common.sh
. "$REPO/scripts/lib/bench-common.sh"
bench_fast_base
WORK=$FAST_BASE/tsrun-bench-engine-$$
PREFIX=tbe$$
mkdir -m 0700 "$WORK" || die "cannot create $WORK"
mkdir -p "$WORK/out" "$WORK/runc" "$WORK/bundles"
HOST_ABSENT=$WORK/host-absent
bench_note_host_paths "$HOST_ABSENT"

TIMER=$WORK/timer.cjs
COPY=$LAUNCHER
cfg_json() {
  "$NODE" -e 'const a = process.argv.slice(1); console.log(JSON.stringify({
    tsrun: a[0], runc: a[1], node: a[2], podman: a[3], work: a[4], prefix: a[5],
    runs: +a[6], bulkRuns: +a[7], warmup: +a[8], hostAbsent: a[9]}))' \
    "$COPY" "$RUNC" "$NODE" "$PODMAN_BIN" "$WORK" "$PREFIX" "$RUNS" "$BULK_RUNS" "$WARMUP" "$HOST_ABSENT"
}
bench_traps "$WORK"

# ---- a private copy of the engine; the V8 code caches it writes stay in it ----
bench_private_copy "$LAUNCHER" "$ADDON" "$WORK/tsrun"
TS=("$COPY" --root "$WORK/tsrun-root" --runroot "$WORK/tsrun-run")

# ---- the image and the bundles ----
# runc writes the starter config.json: nothing lands in dist/bin (no tsrun-oci V8 cache)
bench_busybox_oci "$WORK/img" "$RUNC"
ARCHIVE=$WORK/img/busybox-oci.tar
# shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
"$NODE" -e '
  const fs = require("fs");
  const [src, dir, rootfs, prefix] = process.argv.slice(1);
  const c = JSON.parse(fs.readFileSync(src, "utf8"));
  c.root = { path: rootfs, readonly: true };
  c.process.args = ["sleep", "60"];
  c.process.terminal = false;
  for (let i = 1; i <= 50; i++) {
    fs.mkdirSync(`${dir}/b${i}`);
    fs.writeFileSync(`${dir}/b${i}/config.json`, JSON.stringify(c, null, 2) + "\n");
  }
' "$WORK/img/config.json" "$WORK/bundles" "$WORK/img/rootfs" "$PREFIX" || die "cannot write the bundles in $WORK/bundles"

if ! env -u NODE_EXTRA_CA_CERTS "${TS[@]}" load -i "$ARCHIVE" -t localhost/busybox:latest >"$WORK/tsrun-load.log" 2>&1; then
  cat "$WORK/tsrun-load.log" >&2
  die "tsrun load of $ARCHIVE failed (output above)"
fi

bench_timer_lib "$WORK"
cat >"$TIMER" <<'JS'
// Interleaved measurements, stats, leftover checks and cleanup (see scripts/bench-engine.sh).
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const C = require('./bench-common.cjs');
const { RunError, pause, listDir, stats } = C;

const cfg = JSON.parse(process.env.BENCH_CFG);
const env = C.cleanEnv();
const W = (...p) => path.join(cfg.work, ...p);
const podmanEnv = C.podmanEnvOf(env, W('podman'), W('podman', 'tmp'));
const TS = [cfg.tsrun, '--root', W('tsrun-root'), '--runroot', W('tsrun-run')];
const RUNC_ROOT = W('runc');
const PODMAN_IMAGE = 'localhost/busybox:latest';
const BULK = 50;
const MEM = 10;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const notes = new Map(); // what -> Set of stderr texts of successful runs
const tsIds = new Set(); // every tsrun container id seen (for the cgroup check)
const exec = C.makeExec({ outDir: W('out'), env, notes });
const pd = (args, o = {}) => exec([cfg.podman, ...args], { env: podmanEnv, ...o });
const ts = (args, o = {}) => exec([...TS, ...args], o);

// ---- processes, cgroups, mounts (scripts/lib/bench-common.cjs) ----
const podmanIds = () => C.podmanIds(W('podman', 'tmp', 'events.log'));
/** Ours: mentions the work dir or the prefix, a tsrun-monitor of ours, or in a cgroup of one of our containers. */
const ourProcs = ({ cgroups = true } = {}) =>
  C.ourProcs({
    needles: [cfg.work, cfg.prefix],
    dirs: [cfg.work],
    cgroups,
    cgNeedles: cgroups ? [`/${cfg.prefix}-`, ...[...tsIds].map((id) => `/tsrun/${id}`), ...[...podmanIds()].map((id) => `/libpod-${id}`)] : [],
  });
/** Untimed: until no helper of ours runs (conmon, podman cleanup, tsrun monitors). Returns the ms waited, or -1 after 15 s. */
const waitQuiet = () => C.waitQuiet(() => ourProcs({ cgroups: false }));
const ourCgroups = () => C.ourCgroups({ prefix: cfg.prefix, tsIds, pdIds: podmanIds() });
const mountsUnder = () => C.mountsUnder([cfg.work]);
/** Runtime state of our podman containers in runc's default root (podman passes no --root). */
const podmanStateLeft = () => C.runtimeStateLeft(podmanIds(), [['/run/runc', cfg.runc]]).map((s) => s.entry);

function tsrunLeft() {
  const r = ts(['ps', '-aq', '--no-trunc'], { what: null, mayFail: true });
  return r.ok ? { ids: r.stdout.split('\n').filter(Boolean) } : { error: r.stderr.trim() || `exit status ${r.status}` };
}
function runcLeft() {
  return listDir(RUNC_ROOT);
}

// ---- stats ----
const f = (x, w = 8) => x.toFixed(1).padStart(w);
const row = (name, s) => `  ${name.padEnd(24)}${f(s.min)}${f(s.med)}${f(s.p90)}`;
const head = () => `  ${''.padEnd(24)}${'min'.padStart(8)}${'median'.padStart(8)}${'p90'.padStart(8)}`;
const goal = (r, g) => `goal: <= ${g.toFixed(2)} (${r <= g ? 'met' : 'not met'})`;
const progress = (s) => process.stderr.isTTY && process.stderr.write(`\r\x1b[K  ${s}`);
const progressEnd = () => process.stderr.isTTY && process.stderr.write('\r\x1b[K');
const tsv = (name, cols) => {
  const keys = Object.keys(cols);
  const n = Math.max(...keys.map((k) => cols[k].length));
  const lines = [`round\t${keys.join('\t')}`];
  for (let i = 0; i < n; i++) lines.push([i + 1, ...keys.map((k) => (cols[k][i] ?? NaN).toFixed(3))].join('\t'));
  fs.writeFileSync(W(name), `${lines.join('\n')}\n`);
};

/** Rounds of a pair: odd rounds A first, even rounds B first. Each side returns { ms, ...parts }. */
function pairRounds(title, a, b) {
  const samples = { [a.key]: [], [b.key]: [] };
  const parts = {};
  const waits = { [a.key]: [], [b.key]: [] };
  let slow = 0;
  const one = (side, record) => {
    const r = side.fn();
    const w = waitQuiet();
    if (w < 0) slow++;
    if (!record) return;
    samples[side.key].push(r.ms);
    if (w >= 0) waits[side.key].push(w);
    for (const [k, v] of Object.entries(r)) if (k !== 'ms') (parts[`${side.key} ${k}`] ??= []).push(v);
  };
  for (let w = 1; w <= cfg.warmup; w++) {
    progress(`${title}: warm-up ${w}/${cfg.warmup}`);
    for (const s of w % 2 ? [a, b] : [b, a]) one(s, false);
  }
  for (let i = 1; i <= cfg.runs; i++) {
    progress(`${title}: round ${i}/${cfg.runs}`);
    for (const s of i % 2 ? [a, b] : [b, a]) one(s, true);
  }
  progressEnd();
  return { samples, parts, waits, slow };
}

// ---- 1. run --rm true ----
function section1() {
  console.log(`1. run --rm busybox true, wall ms (${cfg.runs} rounds, +${cfg.warmup} warm-up, order alternating)`);
  if (!cfg.podman) {
    console.log('  skipped (--no-podman)\n');
    return;
  }
  const r = pairRounds('1. run --rm', { key: 'ts', fn: () => ts(['run', '--rm', 'busybox', 'true'], { what: 'tsrun run --rm' }) }, {
    key: 'pd',
    fn: () => pd(['--runtime', 'runc', 'run', '--rm', '--network', 'none', PODMAN_IMAGE, 'true'], { what: 'podman run --rm' }),
  });
  tsv('samples-1-run-rm.tsv', { tsrun: r.samples.ts, podman: r.samples.pd });
  const a = stats(r.samples.ts);
  const b = stats(r.samples.pd);
  console.log(head());
  console.log(row('tsrun run --rm', a));
  console.log(row('podman (runc) run --rm', b));
  console.log(`  tsrun/podman  min ${(a.min / b.min).toFixed(2)}   median ${(a.med / b.med).toFixed(2)}   ${goal(a.med / b.med, 0.33)}`);
  printWaits(r);
  console.log('');
}

function printWaits(r) {
  const m = (k) => (r.waits[k].length ? `${stats(r.waits[k]).med.toFixed(0)} ms` : 'n/a');
  console.log(`  (untimed wait after return until the helpers were gone, median: tsrun ${m('ts')}, podman ${m('pd')})`);
  if (r.slow) console.log(`  note: ${r.slow} time(s) helpers were still running 15 s after the command returned`);
}

// ---- 2. run -d + rm -f ----
function pairTs() {
  const a = ts(['run', '-d', 'busybox', 'sleep', '60'], { what: 'tsrun run -d' });
  const id = a.stdout.trim();
  if (!/^[0-9a-f]{12,64}$/.test(id)) throw new RunError(`tsrun run -d printed no id: '${a.stdout}'`);
  tsIds.add(id);
  const b = ts(['rm', '-f', id], { what: 'tsrun rm -f' });
  return { ms: a.ms + b.ms, run: a.ms, rm: b.ms };
}
function pairPd() {
  const a = pd(['--runtime', 'runc', 'run', '-d', '--network', 'none', PODMAN_IMAGE, 'sleep', '60'], { what: 'podman run -d' });
  const id = a.stdout.trim();
  if (!/^[0-9a-f]{12,64}$/.test(id)) throw new RunError(`podman run -d printed no id: '${a.stdout}'`);
  const b = pd(['rm', '-f', '--time', '0', id], { what: 'podman rm -f' });
  return { ms: a.ms + b.ms, run: a.ms, rm: b.ms };
}
function section2() {
  console.log(`2. run -d busybox sleep 60, then rm -f of it, timed as one pair, wall ms (${cfg.runs} rounds, +${cfg.warmup} warm-up)`);
  if (!cfg.podman) {
    console.log('  skipped (--no-podman)\n');
    return;
  }
  const r = pairRounds('2. run -d + rm -f', { key: 'ts', fn: pairTs }, { key: 'pd', fn: pairPd });
  tsv('samples-2-run-d-rm.tsv', { tsrun: r.samples.ts, 'tsrun run': r.parts['ts run'], 'tsrun rm': r.parts['ts rm'], podman: r.samples.pd, 'podman run': r.parts['pd run'], 'podman rm': r.parts['pd rm'] });
  const a = stats(r.samples.ts);
  const b = stats(r.samples.pd);
  console.log(head());
  console.log(row('tsrun run -d + rm -f', a));
  console.log(row('  run -d', stats(r.parts['ts run'])));
  console.log(row('  rm -f', stats(r.parts['ts rm'])));
  console.log(row('podman run -d + rm -f', b));
  console.log(row('  run -d', stats(r.parts['pd run'])));
  console.log(row('  rm -f --time 0', stats(r.parts['pd rm'])));
  console.log(`  tsrun/podman  min ${(a.min / b.min).toFixed(2)}   median ${(a.med / b.med).toFixed(2)}   ${goal(a.med / b.med, 0.33)}`);
  printWaits(r);
  console.log('');
}

// ---- 3. 50 detached at once ----
/** Spawns every argv at once; resolves when all have exited: { ms, res: [{ status, signal, error }] }. */
function spawnAll(argvs, stdios, e) {
  return new Promise((resolve) => {
    let left = argvs.length;
    const res = new Array(argvs.length);
    let t0;
    const done = (i, r) => {
      if (res[i]) return;
      res[i] = r;
      if (--left === 0) resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, res });
    };
    t0 = process.hrtime.bigint();
    argvs.forEach(([file, ...args], i) => {
      const c = spawn(file, args, { env: e, stdio: stdios[i], cwd: '/' });
      c.on('error', (err) => done(i, { error: err }));
      c.on('exit', (status, signal) => done(i, { status, signal }));
    });
  });
}

async function bulkTs(n, label) {
  const fds = [];
  const stdios = [];
  for (let i = 0; i < n; i++) {
    const o = fs.openSync(W('out', `bulk-${i}.out`), 'w');
    const er = fs.openSync(W('out', `bulk-${i}.err`), 'w');
    fds.push(o, er);
    stdios.push(['ignore', o, er]);
  }
  let r;
  try {
    r = await spawnAll(Array.from({ length: n }, () => [...TS, 'run', '-d', 'busybox', 'sleep', '60']), stdios, env);
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  const ids = [];
  const failed = [];
  r.res.forEach((x, i) => {
    const out = fs.readFileSync(W('out', `bulk-${i}.out`), 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(out)) {
      ids.push(out);
      tsIds.add(out);
    }
    if (x.error || x.status !== 0) failed.push(`#${i + 1}: ${x.error ? x.error.message : x.signal ? `killed by ${x.signal}` : `exit status ${x.status}`}: ${fs.readFileSync(W('out', `bulk-${i}.err`), 'utf8').trim().slice(0, 500)}`);
  });
  // untimed: all running, then all removed
  const running = ts(['ps', '-q', '--no-trunc'], { what: 'tsrun ps -q' }).stdout.split('\n').filter(Boolean);
  const all = ts(['ps', '-aq', '--no-trunc'], { what: 'tsrun ps -aq' }).stdout.split('\n').filter(Boolean);
  for (const id of all) tsIds.add(id);
  if (all.length) ts(['rm', '-f', ...all], { what: 'tsrun rm -f (bulk)', timeout: 300_000 });
  if (waitQuiet() < 0) throw new RunError('tsrun: monitors still running 15 s after rm -f of the bulk containers');
  if (failed.length) throw new RunError(`FAILED: ${label}: ${failed.length} of ${n} tsrun run -d failed:\n  ${failed.join('\n  ')}`);
  if (running.length !== n) throw new RunError(`${label}: ${running.length} of ${n} tsrun containers running after all returned (ps -q)`);
  return r.ms;
}

async function bulkRunc(n, label) {
  const nul = fs.openSync('/dev/null', 'r+');
  const ids = Array.from({ length: n }, (_, i) => `${cfg.prefix}-${label}-${i + 1}`);
  let r;
  try {
    r = await spawnAll(
      ids.map((id, i) => [cfg.runc, '--root', RUNC_ROOT, 'run', '-d', '--bundle', W('bundles', `b${i + 1}`), id]),
      ids.map(() => [nul, nul, nul]),
      env,
    );
  } finally {
    fs.closeSync(nul);
  }
  const failed = r.res.flatMap((x, i) => (x.error || x.status !== 0 ? [`${ids[i]}: ${x.error ? x.error.message : x.signal ? `killed by ${x.signal}` : `exit status ${x.status}`}`] : []));
  // untimed: all running, then kill and delete
  const list = JSON.parse(exec([cfg.runc, '--root', RUNC_ROOT, 'list', '-f', 'json'], { what: 'runc list' }).stdout || 'null') ?? [];
  const running = list.filter((c) => c.status === 'running').length;
  for (const c of list) exec([cfg.runc, '--root', RUNC_ROOT, 'kill', c.id, 'KILL'], { what: null, mayFail: true });
  for (const c of list) exec([cfg.runc, '--root', RUNC_ROOT, 'delete', '--force', c.id], { what: 'runc delete --force' });
  if (failed.length) throw new RunError(`FAILED: ${label}: ${failed.length} of ${n} runc run -d failed (stdio /dev/null, no stderr kept):\n  ${failed.join('\n  ')}`);
  if (running !== n) throw new RunError(`${label}: ${running} of ${n} runc containers running after all returned`);
  return r.ms;
}

async function section3() {
  console.log(`3. ${BULK} detached busybox sleep 60 started at once, wall ms from the first spawn until all returned (${cfg.bulkRuns} round(s), +1 warm-up of 5)`);
  const s = { ts: [], rc: [] };
  progress('3. bulk: warm-up');
  await bulkTs(5, 'w');
  await bulkRunc(5, 'w');
  for (let i = 1; i <= cfg.bulkRuns; i++) {
    progress(`3. bulk: round ${i}/${cfg.bulkRuns}`);
    for (const side of i % 2 ? ['ts', 'rc'] : ['rc', 'ts']) {
      s[side].push(side === 'ts' ? await bulkTs(BULK, `bulk ${i}`) : await bulkRunc(BULK, `b${i}`));
      await sleep(200); // let the host settle after the untimed removal
    }
  }
  progressEnd();
  tsv('samples-3-bulk.tsv', { tsrun: s.ts, runc: s.rc });
  const a = stats(s.ts);
  const b = stats(s.rc);
  console.log(head());
  console.log(`${row(`tsrun run -d x${BULK}`, a)}   (median ${(a.med / BULK).toFixed(1)} ms per container)`);
  console.log(`${row(`runc run -d x${BULK}`, b)}   (median ${(b.med / BULK).toFixed(1)} ms per container)`);
  console.log(`  tsrun/runc  min ${(a.min / b.min).toFixed(2)}   median ${(a.med / b.med).toFixed(2)}   ${goal(a.med / b.med, 1.5)}`);
  console.log('');
}

// ---- 4. memory of the monitor / conmon ----
function smaps(pid) {
  const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const v = (k) => Number((t.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) ?? [0, NaN])[1]);
  return { rss: v('Rss'), pss: v('Pss'), anon: v('Pss_Anon'), file: v('Pss_File'), shmem: v('Pss_Shmem') };
}
function memRow(name, ms) {
  const mean = (k) => ms.reduce((a, m) => a + m[k], 0) / ms.length;
  const r = stats(ms.map((m) => m.rss));
  const p = stats(ms.map((m) => m.pss));
  console.log(
    `  ${name.padEnd(22)}${mean('rss').toFixed(0).padStart(9)}${mean('pss').toFixed(0).padStart(9)}${`${r.min}-${r.max}`.padStart(13)}${`${p.min}-${p.max}`.padStart(13)}    ${mean('anon').toFixed(0)}/${mean('file').toFixed(0)}/${mean('shmem').toFixed(0)}`,
  );
  return { rss: mean('rss'), pss: mean('pss') };
}
function section4() {
  console.log(`4. memory per detached container: the process that watches it, with ${MEM} detached busybox sleep 60 running, KiB (/proc/PID/smaps_rollup)`);
  progress('4. memory: tsrun');
  const ids = [];
  for (let i = 0; i < MEM; i++) {
    const id = ts(['run', '-d', 'busybox', 'sleep', '60'], { what: 'tsrun run -d (memory)' }).stdout.trim();
    tsIds.add(id);
    ids.push(id);
  }
  pause(500);
  const tsMem = [];
  for (const id of ids) {
    const pid = Number(ts(['inspect', '-f', '{{.State.MonitorPid}}', id], { what: 'tsrun inspect' }).stdout.trim());
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!pid || !cmd.startsWith('tsrun-monitor')) throw new RunError(`tsrun inspect gave MonitorPid ${pid} for ${id}, not a tsrun-monitor: '${cmd}'`);
    tsMem.push(smaps(pid));
  }
  ts(['rm', '-f', ...ids], { what: 'tsrun rm -f (memory)' });
  waitQuiet();
  let pdMem = null;
  if (cfg.podman) {
    progress('4. memory: podman');
    const pids = [];
    for (let i = 0; i < MEM; i++) pids.push(pd(['--runtime', 'runc', 'run', '-d', '--network', 'none', PODMAN_IMAGE, 'sleep', '60'], { what: 'podman run -d (memory)' }).stdout.trim());
    pause(500);
    pdMem = [];
    for (const id of pids) {
      const pid = Number(pd(['inspect', '-f', '{{.State.ConmonPid}}', id], { what: 'podman inspect' }).stdout.trim());
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (!pid || comm !== 'conmon') throw new RunError(`podman inspect gave ConmonPid ${pid} for ${id}, not a conmon: '${comm}'`);
      pdMem.push(smaps(pid));
    }
    pd(['rm', '-f', '--time', '0', ...pids], { what: 'podman rm -f (memory)' });
    waitQuiet();
  }
  progressEnd();
  fs.writeFileSync(W('samples-4-memory.json'), `${JSON.stringify({ tsrun: tsMem, conmon: pdMem }, null, 1)}\n`);
  console.log(`  ${''.padEnd(22)}${'RSS mean'.padStart(9)}${'PSS mean'.padStart(9)}${'RSS min-max'.padStart(13)}${'PSS min-max'.padStart(13)}    PSS anon/file/shmem`);
  const a = memRow(`tsrun-monitor x${MEM}`, tsMem);
  if (pdMem) {
    const b = memRow(`conmon x${MEM}`, pdMem);
    console.log(`  tsrun/conmon  RSS ${(a.rss / b.rss).toFixed(2)}   PSS ${(a.pss / b.pss).toFixed(2)}   ${goal(Math.max(a.rss / b.rss, a.pss / b.pss), 1)} (both RSS and PSS)`);
  } else {
    console.log('  conmon: skipped (--no-podman)');
  }
  console.log('');
}

async function bench() {
  section1();
  section2();
  await section3();
  section4();
  for (const [what, set] of notes) for (const n of set) console.log(`note: ${what} printed on stderr (exit 0): ${n.split('\n').join(' | ').slice(0, 300)}`);
  fs.writeFileSync(W('tsrun-ids'), `${[...tsIds].join('\n')}\n`);
}

// ---- leftovers ----
function loadIds() {
  try {
    for (const id of fs.readFileSync(W('tsrun-ids'), 'utf8').split('\n').filter(Boolean)) tsIds.add(id);
  } catch {}
}
function leftovers() {
  const problems = [];
  const t = tsrunLeft();
  if (t.error) problems.push(`tsrun ps -aq failed: ${t.error}`);
  else if (t.ids.length) problems.push(`tsrun containers left (ps -a): ${t.ids.join(' ')}`);
  const rc = runcLeft();
  if (rc.length) problems.push(`runc containers left in ${RUNC_ROOT}: ${rc.join(' ')}`);
  if (cfg.podman) {
    const r = pd(['ps', '-aq'], { what: null, mayFail: true });
    if (!r.ok) problems.push(`podman ps -aq failed: ${r.stderr.trim()}`);
    else if (r.stdout.trim()) problems.push(`podman containers left: ${r.stdout.trim().split('\n').join(' ')}`);
    for (const s of podmanStateLeft()) problems.push(`runc state /run/runc/${s} of a podman container`);
  }
  for (const m of mountsUnder()) problems.push(`mount left: ${m}`);
  for (const p of ourProcs()) problems.push(`process left: ${p.pid} ${p.cmd}`);
  for (const c of ourCgroups()) problems.push(`cgroup left: ${c}`);
  return problems;
}
function verify() {
  loadIds();
  const problems = leftovers();
  if (problems.length) {
    process.stderr.write(`bench-engine: leftovers after the runs (removed by the cleanup that follows):\n  ${problems.join('\n  ')}\n`);
    process.exit(1);
  }
  console.log(
    `leftovers: none (tsrun ps -a empty; no runc container in ${RUNC_ROOT}${cfg.podman ? '; podman ps -a empty, no runc state of ours in /run/runc' : ''}; no mount under ${cfg.work}; no tsrun-monitor, conmon or other process of ours; no cgroup of ours)`,
  );
}

/** Remove everything the bench made, whatever state it was left in (the EXIT trap). Reports what had to be removed by force. */
function sweep() {
  loadIds();
  const forced = [];
  const step = (name, fn) => C.sweepStep(forced, name, fn);
  step('tsrun containers', () => {
    if (!fs.existsSync(W('tsrun-root'))) return;
    const t = tsrunLeft();
    if (t.error) forced.push(`tsrun ps -aq failed: ${t.error}`);
    else if (t.ids.length) {
      forced.push(`tsrun containers: ${t.ids.join(' ')}`);
      for (const id of t.ids) tsIds.add(id);
      const r = ts(['rm', '-f', ...t.ids], { what: null, mayFail: true, timeout: 300_000 });
      if (!r.ok) forced.push(`tsrun rm -f failed: ${r.stderr.trim()}`);
    }
  });
  step('runc containers', () => {
    for (const id of runcLeft()) {
      forced.push(`runc container ${id}`);
      spawnSync(cfg.runc, ['--root', RUNC_ROOT, 'delete', '--force', id], { env, stdio: 'ignore', timeout: 30_000 });
    }
  });
  if (cfg.podman && fs.existsSync(W('podman', 'containers.conf'))) {
    C.sweepPodman(forced, { podman: cfg.podman, podmanEnv, env, pdIds: podmanIds, roots: [['/run/runc', cfg.runc]] });
  }
  C.sweepProcs(forced, ourProcs);
  C.sweepCgroups(forced, ourCgroups());
  C.sweepMounts(forced, mountsUnder());
  C.sweepHostPaths(forced, cfg.hostAbsent);
  if (forced.length) {
    process.stderr.write(`bench-engine: cleanup had to remove:\n  ${forced.join('\n  ')}\n`);
    process.exit(1);
  }
}

const mode = process.argv[2];
(async () => {
  try {
    if (mode === 'verify') verify();
    else if (mode === 'sweep') sweep();
    else await bench();
  } catch (e) {
    if (!(e instanceof RunError)) throw e;
    if (mode !== 'sweep' && mode !== 'verify') fs.writeFileSync(W('tsrun-ids'), `${[...tsIds].join('\n')}\n`);
    progressEnd();
    process.stderr.write(`\nbench-engine: ${e.message}\n`);
    process.exit(1);
  }
})();
JS

# ---- podman: a private configuration and the image ----
if [ "$PODMAN" = 1 ]; then
  PD=$WORK/podman
  bench_podman_config "$PD" "$PD/graphroot" "$PD/runroot" "$PD/tmp" "$PD/networks" scripts/bench-engine.sh
  bench_podman_load "$ARCHIVE"
fi

# ---- header ----
git_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
git_dirty=$(git -C "$REPO" status --porcelain -- src native 2>/dev/null | wc -l)
echo "tsrun (the engine) vs podman (runtime runc), runc and conmon: busybox, one interleaved run"
echo "  date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  host      $(uname -sr), $(nproc) CPU, load average $(cut -d" " -f1-3 /proc/loadavg), cgroup $( [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] && echo v2 || echo "v1/hybrid")"
echo "  tsrun     $LAUNCHER (commit $git_rev, $git_dirty changed file(s) in src/ native/; bundle sha256 $(sha256sum "${COPY}.cjs" | cut -c1-12))"
echo "            run from a private copy: $COPY"
echo "  runc      $RUNC ($("$RUNC" --version | head -1))"
echo "  node      $NODE $("$NODE" --version) (the #! of the launcher)"
if [ "$PODMAN" = 1 ]; then
  echo "  podman    $PODMAN_BIN ($("$PODMAN_BIN" --version)), conmon $(conmon --version 2>/dev/null | head -1 | awk '{print $3}'); runtime runc, cgroupfs, --network none"
  echo "            image loaded as $PODMAN_LOADED$([ "$PODMAN_LOADED" = localhost/busybox:latest ] || echo ", tagged localhost/busybox:latest")"
fi
echo "  stores    all on a tmpfs ($FAST_BASE): $WORK (tsrun --root/--runroot, runc --root, podman graphroot/runroot/tmp)"
[ "$FAST_BASE" = /run ] || echo "            (/run is $(stat -f -c %T /run) here, not a tmpfs$([ "$PODMAN" = 1 ] && echo "; podman's runc keeps its state in its default /run/runc, on it"))"
echo "  env       NODE_EXTRA_CA_CERTS unset for every command${NODE_EXTRA_CA_CERTS:+ (set in this shell to $NODE_EXTRA_CA_CERTS)}"
echo

BENCH_CFG=$(cfg_json) "$NODE" "$TIMER"
BENCH_CFG=$(cfg_json) "$NODE" "$TIMER" verify
