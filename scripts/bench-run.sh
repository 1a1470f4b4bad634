#!/usr/bin/env bash
# Wall time of `tsrun-oci run` vs `runc run` on the same busybox bundle running /bin/true,
# with `node -e 0` (the node of dist/bin/tsrun-oci's #! line) as the floor for any Node CLI.
#
#   scripts/bench-run.sh [--runs N] [--warmup N] [--no-hyperfine] [--in-place] [--keep]
#   npm run bench -- --runs 50
#
#   --runs N        timed runs of each command (default 30, at least 20)
#   --warmup N      untimed runs of each command first (default 3)
#   --no-hyperfine  skip the hyperfine cross-check printed after the table
#   --in-place      run dist/bin/tsrun-oci where it is instead of from a private copy
#   --keep          keep the work directory (bundle, state roots, raw samples)
#
# Needs root, a built tree (`npm run build`), runc, busybox-static; hyperfine is optional.
# TSRUN_OCI=/path/to/launcher and RUNC=/path/to/runc override the binaries.
#
# Method: one bundle for both runtimes (images/busybox/build.sh, args ["/bin/true"],
# terminal false). Each round runs tsrun-oci, then runc, then node -e 0 (interleaved, so
# drift hits all three alike); every run gets a fresh container id and, per runtime, its
# own fresh --root directory. Wall time is process.hrtime.bigint() (CLOCK_MONOTONIC) around
# child_process.spawnSync, stdin /dev/null, stdout/stderr piped. No --force delete: `run`
# deletes after exit, and the end of the script checks that nothing was left behind
# (state roots, cgroups, mounts, processes). Any failed run stops the benchmark with its
# stderr. This script reports numbers only; it asserts nothing about them.
set -euo pipefail

die() { echo "bench-run: $*" >&2; exit 1; }

RUNS=30
WARMUP=3
HYPERFINE=1
IN_PLACE=0
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    --warmup) [ $# -ge 2 ] || die "--warmup needs a value"; WARMUP=$2; shift 2 ;;
    --warmup=*) WARMUP=${1#--warmup=}; shift ;;
    --no-hyperfine) HYPERFINE=0; shift ;;
    --in-place) IN_PLACE=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 20 ] || die "--runs must be an integer >= 20, got '$RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer, got '$WARMUP'"
[ "$(id -u)" = 0 ] || die "must run as root (runc and tsrun-oci need it for a rootful container)"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAUNCHER=${TSRUN_OCI:-$REPO/dist/bin/tsrun-oci}
[ -x "$LAUNCHER" ] && [ -f "${LAUNCHER}.cjs" ] || die "$LAUNCHER (and ${LAUNCHER}.cjs) not found: build first with 'cd $REPO && npm run build'"
NODE=$(sed -n '1s/^#![[:space:]]*//p' "$LAUNCHER")
[ -n "$NODE" ] && [ -x "${NODE%% *}" ] || die "cannot find the node of the #! line of $LAUNCHER (got '$NODE')"
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
[ -x "$RUNC" ] || die "runc not found (apt-get install runc)"
ADDON=$(cd "$(dirname "$LAUNCHER")/../.." && pwd)/build/Release/tsrun.node
[ -n "${TSRUN_NATIVE:-}" ] && ADDON=$TSRUN_NATIVE
[ -f "$ADDON" ] || die "native addon $ADDON not found: build first with 'cd $REPO && npm run build'"

