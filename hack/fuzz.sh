#!/usr/bin/env bash
# Runs the scanner's fuzz targets (fuzz/src/bin/*.rs) under AFL++ through cargo-afl, one
# target at a time on one core, FUZZ_SECONDS each (default 60), then prints per target the
# executions, the corpus size (paths), crashes and hangs, and copies crash and hang inputs
# to fuzz/crashes/<target>/. Exit status 1 when any target crashed or hung.
#
#   hack/fuzz.sh                 every target
#   hack/fuzz.sh dpkg osv        only these
#   hack/fuzz.sh --list          the target names
#   FUZZ_SECONDS=600 hack/fuzz.sh layer
#
# Seeds: the small text seeds in fuzz/seeds/<target>/, plus seeds made here from what the
# machine has (the head of /var/lib/dpkg/status, layer tars of them, a small jar from
# /usr/share/java, an ELF with the .go.buildinfo section of a Go binary, empty rpm
# databases from rpm and db5.3_load) into FUZZ_WORK (default: a fresh temporary directory).
# The build goes to CARGO_TARGET_DIR (default target/fuzz). Installs cargo-afl (crates.io)
# and builds its AFL++ when missing. No system setting is changed: AFL++ is told to skip
# its CPU-governor and core-pattern checks instead.
set -euo pipefail

TARGETS=(layer dpkg apk rpm_header rpm_bdb rpm_ndb rpm_sqlite elf_buildinfo zip_jar lang_metadata osv updateinfo)

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  --list)
    printf '%s\n' "${TARGETS[@]}"
    exit 0
    ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/fuzz}
work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/palisade-fuzz.XXXXXX")}
mkdir -p "$work"

selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${TARGETS[@]}")
for t in "${selected[@]}"; do
  [[ " ${TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (--list)" >&2; exit 2; }
done

# cargo-afl, and the AFL++ it builds for this rustc.
if ! cargo afl --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-afl" >&2
  cargo install cargo-afl --locked
fi
# afl-fuzz -h exits non-zero even when present: look for its usage line instead.
if [[ "$(cargo afl fuzz -h 2>&1 || true)" != *"afl-fuzz ["* ]]; then
  echo "fuzz.sh: building AFL++ for cargo-afl" >&2
  cargo afl config --build
fi

echo "fuzz.sh: building the targets (release, instrumented) into $CARGO_TARGET_DIR" >&2
(cd "$repo/fuzz" && cargo afl build --release --locked)
bin=$CARGO_TARGET_DIR/release

# --- seeds -----------------------------------------------------------------------------
seeds=$work/seeds
rm -rf "$seeds"
for t in "${TARGETS[@]}"; do
  mkdir -p "$seeds/$t"
  if [ -d "$repo/fuzz/seeds/$t" ]; then cp "$repo/fuzz/seeds/$t/"* "$seeds/$t/"; fi
done

# dpkg: the first stanzas of this machine's status file.
if [ -r /var/lib/dpkg/status ]; then
  awk 'BEGIN{RS=""; ORS="\n\n"} NR<=3' /var/lib/dpkg/status >"$seeds/dpkg/host-status"
fi

# layer: a tar of an os-release, the dpkg and apk databases and a package.json, plain,
# gzip and zstd, plus one with a symlink and a whiteout.
root=$work/rootfs
rm -rf "$root"
mkdir -p "$root/etc" "$root/var/lib/dpkg" "$root/lib/apk/db" "$root/app/node_modules/x"
printf 'ID=debian\nVERSION_ID="12"\n' >"$root/etc/os-release"
cp "$seeds/dpkg/status" "$root/var/lib/dpkg/status"
cp "$seeds/apk/installed" "$root/lib/apk/db/installed"
printf '{"name":"x","version":"1.0.0"}\n' >"$root/app/node_modules/x/package.json"
tar -C "$root" --owner=0 --group=0 -cf "$seeds/layer/plain.tar" etc var lib app
gzip -9nc "$seeds/layer/plain.tar" >"$seeds/layer/layer.tar.gz"
if command -v zstd >/dev/null; then zstd -q -19 -c "$seeds/layer/plain.tar" >"$seeds/layer/layer.tar.zst"; fi
ln -s os-release "$root/etc/os-release.link"
touch "$root/etc/.wh.passwd" "$root/app/.wh..wh..opq"
tar -C "$root" --owner=0 --group=0 -cf "$seeds/layer/whiteouts.tar" etc/os-release.link etc/.wh.passwd app/.wh..wh..opq

# zip_jar: the smallest jars Debian installed (AFL++ skips seeds over 1 MB).
if [ -d /usr/share/java ]; then
  find /usr/share/java -maxdepth 1 -type f -name '*.jar' -size -64k -printf '%s %p\n' 2>/dev/null |
    sort -n | head -3 | while read -r _ jar; do cp "$jar" "$seeds/zip_jar/"; done
fi
python3 - "$seeds/zip_jar/made.jar" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Title: x\nImplementation-Version: 1.0\n")
    z.writestr("META-INF/maven/org.example/x/pom.properties", "groupId=org.example\nartifactId=x\nversion=1.0\n")
PY

# elf_buildinfo: an ELF carrying only the .go.buildinfo section of a Go binary found here,
# and a cargo-auditable dependency list (compressed; the target takes it after a `z`).
for go_bin in /usr/bin/docker-registry /usr/bin/containerd /usr/bin/skopeo /usr/bin/umoci; do
  if [ -x "$go_bin" ] && objcopy --only-section=.go.buildinfo "$go_bin" "$seeds/elf_buildinfo/go.elf" 2>/dev/null; then
    break
  fi
  rm -f "$seeds/elf_buildinfo/go.elf"
done
python3 - "$seeds/elf_buildinfo/auditable" <<'PY'
import sys, zlib
deps = b'{"packages":[{"name":"serde","version":"1.0.200","source":"crates.io"},{"name":"app","version":"0.1.0","source":"local","root":true,"dependencies":[0]}]}'
open(sys.argv[1], "wb").write(b"z" + zlib.compress(deps))
PY

# rpm: one header blob (name, version, release, arch), the same in a Berkeley DB hash file
# written by db5.3_load, and empty ndb and SQLite databases from rpm --initdb.
python3 - "$seeds/rpm_header/header" "$work/bdb.txt" <<'PY'
import struct, sys
entries = [(1000, 6, b"bash\0"), (1001, 6, b"5.1.8\0"), (1002, 6, b"6.el9\0"),
           (1022, 6, b"x86_64\0"), (1044, 6, b"bash-5.1.8-6.el9.src.rpm\0")]
index, data = b"", b""
for tag, kind, value in entries:
    index += struct.pack(">IIII", tag, kind, len(data), 1)
    data += value
blob = struct.pack(">II", len(entries), len(data)) + index + data
open(sys.argv[1], "wb").write(blob)
with open(sys.argv[2], "w") as f:
    f.write("VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n")
    f.write(" " + struct.pack("<I", 1).hex() + "\n " + blob.hex() + "\nDATA=END\n")
PY
if command -v db5.3_load >/dev/null; then
  db5.3_load -f "$work/bdb.txt" "$seeds/rpm_bdb/Packages" || true
fi
if command -v rpm >/dev/null; then
  for backend in ndb sqlite; do
    d=$work/rpmdb-$backend
    rm -rf "$d"
    mkdir -p "$d"
    rpm --dbpath "$d" --define "_db_backend $backend" --initdb 2>/dev/null || true
  done
  [ -f "$work/rpmdb-ndb/Packages.db" ] && cp "$work/rpmdb-ndb/Packages.db" "$seeds/rpm_ndb/"
  # Two real packages (an epoch, a sub-package) in the SQLite database, so the fuzzer starts
  # from rows and header blobs rather than an empty table.
  top=$work/rpmbuild
  rm -rf "$top"
  mkdir -p "$top/SPECS"
  printf '%s\n' 'Name: seed' 'Epoch: 1' 'Version: 1.2.3' 'Release: 4.el9' 'Summary: seed' \
    'License: MIT' 'BuildArch: noarch' '%description' 'seed' '%package libs' \
    'Summary: seed libraries' '%description libs' 'libraries' '%files' '%files libs' \
    >"$top/SPECS/seed.spec"
  if command -v rpmbuild >/dev/null &&
    rpmbuild --define "_topdir $top" -bb "$top/SPECS/seed.spec" >"$work/rpmbuild.log" 2>&1; then
    rpm --dbpath "$work/rpmdb-sqlite" --define "_db_backend sqlite" -i --justdb --nodeps \
      --ignorearch --ignoreos "$top"/RPMS/noarch/*.rpm >>"$work/rpmbuild.log" 2>&1 || true
  fi
  # rpm_sqlite takes two bytes (where the WAL starts) before the database.
  if [ -f "$work/rpmdb-sqlite/rpmdb.sqlite" ]; then
    { printf '\xff\xff'; cat "$work/rpmdb-sqlite/rpmdb.sqlite"; } >"$seeds/rpm_sqlite/empty"
  fi
fi
# osv: the JSON seed as a one-file zip export too.
python3 - "$seeds/osv/debian.json" "$seeds/osv/export.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "DSA-5000-1.json")
PY
# updateinfo: the XML seed gzip-compressed too, as repositories serve it.
gzip -9nc "$seeds/updateinfo/al2.xml" >"$seeds/updateinfo/al2.xml.gz"
# A target without any seed still starts.
for t in "${TARGETS[@]}"; do
  [ -n "$(ls -A "$seeds/$t")" ] || printf 'x' >"$seeds/$t/empty"
done

# --- runs ------------------------------------------------------------------------------
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_AFFINITY=1 AFL_SKIP_CRASHES=1 AFL_QUIET=1
stat() { awk -F' *: *' -v k="$2" '$1==k {print $2}' "$1" 2>/dev/null || true; }

results=()
failed=0
start=$SECONDS
for t in "${selected[@]}"; do
  out=$work/out/$t
  rm -rf "$out"
  mkdir -p "$work/out"
  echo "fuzz.sh: $t for ${seconds}s" >&2
  cargo afl fuzz -V "$seconds" -t 2000 -m none -i "$seeds/$t" -o "$out" -- "$bin/$t" \
    >"$work/$t.log" 2>&1 || echo "fuzz.sh: afl-fuzz for $t exited with $? (see $work/$t.log)" >&2
  s=$out/default/fuzzer_stats
  execs=$(stat "$s" execs_done)
  paths=$(stat "$s" corpus_count)
  crashes=$(stat "$s" saved_crashes)
  hangs=$(stat "$s" saved_hangs)
  results+=("$(printf '%-14s %12s %7s %8s %6s' "$t" "${execs:-?}" "${paths:-?}" "${crashes:-?}" "${hangs:-?}")")
  if [ "${crashes:-0}" != 0 ] || [ "${hangs:-0}" != 0 ]; then
    failed=1
    dest=$repo/fuzz/crashes/$t
    mkdir -p "$dest"
    find "$out/default/crashes" "$out/default/hangs" -type f -name 'id:*' \
      -exec sh -c 'for f; do cp "$f" "$0/$(basename "$(dirname "$f")")-$(basename "$f" | tr -c "A-Za-z0-9._-\n" _)"; done' "$dest" {} +
  fi
done

printf '\n%-14s %12s %7s %8s %6s\n' target execs paths crashes hangs
printf '%s\n' "${results[@]}"
echo "total $((SECONDS - start))s; work directory $work"
[ "$failed" = 0 ] || echo "crash and hang inputs copied to fuzz/crashes/<target>/"
exit "$failed"
