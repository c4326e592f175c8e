#!/usr/bin/env bash
# Builds Jaeger v2 (all-in-one, OpenTelemetry-collector based) from the
# module pinned in tools/jaeger/go.mod into bin/jaeger at the repository root.
# Skips the build when bin/jaeger is newer than go.mod and go.sum.
# The first build takes about 10 minutes on two cores (116 MiB binary).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/bin/jaeger"
if [[ -x "$out" && "$out" -nt "$here/go.mod" && "$out" -nt "$here/go.sum" ]]; then
	echo "bin/jaeger is up to date"
	exit 0
fi
mkdir -p "$root/bin"
echo "building bin/jaeger (Jaeger $(awk '$1=="require" && $2=="github.com/jaegertracing/jaeger"{print $3}' "$here/go.mod")); the first build takes about 10 minutes" >&2
cd "$here"
# Build into a temporary name so an interrupted build never leaves a
# half-written binary that looks up to date.
timeout "${JAEGER_BUILD_TIMEOUT:-30m}" go build -trimpath -o "$out.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
mv "$out.tmp" "$out"
echo "built $out" >&2
