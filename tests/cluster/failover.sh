#!/usr/bin/env bash
# Failover under load, against real node processes (tests/lib/cluster.sh):
#  1. 30,000 signatures, 2 threads, 3 nodes: node 2 is killed, node 3 is
#     stopped and resumed, node 2 is restarted.  Zero operations may fail,
#     every signature verifies, a hung member costs at most its deadline,
#     and the restarted node serves again.
#  2. Every node down: operations fail fast with the clear error, and the
#     same process signs again once one node is back.
#  3. `primusctl cluster status --json` reports the states the test caused.
#  4. A rolling restart faster than the prober: the last live node goes away
#     right after a long-down node came back, before the prober (back-off up
#     to 2 s) has seen it.  Zero operations may fail: the operation that
#     finds no live member asks the down ones itself.
#  5. A probe hung in one member's C_Initialize (a node that accepts
#     connections and never answers) keeps no other member from coming
#     back, and the process ends while that probe still hangs.
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/cluster.sh"

LOAD="$PRIMUS_BUILD/tests/signload"
CTL="$PRIMUS_BUILD/tools/primusctl"
work=$(mktemp -d /tmp/primus-failover.XXXXXX)
silent=
trap 'cluster_teardown; [ -z "$silent" ] || kill "$silent" 2>/dev/null; rm -rf "$work"' EXIT
export CLUSTER_QUIET=1
cluster_setup "$work/c" 3 PART1 1234 || fail "cluster did not start"
cluster_topology "$work/topology.json" 1000
progress="$work/progress.json"

# done count and one member's operations from the live status
done_ops() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["done"])' "$progress" 2>/dev/null || echo 0; }
member_ops() {
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print([m for m in d["partitions"][0]["members"] if m["name"] == sys.argv[2]][0]["operations"])' "$progress" "$1"
}
wait_ops() {
    local deadline=$((SECONDS + 120))
    while [ "$(done_ops)" -lt "$1" ]; do
        kill -0 "$load" 2>/dev/null || { ERR=$(cat "$work"/load.err 2>/dev/null); fail "the load process ended early"; }
        [ $SECONDS -lt $deadline ] || fail "the load stalled below $1 operations"
        sleep 0.05
    done
}

# ---- 1: faults under load ----
"$LOAD" --topology "$work/topology.json" --pin-source "file:$work/c/pin" \
    --uri "pkcs11:token=PART1;object=ec-key" --pub "$work/c/ref/ec.pub.pem" \
    --threads 2 --count 30000 --progress "$progress" --status-out "$work/final.json" \
    >"$work/load.out" 2>"$work/load.err" &
load=$!
wait_ops 2000
cluster_kill 2
wait_ops 4000
cluster_stop 3
sleep 1.5
cluster_cont 3
cluster_restart 2
node2_at_restart=$(member_ops node2)
# the restarted node must serve again while the load still runs
deadline=$((SECONDS + 10))
while [ "$(member_ops node2)" -le $((node2_at_restart + 100)) ]; do
    kill -0 "$load" 2>/dev/null || fail "the load ended before node2 served again"
    [ $SECONDS -lt $deadline ] || fail "node2 did not serve again within 10 s of its restart"
    sleep 0.1
done
pass
wait "$load"
STATUS=$? OUT=$(cat "$work/load.out") ERR=$(cat "$work/load.err") LAST_CMD=signload
expect_status 0
expect_out "operations 30000 failed 0 bad-signatures 0"
worst=$(sed -n 's/.*worst-ms \([0-9.]*\).*/\1/p' <<<"$OUT")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1500 else 1)" "$worst" && pass ||
    fail "an operation took ${worst} ms; a hung member may cost at most its 1000 ms deadline"
python3 - "$work/final.json" <<'PY' && pass || fail "final cluster state is wrong: $(cat "$work/final.json")"
import json, sys
d = json.load(open(sys.argv[1]))
m = {x["name"]: x for x in d["partitions"][0]["members"]}
assert all(x["state"] == "up" for x in m.values()), "every member should be back up"
assert m["node2"]["times_down"] >= 1 and m["node2"]["times_back"] >= 1
assert m["node3"]["times_down"] >= 1 and m["node3"]["times_back"] >= 1
assert m["node1"]["times_down"] == 0
PY

# ---- 2: every node down, then one back, in the same process ----
"$LOAD" --topology "$work/topology.json" --pin-source "file:$work/c/pin" \
    --uri "pkcs11:token=PART1;object=ec-key" --pub "$work/c/ref/ec.pub.pem" \
    --threads 2 --count 8000 --progress "$progress" --allow-failures 1 --pace-ms 2 \
    >"$work/outage.out" 2>"$work/outage.err" &
