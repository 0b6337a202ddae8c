#!/usr/bin/env bash
# nginx 1.22 serving HTTPS with RSA and EC keys in the HSM, for real:
#   - master + 2 workers (`worker_processes 2`): the master loads the keys through
#     the provider (URI PEM key files, as nginx 1.22 only takes key files), the
#     forked workers sign with them;
#   - the certificates served carry the HSM keys' public keys (read from the token
#     with pkcs11-tool);
#   - at least 2,000 requests, each over a NEW TLS connection (curl, no keep-alive,
#     no session reuse; nginx with session cache and tickets off), RSA and EC,
#     TLS 1.2 and 1.3, spread over both workers (each response body is the
#     worker's $pid), all answered 200;
#   - `nginx -s reload` while requests are running: none fails, new workers take
#     over and keep serving;
#   - every handshake was signed in the token: the C_Sign calls logged by the
#     shim module (in master and workers) equal the number of handshakes, and
#     so do the "sign" records of the audit log, which master, workers and the
#     nginx -t/-s processes all append to; `primusctl audit verify` finds
#     every process's chain intact and closed;
#   - nginx's error log has no [error]/[crit]/[alert]/[emerg] line; nginx stops
#     cleanly (exit status 0) and leaves no process behind.
source "$(dirname "${BASH_SOURCE[0]}")/tls_lib.sh"
command -v nginx >/dev/null || { echo "nginx not installed" >&2; exit 1; }
N_PHASE1=${TLS_NGINX_N1:-300}   # per (key, version): 4 x 300 = 1200
N_RELOAD=${TLS_NGINX_NR:-500}   # per key during the reload: 2 x 500 = 1000
N_PHASE3=${TLS_NGINX_N3:-100}   # per (key, version) after the reload: 400
PAR=${TLS_PAR:-6}

say "token, keys, certificates"
tls_token WEB pin-Web-2468
tls_shim_conf
# the audit log, opened by the master (root) and inherited by the workers
AUDIT_LOG=$WORK/audit.jsonl
AUDIT_KEY=$WORK/audit.key
head -c 32 /dev/urandom >"$AUDIT_KEY"
chmod 600 "$AUDIT_KEY"
printf 'primus-audit-log = %s\nprimus-audit-key = %s\n' "$AUDIT_LOG" "$AUDIT_KEY" >>"$CONF"
tls_ca
tls_cert rsa-server "$RSA_URI" server
tls_cert ec-server "$EC_URI" server
tls_uri_pem "$RSA_URI" "$WORK/rsa.uri.pem"
tls_uri_pem "$EC_URI" "$WORK/ec.uri.pem"
tls_worker_user

P=$WORK/nginx
SERVER_LOG=$P/error.log # shown when a load fails
mkdir -p "$P/tmp" "$P/cores"
chmod 777 "$P/cores"
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
cat >"$P/nginx.conf" <<EOF
user $WORKER_USER $WORKER_GROUP;
worker_processes 2;
pid $P/nginx.pid;
error_log $P/error.log info;
# a crashing worker leaves a core here (reported with a backtrace)
worker_rlimit_core 2g;
working_directory $P/cores;
# the module's environment in the workers (nginx clears it otherwise)
env SOFTHSM2_CONF;
env P11SHIM_TARGET;
env P11SHIM_LOG;
events { worker_connections 512; }
http {
    log_format tls '\$pid \$ssl_protocol \$ssl_cipher \$ssl_session_reused \$connection_requests \$status';
    access_log $P/access.log tls;
    client_body_temp_path $P/tmp/body;
    proxy_temp_path $P/tmp/proxy;
    fastcgi_temp_path $P/tmp/fastcgi;
    uwsgi_temp_path $P/tmp/uwsgi;
    scgi_temp_path $P/tmp/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:$RSA_PORT ssl;
        ssl_certificate $WORK/rsa-server.crt;
        ssl_certificate_key $WORK/rsa.uri.pem;
        location / { return 200 "\$pid\n"; }
    }
    server {
        listen 127.0.0.1:$EC_PORT ssl;
        ssl_certificate $WORK/ec-server.crt;
        ssl_certificate_key $WORK/ec.uri.pem;
        location / { return 200 "\$pid\n"; }
    }
}
EOF
NGINX=(nginx -p "$P" -c "$P/nginx.conf")
# OPENSSL_CONF in the environment of every nginx invocation (master, -t, -s).
export OPENSSL_CONF=$CONF

run "${NGINX[@]}" -t
expect_status 0
expect_err "test is successful"

say "start nginx (master + 2 workers as $WORKER_USER)"
start_server nginx "${NGINX[@]}" -g 'daemon off;'
MASTER=$SERVER_PID
wait_port "$RSA_PORT"
wait_port "$EC_PORT"
workers() { ps -o pid= --ppid "$MASTER" | tr -d ' ' | sort -n; }
for _ in $(seq 100); do [ "$(workers | wc -l)" = 2 ] && break; sleep 0.05; done
W1=$(workers)
[ "$(wc -l <<<"$W1")" = 2 ] && pass || fail "expected 2 workers, found: $W1"
[ "$(cat "$P/nginx.pid")" = "$MASTER" ] && pass || fail "nginx.pid is not the master we started"
only_loopback "$MASTER" $W1
SIGNS0=$(signs)
KB_RETRY=1

