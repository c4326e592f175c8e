#!/usr/bin/env bash
# ldflags.sh prints the -ldflags -X arguments that stamp a build with its
# version, commit and build date (internal/buildinfo; meridian --version).
#
# Usage: scripts/ldflags.sh [VERSION]   (default: git describe --tags --always --dirty)
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=github.com/meridian-sd/meridian/internal/buildinfo
version="${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# SOURCE_DATE_EPOCH makes the date reproducible; else the commit's time.
if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
	date="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
else
	date="$(git show -s --format=%cI HEAD 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"
fi
echo "-X $pkg.version=$version -X $pkg.commit=$commit -X $pkg.date=$date"
