#!/usr/bin/env bash
# TLS clients with their keys in the HSM, for real:
#   - curl 7.88 (`--cert X.crt --key X.uri.pem`, OPENSSL_CONF loading the provider)
#     and Python's ssl (examples/python/client.py: load_cert_chain(cert,
#     keyfile=X.uri.pem)) authenticate with client certificates whose RSA or EC key
#     is in the HSM, over TLS 1.3 and 1.2, against two servers that require a
#     client certificate: `openssl s_server -Verify 1 -verify_return_error` and
#     nginx with `ssl_verify_client on` (both with software keys);
#   - the servers saw and verified the certificate (s_server's log; nginx's
#     $ssl_client_s_dn / $ssl_client_verify in the response body);
#   - each client handshake made exactly one C_Sign in the token (shim log);
#   - both clients are REJECTED without a certificate (s_server: handshake alert;
#     nginx: 400 "No required SSL certificate was sent");
#   - one curl process making 50 requests over new connections signs 50 times;
#   - Python's ssl as a server with its key in the HSM (examples/python/server.py),
#     50 requests from curl: the certificate served holds the HSM key, 50 C_Sign.
source "$(dirname "${BASH_SOURCE[0]}")/tls_lib.sh"
command -v nginx >/dev/null || { echo "nginx not installed" >&2; exit 1; }
CLIENT_PY=$PRIMUS_SRC/examples/python/client.py
SERVER_PY=$PRIMUS_SRC/examples/python/server.py

say "token, client keys, certificates"
tls_token CLIENTS 11223344
tls_shim_conf
tls_ca
tls_cert cli-rsa "$RSA_URI" client
tls_cert cli-ec "$EC_URI" client
tls_uri_pem "$RSA_URI" "$WORK/cli-rsa.uri.pem"
tls_uri_pem "$EC_URI" "$WORK/cli-ec.uri.pem"
# the servers' own keys are software keys
OPENSSL_CONF=/dev/null openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/srv.key" -subj /CN=localhost -out "$WORK/srv.csr" 2>/dev/null &&
    OPENSSL_CONF=/dev/null openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
        -CAcreateserial -days 3 -extfile "$WORK/ext.cnf" -extensions server -out "$WORK/srv.crt" 2>/dev/null &&
    pass || fail "server certificate"

say "servers: openssl s_server -Verify 1, nginx ssl_verify_client on"
SS_PORT=$(free_port)
start_server s_server env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$SS_PORT" \
    -cert "$WORK/srv.crt" -key "$WORK/srv.key" -CAfile "$WORK/ca.crt" -Verify 1 -verify_return_error -www
SS_PID=$SERVER_PID
NG_PORT=$(free_port)
P=$WORK/nginx
mkdir -p "$P/tmp"
cat >"$P/nginx.conf" <<EOF
worker_processes 1;
pid $P/nginx.pid;
error_log $P/error.log info;
events { worker_connections 64; }
http {
    access_log $P/access.log;
    client_body_temp_path $P/tmp/body;
    proxy_temp_path $P/tmp/proxy;
    fastcgi_temp_path $P/tmp/fastcgi;
    uwsgi_temp_path $P/tmp/uwsgi;
    scgi_temp_path $P/tmp/scgi;
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:$NG_PORT ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $WORK/srv.crt;
        ssl_certificate_key $WORK/srv.key;
        ssl_client_certificate $WORK/ca.crt;
        ssl_verify_client on;
        location / { return 200 "client=\$ssl_client_s_dn verify=\$ssl_client_verify proto=\$ssl_protocol\n"; }
    }
}
EOF
start_server nginx env OPENSSL_CONF=/dev/null nginx -p "$P" -c "$P/nginx.conf" -g 'daemon off;'
NG_PID=$SERVER_PID
wait_port "$SS_PORT"
wait_port "$NG_PORT"
only_loopback "$SS_PID" "$NG_PID" $(ps -o pid= --ppid "$NG_PID")

# client_ok WHO SERVER KEY VERSION: WHO (curl|python) with the HSM key KEY.
client_ok() {
    local who=$1 server=$2 k=$3 v=$4 port=SS_PORT s0 d
    [ "$server" = nginx ] && port=NG_PORT
    s0=$(signs)
    if [ "$who" = curl ]; then
        run env OPENSSL_CONF="$CONF" curl -sS --cacert "$WORK/ca.crt" --tlsv$v --tls-max $v \
            --cert "$WORK/cli-$k.crt" --key "$WORK/cli-$k.uri.pem" "https://127.0.0.1:${!port}/"
    else
        run env OPENSSL_CONF="$CONF" "$PY" "$CLIENT_PY" "https://127.0.0.1:${!port}/" "$WORK/ca.crt" \
            --cert "$WORK/cli-$k.crt" --key "$WORK/cli-$k.uri.pem" --tls "$v" --body
    fi
    [ "$STATUS" = 0 ] && pass || fail "$who with cli-$k over TLS $v to $server: exit $STATUS"
    if [ "$server" = nginx ]; then
        expect_out "client=CN=cli-$k verify=SUCCESS proto=TLSv$v"
    else
        expect_out "New, TLSv$v"
        sleep 0.1
        grep -q "depth=0 CN = cli-$k" "$WORK/s_server.out" && pass ||
            fail "s_server did not verify cli-$k"
        # forget it, so that the next check sees its own line
        : >"$WORK/s_server.out"
    fi
    d=$(( $(signs) - s0 ))
    [ "$d" = 1 ] && pass || fail "$who cli-$k TLS $v to $server: $d C_Sign calls, expected 1"
    echo "    $who, key cli-$k in the HSM, TLS $v, $server: accepted, 1 signature in the token"
}

