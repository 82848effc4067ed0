# The README's commands. Each installs the Debian packages it needs when run
# as root (apt-get), then configures and builds with CMake.
#
#   make demo    build and run the demo
#   make test    build and run the whole test suite (CTest)
#   make asan    the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make tsan    the suite under ThreadSanitizer
#   make bench   build build-bench/bench/amb-bench and amb-echo (see docs/perf.md)
#   make perf-echo  the TCP echo benchmark into docs/perf.md (scripts/perf_echo.sh)
#
# Each target has its own build directory, so their CMake caches never mix:
#   build/        make all: the library, tools and examples (Release)
#   build-test/   make test: RelWithDebInfo with assertions on (AMB_ASSERTIONS)
#   build-bench/  make bench, make perf: Release
#   build-demo/, build-asan/, build-tsan/, build-fuzz/
#   make fuzz    build the libFuzzer targets with clang and run each a while
#   make format  clang-format every C file

JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=

BUILD_PKGS = cmake gcc make zlib1g-dev libssl-dev pkg-config
TEST_PKGS  = $(BUILD_PKGS) libcmocka-dev erlang-base erlang-ssl openssl
FUZZ_PKGS  = $(BUILD_PKGS) clang libclang-rt-14-dev

.PHONY: all demo test asan tsan bench perf perf-echo fuzz format deps-build deps-test deps-fuzz clean

all: deps-build
	cmake -S . -B build $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Release -DAMB_BUILD_TESTS=OFF
	cmake --build build -j $(JOBS)

demo: deps-build
	cmake -S . -B build-demo $(CMAKE_FLAGS) -DAMB_BUILD_TESTS=OFF
	cmake --build build-demo -j $(JOBS) --target demo
	./build-demo/examples/demo

test: deps-test
	cmake -S . -B build-test $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DAMB_ASSERTIONS=ON -DAMB_BUILD_TESTS=ON -DAMB_WERROR=ON
	cmake --build build-test -j $(JOBS)
	cd build-test && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

asan: deps-test
	cmake -S . -B build-asan $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Debug \
	  -DAMB_SANITIZE="address;undefined" -DAMB_BUILD_TESTS=ON -DAMB_WERROR=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

tsan: deps-test
	cmake -S . -B build-tsan $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Debug \
	  -DAMB_SANITIZE=thread -DAMB_BUILD_TESTS=ON -DAMB_WERROR=ON
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: deps-build
	cmake -S . -B build-bench $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Release -DAMB_BUILD_BENCH=ON
	cmake --build build-bench -j $(JOBS)

# The peer benchmarks beside Erlang, Go and CAF; regenerates docs/perf.md.
perf: bench
	bash scripts/perf.sh build-bench/bench/amb-bench

# The TCP echo benchmark beside C epoll, Go and Erlang; regenerates the
# echo parts of docs/perf.md (needs golang-go).
perf-echo: bench
	bash scripts/perf_echo.sh build-bench/bench/amb-echo

fuzz: deps-fuzz
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" -DAMB_SANITIZE="address;undefined" \
	  -DAMB_BUILD_FUZZ=ON -DAMB_BUILD_TESTS=ON -DAMB_BUILD_EXAMPLES=OFF
	cmake --build build-fuzz -j $(JOBS)
	for t in build-fuzz/tests/fuzz_*; do \
	  name=$$(basename $$t | sed 's/^fuzz_//'); \
	  mkdir -p build-fuzz/corpus/$$name; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -rss_limit_mb=2048 \
	    build-fuzz/corpus/$$name tests/fuzz/corpus/$$name || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

deps-build:
	@sh .ci/deps.sh $(BUILD_PKGS)

deps-test:
	@sh .ci/deps.sh $(TEST_PKGS)

deps-fuzz:
	@sh .ci/deps.sh $(FUZZ_PKGS)

clean:
	rm -rf build build-test build-bench build-demo build-asan build-tsan build-fuzz
