#!/usr/bin/env bash
# make e2e-jaeger: builds Jaeger, starts it on free 127.0.0.1 ports, runs the
# opt-in end-to-end tests in ./e2e against it, and stops it by its PID.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
bash "$here/build.sh"

# free_port prints a random port in 20000-59999 on which nothing accepts
# connections on 127.0.0.1 and that no earlier call printed.
taken=" "
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		[[ "$taken" == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			taken="$taken$p "
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

workdir="$(mktemp -d)"
pid=""
stop_jaeger() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=""
}
cleanup() { stop_jaeger; rm -rf "$workdir"; }
trap cleanup EXIT

# The ports are free when checked but may be taken before Jaeger binds
# them: try a few times.
started=""
for attempt in 1 2 3; do
	export MERIDIAN_JAEGER_OTLP_GRPC_PORT="$(free_port)"
	export MERIDIAN_JAEGER_OTLP_HTTP_PORT="$(free_port)"
	export MERIDIAN_JAEGER_QUERY_PORT="$(free_port)"
	export MERIDIAN_JAEGER_QUERY_GRPC_PORT="$(free_port)"
	log="$workdir/jaeger.$attempt.log"
	"$root/bin/jaeger" --config "$here/config.yaml" >"$log" 2>&1 &
	pid=$!
	echo "started Jaeger (pid $pid): OTLP http 127.0.0.1:$MERIDIAN_JAEGER_OTLP_HTTP_PORT, query 127.0.0.1:$MERIDIAN_JAEGER_QUERY_PORT" >&2
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		if (exec 3<>"/dev/tcp/127.0.0.1/$MERIDIAN_JAEGER_OTLP_HTTP_PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$MERIDIAN_JAEGER_QUERY_PORT") 2>/dev/null; then
			started=1
			break
		fi
		sleep 0.2
	done
	[[ -n "$started" ]] && break
	echo "Jaeger did not come up (attempt $attempt); its log:" >&2
	tail -n 20 "$log" >&2
	stop_jaeger
done
if [[ -z "$started" ]]; then
	echo "could not start Jaeger" >&2
	exit 1
fi

status=0
MERIDIAN_E2E_JAEGER=1 \
	MERIDIAN_JAEGER_OTLP_HTTP="http://127.0.0.1:$MERIDIAN_JAEGER_OTLP_HTTP_PORT" \
	MERIDIAN_JAEGER_QUERY="http://127.0.0.1:$MERIDIAN_JAEGER_QUERY_PORT" \
	timeout "${E2E_TIMEOUT:-10m}" go test -race -count=1 -v -run 'Jaeger' ./e2e/ || status=$?
if [[ $status -ne 0 ]]; then
	echo "e2e-jaeger failed; the end of Jaeger's log:" >&2
	tail -n 30 "$log" >&2
fi
exit $status
