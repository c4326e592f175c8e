# Targets for working on Meridian. `make test` is what CI runs (.ci/run).
.PHONY: run test test-short bench soak lint build fuzz jaeger e2e-jaeger sim-check sim-fuzz screenshot release

run:
	go run ./cmd/meridian dev

test:
	bash scripts/test.sh

# The quick check while working: unit tests with -short (no race detector;
# tests that start processes, browsers or long federations skip themselves)
# and one scenario twice. `make test` stays the whole suite.
test-short:
	go test -short -count=1 -timeout 5m ./...
	go run ./cmd/meridian sim run region-cutoff --seed 1 --check-determinism --quiet

bench:
	bash scripts/bench.sh

# SOAK_MINUTES (default 5) of mixed load against two gateway processes on a
# real redis-server, with a Redis restart and a gateway SIGKILL in the
# middle; fails when a write is lost or RSS/goroutines grow (README "Soak").
soak:
	bash scripts/soak.sh

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; \
	fi
	go vet ./...

# bin/meridian, stamped with version, commit and date (meridian --version).
build:
	go build -ldflags "$$(bash scripts/ldflags.sh)" -o bin/meridian ./cmd/meridian

# Static binaries for linux/amd64, linux/arm64, darwin/arm64 in dist/ with
# SHA256SUMS (VERSION=v1.2.3 make release).
release:
	bash scripts/release.sh

fuzz:
	go test -run='^$$' -fuzz=FuzzDecodeRegistration -fuzztime=30s ./region/
	go test -run='^$$' -fuzz=FuzzParse -fuzztime=30s ./scenarios/
	go test -run='^$$' -fuzz=FuzzParseKey -fuzztime=30s ./federation/serfmember/
	go test -run='^$$' -fuzz=FuzzCheck -fuzztime=30s ./egress/
	go test -run='^$$' -fuzz=FuzzDecodeRules -fuzztime=30s ./acl/
	go test -run='^$$' -fuzz=FuzzDecodeTokenRequest -fuzztime=30s ./acl/
	go test -run='^$$' -fuzz=FuzzConsulRegistration -fuzztime=30s ./gateway/
	go test -run='^$$' -fuzz=FuzzDNSQuery -fuzztime=30s ./gateway/

# Jaeger v2 for trace analysis (README "Trace analysis in Jaeger"): builds
# bin/jaeger once (about 10 minutes; its own module in tools/jaeger) and runs
# it in the foreground on 127.0.0.1 (OTLP 4317/4318, query API 16686).
jaeger:
	bash tools/jaeger/run.sh

# End-to-end: a live gateway's and a simulation's traces, read back from a
# Jaeger started on free 127.0.0.1 ports and stopped afterwards.
e2e-jaeger:
	bash tools/jaeger/e2e.sh

# Every built-in scenario run twice with seed 1, comparing the SHA-256 of the
# event logs and summaries (meridian sim run NAME --check-determinism); fails
# when a run differs or an expectation or invariant fails. Uses
# $(MERIDIAN_BIN) when set (scripts/test.sh passes its build), else builds.
sim-check:
	@set -u; tmp="$$(mktemp -d "$${TMPDIR:-/tmp}/meridian-sim.XXXXXX")"; trap 'rm -rf "$$tmp"' EXIT; \
	bin="$(MERIDIAN_BIN)"; \
	if [ -z "$$bin" ]; then bin="$$tmp/meridian"; go build -o "$$bin" ./cmd/meridian || exit 1; fi; \
	names="$$("$$bin" sim list | awk '{print $$1}')"; [ -n "$$names" ] || { echo "sim-check: no scenarios listed"; exit 1; }; \
	fail=0; start=$$(date +%s); \
	for s in $$names; do \
		if "$$bin" sim run "$$s" --seed 1 --check-determinism --quiet >"$$tmp/$$s.out" 2>&1; then \
			echo "sim-check: ok   $$s"; \
		else \
			echo "sim-check: FAIL $$s"; cat "$$tmp/$$s.out"; fail=1; \
		fi; \
	done; \
	echo "sim-check: $$(echo $$names | wc -w) scenarios, each run twice, in $$(( $$(date +%s) - start ))s"; \
	exit $$fail

# Swarm fuzzing of the simulator's invariants on 200 generated scenarios.
sim-fuzz:
	go run ./cmd/meridian sim fuzz --seeds 200 --time-budget 10m

# docs/ui.png: the status page of three federated regions, from the
# headless-Chromium test (gateway/ui_browser_test.go).
screenshot:
	bash scripts/ensure-tools.sh chromium
	MERIDIAN_TEST_BROWSER=1 MERIDIAN_UI_SCREENSHOT="$(CURDIR)/docs/ui.png" go test -count=1 -run 'TestStatusPageInBrowser$$' ./gateway/
