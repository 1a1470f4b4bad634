#!/usr/bin/env bash
# Container networking on a CNI bridge: the engine (dist/bin/tsrun) side by side with podman
# (runtime runc, CNI backend), each on its default bridge network, in one interleaved run.
#
#   scripts/bench-network.sh [--runs N] [--bulk-runs N] [--warmup N] [--keep] [--quick]
#   npm run bench:network -- --runs 30
#
#   --runs N       timed rounds of section 1 (default 20, at least 3)
#   --bulk-runs N  timed rounds of section 2 (default 3)
#   --warmup N     untimed rounds first, of section 1 (default 3); section 2 warms up with one
#                  untimed batch of 5 containers per side
#   --keep         keep the work directory (image, stores, podman's config, raw samples);
#                  containers are removed all the same
#   --quick        --runs 5 --bulk-runs 1 (a smoke run: the numbers are rough)
#
# Needs root, a built tree (`npm run build`), runc, busybox-static, podman, conmon, the CNI
# plugins (containernetworking-plugins: /usr/lib/cni), iptables. TSRUN=/path/to/dist/bin/tsrun
# and RUNC=/path/to/runc override the binaries. TSRUN_NET_FLAG='--network none' (words added to
# tsrun's bridged command lines) runs the tsrun half without a bridge, to test the script before
# tsrun's bridge exists: the header and section 1 then say the tsrun lines are NOT bridged.
#
# Sections (rounds alternate the order: odd rounds tsrun first, even rounds podman first):
#   1. `tsrun run --rm busybox true` on tsrun's default network (the bridge tsrun0, 10.87.0.0/16)
#      vs `podman run --rm localhost/busybox:latest true` on podman's default network "podman".
#      Goal: tsrun/podman <= 0.33. For information, in the same rounds: both with
#      `--network none`, and the cost of the bridge (median bridged - median none).
#   2. 50 bridged containers started at once (background children, timed from the first spawn
#      until all 50 returned): `tsrun run -d busybox sleep 60` x50 vs `podman run -d
#      localhost/busybox:latest sleep 60` x50; then, untimed, a check that all 50 run and
#      `tsrun rm -f` of `tsrun ps -aq` / `podman rm -af --time 0`. Both times and the ratio.
# Before the timed runs, untimed: `podman info` must say NetworkBackend cni, and a container of
# each side must see an IPv4 address on eth0 (`ip -o -4 addr show eth0` inside it) - unless
# TSRUN_NET_FLAG is set, for tsrun.
#
# Where things go: one work directory on a tmpfs (/run when it is one, else /dev/shm): tsrun's
# private store (--root, where its network configs live) and run root (its CNI results and
# namespaces; host-local's leases are host-wide, in /run/tsrun/ipam, like the bridge tsrun0),
# podman's private graphroot, runroot, tmp dir and CNI config dir (containers.conf/storage.conf
# from scripts/lib/bench-common.sh, as scripts/bench-engine.sh and bench-verbs.sh: cgroupfs,
# file locks and events, runtime runc), the image (images/busybox/build.sh and oci-layout.sh,
# loaded into both stores), the runs' output files. Podman's default network: with the CNI
# backend and no conflist named "podman" podman 4 keeps a built-in one in memory (bridge
# cni-podman0, 10.88.0.0/16, host-local leases in /var/lib/cni/networks/podman, all shared with
# the host's podman); the script writes instead, in the private CNI config dir, the conflist
# podman itself writes for `podman network create` (bridge with isGateway, ipMasq, hairpinMode;
# host-local; portmap; firewall; tuning) named "podman", so that it is the default network, with
# a bridge of its own (cni-tbn<pid>), the first of 10.88-10.99.0.0/16 no host route overlaps,
# and host-local's leases in the work dir.
# NODE_EXTRA_CA_CERTS is unset for every command; tsrun runs from a private copy of dist/bin and
# build/Release. Wall time is process.hrtime.bigint() around child_process.spawnSync (section 1)
# or from the first spawn to the last exit (section 2); stdin /dev/null, stdout/stderr to files
# on the tmpfs. After each timed sample, and after each untimed removal, the script waits
# (untimed) until no helper of ours runs (conmon, `podman container cleanup`, CNI plugins, tsrun
# monitors). Any failed command stops the benchmark with its stderr.
# Network traffic: none leaves the host (`true` and `sleep` send nothing; the bridges are ours).
# At the end the script looks for leftovers (containers, mounts, processes, cgroups, runc state,
# CNI results of ours, and the host's network state - links, addresses, /run/netns, iptables and
# ip6tables rules and chains - against a snapshot taken before the first container), reports
# them (exit status 1), then removes everything it made, also when interrupted: podman's bridge,
# tsrun's bridge when it was not there before and has no port left, the rules and chains of our
# subnets, bridges and containers, the CNI plugins' shared chains when the run made them. It
# reports numbers only; it asserts nothing about them.
set -euo pipefail

