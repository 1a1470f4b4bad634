# shellcheck shell=bash
# Sourced by scripts/bench-verbs.sh, bench-engine.sh and bench-network.sh: what their set-up
# shares. The caller defines, for the traps, NODE, TIMER and cfg_json(); its timer (a .cjs in
# the work directory) requires ./bench-common.cjs, copied there by bench_timer_lib.
#
#   die MESSAGE                     "<script name without .sh>: MESSAGE" on stderr, exit status 1
#   bench_args OPTIONS ARGS...      the command line. OPTIONS: the options the script takes, among
#                                   runs bulk-runs warmup (RUNS, BULK_RUNS, WARMUP; --opt N or
#                                   --opt=N; defaults 20, 3, 3), no-podman (PODMAN=0, else 1), keep
#                                   (KEEP=1, else 0), quick (calls bench_quick: RUNS=5 BULK_RUNS=1
#                                   unless the script defines its own after sourcing this). Then
#                                   checks them: RUNS an integer >= RUNS_MIN (default 3), BULK_RUNS
#                                   >= 1, WARMUP >= 0. -h/--help prints the script's header comment
#                                   (from line 2 to `set -euo`)
#   bench_tools LAUNCHER WHY_ROOT   root (or die: must run as root (WHY_ROOT)), the build and the
#                                   tools: LAUNCHER and LAUNCHER.cjs; sets LAUNCHER, NODE (its #!
#                                   line), RUNC (RUNC or runc on PATH), ADDON (build/Release/tsrun.node
#                                   beside the tree, or TSRUN_NATIVE; with tsrun-init next to it),
#                                   PODMAN_BIN (podman, with conmon; empty when PODMAN=0)
#   bench_tsrun_load ARCHIVE        `${TS[@]} load -i ARCHIVE -t localhost/busybox:latest` (log in WORK)
#   bench_header TITLE [HOST_EXTRA] the first lines of the printed header: TITLE, date, host (with
#                                   HOST_EXTRA), tsrun (LAUNCHER: commit, changes in src/ native/,
#                                   the bundle's sha256) and its private copy COPY
#   bench_fast_base                 FAST_BASE=/run when it is a tmpfs (as on a real host), else /dev/shm
#   bench_note_host_paths FILE      the host paths the clients may create outside our dirs, absent now
#                                   (put back at the end by the sweep, when still empty)
#   bench_traps DIR...              the EXIT/INT/TERM/HUP traps: `timer sweep`, then rm -rf DIR... (or --keep)
#   bench_timer_lib DIR             copies bench-common.cjs next to the timer
#   bench_private_copy LAUNCHER ADDON DEST
#                                   a private copy of dist/bin (launcher, bundles, V8 caches) and of
#                                   build/Release (addon, tsrun-init): a rebuild during the benchmark
#                                   neither breaks runs nor mixes two builds in one sample; sets COPY
#   bench_busybox_oci DIR SPEC_TOOL images/busybox/build.sh + oci-layout.sh into DIR (DIR/busybox-oci.tar)
#   bench_podman_config CONF GRAPHROOT RUNROOT TMP NETDIR WHO
#                                   a private podman: CONF/containers.conf and CONF/storage.conf
#                                   (cgroupfs, file locks and events, k8s-file logs, CNI with the
#                                   private config dir NETDIR, runtime runc, rlimits within ours);
#                                   PODMAN_ENGINE_EXTRA and PODMAN_RUNTIMES_EXTRA add lines to
#                                   [engine] and [engine.runtimes]; then podman_ runs podman on it
#   bench_podman_load ARCHIVE       podman load of the OCI archive, tagged localhost/busybox:latest;
#                                   sets PODMAN_LOADED (the name podman gave it)

die() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }

bench_quick() { RUNS=5; BULK_RUNS=1; }

bench_args() { # OPTIONS ARGS...
  local opts=" $1 " o
  shift
  RUNS=20 BULK_RUNS=3 WARMUP=3 PODMAN=1 KEEP=0
  BENCH_OPTS=$opts
  while [ $# -gt 0 ]; do
    o=${1%%=*}
    o=${o#--}
    case $1 in
      -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
      --*) [[ $opts == *" $o "* ]] || die "unknown argument: $1 (see --help)" ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
    case $1 in
      --runs|--bulk-runs|--warmup)
        [ $# -ge 2 ] || die "$1 needs a value"
        bench_set_count "$o" "$2"; shift 2 ;;
      --runs=*|--bulk-runs=*|--warmup=*) bench_set_count "$o" "${1#*=}"; shift ;;
      --no-podman) PODMAN=0; shift ;;
      --keep) KEEP=1; shift ;;
      --quick) bench_quick; shift ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done
  local min=${RUNS_MIN:-3}
  { [[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge "$min" ]; } || die "--runs must be an integer >= $min, got '$RUNS'"
  [[ $opts != *" bulk-runs "* ]] || { [[ $BULK_RUNS =~ ^[0-9]+$ ]] && [ "$BULK_RUNS" -ge 1 ]; } ||
    die "--bulk-runs must be an integer >= 1, got '$BULK_RUNS'"
  [[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer, got '$WARMUP'"
}
bench_set_count() { # OPTION VALUE
  case $1 in
    runs) RUNS=$2 ;;
    bulk-runs) BULK_RUNS=$2 ;;
    warmup) WARMUP=$2 ;;
  esac
}

