#!/usr/bin/env bash
# The cluster harness itself (tests/lib/cluster.sh): three real p11-kit server nodes over SoftHSM2,
# reached through p11-kit-client.so with pkcs11-tool; same partition label and key material on
# every node, distinct serials; kill / restart / stop / continue; teardown leaves nothing behind.
set -uo pipefail
: "${PRIMUS_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/cluster.sh"

T_START=$(date +%s%N)
ms() { echo $(( $(date +%s%N) / 1000000 )); }
work=$(mktemp -d /tmp/cluster-test.XXXXXX)
trap 'cluster_teardown; rm -rf "$work"' EXIT
C="$work/c"
PIN=4711
CLIENT=$CLUSTER_CLIENT_MODULE

# pkcs11-tool against node K through the p11-kit client module
p11() {
    local k=$1
    shift
    P11_KIT_SERVER_ADDRESS="unix:path=$C/node$k.sock" pkcs11-tool --module "$CLIENT" "$@"
}
# openssl with its default provider only, whatever the caller's environment says
sslv() { env -u OPENSSL_CONF -u OPENSSL_MODULES openssl "$@"; }
serial_of() { awk -F': ' '/serial num/ { gsub(/ /, "", $2); print $2; exit }' <<<"$1"; }

# ---- setup ----
t0=$(ms)
run cluster_setup "$C" 3 PART1 "$PIN"
expect_status 0
t_setup=$(( $(ms) - t0 ))
[ "$CLUSTER_DIR" = "$C" ] || fail "CLUSTER_DIR is '$CLUSTER_DIR', not $C"
[ "$(stat -c %a "$C/pin")" = 600 ] || fail "pin file mode is $(stat -c %a "$C/pin")"
[ "$(cat "$C/pin")" = "$PIN" ] || fail "pin file content"
for key in rsa ec ec384; do
    [ -s "$C/ref/$key.pub.pem" ] || fail "no reference key $C/ref/$key.pub.pem"
done
run cluster_socket 2
expect_status 0
[ "$OUT" = "$C/node2.sock" ] || fail "cluster_socket 2 printed '$OUT'"
run cluster_socket 4
[ "$STATUS" -ne 0 ] || fail "cluster_socket 4 must fail on a 3-node cluster"
mypgid=$(ps -o pgid= -p $$ | tr -d ' ')
declare -a PGIDS
for k in 1 2 3; do
    [ -S "$C/node$k.sock" ] || fail "no socket for node $k"
    PGIDS[k]=$(cat "$C/node$k.pgid")
    [ -n "${PGIDS[k]}" ] && [ "${PGIDS[k]}" != "$mypgid" ] || fail "node $k pgid '${PGIDS[k]}'"
    [ "$(ps -o sid= -p "${PGIDS[k]}" | tr -d ' ')" = "${PGIDS[k]}" ] ||
        fail "node $k is not its own session leader"
    pass
done

# ---- every node: the partition token, own serial, six objects ----
declare -a SERIAL
for k in 1 2 3; do
    run p11 "$k" -L
    expect_status 0
    expect_out 'token label        : PART1'
    SERIAL[k]=$(serial_of "$OUT")
    [ -n "${SERIAL[k]}" ] || fail "node $k: no serial in -L"
    run p11 "$k" --login --pin "$PIN" --list-objects
    expect_status 0
    objs=$(awk '/Key Object;/ { kind = $1 } /^ *label:/ { label = $2 } /^ *ID:/ { print kind, label, $2 }' <<<"$OUT" | sort | tr '\n' ';')
    [ "$objs" = "Private ec-key 02;Private ec384-key 03;Private rsa-key 01;Public ec-key 02;Public ec384-key 03;Public rsa-key 01;" ] ||
        fail "node $k objects: $objs"
done
[ "$(printf '%s\n' "${SERIAL[@]}" | sort -u | wc -l)" -eq 3 ] || fail "serials not distinct: ${SERIAL[*]}"
pass

