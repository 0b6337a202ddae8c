#!/usr/bin/env bash
# Failover through the provider, as applications see it: OpenSSL loads the
# provider from openssl.cnf with a topology of 3 real node processes; 2
# threads sign 20,000 times with EVP_DigestSign while node 2 is killed, node
# 3 is stopped and resumed, and node 2 is restarted.  No operation may fail
# and every signature verifies with the default provider.  Then a process
# that loaded its keys forks, and the child signs (RSA and EC), as nginx and
# Apache workers do.
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/cluster.sh"
source "$PRIMUS_SRC/tests/lib/openssl_conf.sh"

LOAD="$PRIMUS_BUILD/tests/provider_signload"
work=$(mktemp -d /tmp/primus-pfailover.XXXXXX)
trap 'cluster_teardown; rm -rf "$work"' EXIT
export CLUSTER_QUIET=1
cluster_setup "$work/c" 3 PART1 1234 || fail "cluster did not start"
cluster_topology "$work/topology.json" 1000
primus_openssl_conf "$work/openssl.cnf" "$PRIMUS_BUILD/provider/primus.so" \
    "primus-topology = $work/topology.json" "pkcs11-module-token-pin = file:$work/c/pin"
progress="$work/progress"
done_ops() { cat "$progress" 2>/dev/null || echo 0; }
wait_ops() {
    local deadline=$((SECONDS + 120))
    while [ "$(done_ops)" -lt "$1" ]; do
        kill -0 "$load" 2>/dev/null || { ERR=$(cat "$work"/load.err 2>/dev/null); fail "the load process ended early"; }
        [ $SECONDS -lt $deadline ] || fail "the load stalled below $1 operations"
        sleep 0.05
    done
}

"$LOAD" --conf "$work/openssl.cnf" --uri "pkcs11:token=PART1;object=ec-key;type=private" \
    --pub "$work/c/ref/ec.pub.pem" --threads 2 --count 20000 --progress "$progress" \
    >"$work/load.out" 2>"$work/load.err" &
load=$!
wait_ops 2000
cluster_kill 2
wait_ops 5000
cluster_stop 3
sleep 1.5
cluster_cont 3
cluster_restart 2
wait "$load"
STATUS=$? OUT=$(cat "$work/load.out") ERR=$(cat "$work/load.err") LAST_CMD="provider_signload"
expect_status 0
expect_out "operations 20000 failed 0 bad-signatures 0"
worst=$(sed -n 's/.*worst-ms \([0-9.]*\).*/\1/p' <<<"$OUT")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1500 else 1)" "$worst" && pass ||
    fail "an operation took ${worst} ms; a hung member may cost at most its 1000 ms deadline"

# keys loaded before fork() work in the child, for RSA and EC
for k in rsa ec; do
    run "$LOAD" --conf "$work/openssl.cnf" --uri "pkcs11:token=PART1;object=$k-key;type=private" \
        --pub "$work/c/ref/$k.pub.pem" --threads 2 --count 400 --fork
    expect_status 0
    expect_out "operations 400 failed 0 bad-signatures 0"
done
finish
