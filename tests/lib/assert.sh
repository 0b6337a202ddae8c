# Assertions for bash tests.  Source this file.
#   run CMD...        runs CMD, keeping stdout in $OUT, stderr in $ERR, status in $STATUS
#   expect_status N   expect_out TEXT   expect_err TEXT   expect_no_out TEXT   expect_no_err TEXT
#   fail MSG          finish (prints "N passed, 0 failed" and exits)
# With PRIMUS_TEST_WRAPPER set (tests/lib/wrapper.sh), `run` puts programs
# under test through the wrapper, and a wrapper finding (e.g. a valgrind
# error) fails the test at that command, or at `finish` for commands that
# `run` did not see (background servers, process substitutions).
ASSERT_PASSED=0
ASSERT_TMP=$(mktemp -d /tmp/assert.XXXXXX)
# shellcheck source=tests/lib/wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/wrapper.sh"

run() {
    primus_wrap "$@" >"$ASSERT_TMP/out" 2>"$ASSERT_TMP/err"
    STATUS=$?
    OUT=$(cat "$ASSERT_TMP/out")
    ERR=$(cat "$ASSERT_TMP/err")
    LAST_CMD="$*"
    _assert_wrapper_check
}

# Fail on any wrapper finding so far.
_assert_wrapper_check() {
    local found
    found=$(primus_wrapper_check) || fail "the test wrapper ($PRIMUS_TEST_WRAPPER) reported errors:
$found"
}

fail() {
    echo "FAIL: $*" >&2
    echo "  command: ${LAST_CMD:-}" >&2
    echo "  stdout: ${OUT:-}" | head -c 2000 >&2
    echo "  stderr: ${ERR:-}" | head -c 2000 >&2
    echo >&2
    echo "$ASSERT_PASSED passed, 1 failed"
    rm -rf "$ASSERT_TMP"
    primus_wrapper_cleanup
    exit 1
}

pass() { ASSERT_PASSED=$((ASSERT_PASSED + 1)); }
expect_status() { [ "$STATUS" -eq "$1" ] && pass || fail "expected exit status $1, got $STATUS"; }
expect_out() { grep -qF -- "$1" <<<"$OUT" && pass || fail "stdout lacks: $1"; }
expect_err() { grep -qF -- "$1" <<<"$ERR" && pass || fail "stderr lacks: $1"; }
expect_no_out() { ! grep -qF -- "$1" <<<"$OUT" && pass || fail "stdout must not contain: $1"; }
expect_no_err() { ! grep -qF -- "$1" <<<"$ERR" && pass || fail "stderr must not contain: $1"; }

finish() {
    _assert_wrapper_check
    rm -rf "$ASSERT_TMP"
    primus_wrapper_cleanup
    echo "$ASSERT_PASSED passed, 0 failed"
    exit 0
}
