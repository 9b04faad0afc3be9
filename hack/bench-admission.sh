#!/usr/bin/env bash
# `make bench-admission`: the cost of admission on the pod-create call, side by side, on the
# local control plane (hack/local-cluster.sh; Kubernetes v1.20.2, no kubelet, so pods stay
# Pending and only the create call is measured):
#
#   (a) no webhook             a plain API server (measured again after (b), with the
#                              webhook registration deleted, to show the machine's drift)
#   (b) Palisade               the same API server calling palisade-webhook over TLS, which
#                              palisade-operator registers and certifies; an Enforce
#                              SecurityPolicy with the restricted preset matches the namespace
#   (c) PodSecurityPolicy      a second API server started with the PodSecurityPolicy
#                              admission plugin and a restricted PSP (the admin is in
#                              system:masters, and a ClusterRole `use`s it for everyone)
#
# Every created pod complies, so each configuration admits all of them; a refused create
# fails the run. For each configuration: a warm-up (not counted), then PODS creates at each
# concurrency (default 1, for latency, and 8, for throughput), pods deleted in between.
# A benchmark, not a test: it prints figures and asserts nothing about time.
#
# Variables: PALISADE_BENCH_PODS (500), PALISADE_BENCH_WARMUP (50),
# PALISADE_BENCH_CONCURRENCY (1,8), PALISADE_BENCH_DIR (target/bench-admission: results,
# logs; the clusters live in target/bench-plain and target/bench-psp and are stopped at the
# end, also on failure or Ctrl-C).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PODS=${PALISADE_BENCH_PODS:-500}
WARMUP=${PALISADE_BENCH_WARMUP:-50}
CONCURRENCY=${PALISADE_BENCH_CONCURRENCY:-1,8}
OUT=$(realpath -m "${PALISADE_BENCH_DIR:-target/bench-admission}")
BIN=$(realpath -m "${CARGO_TARGET_DIR:-target}/release")
PLAIN_DIR=$REPO/target/bench-plain
PSP_DIR=$REPO/target/bench-psp
NS=palisade-bench
SYSTEM_NS=palisade-system

say() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

CLUSTERS=()
PIDS=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$? pid dir
  trap - EXIT INT TERM
  set +e
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  for dir in "${CLUSTERS[@]}"; do
    [[ -n $dir ]] || continue
    hack/local-cluster.sh down --dir "$dir" >/dev/null 2>&1 || printf 'could not stop the cluster in %s\n' "$dir" >&2
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_pid, free_port, wait_for
# shellcheck source=hack/lib/processes.sh
source "$REPO/hack/lib/processes.sh"

k() { "$PALISADE_KUBECTL" --kubeconfig "$KUBECONFIG" --request-timeout=30s "$@"; }


cluster_up() { # dir [apiserver flags]
  local dir=$1
  CLUSTERS+=("$dir")
  local env_lines
  env_lines=$(PALISADE_APISERVER_EXTRA_FLAGS=${2:-} hack/local-cluster.sh up --no-node --dir "$dir" 2>>"$OUT/cluster.log") ||
    die "the local control plane did not start; see $OUT/cluster.log"
  eval "$env_lines"
  [[ ${KUBECONFIG:-} == "$dir/kubeconfig" ]] || die "hack/local-cluster.sh printed no kubeconfig for $dir"
  k create namespace "$NS" >/dev/null
  wait_for 60 k -n "$NS" get serviceaccount default || die "no default ServiceAccount in $NS"
}

cluster_down() {
  local dir kept=()
  hack/local-cluster.sh down --dir "$1" 2>>"$OUT/cluster.log"
  for dir in "${CLUSTERS[@]}"; do [[ $dir == "$1" ]] || kept+=("$dir"); done
  CLUSTERS=("${kept[@]}")
}

# A privileged pod, sent as a server-side dry run; succeeds when the output contains $1
# (each admission configuration refuses it; with none, kubectl prints its name).
privileged_probe() {
  local out
  out=$(k -n "$NS" create --dry-run=server -o name -f - 2>&1 <<'YAML' || true
apiVersion: v1
kind: Pod
metadata: {name: bench-probe}
spec:
  containers: [{name: app, image: registry.example.com/team/app:1.4.2, securityContext: {privileged: true}}]
YAML
  )
  echo "$out" >"$OUT/probe.txt"
  [[ $out == *"$1"* ]]
}

