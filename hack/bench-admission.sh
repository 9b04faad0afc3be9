#!/usr/bin/env bash
# `make bench-admission`: the cost of admission on the pod-create call, configuration beside
# configuration, each on a cluster of its own (hack/local-cluster.sh; Kubernetes v1.20.2),
# all kept up side by side and measured in interleaved rounds, so that the machine's drift
# (more than a millisecond between rows measured one after another) falls on every row alike:
#
#   no webhook          a plain API server
#   no-op webhook       an API server calling a webhook that admits at once (noop-webhook,
#                       over TLS on loopback): the floor any webhook pays here
#   no-op webhook (pod) the same no-op webhook deployed as Palisade's chart deploys it: two
#                       pods on the real node behind a Service, beside the installed
#                       Palisade (which leaves its namespace out): the floor in the deployed
#                       shape
#   Palisade (process)  palisade-webhook and palisade-operator as local processes, the
#                       webhook registered by URL on loopback
#   Palisade (chart)    Palisade installed by its Helm chart from the images `make images`
#                       builds, in pods on the real node, called through its Service
#   PodSecurityPolicy   an API server with the PodSecurityPolicy admission plugin and a
#                       restricted PSP (the in-process admission of Kubernetes ≤ 1.24)
#
# Both Palisade rows judge with an Enforce SecurityPolicy (restricted preset) matching the
# namespace. Every created pod complies (and names a scheduler that does not exist, so no
# scheduler works on it), so each configuration admits all of them; a refused create fails
# the run. Each round measures every configuration (in an order that rotates from round to
# round) at each concurrency (default 1, for latency, and 8, for throughput): a few warm-up
# creates, then PER_ROUND measured ones. The table gives the percentiles over all rounds.
# A benchmark, not a test: it prints figures and asserts nothing about time.
#
# Variables: PALISADE_BENCH_ROUNDS (10), PALISADE_BENCH_PER_ROUND (50),
# PALISADE_BENCH_WARMUP (5 per round, 50 before the first), PALISADE_BENCH_CONCURRENCY (1,8),
# PALISADE_BENCH_DIR (target/bench-admission: results, logs). The clusters live in
# target/bench-<name> and are stopped at the end, also on failure or Ctrl-C. The chart's
# cluster has the real node: no other cluster with a node may run meanwhile
# (`make run`, `make e2e`).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
ROUNDS=${PALISADE_BENCH_ROUNDS:-10}
PER_ROUND=${PALISADE_BENCH_PER_ROUND:-50}
WARMUP=${PALISADE_BENCH_WARMUP:-5}
CONCURRENCY=${PALISADE_BENCH_CONCURRENCY:-1,8}
OUT=$(realpath -m "${PALISADE_BENCH_DIR:-target/bench-admission}")
BIN=$(realpath -m "${CARGO_TARGET_DIR:-target}/release")
NS=palisade-bench
SYSTEM_NS=palisade-system
readonly CONFIGS=(plain noop process pod chart psp)
declare -A LABEL=(
  [plain]="no webhook" [noop]="no-op webhook" [process]="Palisade (process)"
  [pod]="no-op webhook (pod)" [chart]="Palisade (chart)" [psp]="PodSecurityPolicy"
)
# The in-pod no-op webhook shares the chart's cluster, in a namespace of its own.
NOOP_NS=palisade-bench-noop
declare -A NSOF=([pod]=$NOOP_NS)
declare -A KCFG=()

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

KUBECONFIG=""
k() { "$PALISADE_KUBECTL" --kubeconfig "$KUBECONFIG" --request-timeout=30s "$@"; }
use() { KUBECONFIG=${KCFG[$1]}; }

cluster_up() { # config [local-cluster.sh up flags...]
  local name=$1 dir="$REPO/target/bench-$1" env_lines
  shift
  hack/local-cluster.sh down --dir "$dir" >/dev/null 2>&1 || true
  CLUSTERS+=("$dir")
  env_lines=$(hack/local-cluster.sh up --dir "$dir" "$@" 2>>"$OUT/cluster.log") ||
    die "the cluster for ${LABEL[$name]} did not start; see $OUT/cluster.log"
  eval "$env_lines"
  KCFG[$name]=$KUBECONFIG
  k create namespace "$NS" >/dev/null
  k label namespace "$NS" palisade.dev/bench=true >/dev/null
  wait_for 60 k -n "$NS" get serviceaccount default || die "no default ServiceAccount in $NS"
}

