#!/usr/bin/env bash
# The cluster tests, on ONE cluster:
#   1. the images (hack/images.sh), pushed to a registry the cluster pulls from;
#   2. the e2e suite (e2e/tests/e2e): Palisade installed by the chart from those images, in
#      pods; kubectl against a real kube-apiserver that calls the webhook through its
#      Service;
#   3. the operator's API-server tests (operator/tests/api_server), with the release gone;
#   4. the installed suite (e2e/tests/installed): install, upgrade, disruption and uninstall
#      of the chart.
#
# PALISADE_E2E_KUBECONFIG names the cluster (kind, EKS, a local one), and PALISADE_E2E_REGISTRY
# a registry that cluster pulls from (the images are pushed there). Without
# PALISADE_E2E_KUBECONFIG, the local cluster (control plane, real node and registry) is
# started here and stopped however the run ends. The plain KUBECONFIG is never used, so
# `make test` cannot touch a real cluster by accident.
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

if [ -z "${PALISADE_E2E_REGISTRY:-}" ]; then
  echo "e2e: set PALISADE_E2E_REGISTRY to a registry the cluster of PALISADE_E2E_KUBECONFIG pulls from" >&2
  exit 1
fi
images=$(hack/images.sh --registry "$PALISADE_E2E_REGISTRY")
printf '%s\n' "$images" >&2
PALISADE_E2E_IMAGE_TAG=$(awk 'NR == 1 { n = split($1, a, ":"); print a[n] }' <<<"$images")
export PALISADE_E2E_IMAGE_TAG
# The images' sizes, for the record: compressed (what a node pulls) and unpacked.
awk '{ printf "e2e: image %s: %.1f MiB compressed, %.1f MiB unpacked\n", $1, $3 / 1048576, $4 / 1048576 }' <<<"$images" >&2

cargo test --locked -p palisade-e2e --lib --test e2e -- --test-threads="$threads"
# The suite's release is still installed (its watchdog removes it too, but maybe not before
# the next tests start): the operator's tests take its Lease, the installed suite installs
# afresh.
helm_() {
  KUBECONFIG=$PALISADE_E2E_KUBECONFIG HELM_CACHE_HOME=target/e2e/helm/cache \
    HELM_CONFIG_HOME=target/e2e/helm/config HELM_DATA_HOME=target/e2e/helm/data \
    "$(hack/helm.sh --path)" "$@"
}
# The watchdog may be uninstalling it at the same moment: retry until it is gone.
for attempt in 1 2 3 4 5 6; do
  helm_ uninstall palisade --namespace palisade-system --wait --timeout 2m --ignore-not-found >&2 && break
  echo "e2e: helm uninstall failed (attempt $attempt); retrying" >&2
  sleep 5
done
if helm_ status palisade --namespace palisade-system >/dev/null 2>&1; then
  echo "e2e: the e2e suite's release is still installed" >&2
  exit 1
fi
kubectl_ delete validatingwebhookconfiguration palisade --ignore-not-found >&2
# The operator's tests against the API server are ignored by a plain `cargo test` (they need
# a cluster); here they have one. One at a time: some hold a cluster-wide Lease.
cargo test --locked -p palisade-operator --test api_server -- --ignored --test-threads=1
# The webhook's reads of namespaces its cache does not hold, against the real API server.
cargo test --locked -p palisade-webhook --test namespace_reads -- --ignored

# One release, one test at a time.
cargo test --locked -p palisade-e2e --test installed -- --test-threads=1
