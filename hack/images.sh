#!/usr/bin/env bash
# `make images`: Palisade's images from the Dockerfile, built with buildah (no daemon) from
# release binaries built here, and pushed to a registry.
#
#   hack/images.sh [--registry HOST:PORT] [--tag TAG] [--no-push]
#
# --registry   where to push (default: $PALISADE_REGISTRY, else the registry of the local
#              cluster in .palisade/cluster); pushed over plain HTTP when it is the local
#              cluster's or on loopback
# --tag        image tag (default: <version>-<commit>, with -dirty when the tree has changes)
# --no-push    build only (into buildah's storage under target/buildah)
#
# Prints one line per image to stdout: REFERENCE DIGEST COMPRESSED_BYTES UNPACKED_BYTES;
# progress goes to stderr. Images: palisade-operator, palisade-webhook, palisade (the CLI),
# palisade-agent.
# The Dockerfile's build stage is replaced by hack/image-rootfs.sh's output, so nothing is
# pulled: the images hold this machine's Debian glibc, libgcc and CA certificates.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib/registry.sh
source hack/lib/registry.sh

readonly IMAGES=(palisade-operator palisade-webhook palisade palisade-agent)
say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

registry=${PALISADE_REGISTRY:-}
tag=""
push=true
while (($#)); do
  case $1 in
  --registry) registry=${2:?--registry needs HOST:PORT}; shift 2 ;;
  --tag) tag=${2:?--tag needs a value}; shift 2 ;;
  --no-push) push=false; shift ;;
  -h | --help) usage 0 ;;
  *) echo "images.sh: unknown argument $1" >&2; usage ;;
  esac
done
if $push && [[ -z $registry ]]; then
  env_file=.palisade/cluster/cluster.env
  [[ -f $env_file ]] && registry=$(sed -n 's/^REGISTRY=//p' "$env_file")
  [[ -n $registry ]] || die "no registry: pass --registry HOST:PORT, set PALISADE_REGISTRY, or start the local cluster (hack/local-cluster.sh up)"
fi
for tool in buildah skopeo; do
  command -v "$tool" >/dev/null || die "$tool is needed: apt-get install buildah skopeo"
done

version=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "palisade-operator"))')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -z $tag ]]; then
  tag="$version-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  [[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || tag+=-dirty
fi

hack/agent-tools.sh
say "building the release binaries"
cargo build --release --locked -p palisade-operator -p palisade-webhook -p palisade-cli -p palisade-agent >&2
say "laying out the images' files (hack/image-rootfs.sh)"
hack/image-rootfs.sh target/release target/image-rootfs "${IMAGES[@]}"

b=(buildah --root "$PWD/target/buildah/storage" --runroot "$PWD/target/buildah/run" --storage-driver vfs)
# The final stages copy nothing from the build context: an empty one spares buildah a walk
# of the whole repository.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
tls=()
plain_http_registry "$registry" && tls=(--tls-verify=false)

for image in "${IMAGES[@]}"; do
  ref="${registry:-localhost}/$image:$tag"
  say "buildah build --target $image -> $ref"
  "${b[@]}" build --quiet --file "$PWD/Dockerfile" --target "$image" \
    --build-context rootfs="$PWD/target/image-rootfs" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    --timestamp 0 --layers=false --tag "$ref" "$context" >/dev/null
  # Unpacked: the bytes of the files in its layers.
  uncompressed=$(($(du -sb --apparent-size target/image-rootfs/base | cut -f1) + $(du -sb --apparent-size "target/image-rootfs/image/$image" | cut -f1)))
  if $push; then
    "${b[@]}" push --quiet "${tls[@]}" --digestfile "$context/digest" "$ref" "docker://$ref" >&2
    digest=$(<"$context/digest")
    # What a node downloads: the compressed layers and the config, as the manifest lists them.
    compressed=$(skopeo inspect "${tls[@]}" --raw "docker://$ref" |
      python3 -c 'import json, sys; m = json.load(sys.stdin); print(m["config"]["size"] + sum(l["size"] for l in m["layers"]))')
  else
    digest=$("${b[@]}" inspect --type image --format '{{.FromImageDigest}}' "$ref")
    compressed=0
  fi
  printf '%s %s %s %s\n' "$ref" "$digest" "$compressed" "$uncompressed"
done
