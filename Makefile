# pilotlight - the two commands: `make run` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh).
# CMake does the real work (CMakePresets.json: release, asan, fuzz).

JOBS ?= $(shell nproc)
PORT ?= 1026
DATA ?= ./data
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test test-release test-asan fuzz bench clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build build/release -j$(JOBS)

run: build
	./build/release/pilotlight serve --port $(PORT) --data $(DATA) --demo

test: test-release test-asan

test-release: build
	cd build/release && ctest --output-on-failure

test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build build/asan -j$(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure

# Each libFuzzer target runs FUZZ_SECONDS on a scratch copy of its corpus.
fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j$(JOBS)
	@set -e; for f in build/fuzz/fuzz_*; do \
	  name=$$(basename $$f | sed 's/^fuzz_//'); \
	  work=build/fuzz/corpus-$$name; rm -rf $$work; mkdir -p $$work; \
	  cp tests/fuzz/corpus/$$name/* $$work/ 2>/dev/null || true; \
	  echo "fuzz $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $$work >build/fuzz/$$name.log 2>&1 || \
	    { tail -40 build/fuzz/$$name.log; exit 1; }; \
	  tail -1 build/fuzz/$$name.log; \
	done

bench: build
	@./scripts/install-deps.sh --bench
	./bench/run.sh

clean:
	rm -rf build
