#!/usr/bin/env bash
# Wall time of each OCI runtime verb, tsrun-oci vs runc, plus `podman run --rm` with either
# runtime, with `node -e 0` (the node of dist/bin/tsrun-oci's #! line) as the floor for any Node CLI.
#
#   scripts/bench-verbs.sh [--runs N] [--warmup N] [--no-podman] [--keep] [--quick]
#   npm run bench:verbs -- --runs 30
#
#   --runs N      timed rounds (default 20, at least 5)
#   --warmup N    untimed rounds first (default 3; they also write tsrun's V8 code caches)
#   --no-podman   skip the `podman run` pair (and podman's setup)
#   --keep        keep the work directories (bundles, raw samples, podman's config and storage);
#                 containers are removed all the same
#   --quick       --runs 5 --warmup 1 (a smoke run: the numbers are rough)
#
# Needs root, a built tree (`npm run build`), runc, busybox-static; podman and conmon unless
# --no-podman. TSRUN_OCI=/path/to/launcher and RUNC=/path/to/runc override the binaries.
#
# Method. Two bundles from images/busybox/build.sh: args ["/bin/sleep","600"] for the lifecycle
# verbs, ["/bin/true"] for `run`. Each round runs, for tsrun-oci and then for runc, with fresh
# ids and a fresh --root per runtime:
#   create A; start A; state A; pause A; resume A; kill A KILL; (wait: stopped) delete A;
#   (create B; start B, untimed) delete --force B; run R (foreground, /bin/true)
# then `node -e 0`, then (unless --no-podman) `podman --runtime tsrun run --rm --network none
# localhost/busybox:latest true` and the same with `--runtime runc`, on a private podman
# configuration (scripts/lib/bench-common.sh, as tests/integration/helpers/clients.ts: private
# graphroot, runroot, tmp dir, file locks and events, CNI with a private config dir, cgroupfs;
# podman passes no --root, so its runtimes keep their state in their defaults /run/tsrun and
# /run/runc). After each podman
# run the script waits (untimed) until conmon and `podman container cleanup` are gone.
# Both runtimes' --root is a private directory on a tmpfs (/run when it is one, else /dev/shm),
# so the fsync of a state write costs what it costs in /run on a real host. Wall time is
# process.hrtime.bigint() around child_process.spawnSync, stdin /dev/null, stdout and stderr to
# files on that tmpfs (a detached container keeps its stdio: a pipe would never close).
# NODE_EXTRA_CA_CERTS is unset for every run; tsrun-oci runs from a private copy of dist/bin and
# build/Release. Any failed run stops the benchmark with its stderr. At the end the script looks
# for leftovers (state roots, cgroups, mounts, processes, podman containers) and reports them,
# then removes everything it made, also when interrupted. It reports numbers only; it asserts
# nothing about them.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/bench-common.sh
. "$REPO/scripts/lib/bench-common.sh"
RUNS_MIN=5
bench_quick() { RUNS=5; WARMUP=1; }
bench_args "runs warmup no-podman keep quick" "$@"
bench_tools "${TSRUN_OCI:-$REPO/dist/bin/tsrun-oci}" "runc and tsrun-oci need it for a rootful container" # LAUNCHER NODE RUNC ADDON PODMAN_BIN

# ---- where things go ----
# FAST: a tmpfs, as /run is on a real host: the runtimes' --root, podman's runroot and tmp dir,
# the runs' stdout/stderr files. WORK: a disk, as /var/lib is: bundles, the private copy,
# podman's graphroot and config, samples.
bench_fast_base
FAST=$FAST_BASE/tsrun-bench-$$
PREFIX=tbv$$
WORK=
mkdir -m 0700 "$FAST" || die "cannot create $FAST"
WORK=$(mktemp -d /var/tmp/tsrun-bench-verbs.XXXXXX) || { rmdir "$FAST"; die "cannot create a work directory in /var/tmp"; }
mkdir -p "$FAST/roots" "$FAST/out" "$WORK/podman"
HOST_ABSENT=$WORK/host-absent
bench_note_host_paths "$HOST_ABSENT"

TIMER=$WORK/timer.cjs
cfg_json() {
  "$NODE" -e 'const a = process.argv.slice(1); console.log(JSON.stringify({
    tsrun: a[0], runc: a[1], node: a[2], podman: a[3], work: a[4], fast: a[5], prefix: a[6],
    runs: +a[7], warmup: +a[8], keep: a[9] === "1", hostAbsent: a[10]}))' \
    "$TSRUN" "$RUNC" "$NODE" "$PODMAN_BIN" "$WORK" "$FAST" "$PREFIX" "$RUNS" "$WARMUP" "$KEEP" "$HOST_ABSENT"
}
TSRUN=$LAUNCHER
bench_traps "$WORK" "$FAST"

