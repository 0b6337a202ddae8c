#!/usr/bin/env bash
# nginx 1.22 serving HTTPS on 127.0.0.1 with an RSA and an EC key in the HSM.
#
#   bash examples/nginx/run.sh            (STAY=1 to try it by hand, KEEP=1 to keep files)
#
# Makes a throwaway SoftHSM2 token with both keys (or uses RSA_KEY_URI,
# EC_KEY_URI, PIN_FILE), certificates from a test CA, the URI PEM key files,
# starts nginx (master + 2 workers) from nginx.conf next to this script,
# fetches pages over TLS 1.2 and 1.3 with curl, reloads nginx
# (`nginx -s reload`) and fetches again, then stops it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx-light)"

ex_begin nginx
ex_keys
ex_worker_user
ex_openssl_conf
ex_ca
ex_cert rsa-server "$RSA_KEY_URI" server
ex_cert ec-server "$EC_KEY_URI" server

say "key files for nginx: PEM files that hold only the keys' pkcs11: URIs (no secret)"
ex_uri_pem "$RSA_KEY_URI" "$WORK/rsa-key.uri.pem"
ex_uri_pem "$EC_KEY_URI" "$WORK/ec-key.uri.pem"
sed 's/^/    /' "$WORK/rsa-key.uri.pem"

P=$WORK/nginx
mkdir -p "$P/tmp"
RSA_PORT=$(ex_free_port)
EC_PORT=$(ex_free_port)
sed -e "s|@PREFIX@|$P|g" -e "s|@USER@|$WORKER_USER|" -e "s|@GROUP@|$WORKER_GROUP|" \
    -e "s|@RSA_PORT@|$RSA_PORT|" -e "s|@EC_PORT@|$EC_PORT|" \
    -e "s|@RSA_CERT@|$WORK/rsa-server.crt|" -e "s|@RSA_KEY@|$WORK/rsa-key.uri.pem|" \
    -e "s|@EC_CERT@|$WORK/ec-server.crt|" -e "s|@EC_KEY@|$WORK/ec-key.uri.pem|" \
    "$EX_HOME/nginx/nginx.conf" >"$P/nginx.conf"
NGINX=(nginx -p "$P" -c "$P/nginx.conf")

say "check the configuration (loads the keys through the provider)"
show "${NGINX[@]}" -t

say "start nginx: RSA on 127.0.0.1:$RSA_PORT, EC on 127.0.0.1:$EC_PORT"
note "\$ OPENSSL_CONF=$OPENSSL_CONF ${NGINX[*]} -g 'daemon off;'"
ex_bg "$P/stdout.log" "${NGINX[@]}" -g 'daemon off;'
MASTER=$EX_PID
ex_wait_port "$RSA_PORT"
ex_wait_port "$EC_PORT"
note "master $MASTER, workers: $(ps -o pid= --ppid "$MASTER" | tr -d ' ' | tr '\n' ' ')"

FAILED=0
# fetch PORT VERSION: one request over a new connection, with a plain client
# (curl needs no provider to talk to a server whose key is in the HSM).
fetch() {
    local port=$1 v=$2 body
    if body=$(OPENSSL_CONF=/dev/null curl -sS --cacert "$WORK/ca.crt" "--tlsv$v" --tls-max "$v" \
            "https://127.0.0.1:$port/" 2>&1); then
        note "TLS $v to :$port -> $body"
    else
        note "TLS $v to :$port FAILED: $body"
        FAILED=$((FAILED + 1))
    fi
}
round() {
    local i
    for i in 1 2; do
        fetch "$RSA_PORT" 1.3
        fetch "$EC_PORT" 1.3
        fetch "$RSA_PORT" 1.2
        fetch "$EC_PORT" 1.2
    done
}

say "requests, each over a new connection (each handshake is signed in the HSM)"
note "\$ curl --cacert ca.crt --tlsv1.3 --tls-max 1.3 https://127.0.0.1:$EC_PORT/"
round

say "the served certificates carry the HSM keys' public keys"
for k in rsa ec; do
    port=RSA_PORT uri=RSA_KEY_URI
    [ "$k" = ec ] && port=EC_PORT uri=EC_KEY_URI
    OPENSSL_CONF=/dev/null openssl s_client -connect "127.0.0.1:${!port}" -CAfile "$WORK/ca.crt" \
        </dev/null 2>/dev/null | plain_openssl x509 -out "$WORK/served-$k.crt" 2>/dev/null || true
    if [ -s "$WORK/served-$k.crt" ] && ex_pubkey_matches "$WORK/served-$k.crt" "${!uri}"; then
        note "$k: served certificate's public key = public key of ${!uri}"
    else
        note "$k: served certificate does NOT match ${!uri}"
        FAILED=$((FAILED + 1))
    fi
done

say "reload: the master reads the configuration and the keys again, new workers take over"
old=$(ps -o pid= --ppid "$MASTER" | sort)
show "${NGINX[@]}" -s reload
for _ in $(seq 100); do
    now=$(ps -o pid= --ppid "$MASTER" | sort)
    [ -n "$now" ] && [ -z "$(comm -12 <(echo "$old") <(echo "$now"))" ] && break
    sleep 0.1
done
note "workers now: $(ps -o pid= --ppid "$MASTER" | tr -d ' ' | tr '\n' ' ')"
round

ex_stay "try: curl --cacert $WORK/ca.crt https://127.0.0.1:$EC_PORT/"

say "stop nginx"
show "${NGINX[@]}" -s quit
wait "$MASTER"
rc=$?
note "nginx master exited with status $rc"
[ "$rc" = 0 ] || FAILED=$((FAILED + 1))
# (failed handshakes are logged at [info]: show them too)
if grep -E '\[(error|crit|alert|emerg)\]|SSL_do_handshake\(\) failed' "$P/error.log" >"$WORK/errors"; then
    say "the error log has problems:"
    sed 's/^/    /' "$WORK/errors"
    FAILED=$((FAILED + 1))
fi
[ "$FAILED" = 0 ] || die "$FAILED check(s) failed"
say "nginx example: all requests served with the keys in the HSM"
