#!/usr/bin/env bash
# TLS with HSM keys through the primus provider: `openssl s_server -key
# pkcs11:...` and `openssl s_client` complete TLS 1.3 and TLS 1.2 handshakes
# for RSA and EC server keys; the server key also as a URI PEM file; a
# client certificate whose key is in the HSM is accepted by `s_server
# -Verify`.  Servers listen on free ports of 127.0.0.1 and are always killed.
source "$(dirname "${BASH_SOURCE[0]}")/provider_lib.sh"

PIN=24680135
T=TLSTOK
token_setup "$WORK/hsm"
token_create "$T" "$PIN"
token_pin_file "$WORK/pin" "$PIN"
token_keygen "$T" rsa:2048 01 srv-rsa "$PIN"
token_keygen "$T" EC:prime256v1 02 srv-ec "$PIN"
token_keygen "$T" EC:secp384r1 03 cli-ec "$PIN"
token_keygen "$T" rsa:3072 04 cli-rsa "$PIN"
prov_conf "$CONF" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "pkcs11-module-token-pin = file:$WORK/pin"
cd "$WORK" || exit 1
u() { echo "pkcs11:token=$T;object=$1"; }

# A software CA issues certificates for the HSM keys.
plain_ok "CA" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -subj "/CN=primus test CA" -days 3 -out ca.crt
cat >ext.cnf <<'EOF'
[srv]
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = serverAuth
[cli]
extendedKeyUsage = clientAuth
EOF
for k in srv-rsa srv-ec cli-ec cli-rsa; do
    ossl_ok "CSR $k" req -new -key "$(u "$k")" -subj "/CN=$k" -out "$k.csr"
    plain_ok "certificate $k" x509 -req -in "$k.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -days 3 -extfile ext.cnf -extensions "${k%%-*}" -out "$k.crt"
done
ossl_ok "URI PEM for srv-ec" pkey -in "$(u srv-ec)" -out srv-ec.uri.pem

# handshake NAME VERSION SERVER-KEY SERVER-CERT [CLIENT ARGS...]
handshake() {
    local name=$1 version=$2 key=$3 cert=$4
    shift 4
    local port
    port=$(free_port)
    start_bg "srv-$name" ossl s_server -accept "127.0.0.1:$port" -naccept 1 -www \
        -cert "$cert" -key "$key" -CAfile ca.crt "${SERVER_ARGS[@]}"
    local spid=$BG_PID
    wait_port "$port"
    run ossl s_client -connect "127.0.0.1:$port" "$version" -CAfile ca.crt -verify_return_error \
        -verify_ip 127.0.0.1 -brief -ign_eof "$@" < <(printf 'GET / HTTP/1.0\r\n\r\n')
    local cstatus=$STATUS cout=$OUT cerr=$ERR
    wait "$spid"
    local sstatus=$?
    SERVER_LOG=$(cat "$WORK/srv-$name.log")
    OUT=$cout ERR=$cerr STATUS=$cstatus
    LAST_CMD="s_client $name $version"
    [ "$cstatus" -eq 0 ] && pass || fail "$name $version: s_client exited with $cstatus"
    [ "$sstatus" -eq 0 ] && pass || {
        ERR=$SERVER_LOG
        fail "$name $version: s_server exited with $sstatus"
    }
    expect_err "Verification: OK"
    expect_out "200 ok"
}

SERVER_ARGS=()
for k in srv-rsa srv-ec; do
    for v in -tls1_3 -tls1_2; do
        handshake "$k$v" "$v" "$(u "$k")" "$k.crt"
        expect_err "Protocol version: TLSv1.${v#-tls1_}"
    done
done
handshake "rsa-sigalg" -tls1_2 "$(u srv-rsa)" srv-rsa.crt -sigalgs RSA+SHA256
expect_err "Signature type: RSA"
handshake "ec-p384-sigalg" -tls1_3 "$(u srv-ec)" srv-ec.crt -sigalgs ECDSA+SHA256
expect_err "Signature type: ECDSA"
handshake "uri-pem" -tls1_3 srv-ec.uri.pem srv-ec.crt

# Client certificates with HSM keys, required by the server.
SERVER_ARGS=(-Verify 1 -verify_return_error)
for k in cli-ec cli-rsa; do
    for v in -tls1_3 -tls1_2; do
        handshake "$k$v" "$v" "$(u srv-ec)" srv-ec.crt -cert "$k.crt" -key "$(u "$k")"
        grep -q "CN *= *$k" <<<"$SERVER_LOG" && pass \
            || { ERR=$SERVER_LOG; fail "s_server did not see the client certificate $k"; }
    done
done

# Without the client key the server refuses: the test above is not vacuous.
port=$(free_port)
start_bg "srv-noclient" ossl s_server -accept "127.0.0.1:$port" -naccept 1 -www \
    -cert srv-ec.crt -key "$(u srv-ec)" -CAfile ca.crt -Verify 1 -verify_return_error
wait_port "$port"
run ossl s_client -connect "127.0.0.1:$port" -tls1_3 -CAfile ca.crt -brief -ign_eof \
    < <(printf 'GET / HTTP/1.0\r\n\r\n')
expect_no_out "200 ok"
wait "$BG_PID"

finish
