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
# Every tsrun and podman container here runs with `--network none`: no network on either side
# (tsrun's default is its CNI bridge tsrun0, podman's its bridge; scripts/bench-network.sh
# measures those). runc's bundles have no network namespace of their own to set up either.
#
# Sections (rounds alternate the order: odd rounds tsrun first, even rounds the peer first):
#   1. `tsrun run --rm --network none busybox true` vs `podman --runtime runc run --rm --network
#      none localhost/busybox:latest true`. Goal: tsrun/podman <= 0.33.
#   2. `run -d --network none … sleep 60` then `rm -f` of that container, timed as one pair:
#      tsrun vs podman
#      (podman's `rm -f` gets `--time 0`: busybox sleep as pid 1 ignores SIGTERM, and podman's
#      rm -f would wait its 10 s stop timeout where tsrun's, like docker's, sends SIGKILL).
#      Goal: <= 0.33.
#   3. 50 detached containers started at once (background children, timed from the first spawn
#      until all 50 returned): `tsrun run -d --network none busybox sleep 60` x50 vs `runc --root R run -d
#      --bundle B_i ID_i` x50 (50 bundles sharing one read-only busybox rootfs, args
#      ["sleep","60"], terminal false, stdio /dev/null). Then, untimed, `tsrun rm -f` of
#      `tsrun ps -aq` and `runc kill KILL` + `runc delete --force`. Goal: tsrun/runc <= 1.5.
#   4. Memory per detached container: 10 `tsrun run -d --network none busybox sleep 60`, the RSS and PSS of
#      each monitor (`tsrun inspect -f '{{.State.MonitorPid}}'`) from /proc/PID/smaps_rollup;
#      the same for the conmon of 10 `podman run -d --network none` (`podman inspect -f
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

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/bench-common.sh
. "$REPO/scripts/lib/bench-common.sh"
bench_args "runs bulk-runs warmup no-podman keep quick" "$@"
bench_tools "${TSRUN:-$REPO/dist/bin/tsrun}" "rootful containers" # LAUNCHER NODE RUNC ADDON PODMAN_BIN

# ---- the work directory, on a tmpfs (as /run is on a real host) ----
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

bench_tsrun_load "$ARCHIVE"

bench_timer_lib "$WORK"
cat >"$TIMER" <<'JS'
// Interleaved measurements, stats, leftover checks and cleanup (see scripts/bench-engine.sh).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const C = require('./bench-common.cjs');
const { RunError, pause, listDir, stats, progress, progressEnd } = C;

const cfg = JSON.parse(process.env.BENCH_CFG);
// timed commands, tsrun ids, processes, cgroups, mounts, the common leftovers and sweep steps
const E = C.engineBench(cfg);
const { env, W, TS, tsIds, exec, pd, ts, waitQuiet } = E;
const RUNC_ROOT = W('runc');
const PODMAN_IMAGE = 'localhost/busybox:latest';
const NONE = ['--network', 'none']; // both sides: no network (tsrun's default is its bridge)
const BULK = 50;
const MEM = 10;

const runcLeft = () => listDir(RUNC_ROOT);

// ---- stats ----
const tbl = C.table(24);
/** Rounds of a pair: odd rounds a first, even rounds b first. Each side returns { ms, ...parts }. */
const pairRounds = (title, a, b) => C.interleave({ title, sides: [a, b], order: C.alternate(a, b), warmup: cfg.warmup, runs: cfg.runs, waitQuiet });

// ---- 1. run --rm true ----
function section1() {
  console.log(`1. run --rm --network none busybox true, wall ms (${cfg.runs} rounds, +${cfg.warmup} warm-up, order alternating)`);
  if (!cfg.podman) {
    console.log('  skipped (--no-podman)\n');
    return;
  }
  const r = pairRounds(
    '1. run --rm',
    { key: 'ts', fn: () => ts(['run', '--rm', ...NONE, 'busybox', 'true'], { what: 'tsrun run --rm' }) },
    { key: 'pd', fn: () => pd(['--runtime', 'runc', 'run', '--rm', ...NONE, PODMAN_IMAGE, 'true'], { what: 'podman run --rm' }) },
  );
  C.writeTsv(W('samples-1-run-rm.tsv'), { tsrun: r.samples.ts, podman: r.samples.pd });
  const a = stats(r.samples.ts);
  const b = stats(r.samples.pd);
  console.log(tbl.head());
  console.log(tbl.row('tsrun run --rm', a));
  console.log(tbl.row('podman (runc) run --rm', b));
  console.log(C.ratioLine('tsrun/podman', a, b, 0.33));
  C.printWaits(r, { ts: 'tsrun', pd: 'podman' });
  console.log('');
}

