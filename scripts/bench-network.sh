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

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/bench-common.sh
. "$REPO/scripts/lib/bench-common.sh"
bench_args "runs bulk-runs warmup keep quick" "$@"
bench_tools "${TSRUN:-$REPO/dist/bin/tsrun}" "rootful containers, bridges, iptables" # LAUNCHER NODE RUNC ADDON PODMAN_BIN
TSRUN_NET_FLAG=${TSRUN_NET_FLAG:-}
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || die "no CNI plugins in /usr/lib/cni or /opt/cni/bin (apt-get install containernetworking-plugins)"
for t in ip iptables-save ip6tables-save iptables-restore ip6tables-restore; do
  command -v "$t" >/dev/null || die "$t not found (apt-get install iproute2 iptables)"
done

# ---- the work directory, on a tmpfs (as /run is on a real host) ----
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
const fs = require('node:fs');
const path = require('node:path');
const C = require('./bench-common.cjs');
const { RunError, stats } = C;

const cfg = JSON.parse(process.env.BENCH_CFG);
// timed commands, tsrun ids, processes, cgroups, mounts, the common leftovers and sweep steps
const E = C.engineBench(cfg);
const { env, W, podmanEnv, TS, tsIds, pd, ts, podmanIds, waitQuiet } = E;
const TSNET = cfg.tsNetFlag.split(/\s+/).filter(Boolean); // '' on the bridge (tsrun's default)
const IMAGE = 'localhost/busybox:latest';
const BULK = 50;
const TS_BRIDGE = 'tsrun0'; // src/network/conflist.ts DEFAULT_BRIDGE
const PD_NET = cfg.pdSubnet.split('.').slice(0, 2).join('.') + '.'; // '10.88.'
const GENERIC_CHAINS = /^CNI-(FORWARD|ADMIN|HOSTPORT-(DNAT|SNAT|MASQ|SETMARK))$/; // the CNI plugins' shared chains

// ---- CNI results, network state (scripts/lib/bench-common.cjs) ----
/** libcni's results cache of our podman containers (podman keeps it in /var/lib/cni/results). */
const cniResultsLeft = () => {
  const ids = [...podmanIds()];
  return C.listDir('/var/lib/cni/results').filter((e) => ids.some((id) => e.includes(id)));
};
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

// ---- output ----
const tbl = C.table(34);
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

// ---- 1. run --rm true ----
function section1() {
  console.log(`1. run --rm busybox true, wall ms (${cfg.runs} rounds, +${cfg.warmup} warm-up, order alternating)`);
  const S = {
    ts: { key: 'ts', fn: () => ts(['run', '--rm', ...TSNET, 'busybox', 'true'], { what: 'tsrun run --rm' }) },
    pd: { key: 'pd', fn: () => pd(['run', '--rm', IMAGE, 'true'], { what: 'podman run --rm' }) },
    tn: { key: 'tn', fn: () => ts(['run', '--rm', '--network', 'none', 'busybox', 'true'], { what: 'tsrun run --rm --network none' }) },
    pn: { key: 'pn', fn: () => pd(['run', '--rm', '--network', 'none', IMAGE, 'true'], { what: 'podman run --rm --network none' }) },
  };
  // odd rounds in this order, even rounds with each pair swapped (podman first)
  const order = (i) => (i % 2 ? [S.ts, S.pd, S.tn, S.pn] : [S.pd, S.ts, S.pn, S.tn]);
  const r = C.interleave({ title: '1. run --rm', sides: Object.values(S), order, warmup: cfg.warmup, runs: cfg.runs, waitQuiet });
  C.writeTsv(W('samples-1-run-rm.tsv'), { tsrun: r.samples.ts, podman: r.samples.pd, 'tsrun none': r.samples.tn, 'podman none': r.samples.pn });
  const [a, b, an, bn] = ['ts', 'pd', 'tn', 'pn'].map((k) => stats(r.samples[k]));
  console.log(tbl.head());
  console.log(tbl.row(`tsrun run --rm (${tsBridged()})`, a));
  console.log(tbl.row('podman run --rm (bridge)', b));
  console.log(C.ratioLine('tsrun/podman', a, b, 0.33));
  if (TSNET.length) console.log(`  WARNING: TSRUN_NET_FLAG='${cfg.tsNetFlag}': the tsrun line is not on a bridge, the ratio is not the benchmark's`);
  console.log('  for information, the same rounds with --network none:');
  console.log(tbl.row('tsrun run --rm --network none', an));
  console.log(tbl.row('podman run --rm --network none', bn));
  console.log(`  cost of the bridge (median bridged - median none): tsrun ${(a.med - an.med).toFixed(1)} ms, podman ${(b.med - bn.med).toFixed(1)} ms`);
  C.printWaits(r, { ts: 'tsrun', pd: 'podman', tn: 'tsrun none', pn: 'podman none' });
  console.log('');
}

