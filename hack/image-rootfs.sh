#!/usr/bin/env bash
# Lays out the files of Palisade's images from release binaries and the Debian system they
# were built on: the Dockerfile's `rootfs` stage runs it in a Debian bookworm Rust image,
# and `make images` runs it on the build machine and hands the result to the same
# Dockerfile (buildah --build-context rootfs=OUT).
#
#   hack/image-rootfs.sh RELEASE_DIR OUT BINARY...
#
# OUT/bin/BINARY    each binary, stripped
# OUT/base/         what every image shares: the shared libraries the binaries load (from
#                   ldd) and the dynamic loader, CA certificates, os-release, passwd and
#                   group with the nonroot user 65532, and for every Debian package a file
#                   came from its dpkg stanza (var/lib/dpkg/status.d/, as distroless
#                   images have it) and copyright, so that scanners, Palisade's own
#                   included, see exactly which glibc and libgcc the image carries.
# Nothing else: no shell, no package manager.
set -euo pipefail

(($# >= 3)) || {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}
release=$1 out=$2
shift 2
for tool in ldd dpkg dpkg-query strip; do
  command -v "$tool" >/dev/null || { echo "image-rootfs: $tool is needed (a Debian system with binutils)" >&2; exit 1; }
done
[[ -f /etc/debian_version ]] || { echo "image-rootfs: needs the Debian system the binaries were built on" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/bin" "$out/base"
base=$out/base

# Debian bookworm is usr-merged: /lib and /lib64 are links into /usr, as in the image.
for d in lib lib64; do
  if [[ -L /$d ]]; then
    mkdir -p "$base/$(readlink "/$d")"
    ln -s "$(readlink "/$d")" "$base/$d"
  fi
done

declare -A copied=() packages=()
# The Debian package a file comes from; dpkg may know it by its /usr-less name.
owner_of() {
  local p
  for p in "$1" "${1#/usr}" "$(realpath "$1")"; do
    dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1 && return 0
  done
  return 0
}
# copy PATH: the file at PATH into the image at the same path (the /lib links above lead
# into usr/ as on the host). A symlink stays a link, and its target is copied too.
copy() {
  local p=$1 target pkg
  [[ -z ${copied[$p]:-} ]] || return 0
  copied[$p]=1
  mkdir -p "$base$(dirname "$p")"
  if [[ -L $p ]]; then
    cp -P "$p" "$base$p"
    target=$(readlink "$p")
    [[ $target == /* ]] || target=$(dirname "$p")/$target
    copy "$(realpath -s "$target")"
    return 0
  fi
  cp "$p" "$base$p"
  pkg=$(owner_of "$p")
  if [[ -n $pkg ]]; then packages[$pkg]=1; fi
}

for bin in "$@"; do
  [[ -x $release/$bin ]] || { echo "image-rootfs: no binary $release/$bin (cargo build --release first)" >&2; exit 1; }
  strip -o "$out/bin/$bin" "$release/$bin"
  # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and the loader's own line.
  while read -r lib; do
    copy "$lib"
  done < <(ldd "$release/$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
done

copy /etc/ssl/certs/ca-certificates.crt
packages[ca-certificates]=1
copy /etc/os-release

mkdir -p "$base/etc" "$base/var/lib/dpkg/status.d" "$base/usr/share/doc"
cat >"$base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$base/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
for pkg in "${!packages[@]}"; do
  dpkg-query -s "$pkg" | grep -v '^Conffiles:\|^ /' >"$base/var/lib/dpkg/status.d/$pkg"
  if [[ -f /usr/share/doc/$pkg/copyright ]]; then
    mkdir -p "$base/usr/share/doc/$pkg"
    cp "/usr/share/doc/$pkg/copyright" "$base/usr/share/doc/$pkg/copyright"
  fi
done
# The same bytes give the same layer digests from one build to the next.
find "$out" -exec touch -h -d @0 {} +
printf 'image-rootfs: %s; Debian packages: %s\n' "$*" "$(printf '%s ' "${!packages[@]}" | xargs -n1 | sort | xargs)" >&2
