#!/usr/bin/env bash
# Build a minimal OCI bundle (rootfs + config.json) from Debian's busybox-static, offline.
#
#   images/busybox/build.sh OUTDIR
#
# Produces:
#   OUTDIR/rootfs       bin/busybox + one symlink per applet (busybox --list, in /bin),
#                       etc/{passwd,group}, tmp (1777), proc, sys, dev, root
#   OUTDIR/config.json  `tsrun-oci spec` output edited to run /bin/echo "hello from tsrun",
#                       terminal=false, with a PATH env.
#
# Idempotent: the rootfs is rebuilt from scratch in a temp dir and swapped in; config.json
# is regenerated every time. Needs: busybox-static (/bin/busybox), a built tsrun-oci (or runc)
# for the starter spec,
# node or jq (to edit config.json).
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
OUT=$1

BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: install Debian's busybox-static (apt-get install busybox-static)"
# the dynamic 'busybox' package also installs /bin/busybox; we need the static one
if command -v file >/dev/null 2>&1; then
  file -L "$BUSYBOX" | grep -q 'statically linked' \
    || die "$BUSYBOX is not statically linked: install busybox-static (not busybox)"
elif command -v ldd >/dev/null 2>&1 && ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked: install busybox-static (not busybox)"
fi
# The starter config.json comes from our own `tsrun-oci spec`; runc's works too.
HERE=$(cd "$(dirname "$0")" && pwd)
SPEC_TOOL=${SPEC_TOOL:-$HERE/../../dist/bin/tsrun-oci}
[ -x "$SPEC_TOOL" ] || SPEC_TOOL=$(command -v runc || true)
[ -n "$SPEC_TOOL" ] && [ -x "$SPEC_TOOL" ] || die "no spec tool: build tsrun (npm run build) or install runc"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---- rootfs, built next to the target then swapped in (idempotent, never half-built) ----
TMP=$(mktemp -d "$OUT/.rootfs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
R=$TMP/rootfs
mkdir -p "$R"/{bin,etc,proc,sys,dev,root,tmp}
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
cp "$BUSYBOX" "$R/bin/busybox" && chmod 0755 "$R/bin/busybox"  # busybox cp: also works in the test VM
# every applet as a relative symlink in /bin (busybox runs applets by argv[0] basename)
"$BUSYBOX" --list | while IFS= read -r applet; do
  if [ -n "$applet" ] && [ "$applet" != busybox ]; then ln -sf busybox "$R/bin/$applet"; fi
done
cat > "$R/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$R/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
G
chmod 0644 "$R/etc/passwd" "$R/etc/group"

rm -rf "$OUT/rootfs"
mv "$R" "$OUT/rootfs"

# ---- config.json via `tsrun-oci spec`, then edited ----
rm -f "$TMP/config.json"
( cd "$TMP" && "$SPEC_TOOL" spec )
if command -v node >/dev/null 2>&1; then
  node -e '
    const fs = require("fs");
    const [src, dst] = process.argv.slice(1);
    const c = JSON.parse(fs.readFileSync(src, "utf8"));
    c.root = { path: "rootfs", readonly: true };
    c.process.terminal = false;
    c.process.args = ["/bin/echo", "hello from tsrun"];
    c.process.env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"];
    c.process.cwd = "/";
    c.hostname = "tsrun";
    fs.writeFileSync(dst, JSON.stringify(c, null, 2) + "\n");
  ' "$TMP/config.json" "$OUT/config.json.tmp"
elif command -v jq >/dev/null 2>&1; then
  jq '.root = {path:"rootfs", readonly:true}
      | .process.terminal = false
      | .process.args = ["/bin/echo","hello from tsrun"]
      | .process.env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOME=/root"]
      | .process.cwd = "/" | .hostname = "tsrun"' "$TMP/config.json" > "$OUT/config.json.tmp"
else
  die "need node or jq to edit config.json"
fi
mv "$OUT/config.json.tmp" "$OUT/config.json"

echo "built $OUT/rootfs ($(ls "$OUT/rootfs/bin" | wc -l) entries in /bin) and $OUT/config.json"