// ---- 2. 50 bridged at once ----
/** n at once of argv (env e) on W('out'); then, untimed, the running count (listRunning), removal (removeAll). */
const bulk = (side, argv, e, listRunning, removeAll) => (n, label) =>
  C.bulkStart({ side, n, label, argv, env: e, outDir: W('out'), listRunning, removeAll, waitQuiet });
const bulkTs = bulk(
  'tsrun',
  [...TS, 'run', '-d', ...TSNET, 'busybox', 'sleep', '60'],
  env,
  () => ts(['ps', '-q', '--no-trunc'], { what: 'tsrun ps -q' }).stdout.split('\n').filter(Boolean).length,
  () => {
    const all = ts(['ps', '-aq', '--no-trunc'], { what: 'tsrun ps -aq' }).stdout.split('\n').filter(Boolean);
    for (const id of all) tsIds.add(id);
    if (all.length) ts(['rm', '-f', ...all], { what: 'tsrun rm -f (bulk)', timeout: 300_000 });
  },
);
const bulkPd = bulk(
  'podman',
  [cfg.podman, 'run', '-d', IMAGE, 'sleep', '60'],
  podmanEnv,
  () => pd(['ps', '-q', '--no-trunc'], { what: 'podman ps -q' }).stdout.split('\n').filter(Boolean).length,
  () => pd(['rm', '--all', '--force', '--time', '0'], { what: 'podman rm -af (bulk)', timeout: 300_000 }),
);

async function section2() {
  console.log(`2. ${BULK} bridged busybox sleep 60 started at once (run -d), wall ms from the first spawn until all returned (${cfg.bulkRuns} round(s), +1 warm-up of 5)`);
  await C.bulkSection({
    title: '2. bulk',
    n: BULK,
    rounds: cfg.bulkRuns,
    sides: [
      { key: 'ts', col: 'tsrun', name: `tsrun run -d x${BULK} (${tsBridged()})`, start: bulkTs },
      { key: 'pd', col: 'podman', name: `podman run -d x${BULK} (bridge)`, start: bulkPd },
    ],
    tsvFile: W('samples-2-bulk.tsv'),
    tbl,
    ratio: 'tsrun/podman',
  });
  console.log('');
}

async function bench() {
  checkBridged();
  section1();
  await section2();
  E.finish();
}

// ---- leftovers ----
function verify() {
  const problems = E.leftovers();
  for (const e of cniResultsLeft()) problems.push(`CNI result /var/lib/cni/results/${e} of a podman container`);
  const diff = C.netDiffLines(C.netDiff(netBefore(), C.netSnapshot()));
  const expected = diff.filter(byDesign);
  for (const d of diff.filter((x) => !byDesign(x) && ours(x))) problems.push(`network: ${d}`);
  const others = diff.filter((x) => !byDesign(x) && !ours(x));
  console.log(`network state vs before the first container, left by design (removed by the cleanup): ${expected.length ? `\n  ${expected.join('\n  ')}` : 'nothing'}`);
  if (others.length) {
    console.log(`note: ${others.length} other change(s) to the host's network state during the run, not ours (another user's containers?), left alone:`);
    console.log(`  ${others.slice(0, 20).join('\n  ')}${others.length > 20 ? `\n  ... (${others.length - 20} more)` : ''}`);
  }
  C.reportLeftovers('bench-network', problems);
  console.log(
    'leftovers: none (tsrun ps -a and podman ps -a empty; no runc state or CNI result of our podman containers; no mount under the work dir; no tsrun-monitor, conmon or other process of ours; no cgroup of ours; no link, address, netns, iptables/ip6tables rule or chain of ours but those above)',
  );
}

/** Remove everything the bench made, whatever state it was left in (the EXIT trap). Reports what had to be removed by force. */
function sweep() {
  const forced = E.sweepContainers();
  const step = (name, fn) => C.sweepStep(forced, name, fn);
  E.sweepHost(forced);
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
  C.reportSweep('bench-network', forced);
}

const snapshot = () => fs.writeFileSync(W('net-before.json'), JSON.stringify(C.netSnapshot()));
C.main('bench-network', { snapshot, verify, sweep, bench }, E.saveIds);
JS

# ---- the host's network state, before anything of ours touches it ----
BENCH_CFG=$(cfg_json) "$NODE" "$TIMER" snapshot || die "cannot take the snapshot of the host's network state"

# ---- the image ----
# runc writes the starter config.json: nothing lands in dist/bin (no tsrun-oci V8 cache)
bench_busybox_oci "$WORK/img" "$RUNC"
ARCHIVE=$WORK/img/busybox-oci.tar
bench_tsrun_load "$ARCHIVE"

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
# shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
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
bench_header "tsrun (the engine) vs podman (runtime runc, CNI): busybox on each one's default bridge network, one interleaved run" "$(iptables --version)"
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
