#!/usr/bin/env bash
# 8 threads signing through the primus provider on a throwaway SoftHSM
# token (tests/stress/stress_threads.c says what is checked).
#   PRIMUS_STRESS_THREADS  threads (default 8)
#   PRIMUS_STRESS_COUNT    signatures per thread and mode (default 25; the
#                          ThreadSanitizer run keeps the default: races show
#                          on overlap, not on volume)
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/token.sh"
source "$PRIMUS_SRC/tests/lib/openssl_conf.sh"

STRESS="$PRIMUS_BUILD/tests/stress_threads"
THREADS=${PRIMUS_STRESS_THREADS:-8}
COUNT=${PRIMUS_STRESS_COUNT:-25}
PIN=97531
work=$(mktemp -d /tmp/primus-stress.XXXXXX)
trap 'rm -rf "$work"' EXIT

token_setup "$work/hsm"
token_create STRESS "$PIN"
# One RSA and one EC key per thread (the shared mode uses key 0); one
# pkcs11-tool after the other, as SoftHSM's file store is not meant for
# concurrent writers.
for ((i = 0; i < THREADS; i++)); do
    token_keygen STRESS rsa:2048 "$(printf '1%03x' "$i")" "rsa-$i" "$PIN" || fail "cannot make rsa-$i"
    token_keygen STRESS EC:prime256v1 "$(printf '2%03x' "$i")" "ec-$i" "$PIN" || fail "cannot make ec-$i"
done
token_pin_file "$work/pin" "$PIN"
primus_openssl_conf "$work/openssl.cnf" "$PRIMUS_BUILD/provider/primus.so" \
    "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" "pkcs11-module-token-pin = file:$work/pin"

run "$STRESS" --conf "$work/openssl.cnf" --token STRESS --threads "$THREADS" --count "$COUNT"
echo "$OUT"
[ -n "$ERR" ] && echo "$ERR" >&2
expect_status 0
want=$((THREADS * COUNT))
for m in "rsa shared" "rsa own" "ec shared" "ec own"; do
    set -- $m
    grep -Eq "^$1 +$2 +threads $THREADS signed $want verified $want failed 0 expected $want .* ok\$" <<<"$OUT" \
        && pass || fail "$1 $2: the counts do not match"
done
expect_out "all counts match"
finish