say "served certificates (TLS 1.3 and 1.2) hold the HSM keys' public keys"
for v in -tls1_3 -tls1_2; do
    served_pubkey "$RSA_PORT" "$WORK/ref/rsa.pub.pem" "$v"
    served_pubkey "$EC_PORT" "$WORK/ref/ec.pub.pem" "$v"
done

# bodies NAME: the worker PIDs that answered (one body per request)
bodies() { cat "$WORK/$1"/r* 2>/dev/null; }
# spread NAME WORKERS: every worker answered a fair share (>= 10 %)
spread() {
    local name=$1 w n total
    total=$(bodies "$name" | wc -l)
    for w in $2; do
        n=$(bodies "$name" | grep -cx "$w")
        echo "    $name: worker $w answered $n of $total"
        [ "$n" -ge $((total / 10)) ] && pass || fail "$name: worker $w answered only $n of $total"
    done
    # and nobody else did
    [ -z "$(bodies "$name" | grep -vxF -f <(tr ' ' '\n' <<<"$2"))" ] && pass ||
        fail "$name: answers from processes other than the workers $2"
}

say "phase 1: 4 x $N_PHASE1 requests over new connections (RSA/EC x TLS 1.3/1.2)"
t=$SECONDS
for k in rsa ec; do
    port=RSA_PORT
    [ $k = ec ] && port=EC_PORT
    for v in 1.3 1.2; do
        curl_load "p1-$k-$v" "https://127.0.0.1:${!port}/" "$N_PHASE1" "$PAR" --tlsv$v --tls-max $v
        curl_load_check "p1-$k-$v" 2
    done
done
mkdir -p "$WORK/p1" && cat "$WORK"/p1-*/r* >"$WORK/p1/rall"
echo "    $((4 * N_PHASE1)) requests in $((SECONDS - t)) s"
spread p1 "$W1"

say "phase 2: nginx -s reload while 2 x $N_RELOAD requests run"
curl_load p2-ec "https://127.0.0.1:$EC_PORT/" "$N_RELOAD" $((PAR / 2)) --tlsv1.3 &
L1=$!
CLIENT_PIDS+=("$L1")
curl_load p2-rsa "https://127.0.0.1:$RSA_PORT/" "$N_RELOAD" $((PAR / 2)) --tlsv1.2 --tls-max 1.2 &
L2=$!
CLIENT_PIDS+=("$L2")
for _ in $(seq 600); do
    [ "$(find "$WORK/p2-ec" "$WORK/p2-rsa" -type f 2>/dev/null | wc -l)" -ge $((N_RELOAD / 3)) ] && break
    sleep 0.05
done
run "${NGINX[@]}" -s reload
expect_status 0
for _ in $(seq 200); do
    W2=$(workers)
    [ "$(wc -l <<<"$W2")" = 2 ] && [ -z "$(comm -12 <(echo "$W1") <(echo "$W2"))" ] && break
    sleep 0.05
done
[ -z "$(comm -12 <(echo "$W1") <(echo "$W2"))" ] && [ "$(wc -l <<<"$W2")" = 2 ] && pass ||
    fail "after the reload the workers are: $W2 (before: $W1)"
echo "    workers before the reload: $(echo $W1), after: $(echo $W2)"
wait "$L1"
wait "$L2"
for name in p2-ec p2-rsa; do
    LOAD_OK=$(grep -c '^200 1 0 *$' "$WORK/$name.res") LOAD_N=$N_RELOAD
    curl_load_check "$name" 2
done
# the load spanned the reload: both generations of workers answered it
OLD=$(cat "$WORK"/p2-*/r* | grep -cxF -f <(echo "$W1"))
NEW=$(cat "$WORK"/p2-*/r* | grep -cxF -f <(echo "$W2"))
echo "    during the reload: $OLD answers from the old workers, $NEW from the new ones"
[ "$OLD" -gt 0 ] && [ "$NEW" -gt 0 ] && pass || fail "the load did not span the reload (old $OLD, new $NEW)"

say "phase 3: 4 x $N_PHASE3 requests to the new workers"
for k in rsa ec; do
    port=RSA_PORT
    [ $k = ec ] && port=EC_PORT
    for v in 1.3 1.2; do
        curl_load "p3-$k-$v" "https://127.0.0.1:${!port}/" "$N_PHASE3" "$PAR" --tlsv$v --tls-max $v
        curl_load_check "p3-$k-$v" 2
    done
done
mkdir -p "$WORK/p3" && cat "$WORK"/p3-*/r* >"$WORK/p3/rall"
spread p3 "$W2"
served_pubkey "$EC_PORT" "$WORK/ref/ec.pub.pem" -tls1_3