# ---- the same key material everywhere: sign in a node, verify in software ----
printf 'cluster harness test data\n' >"$work/data"
sslv dgst -sha256 -binary "$work/data" >"$work/h256"
sslv dgst -sha384 -binary "$work/data" >"$work/h384"
sign_and_verify() {   # K
    local k=$1
    run p11 "$k" --login --pin "$PIN" --sign -m SHA256-RSA-PKCS --id 01 \
        --input-file "$work/data" --output-file "$work/rsa.$k.sig"
    expect_status 0
    run sslv dgst -sha256 -verify "$C/ref/rsa.pub.pem" -signature "$work/rsa.$k.sig" "$work/data"
    expect_status 0
    expect_out 'Verified OK'
    run p11 "$k" --login --pin "$PIN" --sign -m ECDSA --id 02 --signature-format openssl \
        --input-file "$work/h256" --output-file "$work/ec.$k.sig"
    expect_status 0
    run sslv pkeyutl -verify -pubin -inkey "$C/ref/ec.pub.pem" -in "$work/h256" -sigfile "$work/ec.$k.sig"
    expect_status 0
    expect_out 'Signature Verified Successfully'
    run p11 "$k" --login --pin "$PIN" --sign -m ECDSA --id 03 --signature-format openssl \
        --input-file "$work/h384" --output-file "$work/ec384.$k.sig"
    expect_status 0
    run sslv pkeyutl -verify -pubin -inkey "$C/ref/ec384.pub.pem" -in "$work/h384" -sigfile "$work/ec384.$k.sig"
    expect_status 0
    expect_out 'Signature Verified Successfully'
}
sign_and_verify 1
sign_and_verify 2
# the check can fail: a node-1 P-384 signature does not verify under the P-256 reference key
run sslv pkeyutl -verify -pubin -inkey "$C/ref/ec.pub.pem" -in "$work/h384" -sigfile "$work/ec384.1.sig"
[ "$STATUS" -ne 0 ] || fail "a signature verified under the wrong key"
pass

# ---- topology ----
run cluster_topology "$work/topo.json" 1500
expect_status 0
python3 - "$work/topo.json" "$C" "$CLIENT" <<'PY' || fail "topology JSON: $(cat "$work/topo.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
d, client = sys.argv[2], sys.argv[3]
(part,) = doc["partitions"]
assert part["name"] == "PART1" and part["id"] == "PART1", part
ms = part["members"]
assert [m["name"] for m in ms] == ["node1", "node2", "node3"], ms
for i, m in enumerate(ms, 1):
    assert m["module"] == client, m
    assert m["env"] == {"P11_KIT_SERVER_ADDRESS": "unix:path=%s/node%d.sock" % (d, i)}, m
    assert m["priority"] == 0 and m["timeout-ms"] == 1500, m
PY
pass
run cluster_topology "$work/topo2.json"
grep -q '"timeout-ms":1000' "$work/topo2.json" || fail "default timeout-ms is not 1000"
pass

# ---- kill: node 2 fails fast, node 1 is untouched; restart brings node 2 back ----
t0=$(ms)
run cluster_kill 2
expect_status 0
t_kill=$(( $(ms) - t0 ))
[ -z "$(ps -e -o pgid=,stat= | awk -v g="${PGIDS[2]}" '$1 == g && $2 !~ /^Z/')" ] || fail "node 2 group still alive"
pass
t0=$(ms)
run p11 2 --login --pin "$PIN" --list-objects
t_dead=$(( $(ms) - t0 ))
[ "$STATUS" -ne 0 ] || fail "a call to the killed node 2 succeeded"
[ "$t_dead" -lt 2000 ] || fail "the call to the killed node took ${t_dead} ms"
pass
run p11 1 --login --pin "$PIN" --sign -m ECDSA --id 02 --signature-format openssl \
    --input-file "$work/h256" --output-file "$work/ec.1b.sig"
expect_status 0
run cluster_stop 2
[ "$STATUS" -ne 0 ] || fail "cluster_stop on a killed node must fail"
pass
run cluster_kill 2
expect_status 0

