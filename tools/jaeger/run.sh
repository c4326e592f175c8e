#!/usr/bin/env bash
# Builds bin/jaeger if needed and runs it in the foreground with
# tools/jaeger/config.yaml: in-memory storage, OTLP on 127.0.0.1:4317 (grpc)
# and 127.0.0.1:4318 (http), query API on http://127.0.0.1:16686.
# Ports can be moved with the MERIDIAN_JAEGER_*_PORT variables documented in
# config.yaml. Stop it with Ctrl-C; its traces are kept in memory only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bash "$here/build.sh"
echo "Jaeger: OTLP http://127.0.0.1:${MERIDIAN_JAEGER_OTLP_HTTP_PORT:-4318} (grpc 127.0.0.1:${MERIDIAN_JAEGER_OTLP_GRPC_PORT:-4317}), query API http://127.0.0.1:${MERIDIAN_JAEGER_QUERY_PORT:-16686}/api/v3/services" >&2
exec "$root/bin/jaeger" --config "$here/config.yaml"
