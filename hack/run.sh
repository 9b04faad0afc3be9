#!/usr/bin/env bash
# `make run`: Palisade in the foreground against a cluster, until Ctrl-C.
#
#   KUBECONFIG set    use that cluster: install the CRDs, run the webhook against it
#   KUBECONFIG unset  start the local control plane (hack/local-cluster.sh) first; its
#                     kubeconfig goes to .palisade/kubeconfig
#
# Then: the sample policies and their namespaces are applied, the webhook (a local process
# on 127.0.0.1) is registered with the API server, and what to try is printed. Ctrl-C
# removes the webhook registration and stops everything this script started.
#
# The registration points the API server at https://127.0.0.1:<port>, so it is made only
# when the API server runs on this machine's loopback (the local control plane, or any
# apiserver on 127.0.0.1); for a remote cluster the webhook runs and watches policies,
# but nothing is registered (install the Helm chart there instead).
#
# Variables: PALISADE_KUBECTL (kubectl to use; default: the one matching the local control
# plane, else `kubectl`), PALISADE_RUN_DIR (state dir, default .palisade).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
STATE=$(realpath -m "${PALISADE_RUN_DIR:-.palisade}")
CLUSTER_DIR="$STATE/cluster"
RUN="$STATE/run"
REGISTRATION=palisade-local
EXEMPT_LABEL=palisade.dev/exempt

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

STARTED_CLUSTER=false
REGISTERED=false
WEBHOOK_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  echo >&2
  # The registration goes first: with failurePolicy Fail, a registered webhook that is gone
  # would refuse every pod outside the exempt namespaces.
  if $REGISTERED; then
    say "removing the ValidatingWebhookConfiguration $REGISTRATION"
    k delete validatingwebhookconfiguration "$REGISTRATION" --ignore-not-found >&2
  fi
  if [[ -n $WEBHOOK_PID ]] && kill -0 "$WEBHOOK_PID" 2>/dev/null; then
    say "stopping palisade-webhook (pid $WEBHOOK_PID)"
    kill -TERM "$WEBHOOK_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$WEBHOOK_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$WEBHOOK_PID" 2>/dev/null
  fi
  # OPERATOR: stop palisade-operator here once it is started below.
  if $STARTED_CLUSTER; then
    say "stopping the local control plane"
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

# A free port on 127.0.0.1 below the ephemeral range, not one already picked.
PICKED=" "
free_port() {
  local lo hi p used
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range || lo=32768
  hi=$((lo - 1))
  lo=$((hi - 10000))
  used=" $(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | tr '\n' ' ') "
  for _ in $(seq 200); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    [[ $PICKED == *" $p "* || $used == *" $p "* ]] && continue
    PICKED+="$p "
    echo "$p"
    return 0
  done
  die "no free port in $lo-$hi"
}

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
    say "a local control plane is already running in $CLUSTER_DIR: using it (it is left running)"
  else
    say "no KUBECONFIG: starting the local control plane (hack/local-cluster.sh; the first run builds Kubernetes, about 10 minutes)"
    STARTED_CLUSTER=true
  fi
  eval "$(hack/local-cluster.sh up --dir "$CLUSTER_DIR")"
  cp "$KUBECONFIG" "$STATE/kubeconfig"
  export KUBECONFIG="$STATE/kubeconfig"
  KUBECTL=${PALISADE_KUBECTL:-kubectl}
  LOCAL=true
