#!/usr/bin/env bash
# Self-test of the checking harness: CI's valgrind and sanitizer runs would
# fail on a planted leak or overflow.  tests/harness/planted.c is compiled
# here, twice:
#   1. plain (-O1 -g), run under valgrind with exactly the flags and
#      suppressions of scripts/valgrind.sh (tests/lib/valgrind.sh):
#      clean exits 0 (so the suppressions file parses and nothing of ours is
#      hidden), leak and overflow exit with the error status, and through the
#      test wrapper (tests/lib/wrapper.sh + assert.sh) a finding fails a test
#      even where the test expected the command to fail;
#   2. with -fsanitize=address,undefined as the sanitizer build is (options
#      as scripts/test.sh sets them): clean passes, leak, overflow and ub fail.
# Environment: PRIMUS_CC (the build's compiler; default cc).
set -uo pipefail
: "${PRIMUS_SRC:?set PRIMUS_SRC to the source tree}"
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/valgrind.sh"

CC=${PRIMUS_CC:-cc}
work=$(mktemp -d /tmp/primus-harness.XXXXXX)
trap 'rm -rf "$work"' EXIT
SRC="$PRIMUS_SRC/tests/harness/planted.c"

# ---- 1. valgrind -----------------------------------------------------------------
command -v valgrind >/dev/null || fail "valgrind is not installed (scripts/install-deps.sh installs it)"
# DWARF 4: valgrind 3.19 cannot read all of clang 14's DWARF 5
run "$CC" -std=c11 -O1 -g -gdwarf-4 -o "$work/planted" "$SRC"
expect_status 0
read -r -a VG <<<"$(primus_valgrind_wrapper "$PRIMUS_SRC")"

# vg_run CASE: planted CASE under valgrind, its report in $work/vg.CASE.*
vg_run() {
    PRIMUS_WRAP_LOG="$work/vg.$1" run "${VG[@]}" "$work/planted" "$1"
    REPORT=$(cat "$work/vg.$1".* 2>/dev/null)
}
vg_run clean
expect_status 0
[ -z "$REPORT" ] && pass || fail "valgrind reported on the clean program: $REPORT"
vg_run leak
expect_status "$PRIMUS_VALGRIND_STATUS"
grep -q "definitely lost" <<<"$REPORT" && pass || fail "no definite leak in the report: $REPORT"
grep -q "planted.c:" <<<"$REPORT" && pass || fail "the report does not point into planted.c: $REPORT"
vg_run overflow
expect_status "$PRIMUS_VALGRIND_STATUS"
grep -q "Invalid write of size 1" <<<"$REPORT" && pass || fail "no invalid write in the report: $REPORT"

# The wrapper turns a finding into a failed test, in a script of its own as
# every test is: at the command itself (even when the test wanted it to
# fail), and at finish for a command run in the background.
cat >"$work/wrapped_test.sh" <<EOF
source "$PRIMUS_SRC/tests/lib/assert.sh"
case "\$1" in
    run) run "$work/planted" leak ;;              # fails here
    background) primus_wrap "$work/planted" leak & wait ;;    # not seen by run
    clean) run "$work/planted" clean; expect_status 0 ;;
esac
primus_wrap "$work/planted" clean
finish
EOF
wrapped() {
    run env PRIMUS_TEST_WRAPPER="$(primus_valgrind_wrapper "$PRIMUS_SRC")" PRIMUS_TEST_WRAPPED=planted \
        PRIMUS_TEST_WRAPPER_LOGS="$work/wrapped-logs" bash "$work/wrapped_test.sh" "$1"
}
wrapped clean
expect_status 0
expect_out "passed, 0 failed"
wrapped run
expect_status 1
expect_err "the test wrapper (valgrind"
expect_err "reported errors (exit $PRIMUS_VALGRIND_STATUS) in: $work/planted leak"
expect_err "definitely lost"
expect_out "passed, 1 failed"
wrapped background
expect_status 1
expect_err "reported errors (exit $PRIMUS_VALGRIND_STATUS) in: $work/planted leak"
expect_out "passed, 1 failed"
# Without PRIMUS_TEST_WRAPPER nothing is wrapped (the default stays as it was).
run env -u PRIMUS_TEST_WRAPPER bash "$work/wrapped_test.sh" run
expect_status 0
expect_out "passed, 0 failed"

# ---- 2. ASan + UBSan ----------------------------------------------------------------
run "$CC" -std=c11 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
    -fno-sanitize-recover=all -o "$work/planted-asan" "$SRC"
expect_status 0
# the options of scripts/test.sh's sanitizer run
san_run() {
    run env ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:print_summary=1" \
        LSAN_OPTIONS="suppressions=$PRIMUS_SRC/tests/lsan.supp:print_suppressions=0" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1" \
        "$work/planted-asan" "$1"
}
san_run clean
expect_status 0
san_run leak
[ "$STATUS" -ne 0 ] && pass || fail "ASan let the leak pass"
expect_err "ERROR: LeakSanitizer: detected memory leaks"
san_run overflow
[ "$STATUS" -ne 0 ] && pass || fail "ASan let the overflow pass"
expect_err "ERROR: AddressSanitizer: heap-buffer-overflow"
san_run ub
[ "$STATUS" -ne 0 ] && pass || fail "UBSan let the signed overflow pass"
expect_err "runtime error: signed integer overflow"

finish
