#!/usr/bin/env bash
# `make bench-handler`: the CPU cost of one admission review inside palisade-webhook, with
# no cluster and no network: the `admission` bench of the webhook crate drives the real
# router in process with a Pod CREATE as the API server forwards `kubectl apply`, judged by
# an Enforce SecurityPolicy at the restricted level (webhook/benches/admission.rs).
#
# Instructions per review come from callgrind, which counts the same on a busy machine: the
# bench runs LOW and then HIGH reviews, and the difference divided by HIGH-LOW leaves out
# the setup. Wall time per review is the bench's own median of 15 rounds; read it as a
# rough figure on a shared machine.
#
# Variables: CASE (allow | deny), LOW (200), HIGH (2200), CARGO_BUILD_JOBS as cargo reads it.
# Callgrind output stays in target/bench-handler/ for callgrind_annotate.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
CASE=${CASE:-allow}
LOW=${LOW:-200}
HIGH=${HIGH:-2200}
OUT=$(realpath -m "${CARGO_TARGET_DIR:-target}/bench-handler")
mkdir -p "$OUT"

die() { echo "bench-handler: $*" >&2; exit 1; }
if ! command -v valgrind >/dev/null 2>&1; then
  if ((EUID == 0)); then as_root=()
  elif command -v sudo >/dev/null 2>&1; then as_root=(sudo -n)
  else die "valgrind is needed: apt-get install valgrind"
  fi
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o DPkg::Lock::Timeout=600 valgrind >"$OUT/apt.log" 2>&1 ||
    die "apt-get install valgrind failed (log: $OUT/apt.log)"
fi

cargo bench --locked -p palisade-webhook --bench admission --no-run >"$OUT/build.log" 2>&1 ||
    die "the build failed (log: $OUT/build.log)"
BIN=$(sed -n 's/.*Executable .*(\(.*\))$/\1/p' "$OUT/build.log" | tail -n 1)
[ -x "$BIN" ] || die "cannot find the bench executable in $OUT/build.log"

instructions() {
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$CASE.$1" \
        "$BIN" --iters "$1" --case "$CASE" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

low=$(instructions "$LOW")
high=$(instructions "$HIGH")
echo "$CASE: $(( (high - low) / (HIGH - LOW) )) instructions per review (callgrind: $low at $LOW reviews, $high at $HIGH)"
"$BIN" --case "$CASE"