for server in s_server nginx; do
    for k in ec rsa; do
        for v in 1.3 1.2; do
            client_ok curl "$server" "$k" "$v"
            client_ok python "$server" "$k" "$v"
        done
    done
done

say "without a client certificate both clients are rejected"
run env OPENSSL_CONF="$CONF" curl -sS --cacert "$WORK/ca.crt" "https://127.0.0.1:$SS_PORT/"
[ "$STATUS" != 0 ] && pass || fail "s_server accepted curl without a certificate"
expect_err "alert certificate required"
echo "    curl -> s_server: exit $STATUS, $(tail -1 <<<"$ERR" | cut -c1-110)"
run env OPENSSL_CONF="$CONF" "$PY" "$CLIENT_PY" "https://127.0.0.1:$SS_PORT/" "$WORK/ca.crt"
[ "$STATUS" = 1 ] && pass || fail "python without a certificate: exit $STATUS"
expect_out "refused"
expect_out "CERTIFICATE_REQUIRED"
echo "    python -> s_server: $OUT"
run env OPENSSL_CONF="$CONF" curl -sS --cacert "$WORK/ca.crt" -w '%{http_code}' "https://127.0.0.1:$NG_PORT/"
expect_out "No required SSL certificate was sent"
expect_out "400"
expect_no_out "client=CN"
echo "    curl -> nginx: HTTP 400 No required SSL certificate was sent"
run env OPENSSL_CONF="$CONF" "$PY" "$CLIENT_PY" "https://127.0.0.1:$NG_PORT/" "$WORK/ca.crt"
[ "$STATUS" = 1 ] && pass || fail "python without a certificate (nginx): exit $STATUS"
expect_out "HTTP 400"
echo "    python -> nginx: $(cut -c1-80 <<<"$OUT")"
# the wrong key for the certificate is refused by the client itself
run env OPENSSL_CONF="$CONF" curl -sS --cacert "$WORK/ca.crt" --cert "$WORK/cli-ec.crt" \
    --key "$WORK/cli-rsa.uri.pem" "https://127.0.0.1:$NG_PORT/"
[ "$STATUS" != 0 ] && pass || fail "curl accepted a certificate with another key"
expect_no_out "client=CN"

say "one curl process, 50 requests over new connections, with the EC client key"
s0=$(signs)
mkdir -p "$WORK/many"
run env OPENSSL_CONF="$CONF" curl -sS --http1.1 --no-sessionid -H 'Connection: close' \
    --cacert "$WORK/ca.crt" --cert "$WORK/cli-ec.crt" --key "$WORK/cli-ec.uri.pem" \
    -w '%{http_code} %{num_connects}\n' -o "$WORK/many/r#1" "https://127.0.0.1:$NG_PORT/?n=[1-50]"
expect_status 0
[ "$(grep -c '^200 1$' <<<"$OUT")" = 50 ] && pass || fail "not 50 answers over 50 new connections"
[ "$(cat "$WORK"/many/r* | grep -c 'client=CN=cli-ec verify=SUCCESS')" = 50 ] && pass ||
    fail "nginx did not verify the client certificate 50 times"
d=$(( $(signs) - s0 ))
echo "    50 requests, 50 handshakes, $d C_Sign calls in the token"
[ "$d" = 50 ] && pass || fail "$d C_Sign calls for 50 client handshakes"

say "Python's ssl as a server with its EC key in the HSM, 50 requests from curl"
tls_cert py-server "$EC_URI" server
PY_PORT=$(free_port)
start_server pyserver env OPENSSL_CONF="$CONF" "$PY" "$SERVER_PY" "$PY_PORT" "$WORK/py-server.crt" "$WORK/cli-ec.uri.pem"
PY_PID=$SERVER_PID
wait_port "$PY_PORT"
s0=$(signs)
HANDSHAKES=0
served_pubkey "$PY_PORT" "$WORK/ref/ec.pub.pem" -tls1_3
curl_load pyload "https://127.0.0.1:$PY_PORT/" 25 1 --tlsv1.3
curl_load_check pyload
curl_load pyload12 "https://127.0.0.1:$PY_PORT/" 25 1 --tlsv1.2 --tls-max 1.2
curl_load_check pyload12
[ "$(cat "$WORK"/pyload/r* "$WORK"/pyload12/r* | grep -c "hello from python pid $PY_PID over TLSv1")" = 50 ] &&
    pass || fail "python's answers"
d=$(( $(signs) - s0 ))
echo "    $HANDSHAKES handshakes (50 requests + 1 s_client), $d C_Sign calls in the token"
[ "$d" = "$HANDSHAKES" ] && pass || fail "$d C_Sign calls for $HANDSHAKES handshakes"

say "stop the servers"
for pid in "$PY_PID" "$SS_PID"; do
    stop_server "$pid"
done
run env OPENSSL_CONF=/dev/null nginx -p "$P" -c "$P/nginx.conf" -s quit
expect_status 0
wait "$NG_PID"
[ $? = 0 ] && pass || fail "nginx exit status"
PROBLEMS=$(log_problems "$P/error.log")
[ -z "$PROBLEMS" ] && pass || { OUT=$PROBLEMS; fail "nginx's error log has problems"; }
grep -q Traceback "$WORK/pyserver.out" && { OUT=$(cat "$WORK/pyserver.out"); fail "python server traceback"; }
pass
say "done in $((SECONDS - T0)) s"
finish
