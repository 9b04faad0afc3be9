#!/usr/bin/env bash
# `make bench-reports`: the memory of palisade-operator and palisade-webhook with many
# ImageScanReports cached, against the same two processes with none, on the local control
# plane (hack/local-cluster.sh).
#
# Each report is a Debian bookworm image's scan as the operator writes it: phase Scanned,
# counts by severity (all and fixable), the 100 worst findings (findingsOmitted counts the
# rest), OS, ecosystem, scanner and database versions. The status goes through the /status
# subresource by server-side apply (kubectl apply --subresource=status, kubectl >= 1.27).
# The reports count as fresh, so the operator has nothing to scan: scannerVersion is this
# build's, databaseVersion that of the Debian:12 export in a local --scan-db directory, and
# scannedAt is now (--scan-max-report-age 24h). A "scanning" line in the operator's log
# fails the run, since the figures would then include scans.
#
# Both processes run release builds with scanning on (the webhook with --scan-gate, which
# caches every report through its watch); once both answer /readyz and the operator has
# reconciled every report, they settle for PALISADE_BENCH_SETTLE seconds, then VmHWM (peak
# RSS) and VmRSS (current) are read from /proc.
#
# Variables: PALISADE_BENCH_REPORTS (1000), PALISADE_BENCH_SETTLE (10),
# PALISADE_BENCH_DIR (target/bench-reports: results and logs; the cluster lives in
# target/bench-reports-cluster and is stopped at the end, also on failure or Ctrl-C).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
REPORTS=${PALISADE_BENCH_REPORTS:-1000}
SETTLE=${PALISADE_BENCH_SETTLE:-10}
OUT=$(realpath -m "${PALISADE_BENCH_DIR:-target/bench-reports}")
BIN=$(realpath -m "${CARGO_TARGET_DIR:-target}/release")
CLUSTER_DIR=$REPO/target/bench-reports-cluster
SYSTEM_NS=palisade-system

[[ $REPORTS =~ ^[0-9]+$ ]] || {
  echo "PALISADE_BENCH_REPORTS must be a number" >&2
  exit 2
}

say() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

CLUSTER_UP=
PIDS=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n $CLUSTER_UP ]]; then
    hack/local-cluster.sh down --dir "$CLUSTER_DIR" >/dev/null 2>&1 || printf 'could not stop the cluster in %s\n' "$CLUSTER_DIR" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_pid, free_port, wait_for
# shellcheck source=hack/lib/processes.sh
source "$REPO/hack/lib/processes.sh"

k() { "$PALISADE_KUBECTL" --kubeconfig "$KUBECONFIG" --request-timeout=60s "$@"; }


# kubectl for the status writes: the cluster's v1.20 kubectl has no --subresource.
STATUS_KUBECTL=
for candidate in kubectl "${PALISADE_KUBECTL:-}"; do
  [[ -n $candidate ]] || continue
  if "$candidate" apply --help 2>/dev/null | grep -q -- '--subresource'; then
    STATUS_KUBECTL=$candidate
    break
  fi
done
[[ -n $STATUS_KUBECTL ]] || die "no kubectl with 'apply --subresource' (1.27 or later) on PATH"

# "VmHWM VmRSS" of a process, in KiB.
memory_of() {
  awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { print h, r }' "/proc/$1/status"
}

reports_scanned() { # admin address; true when the operator counts $REPORTS Scanned reports
  local n
  n=$(curl -fsS "http://$1/metrics" | awk '/^palisade_imagescanreports\{phase="Scanned"\}/ { print $2 }')
  [[ ${n:-0} == "$REPORTS" ]]
}

