# The two commands of the README:
#   make demo  - the end-to-end demo: a workload dumped over TLS on loopback and restored
#   make test  - install what is missing, build, run every test (normal and
#                ASan/UBSan builds, fuzz targets for a short time)
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20

.PHONY: all deps build test test-main test-asan test-fuzz bench demo clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	ninja -C $(BUILD) -j $(JOBS)

test-main: build
	ctest --test-dir $(BUILD) --output-on-failure -j 2 --timeout 600

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON -DFERRY_BENCH=OFF
	ninja -C $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j 2 --timeout 900 -LE no-asan

test-fuzz: deps
	./scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

test: test-main test-asan test-fuzz

bench: build
	./scripts/run-benchmarks.sh $(BUILD)

demo: build
	./scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
