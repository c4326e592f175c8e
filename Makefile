# Targets for working on Meridian. `make test` is what CI runs (.ci/run).
.PHONY: run test bench lint build fuzz

run:
	go run ./cmd/meridian dev

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; \
	fi
	go vet ./...

build:
	go build -o bin/meridian ./cmd/meridian

fuzz:
	go test -run='^$$' -fuzz=FuzzDecodeRegistration -fuzztime=30s ./region/
