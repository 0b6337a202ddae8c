#!/usr/bin/env bash
# The primus-provider demo, on a throwaway SoftHSM2 token standing in for a
# Primus HSM partition:
#
#   bash scripts/demo.sh
#
# installs what is missing, builds, makes a token labelled DEMO with key
# pairs in it, lists them with primusctl, signs and verifies in the token,
# then (once the provider is built) uses the keys through OpenSSL: a
# self-signed certificate, a TLS handshake, and the audit record it left.
#
# Everything lives in demo-run/ at the repository root, recreated on every
# run; the system's token store is never touched.
#
# Environment: PRIMUS_BUILD_DIR (default build), PRIMUS_SKIP_DEPS=1,
# PRIMUS_SKIP_BUILD=1 (use the existing build as is).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD=${PRIMUS_BUILD_DIR:-build}
[[ "$BUILD" == /* ]] || BUILD="$ROOT/$BUILD"
RUN="$ROOT/demo-run"
PIN=1234
TOKEN=DEMO
PRIMUSCTL="$BUILD/tools/primusctl"
PROVIDER_DIR="$BUILD/provider"

BOLD='' PLAIN=''
if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; fi
STEP=0
step() { # step TITLE EXPLANATION
    STEP=$((STEP + 1))
    printf '\n%s[%d] %s%s\n    %s\n' "$BOLD" "$STEP" "$1" "$PLAIN" "$2"
}
show() { # print a command (paths relative to the repository), then run it
    local arg line='    $'
    for arg in "$@"; do
        arg=${arg//"$ROOT/"/}
        if [[ "$arg" =~ [^A-Za-z0-9_./:=,+@%-] ]]; then arg="'$arg'"; fi
        line+=" $arg"
    done
    printf '%s\n' "$line"
    "$@" 2>&1 | sed 's/^/      /'
    return "${PIPESTATUS[0]}"
}
note() { printf '    %s\n' "$*"; }
skip() { printf '    (skipped: %s)\n' "$*"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------
step "Dependencies" "Install the Debian packages the project needs (only those missing)."
bash "$ROOT/scripts/install-deps.sh"

# --------------------------------------------------------------------------
step "Build" "Configure and compile the URI parser, the PKCS#11 core, the provider and primusctl."
if [[ "${PRIMUS_SKIP_BUILD:-0}" == 1 ]]; then
    skip "PRIMUS_SKIP_BUILD=1"
else
    BUILD_LOG=$(mktemp "${TMPDIR:-/tmp}/primus-demo-build.XXXXXX")
    bash "$ROOT/scripts/build.sh" "$BUILD" >"$BUILD_LOG" 2>&1 || {
        tail -n 40 "$BUILD_LOG" >&2
        die "build failed (log: $BUILD_LOG)"
    }
    rm -f "$BUILD_LOG"
    note "built in ${BUILD#"$ROOT"/}"
fi
[[ -x "$PRIMUSCTL" ]] || die "$PRIMUSCTL is missing: the build did not produce primusctl"

# --------------------------------------------------------------------------
step "Token" "Create a fresh SoftHSM2 token labelled $TOKEN in demo-run/ (a stand-in for a Primus partition)."
rm -rf "$RUN"
mkdir -p "$RUN"
# shellcheck disable=SC1091  # tests/lib/token.sh, sourced from the repository root
. "$ROOT/tests/lib/token.sh"
. "$ROOT/tests/lib/openssl_conf.sh"
token_setup "$RUN/softhsm"
token_create "$TOKEN" "$PIN" || die "softhsm2-util could not create the token"
token_pin_file "$RUN/pin" "$PIN"
export PRIMUS_PKCS11_MODULE="$PRIMUS_SOFTHSM_MODULE"
note "SOFTHSM2_CONF=${SOFTHSM2_CONF#"$ROOT"/}  PIN file: demo-run/pin  module: $PRIMUS_PKCS11_MODULE"

# --------------------------------------------------------------------------
step "Keys" "Generate key pairs inside the token; the private halves never leave it."
token_keygen "$TOKEN" rsa:2048 01 demo-key "$PIN" || die "pkcs11-tool could not generate the RSA key"
note "RSA 2048    id=01  label=demo-key"
token_keygen "$TOKEN" EC:prime256v1 02 demo-ec-key "$PIN" || die "pkcs11-tool could not generate the EC key"
note "EC P-256    id=02  label=demo-ec-key"

# --------------------------------------------------------------------------
step "primusctl list" "What the PKCS#11 core sees: module, partitions (tokens by label) and their keys."
show "$PRIMUSCTL" list --pin-source "file:$RUN/pin" ||
    die "primusctl list failed (exit $?)"

# --------------------------------------------------------------------------
step "primusctl check" "Sign a test message with each key in the token and verify the signature."
show "$PRIMUSCTL" check --pin-source "file:$RUN/pin" "pkcs11:token=$TOKEN;object=demo-key" ||
    die "primusctl check of demo-key failed (exit $?)"
show "$PRIMUSCTL" check --pin-source "file:$RUN/pin" "pkcs11:token=$TOKEN;object=demo-ec-key" ||
    die "primusctl check of demo-ec-key failed (exit $?)"

# ==========================================================================
# OpenSSL through the provider: a certificate signed in the token, and a TLS
# server whose key stays in the token.
# ==========================================================================
step "Provider" "Load the primus provider into OpenSSL next to the default provider."
PROVIDER_OK=0
# default provider + primus; the PIN comes from a file only root can read;
# every key use is audited, with an HMAC key so that the log proves itself
rm -f "$RUN/audit.log"
(umask 077 && head -c 32 /dev/urandom >"$RUN/audit.key")
primus_openssl_conf "$RUN/openssl.cnf" "$PROVIDER_DIR/primus.so" \
    "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "pkcs11-module-token-pin = file:$RUN/pin" \
    "primus-audit-log = $RUN/audit.log" \
    "primus-audit-key = $RUN/audit.key"
if [[ -f "$PROVIDER_DIR/primus.so" ]] &&
    openssl list -providers -provider-path "$PROVIDER_DIR" -provider primus >"$RUN/provider.txt" 2>&1; then
    PROVIDER_OK=1
    sed 's/^/    /' "$RUN/provider.txt"
else
    sed 's/^/    /' "$RUN/provider.txt" >&2
    die "primus.so does not load into OpenSSL (see demo-run/provider.txt)"
fi

# --- Certificate ----------------------------------------------------------
step "Certificate" "openssl req makes a self-signed certificate; the signature is made in the token."
if ((PROVIDER_OK)); then
    show env OPENSSL_CONF="$RUN/openssl.cnf" openssl req -x509 -new -days 30 \
        -key "pkcs11:token=$TOKEN;object=demo-key;type=private" \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
        -out "$RUN/demo.crt" || die "openssl req failed"
    openssl x509 -in "$RUN/demo.crt" -noout -subject -dates | sed 's/^/    /'
else
    skip "provider not loaded"
fi

# --- TLS handshake --------------------------------------------------------
step "TLS" "openssl s_server holds the certificate, its key stays in the token; s_client connects once."
if ((PROVIDER_OK)) && [[ -f "$RUN/demo.crt" ]]; then
    PORT=$(free_port)
    OPENSSL_CONF="$RUN/openssl.cnf" openssl s_server -naccept 1 -accept "127.0.0.1:$PORT" \
        -cert "$RUN/demo.crt" -key "pkcs11:token=$TOKEN;object=demo-key;type=private" \
        -www >"$RUN/s_server.log" 2>&1 &
    SERVER_PID=$!
    trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
    for _ in $(seq 50); do
        grep -q ACCEPT "$RUN/s_server.log" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    note "\$ openssl s_client -connect 127.0.0.1:$PORT -CAfile demo-run/demo.crt -verify_return_error"
    if printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$PORT" \
        -CAfile "$RUN/demo.crt" -verify_return_error -brief >"$RUN/s_client.log" 2>&1; then
        grep -E 'Protocol version|Ciphersuite|Verification' "$RUN/s_client.log" | sed 's/^/    /'
    else
        sed 's/^/    /' "$RUN/s_client.log" "$RUN/s_server.log" >&2
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        die "TLS handshake failed"
    fi
    # -naccept 1: the server exits by itself (and closes its audit stream)
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
else
    skip "provider not loaded"
fi

# --- Audit ----------------------------------------------------------------
step "Audit" "Every key use left a record: hash-chained per process, HMAC-authenticated, verified."
if ((PROVIDER_OK)) && [[ -s "$RUN/audit.log" ]]; then
    note "the record of the TLS handshake's signature (demo-run/audit.log):"
    grep '"process":"openssl"' "$RUN/audit.log" | grep '"event":"sign"' | tail -n 1 |
        python3 -m json.tool | sed 's/^/    /'
    show "$PRIMUSCTL" audit verify "$RUN/audit.log" --key "$RUN/audit.key" ||
        die "the audit log does not verify (exit $?)"
else
    die "no audit log was written (demo-run/audit.log)"
fi

printf '\n%sdemo: done.%s  Everything it made is in demo-run/ (delete it freely).\n' "$BOLD" "$PLAIN"