die() { echo "bench-network: $*" >&2; exit 1; }

RUNS=20
BULK_RUNS=3
WARMUP=3
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    --bulk-runs) [ $# -ge 2 ] || die "--bulk-runs needs a value"; BULK_RUNS=$2; shift 2 ;;
    --bulk-runs=*) BULK_RUNS=${1#--bulk-runs=}; shift ;;
    --warmup) [ $# -ge 2 ] || die "--warmup needs a value"; WARMUP=$2; shift 2 ;;
    --warmup=*) WARMUP=${1#--warmup=}; shift ;;
    --keep) KEEP=1; shift ;;
    --quick) RUNS=5; BULK_RUNS=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
{ [[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 3 ]; } || die "--runs must be an integer >= 3, got '$RUNS'"
{ [[ $BULK_RUNS =~ ^[0-9]+$ ]] && [ "$BULK_RUNS" -ge 1 ]; } || die "--bulk-runs must be an integer >= 1, got '$BULK_RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer, got '$WARMUP'"
[ "$(id -u)" = 0 ] || die "must run as root (rootful containers, bridges, iptables)"
TSRUN_NET_FLAG=${TSRUN_NET_FLAG:-}

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
PODMAN_BIN=$(command -v podman) || die "podman not found (apt-get install podman)"
command -v conmon >/dev/null || die "conmon not found (apt-get install conmon)"
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || die "no CNI plugins in /usr/lib/cni or /opt/cni/bin (apt-get install containernetworking-plugins)"
for t in ip iptables-save ip6tables-save iptables-restore ip6tables-restore; do
  command -v "$t" >/dev/null || die "$t not found (apt-get install iproute2 iptables)"
done

# ---- the work directory, on a tmpfs (as /run is on a real host) ----
# shellcheck source=scripts/lib/bench-common.sh
. "$REPO/scripts/lib/bench-common.sh"
bench_fast_base
WORK=$FAST_BASE/tsrun-bench-network-$$
PREFIX=tbn$$
PD_BRIDGE=cni-$PREFIX # <= 15 characters: cni-tbn + a pid
mkdir -m 0700 "$WORK" || die "cannot create $WORK"
mkdir -p "$WORK/out"
HOST_ABSENT=$WORK/host-absent
bench_note_host_paths "$HOST_ABSENT"

# podman's subnet: the first /16 of 10.88-10.99 that no host route overlaps (tsrun's is 10.87)
PD_SUBNET=
for n in $(seq 88 99); do
  if ! ip -4 route show table all | awk '{print $1 == "local" || $1 == "broadcast" ? $2 : $1}' | grep -q "^10\.$n\."; then
    PD_SUBNET=10.$n.0.0/16
    break
  fi
done
[ -n "$PD_SUBNET" ] || die "no free /16 in 10.88-10.99.0.0 for podman's network (ip -4 route)"

TIMER=$WORK/timer.cjs
COPY=$LAUNCHER
cfg_json() {
  "$NODE" -e 'const a = process.argv.slice(1); console.log(JSON.stringify({
    tsrun: a[0], runc: a[1], node: a[2], podman: a[3], work: a[4], prefix: a[5],
    runs: +a[6], bulkRuns: +a[7], warmup: +a[8], hostAbsent: a[9], tsNetFlag: a[10],
    pdBridge: a[11], pdSubnet: a[12]}))' \
    "$COPY" "$RUNC" "$NODE" "$PODMAN_BIN" "$WORK" "$PREFIX" "$RUNS" "$BULK_RUNS" "$WARMUP" "$HOST_ABSENT" \
    "$TSRUN_NET_FLAG" "$PD_BRIDGE" "$PD_SUBNET"
}
bench_traps "$WORK"