// ---- 2. run -d + rm -f ----
function pairTs() {
  const a = ts(['run', '-d', ...NONE, 'busybox', 'sleep', '60'], { what: 'tsrun run -d' });
  const id = a.stdout.trim();
  if (!/^[0-9a-f]{12,64}$/.test(id)) throw new RunError(`tsrun run -d printed no id: '${a.stdout}'`);
  tsIds.add(id);
  const b = ts(['rm', '-f', id], { what: 'tsrun rm -f' });
  return { ms: a.ms + b.ms, run: a.ms, rm: b.ms };
}
function pairPd() {
  const a = pd(['--runtime', 'runc', 'run', '-d', ...NONE, PODMAN_IMAGE, 'sleep', '60'], { what: 'podman run -d' });
  const id = a.stdout.trim();
  if (!/^[0-9a-f]{12,64}$/.test(id)) throw new RunError(`podman run -d printed no id: '${a.stdout}'`);
  const b = pd(['rm', '-f', '--time', '0', id], { what: 'podman rm -f' });
  return { ms: a.ms + b.ms, run: a.ms, rm: b.ms };
}
function section2() {
  console.log(`2. run -d --network none busybox sleep 60, then rm -f of it, timed as one pair, wall ms (${cfg.runs} rounds, +${cfg.warmup} warm-up)`);
  if (!cfg.podman) {
    console.log('  skipped (--no-podman)\n');
    return;
  }
  const r = pairRounds('2. run -d + rm -f', { key: 'ts', fn: pairTs }, { key: 'pd', fn: pairPd });
  C.writeTsv(W('samples-2-run-d-rm.tsv'), { tsrun: r.samples.ts, 'tsrun run': r.parts['ts run'], 'tsrun rm': r.parts['ts rm'], podman: r.samples.pd, 'podman run': r.parts['pd run'], 'podman rm': r.parts['pd rm'] });
  const a = stats(r.samples.ts);
  const b = stats(r.samples.pd);
  console.log(tbl.head());
  console.log(tbl.row('tsrun run -d + rm -f', a));
  console.log(tbl.row('  run -d', stats(r.parts['ts run'])));
  console.log(tbl.row('  rm -f', stats(r.parts['ts rm'])));
  console.log(tbl.row('podman run -d + rm -f', b));
  console.log(tbl.row('  run -d', stats(r.parts['pd run'])));
  console.log(tbl.row('  rm -f --time 0', stats(r.parts['pd rm'])));
  console.log(C.ratioLine('tsrun/podman', a, b, 0.33));
  C.printWaits(r, { ts: 'tsrun', pd: 'podman' });
  console.log('');
}

// ---- 3. 50 detached at once ----
const bulkTs = (n, label) =>
  C.bulkStart({
    side: 'tsrun',
    n,
    label,
    argv: [...TS, 'run', '-d', ...NONE, 'busybox', 'sleep', '60'],
    env,
    outDir: W('out'),
    onStdout: (out) => /^[0-9a-f]{64}$/.test(out.trim()) && tsIds.add(out.trim()),
    listRunning: () => ts(['ps', '-q', '--no-trunc'], { what: 'tsrun ps -q' }).stdout.split('\n').filter(Boolean).length,
    removeAll: () => {
      const all = ts(['ps', '-aq', '--no-trunc'], { what: 'tsrun ps -aq' }).stdout.split('\n').filter(Boolean);
      for (const id of all) tsIds.add(id);
      if (all.length) ts(['rm', '-f', ...all], { what: 'tsrun rm -f (bulk)', timeout: 300_000 });
    },
    waitQuiet,
  });

