SHELL := /bin/bash
# landlock-vmtest: see README.md. The knobs (KERNEL_SRC, SERIES, ACCEL,
# TESTS, RUN, COUNT, RETRY, KSELFTESTS, OUT, TIMEOUT, BOOT_TIMEOUT,
# SILENCE_TIMEOUT, VM_TIMEOUT, JOBS, MEM, CACHE_DIR, CONFIG, CMDLINE, ICOUNT,
# V, COVERAGE, DEBUG, KUNIT, GDB, TEST, RUNS, GOOD, BAD) reach the tool through the environment.

GO ?= go
BIN := bin/landlock-vmtest
export GOTOOLCHAIN ?= local

.PHONY: vmtest shell test tools unit e2e bench build vet clean series-check bisect cache cache-prune

build:
	$(GO) build -o $(BIN) ./vmtest/cmd/landlock-vmtest

# Build the patched kernel, boot it, run the guest tests, report.
vmtest: build
	./$(BIN) run

# The same kernel and initramfs with an interactive shell in the guest.
shell: build
	./$(BIN) shell

# Host unit tests, then the full make vmtest, then the end-to-end tests
# of the harness's failure modes (which reuse the kernel just built).
test: tools vet unit vmtest e2e

# Build and test every prefix of the series (SERIES= a series file, a
# directory of patches or an mbox): a table per patch in OUT.
series-check: build
	./$(BIN) series-check

# The first patch (or, with KERNEL_SRC= GOOD= BAD=, the first commit) at
# which TEST= fails; RUNS= repeats each step for flaky tests.
bisect: build
	./$(BIN) bisect

# Install the host tools (apt-get, as root) before anything needs them.
tools: build
	./$(BIN) tools

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool actionlint .github/workflows/*.yml

unit:
	$(GO) test -count=1 ./...
	@command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3
	python3 -m unittest discover -s scripts -p '*_test.py'

e2e: build
	@mkdir -p out
	LANDLOCK_VMTEST_E2E=1 $(GO) test -p 1 -count=1 -timeout 100m -v -run 'E2E' ./vmtest/... > out/e2e.log 2>&1; rc=$$?; \
	  grep -E '^(=== RUN|--- |PASS|FAIL|ok )|e2e_test.go' out/e2e.log; \
	  if [ $$rc -ne 0 ]; then ./scripts/e2e-digest.sh out/e2e.log; fi; exit $$rc

bench: build
	./scripts/bench.sh

cache: build
	./bin/landlock-vmtest cache

cache-prune: build
	./bin/landlock-vmtest cache prune

clean:
	rm -rf bin out
