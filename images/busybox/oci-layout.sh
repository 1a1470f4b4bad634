#!/usr/bin/env bash
# Pack the busybox rootfs built by build.sh as an OCI image layout + oci-archive, offline.
#
#   images/busybox/oci-layout.sh OUTDIR [--multi-arch]
#
# Reads OUTDIR/rootfs (runs build.sh OUTDIR first if it is missing) and writes:
#   OUTDIR/oci/             OCI image layout: oci-layout, index.json, blobs/sha256/*
#                           one gzip layer, image config with Cmd ["sh"] and a PATH env,
#                           index.json annotations org.opencontainers.image.ref.name=latest and
#                           io.containerd.image.name=localhost/busybox:latest (its name for
#                           `tsrun load` and `ctr image import`; podman names it localhost/latest)
#   OUTDIR/busybox-oci.tar  the same layout as a tar (an "oci-archive"), for
#                             podman load -i OUTDIR/busybox-oci.tar
#                             ctr image import --base-name localhost/busybox OUTDIR/busybox-oci.tar
# Uses only tar, gzip, sha256sum and node. The output is reproducible (sorted entries,
# mtime 0, numeric root ownership, gzip -n), so re-running gives identical digests.
#
# --multi-arch: "latest" is an image index (index.json -> index blob -> two manifests) for
# linux/amd64 and linux/arm64/v8. The amd64 manifest is byte-identical to the single-arch one.
# The arm64 image is the same rootfs with Debian's arm64 busybox-static binary in /bin/busybox
# (applet links from the host busybox: the same package version is requested). The arm64 .deb is
# fetched with `apt-get download` against a PRIVATE apt state (own sources list, lists dir, dpkg
# status and cache, APT::Architecture=arm64) in a temp dir: no `dpkg --add-architecture`, the
# host's apt state is untouched. It is cached in <repo>/.cache/images/busybox-static-arm64/
# (TSRUN_IMAGE_CACHE overrides the cache root), or taken from BUSYBOX_ARM64_DEB=/path/to.deb.
# If it cannot be had (no mirror reachable and nothing cached), the arm64 entry is SYNTHESISED:
# the amd64 rootfs under a config that says arm64 (so it only serves platform-resolution tests);
# the script warns and the descriptor carries the annotation org.tsrun.synthetic=amd64-binaries.
# Multi-arch additionally needs apt-get and dpkg-deb.
set -euo pipefail

die() { echo "oci-layout.sh: $*" >&2; exit 1; }
warn() { echo "oci-layout.sh: $*" >&2; }
usage() { die "usage: $0 OUTDIR [--multi-arch]"; }
OUTARG= MULTI=
while [ $# -gt 0 ]; do
  case "$1" in
    --multi-arch) MULTI=1; shift ;;
    -*) usage ;;
    *) [ -z "$OUTARG" ] || usage; OUTARG=$1; shift ;;
  esac
done
[ -n "$OUTARG" ] || usage
for t in tar gzip sha256sum node; do command -v "$t" >/dev/null 2>&1 || die "'$t' is required"; done

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
mkdir -p "$OUTARG"
OUT=$(cd "$OUTARG" && pwd)
[ -x "$OUT/rootfs/bin/busybox" ] || "$HERE/build.sh" "$OUT"

