#!/usr/bin/env bash
# Build a Debian 12 (bookworm) minbase image offline-from-registries: debootstrap from the apt
# mirror this machine is configured with, packed reproducibly as an OCI image layout.
#
#   images/debian/build.sh OUTDIR [--arch amd64|arm64] [--tag TAG] [--refresh]
#
# Writes:
#   OUTDIR/oci/              OCI image layout (oci-layout, index.json, blobs/sha256/*): one gzip
#                            layer, config with Env PATH, Cmd ["bash"], architecture/os,
#                            rootfs.diff_ids and history; index.json names it ref.name=TAG
#                            (default "bookworm")
#   OUTDIR/debian-oci.tar    the same layout as a tar (an "oci-archive")
#   OUTDIR/image.env         shell-sourceable facts for tests and benchmarks (digests, sizes, tag)
#
# The debootstrap output is cached, untouched, under <repo>/.cache/images/ (override with
# TSRUN_IMAGE_CACHE=DIR) keyed by suite, arch, variant and mirror; only the first build (or
# --refresh) downloads anything. Every build copies the cached tree, cleans it like the
# official images (apt lists and caches, logs, ldconfig aux-cache, machine-id, policy-rc.d and
# the docker-* apt snippets) and packs it: entries sorted, mtimes clamped to SOURCE_DATE_EPOCH,
# numeric owners kept (the image has non-root groups: shadow, mail, staff...), pax headers
# without atime/ctime, gzip -n. Packing the same cached tree again gives the same digests.
#
# SOURCE_DATE_EPOCH defaults to the Date: of the suite's InRelease at the time the cache was
# filled (recorded in the cache), so it is stable for one cache.
#
# Environment: MIRROR (default: the bookworm entry of /etc/apt/sources.list{,.d}), KEYRING
# (default: that entry's Signed-By), SOURCE_DATE_EPOCH, TSRUN_IMAGE_CACHE.
#
# --arch arm64 on an amd64 host runs `debootstrap --foreign` and then the second stage in a
# chroot, which executes arm64 binaries: that needs qemu-user-static (qemu-aarch64-static) AND
# a registered binfmt_misc handler. The first stage alone is not a usable image (no package is
# configured: no /etc/passwd, an empty dpkg database, no maintainer script run), so without qemu
# the script stops with an explanation instead of producing a broken image.
#
# Needs root, debootstrap, wget (a debootstrap dependency), tar, gzip, sha256sum, node.
set -euo pipefail

die() { echo "debian/build.sh: $*" >&2; exit 1; }
log() { echo "debian/build.sh: $*" >&2; }
usage() { die "usage: $0 OUTDIR [--arch amd64|arm64] [--tag TAG] [--refresh]"; }

SUITE=bookworm
VARIANT=minbase
OUT= ARCH= TAG=bookworm REFRESH=
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ $# -ge 2 ] || usage; ARCH=$2; shift 2 ;;
    --arch=*) ARCH=${1#--arch=}; shift ;;
    --tag) [ $# -ge 2 ] || usage; TAG=$2; shift 2 ;;
    --tag=*) TAG=${1#--tag=}; shift ;;
    --refresh) REFRESH=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) usage ;;
    *) [ -z "$OUT" ] || usage; OUT=$1; shift ;;
  esac
done
[ -n "$OUT" ] || usage

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap creates root-owned files, mknod, chroot)"
for t in debootstrap wget tar gzip sha256sum node flock; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is required (apt-get install debootstrap wget tar gzip coreutils util-linux; node 20)"
done

HOST_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
ARCH=${ARCH:-$HOST_ARCH}
case "$ARCH" in
  amd64) QEMU=qemu-x86_64-static BINFMT=qemu-x86_64 ;;
  arm64) QEMU=qemu-aarch64-static BINFMT=qemu-aarch64 ;;
  *) die "--arch must be amd64 or arm64, not '$ARCH'" ;;