bench() { # label
  say "measuring: $1 ($PODS pods at concurrency $CONCURRENCY, after $WARMUP warm-up creates)"
  "$BIN/pod-create-bench" --kubeconfig "$KUBECONFIG" --namespace "$NS" --label "$1" \
    --pods "$PODS" --warmup "$WARMUP" --concurrency "$CONCURRENCY" --out "$OUT/results.tsv"
}

rm -rf "$OUT"
mkdir -p "$OUT"
for dir in "$PLAIN_DIR" "$PSP_DIR"; do
  hack/local-cluster.sh down --dir "$dir" >/dev/null 2>&1 || true
done

say "building palisade-webhook, palisade-operator and pod-create-bench (release)"
cargo build --release --locked -q -p palisade-webhook -p palisade-operator -p palisade-bench

# ---------------------------------------------------------------- (a) and (b): one API server
say "starting the local control plane in $PLAIN_DIR"
cluster_up "$PLAIN_DIR"
bench "no webhook"

say "installing the CRDs and an Enforce SecurityPolicy (restricted) for namespace $NS"
k apply -f config/crd/ -R >/dev/null
k wait --for condition=established --timeout=60s crd/securitypolicies.palisade.dev >/dev/null
k create namespace "$SYSTEM_NS" >/dev/null
k apply -f - >/dev/null <<YAML
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: bench-restricted}
spec:
  mode: Enforce
  match: {namespaces: [$NS]}
  podSecurity: {level: restricted}
  privileged: Deny
YAML

WEBHOOK_PORT=$(free_port)
mkdir -p "$OUT/certs"
say "starting palisade-operator (registers https://127.0.0.1:$WEBHOOK_PORT, writes the certificates)"
"$BIN/palisade-operator" --namespace "$SYSTEM_NS" --leader-elect=false \
  --admin-addr "127.0.0.1:$(free_port)" --webhook-url "https://127.0.0.1:$WEBHOOK_PORT" \
  --cert-dir "$OUT/certs" --audit-interval 1h --protect-exempt-label=true \
  >"$OUT/operator.log" 2>&1 &
PIDS+=($!)
wait_for 60 test -s "$OUT/certs/tls.key" || die "palisade-operator wrote no certificate; see $OUT/operator.log"

WEBHOOK_ADMIN=127.0.0.1:$(free_port)
say "starting palisade-webhook on 127.0.0.1:$WEBHOOK_PORT"
RUST_LOG=warn "$BIN/palisade-webhook" --addr "127.0.0.1:$WEBHOOK_PORT" --admin-addr "$WEBHOOK_ADMIN" \
  --tls-cert-file "$OUT/certs/tls.crt" --tls-key-file "$OUT/certs/tls.key" --namespace "$SYSTEM_NS" \
  >"$OUT/webhook.log" 2>&1 &
PIDS+=($!)
wait_for 60 curl -fsS "http://$WEBHOOK_ADMIN/readyz" || die "palisade-webhook not ready; see $OUT/webhook.log"
wait_for 60 privileged_probe 'admission webhook "pods.palisade.dev" denied the request' ||
  die "the API server does not call Palisade; see $OUT/operator.log and $OUT/webhook.log"