WORK=$(mktemp -d /tmp/tsrun-bench.XXXXXX)
cleanup() {
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---- the bundle ----
if ! "$REPO/images/busybox/build.sh" "$WORK/bundle" >"$WORK/build.log" 2>&1; then
  cat "$WORK/build.log" >&2
  die "cannot build the busybox bundle with $REPO/images/busybox/build.sh (output above)"
fi
"$NODE" -e '
  const fs = require("fs");
  const f = process.argv[1];
  const c = JSON.parse(fs.readFileSync(f, "utf8"));
  c.process.args = ["/bin/true"];
  c.process.terminal = false;
  fs.writeFileSync(f, JSON.stringify(c, null, 2) + "\n");
' "$WORK/bundle/config.json" || die "cannot edit $WORK/bundle/config.json"

# ---- a private copy of the runtime: a rebuild of dist/ or build/ during the benchmark
# (another engineer, a watcher) neither breaks runs nor mixes two builds in one sample ----
TSRUN=$LAUNCHER
if [ "$IN_PLACE" = 0 ]; then
  mkdir -p "$WORK/tsrun/dist/bin" "$WORK/tsrun/build/Release"
  # the launcher, its bundle, dist/bin/package.json (CommonJS) and the V8 code caches
  cp -p "$LAUNCHER" "${LAUNCHER}.cjs" "$(dirname "$LAUNCHER")/package.json" "$WORK/tsrun/dist/bin/"
  for b in "${LAUNCHER}"-*.cjs; do [ ! -f "$b" ] || cp -p "$b" "$WORK/tsrun/dist/bin/"; done   # the fast bundles (hot verbs, create/run)
  cp -p "${LAUNCHER}".cjs.*.v8cache "${LAUNCHER}"-*.cjs.*.v8cache "$WORK/tsrun/dist/bin/" 2>/dev/null || true
  cp -p "$ADDON" "$WORK/tsrun/build/Release/tsrun.node"
  # the container-side helper the addon execs (it lives beside the addon)
  [ ! -f "$(dirname "$ADDON")/tsrun-init" ] || cp -p "$(dirname "$ADDON")/tsrun-init" "$WORK/tsrun/build/Release/"
  [ -d "$REPO/node_modules" ] && ln -s "$REPO/node_modules" "$WORK/tsrun/node_modules" # pino, for --log-format json only
  TSRUN=$WORK/tsrun/dist/bin/$(basename "$LAUNCHER")
fi

PREFIX=tsb$$
cat >"$WORK/timer.cjs" <<'JS'
// Interleaved wall-time measurement, stats and leftover checks (see scripts/bench-run.sh).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const cfg = JSON.parse(process.env.BENCH_CFG);
const env = { ...process.env };
delete env.BENCH_CFG;
delete env.NODE_EXTRA_CA_CERTS; // ~35-40 ms per Node start on this host: not tsrun's cost
delete env.TSRUN_NATIVE;

const cmds = [
  { key: 'ts', name: 'tsrun-oci run', file: cfg.tsrun, args: (id, root) => ['--root', root, 'run', '-b', cfg.bundle, id], root: true },
  { key: 'rc', name: 'runc run', file: cfg.runc, args: (id, root) => ['--root', root, 'run', '-b', cfg.bundle, id], root: true },
  { key: 'nd', name: 'node -e 0', file: cfg.node, args: () => ['-e', '0'], root: false },
];

function runOnce(c, label) {
  const id = `${cfg.prefix}-${c.key}-${label}`;
  let root;
  if (c.root) {
    root = path.join(cfg.work, 'roots', id);
    fs.mkdirSync(root, { recursive: true });
  }
  const args = c.args(id, root);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c.file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, maxBuffer: 1 << 20 });
  const t1 = process.hrtime.bigint();
  if (r.error || r.status !== 0) {
    const how = r.error ? `error ${r.error.message}` : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
    process.stderr.write(`\nbench-run: FAILED: ${c.name} (${label}): ${how}\n  command: ${c.file} ${args.join(' ')}\n`);
    const out = (b) => (b && b.length ? b.toString().replace(/\n?$/, '\n') : '(empty)\n');
    process.stderr.write(`  --- stderr ---\n${out(r.stderr)}  --- stdout ---\n${out(r.stdout)}`);
    if (c.root) {
      // best effort, so a half-made container does not outlive the benchmark
      const d = spawnSync(c.file, ['--root', root, 'delete', '--force', id], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      process.stderr.write(`  cleanup: ${c.file} --root ${root} delete --force ${id}: ${d.status === 0 ? 'ok' : `failed: ${d.error?.message ?? d.stderr}`}\n`);
    }
    process.exit(1);
  }
  const err = r.stderr.toString().trim();
  if (err) (c.notes ??= new Set()).add(err);
  return Number(t1 - t0) / 1e6;
}

