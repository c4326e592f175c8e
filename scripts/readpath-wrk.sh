#!/usr/bin/env bash
# readpath-wrk.sh measures the read path against the trivial server
# (internal/benchtarget) serving the same bytes, in one run, the servers
# pinned to one core and wrk to another (taskset): GET /v1/services/web,
# ?passing=true, ?region=eu-west (a replica), /v1/lookup/web and a
# 1,000-instance service. It prints req/s and p99 of each side and the
# ratios. Two gateways run: us-east (measured) and eu-west (holds web-eu,
# whose replica us-east serves), both with their embedded store.
#
# Usage: scripts/readpath-wrk.sh [MERIDIAN_BINARY]
# Environment: BENCH_DURATION (default 5s), BENCH_WARMUP (1s),
# BENCH_CONNS (32), SERVER_CPU (0), WRK_CPU (1).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${BENCH_DURATION:-5s}"
warmup="${BENCH_WARMUP:-1s}"
conns="${BENCH_CONNS:-32}"
scpu="${SERVER_CPU:-0}"
wcpu="${WRK_CPU:-1}"
say() { echo "readpath-wrk: $*" >&2; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/meridian-readpath.XXXXXX")"
pids=()
cleanup() {
	for pid in "${pids[@]+"${pids[@]}"}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
bin="${1:-}"
if [[ -z "$bin" ]]; then
	go build -o "$tmp/meridian" ./cmd/meridian
	bin="$tmp/meridian"
fi
go build -o "$tmp/benchtarget" ./internal/benchtarget
go build -o "$tmp/freeport" ./internal/redistest/freeport

wait_ok() {
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	say "$1 did not answer"
	exit 1
}
port() { "$tmp/freeport"; }

ea="127.0.0.1:$(port)"
es="127.0.0.1:$(port)"
ua="127.0.0.1:$(port)"
us="127.0.0.1:$(port)"
taskset -c "$scpu" "$bin" agent --region us-east --http "$ua" --serf-bind "$us" --gossip-profile local --log-level warn >"$tmp/us.log" 2>&1 &
pids+=($!)
wait_ok "http://$ua/v1/health"
taskset -c "$scpu" "$bin" agent --region eu-west --http "$ea" --serf-bind "$es" --join "$us" --gossip-profile local --log-level warn >"$tmp/eu.log" 2>&1 &
pids+=($!)
wait_ok "http://$ea/v1/health"

python3 - "$ua" "$ea" <<'PY'
import http.client, json, sys
def put(addr, svc, i, ip, tags):
    c = put.conns.setdefault(addr, http.client.HTTPConnection(addr))
    body = json.dumps({"address": ip, "port": 8080, "zone": "a", "tags": tags})
    c.request("PUT", f"/v1/services/{svc}/instances/{svc}-{i}", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 200: sys.exit(f"register {svc}-{i} at {addr}: HTTP {r.status}")
put.conns = {}
us, eu = sys.argv[1], sys.argv[2]
for i in range(1, 4):
    put(us, "web", i, f"10.0.0.{4+i}", [["v1"], ["v2"], ["v2", "canary"]][i-1])
    put(eu, "web", i, f"10.1.0.{4+i}", ["v1"])
for i in range(1000):
    put(us, "big", i, f"10.2.{i//250}.{i%250+1}", ["v1"])
PY
for _ in $(seq 1 100); do
	n="$(curl -fsS "http://$ua/v1/services/web?region=eu-west" 2>/dev/null | grep -o '"id":' | wc -l || true)"
	[[ "$n" -eq 3 ]] && break
	sleep 0.2
done
[[ "$n" -eq 3 ]] || { say "us-east has no replica of eu-west's web"; exit 1; }

rps() { awk '$1 == "Requests/sec:" { print $2 }' "$1"; }
p99ms() {
	awk '$1 == "99%" { v = $2
		if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
		else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 } }' "$1"
}
run_wrk() { # NAME URL
	taskset -c "$wcpu" wrk -t1 -c"$conns" -d"$warmup" "$2" >/dev/null
	taskset -c "$wcpu" wrk -t1 -c"$conns" -d"$duration" --latency "$2" >"$tmp/wrk-$1.txt"
	if grep -q -e '^ *Non-2xx' -e '^ *Socket errors' "$tmp/wrk-$1.txt"; then
		say "$1: wrk saw errors: $(grep -e '^ *Non-2xx' -e '^ *Socket errors' "$tmp/wrk-$1.txt" | tr -s ' ')"
	fi
}

printf "%-34s %8s %10s %10s %9s %9s %7s %7s\n" target bytes meridian trivial m-p99ms t-p99ms ratio p99x
i=0
for path in "/v1/services/web" "/v1/services/web?passing=true" "/v1/services/web?region=eu-west" "/v1/lookup/web" "/v1/services/big"; do
	i=$((i + 1))
	curl -fsS -o "$tmp/body-$i.json" "http://$ua$path"
	ta="127.0.0.1:$(port)"
	taskset -c "$scpu" "$tmp/benchtarget" --addr "$ta" --file "$tmp/body-$i.json" >/dev/null 2>&1 &
	tp=$!
	pids+=($tp)
	wait_ok "http://$ta/"
	run_wrk "m$i" "http://$ua$path"
	run_wrk "t$i" "http://$ta$path"
	kill "$tp"
	wait "$tp" 2>/dev/null || true
	awk -v p="$path" -v b="$(wc -c <"$tmp/body-$i.json")" -v mr="$(rps "$tmp/wrk-m$i.txt")" -v tr="$(rps "$tmp/wrk-t$i.txt")" \
		-v mp="$(p99ms "$tmp/wrk-m$i.txt")" -v tq="$(p99ms "$tmp/wrk-t$i.txt")" \
		'BEGIN { printf "%-34s %8d %10.0f %10.0f %9.3f %9.3f %7.3f %7.2f\n", p, b, mr, tr, mp, tq, mr / tr, mp / tq }'
done
