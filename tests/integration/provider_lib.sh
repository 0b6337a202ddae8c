# Helpers for the provider tests (provider_*.sh).  Source this file.
#
# Everything runs the real `openssl` binary against a throwaway SoftHSM
# token in a mktemp directory:
#   ossl ARGS...        openssl with the primus provider (OPENSSL_CONF=$CONF)
#   plain ARGS...       openssl with the default provider only (the reference)
#   prov_conf FILE [LINES...]   write an openssl.cnf activating default + primus;
#                       extra LINES go into the primus section
#   free_port           a free TCP port on 127.0.0.1
#   start_bg NAME CMD...  run CMD in the background (killed at exit), pid in $BG_PID
#   wait_port PORT      wait until something listens on 127.0.0.1:PORT
#   ossl_ok DESC ARGS...  run ossl ARGS, expect exit status 0 (no crash at exit)
#   plain_ok DESC ARGS... the same with the default provider only
#   same_file A B DESC  byte-for-byte comparison
set -uo pipefail
: "${PRIMUS_SRC:?set PRIMUS_SRC to the source tree}"
: "${PRIMUS_BUILD:?set PRIMUS_BUILD to the build tree}"
source "$PRIMUS_SRC/tests/lib/token.sh"
source "$PRIMUS_SRC/tests/lib/openssl_conf.sh"
source "$PRIMUS_SRC/tests/lib/assert.sh"

PROV_DIR="$PRIMUS_BUILD/provider"
PROV_SO="$PROV_DIR/primus.so"
[ -f "$PROV_SO" ] || { echo "no provider at $PROV_SO: build it first" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/primus-provider.XXXXXX")
BG_PIDS=()
_prov_cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$WORK" "${ASSERT_TMP:-}"
}
trap _prov_cleanup EXIT

CONF="$WORK/openssl.cnf"
ossl() { OPENSSL_CONF="$CONF" with_sanitizer_runtime openssl "$@"; }
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }

prov_conf() { # prov_conf FILE [LINE...]
    local file=$1
    shift
    primus_openssl_conf "$file" "$PROV_SO" "$@"
}

start_bg() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

# (without connecting: servers started with -naccept 1 would count it)
wait_port() {
    local i hex tries=150
    # a server under the test wrapper (valgrind: tests/lib/wrapper.sh) starts
    # many times slower
    [ -n "${PRIMUS_TEST_WRAPPER:-}" ] && tries=600
    hex=$(printf '%04X' "$1")
    for i in $(seq 1 "$tries"); do
        if grep -q "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A" /proc/net/tcp 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    fail "nothing listens on 127.0.0.1:$1"
}

ossl_ok() {
    local desc=$1
    shift
    run ossl "$@"
    [ "$STATUS" -eq 0 ] && pass || fail "$desc: openssl exited with $STATUS"
}

plain_ok() {
    local desc=$1
    shift
    run plain "$@"
    [ "$STATUS" -eq 0 ] && pass || fail "$desc: openssl (default provider) exited with $STATUS"
}

same_file() {
    cmp -s "$1" "$2" && pass || {
        LAST_CMD="cmp $1 $2"
        OUT=$(diff <(cat "$1") <(cat "$2") 2>&1 | head -20)
        ERR=
        fail "$3: $1 and $2 differ"
    }
}