function quantile(sorted, q) {
  // nearest rank: the smallest sample with at least q of the samples at or below it
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}
function median(sorted) {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

function bench() {
  for (let w = 1; w <= cfg.warmup; w++) for (const c of cmds) runOnce(c, `w${w}`);
  const samples = Object.fromEntries(cmds.map((c) => [c.key, []]));
  for (let i = 1; i <= cfg.runs; i++) {
    for (const c of cmds) samples[c.key].push(runOnce(c, String(i).padStart(3, '0')));
    if (process.stderr.isTTY) process.stderr.write(`\r  round ${i}/${cfg.runs}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  fs.writeFileSync(path.join(cfg.work, 'samples.tsv'), ['round\t' + cmds.map((c) => c.key).join('\t'), ...samples.ts.map((_, i) => [i + 1, ...cmds.map((c) => samples[c.key][i].toFixed(3))].join('\t'))].join('\n') + '\n');

  const st = {};
  const f = (x) => x.toFixed(1).padStart(8);
  console.log(`${'wall time, ms'.padEnd(16)}${'runs'.padStart(6)}${'min'.padStart(8)}${'median'.padStart(8)}${'p90'.padStart(8)}${'mean'.padStart(8)}${'max'.padStart(8)}`);
  for (const c of cmds) {
    const s = [...samples[c.key]].sort((a, b) => a - b);
    st[c.key] = { min: s[0], med: median(s), p90: quantile(s, 0.9), mean: s.reduce((a, b) => a + b, 0) / s.length, max: s[s.length - 1] };
    const x = st[c.key];
    console.log(`${c.name.padEnd(16)}${String(s.length).padStart(6)}${f(x.min)}${f(x.med)}${f(x.p90)}${f(x.mean)}${f(x.max)}`);
  }
  console.log('');
  console.log(`tsrun/runc        min ${(st.ts.min / st.rc.min).toFixed(2)}x   median ${(st.ts.med / st.rc.med).toFixed(2)}x`);
  console.log(`tsrun - node -e 0 min ${(st.ts.min - st.nd.min).toFixed(1)} ms   median ${(st.ts.med - st.nd.med).toFixed(1)} ms   (tsrun's own work above the bare Node start)`);
  console.log(`runc  - node -e 0 median ${(st.rc.med - st.nd.med).toFixed(1)} ms`);
  for (const c of cmds) {
    if (c.notes) for (const n of c.notes) console.log(`note: ${c.name} printed on stderr (exit 0): ${n.split('\n').join(' | ')}`);
  }
}

// Everything a run could leave behind, for ids starting with the prefix.
function verify() {
  const problems = [];
  const rootsDir = path.join(cfg.work, 'roots');
  let roots = 0;
  for (const d of fs.existsSync(rootsDir) ? fs.readdirSync(rootsDir) : []) {
    roots++;
    const left = fs.readdirSync(path.join(rootsDir, d));
    if (left.length) problems.push(`state root ${path.join(rootsDir, d)} not empty: ${left.join(' ')}`);
  }
  const walk = (dir, depth) => {
    let ents;
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.startsWith(cfg.prefix)) problems.push(`cgroup left: ${p}`);
      else if (depth < 4) walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 1);
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(cfg.work)) problems.push(`mount left: ${line}`);
  }
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (cmd.includes(cfg.prefix) || cmd.includes(cfg.bundle)) problems.push(`process left: ${pid} ${cmd}`);
  }
  if (problems.length) {
    process.stderr.write(`bench-run: leftovers after the runs:\n  ${problems.join('\n  ')}\n`);
    process.exit(1);
  }
  console.log(`leftovers: none (${roots} state roots empty; no cgroup under /sys/fs/cgroup, mount or process named ${cfg.prefix}-*)`);
}

