#!/usr/bin/env bash
# `primusctl check` as the onboarding proof on a 3-node cluster: it runs a
# real signature on EACH member, names the member that fails when one is
# down, and its evidence points at the audit records of those signatures.
# Also: it warns for an extractable key made for the test, not for a good one.
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/cluster.sh"
source "$PRIMUS_SRC/tests/lib/token.sh"

CTL="$PRIMUS_BUILD/tools/primusctl"
work=$(mktemp -d /tmp/primus-check.XXXXXX)
trap 'cluster_teardown; rm -rf "$work"' EXIT
export CLUSTER_QUIET=1
cluster_setup "$work/c" 3 PART1 1234 || fail "cluster did not start"
cluster_topology "$work/topology.json" 1000
head -c 32 /dev/urandom >"$work/audit.key"
chmod 600 "$work/audit.key"
log="$work/audit.jsonl"
common=(--topology "$work/topology.json" --pin-source "file:$work/c/pin"
        --audit-log "$log" --audit-key "$work/audit.key")
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$work/out.json" "$1"; }

# ---- every member passes, and each pass names its audit record ----
run "$CTL" "${common[@]}" --json check 'pkcs11:token=PART1;object=ec-key'
expect_status 0
printf '%s' "$OUT" >"$work/out.json"
[ "$(json 'len(d["members"])')" = 3 ] && pass || fail "check did not prove 3 members"
[ "$(json '[m["member"] for m in d["members"]]')" = "['node1', 'node2', 'node3']" ] && pass ||
    fail "members named wrongly: $(json '[m["member"] for m in d["members"]]')"
[ "$(json '[m["result"] for m in d["members"]]')" = "['pass', 'pass', 'pass']" ] && pass ||
    fail "not every member passed"
[ "$(json 'd["pass"]')" = True ] && pass || fail "overall result is not pass"
stream=$(json 'd["audit"]["stream"]')
# each member's audit_seq is a "sign" record of that member in this stream, written to disk
python3 - "$work/out.json" "$log" "$stream" <<'PY' && pass || fail "the evidence does not match the audit log"
import json, sys
doc = json.load(open(sys.argv[1]))
recs = [json.loads(l) for l in open(sys.argv[2])]
mine = {r["seq"]: r for r in recs if r["stream"] == sys.argv[3]}
for m in doc["members"]:
    r = mine[m["audit_seq"]]
    assert r["event"] == "sign" and r["result"] == "CKR_OK", r
    assert r["member"] == m["member"], (r["member"], m["member"])
    assert r["key"].startswith("pkcs11:token=PART1;object=ec-key"), r["key"]
PY
run "$CTL" audit verify "$log" --key "$work/audit.key"
expect_status 0

# ---- one member down: check fails and names it; the others still pass ----
cluster_kill 2
run "$CTL" "${common[@]}" check 'pkcs11:token=PART1;object=ec-key'
expect_status 1
expect_out "member node2"
grep -q "^member node2 .*FAIL" <<<"$OUT" && pass || fail "node2 is not reported as failing"
grep -q "^member node1 .*: pass" <<<"$OUT" && pass || fail "node1 should pass"
grep -q "^member node3 .*: pass" <<<"$OUT" && pass || fail "node3 should pass"
expect_out "result: FAIL"
run "$CTL" "${common[@]}" --json check 'pkcs11:token=PART1;object=ec-key'
expect_status 1
printf '%s' "$OUT" >"$work/out.json"
[ "$(json '[m["result"] for m in d["members"]]')" = "['pass', 'fail', 'pass']" ] && pass ||
    fail "JSON results: $(json '[m["result"] for m in d["members"]]')"
[ -n "$(json 'd["members"][1]["reason"]')" ] && pass || fail "the failing member has no reason"
cluster_restart 2
run "$CTL" audit verify "$log" --key "$work/audit.key"
expect_status 0

# ---- a key on one member only (made there, or not yet replicated) ----
# Lookups and operations go to the member that has it: nothing fails, no
# member is taken for down; check names the members that lack it.
node2=(env "P11_KIT_SERVER_ADDRESS=$(cluster_address 2)" pkcs11-tool --module "$CLUSTER_CLIENT_MODULE")
"${node2[@]}" --login --pin 1234 --keypairgen --key-type EC:prime256v1 --id 0f --label lone-key \
    >/dev/null 2>&1 || fail "could not make a key on node2 alone"
