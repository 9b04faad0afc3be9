#!/usr/bin/env bash
# The chart on a real kind cluster (needs Docker, kind, kubectl; helm comes from hack/helm.sh).
# Builds both images from the Dockerfile, loads them into kind, installs the chart, applies the sample policies
# and checks that a privileged pod is refused. Deletes the cluster at the end.
# Not run by `make test` (the project's machines have no Docker).
set -euo pipefail
cd "$(dirname "$0")/../.."
cluster=${KIND_CLUSTER:-palisade-kind}
tag=kind-test
helm=$(hack/helm.sh --path)
trap 'kind delete cluster --name "$cluster"' EXIT

kind create cluster --name "$cluster" --wait 120s
for bin in palisade-operator palisade-webhook; do
  # The release images' Dockerfile, as users build it.
  docker build -q --target "$bin" -t "ghcr.io/palisade-dev/$bin:$tag" .
  kind load docker-image --name "$cluster" "ghcr.io/palisade-dev/$bin:$tag"
done

"$helm" install palisade charts/palisade --namespace palisade-system --create-namespace \
  --set image.tag="$tag" --set image.pullPolicy=Never --wait --timeout 5m
kubectl -n palisade-system rollout status deploy/palisade-webhook --timeout 120s
kubectl get validatingwebhookconfiguration palisade

kubectl apply -f config/samples/workloads/namespaces.yaml
kubectl apply -f config/samples/restricted-production.yaml -f config/samples/baseline-everywhere.yaml
# The policies reach the webhook by watch; retry until the refusal shows.
for _ in $(seq 30); do
  if out=$(kubectl apply --dry-run=server -f config/samples/workloads/bad-privileged-pod.yaml 2>&1); then
    sleep 2
  else
    echo "$out"
    grep -q "denied the request" <<<"$out" && { echo "kind: privileged pod refused"; exit 0; }
    sleep 2
  fi
done
echo "kind: the privileged pod was not refused" >&2
exit 1