esac
[[ "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] || die "invalid tag '$TAG'"

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE_ROOT=${TSRUN_IMAGE_CACHE:-$REPO/.cache/images}

# ---- the configured mirror (images/lib/apt-mirror.sh) ----
. "$HERE/../lib/apt-mirror.sh"
if [ -z "${MIRROR:-}" ]; then
  line=$(find_mirror "$SUITE")
  [ -n "$line" ] || die "no '$SUITE' source in /etc/apt/sources.list{,.d}: set MIRROR=http://…/debian"
  MIRROR=${line%%$'\t'*}
  [ -n "${KEYRING:-}" ] || KEYRING=${line#*$'\t'}
fi
MIRROR=${MIRROR%/}
if [ -n "${KEYRING:-}" ] && [ ! -f "$KEYRING" ]; then
  log "keyring '$KEYRING' is not a file; using debootstrap's default"
  KEYRING=
fi

# ---- cache: the untouched debootstrap output ----
CACHE_KEY="debian-$SUITE-$VARIANT-$ARCH-$(printf '%s' "$MIRROR" | sha256sum | cut -c1-12)"
CACHE=$CACHE_ROOT/$CACHE_KEY
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/$CACHE_KEY.lock"
flock 9   # one builder fills a cache entry; others wait and reuse it

now_ms() { date +%s%3N; }
T_DEBOOTSTRAP=cached
fill_cache() {
  local epoch date tmp t0
  # The epoch: the suite's InRelease Date (what debuerreotype uses), so the same package set
  # gets the same timestamps; shadow's "last changed" field honours it during debootstrap.
  date=$(wget -qO- "$MIRROR/dists/$SUITE/InRelease" | sed -n 's/^Date: //p' | head -n1) || true
  [ -n "$date" ] || die "cannot read $MIRROR/dists/$SUITE/InRelease (is the mirror reachable?)"
  epoch=$(date -d "$date" +%s)
  tmp=$(mktemp -d "$CACHE_ROOT/.$CACHE_KEY.XXXXXX")
  trap 'umount_below "$tmp/rootfs" 2>/dev/null; rm -rf "$tmp"' EXIT
  local args=(--variant="$VARIANT" --arch="$ARCH" --merged-usr --force-check-gpg)
  [ -z "${KEYRING:-}" ] || args+=(--keyring="$KEYRING")
  local foreign=
  if [ "$ARCH" != "$HOST_ARCH" ]; then
    foreign=1
    args+=(--foreign)
  fi
  log "debootstrap $SUITE ($VARIANT, $ARCH) from $MIRROR into the cache ($CACHE)"
  t0=$(now_ms)
  if ! SOURCE_DATE_EPOCH=$epoch debootstrap "${args[@]}" "$SUITE" "$tmp/rootfs" "$MIRROR" >"$tmp/debootstrap.out" 2>&1; then
    tail -n 30 "$tmp/debootstrap.out" >&2
    [ -f "$tmp/rootfs/debootstrap/debootstrap.log" ] && cp "$tmp/rootfs/debootstrap/debootstrap.log" "$CACHE_ROOT/$CACHE_KEY.failed.log"
    umount_below "$tmp/rootfs"; rm -rf "$tmp"
    die "debootstrap failed (its log: $CACHE_ROOT/$CACHE_KEY.failed.log)"
  fi
  if [ -n "$foreign" ]; then
    log "second stage under $QEMU"
    cp "$(command -v "$QEMU")" "$tmp/rootfs/usr/bin/$QEMU"
    if ! SOURCE_DATE_EPOCH=$epoch chroot "$tmp/rootfs" /debootstrap/debootstrap --second-stage >>"$tmp/debootstrap.out" 2>&1; then
      tail -n 30 "$tmp/debootstrap.out" >&2
      umount_below "$tmp/rootfs"; rm -rf "$tmp"
      die "debootstrap --second-stage failed under $QEMU"
    fi
    rm -f "$tmp/rootfs/usr/bin/$QEMU"
  fi
  umount_below "$tmp/rootfs"
  T_DEBOOTSTRAP=$(( $(now_ms) - t0 ))
  echo "$epoch" >"$tmp/epoch"
  printf 'suite=%s\nvariant=%s\narch=%s\nmirror=%s\ndate=%s\ndebootstrap_ms=%s\n' \
    "$SUITE" "$VARIANT" "$ARCH" "$MIRROR" "$date" "$T_DEBOOTSTRAP" >"$tmp/info"
  rm -rf "$CACHE"
  mv "$tmp" "$CACHE"
  trap - EXIT
  log "debootstrap took $((T_DEBOOTSTRAP / 1000)).$(printf '%03d' $((T_DEBOOTSTRAP % 1000)))s"
}
umount_below() {
  # debootstrap mounts proc/sys (and maybe dev bits) in the target; never pack or rm -rf them
  local m
  for m in $(awk -v p="$(realpath "$1")/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}

if [ "$ARCH" != "$HOST_ARCH" ] && { [ -n "$REFRESH" ] || [ ! -f "$CACHE/epoch" ]; }; then
  # a foreign arch needs its second stage run under user-mode qemu via binfmt_misc
  if ! command -v "$QEMU" >/dev/null 2>&1 || [ ! -e "/proc/sys/fs/binfmt_misc/$BINFMT" ]; then
    die "--arch $ARCH on a $HOST_ARCH host needs qemu-user-static ($QEMU) with the $BINFMT binfmt_misc handler registered
  (apt-get install qemu-user-static binfmt-support; inside a container the HOST kernel must have it).
  Without it only 'debootstrap --foreign' (stage one) can run, and that tree is not a usable image:
  nothing is configured (no /etc/passwd, an empty dpkg database, no maintainer scripts run)."
  fi
fi
if [ -n "$REFRESH" ] || [ ! -f "$CACHE/epoch" ]; then
  fill_cache
else
  log "using cached debootstrap output $CACHE ($(sed -n 's/^date=//p' "$CACHE/info"))"
fi
SDE=${SOURCE_DATE_EPOCH:-$(cat "$CACHE/epoch")}
[[ "$SDE" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be an integer, not '$SDE'"

# ---- working copy, cleaned like the official images ----
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d "$OUT/.build.XXXXXX")
cleanup() { umount_below "$TMP" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
T0=$(now_ms)
R=$TMP/rootfs
cp -a --reflink=auto "$CACHE/rootfs" "$R"

# not part of an image: the kernel filesystems' contents (a runtime mounts them), device nodes
# (runtimes make /dev a tmpfs; official images ship an empty /dev), debootstrap's leftovers
find "$R/proc" "$R/sys" "$R/dev" -mindepth 1 -delete 2>/dev/null || true
rm -rf "$R/debootstrap"
# apt: package lists and caches (apt-get update restores them)
# (apt-get recreates lists/partial and cache/apt/archives/partial itself; the official images
# ship both dirs empty, as here)
find "$R/var/lib/apt/lists" "$R/var/cache/apt" -mindepth 1 -delete
# logs carry build-time timestamps
rm -f "$R/var/log/dpkg.log" "$R/var/log/bootstrap.log" "$R/var/log/alternatives.log" \
      "$R/var/log/apt/history.log" "$R/var/log/apt/term.log" "$R/var/log/apt/eipp.log.xz"
rm -f "$R/var/cache/ldconfig/aux-cache" "$R/run/mount/utab"
rmdir "$R/run/mount" 2>/dev/null || true
# per-machine identity: a container gets its own
rm -f "$R/etc/machine-id" "$R/var/lib/dbus/machine-id"
printf 'localhost\n' >"$R/etc/hostname"
rm -f "$R/etc/resolv.conf"; : >"$R/etc/resolv.conf"  # the runtime bind-mounts the real one
chmod 0644 "$R/etc/hostname" "$R/etc/resolv.conf"
# shadow "last changed" must not depend on the build day
for f in etc/shadow etc/shadow-; do
  [ -f "$R/$f" ] || continue
  awk -F: -v OFS=: -v d=$((SDE / 86400)) '$3 > d { $3 = d } { print }' "$R/$f" >"$TMP/shadow.new"
  cat "$TMP/shadow.new" >"$R/$f"   # keep the file's owner and mode
done
rm -f "$TMP/shadow.new"
# the container-friendly defaults the official images ship
printf '#!/bin/sh\n# no services are started inside an image build or a container\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"
printf '# images are rebuilt, not power-cycled: skip the fsyncs\nforce-unsafe-io\n' >"$R/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
printf '# do not keep downloaded packages or the binary caches in the image\nDPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\nAPT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' >"$R/etc/apt/apt.conf.d/docker-clean"
printf 'Acquire::GzipIndexes "true";\n' >"$R/etc/apt/apt.conf.d/docker-gzip-indexes"
printf 'Acquire::Languages "none";\n' >"$R/etc/apt/apt.conf.d/docker-no-languages"
printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$R/etc/apt/apt.conf.d/docker-autoremove-suggests"
chmod 0644 "$R/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" "$R"/etc/apt/apt.conf.d/docker-*
# the image's sources: the same mirror it was built from
if [ ! -s "$R/etc/apt/sources.list.d/debian.sources" ]; then
  rm -f "$R/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$MIRROR" "$SUITE" "$SUITE" "${MIRROR%/debian}/debian-security" "$SUITE" >"$R/etc/apt/sources.list.d/debian.sources"
  chmod 0644 "$R/etc/apt/sources.list.d/debian.sources"
fi
chown 0:0 "$R"; chmod 0755 "$R"

# ---- layer: reproducible tar, gzip -n ----
L=$TMP/oci
mkdir -p "$L/blobs/sha256"
tar -C "$R" --sort=name --mtime=@"$SDE" --clamp-mtime --numeric-owner \
    --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -cf "$TMP/layer.tar" .
DIFF_ID=$(sha256sum "$TMP/layer.tar" | cut -d' ' -f1)
TAR_SIZE=$(stat -c %s "$TMP/layer.tar")
gzip -n -6 -c "$TMP/layer.tar" >"$TMP/layer.tar.gz"
LAYER=$(sha256sum "$TMP/layer.tar.gz" | cut -d' ' -f1)
GZ_SIZE=$(stat -c %s "$TMP/layer.tar.gz")
mv "$TMP/layer.tar.gz" "$L/blobs/sha256/$LAYER"
rm -f "$TMP/layer.tar"
FILES=$(find "$R" -mindepth 1 | wc -l)
rm -rf "$R"

# ---- config, manifest, index ----
MANIFEST=$(node - "$L" "$LAYER" "$DIFF_ID" "$ARCH" "$SDE" "$TAG" "$SUITE" "$MIRROR" <<'JS'
const fs = require('fs');
const crypto = require('crypto');
const [dir, layer, diffId, architecture, epoch, tag, suite, mirror] = process.argv.slice(2);
const blob = (obj) => {
  const buf = Buffer.from(JSON.stringify(obj));
  const digest = crypto.createHash('sha256').update(buf).digest('hex');
  fs.writeFileSync(`${dir}/blobs/sha256/${digest}`, buf);
  return { digest: `sha256:${digest}`, size: buf.length };
};
const created = new Date(Number(epoch) * 1000).toISOString().replace(/\.000Z$/, 'Z');
const platform = { architecture, os: 'linux', ...(architecture === 'arm64' ? { variant: 'v8' } : {}) };
const config = blob({
  created, ...platform,
  config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
  rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
  history: [{ created, created_by: `tsrun images/debian/build.sh: debootstrap --variant=minbase ${suite} ${mirror}` }],
});
const layerSize = fs.statSync(`${dir}/blobs/sha256/${layer}`).size;
const manifest = blob({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layer}`, size: layerSize }],
});
fs.writeFileSync(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
fs.writeFileSync(`${dir}/index.json`, JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{
    mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest,
    platform,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  }],
}));
process.stdout.write(`${manifest.digest} ${config.digest}`);
JS
)
MANIFEST_DIGEST=${MANIFEST% *}
CONFIG_DIGEST=${MANIFEST#* }

# ---- oci-archive ----
tar -C "$L" --sort=name --mtime=@"$SDE" --owner=0 --group=0 --numeric-owner \
    -cf "$TMP/debian-oci.tar" oci-layout index.json blobs

rm -rf "$OUT/oci"
mv "$L" "$OUT/oci"
mv "$TMP/debian-oci.tar" "$OUT/debian-oci.tar"
T_PACK=$(( $(now_ms) - T0 ))
cat >"$OUT/image.env" <<EOF
# written by images/debian/build.sh
IMAGE_TAG=$TAG
IMAGE_ARCH=$ARCH
IMAGE_MANIFEST=$MANIFEST_DIGEST
IMAGE_CONFIG=$CONFIG_DIGEST
IMAGE_LAYER=sha256:$LAYER
IMAGE_LAYER_SIZE=$GZ_SIZE
IMAGE_DIFF_ID=sha256:$DIFF_ID
IMAGE_TAR_SIZE=$TAR_SIZE
IMAGE_FILES=$FILES
SOURCE_DATE_EPOCH=$SDE
DEBOOTSTRAP_MS=$T_DEBOOTSTRAP
PACK_MS=$T_PACK
EOF
fmt_ms() { echo "$(( $1 / 1000 )).$(printf '%03d' $(( $1 % 1000 )))s"; }
log "debootstrap: $([ "$T_DEBOOTSTRAP" = cached ] && echo cached || fmt_ms "$T_DEBOOTSTRAP"), clean+pack: $(fmt_ms "$T_PACK")"
echo "wrote $OUT/oci ($ARCH, tag $TAG, manifest $MANIFEST_DIGEST, layer sha256:$LAYER: $GZ_SIZE bytes gzip, $TAR_SIZE bytes tar, $FILES entries) and $OUT/debian-oci.tar"
