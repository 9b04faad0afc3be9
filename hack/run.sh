#!/usr/bin/env bash
# `make run`: Palisade installed by its Helm chart from images built here, until Ctrl-C.
#
#   KUBECONFIG unset  start the local cluster (hack/local-cluster.sh: a control plane and a
#                     real node with a local registry); its kubeconfig goes to
#                     .palisade/kubeconfig
#   KUBECONFIG set    use that cluster; PALISADE_REGISTRY must name a registry it pulls from
#                     (the images are pushed there)
#
# Then: `make images` (hack/images.sh) builds and pushes palisade-operator, palisade-webhook
# and palisade-agent, `helm upgrade --install` installs charts/palisade into palisade-system
# with them and waits until every pod is Ready and the operator has registered the webhook
# by its Service. The sample policies and their namespaces are applied, a `kubectl apply` to
# try and the denial it gets are printed; a demo pod in palisade-runtime-demo reads
# /etc/shadow and the node agent's Event for it is printed; the pods' logs follow. Ctrl-C
# uninstalls the release (the registration and certificate Secret go with it) and stops the
# local cluster if this script started it.
#
# Variables:
#   PALISADE_RUN_DETACH=1   print what to try and exit, leaving Palisade installed
#   PALISADE_KUBECTL        kubectl to use (default: the one matching the local cluster)
#   PALISADE_RUN_DIR        state dir (default .palisade)
#   PALISADE_HELM_ARGS      more `helm upgrade --install` arguments, split on whitespace
#                           (e.g. "--set webhook.replicas=3")
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
STATE=$(realpath -m "${PALISADE_RUN_DIR:-.palisade}")
CLUSTER_DIR="$STATE/cluster"
NAMESPACE=palisade-system
RELEASE=palisade
DETACH=${PALISADE_RUN_DETACH:-0}

say() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

STARTED_CLUSTER=false
INSTALLED=false
DEMO_STARTED=false
DEMO_NS=palisade-runtime-demo
LOGS_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $LOGS_PID ]] && kill "$LOGS_PID" 2>/dev/null
  if [[ $DETACH == 1 && $rc == 0 ]]; then
    exit 0
  fi
  echo >&2
  if $DEMO_STARTED; then
    say "deleting namespace $DEMO_NS (the runtime demo pod)"
    k delete namespace "$DEMO_NS" --wait=false --ignore-not-found >&2
  fi
  if $INSTALLED; then
    say "helm uninstall $RELEASE (the webhook registration and certificate Secret go with it)"
    "$HELM" uninstall "$RELEASE" --namespace "$NAMESPACE" --wait --timeout 2m >&2
  fi
  if $STARTED_CLUSTER; then
    say "stopping the local cluster"
    hack/local-cluster.sh down --dir "$CLUSTER_DIR" 2>&1 | sed 's/^/    /' >&2
    rm -f "$STATE/kubeconfig"
  elif [[ -n ${KUBECONFIG:-} ]]; then
    say "left in the cluster: the CRDs, namespace $NAMESPACE and the sample policies (kubectl delete -f config/samples/ removes the policies)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

k() { "$KUBECTL" --request-timeout=30s "$@"; }
HELM=$(hack/helm.sh --path)
# sample_denial, print_try
# shellcheck source=hack/lib/processes.sh
source "$REPO/hack/lib/processes.sh"
# shellcheck source=hack/lib/registry.sh
source "$REPO/hack/lib/registry.sh"

# ---------------------------------------------------------------- the cluster

mkdir -p "$STATE"
# A KUBECONFIG that points at our own local cluster's file (exported by an earlier
# `make run`) counts as none when that cluster is gone.
if [[ ${KUBECONFIG:-} == "$STATE/kubeconfig" ]] && ! hack/local-cluster.sh status --dir "$CLUSTER_DIR" >/dev/null 2>&1; then
  unset KUBECONFIG