say "stop nginx"
# nginx -s loads the configuration, keys included, as a server does: it must
# exit too (its stacks are shown if it does not)
"${NGINX[@]}" -s quit >"$WORK/quit.out" 2>&1 &
wait_or_dump $! 60
STATUS=$? LAST_CMD="nginx -s quit" OUT=$(cat "$WORK/quit.out")
expect_status 0
wait_or_dump "$MASTER" 60
MSTATUS=$?
[ "$MSTATUS" = 0 ] && pass || { OUT=$(cat "$WORK/nginx.out"); fail "nginx master exited with $MSTATUS"; }
for w in $W1 $W2; do
    kill -0 "$w" 2>/dev/null && fail "worker $w outlived the master"
done
pass

say "the server's own records"
REQUESTS=$((4 * N_PHASE1 + 2 * N_RELOAD + 4 * N_PHASE3))
# access log: one line per request, each on a fresh, non-resumed connection
AL=$(awk '$6 == 200' "$P/access.log" | wc -l)
ANSWERED=$((HANDSHAKES - 5)) # the s_client handshakes send no request
[ "$AL" -eq "$ANSWERED" ] && pass || fail "access log has $AL answered requests, expected $ANSWERED"
BAD=$(awk '$4 != "." || $5 != 1 || $6 != 200' "$P/access.log" | head -3)
[ -z "$BAD" ] && pass || { OUT=$BAD; fail "resumed sessions or reused connections in the access log"; }
grep -q ' TLSv1.2 ' "$P/access.log" && grep -q ' TLSv1.3 ' "$P/access.log" && pass ||
    fail "the access log does not show both TLS 1.2 and 1.3"

known_bug_count "$P/error.log"
PROBLEMS=$(known_bug_filter "$P/error.log")
[ -z "$PROBLEMS" ] && pass || { OUT=$PROBLEMS; core_report "$P/cores" "$(command -v nginx)"; fail "nginx's error log has problems"; }
# every failure a client saw is one the log attributes to the known bug (a client may
# also not notice one: s_client has the certificate before nginx gives up), and the
# bug hit each worker (2 before and 2 after the reload) at most once
[ "$KB_SEEN" -le "$KB_FAILED" ] && pass ||
    fail "$KB_SEEN failed handshakes seen by clients, only $KB_FAILED attributed to the known bug"
KB_PIDS=$(grep -F "$KNOWN_BUG_SIG" "$P/error.log" | sed -n 's/.*\] \([0-9]*\)#.*/\1/p' | sort)
[ -z "$(uniq -d <<<"$KB_PIDS")" ] && [ -z "$(grep -vxF -f <(echo "$W1"; echo "$W2") <<<"$KB_PIDS" | grep .)" ] &&
    pass || fail "the known bug hit a worker more than once or outside the workers: $KB_PIDS"
known_bug_report

SIGNS=$(( $(signs) - SIGNS0 ))
echo "    requests answered: $ANSWERED of $REQUESTS; handshakes: $HANDSHAKES (+ $KB_SEEN failed by the known bug);" \
    "C_Sign calls in the token: $SIGNS; workers: $(echo $W1 $W2)"
[ "$SIGNS" -eq $((HANDSHAKES + KB_SEEN)) ] && pass ||
    fail "C_Sign calls ($SIGNS) differ from handshakes ($HANDSHAKES + $KB_SEEN)"
[ "$ANSWERED" -ge 2000 ] && pass || fail "fewer than 2000 requests answered"

say "the audit log"
run "$PRIMUS_BUILD/tools/primusctl" audit verify "$AUDIT_LOG" --key "$AUDIT_KEY" --json
expect_status 0
# (the CSRs made with openssl req before nginx started are audited too: count nginx's)
AUDIT_SIGNS=$(grep '"process":"nginx"' "$AUDIT_LOG" | grep -c '"event":"sign",.*"result":"CKR_OK"')
AUDIT_PIDS=$(grep -o '"pid":[0-9]*' "$AUDIT_LOG" | sort -u | wc -l)
echo "    audit: $(wc -l <"$AUDIT_LOG") records from $AUDIT_PIDS processes; sign records: $AUDIT_SIGNS"
[ "$AUDIT_SIGNS" -eq "$SIGNS" ] && pass ||
    fail "the audit log has $AUDIT_SIGNS successful sign records, the token saw $SIGNS C_Sign calls"
for w in $W1 $W2; do
    grep -q "\"pid\":$w," "$AUDIT_LOG" && pass || fail "worker $w left no audit record"
done
# (hashes and MACs are hex: leave them out, an 8-digit PIN could occur in them by chance)
sed -E 's/"(stream|prev|mac)":"[0-9a-f]*"//g' "$AUDIT_LOG" | grep -qF "$(cat "$PIN_FILE")" &&
    fail "the PIN is in the audit log" || pass
say "done in $((SECONDS - T0)) s"
finish
