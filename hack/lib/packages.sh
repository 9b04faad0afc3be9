# shellcheck shell=bash
# Language packages from the registries, downloaded once and cached by their pinned versions:
# shared by hack/coverage-images.sh and hack/mixed-image.sh; sourced, not run. The caller
# defines say() and die(), and LOG (where the tools' output goes).

# A short key for what is on standard input: cache directories are named by it.
key() { sha256sum | cut -c1-16; }

# pip's view of the target: wheels for CPython 3.11 (Debian bookworm's) on manylinux x86_64,
# never built from source.
PIP_TARGET=(--only-binary=:all: --no-deps --python-version 3.11 --implementation cp
  --abi cp311 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

# pip_venv DL: a venv under DL whose pip downloads and installs the wheels; prints its path.
pip_venv() {
  local venv=$1/pip-venv
  [[ -x $venv/bin/pip ]] || python3 -m venv "$venv" >>"$LOG" 2>&1 || die "python3 -m venv failed (python3-venv?)"
  echo "$venv"
}

# pypi_wheels DL NAME==VERSION...: downloads the wheels (no dependencies: list them all) into
# a directory under DL keyed by the list, once; prints the directory.
pypi_wheels() {
  local dl=$1 venv dir
  shift
  venv=$(pip_venv "$dl")
  dir=$dl/pypi-$(printf '%s\n' "$@" | key)
  if [[ ! -f $dir/.complete ]]; then
    say "pip download $*"
    rm -rf "$dir"
    "$venv/bin/pip" download -q -d "$dir" "${PIP_TARGET[@]}" "$@" >>"$LOG" 2>&1 ||
      die "pip download failed (log: $LOG)"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# pypi_install DL WHEELS SITE_PACKAGES: installs every wheel of the directory WHEELS into
# SITE_PACKAGES, offline, as pip would into an image's interpreter.
pypi_install() {
  local venv
  venv=$(pip_venv "$1")
  "$venv/bin/pip" install -q --no-index --target "$3" "${PIP_TARGET[@]}" "$2"/*.whl >>"$LOG" 2>&1 ||
    die "pip install --target $3 failed (log: $LOG)"
}

# npm_tree DL FIXTURE: `npm ci` of FIXTURE's package.json and package-lock.json into a
# directory under DL keyed by both, once, with no install scripts (the packages' files are
# what is scanned, nothing is run); prints the directory (package.json, package-lock.json,
# node_modules).
npm_tree() {
  local dl=$1 fixture=$2 dir
  dir=$dl/npm-$(cat "$fixture/package.json" "$fixture/package-lock.json" | key)
  if [[ ! -f $dir/.complete ]]; then
    say "npm ci ($fixture/package-lock.json)"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$fixture/package.json" "$fixture/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --cache "$dl/npm-cache") >>"$LOG" 2>&1 ||
      die "npm ci in $dir failed (log: $LOG)"
    touch "$dir/.complete"
  fi
  echo "$dir"
}
