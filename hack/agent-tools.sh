#!/usr/bin/env bash
# Installs what building palisade-agent needs: its kernel programs are C compiled by clang
# for the BPF target, and libbpf (built from source by the libbpf-sys crate) needs libelf
# and zlib. Every cargo build of the workspace compiles them, so lint and unit depend on it.
#
#   hack/agent-tools.sh          install what is missing (needs root or sudo)
#   hack/agent-tools.sh --check  exit 1, naming what is missing, without installing
set -euo pipefail

# file or command : Debian package
NEEDS=(
  clang:clang
  llvm-strip:llvm
  pkg-config:pkg-config
  /usr/include/libelf.h:libelf-dev
  /usr/include/zlib.h:zlib1g-dev
)

missing=()
for spec in "${NEEDS[@]}"; do
  what=${spec%%:*} pkg=${spec#*:}
  if [[ $what == /* ]]; then
    [[ -e $what ]] || missing+=("$pkg")
  else
    command -v "$what" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done

if [[ ${1:-} == --check ]]; then
  if ((${#missing[@]} > 0)); then
    echo "agent-tools: missing Debian packages: ${missing[*]} (run hack/agent-tools.sh)" >&2
    exit 1
  fi
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: hack/agent-tools.sh [--check]" >&2; exit 2; }
((${#missing[@]} > 0)) || exit 0

as_root() {
  if ((EUID == 0)); then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else echo "agent-tools: installing ${missing[*]} needs root or sudo" >&2; exit 1
  fi
}
install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "$@"
}
echo "agent-tools: installing ${missing[*]}" >&2
log=$(mktemp)
# A fresh machine may have empty package lists: update once, then retry.
if ! install "${missing[@]}" >"$log" 2>&1; then
  as_root apt-get update >>"$log" 2>&1
  install "${missing[@]}" >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
fi
rm -f "$log"