# ---- a private copy of the runtime (as scripts/bench-run.sh) ----
bench_private_copy "$LAUNCHER" "$ADDON" "$WORK/tsrun"
TSRUN=$COPY

# ---- the bundles ----
build_bundle() { # DIR ARGS_JSON
  # the private copy writes the starter config.json (tsrun-oci spec): nothing lands in dist/bin
  if ! SPEC_TOOL=$TSRUN "$REPO/images/busybox/build.sh" "$1" >"$1.log" 2>&1; then
    cat "$1.log" >&2
    die "cannot build a busybox bundle with $REPO/images/busybox/build.sh (output above)"
  fi
  "$NODE" -e '
    const fs = require("fs");
    const [f, args] = process.argv.slice(1);
    const c = JSON.parse(fs.readFileSync(f, "utf8"));
    c.process.args = JSON.parse(args);
    c.process.terminal = false;
    fs.writeFileSync(f, JSON.stringify(c, null, 2) + "\n");
  ' "$1/config.json" "$2" || die "cannot edit $1/config.json"
}
build_bundle "$WORK/bundle-sleep" '["/bin/sleep","600"]'
build_bundle "$WORK/bundle-true" '["/bin/true"]'

bench_timer_lib "$WORK"
cat >"$TIMER" <<'JS'
// Interleaved wall-time measurement, stats, leftover checks and cleanup (see scripts/bench-verbs.sh).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const C = require('./bench-common.cjs');
const { RunError, pause, isDir, listDir, stats } = C;

const cfg = JSON.parse(process.env.BENCH_CFG);
const env = C.cleanEnv();
const P = (...p) => path.join(cfg.work, 'podman', ...p);
const podmanEnv = C.podmanEnvOf(env, P(), path.join(cfg.fast, 'podman', 'tmp'));
const IMAGE = 'localhost/busybox:latest';
const sleepBundle = path.join(cfg.work, 'bundle-sleep');
const trueBundle = path.join(cfg.work, 'bundle-true');

const RUNTIMES = [
  { key: 'ts', name: 'tsrun-oci', file: cfg.tsrun },
  { key: 'rc', name: 'runc', file: cfg.runc },
];
const VERBS = ['create', 'start', 'state', 'pause', 'resume', 'kill', 'delete', 'delete --force', 'run'];
const notes = new Map(); // "runtime verb" -> Set of stderr texts of successful runs

/** One timed command; stdout/stderr go to fresh files on the tmpfs (scripts/lib/bench-common.cjs). */
const run = C.makeExec({ outDir: path.join(cfg.fast, 'out'), env, notes, timeout: 60_000 });
const exec = (file, args, o) => run([file, ...args], o);