async function bulkRunc(n, label) {
  const nul = fs.openSync('/dev/null', 'r+');
  const tag = label.replace(/\W+/g, ''); // 'warmup', 'bulk1': a runc id has no space
  const ids = Array.from({ length: n }, (_, i) => `${cfg.prefix}-${tag}-${i + 1}`);
  let r;
  try {
    r = await C.spawnAll(
      ids.map((id, i) => [cfg.runc, '--root', RUNC_ROOT, 'run', '-d', '--bundle', W('bundles', `b${i + 1}`), id]),
      ids.map(() => [nul, nul, nul]),
      env,
    );
  } finally {
    fs.closeSync(nul);
  }
  const failed = r.res.flatMap((x, i) => (x.error || x.status !== 0 ? [`${ids[i]}: ${C.howEnded(x)}`] : []));
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
  console.log(`3. ${BULK} detached busybox sleep 60 started at once (tsrun with --network none), wall ms from the first spawn until all returned (${cfg.bulkRuns} round(s), +1 warm-up of 5)`);
  await C.bulkSection({
    title: '3. bulk',
    n: BULK,
    rounds: cfg.bulkRuns,
    sides: [
      { key: 'ts', col: 'tsrun', name: `tsrun run -d x${BULK}`, start: bulkTs },
      { key: 'rc', col: 'runc', name: `runc run -d x${BULK}`, start: bulkRunc },
    ],
    tsvFile: W('samples-3-bulk.tsv'),
    tbl,
    ratio: 'tsrun/runc',
    g: 1.5,
  });
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
  console.log(`4. memory per detached container: the process that watches it, with ${MEM} detached busybox sleep 60 running (--network none), KiB (/proc/PID/smaps_rollup)`);
  progress('4. memory: tsrun');
  const ids = [];
  for (let i = 0; i < MEM; i++) {
    const id = ts(['run', '-d', ...NONE, 'busybox', 'sleep', '60'], { what: 'tsrun run -d (memory)' }).stdout.trim();
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
    for (let i = 0; i < MEM; i++) pids.push(pd(['--runtime', 'runc', 'run', '-d', ...NONE, PODMAN_IMAGE, 'sleep', '60'], { what: 'podman run -d (memory)' }).stdout.trim());
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
    console.log(`  tsrun/conmon  RSS ${(a.rss / b.rss).toFixed(2)}   PSS ${(a.pss / b.pss).toFixed(2)}   ${C.goal(Math.max(a.rss / b.rss, a.pss / b.pss), 1)} (both RSS and PSS)`);
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
  E.finish();
}

// ---- leftovers ----
function verify() {
  const problems = E.leftovers();
  const rc = runcLeft();
  if (rc.length) problems.push(`runc containers left in ${RUNC_ROOT}: ${rc.join(' ')}`);
  C.reportLeftovers('bench-engine', problems);
  console.log(
    `leftovers: none (tsrun ps -a empty; no runc container in ${RUNC_ROOT}${cfg.podman ? '; podman ps -a empty, no runc state of ours in /run/runc' : ''}; no mount under ${cfg.work}; no tsrun-monitor, conmon or other process of ours; no cgroup of ours)`,
  );
}

/** Remove everything the bench made, whatever state it was left in (the EXIT trap). Reports what had to be removed by force. */
function sweep() {
  const forced = E.sweepContainers();
  C.sweepStep(forced, 'runc containers', () => {
    for (const id of runcLeft()) {
      forced.push(`runc container ${id}`);
      spawnSync(cfg.runc, ['--root', RUNC_ROOT, 'delete', '--force', id], { env, stdio: 'ignore', timeout: 30_000 });
    }
  });
  E.sweepHost(forced);
  C.sweepHostPaths(forced, cfg.hostAbsent);
  C.reportSweep('bench-engine', forced);
}

C.main('bench-engine', { verify, sweep, bench }, E.saveIds);
JS

# ---- podman: a private configuration and the image ----
if [ "$PODMAN" = 1 ]; then
  PD=$WORK/podman
  bench_podman_config "$PD" "$PD/graphroot" "$PD/runroot" "$PD/tmp" "$PD/networks" scripts/bench-engine.sh
  bench_podman_load "$ARCHIVE"
fi

# ---- header ----
bench_header "tsrun (the engine) vs podman (runtime runc), runc and conmon: busybox, --network none, one interleaved run"
echo "            --network none on every run (not its default network, the bridge tsrun0)"
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