"${node2[@]}" --read-object --type pubkey --label lone-key -o "$work/lone.pub.der" >/dev/null 2>&1 &&
    openssl pkey -pubin -inform DER -in "$work/lone.pub.der" -out "$work/lone.pub.pem" ||
    fail "could not read lone-key's public key from node2"
run "$PRIMUS_BUILD/tests/signload" --topology "$work/topology.json" --pin-source "file:$work/c/pin" \
    --uri 'pkcs11:token=PART1;object=lone-key' --pub "$work/lone.pub.pem" --threads 2 --count 600 \
    --status-out "$work/lone.json"
expect_status 0
expect_out "operations 600 failed 0 bad-signatures 0"
python3 - "$work/lone.json" <<'PY' && pass || fail "a member without the key was treated as down: $(cat "$work/lone.json")"
import json, sys
m = {x["name"]: x for x in json.load(open(sys.argv[1]))["partitions"][0]["members"]}
assert all(x["state"] == "up" and x["times_down"] == 0 for x in m.values()), m
assert m["node2"]["operations"] >= 600, m["node2"]["operations"]
PY
run "$CTL" "${common[@]}" check 'pkcs11:token=PART1;object=lone-key'
expect_status 1
grep -q "^member node1 .*FAIL: .*the key is missing on member node1" <<<"$OUT" && pass ||
    fail "node1 should fail for lacking the key"
grep -q "^member node3 .*FAIL: .*the key is missing on member node3" <<<"$OUT" && pass ||
    fail "node3 should fail for lacking the key"
grep -q "^member node2 .*: pass" <<<"$OUT" && pass || fail "node2 holds the key and should pass"
expect_out "check replication"
# the only member with the key goes down: operations fail fast, naming the
# members that lack it, and work again once it is back
"$PRIMUS_BUILD/tests/signload" --topology "$work/topology.json" --pin-source "file:$work/c/pin" \
    --uri 'pkcs11:token=PART1;object=lone-key' --pub "$work/lone.pub.pem" --threads 1 \
    --count 4000 --allow-failures 1 --pace-ms 1 --progress "$work/lone.progress" \
    >"$work/lone.out" 2>"$work/lone.err" &
load=$!
lone_done() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["done"])' "$work/lone.progress" 2>/dev/null || echo 0; }
deadline=$((SECONDS + 60))
while [ "$(lone_done)" -lt 400 ] && kill -0 "$load" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
cluster_kill 2
sleep 1
cluster_restart 2
wait "$load"
STATUS=$? OUT=$(cat "$work/lone.out") ERR=$(cat "$work/lone.err") LAST_CMD="signload, node2 down"
expect_status 0
expect_err "the key is missing on members node1 (serial "
expect_err "and no other member that answered has it"
expect_out "bad-signatures 0"
grep -q "ok-since-last-failure [1-9]" <<<"$OUT" && pass || fail "signing did not resume after node2 came back"

# ---- an extractable key made for the test is warned about ----
token_setup "$work/plain"
token_create WEAK 1234
pkcs11-tool --module "$PRIMUS_SOFTHSM_MODULE" --token-label WEAK --login --pin 1234 \
    --keypairgen --key-type EC:prime256v1 --id 07 --label weak-key --extractable >/dev/null ||
    fail "could not make the extractable key"
token_keygen WEAK EC:prime256v1 08 strong-key
token_pin_file "$work/weak.pin" 1234
run "$CTL" --module "$PRIMUS_SOFTHSM_MODULE" --pin-source "file:$work/weak.pin" \
    check 'pkcs11:token=WEAK;object=weak-key'
expect_status 0
expect_out "warning: the private key is extractable"
run "$CTL" --module "$PRIMUS_SOFTHSM_MODULE" --pin-source "file:$work/weak.pin" \
    check 'pkcs11:token=WEAK;object=strong-key'
expect_status 0
expect_no_out "warning:"
finish
