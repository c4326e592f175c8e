#!/usr/bin/env bash
# test.sh runs the Go tests with the race detector against one real
# redis-server that it starts, on a free 127.0.0.1 port, for the run and stops
# afterwards. Tests find it through MERIDIAN_TEST_REDIS (see
# internal/redistest.FromEnv); tests that start their own servers
# (redistest.Start, StartCluster) still do.
#
# Usage: scripts/test.sh [go test flags] [packages]
# Arguments go to `go test`; if none names a package (./..., ./region,
# github.com/meridian-sd/...), ./... is tested. Exits with go test's status.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-tools.sh redis chromium
# The status page's browser test (gateway/ui_browser_test.go) fails rather
# than skips when Chromium is missing.
export MERIDIAN_TEST_BROWSER=1

tmp="$(mktemp -d "${TMPDIR:-/tmp}/meridian-test.XXXXXX")"
redis_pid=""
cleanup() {
	if [[ -n "$redis_pid" ]] && kill -0 "$redis_pid" 2>/dev/null; then
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$(go run ./internal/redistest/freeport)"
redis-server --port "$port" --bind 127.0.0.1 --protected-mode no --daemonize no \
	--save "" --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
redis_pid=$!

ready=""
for _ in $(seq 1 100); do # 10s
	if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == "PONG" ]]; then
		ready=1
		break
	fi
	if ! kill -0 "$redis_pid" 2>/dev/null; then
		break
	fi
	sleep 0.1
done
if [[ -z "$ready" ]]; then
	echo "test.sh: redis-server on 127.0.0.1:$port did not answer PING; its log:" >&2
	tail -n 20 "$tmp/redis.log" >&2 2>/dev/null || true
	exit 1
fi

export MERIDIAN_TEST_REDIS="redis://127.0.0.1:$port/0"
echo "test.sh: redis-server (pid $redis_pid) on $MERIDIAN_TEST_REDIS" >&2

args=("$@")
has_pkg=""
for a in "${args[@]+"${args[@]}"}"; do
	case "$a" in
	./* | ../* | github.com/meridian-sd/* | all) has_pkg=1 ;;
	esac
done
if [[ -z "$has_pkg" ]]; then
	args+=(./...)
fi

status=0
go test -race -count=1 -timeout 20m "${args[@]}" || status=$?

# Scenario simulations: every built-in scenario twice with the determinism
# check (Makefile sim-check), on full runs only (no package named).
if [[ -z "$has_pkg" ]]; then
	go build -o "$tmp/meridian" ./cmd/meridian
	make --no-print-directory sim-check MERIDIAN_BIN="$tmp/meridian" || status=1
fi
exit "$status"