# ---- a private copy of the engine; the V8 code caches it writes stay in it ----
bench_private_copy "$LAUNCHER" "$ADDON" "$WORK/tsrun"
TS=("$COPY" --root "$WORK/tsrun-root" --runroot "$WORK/tsrun-run")

bench_timer_lib "$WORK"
cat >"$TIMER" <<'JS'
// Interleaved measurements, stats, leftover checks and cleanup (see scripts/bench-network.sh).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const C = require('./bench-common.cjs');
const { RunError, stats } = C;

const cfg = JSON.parse(process.env.BENCH_CFG);
const env = C.cleanEnv();
const W = (...p) => path.join(cfg.work, ...p);
const podmanEnv = C.podmanEnvOf(env, W('podman'), W('podman', 'tmp'));
const TS = [cfg.tsrun, '--root', W('tsrun-root'), '--runroot', W('tsrun-run')];
const TSNET = cfg.tsNetFlag.split(/\s+/).filter(Boolean); // '' on the bridge (tsrun's default)
const IMAGE = 'localhost/busybox:latest';
const BULK = 50;
const TS_BRIDGE = 'tsrun0'; // src/network/conflist.ts DEFAULT_BRIDGE
const PD_NET = cfg.pdSubnet.split('.').slice(0, 2).join('.') + '.'; // '10.88.'
const GENERIC_CHAINS = /^CNI-(FORWARD|ADMIN|HOSTPORT-(DNAT|SNAT|MASQ|SETMARK))$/; // the CNI plugins' shared chains

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const notes = new Map(); // what -> Set of stderr texts of successful runs
const tsIds = new Set(); // every tsrun container id seen (for the cgroup check)
const exec = C.makeExec({ outDir: W('out'), env, notes });
const pd = (args, o = {}) => exec([cfg.podman, ...args], { env: podmanEnv, ...o });
const ts = (args, o = {}) => exec([...TS, ...args], o);

// ---- processes, cgroups, mounts, network (scripts/lib/bench-common.cjs) ----
const podmanIds = () => C.podmanIds(W('podman', 'tmp', 'events.log'));
/** Ours: mentions the work dir or the prefix (podman, conmon, cleanup, CNI plugins), a tsrun-monitor of ours, or in a cgroup of one of our containers. */
const ourProcs = ({ cgroups = true } = {}) =>
  C.ourProcs({
    needles: [cfg.work, cfg.prefix],
    dirs: [cfg.work],
    cgroups,
    cgNeedles: cgroups ? [`/${cfg.prefix}-`, ...[...tsIds].map((id) => `/tsrun/${id}`), ...[...podmanIds()].map((id) => `/libpod-${id}`)] : [],
  });
/** Untimed: until no helper of ours runs. Returns the ms waited, or -1 after 15 s. */
const waitQuiet = () => C.waitQuiet(() => ourProcs({ cgroups: false }));
const ourCgroups = () => C.ourCgroups({ prefix: cfg.prefix, tsIds, pdIds: podmanIds() });
const mountsUnder = () => C.mountsUnder([cfg.work]);
const podmanStateLeft = () => C.runtimeStateLeft(podmanIds(), [['/run/runc', cfg.runc]]).map((s) => s.entry);
/** libcni's results cache of our podman containers (podman keeps it in /var/lib/cni/results). */
const cniResultsLeft = () => {
  const ids = [...podmanIds()];
  return C.listDir('/var/lib/cni/results').filter((e) => ids.some((id) => e.includes(id)));
};
function tsrunLeft() {
  const r = ts(['ps', '-aq', '--no-trunc'], { what: null, mayFail: true });
  return r.ok ? { ids: r.stdout.split('\n').filter(Boolean) } : { error: r.stderr.trim() || `exit status ${r.status}` };
}
const netBefore = () => JSON.parse(fs.readFileSync(W('net-before.json'), 'utf8'));
/** What the run may leave by design until the cleanup: the two bridges, their addresses, the CNI plugins' shared chains and the jumps to them. */
function byDesign(line) {
  if (ourBridges().some((b) => line === `link ${b}` || line.startsWith(`address ${b} `))) return true;
  const m = line.match(/^ip6?tables -t \S+ (chain (\S+)|-A (\S+) (.*))$/);
  if (!m) return false;
  if (m[2]) return GENERIC_CHAINS.test(m[2]);
  return !/\d+\.\d+\.\d+\.\d+/.test(m[4]) && (GENERIC_CHAINS.test(m[3]) || [...m[4].matchAll(/-[jg] (\S+)/g)].some((j) => GENERIC_CHAINS.test(j[1])));
}
const ourBridges = () => (TSNET.length ? [cfg.pdBridge] : [cfg.pdBridge, TS_BRIDGE]);
const needles = () => [cfg.pdBridge, PD_NET, ...podmanIds(), ...tsIds];
/** A difference that is ours: mentions our podman bridge or subnet or one of our containers, or a link in one of our bridges. */
const ours = (line) => needles().some((n) => line.includes(n)) || ourBridges().some((b) => line.endsWith(` (master ${b})`));
/** Removes our network state (see netRestore in bench-common.cjs); returns what it removed. */
function netSweep() {
  return C.netRestore(netBefore(), {
    needles: needles(),
    bridges: ourBridges(),
    generic: (c) => GENERIC_CHAINS.test(c),
    netnsOk: (n) => n.startsWith('netns-'), // podman's (rootful) netns names
  });
}

