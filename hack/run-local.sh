#!/usr/bin/env bash
# `make run-local`: the developer loop. Palisade's binaries, built in debug, run as local
# processes in the foreground against a cluster, until Ctrl-C (`make run` installs the chart
# and its images instead).
#
#   KUBECONFIG set    use that cluster (its API server must run on this machine)
#   KUBECONFIG unset  start the local cluster (hack/local-cluster.sh) first; its
#                     kubeconfig goes to .palisade/kubeconfig
#
# Then palisade-operator and palisade-webhook run as local processes: the operator makes the
# CA and serving certificate (Secret palisade-webhook-tls in palisade-system, mirrored into
# .palisade/run/tls for the webhook), registers the webhook at https://127.0.0.1:<port>
# (ValidatingWebhookConfiguration palisade), keeps SecurityPolicy status and audits what
# runs. The sample policies and their namespaces are applied and what to try is printed.
# Ctrl-C stops the operator, removes the webhook registration and stops everything else this
# script started.
#
# The API server must be able to call https://127.0.0.1:<port>, so a cluster whose API
# server is not on this machine's loopback is refused (install the Helm chart there instead).
#
# Variables: PALISADE_KUBECTL (kubectl to use; default: the one matching the local control
# plane, else `kubectl`), PALISADE_RUN_DIR (state dir, default .palisade).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
STATE=$(realpath -m "${PALISADE_RUN_DIR:-.palisade}")
CLUSTER_DIR="$STATE/cluster"
RUN="$STATE/run"
# The operator's ValidatingWebhookConfiguration.
REGISTRATION=palisade

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