# Start both, wait until synced, settle, record memory; stop both. $1: reports present.
measure() {
  local count=$1 tag=$2 op_admin wh_admin wh_port op_pid wh_pid
  op_admin=127.0.0.1:$(free_port)
  wh_admin=127.0.0.1:$(free_port)
  wh_port=$(free_port)
  say "$count reports: starting palisade-operator (scanning on) and palisade-webhook (--scan-gate)"
  RUST_LOG=info "$BIN/palisade-operator" --namespace "$SYSTEM_NS" --leader-elect=false \
    --admin-addr "$op_admin" --webhook-url "https://127.0.0.1:$wh_port" \
    --cert-dir "$OUT/certs" --audit-interval 1h \
    --scanning=true --scan-db "$OUT/db" --scan-cache-dir "$OUT/cache-$tag" \
    --scan-max-report-age 24h --scan-db-refresh 6h \
    >"$OUT/operator-$tag.log" 2>&1 &
  op_pid=$!
  PIDS+=("$op_pid")
  wait_for 60 test -s "$OUT/certs/tls.key" || die "palisade-operator wrote no certificate; see $OUT/operator-$tag.log"
  RUST_LOG=info "$BIN/palisade-webhook" --addr "127.0.0.1:$wh_port" --admin-addr "$wh_admin" \
    --tls-cert-file "$OUT/certs/tls.crt" --tls-key-file "$OUT/certs/tls.key" --namespace "$SYSTEM_NS" \
    --scan-gate=true \
    >"$OUT/webhook-$tag.log" 2>&1 &
  wh_pid=$!
  PIDS+=("$wh_pid")
  wait_for 120 curl -fsS "http://$wh_admin/readyz" || die "palisade-webhook not ready; see $OUT/webhook-$tag.log"
  wait_for 120 curl -fsS "http://$op_admin/readyz" || die "palisade-operator not ready; see $OUT/operator-$tag.log"
  if ((count > 0)); then
    wait_for 300 reports_scanned "$op_admin" ||
      die "palisade-operator did not count $REPORTS Scanned reports; see $OUT/operator-$tag.log"
  fi
  say "$count reports: both synced; settling ${SETTLE}s"
  sleep "$SETTLE"
  if ! kill -0 "$op_pid" || ! kill -0 "$wh_pid"; then die "a process exited; see $OUT/*-$tag.log"; fi
  read -r op_hwm op_rss < <(memory_of "$op_pid")
  read -r wh_hwm wh_rss < <(memory_of "$wh_pid")
  curl -fsS "http://$op_admin/metrics" >"$OUT/operator-metrics-$tag.txt" || true
  printf 'palisade-operator\t%s\t%s\t%s\n' "$count" "$op_hwm" "$op_rss" >>"$OUT/results.tsv"
  printf 'palisade-webhook\t%s\t%s\t%s\n' "$count" "$wh_hwm" "$wh_rss" >>"$OUT/results.tsv"
  stop_pid "$wh_pid"
  stop_pid "$op_pid"
  PIDS=()
  # The controller logs "scanning report=… reason=…" before each scan.
  if grep -Eq 'scanning report=|scan failed' "$OUT/operator-$tag.log"; then
    die "palisade-operator scanned images (reports not fresh); see $OUT/operator-$tag.log"
  fi
}

rm -rf "$OUT"
mkdir -p "$OUT/certs"
hack/local-cluster.sh down --dir "$CLUSTER_DIR" >/dev/null 2>&1 || true

say "building palisade-operator and palisade-webhook (release)"
cargo build --release --locked -q -p palisade-webhook -p palisade-operator

