#!/usr/bin/env bash
# Lays out the files of Palisade's images from release binaries and the Debian system they
# were built on: the Dockerfile's `rootfs` stage runs it in a Debian bookworm Rust image,
# and `make images` runs it on the build machine and hands the result to the same
# Dockerfile (buildah --build-context rootfs=OUT).
#
#   hack/image-rootfs.sh RELEASE_DIR OUT BINARY...
#
# OUT/base/          what every image shares: the shared libraries all the binaries load
#                    (from ldd) and the dynamic loader, CA certificates, os-release, passwd
#                    and group with the nonroot user 65532, and for every Debian package a
#                    file came from its dpkg stanza (var/lib/dpkg/status.d/, as distroless
#                    images have it) and copyright, so that scanners, Palisade's own
#                    included, see exactly which glibc and libgcc the image carries.
# OUT/image/BINARY/  what only BINARY's image holds: the binary, stripped, at
#                    usr/local/bin/BINARY, and the libraries only it loads (the agent's
#                    libelf and zlib) with their packages' stanzas, so that the other
#                    images neither carry nor get scanned for what they never load.
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
mkdir -p "$out/base"

# Debian bookworm is usr-merged: /lib and /lib64 are links into /usr, as in the image.
for d in lib lib64; do
  if [[ -L /$d ]]; then
    mkdir -p "$out/base/$(readlink "/$d")"
    ln -s "$(readlink "/$d")" "$out/base/$d"
  fi
done

# The Debian package a file comes from; dpkg may know it by its /usr-less name.
owner_of() {
  local p
  for p in "$1" "${1#/usr}" "$(realpath "$1")"; do
    dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1 && return 0
  done
  return 0
}

# copy ROOT PATH: the file at PATH into ROOT at the same path, with the directories
# resolved (/lib/x86_64-linux-gnu is usr/lib/x86_64-linux-gnu: an image's own layer must
# not put a directory where the base has the /lib link). A symlink stays a link, and its
# target is copied too. Prints the Debian package the file came from.
copy() {
  local root=$1 p target
  p=$(realpath "$(dirname "$2")")/$(basename "$2")
  mkdir -p "$root$(dirname "$p")"
  if [[ -L $p ]]; then
    cp -P "$p" "$root$p"
    target=$(readlink "$p")
    [[ $target == /* ]] || target=$(dirname "$p")/$target
    copy "$root" "$target"
    return 0
  fi
  cp "$p" "$root$p"
  owner_of "$p"
}

# stanzas ROOT PACKAGE...: each package's dpkg stanza and copyright under ROOT.
stanzas() {
  local root=$1 pkg
  shift
  mkdir -p "$root/var/lib/dpkg/status.d"
  for pkg in "$@"; do
    dpkg-query -s "$pkg" | grep -v '^Conffiles:\|^ /' >"$root/var/lib/dpkg/status.d/$pkg"
    if [[ -f /usr/share/doc/$pkg/copyright ]]; then
      mkdir -p "$root/usr/share/doc/$pkg"
      cp "/usr/share/doc/$pkg/copyright" "$root/usr/share/doc/$pkg/copyright"
    fi
  done
}

# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and the loader's own line.
libs_of() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u
}

# How many of the binaries load each library: those all of them load go in the base.
declare -A loads=()
for bin in "$@"; do
  [[ -x $release/$bin ]] || { echo "image-rootfs: no binary $release/$bin (cargo build --release first)" >&2; exit 1; }
  while read -r lib; do
    loads[$lib]=$((${loads[$lib]:-0} + 1))
  done < <(libs_of "$release/$bin")
done

declare -A base_packages=()
for lib in "${!loads[@]}"; do
  ((loads[$lib] == $#)) || continue
  while read -r pkg; do base_packages[$pkg]=1; done < <(copy "$out/base" "$lib")
done
copy "$out/base" /etc/ssl/certs/ca-certificates.crt >/dev/null
base_packages[ca-certificates]=1
while read -r pkg; do base_packages[$pkg]=1; done < <(copy "$out/base" /etc/os-release)
mkdir -p "$out/base/etc"
cat >"$out/base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$out/base/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
stanzas "$out/base" "${!base_packages[@]}"
summary="base: $(printf '%s\n' "${!base_packages[@]}" | sort | xargs)"

for bin in "$@"; do
  root=$out/image/$bin
  mkdir -p "$root/usr/local/bin"
  strip -o "$root/usr/local/bin/$bin" "$release/$bin"
  own=()
  while read -r lib; do
    ((loads[$lib] == $#)) && continue
    while read -r pkg; do
      [[ -n $pkg && -z ${base_packages[$pkg]:-} ]] && own+=("$pkg")
    done < <(copy "$root" "$lib")
  done < <(libs_of "$release/$bin")
  mapfile -t own < <(printf '%s\n' "${own[@]}" | sed '/^$/d' | sort -u)
  ((${#own[@]} == 0)) || stanzas "$root" "${own[@]}"
  summary+="; $bin: +${own[*]:-nothing}"
done

# The same bytes give the same layer digests from one build to the next.
find "$out" -exec touch -h -d @0 {} +
printf 'image-rootfs: Debian packages: %s\n' "$summary" >&2
