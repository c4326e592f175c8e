#!/usr/bin/env bash
# soak.sh is `make soak`: it builds the meridian binary and runs the soak
# (internal/soak) against two gateway processes of it and one redis-server,
# all on 127.0.0.1, which the soak starts on free ports and stops afterwards.
#
# Usage: SOAK_MINUTES=5 scripts/soak.sh [--minutes N] [--keep]
# SOAK_MINUTES (default 5) is the length of the load; setup and the final
# check add about half a minute. Exits non-zero when a bound is broken.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-tools.sh redis

tmp="$(mktemp -d "${TMPDIR:-/tmp}/meridian-soakbin.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/meridian" ./cmd/meridian
go build -o "$tmp/soak" ./internal/soak/run
"$tmp/soak" --meridian "$tmp/meridian" "$@"