// ---- stats and output ----
const f = (x, w = 8) => x.toFixed(1).padStart(w);
const row = (name, s) => `  ${name.padEnd(34)}${f(s.min)}${f(s.med)}${f(s.p90)}`;
const head = () => `  ${''.padEnd(34)}${'min'.padStart(8)}${'median'.padStart(8)}${'p90'.padStart(8)}`;
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
const tsBridged = () => (TSNET.length ? `NOT bridged: ${cfg.tsNetFlag}` : 'bridge');

// ---- the check that both sides are bridged (untimed) ----
function checkBridged() {
  const addr = (r) => (r.stdout.match(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/) ?? [])[1];
  const p = pd(['run', '--rm', IMAGE, 'ip', '-o', '-4', 'addr', 'show', 'eth0'], { what: 'podman run (eth0 check)', mayFail: true });
  if (!p.ok || !addr(p) || !addr(p).startsWith(PD_NET)) throw new RunError(`podman's default network: no address in ${cfg.pdSubnet} on eth0 (status ${p.status}):\n${p.stdout}${p.stderr}`);
  let t = 'skipped (TSRUN_NET_FLAG)';
  if (!TSNET.length) {
    const r = ts(['run', '--rm', 'busybox', 'ip', '-o', '-4', 'addr', 'show', 'eth0'], { what: 'tsrun run (eth0 check)', mayFail: true });
    if (!r.ok || !addr(r)) {
      throw new RunError(
        `tsrun's default network has no eth0 with an IPv4 address (status ${r.status}): not a bridge (yet?)\n${r.stdout}${r.stderr}` +
          `  (to try the script before tsrun's bridge exists: TSRUN_NET_FLAG='--network none' bash scripts/bench-network.sh --quick)\n`,
      );
    }
    t = `eth0 ${addr(r)}`;
  }
  waitQuiet();
  console.log(`  check     podman's default network: eth0 ${addr(p)}; tsrun's: ${t}`);
  console.log('');
}

/** Rounds of N sides: odd rounds in the given order, even rounds with each pair swapped (podman first). Each side returns { ms }. */
function rounds(title, sides, order) {
  const samples = Object.fromEntries(sides.map((s) => [s.key, []]));
  const waits = Object.fromEntries(sides.map((s) => [s.key, []]));
  let slow = 0;
  const one = (side, record) => {
    const r = side.fn();
    const w = waitQuiet();
    if (w < 0) slow++;
    if (!record) return;
    samples[side.key].push(r.ms);
    if (w >= 0) waits[side.key].push(w);
  };
  for (let w = 1; w <= cfg.warmup; w++) {
    progress(`${title}: warm-up ${w}/${cfg.warmup}`);
    for (const s of order(w)) one(s, false);
  }
  for (let i = 1; i <= cfg.runs; i++) {
    progress(`${title}: round ${i}/${cfg.runs}`);
    for (const s of order(i)) one(s, true);
  }
  progressEnd();
  return { samples, waits, slow };
}

