#!/usr/bin/env bash
# Build the libFuzzer targets and fuzz each for a short, fixed time (CI).
#
#   bash scripts/fuzz.sh [BUILD_DIR]
#
# BUILD_DIR (default build-fuzz; a relative one is taken from the repository
# root) is configured with clang and -DPRIMUS_FUZZ=ON, and only the fuzz
# targets are built.  Then, for each target (uri, topology, uri_pem, store;
# tests/fuzz/fuzz_<target>.c):
#   1. every regression input in tests/fuzz/regress/<target>/ (inputs that
#      once crashed, kept after the fix) is run once;
#   2. the target fuzzes for PRIMUS_FUZZ_SECONDS on a copy of its seed corpus
#      tests/fuzz/corpus/<target>/ in a temporary directory, with
#      tests/fuzz/<target>.dict when there is one.
# Nothing is written into the repository: new inputs go to the temporary
# copy, which is deleted.  A crash, sanitizer report (ASan, UBSan), leak,
# timeout (one input taking PRIMUS_FUZZ_TIMEOUT seconds) or running out of
# memory fails the target; the failing input is kept in
# BUILD_DIR/fuzz-artifacts/<target>/ (reproduce it with
# BUILD_DIR/tests/fuzz_<target> FILE).  Every target runs even after one
# failed; the script ends with executions and executions per second per
# target and exits non-zero if any target failed.
#
# A longer local run (10 minutes per target) is the same command:
#
#   PRIMUS_FUZZ_SECONDS=600 bash scripts/fuzz.sh
#
# and one target alone: PRIMUS_FUZZ_TARGETS=store bash scripts/fuzz.sh.
# A run may be ended early with SIGINT to the fuzzer (pkill -INT fuzz_store):
# it reports STOP with its figures, not a failure.
# A campaign of hours, resumable, as the closing figures were made (one
# target per core; the corpus grows in the kept directory and a later run
# starts from it; the ASan settings cut the allocator's cost 2-3x, see
# FAST_ASAN below):
#
#   PRIMUS_FUZZ_FAST=1 PRIMUS_FUZZ_KEEP=$HOME/primus-fuzz PRIMUS_FUZZ_TARGETS=store \
#       PRIMUS_FUZZ_SECONDS=7200 bash scripts/fuzz.sh
#
# When a run finds a crash: fix it, then copy the input from
# BUILD_DIR/fuzz-artifacts/<target>/ to tests/fuzz/regress/<target>/ (and
# check that it reproduces when run alone: the uri_pem and store targets
# keep state such as logins between inputs).
#
# Environment:
#   PRIMUS_FUZZ_SECONDS   fuzzing time per target (default 30)
#   PRIMUS_FUZZ_TARGETS   targets to run (default "uri topology uri_pem store")
#   PRIMUS_FUZZ_TIMEOUT   seconds one input may take before it is a hang (default 25)
#   PRIMUS_FUZZ_KEEP=DIR  fuzz on DIR/<target> (made from the seeds when
#                         missing) and keep it, instead of a temporary copy
#   PRIMUS_FUZZ_FAST=1    lighter ASan allocator settings for long runs
#   PRIMUS_SKIP_DEPS=1    do not check packages (scripts/install-deps.sh)
#   PRIMUS_JOBS           parallel compile jobs (default 2)
# The uri_pem and store targets make SoftHSM2 tokens under a temporary
# directory when they start (a second or two) and need softhsm2-util,
# pkcs11-tool and openssl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -n "${PRIMUS_FUZZ_KEEP:-}" ]]; then
    PRIMUS_FUZZ_KEEP=$(realpath -m -- "$PRIMUS_FUZZ_KEEP") # before cd: relative to the caller
fi
cd "$ROOT"

BUILD_DIR=${1:-build-fuzz}
SECONDS_PER_TARGET=${PRIMUS_FUZZ_SECONDS:-30}
TIMEOUT=${PRIMUS_FUZZ_TIMEOUT:-25}
JOBS=${PRIMUS_JOBS:-2}
read -r -a TARGETS <<<"${PRIMUS_FUZZ_TARGETS:-uri topology uri_pem store}"

say() { printf 'fuzz: %s\n' "$*"; }
die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 2; }

[[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]] || die "PRIMUS_FUZZ_SECONDS must be a number of seconds"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "PRIMUS_FUZZ_TIMEOUT must be a number of seconds"
for t in "${TARGETS[@]}"; do
    [[ -f tests/fuzz/fuzz_$t.c ]] || die "unknown target \"$t\" (no tests/fuzz/fuzz_$t.c)"
done

bash scripts/install-deps.sh
command -v clang >/dev/null || die "clang is needed (apt-get install clang)"

# ---- build ------------------------------------------------------------------
mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
say "configuring $BUILD_DIR (clang, -DPRIMUS_FUZZ=ON)"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_C_COMPILER=clang -DPRIMUS_FUZZ=ON -DPRIMUS_BENCH=OFF \
    -DPRIMUS_WERROR=ON >"$BUILD_DIR/configure.log" 2>&1 || {
    cat "$BUILD_DIR/configure.log" >&2
    die "cmake configure failed (a build dir made with another compiler must be removed first)"
}
build_targets=()
for t in "${TARGETS[@]}"; do build_targets+=("fuzz_$t"); done
say "building ${build_targets[*]} with $JOBS jobs"
cmake --build "$BUILD_DIR" --parallel "$JOBS" --target "${build_targets[@]}"

