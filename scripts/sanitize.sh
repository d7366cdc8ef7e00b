#!/bin/bash
# Builds the core, the CLI and the unit/data tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC) into build-asan/ and runs those tests. Any sanitizer report
# fails the test that triggered it (-fno-sanitize-recover=all, ASan aborts on the first error).
#   scripts/sanitize.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GPTQW_ASAN_BUILD:-build-asan}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-g1" \
  -DGPTQW_SANITIZE=ON -DGPTQW_GUI=OFF -DGPTQW_WERROR=ON ${GPTQW_CMAKE_ARGS:-}
cmake --build "$build" --target gptqw_tests
# detect_leaks: the tests must not leak either. OpenMP's thread pool is torn down at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Instrumented code runs about 7x slower: QtTest's 5-minute watchdog per test function is too
# close on a slow machine (one row of the perplexity table takes about 75 s here).
export QTEST_FUNCTION_TIMEOUT=${QTEST_FUNCTION_TIMEOUT:-3600000}
ctest --test-dir "$build" -L "unit|data" --output-on-failure "$@"