bench_tools() { # LAUNCHER WHY_ROOT
  local launcher=$1 hint=
  [ "$(id -u)" = 0 ] || die "must run as root ($2)"
  LAUNCHER=$launcher
  [[ ${BENCH_OPTS:-} != *" no-podman "* ]] || hint=", or pass --no-podman"
  { [ -x "$launcher" ] && [ -f "${launcher}.cjs" ]; } || die "$launcher (and ${launcher}.cjs) not found: build first with 'cd $REPO && npm run build'"
  NODE=$(sed -n '1s/^#![[:space:]]*//p' "$launcher")
  { [ -n "$NODE" ] && [ -x "${NODE%% *}" ]; } || die "cannot find the node of the #! line of $launcher (got '$NODE')"
  RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
  [ -x "$RUNC" ] || die "runc not found (apt-get install runc)"
  ADDON=$(cd "$(dirname "$launcher")/../.." && pwd)/build/Release/tsrun.node
  [ -z "${TSRUN_NATIVE:-}" ] || ADDON=$TSRUN_NATIVE
  [ -f "$ADDON" ] || die "native addon $ADDON not found: build first with 'cd $REPO && npm run build'"
  [ -f "$(dirname "$ADDON")/tsrun-init" ] || die "$(dirname "$ADDON")/tsrun-init not found: build first with 'cd $REPO && npm run build'"
  PODMAN_BIN=
  if [ "${PODMAN:-1}" = 1 ]; then
    PODMAN_BIN=$(command -v podman) || die "podman not found (apt-get install podman$hint)"
    command -v conmon >/dev/null || die "conmon not found (apt-get install conmon$hint)"
  fi
}

bench_tsrun_load() { # ARCHIVE
  if ! env -u NODE_EXTRA_CA_CERTS "${TS[@]}" load -i "$1" -t localhost/busybox:latest >"$WORK/tsrun-load.log" 2>&1; then
    cat "$WORK/tsrun-load.log" >&2
    die "tsrun load of $1 failed (output above)"
  fi
}

bench_header() { # TITLE [HOST_EXTRA]
  local rev dirty
  rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
  dirty=$(git -C "$REPO" status --porcelain -- src native 2>/dev/null | wc -l)
  echo "$1"
  echo "  date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "  host      $(uname -sr), $(nproc) CPU, load average $(cut -d" " -f1-3 /proc/loadavg), cgroup $( [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] && echo v2 || echo "v1/hybrid")${2:+, $2}"
  echo "  tsrun     $LAUNCHER (commit $rev, $dirty changed file(s) in src/ native/; bundle sha256 $(sha256sum "${COPY}.cjs" | cut -c1-12))"
  echo "            run from a private copy: $COPY"
}

