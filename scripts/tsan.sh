#!/usr/bin/env bash
# ThreadSanitizer run of the thread stress test (tests/stress, label stress):
#
#   bash scripts/tsan.sh
#
#   1. build   build-tsan/  -DSANITIZE=thread (primus.so, the core and the
#              stress program instrumented; OpenSSL and SoftHSM are not)
#   2. test    ctest -L stress, repeated, with TSAN_OPTIONS halt_on_error=1
#              and the documented suppressions of tests/tsan.supp; any report
#              fails the run
#   3. core    test_core once (the cluster gate, prober and late probes on
#              their threads); its two fork-with-threads tests are skipped
#              there (PRIMUS_TSAN=1), since TSan cannot follow such a fork
#
# Races need overlap, not volume: the test keeps its few-second size and is
# run PRIMUS_TSAN_REPEAT times instead, each time on a fresh token and cold
# caches (the first use of a key from 8 threads at once is where shared
# state is set up).  About 1-2 minutes on 2 cores, most of it the build.
#
# Environment:
#   PRIMUS_TSAN_BUILD_DIR   default build-tsan
#   PRIMUS_JOBS             parallel compile jobs (default 2)
#   PRIMUS_TSAN_REPEAT      runs of the stress test (default 3)
#   PRIMUS_TSAN_BUDGET      seconds allowed for the test runs (default 600)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The whole script is one function, read before it runs: editing the file
# during a run cannot change what the run does.
main() {
    BUILD=${PRIMUS_TSAN_BUILD_DIR:-build-tsan}
    JOBS=${PRIMUS_JOBS:-2}
    REPEAT=${PRIMUS_TSAN_REPEAT:-3}
    BUDGET=${PRIMUS_TSAN_BUDGET:-600}
    START=$SECONDS

    echo "==== build ($BUILD, -fsanitize=thread) ===="
    env PRIMUS_JOBS="$JOBS" bash scripts/build.sh "$BUILD" -DSANITIZE=thread -DPRIMUS_BENCH=OFF

    echo "==== stress test under ThreadSanitizer ($REPEAT runs) ===="
    # halt_on_error: the first report ends the process (exit 66), so no report
    # can hide behind a passing count.  second_deadlock_stack: both stacks of a
    # lock-order inversion.
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp:print_suppressions=0"
    rc=0
    (cd "$BUILD" && timeout -k 30 "$BUDGET" \
        ctest --output-on-failure -L stress --repeat "until-fail:$REPEAT" --timeout 300 &&
        PRIMUS_TSAN=1 ctest --output-on-failure -R '^test_core$' --timeout 300) || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "tsan.sh: the stress runs exceeded PRIMUS_TSAN_BUDGET=${BUDGET}s and were stopped" >&2
    fi
    if ((rc == 0)); then
        echo "tsan.sh: no ThreadSanitizer report, counts match ($((SECONDS - START))s)"
    else
        echo "tsan.sh: FAILED ($((SECONDS - START))s)" >&2
    fi
    exit "$rc"
}

main "$@"
exit
