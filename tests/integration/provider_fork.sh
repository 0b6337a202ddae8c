#!/usr/bin/env bash
# Keys loaded before fork() sign in the child (nginx and Apache load keys in
# the master and sign in forked workers), with the in-process SoftHSM
# module: each signature verifies, and none leaves errors in OpenSSL's queue
# (the module starting again in the child must not look like a failure).
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/token.sh"
source "$PRIMUS_SRC/tests/lib/openssl_conf.sh"

LOAD="$PRIMUS_BUILD/tests/provider_signload"
work=$(mktemp -d /tmp/primus-fork.XXXXXX)
trap 'rm -rf "$work"' EXIT
token_setup "$work/hsm"
token_create FORK 2468
token_keygen FORK rsa:2048 01 fork-rsa 2468
token_keygen FORK EC:prime256v1 02 fork-ec 2468
printf 2468 >"$work/pin" && chmod 600 "$work/pin"
primus_openssl_conf "$work/openssl.cnf" "$PRIMUS_BUILD/provider/primus.so" \
    "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" "pkcs11-module-token-pin = file:$work/pin"
for k in rsa ec; do
    OPENSSL_CONF="$work/openssl.cnf" with_sanitizer_runtime openssl pkey -in "pkcs11:token=FORK;object=fork-$k" -pubout \
        -out "$work/$k.pub" || fail "cannot export the $k public key"
    run "$LOAD" --conf "$work/openssl.cnf" --uri "pkcs11:token=FORK;object=fork-$k;type=private" \
        --pub "$work/$k.pub" --threads 2 --count 200 --fork
    expect_status 0
    expect_out "operations 200 failed 0 bad-signatures 0"
    expect_no_err "error"
done
finish
