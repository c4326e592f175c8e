#!/usr/bin/env bash
# bench.sh is `make bench`: it runs the Go benchmarks of gateway and region,
# then load-tests GET /v1/services/web over real sockets, on the gateway and
# on a trivial net/http server (internal/benchtarget) that serves the same
# bytes, in the same run, and reports both and their ratios:
#
#   throughput  meridian/trivial req/s   target >= 0.8
#   p99 latency meridian/trivial         target <= 2.0
#
# It is a report: a missed target prints MISS but does not fail the script.
# It fails only when something could not be built, started or measured.
#
# The gateway runs as `meridian agent` with its embedded store (miniredis)
# and three registered instances of "web". The trivial server's body is one
# GET of the gateway's answer, saved byte for byte (the gateway's later
# answers can differ in age_ms by a digit or two).
#
# wrk and both servers share the machine's cores (nothing is pinned): on a
# 2-core machine wrk's two threads take a good part of the CPU, so the
# absolute numbers are low; the ratio is the figure to read.
#
# Usage: scripts/bench.sh
# Environment:
#   BENCH_DURATION  length of each measured wrk run (default 10s)
#   BENCH_WARMUP    length of the unmeasured wrk run before each (default 2s)
#   BENCH_THREADS   wrk threads (default 2)
#   BENCH_CONNS     wrk connections (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"
threads="${BENCH_THREADS:-2}"
conns="${BENCH_CONNS:-64}"

say() { echo "bench.sh: $*" >&2; }

bash scripts/ensure-tools.sh wrk

say "go benchmarks (federation, gateway)"
go test -run '^$' -bench . -benchmem -benchtime 20x ./federation/httpsync/
go test -run '^$' -bench . -benchmem ./gateway/

tmp="$(mktemp -d "${TMPDIR:-/tmp}/meridian-bench.XXXXXX")"
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
trap 'exit 130' INT
trap 'exit 143' TERM

say "building meridian, benchtarget and freeport into $tmp"
go build -o "$tmp/meridian" ./cmd/meridian
go build -o "$tmp/benchtarget" ./internal/benchtarget
go build -o "$tmp/freeport" ./internal/redistest/freeport

# wait_ok URL PID LOG: wait up to 10s for URL to answer 2xx while PID lives.
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

# (a) the gateway, with three instances of web.
mport="$("$tmp/freeport")"
maddr="127.0.0.1:$mport"
"$tmp/meridian" agent --region us-east --http "$maddr" --log-level warn >"$tmp/agent.log" 2>&1 &
pids+=($!)
wait_ok "http://$maddr/v1/health" "${pids[-1]}" "$tmp/agent.log"
for i in 1 2 3; do
	"$tmp/meridian" register web "web-$i" --address "10.0.0.$((4 + i))" --port 8080 --addr "$maddr" >/dev/null
done
curl -fsS -o "$tmp/web.json" "http://$maddr/v1/services/web"
n="$(grep -o '"id":' "$tmp/web.json" | wc -l)"
if [[ "$n" -ne 3 ]]; then
	say "GET /v1/services/web answered $n instances, want 3: $(cat "$tmp/web.json")"
	exit 1
fi
say "meridian agent (pid ${pids[-1]}) on $maddr; GET /v1/services/web is $(wc -c <"$tmp/web.json") bytes"

# (b) the trivial server with those bytes.
tport="$("$tmp/freeport")"
taddr="127.0.0.1:$tport"
"$tmp/benchtarget" --addr "$taddr" --file "$tmp/web.json" >"$tmp/benchtarget.log" 2>&1 &
pids+=($!)
wait_ok "http://$taddr/v1/services/web" "${pids[-1]}" "$tmp/benchtarget.log"
if ! curl -fsS "http://$taddr/v1/services/web" | cmp -s - "$tmp/web.json"; then
	say "the trivial server does not answer the saved bytes"
	exit 1
fi
say "benchtarget (pid ${pids[-1]}) on $taddr"

# run_wrk NAME URL: warm up, then measure into $tmp/wrk-NAME.txt.
run_wrk() {
	local name="$1" url="$2"
	say "$name: warm-up wrk -t$threads -c$conns -d$warmup"
	wrk -t"$threads" -c"$conns" -d"$warmup" "$url" >/dev/null
	say "$name: wrk -t$threads -c$conns -d$duration --latency $url"
	wrk -t"$threads" -c"$conns" -d"$duration" --latency "$url" | tee "$tmp/wrk-$name.txt" >&2
	if grep -q -e '^ *Non-2xx' -e '^ *Socket errors' "$tmp/wrk-$name.txt"; then
		say "$name: WARNING: wrk saw errors: $(grep -e '^ *Non-2xx' -e '^ *Socket errors' "$tmp/wrk-$name.txt" | tr -s ' ' | tr '\n' ';')"
	fi
}