bench_fast_base() {
  if [ "$(stat -f -c %T /run)" = tmpfs ]; then FAST_BASE=/run
  elif [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then FAST_BASE=/dev/shm
  else die "neither /run nor /dev/shm is a tmpfs: nowhere to put the stores"
  fi
}

bench_note_host_paths() {
  local p h sub
  : >"$1"
  for p in /var/lib/containers/cache /var/lib/containers /run/runc /run/tsrun \
    /var/lib/cni/networks /var/lib/cni/results /var/lib/cni /run/netns /run/containers; do
    [ -e "$p" ] || echo "$p" >>"$1"
  done
  for h in /sys/fs/cgroup/*/; do # cgroup parents: tsrun's, podman's cgroupfs parent
    for sub in tsrun libpod_parent; do [ -e "$h$sub" ] || echo "$h$sub" >>"$1"; done
  done
}

BENCH_CLEANED=0
BENCH_DIRS=()
bench_cleanup() {
  local rc=$?
  trap '' INT TERM HUP
  [ "$BENCH_CLEANED" = 0 ] || exit "$rc"
  BENCH_CLEANED=1
  if [ -f "$TIMER" ]; then
    BENCH_CFG=$(cfg_json) "$NODE" "$TIMER" sweep || rc=1
  fi
  if [ "$KEEP" = 1 ]; then
    echo "kept ${BENCH_DIRS[*]}"
  elif [ "${#BENCH_DIRS[@]}" -gt 0 ]; then
    rm -rf "${BENCH_DIRS[@]}"
  fi
  exit "$rc"
}
bench_traps() {
  BENCH_DIRS=("$@")
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

bench_timer_lib() {
  cp "$(dirname "${BASH_SOURCE[0]}")/bench-common.cjs" "$1/bench-common.cjs" || die "cannot copy bench-common.cjs to $1"
}

bench_private_copy() { # LAUNCHER ADDON DEST
  local launcher=$1 addon=$2 dest=$3 b
  mkdir -p "$dest/dist/bin" "$dest/build/Release"
  cp -p "$launcher" "${launcher}.cjs" "$dest/dist/bin/"
  [ ! -f "$(dirname "$launcher")/package.json" ] || cp -p "$(dirname "$launcher")/package.json" "$dest/dist/bin/"
  for b in "${launcher}"-*.cjs; do [ ! -f "$b" ] || cp -p "$b" "$dest/dist/bin/"; done # the fast bundles (hot verbs, create/run)
  cp -p "${launcher}".cjs.*.v8cache "${launcher}"-*.cjs.*.v8cache "$dest/dist/bin/" 2>/dev/null || true
  cp -p "$addon" "$dest/build/Release/tsrun.node"
  cp -p "$(dirname "$addon")/tsrun-init" "$dest/build/Release/"
  [ ! -d "$REPO/node_modules" ] || ln -s "$REPO/node_modules" "$dest/node_modules" # pino, for --log-format json (podman)
  COPY=$dest/dist/bin/$(basename "$launcher")
}

bench_busybox_oci() { # DIR SPEC_TOOL
  if ! SPEC_TOOL=$2 "$REPO/images/busybox/build.sh" "$1" >"$1.log" 2>&1 ||
    ! "$REPO/images/busybox/oci-layout.sh" "$1" >>"$1.log" 2>&1; then
    cat "$1.log" >&2
    die "cannot build the busybox image with $REPO/images/busybox/{build,oci-layout}.sh (output above)"
  fi
}

bench_podman_config() { # CONF GRAPHROOT RUNROOT TMP NETDIR WHO
  PODMAN_CONF=$1 PODMAN_TMP=$4
  local graphroot=$2 runroot=$3 netdir=$5 who=$6 hard_nofile hard_nproc nofile nproc
  mkdir -p "$PODMAN_CONF" "$graphroot" "$runroot" "$PODMAN_TMP" "$netdir"
  # no CAP_SYS_RESOURCE in some sandboxes: podman's default rlimits for root (nofile/nproc
  # 1048576) cannot be set there; stay at or below the current hard limits
  hard_nofile=$(ulimit -Hn); hard_nproc=$(ulimit -Hu)
  nofile=1024; [ "$hard_nofile" = unlimited ] || [ "$hard_nofile" -ge 1024 ] || nofile=$hard_nofile
  nproc=4096; [ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -ge 4096 ] || nproc=$hard_nproc
  cat >"$PODMAN_CONF/containers.conf" <<EOF
# generated by $who (scripts/lib/bench-common.sh, as tests/integration/helpers/clients.ts)
[containers]
pids_limit = 0
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[network]
# CNI with a private config dir: its conflists only (none: podman's built-in default network
# "podman", bridge cni-podman0, 10.88.0.0/16, kept in memory); --network none touches nothing
network_backend = "cni"
network_config_dir = "$netdir"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_TMP/events.log"
tmp_dir = "$PODMAN_TMP"
image_copy_tmp_dir = "$PODMAN_TMP"
lock_type = "file"
runtime = "runc"
${PODMAN_ENGINE_EXTRA:-}

[engine.runtimes]
runc = ["$RUNC"]
${PODMAN_RUNTIMES_EXTRA:-}
EOF
  cat >"$PODMAN_CONF/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$runroot"
graphroot = "$graphroot"
EOF
}

podman_() {
  env -u NODE_EXTRA_CA_CERTS CONTAINERS_CONF="$PODMAN_CONF/containers.conf" CONTAINERS_STORAGE_CONF="$PODMAN_CONF/storage.conf" \
    TMPDIR="$PODMAN_TMP" "$PODMAN_BIN" "$@"
}

bench_podman_load() { # ARCHIVE
  local log=$PODMAN_CONF/load.log loaded
  if ! podman_ load -i "$1" >"$log" 2>&1; then
    cat "$log" >&2
    die "podman load -i $1 failed (output above)"
  fi
  # the archive's only name is its ref.name annotation "latest": podman 4 calls it localhost/latest:latest
  loaded=$(sed -n 's/^Loaded image[^:]*: *//p' "$log" | head -1 | cut -d, -f1)
  [ -n "$loaded" ] || { cat "$log" >&2; die "podman load printed no image name (output above)"; }
  if [ "$loaded" != localhost/busybox:latest ]; then
    podman_ tag "$loaded" localhost/busybox:latest || die "podman tag $loaded localhost/busybox:latest failed"
  fi
  podman_ image exists localhost/busybox:latest || die "localhost/busybox:latest not in the private podman storage after load"
  PODMAN_LOADED=$loaded
}