// ---- 1. run --rm true ----
function section1() {
  console.log(`1. run --rm busybox true, wall ms (${cfg.runs} rounds, +${cfg.warmup} warm-up, order alternating)`);
  const S = {
    ts: { key: 'ts', fn: () => ts(['run', '--rm', ...TSNET, 'busybox', 'true'], { what: 'tsrun run --rm' }) },
    pd: { key: 'pd', fn: () => pd(['run', '--rm', IMAGE, 'true'], { what: 'podman run --rm' }) },
    tn: { key: 'tn', fn: () => ts(['run', '--rm', '--network', 'none', 'busybox', 'true'], { what: 'tsrun run --rm --network none' }) },
    pn: { key: 'pn', fn: () => pd(['run', '--rm', '--network', 'none', IMAGE, 'true'], { what: 'podman run --rm --network none' }) },
  };
  const r = rounds('1. run --rm', Object.values(S), (i) => (i % 2 ? [S.ts, S.pd, S.tn, S.pn] : [S.pd, S.ts, S.pn, S.tn]));
  tsv('samples-1-run-rm.tsv', { tsrun: r.samples.ts, podman: r.samples.pd, 'tsrun none': r.samples.tn, 'podman none': r.samples.pn });
  const [a, b, an, bn] = ['ts', 'pd', 'tn', 'pn'].map((k) => stats(r.samples[k]));
  console.log(head());
  console.log(row(`tsrun run --rm (${tsBridged()})`, a));
  console.log(row('podman run --rm (bridge)', b));
  console.log(`  tsrun/podman  min ${(a.min / b.min).toFixed(2)}   median ${(a.med / b.med).toFixed(2)}   ${goal(a.med / b.med, 0.33)}`);
  if (TSNET.length) console.log(`  WARNING: TSRUN_NET_FLAG='${cfg.tsNetFlag}': the tsrun line is not on a bridge, the ratio is not the benchmark's`);
  console.log('  for information, the same rounds with --network none:');
  console.log(row('tsrun run --rm --network none', an));
  console.log(row('podman run --rm --network none', bn));
  console.log(`  cost of the bridge (median bridged - median none): tsrun ${(a.med - an.med).toFixed(1)} ms, podman ${(b.med - bn.med).toFixed(1)} ms`);
  const m = (k) => (r.waits[k].length ? `${stats(r.waits[k]).med.toFixed(0)} ms` : 'n/a');
  console.log(`  (untimed wait after return until the helpers were gone, median: tsrun ${m('ts')}, podman ${m('pd')}, tsrun none ${m('tn')}, podman none ${m('pn')})`);
  if (r.slow) console.log(`  note: ${r.slow} time(s) helpers were still running 15 s after the command returned`);
  console.log('');
}

// ---- 2. 50 bridged at once ----
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

/** n at once of argv (env e); then, untimed, the running count (listRunning), removal (removeAll). */
async function bulk(side, n, label, argv, e, listRunning, removeAll) {
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
    r = await spawnAll(Array.from({ length: n }, () => argv), stdios, e);
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  const failed = [];
  r.res.forEach((x, i) => {
    if (x.error || x.status !== 0) failed.push(`#${i + 1}: ${x.error ? x.error.message : x.signal ? `killed by ${x.signal}` : `exit status ${x.status}`}: ${fs.readFileSync(W('out', `bulk-${i}.err`), 'utf8').trim().slice(0, 500)}`);
  });
  const running = listRunning();
  removeAll();
  if (waitQuiet() < 0) throw new RunError(`${side}: helpers still running 15 s after the removal of the bulk containers`);
  if (failed.length) throw new RunError(`FAILED: ${label}: ${failed.length} of ${n} ${side} run -d failed:\n  ${failed.join('\n  ')}`);
  if (running !== n) throw new RunError(`${label}: ${running} of ${n} ${side} containers running after all returned (ps -q)`);
  return r.ms;
}
const bulkTs = (n, label) =>
  bulk(
    'tsrun',
    n,
    label,
    [...TS, 'run', '-d', ...TSNET, 'busybox', 'sleep', '60'],
    env,
    () => ts(['ps', '-q', '--no-trunc'], { what: 'tsrun ps -q' }).stdout.split('\n').filter(Boolean).length,
    () => {
      const all = ts(['ps', '-aq', '--no-trunc'], { what: 'tsrun ps -aq' }).stdout.split('\n').filter(Boolean);
      for (const id of all) tsIds.add(id);
      if (all.length) ts(['rm', '-f', ...all], { what: 'tsrun rm -f (bulk)', timeout: 300_000 });
    },
  );