load=$!
wait_ops 1000
cluster_kill 1
cluster_kill 2
cluster_kill 3
sleep 1.5
cluster_restart 1
wait "$load"
STATUS=$? OUT=$(cat "$work/outage.out") ERR=$(cat "$work/outage.err") LAST_CMD="signload outage"
expect_status 0
expect_err "every member is down"
expect_err "node1"
failed=$(sed -n 's/.*failed \([0-9]*\) .*/\1/p' <<<"$OUT")
[ "${failed:-0}" -gt 0 ] && pass || fail "no operation failed while every node was down"
worst_fail=$(sed -n 's/.*worst-failure-ms \([0-9.]*\).*/\1/p' <<<"$OUT")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 200 else 1)" "$worst_fail" && pass ||
    fail "with every node down an operation took ${worst_fail} ms to fail; it must fail fast"
expect_out "bad-signatures 0"

# ---- 3: cluster status as operators see it ----
cluster_kill 3
run "$CTL" --topology "$work/topology.json" --json cluster status
expect_status 0
python3 - "$OUT" <<'PY' && pass || fail "cluster status does not show node3 down and node1 up: $OUT"
import json, sys
d = json.loads(sys.argv[1])
m = {x["name"]: x for x in d["partitions"][0]["members"]}
assert m["node3"]["state"] == "down" and m["node3"]["last_error"], m["node3"]
assert m["node1"]["state"] == "up"
assert d["partitions"][0]["state"] == "degraded"
PY

# ---- 4: rolling restart faster than the prober ----
# Now node1 is up, node2 and node3 down.  The load starts with both down, so
# after ~4 s the prober asks them only every 2 s.
"$LOAD" --topology "$work/topology.json" --pin-source "file:$work/c/pin" \
    --uri "pkcs11:token=PART1;object=ec-key" --pub "$work/c/ref/ec.pub.pem" \
    --threads 1 --count 3500 --pace-ms 2 --progress "$progress" \
    >"$work/rolling.out" 2>"$work/rolling.err" &
load=$!
wait_ops 1500
cluster_restart 2 || fail "restarting node 2"
cluster_kill 1 || fail "killing node 1"
wait "$load"
STATUS=$? OUT=$(cat "$work/rolling.out") ERR=$(cat "$work/rolling.err") LAST_CMD="signload rolling"
expect_status 0
expect_out "operations 3500 failed 0 bad-signatures 0"

# ---- 5: a probe hung in C_Initialize holds up no other member ----
# Now node2 is up, node1 and node3 down.  A silent listener takes node3's
# socket: it accepts connections (the listen backlog) and never answers, as
# a stopped HSM does, so the prober's next probe of node3 hangs in
# C_Initialize.  node1 then comes back and must serve while that probe
# still hangs.
python3 -c 'import os, socket, sys, time
path = sys.argv[1]
if os.path.exists(path): os.unlink(path)
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(64)
time.sleep(600)' "$(cluster_socket 3)" &
silent=$!
"$LOAD" --topology "$work/topology.json" --pin-source "file:$work/c/pin" \
    --uri "pkcs11:token=PART1;object=ec-key" --pub "$work/c/ref/ec.pub.pem" \
    --threads 1 --count 200000 --pace-ms 1 --progress "$progress" --stop-file "$work/stop" \
    >"$work/hung.out" 2>"$work/hung.err" &
load=$!
wait_ops 200
sleep 2.5 # the prober's back-off is at most 2 s: its probe of node3 now hangs
cluster_restart 1 || fail "restarting node 1"
deadline=$((SECONDS + 8))
while [ "$(member_ops node1)" -lt 100 ]; do
    kill -0 "$load" 2>/dev/null || { ERR=$(cat "$work/hung.err"); fail "the load ended early"; }
    [ $SECONDS -lt $deadline ] ||
        fail "node1 did not serve within 8 s of its restart while a probe of node3 hung"
    sleep 0.1
done
pass
# The process ends while that probe still hangs (a worker stopping during
# an outage): it must neither wait for the probe nor finalize the module
# under it (p11-kit's client asserts, or the call never returns).
touch "$work/stop"
deadline=$((SECONDS + 15))
while kill -0 "$load" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
if kill -0 "$load" 2>/dev/null; then
    LAST_CMD="signload hung probe" ERR=$(cat "$work/hung.err") OUT=$(cat /proc/$load/task/*/wchan 2>/dev/null | tr '\0' ' ')
    kill -KILL "$load"
    fail "the load process did not end within 15 s while a probe of node3 hung"
fi
wait "$load"
STATUS=$? OUT=$(cat "$work/hung.out") ERR=$(cat "$work/hung.err") LAST_CMD="signload hung probe"
expect_status 0
expect_out "failed 0 bad-signatures 0"
kill "$silent"
silent=
finish