if (process.argv[2] === 'verify') verify();
else bench();
JS

export BENCH_CFG
BENCH_CFG=$("$NODE" -e 'console.log(JSON.stringify({tsrun:process.argv[1],runc:process.argv[2],node:process.argv[3],bundle:process.argv[4],work:process.argv[5],prefix:process.argv[6],runs:+process.argv[7],warmup:+process.argv[8]}))' \
  "$TSRUN" "$RUNC" "$NODE" "$WORK/bundle" "$WORK" "$PREFIX" "$RUNS" "$WARMUP")

# ---- header ----
git_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
git_dirty=$(git -C "$REPO" status --porcelain -- src native 2>/dev/null | wc -l)
mjs_sum=$(sha256sum "${TSRUN}.cjs" | cut -c1-12)
echo "tsrun-oci run vs runc run: /bin/true in a busybox bundle, $RUNS interleaved rounds (+$WARMUP warm-up), wall ms"
echo "  host      $(uname -sr), $(nproc) CPU, load average $(cut -d" " -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  tsrun-oci $LAUNCHER (commit $git_rev, $git_dirty changed file(s) in src/ native/; bundle sha256 $mjs_sum)"
[ "$IN_PLACE" = 0 ] && echo "            run from a private copy: $TSRUN"
echo "  runc      $RUNC ($("$RUNC" --version | head -1))"
echo "  node      $NODE $("$NODE" --version) (the #! of the launcher; 'node -e 0' is the floor of any Node CLI)"
echo "  env       NODE_EXTRA_CA_CERTS unset for every timed run${NODE_EXTRA_CA_CERTS:+ (set in this shell to $NODE_EXTRA_CA_CERTS: every Node start would load that CA bundle, ~35-40 ms here)}"
echo "  order     each round: tsrun-oci, runc, node -e 0; fresh id and fresh --root per run; clock CLOCK_MONOTONIC around spawnSync"
echo

"$NODE" "$WORK/timer.cjs"

# ---- optional cross-check: hyperfine, one command at a time (it cannot interleave) ----
if [ "$HYPERFINE" = 1 ]; then
  if command -v hyperfine >/dev/null 2>&1; then
    echo
    echo "hyperfine cross-check (not interleaved; one fixed id per runtime, reused: run deletes it each time):"
    mkdir -p "$WORK/roots/$PREFIX-hf-ts" "$WORK/roots/$PREFIX-hf-rc"
    # --output inherit + 2>file: the stderr of a failing run is kept, not thrown away
    if ! env -u NODE_EXTRA_CA_CERTS -u TSRUN_NATIVE hyperfine -N --style basic --output inherit --warmup "$WARMUP" --runs "$RUNS" \
      -n 'tsrun-oci run' "$TSRUN --root $WORK/roots/$PREFIX-hf-ts run -b $WORK/bundle $PREFIX-hf-ts" \
      -n 'runc run' "$RUNC --root $WORK/roots/$PREFIX-hf-rc run -b $WORK/bundle $PREFIX-hf-rc" \
      -n 'node -e 0' "$NODE -e 0" </dev/null 2>"$WORK/hyperfine.stderr"; then
      echo "--- stderr of the commands and of hyperfine ---" >&2
      cat "$WORK/hyperfine.stderr" >&2
      die "a hyperfine run failed (its stderr is above)"
    fi
    grep -E '^[[:space:]]*Warning:' "$WORK/hyperfine.stderr" || true
  else
    echo
    echo "(hyperfine not installed: no cross-check)"
  fi
fi

echo
"$NODE" "$WORK/timer.cjs" verify
