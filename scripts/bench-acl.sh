#!/usr/bin/env bash
# bench-acl.sh measures the cost of ACLs for `BENCH_EXTRA=1 make bench`
# (scripts/bench.sh), with the binaries bench.sh built: GET /v1/services/web
# on a gateway with ACLs off and on (target: on/off throughput >= 0.9).
#
# Usage: scripts/bench-acl.sh MERIDIAN_BINARY FREEPORT_BINARY
# Environment: BENCH_DURATION, BENCH_WARMUP, BENCH_THREADS, BENCH_CONNS as
# for bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${BENCH_DURATION:-5s}"
warmup="${BENCH_WARMUP:-1s}"
threads="${BENCH_THREADS:-2}"
conns="${BENCH_CONNS:-64}"
say() { echo "bench-acl.sh: $*" >&2; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/meridian-bench-acl.XXXXXX")"
cp "$1" "$tmp/meridian"
cp "$2" "$tmp/freeport"
pids=()
cleanup() {
	for pid in "${pids[@]+"${pids[@]}"}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

wait_ok() {
	local url="$1" pid="$2" log="$3"
	for _ in $(seq 1 100); do
		if curl -fsS -o /dev/null "$url" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	say "$url did not answer 2xx within 10s; the server's log:"
	tail -n 20 "$log" >&2 || true
	exit 1
}
run_wrk() {
	local name="$1" url="$2"
	wrk -t"$threads" -c"$conns" -d"$warmup" "$url" >/dev/null
	say "$name: wrk -t$threads -c$conns -d$duration --latency $url"
	wrk -t"$threads" -c"$conns" -d"$duration" --latency "$url" >"$tmp/wrk-$name.txt"
}
rps() { awk '$1 == "Requests/sec:" { print $2 }' "$1"; }
p99ms() {
	awk '$1 == "99%" {
		v = $2
		if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
		else if (v ~ /m$/) { sub(/m$/, "", v); print v * 60000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
	}' "$1"
}

# (e) the cost of ACLs: GET /v1/services/web on two more gateways with
# the same flags (no federation, embedded store, three instances of web),
# one with ACLs off and one with --acl-default-policy deny and a token on
# every request (resolved by one SHA-256 and a map lookup). The runs
# alternate off, on, off, on and each side's req/s is the mean of its two
# runs, so that drift in the machine's load does not favour either side.
# The "on" answer is longer: its instances carry "registered_by".
# Target: ratio at least 0.9.
acl_secret="bench-$(od -An -tx8 -N16 /dev/urandom | tr -d ' \n')"
oport="$("$tmp/freeport")"
oaddr="127.0.0.1:$oport"
"$tmp/meridian" agent --region us-east --http "$oaddr" --serf-bind "" --log-level warn >"$tmp/agent-noacl.log" 2>&1 &
pids+=($!)
wait_ok "http://$oaddr/v1/health" "${pids[-1]}" "$tmp/agent-noacl.log"
aport="$("$tmp/freeport")"
aaddr="127.0.0.1:$aport"
MERIDIAN_ACL_INITIAL_TOKEN="$acl_secret" "$tmp/meridian" agent --region us-east --http "$aaddr" --serf-bind "" \
	--acl-default-policy deny --log-level warn >"$tmp/agent-acl.log" 2>&1 &
pids+=($!)
wait_ok "http://$aaddr/v1/health" "${pids[-1]}" "$tmp/agent-acl.log"
for i in 1 2 3; do
	"$tmp/meridian" register web "web-$i" --address "10.0.0.$((4 + i))" --port 8080 --addr "$oaddr" >/dev/null
	MERIDIAN_TOKEN="$acl_secret" "$tmp/meridian" register web "web-$i" --address "10.0.0.$((4 + i))" --port 8080 --addr "$aaddr" >/dev/null
done
code="$(curl -s -o /dev/null -w '%{http_code}' "http://$aaddr/v1/services/web")"
if [[ "$code" != 401 ]]; then
	say "the ACL gateway answered $code without a token, want 401"
	exit 1
fi
curl -fsS -H "X-Meridian-Token: $acl_secret" -o "$tmp/web-acl.json" "http://$aaddr/v1/services/web"
curl -fsS -o "$tmp/web-noacl.json" "http://$oaddr/v1/services/web"
say "ACLs off: pid ${pids[-2]} on $oaddr ($(wc -c <"$tmp/web-noacl.json") bytes); ACLs on: pid ${pids[-1]} on $aaddr ($(wc -c <"$tmp/web-acl.json") bytes with the token)"
# run_wrk_token NAME URL: run_wrk with the token in a header (not printed).
run_wrk_token() {
	local name="$1" url="$2"
	say "$name: wrk -t$threads -c$conns -d$duration --latency -H 'X-Meridian-Token: (secret)' $url"
	wrk -t"$threads" -c"$conns" -d"$warmup" -H "X-Meridian-Token: $acl_secret" "$url" >/dev/null
	wrk -t"$threads" -c"$conns" -d"$duration" --latency -H "X-Meridian-Token: $acl_secret" "$url" >"$tmp/wrk-$name.txt"
	if grep -q -e '^ *Non-2xx' -e '^ *Socket errors' "$tmp/wrk-$name.txt"; then
		say "$name: WARNING: wrk saw errors: $(grep -e '^ *Non-2xx' -e '^ *Socket errors' "$tmp/wrk-$name.txt" | tr -s ' ' | tr '\n' ';')"
	fi
}
run_wrk acl-off-1 "http://$oaddr/v1/services/web"
run_wrk_token acl-on-1 "http://$aaddr/v1/services/web"
run_wrk acl-off-2 "http://$oaddr/v1/services/web"
run_wrk_token acl-on-2 "http://$aaddr/v1/services/web"
if grep -q -- "$acl_secret" "$tmp/agent-acl.log"; then
	say "the ACL gateway's log contains the token secret"
	exit 1
fi
for f in acl-off-1 acl-on-1 acl-off-2 acl-on-2; do
	if [[ -z "$(rps "$tmp/wrk-$f.txt")" || -z "$(p99ms "$tmp/wrk-$f.txt")" ]]; then
		say "could not read req/s and the 99% latency of $f from wrk's output (kept above)"
		exit 1
	fi
done
echo
echo "GET /v1/services/web, ACLs off vs on (default deny, token checked), wrk -t$threads -c$conns -d$duration, runs alternated"
awk -v o1="$(rps "$tmp/wrk-acl-off-1.txt")" -v o2="$(rps "$tmp/wrk-acl-off-2.txt")" \
	-v n1="$(rps "$tmp/wrk-acl-on-1.txt")" -v n2="$(rps "$tmp/wrk-acl-on-2.txt")" \
	-v op1="$(p99ms "$tmp/wrk-acl-off-1.txt")" -v op2="$(p99ms "$tmp/wrk-acl-off-2.txt")" \
	-v np1="$(p99ms "$tmp/wrk-acl-on-1.txt")" -v np2="$(p99ms "$tmp/wrk-acl-on-2.txt")" 'BEGIN {
	printf "%-10s %14s %14s %14s %12s\n", "acls", "req/s run 1", "req/s run 2", "req/s mean", "p99 ms mean"
	printf "%-10s %14.0f %14.0f %14.0f %12.3f\n", "off", o1, o2, (o1 + o2) / 2, (op1 + op2) / 2
	printf "%-10s %14.0f %14.0f %14.0f %12.3f\n", "on", n1, n2, (n1 + n2) / 2, (np1 + np2) / 2
	rr = (n1 + n2) / (o1 + o2)
	printf "\n%-34s %6.3f  (target >= 0.9)  %s\n", "throughput acl-on/acl-off", rr, (rr >= 0.9 ? "PASS" : "MISS")
}'