# A privileged pod, sent as a server-side dry run; succeeds when the output contains $1
# (each judging configuration refuses it; the others print its name).
privileged_probe() {
  local out
  out=$(k -n "${PROBE_NS:-$NS}" create --dry-run=server -o name -f - 2>&1 <<'YAML' || true
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

restricted_policy() {
  k apply -f config/crd/ -R >/dev/null
  k wait --for condition=established --timeout=60s crd/securitypolicies.palisade.dev >/dev/null
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
}

rm -rf "$OUT"
mkdir -p "$OUT"

say "building palisade-webhook, palisade-operator, pod-create-bench and noop-webhook (release)"
cargo build --release --locked -q -p palisade-webhook -p palisade-operator -p palisade-bench

# ---------------------------------------------------------------- the clusters

say "no webhook: a control plane"
cluster_up plain --no-node

say "no-op webhook: a control plane and noop-webhook"
cluster_up noop --no-node
NOOP_PORT=$(free_port)
"$BIN/noop-webhook" --addr "127.0.0.1:$NOOP_PORT" --cert-out "$OUT/noop.crt" >"$OUT/noop-webhook.log" 2>&1 &
PIDS+=($!)
wait_for 30 test -s "$OUT/noop.crt" || die "noop-webhook wrote no certificate; see $OUT/noop-webhook.log"
k apply -f - >/dev/null <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: bench-noop}
webhooks:
  - name: noop.bench.palisade.dev
    clientConfig:
      url: https://127.0.0.1:$NOOP_PORT/validate
      caBundle: $(base64 -w0 <"$OUT/noop.crt")
    rules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods], scope: Namespaced}
    namespaceSelector: {matchLabels: {palisade.dev/bench: "true"}}
    sideEffects: None
    admissionReviewVersions: [v1]
    failurePolicy: Fail
    timeoutSeconds: 5
YAML
# A privileged pod passes (nothing judges), but only once the API server calls the webhook:
# its log shows the first review.
wait_for 30 privileged_probe 'pod/bench-probe' || die "the no-op webhook's cluster refuses pods; see $OUT/probe.txt"

say "Palisade (process): a control plane, palisade-operator and palisade-webhook as local processes"
cluster_up process --no-node
restricted_policy
k create namespace "$SYSTEM_NS" >/dev/null
WEBHOOK_PORT=$(free_port)
mkdir -p "$OUT/certs"
"$BIN/palisade-operator" --namespace "$SYSTEM_NS" --leader-elect=false \
  --admin-addr "127.0.0.1:$(free_port)" --webhook-url "https://127.0.0.1:$WEBHOOK_PORT" \
  --cert-dir "$OUT/certs" --audit-interval 1h --protect-exempt-label=true --scanning=false \
  >"$OUT/operator.log" 2>&1 &
PIDS+=($!)
wait_for 60 test -s "$OUT/certs/tls.key" || die "palisade-operator wrote no certificate; see $OUT/operator.log"
WEBHOOK_ADMIN=127.0.0.1:$(free_port)
RUST_LOG=warn "$BIN/palisade-webhook" --addr "127.0.0.1:$WEBHOOK_PORT" --admin-addr "$WEBHOOK_ADMIN" \
  --tls-cert-file "$OUT/certs/tls.crt" --tls-key-file "$OUT/certs/tls.key" --namespace "$SYSTEM_NS" \
  >"$OUT/webhook.log" 2>&1 &
PIDS+=($!)
wait_for 60 curl -fsS "http://$WEBHOOK_ADMIN/readyz" || die "palisade-webhook not ready; see $OUT/webhook.log"
wait_for 60 privileged_probe 'admission webhook "pods.palisade.dev" denied the request' ||
  die "the API server does not call Palisade; see $OUT/operator.log and $OUT/webhook.log"

say "Palisade (chart): a cluster with the node, the images (make images) and the chart"
cluster_up chart
# The in-pod no-op webhook's namespace, which Palisade leaves out.
k create namespace "$NOOP_NS" >/dev/null
k label namespace "$NOOP_NS" palisade.dev/bench-noop=true >/dev/null
wait_for 60 k -n "$NOOP_NS" get serviceaccount default || die "no default ServiceAccount in $NOOP_NS"
images=$(hack/images.sh --registry "$PALISADE_REGISTRY" 2>>"$OUT/images.log") || die "make images failed; see $OUT/images.log"
tag=$(awk 'NR == 1 { n = split($1, a, ":"); print a[n] }' <<<"$images")
"$(hack/helm.sh --path)" upgrade --install palisade charts/palisade --namespace "$SYSTEM_NS" --create-namespace \
  --set "image.registry=$PALISADE_REGISTRY" --set "image.tag=$tag" --set scan.enabled=false \
  --set logLevel=warn --set "excludedNamespaces={$NOOP_NS}" --wait --timeout 5m >"$OUT/helm.log" 2>&1 || die "helm install failed; see $OUT/helm.log"
restricted_policy
wait_for 120 privileged_probe 'admission webhook "pods.palisade.dev" denied the request' ||
  die "the API server does not call the installed Palisade; see $OUT/probe.txt"

