#!/usr/bin/env bash
# The cluster tests, on ONE cluster:
#   1. the e2e suite (kubectl against a real kube-apiserver that calls the webhook, which the
#      operator registers; both run as local processes);
#   2. the operator's API-server tests (operator/tests/api_server);
#   3. the installed suite (e2e/tests/installed): the Helm chart with the images built by
#      hack/images.sh, in pods on the cluster's node.
#
# PALISADE_E2E_KUBECONFIG names the cluster (kind, EKS, a local one); the installed suite then
# also needs PALISADE_E2E_REGISTRY, a registry that cluster pulls from (the images are pushed
# there). Without PALISADE_E2E_KUBECONFIG, the local cluster (control plane, real node and
# registry) is started here and stopped however the run ends. The plain KUBECONFIG is never
# used, so `make test` cannot touch a real cluster by accident.
set -euo pipefail
cd "$(dirname "$0")/.."

threads=${E2E_TEST_THREADS:-4}
if [ -z "${PALISADE_E2E_KUBECONFIG:-}" ]; then
  dir=target/e2e-make-cluster
  trap 'hack/local-cluster.sh down --dir "$dir" >&2 || true' EXIT
  exports=$(hack/local-cluster.sh up --dir "$dir")
  eval "$exports"
  export PALISADE_E2E_KUBECONFIG="$KUBECONFIG"
  export PALISADE_E2E_REGISTRY="$PALISADE_REGISTRY"
  # The tests must not fall back on it.
  unset KUBECONFIG
fi
kubectl_() {
  "${PALISADE_KUBECTL:-kubectl}" --kubeconfig "$PALISADE_E2E_KUBECONFIG" --request-timeout=30s "$@"
}

cargo test --locked -p palisade-e2e --lib --test e2e -- --test-threads="$threads"
# The suite's operator registered the webhook (failurePolicy Fail) and is gone now; its
# watchdog removes the registration, but maybe not before the next tests create pods.
kubectl_ delete validatingwebhookconfiguration palisade --ignore-not-found >&2
# The operator's tests against the API server are ignored by a plain `cargo test` (they need
# a cluster); here they have one. One at a time: some hold a cluster-wide Lease.
cargo test --locked -p palisade-operator --test api_server -- --ignored --test-threads=1

if [ -z "${PALISADE_E2E_REGISTRY:-}" ]; then
  echo "e2e: the installed suite did not run: set PALISADE_E2E_REGISTRY to a registry the cluster of PALISADE_E2E_KUBECONFIG pulls from" >&2
  exit 1
fi
images=$(hack/images.sh --registry "$PALISADE_E2E_REGISTRY")
printf '%s\n' "$images" >&2
PALISADE_E2E_IMAGE_TAG=$(awk 'NR == 1 { n = split($1, a, ":"); print a[n] }' <<<"$images")
export PALISADE_E2E_IMAGE_TAG
# The images' sizes, for the record: compressed (what a node pulls) and unpacked.
awk '{ printf "e2e: image %s: %.1f MiB compressed, %.1f MiB unpacked\n", $1, $3 / 1048576, $4 / 1048576 }' <<<"$images" >&2
# One release, one test at a time.
cargo test --locked -p palisade-e2e --test installed -- --test-threads=1
