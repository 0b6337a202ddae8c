#!/usr/bin/env bash
# curl (Debian 12: 7.88) authenticating with a client certificate whose key is
# in the HSM, against a server on 127.0.0.1 that requires client
# certificates (`openssl s_server -Verify 1`, with an ordinary software key).
#
#   bash examples/curl/run.sh             (STAY=1 to try it by hand, KEEP=1 to keep files)
#
# The essential part is one line:
#     OPENSSL_CONF=openssl.cnf curl --cert client.crt --key client-key.uri.pem https://...
# curl 7.88 takes --key as a file (a bare pkcs11: URI goes to an OpenSSL
# engine, and --key-type PROV only arrived in curl 8.12), so the key is named
# by a PEM file that holds only its pkcs11: URI (`primusctl uri-pem`).
# OPENSSL_CONF loads the provider into curl.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ex_begin curl
ex_keys
ex_openssl_conf
ex_ca
ex_cert client-rsa "$RSA_KEY_URI" client
ex_cert client-ec "$EC_KEY_URI" client
say "key files for curl: PEM files that hold only the keys' pkcs11: URIs"
ex_uri_pem "$RSA_KEY_URI" "$WORK/client-rsa.uri.pem"
ex_uri_pem "$EC_KEY_URI" "$WORK/client-ec.uri.pem"

say "a server that requires a client certificate from the test CA (software key)"
plain_openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/server.key" -subj /CN=localhost -out "$WORK/server.csr" 2>/dev/null
plain_openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 2 -extfile "$WORK/ext.cnf" -extensions server \
    -out "$WORK/server.crt" 2>/dev/null
PORT=$(ex_free_port)
note "\$ openssl s_server -accept 127.0.0.1:$PORT -cert server.crt -key server.key -CAfile ca.crt -Verify 1 -verify_return_error -www"
ex_bg "$WORK/server.log" env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$PORT" \
    -cert "$WORK/server.crt" -key "$WORK/server.key" -CAfile "$WORK/ca.crt" \
    -Verify 1 -verify_return_error -www
SERVER=$EX_PID
ex_wait_port "$PORT"

FAILED=0
for k in ec rsa; do
    say "curl with the client certificate client-$k.crt, its key in the HSM"
    show curl -sS --cacert "$WORK/ca.crt" --cert "$WORK/client-$k.crt" \
        --key "$WORK/client-$k.uri.pem" -o "$WORK/page-$k" "https://127.0.0.1:$PORT/" || true
    sleep 0.2
    if grep -q 'Protocol' "$WORK/page-$k" 2>/dev/null && grep -q "CN = client-$k" "$WORK/server.log"; then
        note "accepted: the server verified the client certificate CN=client-$k:"
        grep "depth=0 CN = client-$k" "$WORK/server.log" | tail -1 | sed 's/^/      server: /'
        grep -E '^New,' "$WORK/page-$k" | head -1 | sed 's/^/      page: /'
    else
        note "NOT accepted"
        FAILED=$((FAILED + 1))
    fi
done

say "without a client certificate the server refuses the connection"
if show curl -sS --cacert "$WORK/ca.crt" -o /dev/null "https://127.0.0.1:$PORT/"; then
    note "the server accepted a client without a certificate!"
    FAILED=$((FAILED + 1))
else
    note "rejected, as it should be"
fi

ex_stay "try: OPENSSL_CONF=$OPENSSL_CONF curl --cacert $WORK/ca.crt --cert $WORK/client-ec.crt --key $WORK/client-ec.uri.pem https://127.0.0.1:$PORT/"
ex_stop "$SERVER"
[ "$FAILED" = 0 ] || die "$FAILED check(s) failed"
say "curl example: client authentication with keys in the HSM works"