TMP=$(mktemp -d "$OUT/.oci.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
L=$TMP/oci
mkdir -p "$L/blobs/sha256"

# ---- layer: reproducible tar of a rootfs, gzip'd; prints "<layer hex> <diff_id hex>" ----
pack_layer() {
  local root=$1 diff layer
  tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
      --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
      -cf "$TMP/layer.tar" .
  diff=$(sha256sum "$TMP/layer.tar" | cut -d' ' -f1)
  gzip -n -6 -c "$TMP/layer.tar" > "$TMP/layer.tar.gz"
  layer=$(sha256sum "$TMP/layer.tar.gz" | cut -d' ' -f1)
  mv "$TMP/layer.tar.gz" "$L/blobs/sha256/$layer"
  rm -f "$TMP/layer.tar"
  echo "$layer $diff"
}

# ---- the arm64 busybox-static .deb, without touching the host's apt configuration ----
# The bookworm source from /etc/apt/sources.list{,.d} (deb822 or one-line): "URI<TAB>signed-by"
. "$HERE/../lib/apt-mirror.sh"  # find_mirror SUITE
fetch_arm64_deb() {   # prints the path of the .deb, or fails
  if [ -n "${BUSYBOX_ARM64_DEB:-}" ]; then
    [ -f "$BUSYBOX_ARM64_DEB" ] || return 1
    echo "$BUSYBOX_ARM64_DEB"; return 0
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  local cache=${TSRUN_IMAGE_CACHE:-$REPO/.cache/images}/busybox-static-arm64
  local want line mirror signed A deb
  # the host's busybox-static version (same applets), else whatever the mirror has
  want=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true)
  if [ -n "$want" ]; then
    deb=$(ls "$cache"/busybox-static_"${want//:/%3a}"_arm64.deb 2>/dev/null | head -n1 || true)
  else
    deb=$(ls "$cache"/busybox-static_*_arm64.deb 2>/dev/null | head -n1 || true)
  fi
  if [ -n "$deb" ]; then echo "$deb"; return 0; fi
  line=$(find_mirror bookworm)
  [ -n "$line" ] || { warn "no bookworm source in /etc/apt/sources.list{,.d}"; return 1; }
  mirror=${line%%$'\t'*} signed=${line#*$'\t'}
  A=$TMP/apt
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/sources.list.d" "$A/preferences.d" "$A/dl"
  printf 'deb [arch=arm64%s] %s bookworm main\n' "${signed:+ signed-by=$signed}" "$mirror" > "$A/sources.list"
  : > "$A/status"
  local o=(-q -o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts="$A/sources.list.d"
           -o Dir::Etc::Preferences="$A/preferences" -o Dir::Etc::PreferencesParts="$A/preferences.d"
           -o Dir::State::Lists="$A/lists" -o Dir::State::status="$A/status" -o Dir::Cache="$A/cache"
           -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Acquire::Languages=none
           -o APT::Sandbox::User=root -o Debug::NoLocking=1)
  apt-get "${o[@]}" update >"$A/update.log" 2>&1 || { warn "private apt-get update (arm64) failed: $(tail -n 3 "$A/update.log")"; return 1; }
  ( cd "$A/dl" && { { [ -n "$want" ] && apt-get "${o[@]}" download "busybox-static=$want"; } \
                    || apt-get "${o[@]}" download busybox-static; } ) >"$A/download.log" 2>&1 \
    || { warn "apt-get download busybox-static (arm64) failed: $(tail -n 3 "$A/download.log")"; return 1; }
  deb=$(ls "$A"/dl/busybox-static_*_arm64.deb 2>/dev/null | head -n1)
  [ -n "$deb" ] || return 1
  mkdir -p "$cache"
  cp "$deb" "$cache/" && echo "$cache/$(basename "$deb")"
}

# ---- packing ----
P=$(pack_layer "$OUT/rootfs"); LAYER=${P% *} DIFF_ID=${P#* }
HOST_ARCH=$(node -p '({ x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" })[process.arch] || process.arch')
IMAGES=("$HOST_ARCH::$LAYER:$DIFF_ID:")   # arch:variant:layer:diff_id:synthetic
if [ -n "$MULTI" ]; then
  [ "$HOST_ARCH" = amd64 ] || die "--multi-arch is written for an amd64 host (this is $HOST_ARCH)"
  command -v dpkg-deb >/dev/null 2>&1 || die "--multi-arch needs dpkg-deb"
  SYNTH=
  if DEB=$(fetch_arm64_deb) && [ -n "$DEB" ]; then
    R=$TMP/rootfs-arm64
    cp -a "$OUT/rootfs" "$R"
    mkdir -p "$TMP/deb"
    dpkg-deb -x "$DEB" "$TMP/deb"
    BB=$TMP/deb/bin/busybox; [ -f "$BB" ] || BB=$TMP/deb/usr/bin/busybox
    [ -f "$BB" ] || die "$DEB has no bin/busybox"
    if command -v file >/dev/null 2>&1; then
      file -L "$BB" | grep -q 'ARM aarch64' || die "$DEB: bin/busybox is not an aarch64 binary"
    fi
    cp "$BB" "$R/bin/busybox" && chmod 0755 "$R/bin/busybox"
    HOSTV=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
    DEBV=$(dpkg-deb -f "$DEB" Version)
    [ "$HOSTV" = "$DEBV" ] || warn "arm64 busybox-static $DEBV differs from the host's $HOSTV: applet links come from the host's"
    P=$(pack_layer "$R"); L2=${P% *} D2=${P#* }
    rm -rf "$R" "$TMP/deb"
  else
    SYNTH=1
    warn "WARNING: could not get Debian's arm64 busybox-static; the linux/arm64/v8 entry is SYNTHESISED"
    warn "         from the amd64 rootfs (amd64 binaries under an arm64 config): good for platform"
    warn "         resolution tests only, it will not run on arm64"
    L2=$LAYER D2=$DIFF_ID
  fi
  IMAGES+=("arm64:v8:$L2:$D2:$SYNTH")
fi

# ---- configs, manifests, index (node writes JSON and the blobs) ----
node - "$L" "${IMAGES[@]}" <<'JS'
const fs = require('fs');
const crypto = require('crypto');
const [dir, ...images] = process.argv.slice(2);
const blob = (obj) => {
  const buf = Buffer.from(JSON.stringify(obj));
  const digest = crypto.createHash('sha256').update(buf).digest('hex');
  fs.writeFileSync(`${dir}/blobs/sha256/${digest}`, buf);
  return { digest: `sha256:${digest}`, size: buf.length };
};
const created = '1970-01-01T00:00:00Z';
const manifests = images.map((spec) => {
  const [architecture, variant, layer, diffId, synthetic] = spec.split(':');
  // key order kept as in the single-arch layout, so its digests do not change
  const config = blob({
    created, architecture, ...(variant ? { variant } : {}), os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created, created_by: 'tsrun images/busybox/build.sh (Debian busybox-static)' }],
  });
  const layerSize = fs.statSync(`${dir}/blobs/sha256/${layer}`).size;
  const manifest = blob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layer}`, size: layerSize }],
  });
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest,
    platform: { architecture, os: 'linux', ...(variant ? { variant } : {}) },
    ...(synthetic ? { annotations: { 'org.tsrun.synthetic': 'amd64-binaries' } } : {}),
  };
});
// The tag, and the image's own name where engines look for one (containerd, tsrun load):
// loading the archive needs no -t to be called localhost/busybox.
const ref = { 'org.opencontainers.image.ref.name': 'latest', 'io.containerd.image.name': 'localhost/busybox:latest' };
let top;
if (manifests.length === 1) {
  top = { ...manifests[0], annotations: ref };
} else {
  const index = blob({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });
  top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...index, annotations: ref };
}
fs.writeFileSync(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
fs.writeFileSync(`${dir}/index.json`, JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [top],
}));
JS

# ---- oci-archive: a plain tar of the layout ----
tar -C "$L" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -cf "$TMP/busybox-oci.tar" oci-layout index.json blobs

rm -rf "$OUT/oci"
mv "$L" "$OUT/oci"
mv "$TMP/busybox-oci.tar" "$OUT/busybox-oci.tar"
if [ -n "$MULTI" ]; then
  echo "wrote $OUT/oci (index: linux/amd64 layer sha256:$LAYER, linux/arm64/v8 layer sha256:$L2${SYNTH:+ SYNTHETIC}) and $OUT/busybox-oci.tar"
else
  echo "wrote $OUT/oci (layer sha256:$LAYER) and $OUT/busybox-oci.tar"
fi
