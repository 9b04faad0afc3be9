#!/usr/bin/env bash
# The control-plane tests: the e2e suite (kubectl against a real kube-apiserver that calls
# the webhook, which the operator registers) and the operator's API-server tests
# (operator/tests/api_server), on ONE cluster.
#
# PALISADE_E2E_KUBECONFIG names the cluster (kind, EKS, a local one). Without it, a local
# control plane is started here and stopped however the run ends. The plain KUBECONFIG is
# never used, so `make test` cannot touch a real cluster by accident.
set -euo pipefail
cd "$(dirname "$0")/.."

threads=${E2E_TEST_THREADS:-4}
if [ -z "${PALISADE_E2E_KUBECONFIG:-}" ]; then
  dir=target/e2e-make-cluster
  trap 'hack/local-cluster.sh down --dir "$dir" >&2 || true' EXIT
  exports=$(hack/local-cluster.sh up --dir "$dir")
  eval "$exports"
  export PALISADE_E2E_KUBECONFIG="$KUBECONFIG"
  # The tests must not fall back on it.
  unset KUBECONFIG
fi

cargo test --locked -p palisade-e2e -- --test-threads="$threads"
# The suite's operator registered the webhook (failurePolicy Fail) and is gone now; its
# watchdog removes the registration, but maybe not before the next tests create pods.
"${PALISADE_KUBECTL:-kubectl}" --kubeconfig "$PALISADE_E2E_KUBECONFIG" --request-timeout=30s \
  delete validatingwebhookconfiguration palisade --ignore-not-found >&2
# The operator's tests against the API server are ignored by a plain `cargo test` (they need
# a cluster); here they have one. One at a time: some hold a cluster-wide Lease.
cargo test --locked -p palisade-operator --test api_server -- --ignored --test-threads=1
