#!/usr/bin/env bash
# release.sh is `make release`: static binaries (CGO_ENABLED=0, -trimpath)
# for linux/amd64, linux/arm64 and darwin/arm64 in dist/, each stamped with
# the version, commit and build date (meridian --version), plus
# dist/SHA256SUMS (check with: cd dist && sha256sum -c SHA256SUMS).
#
# Usage: scripts/release.sh
# Environment:
#   VERSION    the version to stamp (default: git describe --tags --always --dirty)
#   PLATFORMS  space-separated GOOS/GOARCH list (default: linux/amd64 linux/arm64 darwin/arm64)
#   DIST       output directory (default: dist)
set -euo pipefail
cd "$(dirname "$0")/.."

version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
platforms="${PLATFORMS:-linux/amd64 linux/arm64 darwin/arm64}"
dist="${DIST:-dist}"
ldflags="$(bash scripts/ldflags.sh "$version")"

rm -rf "$dist"
mkdir -p "$dist"
for p in $platforms; do
	os="${p%/*}" arch="${p#*/}"
	out="$dist/meridian-$version-$os-$arch"
	echo "release.sh: $out" >&2
	CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath -ldflags "-s -w $ldflags" -o "$out" ./cmd/meridian
done
(cd "$dist" && sha256sum meridian-* >SHA256SUMS)
cat "$dist/SHA256SUMS"
