#!/usr/bin/env bash
# Build primus-provider twice and run every registered test:
#
#   bash scripts/test.sh
#
#   1. dependencies   scripts/install-deps.sh (only what is missing)
#   2. build          build/       -DPRIMUS_WERROR=ON
#   3. tests          ctest --output-on-failure -j2 in build/
#   4. build (asan)   build-asan/  -DSANITIZE=address,undefined
#   5. tests (asan)   ctest in build-asan/ under ASan + UBSan + LeakSanitizer
#   6. tsan           scripts/tsan.sh: 8-thread stress test under ThreadSanitizer
#   7. valgrind       scripts/valgrind.sh: the provider's integration tests with
#                     openssl/primusctl under valgrind memcheck
#   8. fuzz           scripts/fuzz.sh: every libFuzzer target for a short budget
#                     (PRIMUS_FUZZ_SECONDS, default 30 s each) after its
#                     regression inputs
#
# Exits non-zero if any step fails; a failed build skips its tests, not the
# other build.  Ends with a summary.
#
# Environment:
#   PRIMUS_TEST_QUICK=1     skip the sanitizer, valgrind and fuzz runs (steps 4-8)
#   PRIMUS_SKIP_DEPS=1      do not check packages
#   PRIMUS_BUILD_DIR        default build
#   PRIMUS_ASAN_BUILD_DIR   default build-asan
#   PRIMUS_JOBS             parallel compile jobs and tests (default 2)
#   PRIMUS_CTEST_BUDGET     seconds allowed for each ctest run (default 1200);
#                           the run is killed past it, so that the whole
#                           script stays well under an hour on 2 cores
#   PRIMUS_CTEST_ARGS       extra ctest arguments, e.g. "-L unit" or "-R uri"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD=${PRIMUS_BUILD_DIR:-build}
ASAN_BUILD=${PRIMUS_ASAN_BUILD_DIR:-build-asan}
JOBS=${PRIMUS_JOBS:-2}
BUDGET=${PRIMUS_CTEST_BUDGET:-1200}
read -r -a CTEST_EXTRA <<<"${PRIMUS_CTEST_ARGS:-}"

SUMMARY=()
FAILED=0
START=$SECONDS

banner() { printf '\n==== %s ====\n' "$*"; }

# run_step NAME COMMAND...: run, time and record one step.
run_step() {
    local name=$1 t0=$SECONDS rc=0
    shift
    banner "$name"
    "$@" || rc=$?
    local dt=$((SECONDS - t0))
    if ((rc == 0)); then
        SUMMARY+=("$(printf '  PASS  %-24s %4ds' "$name" "$dt")")
    else
        SUMMARY+=("$(printf '  FAIL  %-24s %4ds  (exit %d)' "$name" "$dt" "$rc")")
        FAILED=1
    fi
    return "$rc"
}
skip_step() { SUMMARY+=("$(printf '  SKIP  %-24s        %s' "$1" "$2")"); }

summary() {
    banner "summary ($((SECONDS - START))s)"
    printf '%s\n' "${SUMMARY[@]}"
    if ((FAILED)); then
        echo "test.sh: FAILED"
    else
        echo "test.sh: all steps passed"
    fi
}

# run_ctest DIR: every test of one build, within the time budget.  timeout
# signals the whole process group, so no test server outlives the budget.
# shellcheck disable=SC2317  # called through run_step
run_ctest() {
    local dir=$1 rc=0
    (cd "$dir" && timeout -k 30 "$BUDGET" \
        ctest --output-on-failure -j"$JOBS" --timeout 600 "${CTEST_EXTRA[@]}") || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "test.sh: ctest in $dir exceeded PRIMUS_CTEST_BUDGET=${BUDGET}s and was stopped" >&2
    fi
    return "$rc"
}

# ---- 1. dependencies ------------------------------------------------------
if ! run_step "dependencies" bash scripts/install-deps.sh; then
    summary
    exit 1
fi

# ---- 2-3. normal build ----------------------------------------------------
# -DSANITIZE= clears a sanitizer left in the cache by an earlier configure.
if run_step "build" env PRIMUS_JOBS="$JOBS" bash scripts/build.sh "$BUILD" -DSANITIZE=; then
    # Tests labelled known-flaky (each documented where it is registered)
    # are left out of CI; run them by name.
    CTEST_EXTRA+=(-LE known-flaky)
    run_step "tests" run_ctest "$BUILD" || true
else
    skip_step "tests" "(build failed)"
fi

# ---- 4-5. sanitizer build -------------------------------------------------
if [[ "${PRIMUS_TEST_QUICK:-0}" == 1 ]]; then
    skip_step "build (asan)" "(PRIMUS_TEST_QUICK=1)"
    skip_step "tests (asan)" "(PRIMUS_TEST_QUICK=1)"
else
    if run_step "build (asan)" env PRIMUS_JOBS="$JOBS" bash scripts/build.sh "$ASAN_BUILD" \
        -DSANITIZE=address,undefined -DPRIMUS_BENCH=OFF; then
        # Programs that are not instrumented themselves (openssl, nginx,
        # curl, python3) but load instrumented code (primus.so) need the
        # ASan runtime first: tests preload $PRIMUS_ASAN_RUNTIME for them.
        # (empty when the compiler links ASan statically, as clang does).
        cc_bin=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$ASAN_BUILD/CMakeCache.txt")
        PRIMUS_ASAN_RUNTIME=$("${cc_bin:-cc}" -print-file-name=libasan.so 2>/dev/null || true)
        [[ "$PRIMUS_ASAN_RUNTIME" == /* && -e "$PRIMUS_ASAN_RUNTIME" ]] || PRIMUS_ASAN_RUNTIME=
        export PRIMUS_ASAN_RUNTIME
        export PRIMUS_SANITIZE=address,undefined
        export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:print_summary=1"
        export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
        export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1"
        # The real-server suites (label tls: nginx, Apache, curl, Python) run in
        # the normal pass only: those programs need the ASan runtime preloaded
        # (curl deadlocks in setlocale with it); still to do (hardening issue).
        CTEST_EXTRA=("${CTEST_EXTRA[@]/known-flaky/tls|known-flaky}")
        run_step "tests (asan)" run_ctest "$ASAN_BUILD" || true
    else
        skip_step "tests (asan)" "(build failed)"
    fi
fi

# ---- 6-8. threads, valgrind, fuzzing ------------------------------------
if [[ "${PRIMUS_TEST_QUICK:-0}" == 1 ]]; then
    for step in tsan valgrind fuzz; do skip_step "$step" "(PRIMUS_TEST_QUICK=1)"; done
else
    # Each script builds its own tree and stops itself at its budget.
    unset PRIMUS_ASAN_RUNTIME PRIMUS_SANITIZE ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
    run_step "tsan" env PRIMUS_JOBS="$JOBS" PRIMUS_SKIP_DEPS=1 bash scripts/tsan.sh || true
    run_step "valgrind" env PRIMUS_JOBS="$JOBS" PRIMUS_SKIP_DEPS=1 bash scripts/valgrind.sh || true
    run_step "fuzz" env PRIMUS_JOBS="$JOBS" PRIMUS_SKIP_DEPS=1 bash scripts/fuzz.sh || true
fi

summary
exit "$FAILED"
