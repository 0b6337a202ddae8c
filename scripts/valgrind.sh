#!/usr/bin/env bash
# valgrind memcheck over the provider's integration tests:
#
#   bash scripts/valgrind.sh
#
#   1. build   build-valgrind/  -O1 -g, no sanitizers (valgrind and the
#              sanitizers do not mix), Debug (assertions on), no benchmarks;
#              DWARF 4, as valgrind 3.19 cannot read all of clang's DWARF 5
#   2. test    ctest in build-valgrind/ with PRIMUS_TEST_WRAPPER set: the
#              programs under test (openssl, primusctl, provider_signload)
#              run under valgrind memcheck with the flags and suppressions of
#              tests/lib/valgrind.sh and tests/valgrind.supp.  Any valgrind
#              finding (an invalid read or write, a use of uninitialised
#              memory, a definite leak) fails its test, also where the test
#              expected the command to fail (tests/lib/wrapper.sh).  The
#              harness self-test runs first: it proves on a planted leak and
#              overflow that these flags fail.
#
# The reports of failed runs are kept in BUILD/valgrind-logs (one file per
# process, empty files for clean runs are removed at the end).
#
# Which tests: PRIMUS_VALGRIND_TESTS, a ctest -R regex.  The default is
# every suite named in the hardening issue, in full: the harness self-test,
# provider_openssl, provider_tls, provider_errors, provider_interop,
# provider_fork and the primusctl CLI test (primusctl_cli).  No subset is
# needed: under valgrind they take about 600 CPU-seconds (provider_openssl
# 250, provider_tls 125, provider_interop 60, provider_errors 50,
# primusctl_cli 40, provider_fork 35, harness 10; each openssl run costs
# ~2 s), and provider_openssl alone runs on one core while the others share
# the second, so about 5-6 minutes on 2 idle cores, 6-7 with the build.
# A quick subset for a busy machine (about 2 minutes), every program under
# test and the fork child, without the long functional sweeps:
#   PRIMUS_VALGRIND_TESTS='^(harness_selftest|provider_errors|provider_fork|primusctl_cli)$'
#
# Environment:
#   PRIMUS_VALGRIND_BUILD_DIR  default build-valgrind
#   PRIMUS_JOBS                parallel compile jobs and tests (default 2)
#   PRIMUS_VALGRIND_BUDGET     seconds allowed for the test run (default 660);
#                              past it the run is stopped and fails, so that
#                              the whole script stays under ~12 minutes
#   PRIMUS_VALGRIND_TESTS      ctest -R regex (default: see above)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The whole script is one function, read before it runs: editing the file
# during a run cannot change what the run does.
main() {
    BUILD=${PRIMUS_VALGRIND_BUILD_DIR:-build-valgrind}
    JOBS=${PRIMUS_JOBS:-2}
    BUDGET=${PRIMUS_VALGRIND_BUDGET:-660}
    DEFAULT_TESTS='^(harness_selftest|provider_openssl|provider_tls|provider_errors|provider_interop|provider_fork|primusctl_cli)$'
    TESTS=${PRIMUS_VALGRIND_TESTS:-$DEFAULT_TESTS}
    START=$SECONDS

    command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (bash scripts/install-deps.sh)" >&2; exit 1; }

    echo "==== build ($BUILD, -O1 -g, no sanitizers) ===="
    # -DSANITIZE= clears a sanitizer left in the cache by an earlier configure.
    env PRIMUS_JOBS="$JOBS" bash scripts/build.sh "$BUILD" -DSANITIZE= -DPRIMUS_BENCH=OFF \
        -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g -gdwarf-4 -fno-omit-frame-pointer"

    echo "==== tests under valgrind memcheck ===="
    # shellcheck source=tests/lib/valgrind.sh
    source "$ROOT/tests/lib/valgrind.sh"
    LOGS="$(cd "$BUILD" && pwd)/valgrind-logs"
    rm -rf "$LOGS"
    mkdir -p "$LOGS"
    PRIMUS_TEST_WRAPPER=$(primus_valgrind_wrapper "$ROOT")
    PRIMUS_TEST_WRAPPER_STATUS=$PRIMUS_VALGRIND_STATUS
    PRIMUS_TEST_WRAPPER_LOGS=$LOGS
    export PRIMUS_TEST_WRAPPER PRIMUS_TEST_WRAPPER_STATUS PRIMUS_TEST_WRAPPER_LOGS
    # No sanitizer runtime may be preloaded under valgrind.
    unset PRIMUS_ASAN_RUNTIME PRIMUS_SANITIZE LD_PRELOAD
    rc=0
    # timeout signals the whole process group: no server outlives the budget.
    (cd "$BUILD" && timeout -k 30 "$BUDGET" \
        ctest --output-on-failure -j"$JOBS" --timeout 600 -R "$TESTS") || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "valgrind.sh: the tests exceeded PRIMUS_VALGRIND_BUDGET=${BUDGET}s and were stopped" >&2
    fi
    find "$LOGS" -type f -empty -delete
    if [ -n "$(ls -A "$LOGS")" ]; then
        echo "valgrind.sh: reports in $LOGS:" >&2
        ls "$LOGS" >&2
    fi
    if ((rc == 0)); then
        echo "valgrind.sh: no valgrind finding ($((SECONDS - START))s)"
    else
        echo "valgrind.sh: FAILED ($((SECONDS - START))s)" >&2
    fi
    exit "$rc"
}

main "$@"
exit