t0=$(ms)
run cluster_restart 2
expect_status 0
t_restart=$(( $(ms) - t0 ))
[ "$(cat "$C/node2.pgid")" != "${PGIDS[2]}" ] || fail "restarted node 2 kept its old pgid"
PGIDS[2]=$(cat "$C/node2.pgid")
run p11 2 -L
expect_status 0
[ "$(serial_of "$OUT")" = "${SERIAL[2]}" ] || fail "node 2 came back with another token"
sign_and_verify 2
run cluster_restart 1
[ "$STATUS" -ne 0 ] || fail "cluster_restart of a running node must fail"
pass

# ---- stop: node 3 hangs; continue: it answers again ----
run cluster_stop 3
expect_status 0
t0=$(ms)
run timeout 2 bash -c 'P11_KIT_SERVER_ADDRESS="unix:path=$1" exec pkcs11-tool --module "$2" -L' _ "$C/node3.sock" "$CLIENT"
t_hang=$(( $(ms) - t0 ))
expect_status 124
run p11 1 -L
expect_status 0
run cluster_cont 3
expect_status 0
run p11 3 --login --pin "$PIN" --sign -m ECDSA --id 03 --signature-format openssl \
    --input-file "$work/h384" --output-file "$work/ec384.3.sig"
expect_status 0
run sslv pkeyutl -verify -pubin -inkey "$C/ref/ec384.pub.pem" -in "$work/h384" -sigfile "$work/ec384.3.sig"
expect_status 0

# ---- nodes outlive the subshell or child script that (re)started them ----
cluster_kill 1 || fail "cluster_kill 1"
restarted=$(cluster_restart 1 && echo restarted)   # must not hang on the node holding the pipe
[ "$restarted" = restarted ] || fail "cluster_restart 1 in a command substitution"
run p11 1 -L
expect_status 0
cluster_kill 1 || fail "cluster_kill 1 (2nd)"
run timeout 30 bash -c 'source "$1/tests/lib/cluster.sh" && cluster_restart 1' _ "$PRIMUS_SRC"
expect_status 0
run p11 1 -L
expect_status 0
PGIDS[1]=$(cat "$C/node1.pgid")

# ---- teardown: with a node stopped and a client stalled on it ----
cluster_stop 3 || fail "cluster_stop 3 (2nd)"
P11_KIT_SERVER_ADDRESS="unix:path=$C/node3.sock" timeout 20 pkcs11-tool --module "$CLIENT" -L >/dev/null 2>&1 &
stalled=$!
sleep 0.2
run cluster_teardown
expect_status 0
for k in 1 2 3; do
    [ -z "$(ps -e -o pgid=,stat= | awk -v g="${PGIDS[k]}" '$1 == g && $2 !~ /^Z/')" ] ||
        fail "node $k (pgid ${PGIDS[k]}) survived teardown"
    [ ! -e "$C/node$k.sock" ] || fail "socket of node $k left behind"
    [ ! -e "$C/node$k.pgid" ] || fail "pgid file of node $k left behind"
done
pass
run pgrep -af -- "$C/"
[ -z "$OUT" ] || fail "processes left behind: $OUT"
run cluster_leftovers
[ -z "$OUT" ] || fail "p11-kit processes left behind: $OUT"
pass
wait "$stalled"
[ $? -ne 124 ] || fail "a client stalled on a stopped node was not released by teardown"
pass
run cluster_teardown
expect_status 0

t_total=$(( ($(date +%s%N) - T_START) / 1000000 ))
echo "timings: setup ${t_setup} ms, kill ${t_kill} ms, dead-node call ${t_dead} ms," \
    "restart ${t_restart} ms, hang cut at ${t_hang} ms, total ${t_total} ms"
# A harness that takes minutes makes every cluster test slow: a bound, not a
# benchmark.  Sanitizer builds run everything several times slower.
limit=60000
[ -n "${PRIMUS_SANITIZE:-}" ] && limit=180000
[ "$t_total" -lt "$limit" ] || fail "the harness test took ${t_total} ms (limit ${limit} ms)"
finish
