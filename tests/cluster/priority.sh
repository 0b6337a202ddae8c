#!/usr/bin/env bash
# Priority pools, as Primus operators know them: node1 has priority 0,
# nodes 2 and 3 priority 1.  While node1 lives, all work goes to it; when it
# dies, work spreads over nodes 2 and 3; when it is back, work returns to it.
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/cluster.sh"

LOAD="$PRIMUS_BUILD/tests/signload"
work=$(mktemp -d /tmp/primus-priority.XXXXXX)
trap 'cluster_teardown; rm -rf "$work"' EXIT
export CLUSTER_QUIET=1
cluster_setup "$work/c" 3 PART1 1234 || fail "cluster did not start"
# No member hangs here, so a long deadline: on a loaded CI machine (ASan, 2
# cores) a slow answer must not be taken for a dead member.
cluster_topology "$work/topology.json" 5000
# node1 is the preferred pool
python3 - "$work/topology.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for m in t["partitions"][0]["members"]:
    m["priority"] = 0 if m["name"] == "node1" else 1
json.dump(t, open(sys.argv[1], "w"))
PY
progress="$work/progress.json"
ops() { # ops MEMBER: operations of a member in the live status
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print([m for m in d["partitions"][0]["members"] if m["name"] == sys.argv[2]][0]["operations"])' "$progress" "$1"
}
done_ops() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["done"])' "$progress" 2>/dev/null || echo 0; }
wait_ops() {
    local deadline=$((SECONDS + 120))
    while [ "$(done_ops)" -lt "$1" ]; do
        kill -0 "$load" 2>/dev/null || { ERR=$(cat "$work"/load.err 2>/dev/null); fail "the load process ended early"; }
        [ $SECONDS -lt $deadline ] || fail "the load stalled below $1 operations"
        sleep 0.05
    done
}

"$LOAD" --topology "$work/topology.json" --pin-source "file:$work/c/pin" \
    --uri "pkcs11:token=PART1;object=ec-key" --pub "$work/c/ref/ec.pub.pem" \
    --threads 2 --count 400000 --progress "$progress" >"$work/load.out" 2>"$work/load.err" &
load=$!
wait_ops 3000
[ "$(ops node2)" -eq 0 ] && [ "$(ops node3)" -eq 0 ] && pass ||
    fail "the lower pool served while the preferred member was up: node2 $(ops node2), node3 $(ops node3)"
cluster_kill 1
wait_ops $(( $(done_ops) + 3000 ))
n2=$(ops node2) n3=$(ops node3)
[ "$n2" -gt 500 ] && [ "$n3" -gt 500 ] && pass ||
    fail "with node1 down, work did not spread over the lower pool: node2 $n2, node3 $n3"
cluster_restart 1
n1=$(ops node1)
deadline=$((SECONDS + 20))  # the prober backs off to 2 s; a loaded CI machine is slow
while [ "$(ops node1)" -le $((n1 + 200)) ]; do
    kill -0 "$load" 2>/dev/null || fail "the load ended before node1 served again"
    [ $SECONDS -lt $deadline ] || {
        OUT=$(cat "$progress") ERR=$(tail -5 "$work/load.err")
        fail "node1 did not take the work back within 20 s"
    }
    sleep 0.1
done
pass
# once back, the preferred member takes all the work again
sleep 0.5
n2=$(ops node2) n3=$(ops node3)
wait_ops $(( $(done_ops) + 2000 ))
[ "$(ops node2)" -eq "$n2" ] && [ "$(ops node3)" -eq "$n3" ] && pass ||
    fail "the lower pool kept serving after node1 came back"
read -r failed bad < <(python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); print(d["failed"], d["bad_signatures"])' "$progress")
[ "$failed" -eq 0 ] && [ "$bad" -eq 0 ] && pass || fail "$failed operations failed, $bad signatures did not verify"
kill "$load" 2>/dev/null
wait "$load" 2>/dev/null
finish