fi
SERVER=$(k config view --minify -o 'jsonpath={.clusters[0].cluster.server}')
LOOPBACK=false
[[ $SERVER =~ ^https?://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?/?$ ]] && LOOPBACK=true

# ---------------------------------------------------------------- build, certificates

say "building palisade-webhook"
cargo build --locked -q -p palisade-webhook --bin palisade-webhook
# OPERATOR: build palisade-operator here (cargo build --locked -q -p palisade-operator).

rm -rf "$RUN"
mkdir -p "$RUN/tls"
say "making a CA and a serving certificate for 127.0.0.1 in $RUN/tls"
(
  umask 077
  cd "$RUN/tls"
  # X.509 v3 with extensions: rustls refuses v1 certificates.
  cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid,issuer
EOF
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 30 -config openssl.cnf \
    -extensions ca -subj "/CN=palisade-make-run-ca" -keyout ca.key -out ca.crt
  openssl req -new -nodes -newkey rsa:2048 -config openssl.cnf -subj "/CN=palisade-webhook" \
    -keyout tls.key -out tls.csr
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days 30 -sha256 -extfile openssl.cnf -extensions server -out tls.crt
) >"$RUN/tls.log" 2>&1 || die "openssl failed; see $RUN/tls.log"

# ---------------------------------------------------------------- CRDs, namespaces

say "applying the CRDs (config/crd/)"
k apply -f config/crd/ | sed 's/^/    /' >&2
k wait --for=condition=established --timeout=60s crd/securitypolicies.palisade.dev >/dev/null
# Kubernetes 1.20 has no kubernetes.io/metadata.name label; the registration's
# namespaceSelector leaves out namespaces labelled palisade.dev/exempt=true.
k get namespace palisade-system >/dev/null 2>&1 || k create namespace palisade-system >/dev/null
k label namespace kube-system palisade-system "$EXEMPT_LABEL=true" --overwrite >/dev/null

# ---------------------------------------------------------------- the webhook

PORT=$(free_port)
ADMIN_PORT=$(free_port)
say "starting palisade-webhook on https://127.0.0.1:$PORT (admin http://127.0.0.1:$ADMIN_PORT), log $RUN/webhook.log"
# Its own session: a Ctrl-C reaches only this script, which removes the registration
# before it stops the webhook.
# shellcheck disable=SC2016 # $$ and $@ belong to the inner shell, which execs the webhook
setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/webhook.pid" target/debug/palisade-webhook \
  --addr "127.0.0.1:$PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" \
  --tls-cert-file "$RUN/tls/tls.crt" --tls-key-file "$RUN/tls/tls.key" \
  </dev/null >"$RUN/webhook.log" 2>&1 &
for _ in $(seq 50); do [[ -s $RUN/webhook.pid ]] && break; sleep 0.1; done
WEBHOOK_PID=$(cat "$RUN/webhook.pid" 2>/dev/null) || die "palisade-webhook did not start"
for i in $(seq 600); do
  curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$WEBHOOK_PID" 2>/dev/null || die "palisade-webhook exited: $(tail -n 20 "$RUN/webhook.log")"
  ((i < 600)) || die "palisade-webhook not ready after 60s: $(tail -n 20 "$RUN/webhook.log")"
  sleep 0.1
done

# OPERATOR: once palisade-operator manages certificates and the registration, start it here
# (target/debug/palisade-operator --webhook-url https://127.0.0.1:$PORT ...) and drop the
# registration below.
if $LOOPBACK; then
  say "registering the webhook with the API server (ValidatingWebhookConfiguration $REGISTRATION, failurePolicy Fail)"
  CA_BUNDLE=$(base64 -w0 <"$RUN/tls/ca.crt")
  webhook() { # name path rules...
    cat <<EOF
- name: $1
  clientConfig:
    url: https://127.0.0.1:$PORT$2
    caBundle: $CA_BUNDLE
  rules:
$3
  failurePolicy: Fail
  matchPolicy: Equivalent
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 5
  namespaceSelector:
    matchExpressions:
    - {key: $EXEMPT_LABEL, operator: NotIn, values: ["true"]}
EOF
  }
  k apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: $REGISTRATION
  labels:
    app.kubernetes.io/part-of: palisade
webhooks:
$(webhook pods.palisade.dev /validate/pods '  - {apiGroups: [""], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [pods, pods/ephemeralcontainers], scope: Namespaced}')
$(webhook workloads.palisade.dev /validate/workloads '  - {apiGroups: [apps, extensions], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [deployments, replicasets, statefulsets, daemonsets], scope: Namespaced}
  - {apiGroups: [batch], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [jobs, cronjobs], scope: Namespaced}
  - {apiGroups: [""], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [replicationcontrollers, podtemplates], scope: Namespaced}')
EOF
  REGISTERED=true
else
  say "NOT registering the webhook: the API server ($SERVER) is not on this machine's loopback and could not call https://127.0.0.1:$PORT; install the Helm chart on that cluster instead"
fi

# ---------------------------------------------------------------- samples

say "applying the sample namespaces and policies (config/samples/)"
k apply -f config/samples/workloads/namespaces.yaml | sed 's/^/    /' >&2
k apply -f config/samples/ | sed 's/^/    /' >&2

TRY=config/samples/workloads/bad-privileged-pod.yaml
DENIAL=""
if $REGISTERED; then
  # The webhook learns the policies through its watch: wait until it refuses the sample.
  for _ in $(seq 120); do
    if ! out=$(k apply --dry-run=server -f "$TRY" 2>&1) && [[ $out == *"denied the request"* ]]; then
      DENIAL=$out
      break
    fi
    kill -0 "$WEBHOOK_PID" 2>/dev/null || die "palisade-webhook exited: $(tail -n 20 "$RUN/webhook.log")"
    sleep 0.25
  done
  [[ -n $DENIAL ]] || die "the webhook did not refuse $TRY within 30s: $out"
fi

# ---------------------------------------------------------------- what to try

{
  echo
  echo "Palisade is running against $SERVER."
  if $LOCAL; then
    echo
    echo "In another terminal:"
    echo
    echo "  export KUBECONFIG=$KUBECONFIG"
    [[ -n ${PALISADE_KUBECTL:-} ]] && echo "  # kubectl matching the server (v1.20): $PALISADE_KUBECTL; a newer kubectl works too"
  fi
  echo
  echo "Try:"
  echo
  echo "  kubectl apply -f $TRY"
  if [[ -n $DENIAL ]]; then
    echo
    echo "which is refused (this is a server-side dry run of it, just now):"
    echo
    grep -v 'version difference between client' <<<"$DENIAL" | sed 's/^/  /'
  fi
  echo
  echo "  kubectl apply -f config/samples/workloads/     # all sample workloads: refused, warned, admitted"
  echo "  kubectl get secpol                            # the policies (kubectl get securitypolicies)"
  echo "  tail -f $RUN/webhook.log"
  echo
  echo "Ctrl-C stops everything this started."
} >&2

# The foreground: until Ctrl-C, or until the webhook exits by itself.
while kill -0 "$WEBHOOK_PID" 2>/dev/null; do
  sleep 1
done
die "palisade-webhook exited; last lines of $RUN/webhook.log:
$(tail -n 20 "$RUN/webhook.log")"