const bulkPd = (n, label) =>
  bulk(
    'podman',
    n,
    label,
    [cfg.podman, 'run', '-d', IMAGE, 'sleep', '60'],
    podmanEnv,
    () => pd(['ps', '-q', '--no-trunc'], { what: 'podman ps -q' }).stdout.split('\n').filter(Boolean).length,
    () => pd(['rm', '--all', '--force', '--time', '0'], { what: 'podman rm -af (bulk)', timeout: 300_000 }),
  );

async function section2() {
  console.log(`2. ${BULK} bridged busybox sleep 60 started at once (run -d), wall ms from the first spawn until all returned (${cfg.bulkRuns} round(s), +1 warm-up of 5)`);
  const s = { ts: [], pd: [] };
  progress('2. bulk: warm-up');
  await bulkTs(5, 'warm-up');
  await bulkPd(5, 'warm-up');
  for (let i = 1; i <= cfg.bulkRuns; i++) {
    progress(`2. bulk: round ${i}/${cfg.bulkRuns}`);
    for (const side of i % 2 ? ['ts', 'pd'] : ['pd', 'ts']) {
      s[side].push(side === 'ts' ? await bulkTs(BULK, `bulk ${i}`) : await bulkPd(BULK, `bulk ${i}`));
      await sleep(200); // let the host settle after the untimed removal
    }
  }
  progressEnd();
  tsv('samples-2-bulk.tsv', { tsrun: s.ts, podman: s.pd });
  const a = stats(s.ts);
  const b = stats(s.pd);
  console.log(head());
  console.log(`${row(`tsrun run -d x${BULK} (${tsBridged()})`, a)}   (median ${(a.med / BULK).toFixed(1)} ms per container)`);
  console.log(`${row(`podman run -d x${BULK} (bridge)`, b)}   (median ${(b.med / BULK).toFixed(1)} ms per container)`);
  console.log(`  tsrun/podman  min ${(a.min / b.min).toFixed(2)}   median ${(a.med / b.med).toFixed(2)}`);
  console.log('');
}

async function bench() {
  checkBridged();
  section1();
  await section2();
  for (const [what, set] of notes) for (const n of set) console.log(`note: ${what} printed on stderr (exit 0): ${n.split('\n').join(' | ').slice(0, 300)}`);
  fs.writeFileSync(W('tsrun-ids'), `${[...tsIds].join('\n')}\n`);
}

