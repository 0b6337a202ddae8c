#!/usr/bin/env bash
# Apache httpd 2.4 + mod_ssl serving HTTPS with RSA and EC keys in the HSM, for real,
# with the MPM in $APACHE_MPM (prefork or event; tls.cmake runs both):
#   - a private ServerRoot and configuration in a temporary directory (modules from
#     /usr/lib/apache2/modules), run as `setsid apache2 -DFOREGROUND`; the parent
#     loads the keys through the provider (SSLCertificateKeyFile = URI PEM file),
#     the children (as www-data when run as root) sign with them;
#   - the certificates served carry the HSM keys' public keys;
#   - at least 2,000 requests, each over a NEW TLS connection (no keep-alive, no
#     session cache, no tickets), RSA and EC, TLS 1.2 and 1.3, spread over the
#     children (the access log records the serving PID with %P), every body right;
#   - a graceful restart (`apache2 -k graceful`) while requests run: none fails;
#   - event MPM: children are also replaced every $TLS_APACHE_RECYCLE connections
#     (MaxConnectionsPerChild), so that many children start cold under load, each
#     with 8 threads signing at once with keys it has not used yet -- where a race
#     in the first use of a key made a few handshakes fail (issue "Real TLS servers");
#   - no failed key operation: the provider's reasons (mod_ssl logs them at info
#     level, "SSL Library Error: ... primus::...") are not in the error log;
#   - C_Sign calls logged by the shim module == handshakes;
#   - no [error]/[crit]/[alert]/[emerg] in the error log; `apache2 -k stop` ends it
#     with exit status 0 and no process left.
source "$(dirname "${BASH_SOURCE[0]}")/tls_lib.sh"
command -v apache2 >/dev/null || { echo "apache2 not installed" >&2; exit 1; }
MPM=${APACHE_MPM:-prefork}
N_PHASE1=${TLS_APACHE_N1:-300}  # per (key, version): 1200
N_GRACE=${TLS_APACHE_NR:-400}   # per key during the graceful restart: 800
N_PHASE3=${TLS_APACHE_N3:-50}   # per (key, version) after it: 200
PAR=${TLS_PAR:-6}
RECYCLE=${TLS_APACHE_RECYCLE:-100} # event MPM: connections per child (0: never replaced)
MODS=/usr/lib/apache2/modules

say "Apache with the $MPM MPM: token, keys, certificates"
tls_token WEB 13572468
tls_shim_conf
tls_ca
tls_cert rsa-server "$RSA_URI" server
tls_cert ec-server "$EC_URI" server
tls_uri_pem "$RSA_URI" "$WORK/rsa.uri.pem"
tls_uri_pem "$EC_URI" "$WORK/ec.uri.pem"
tls_worker_user

R=$WORK/apache
SERVER_LOG=$R/error.log # shown when a load fails
mkdir -p "$R/htdocs"
BODY="served by Apache ($MPM) with a key in the HSM"
echo "$BODY" >"$R/htdocs/index.html"
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
cat >"$R/httpd.conf" <<EOF
ServerRoot $R
ServerName localhost
DefaultRuntimeDir $R
PidFile $R/httpd.pid
Mutex file:$R default
ErrorLog $R/error.log
LogLevel info ssl:info
LoadModule mpm_${MPM}_module $MODS/mod_mpm_${MPM}.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule mime_module $MODS/mod_mime.so
LoadModule dir_module $MODS/mod_dir.so
LoadModule ssl_module $MODS/mod_ssl.so
<IfModule mpm_prefork_module>
    StartServers 4
    MinSpareServers 4
    MaxSpareServers 8
    MaxRequestWorkers 12
</IfModule>
<IfModule mpm_event_module>
    StartServers 2
    # room beyond MaxRequestWorkers / ThreadsPerChild (4) for children that
    # finish their connections after MaxConnectionsPerChild or the graceful
    # restart (else "AH03490: scoreboard is full")
    ServerLimit 16
    ThreadsPerChild 8
    MinSpareThreads 8
    MaxSpareThreads 32
    MaxRequestWorkers 32
    MaxConnectionsPerChild $RECYCLE
</IfModule>
User $WORKER_USER
Group $WORKER_GROUP
KeepAlive Off
TypesConfig /etc/mime.types
DocumentRoot $R/htdocs
<Directory $R/htdocs>
    AllowOverride None
    Require all granted
