#!/usr/bin/env bash
# Apache httpd 2.4 + mod_ssl serving HTTPS on 127.0.0.1 with an RSA and an EC
# key in the HSM.
#
#   bash examples/apache/run.sh           (MPM=prefork or MPM=event, default event;
#                                          STAY=1 to try it by hand, KEEP=1 to keep files)
#
# Makes a throwaway SoftHSM2 token with both keys (or uses RSA_KEY_URI,
# EC_KEY_URI, PIN_FILE), certificates from a test CA, the URI PEM key files,
# starts apache2 from httpd.conf next to this script (its own ServerRoot in a
# temporary directory; the system's Apache is not touched), fetches pages
# over TLS 1.2 and 1.3, makes a graceful restart and fetches again, then
# stops it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
command -v apache2 >/dev/null || die "apache2 is not installed (apt-get install apache2)"
: "${MPM:=event}"
case "$MPM" in prefork | event) ;; *) die "MPM must be prefork or event" ;; esac

ex_begin apache
ex_keys
ex_worker_user
ex_openssl_conf
ex_ca
ex_cert rsa-server "$RSA_KEY_URI" server
ex_cert ec-server "$EC_KEY_URI" server

say "key files for Apache: PEM files that hold only the keys' pkcs11: URIs (no secret)"
ex_uri_pem "$RSA_KEY_URI" "$WORK/rsa-key.uri.pem"
ex_uri_pem "$EC_KEY_URI" "$WORK/ec-key.uri.pem"

R=$WORK/apache
mkdir -p "$R/htdocs"
echo "hello from Apache ($MPM MPM), key in the HSM" >"$R/htdocs/index.html"
RSA_PORT=$(ex_free_port)
EC_PORT=$(ex_free_port)
sed -e "s|@ROOT@|$R|g" -e "s|@MPM@|$MPM|g" -e "s|@USER@|$WORKER_USER|" \
    -e "s|@GROUP@|$WORKER_GROUP|" -e "s|@RSA_PORT@|$RSA_PORT|g" -e "s|@EC_PORT@|$EC_PORT|g" \
    -e "s|@RSA_CERT@|$WORK/rsa-server.crt|" -e "s|@RSA_KEY@|$WORK/rsa-key.uri.pem|" \
    -e "s|@EC_CERT@|$WORK/ec-server.crt|" -e "s|@EC_KEY@|$WORK/ec-key.uri.pem|" \
    "$EX_HOME/apache/httpd.conf" >"$R/httpd.conf"
APACHE=(apache2 -d "$R" -f "$R/httpd.conf")

say "check the configuration"
show "${APACHE[@]}" -t

say "start Apache ($MPM MPM): RSA on 127.0.0.1:$RSA_PORT, EC on 127.0.0.1:$EC_PORT"
note "\$ OPENSSL_CONF=$OPENSSL_CONF setsid ${APACHE[*]} -DFOREGROUND"
ex_bg "$R/stdout.log" "${APACHE[@]}" -DFOREGROUND
PARENT=$EX_PID
ex_wait_port "$RSA_PORT"
ex_wait_port "$EC_PORT"
note "parent $PARENT, children: $(ps -o pid= --ppid "$PARENT" | tr -d ' ' | tr '\n' ' ')"

FAILED=0
# fetch PORT VERSION: one request over a new connection, with a plain client.
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
note "access log (child PID, protocol, cipher, handshake):"
sed 's/^/      /' "$R/access.log"

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

say "graceful restart: the parent reads the configuration and the keys again"
starts=$(grep -c 'resuming normal operations' "$R/error.log")
show "${APACHE[@]}" -k graceful
for _ in $(seq 100); do
    [ "$(grep -c 'resuming normal operations' "$R/error.log")" -gt "$starts" ] && break
    sleep 0.1
done
note "children now: $(ps -o pid= --ppid "$PARENT" | tr -d ' ' | tr '\n' ' ')"
round

ex_stay "try: curl --cacert $WORK/ca.crt https://127.0.0.1:$EC_PORT/"

say "stop Apache"
show "${APACHE[@]}" -k stop
wait "$PARENT"
rc=$?
note "apache2 exited with status $rc"
[ "$rc" = 0 ] || FAILED=$((FAILED + 1))
if grep -E '\[([a-z_0-9]+:)?(error|crit|alert|emerg)\]' "$R/error.log" >"$WORK/errors"; then
    say "the error log has problems:"
    sed 's/^/    /' "$WORK/errors"
    FAILED=$((FAILED + 1))
fi
[ "$FAILED" = 0 ] || die "$FAILED check(s) failed"
say "Apache example: all requests served with the keys in the HSM"
