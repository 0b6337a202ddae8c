#!/usr/bin/env bash
# The examples in examples/ run as documented: each run.sh makes its own throwaway
# token, starts its server on 127.0.0.1, checks its requests itself and exits 0
# (nginx, Apache with the prefork and the event MPM, curl, Python, openssl).
# They use the provider with SoftHSM2 directly (no shim).
source "$(dirname "${BASH_SOURCE[0]}")/tls_lib.sh"
EX=$PRIMUS_SRC/examples

# example NAME [VAR=VALUE...]: run examples/NAME/run.sh, expect success.
example() {
    local name=$1 t=$SECONDS
    shift
    run env PRIMUS_BUILD="$PRIMUS_BUILD" TMPDIR="$WORK" "$@" bash "$EX/$name/run.sh"
    if [ "$STATUS" != 0 ] && [ "$name" = nginx ] && nginx_known_bug_only; then
        echo "    $name: only the KNOWN PROVIDER BUG (see tls_lib.sh): $(grep -c 'FAILED' <<<"$OUT")" \
            "request(s) failed and the error log has only 'rdrand.so' stale-error lines"
        pass
    else
        expect_status 0
    fi
    expect_no_out "does NOT match"
    echo "    $name $*: exit $STATUS in $((SECONDS - t)) s"
}

# The nginx example failed only through the known bug: its failed requests and the
# error-log lines it printed are all that bug, and every other check passed.
nginx_known_bug_only() {
    [ "${PRIMUS_TLS_STRICT:-1}" = 1 ] && return 1
    local fails log
    fails=$(grep -c 'FAILED' <<<"$OUT")
    log=$(awk '/==> the error log has problems:/ { on = 1; next } on && /^    / { print }' <<<"$OUT")
    # at most one per fresh worker (2 before and 2 after the reload), each one logged
    [ "$fails" -le 4 ] || return 1
    [ -n "$log" ] || return 1
    [ -z "$(grep -vF "$KNOWN_BUG_SIG" <<<"$log" | grep .)" ] || return 1
    [ "$(grep -c 'SSL_do_handshake() failed' <<<"$log")" -ge "$fails" ] || return 1
    grep -q 'nginx master exited with status 0' <<<"$OUT" || return 1
    grep -q "ERROR: $((fails + 1)) check(s) failed" <<<"$ERR"
}

command -v nginx >/dev/null && example nginx
command -v apache2 >/dev/null && example apache MPM=prefork
command -v apache2 >/dev/null && example apache MPM=event
example curl
example python
example openssl
# nothing left behind: the examples remove their work directories
LEFT=$(find "$WORK" -maxdepth 1 -name 'primus-example-*')
[ -z "$LEFT" ] && pass || fail "examples left $LEFT"
finish
