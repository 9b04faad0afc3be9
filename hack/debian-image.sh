#!/usr/bin/env bash
# Builds a Debian image without Docker, for the scanner's tests and benchmarks:
# debootstrap (minbase) makes a root filesystem with a real dpkg database, umoci packs it
# into an OCI image layout. The layout is cached under ~/.cache/palisade/images and reused.
#
#   hack/debian-image.sh [SUITE]     print the OCI layout's path (building it if missing);
#                                    the image is tagged SUITE inside the layout (default bookworm),
#                                    and LAYOUT/dpkg-status is a copy of its dpkg database
#
# Push it with: skopeo copy --dest-tls-verify=false oci:LAYOUT:SUITE docker://HOST/REPO:TAG
# Environment: PALISADE_DEBIAN_MIRROR (default: the mirror apt already uses).
set -euo pipefail

suite=${1:-bookworm}
cache=${PALISADE_CACHE:-$HOME/.cache/palisade}/images
layout=$cache/debian-$suite
log=$cache/debian-$suite.log

if [[ -f $layout/index.json && -f $layout/.complete && -f $layout/dpkg-status ]]; then
  echo "$layout"
  exit 0
fi

"$(dirname "$0")/scan-tools.sh" >&2
PATH=$PATH:/usr/sbin:/sbin
mkdir -p "$cache"
exec 9>"$cache/.debian-$suite.lock"
flock -w 1800 9 || { echo "debian-image: $cache/.debian-$suite.lock held for 30 minutes" >&2; exit 1; }
if [[ -f $layout/index.json && -f $layout/.complete && -f $layout/dpkg-status ]]; then
  echo "$layout"
  exit 0
fi

mirror=${PALISADE_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
  # shellcheck disable=SC2016 # $(...) is apt's format syntax
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
    awk -v s="$suite" '$2 == s { print $1; exit }') || true
  mirror=${mirror:-http://deb.debian.org/debian/}
fi

work=$(mktemp -d "$cache/.debian-$suite.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "debian-image: debootstrap --variant=minbase $suite from $mirror (log: $log)" >&2
if ! debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$log" 2>&1; then
  tail -20 "$log" >&2
  exit 1
fi
# Caches and logs are not part of an image.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/log/"*

# Kept beside the layout: tests compare the scanner's inventory with dpkg-query's view of it.
cp "$work/rootfs/var/lib/dpkg/status" "$work/dpkg-status"

echo "debian-image: packing with umoci" >&2
umoci init --layout "$work/layout" >>"$log" 2>&1
umoci new --image "$work/layout:$suite" >>"$log" 2>&1
umoci unpack --image "$work/layout:$suite" "$work/bundle" >>"$log" 2>&1
rm -rf "$work/bundle/rootfs"
mv "$work/rootfs" "$work/bundle/rootfs"
umoci repack --image "$work/layout:$suite" "$work/bundle" >>"$log" 2>&1
umoci config --image "$work/layout:$suite" --config.cmd /bin/bash \
  --os linux --architecture amd64 >>"$log" 2>&1
umoci gc --layout "$work/layout" >>"$log" 2>&1
mv "$work/dpkg-status" "$work/layout/dpkg-status"
touch "$work/layout/.complete"
rm -rf "$layout"
mv "$work/layout" "$layout"
echo "$layout"