# ---- run --------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/primus-fuzz-run.XXXXXX")
# shellcheck disable=SC2317  # called through the trap
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ARTIFACTS=$BUILD_DIR/fuzz-artifacts

# As the sanitizer pass of scripts/test.sh; leaks are found by libFuzzer
# itself (-detect_leaks, on by default with ASan).
# FAST_ASAN: for long runs.  Most of a fuzz_store or fuzz_uri_pem execution
# is ASan's allocator (perf: filling each new block with 0xbe, recycling a
# 256 MiB quarantine, recording a 30-frame stack per malloc).  None of these
# settings turns a check off: overflows and leaks are found as before;
# a use after free is found while the block is among the last 16 MiB freed,
# and reports show 8 frames per allocation instead of 30.
FAST_ASAN=max_malloc_fill_size=0:quarantine_size_mb=16:malloc_context_size=8
if [[ -z "${ASAN_OPTIONS:-}" && "${PRIMUS_FUZZ_FAST:-0}" == 1 ]]; then
    export ASAN_OPTIONS="halt_on_error=1:print_summary=1:$FAST_ASAN"
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:print_summary=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:print_summary=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}"
# The token directories of uri_pem and store go here too, so that a target
# that dies does not leave them in /tmp.
export TMPDIR=$WORK

RESULTS=()
FAILED=0

# final_stat NAME LOG: a libFuzzer final statistic (-print_final_stats=1).
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
INTERRUPTED=72 # libFuzzer's exit status when interrupted (-interrupted_exitcode)

run_target() {
    local t=$1
    local bin=$BUILD_DIR/tests/fuzz_$t log=$WORK/$t.log corpus=$WORK/corpus/$t
    local regress=tests/fuzz/regress/$t dict=tests/fuzz/$t.dict rc=0
    if [[ -n "${PRIMUS_FUZZ_KEEP:-}" ]]; then
        corpus=$PRIMUS_FUZZ_KEEP/$t
    fi
    local args=(-timeout="$TIMEOUT" -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t/")
    local inputs=()

    [[ -f "$dict" ]] && args+=(-dict="$ROOT/$dict")
    mkdir -p "$corpus" "$ARTIFACTS/$t"

    # 1. regression inputs, each run once (files given by name are not a corpus)
    if [[ -d "$regress" ]]; then
        mapfile -t inputs < <(find "$regress" -type f | sort)
    fi
    if ((${#inputs[@]} > 0)); then
        say "$t: replaying ${#inputs[@]} regression input(s) from $regress"
        if ! "$bin" "${args[@]}" "${inputs[@]}" </dev/null >"$WORK/$t.regress.log" 2>&1; then
            tail -n 60 "$WORK/$t.regress.log" >&2
            RESULTS+=("$(printf '  FAIL  %-9s a regression input in %s fails again' "$t" "$regress")")
            FAILED=1
            return
        fi
    fi

    # 2. fuzzing on a copy of the seeds
    if [[ -d tests/fuzz/corpus/$t && -z "$(ls -A "$corpus")" ]]; then
        cp -R "tests/fuzz/corpus/$t/." "$corpus/"
    fi
    say "$t: fuzzing for ${SECONDS_PER_TARGET}s ($(find "$corpus" -type f | wc -l) seeds)"
    touch "$WORK/$t.start"
    "$bin" "${args[@]}" -interrupted_exitcode="$INTERRUPTED" -max_total_time="$SECONDS_PER_TARGET" \
        "$corpus" </dev/null >"$log" 2>&1 || rc=$?
    local runs rate kept
    runs=$(final_stat number_of_executed_units "$log")
    rate=$(final_stat average_exec_per_sec "$log")
    kept=$(find "$ARTIFACTS/$t" -type f -newer "$WORK/$t.start" | head -n 1)
    if ((rc == INTERRUPTED)) && [[ -z "$kept" ]]; then
        # stopped by SIGINT (ending a long campaign): not a finding
        RESULTS+=("$(printf '  STOP  %-9s %10s runs %7s exec/s  interrupted, no finding; corpus %d' \
            "$t" "${runs:-?}" "${rate:-?}" "$(find "$corpus" -type f | wc -l)")")
    elif ((rc != 0)); then
        tail -n 80 "$log" >&2
        RESULTS+=("$(printf '  FAIL  %-9s %10s runs %7s exec/s  exit %d; %s' \
            "$t" "${runs:-?}" "${rate:-?}" "$rc" \
            "${kept:+input kept in $kept}${kept:-no input kept (failed before fuzzing?): see above}")")
        FAILED=1
    else
        RESULTS+=("$(printf '  PASS  %-9s %10s runs %7s exec/s  corpus %d -> %d' "$t" \
            "${runs:-?}" "${rate:-?}" "$(find "tests/fuzz/corpus/$t" -type f 2>/dev/null | wc -l)" \
            "$(find "$corpus" -type f | wc -l)")")
    fi
}

for t in "${TARGETS[@]}"; do
    run_target "$t"
done

printf '\nfuzz: %ss per target\n' "$SECONDS_PER_TARGET"
printf '%s\n' "${RESULTS[@]}"
if ((FAILED)); then
    echo "fuzz: FAILED"
else
    echo "fuzz: all targets passed"
fi
exit "$FAILED"