</Directory>
LogFormat "%P %{SSL_PROTOCOL}x %{SSL_SESSION_RESUMED}x %k %>s %b" tls
CustomLog $R/access.log tls
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLSessionCache none
SSLSessionTickets off
Listen 127.0.0.1:$RSA_PORT
<VirtualHost 127.0.0.1:$RSA_PORT>
    SSLEngine on
    SSLCertificateFile $WORK/rsa-server.crt
    SSLCertificateKeyFile $WORK/rsa.uri.pem
</VirtualHost>
Listen 127.0.0.1:$EC_PORT
<VirtualHost 127.0.0.1:$EC_PORT>
    SSLEngine on
    SSLCertificateFile $WORK/ec-server.crt
    SSLCertificateKeyFile $WORK/ec.uri.pem
</VirtualHost>
EOF
APACHE=(apache2 -d "$R" -f "$R/httpd.conf")
export OPENSSL_CONF=$CONF

run "${APACHE[@]}" -t
expect_status 0
expect_err "Syntax OK"

say "start apache2 -DFOREGROUND under setsid"
start_server apache "${APACHE[@]}" -DFOREGROUND
PARENT=$SERVER_PID
wait_port "$RSA_PORT"
wait_port "$EC_PORT"
children() { ps -o pid= --ppid "$PARENT" | tr -d ' ' | sort -n; }
for _ in $(seq 100); do [ -s "$R/httpd.pid" ] && break; sleep 0.05; done
[ "$(cat "$R/httpd.pid")" = "$PARENT" ] && pass || fail "httpd.pid is not the parent we started"
C1=$(children)
echo "    parent $PARENT, children $(echo $C1)"
only_loopback "$PARENT" $C1
SIGNS0=$(signs)

say "served certificates (TLS 1.3 and 1.2) hold the HSM keys' public keys"
for v in -tls1_3 -tls1_2; do
    served_pubkey "$RSA_PORT" "$WORK/ref/rsa.pub.pem" "$v"
    served_pubkey "$EC_PORT" "$WORK/ref/ec.pub.pem" "$v"
done
S_CLIENTS=4

# curl_load_check NAME, showing first the provider's reasons (from the error
# log, where mod_ssl writes them at info level) when requests failed
load_check() {
    if [ "$LOAD_OK" -lt "$LOAD_N" ]; then
        sleep 0.5 # (the child logs after it has sent the alert)
        grep -F 'primus::' "$R/error.log" | sed 's/.*primus::/primus::/' | cut -c1-240 |
            sort | uniq -c | sed 's/^/    error log: /' | head -5
    fi
    curl_load_check "$@"
}

# every response body is the page
bodies_ok() {
    local name=$1 bad
    bad=$(find "$WORK/$name" -type f -exec cat {} + | grep -cvxF "$BODY")
    [ "$bad" = 0 ] && pass || fail "$name: $bad response bodies are not the page"
}

say "phase 1: 4 x $N_PHASE1 requests over new connections (RSA/EC x TLS 1.3/1.2)"
t=$SECONDS
for k in rsa ec; do
    port=RSA_PORT
    [ $k = ec ] && port=EC_PORT
    for v in 1.3 1.2; do
        curl_load "p1-$k-$v" "https://127.0.0.1:${!port}/" "$N_PHASE1" "$PAR" --tlsv$v --tls-max $v
        load_check "p1-$k-$v"
        bodies_ok "p1-$k-$v"
    done
done
echo "    $((4 * N_PHASE1)) requests in $((SECONDS - t)) s"
P1_LINES=$(wc -l <"$R/access.log")

say "phase 2: apache2 -k graceful while 2 x $N_GRACE requests run"
curl_load p2-ec "https://127.0.0.1:$EC_PORT/" "$N_GRACE" $((PAR / 2)) --tlsv1.3 &
L1=$!
CLIENT_PIDS+=("$L1")
curl_load p2-rsa "https://127.0.0.1:$RSA_PORT/" "$N_GRACE" $((PAR / 2)) --tlsv1.2 --tls-max 1.2 &
L2=$!
CLIENT_PIDS+=("$L2")
for _ in $(seq 600); do
    [ "$(find "$WORK/p2-ec" "$WORK/p2-rsa" -type f 2>/dev/null | wc -l)" -ge $((N_GRACE / 3)) ] && break
    sleep 0.05
done
STARTS=$(grep -c 'resuming normal operations' "$R/error.log")
run "${APACHE[@]}" -k graceful
expect_status 0
for _ in $(seq 300); do
    [ "$(grep -c 'resuming normal operations' "$R/error.log")" -gt "$STARTS" ] && break
    sleep 0.05
