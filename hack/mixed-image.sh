#!/usr/bin/env bash
# The mixed image hack/bench-scan.sh scans: the debootstrap Debian bookworm image
# (hack/debian-image.sh) with three layers of real packages on top, as an application
# image would have them:
#
#   debian-lang  Debian packages with Go binaries (etcd-server, docker-registry), Java jars
#                and Ruby gems, recorded in the image's dpkg database beside the base's; a Go
#                program built in module mode and a `cargo auditable` Rust program
#                (all from hack/coverage-images.sh's root filesystems)
#   python       site-packages: coverage-images.sh's wheels and a few large ones (PYPI below)
#   npm          /app: the node_modules of hack/mixed-image/npm (a few large toolchains,
#                `npm ci --ignore-scripts`), and /srv/api: coverage-images.sh's application
#
# Layers are gzip-compressed tars, as registries serve them (umoci raw add-layer).
#
#   hack/mixed-image.sh     print the OCI layout's path (building it if missing); the image
#                           is tagged `mixed` inside the layout, and LAYOUT/dpkg-status is a copy
#                           of its dpkg database (as with hack/debian-image.sh)
#
# Every version is pinned; downloads are cached under ~/.cache/palisade (hack/lib/packages.sh)
# and the layout under ~/.cache/palisade/images/mixed-KEY, KEY covering this script, its
# fixtures and the images it builds on, so an unchanged rerun builds nothing.
# Variables: PALISADE_CACHE (~/.cache/palisade), and those of coverage-images.sh.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
CACHE=${PALISADE_CACHE:-$HOME/.cache/palisade}
DL=$CACHE/coverage
FIXTURES=hack/mixed-image
# Wheels for CPython 3.11 on manylinux x86_64, with their dependencies (six comes from
# coverage-images.sh's list).
PYPI=(
  numpy==1.26.4
  pandas==2.2.2
  pillow==10.3.0
  python-dateutil==2.9.0.post0
  pytz==2024.1
  tzdata==2024.1
)
SITE_PACKAGES=usr/local/lib/python3.11/site-packages

say() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}
# shellcheck source=hack/lib/packages.sh
source "$REPO/hack/lib/packages.sh"

base=$(hack/debian-image.sh bookworm)
say "coverage images (hack/coverage-images.sh)"
coverage=$(hack/coverage-images.sh)
for name in debian-go java ruby rust python npm; do
  [[ -d $coverage/$name/rootfs ]] || die "no $coverage/$name/rootfs"
done

stamp=$( {
  cat "${BASH_SOURCE[0]}" "$REPO/hack/lib/packages.sh" "$FIXTURES/npm/package.json" "$FIXTURES/npm/package-lock.json"
  cat "$base/index.json" "$coverage/.complete"
} | key)
layout=$CACHE/images/mixed-$stamp
if [[ -f $layout/.complete ]]; then
  echo "$layout"
  exit 0
fi

mkdir -p "$CACHE/images"
exec 9>"$CACHE/images/.mixed.lock"
flock -w 1800 9 || die "$CACHE/images/.mixed.lock held for 30 minutes"
if [[ -f $layout/.complete ]]; then
  echo "$layout"
  exit 0
fi
work=$(mktemp -d "$CACHE/images/.mixed.XXXXXX")
trap 'rm -rf "$work"' EXIT
LOG=$work/build.log

wheels=$(pypi_wheels "$DL" "${PYPI[@]}")
npm_dir=$(npm_tree "$DL" "$FIXTURES/npm")

# --- debian-lang ------------------------------------------------------------------------
# The coverage images' Debian packages, minus base-files (the base has it), and the dpkg
# status file as dpkg would leave it: the base's entries, then theirs.
say "layer debian-lang"
stage=$work/debian-lang
mkdir -p "$stage"
for name in debian-go java ruby rust; do
  cp -a "$coverage/$name/rootfs/." "$stage/"
done
cp "$base/dpkg-status" "$stage/var/lib/dpkg/status"
for name in debian-go java ruby rust; do
  awk -v RS= -v ORS='\n\n' '$2 != "base-files"' "$coverage/$name/rootfs/var/lib/dpkg/status" >>"$stage/var/lib/dpkg/status"
done
# What base-files owns is the base layer's (directories stay: they are shared).
while read -r path; do
  if [[ -L $stage$path || ! -d $stage$path ]]; then rm -f "$stage$path"; fi
done <"$stage/var/lib/dpkg/info/base-files.list"
rm -f "$stage/var/lib/dpkg/info/base-files."*
cp "$stage/var/lib/dpkg/status" "$work/dpkg-status"

# --- python -----------------------------------------------------------------------------
say "layer python"
stage=$work/python
mkdir -p "$stage/$SITE_PACKAGES"
cp -a "$coverage/python/rootfs/$SITE_PACKAGES/." "$stage/$SITE_PACKAGES/"
pypi_install "$DL" "$wheels" "$stage/$SITE_PACKAGES"

# --- npm --------------------------------------------------------------------------------
say "layer npm"
stage=$work/npm
mkdir -p "$stage/app" "$stage/srv"
cp -a "$npm_dir/package.json" "$npm_dir/package-lock.json" "$npm_dir/node_modules" "$stage/app/"
cp -a "$coverage/npm/rootfs/app" "$stage/srv/api"

# --- the image --------------------------------------------------------------------------
say "packing (umoci raw add-layer, gzip)"
cp -a "$base" "$work/layout"
rm -f "$work/layout/.complete" "$work/layout/dpkg-status"
tag=bookworm
for name in debian-lang python npm; do
  tar -C "$work/$name" --sort=name --owner=0 --group=0 --numeric-owner -cf "$work/$name.tar" .
  umoci raw add-layer --image "$work/layout:$tag" --tag mixed \
    --history.created_by "hack/mixed-image.sh: $name" "$work/$name.tar" >>"$LOG" 2>&1 ||
    die "umoci raw add-layer $name failed: $(tail -5 "$LOG")"
  tag=mixed
  rm -rf "${work:?}/$name" "$work/$name.tar"
done
umoci gc --layout "$work/layout" >>"$LOG" 2>&1

mv "$work/dpkg-status" "$work/layout/dpkg-status"
touch "$work/layout/.complete"
rm -rf "$layout"
mv "$work/layout" "$layout"
# Older builds of the mixed image are superseded.
for old in "$CACHE/images"/mixed-*; do
  [[ $old == "$layout" ]] || rm -rf "$old"
done
say "mixed image in $layout"
echo "$layout"
