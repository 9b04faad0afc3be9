#!/usr/bin/env bash
# Installs the Debian tools the scanner's tests run for real: rpm (version comparison
# and rpm databases), db5.3-util (Berkeley DB rpm databases, written by db5.3_load),
# docker-registry (the OCI registry), umoci and skopeo (images built
# without Docker), debootstrap (a Debian root filesystem with a real dpkg database),
# lua5.1 (Argo CD's health checks, config/argocd/health/*.lua, run on sample objects), and
# for the runtime-rule tests' workload image (hack/runtime-test-image.sh) busybox-static,
# gcc and libc6-dev (a static C program), and golang-go (a Go program in the images
# hack/coverage-images.sh lays out).
#
#   hack/scan-tools.sh          install what is missing (needs root or sudo), then list versions
#   hack/scan-tools.sh --check  exit 1, naming what is missing, without installing
set -euo pipefail

# command:package (a command, or an absolute path that must exist)
TOOLS=(
  rpm:rpm
  db5.3_load:db5.3-util
  dpkg:dpkg
  docker-registry:docker-registry
  umoci:umoci
  skopeo:skopeo
  debootstrap:debootstrap
  htpasswd:apache2-utils
  lua5.1:lua5.1
  /bin/busybox:busybox-static
  gcc:gcc
  go:golang-go
  /usr/include/stdio.h:libc6-dev
)

missing=()
for spec in "${TOOLS[@]}"; do
  cmd=${spec%%:*} pkg=${spec#*:}
  if [[ $cmd == /* ]]; then
    [[ -e $cmd ]] || missing+=("$pkg")
  else
    PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done

if [[ ${1:-} == --check ]]; then
  if ((${#missing[@]} > 0)); then
    echo "scan-tools: missing Debian packages: ${missing[*]} (run hack/scan-tools.sh)" >&2
    exit 1
  fi
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: hack/scan-tools.sh [--check]" >&2; exit 2; }

as_root() {
  if ((EUID == 0)); then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else echo "scan-tools: installing ${missing[*]} needs root or sudo" >&2; exit 1
  fi
}
install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "$@"
}

if ((${#missing[@]} > 0)); then
  echo "scan-tools: installing ${missing[*]}" >&2
  # A fresh machine may have empty package lists: update once, then retry.
  if ! install "${missing[@]}" >/tmp/scan-tools-apt.log 2>&1; then
    as_root apt-get update >>/tmp/scan-tools-apt.log 2>&1
    install "${missing[@]}" >>/tmp/scan-tools-apt.log 2>&1 || {
      tail -20 /tmp/scan-tools-apt.log >&2
      exit 1
    }
  fi
fi