/** pid gone or a zombie (the init is reaped by pid 1 or a subreaper, not by us). */
function procDone(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

function waitStopped(rt, root, id, pid) {
  const deadline = Date.now() + 10_000;
  while (!procDone(pid)) {
    if (Date.now() > deadline) throw new RunError(`${rt.name}: pid ${pid} of ${id} still alive 10 s after kill KILL`);
    pause(1);
  }
  for (;;) {
    const s = exec(rt.file, ['--root', root, 'state', id], { what: `${rt.name} state (waiting for stopped)` });
    if (JSON.parse(s.stdout).status === 'stopped') return;
    if (Date.now() > deadline) throw new RunError(`${rt.name}: ${id} not 'stopped' 10 s after kill KILL: ${s.stdout}`);
    pause(5);
  }
}

/** One runtime's part of a round: every verb once; returns verb -> ms. */
function lifecycle(rt, label) {
  const root = path.join(cfg.fast, 'roots', `${rt.key}-${label}`);
  fs.mkdirSync(root);
  const id = (s) => `${cfg.prefix}-${rt.key}-${label}-${s}`;
  const t = {};
  const x = (verb, args) => (t[verb] = exec(rt.file, ['--root', root, ...args], { what: `${rt.name} ${verb}` }).ms);
  const a = id('a');
  x('create', ['create', '--bundle', sleepBundle, a]);
  x('start', ['start', a]);
  const st = exec(rt.file, ['--root', root, 'state', a], { what: `${rt.name} state` });
  t.state = st.ms;
  const pid = JSON.parse(st.stdout).pid;
  x('pause', ['pause', a]);
  x('resume', ['resume', a]);
  x('kill', ['kill', a, 'KILL']);
  waitStopped(rt, root, a, pid);
  x('delete', ['delete', a]);
  const b = id('b');
  exec(rt.file, ['--root', root, 'create', '--bundle', sleepBundle, b], { what: `${rt.name} create (untimed)` });
  exec(rt.file, ['--root', root, 'start', b], { what: `${rt.name} start (untimed)` });
  x('delete --force', ['delete', '--force', b]);
  x('run', ['run', '--bundle', trueBundle, id('r')]);
  return t;
}

// ---- processes, cgroups, mounts (scripts/lib/bench-common.cjs) ----
/**
 * Processes (not us, not our shell) whose command line or environment mentions a needle (podman
 * and conmon carry CONTAINERS_CONF=<work>/...), or that sit in a cgroup named <prefix>-*: a
 * container's own processes (sleep) mention nothing.
 */
const procsMentioning = (needles) => C.ourProcs({ needles, cgNeedles: [`/${cfg.prefix}-`] });
/** conmon and `podman container cleanup` outlive `podman run --rm`: let them finish before timing anything else. */
const waitPodmanQuiet = () => C.waitQuiet(() => procsMentioning([cfg.work])) >= 0;
const podmanIds = () => C.podmanIds(path.join(cfg.fast, 'podman', 'tmp', 'events.log'));
const ourCgroups = () => C.ourCgroups({ prefix: cfg.prefix, pdIds: podmanIds() });
const mountsUnder = C.mountsUnder;
/** Runtime state of our podman containers in the runtimes' default roots (podman passes no --root). */
const PODMAN_ROOTS = [
  ['/run/tsrun', cfg.tsrun],
  ['/run/runc', cfg.runc],
];
const podmanStateLeft = () => C.runtimeStateLeft(podmanIds(), PODMAN_ROOTS);

function leftovers() {
  const problems = [];
  let roots = 0;
  for (const d of listDir(path.join(cfg.fast, 'roots'))) {
    roots++;
    const left = listDir(path.join(cfg.fast, 'roots', d));
    if (left.length) problems.push(`state root ${path.join(cfg.fast, 'roots', d)} not empty: ${left.join(' ')}`);
  }
  for (const s of podmanStateLeft()) problems.push(`runtime state ${s.root}/${s.entry} of a podman container`);
  for (const c of ourCgroups()) problems.push(`cgroup left: ${c}`);
  for (const m of mountsUnder([cfg.work, cfg.fast])) problems.push(`mount left: ${m}`);
  for (const p of procsMentioning([cfg.prefix, cfg.work, cfg.fast])) problems.push(`process left: ${p.pid} ${p.cmd}`);
  if (cfg.podman) {
    const r = exec(cfg.podman, ['ps', '-aq'], { env: podmanEnv, what: null, mayFail: true });
    if (!r.ok) problems.push(`podman ps -aq failed: ${r.stderr.trim()}`);
    else if (r.stdout.trim()) problems.push(`podman containers left: ${r.stdout.trim().split('\n').join(' ')}`);
  }
  return { problems, roots };
}

function bench() {
  const samples = {}; // "ts create" -> [ms]
  const add = (k, ms) => (samples[k] ??= []).push(ms);
  let podmanSlow = 0;
  const round = (label, record) => {
    for (const rt of RUNTIMES) {
      const t = lifecycle(rt, label);
      if (record) for (const v of VERBS) add(`${rt.key} ${v}`, t[v]);
    }
    const nd = exec(cfg.node, ['-e', '0'], { what: 'node -e 0' });
    if (record) add('node', nd.ms);
    if (cfg.podman) {
      for (const rt of ['tsrun', 'runc']) {
        const r = exec(cfg.podman, ['--runtime', rt, 'run', '--rm', '--network', 'none', IMAGE, 'true'], { env: podmanEnv, what: `podman --runtime ${rt} run`, timeout: 120_000 });
        if (record) add(`podman ${rt}`, r.ms);
        if (!waitPodmanQuiet()) podmanSlow++;
      }
    }
  };
  for (let w = 1; w <= cfg.warmup; w++) {
    round(`w${w}`, false);
    if (process.stderr.isTTY) process.stderr.write(`\r  warm-up ${w}/${cfg.warmup}`);
  }
  for (let i = 1; i <= cfg.runs; i++) {
    round(String(i).padStart(3, '0'), true);
    if (process.stderr.isTTY) process.stderr.write(`\r  round ${i}/${cfg.runs}  `);
  }
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');

  const keys = Object.keys(samples);
  fs.writeFileSync(path.join(cfg.work, 'samples.tsv'), [`round\t${keys.join('\t')}`, ...samples.node.map((_, i) => [i + 1, ...keys.map((k) => samples[k][i].toFixed(3))].join('\t'))].join('\n') + '\n');

  const f = (x, w = 7) => C.fmt(x, w);
  const nd = stats(samples.node);
  console.log(`${'wall ms'.padEnd(15)}|${'tsrun-oci'.padStart(22)}  |${'runc'.padStart(22)}  |${'tsrun/runc'.padStart(14)}  |${'tsrun - node -e 0'.padStart(18)}`);
  const sub = `${'min'.padStart(7)}${'median'.padStart(8)}${'p90'.padStart(7)}  `;
  console.log(`${'verb'.padEnd(15)}|${sub}|${sub}|${'min'.padStart(7)}${'median'.padStart(7)}  |${'min'.padStart(9)}${'median'.padStart(9)}`);
  console.log('-'.repeat(15 + 3 * 25 + 20));
  for (const v of VERBS) {
    const ts = stats(samples[`ts ${v}`]);
    const rc = stats(samples[`rc ${v}`]);
    const ratio = (a, b) => `${(a / b).toFixed(2)}x`.padStart(7);
    console.log(
      `${v.padEnd(15)}|${f(ts.min)}${f(ts.med, 8)}${f(ts.p90)}  |${f(rc.min)}${f(rc.med, 8)}${f(rc.p90)}  |${ratio(ts.min, rc.min)}${ratio(ts.med, rc.med)}  |${f(ts.min - nd.min, 9)}${f(ts.med - nd.med, 9)}`,
    );
  }
  console.log('-'.repeat(15 + 3 * 25 + 20));
  console.log(`${'node -e 0'.padEnd(15)}|${f(nd.min)}${f(nd.med, 8)}${f(nd.p90)}  |  (the floor of any Node CLI: the #! node of the launcher)`);
  const sum = (k) => VERBS.reduce((a, v) => a + stats(samples[`${k} ${v}`]).med, 0);
  console.log(`sum of medians: tsrun-oci ${sum('ts').toFixed(1)} ms, runc ${sum('rc').toFixed(1)} ms (${(sum('ts') / sum('rc')).toFixed(2)}x); ${VERBS.length} tsrun starts x node -e 0 median = ${(VERBS.length * nd.med).toFixed(1)} ms`);

  if (cfg.podman) {
    const pt = stats(samples['podman tsrun']);
    const pr = stats(samples['podman runc']);
    console.log('');
    console.log(`podman run --rm --network none ${IMAGE} true (same rounds, interleaved), wall ms`);
    const tbl = C.table(17, '');
    console.log(tbl.head());
    console.log(tbl.row('--runtime tsrun', pt));
    console.log(tbl.row('--runtime runc', pr));
    console.log(`tsrun/runc  min ${(pt.min / pr.min).toFixed(2)}x   median ${(pt.med / pr.med).toFixed(2)}x   (tsrun - runc: median ${(pt.med - pr.med).toFixed(1)} ms)`);
    if (podmanSlow) console.log(`note: ${podmanSlow} time(s) podman's helpers (conmon, container cleanup) were still running 15 s after podman run returned`);
  }
  const caches = listDir(path.dirname(cfg.tsrun)).filter((e) => e.endsWith('.v8cache'));
  console.log('');
  console.log(`V8 code caches in the private copy after the runs: ${caches.length ? caches.join(' ') : 'none'}`);
  C.printNotes(notes);
}

function verify() {
  const { problems, roots } = leftovers();
  C.reportLeftovers('bench-verbs', problems);
  console.log(
    `leftovers: none (${roots} state roots empty; no cgroup named ${cfg.prefix}-*${cfg.podman ? ' or libpod-<our podman id>' : ''} under /sys/fs/cgroup, no mount under the work dirs, no process${cfg.podman ? ', no podman container or runtime state in /run/tsrun, /run/runc' : ''})`,
  );
}

/** Remove everything the bench made, whatever state it was left in (the EXIT trap). Reports what had to be removed by force. */
function sweep() {
  const forced = [];
  const step = (name, fn) => C.sweepStep(forced, name, fn);
  step('state roots', () => {
    for (const d of listDir(path.join(cfg.fast, 'roots'))) {
      const rt = RUNTIMES.find((r) => d.startsWith(`${r.key}-`));
      const root = path.join(cfg.fast, 'roots', d);
      for (const id of listDir(root).filter((e) => isDir(path.join(root, e)))) {
        forced.push(`container ${id} in ${root}`);
        if (rt) spawnSync(rt.file, ['--root', root, 'delete', '--force', id], { env, stdio: 'ignore', timeout: 30_000 });
      }
    }
  });
  if (cfg.podman && fs.existsSync(P('containers.conf'))) {
    C.sweepPodman(forced, { podman: cfg.podman, podmanEnv, env, pdIds: podmanIds, roots: PODMAN_ROOTS });
  }
  C.sweepProcs(forced, () => procsMentioning([cfg.prefix, cfg.work, cfg.fast]));
  C.sweepCgroups(forced, ourCgroups());
  C.sweepMounts(forced, mountsUnder([cfg.work, cfg.fast]));
  C.sweepHostPaths(forced, cfg.hostAbsent);
  C.reportSweep('bench-verbs', forced);
}

C.main('bench-verbs', { verify, sweep, bench });
JS

# ---- podman: a private configuration and the image ----
if [ "$PODMAN" = 1 ]; then
  PD=$WORK/podman
  # conmon passes --log-format=json --log FILE only to runtimes whose basename is listed
  PODMAN_ENGINE_EXTRA='runtime_supports_json = ["tsrun", "tsrun-oci", "runc"]'
  PODMAN_RUNTIMES_EXTRA="tsrun = [\"$TSRUN\"]"
  bench_podman_config "$PD" "$PD/graphroot" "$FAST/podman/runroot" "$FAST/podman/tmp" "$PD/networks" scripts/bench-verbs.sh
  tar -C "$WORK/bundle-true/rootfs" --numeric-owner -cf "$PD/rootfs.tar" .
  if ! podman_ import --change 'CMD ["sh"]' "$PD/rootfs.tar" localhost/busybox:latest >"$PD/import.log" 2>&1; then
    cat "$PD/import.log" >&2
    die "podman import of the busybox rootfs failed (output above)"
  fi
fi

# ---- header ----
git_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
git_dirty=$(git -C "$REPO" status --porcelain -- src native 2>/dev/null | wc -l)
echo "tsrun-oci vs runc, verb by verb: busybox bundles (/bin/sleep 600; run: /bin/true), $RUNS interleaved rounds (+$WARMUP warm-up), wall ms"
echo "  host      $(uname -sr), $(nproc) CPU, load average $(cut -d" " -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  tsrun-oci $LAUNCHER (commit $git_rev, $git_dirty changed file(s) in src/ native/; bundle sha256 $(sha256sum "${TSRUN}.cjs" | cut -c1-12))"
echo "            run from a private copy: $TSRUN"
echo "  runc      $RUNC ($("$RUNC" --version | head -1))"
echo "  node      $NODE $("$NODE" --version) (the #! of the launcher; 'node -e 0' is the floor of any Node CLI)"
[ "$PODMAN" = 0 ] || echo "  podman    $PODMAN_BIN ($("$PODMAN_BIN" --version)), conmon $(conmon --version 2>/dev/null | head -1 | awk '{print $3}'); private config in $WORK/podman, runroot and tmp in $FAST/podman"
echo "  state     both runtimes' --root on a tmpfs, fresh per round and runtime: $FAST/roots ($(stat -f -c %T "$FAST_BASE")), so an fsync costs what it does in /run on a real host"
if [ "$FAST_BASE" != /run ]; then
  echo "            (/run is $(stat -f -c %T /run) here, not a tmpfs$([ "$PODMAN" = 1 ] && echo "; podman's runs use the runtimes' defaults /run/tsrun and /run/runc, on it"))"
fi
echo "  env       NODE_EXTRA_CA_CERTS unset for every timed run${NODE_EXTRA_CA_CERTS:+ (set in this shell to $NODE_EXTRA_CA_CERTS: every Node start would load that CA bundle)}"
echo "  round     tsrun-oci: create, start, state, pause, resume, kill KILL, delete (stopped), delete --force (running), run;"
echo "            then runc the same; then node -e 0$([ "$PODMAN" = 1 ] && echo "; then podman run --rm with tsrun, then with runc")"
echo

BENCH_CFG=$(cfg_json) "$NODE" "$TIMER"
echo
BENCH_CFG=$(cfg_json) "$NODE" "$TIMER" verify