fi
if [[ -n ${KUBECONFIG:-} && ${KUBECONFIG} != "$STATE/kubeconfig" ]]; then
  KUBECTL=${PALISADE_KUBECTL:-kubectl}
  say "using the cluster of KUBECONFIG=$KUBECONFIG ($(k config current-context 2>/dev/null || echo 'no current context'))"
  k version >/dev/null 2>&1 || die "the cluster of KUBECONFIG=$KUBECONFIG does not answer: $(k version 2>&1 | tail -n 1)"
  REGISTRY=${PALISADE_REGISTRY:-}
  [[ -n $REGISTRY ]] || die "set PALISADE_REGISTRY to a registry this cluster pulls from (the images are pushed there), or unset KUBECONFIG for the local cluster"
  LOCAL=false
else
  unset KUBECONFIG
  if hack/local-cluster.sh status --dir "$CLUSTER_DIR" >/dev/null 2>&1; then
    say "a local cluster is already running in $CLUSTER_DIR: using it (it is left running)"
  else
    say "no KUBECONFIG: starting the local cluster (hack/local-cluster.sh; the first run builds Kubernetes, about 10 minutes)"
    STARTED_CLUSTER=true
  fi
  eval "$(hack/local-cluster.sh up --dir "$CLUSTER_DIR")"
  [[ -n ${PALISADE_REGISTRY:-} ]] || die "the local cluster in $CLUSTER_DIR has no registry (started with --no-node?): hack/local-cluster.sh down --dir $CLUSTER_DIR, then make run"
  cp "$KUBECONFIG" "$STATE/kubeconfig"
  export KUBECONFIG="$STATE/kubeconfig"
  KUBECTL=${PALISADE_KUBECTL:-kubectl}
  REGISTRY=$PALISADE_REGISTRY
  LOCAL=true
fi
SERVER=$(k config view --minify -o 'jsonpath={.clusters[0].cluster.server}')

# ---------------------------------------------------------------- images

say "building the images and pushing them to $REGISTRY (make images)"
images=$(hack/images.sh --registry "$REGISTRY")
sed 's/^/    /' <<<"$images" >&2
TAG=$(awk 'NR == 1 { n = split($1, a, ":"); print a[n] }' <<<"$images")

# ---------------------------------------------------------------- the chart

helm_args=(
  upgrade --install "$RELEASE" charts/palisade --namespace "$NAMESPACE" --create-namespace
  --set "image.registry=$REGISTRY" --set "image.tag=$TAG"
  # A tag with -dirty is rebuilt under the same name.
  --set image.pullPolicy=Always
  --wait --timeout 5m
)
if $LOCAL; then
  # The operator scans images from the local registry, which speaks plain HTTP.
  helm_args+=(--set "scan.insecureRegistries={$REGISTRY}")
fi
read -r -a extra <<<"${PALISADE_HELM_ARGS:-}"
helm_args+=("${extra[@]}")
say "helm ${helm_args[*]}"
t_install=$SECONDS
INSTALLED=true
"$HELM" "${helm_args[@]}" >&2
t_ready=$SECONDS
# Ready pods are not yet a registration: the operator makes the certificate first.
for i in $(seq 120); do
  svc=$(k get validatingwebhookconfiguration palisade -o 'jsonpath={.webhooks[0].clientConfig.service.name}' 2>/dev/null || true)
  [[ $svc == palisade-webhook ]] && break
  ((i < 120)) || die "no ValidatingWebhookConfiguration palisade naming Service palisade-webhook after 60s; the operator says: $(k -n "$NAMESPACE" logs deploy/palisade-operator --tail=20 2>&1)"
  sleep 0.5
done
say "installed: every pod Ready $((t_ready - t_install))s after helm started, the webhook registered by Service $((SECONDS - t_install))s after"
k -n "$NAMESPACE" get pods -o wide >&2

# ---------------------------------------------------------------- samples

sample_denial true

# ---------------------------------------------------------------- a runtime detection

# A pod of the runtime tests' image (busybox and a probe; hack/runtime-test-image.sh builds
# it without Docker) in a namespace of its own, and a read of /etc/shadow in it: the
# sample policy runtime-audit reports it, and the node agent's Event is shown below.
say "the runtime demo: pod runtime-demo in namespace $DEMO_NS, and a read of /etc/shadow in it"
layout=$(hack/runtime-test-image.sh)
DEMO_IMAGE=$REGISTRY/palisade-demo/runtime-workload:latest
tls=()
plain_http_registry "$REGISTRY" && tls=(--dest-tls-verify=false)
skopeo copy --quiet "${tls[@]}" "oci:$layout:latest" "docker://$DEMO_IMAGE" >&2
DEMO_STARTED=true
k create namespace "$DEMO_NS" --dry-run=client -o yaml | k apply -f - >/dev/null
k -n "$DEMO_NS" delete pod runtime-demo --ignore-not-found --wait=true >/dev/null
k -n "$DEMO_NS" run runtime-demo --image="$DEMO_IMAGE" --image-pull-policy=Always --restart=Never \
  --labels=app=runtime-demo >/dev/null