STARTED_CLUSTER=false
REGISTERED=false
WEBHOOK_PID=""
OPERATOR_PID=""
# stop NAME PID: SIGTERM, up to 10 s, then SIGKILL.
stop() {
  kill -0 "$2" 2>/dev/null || return 0
  say "stopping $1 (pid $2)"
  kill -TERM "$2" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$2" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$2" 2>/dev/null
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  echo >&2
  # The operator first, so that it cannot register the webhook again; then the registration,
  # before the webhook stops: with failurePolicy Fail, a registered webhook that is gone
  # would refuse every pod outside the exempt namespaces.
  [[ -n $OPERATOR_PID ]] && stop palisade-operator "$OPERATOR_PID"
  if $REGISTERED; then
    say "removing the ValidatingWebhookConfiguration $REGISTRATION"
    k delete validatingwebhookconfiguration "$REGISTRATION" --ignore-not-found >&2
  fi
  [[ -n $WEBHOOK_PID ]] && stop palisade-webhook "$WEBHOOK_PID"
  if $STARTED_CLUSTER; then
    say "stopping the local cluster"
    hack/local-cluster.sh down --dir "$CLUSTER_DIR" 2>&1 | sed 's/^/    /' >&2
    rm -f "$STATE/kubeconfig"
  elif [[ -n ${KUBECONFIG:-} ]]; then
    say "left in the cluster: the CRDs and the sample policies (kubectl delete -f config/samples/ removes the policies)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

k() { "$KUBECTL" --request-timeout=30s "$@"; }

# free_port (and stop_pid, wait_for)
# shellcheck source=hack/lib/processes.sh
source "$REPO/hack/lib/processes.sh"

# ---------------------------------------------------------------- the cluster

# A KUBECONFIG that points at our own local cluster's file (exported by an earlier
# `make run`) counts as none when that cluster is gone.
if [[ ${KUBECONFIG:-} == "$STATE/kubeconfig" ]] && ! hack/local-cluster.sh status --dir "$CLUSTER_DIR" >/dev/null 2>&1; then
  unset KUBECONFIG
fi

if [[ -n ${KUBECONFIG:-} ]]; then
  KUBECTL=${PALISADE_KUBECTL:-kubectl}
  say "using the cluster of KUBECONFIG=$KUBECONFIG ($(k config current-context 2>/dev/null || echo 'no current context'))"
  k version >/dev/null 2>&1 || die "the cluster of KUBECONFIG=$KUBECONFIG does not answer: $(k version 2>&1 | tail -n 1)"
  LOCAL=false
  [[ ${KUBECONFIG} == "$STATE/kubeconfig" ]] && LOCAL=true
else
  if hack/local-cluster.sh status --dir "$CLUSTER_DIR" >/dev/null 2>&1; then
    say "a local cluster is already running in $CLUSTER_DIR: using it (it is left running)"
  else
    say "no KUBECONFIG: starting the local cluster (hack/local-cluster.sh; the first run builds Kubernetes, about 10 minutes)"
    STARTED_CLUSTER=true
  fi
  eval "$(hack/local-cluster.sh up --dir "$CLUSTER_DIR")"
  cp "$KUBECONFIG" "$STATE/kubeconfig"
  export KUBECONFIG="$STATE/kubeconfig"
  KUBECTL=${PALISADE_KUBECTL:-kubectl}
  LOCAL=true
fi
SERVER=$(k config view --minify -o 'jsonpath={.clusters[0].cluster.server}')

# Loopback, or the local cluster's node IP: either way an API server on this machine, which
# can call a webhook on 127.0.0.1.
[[ $SERVER =~ ^https?://(127\.[0-9.]+|localhost|\[::1\]|10\.244\.0\.1)(:[0-9]+)?/?$ ]] ||
  die "the API server ($SERVER) is not on this machine: it could not call a webhook on https://127.0.0.1; use make run (the Helm chart and images) for that cluster, or unset KUBECONFIG for the local cluster"

# ---------------------------------------------------------------- build

say "building palisade-operator and palisade-webhook"
cargo build --locked -q -p palisade-operator --bin palisade-operator -p palisade-webhook --bin palisade-webhook
rm -rf "$RUN"
mkdir -p "$RUN"

# ---------------------------------------------------------------- CRDs, namespaces

say "applying the CRDs (config/crd/)"
k apply -f config/crd/ | sed 's/^/    /' >&2
k wait --for=condition=established --timeout=60s crd/securitypolicies.palisade.dev >/dev/null
# The operator's namespace: its certificate Secret lives there, and it is never judged.
k get namespace palisade-system >/dev/null 2>&1 || k create namespace palisade-system >/dev/null

# ---------------------------------------------------------------- operator and webhook

# start NAME PIDVAR ARGS...: in its own session (a Ctrl-C reaches only this script, which
# stops things in the right order), log in $RUN/NAME.log; sets PIDVAR.
start() {
  local name=$1 var=$2 pid
  shift 2
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell, which execs the binary
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "target/debug/$name" "$@" \
    </dev/null >"$RUN/$name.log" 2>&1 &
  for _ in $(seq 50); do [[ -s $RUN/$name.pid ]] && break; sleep 0.1; done
  pid=$(cat "$RUN/$name.pid" 2>/dev/null) || die "$name did not start"
  printf -v "$var" %s "$pid"
}
# alive NAME PID: dies with the log's tail unless the process runs.
alive() {
  kill -0 "$2" 2>/dev/null || die "$1 exited; last lines of $RUN/$1.log:
$(tail -n 20 "$RUN/$1.log")"
}

PORT=$(free_port)
ADMIN_PORT=$(free_port)
OPERATOR_ADMIN_PORT=$(free_port)
say "starting palisade-operator (admin http://127.0.0.1:$OPERATOR_ADMIN_PORT), log $RUN/palisade-operator.log"
start palisade-operator OPERATOR_PID \
  --webhook-url "https://127.0.0.1:$PORT" --cert-dir "$RUN/tls" \
  --leader-elect=false --namespace palisade-system \
  --admin-addr "127.0.0.1:$OPERATOR_ADMIN_PORT" --audit-interval 30s
# From now on it may register the webhook at any moment.
REGISTERED=true
for i in $(seq 600); do
  [[ -s $RUN/tls/tls.crt && -s $RUN/tls/tls.key ]] && break
  alive palisade-operator "$OPERATOR_PID"
  ((i < 600)) || die "palisade-operator wrote no certificate to $RUN/tls within 60s: $(tail -n 20 "$RUN/palisade-operator.log")"
  sleep 0.1
done
say "the operator wrote the webhook's certificate to $RUN/tls"

say "starting palisade-webhook on https://127.0.0.1:$PORT (admin http://127.0.0.1:$ADMIN_PORT), log $RUN/palisade-webhook.log"
start palisade-webhook WEBHOOK_PID \
  --addr "127.0.0.1:$PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" \
  --tls-cert-file "$RUN/tls/tls.crt" --tls-key-file "$RUN/tls/tls.key"
for i in $(seq 600); do
  curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
  alive palisade-webhook "$WEBHOOK_PID"
  ((i < 600)) || die "palisade-webhook not ready after 60s: $(tail -n 20 "$RUN/palisade-webhook.log")"
  sleep 0.1
done
for i in $(seq 300); do
  k get validatingwebhookconfiguration "$REGISTRATION" >/dev/null 2>&1 && break
  alive palisade-operator "$OPERATOR_PID"
  ((i < 300)) || die "palisade-operator did not register the webhook within 30s: $(tail -n 20 "$RUN/palisade-operator.log")"
  sleep 0.1
done
say "the operator registered the webhook (ValidatingWebhookConfiguration $REGISTRATION, failurePolicy Fail)"

# ---------------------------------------------------------------- samples

both_alive() {
  alive palisade-webhook "$WEBHOOK_PID"
  alive palisade-operator "$OPERATOR_PID"
}
sample_denial both_alive

# ---------------------------------------------------------------- what to try

{
  echo
  echo "Palisade is running against $SERVER."
  print_try "$LOCAL"
  echo "  tail -f $RUN/palisade-webhook.log $RUN/palisade-operator.log"
  echo
  echo "Ctrl-C stops everything this started."
} >&2

# The foreground: until Ctrl-C, or until the webhook or the operator exits by itself.
while true; do
  alive palisade-webhook "$WEBHOOK_PID"
  alive palisade-operator "$OPERATOR_PID"
  sleep 1
done