# A Debian:12 export with a few advisories: the ecosystem the reports name, so the operator
# loads it, finds the version the reports carry, and re-scans nothing.
python3 - "$OUT/db" <<'EOF'
import json, os, sys, zipfile
eco = os.path.join(sys.argv[1], "Debian:12")
os.makedirs(eco)
advisories = [
    {"id": "DSA-0001-1", "aliases": ["CVE-2099-0001"], "summary": "bench advisory",
     "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.99-1"}]}]}]},
]
with zipfile.ZipFile(os.path.join(eco, "all.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for a in advisories:
        z.writestr(zipfile.ZipInfo(a["id"] + ".json", date_time=(2024, 1, 1, 0, 0, 0)), json.dumps(a))
EOF
DB_VERSION="Debian:12@$(sha256sum "$OUT/db/Debian:12/all.zip" | cut -c1-12)"
SCANNER_VERSION="palisade-scanner/$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)"

say "starting the local control plane in $CLUSTER_DIR"
CLUSTER_UP=1
env_lines=$(hack/local-cluster.sh up --no-node --dir "$CLUSTER_DIR" 2>>"$OUT/cluster.log") ||
  die "the local control plane did not start; see $OUT/cluster.log"
eval "$env_lines"
[[ ${KUBECONFIG:-} == "$CLUSTER_DIR/kubeconfig" ]] || die "hack/local-cluster.sh printed no kubeconfig"
k apply -f config/crd/ -R >/dev/null
k wait --for condition=established --timeout=60s crd/imagescanreports.palisade.dev >/dev/null
k create namespace "$SYSTEM_NS" >/dev/null

: >"$OUT/results.tsv"
measure 0 none

say "writing $REPORTS ImageScanReports (spec, then status through /status by server-side apply)"
python3 - "$REPORTS" "$SCANNER_VERSION" "$DB_VERSION" "$OUT/reports.json" <<'EOF'
import datetime, hashlib, json, sys
count, scanner, db, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
packages = [
    ("openssl", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"), ("glibc", "2.36-9+deb12u3", "2.36-9+deb12u4"),
    ("curl", "7.88.1-10+deb12u4", "7.88.1-10+deb12u5"), ("libxml2", "2.9.14+dfsg-1.3~deb12u1", "2.9.14+dfsg-1.3~deb12u2"),
    ("systemd", "252.19-1~deb12u1", "252.22-1~deb12u1"), ("perl", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2"),
    ("krb5", "1.20.1-2+deb12u1", "1.20.1-2+deb12u2"), ("gnutls28", "3.7.9-2+deb12u1", "3.7.9-2+deb12u2"),
    ("sqlite3", "3.40.1-2", "3.40.1-2+deb12u1"), ("tar", "1.34+dfsg-1.2+deb12u1", None),
    ("expat", "2.5.0-1", "2.5.0-1+deb12u1"), ("util-linux", "2.38.1-5+b1", None),
]
severities = ["Critical"] * 3 + ["High"] * 17 + ["Medium"] * 45 + ["Low"] * 35
items = []
for n in range(count):
    digest = "sha256:" + hashlib.sha256(f"bench-image-{n}".encode()).hexdigest()
    findings, fixable = [], {"critical": 0, "high": 0, "medium": 0, "low": 0, "unknown": 0}
    for i, sev in enumerate(severities):
        pkg, installed, fixed = packages[(n + i) % len(packages)]
        cve = f"CVE-{2021 + i % 4}-{(n * 131 + i * 977) % 50000 + 1000}"
        f = {"id": f"DEBIAN-{cve}", "aliases": [cve], "package": pkg,
             "installedVersion": installed, "severity": sev}
        if fixed:
            f["fixedVersion"] = fixed
            fixable[sev.lower()] += 1
        findings.append(f)
    items.append({
        "apiVersion": "palisade.dev/v1alpha1", "kind": "ImageScanReport",
        "metadata": {"name": digest.replace(":", "-")},
        "spec": {"image": f"registry.example.com/team-{n % 40}/app-{n}:1.{n % 10}@{digest}", "digest": digest},
        "status": {
            "phase": "Scanned",
            "message": "3 Critical, 17 High, 45 Medium, 77 Low",
            "manifestDigest": "sha256:" + hashlib.sha256(f"bench-manifest-{n}".encode()).hexdigest(),
            "platform": "linux/amd64", "os": "Debian GNU/Linux 12 (bookworm)", "ecosystem": "Debian:12",
            "packages": 128 + n % 60,
            "summary": {"critical": 3, "high": 17, "medium": 45, "low": 77, "unknown": 0},
            "fixable": fixable, "findings": findings, "findingsOmitted": 42,
            "scannerVersion": scanner, "databaseVersion": db, "scannedAt": now,
            "scanDurationMs": 600 + n % 900,
        },
    })
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(path, "w"))
EOF
k apply --server-side --field-manager=palisade-bench -f "$OUT/reports.json" >/dev/null
"$STATUS_KUBECTL" --kubeconfig "$KUBECONFIG" --request-timeout=60s apply --server-side \
  --field-manager=palisade-bench --subresource=status -f "$OUT/reports.json" >/dev/null 2>>"$OUT/status-apply.log" ||
  die "the status writes failed; see $OUT/status-apply.log"
scanned=$(k get imagescanreports -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Scanned$' || true)
((scanned == REPORTS)) || die "$scanned of $REPORTS reports are Scanned after the status writes"
say "$REPORTS reports Scanned; $(k get --raw /apis/palisade.dev/v1alpha1/imagescanreports | wc -c) bytes as listed"

measure "$REPORTS" reports

echo
printf 'Memory with ImageScanReports cached (100 findings each), release builds, local control plane; %s\n' \
  "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
awk -F'\t' '
  BEGIN { printf "%-18s %8s %14s %14s\n", "process", "reports", "VmHWM MiB", "VmRSS MiB" }
  { printf "%-18s %8s %14.1f %14.1f\n", $1, $2, $3 / 1024, $4 / 1024 }' "$OUT/results.tsv" | tee "$OUT/table.txt"
echo "(also in $OUT/table.txt; raw KiB in $OUT/results.tsv, logs beside them)"