# rps FILE: wrk's Requests/sec. p99ms FILE: its 99% latency in ms.
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

run_wrk meridian "http://$maddr/v1/services/web"
run_wrk trivial "http://$taddr/v1/services/web"

m_rps="$(rps "$tmp/wrk-meridian.txt")"
t_rps="$(rps "$tmp/wrk-trivial.txt")"
m_p99="$(p99ms "$tmp/wrk-meridian.txt")"
t_p99="$(p99ms "$tmp/wrk-trivial.txt")"
for v in "$m_rps" "$t_rps" "$m_p99" "$t_p99"; do
	if [[ -z "$v" ]]; then
		say "could not read req/s and the 99% latency from wrk's output (kept above)"
		exit 1
	fi
done

echo
echo "GET /v1/services/web, wrk -t$threads -c$conns -d$duration, $(nproc) cores shared by wrk and the server"
awk -v mr="$m_rps" -v tr="$t_rps" -v mp="$m_p99" -v tp="$t_p99" 'BEGIN {
	printf "%-10s %14s %12s\n", "server", "req/s", "p99 ms"
	printf "%-10s %14.0f %12.3f\n", "meridian", mr, mp
	printf "%-10s %14.0f %12.3f\n", "trivial", tr, tp
	rr = mr / tr; pr = mp / tp
	printf "\n%-34s %6.3f  (target >= 0.8)  %s\n", "throughput meridian/trivial", rr, (rr >= 0.8 ? "PASS" : "MISS")
	printf "%-34s %6.3f  (target <= 2.0)  %s\n", "p99 latency meridian/trivial", pr, (pr <= 2.0 ? "PASS" : "MISS")
}'

# (c) GET /v1/lookup/web (routing on every request) against a trivial
# server answering the same bytes. Target: ratio at least 0.7.
curl -fsS -o "$tmp/lookup.json" "http://$maddr/v1/lookup/web"
lport="$("$tmp/freeport")"
laddr="127.0.0.1:$lport"
"$tmp/benchtarget" --addr "$laddr" --file "$tmp/lookup.json" >"$tmp/benchtarget-lookup.log" 2>&1 &
pids+=($!)
wait_ok "http://$laddr/v1/lookup/web" "${pids[-1]}" "$tmp/benchtarget-lookup.log"
run_wrk lookup "http://$maddr/v1/lookup/web"
run_wrk trivial-lookup "http://$laddr/v1/lookup/web"
l_rps="$(rps "$tmp/wrk-lookup.txt")"
tl_rps="$(rps "$tmp/wrk-trivial-lookup.txt")"
l_p99="$(p99ms "$tmp/wrk-lookup.txt")"
tl_p99="$(p99ms "$tmp/wrk-trivial-lookup.txt")"
echo
echo "GET /v1/lookup/web, wrk -t$threads -c$conns -d$duration"
awk -v mr="$l_rps" -v tr="$tl_rps" -v mp="$l_p99" -v tp="$tl_p99" 'BEGIN {
	printf "%-10s %14s %12s\n", "server", "req/s", "p99 ms"
	printf "%-10s %14.0f %12.3f\n", "meridian", mr, mp
	printf "%-10s %14.0f %12.3f\n", "trivial", tr, tp
	rr = mr / tr
	printf "\n%-34s %6.3f  (target >= 0.7)  %s\n", "throughput lookup/trivial", rr, (rr >= 0.7 ? "PASS" : "MISS")
}'

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
	wrk -t"$threads" -c"$conns" -d"$duration" --latency -H "X-Meridian-Token: $acl_secret" "$url" | tee "$tmp/wrk-$name.txt" >&2
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

# (d) tail latency through /v1/proxy: 5 backends, one 200ms slower;
# p2c with peak EWMA against round robin.
echo
say "proxy tail latency (go test -bench ProxyTail)"
go test -run '^$' -bench 'ProxyTail' -benchtime 1x ./gateway/ | grep -E 'Benchmark|ok'