// ---- leftovers ----
function loadIds() {
  try {
    for (const id of fs.readFileSync(W('tsrun-ids'), 'utf8').split('\n').filter(Boolean)) tsIds.add(id);
  } catch {}
}
function verify() {
  loadIds();
  const problems = [];
  const t = tsrunLeft();
  if (t.error) problems.push(`tsrun ps -aq failed: ${t.error}`);
  else if (t.ids.length) problems.push(`tsrun containers left (ps -a): ${t.ids.join(' ')}`);
  const r = pd(['ps', '-aq'], { what: null, mayFail: true });
  if (!r.ok) problems.push(`podman ps -aq failed: ${r.stderr.trim()}`);
  else if (r.stdout.trim()) problems.push(`podman containers left: ${r.stdout.trim().split('\n').join(' ')}`);
  for (const s of podmanStateLeft()) problems.push(`runc state /run/runc/${s} of a podman container`);
  for (const e of cniResultsLeft()) problems.push(`CNI result /var/lib/cni/results/${e} of a podman container`);
  for (const m of mountsUnder()) problems.push(`mount left: ${m}`);
  for (const p of ourProcs()) problems.push(`process left: ${p.pid} ${p.cmd}`);
  for (const c of ourCgroups()) problems.push(`cgroup left: ${c}`);
  const diff = C.netDiffLines(C.netDiff(netBefore(), C.netSnapshot()));
  const expected = diff.filter(byDesign);
  for (const d of diff.filter((x) => !byDesign(x) && ours(x))) problems.push(`network: ${d}`);
  const others = diff.filter((x) => !byDesign(x) && !ours(x));
  console.log(`network state vs before the first container, left by design (removed by the cleanup): ${expected.length ? `\n  ${expected.join('\n  ')}` : 'nothing'}`);
  if (others.length) {
    console.log(`note: ${others.length} other change(s) to the host's network state during the run, not ours (another user's containers?), left alone:`);
    console.log(`  ${others.slice(0, 20).join('\n  ')}${others.length > 20 ? `\n  ... (${others.length - 20} more)` : ''}`);
  }
  if (problems.length) {
    process.stderr.write(`bench-network: leftovers after the runs (removed by the cleanup that follows):\n  ${problems.join('\n  ')}\n`);
    process.exit(1);
  }
  console.log(
    'leftovers: none (tsrun ps -a and podman ps -a empty; no runc state or CNI result of our podman containers; no mount under the work dir; no tsrun-monitor, conmon or other process of ours; no cgroup of ours; no link, address, netns, iptables/ip6tables rule or chain of ours but those above)',
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
  if (fs.existsSync(W('podman', 'containers.conf'))) {
    C.sweepPodman(forced, { podman: cfg.podman, podmanEnv, env, pdIds: podmanIds, roots: [['/run/runc', cfg.runc]] });
  }
  C.sweepProcs(forced, ourProcs);
  C.sweepCgroups(forced, ourCgroups());
  C.sweepMounts(forced, mountsUnder());
  step('CNI results', () => {
    for (const e of cniResultsLeft()) {
      forced.push(`CNI result /var/lib/cni/results/${e}`);
      fs.rmSync(path.join('/var/lib/cni/results', e), { force: true });
    }
  });
  let removed = [];
  let still = [];
  if (fs.existsSync(W('net-before.json'))) {
    step('network', () => {
      removed = netSweep();
      still = C.netDiffLines(C.netDiff(netBefore(), C.netSnapshot()));
    });
  }
  C.sweepHostPaths(forced, cfg.hostAbsent);
  if (removed.length) console.log(`cleanup: network state removed:\n  ${removed.join('\n  ')}`);
  const stillOurs = still.filter(ours);
  if (stillOurs.length) forced.push(`network state of ours still there (its removal failed):\n    ${stillOurs.join('\n    ')}`);
  else if (still.length) console.log(`cleanup: network state of ours removed; ${still.length} other difference(s) from before the run, not ours, left alone`);
  else if (fs.existsSync(W('net-before.json'))) console.log('cleanup: links, addresses, /run/netns, iptables and ip6tables as before the run');
  if (forced.length) {
    process.stderr.write(`bench-network: cleanup had to remove:\n  ${forced.join('\n  ')}\n`);
    process.exit(1);
  }
}

const mode = process.argv[2];
(async () => {
  try {
    if (mode === 'snapshot') fs.writeFileSync(W('net-before.json'), JSON.stringify(C.netSnapshot()));
    else if (mode === 'verify') verify();
    else if (mode === 'sweep') sweep();
    else await bench();
  } catch (e) {
    if (!(e instanceof RunError)) throw e;
    if (mode !== 'sweep' && mode !== 'verify') fs.writeFileSync(W('tsrun-ids'), `${[...tsIds].join('\n')}\n`);
    progressEnd();
    process.stderr.write(`\nbench-network: ${e.message}\n`);
    process.exit(1);
  }
})();
JS

# ---- the host's network state, before anything of ours touches it ----
BENCH_CFG=$(cfg_json) "$NODE" "$TIMER" snapshot || die "cannot take the snapshot of the host's network state"

# ---- the image ----
# runc writes the starter config.json: nothing lands in dist/bin (no tsrun-oci V8 cache)
bench_busybox_oci "$WORK/img" "$RUNC"
ARCHIVE=$WORK/img/busybox-oci.tar
if ! env -u NODE_EXTRA_CA_CERTS "${TS[@]}" load -i "$ARCHIVE" -t localhost/busybox:latest >"$WORK/tsrun-load.log" 2>&1; then
  cat "$WORK/tsrun-load.log" >&2
  die "tsrun load of $ARCHIVE failed (output above)"
fi

# ---- podman: a private configuration, its default network, the image ----
PD=$WORK/podman
bench_podman_config "$PD" "$PD/graphroot" "$PD/runroot" "$PD/tmp" "$PD/networks" scripts/bench-network.sh
backend=$(podman_ info --format '{{.Host.NetworkBackend}}') || die "podman info failed"
[ "$backend" = cni ] || die "podman's network backend is '$backend' under the private config, not cni"
# the conflist podman writes for a bridge network, named "podman" (the default network's name);
# without the dnsname plugin (dnsmasq), as the built-in default; created on a scratch subnet
# (podman refuses one its built-in default, 10.88.0.0/16, overlaps),
# then given our subnet and bridge (podman 4.3 has no --interface-name)
podman_ network create --driver bridge --disable-dns --subnet 10.255.255.0/24 "$PREFIX" >"$PD/network.log" 2>&1 ||
  { cat "$PD/network.log" >&2; die "podman network create failed (output above)"; }
"$NODE" -e '
  const fs = require("fs");
  const [dir, name, dataDir, subnet, bridge] = process.argv.slice(1);
  const src = `${dir}/${name}.conflist`;
  const c = JSON.parse(fs.readFileSync(src, "utf8"));
  c.name = "podman";
  const br = c.plugins.find((p) => p.type === "bridge");
  if (br.ipam.ranges.length !== 1 || br.ipam.ranges[0].length !== 1) throw new Error("not one range: " + JSON.stringify(br.ipam));
  br.bridge = bridge;
  br.ipam.ranges[0][0] = { subnet, gateway: subnet.replace(/\.0\/16$/, ".1") };
  br.ipam.dataDir = dataDir;
  fs.writeFileSync(`${dir}/podman.conflist`, JSON.stringify(c, null, 2) + "\n");
  fs.unlinkSync(src);
' "$PD/networks" "$PREFIX" "$PD/cni-ipam" "$PD_SUBNET" "$PD_BRIDGE" || die "cannot write $PD/networks/podman.conflist"
pd_net=$(podman_ network inspect podman --format '{{.NetworkInterface}} {{range .Subnets}}{{.Subnet}}{{end}}') || die "podman network inspect podman failed"
[ "$pd_net" = "$PD_BRIDGE $PD_SUBNET" ] || die "podman's default network is '$pd_net', not '$PD_BRIDGE $PD_SUBNET'"
bench_podman_load "$ARCHIVE"

# ---- header ----
git_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
git_dirty=$(git -C "$REPO" status --porcelain -- src native 2>/dev/null | wc -l)
echo "tsrun (the engine) vs podman (runtime runc, CNI): busybox on each one's default bridge network, one interleaved run"
echo "  date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  host      $(uname -sr), $(nproc) CPU, load average $(cut -d" " -f1-3 /proc/loadavg), cgroup $( [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] && echo v2 || echo "v1/hybrid"), $(iptables --version)"
echo "  tsrun     $LAUNCHER (commit $git_rev, $git_dirty changed file(s) in src/ native/; bundle sha256 $(sha256sum "${COPY}.cjs" | cut -c1-12))"
echo "            run from a private copy: $COPY"
if [ -n "$TSRUN_NET_FLAG" ]; then
  echo "            WARNING: TSRUN_NET_FLAG='$TSRUN_NET_FLAG' is added to its 'bridged' command lines: they are NOT bridged"
else
  echo "            network: its default (the bridge tsrun0, 10.87.0.0/16 unless a host route takes it)"
fi
echo "  runc      $RUNC ($("$RUNC" --version | head -1))"
echo "  node      $NODE $("$NODE" --version) (the #! of the launcher)"
echo "  podman    $PODMAN_BIN ($("$PODMAN_BIN" --version)), conmon $(conmon --version 2>/dev/null | head -1 | awk '{print $3}'); runtime runc, cgroupfs, network backend $backend"
echo "            default network \"podman\": bridge $PD_BRIDGE, $PD_SUBNET (conflist as podman network create writes it, in $PD/networks)"
echo "            image loaded as $PODMAN_LOADED$([ "$PODMAN_LOADED" = localhost/busybox:latest ] || echo ", tagged localhost/busybox:latest")"
echo "  stores    all on a tmpfs ($FAST_BASE): $WORK (tsrun --root/--runroot, podman graphroot/runroot/tmp, host-local leases)"
echo "  env       NODE_EXTRA_CA_CERTS unset for every command${NODE_EXTRA_CA_CERTS:+ (set in this shell to $NODE_EXTRA_CA_CERTS)}"

BENCH_CFG=$(cfg_json) "$NODE" "$TIMER"
BENCH_CFG=$(cfg_json) "$NODE" "$TIMER" verify
