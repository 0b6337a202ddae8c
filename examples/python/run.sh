#!/usr/bin/env bash
# Python's ssl module (Python 3.11 on Debian 12) with keys in the HSM:
#   client.py  authenticates with a client certificate whose key is in the HSM,
#              against `openssl s_server -Verify 1` (software key) on 127.0.0.1;
#   server.py  serves HTTPS with its key in the HSM.
#
#   bash examples/python/run.sh           (STAY=1 to try it by hand, KEEP=1 to keep files)
#
# In both, ssl.SSLContext.load_cert_chain(cert, keyfile=KEY.uri.pem) takes the
# PEM file that holds only the key's pkcs11: URI, and OPENSSL_CONF loads the
# provider into the Python process.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ex_begin python
ex_keys
ex_openssl_conf
ex_ca
ex_cert client-rsa "$RSA_KEY_URI" client
ex_cert client-ec "$EC_KEY_URI" client
ex_cert py-server "$EC_KEY_URI" server
say "key files for Python: PEM files that hold only the keys' pkcs11: URIs"
ex_uri_pem "$RSA_KEY_URI" "$WORK/rsa.uri.pem"
ex_uri_pem "$EC_KEY_URI" "$WORK/ec.uri.pem"

say "a server that requires a client certificate from the test CA (software key)"
plain_openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/server.key" -subj /CN=localhost -out "$WORK/server.csr" 2>/dev/null
plain_openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 2 -extfile "$WORK/ext.cnf" -extensions server \
    -out "$WORK/server.crt" 2>/dev/null
PORT=$(ex_free_port)
ex_bg "$WORK/s_server.log" env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$PORT" \
    -cert "$WORK/server.crt" -key "$WORK/server.key" -CAfile "$WORK/ca.crt" \
    -Verify 1 -verify_return_error -www
SSERVER=$EX_PID
ex_wait_port "$PORT"
note "openssl s_server -Verify 1 on 127.0.0.1:$PORT"

FAILED=0
for k in ec rsa; do
    say "client.py with client-$k.crt, its key in the HSM"
    note "\$ $PY client.py https://127.0.0.1:$PORT/ ca.crt --cert client-$k.crt --key $k.uri.pem"
    if "$PY" "$EX_HOME/python/client.py" "https://127.0.0.1:$PORT/" "$WORK/ca.crt" \
            --cert "$WORK/client-$k.crt" --key "$WORK/$k.uri.pem" >"$WORK/py-$k.out" 2>&1 &&
            sleep 0.2 && grep -q "depth=0 CN = client-$k" "$WORK/s_server.log"; then
        note "accepted; the server verified CN=client-$k; client.py: $(head -1 "$WORK/py-$k.out" | cut -c1-40)..."
    else
        note "NOT accepted:"
        sed 's/^/      /' "$WORK/py-$k.out"
        FAILED=$((FAILED + 1))
    fi
done

say "client.py without a client certificate is refused"
if show "$PY" "$EX_HOME/python/client.py" "https://127.0.0.1:$PORT/" "$WORK/ca.crt"; then
    note "the server accepted a client without a certificate!"
    FAILED=$((FAILED + 1))
else
    note "rejected, as it should be"
fi
ex_stop "$SSERVER"

say "server.py: HTTPS with its EC key in the HSM"
PORT=$(ex_free_port)
note "\$ OPENSSL_CONF=$OPENSSL_CONF $PY server.py $PORT py-server.crt ec.uri.pem"
ex_bg "$WORK/py-server.log" "$PY" "$EX_HOME/python/server.py" "$PORT" "$WORK/py-server.crt" "$WORK/ec.uri.pem"
PSERVER=$EX_PID
ex_wait_port "$PORT"
for v in 1.3 1.2; do
    if body=$(OPENSSL_CONF=/dev/null curl -sS --cacert "$WORK/ca.crt" "--tlsv$v" --tls-max "$v" \
            "https://127.0.0.1:$PORT/" 2>&1); then
        note "curl TLS $v -> $body"
    else
        note "curl TLS $v FAILED: $body"
        FAILED=$((FAILED + 1))
    fi
done
OPENSSL_CONF=/dev/null openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$WORK/ca.crt" \
    </dev/null 2>/dev/null | plain_openssl x509 -out "$WORK/served.crt" 2>/dev/null || true
if [ -s "$WORK/served.crt" ] && ex_pubkey_matches "$WORK/served.crt" "$EC_KEY_URI"; then
    note "served certificate's public key = public key of $EC_KEY_URI"
else
    note "served certificate does NOT match $EC_KEY_URI"
    FAILED=$((FAILED + 1))
fi
ex_stay "try: curl --cacert $WORK/ca.crt https://127.0.0.1:$PORT/"
ex_stop "$PSERVER"

[ "$FAILED" = 0 ] || die "$FAILED check(s) failed"
say "python example: client and server with keys in the HSM work"