say "no-op webhook (pod): its image, two pods behind a Service on the same node, registered by Service"
KCFG[pod]=$KUBECONFIG
hack/image-rootfs.sh "$BIN" "$REPO/target/bench-noop-rootfs" noop-webhook 2>>"$OUT/images.log"
b=(buildah --root "$REPO/target/buildah/storage" --runroot "$REPO/target/buildah/run" --storage-driver vfs)
{
  ctr=$("${b[@]}" from scratch)
  "${b[@]}" copy "$ctr" "$REPO/target/bench-noop-rootfs/base/" /
  "${b[@]}" copy "$ctr" "$REPO/target/bench-noop-rootfs/image/noop-webhook/" /
  "${b[@]}" config --entrypoint '["/usr/local/bin/noop-webhook"]' --user 65532:65532 "$ctr"
  "${b[@]}" commit --rm "$ctr" "$PALISADE_REGISTRY/noop-webhook:bench"
  "${b[@]}" push --tls-verify=false "$PALISADE_REGISTRY/noop-webhook:bench" "docker://$PALISADE_REGISTRY/noop-webhook:bench"
} >>"$OUT/images.log" 2>&1 || die "the no-op webhook's image failed; see $OUT/images.log"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-noop \
  -addext "subjectAltName=DNS:bench-noop.palisade-bench-system.svc" \
  -keyout "$OUT/noop-pod.key" -out "$OUT/noop-pod.crt" >>"$OUT/images.log" 2>&1
k create namespace palisade-bench-system >/dev/null
k -n palisade-bench-system create secret tls bench-noop --cert "$OUT/noop-pod.crt" --key "$OUT/noop-pod.key" >/dev/null
k apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: bench-noop, namespace: palisade-bench-system}
spec:
  replicas: 2
  selector: {matchLabels: {app: bench-noop}}
  template:
    metadata: {labels: {app: bench-noop}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: noop
          image: $PALISADE_REGISTRY/noop-webhook:bench
          args: [--addr, "0.0.0.0:8443", --tls-cert-file, /tls/tls.crt, --tls-key-file, /tls/tls.key]
          ports: [{name: https, containerPort: 8443, protocol: TCP}]
          readinessProbe: {tcpSocket: {port: https}, periodSeconds: 2}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          volumeMounts: [{name: tls, mountPath: /tls, readOnly: true}]
      volumes: [{name: tls, secret: {secretName: bench-noop}}]
---
apiVersion: v1
kind: Service
metadata: {name: bench-noop, namespace: palisade-bench-system}
spec:
  selector: {app: bench-noop}
  ports: [{name: https, port: 443, targetPort: https, protocol: TCP}]
YAML
k -n palisade-bench-system rollout status deploy/bench-noop --timeout=120s >/dev/null ||
  die "the no-op webhook's pods are not Ready: $(k -n palisade-bench-system get pods 2>&1)"
k apply -f - >/dev/null <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: bench-noop-pod}
webhooks:
  - name: noop-pod.bench.palisade.dev
    clientConfig:
      service: {namespace: palisade-bench-system, name: bench-noop, path: /validate, port: 443}
      caBundle: $(base64 -w0 <"$OUT/noop-pod.crt")
    rules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods], scope: Namespaced}
    namespaceSelector: {matchLabels: {palisade.dev/bench-noop: "true"}}
    sideEffects: None
    admissionReviewVersions: [v1]
    failurePolicy: Fail
    timeoutSeconds: 5
YAML
# Admitted: the no-op webhook answers, and Palisade leaves the namespace out.
PROBE_NS=$NOOP_NS wait_for 60 privileged_probe 'pod/bench-probe' ||
  die "pods in $NOOP_NS are refused; see $OUT/probe.txt"

say "PodSecurityPolicy: a control plane with the PodSecurityPolicy admission plugin"
PALISADE_APISERVER_EXTRA_FLAGS=--enable-admission-plugins=PodSecurityPolicy cluster_up psp --no-node
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

# ---------------------------------------------------------------- the rounds

bench() { # config round warmup
  use "$1"
  "$BIN/pod-create-bench" --kubeconfig "$KUBECONFIG" --namespace "${NSOF[$1]:-$NS}" --label "${LABEL[$1]}" \
    --pods "$PER_ROUND" --warmup "$3" --concurrency "$CONCURRENCY" \
    --out "$OUT/rounds.tsv" --raw "$OUT/latencies.tsv" 2>>"$OUT/rounds.log" ||
    die "${LABEL[$1]}, round $2: creates failed; see $OUT/rounds.log"
}
say "warming up every configuration ($((WARMUP * 10)) creates each, not counted)"
for c in "${CONFIGS[@]}"; do
  use "$c"
  "$BIN/pod-create-bench" --kubeconfig "$KUBECONFIG" --namespace "${NSOF[$c]:-$NS}" --label warm-up \
    --pods 1 --warmup $((WARMUP * 10)) --concurrency 1 >/dev/null 2>>"$OUT/rounds.log" ||
    die "${LABEL[$c]}: warm-up creates failed; see $OUT/rounds.log"