k -n "$DEMO_NS" wait --for=condition=Ready pod/runtime-demo --timeout=120s >/dev/null ||
  die "pod $DEMO_NS/runtime-demo not Ready in 120s: $(k -n "$DEMO_NS" describe pod runtime-demo | tail -15)"
k -n "$NAMESPACE" wait --for=condition=Ready pod -l app.kubernetes.io/name=palisade-agent \
  --timeout=120s >/dev/null || die "the node agent is not Ready: $(k -n "$NAMESPACE" logs ds/palisade-agent --tail=20 2>&1)"
DETECTION=""
for _ in $(seq 60); do
  k -n "$DEMO_NS" exec runtime-demo -- /bin/cat /etc/shadow >/dev/null 2>&1 || true
  DETECTION=$(k -n "$DEMO_NS" get events --field-selector involvedObject.name=runtime-demo,reason=ReadSensitiveFileUntrusted \
    -o 'custom-columns=TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message' 2>/dev/null)
  [[ $(wc -l <<<"$DETECTION") -ge 2 ]] && break
  DETECTION=""
  sleep 2
done
[[ -n $DETECTION ]] || die "no ReadSensitiveFileUntrusted Event on $DEMO_NS/runtime-demo within 2 minutes; the agent says: $(k -n "$NAMESPACE" logs ds/palisade-agent --tail=20 2>&1)"
say "detected: the node agent's Event on the pod"

# ---------------------------------------------------------------- what to try

{
  echo
  echo "Palisade is running in namespace $NAMESPACE of $SERVER, installed by charts/palisade"
  echo "with the images $REGISTRY/palisade-{operator,webhook,agent}:$TAG."
  print_try "$LOCAL"
  echo
  echo "Runtime detection: the sample policy runtime-audit watches every container. A read of"
  echo "/etc/shadow in pod $DEMO_NS/runtime-demo, just now, gave this Event:"
  echo
  sed 's/^/  /' <<<"$DETECTION"
  echo
  echo "  kubectl -n $DEMO_NS exec -it runtime-demo -- /bin/sh      # a TerminalShellInContainer Event"
  echo "  kubectl -n $DEMO_NS get events --field-selector involvedObject.name=runtime-demo"
  echo "  kubectl -n $DEMO_NS get policyreport               # palisade-runtime-<node>: every detection"
  echo "  kubectl -n $NAMESPACE logs ds/palisade-agent          # one JSON line per detection (Falco's fields)"
  echo "  kubectl get secpol runtime-audit -o jsonpath='{.status.conditions}'   # RuntimeSensors: which nodes watch"
  echo
  echo "  kubectl -n $NAMESPACE get pods                # the operator, webhook and node agent pods"
  echo
  if [[ $DETACH == 1 ]]; then
    echo "Left running. To remove: $HELM uninstall $RELEASE -n $NAMESPACE"
    $STARTED_CLUSTER && echo "and stop the local cluster: hack/local-cluster.sh down --dir $CLUSTER_DIR"
  else
    echo "Their logs follow. Ctrl-C uninstalls Palisade and stops what this started."
  fi
} >&2
[[ $DETACH == 1 ]] && exit 0

# The foreground: the pods' logs, until Ctrl-C.
k -n "$NAMESPACE" logs -f --prefix --max-log-requests 10 -l app.kubernetes.io/part-of=palisade --all-containers >&2 &
LOGS_PID=$!
while true; do
  sleep 2
  if ! kill -0 "$LOGS_PID" 2>/dev/null; then
    # A replica restarted: follow the new set.
    k -n "$NAMESPACE" logs -f --prefix --max-log-requests 10 -l app.kubernetes.io/part-of=palisade --all-containers --since=5s >&2 &
    LOGS_PID=$!
  fi
done