done
[ "$(grep -c 'resuming normal operations' "$R/error.log")" -gt "$STARTS" ] && pass ||
    fail "no restart after apache2 -k graceful"
# AH00171 (prefork) / AH00493 (event): graceful restart
grep -qE 'AH00171|AH00493' "$R/error.log" && pass || fail "the restart was not graceful"
wait "$L1"
wait "$L2"
for name in p2-ec p2-rsa; do
    LOAD_OK=$(grep -c '^200 1 0 *$' "$WORK/$name.res") LOAD_N=$N_GRACE
    load_check "$name"
    bodies_ok "$name"
done
C2=$(children)
echo "    children after the graceful restart: $(echo $C2)"

say "phase 3: 4 x $N_PHASE3 requests after the restart"
for k in rsa ec; do
    port=RSA_PORT
    [ $k = ec ] && port=EC_PORT
    for v in 1.3 1.2; do
        curl_load "p3-$k-$v" "https://127.0.0.1:${!port}/" "$N_PHASE3" "$PAR" --tlsv$v --tls-max $v
        load_check "p3-$k-$v"
        bodies_ok "p3-$k-$v"
    done
done
served_pubkey "$RSA_PORT" "$WORK/ref/rsa.pub.pem" -tls1_3
S_CLIENTS=$((S_CLIENTS + 1))

say "stop: apache2 -k stop"
ALL_CHILDREN=$(awk '{print $1}' "$R/access.log" | sort -u)
run "${APACHE[@]}" -k stop
expect_status 0
wait "$PARENT"
PSTATUS=$?
[ "$PSTATUS" = 0 ] && pass || { OUT=$(cat "$WORK/apache.out"); fail "apache2 exited with $PSTATUS"; }
sleep 0.2
LEFT=$(for c in $C1 $C2 $ALL_CHILDREN; do kill -0 "$c" 2>/dev/null && echo "$c"; done)
[ -z "$LEFT" ] && pass || fail "children outlived the parent: $LEFT"

say "the server's own records"
ANSWERED=$((HANDSHAKES - S_CLIENTS))
AL=$(awk '$5 == 200' "$R/access.log" | wc -l)
[ "$AL" -eq "$ANSWERED" ] && pass || fail "access log has $AL answered requests, expected $ANSWERED"
BAD=$(awk '$3 != "Initial" || $4 != 0 || $5 != 200' "$R/access.log" | head -3)
[ -z "$BAD" ] && pass || { OUT=$BAD; fail "resumed sessions or reused connections in the access log"; }
grep -q ' TLSv1.2 ' "$R/access.log" && grep -q ' TLSv1.3 ' "$R/access.log" && pass ||
    fail "the access log does not show both TLS 1.2 and 1.3"
# spread: every child that served took part, several children served each phase
for range in "1,$P1_LINES" "$((P1_LINES + 1)),\$"; do
    PIDS=$(sed -n "${range}p" "$R/access.log" | awk '{print $1}' | sort | uniq -c | sort -rn)
    echo "    requests per child (lines $range of the access log):" $(awk '{print $2 ":" $1}' <<<"$PIDS")
    [ "$(wc -l <<<"$PIDS")" -ge 2 ] && pass || fail "only one child served: $PIDS"
done
NCHILD=$(wc -l <<<"$ALL_CHILDREN")
PROBLEMS=$(log_problems "$R/error.log")
[ -z "$PROBLEMS" ] && pass || { OUT=$PROBLEMS; fail "Apache's error log has problems"; }
grep -q 'AH01876' "$R/error.log" && pass || fail "mod_ssl did not start"
# a failed key operation in a child: the provider's reason, which mod_ssl logs at info
REASONS=$(grep -F 'primus::' "$R/error.log" | sed 's/.*primus::/primus::/' | cut -c1-240 | sort | uniq -c)
[ -z "$REASONS" ] && pass || { OUT=$REASONS; fail "the provider reported failed key operations in the children"; }
SIGNS=$(( $(signs) - SIGNS0 ))
echo "    requests answered: $ANSWERED; handshakes: $HANDSHAKES; C_Sign calls in the token: $SIGNS;" \
    "children that served: $NCHILD"
[ "$SIGNS" -eq "$HANDSHAKES" ] && pass || fail "C_Sign calls ($SIGNS) differ from handshakes ($HANDSHAKES)"
[ "$ANSWERED" -ge 2000 ] && pass || fail "fewer than 2000 requests answered"
say "done in $((SECONDS - T0)) s"
finish