done
n=${#CONFIGS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  order=()
  for ((i = 0; i < n; i++)); do order+=("${CONFIGS[(i + round - 1) % n]}"); done
  say "round $round of $ROUNDS: ${order[*]} ($PER_ROUND creates each at concurrency $CONCURRENCY)"
  for c in "${order[@]}"; do bench "$c" "$round" "$WARMUP"; done
done

# Every create the process row measured was judged by the policy, not skipped.
curl -fsS "http://$WEBHOOK_ADMIN/metrics" >"$OUT/webhook-metrics.txt" || true
WEBHOOK_MEAN=$(awk '/^palisade_admission_duration_seconds_sum/ { s = $2 } /^palisade_admission_duration_seconds_count/ { n = $2 }
  END { if (n > 0) printf "%.3f ms mean over %d reviews", s / n * 1000, n; else print "unknown" }' "$OUT/webhook-metrics.txt")

# The in-pod no-op webhook was called for every create in its namespace (the API server's
# own count of calls to it).
use pod
NOOP_CALLS=$(k get --raw /metrics 2>/dev/null | awk '/^apiserver_admission_webhook_admission_duration_seconds_count/ && /noop-pod.bench.palisade.dev/ { n += $2 } END { print n + 0 }')

# ---------------------------------------------------------------- the table
echo
printf 'Pod create on kube-apiserver v1.20.2 (local clusters side by side), %s rounds of %s creates per configuration and concurrency, interleaved; %s\n' \
  "$ROUNDS" "$PER_ROUND" "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# latencies.tsv: label, concurrency, milliseconds (one line per create); rounds.tsv: the
# per-round summaries, whose creates/s are averaged.
sort -t$'\t' -k1,1 -k2,2n -k3,3g "$OUT/latencies.tsv" | awk -F'\t' '
  function flush() {
    if (cnt == 0) return
    key = label "\t" c
    p50[key] = v[rank(50)]; p90[key] = v[rank(90)]; p99[key] = v[rank(99)]; mx[key] = v[cnt]; num[key] = cnt
    keys[++nk] = key
  }
  function rank(p,  r) { r = int((p / 100) * cnt); if (r < (p / 100) * cnt) r++; if (r < 1) r = 1; return r }
  FNR == NR { rate[$1 "\t" $2] += $8; rounds[$1 "\t" $2]++; next }
  $1 != label || $2 != c { flush(); label = $1; c = $2; cnt = 0 }
  { v[++cnt] = $3 }
  END {
    flush()
    printf "%-20s %3s %6s %9s %9s %9s %9s %10s %12s %12s\n", "configuration", "c", "pods", "p50 ms", "p90 ms", "p99 ms", "max ms", "creates/s", "p50 vs none", "p99 vs none"
    for (i = 1; i <= nk; i++) {
      split(keys[i], f, "\t")
      base = "no webhook\t" f[2]
      d50 = (f[1] == "no webhook" || !(base in p50)) ? "" : sprintf("%+.2f", p50[keys[i]] - p50[base])
      d99 = (f[1] == "no webhook" || !(base in p99)) ? "" : sprintf("%+.2f", p99[keys[i]] - p99[base])
      printf "%-20s %3s %6s %9.2f %9.2f %9.2f %9.2f %10.0f %12s %12s\n", f[1], f[2], num[keys[i]], p50[keys[i]], p90[keys[i]], p99[keys[i]], mx[keys[i]], rate[keys[i]] / rounds[keys[i]], d50, d99
    }
  }' "$OUT/rounds.tsv" - >"$OUT/table.unordered"
# The rows in the order of the configurations above.
{
  head -n 1 "$OUT/table.unordered"
  for c in "${CONFIGS[@]}"; do
    # The label as the table pads it: "no-op webhook" must not match "no-op webhook (pod)".
    printf -v padded '%-20s ' "${LABEL[$c]}"
    while IFS= read -r line; do
      if [[ $line == "$padded"* ]]; then printf '%s\n' "$line"; fi
    done < <(tail -n +2 "$OUT/table.unordered")
  done
} | tee "$OUT/table.txt"
echo "time inside palisade-webhook per review (process row, its own metrics): $WEBHOOK_MEAN"
echo "calls to the in-pod no-op webhook, by the API server's count: $NOOP_CALLS"
echo "(also in $OUT/table.txt; every create in $OUT/latencies.tsv, per-round rows in $OUT/rounds.tsv)"