bench "Palisade webhook"
# Every measured create was judged by the policy (decision "allowed"), not skipped.
curl -fsS "http://$WEBHOOK_ADMIN/metrics" >"$OUT/webhook-metrics.txt" || true
say "palisade-webhook decisions: $(awk '/^palisade_admission_requests_total/ { sub(/palisade_admission_requests_total/, ""); printf "%s ", $0 }' "$OUT/webhook-metrics.txt")"
# How much of the difference is the webhook's own work (parse, judge, answer), the rest being
# the API server's webhook call (review encoding, TLS on loopback).
WEBHOOK_MEAN=$(awk '/^palisade_admission_duration_seconds_sum/ { s = $2 } /^palisade_admission_duration_seconds_count/ { n = $2 }
  END { if (n > 0) printf "%.3f ms mean over %d reviews", s / n * 1000, n; else print "unknown" }' "$OUT/webhook-metrics.txt")
say "time inside palisade-webhook per review: $WEBHOOK_MEAN"

# The baseline again, on the same API server, now that the webhook is gone: the load of the
# machine drifts (other builds), and a baseline on both sides of (b) shows by how much.
for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
PIDS=()
k delete validatingwebhookconfiguration palisade >/dev/null
wait_for 30 privileged_probe 'pod/bench-probe' || die "pods are still judged after the webhook registration is gone"
bench "no webhook, again"
say "stopping the local control plane in $PLAIN_DIR"
cluster_down "$PLAIN_DIR"

# ---------------------------------------------------------------- (c): PodSecurityPolicy
say "starting a local control plane with the PodSecurityPolicy admission plugin in $PSP_DIR"
cluster_up "$PSP_DIR" --enable-admission-plugins=PodSecurityPolicy
k apply -f - >/dev/null <<'YAML'
# The upstream "restricted" example policy, with seccomp pinned to the runtime default.
apiVersion: policy/v1beta1
kind: PodSecurityPolicy
metadata:
  name: bench-restricted
  annotations:
    seccomp.security.alpha.kubernetes.io/allowedProfileNames: runtime/default
    seccomp.security.alpha.kubernetes.io/defaultProfileName: runtime/default
spec:
  privileged: false
  allowPrivilegeEscalation: false
  requiredDropCapabilities: [ALL]
  volumes: [configMap, emptyDir, projected, secret, downwardAPI, persistentVolumeClaim]
  hostNetwork: false
  hostIPC: false
  hostPID: false
  runAsUser: {rule: MustRunAsNonRoot}
  seLinux: {rule: RunAsAny}
  supplementalGroups: {rule: MustRunAs, ranges: [{min: 1, max: 65535}]}
  fsGroup: {rule: MustRunAs, ranges: [{min: 1, max: 65535}]}
  readOnlyRootFilesystem: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: bench-psp-restricted}
rules:
- {apiGroups: [policy], resources: [podsecuritypolicies], resourceNames: [bench-restricted], verbs: [use]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bench-psp-restricted}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bench-psp-restricted}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}
YAML
wait_for 30 privileged_probe 'PodSecurityPolicy: unable to admit pod' ||
  die "the PodSecurityPolicy plugin does not refuse a privileged pod; see $OUT/cluster.log"
bench "PodSecurityPolicy"
say "stopping the local control plane in $PSP_DIR"
cluster_down "$PSP_DIR"

# ---------------------------------------------------------------- the table
echo
printf 'Pod create on kube-apiserver v1.20.2 (local control plane), %s pods per row, %s warm-up creates not counted; %s\n' \
  "$PODS" "$WARMUP" "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
awk -F'\t' '
  BEGIN {
    printf "%-20s %3s %6s %9s %9s %9s %9s %10s %14s\n", "configuration", "c", "pods", "p50 ms", "p90 ms", "p99 ms", "max ms", "creates/s", "p50 vs none*"
  }
  # The baseline of each concurrency: the mean of the "no webhook" rows (before and after (b)).
  { rows[NR] = $0; if ($1 ~ /^no webhook/) { sum[$2] += $4; n[$2]++ } }
  END {
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      d = (f[2] in n) ? sprintf("%+.2f ms", f[4] - sum[f[2]] / n[f[2]]) : "-"
      if (f[1] ~ /^no webhook/) d = ""
      printf "%-20s %3s %6s %9s %9s %9s %9s %10s %14s\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], d
    }
  }' "$OUT/results.tsv" | tee "$OUT/table.txt"
echo "* against the mean p50 of the two no-webhook rows at the same concurrency"
echo "time inside palisade-webhook per review (its own metrics): $WEBHOOK_MEAN"
echo "(also in $OUT/table.txt; raw rows in $OUT/results.tsv)"
