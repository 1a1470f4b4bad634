#!/usr/bin/env bash
# Pack the busybox rootfs built by build.sh as an OCI image layout + oci-archive, offline.
#
#   images/busybox/oci-layout.sh OUTDIR
#
# Reads OUTDIR/rootfs (runs build.sh OUTDIR first if it is missing) and writes:
#   OUTDIR/oci/             OCI image layout: oci-layout, index.json, blobs/sha256/*
#                           one gzip layer, image config with Cmd ["sh"] and a PATH env,
#                           index.json annotation org.opencontainers.image.ref.name=latest
#   OUTDIR/busybox-oci.tar  the same layout as a tar (an "oci-archive"), for
#                             podman load -i OUTDIR/busybox-oci.tar
#                             ctr image import --base-name localhost/busybox OUTDIR/busybox-oci.tar
# Uses only tar, gzip, sha256sum and node. The output is reproducible (sorted entries,
# mtime 0, numeric root ownership, gzip -n), so re-running gives identical digests.
set -euo pipefail

die() { echo "oci-layout.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 OUTDIR"
for t in tar gzip sha256sum node; do command -v "$t" >/dev/null 2>&1 || die "'$t' is required"; done

HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
[ -x "$OUT/rootfs/bin/busybox" ] || "$HERE/build.sh" "$OUT"

TMP=$(mktemp -d "$OUT/.oci.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
L=$TMP/oci
mkdir -p "$L/blobs/sha256"

# ---- layer: reproducible tar of the rootfs, gzip'd ----
tar -C "$OUT/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -cf "$TMP/layer.tar" .
DIFF_ID=$(sha256sum "$TMP/layer.tar" | cut -d' ' -f1)
gzip -n -6 -c "$TMP/layer.tar" > "$TMP/layer.tar.gz"
LAYER=$(sha256sum "$TMP/layer.tar.gz" | cut -d' ' -f1)
mv "$TMP/layer.tar.gz" "$L/blobs/sha256/$LAYER"
rm -f "$TMP/layer.tar"

# ---- config, manifest, index (node writes JSON and the blobs, returns nothing) ----
node - "$L" "$LAYER" "$DIFF_ID" <<'JS'
const fs = require('fs');
const crypto = require('crypto');
const [dir, layer, diffId] = process.argv.slice(2);
const archMap = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const architecture = archMap[process.arch] || process.arch;
const blob = (obj) => {
  const buf = Buffer.from(JSON.stringify(obj));
  const digest = crypto.createHash('sha256').update(buf).digest('hex');
  fs.writeFileSync(`${dir}/blobs/sha256/${digest}`, buf);
  return { digest: `sha256:${digest}`, size: buf.length };
};
const created = '1970-01-01T00:00:00Z';
const config = blob({
  created, architecture, os: 'linux',
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
fs.writeFileSync(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
fs.writeFileSync(`${dir}/index.json`, JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{
    mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest,
    platform: { architecture, os: 'linux' },
    annotations: { 'org.opencontainers.image.ref.name': 'latest' },
  }],
}));
JS

# ---- oci-archive: a plain tar of the layout ----
tar -C "$L" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -cf "$TMP/busybox-oci.tar" oci-layout index.json blobs

rm -rf "$OUT/oci"
mv "$L" "$OUT/oci"
mv "$TMP/busybox-oci.tar" "$OUT/busybox-oci.tar"
echo "wrote $OUT/oci (layer sha256:$LAYER) and $OUT/busybox-oci.tar"
